"""The HTTP client of an upstream Akismet-compatible API: one call, one time budget, one retry at most.

Owns the wire: the form a comment-check or submit call carries, the pooled
``requests.Session`` (one per worker process, made on first use and remade
after a fork, because a pooled socket must never be shared between processes),
and turning whatever comes back into an :class:`UpstreamAnswer`. It never
raises into a request: every failure is an answer with an outcome.

A comment-check gets a *total* budget. Each attempt's connect and read
timeouts come from what is left of it; a second attempt is made only after a
failure that says nothing about the comment (a refused or reset connection, a
5xx) and only when at least :data:`MIN_ATTEMPT_S` of the budget remains. A
read timeout is not retried: it has spent the budget. Since a read timeout in
``requests`` bounds each socket read rather than the whole answer, the caller
(:mod:`service.upstream`) also waits on the call with a hard deadline.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import requests
from requests.adapters import HTTPAdapter

from model.comment import TEXT_FIELDS, Comment

# The wire outcomes of one call; the policy adds agreed/disagreed/skipped_* on top.
SPAM_ANSWER = "spam"
HAM_ANSWER = "ham"
TIMEOUT = "timeout"
ERROR = "error"
INVALID_KEY = "invalid_key"

#: The least time worth starting an attempt with (a retry with less left is skipped).
MIN_ATTEMPT_S = 0.05
#: Largest answer body read: a verdict is five bytes, anything longer is not one.
MAX_BODY_BYTES = 4096
USER_AGENT = "CommentGuard/0.1 | upstream-cross-check"
#: Connect and per-read timeouts of a forwarded report.
SUBMIT_TIMEOUT_S = (3.05, 10.0)
#: The most a forwarded report may take in all: a per-read timeout alone lets an answer trickle
#: in for ever, past the outbox's lease (another sender would then send the report again).
SUBMIT_DEADLINE_S = 30.0
#: Answers with which an upstream refuses a report for what it is (Akismet's protocol errors,
#: and ours): sending it again changes nothing. Any other answer may be a passing failure
#: ("Temporarily unavailable: ...", a proxy's error page) and is retried.
PERMANENT_REFUSALS = ("Missing required field", "Request body too large")


@dataclass(frozen=True)
class UpstreamAnswer:
    """What one upstream call came to.

    ``outcome`` is ``spam``/``ham`` for a good answer (exactly ``true``/``false``),
    else ``timeout``, ``error`` or ``invalid_key``; ``answer`` is the body (cut
    to 40 characters) or the transport error's class name; ``ms`` the time spent.
    """

    outcome: str
    answer: str
    ms: int
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.outcome in (SPAM_ANSWER, HAM_ANSWER)


def comment_form(comment: Comment, *, api_key: str, blog: str) -> dict[str, Any]:
    """The form of a comment-check or submit call: the comment's Akismet fields, the key and the blog.

    Only the Akismet fields travel (not the extra server variables a client
    sent us), and ``is_test`` passes through so a test is a test upstream too.
    """
    form: dict[str, Any] = {name: getattr(comment, name) for name in TEXT_FIELDS if getattr(comment, name)}
    form["blog"] = comment.blog or blog
    form["api_key"] = api_key
    if comment.comment_context:
        form["comment_context[]"] = list(comment.comment_context)
    return form


class UpstreamClient:
    """Calls one upstream base URL with one key; thread-safe, one pooled session per process."""

    def __init__(self, base_url: str, api_key: str, *, pool_size: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.pool_size = pool_size
        self._session: Optional[requests.Session] = None
        self._session_pid: Optional[int] = None
        self._lock = threading.Lock()

    def session(self) -> requests.Session:
        """This process's session, created on first use (and again in a forked child)."""
        pid = os.getpid()
        with self._lock:
            if self._session is None or self._session_pid != pid:
                session = requests.Session()
                adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.headers["User-Agent"] = USER_AGENT
                self._session, self._session_pid = session, pid
            return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None and self._session_pid == os.getpid():
                self._session.close()
            self._session = None

    def comment_check(self, comment: Comment, *, blog: str, budget_s: float) -> UpstreamAnswer:
        """Ask ``/1.1/comment-check`` within ``budget_s`` seconds in all, retrying once at most."""
        form = comment_form(comment, api_key=self.api_key, blog=blog)
        start = time.monotonic()
        deadline = start + budget_s
        answer = self._attempt(form, deadline)
        attempts = 1
        if answer.outcome == ERROR and answer.answer in _RETRYABLE and deadline - time.monotonic() >= MIN_ATTEMPT_S:
            answer = self._attempt(form, deadline)
            attempts = 2
        return UpstreamAnswer(answer.outcome, answer.answer, int((time.monotonic() - start) * 1000), attempts)

    def submit(self, label: str, form: Mapping[str, Any]) -> None:
        """POST a ``submit-spam``/``submit-ham``; raises :class:`UpstreamSubmitError` unless it was accepted."""
        path = "/1.1/submit-spam" if label == "spam" else "/1.1/submit-ham"
        body = {**form, "api_key": self.api_key}
        deadline = time.monotonic() + SUBMIT_DEADLINE_S
        try:
            response = self.session().post(self.base_url + path, data=body, timeout=SUBMIT_TIMEOUT_S, stream=True)
            try:
                text = _read_body(response, deadline).decode("utf-8", "replace").strip()
            finally:
                response.close()
        except (requests.RequestException, _BudgetSpent) as exc:
            raise UpstreamSubmitError(type(exc).__name__) from exc
        if response.status_code != 200:
            raise UpstreamSubmitError(f"HTTP {response.status_code}")
        if text == "invalid":
            raise UpstreamSubmitError("invalid key")
        if text.startswith("Thanks"):
            return
        refused = f"refused: {text[:60]!r}"
        raise UpstreamSubmitError(refused, permanent=text.startswith(PERMANENT_REFUSALS))

    def _attempt(self, form: Mapping[str, Any], deadline: float) -> UpstreamAnswer:
        left = deadline - time.monotonic()
        if left < MIN_ATTEMPT_S / 2:
            return UpstreamAnswer(TIMEOUT, "budget spent", 0)
        try:
            # Connect within half of what is left, so a black-holed SYN still leaves room to report.
            response = self.session().post(self.base_url + "/1.1/comment-check", data=form,
                                           timeout=(max(left / 2, MIN_ATTEMPT_S / 2), left), stream=True)
            try:
                body = _read_body(response, deadline)
            finally:
                response.close()
        except (requests.Timeout, _BudgetSpent) as exc:
            return UpstreamAnswer(TIMEOUT, type(exc).__name__, 0)
        except requests.RequestException as exc:
            # ConnectionError covers refused and reset connections; name the class only.
            return UpstreamAnswer(ERROR, _error_name(exc), 0)
        if response.status_code >= 500:
            return UpstreamAnswer(ERROR, f"HTTP {response.status_code}", 0)
        return parse_answer(response.status_code, body)


def parse_answer(status: int, body: bytes) -> UpstreamAnswer:
    """A response's outcome: only exactly ``true``/``false`` (HTTP 200) is an answer; ``invalid`` a refused key.

    A body longer than :data:`MAX_BODY_BYTES` is none of these, whatever it starts with.
    """
    if len(body) > MAX_BODY_BYTES:
        return UpstreamAnswer(ERROR, "answer too long" if status == 200 else f"HTTP {status}", 0)
    text = body.decode("utf-8", "replace").strip()
    if status == 200 and text == "true":
        return UpstreamAnswer(SPAM_ANSWER, text, 0)
    if status == 200 and text == "false":
        return UpstreamAnswer(HAM_ANSWER, text, 0)
    if status == 200 and text == "invalid":
        return UpstreamAnswer(INVALID_KEY, text, 0)
    shown = text[:40] if status == 200 else f"HTTP {status}"
    return UpstreamAnswer(ERROR, shown, 0)


class UpstreamSubmitError(Exception):
    """Raised by :meth:`UpstreamClient.submit` when the upstream did not accept a report.

    ``permanent``: the upstream answered, and refused this report for what it is
    (not for being down, or for the key); retrying cannot help.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class _BudgetSpent(Exception):
    """Raised while reading an answer body that is still arriving when the budget runs out."""


_RETRYABLE = frozenset({"ConnectionError", "ChunkedEncodingError", "HTTP 500", "HTTP 502", "HTTP 503",
                        "HTTP 504"})


def _error_name(exc: BaseException) -> str:
    name = type(exc).__name__
    return "ConnectionError" if isinstance(exc, requests.ConnectionError) else name


def _read_body(response: requests.Response, deadline: float) -> bytes:
    """The body, read by the deadline; past :data:`MAX_BODY_BYTES`, stopped (longer than that, not cut)."""
    chunks: list[bytes] = []
    size = 0
    # A byte at a time: a larger read waits until it is full (or the body ends), so an answer
    # trickling in would pass the deadline unnoticed. Verdicts are five bytes; the rest is rare.
    for chunk in response.iter_content(chunk_size=1):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            break
        if time.monotonic() > deadline:
            raise _BudgetSpent("the answer was still arriving when the budget ran out")
    return b"".join(chunks)


__all__ = ["ERROR", "HAM_ANSWER", "INVALID_KEY", "SPAM_ANSWER", "TIMEOUT", "UpstreamAnswer", "UpstreamClient",
           "UpstreamSubmitError", "comment_form", "parse_answer"]
