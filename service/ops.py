"""Operator endpoints: liveness (``/healthz``), readiness (``/readyz``) and metrics (``/metrics``).

``/readyz`` stays 200 while the check log cannot be written (checks are still answered: taking
the instance out of a load balancer would turn a logging outage into refused checks), but says
``"status": "degraded"`` once any worker's check log has failed for
:data:`service.check_log_health.DEGRADED_AFTER_SECONDS`, and ``check_log`` says why.

Neither needs an API key or touches the model beyond asking whether it loaded:
orchestrators call them often, and a liveness probe must not fail just because
the model is missing (restarting the process would not bring it back).
"""
from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify

from service import check_log_health, metrics, readiness
from service.app import ServiceState, get_state
from service.errors import error_response

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and answering."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """The model is loaded and checks can be scored; 503 with the reason otherwise."""
    state = get_state()
    # The registry's view (active version, a refused artifact), from service.model_watch.
    registry = state.watcher.status() if state.watcher is not None else {}
    # Not ready also with a SQLite file deleted or replaced under the running service
    # (store.sqlite_file): checks are still answered (keys the worker knows) and queued, but
    # nothing reaches the database.
    ready, reason = readiness.state_readiness(state)
    readiness.publish_state(state, (ready, reason))
    if not ready or state.scorer is None:
        # "not ready" when the model is there and something else is missing (the store).
        return error_response(503, "model not loaded" if state.scorer is None else "not ready",
                              reason=reason or "no model", **registry)
    others = readiness.others_not_ready()
    if others:
        # Another worker of this server would answer checks with 503: so is the server.
        pid, reason = others[0]
        return error_response(503, "not ready", reason=f"worker {pid} is not ready: {reason}",
                              workers_not_ready=[{"pid": p, "reason": r} for p, r in others], **registry)
    # What the checks are answered with: an operator tuning thresholds could see them nowhere.
    effective = state.thresholds or state.scorer.thresholds
    check_log, degraded = _check_log(state)
    return jsonify({"status": "degraded" if degraded else "ready", "model_version": state.scorer.version,
                    "scoring_engine": state.scorer.engine, "mode": state.settings.mode,
                    "thresholds": {**effective.to_dict(), "overridden": state.settings.has_threshold_overrides},
                    **registry, "check_log": check_log, "sender_history": _sender_history(state)})


def _sender_history(state: ServiceState) -> dict[str, Any]:
    """This worker's table of moderators' labels per sender: its age and size (service.sender_history)."""
    history = state.sender_history
    if history is None:
        return {"status": "off" if not state.settings.sender_history else "stopped"}
    return {"status": "loaded" if history.loaded_at is not None else "loading", **history.status()}


def _check_log(state: ServiceState) -> tuple[dict[str, Any], bool]:
    """This worker's check log (writing or failing, queued), the other workers' that fail, and
    whether any has failed long enough to call the server degraded."""
    recorder = state.recorder
    if recorder is None:  # the worker is stopping: the recorder closed before the store
        return {"status": "stopped"}, False
    status = recorder.status()
    now = time.time()
    others = [{"pid": pid, "failing_seconds": round(max(0.0, now - since), 1), "error": error}
              for pid, since, error in readiness.others_check_log_failing()]
    if others:
        status["workers_failing"] = others
    failing = [o["failing_seconds"] for o in others]
    if status["status"] == "failing":
        failing.append(status["failing_seconds"])
    return status, any(seconds >= check_log_health.DEGRADED_AFTER_SECONDS for seconds in failing)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """Prometheus metrics, summed across the server's worker processes (see :mod:`service.metrics`)."""
    state = get_state()
    metrics.set_model_version(state.scorer.version if state.scorer is not None else None)
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
