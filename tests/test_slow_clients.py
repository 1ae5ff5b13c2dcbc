"""Slow and idle clients cannot hold the server's threads (service/gthread_worker.py).

With gunicorn's own gthread worker, four connections that sent nothing, or sent their
request a byte a second, took every thread of the default 2 workers x 2 threads: a real
check waited 10-25 s or timed out. The live-server tests open more such connections than
the server has threads and check that a real check is still answered, each kind on its own.
"""
from __future__ import annotations

import json
import socket
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest

from service import gthread_worker as gw
from tests.conftest import LiveServer

LIMIT = 64 * 1024

# -- when has a request arrived (the main loop's decision) -------------------------------------


def head(*lines: str) -> bytes:
    return ("\r\n".join(("POST /api/v1/check HTTP/1.1", "Host: x", *lines)) + "\r\n\r\n").encode()


def test_a_head_without_its_end_is_awaited_and_an_endless_one_goes_to_the_parser() -> None:
    assert gw.assess(b"GET /healthz HTTP/1.1\r\nHost: x\r\n", LIMIT).kind == "wait"
    assert gw.assess(b"GET /healthz HTTP/1.1\r\n" + b"X" * gw.MAX_BUFFERED_HEAD, LIMIT).kind == "ready"
    assert gw.assess(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", LIMIT).kind == "ready"


def test_a_declared_body_is_awaited_in_full() -> None:
    request = head("Content-Length: 10")
    assert gw.assess(request + b"123456789", LIMIT).kind == "wait"
    assert gw.assess(request + b"1234567890", LIMIT).kind == "ready"


def test_a_body_over_the_limit_is_thrown_away_as_it_comes_up_to_the_drain_limit() -> None:
    request = head(f"Content-Length: {LIMIT + 1}")
    arrival = gw.assess(request + b"abc", LIMIT)
    assert arrival.kind == "over" and arrival.discard == LIMIT + 1 - 3
    huge = gw.assess(head("Content-Length: 999999999999"), LIMIT)
    assert huge.kind == "over" and huge.discard == gw.DRAIN_LIMIT


def test_a_chunked_body_is_awaited_to_its_last_chunk_and_refused_past_the_limit() -> None:
    request = head("Transfer-Encoding: chunked")
    assert gw.assess(request + b"5\r\nhello\r\n", LIMIT).kind == "wait"
    assert gw.assess(request + b"5\r\nhello\r\n0\r\n", LIMIT).kind == "wait"
    assert gw.assess(request + b"5\r\nhello\r\n0\r\n\r\n", LIMIT).kind == "ready"
    assert gw.assess(request + b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: y\r\n\r\n", LIMIT).kind == "ready"
    over = f"{LIMIT + 1:x}\r\n".encode()
    assert gw.assess(request + over + b"a" * LIMIT, LIMIT).kind == "wait"  # the app must see more
    assert gw.assess(request + over + b"a" * (LIMIT + 1), LIMIT).kind == "ready"
    assert gw.assess(request + b"zz\r\n", LIMIT).kind == "ready"  # malformed: the parser refuses it


def test_heads_the_parser_must_refuse_go_straight_to_it() -> None:
    for lines in (("Content-Length: 5", "Content-Length: 5"), ("Content-Length: -1",),
                  ("Transfer-Encoding: gzip",), ("Content-Length: 5", "Transfer-Encoding: chunked"),
                  ("Expect: something-else",)):
        assert gw.assess(head(*lines), LIMIT).kind == "ready", lines


def test_expect_continue_gets_its_interim_answer_from_the_main_loop_without_a_second_one() -> None:
    request = head("Content-Length: 4", "Expect: 100-continue")
    assert gw.assess(request, LIMIT).kind == "continue"
    without = gw.drop_continue_line(request)
    assert b"expect" not in without.lower() and b"Content-Length: 4" in without
    assert gw.assess(without, LIMIT).kind == "wait"
    assert gw.assess(without + b"abcd", LIMIT).kind == "ready"
    # Over the limit, or HTTP/1.0 (which must ignore it): the thread's parser deals with it.
    assert gw.assess(head(f"Content-Length: {LIMIT + 1}", "Expect: 100-continue"), LIMIT).kind == "ready"
    old = head("Content-Length: 4", "Expect: 100-continue").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    assert gw.assess(old, LIMIT).kind == "ready"


# -- against the real server ------------------------------------------------------------------

ATTACKERS = 12  # three times the default server's threads (2 workers x 2)


def check(server: LiveServer, timeout: float = 8.0) -> httpx.Response:
    """A real check, with a client timeout under the 10 s a slow request may take to arrive."""
    return httpx.post(server.base_url + "/api/v1/check", timeout=timeout,
                      json={"comment_content": "Thanks, the second example cleared it up for me."},
                      headers={"Authorization": f"Bearer {server.key}"})


@contextmanager
def slow_connections(server: LiveServer, first_bytes: bytes) -> Iterator[list[socket.socket]]:
    port = int(server.base_url.rsplit(":", 1)[1])
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(ATTACKERS)]
    try:
        for sock in socks:
            if first_bytes:
                sock.sendall(first_bytes)
        time.sleep(0.3)  # let the server take them all before the real check
        yield socks
    finally:
        for sock in socks:
            sock.close()


def post_head(server: LiveServer, *lines: str) -> bytes:
    return ("\r\n".join(("POST /api/v1/check HTTP/1.1", "Host: x", f"Authorization: Bearer {server.key}",
                         "Content-Type: application/json", *lines)) + "\r\n\r\n").encode()


@pytest.mark.parametrize("kind", ["idle", "half a head", "half a body", "a chunked body begun",
                                  "a body over the limit begun"])
def test_connections_holding_back_their_request_do_not_hold_up_a_check(live_server: LiveServer,
                                                                       kind: str) -> None:
    first = {
        "idle": b"",
        "half a head": b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        "half a body": post_head(live_server, "Content-Length: 60000") + b'{"comment_content": "',
        "a chunked body begun": post_head(live_server, "Transfer-Encoding: chunked") + b"1\r\n{\r\n",
        "a body over the limit begun": post_head(live_server, "Content-Length: 16000000") + b"{",
    }[kind]
    with slow_connections(live_server, first):
        response = check(live_server)
        assert response.status_code == 200 and response.json()["verdict"] in ("ham", "unsure")


def test_a_request_that_does_not_arrive_in_time_gets_408_and_the_connection_is_closed(
        live_server: LiveServer) -> None:
    port = int(live_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post_head(live_server, "Content-Length: 100") + b'{"comment_content": "slow')
        sock.settimeout(gw.REQUEST_ARRIVAL_SECONDS + 10)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_body_over_the_limit_sent_in_full_still_gets_its_413(live_server: LiveServer) -> None:
    body = json.dumps({"comment_content": "x" * (LIMIT * 3)}).encode()
    response = httpx.post(live_server.base_url + "/api/v1/check", content=body, timeout=30,
                          headers={"Authorization": f"Bearer {live_server.key}",
                                   "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["max_body_bytes"] == LIMIT
    assert check(live_server).status_code == 200  # the server goes on as before


def test_expect_continue_clients_get_one_interim_answer_then_the_verdict(live_server: LiveServer) -> None:
    port = int(live_server.base_url.rsplit(":", 1)[1])
    body = json.dumps({"comment_content": "Which version added this option?"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(post_head(live_server, f"Content-Length: {len(body)}", "Expect: 100-continue",
                               "Connection: close"))
        interim = sock.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"100 Continue") == 0
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["verdict"] == "ham"
