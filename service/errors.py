"""The one JSON error shape of the service, and the handlers that produce it.

Every error response is ``{"error": "<message>", "status": <int>}`` plus detail
fields (``"field"``, ``"allowed"``, ``"max_body_bytes"`` ...), the way datasette
answers. Views raise :class:`ApiError`; :func:`init_app` turns it, every
werkzeug HTTP error and any unexpected exception into that shape. A response
never carries a traceback, and the log of an unexpected exception carries no
request data (comments, emails and IPs are personal data).
"""
from __future__ import annotations

import errno
import logging
import traceback
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, RequestEntityTooLarge

log = logging.getLogger(__name__)

#: Short messages for the werkzeug errors whose default descriptions are paragraphs.
_MESSAGES: dict[int, str] = {
    400: "bad request",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    415: "unsupported media type",
    422: "unprocessable request",
    500: "internal server error",
    503: "service unavailable",
}


class ApiError(Exception):
    """Raised by a view to answer with the JSON error shape; ``details`` become extra fields."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def error_response(status: int, message: str, **details: Any) -> Response:
    """A JSON error response in the service's one shape."""
    body = {"error": message, "status": status}
    body.update(details)
    response = jsonify(body)
    response.status_code = status
    return response


def _handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, **exc.details)


def _handle_http_exception(exc: HTTPException) -> Response:
    if isinstance(exc, InternalServerError):
        return _handle_unexpected(exc.original_exception or exc)
    status = exc.code or 500
    message = _MESSAGES.get(status, (exc.name or "error").lower())
    # A description set where the error was raised is specific; werkzeug's class default is not.
    if exc.description and exc.description != type(exc).description:
        message = exc.description
    details: dict[str, Any] = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        details["allowed"] = sorted(exc.valid_methods)
    if isinstance(exc, RequestEntityTooLarge) and request.max_content_length:
        details["max_body_bytes"] = request.max_content_length
    response = error_response(status, message, **details)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response


def out_of_descriptors(exc: BaseException) -> bool:
    """Whether ``exc`` is the process (or the system) running out of file descriptors."""
    return isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE)


def _handle_unexpected(exc: BaseException) -> Response:
    if out_of_descriptors(exc):
        # Not a fault of the code: a load balancer polling /readyz got a 500 and the log a
        # traceback on every poll (the HTTP worker already says so, once a minute).
        response = error_response(503, "the server is out of file descriptors; try again shortly")
        response.headers["Retry-After"] = "1"
        return response
    # Type and stack only: an exception's message may quote the comment, an email or an IP.
    stack = "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ else ""
    log.error("unhandled %s in %s %s\n%s", type(exc).__name__, request.method,
              request.url_rule.rule if request.url_rule else "(no route)", stack)
    return error_response(500, _MESSAGES[500])


def init_app(app: Flask) -> None:
    """Register the JSON error handlers on ``app`` (the whole app: every surface and 404s)."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)


__all__ = ["ApiError", "error_response", "init_app", "out_of_descriptors"]
