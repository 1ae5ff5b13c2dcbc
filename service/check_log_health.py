"""Whether a worker's check log is being written: the recorder's health, for logs, metrics and ``/readyz``.

A check log the store would not take was visible only as error lines: through minutes of a full
disk, a lock or a read-only file ``/readyz`` stayed 200 with nothing to say, ``/metrics`` had no
figure for checks queued or lost, nothing was logged when writing resumed, and a report that
came meanwhile could not tell "not written yet" from "no such check" (a probe, 2026-11-28).

:class:`WriteHealth` keeps, for one :class:`service.recorder.Recorder`, since when its writes
have been failing (the start of the first failed attempt of the current run of failures), how
many attempts failed and what the last failure was (:func:`store.error_text.error_text`: no
personal data). The recorder tells it of every attempt's outcome; a change between writing and
failing calls ``on_change`` (the app publishes it to the other workers, :mod:`service.readiness`)
and writing again after failures is logged with what the outage cost.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

from service.metrics import count_check_log_failure, set_check_log_state

log = logging.getLogger(__name__)

#: How long the check log must have been failing before ``/readyz`` says ``degraded``: a lock
#: held for a few seconds (a backup, a command-line write) is no news for an operator.
DEGRADED_AFTER_SECONDS = 30.0


class WriteHealth:
    """The run of failed writes a recorder is in, if any. Thread-safe; O(1) per call."""

    def __init__(self, on_change: Optional[Callable[[], None]] = None) -> None:
        self.on_change = on_change
        self._lock = threading.Lock()
        self._since: Optional[float] = None        # monotonic start of the first failed attempt
        self._since_wall: Optional[float] = None   # the same moment by the wall clock, for other processes
        self._attempts = 0
        self.last_error = ""

    @property
    def failing(self) -> bool:
        """Whether the last write attempt failed because of the store (not a record's values)."""
        return self._since is not None

    def failing_seconds(self) -> float:
        """How long writes have been failing (0 while they go through)."""
        since = self._since
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    @property
    def failing_since_wall(self) -> Optional[float]:
        """When (Unix time) the current run of failures began, or None."""
        return self._since_wall

    def failed(self, started: float, error: str, queued: int) -> None:
        """An attempt that began at ``started`` (monotonic) found the store unreachable."""
        with self._lock:
            began = self._since is None
            if began:
                self._since = started
                self._since_wall = time.time() - (time.monotonic() - started)
            self._attempts += 1
            self.last_error = error
        count_check_log_failure()
        set_check_log_state(queued, self.failing_seconds())
        if began and self.on_change is not None:
            self.on_change()

    def wrote(self, queued: int) -> None:
        """An attempt wrote what it took (records refused for their values aside)."""
        with self._lock:
            since, attempts = self._since, self._attempts
            self._since = self._since_wall = None
            self._attempts = 0
        set_check_log_state(queued, 0.0)
        if since is None:
            return
        log.warning("the check log is being written again, after %.1f s and %d failed attempts "
                    "(last: %s); %d checks still queued", time.monotonic() - since, attempts,
                    self.last_error, queued)
        if self.on_change is not None:
            self.on_change()

    def status(self, queued: int) -> dict[str, Any]:
        """What ``/readyz`` says of this worker's check log."""
        if self._since is None:
            return {"status": "writing", "queued": queued}
        return {"status": "failing", "queued": queued, "failing_seconds": round(self.failing_seconds(), 1),
                "failed_attempts": self._attempts, "error": self.last_error}


__all__ = ["DEGRADED_AFTER_SECONDS", "WriteHealth"]
