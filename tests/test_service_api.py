"""Tests of the service core: the JSON API, the operator endpoints, errors, the server wiring, `serve`.

Flask test-client tests with the session's tiny real model (tests/conftest.py);
one slow test starts the real gunicorn server and talks to it with httpx.
"""
from __future__ import annotations

import dataclasses
import json
import os
import logging
import shutil
import socket
import subprocess
import time
import sys
import types
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from commentguard.cli import cli
from model.artifact import PICKLE_NAME
from model.scorer import Scorer
from service import server
from service.app import ServiceFlask, get_state
from tests.conftest import REPO, TEST_SECRET_KEY, LiveServer, auth_headers, free_port, start_live_server

RESULT_KEYS = {"verdict", "score", "reasons", "model_version", "check_id"}
SPAM_TEXT = "Buy cheap viagra online now!!! click http://bit.ly/cheap-pills"
HAM_TEXT = "Thanks for the clear explanation, it helped me fix my build."


def stored_extras(app: Flask) -> list[dict[str, Any]]:
    """The ``extra`` column of every stored check and report, once the recorder has written."""
    state = get_state(app)
    state.recorder.flush()
    return state.store.database.read(lambda tx: tx.fetchall("SELECT extra FROM checks")
                                     + tx.fetchall("SELECT extra FROM feedback"))


def check_and_report_each(app: Flask, client: FlaskClient, comments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check each comment and report it as spam; the stored ``extra`` columns (one check and one report each)."""
    for comment in comments:
        assert post_json(client, "/api/v1/check", comment).status_code == 200
        assert post_json(client, "/api/v1/feedback", {"comment": comment, "label": "spam"}).status_code == 201
    rows = stored_extras(app)
    assert len(rows) == 2 * len(comments)
    return rows


def post_json(client: FlaskClient, path: str, body: Any, **kwargs: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", **kwargs)


def assert_error(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is the one error shape with ``status`` (and names ``field`` when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    assert body["status"] == status
    if field is not None:
        assert body["field"] == field
    assert "Traceback" not in response.get_data(as_text=True)
    return body


class SpyScorer:
    """Wraps a scorer, recording how it is called."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.version = inner.version
        self.thresholds = inner.thresholds
        self.metadata = inner.metadata
        self.engine = inner.engine
        self.calls: list[tuple[str, int]] = []

    def score(self, comment: Any, thresholds: Any = None) -> Any:
        self.calls.append(("score", 1))
        return self.inner.score(comment, thresholds)

    def score_many(self, comments: list[Any], thresholds: Any = None) -> Any:
        self.calls.append(("score_many", len(comments)))
        return self.inner.score_many(comments, thresholds)


# --- operator endpoints -------------------------------------------------------------------

def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_with_model(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    ready = response.get_json()
    # The sender history's table loads in its own thread: loading or loaded by now (test_sender_history.py).
    assert ready.pop("sender_history")["status"] in ("loading", "loaded")
    assert ready == {"status": "ready", "model_version": "test-model-1", "scoring_engine": "c",
                                   "mode": "enforce", "thresholds": {"unsure": 0.4, "spam": 0.6, "discard": 0.9,
                                                                     "overridden": False},
                                   "check_log": {"status": "writing", "queued": 0}}


def test_readyz_shows_the_thresholds_checks_are_answered_with(make_app: Callable[..., Flask]) -> None:
    """An operator tuning thresholds could see the effective ones nowhere."""
    body = make_app(threshold_spam=0.7, mode="log_only").test_client().get("/readyz").get_json()
    assert body["mode"] == "log_only"
    assert body["thresholds"] == {"unsure": 0.4, "spam": 0.7, "discard": 0.9, "overridden": True}


@pytest.mark.parametrize("setting, engine", [("auto", "c"), ("c", "c"), ("numpy", "numpy")])
def test_the_scoring_engine_setting_picks_the_engine_with_the_same_answers(
        make_app: Callable[..., Flask], setting: str, engine: str) -> None:
    """COMMENTGUARD_SCORING_ENGINE: the model is loaded from model_path with that engine, and
    both engines answer a check with the same verdict, score and reasons."""
    reference = make_app(scorer=None, scoring_engine="c").test_client()
    client = make_app(scorer=None, scoring_engine=setting).test_client()
    assert client.get("/readyz").get_json()["scoring_engine"] == engine
    for text in (SPAM_TEXT, HAM_TEXT):
        got = post_json(client, "/api/v1/check", {"comment_content": text}).get_json()
        want = post_json(reference, "/api/v1/check", {"comment_content": text}).get_json()
        assert got.pop("check_id") != want.pop("check_id")
        assert got == want


def test_without_the_compiled_core_auto_falls_back_and_c_is_not_ready(
        make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An install where model._fastcore could not be built (as model.fastpath sees it then)."""
    import model.fastpath as fastpath

    monkeypatch.setattr(fastpath, "_fastcore", None)
    monkeypatch.setattr(fastpath, "DEFAULT_ENGINE", "numpy")
    with caplog.at_level("WARNING", logger="service.app"):
        fallback = make_app(scorer=None, scoring_engine="auto").test_client()
    assert fallback.get("/readyz").get_json()["scoring_engine"] == "numpy"
    assert any("compiled scoring core" in r.getMessage() for r in caplog.records)
    assert post_json(fallback, "/api/v1/check", {"comment_content": SPAM_TEXT}).status_code == 200
    strict = make_app(scorer=None, scoring_engine="c").test_client()
    response = strict.get("/readyz")
    assert response.status_code == 503
    assert "compiled scoring core (model._fastcore) is not built" in response.get_json()["reason"]
    assert post_json(strict, "/api/v1/check", {"comment_content": SPAM_TEXT}).status_code == 503


def test_the_app_asks_flask_about_each_view_and_hook_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []
    flask_answer = Flask.ensure_sync
    monkeypatch.setattr(Flask, "ensure_sync", lambda self, func: asked.append(func) or flask_answer(self, func))
    app = ServiceFlask("cache-test")

    def view() -> str:
        return "ok"

    assert app.ensure_sync(view) is view and app.ensure_sync(view) is view
    assert asked == [view]

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> str:
            return "ok"

    handler = Unhashable()
    assert app.ensure_sync(handler) is handler and app.ensure_sync(handler) is handler
    assert asked == [view, handler, handler]  # not cached, answered as Flask answers


def test_the_app_serves_through_its_cached_views(client: FlaskClient) -> None:
    for _ in range(2):  # the second request takes every view and hook from the cache
        assert client.get("/healthz").get_json() == {"status": "ok"}
    assert isinstance(client.application, ServiceFlask)


def test_app_loads_the_model_from_model_path(make_app: Callable[..., Flask]) -> None:
    app = make_app(scorer=None)
    assert get_state(app).scorer is not None
    assert app.test_client().get("/readyz").get_json()["model_version"] == "test-model-1"
    assert app.config["MAX_CONTENT_LENGTH"] == 65536


def test_the_service_scores_without_importing_scikit_learn(model_dir: Path, tmp_path: Path) -> None:
    """A worker builds its app from the artifact's serving tables: no unpickling, no scikit-learn or SciPy."""
    code = ("import json, sys; from service.app import create_app; client = create_app().test_client(); "
            "ready = client.get('/readyz').get_json(); "
            "print(json.dumps({'ready': ready['status'], "
            "'loaded': sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'joblib'})}))")
    env = {**os.environ, "COMMENTGUARD_MODEL_PATH": str(model_dir), "COMMENTGUARD_DATA_DIR": str(tmp_path / "var")}
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], env=env,
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"ready": "ready", "loaded": []}


def test_an_artifact_without_tables_is_refused_until_its_tables_are_added(
        make_app: Callable[..., Flask], model_dir: Path, tmp_path: Path) -> None:
    """The service never unpickles: a model saved before serving tables existed is not served
    (readiness names the cure) until `commentguard models add-tables` writes them."""
    from model.artifact import add_tables

    old = tmp_path / "old-model"
    shutil.copytree(model_dir, old)
    (old / "scoring.npz").unlink()
    meta = json.loads((old / "metadata.json").read_text())
    del meta["tables"]
    meta["version"] = "test-model-old"
    (old / "metadata.json").write_text(json.dumps(meta))
    client = make_app(scorer=None, model_path=old).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "models add-tables" in ready.get_json()["reason"]
    assert post_json(client, "/api/v1/check", {"comment_content": SPAM_TEXT}).status_code == 503
    add_tables(old)
    client = make_app(scorer=None, model_path=old).test_client()
    assert client.get("/readyz").get_json()["model_version"] == "test-model-old"
    assert post_json(client, "/api/v1/check", {"comment_content": SPAM_TEXT}).status_code == 200


def test_without_model_the_app_starts_but_is_not_ready(
        make_app: Callable[..., Flask], tmp_path: Path) -> None:
    client = make_app(scorer=None, model_path=tmp_path / "no-such-model").test_client()
    assert client.get("/healthz").status_code == 200
    body = assert_error(client.get("/readyz"), 503)
    assert body["error"] == "model not loaded"
    assert "no-such-model" in body["reason"]
    for path, payload in [("/api/v1/check", {"comment_content": "hi"}),
                          ("/api/v1/check/batch", {"comments": []})]:
        body = assert_error(post_json(client, path, payload), 503)
        assert body["error"] == "model not loaded"


def test_corrupt_model_is_not_ready(make_app: Callable[..., Flask], model_dir: Path,
                                    tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / PICKLE_NAME).write_bytes(b"not a pickle")
    body = assert_error(make_app(scorer=None, model_path=broken).test_client().get("/readyz"), 503)
    assert "SHA-256" in body["reason"]


def test_threshold_overrides_apply(make_app: Callable[..., Flask]) -> None:
    client = make_app(threshold_unsure=0.0, threshold_spam=0.0, threshold_discard=0.0).test_client()
    assert post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT}).get_json()["verdict"] == "discard"


def test_threshold_overrides_contradicting_the_model_are_not_ready(
        make_app: Callable[..., Flask]) -> None:
    client = make_app(threshold_unsure=0.95).test_client()  # above the model's spam threshold
    body = assert_error(client.get("/readyz"), 503)
    assert "COMMENTGUARD_THRESHOLD_UNSURE" in body["reason"]
    assert_error(post_json(client, "/api/v1/check", {"comment_content": "hi"}), 503)


# --- POST /api/v1/check: good input --------------------------------------------------------

def test_check_spam_and_ham(client: FlaskClient) -> None:
    spam = post_json(client, "/api/v1/check", {"comment_content": SPAM_TEXT,
                                               "comment_author_url": "http://bit.ly/x"})
    ham = post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT, "comment_author": "Ann"})
    assert spam.status_code == ham.status_code == 200
    for body in (spam.get_json(), ham.get_json()):
        assert set(body) == RESULT_KEYS
        assert body["model_version"] == "test-model-1"
        assert 0.0 <= body["score"] <= 1.0
        assert all(set(r) == {"reason", "weight"} for r in body["reasons"])
        assert uuid.UUID(hex=body["check_id"]).version == 7 and len(body["check_id"]) == 32
    assert spam.get_json()["verdict"] in ("spam", "discard")
    assert ham.get_json()["verdict"] == "ham"
    assert spam.get_json()["check_id"] != ham.get_json()["check_id"]


def test_the_akismet_fixed_rules_hold_on_the_json_api_too(client: FlaskClient) -> None:
    """One comment, one verdict, whichever surface asks (the OpenAPI document promised it)."""
    admin = {"comment_content": SPAM_TEXT, "comment_author_url": "http://bit.ly/x", "user_role": "administrator"}
    test_spam = {"comment_content": HAM_TEXT, "comment_author": "akismet-guaranteed-spam"}
    honeypot = {"comment_content": HAM_TEXT, "honeypot_field_name": "hp_field", "hp_field": "filled in"}
    batch = post_json(client, "/api/v1/check/batch", {"comments": [admin, test_spam, honeypot]}).get_json()
    for body in (post_json(client, "/api/v1/check", admin).get_json(), batch["results"][0]):
        assert body["verdict"] == "ham" and body["score"] == 0.0
        assert body["reasons"][0]["reason"] == "the comment was written by a site administrator"
        assert all(r["weight"] <= 0 for r in body["reasons"])  # nothing that pointed to spam
    # The Akismet test values are the Akismet protocol's own; here is_test does that job.
    for body in (post_json(client, "/api/v1/check", test_spam).get_json(), batch["results"][1]):
        assert body["verdict"] == "ham"
    for body in (post_json(client, "/api/v1/check", honeypot).get_json(), batch["results"][2]):
        assert body["verdict"] in ("spam", "discard")
        assert body["reasons"][0]["reason"] == "a hidden honeypot field was filled in"


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8",
    "Application/JSON; charset=utf-8",
])
def test_check_accepts_json_with_any_charset_parameter(client: FlaskClient, content_type: str) -> None:
    response = client.post("/api/v1/check", data=json.dumps({"comment_content": "héllo"}).encode(),
                           content_type=content_type)
    assert response.status_code == 200


def test_check_honours_a_declared_charset(client: FlaskClient) -> None:
    body = '{"comment_content": "café au lait, merci"}'.encode("latin-1")
    response = client.post("/api/v1/check", data=body, content_type="application/json; charset=ISO-8859-1")
    assert response.status_code == 200


def test_check_keeps_unknown_fields_and_accepts_numbers_where_akismet_does(client: FlaskClient) -> None:
    response = post_json(client, "/api/v1/check", {
        "comment_content": HAM_TEXT, "comment_parent": 12, "is_test": 1, "HTTP_ACCEPT": "text/html",
        "POST_extra": {"nested": True}, "comment_context": ["python", "flask"],
    })
    assert response.status_code == 200


def test_credentials_and_addresses_in_a_json_comment_are_not_stored(app: Flask, client: FlaskClient) -> None:
    """Found by a probe: credentials and addresses under names the old rules missed were stored in
    clear from the JSON API, whether sent at the top level or in "extra", by check and feedback."""
    leaks = {"POST_pwd": "hunter2-a", "POST_user_pass": "hunter2-b", "POST_session_id": "hunter2-c",
             "HTTP_X_AUTH": "hunter2-d", "HTTP_CF_PSEUDO_IPV4": "240.16.0.1", "note": "contact me at 10.0.0.5"}
    top = {"comment_content": HAM_TEXT, **leaks, "passage": "Genesis 1"}
    nested = {"comment_content": HAM_TEXT, "extra": {**leaks, "passage": "Genesis 1"}}
    rows = check_and_report_each(app, client, [top, nested])
    for row in rows:
        assert "hunter2" not in row["extra"] and "240.16" not in row["extra"] and "10.0.0.5" not in row["extra"]
        extra = json.loads(row["extra"])
        assert extra["passage"] == "Genesis 1" and extra["note"].startswith("contact me at hmac:")


def test_json_text_with_a_lone_surrogate_escape_is_stored(app: Flask, client: FlaskClient) -> None:
    """Found by a probe: minimising rewrote the JSON text with the escape decoded to a lone
    surrogate, which no database can store; the check was answered, then dropped."""
    escaped = '["\\ud800", "10.0.0.5", {"password": "x", "a": "\\udc80 ok"}]'
    rows = check_and_report_each(app, client, [{"comment_content": HAM_TEXT, "POST_x": escaped}])
    for row in rows:
        assert json.loads(json.loads(row["extra"])["POST_x"])[0] == "\ufffd"
        assert "10.0.0.5" not in row["extra"] and "password" not in row["extra"]


def test_nested_credentials_and_long_address_runs_in_a_json_comment_are_not_stored(app: Flask,
                                                                                   client: FlaskClient) -> None:
    """Found by a probe: a nested object is kept in extra as its JSON text, and its password, API
    key and Authorization header were stored in clear; and a 64 KB body whose extra held
    "::1 ::1 ..." was stored as 608 KB (each address a 37-character pseudonym where it stood)."""
    nested = {"comment_content": HAM_TEXT, "user": {"password": "s3cret!", "api_key": "sk_live_abc", "name": "Ann"},
              "headers": [{"Authorization": "Bearer xyz"}]}
    run = {"comment_content": HAM_TEXT, "extra": {"a": ("::1 " * 15_000)[:-1]}}
    assert len(json.dumps(run)) < 65536
    rows = check_and_report_each(app, client, [nested, run])
    for row in rows:
        for secret in ("s3cret", "sk_live", "xyz", "::1"):
            assert secret not in row["extra"], secret
        assert len(row["extra"]) < 200
        extra = json.loads(row["extra"])
        if "user" in extra:
            assert json.loads(extra["user"]) == {"name": "Ann"} and json.loads(extra["headers"]) == [{}]


def test_unknown_fields_other_than_strings_are_kept_as_json_text_and_extra_must_be_an_object(
        client: FlaskClient) -> None:
    from model.comment import Comment
    from model.errors import CommentFieldError

    comment = Comment.from_mapping({"comment_content": "hi", "flag": True, "tags": ["a", "b"],
                                    "obj": {"a": [1, True, None]}, "n": 5, "gone": None})
    assert comment.extra == {"flag": "true", "tags": '["a", "b"]', "obj": '{"a": [1, true, null]}', "n": "5"}
    with pytest.raises(CommentFieldError, match="extra"):
        Comment.from_mapping({"comment_content": "hi", "extra": [None, None]})
    response = post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT, "extra": ["x"]})
    assert response.status_code == 422 and response.get_json()["field"] == "extra"


def test_log_only_mode_answers_ham_and_returns_the_recorded_verdict(make_app: Callable[..., Flask]) -> None:
    """Log-only promises ham on the wire: a JSON integration acting on ``verdict`` must not drop
    or hold anything while the operator tries the filter (it was given the real verdict)."""
    app = make_app(mode="log_only")
    client = app.test_client()
    body = post_json(client, "/api/v1/check", {"comment_content": SPAM_TEXT}).get_json()
    assert body["verdict"] == "ham" and body["enforced"] is False
    assert body["recorded_verdict"] in ("spam", "discard") and body["score"] >= 0.5
    assert any(r["weight"] > 0 for r in body["reasons"])  # the recorded verdict's reasons
    batch = post_json(client, "/api/v1/check/batch", {"comments": [{"comment_content": SPAM_TEXT},
                                                                   {"comment_content": HAM_TEXT}]})
    results = batch.get_json()["results"]
    assert [r["verdict"] for r in results] == ["ham", "ham"]
    assert results[0]["recorded_verdict"] in ("spam", "discard") and results[1]["recorded_verdict"] == "ham"
    assert all(r["enforced"] is False for r in results)
    state = get_state(app)
    state.recorder.flush()
    assert state.store.get_check(body["check_id"]).tier == body["recorded_verdict"]


def test_enforce_mode_has_no_enforced_field(client: FlaskClient) -> None:
    body = post_json(client, "/api/v1/check", {"comment_content": SPAM_TEXT}).get_json()
    assert "enforced" not in body and "recorded_verdict" not in body
    assert body["verdict"] in ("spam", "discard")


# --- POST /api/v1/check: bad input ---------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None,
])
def test_wrong_content_type_is_415(client: FlaskClient, content_type: str | None) -> None:
    body = json.dumps({"comment_content": "hi"})
    assert_error(client.post("/api/v1/check", data=body, content_type=content_type), 415)


@pytest.mark.parametrize("charset", ["rot13", "zlib", "base64", "hex", "uu", "quopri", "unicode_escape",
                                     "raw_unicode_escape", "utf-7", "punycode", "idna", "undefined"])
def test_codecs_that_are_not_charsets_are_415(client: FlaskClient, charset: str) -> None:
    # Transforms (rot13, zlib...) were a 500; the escape codecs turned "\\ud800" into a lone
    # surrogate, answered and then not stored.
    response = client.post("/api/v1/check", data=b'{"comment_content": "x\\ud800y"}',
                           content_type=f"application/json; charset={charset}")
    assert assert_error(response, 415)["charset"] == charset


def test_unknown_charset_is_415(client: FlaskClient) -> None:
    response = client.post("/api/v1/check", data=b'{"comment_content": "hi"}',
                           content_type="application/json; charset=no-such-charset")
    assert assert_error(response, 415)["charset"] == "no-such-charset"


@pytest.mark.parametrize("raw", [b'{"comment_content": "hi"', b"{'comment_content': 'hi'}", b"",
                                 b"   ", b'{"comment_content": NaN}', b"\xff\xfe{}"])
def test_malformed_json_is_400(client: FlaskClient, raw: bytes) -> None:
    assert_error(client.post("/api/v1/check", data=raw, content_type="application/json"), 400)


def test_malformed_json_says_where(client: FlaskClient) -> None:
    raw = b'{\n  "comment_content": "hi",\n}'
    body = assert_error(client.post("/api/v1/check", data=raw, content_type="application/json"), 400)
    assert body["error"].startswith("malformed JSON")
    # Where the parser stops: Python 3.11 and 3.12 at the "}" (line 3), 3.13 at the trailing comma.
    with pytest.raises(json.JSONDecodeError) as parsed:
        json.loads(raw)
    assert body["line"] == parsed.value.lineno and body["line"] in (2, 3)


@pytest.mark.parametrize("payload, kind", [([{"comment_content": "hi"}], "array"), ("hi", "string"),
                                           (3, "number"), (None, "null"), (True, "boolean")])
def test_body_that_is_not_an_object_is_400(client: FlaskClient, payload: Any, kind: str) -> None:
    assert assert_error(post_json(client, "/api/v1/check", payload), 400)["type"] == kind


@pytest.mark.parametrize("payload, words", [
    ({}, "required"), ({"comment_author": "Ann"}, "required"), ({"comment_content": None}, "required"),
    ({"comment_content": ""}, "empty"), ({"comment_content": " \n\t "}, "empty"),
    ({"comment_content": 42}, "string"), ({"comment_content": ["hi"]}, "string"),
    ({"comment_content": {"text": "hi"}}, "string"),
])
def test_bad_comment_content_is_422(client: FlaskClient, payload: dict[str, Any], words: str) -> None:
    body = assert_error(post_json(client, "/api/v1/check", payload), 422, field="comment_content")
    assert words in body["error"]


@pytest.mark.parametrize("field, value", [("comment_author", 5), ("user_ip", ["1.2.3.4"]),
                                          ("comment_author_email", {"a": 1}), ("blog", 1.5),
                                          ("comment_context", [1, 2])])
def test_field_of_wrong_type_is_422(client: FlaskClient, field: str, value: Any) -> None:
    payload = {"comment_content": HAM_TEXT, field: value}
    body = assert_error(post_json(client, "/api/v1/check", payload), 422, field=field)
    assert field in body["error"]


@pytest.mark.parametrize("field, value, says", [
    # "must be a string, not float" for a field that takes integers too (a probe).
    ("comment_parent", 1.5, "'comment_parent' must be a string or an integer, not a decimal number"),
    ("comment_parent", [3], "'comment_parent' must be a string or an integer, not an array"),
    ("is_test", {"on": 1}, "'is_test' must be a string, an integer or a boolean, not an object"),
    ("comment_author", 5, "'comment_author' must be a string, not an integer"),
    ("comment_context", 7, "'comment_context' must be a string or an array of strings, not an integer"),
    ("comment_context", ["a", None], "must be a string or an array of strings, not an array holding null"),
])
def test_a_wrong_type_error_says_what_the_field_accepts(client: FlaskClient, field: str, value: Any,
                                                         says: str) -> None:
    body = assert_error(post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT, field: value}),
                        422, field=field)
    assert says in body["error"], body["error"]


def test_fields_that_take_numbers_still_take_them(client: FlaskClient) -> None:
    for field, value in (("comment_parent", 12), ("comment_parent", "12"), ("is_test", True), ("is_test", 1)):
        response = post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT, field: value})
        assert response.status_code == 200, (field, value, response.get_json())


def test_body_over_the_size_limit_is_413(make_app: Callable[..., Flask]) -> None:
    client = make_app(max_body_bytes=1024).test_client()
    payload = {"comment_content": "x" * 2000}
    body = assert_error(post_json(client, "/api/v1/check", payload), 413)
    assert body["max_body_bytes"] == 1024
    assert_error(post_json(client, "/api/v1/check/batch", {"comments": [payload]}), 413)
    assert post_json(client, "/api/v1/check", {"comment_content": "x" * 900}).status_code == 200


def test_unknown_path_is_404_json(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/nope"), 404)
    assert_error(client.get("/nope"), 404)


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/check")
    assert assert_error(response, 405)["allowed"] == ["OPTIONS", "POST"]
    assert response.headers["Allow"] == "OPTIONS, POST"


def test_unexpected_error_is_500_without_traceback_or_personal_data(
        app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    email, text = "reader@" + "example.org", "private " + "text"

    def explode() -> None:  # the data is built apart, so no source line in the stack quotes it
        raise ValueError(f"{email} sent {text!r}")

    app.add_url_rule("/explode", "explode", explode)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/explode")
    body = assert_error(response, 500)
    assert body == {"error": "internal server error", "status": 500}
    assert "ValueError" in caplog.text and "/explode" in caplog.text
    assert "reader@example.org" not in caplog.text and "private text" not in caplog.text


def test_running_out_of_file_descriptors_is_503_not_a_fault(
        app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Out of descriptors, /readyz (which lists a directory) and /metrics answered 500 and logged a
    # traceback on every poll of a load balancer; the Akismet API said "internal error".
    import errno

    from service import readiness

    def no_descriptor(*_: Any, **__: Any) -> Any:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(readiness, "others_not_ready", no_descriptor)
    monkeypatch.setattr("service.akismet.read_form", no_descriptor)
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        ready = client.get("/readyz")
        akismet = client.post("/1.1/comment-check", data={"api_key": "0123456789ab"})
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "1"
    assert "out of file descriptors" in ready.get_json()["error"]
    assert akismet.status_code == 200 and akismet.get_data(as_text=True).startswith("Temporarily unavailable")
    assert "Traceback" not in caplog.text and "unhandled" not in caplog.text


# --- POST /api/v1/check/batch --------------------------------------------------------------

def test_batch_preserves_order_and_scores_once(make_app: Callable[..., Flask], scorer: Scorer) -> None:
    spy = SpyScorer(scorer)
    client = make_app(scorer=spy).test_client()
    texts = [HAM_TEXT, SPAM_TEXT, "Where did you buy the fabric?", "cheap loans http://bit.ly/x now"]
    response = post_json(client, "/api/v1/check/batch", {"comments": [{"comment_content": t} for t in texts]})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert spy.calls == [("score_many", 4)]
    assert [set(r) for r in results] == [RESULT_KEYS] * 4
    assert len({r["check_id"] for r in results}) == 4
    singles = [post_json(client, "/api/v1/check", {"comment_content": t}).get_json() for t in texts]
    assert [r["score"] for r in results] == [s["score"] for s in singles]
    assert [r["verdict"] for r in results][:2] == ["ham", singles[1]["verdict"]]


def test_empty_batch_scores_nothing(make_app: Callable[..., Flask], scorer: Scorer) -> None:
    spy = SpyScorer(scorer)
    response = post_json(make_app(scorer=spy).test_client(), "/api/v1/check/batch", {"comments": []})
    assert response.status_code == 200 and response.get_json() == {"results": []}
    assert spy.calls == []


def test_batch_at_the_limit_passes_and_over_it_is_422(make_app: Callable[..., Flask]) -> None:
    client = make_app(max_batch_items=3).test_client()
    items = [{"comment_content": HAM_TEXT}] * 3
    assert post_json(client, "/api/v1/check/batch", {"comments": items}).status_code == 200
    body = assert_error(post_json(client, "/api/v1/check/batch", {"comments": items + items[:1]}),
                        422, field="comments")
    assert body["max_items"] == 3 and body["received"] == 4


@pytest.mark.parametrize("payload", [{}, {"comment": []}, {"comments": None}, {"comments": "hi"},
                                     {"comments": {"comment_content": "hi"}}])
def test_batch_without_a_comments_list_is_422(client: FlaskClient, payload: dict[str, Any]) -> None:
    assert_error(post_json(client, "/api/v1/check/batch", payload), 422, field="comments")


def test_batch_body_not_an_object_is_400(client: FlaskClient) -> None:
    assert_error(post_json(client, "/api/v1/check/batch", [{"comment_content": "hi"}]), 400)


def test_batch_wrong_content_type_is_415(client: FlaskClient) -> None:
    assert_error(client.post("/api/v1/check/batch", data="comments=1"), 415)


@pytest.mark.parametrize("bad_item, field", [
    ("just text", "comments[3]"), (None, "comments[3]"),
    ({"comment_content": HAM_TEXT, "comment_author": 7}, "comments[3].comment_author"),
    ({"comment_content": "  "}, "comments[3].comment_content"),
    ({"comment_author": "Ann"}, "comments[3].comment_content"),
])
def test_bad_batch_item_is_422_with_its_path(make_app: Callable[..., Flask], scorer: Scorer,
                                             bad_item: Any, field: str) -> None:
    spy = SpyScorer(scorer)
    items: list[Any] = [{"comment_content": HAM_TEXT}] * 3 + [bad_item]
    body = assert_error(post_json(make_app(scorer=spy).test_client(), "/api/v1/check/batch",
                                  {"comments": items}), 422, field=field)
    assert field in body["error"]
    assert spy.calls == []  # nothing scored when any item is bad


def test_batch_lists_every_bad_item(client: FlaskClient) -> None:
    items = [{"comment_content": 1}, {"comment_content": HAM_TEXT}, [], {"comment_content": HAM_TEXT, "blog": 2}]
    body = assert_error(post_json(client, "/api/v1/check/batch", {"comments": items}), 422,
                        field="comments[0].comment_content")
    assert [e["field"] for e in body["errors"]] == [
        "comments[0].comment_content", "comments[2]", "comments[3].blog"]


# --- server wiring and the serve command ---------------------------------------------------

def test_post_worker_init_freezes_what_the_worker_built() -> None:
    """After the hook, a full collection no longer walks the worker's long-lived objects."""
    import gc

    before = gc.get_freeze_count()
    try:
        server.post_worker_init(worker=None)
        assert gc.get_freeze_count() > before
        assert gc.get_freeze_count() > 10_000  # the test process's imports, at least
    finally:
        gc.unfreeze()  # hand them back: this is the test process, not a worker


def test_gunicorn_options(settings: Any) -> None:
    options = server.gunicorn_options(settings)
    assert options["bind"] == ["127.0.0.1:8000"] and options["workers"] == 2
    # gthread with 2 workers x 2 threads: chosen by measurement (README, Performance); gthread is
    # gunicorn's threaded worker reading requests in full before a thread takes one.
    assert options["worker_class"] == server.GTHREAD_WORKER and options["threads"] == 2
    assert options["preload_app"] is False
    assert options["child_exit"] is server.child_exit and options["worker_exit"] is server.worker_exit
    assert options["post_worker_init"] is server.post_worker_init
    assert server.gunicorn_options(settings, worker_class="sync")["threads"] == 1
    assert options["accesslog"] is None and options["graceful_timeout"] > 0
    assert options.get("control_socket_disable", True) is True
    assert options["reuse_port"] is True  # one socket per worker: the kernel balances connections
    assert server.gunicorn_options(dataclasses.replace(settings, reuse_port=False))["reuse_port"] is False
    options = server.gunicorn_options(settings, host="::1", port=9000, workers=4,
                                      worker_class="gthread", access_log=True)
    assert options["bind"] == ["[::1]:9000"] and options["workers"] == 4
    assert options["worker_class"] == server.GTHREAD_WORKER and options["accesslog"] == "-"
    assert server.gunicorn_options(settings, worker_class="sync")["worker_class"] == "sync"


def test_gunicorn_application_takes_the_options(settings: Any, scorer: Scorer) -> None:
    from service.app import create_app

    options = server.gunicorn_options(settings, port=9001, workers=3)
    gunicorn_app = server.CommentGuardServer(lambda: create_app(settings, scorer=scorer), options)
    assert gunicorn_app.cfg.workers == 3 and gunicorn_app.cfg.bind == ["127.0.0.1:9001"]
    assert gunicorn_app.cfg.preload_app is False
    assert isinstance(gunicorn_app.load(), Flask)
    with pytest.raises(ValueError, match="no_such_option"):
        server.CommentGuardServer(lambda: create_app(settings), {"no_such_option": 1})


@pytest.fixture
def fake_serve(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "serve", lambda settings, **kw: calls.append({"settings": settings, **kw}))
    # serve checks its port before anything else: these tests do not depend on 8000 being free here.
    monkeypatch.setattr(server, "check_address_free", lambda host, port: None)
    return calls


def test_serve_command_uses_settings_and_options(runner: FlaskCliRunner, model_dir: Path,
                                                 tmp_path: Path, fake_serve: list[dict[str, Any]]) -> None:
    env = {"COMMENTGUARD_DATA_DIR": str(tmp_path / "var"), "COMMENTGUARD_MODEL_PATH": str(model_dir),
           "COMMENTGUARD_WORKERS": "3", "COMMENTGUARD_SECRET_KEY": TEST_SECRET_KEY}
    result = runner.invoke(cli, ["serve", "--port", "9100"], env=env)
    assert result.exit_code == 0, result.output
    (call,) = fake_serve
    assert call["port"] == 9100 and call["host"] is None and call["workers"] is None
    assert call["settings"].workers == 3 and call["worker_class"] is None  # None: from settings
    assert (tmp_path / "var").is_dir()


def test_serve_makes_a_data_directory_that_existed_before_its_first_start_owner_only(
        runner: FlaskCliRunner, model_dir: Path, tmp_path: Path, fake_serve: list[dict[str, Any]]) -> None:
    """Found by a probe: `commentguard train --out ./var/model` under umask 022 left ./var 0755, and
    the first `serve` put the secret and the database in it and left it so (it looked for them
    before opening the store, which creates them)."""
    import stat

    data_dir = tmp_path / "first-start"
    shutil.copytree(model_dir, data_dir / "model")
    data_dir.chmod(0o755)
    result = runner.invoke(cli, ["serve"], env={"COMMENTGUARD_DATA_DIR": str(data_dir), "COMMENTGUARD_SECRET_KEY": "",
                                                "COMMENTGUARD_DATABASE_URL": "", "COMMENTGUARD_MODEL_PATH": ""})
    assert result.exit_code == 0, result.output
    assert (data_dir / "secret_key").is_file() and fake_serve
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    # One that holds none of the service's own files (the database elsewhere, the secret given) is left alone.
    shared = tmp_path / "shared"
    shutil.copytree(model_dir, shared / "model")
    shared.chmod(0o755)
    result = runner.invoke(cli, ["serve"], env={"COMMENTGUARD_DATA_DIR": str(shared),
                                                "COMMENTGUARD_SECRET_KEY": TEST_SECRET_KEY,
                                                "COMMENTGUARD_DATABASE_URL": str(tmp_path / "elsewhere.sqlite3"),
                                                "COMMENTGUARD_MODEL_PATH": ""})
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_serve_command_trains_the_default_model_when_missing(
        runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fake_serve: list[dict[str, Any]]) -> None:
    trained: list[Path] = []
    fake = types.ModuleType("training.defaults")
    fake.ensure_default_model = lambda path: trained.append(Path(path))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "training.defaults", fake)
    result = runner.invoke(cli, ["serve"], env={"COMMENTGUARD_DATA_DIR": str(tmp_path),
                                                "COMMENTGUARD_MODEL_PATH": ""})
    assert result.exit_code == 0, result.output
    assert trained == [tmp_path / "model"] and len(fake_serve) == 1


def test_serve_command_explains_when_the_model_path_cannot_be_written(
        runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fake_serve: list[dict[str, Any]]) -> None:
    fake = types.ModuleType("training.defaults")

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    fake.ensure_default_model = refuse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "training.defaults", fake)
    result = runner.invoke(cli, ["serve"], env={"COMMENTGUARD_DATA_DIR": str(tmp_path),
                                                "COMMENTGUARD_MODEL_PATH": str(tmp_path / "m")})
    assert result.exit_code == 1 and "cannot train the default model into" in result.output
    assert "Permission denied" in result.output and "Traceback" not in result.output
    assert fake_serve == []


def test_serve_command_explains_when_training_is_unavailable(
        runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fake_serve: list[dict[str, Any]]) -> None:
    monkeypatch.setitem(sys.modules, "training.defaults", None)  # import raises ImportError
    result = runner.invoke(cli, ["serve"], env={"COMMENTGUARD_DATA_DIR": str(tmp_path),
                                                "COMMENTGUARD_MODEL_PATH": str(tmp_path / "m")})
    assert result.exit_code == 1 and "commentguard train" in result.output
    assert fake_serve == []


def test_serve_command_checks_its_port_before_training_the_default_model(
        runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It trained for a minute on first run, and only then said "Address already in use"."""
    trained: list[Path] = []
    fake = types.ModuleType("training.defaults")
    fake.ensure_default_model = lambda path: trained.append(Path(path))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "training.defaults", fake)
    monkeypatch.setattr(server, "serve", lambda *a, **k: pytest.fail("served on a port in use"))
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = runner.invoke(cli, ["serve", "--port", str(port)],
                               env={"COMMENTGUARD_DATA_DIR": str(tmp_path), "COMMENTGUARD_MODEL_PATH": ""})
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "another server" in result.output and trained == []


def test_serve_command_reports_a_bad_setting(runner: FlaskCliRunner,
                                             fake_serve: list[dict[str, Any]]) -> None:
    result = runner.invoke(cli, ["serve"], env={"COMMENTGUARD_PORT": "eighty"})
    assert result.exit_code == 1 and "COMMENTGUARD_PORT" in result.output
    assert fake_serve == []


# --- end to end -----------------------------------------------------------------------------

@pytest.mark.slow
def test_real_server_end_to_end(model_dir: Path, tmp_path: Path) -> None:
    """The real CLI, `commentguard serve` on a free port, answers a JSON check over HTTP."""
    server = start_live_server(tmp_path / "var", model_dir, workers=1)
    try:
        headers = auth_headers(server.key)
        response = httpx.post(f"{server.base_url}/api/v1/check", json={"comment_content": SPAM_TEXT},
                              headers=headers, timeout=5)
        assert response.status_code == 200 and set(response.json()) == RESULT_KEYS
        response = httpx.post(f"{server.base_url}/api/v1/check", content=b"[1]",
                              headers={"Content-Type": "application/json", **headers}, timeout=5)
        assert response.status_code == 400 and response.json()["status"] == 400
        # Served from the artifact's tables: neither the master nor its worker maps scikit-learn.
        master = server.proc.pid
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        assert len(workers) == 1
        for pid in [master, *map(int, workers)]:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "/sklearn/" not in maps and "/scipy/" not in maps, pid
    finally:
        server.stop()


def listening_sockets(port: int) -> int:
    """How many TCP sockets on this machine listen on ``port`` (from /proc/net/tcp and tcp6)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as rows:
            next(rows)
            for row in rows:
                local, state = row.split()[1], row.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port  # 0A: LISTEN
    return count


def test_each_worker_listens_on_its_own_socket(live_server: LiveServer) -> None:
    # Two workers, two SO_REUSEPORT sockets: the kernel spreads new connections over both.
    port = int(live_server.base_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 10  # /readyz answers once one worker is up; the other binds just after
    while listening_sockets(port) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening_sockets(port) == 2
    assert httpx.get(f"{live_server.base_url}/readyz", timeout=5).status_code == 200


@pytest.mark.parametrize("reuse_port", [True, False])
def test_serve_refuses_a_port_in_use(model_dir: Path, tmp_path: Path, reuse_port: bool) -> None:
    port = free_port()
    with socket.socket() as other:  # another server holding the port, itself with SO_REUSEPORT
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        with pytest.raises(server.CannotListen, match=f"127.0.0.1:{port}"):
            server.check_address_free("127.0.0.1", port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTGUARD_")}
        env.update({"COMMENTGUARD_DATA_DIR": str(tmp_path), "COMMENTGUARD_MODEL_PATH": str(model_dir),
                    "COMMENTGUARD_REUSE_PORT": str(reuse_port).lower()})
        done = subprocess.run([sys.executable, "-m", "commentguard", "serve", "--port", str(port)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    if reuse_port:  # our own check, before any worker starts
        assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "another server" in done.stderr
    else:  # gunicorn's own bind in the master, which gives up after a few tries
        assert "in use" in done.stderr.lower()
    server.check_address_free("127.0.0.1", port)  # free again once the other server is gone


def test_feedback_takes_null_for_its_optional_members_and_options_needs_no_key(
        client: FlaskClient, anonymous_client: FlaskClient) -> None:
    checked = post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT}).get_json()
    response = post_json(client, "/api/v1/feedback", {"check_id": checked["check_id"], "label": "ham",
                                                      "reporter": None, "comment": None})
    assert response.status_code == 201 and response.get_json()["check_id"] == checked["check_id"]
    options = anonymous_client.options("/api/v1/check")
    assert options.status_code == 200 and "POST" in options.headers["Allow"]


def test_answers_are_never_cached_or_sniffed(client: FlaskClient) -> None:
    for response in (post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT}), client.get("/readyz"),
                     client.post("/1.1/verify-key", data={"key": "0" * 12, "blog": "https://b.example"}),
                     client.get("/no/such/path")):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
