"""Structured logs: one JSON object per line on standard error, each carrying the request id.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and
``request_id`` (``null`` outside a request), plus whatever a call passes as
``extra={...}``. The request id comes from an incoming ``X-Request-Id`` header
when it is a safe token (:data:`REQUEST_ID_RE`) that is not shaped like an API key
and holds no IP address, else it is generated; it is
echoed in the response's ``X-Request-Id`` and set in a context variable for the
request's life, so every line logged while serving it carries it, whichever
module logs (:class:`RequestIdFilter`). gunicorn's own loggers go through the
same formatter (:class:`GunicornLogger`), its access lines included.

No personal data in logs: the code never logs a comment, an IP address, an
email or a key, and this module adds three guards. An exception is logged by type
and stack frames only, never its message (a message can quote the input). The
access line has method, the route the app matched (never the path itself, which
a client may fill with an e-mail or a key, nor the query, where Akismet keys may
ride), status and duration, never the client address or user agent.
gunicorn's own error lines lose what a request put in them (a request line it
could not parse, a URI, the client's address).
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any, Optional

from flask import Flask, Response, g, request

from store.ids import random_id
from store.personal_text import TooMany, canonical_address, find_personal, may_hold_personal

REQUEST_ID_HEADER = "X-Request-Id"
#: An incoming request id is kept only when it is this shape: short, no spaces, nothing to escape.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

_request_id: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("commentguard_request_id",
                                                                            default=None)
#: LogRecord attributes that are not "extra" fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                             "request_id"}


def current_request_id() -> Optional[str]:
    """The id of the request being served in this thread (or greenlet), if any."""
    return _request_id.get()


#: An id shaped like an API key (12 hex characters: a client may send its key as its request id).
_KEY_SHAPED = re.compile(r"[0-9A-Fa-f]{12}")


def _may_be_personal(rid: str) -> bool:
    """Whether a request id (a safe token) may be an API key or hold an IP address: logged on every
    line of its request, it must be neither. (An '@' is no safe token: an e-mail never is one.)"""
    if _KEY_SHAPED.fullmatch(rid) or canonical_address(rid) is not None:
        return True
    if not may_hold_personal(rid):
        return False
    try:
        return bool(find_personal(rid, most=1))  # an address inside it: "trace-10.0.0.5"
    except TooMany:
        return True


def request_id_from(header: Optional[str]) -> str:
    """The incoming id when it is a safe token that is neither shaped like an API key nor holds
    an IP address, else a fresh random one (32 hex characters)."""
    if header and REQUEST_ID_RE.fullmatch(header) and not _may_be_personal(header):
        return header
    return random_id()


class RequestIdFilter(logging.Filter):
    """Stamps ``record.request_id`` with the current request's id (``None`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, then extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # Type and frames only: the message of an exception may quote a comment, an email or an IP.
            out["exc_type"] = record.exc_info[0].__name__
            out["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def json_handler() -> logging.Handler:
    """A standard-error handler with the JSON formatter and the request-id filter."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler._commentguard = True  # type: ignore[attr-defined]  # ours: replaced, not duplicated
    return handler


def configure_logging(level: str = "INFO") -> None:
    """Send the root logger's records to standard error as JSON lines at ``level`` (idempotent).

    Only our own handler is replaced; handlers others installed (a test runner's) stay.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_commentguard", False)]:
        root.removeHandler(handler)
    root.addHandler(json_handler())
    root.setLevel(level.upper())


def request_elapsed() -> float:
    """Seconds since the current request started (0.0 outside a request or before the hook ran)."""
    started = g.get("request_started") if g else None
    return 0.0 if started is None else time.perf_counter() - started


def init_app(app: Flask) -> None:
    """Give every request an id (echoed in ``X-Request-Id``) that every log line of the request carries."""

    @app.before_request
    def _start() -> None:
        started = time.perf_counter()
        rid = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        app_g = g._get_current_object()  # one context lookup for the three attributes
        app_g.request_started = started
        app_g.request_id = rid
        app_g.request_id_token = _request_id.set(rid)

    request_log = logging.getLogger("service.request")

    @app.after_request
    def _finish(response: Response) -> Response:
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_ENVIRON_KEY] = rule.rule  # for the access log line
        rid = g.get("request_id")
        if rid:
            response.headers[REQUEST_ID_HEADER] = rid
            if request_log.isEnabledFor(logging.DEBUG):  # the hot path builds nothing when off
                request_log.debug("request done", extra={
                    "method": request.method, "route": request.url_rule.rule if request.url_rule else None,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 3)})
        return response

    @app.teardown_request
    def _reset(_exc: Optional[BaseException]) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                _request_id.reset(token)
            except ValueError:  # set in another context (should not happen); clear instead
                _request_id.set(None)


# --- gunicorn ------------------------------------------------------------------------------

#: Where the app leaves the matched route for gunicorn's access line (the WSGI environ is shared).
ROUTE_ENVIRON_KEY = "commentguard.route"
#: What gunicorn may quote from a request it could not parse, or from a request line: the
#: line itself (``'POST /1.1/comment-check?api_key=...&user_ip=... HTTP/1.1'``), a header, the
#: client's address, a query string, a path.
_QUOTED = re.compile(r"['\"].*", re.DOTALL)  # to the end: a quote inside is escaped, not closing
_CLIENT_IP = re.compile(r"\bip=.*?(?=: |\s|$)")  # up to gunicorn's ": " (an IPv6 address has colons)
_QUERY = re.compile(r"\?\S*")
_PATH = re.compile(r"(?<![\w:/])/\S*")  # a request's path (gunicorn's DEBUG "GET /path", "request /path")
#: gunicorn's messages about its own sockets and processes: nothing a request put there, and
#: an operator needs them whole ("Connection in use: ('127.0.0.1', 8000)" became "('…'").
_SERVER_OWN = ("Connection in use", "connection to ", "Can't connect to", "Retrying in", "Listening at",
               "Starting gunicorn", "Using worker", "Booting worker", "Worker exiting", "Shutting down",
               "Handling signal", "Reason:", "Worker (pid:", "Control socket")


def scrub_server_message(message: str) -> str:
    """A gunicorn error-log message without what a request put in it (quoted text, address, query, path)."""
    if message.startswith(_SERVER_OWN):
        return message
    message = _QUOTED.sub("'…'", message)
    message = _PATH.sub("/…", message)
    message = _CLIENT_IP.sub("ip=…", message)
    return _QUERY.sub("?…", message)


class ServerMessageFilter(logging.Filter):
    """Scrubs gunicorn's error-log lines (:func:`scrub_server_message`) before they are formatted.

    gunicorn logs an unparsable request with its request line, and a failed one with its URI:
    a client that does not percent-encode its query sends keys, IPs and e-mails there.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub_server_message(record.getMessage())
        record.args = None
        return True


def _bind_url(address: str, ssl: bool) -> str:
    """A gunicorn ``bind`` entry as gunicorn names a listening socket (``http://127.0.0.1:8000``)."""
    if address.startswith(("unix:", "fd://")):
        return address
    return f"{'https' if ssl else 'http'}://{address}"


try:
    from gunicorn.glogging import Logger as _GunicornBase
except ImportError:  # pragma: no cover - gunicorn is a dependency; tests may run without it
    _GunicornBase = object  # type: ignore[assignment,misc]


class GunicornLogger(_GunicornBase):  # type: ignore[misc,valid-type]
    """gunicorn's logger with JSON lines: its error log through our formatter, access lines as JSON."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # Only the handlers gunicorn made: a filter that rewrites records must not sit on a
        # handler others share (a test runner's capture handler saw app lines scrubbed).
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(JsonFormatter())
                    handler.addFilter(RequestIdFilter())
        for handler in self.error_log.handlers:
            if getattr(handler, "_gunicorn", False):
                handler.addFilter(ServerMessageFilter())
        # Decided once here (setup runs again on reload): gunicorn calls access() for every
        # request, and reading four settings through its config object each time showed in profiles.
        self._access_on = bool(cfg.accesslog or cfg.logconfig or cfg.logconfig_dict or cfg.syslog)
        self._bound = ",".join(_bind_url(address, cfg.is_ssl) for address in cfg.bind)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg.startswith("Listening at:") and args and not args[0]:
            # With a socket per worker (reuse_port) the master holds no socket, and gunicorn's
            # line read "Listening at:  (pid)": the configured addresses, as gunicorn writes them.
            args = (getattr(self, "_bound", ""), *args[1:])
        super().info(msg, *args, **kwargs)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not getattr(self, "_access_on", False):
            return
        if not self.access_log.isEnabledFor(logging.INFO):  # dropped anyway: build nothing
            return
        headers = dict((k.lower(), v) for k, v in (getattr(resp, "headers", None) or []))
        duration = request_time.total_seconds() if hasattr(request_time, "total_seconds") else None
        self.access_log.info("request", extra={
            "method": environ.get("REQUEST_METHOD"),
            # The route the app matched, not the path: a client may put anything in a path (an
            # e-mail, a key), and a route is one of a few. Unmatched: none (a 404).
            "route": environ.get(ROUTE_ENVIRON_KEY),
            "status": getattr(resp, "status_code", None) or str(getattr(resp, "status", "")).split(" ")[0],
            "duration_ms": round(duration * 1000, 3) if duration is not None else None,
            "request_id": headers.get(REQUEST_ID_HEADER.lower()),
        })


__all__ = ["GunicornLogger", "JsonFormatter", "REQUEST_ID_HEADER", "REQUEST_ID_RE", "RequestIdFilter",
           "ServerMessageFilter", "configure_logging", "current_request_id", "init_app", "json_handler",
           "request_id_from", "scrub_server_message"]
