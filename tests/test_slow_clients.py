"""Slow and idle clients cannot hold the server's threads (service/gthread_worker.py).

With gunicorn's own gthread worker, four connections that sent nothing, or sent their
request a byte a second, took every thread of the default 2 workers x 2 threads: a real
check waited 10-25 s or timed out. The live-server tests open more such connections than
the server has threads and check that a real check is still answered, each kind on its own.
"""
from __future__ import annotations

import json
import re
import socket
import time
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlencode

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
    # Over the limit: refused before the client sends it (no 100 Continue, no thread waiting).
    over = gw.assess(head(f"Content-Length: {LIMIT + 1}", "Expect: 100-continue"), LIMIT)
    assert over.kind == "over" and over.discard == 0
    # HTTP/1.0 must ignore it: its body is awaited like any other (it went to a thread, which
    # then waited on the client).
    old = head("Content-Length: 4", "Expect: 100-continue").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    assert gw.assess(old, LIMIT).kind == "wait" and gw.assess(old + b"abcd", LIMIT).kind == "ready"
    # Chunked: the interim answer, then the chunks are awaited here too.
    chunked = head("Transfer-Encoding: chunked", "Expect: 100-continue")
    assert gw.assess(chunked, LIMIT).kind == "continue"
    assert gw.assess(gw.drop_continue_line(chunked) + b"2\r\nab\r\n", LIMIT).kind == "wait"


@pytest.mark.parametrize("size", [b"-6", b"+5", b"0x5", b"1_0", b" ", b"f" * 17])
def test_a_chunk_size_that_is_not_plain_hex_goes_to_the_parser(size: bytes) -> None:
    """int(x, 16) takes "-6": a size of minus the line's length sent the parse back to where it
    started, and the worker's main loop spun at 100% until gunicorn killed it (30 s)."""
    request = head("Transfer-Encoding: chunked") + size + b"\r\n"
    assert gw.assess(request, LIMIT).kind == "ready"


def test_a_chunked_body_is_parsed_once_however_many_reads_it_takes() -> None:
    """Re-reading the whole body on every read made 64 KiB of 1-byte chunks take 1.9 s."""
    request = head("Transfer-Encoding: chunked")
    cursor = gw.ChunkCursor()
    buf = bytearray(request)
    for _ in range(3000):
        buf += b"1\r\nx\r\n"
        assert gw.assess(buf, LIMIT, cursor).kind == "wait"
    assert cursor.body == 3000 and cursor.pos == len(buf)
    buf += b"0\r\n\r\n"
    assert gw.assess(buf, LIMIT, cursor).kind == "ready"


def test_framing_that_outgrows_the_body_is_not_buffered_without_end() -> None:
    request = head("Transfer-Encoding: chunked") + b"1\r\nx\r\n0\r\n"
    trailers = b"".join(b"X-T%d: v\r\n" % i for i in range(gw.MAX_BUFFERED_HEAD // 8))
    assert gw.assess(request + trailers, LIMIT).kind == "ready"


def test_a_bare_line_feed_head_ends_at_its_first_blank_line() -> None:
    request = b"POST /api/v1/check HTTP/1.1\nHost: x\nContent-Length: 8\n\nab\r\n\r\ncd"
    assert gw.assess(request, LIMIT).kind == "ready"  # not a wait for 8 bytes after the CRLFs


def test_an_answer_the_client_does_not_take_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients that never read their answers held every thread (stock gthread too)."""
    monkeypatch.setattr(gw, "WRITE_SECONDS", 0.2)
    ours, theirs = socket.socketpair()
    try:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        with pytest.raises(BrokenPipeError):
            gw.DeadlineSocket(ours).sendall(b"x" * 10_000_000)
    finally:
        ours.close()
        theirs.close()


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
    # The body was thrown away as it came, and what followed it with it: the answer says the
    # connection closes (it said keep-alive, and clients' next request on it failed).
    assert response.headers["connection"] == "close"
    assert check(live_server).status_code == 200  # the server goes on as before


def test_a_request_pipelined_a_byte_at_a_time_is_timed_out_not_served_by_a_held_thread(
        live_server: LiveServer) -> None:
    port = int(live_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nG")
        sock.settimeout(gw.REQUEST_ARRIVAL_SECONDS + 10)
        answer = b""
        started = time.monotonic()
        while chunk := sock.recv(4096):
            answer += chunk
            if time.monotonic() - started < gw.REQUEST_ARRIVAL_SECONDS - 2:
                try:
                    sock.sendall(b"E")  # dripping the next request's line
                except OSError:
                    break
    assert answer.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 " in answer


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


def test_each_api_has_its_own_body_limit_in_the_main_loop() -> None:
    """Akismet takes 512 KiB (the WordPress plugin sends a comment twice, encoded), the JSON API
    64 KiB: the main loop buffers no more than a request's own API takes, and the largest for a
    target it cannot place, so that the app never waits for a body it threw away."""
    worker = object.__new__(gw.BufferedThreadWorker)
    worker.body_limit, worker.largest_body_limit = LIMIT, 8 * LIMIT
    assert worker.limit_for(b"POST /api/v1/check HTTP/1.1\r\n") == LIMIT
    assert worker.limit_for(b"POST /1.1/comment-check HTTP/1.1\r\n") == 8 * LIMIT
    assert worker.limit_for(b"POST /1.2/key-sites HTTP/1.1\r\n") == 8 * LIMIT
    assert worker.limit_for(b"POST http://x/1.1/comment-check HTTP/1.1\r\n") == 8 * LIMIT
    # Targets the app may still route to an Akismet view (a probe's: a base URL ending in "/",
    # percent-encoding, a SCRIPT_NAME prefix) were given the JSON limit and their bodies lost.
    for target in (b"//1.1/comment-check", b"/%31.1/comment-check", b"/cg/1.1/comment-check"):
        assert worker.limit_for(b"POST " + target + b" HTTP/1.1\r\n") == 8 * LIMIT
    assert worker.limit_for(b"POST /api/v1/ch") == LIMIT  # the target is known from its start
    assert worker.limit_for(b"POS") == 8 * LIMIT  # not yet: the larger one until it is
    body = b"x" * (LIMIT * 2)
    json_head = b"POST /api/v1/check HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body)
    form_head = b"POST /1.1/comment-check HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert gw.assess(json_head, worker.limit_for(json_head)).kind == "over"
    assert gw.assess(form_head + body, worker.limit_for(form_head)).kind == "ready"


def _exchange(server: LiveServer, request: bytes, sock: socket.socket) -> bytes:
    """Send ``request`` and read one whole answer (its head and Content-Length body)."""
    sock.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_large_body_a_view_leaves_unread_keeps_the_connection_for_the_next_request(
        live_server: LiveServer) -> None:
    """gunicorn reads at most 64 KiB of an unread body, then closes the connection after an answer
    that said keep-alive: with Akismet's 512 KiB limit, a probe's next request was lost."""
    port = int(live_server.base_url.rsplit(":", 1)[1])
    body = b"x" * (100 * 1024)
    unread = (b"POST /1.1/test HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body)) + body
    verify = urlencode({"key": live_server.key, "blog": "https://blog.example.org"}).encode()
    follow = (b"POST /1.1/verify-key HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: %d\r\n\r\n" % len(verify)) + verify
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        first = _exchange(live_server, unread, sock)
        assert first.startswith(b"HTTP/1.1 200") and b"close" not in first.lower()
        assert _exchange(live_server, follow, sock).startswith(b"HTTP/1.1 200")


def test_an_expected_body_over_the_limit_gets_no_100_continue(live_server: LiveServer) -> None:
    port = int(live_server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(post_head(live_server, f"Content-Length: {LIMIT * 2}", "Expect: 100-continue"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
