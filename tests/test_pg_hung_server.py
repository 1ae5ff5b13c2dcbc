"""A PostgreSQL server that stops answering with its connections open: bounded by the answer deadline.

A probe (2026-11-28) stopped a proxy between the service and PostgreSQL. The kernel kept
acknowledging packets, so no TCP setting ended libpq's waits: the check log's writer waited
without failing, and reports by check id held every thread of a worker, so that a check went
unanswered for 30 s. Here a proxy in the test process freezes the same way (it stops moving
bytes; connections stay open, new ones are accepted and left unanswered). The liveness bounds
are generous (a loaded 2-core machine); without the deadline the waits never end.
"""
from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from store import StoreTimeoutError, StoreUnavailableError, open_store
from store.answer_deadline import AnswerDeadlines
from tests.conftest import start_live_server

SECRET = secrets.token_bytes(32)


class FreezableProxy:
    """A TCP proxy to one address that can stop moving bytes without closing anything."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.moving = threading.Event()
        self.moving.set()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.moving.clear()

    def thaw(self) -> None:
        self.moving.set()

    def close(self) -> None:
        self._closed = True
        self.moving.set()
        for sock in [self.listener, *self._sockets]:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            # Frozen: the connection is accepted (as a hung server's kernel does) and left unanswered.
            self.moving.wait()
            if self._closed:
                return
            server = socket.create_connection(self.target)
            self._sockets.append(server)
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            self.moving.wait()
            try:
                data = src.recv(65536)
                if not data:
                    break
                self.moving.wait()  # a reply already read waits too
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def through(proxy: FreezableProxy, url: str) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    login = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{login}127.0.0.1:{proxy.port}"))


@pytest.fixture
def proxy(pg_url: str) -> Iterator[FreezableProxy]:
    parts = urlsplit(pg_url)
    live = FreezableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield live
    live.close()


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``work`` in a thread; the dict gets its ``result`` or ``error``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


class _Conn:
    """What AnswerDeadlines reads of a psycopg connection: its socket's descriptor."""

    def __init__(self, sock: socket.socket) -> None:
        self.pgconn = type("PGconn", (), {"socket": sock.fileno()})()


def test_the_watchdog_cuts_a_late_wait_and_leaves_a_finished_call_alone() -> None:
    deadlines = AnswerDeadlines(0.5)
    ours, server = socket.socketpair()
    quick_ours, quick_server = socket.socketpair()
    try:
        with deadlines.bounded(_Conn(quick_ours)) as quick:
            quick_server.sendall(b"answer")
            assert quick_ours.recv(16) == b"answer"
        with deadlines.bounded(_Conn(ours)) as late:
            ours.settimeout(30)
            assert ours.recv(16) == b""  # the cut ends the wait: the "server" never wrote
        assert late.expired and not quick.expired
        time.sleep(1)  # past the quick call's deadline: its socket, no longer bounded, still works
        quick_server.sendall(b"later")
        assert quick_ours.recv(16) == b"later"
    finally:
        for sock in (ours, server, quick_ours, quick_server):
            sock.close()


def test_the_watchdog_never_cuts_a_socket_that_took_over_a_closed_ones_number() -> None:
    """libpq closes its descriptor as soon as the server drops the connection, while the call is
    still bounded; the number may then name a new socket (a client's HTTP connection), which a
    cut by number shut down (a probe did it with a widened window)."""
    deadlines = AnswerDeadlines(0.3)
    driver, server = socket.socketpair()
    with deadlines.bounded(_Conn(driver)) as call:
        number = driver.fileno()
        driver.close()  # the server dropped the connection: libpq closes its descriptor
        newcomer, peer = socket.socketpair()
        try:
            assert number in (newcomer.fileno(), peer.fileno())  # the number is taken again
            time.sleep(1)  # the deadline passes before the block is left
            assert call.expired
            peer.sendall(b"still open")
            assert newcomer.recv(16) == b"still open"
            newcomer.sendall(b"both ways")
            assert peer.recv(16) == b"both ways"
        finally:
            newcomer.close()
            peer.close()
            server.close()


def test_a_call_the_server_never_answers_fails_as_an_outage_and_the_store_recovers(
        proxy: FreezableProxy, pg_url: str) -> None:
    store = open_store(through(proxy, pg_url), secret=SECRET, answer_timeout=1.0)
    try:
        assert store.get_check("0" * 32) is None  # a connection in the pool, answering
        proxy.freeze()
        thread, outcome = in_thread(lambda: store.get_check("1" * 32))
        thread.join(30)
        assert not thread.is_alive(), "the read was still waiting on the frozen server after 30 s"
        error: Optional[BaseException] = outcome.get("error")
        assert isinstance(error, StoreTimeoutError) and isinstance(error, StoreUnavailableError), outcome
        assert "no answer from the postgresql database within 1 s" in str(error)
        proxy.thaw()
        assert store.get_check("2" * 32) is None  # a new connection: the cut one was not pooled
    finally:
        proxy.thaw()
        store.close()


def test_a_call_waiting_on_a_lock_is_given_up_by_the_server_which_frees_its_process(pg_url: str) -> None:
    """A cut alone left the server's process waiting on the lock, and every retry opened another
    connection that waited too: a probe filled PostgreSQL's 100 connections in 35 s. The server
    now gives the statement up just before the deadline, and the connection is kept."""
    import psycopg

    store = open_store(pg_url, secret=SECRET, answer_timeout=1.0)
    holder = psycopg.connect(pg_url)  # not autocommit: the lock lasts until rollback
    try:
        assert store.get_check("0" * 32) is None
        holder.execute("LOCK TABLE checks IN ACCESS EXCLUSIVE MODE")
        for _ in range(4):
            with pytest.raises(StoreTimeoutError, match="server cancelled the statement"):
                store.get_check("1" * 32)
        waiting = holder.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND datname = current_database()").fetchone()
        assert waiting == (0,)  # no process of ours is left waiting on the lock
        holder.rollback()
        assert store.get_check("2" * 32) is None
    finally:
        holder.close()
        store.close()


def test_without_a_deadline_the_call_waits_for_the_server(proxy: FreezableProxy, pg_url: str) -> None:
    """The command line's store (no deadline) waits, as libpq does: what the deadline changes."""
    store = open_store(through(proxy, pg_url), secret=SECRET)
    try:
        assert store.get_check("0" * 32) is None
        proxy.freeze()
        thread, outcome = in_thread(lambda: store.get_check("1" * 32))
        thread.join(3)
        assert thread.is_alive() and not outcome
        proxy.thaw()
        thread.join(30)
        assert outcome == {"result": None}
    finally:
        proxy.thaw()
        store.close()


@pytest.mark.slow
def test_reports_on_a_hung_server_answer_and_leave_threads_for_checks(
        proxy: FreezableProxy, pg_url: str, tmp_path: Path, model_dir: Path) -> None:
    server = start_live_server(tmp_path / "var", model_dir, database_url=through(proxy, pg_url), workers=1,
                               env={"COMMENTGUARD_DATABASE_TIMEOUT": "2"})  # 2 threads (the default)
    try:
        auth = {"Authorization": f"Bearer {server.key}"}
        base = server.base_url
        first = httpx.post(base + "/api/v1/check", json={"comment_content": "before the freeze"}, headers=auth)
        assert first.status_code == 200
        check_id = first.json()["check_id"]
        time.sleep(1)  # written by the check log's writer (every 0.2 s)
        proxy.freeze()
        answers: list[int] = []

        def report() -> None:
            answer = httpx.post(base + "/api/v1/feedback", headers=auth, timeout=120,
                                json={"check_id": check_id, "label": "spam"})
            answers.append(answer.status_code)

        reports = [threading.Thread(target=report) for _ in range(4)]
        for thread in reports:
            thread.start()
        time.sleep(1)
        started = time.monotonic()
        during = httpx.post(base + "/api/v1/check", json={"comment_content": "during the freeze"},
                            headers=auth, timeout=120)
        check_seconds = time.monotonic() - started
        for thread in reports:
            thread.join(120)
        assert during.status_code == 200
        # Before the deadline, every thread waited on the frozen server and so did this check.
        assert check_seconds < 8, f"a check waited {check_seconds:.1f} s behind reports"
        assert not any(t.is_alive() for t in reports), "reports still waiting on the frozen server"
        assert sorted(answers) == [503] * 4  # "please retry", not a hang, a 404 or a 500
        # The check log's writer gives its write up too: it used to wait without failing, so
        # nothing (log, /readyz, metrics) said the checks were not being written.
        log_file = tmp_path / "var" / "server.log"
        deadline = time.monotonic() + 60
        # (StoreTimeoutError on a pooled connection; a new one meets connect_timeout instead.)
        while "writing 1 checks failed (Store" not in log_file.read_text(errors="replace"):
            assert time.monotonic() < deadline, "the check log's writer never gave its write up"
            time.sleep(0.2)
        proxy.thaw()
        deadline = time.monotonic() + 60
        while True:  # the check log is written once the server answers again
            again = httpx.post(base + "/api/v1/feedback", headers=auth, timeout=60,
                               json={"check_id": during.json()["check_id"], "label": "ham"})
            if again.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert again.status_code == 201, again.text
    finally:
        proxy.thaw()
        server.stop()
