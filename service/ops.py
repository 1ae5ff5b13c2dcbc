"""Operator endpoints: liveness (``/healthz``) and readiness (``/readyz``).

Neither needs an API key or touches the model beyond asking whether it loaded:
orchestrators call them often, and a liveness probe must not fail just because
the model is missing (restarting the process would not bring it back).
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from service.app import get_state
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
    if not state.ready or state.scorer is None:
        return error_response(503, "model not loaded",
                              reason=state.not_ready_reason or "no model")
    return jsonify({"status": "ready", "model_version": state.scorer.version})
