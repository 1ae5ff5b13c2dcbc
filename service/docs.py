"""The API description: ``GET /openapi.json`` serves ``service/openapi.json``.

The document is written by hand (it is the contract clients code against, so it
says what the API promises rather than whatever the code happens to do); the
tests hold the two together: every route is documented, every documented
route exists, and the app's answers, good and bad, validate against it.
It is read once, when the app is built, and kept in ``app.extensions``.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

DOCUMENT_NAME = "openapi.json"
EXTENSION_KEY = "commentguard.openapi"
#: The app config key holding ``COMMENTGUARD_MAX_BATCH_ITEMS`` (set before the blueprint registers).
MAX_BATCH_ITEMS_CONFIG = "COMMENTGUARD_MAX_BATCH_ITEMS"

bp = Blueprint("docs", __name__)


def load_document() -> dict[str, Any]:
    """The OpenAPI document shipped with the package (package data: ``service/*.json``)."""
    text = resources.files("service").joinpath(DOCUMENT_NAME).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@bp.record_once
def _load_on_register(state: Any) -> None:
    app: Flask = state.app
    document = load_document()
    limit = app.config.get(MAX_BATCH_ITEMS_CONFIG)
    if isinstance(limit, int):
        # The served document states this server's batch limit, not the default's.
        document["components"]["schemas"]["BatchRequest"]["properties"]["comments"]["maxItems"] = limit
    app.extensions[EXTENSION_KEY] = document


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of the JSON API."""
    return jsonify(current_app.extensions[EXTENSION_KEY])


__all__ = ["bp", "load_document"]
