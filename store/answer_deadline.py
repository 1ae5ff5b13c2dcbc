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

    __slots__ = ("deadline", "fd", "expired")

    def __init__(self, deadline: float, fd: int) -> None:
        self.deadline = deadline
        self.fd = fd
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
        fd = _socket_of(conn)
        call = Call(time.monotonic() + self.seconds, fd if fd is not None else -1)
        if fd is None:  # closed already: the driver raises on first use, nothing to bound
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
            # Under the lock: once the block is left, the watchdog never touches this socket,
            # whose descriptor may be closed and reused by the time it looks again.
            with self._cond:
                self._calls.discard(call)

    def _watch(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                for call in [c for c in self._calls if c.deadline <= now]:
                    self._calls.discard(call)
                    call.expired = True
                    _cut(call.fd)
                earliest = min((c.deadline for c in self._calls), default=None)
                self._cond.wait(None if earliest is None else max(0.01, earliest - now))


def _socket_of(conn: Any) -> Optional[int]:
    try:
        return int(conn.pgconn.socket)
    except Exception:  # noqa: BLE001 - psycopg raises OperationalError on a closed connection
        return None


def _cut(fd: int) -> None:
    """Shut the connection down both ways, so that a wait on it ends now; the descriptor itself
    stays the driver's to close."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # not connected any more: the wait has ended anyway
        log.debug("shutting down a late database connection: %s", exc)
    finally:
        sock.close()


__all__ = ["AnswerDeadlines", "Call"]
