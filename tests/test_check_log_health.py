"""A check log that cannot be written is visible: its log lines, its metrics, and every worker's ``/readyz``.

A probe (2026-11-28) ran minutes of disk-full, lock and TMPDIR failures: ``/readyz`` stayed 200
with nothing to say, ``/metrics`` had no figure for checks queued, failed or dropped
(``commentguard_checks_total`` counted checks lost at SIGTERM as recorded), the log said only
``StoreDatabaseError`` and nothing when writing resumed.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import psycopg
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from model.comment import Comment
from model.verdict import Reason, Verdict
from service import check_log_health, metrics, readiness
from service.app import get_state
from service.recorder import Recorder
from store import CheckRecord, StoreBusyError, StoreDatabaseError, StoreDataError, StoreUnavailableError
from store.error_text import error_text

EMAIL = "joe.reader@example.org"


def sqlite_error(tmp_path: Path, kind: str) -> sqlite3.Error:
    """A real error of SQLite's: ``locked``, ``full`` or ``readonly``."""
    path = str(tmp_path / f"{kind}.db")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE t (x)")
    try:
        if kind == "locked":
            setup.execute("BEGIN IMMEDIATE")
            sqlite3.connect(path, timeout=0, isolation_level=None).execute("BEGIN IMMEDIATE")
        elif kind == "full":
            setup.execute("PRAGMA max_page_count=3")
            for _ in range(10):
                setup.execute("INSERT INTO t VALUES (?)", (b"x" * 4000,))
        else:
            sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute("INSERT INTO t VALUES (1)")
    except sqlite3.Error as exc:
        return exc
    raise AssertionError(f"SQLite did not fail ({kind})")


def wrapped(kind: type[Exception], cause: BaseException) -> Exception:
    """``kind`` raised from ``cause``, as the store wraps a driver's error."""
    try:
        raise kind(f"sqlite error: {cause}") from cause
    except kind as exc:
        return exc


@pytest.mark.parametrize(("kind", "store_error", "expected"), [
    ("locked", StoreBusyError, "StoreBusyError: database is locked (SQLITE_BUSY)"),
    ("full", StoreDatabaseError, "StoreDatabaseError: database or disk is full (SQLITE_FULL)"),
    ("readonly", StoreDatabaseError, "StoreDatabaseError: attempt to write a readonly database (SQLITE_READONLY)"),
])
def test_sqlites_own_words_are_named(tmp_path: Path, kind: str, store_error: type[Exception], expected: str) -> None:
    assert error_text(wrapped(store_error, sqlite_error(tmp_path, kind))) == expected


def test_words_that_may_quote_data_are_left_out() -> None:
    quoting = sqlite3.OperationalError(f'near "{EMAIL}": syntax error')
    assert error_text(wrapped(StoreDatabaseError, quoting)) == "StoreDatabaseError (OperationalError)"
    duplicate = psycopg.errors.UniqueViolation(
        f'duplicate key value violates unique constraint "x"\nDETAIL:  Key (email)=({EMAIL}) already exists.')
    assert error_text(wrapped(StoreDataError, duplicate)) == \
        "StoreDataError (psycopg UniqueViolation, SQLSTATE 23505)"
    refused = psycopg.OperationalError('connection to server at "10.1.2.3", port 5432 failed: Connection refused')
    assert error_text(wrapped(StoreUnavailableError, refused)) == \
        "StoreUnavailableError: Connection refused (psycopg OperationalError)"
    assert error_text(psycopg.errors.DiskFull("could not extend file")) == "DiskFull (psycopg DiskFull, SQLSTATE 53100)"
    assert error_text(ValueError(EMAIL)) == "ValueError"


def check(content: str) -> CheckRecord:
    verdict = Verdict("ham", 0.1, (Reason("no links in the text", -2.0),), "m-1")
    return CheckRecord.from_verdict(Comment(comment_content=content), verdict, surface="json")


class FullDisk:
    """A store whose disk is full while ``full``, with SQLite's own error; it refuses ``refused`` text."""

    def __init__(self, error: sqlite3.Error) -> None:
        self.error = error
        self.full = True
        self.written: list[str] = []

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        records = list(records)
        time.sleep(0.01)
        if any("refused" in r.comment.comment_content for r in records):
            raise StoreDataError("sqlite error: refused")
        if self.full:
            raise wrapped(StoreDatabaseError, self.error)
        self.written += [r.id for r in records]


def test_a_failed_write_says_why_and_writing_again_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FullDisk(sqlite_error(tmp_path, "full"))
    recorder = Recorder(store)  # type: ignore[arg-type]
    recorder.record_check(check(f"mail me at {EMAIL}"))
    with caplog.at_level(logging.WARNING):
        assert recorder.flush() is False
        store.full = False
        recorder.record_check(check("another"))
        assert recorder.flush() is True
    messages = [r.getMessage() for r in caplog.records]
    assert "writing 1 checks failed (StoreDatabaseError: database or disk is full (SQLITE_FULL)); kept for " \
           "the next attempt (1 queued)" in messages
    resumed = [m for m in messages if m.startswith("the check log is being written again")]
    assert len(resumed) == 1 and "1 failed attempts" in resumed[0] and "database or disk is full" in resumed[0]
    assert EMAIL not in caplog.text


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def test_metrics_count_checks_written_lost_and_failed_writes(tmp_path: Path) -> None:
    before = scrape()
    store = FullDisk(sqlite_error(tmp_path, "full"))
    recorder = Recorder(store, max_pending=5, close_deadline=0.0)  # type: ignore[arg-type]
    for i in range(7):  # two over the queue's bound
        recorder.record_check(check(f"comment {i}"))
    assert recorder.flush() is False
    failing = scrape()

    def moved(sample: dict[Any, float], name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return sample.get(key, 0.0) - before.get(key, 0.0)

    assert moved(failing, "commentguard_check_log_write_failures_total") == 1
    assert moved(failing, "commentguard_check_log_lost_total", reason="queue_full") == 2
    assert failing[("commentguard_check_log_queued", ())] == 5
    assert failing[("commentguard_check_log_failing_seconds", ())] > 0
    store.full = False
    assert recorder.flush() is True
    recorder.record_check(check("refused by the store"))
    assert recorder.flush() is False  # the refused one
    written = scrape()
    assert moved(written, "commentguard_check_log_written_total") == 5
    assert moved(written, "commentguard_check_log_lost_total", reason="refused") == 1
    assert written[("commentguard_check_log_queued", ())] == 0
    assert written[("commentguard_check_log_failing_seconds", ())] == 0
    store.full = True
    for i in range(3):
        recorder.record_check(check(f"at the end {i}"))
    recorder.close()  # the store still full, and no spool directory: lost, and counted so
    assert moved(scrape(), "commentguard_check_log_lost_total", reason="shutdown") == 3


@pytest.fixture
def server_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A server's shared directory (as ``commentguard serve`` makes one) for readiness files."""
    directory = tmp_path / "server"
    directory.mkdir()
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    return directory


@pytest.fixture
def other_worker(server_dir: Path) -> Iterator[int]:
    """The pid of a live process standing for another worker of the server."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_another_workers_failing_check_log_makes_readyz_say_degraded(
        app: Flask, server_dir: Path, other_worker: int) -> None:
    client = app.test_client()
    assert client.get("/readyz").get_json()["status"] == "ready"
    since = time.time() - check_log_health.DEGRADED_AFTER_SECONDS - 5
    (server_dir / f"ready-{other_worker}.json").write_text(json.dumps(
        {"ready": True, "reason": None, "check_log_failing_since": since,
         "check_log_error": "StoreDatabaseError: database or disk is full (SQLITE_FULL)"}))
    answer = client.get("/readyz")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "degraded" and body["check_log"]["status"] == "writing"
    (failing,) = body["check_log"]["workers_failing"]
    assert failing["pid"] == other_worker and failing["failing_seconds"] >= 35
    assert failing["error"] == "StoreDatabaseError: database or disk is full (SQLITE_FULL)"


def test_a_worker_publishes_its_check_log_failing_and_writing_again(
        app: Flask, server_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    state = get_state(app)
    assert state.recorder is not None and state.store is not None
    error = sqlite_error(tmp_path, "locked")
    down = {"now": True}
    real = state.store.record_checks

    def record_checks(records: Iterable[CheckRecord]) -> None:
        if down["now"]:
            raise wrapped(StoreBusyError, error)
        real(records)

    monkeypatch.setattr(state.store, "record_checks", record_checks)
    app.test_client().post("/api/v1/check", json={"comment_content": "a comment to log"})
    own = server_dir / f"ready-{os.getpid()}.json"

    def published() -> dict[str, Any]:
        data = json.loads(own.read_text())
        assert isinstance(data, dict)
        return data

    deadline = time.monotonic() + 10
    while not (own.exists() and published()["check_log_failing_since"]):
        assert time.monotonic() < deadline, "the failing check log was never published"
        time.sleep(0.02)
    assert published()["check_log_error"] == "StoreBusyError: database is locked (SQLITE_BUSY)"
    assert readiness.others_check_log_failing() == []  # its own file is not "another worker"
    down["now"] = False
    while published()["check_log_failing_since"] is not None:
        assert time.monotonic() < deadline + 10, "writing again was never published"
        time.sleep(0.02)


def test_a_report_by_id_is_retryable_while_another_worker_cannot_write_its_check_log(
        app: Flask, server_dir: Path, other_worker: int) -> None:
    # The check may be in that worker's queue: "no such check" would be a permanent answer.
    client = app.test_client()
    unknown = {"check_id": "0" * 32, "label": "spam"}
    assert client.post("/api/v1/feedback", json=unknown).status_code == 404
    (server_dir / f"ready-{other_worker}.json").write_text(json.dumps(
        {"ready": True, "reason": None, "check_log_failing_since": time.time() - 3,
         "check_log_error": "StoreBusyError: database is locked (SQLITE_BUSY)"}))
    answer = client.post("/api/v1/feedback", json=unknown)
    assert answer.status_code == 503 and "again later" in answer.get_json()["error"]
