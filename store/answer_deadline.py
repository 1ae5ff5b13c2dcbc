"""How long a PostgreSQL call may wait for the server's answer before the store gives up on it.

libpq waits on a connection's socket for as long as the server takes. A server process that
hangs with its connections open, or a stalled proxy between us and it, answers nothing while
the kernel still acknowledges every TCP packet, so neither TCP keepalives nor libpq's
``tcp_user_timeout`` end the wait. In a probe (2026-11-28, a stopped proxy) the check log's
writer waited without failing, so nothing said the store was down, and reports looking up a
check held every thread of a worker. PostgreSQL's own ``statement_timeout`` is enforced by the
server, which is the thing not answering.

So a watchdog thread shuts down the socket of a call still waiting past its deadline: the driver
call blocked on it fails at once, as on a lost connection, and the store reports an outage that
the service already handles (checks wait in the check log's queue, reports get "please retry").
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

log = logging.getLogger(__name__)


class Call:
    """One bounded call: whether the watchdog cut its connection."""

    __slots__ = ("deadline", "sock", "expired")

    def __init__(self, deadline: float, sock: Optional[socket.socket]) -> None:
        self.deadline = deadline
        #: Our own descriptor of the connection's socket (see :meth:`AnswerDeadlines.bounded`).
        self.sock = sock
        self.expired = False


class AnswerDeadlines:
    """Cuts the connection of any call registered with :meth:`bounded` that outlives ``seconds``."""

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError("the answer deadline must be a positive number of seconds")
        self.seconds = float(seconds)
        self._calls: set[Call] = set()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    @contextmanager
    def bounded(self, conn: Any) -> Iterator[Call]:
        """Bound the block's use of ``conn`` (a psycopg connection); the :class:`Call` says
        afterwards whether the watchdog cut it."""
        # A descriptor of our own for the socket, not its number: libpq closes its descriptor
        # as soon as the server drops the connection, while the call is still in this block, and
        # the number may then name a client's HTTP connection. Ours keeps naming this socket.
        call = Call(time.monotonic() + self.seconds, _own_socket(conn))
        if call.sock is None:  # closed already: the driver raises on first use, nothing to bound
            yield call
            return
        with self._cond:
            self._calls.add(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="store-answer-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield call
        finally:
            with self._cond:  # not while the watchdog is cutting it
                self._calls.discard(call)
            call.sock.close()  # our descriptor only: the connection stays the driver's

    def _watch(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                for call in [c for c in self._calls if c.deadline <= now]:
                    self._calls.discard(call)
                    call.expired = True
                    _cut(call.sock)  # type: ignore[arg-type] - only calls with a socket are registered
                earliest = min((c.deadline for c in self._calls), default=None)
                self._cond.wait(None if earliest is None else max(0.01, earliest - now))


def _own_socket(conn: Any) -> Optional[socket.socket]:
    """A socket object on a duplicate of ``conn``'s descriptor; ``None`` when it has none."""
    try:
        fd = os.dup(int(conn.pgconn.socket))
    except Exception:  # noqa: BLE001 - psycopg raises OperationalError on a closed connection
        return None
    try:
        return socket.socket(fileno=fd)
    except OSError:  # not a socket (cannot happen for a live connection): do not leak the duplicate
        os.close(fd)
        return None


def _cut(sock: socket.socket) -> None:
    """Shut the connection down both ways, so that the driver's wait on it ends now."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # not connected any more: the wait has ended anyway
        log.debug("shutting down a late database connection: %s", exc)


__all__ = ["AnswerDeadlines", "Call"]
