"""The JSON API (``/api/v1``): checking one comment or a batch, and reading JSON request bodies.

Requests carry comments with the Akismet field names; responses carry the
verdict, score, reasons, model version and a check id. Every bad input is a
4xx in the one error shape (:mod:`service.errors`), naming the offending field
by its path (``comments[3].comment_author``). :func:`read_json_object` and
:func:`parse_comment` are public so every JSON endpoint validates the same way.
Every call needs an API key (``Authorization: Bearer <key>``), checked by the
``before_request`` hook :func:`service.auth.require_json_key`; every check is
logged through the recorder with the check id the client gets back, and
counted in the key's usage.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Mapping, Optional

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from model.comment import CONTENT_ALIASES, Comment
from model.errors import CommentFieldError
from model.scorer import Scorer
from model.verdict import HAM, Thresholds, Verdict
from service import json_limits
from service.akismet_rules import apply_rules
from service.app import ServiceState, get_state
from service.auth import current_key, require_json_key
from service.body import BodyEncoded, BodyTooLarge, BodyUnreadable, read_body
from service.charsets import text_codec
from service.errors import ApiError
from service.feedback import CheckNotWritten, add_feedback, check_by_comment, check_by_id, reported_comment
from service.logging_setup import request_elapsed
from service.site_settings import verdict_settings
from store import LABELS, CheckRecord, StoreError, new_check_id
from store.error_text import error_text

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(require_json_key)
log = logging.getLogger(__name__)

JSON_MIMETYPE = "application/json"
#: A character that is not white space, by Python's rules and by ECMAScript's (whose ``\s`` the
#: OpenAPI pattern uses: it counts U+FEFF too, but not the separators U+001C-U+001F or U+0085).
VISIBLE = re.compile("[^\\s\ufeff]")
#: Top-level members of a feedback body that are not comment fields.
FEEDBACK_MEMBERS = frozenset({"label", "reporter", "check_id", "comment"})


@bp.post("/check")
def check() -> Response:
    """Score one comment: a JSON object with Akismet field names."""
    state = get_state()
    scorer, _ = require_scorer(state)
    comment = parse_comment(read_json_object())
    key = current_key()
    how = verdict_settings(state, key, scorer)  # the key's site's mode and thresholds
    verdict, upstream = scorer.score(comment, how.score_thresholds), None
    model_tier = verdict.tier
    if state.upstream is not None:
        verdict, upstream = cross_check([comment], [verdict], how.thresholds)[0]
    if state.sender_history is not None and key is not None:  # the site's moderators' labels; the rules win
        verdict = state.sender_history.apply(comment, verdict, how.thresholds, key.site_id, model_tier=model_tier)
    verdict = apply_rules(comment, verdict, how.thresholds, test_values=False)  # rules win
    return jsonify(result_dict(verdict, record_check(comment, verdict, upstream, state=state, log_only=how.log_only),
                               state=state, log_only=how.log_only))


@bp.post("/check/batch")
def check_batch() -> Response:
    """Score ``{"comments": [...]}`` together; results come back in the same order."""
    scorer, _ = require_scorer()
    items = _batch_items(read_json_object(), get_state().settings.max_batch_items)
    comments = _parse_batch(items)
    state = get_state()
    key = current_key()
    how = verdict_settings(state, key, scorer)
    verdicts = scorer.score_many(comments, how.score_thresholds) if comments else []
    checked = cross_check(comments, verdicts, how.thresholds)
    rules, log_only = how.thresholds, how.log_only
    history = state.sender_history
    if history is not None and key is not None:
        checked = [(history.apply(c, v, rules, key.site_id, model_tier=m.tier), u)
                   for c, m, (v, u) in zip(comments, verdicts, checked)]
    checked = [(apply_rules(c, v, rules, test_values=False), u) for c, (v, u) in zip(comments, checked)]
    return jsonify({"results": [result_dict(v, record_check(c, v, u, state=state, log_only=log_only), state=state,
                                            log_only=log_only)
                                for c, (v, u) in zip(comments, checked)]})


def cross_check(comments: list[Comment], verdicts: list[Verdict],
                thresholds: Thresholds) -> list[tuple[Verdict, Optional[dict[str, Any]]]]:
    """The verdicts after the upstream cross-check (service.upstream), with the JSON to keep per check.

    ``thresholds`` are the ones in force for the key's site. A batch asks about all its comments
    concurrently within one shared budget.
    """
    state, key = get_state(), current_key()
    if state.upstream is None or not comments:
        return [(v, None) for v in verdicts]
    return state.upstream.check_many(comments, verdicts, thresholds,
                                     blog=key.site_url if key is not None else "", spent_s=request_elapsed())


@bp.post("/feedback")
def feedback() -> tuple[Response, int]:
    """Record a moderator's label for a comment: 201 ``{"feedback_id": N, "check_id": ... or null}``.

    The body names the comment in one of three ways:

    * ``{"check_id": "<32 hex>", "label": "spam"}``: the comment of that check
      (404 when the check is unknown, purged, or another site's; 503 when it is not written
      yet because the store is not taking the check log, or may not be for that reason);
    * ``{"comment": {<Akismet fields>}, "label": "ham"}``;
    * the comment's fields at the top level: ``{"comment_content": "...", "label": "ham"}``.

    With a comment and no ``check_id``, the latest check of the same comment on
    the key's site is linked when there is one. ``label`` is ``spam`` or ``ham``
    (422 otherwise); ``reporter`` (optional) is a free-text moderator name. A
    label for an ``is_test`` comment or check is stored as test feedback, which
    is never learned from.
    """
    data = read_json_object()
    label = data.get("label")
    if label not in LABELS:
        problem = "is required" if label is None else f"must be one of {', '.join(LABELS)}"
        raise ApiError(422, f"label {problem}", field="label", allowed=list(LABELS))
    reporter = data.get("reporter") or ""  # null, as every optional field may be
    if not isinstance(reporter, str):
        raise ApiError(422, "reporter must be a string", field="reporter")
    state, key = get_state(), current_key()
    site_id = key.site_id if key is not None else None
    comment, check = _feedback_comment(data, site_id)
    try:
        if check is None:
            check = check_by_comment(state, comment, site_id)
        comment = reported_comment(comment, check)
        feedback_id = add_feedback(state, label=label, comment=comment, source="api",
                                   reporter=reporter, check=check, key=key)
    except CheckNotWritten:
        raise _not_written(data.get("check_id")) from None
    except StoreError as exc:
        log.error("storing feedback failed: %s", error_text(exc))
        raise ApiError(503, "the feedback store is temporarily unavailable") from None
    return jsonify({"feedback_id": feedback_id, "check_id": check.id if check is not None else None}), 201


def _feedback_comment(data: Mapping[str, Any], site_id: Optional[int]) -> tuple[Comment, Optional[CheckRecord]]:
    check_id = data.get("check_id")
    check = None
    if check_id is not None:
        if not isinstance(check_id, str):
            raise ApiError(422, "check_id must be a string", field="check_id")
        state = get_state()
        if state.store is None:
            raise ApiError(503, "the feedback store is not available", readiness="/readyz")
        try:
            check = check_by_id(state, check_id.strip().lower(), site_id)
        except CheckNotWritten:
            raise _not_written(check_id) from None
        except StoreError:
            raise ApiError(503, "the feedback store is temporarily unavailable") from None
        if check is None:
            raise ApiError(404, "no such check", field="check_id", check_id=check_id)
    if data.get("comment") is not None:
        if not isinstance(data["comment"], dict):
            raise ApiError(422, "comment must be a JSON object", field="comment")
        return parse_comment(data["comment"], "comment."), check
    fields = {k: v for k, v in data.items() if k not in FEEDBACK_MEMBERS}
    if check is not None and not fields:
        return check.comment, check
    if not fields:
        raise ApiError(422, "send check_id, comment, or the comment's fields", field="comment")
    return parse_comment(fields), check


def _not_written(check_id: Any) -> ApiError:
    """503 for a report whose check the store does not hold yet because it is not taking the check log."""
    details = {"check_id": check_id} if isinstance(check_id, str) else {}
    return ApiError(503, "the store is temporarily unavailable: the check is not stored yet; "
                         "send the report again later", **details)


def record_check(comment: Comment, verdict: Verdict, upstream: Optional[Mapping[str, Any]] = None,
                 *, state: Optional[ServiceState] = None, log_only: Optional[bool] = None) -> str:
    """Queue the check for the log, count it for the key, and return its fresh id.

    ``log_only`` is the mode the check was answered in (default: the global one).
    """
    state, key = state or get_state(), current_key()
    check_id = new_check_id()
    recorder = state.recorder
    if recorder is not None:
        recorder.record_check(CheckRecord.from_verdict(
            comment, verdict, surface="json", check_id=check_id, upstream=upstream,
            site_id=key.site_id if key is not None else None, key_id=key.id if key is not None else None))
        if key is not None:
            # Usage counts the answer given: in log-only mode every comment was answered ham.
            if log_only is None:
                log_only = state.settings.log_only
            if verdict.is_spam and not log_only:
                recorder.count_usage(key.id, blog=comment.blog, api_calls=1, spam=1)
            else:
                recorder.count_usage(key.id, blog=comment.blog, api_calls=1, ham=1)
    return check_id


def require_scorer(state: Optional[ServiceState] = None) -> tuple[Scorer, Thresholds | None]:
    """The scorer and the thresholds to pass it; 503 when the service is not ready."""
    state = state or get_state()
    if not state.ready or state.scorer is None:
        # The reason (paths, versions) is for operators: it is on /readyz, not on every check.
        raise ApiError(503, "model not loaded" if state.scorer is None else "not ready", readiness="/readyz")
    return state.scorer, state.thresholds


def result_dict(verdict: Verdict, check_id: str, *, state: Optional[ServiceState] = None,
                log_only: Optional[bool] = None) -> dict[str, Any]:
    """A verdict as the JSON API returns it, with its check id (``log_only``: the mode it was
    answered in; default: the global one)."""
    out = verdict.to_dict()
    out["check_id"] = check_id
    if log_only is None:
        log_only = (state or get_state()).settings.log_only
    if log_only:
        # Log-only promises "ham on the wire" on every surface: an integration that acts on
        # ``verdict`` (dropping a discard, holding an unsure) must not act while the operator
        # is only trying the filter. The model's verdict, which the check log holds, rides beside it.
        out["recorded_verdict"] = out["verdict"]
        out["verdict"] = HAM
        out["enforced"] = False
    return out


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object, or an :class:`ApiError` (415, 400) saying what is wrong."""
    if request.mimetype != JSON_MIMETYPE:
        raise ApiError(415, f"the request body must be {JSON_MIMETYPE}",
                       content_type=request.mimetype or None)
    try:
        body = read_body(request)  # the limit is the app's MAX_CONTENT_LENGTH (max_body_bytes)
    except BodyTooLarge:
        raise RequestEntityTooLarge() from None  # the one 413 answer (service.errors)
    except BodyUnreadable as exc:
        raise ApiError(400, str(exc)) from None
    except BodyEncoded as exc:
        raise ApiError(415, str(exc), content_encoding=exc.encoding) from None
    text = _decode_body(body, request.mimetype_params.get("charset"))
    if not text or text.isspace():
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
        if json_limits.may_be_too_deep(text):
            json_limits.check_depth(data)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    except json_limits.TooDeep as exc:
        raise ApiError(400, str(exc), max_depth=json_limits.MAX_DEPTH) from None
    except RecursionError:  # the parser's own limit, far deeper than ours
        raise ApiError(400, f"the JSON body is nested more than {json_limits.MAX_DEPTH} levels deep",
                       max_depth=json_limits.MAX_DEPTH) from None
    except ValueError as exc:  # from _reject_constant, or an integer past Python's digit limit
        if "digits" in str(exc):
            raise ApiError(400, "a number in the JSON body has too many digits (at most 4300)") from None
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", type=_json_type(data))
    if json_limits.may_hold_surrogates(text):
        data = json_limits.replace_lone_surrogates(data)
    return data


def parse_comment(data: Mapping[str, Any], path: str = "") -> Comment:
    """A :class:`Comment` from a JSON object, or a 422 :class:`ApiError` naming the field.

    ``path`` prefixes field names in errors (``comments[3].``) for nested objects.
    """
    try:
        comment = Comment.from_mapping(data)
    except CommentFieldError as exc:
        raise ApiError(422, _with_path(exc, path), field=path + exc.field) from None
    if not VISIBLE.search(comment.comment_content):
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
    if encoding == "utf-8":  # the usual case: no codec lookup
        try:
            # A byte order mark, which some Windows clients write, is dropped (RFC 8259 lets a
            # parser ignore it; Python's refused the body over it).
            return (body[3:] if body.startswith(b"\xef\xbb\xbf") else body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"the request body is not valid {encoding}", position=exc.start) from None
    codec = text_codec(encoding)
    if codec is None:
        raise ApiError(415, f"unsupported charset {charset!r}", charset=charset) from None
    try:
        return body.decode(codec)
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


__all__ = ["bp", "check", "check_batch", "feedback", "parse_comment", "read_json_object", "record_check",
           "require_scorer", "result_dict"]
