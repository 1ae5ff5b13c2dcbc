"""Requests waiting on a store outage: turns at the store, and no waiting on the check-log writer.

A probe (2026-11-28) locked the SQLite file and sent four reports: each waited for the writer's
10 s attempt (every attempt began by saying the store was reachable again), then tried the
queue itself, then stored its label, and every thread of the server was taken for 29-58 s.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

import pytest

from model.comment import Comment
from model.verdict import Reason, Verdict
from service import store_turns
from service.recorder import Recorder
from service.store_turns import NoTurnError, StoreTurns, turns_for
from store import CheckRecord, StoreBusyError


def check(content: str) -> CheckRecord:
    verdict = Verdict("ham", 0.1, (Reason("no links in the text", -2.0),), "m-1")
    return CheckRecord.from_verdict(Comment(comment_content=content), verdict, surface="json")


class LockedStore:
    """Check-log writes fail as on a locked SQLite file: each attempt waits ``attempt`` seconds
    (SQLite's busy wait), then gives up."""

    def __init__(self, attempt: float) -> None:
        self.attempt = attempt
        self.locked = True
        self.attempts = 0
        self.written: list[str] = []

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        records = list(records)
        self.attempts += 1
        if self.locked:
            time.sleep(self.attempt)
            raise StoreBusyError("sqlite error: database stayed locked")
        self.written += [r.id for r in records]


def in_thread(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_the_store_stays_unreachable_through_the_writers_next_attempt() -> None:
    store = LockedStore(attempt=1.5)
    recorder = Recorder(store)  # type: ignore[arg-type]
    recorder.record_check(check("queued"))
    assert recorder.flush() is False and recorder.store_unreachable
    writer = in_thread(recorder.flush)  # the writer's next attempt, waiting on the lock
    time.sleep(0.2)
    # The old recorder said "reachable" for the length of every attempt, and a request then
    # waited that attempt out and made one more of its own.
    assert recorder.store_unreachable
    started = time.monotonic()
    assert recorder.flush_for_a_request() is False
    assert time.monotonic() - started < 0.5 and store.attempts == 2
    writer.join()
    store.locked = False
    assert recorder.flush() is True and not recorder.store_unreachable
    assert recorder.flush_for_a_request() is True and store.attempts == 3


def test_a_request_waits_for_the_writers_first_attempt_only_briefly() -> None:
    # Before any attempt failed, nothing says the store is down: a request waits for the write
    # in progress (it normally takes milliseconds), but not for as long as the store holds it.
    store = LockedStore(attempt=3.0)
    recorder = Recorder(store)  # type: ignore[arg-type]
    recorder.record_check(check("queued"))
    writer = in_thread(recorder.flush)
    time.sleep(0.2)
    assert not recorder.store_unreachable
    started = time.monotonic()
    assert recorder.flush_for_a_request(wait=0.3) is False
    assert time.monotonic() - started < 2.0 and store.attempts == 1
    assert recorder.holds(lambda record: record.comment.comment_content == "queued")  # in the batch in flight
    writer.join()
    assert recorder.holds(lambda record: record.comment.comment_content == "queued")  # back in the queue
    assert not recorder.holds(lambda record: record.comment.comment_content == "another")


def test_waiting_requests_get_their_turn_while_the_holders_are_quick() -> None:
    turns = StoreTurns(1)
    done: list[int] = []

    def report(i: int) -> None:
        with turns.turn():
            time.sleep(0.05)  # a store answering in milliseconds
            done.append(i)

    threads = [in_thread(lambda i=i: report(i)) for i in range(6)]
    for thread in threads:
        thread.join(10)
    assert sorted(done) == list(range(6))


def test_waiting_requests_give_up_once_every_holder_waits_on_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_turns, "SLOW_AFTER_SECONDS", 0.3)
    turns = StoreTurns(2)
    release = threading.Event()

    def stuck() -> None:
        with turns.turn():
            release.wait(10)  # a write waiting on a locked file

    holders = [in_thread(stuck), in_thread(stuck)]
    time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(NoTurnError):
        with turns.turn():
            pass
    took = time.monotonic() - started
    assert 0.1 < took < 2.0  # when the holders had held their turns 0.3 s, not the 3 s maximum
    started = time.monotonic()
    with pytest.raises(NoTurnError):  # holders slow already: no wait at all
        with turns.turn():
            pass
    assert time.monotonic() - started < 0.1
    with pytest.raises(NoTurnError):  # wait=False (the writer finds the store unreachable)
        with turns.turn(wait=False):
            pass
    release.set()
    for holder in holders:
        holder.join(5)
    with turns.turn(wait=False):  # free again
        pass


def test_a_worker_keeps_half_its_threads_for_checks() -> None:
    assert [turns_for(n, "gthread") for n in (1, 2, 3, 4, 8)] == [1, 1, 1, 2, 4]
    assert turns_for(8, "sync") == 1 and turns_for(2, "gevent") == 1
