"""Prometheus metrics (``GET /metrics``): what the service counts and how a scrape renders it.

The metrics:

* ``commentguard_checks_total{verdict, surface}``: every check answered, counted when it is
  queued for the check log (where every check passes,
  :meth:`service.recorder.Recorder.record_check`), whether or not it is ever written;
* the check log's own figures, from its writer: ``commentguard_check_log_written_total``
  (checks stored), ``commentguard_check_log_lost_total{reason}`` (dropped: ``queue_full``,
  ``refused`` by the store for their values, ``shutdown`` with nowhere to keep them),
  ``commentguard_check_log_write_failures_total`` (attempts the store did not take),
  ``commentguard_check_log_queued`` (checks waiting, summed over live workers) and
  ``commentguard_check_log_failing_seconds`` (how long the longest-failing live worker's
  writes have failed; 0 while they go through), both as of each writer's last attempt;
* ``commentguard_check_duration_seconds{surface}``: request time of the check endpoints;
* ``commentguard_upstream_total{outcome}``: upstream cross-check outcomes
  (the upstream client calls :func:`count_upstream`);
* ``commentguard_feedback_total{label, source}``: moderator feedback stored;
* ``commentguard_model_info{version}``: 1 for the model version a live worker serves;
* ``commentguard_check_verdict_share{verdict}``: each verdict's share of all
  checks, computed at scrape from the counter (0 when there were none).

Under gunicorn each worker is a process, so the counts must be summed across
them: ``commentguard serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh,
empty directory per server start (:func:`prepare_multiprocess_dir`), each worker
writes its values to files there, a scrape (answered by any one worker) merges
them, and gunicorn's ``child_exit`` hook calls :func:`mark_process_dead` so a
dead worker's gauges disappear (its counters stay counted). Without the
variable (tests, a single process) the default in-process registry is used.

The metric objects are process-wide, unlike the rest of the app's state (which
lives in ``app.extensions``): prometheus_client registers each name once per
registry, and a counter must survive app re-creation within a process. They are
created on first use rather than at import, because prometheus_client picks its
value storage (in memory or multiprocess files) from the environment, and the
gunicorn master may import this module before ``commentguard serve`` sets the
variable. No label ever holds request data: verdicts, surfaces, outcomes,
labels and sources are fixed vocabularies, the version comes from the artifact.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from flask import Flask, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest, values)
from prometheus_client.core import GaugeMetricFamily, Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
VERDICTS: tuple[str, ...] = ("ham", "unsure", "spam", "discard")
#: Check latency buckets (seconds): the service answers in a few milliseconds; the tail matters.
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1,
                                      0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class _Metrics:
    checks: Counter
    check_seconds: Histogram
    upstream: Counter
    feedback: Counter
    model: Gauge
    auth_failures: Counter
    log_written: Counter
    log_lost: Counter
    log_failures: Counter
    log_queued: Gauge
    log_failing: Gauge


_lock = threading.Lock()
_metrics: Optional[_Metrics] = None
_model_version: Optional[str] = None
#: Labelled children of the per-check metrics, by label values: ``labels()`` takes a lock and
#: validates its arguments on every call; a child, once made, is the same object for good.
_check_children: dict[tuple[str, str], Any] = {}
_seconds_children: dict[str, Any] = {}


def multiprocess_enabled() -> bool:
    """True when the values go to files in ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn workers)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def _get() -> _Metrics:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                if multiprocess_enabled() and values.ValueClass.__name__ != "MmapedValue":
                    # prometheus_client was imported before the variable was set (the gunicorn
                    # master imports it before `serve` sets it); pick the file-backed values now.
                    values.ValueClass = values.get_value_class()
                _metrics = _Metrics(
                    checks=Counter("commentguard_checks", "Checks answered (and queued for the check log), "
                                   "by verdict and surface.", ["verdict", "surface"]),
                    check_seconds=Histogram("commentguard_check_duration_seconds",
                                            "Time to answer a check request, by surface.", ["surface"],
                                            buckets=LATENCY_BUCKETS),
                    upstream=Counter("commentguard_upstream", "Upstream cross-check outcomes.", ["outcome"]),
                    feedback=Counter("commentguard_feedback", "Moderator feedback stored, by label and source.",
                                     ["label", "source"]),
                    auth_failures=Counter("commentguard_auth_failures",
                                          "Requests with an unknown, revoked or malformed API key."),
                    # livemax: a version shows 1 while any live worker serves it.
                    model=Gauge("commentguard_model_info", "The model version a live worker serves (1).",
                                ["version"], multiprocess_mode="livemax"),
                    log_written=Counter("commentguard_check_log_written", "Checks written to the store."),
                    log_lost=Counter("commentguard_check_log_lost", "Checks dropped from the check log, by "
                                     "reason: queue_full, refused (by the store, for their values), shutdown.",
                                     ["reason"]),
                    log_failures=Counter("commentguard_check_log_write_failures",
                                         "Check log write attempts that the store did not take."),
                    log_queued=Gauge("commentguard_check_log_queued", "Checks waiting to be written, as of "
                                     "each worker's last write attempt.", multiprocess_mode="livesum"),
                    log_failing=Gauge("commentguard_check_log_failing_seconds", "How long a worker's check "
                                      "log writes have been failing (0: writing), as of its last attempt.",
                                      multiprocess_mode="livemax"),
                )
    return _metrics


# --- what the service calls --------------------------------------------------------------

def count_check(verdict: str, surface: str) -> None:
    """One check recorded with ``verdict`` (tier) on ``surface`` (``json``, ``akismet``)."""
    child = _check_children.get((verdict, surface))
    if child is None:
        child = _check_children.setdefault((verdict, surface),
                                           _get().checks.labels(verdict=verdict, surface=surface))
    child.inc()


def observe_check_seconds(surface: str, seconds: float) -> None:
    """The time one check request took to answer."""
    child = _seconds_children.get(surface)
    if child is None:
        child = _seconds_children.setdefault(surface, _get().check_seconds.labels(surface=surface))
    child.observe(seconds)


#: Why the check log drops a check (``commentguard_check_log_lost_total{reason}``).
LOST_REASONS: tuple[str, ...] = ("queue_full", "refused", "shutdown")


def count_checks_written(count: int) -> None:
    """``count`` checks went into the store (the check log's writer, once per transaction)."""
    _get().log_written.inc(count)


def count_checks_lost(reason: str, count: int = 1) -> None:
    """``count`` checks were dropped from the check log, for ``reason`` (one of :data:`LOST_REASONS`)."""
    _get().log_lost.labels(reason=reason).inc(count)


def count_check_log_failure() -> None:
    """One write attempt of the check log failed because of the store."""
    _get().log_failures.inc()


def set_check_log_state(queued: int, failing_seconds: float) -> None:
    """This worker's check log: checks waiting, and how long its writes have failed (0: writing)."""
    metrics = _get()
    metrics.log_queued.set(queued)
    metrics.log_failing.set(failing_seconds)


def count_upstream(outcome: str) -> None:
    """One upstream cross-check ended with ``outcome`` (a short fixed word: ``spam``, ``ham``, ``error``, ...)."""
    _get().upstream.labels(outcome=outcome).inc()


def count_auth_failure() -> None:
    """One request came with an API key that is not a live one (guessing shows here)."""
    _get().auth_failures.inc()


def count_feedback(label: str, source: str) -> None:
    """One moderator label stored (``spam``/``ham``) from ``source`` (``api``, ``akismet``, ...)."""
    _get().feedback.labels(label=label, source=source).inc()


def set_model_version(version: Optional[str]) -> None:
    """Say which model version this process serves now (call after loading or reloading one)."""
    global _model_version
    metrics = _get()
    with _lock:
        if _model_version == version:
            return
        if _model_version is not None:
            metrics.model.labels(version=_model_version).set(0)
        if version is not None:
            metrics.model.labels(version=version).set(1)
        _model_version = version


# --- a scrape -----------------------------------------------------------------------------

class _Families:
    """A collector-like object over already collected families, for ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def _source() -> Any:
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def verdict_shares(families: Iterable[Metric]) -> GaugeMetricFamily:
    """Each verdict's share of all checks, from the collected ``commentguard_checks`` counter."""
    totals = {v: 0.0 for v in VERDICTS}
    for family in families:
        if family.name != "commentguard_checks":
            continue
        for sample in family.samples:
            if sample.name == "commentguard_checks_total":
                verdict = sample.labels.get("verdict", "")
                totals[verdict] = totals.get(verdict, 0.0) + sample.value
    all_checks = sum(totals.values())
    share = GaugeMetricFamily("commentguard_check_verdict_share",
                              "Share of all checks (since the server started) that got each verdict.",
                              labels=["verdict"])
    for verdict, count in totals.items():
        share.add_metric([verdict], count / all_checks if all_checks else 0.0)
    return share


def render() -> tuple[bytes, str]:
    """The exposition text of every metric (merged across workers) and its content type."""
    _get()  # so the families exist (with no samples) before the first check
    families = list(_source().collect())
    families.append(verdict_shares(families))
    return generate_latest(_Families(families)), CONTENT_TYPE_LATEST  # type: ignore[arg-type]


# --- the app ------------------------------------------------------------------------------

#: Flask endpoints that score comments, and the surface each belongs to.
CHECK_ENDPOINTS: dict[str, str] = {"api.check": "json", "api.check_batch": "json",
                                   "akismet.comment_check": "akismet"}


def declare_series(*, verdicts: Sequence[str], surfaces: Sequence[str], labels: Sequence[str],
                   sources: Sequence[str], outcomes: Sequence[str]) -> None:
    """Create every series of the fixed vocabularies at 0, so that a scrape right after a start
    has them (dashboards showed "no data" until the first event, and ``rate()`` missed it)."""
    for verdict in verdicts:
        for surface in surfaces:
            _check_children.setdefault((verdict, surface), _get().checks.labels(verdict=verdict, surface=surface))
    for surface in surfaces:
        _seconds_children.setdefault(surface, _get().check_seconds.labels(surface=surface))
    for label in labels:
        for source in sources:
            _get().feedback.labels(label=label, source=source)
    for outcome in outcomes:
        _get().upstream.labels(outcome=outcome)
    _get().auth_failures.inc(0)
    _get().log_written.inc(0)
    _get().log_failures.inc(0)
    for reason in LOST_REASONS:
        _get().log_lost.labels(reason=reason)


def init_app(app: Flask) -> None:
    """Time the check endpoints into the latency histogram.

    The start time is ``g.request_started``, set by :mod:`service.logging_setup`'s
    first ``before_request`` hook (one hook fewer per request than a timer of our own).
    """

    @app.after_request
    def _observe(response: Response) -> Response:
        surface = CHECK_ENDPOINTS.get(request.endpoint or "")
        if surface is not None:
            started = g.get("request_started")
            if started is not None:
                observe_check_seconds(surface, time.perf_counter() - started)
        return response


# --- gunicorn wiring ----------------------------------------------------------------------

def prepare_multiprocess_dir(parent: Optional[Path] = None) -> Path:
    """Create a fresh, empty directory for this server's metric files and export it to workers.

    Called by ``commentguard serve`` before gunicorn forks: files of an earlier
    run would otherwise be summed into this one's counts.
    """
    path = Path(tempfile.mkdtemp(prefix="commentguard-metrics-", dir=parent))
    for child in path.iterdir():  # mkdtemp is fresh; cleared anyway, as the contract says
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def remove_multiprocess_dir(path: Path) -> None:
    """Remove the metric files directory when the server stops."""
    shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn ``child_exit`` hook); no-op without multiprocess."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


__all__ = ["CHECK_ENDPOINTS", "CONTENT_TYPE_LATEST", "init_app", "LOST_REASONS", "MULTIPROC_ENV", "VERDICTS",
           "count_check", "count_check_log_failure", "count_checks_lost", "count_checks_written", "count_feedback",
           "count_upstream", "set_check_log_state", "mark_process_dead", "multiprocess_enabled", "observe_check_seconds",
           "prepare_multiprocess_dir", "remove_multiprocess_dir", "render", "set_model_version",
           "verdict_shares"]
