"""Chunked request bodies (no Content-Length) against the size limit, on the real server (gunicorn).

werkzeug reads a chunked body up to the limit and stops without a word; a body
over it used to be parsed cut short (a JSON check answered "malformed JSON", an
Akismet call "invalid"). The Flask test client cannot send one the way gunicorn
hands it over, so these go to the session's live server.
"""
from __future__ import annotations

import json
from typing import Iterator
from urllib.parse import urlencode

import httpx

from tests.conftest import LiveServer

LIMIT = 64 * 1024  # the default COMMENTGUARD_MAX_BODY_BYTES


def chunked(body: bytes, size: int = 8192) -> Iterator[bytes]:
    """``body`` as an iterator, which httpx sends with ``Transfer-Encoding: chunked``."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


def json_body(length: int) -> bytes:
    """A check of exactly ``length`` bytes."""
    head, tail = b'{"comment_content": "', b'"}'
    return head + b"a" * (length - len(head) - len(tail)) + tail


def post(server: LiveServer, path: str, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(server.base_url + path, content=chunked(body), timeout=30,
                      headers={"Content-Type": content_type, **headers})


def test_a_chunked_json_body_over_the_limit_is_413(live_server: LiveServer) -> None:
    for length in (LIMIT + 1, 2_000_000):
        response = post(live_server, "/api/v1/check", json_body(length), "application/json",
                        Authorization=f"Bearer {live_server.key}")
        assert response.status_code == 413, (length, response.text)
        assert response.json()["max_body_bytes"] == LIMIT


def test_a_chunked_json_body_up_to_the_limit_is_checked(live_server: LiveServer) -> None:
    for length in (200, LIMIT):
        response = post(live_server, "/api/v1/check", json_body(length), "application/json",
                        Authorization=f"Bearer {live_server.key}")
        assert response.status_code == 200, (length, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        assert json.loads(response.text)["verdict"] in ("ham", "unsure", "spam", "discard")


def test_a_chunked_akismet_body_over_the_limit_is_refused_by_name(live_server: LiveServer) -> None:
    fields = urlencode({"api_key": live_server.key, "blog": "https://blog.example.org", "user_ip": "203.0.113.5"})
    body = (fields + "&comment_content=" + "a" * (LIMIT + 10)).encode()
    response = post(live_server, "/1.1/comment-check", body, "application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.text == f"Request body too large: at most {LIMIT} bytes."
    small = post(live_server, "/1.1/comment-check", (fields + "&comment_content=hello").encode(),
                 "application/x-www-form-urlencoded")
    assert small.text in ("true", "false")
