"""gunicorn's threaded worker, with each request read in full before a thread takes it.

gunicorn's ``gthread`` worker hands every new connection to one of its few threads, which
then waits up to 5 s for the first byte and reads the request on a blocking socket with no
time limit. A handful of clients that connect and send nothing, or send their request a byte
a second, held every thread: with the default 2 workers x 2 threads, four such connections
made legitimate checks wait 10-25 s or time out.

:class:`BufferedThreadWorker` keeps gunicorn's worker and changes who reads. The worker's
main loop, which already waits on every idle connection, also reads each request's head and
its declared body (up to the app's body limit) without blocking, into a buffer per
connection; a thread takes the connection only once that request has arrived in full, with
the bytes handed to gunicorn's parser. A request must arrive within
:data:`REQUEST_ARRIVAL_SECONDS` of its connection (or of the previous answer on a kept-alive
one); otherwise the connection gets 408 and is closed. What a thread still reads from the
socket itself (a chunked body, a body over the limit being drained, a pipelined request)
must arrive within :data:`THREAD_READ_SECONDS`.

Only plain-TCP HTTP/1 connections are buffered; TLS (gunicorn's ``certfile``) and HTTP/2
prior knowledge keep gunicorn's own handling. Written against gunicorn 27's ``ThreadWorker``
(``pyproject.toml`` pins the major version).
"""
from __future__ import annotations

import errno
import re
import socket
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Optional

from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

#: A request (head and body) must reach the worker within this many seconds of its
#: connection, or of the previous answer on a kept-alive connection.
REQUEST_ARRIVAL_SECONDS = 10.0
#: What a worker thread reads from the socket itself must arrive within this many seconds.
THREAD_READ_SECONDS = 5.0
#: An answer must be taken by the client within this many seconds of each write.
WRITE_SECONDS = 5.0
#: A head not ended within this many bytes goes to gunicorn's parser, which refuses it.
MAX_BUFFERED_HEAD = 64 * 1024
#: Body bytes buffered when the app states no limit of its own.
DEFAULT_BODY_LIMIT = 1024 * 1024
#: accept() failing for want of a file descriptor (the process's, the system's, kernel memory).
OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: How long the main loop pauses then, and how often it says so.
FD_PAUSE_SECONDS = 0.05
FD_WARNING_SECONDS = 60.0
READ_CHUNK = 65536

_HEAD_END = re.compile(rb"\n\r?\n")
#: The header fields that say whether and how a body follows (name, value), at a line start.
_FRAMING = re.compile(rb"\n[ \t]*(content-length|transfer-encoding|expect)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_CONTINUE_LINE = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)
_INTERIM_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_CONNECTION_LINE = re.compile(rb"\r\nconnection:[^\r\n]*(?=\r\n)", re.IGNORECASE)
_TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                   b"Content-Type: text/plain\r\nContent-Length: 16\r\n\r\nrequest timeout\n")
#: Most bytes of an over-limit body the main loop reads and throws away (as the app would:
#: ``service.body.DRAIN_LIMIT``), so that the client is done sending when it gets its 413.
DRAIN_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Arrival:
    """What the main loop does next with a connection's bytes (:func:`assess`).

    ``wait``: read more. ``ready``: hand the request to a thread (all of it is in, or what is
    left is for gunicorn's parser to refuse). ``over``: the body is over the limit: hand it on
    once ``discard`` more bytes have been read and thrown away, with no socket reads left for
    the thread (the app answers 413, and the connection closes: the bytes after the body went
    with it). ``continue``: the client waits for ``100 Continue`` (``Expect: 100-continue``)
    before sending its body: send it, drop the line, read on.
    """

    kind: str
    discard: int = 0


WAIT = Arrival("wait")
READY = Arrival("ready")


@dataclass
class ChunkCursor:
    """Where the main loop's parse of a chunked body stands: each read looks at new bytes only
    (re-reading the whole body on every read made a body of 1-byte chunks cost its square)."""

    pos: int = 0    # the start of the next chunk's size line (0: not started)
    body: int = 0   # body bytes in the complete chunks before ``pos``


def assess(buf: bytes | bytearray, body_limit: int, cursor: Optional[ChunkCursor] = None) -> Arrival:
    """Whether the request at the start of ``buf`` has arrived, for a body limit of ``body_limit``.

    Runs in the worker's main loop for every request, so the common case stays in C: the end
    of the head by ``find``, the three fields that frame a body by one regular expression.
    ``cursor`` carries a chunked body's parse from one read to the next.
    """
    crlf_end = buf.find(b"\r\n\r\n", 0, MAX_BUFFERED_HEAD + 4)
    if crlf_end >= 0 and buf.find(b"\n\n", 0, crlf_end) < 0:
        head_start, head_end = crlf_end, crlf_end + 4
    else:  # a head with bare line feeds (whichever blank line comes first ends it), or not ended yet
        match = _HEAD_END.search(buf, 0, MAX_BUFFERED_HEAD + 4)
        if match is None:
            return READY if len(buf) >= MAX_BUFFERED_HEAD else WAIT
        head_start, head_end = match.start(), match.end()
    length: Optional[int] = None
    chunked = expect = False
    for name, value in _FRAMING.findall(buf, 0, head_start):
        name = name.lower()
        value = value.strip().lower()
        if name == b"transfer-encoding":
            if chunked or value != b"chunked":
                return READY  # gunicorn refuses other codings and repeats
            chunked = True
        elif name == b"expect":
            expect = True
        elif name == b"content-length":
            if length is not None or not value.isdigit():
                return READY  # a malformed or repeated length: the parser refuses it
            length = int(value)
    if chunked and length is not None:
        return READY  # both: the parser refuses it
    # HTTP/1.0 must ignore Expect (RFC 9110, 10.1.1): its body is read as any other.
    if expect and bytes(buf[:buf.find(b"\n")]).rstrip().endswith(b"HTTP/1.1"):
        if not _CONTINUE_LINE.search(buf, 0, head_end):
            return READY  # another expectation: the parser answers 417 from the head
        if length is not None and length > body_limit:
            return Arrival("over")  # refused before the client sends it: no 100 Continue
        return Arrival("continue")
    if chunked:
        return _assess_chunked(buf, head_end, body_limit, cursor or ChunkCursor())
    if length is None:
        return READY
    if length > body_limit:
        return Arrival("over", max(0, min(length, DRAIN_LIMIT) - (len(buf) - head_end)))
    return READY if len(buf) >= head_end + length else WAIT


def _assess_chunked(buf: bytes | bytearray, head_end: int, body_limit: int, cursor: ChunkCursor) -> Arrival:
    """Whether a chunked body after ``head_end`` has ended (its last chunk and trailer section in).

    Past the limit it is ``ready`` once more than the limit has come (counted without the chunk
    framing): the app must read that much to refuse it, and reads the rest as it drains. So is
    framing that outgrows the body (extensions, a trailer section over :data:`MAX_BUFFERED_HEAD`):
    it goes to gunicorn's parser, under the thread's deadline, rather than filling memory here.
    """
    pos = cursor.pos or head_end
    body = cursor.body
    while True:
        if len(buf) - head_end > body_limit + MAX_BUFFERED_HEAD:
            return READY
        eol = buf.find(b"\r\n", pos, pos + 1024)
        if eol < 0:
            return WAIT if len(buf) - pos < 1024 else READY
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            return READY  # malformed ("-6" made int() loop here for good): the parser refuses it
        size = int(size_text, 16)
        if size == 0:
            # The trailer section (usually empty) ends with an empty line.
            if buf.find(b"\r\n\r\n", eol) >= 0:
                return READY
            return WAIT if len(buf) - eol < MAX_BUFFERED_HEAD else READY
        present = min(size, len(buf) - (eol + 2))
        if body + present > body_limit:
            # gunicorn's chunk parser reads the rest of the current chunk itself: the thread
            # may read (under its deadline), and the app drains and refuses the body.
            return READY
        if present < size or eol + 2 + size + 2 > len(buf):
            return WAIT  # this chunk is not all in: look at it again with the next bytes
        pos = eol + 2 + size + 2  # strictly after the last position: the loop always advances
        body += size
        cursor.pos, cursor.body = pos, body


def drop_continue_line(buf: bytes | bytearray) -> bytes:
    """``buf`` without its ``Expect: 100-continue`` line (the interim answer has been sent)."""
    return _CONTINUE_LINE.sub(b"", bytes(buf), count=1)


class DeadlineSocket:
    """A socket whose ``recv`` gives up at ``deadline`` (when set), as a client disconnect would.

    gunicorn's parser and request body read through ``recv``; raising its ``NoMoreData``
    makes a stalled client look like one that left, which gunicorn closes without a traceback
    in the log. Answers are written through ``sendall``, which gives up after
    :data:`WRITE_SECONDS` the same way. Everything else is the wrapped socket's.
    """

    __slots__ = ("_sock", "deadline")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.deadline: Optional[float] = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        """Write all of ``data`` within :data:`WRITE_SECONDS`, or give up as if the client had gone
        (clients that never read their answers held every thread)."""
        self._sock.settimeout(WRITE_SECONDS)
        try:
            self._sock.sendall(data, flags)
        except TimeoutError:
            raise BrokenPipeError(errno.EPIPE, "the client does not read its answer") from None

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self.deadline is None:
            return bytes(self._sock.recv(size, flags))
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise http_errors.NoMoreData()
        self._sock.settimeout(left)
        try:
            return bytes(self._sock.recv(size, flags))
        except TimeoutError:
            raise http_errors.NoMoreData() from None


class BufferedConn(TConn):  # type: ignore[misc]  # gunicorn ships no types
    """A connection with the bytes the main loop has read of its next request."""

    def __init__(self, cfg: Any, sock: Any, client: Any, server: Any) -> None:
        super().__init__(cfg, DeadlineSocket(sock), client, server)
        self.pending = bytearray()
        self.preread = b""
        self.discard = 0
        self.thread_reads = True
        self.handed_over = False  # the last read completed the request
        self.closed = False
        self.cursor = ChunkCursor()


class BufferedThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's ``gthread`` worker whose threads only take requests that have arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fd_warning_due = 0.0
        # Connections whose request is arriving, in the order of their deadlines (all deadlines
        # are the same time from when they were set, and a dict keeps insertion order).
        self.arriving: dict[BufferedConn, float] = {}
        self.body_limit = DEFAULT_BODY_LIMIT
        #: The largest body any endpoint takes (Akismet's, under /1.1/ and /1.2/), when larger.
        self.largest_body_limit = DEFAULT_BODY_LIMIT
        self.closed_idle_at_stop = False
        self.buffering = not self.cfg.is_ssl and getattr(self.cfg, "http2_cleartext", "off") == "off"

    def load_wsgi(self) -> None:
        """Load the app (gunicorn does so in the worker, before it runs), and read its body limit."""
        super().load_wsgi()
        config = getattr(self.wsgi, "config", None)
        limit = config.get("MAX_CONTENT_LENGTH") if isinstance(config, dict) else None
        if isinstance(limit, int) and limit > 0:
            self.body_limit = limit
        largest = config.get("COMMENTGUARD_LARGEST_BODY") if isinstance(config, dict) else None
        self.largest_body_limit = max(self.body_limit, largest if isinstance(largest, int) else 0)

    def limit_for(self, buf: bytes | bytearray) -> int:
        """The body limit of the request at the start of ``buf``: the JSON API's for its paths
        (``/api/``), the largest (Akismet's) for any other target, which the app may still route
        to an Akismet view (``//1.1/...``, ``/%31.1/...``, a ``SCRIPT_NAME`` prefix), so that the
        app never waits for a body the main loop threw away."""
        if self.largest_body_limit == self.body_limit:
            return self.body_limit
        space = buf.find(b" ", 0, 32)
        if space > 0 and buf.startswith(b"/api/", space + 1):
            return self.body_limit
        return self.largest_body_limit

    # -- connections arriving ------------------------------------------------------------

    def accept(self, listener: Any) -> None:
        try:
            if not self.buffering:
                super().accept(listener)
                return
            try:
                client_sock, client_addr = listener.accept()
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    raise
                return
        except OSError as exc:
            if exc.errno not in OUT_OF_DESCRIPTORS:
                raise
            self.out_of_descriptors()
            return
        self.nr_conns += 1
        self.await_request(BufferedConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def out_of_descriptors(self) -> None:
        """No file descriptor left for a new connection: gunicorn re-raises that and the worker
        dies, resetting every connection it held (4 of 1,800 checks of a probe's clients, with
        ``ulimit -n 128`` and 400 idle connections). Leave the connection waiting in the
        listener's backlog instead, until a descriptor frees up; the pause keeps the poll loop
        from spinning on a listener that stays readable."""
        now = time.monotonic()
        if now >= self._fd_warning_due:
            self._fd_warning_due = now + FD_WARNING_SECONDS
            self.log.warning("out of file descriptors: new connections wait until one is free "
                             "(raise the limit, `ulimit -n`, above worker_connections plus some 50)")
        time.sleep(FD_PAUSE_SECONDS)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection has more to say: read its next request here too."""
        if not isinstance(conn, BufferedConn):
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        # Usually the whole request is there already: read it now, and watch the socket (two
        # more system calls and a poll) only when it is not.
        self.read_arriving(conn)
        if not conn.handed_over and not conn.closed:
            self.await_request(conn)

    def await_request(self, conn: BufferedConn) -> None:
        conn.sock.setblocking(False)
        self.arriving[conn] = time.monotonic() + REQUEST_ARRIVAL_SECONDS  # also: it is being watched
        self.poller.register(conn.sock, 1, partial(self.on_arriving_readable, conn))  # 1: EVENT_READ

    def on_arriving_readable(self, conn: BufferedConn, _sock: Any) -> None:
        self.read_arriving(conn)

    def read_arriving(self, conn: BufferedConn) -> None:
        """Read what has come of ``conn``'s request; hand it to a thread once it is all in."""
        conn.handed_over = False  # until this read completes the request
        try:
            data = conn.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop_arriving(conn)
            return
        if not data:  # the client closed the connection
            self.drop_arriving(conn)
            return
        if conn.discard:  # the rest of a body over the limit: read, thrown away
            conn.discard -= len(data)
            if conn.discard <= 0:
                self.hand_over(conn, thread_reads=False, close=True)
            return
        if conn.pending:
            conn.pending += data
        else:
            conn.pending = bytearray(data)
        self.advance(conn)

    def advance(self, conn: BufferedConn) -> None:
        """Act on what ``conn.pending`` holds: wait for more, answer 100 Continue, or hand it over."""
        conn.handed_over = False
        limit = self.limit_for(conn.pending)
        arrival = assess(conn.pending, limit, conn.cursor)
        if arrival.kind == "continue":
            try:
                conn.sock.send(_INTERIM_CONTINUE)
            except OSError:
                self.drop_arriving(conn)
                return
            conn.pending = bytearray(drop_continue_line(conn.pending))
            arrival = assess(conn.pending, limit, conn.cursor)
        if arrival.kind == "ready":
            self.hand_over(conn, thread_reads=True)
        elif arrival.kind == "over":
            if arrival.discard > 0:
                # Keep the head and throw the body away as it comes; the app answers 413
                # from the head's declared length.
                del conn.pending[_HEAD_END.search(conn.pending).end():]
                conn.discard = arrival.discard
            else:
                self.hand_over(conn, thread_reads=False, close=True)

    def hand_over(self, conn: BufferedConn, *, thread_reads: bool, close: bool = False) -> None:
        """Give ``conn``, with the bytes read so far, to a worker thread.

        ``close``: the answer must close the connection, and say so (a body thrown away took
        whatever was pipelined behind it; a 413 saying keep-alive made clients' next request
        on it fail).
        """
        self.stop_watching(conn)
        head = bytes(conn.pending)
        if close:
            end = head.find(b"\r\n")
            # gunicorn would answer an Expect of its own with 100 Continue: the body is refused.
            head = _CONTINUE_LINE.sub(b"", _CONNECTION_LINE.sub(b"", head))
            head = head[:end] + b"\r\nConnection: close" + head[end:] if end >= 0 else head
        conn.preread = head
        conn.pending = bytearray()
        conn.cursor = ChunkCursor()
        conn.discard = 0
        conn.thread_reads = thread_reads
        conn.data_ready = True
        conn.handed_over = True
        super().enqueue_req(conn)

    def enqueue_req(self, conn: Any) -> None:
        """gunicorn re-queues a kept-alive connection to a thread when bytes of a next request
        are already buffered (pipelined): that request is taken through the main loop too, so a
        client dripping it byte by byte cannot hold a thread (it held one for good)."""
        if isinstance(conn, BufferedConn) and not conn.preread and conn.parser is not None:
            left = conn.parser.unreader.take_buffered()
            if left:
                conn.pending = bytearray(left)
                conn.cursor = ChunkCursor()
                self.advance(conn)
                if not conn.handed_over and not conn.closed:
                    self.await_request(conn)
                return
        super().enqueue_req(conn)

    def stop_watching(self, conn: BufferedConn) -> None:
        if self.arriving.pop(conn, None) is None:
            return  # not registered with the poller
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def drop_arriving(self, conn: BufferedConn, answer: bytes = b"") -> None:
        self.stop_watching(conn)
        conn.closed = True
        self.nr_conns -= 1
        if answer:
            try:
                # What the client sent meanwhile is read first (a bounded amount: this is the
                # main loop): closing with unread bytes resets the connection, and the client
                # may lose the answer with it.
                for _ in range(16):
                    if not conn.sock.recv(READ_CHUNK):
                        break
            except OSError:
                pass
            try:
                conn.sock.send(answer)
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        conn.close()

    def murder_pending(self) -> None:
        """Also close connections whose request did not arrive in time (and idle ones at stop)."""
        super().murder_pending()
        now = time.monotonic()
        while self.arriving:
            conn, deadline = next(iter(self.arriving.items()))
            if deadline > now:
                break
            self.log.debug("Closing a connection whose request did not arrive in %.0f s",
                           REQUEST_ARRIVAL_SECONDS)
            self.drop_arriving(conn, _TIMEOUT_ANSWER if conn.pending else b"")
        if not self.alive and not self.closed_idle_at_stop:
            # Stopping: a connection that has sent nothing will get no answer; one that has
            # begun its request may still finish it within its deadline.
            self.closed_idle_at_stop = True
            for conn in [c for c in self.arriving if not c.pending]:
                self.drop_arriving(conn)

    # -- in a worker thread ----------------------------------------------------------------

    def handle(self, conn: Any) -> Any:
        if not isinstance(conn, BufferedConn):
            return super().handle(conn)
        if conn.preread:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(conn.preread)
            conn.preread = b""
        # A body over the limit was read and thrown away by the main loop: the thread must
        # not wait for it (the app's drain then ends at once and it answers 413).
        conn.sock.deadline = time.monotonic() + (THREAD_READ_SECONDS if conn.thread_reads else 0.0)
        conn.thread_reads = True
        try:
            return super().handle(conn)
        finally:
            conn.sock.deadline = None


__all__ = ["Arrival", "BufferedConn", "ChunkCursor", "BufferedThreadWorker", "DeadlineSocket", "MAX_BUFFERED_HEAD",
           "REQUEST_ARRIVAL_SECONDS", "THREAD_READ_SECONDS", "assess", "drop_continue_line"]
