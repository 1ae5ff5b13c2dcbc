"""The recorder writes around a record the store cannot take, and keeps retrying only what may succeed.

A check the store refuses for its data (here text with a lone surrogate, which no UTF-8
column holds) used to fail its whole batch five times over, and every check queued with
it was dropped. Now only the record at fault is dropped; a database that is down still
gets the whole batch again at the next flush.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from model.comment import Comment
from model.verdict import Reason, Verdict
from service.recorder import Recorder
from store import CheckRecord, Store, StoreDatabaseError, StoreDataError, open_store

SECRET = b"test-secret-0123456789abcdef"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(str(tmp_path / "checks.db"), secret=SECRET) as opened:
        yield opened


def check(content: str) -> CheckRecord:
    verdict = Verdict("ham", 0.1, (Reason("no links in the text", -2.0),), "m-1")
    return CheckRecord.from_verdict(Comment(comment_content=content), verdict, surface="json")


@pytest.mark.parametrize("bad_at", [0, 7, 199])
def test_one_unstorable_check_costs_only_itself(store: Store, bad_at: int) -> None:
    recorder = Recorder(store, batch_size=10_000)  # never started: flush() writes in this thread
    records = [check(f"comment number {i}") for i in range(200)]
    records[bad_at] = check("cut in the middle of an emoji \ud83d")
    for record in records:
        recorder.record_check(record)
    assert recorder.flush() is False  # something was not written, and the caller is told
    stored = [store.get_check(r.id) for r in records]
    assert [i for i, found in enumerate(stored) if found is None] == [bad_at]
    assert recorder.dropped == 1 and recorder.pending == 0


def test_several_unstorable_checks_are_each_dropped_alone(store: Store) -> None:
    recorder = Recorder(store)
    records = [check("fine one"), check("bad \udc00"), check("fine two"), check("bad \ud800 again"),
               check("fine three")]
    for record in records:
        recorder.record_check(record)
    recorder.flush()
    assert [store.get_check(r.id) is not None for r in records] == [True, False, True, False, True]
    assert recorder.dropped == 2


class RefusingStore:
    """A store whose database refuses some values (as PostgreSQL's driver raises DataError)."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def record_checks(self, records: list[CheckRecord]) -> None:
        if any("refused" in r.comment.comment_content for r in records):
            raise StoreDataError("postgresql error: invalid value")
        self.written += [r.id for r in records]


def test_values_the_database_refuses_cost_only_their_own_records() -> None:
    refusing = RefusingStore()
    recorder = Recorder(refusing)  # type: ignore[arg-type]
    records = [check("refused" if i in (3, 40) else f"comment {i}") for i in range(64)]
    for record in records:
        recorder.record_check(record)
    assert recorder.flush() is False
    assert refusing.written == [r.id for i, r in enumerate(records) if i not in (3, 40)]
    assert recorder.dropped == 2 and recorder.pending == 0


class DownStore:
    """A store whose database is unreachable: every write fails the same way."""

    def __init__(self) -> None:
        self.calls = 0

    def record_checks(self, records: list[CheckRecord]) -> None:
        self.calls += 1
        raise StoreDatabaseError("postgresql error: connection refused")


def test_a_database_that_is_down_gets_the_whole_batch_again_not_halves() -> None:
    down = DownStore()
    recorder = Recorder(down, max_attempts=3)  # type: ignore[arg-type]
    for i in range(50):
        recorder.record_check(check(f"comment {i}"))
    assert recorder.flush() is False
    assert down.calls == 1 and recorder.pending == 50 and recorder.dropped == 0
    recorder.flush()
    recorder.flush()
    assert down.calls == 3 and recorder.pending == 0 and recorder.dropped == 50
