"""Reading a request body within the size limit, whether its length is declared or chunked.

With a ``Content-Length`` over the limit, the body is drained (up to 16 MiB) and
refused: a server that answers and closes while the client is still sending makes
many clients see a connection reset instead of the answer. A chunked body has no
declared length, and werkzeug reads it up to the limit and stops without a word,
so one a byte or a megabyte too long used to be parsed cut short (a JSON check
answered "malformed JSON", an Akismet call "invalid"); here it is refused too.
"""
from __future__ import annotations

from typing import Any, Optional

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

try:  # what gunicorn's body reader raises for malformed chunked framing
    from gunicorn.http.errors import ParseException as _ServerParseError
except ImportError:  # pragma: no cover - another WSGI server
    _ServerParseError = OSError  # type: ignore[misc,assignment]

#: Most bytes read (and thrown away) from an oversized body so the client can read the answer.
DRAIN_LIMIT = 16 * 1024 * 1024


class BodyUnreadable(Exception):
    """Raised by :func:`read_body` when the body broke off or its chunked framing is malformed.

    The server's reader raises then (gunicorn's ``InvalidChunkSize`` and
    ``ChunkMissingTerminator``, or ``NoMoreData``, an ``OSError``, for a client that stopped
    sending); unhandled, it was a 500 and an ERROR with a stack trace that any client could
    set off.
    """

    def __init__(self) -> None:
        super().__init__("the request body is malformed or incomplete")


class BodyEncoded(Exception):
    """Raised by :func:`read_body` for a body sent with a ``Content-Encoding`` (gzip...), which
    neither API takes: it was read as text and answered "not valid utf-8" or a missing key."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"Content-Encoding {encoding!r} is not supported: send the body uncompressed")
        self.encoding = encoding


class BodyTooLarge(Exception):
    """Raised by :func:`read_body` when the body is over the limit (its bytes are drained, not kept)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


def read_body(request: Request, limit: Optional[int] = None) -> bytes:
    """The raw body, at most ``limit`` bytes; :class:`BodyTooLarge` (after draining it) otherwise.

    ``limit`` is the app's ``MAX_CONTENT_LENGTH`` (werkzeug refuses a declared length over it and
    stops a chunked body there); it is read from the request when not given.
    """
    encoding = request.environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()  # environ: no header lookup
    if encoding not in ("", "identity"):
        raise BodyEncoded(encoding)
    try:
        body = request.get_data(cache=True)
    except RequestEntityTooLarge:  # a declared Content-Length over the limit
        _drain(request, request.content_length or DRAIN_LIMIT)
        raise BodyTooLarge(limit or request.max_content_length or 0) from None
    except (OSError, _ServerParseError):
        raise BodyUnreadable() from None
    if not request.environ.get("HTTP_TRANSFER_ENCODING") or request.content_length is not None:
        return body  # a declared length, which werkzeug has held to the limit
    limit = limit or request.max_content_length
    if limit is not None and len(body) >= limit:
        # Chunked, and read up to the limit: one byte more from the server's own stream
        # says whether the body ended there.
        raw = request.environ.get("wsgi.input")
        try:
            more = raw.read(1) if raw is not None else b""
        except (OSError, ValueError):
            more = b""
        if more:
            _drain(request, DRAIN_LIMIT)
            raise BodyTooLarge(limit)
    return body


def _drain(request: Request, length: int) -> None:
    drain(request.environ.get("wsgi.input"), length)


def drain(stream: Any, length: int) -> None:
    """Read and throw away up to ``length`` bytes of a body (at most :data:`DRAIN_LIMIT`), so that
    the client is done sending and the connection can carry its answer."""
    if stream is None:
        return
    remaining = min(length, DRAIN_LIMIT)
    try:
        while remaining > 0:
            chunk = stream.read(min(65536, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
    except (OSError, ValueError):
        pass  # the client went away; nothing to answer


__all__ = ["BodyEncoded", "BodyTooLarge", "BodyUnreadable", "DRAIN_LIMIT", "drain", "read_body"]
