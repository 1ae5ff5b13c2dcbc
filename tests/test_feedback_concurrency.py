"""8 threads × 200 ``submit-spam`` calls through a live ``commentguard serve`` leave exactly 1,600 feedback rows.

On SQLite and on PostgreSQL (a throwaway database on
``COMMENTGUARD_TEST_DATABASE_URL``; skipped when that is unset). The server
is stopped with SIGTERM before the usage counters are read, so the test also
shows that the workers' queued counters are written on shutdown.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from service.akismet import THANKS
from store import current_month, open_store
from service.settings import load_or_create_secret_key
from tests.conftest import TEST_SITE, LiveServer, start_live_server

THREADS = 8
CALLS = 200


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path) -> Iterator[LiveServer]:
    database_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    live = start_live_server(tmp_path / "var", model_dir, database_url=database_url, workers=2)
    yield live
    live.stop()


@pytest.mark.slow
def test_concurrent_submit_spam_leaves_every_row(server: LiveServer) -> None:
    failures: list[str] = []
    barrier = threading.Barrier(THREADS)

    def work(thread: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            barrier.wait()
            for i in range(CALLS):
                body = urlencode({"api_key": server.key, "blog": TEST_SITE, "user_ip": f"198.51.100.{thread}",
                                  "comment_author": f"spammer {thread}",
                                  "comment_content": f"cheap pills {thread}-{i} http://bit.ly/p{i}"})
                try:
                    response = http.post("/1.1/submit-spam", content=body,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
                    if response.status_code != 200 or response.text != THANKS:
                        failures.append(f"{response.status_code} {response.text[:80]}")
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.stop()  # SIGTERM: the workers write their queued usage counters as they exit
    assert failures == []
    settings = server.settings
    secret = load_or_create_secret_key(settings.data_dir).encode("utf-8")
    with open_store(str(settings.database_url), secret=secret) as store:
        feedback = store.list_feedback(include_test=True)
        assert len(feedback) == THREADS * CALLS
        assert {f.label for f in feedback} == {"spam"} and {f.source for f in feedback} == {"akismet"}
        assert len({f.comment.comment_content for f in feedback}) == THREADS * CALLS
        (info,) = store.list_keys()
        assert store.usage(info.id, current_month())["missed_spam"] == THREADS * CALLS


REPORTS = 20


def test_reports_sent_right_after_their_check_find_it_whichever_worker_wrote_it(server: LiveServer) -> None:
    """Each worker queues its checks for 0.2 s; a report may reach the other worker first.

    Before it waited for checks on their way from another worker, 12 of 30 JSON reports sent
    right after their check got 404, and Akismet submits by guid alone were stored without
    the comment they were about. Every call here goes on a new connection, so the kernel
    spreads them over both workers.
    """
    auth = {"Authorization": f"Bearer {server.key}"}
    for i in range(REPORTS):
        text = f"Limited offer {i}: cheap replica watches at our shop"
        checked = httpx.post(server.base_url + "/api/v1/check", json={"comment_content": text}, headers=auth)
        report = httpx.post(server.base_url + "/api/v1/feedback", headers=auth,
                            json={"check_id": checked.json()["check_id"], "label": "spam"})
        assert report.status_code == 201, (i, report.text)
        assert report.json()["check_id"] == checked.json()["check_id"]
        form = {"api_key": server.key, "blog": TEST_SITE, "user_ip": "198.51.100.9",
                "comment_content": f"Akismet {text}"}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = httpx.post(server.base_url + "/1.1/comment-check", content=urlencode(form), headers=headers)
        guid = answer.headers["X-akismet-guid"]
        submit = httpx.post(server.base_url + "/1.1/submit-spam", headers=headers,
                            content=urlencode({"api_key": server.key, "blog": TEST_SITE, "guid": guid,
                                                "user_ip": "198.51.100.9"}))
        assert submit.text == THANKS
    server.stop()
    secret = load_or_create_secret_key(server.settings.data_dir).encode("utf-8")
    with open_store(str(server.settings.database_url), secret=secret) as store:
        feedback = store.list_feedback(include_test=True)
    assert len(feedback) == 2 * REPORTS
    assert all(f.check_id for f in feedback), [f.check_id for f in feedback]
    akismet = [f for f in feedback if f.source == "akismet"]
    assert sorted(f.comment.comment_content for f in akismet) == sorted(
        f"Akismet Limited offer {i}: cheap replica watches at our shop" for i in range(REPORTS))
