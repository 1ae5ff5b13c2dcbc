"""The real PyPI ``akismet`` client (25.x) against the service, unchanged.

Twice over: in-process through ``httpx.WSGITransport``, and against a live
``commentguard serve`` (the session's :func:`live_server`) through a transport
that rewrites ``https://rest.akismet.com`` to the server's address. The client
is given an ``httpx.Client`` with the client's own default timeout (1 s), so
an answer slower than that fails the test.

One client limitation: ``SyncClient.key_sites()`` in 25.10 sends no
``api_key`` (its ``usage_limit()`` does). The service requires a key there as
Akismet does, so the tests give the client's ``httpx.Client`` a default
``api_key`` query parameter, an ordinary httpx setting a user can apply too;
:func:`test_key_sites_without_the_workaround` pins the limitation down.
"""
from __future__ import annotations

import secrets
import time
from typing import Any, Callable, Iterator

import akismet
import httpx
import pytest
from flask import Flask

from service.app import get_state
from service.settings import load_or_create_secret_key
from store import current_month, open_store
from tests.conftest import TEST_SITE, LiveServer

HAM_TEXT = "Thanks for the clear explanation, it helped me fix my build."
SPAM_TEXT = "Buy cheap viagra online now!!! click http://bit.ly/cheap-pills"
CLIENT_TIMEOUT = 1.0  # the client's own default (PYTHON_AKISMET_TIMEOUT)


class RewriteTransport(httpx.BaseTransport):
    """Sends every request to ``base_url`` instead of the host the client named."""

    def __init__(self, base_url: str) -> None:
        self.target = httpx.URL(base_url)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host,
                                            port=self.target.port)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class Target:
    """Where a client goes: a transport factory, the key, and (in-process) the app."""

    def __init__(self, name: str, key: str, transport: Callable[[], httpx.BaseTransport],
                 app: Flask | None = None, server: LiveServer | None = None) -> None:
        self.name, self.key, self.transport, self.app = name, key, transport, app
        self.server = server

    def http_client(self, *, key_param: str | None = None) -> httpx.Client:
        params = {"api_key": key_param} if key_param else None
        return httpx.Client(transport=self.transport(), timeout=CLIENT_TIMEOUT, params=params,
                            headers={"User-Agent": akismet.USER_AGENT})

    def client(self, key: str | None = None) -> akismet.SyncClient:
        key = key or self.key
        return akismet.SyncClient(config=akismet.Config(key=key, url=TEST_SITE),
                                  http_client=self.http_client(key_param=key))


@pytest.fixture(params=["wsgi", "live"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "wsgi":
        app: Flask = request.getfixturevalue("app")
        key: str = request.getfixturevalue("api_key")
        yield Target("wsgi", key, lambda: httpx.WSGITransport(app=app), app)
    else:
        server: LiveServer = request.getfixturevalue("live_server")
        yield Target("live", server.key, lambda: RewriteTransport(server.base_url), server=server)


def test_validated_client_and_verify_key(target: Target) -> None:
    client = akismet.SyncClient.validated_client(
        config=akismet.Config(key=target.key, url=TEST_SITE), http_client=target.http_client())
    assert client.verify_key() is True
    assert client.verify_key("0123456789ab", TEST_SITE) is False


def test_comment_check_verdicts(target: Target) -> None:
    client = target.client()
    ham = client.comment_check("203.0.113.5", comment_content=HAM_TEXT, comment_author="Ann",
                               comment_type="comment", user_agent="Mozilla/5.0")
    spam = client.comment_check("203.0.113.6", comment_content=SPAM_TEXT, comment_type="comment")
    discard = client.comment_check("203.0.113.7", comment_content=SPAM_TEXT, comment_author_url="http://bit.ly/x")
    assert ham is akismet.CheckResponse.HAM
    assert spam is akismet.CheckResponse.SPAM
    assert discard is akismet.CheckResponse.DISCARD


def test_comment_check_test_values(target: Target) -> None:
    client = target.client()
    assert client.comment_check("203.0.113.8", comment_content=HAM_TEXT,
                                comment_author="akismet-guaranteed-spam") is akismet.CheckResponse.SPAM
    assert client.comment_check("203.0.113.8", comment_content=HAM_TEXT,
                                comment_author_email="akismet-guaranteed-spam@example.com")
    assert client.comment_check("203.0.113.8", comment_content=SPAM_TEXT, comment_author_url="http://bit.ly/x",
                                user_role="administrator") is akismet.CheckResponse.HAM
    assert client.comment_check("203.0.113.8", comment_content=HAM_TEXT, is_test=True,
                                comment_context="python", blog_charset="UTF-8",
                                blog_lang="en, fr_ca") is akismet.CheckResponse.HAM


def test_submit_spam_and_ham(target: Target) -> None:
    client = target.client()
    assert client.submit_spam("203.0.113.9", comment_content=SPAM_TEXT, comment_author="Deals") is True
    assert client.submit_ham("203.0.113.9", comment_content=HAM_TEXT, comment_author="Ann") is True
    if target.app is not None:
        store = get_state(target.app).store
        assert store is not None
        assert [f.label for f in store.list_feedback()] == ["spam", "ham"]


def test_usage_limit_and_key_sites(target: Target) -> None:
    client = target.client()
    before = client.usage_limit()
    client.comment_check("203.0.113.10", comment_content=HAM_TEXT)
    client.comment_check("203.0.113.10", comment_content=SPAM_TEXT)
    after = client.usage_limit()
    assert after["limit"] == "none" and after["throttled"] is False and after["percentage"] == "0.00"
    if target.app is not None:  # the live server's other worker may still hold its counters (<0.2 s)
        assert after["usage"] == before["usage"] + 2
    sites = client.key_sites()
    month = current_month()
    assert isinstance(sites, dict) and sites["total"] == 1
    (site,) = sites[month]
    assert site["site"] == TEST_SITE and site["api_calls"] >= 2 and site["is_revoked"] is False
    csv_text = client.key_sites(month=month, result_format="csv")
    assert isinstance(csv_text, str) and csv_text.splitlines()[2].startswith(TEST_SITE + ",")


def test_key_sites_without_the_workaround(target: Target) -> None:
    client = akismet.SyncClient(config=akismet.Config(key=target.key, url=TEST_SITE),
                                http_client=target.http_client())
    with pytest.raises(akismet.APIKeyError):
        client.key_sites()  # akismet 25.10 sends no api_key here; a fixed client would pass


def test_wrong_key_raises_the_key_error(target: Target) -> None:
    with pytest.raises(akismet.APIKeyError):
        akismet.SyncClient.validated_client(config=akismet.Config(key="0123456789ab", url=TEST_SITE),
                                            http_client=target.http_client())
    client = target.client(key="0123456789ab")
    calls: list[Callable[[], Any]] = [
        lambda: client.comment_check("203.0.113.11", comment_content=HAM_TEXT),
        lambda: client.submit_spam("203.0.113.11", comment_content=SPAM_TEXT),
        lambda: client.submit_ham("203.0.113.11", comment_content=HAM_TEXT),
        client.usage_limit,
        client.key_sites,
    ]
    for call in calls:
        with pytest.raises(akismet.APIKeyError):
            call()


def test_checks_from_the_client_are_logged(target: Target) -> None:
    content = f"{HAM_TEXT} (log check {secrets.token_hex(4)})"
    target.client().comment_check("203.0.113.12", comment_content=content, is_test=True)
    query = "SELECT id, is_test, surface FROM checks WHERE comment_content = ?"
    if target.app is not None:
        state = get_state(target.app)
        assert state.recorder is not None and state.store is not None
        state.recorder.flush()
        rows = state.store.database.read(lambda tx: tx.fetchall(query, (content,)))
    else:  # the live server writes its check log from a background thread within ~0.2 s
        assert target.server is not None
        settings = target.server.settings
        secret = load_or_create_secret_key(settings.data_dir).encode()
        with open_store(str(settings.database_url), secret=secret) as store:
            deadline = time.monotonic() + 10
            rows = []
            while not rows and time.monotonic() < deadline:
                rows = store.database.read(lambda tx: tx.fetchall(query, (content,)))
                time.sleep(0.1)
    (check,) = rows
    assert check["surface"] == "akismet" and bool(check["is_test"]) is True
