"""A worker stopping while the store is unreachable: how long it tries, and its spool on a full disk.

A probe found the SIGTERM spool all or nothing on a nearly full disk (189 complete lines in a
``.partial`` file, "298 checks lost" in the log, and the file never read or removed), and
Recorder.close giving a store that fails at once up after about 5 of its 15 s.
"""
from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest

from model.comment import Comment
from service import spool as spool_module
from service.recorder import Recorder
from service.spool import read_spool
from store import CheckRecord, Store, StoreUnavailableError, open_store
from tests.test_recorder_isolation import SECRET, check


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(str(tmp_path / "checks.db"), secret=SECRET) as opened:
        yield opened


class DownStore:
    """The real store's minimising, and a database that fails every write after ``seconds``."""

    def __init__(self, real: Store, seconds: float = 0.0) -> None:
        self.real = real
        self.seconds = seconds
        self.down = True
        self.attempts: list[float] = []

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        records = list(records)
        self.attempts.append(time.monotonic())
        if self.down:
            time.sleep(self.seconds)
            raise StoreUnavailableError("postgresql error: connection refused")
        self.real.record_checks(records)

    def count_usage(self, key_id: int, month: str, *, blog: str = "", **counts: int) -> None:
        if self.down:
            raise StoreUnavailableError("postgresql error: connection refused")
        self.real.count_usage(key_id, month, blog=blog, **counts)

    def minimised(self, comment: Comment) -> Comment:
        return self.real.minimised(comment)

    def purge_checks(self, days: int) -> int:
        return 0


class FullDisk:
    """``os`` for service.spool, whose ``write`` fails with ENOSPC once ``room`` bytes are written
    (a short write first, as a real file system does when the last block fills)."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: Any) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = os.write(fd, bytes(data[:self.room]))
        self.room -= written
        return written


def _stop_with_a_full_disk(store: Store, spool: Path, monkeypatch: pytest.MonkeyPatch, room: int,
                           records: list[CheckRecord], caplog: pytest.LogCaptureFixture) -> DownStore:
    down = DownStore(store)
    recorder = Recorder(down, spool_dir=spool, close_deadline=0.2)  # type: ignore[arg-type]
    for record in records:
        recorder.record_check(record)
    recorder.count_usage(1, "2026-11", api_calls=len(records), ham=len(records))
    monkeypatch.setattr(spool_module, "os", FullDisk(room))
    with caplog.at_level("ERROR"):
        recorder.close()
    monkeypatch.setattr(spool_module, "os", os)
    return down


def test_a_full_disk_keeps_the_complete_lines_and_counts_the_lost_ones(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    spool = tmp_path / "spool"
    records = [check(f"comment number {i} " + "x" * 200) for i in range(40)]
    line = len(json.dumps(spool_module.check_to_json(records[0], store.minimised), ensure_ascii=False)) + 1
    down = _stop_with_a_full_disk(store, spool, monkeypatch, int(line * 15.5), records, caplog)

    (kept,) = list(spool.iterdir())
    assert kept.suffix == ".jsonl"  # renamed whole: no .partial left behind
    checks, usage = read_spool(kept)
    assert len(checks) == 15 and [c.id for c in checks] == [r.id for r in records[:15]]
    assert kept.read_bytes().endswith(b"\n")  # cut back to the last complete line
    assert "25 checks and 1 usage counts lost" in caplog.text and "No space left on device" in caplog.text
    assert "15 checks spooled to " + kept.name in caplog.text
    assert "could not be read" not in caplog.text

    down.down = False  # the next worker writes what was kept
    Recorder(down, spool_dir=spool).start().close()  # type: ignore[arg-type]
    assert [store.get_check(r.id) is not None for r in records] == [True] * 15 + [False] * 25
    assert list(spool.iterdir()) == []


def test_a_disk_with_no_room_for_one_line_leaves_no_file(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    spool = tmp_path / "spool"
    _stop_with_a_full_disk(store, spool, monkeypatch, 10, [check(f"comment {i}") for i in range(5)], caplog)
    assert list(spool.iterdir()) == []
    assert "5 checks and 1 usage counts lost" in caplog.text and "spooled" not in caplog.text


def test_a_spool_its_writer_died_writing_is_read_by_the_next_start(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A worker killed while writing its spool left a .partial that no later start read."""
    spool = tmp_path / "spool"
    spool.mkdir()
    whole, other = check("written whole"), check("a live writer's")
    line = json.dumps(spool_module.check_to_json(whole, store.minimised)).encode() + b"\n"
    (spool / "checks-999999-20261128T000000000000.partial").write_bytes(line + b'{"check": {"id": "cut sh')
    mine = spool / f"checks-{os.getpid()}-20261128T000000000001.partial"  # still being written
    mine.write_bytes(json.dumps(spool_module.check_to_json(other, store.minimised)).encode() + b"\n")
    with caplog.at_level("ERROR"):
        Recorder(store, spool_dir=spool).start().close()
    assert store.get_check(whole.id) is not None
    assert store.get_check(other.id) is None and mine.exists()
    assert caplog.text.count("could not be read") == 1  # the line cut short, by number


def test_closing_tries_a_store_that_fails_at_once_until_the_deadline(store: Store) -> None:
    """The README says a stopping worker tries the store for 15 s more; it gave up after ~5 s
    (no attempt started with less than ATTEMPT_SECONDS left)."""
    down = DownStore(store)
    recorder = Recorder(down, close_deadline=3.0)  # type: ignore[arg-type]
    recorder.record_check(check("queued"))
    started = time.monotonic()
    recorder.close()
    took = time.monotonic() - started
    # Waits of 0.2, 0.4, 0.8 s between attempts, then one just before the deadline.
    assert len(down.attempts) >= 5 and 2.9 <= took <= 3.5, (len(down.attempts), took)
    assert down.attempts[-1] - started >= 2.9


def test_closing_starts_no_attempt_the_deadline_cannot_cover(store: Store) -> None:
    """A slow failure (a SQLite lock waits 10 s) is not tried again with less time left than it took."""
    down = DownStore(store, seconds=1.2)
    recorder = Recorder(down, close_deadline=2.0)  # type: ignore[arg-type]
    recorder.record_check(check("queued"))
    started = time.monotonic()
    recorder.close()
    assert len(down.attempts) == 1 and time.monotonic() - started < 1.6
