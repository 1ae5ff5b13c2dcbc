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
AKISMET_LIMIT = 512 * 1024  # the default COMMENTGUARD_AKISMET_MAX_BODY_BYTES


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
    body = (fields + "&comment_content=" + "a" * (AKISMET_LIMIT + 10)).encode()
    response = post(live_server, "/1.1/comment-check", body, "application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.text == f"Request body too large: at most {AKISMET_LIMIT} bytes."
    small = post(live_server, "/1.1/comment-check", (fields + "&comment_content=hello").encode(),
                 "application/x-www-form-urlencoded")
    assert small.text in ("true", "false")


def raw_exchange(server: LiveServer, request: bytes) -> bytes:
    import socket

    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_a_malformed_chunked_body_is_a_client_error_not_a_500(live_server: LiveServer) -> None:
    """It was a 500 (Akismet: "internal error") and an ERROR with a stack trace in the log."""
    for path, content_type in (("/api/v1/check", "application/json"),
                               ("/1.1/comment-check", "application/x-www-form-urlencoded")):
        answer = raw_exchange(live_server, (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {live_server.key}\r\n"
            f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            "zz\r\nabc\r\n0\r\n\r\n").encode())
        status = answer.split(b" ", 2)[1]
        if path.startswith("/api"):
            assert status == b"400" and b"malformed or incomplete" in answer, answer[:300]
        else:
            assert status == b"200" and b"Invalid request: the request body is malformed" in answer, answer[:300]
    log = (live_server.settings.data_dir / "server.log").read_text()
    assert "InvalidChunkSize" not in log
