"""The recorder writes around a record the store cannot take, and loses nothing while the store is down.

A check the store refuses for its data (here text with a lone surrogate, which no UTF-8
column holds) used to fail its whole batch five times over, and every check queued with
it was dropped. Now only the record at fault is dropped. A store that cannot be reached
used to cost every check queued during the first second of the outage (five attempts,
0.2 s apart); now they wait in the queue, up to its bound, and the writer backs off.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

import pytest

from model.comment import Comment
from model.verdict import Reason, Verdict
from service import recorder as recorder_module
from service.recorder import MAX_BACKOFF, Recorder, next_delay
from store import CheckRecord, Store, StoreCommitUnknownError, StoreDatabaseError, StoreDataError, open_store
from store.keys import MAX_BLOG_CHARS

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

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        records = list(records)  # read once, as the real store does
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


class FlakyStore:
    """A store whose database is unreachable while ``down``: every write then fails the same way."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0
        self.written: list[str] = []
        self.usage: dict[tuple[int, str, str, str], int] = {}

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        self.calls += 1
        if self.down:
            raise StoreDatabaseError("postgresql error: connection refused")
        self.written += [r.id for r in records]

    def count_usage(self, key_id: int, month: str, *, blog: str = "", **counts: int) -> None:
        if self.down:
            raise StoreDatabaseError("postgresql error: connection refused")
        for name, value in counts.items():
            self.usage[(key_id, month, blog, name)] = self.usage.get((key_id, month, blog, name), 0) + value


def test_a_database_that_is_down_loses_nothing_and_gets_it_all_when_back() -> None:
    flaky = FlakyStore()
    recorder = Recorder(flaky, max_pending=1000)  # type: ignore[arg-type]
    records = [check(f"comment {i}") for i in range(300)]
    for record in records[:150]:
        recorder.record_check(record)
    for _ in range(20):  # an outage of many flushes: the batch is whole again each time, not halved
        assert recorder.flush() is False and recorder.store_unreachable
    assert flaky.calls == 20 and recorder.pending == 150 and recorder.dropped == 0
    for record in records[150:]:
        recorder.record_check(record)
    flaky.down = False
    assert recorder.flush() is True and not recorder.store_unreachable
    assert flaky.written == [r.id for r in records]  # in the order they were checked
    assert recorder.pending == 0 and recorder.dropped == 0


def test_an_outage_longer_than_the_queue_drops_the_oldest_checks_only() -> None:
    flaky = FlakyStore()
    recorder = Recorder(flaky, max_pending=100)  # type: ignore[arg-type]
    records = [check(f"comment {i}") for i in range(130)]
    for record in records:
        recorder.record_check(record)
    assert recorder.dropped == 30
    flaky.down = False
    assert recorder.flush()
    assert flaky.written == [r.id for r in records[30:]]


def test_a_request_does_not_wait_on_a_store_the_writer_found_unreachable() -> None:
    # Reads that want what is queued written first (a report's lookup, usage figures) skip the
    # write while the writer backs off: each would wait on the store and log one more failure.
    flaky = FlakyStore()
    recorder = Recorder(flaky)  # type: ignore[arg-type]
    queued = check("queued")
    recorder.record_check(queued)
    assert recorder.flush_for_a_request() is False and recorder.store_unreachable and flaky.calls == 1
    for _ in range(5):
        assert recorder.flush_for_a_request() is False
    assert flaky.calls == 1 and recorder.pending == 1
    flaky.down = False
    assert recorder.flush() is True  # the writer's own retry
    assert flaky.written == [queued.id]
    recorder.record_check(check("next"))
    assert recorder.flush_for_a_request() is True and len(flaky.written) == 2


def test_usage_whose_commit_reply_was_lost_is_not_counted_again() -> None:
    class LostReply(FlakyStore):
        def count_usage(self, key_id: int, month: str, *, blog: str = "", **counts: int) -> None:
            self.calls += 1
            raise StoreCommitUnknownError("postgresql error during commit: server closed the connection")

    store = LostReply()
    recorder = Recorder(store)  # type: ignore[arg-type]
    recorder.count_usage(7, "2026-11", api_calls=1, spam=1)
    assert recorder.flush() is False and recorder.store_unreachable
    assert recorder.pending == 0  # most likely counted already: not queued to be counted twice
    assert recorder.flush() is True and store.calls == 1


def test_usage_slots_per_blog_are_bounded_through_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    # blog is the client's: one sending a new value each call must not grow the queue without end.
    monkeypatch.setattr(recorder_module, "MAX_USAGE_SLOTS", 50)
    flaky = FlakyStore()
    recorder = Recorder(flaky)  # type: ignore[arg-type]
    for i in range(200):
        recorder.count_usage(7, "2026-11", blog=f"https://site-{i}.example/", api_calls=1)
    recorder.count_usage(7, "2026-11", blog=" https://site-3.example", api_calls=1)  # the same site as i=3
    recorder.count_usage(7, "2026-11", blog="https://x.example/" + "p" * 1000, api_calls=1)
    assert recorder.pending == 51  # 50 blogs, and the key's own site for the rest
    flaky.down = False
    assert recorder.flush()
    assert flaky.usage[(7, "2026-11", "https://site-3.example", "api_calls")] == 2
    assert flaky.usage[(7, "2026-11", "", "api_calls")] == 151
    assert sum(flaky.usage.values()) == 202
    assert max(len(blog) for _, _, blog, _ in flaky.usage) <= MAX_BLOG_CHARS


def test_the_writer_backs_off_while_the_store_is_unreachable() -> None:
    waits = [next_delay(0.2, 0.2, True)]
    for _ in range(8):
        waits.append(next_delay(waits[-1], 0.2, True))
    assert waits[:5] == [0.4, 0.8, 1.6, 3.2, MAX_BACKOFF] and max(waits) == MAX_BACKOFF
    assert next_delay(MAX_BACKOFF, 0.2, False) == 0.2  # back to the interval once the store answers


def test_the_writer_is_woken_once_per_batch_not_once_per_check_while_backlogged() -> None:
    flaky = FlakyStore()
    recorder = Recorder(flaky, batch_size=10)  # type: ignore[arg-type]
    for i in range(10):
        recorder.record_check(check(f"comment {i}"))
    assert recorder._wake.is_set()  # a batch is full: the writer is woken
    recorder.flush()  # the store is down: all ten go back to the queue
    recorder._wake.clear()
    for i in range(25):
        recorder.record_check(check(f"more {i}"))
    assert not recorder._wake.is_set()  # over a batch already: the writer keeps to its backoff


class ChunkStore:
    """Records each transaction's checks; fails as a whole from the ``fail_from``-th call on."""

    def __init__(self, fail_from: int | None = None) -> None:
        self.fail_from = fail_from
        self.transactions: list[list[str]] = []

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        records = list(records)
        if self.fail_from is not None and len(self.transactions) + 1 >= self.fail_from:
            self.fail_from = None  # down once, then back
            raise StoreDatabaseError("postgresql error: server closed the connection")
        self.transactions.append([r.id for r in records])


def test_a_backlog_is_written_a_batch_per_transaction_and_an_outage_midway_keeps_the_order() -> None:
    store = ChunkStore(fail_from=3)
    recorder = Recorder(store, batch_size=10)  # type: ignore[arg-type]
    records = [check(f"comment {i}") for i in range(35)]
    for record in records:
        recorder.record_check(record)
    assert recorder.flush() is False and recorder.store_unreachable
    ids = [r.id for r in records]
    assert store.transactions == [ids[:10], ids[10:20]]  # the third transaction failed
    assert recorder.pending == 15
    assert recorder.flush() is True
    assert store.transactions == [ids[:10], ids[10:20], ids[20:30], ids[30:]]


def test_the_writer_lets_request_threads_run_every_few_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(recorder_module.time, "sleep", pauses.append)
    records = [check(f"comment {i}") for i in range(25)]
    assert list(recorder_module._paced(iter(records))) == records
    assert pauses == [0, 0]  # before the 11th and the 21st row


class StoppedStore:
    """A real store whose database cannot be reached while ``down`` (PostgreSQL stopped first)."""

    def __init__(self, real: Store) -> None:
        self.real = real
        self.down = True
        self.usage_attempts = 0

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        if self.down:
            raise StoreDatabaseError("postgresql error: connection refused")
        self.real.record_checks(records)

    def count_usage(self, key_id: int, month: str, *, blog: str = "", **counts: int) -> None:
        self.usage_attempts += 1
        if self.down:
            raise StoreDatabaseError("postgresql error: connection refused")
        self.real.count_usage(key_id, month, blog=blog, **counts)

    def minimised(self, comment: Comment) -> Comment:
        return self.real.minimised(comment)


def test_checks_a_worker_cannot_write_as_it_stops_are_spooled_and_written_by_the_next(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A probe stopped the server with PostgreSQL down: 3,903 checks answered, none stored, no log line."""
    key, info = store.create_key("https://blog.example")
    stopped = StoppedStore(store)
    spool = tmp_path / "spool"
    recorder = Recorder(stopped, spool_dir=spool, close_deadline=0.3)  # type: ignore[arg-type]
    records = [CheckRecord.from_verdict(
        Comment(comment_content=f"comment {i}", user_ip="203.0.113.9", comment_author_email="ann@example.org"),
        Verdict("ham", 0.1, (Reason("no links in the text", -2.0),), "m-1"), surface="akismet",
        site_id=info.site_id, key_id=info.id) for i in range(40)]
    for record in records:
        recorder.record_check(record)
    recorder.count_usage(info.id, "2026-11", blog="https://blog.example", api_calls=40, ham=40)
    recorder.count_usage(info.id, "2026-11", blog="https://other.example", api_calls=1, ham=1)
    with caplog.at_level("ERROR"):
        recorder.close()
    assert "40 checks spooled" in caplog.text
    # The counters are not tried while the checks find the store unreachable (each attempt
    # would wait out the same outage: a SQLite lock, 10 s), and they are spooled with them.
    assert stopped.usage_attempts == 0
    (spooled,) = list(spool.iterdir())
    assert spooled.stat().st_mode & 0o777 == 0o600
    text = spooled.read_text()
    assert "203.0.113.9" not in text and "ann@" not in text  # kept as the store keeps it

    # The next worker (the store is back) writes them first.
    stopped.down = False
    following = Recorder(stopped, spool_dir=spool).start()  # type: ignore[arg-type]
    following.close()
    assert list(spool.iterdir()) == []
    for record in records:
        stored = store.get_check(record.id)
        assert stored is not None and stored.comment.comment_content == record.comment.comment_content
        assert stored.comment.user_ip.startswith("hmac:")
    assert store.usage(info.id, "2026-11")["api_calls"] == 41


def test_without_a_spool_the_loss_is_at_least_logged(caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyStore()
    recorder = Recorder(flaky, close_deadline=0.2)  # type: ignore[arg-type]
    for i in range(5):
        recorder.record_check(check(f"comment {i}"))
    with caplog.at_level("ERROR"):
        recorder.close()
    assert "5 checks and 0 usage counts lost" in caplog.text


class HungStore(StoppedStore):
    """A database that accepts and never answers: a write, once begun, never returns."""

    def __init__(self, real: Store) -> None:
        super().__init__(real)
        self.entered = threading.Event()
        self.release = threading.Event()

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        list(records)
        self.entered.set()
        self.release.wait(30)
        raise StoreDatabaseError("postgresql error: connection lost")


def test_a_write_that_never_returns_is_spooled_by_the_deadline(store: Store, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """A probe froze PostgreSQL behind a proxy: the writer hung, close() waited on it, gunicorn
    killed the worker at 30 s, and every answered check was gone without a line in the log."""
    hung = HungStore(store)
    spool = tmp_path / "spool"
    recorder = Recorder(hung, spool_dir=spool, close_deadline=1.0, interval=0.01).start()  # type: ignore[arg-type]
    for i in range(25):
        recorder.record_check(check(f"comment {i}"))
    assert hung.entered.wait(5)  # the writer took the batch and is stuck with it
    for i in range(25, 30):
        recorder.record_check(check(f"comment {i}"))
    started = time.monotonic()
    with caplog.at_level("ERROR"):
        recorder.close()
    assert time.monotonic() - started < 3  # the deadline, not the hung write, decides
    hung.release.set()
    assert "30 checks spooled" in caplog.text
    assert len(list(spool.iterdir())) == 1


def test_a_damaged_spool_costs_only_its_bad_lines_and_a_dead_claimers_file_is_taken_back(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A line that was not UTF-8 crashed the worker's boot (and the server with it); the file it
    had claimed was never read again."""
    import json as json_module
    from service.spool import check_to_json

    spool = tmp_path / "spool"
    spool.mkdir()
    good, other = check("kept"), check("kept too")
    lines = [json_module.dumps(check_to_json(good, store.minimised)).encode(), b"\xff\xfe not utf-8",
             b'{"check": {"id": "trunc']
    (spool / "checks-1-a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    # Claimed by a worker that died before writing it (pid 999999 does not exist here).
    (spool / "checks-2-b.jsonl.claimed-999999").write_text(
        json_module.dumps(check_to_json(other, store.minimised)) + "\n")
    (spool / "checks-3-c.jsonl").mkdir()  # not a file at all
    with caplog.at_level("ERROR"):
        recorder = Recorder(store, spool_dir=spool).start()
        recorder.close()
    assert store.get_check(good.id) is not None and store.get_check(other.id) is not None
    assert caplog.text.count("could not be read") == 2  # the two bad lines, by number
    assert "checks-3-c.jsonl.claimed-" in caplog.text and "renamed to checks-3-c.jsonl.unreadable" in caplog.text
    assert sorted(p.name for p in spool.iterdir()) == ["checks-3-c.jsonl.unreadable"]
