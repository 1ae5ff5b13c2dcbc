"""Reports and ``/readyz`` while the store does not take the check log (service.feedback, service.ops).

A probe (2026-11-28) held the SQLite file locked, made a check, and reported it three seconds
later: the JSON report by ``check_id`` got 404 "no such check" (a permanent answer, for a check
only waiting to be written), an Akismet submit by ``guid`` alone was answered "Thanks" and not
stored, and ``/readyz`` said nothing of the outage. Here the store's check-log write fails (or
hangs) as a locked SQLite file makes it, while everything else of the store works.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import check_log_health
from service.akismet import THANKS
from service.app import get_state
from store import CheckRecord, StoreBusyError
from tests.conftest import TEST_SITE

HAM = {"comment_content": "Does this approach also work with Python 3.10, or do I need a newer version?"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class LockedCheckLog:
    """Makes the app's store fail every check-log write as a locked SQLite file does (at once,
    rather than after SQLite's 10 s), until :meth:`unlock`; or hang in it while ``hang`` is set."""

    def __init__(self, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
        state = get_state(app)
        assert state.store is not None and state.recorder is not None
        self.state, self.recorder = state, state.recorder
        self.real: Callable[[Iterable[CheckRecord]], None] = state.store.record_checks
        self.locked = True
        self.hang: threading.Event | None = None
        self.entered = threading.Event()
        monkeypatch.setattr(state.store, "record_checks", self.record_checks)

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        self.entered.set()
        if self.hang is not None:
            self.hang.wait(10)
        if self.locked:
            try:
                raise sqlite3.OperationalError("database is locked")
            except sqlite3.OperationalError as exc:
                raise StoreBusyError("sqlite error: database is locked") from exc
        self.real(records)

    def unlock(self) -> None:
        self.locked = False
        deadline = time.monotonic() + 10
        while not self.recorder.flush():  # the writer thread may be writing too: until all is in
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def wait_until_failing(self) -> None:
        deadline = time.monotonic() + 10
        while not self.recorder.store_unreachable:
            assert time.monotonic() < deadline, "the writer never tried the store"
            time.sleep(0.02)


@pytest.fixture
def locked(app: Flask, monkeypatch: pytest.MonkeyPatch) -> LockedCheckLog:
    return LockedCheckLog(app, monkeypatch)


def test_a_json_report_on_a_check_not_yet_written_is_retryable_then_links(
        client: FlaskClient, locked: LockedCheckLog) -> None:
    check_id = client.post("/api/v1/check", json=HAM).get_json()["check_id"]
    locked.wait_until_failing()
    report = client.post("/api/v1/feedback", json={"check_id": check_id, "label": "spam"})
    assert report.status_code == 503, report.get_json()  # was 404 "no such check"
    body = report.get_json()
    assert "store" in body["error"] and "again" in body["error"] and body["check_id"] == check_id
    locked.unlock()
    again = client.post("/api/v1/feedback", json={"check_id": check_id, "label": "spam"})
    assert again.status_code == 201 and again.get_json()["check_id"] == check_id


def test_a_report_on_a_check_held_in_a_write_that_hangs_answers_at_once(
        client: FlaskClient, locked: LockedCheckLog) -> None:
    # The writer's first attempt hangs on the lock (SQLite: up to 10 s): the recorder does not
    # know yet that the store is down. The report used to wait for that attempt, then make its
    # own (10 s more), and then say 404.
    locked.hang = threading.Event()
    try:
        check_id = client.post("/api/v1/check", json=HAM).get_json()["check_id"]
        assert locked.entered.wait(5)
        assert not locked.recorder.store_unreachable
        started = time.monotonic()
        report = client.post("/api/v1/feedback", json={"check_id": check_id, "label": "ham"})
        took = time.monotonic() - started
    finally:
        locked.hang.set()
    assert report.status_code == 503, report.get_json()
    assert took < 4.0, f"the report waited {took:.1f} s on the writer"


def test_an_akismet_submit_by_guid_alone_during_an_outage_asks_for_a_retry(
        client: FlaskClient, locked: LockedCheckLog, api_key: str) -> None:
    fields = {"api_key": api_key, "blog": TEST_SITE, "user_ip": "198.51.100.7"}
    checked = client.post("/1.1/comment-check", data=urlencode({**fields, **HAM}), headers=FORM)
    guid = checked.headers["X-akismet-guid"]
    locked.wait_until_failing()
    submit = client.post("/1.1/submit-ham", data=urlencode({**fields, "guid": guid}), headers=FORM)
    text = submit.get_data(as_text=True)
    # The answer the submit path gives for a store outage (the WordPress plugin retries it),
    # not "Thanks" with "not stored: no comment text, and no stored check for the guid".
    assert text.startswith("Temporarily unavailable") and submit.headers["X-akismet-error"] == text, text
    # With a comment's text, an unknown guid costs nothing: the report is about that text.
    other = {"comment_content": "A comment this worker checked long ago", "guid": "0" * 32}
    with_text = client.post("/1.1/submit-ham", data=urlencode({**fields, **other}), headers=FORM)
    assert with_text.get_data(as_text=True) == THANKS
    # Its own text, though, is that of a check still waiting to be written: retry, to link it.
    same_text = client.post("/1.1/submit-ham", data=urlencode({**fields, **HAM}), headers=FORM)
    assert same_text.get_data(as_text=True).startswith("Temporarily unavailable")
    locked.unlock()
    again = client.post("/1.1/submit-ham", data=urlencode({**fields, "guid": guid}), headers=FORM)
    assert again.get_data(as_text=True) == THANKS and again.headers["X-CommentGuard-Check-Id"] == guid


def test_an_unknown_check_id_is_still_404_while_the_check_log_is_written(client: FlaskClient) -> None:
    report = client.post("/api/v1/feedback", json={"check_id": "0" * 32, "label": "spam"})
    assert report.status_code == 404


def readyz(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/readyz")
    assert response.status_code == 200  # checks are answered: the instance stays in rotation
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def test_readyz_says_degraded_while_the_check_log_fails_and_ready_when_it_is_written_again(
        client: FlaskClient, locked: LockedCheckLog, monkeypatch: pytest.MonkeyPatch) -> None:
    client.post("/api/v1/check", json=HAM)
    locked.wait_until_failing()
    body = readyz(client)
    assert body["status"] == "ready"  # failing, but not for long yet
    assert body["check_log"]["status"] == "failing" and body["check_log"]["queued"] >= 1
    monkeypatch.setattr(check_log_health, "DEGRADED_AFTER_SECONDS", 0.0)
    body = readyz(client)
    assert body["status"] == "degraded"
    log = body["check_log"]
    assert log["error"] == "StoreBusyError: database is locked (OperationalError)"
    assert log["failing_seconds"] >= 0 and log["failed_attempts"] >= 1
    locked.unlock()
    body = readyz(client)
    assert body["status"] == "ready" and body["check_log"] == {"status": "writing", "queued": 0}
