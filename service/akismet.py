"""The Akismet-compatible surface (``/1.1/...``, ``/1.2/...``), so existing Akismet clients work unchanged.

Every protocol outcome is HTTP 200 with the body a client compares exactly
(``true``/``false``/``invalid``, ``valid``, the submit sentence) or, for the
``/1.2`` endpoints, JSON. Clients treat any non-2xx status as a transport
error, so this blueprint has its own error handler instead of the app's JSON
ones. The answers it gives when it cannot give a verdict:

* no key, or an unknown or revoked key: ``invalid`` with ``X-akismet-debug-help``;
* a missing required field (``blog``, ``user_ip``): ``Missing required field: user_ip.``;
* a body over ``akismet_max_body_bytes``: ``Request body too large: at most N bytes.``;
* the model or the store unavailable, or an unexpected error: ``Temporarily unavailable: ...``.

The last three are bodies no client accepts as a verdict: the PyPI client
raises ``ProtocolError`` and the WordPress plugin holds the comment for
moderation, which is what should happen. They carry ``X-akismet-error`` (the
plugin's "hold it" signal) and ``X-akismet-debug-help``. ``X-akismet-debug-help``
never accompanies a good answer: some clients throw whenever it is present.
Unknown fields are kept with the comment and never cause an error.

Our own headers (``X-CommentGuard-*``) carry the real verdict, score, reasons,
model version and check id; every Akismet client ignores them. In log-only mode
the wire answer is always ``false`` while those headers and the check log keep
the real verdict.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import traceback
from typing import Any, Iterable, NoReturn, Optional

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from model.verdict import DISCARD, Verdict
from service.akismet_form import AkismetForm, MalformedMultipart, comment_from_form, parse_form
from service.akismet_rules import TEST_SPAM_REASON, apply_rules, is_flagged
from service.app import ServiceState, get_state
from service.auth import AKISMET_KEY_FIELDS, ASKED_KEY_FIELDS, akismet_key, authenticate
from service.body import BodyEncoded, BodyTooLarge, BodyUnreadable, read_body
from service.errors import out_of_descriptors
from service.feedback import add_feedback, check_by_comment, check_by_id, reported_comment
from service.logging_setup import request_elapsed
from service.site_settings import verdict_settings
from store import USAGE_COUNTERS, CheckRecord, KeyInfo, StoreError, current_month, new_check_id
from store.error_text import error_text

bp = Blueprint("akismet", __name__)
log = logging.getLogger(__name__)

THANKS = "Thanks for making the web a better place."
TEXT_MIMETYPE = "text/plain"
REASONS_HEADER_LIMIT = 512
KEY_SITES_LIMIT = 500
#: key-sites ``order`` values and the counters they sort by (``total`` is the call count).
KEY_SITES_ORDER = {"total": "api_calls", "spam": "spam", "ham": "ham",
                   "missed_spam": "missed_spam", "false_positives": "false_positives"}
#: ``/1.1/get-subscription``'s answer for every live key.
SUBSCRIPTION: dict[str, Any] = {"status": "active", "account_name": "CommentGuard (self-hosted)",
                                "account_type": "self-hosted", "next_billing_date": None,
                                "limit_reached": False}
CSV_HEADER = ["Site", "Total API Calls", "Spam", "Ham", "Missed Spam", "False Positives", "Is Revoked"]


class Answer(Exception):
    """Raised inside a view to end it with a ready protocol answer."""

    def __init__(self, response: Response) -> None:
        super().__init__("akismet answer")
        self.response = response


# --- answers ------------------------------------------------------------------------------

def text_answer(body: str, headers: Iterable[tuple[str, str]] = (), **named: str) -> Response:
    """A 200 ``text/plain`` answer with ``headers`` and ``named`` ones (underscores become dashes).

    The names must differ: the headers are added in one go (werkzeug's one-at-a-time
    assignment rescans every header already set, a third of the Akismet answer's cost).
    """
    more = [(name.replace("_", "-"), value) for name, value in named.items()]
    return Response(body, status=200, mimetype=TEXT_MIMETYPE, headers=[*headers, *more])


def invalid(debug_help: str) -> Response:
    """``invalid``: the key is missing, unknown or revoked (the one answer that carries debug help)."""
    return text_answer("invalid", X_akismet_debug_help=debug_help)


def protocol_error(message: str, debug_help: Optional[str] = None) -> Response:
    """A 200 text answer no client takes for a verdict: the client errors, the plugin holds the comment."""
    return text_answer(message, X_akismet_error=message, X_akismet_debug_help=debug_help or message)


@bp.errorhandler(Answer)
def _answer(exc: Answer) -> Response:
    return exc.response


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        return protocol_error(f"Bad request: {(exc.name or 'error').lower()}.")
    if out_of_descriptors(exc):
        return protocol_error("Temporarily unavailable: the server is out of file descriptors.")
    # Type and stack only: an exception's message may quote the comment, an email or an IP.
    stack = "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ else ""
    log.error("unhandled %s in %s %s\n%s", type(exc).__name__, request.method,
              request.url_rule.rule if request.url_rule else "(no route)", stack)
    return protocol_error("Temporarily unavailable: internal error.")


# --- the common steps of every call -------------------------------------------------------

def read_form(*, post_only: bool = True) -> AkismetForm:
    """The request's fields (body and query string), or an :class:`Answer`."""
    if post_only and request.method != "POST":
        raise Answer(protocol_error("This endpoint takes POST requests."))
    limit = get_state().settings.akismet_max_body_bytes
    request.max_content_length = limit  # this request's own (werkzeug holds bodies to it)
    try:
        body = read_body(request, limit) if request.method == "POST" else b""
    except BodyTooLarge:
        raise Answer(protocol_error(f"Request body too large: at most {limit} bytes.")) from None
    except (BodyUnreadable, BodyEncoded) as exc:
        raise Answer(protocol_error(f"Invalid request: {exc}.")) from None
    # An empty body (a GET's, or a POST with its fields in the query string) is no multipart body,
    # whatever the Content-Type says.
    multipart = body and request.mimetype == "multipart/form-data"
    boundary = request.mimetype_params.get("boundary", "") if multipart else None
    try:
        return parse_form(body, request.query_string, request.mimetype_params.get("charset"), boundary)
    except MalformedMultipart as exc:
        raise Answer(protocol_error(f"Invalid request: {exc}.")) from None


def require_key(form: AkismetForm, order: tuple[str, ...] = AKISMET_KEY_FIELDS) -> KeyInfo:
    """The authenticated key (found as ``order`` says), or an :class:`Answer` (``invalid`` for a missing or bad key)."""
    state = get_state()
    if state.store is None:
        raise Answer(protocol_error("Temporarily unavailable: the key store is not open."))
    key = akismet_key(form.fields, request.headers.get("Host"), order)
    if not key:
        raise Answer(invalid('Empty "api_key" value'))
    try:
        info = authenticate(key)
    except StoreError:
        raise Answer(protocol_error("Temporarily unavailable: the key store did not answer.")) from None
    if info is None:
        raise Answer(invalid("Invalid API key: it is unknown or has been revoked."))
    return info


def require_fields(form: AkismetForm, *names: str) -> None:
    """An :class:`Answer` naming the first required field that is missing or empty."""
    for name in names:
        if not form.get(name).strip():
            raise Answer(protocol_error(f"Missing required field: {name}.", f'Empty "{name}" value'))


def _state() -> ServiceState:
    return get_state()


def _fail(message: str) -> NoReturn:
    raise Answer(protocol_error(f"Temporarily unavailable: {message}."))


# --- /1.1 ---------------------------------------------------------------------------------

@bp.route("/1.1/verify-key", methods=["GET", "POST"])
def verify_key() -> Response:
    """``valid`` when the key asked about (``key``, else ``api_key``) is live; ``blog`` is required, as Akismet does."""
    form = read_form()
    if not form.get("blog").strip() and akismet_key(form.fields, request.headers.get("Host")):
        return invalid('Empty "blog" value')
    require_key(form, ASKED_KEY_FIELDS)
    return text_answer("valid")


@bp.route("/1.1/test", methods=["GET", "POST"])
def connection_test() -> Response:
    """``connected``: the WordPress plugin's connectivity check (no key), which its settings
    page runs; any other answer shows "your firewall may be blocking Akismet"."""
    return text_answer("connected")


@bp.route("/1.1/get-subscription", methods=["GET", "POST"])
def get_subscription() -> Response:
    """The key's "subscription" as the WordPress plugin reads it (``key``, else ``api_key``).

    The plugin's settings page saves a key only once this answers with a ``status`` of
    ``active``, and shows its account box from ``account_name``, ``account_type`` and
    ``next_billing_date``; without it a working key is refused as "invalid". A self-hosted
    key has no plan or bill: always active, no limit.
    """
    form = read_form()
    require_key(form, ASKED_KEY_FIELDS)
    return jsonify(SUBSCRIPTION)


@bp.route("/1.1/comment-check", methods=["GET", "POST"])
def comment_check() -> Response:
    """``true`` (spam) or ``false`` (ham), with the verdict in our own headers; the check is logged."""
    form = read_form()
    key = require_key(form)
    require_fields(form, "blog", "user_ip")
    state = _state()
    if not state.ready or state.scorer is None or state.recorder is None:
        _fail("the model is not loaded")
    comment = comment_from_form(form)
    scorer = state.scorer
    how = verdict_settings(state, key, scorer)  # the key's site's mode and thresholds (service.site_settings)
    thresholds = how.thresholds
    verdict, upstream = scorer.score(comment, how.score_thresholds), None
    model_tier = verdict.tier
    if state.upstream is not None:  # the upstream cross-check (service.upstream); the fixed rules still win
        verdict, upstream = state.upstream.check(comment, verdict, thresholds, blog=key.site_url,
                                                 spent_s=request_elapsed())
    if state.sender_history is not None:  # the site's moderators' labels (service.sender_history); rules win
        verdict = state.sender_history.apply(comment, verdict, thresholds, key.site_id, model_tier=model_tier)
    verdict = apply_rules(comment, verdict, thresholds)
    flagged = is_flagged(verdict.tier, state.settings.unsure_is_spam)
    check_id = new_check_id()
    state.recorder.record_check(CheckRecord.from_verdict(
        comment, verdict, surface="akismet", site_id=key.site_id, key_id=key.id, check_id=check_id,
        upstream=upstream,
        # A test value tries the client's spam path, as is_test does: a test check (reports on it are
        # test labels), which `checks list/summary` leave out unless asked (a probe found it counted
        # among a site's spam).
        is_test=comment.is_test_call or any(r.text == TEST_SPAM_REASON for r in verdict.reasons[:1])))
    enforce = not how.log_only
    # Usage counts the answer given: in log-only mode every comment was published (ham).
    if flagged and enforce:
        state.recorder.count_usage(key.id, blog=comment.blog, api_calls=1, spam=1)
    else:
        state.recorder.count_usage(key.id, blog=comment.blog, api_calls=1, ham=1)
    headers = [("X-akismet-pro-tip", "discard")] if enforce and verdict.tier == DISCARD else []
    headers.append(("X-akismet-guid", check_id))
    headers += verdict_headers(verdict, check_id, enforced=enforce)
    return text_answer("true" if flagged and enforce else "false", headers)


@bp.route("/1.1/submit-spam", methods=["GET", "POST"])
def submit_spam() -> Response:
    """A missed spam reported by a moderator: stored as feedback labelled ``spam``."""
    return _submit("spam")


@bp.route("/1.1/submit-ham", methods=["GET", "POST"])
def submit_ham() -> Response:
    """A false positive reported by a moderator: stored as feedback labelled ``ham``."""
    return _submit("ham")


def _submit(label: str) -> Response:
    form = read_form()
    key = require_key(form)
    require_fields(form, "blog", "user_ip")
    state = _state()
    comment = comment_from_form(form)
    try:
        guid = form.guid()
        # A guid alone names the whole report: while its check may be waiting to be written, the
        # answer is "retry" (a stored check is what the report is about). With text, a guid not
        # found is no loss: the report is about the text sent, as for a purged check.
        check = (check_by_id(state, guid, key.site_id, outage_is_retryable=not comment.comment_content.strip())
                 if guid else None)
        if check is None:
            check = check_by_comment(state, comment, key.site_id)
        comment = reported_comment(comment, check)
        if check is None and not comment.comment_content.strip():
            # Nothing to learn: no text sent, and no stored check (a guid unknown or purged) to
            # take it from. Stored, it was an empty label counted as a correction and never learned.
            # (A stored check without text, a signup or contact form, is still reported: its
            # correction counts.)
            # The protocol has only the one answer for a submit, so the refusal goes in our header.
            log.info("a submit-%s with no comment text and no known check was not stored", label)
            return text_answer(THANKS, [("X-CommentGuard-Feedback", "not stored: no comment text, and no "
                                                                     "stored check for the guid")])
        feedback_id = add_feedback(state, label=label, comment=comment, source="akismet",
                                   reporter=form.get("reporter"), check=check, key=key)
    except StoreError as exc:  # CheckNotWritten included: the check is still on its way to the store
        log.error("storing a submit-%s failed: %s", label, error_text(exc))
        _fail("the report could not be stored, please retry")
    response = text_answer(THANKS)
    response.headers["X-CommentGuard-Feedback-Id"] = str(feedback_id)
    if check is not None:
        response.headers["X-CommentGuard-Check-Id"] = check.id
    return response


def verdict_headers(verdict: Verdict, check_id: str, *, enforced: bool) -> list[tuple[str, str]]:
    """Our own headers: the real verdict, score, reasons, model version and check id."""
    headers = [
        ("X-CommentGuard-Verdict", verdict.tier),
        ("X-CommentGuard-Score", f"{verdict.score:.6f}"),
        ("X-CommentGuard-Reasons", reasons_header([r.text for r in verdict.reasons])),
        ("X-CommentGuard-Model-Version", _header_safe(verdict.model_version)),
        ("X-CommentGuard-Check-Id", check_id),
    ]
    if not enforced:
        headers.append(("X-CommentGuard-Enforced", "false"))
    return headers


def reasons_header(texts: list[str], limit: int = REASONS_HEADER_LIMIT) -> str:
    """The reasons as a JSON list in ASCII (``\\uXXXX`` escapes, no newlines), at most ``limit`` characters.

    Whole reasons are dropped from the end until it fits; a single reason that
    is too long on its own is cut and ends with ``...``.
    """
    texts = list(texts)
    while texts:
        value = json.dumps(texts, ensure_ascii=True)
        if len(value) <= limit:
            return value
        if len(texts) == 1:
            cut = texts[0]
            while cut and len(json.dumps([cut + "..."], ensure_ascii=True)) > limit:
                cut = cut[:-8]
            return json.dumps([cut + "..."], ensure_ascii=True)
        texts.pop()
    return "[]"


def _header_safe(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)[1:-1][:200]


# --- /1.2 ---------------------------------------------------------------------------------

@bp.route("/1.2/usage-limit", methods=["GET", "POST"])
def usage_limit() -> Response:
    """This month's calls for the key; there is no limit on a self-hosted server."""
    form = read_form(post_only=False)
    key = require_key(form)
    counters = _usage(key, current_month())
    return jsonify({"limit": "none", "usage": counters["api_calls"], "percentage": "0.00", "throttled": False})


@bp.route("/1.2/key-sites", methods=["GET", "POST"])
def key_sites() -> Response:
    """The sites the key's calls named (``blog``) with the month's counters, as JSON or CSV, like Akismet's.

    JSON: ``{"YYYY-MM": [{"site", "api_calls", "spam", "ham", "missed_spam",
    "false_positives", "is_revoked"}, ...], "limit": N, "offset": N, "total": N}``.
    Takes ``month``, ``filter`` (part of a site URL), ``format``, ``order``,
    ``limit`` and ``offset``.
    """
    form = read_form(post_only=False)
    key = require_key(form)
    month = form.get("month").strip() or current_month()
    limit, offset = _int_param(form, "limit", KEY_SITES_LIMIT), _int_param(form, "offset", 0)
    order = KEY_SITES_ORDER.get(form.get("order").strip().lower() or "total")
    if order is None:
        raise Answer(protocol_error(f"Invalid order: one of {', '.join(KEY_SITES_ORDER)}."))
    store = _state().store
    assert store is not None
    _flush()
    try:
        with _state().store_turn():
            sites = store.key_blogs(key.id, month)
    except StoreError as exc:
        if isinstance(exc, ValueError):  # InvalidRecordError: a bad month
            raise Answer(protocol_error("Invalid month: expected YYYY-MM.")) from None
        _fail("the usage figures could not be read")
    needle = form.get("filter").strip().lower()
    rows = [_site_row(s) for s in sites if needle in s["site"].lower()]
    rows.sort(key=lambda r: (-r[order], r["site"]))
    page = rows[offset:offset + limit]
    if form.get("format").strip().lower() == "csv":
        return _key_sites_csv(form, month, page, limit, offset, len(rows))
    return jsonify({month: page, "limit": limit, "offset": offset, "total": len(rows)})


def _usage(key: KeyInfo, month: str) -> dict[str, int]:
    store = _state().store
    assert store is not None
    _flush()
    try:
        with _state().store_turn():
            return store.usage(key.id, month)
    except StoreError:
        _fail("the usage figures could not be read")


def _flush() -> None:
    # Read-your-writes for this worker: its queued counters go in before they are read, unless
    # the store is slow or down (service.store_turns): then the figures are read as they are.
    state = _state()
    recorder = state.recorder
    if recorder is not None and recorder.pending:
        try:
            with state.store_turn():
                recorder.flush_for_a_request()
        except StoreError:
            pass


def _site_row(site: dict[str, Any]) -> dict[str, Any]:
    return {"site": site["site"], **{c: int(site[c]) for c in USAGE_COUNTERS},
            "is_revoked": bool(site["is_revoked"])}


def _key_sites_csv(form: AkismetForm, month: str, rows: list[dict[str, Any]], limit: int, offset: int,
                   total: int) -> Response:
    out = io.StringIO()
    key = (form.get("api_key") or form.get("key")).strip() or "this key"
    out.write(f"Active sites for {key} during {month} (limit:{limit}, offset: {offset}, total: {total})\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow([r["site"], *(r[c] for c in USAGE_COUNTERS), "true" if r["is_revoked"] else "false"])
    return Response(out.getvalue(), status=200, mimetype="text/csv")


def _int_param(form: AkismetForm, name: str, default: int) -> int:
    raw = form.get(name).strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Answer(protocol_error(f"Invalid {name}: expected a whole number.")) from None
    if value < 0:
        raise Answer(protocol_error(f"Invalid {name}: must not be negative."))
    return value


__all__ = ["THANKS", "bp", "invalid", "protocol_error", "reasons_header", "text_answer", "verdict_headers"]
