"""Cross-checking an upstream Akismet-compatible API, without ever depending on it.

Owns the policy: when to ask (the mode), the circuit breaker, the hard
deadline, how an answer combines with our verdict, the outcome counters and
the ``upstream`` JSON kept with each check. The wire is in
:mod:`service.upstream_client`; forwarding moderator reports in
:mod:`service.upstream_outbox`.

Our own verdict stands whenever the upstream is slow, down, refuses the key
(``invalid``), or answers anything but exactly ``true``/``false``. A caller
waits at most the budget (``COMMENTGUARD_UPSTREAM_BUDGET_MS``): the call runs
in a small per-process thread pool and is abandoned at the deadline even if a
socket is still trickling bytes.

Modes:

* ``shadow``: ask for every check, record the answer, never change the verdict.
* ``gray``: ask only when the verdict's tier is in
  ``COMMENTGUARD_UPSTREAM_GRAY_TIERS`` (default ``unsure``; ``unsure,spam`` also
  asks before blocking) or, when set, the score lies in
  ``COMMENTGUARD_UPSTREAM_GRAY_BAND``; its answer decides: ``true`` → ``spam``
  (a ``discard`` stays ``discard``), ``false`` → ``ham``. Elsewhere the outcome
  is ``skipped_mode`` and no call is made.
* ``always``: ask for every check and combine by one rule, **one step toward
  the upstream when the two disagree**, on the scale ham < unsure < spam <
  discard: upstream spam turns our ``ham`` into ``unsure`` and our ``unsure``
  into ``spam``; upstream ham turns our ``unsure`` into ``ham``, our ``spam``
  into ``unsure`` and our ``discard`` into ``spam``. Agreement (upstream spam
  with our spam/discard, upstream ham with our ham) changes nothing. Neither
  side alone can flip a confident verdict to the opposite one: a strong
  disagreement lands in the moderation queue, where a person decides. On the
  ``unsure`` tier this is exactly the gray rule.

When an answer was used (gray, always) the reasons start with
``upstream: spam`` / ``upstream: ham`` (weight 0). The score stays the model's.

Outcomes, counted in-process (:attr:`Upstream.counters`) and stored with the
check: ``agreed``/``disagreed`` (our verdict *before* combining, as the
Akismet surface would answer it, i.e. ``unsure`` counted by
``COMMENTGUARD_AKISMET_UNSURE_AS_SPAM``, against the upstream's),
``timeout``, ``error``, ``invalid_key``, ``skipped_breaker``, ``skipped_mode``, and
``skipped_fields``: Akismet requires ``blog`` and ``user_ip``, so a JSON API
check without them is not sent (it would only be refused, and count against
the breaker).

The circuit breaker (one per worker process): after
``COMMENTGUARD_UPSTREAM_BREAKER_FAILURES`` consecutive failures (timeout,
error, invalid key: a refused key does not fix itself between two comments)
it opens and the upstream is not asked for
``COMMENTGUARD_UPSTREAM_BREAKER_OPEN_SECONDS``; then it is half-open and the
next check is a probe (the others meanwhile skip); the probe's success closes
it, its failure opens it again for another period.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Any, Callable, Optional, Sequence

from model.comment import Comment
from model.verdict import DISCARD, HAM, SPAM, UNSURE, Reason, Thresholds, Verdict
from service.metrics import count_upstream
from service.akismet_rules import is_flagged
from service.settings import Settings
from service.upstream_client import MIN_ATTEMPT_S, SPAM_ANSWER, TIMEOUT, UpstreamAnswer, UpstreamClient

log = logging.getLogger(__name__)

OFF, SHADOW, GRAY, ALWAYS = "off", "shadow", "gray", "always"
AGREED, DISAGREED = "agreed", "disagreed"
SKIPPED_BREAKER, SKIPPED_MODE, SKIPPED_FIELDS = "skipped_breaker", "skipped_mode", "skipped_fields"
OUTCOMES: tuple[str, ...] = (AGREED, DISAGREED, "timeout", "error", "invalid_key", SKIPPED_BREAKER, SKIPPED_MODE,
                             SKIPPED_FIELDS)
_TIER_ORDER: tuple[str, ...] = (HAM, UNSURE, SPAM, DISCARD)
#: At most this many upstream calls run at once per worker process (a batch shares them).
POOL_SIZE = 16

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker: closed → open (``open_seconds``) → half-open (one probe) → closed."""

    def __init__(self, failures_to_open: int, open_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures_to_open = failures_to_open
        self.open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened_count = 0

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.open_seconds:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state only the first caller (the probe) may."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.open_seconds:
                    return False
                self._state = HALF_OPEN
            if self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        with self._lock:
            if self._state != CLOSED:
                log.info("upstream circuit breaker closed")
            self._state, self._failures, self._probing = CLOSED, 0, False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or (self._state == CLOSED and self._failures >= self.failures_to_open):
                self._open()
            self._probing = False

    def release(self) -> None:
        """A permitted call that was never made (queued past its deadline): let another probe go."""
        with self._lock:
            self._probing = False

    def _open(self) -> None:
        if self._state != OPEN:
            self.opened_count += 1
            log.warning("upstream circuit breaker open for %.1f s after %d failures",
                        self.open_seconds, self._failures)
        self._state, self._opened_at = OPEN, self._clock()


class UpstreamCounters:
    """Thread-safe counts per outcome, plus ``calls`` (checks that went out) and ``requests`` (HTTP attempts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {name: self._counts.get(name, 0) for name in (*OUTCOMES, "calls", "requests")}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def combine(mode: str, verdict: Verdict, upstream_spam: bool) -> Verdict:
    """Our verdict after the upstream's answer, by the mode's rule (see the module docstring)."""
    if mode == SHADOW:
        return verdict
    tier = verdict.tier
    if mode == GRAY:
        new_tier = (tier if tier in (SPAM, DISCARD) else SPAM) if upstream_spam else HAM
    else:
        agree = tier in (SPAM, DISCARD) if upstream_spam else tier == HAM
        index = _TIER_ORDER.index(tier)
        new_tier = tier if agree else _TIER_ORDER[index + 1 if upstream_spam else index - 1]
    reason = Reason(f"upstream: {'spam' if upstream_spam else 'ham'}", 0.0)
    return replace(verdict, tier=new_tier, reasons=(reason,) + tuple(verdict.reasons))


class Upstream:
    """One app's upstream cross-check: client, breaker, counters, thread pool, and the feedback forwarder."""

    def __init__(self, settings: Settings, client: Optional[UpstreamClient] = None,
                 forwarder: Any = None) -> None:
        self.mode = settings.upstream_mode
        self.budget_s = settings.upstream_budget_ms / 1000.0
        self.band = settings.upstream_gray_band
        self.gray_tiers = frozenset(settings.upstream_gray_tiers)
        self.unsure_is_spam = settings.unsure_is_spam
        self.client = client or UpstreamClient(settings.upstream_url, settings.upstream_key, pool_size=POOL_SIZE)
        self.breaker = CircuitBreaker(settings.upstream_breaker_failures, settings.upstream_breaker_open_seconds)
        self.counters = UpstreamCounters()
        self.forwarder = forwarder
        self._executor: Optional[ThreadPoolExecutor] = None
        self._executor_pid: Optional[int] = None
        self._lock = threading.Lock()

    @property
    def checking(self) -> bool:
        return self.mode != OFF

    def check(self, comment: Comment, verdict: Verdict, thresholds: Thresholds, *,
              blog: str = "", spent_s: float = 0.0) -> tuple[Verdict, Optional[dict[str, Any]]]:
        """Our verdict after consulting the upstream (per the mode), and the JSON to keep with the check."""
        return self.check_many([comment], [verdict], thresholds, blog=blog, spent_s=spent_s)[0]

    def check_many(self, comments: Sequence[Comment], verdicts: Sequence[Verdict], thresholds: Thresholds, *,
                   blog: str = "", spent_s: float = 0.0) -> list[tuple[Verdict, Optional[dict[str, Any]]]]:
        """:meth:`check` for several comments at once: asked concurrently, within one shared budget.

        ``spent_s`` is how long the request has already taken (parsing, scoring a batch): the
        budget bounds the whole answer, so that much less is left for the upstream.
        """
        if not self.checking:
            return [(v, None) for v in verdicts]
        deadline = time.monotonic() + self.budget_s - max(0.0, spent_s)
        pending: dict[int, tuple[Future[UpstreamAnswer], float]] = {}
        answers: dict[int, Optional[UpstreamAnswer]] = {}
        outcomes: dict[int, str] = {}
        for i, (comment, verdict) in enumerate(zip(comments, verdicts)):
            if not self._wants(verdict, thresholds):
                outcomes[i] = SKIPPED_MODE
            elif not comment.user_ip.strip() or not (comment.blog or blog).strip():
                outcomes[i] = SKIPPED_FIELDS
            elif not self.breaker.allow():
                outcomes[i] = SKIPPED_BREAKER
            else:
                pending[i] = (self.executor().submit(self._ask, comment, blog, deadline), time.monotonic())
        for i, (future, started) in pending.items():
            answers[i] = self._wait(future, started, deadline)
        results = []
        for i, verdict in enumerate(verdicts):
            results.append(self._result(verdict, answers.get(i), outcomes.get(i)))
        return results

    def executor(self) -> ThreadPoolExecutor:
        """This process's pool of upstream callers, created on first use (and again after a fork)."""
        with self._lock:
            if self._executor is None or self._executor_pid != os.getpid():
                self._executor = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="commentguard-upstream")
                self._executor_pid = os.getpid()
            return self._executor

    def close(self) -> None:
        """Stop the forwarder, the pool and the session (idempotent)."""
        if self.forwarder is not None:
            self.forwarder.close()
        with self._lock:
            if self._executor is not None and self._executor_pid == os.getpid():
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self.client.close()

    # --- steps ------------------------------------------------------------------------------

    def _wants(self, verdict: Verdict, thresholds: Thresholds) -> bool:
        if self.mode != GRAY:
            return True
        if self.band is not None:
            return self.band[0] <= verdict.score < self.band[1]
        return verdict.tier in self.gray_tiers

    def _ask(self, comment: Comment, blog: str, deadline: float) -> UpstreamAnswer:
        left = deadline - time.monotonic()
        if left < MIN_ATTEMPT_S:
            return UpstreamAnswer(TIMEOUT, "queued past the deadline", 0, attempts=0)
        answer = self.client.comment_check(comment, blog=blog, budget_s=left)
        self.counters.add("calls")
        self.counters.add("requests", answer.attempts)
        return answer

    def _wait(self, future: "Future[UpstreamAnswer]", started: float, deadline: float) -> UpstreamAnswer:
        try:
            answer = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            if future.cancel():  # never started: not the upstream's fault
                self.breaker.release()
                return UpstreamAnswer(TIMEOUT, "queued past the deadline", 0, attempts=0)
            answer = UpstreamAnswer(TIMEOUT, "deadline", int((time.monotonic() - started) * 1000))
        except Exception as exc:  # noqa: BLE001 - the client should not raise; never let it reach a request
            log.error("upstream call failed unexpectedly: %s", type(exc).__name__)
            answer = UpstreamAnswer("error", type(exc).__name__, int((time.monotonic() - started) * 1000))
        if answer.attempts == 0 and answer.outcome == TIMEOUT:
            self.breaker.release()
        elif answer.ok:
            self.breaker.success()
        else:
            self.breaker.failure()
        return answer

    def _result(self, verdict: Verdict, answer: Optional[UpstreamAnswer],
                skipped: Optional[str]) -> tuple[Verdict, dict[str, Any]]:
        record: dict[str, Any] = {"mode": self.mode, "outcome": skipped, "upstream": None, "answer": None,
                                  "ms": 0, "ours": verdict.tier}
        if answer is not None:
            record.update(answer=answer.answer, ms=answer.ms)
            if answer.ok:
                upstream_spam = answer.outcome == SPAM_ANSWER
                ours_spam = is_flagged(verdict.tier, self.unsure_is_spam)
                record.update(outcome=AGREED if ours_spam == upstream_spam else DISAGREED,
                              upstream="spam" if upstream_spam else "ham")
                verdict = combine(self.mode, verdict, upstream_spam)
            else:
                record["outcome"] = answer.outcome
        self.counters.add(record["outcome"])
        count_upstream(record["outcome"])  # commentguard_upstream_total{outcome}
        return verdict, record


def build_upstream(settings: Settings, store: Any = None) -> Optional[Upstream]:
    """The app's :class:`Upstream`, or ``None`` when the mode is off and no feedback is forwarded."""
    if settings.upstream_mode == OFF and not settings.upstream_forward_feedback:
        return None
    upstream = Upstream(settings)
    if settings.upstream_forward_feedback and store is not None:
        from service.upstream_outbox import FeedbackForwarder

        upstream.forwarder = FeedbackForwarder(store, upstream.client).start()
    return upstream


__all__ = ["ALWAYS", "CircuitBreaker", "GRAY", "OFF", "OUTCOMES", "SHADOW", "Upstream", "UpstreamCounters",
           "build_upstream", "combine"]
