"""The JSON API (``/api/v1``): checking one comment or a batch, and reading JSON request bodies.

Requests carry comments with the Akismet field names; responses carry the
verdict, score, reasons, model version and a check id. Every bad input is a
4xx in the one error shape (:mod:`service.errors`), naming the offending field
by its path (``comments[3].comment_author``). :func:`read_json_object` and
:func:`parse_comment` are public so later JSON endpoints (feedback) validate
the same way. Authentication is not done here: it is meant to arrive as a
``before_request`` hook on this blueprint (or the app), so views stay unaware of it.
"""
from __future__ import annotations

import codecs
import json
import uuid
from typing import Any, Mapping

from flask import Blueprint, Response, jsonify, request

from model.comment import CONTENT_ALIASES, Comment
from model.errors import CommentFieldError
from model.scorer import Scorer
from model.verdict import Thresholds, Verdict
from service.app import get_state
from service.errors import ApiError

bp = Blueprint("api", __name__, url_prefix="/api/v1")

JSON_MIMETYPE = "application/json"


@bp.post("/check")
def check() -> Response:
    """Score one comment: a JSON object with Akismet field names."""
    scorer, thresholds = require_scorer()
    comment = parse_comment(read_json_object())
    return jsonify(result_dict(scorer.score(comment, thresholds)))


@bp.post("/check/batch")
def check_batch() -> Response:
    """Score ``{"comments": [...]}`` together; results come back in the same order."""
    scorer, thresholds = require_scorer()
    items = _batch_items(read_json_object(), get_state().settings.max_batch_items)
    comments = _parse_batch(items)
    verdicts = scorer.score_many(comments, thresholds) if comments else []
    return jsonify({"results": [result_dict(v) for v in verdicts]})


def require_scorer() -> tuple[Scorer, Thresholds | None]:
    """The scorer and the thresholds to pass it; 503 when the model is not loaded."""
    state = get_state()
    if not state.ready or state.scorer is None:
        # The reason (paths, versions) is for operators: it is on /readyz, not on every check.
        raise ApiError(503, "model not loaded", readiness="/readyz")
    return state.scorer, state.thresholds


def result_dict(verdict: Verdict) -> dict[str, Any]:
    """A verdict as the JSON API returns it, with a fresh check id."""
    out = verdict.to_dict()
    out["check_id"] = uuid.uuid4().hex
    if get_state().settings.log_only:
        # The JSON API is our own surface: keep the real verdict, say it is not enforced.
        out["enforced"] = False
    return out


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object, or an :class:`ApiError` (415, 400) saying what is wrong."""
    if request.mimetype != JSON_MIMETYPE:
        raise ApiError(415, f"the request body must be {JSON_MIMETYPE}",
                       content_type=request.mimetype or None)
    text = _decode_body(request.get_data(cache=True), request.mimetype_params.get("charset"))
    if not text.strip():
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    except ValueError as exc:  # from _reject_constant
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", type=_json_type(data))
    return data


def parse_comment(data: Mapping[str, Any], path: str = "") -> Comment:
    """A :class:`Comment` from a JSON object, or a 422 :class:`ApiError` naming the field.

    ``path`` prefixes field names in errors (``comments[3].``) for nested objects.
    """
    try:
        comment = Comment.from_mapping(data)
    except CommentFieldError as exc:
        raise ApiError(422, _with_path(exc, path), field=path + exc.field) from None
    if not comment.comment_content.strip():
        given = any(data.get(key) is not None for key in CONTENT_ALIASES)
        problem = "must not be empty" if given else "is required"
        raise ApiError(422, f"{path}comment_content {problem}", field=path + "comment_content")
    return comment


def _with_path(exc: CommentFieldError, path: str) -> str:
    """The model's message with the field's full path (``field 'comments[3].blog' must be ...``)."""
    if not path:
        return exc.message
    quoted, full = f"'{exc.field}'", f"'{path}{exc.field}'"
    return exc.message.replace(quoted, full, 1) if quoted in exc.message else f"{full}: {exc.message}"


def _batch_items(data: Mapping[str, Any], limit: int) -> list[Any]:
    if "comments" not in data:
        raise ApiError(422, "comments is required: a list of comment objects", field="comments")
    items = data["comments"]
    if not isinstance(items, list):
        raise ApiError(422, "comments must be a list of comment objects", field="comments",
                       type=_json_type(items))
    if len(items) > limit:
        raise ApiError(422, f"too many comments: {len(items)}, at most {limit} per batch",
                       field="comments", max_items=limit, received=len(items))
    return items


def _parse_batch(items: list[Any]) -> list[Comment]:
    """Every item parsed, or one 422 listing every bad item (the first one in the top-level fields)."""
    comments: list[Comment] = []
    problems: list[ApiError] = []
    for index, item in enumerate(items):
        path = f"comments[{index}]"
        try:
            if not isinstance(item, dict):
                raise ApiError(422, f"{path} must be a JSON object", field=path)
            comments.append(parse_comment(item, path + "."))
        except ApiError as exc:
            problems.append(exc)
    if problems:
        first = problems[0]
        raise ApiError(422, first.message, field=first.details["field"],
                       errors=[{"field": p.details["field"], "error": p.message} for p in problems])
    return comments


def _decode_body(body: bytes, charset: str | None) -> str:
    # JSON is UTF-8 on the wire, but honour a declared charset rather than mangle the text.
    encoding = (charset or "utf-8").strip().lower()
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ApiError(415, f"unsupported charset {charset!r}", charset=charset) from None
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the request body is not valid {encoding}", position=exc.start) from None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told not to.
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


__all__ = ["bp", "check", "check_batch", "parse_comment", "read_json_object", "require_scorer", "result_dict"]
