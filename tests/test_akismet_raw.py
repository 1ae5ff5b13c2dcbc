"""The Akismet surface over raw HTTP (Flask test client): what real clients send that the PyPI client cannot.

Key in the Host header, ``key`` instead of ``api_key``, ``comment_context[]``,
unknown fields, non-UTF-8 bodies, empty and oversized bodies, missing fields,
the fixed rules (test values, administrator, honeypot), log-only mode, the
unsure mapping, test calls never learned from, feedback linking, and usage.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Sequence
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.akismet import THANKS, reasons_header
from service.akismet_rules import HONEYPOT_REASON
from service.app import get_state
from store import Store, current_month
from tests.conftest import TEST_SITE

SPAM_TEXT = "Buy cheap viagra online now!!! click http://bit.ly/cheap-pills"
HAM_TEXT = "Thanks for the clear explanation, it helped me fix my build."
FORM = "application/x-www-form-urlencoded"
HEX32 = re.compile(r"[0-9a-f]{32}")


def post(client: FlaskClient, path: str, fields: dict[str, str] | Sequence[tuple[str, str]] | bytes,
         content_type: str = FORM, **kwargs: Any) -> Any:
    body = fields if isinstance(fields, bytes) else urlencode(fields).encode()
    return client.post(path, data=body, content_type=content_type, **kwargs)


def base(api_key: str, **fields: str) -> dict[str, str]:
    out = {"api_key": api_key, "blog": TEST_SITE, "user_ip": "203.0.113.9",
           "user_agent": "Mozilla/5.0", "comment_type": "comment", "comment_author": "Ann",
           "comment_content": HAM_TEXT}
    out.update(fields)
    return out


def flushed_store(app: Flask) -> Store:
    state = get_state(app)
    assert state.recorder is not None and state.store is not None
    state.recorder.flush()
    return state.store


def stored_extras(app: Flask) -> list[dict[str, Any]]:
    """The ``extra`` column of every stored check and report."""
    return flushed_store(app).database.read(lambda tx: tx.fetchall("SELECT extra FROM checks")
                                            + tx.fetchall("SELECT extra FROM feedback"))


def assert_answer(response: Any, body: str) -> None:
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == body
    assert "X-akismet-debug-help" not in response.headers, "debug help only goes with 'invalid'"


def assert_protocol_error(response: Any, starts: str) -> None:
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert text.startswith(starts), text
    assert text not in ("true", "false", "invalid", "valid", THANKS)
    assert response.headers.get("X-akismet-debug-help")


# --- keys ---------------------------------------------------------------------------------

def test_verify_key(client: FlaskClient, api_key: str) -> None:
    assert_answer(post(client, "/1.1/verify-key", {"key": api_key, "blog": TEST_SITE}), "valid")
    assert_answer(post(client, "/1.1/verify-key", {"api_key": api_key, "blog": TEST_SITE}), "valid")
    wrong = post(client, "/1.1/verify-key", {"key": "0123456789ab", "blog": TEST_SITE})
    assert wrong.get_data(as_text=True) == "invalid" and wrong.headers["X-akismet-debug-help"]
    none = post(client, "/1.1/verify-key", {"blog": TEST_SITE})
    assert none.get_data(as_text=True) == "invalid"
    assert none.headers["X-akismet-debug-help"] == 'Empty "api_key" value'


def test_verify_key_answers_about_key_not_the_configured_api_key(app: Flask, client: FlaskClient,
                                                                   api_key: str) -> None:
    # The WordPress plugin's settings page verifies a key typed in as `key`, and every call it
    # makes also carries the key it is configured with as `api_key`.
    store = get_state(app).store
    assert store is not None
    revoked, info = store.create_key(TEST_SITE)
    store.revoke_key(info.id)  # never used, so no worker remembers it as live
    typo = post(client, "/1.1/verify-key", {"key": "0123456789ab", "blog": TEST_SITE, "api_key": api_key})
    assert typo.get_data(as_text=True) == "invalid"
    assert_answer(post(client, "/1.1/verify-key", {"key": api_key, "blog": TEST_SITE, "api_key": revoked}),
                  "valid")


def test_get_subscription(client: FlaskClient, api_key: str) -> None:
    # The plugin saves a key only when this says "active", and shows the account from it.
    response = post(client, "/1.1/get-subscription", {"key": api_key.upper(), "blog": TEST_SITE,
                                                      "api_key": "0123456789ab"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    account = response.get_json()
    assert account["status"] == "active" and account["next_billing_date"] is None
    assert account["account_name"] and account["account_type"]
    assert "X-akismet-debug-help" not in response.headers
    wrong = post(client, "/1.1/get-subscription", {"key": "0123456789ab", "blog": TEST_SITE, "api_key": api_key})
    assert wrong.get_data(as_text=True) == "invalid" and wrong.headers["X-akismet-debug-help"]


def test_connection_test(client: FlaskClient) -> None:
    # The plugin's settings page fetches /1.1/test and warns of a firewall unless it reads this.
    assert_answer(client.get("/1.1/test"), "connected")
    assert_answer(post(client, "/1.1/test", {}), "connected")


def test_key_only_in_the_host_header(client: FlaskClient, api_key: str) -> None:
    fields = base(api_key)
    del fields["api_key"]
    response = post(client, "/1.1/comment-check", fields, headers={"Host": f"{api_key.upper()}.rest.example.org"})
    assert_answer(response, "false")
    plain_host = post(client, "/1.1/comment-check", fields, headers={"Host": "rest.example.org"})
    assert plain_host.get_data(as_text=True) == "invalid"


def test_key_field_instead_of_api_key(client: FlaskClient, api_key: str) -> None:
    fields = base(api_key)
    fields["key"] = fields.pop("api_key")
    assert_answer(post(client, "/1.1/comment-check", fields), "false")


def test_a_key_in_capitals_works_in_every_place_it_may_arrive(client: FlaskClient, api_key: str) -> None:
    # The WordPress plugin keeps a key pasted in capitals and sends it as is.
    upper = api_key.upper()
    assert upper != api_key
    assert_answer(post(client, "/1.1/verify-key", {"key": upper, "blog": TEST_SITE}), "valid")
    assert_answer(post(client, "/1.1/comment-check", base(upper)), "false")
    fields = base(api_key)
    fields["key"] = fields.pop("api_key").upper()
    assert_answer(post(client, "/1.1/comment-check", fields), "false")
    usage = client.get(f"/1.2/usage-limit?api_key={upper}")
    assert usage.status_code == 200 and usage.get_json()["usage"] >= 2


def test_api_key_wins_over_key_and_host(client: FlaskClient, api_key: str) -> None:
    fields = base("0123456789ab", key=api_key)
    response = post(client, "/1.1/comment-check", fields, headers={"Host": f"{api_key}.rest.example.org"})
    assert response.get_data(as_text=True) == "invalid"


def test_revoked_key_is_invalid(app: Flask, client: FlaskClient, api_key: str) -> None:
    store = flushed_store(app)
    (info,) = store.list_keys()
    store.revoke_key(info.id)
    response = post(client, "/1.1/comment-check", base(api_key))
    assert response.get_data(as_text=True) == "invalid" and response.headers["X-akismet-debug-help"]


# --- body and fields ----------------------------------------------------------------------

def test_comment_context_array_and_unknown_fields_are_kept(app: Flask, client: FlaskClient, api_key: str) -> None:
    fields = list(base(api_key).items()) + [
        ("comment_context[]", "cooking"), ("comment_context[]", "bread"), ("comment_context[2]", "rye"),
        ("HTTP_ACCEPT", "text/html"), ("POST_comment_post_ID", "42"), ("REQUEST_URI", "/post/42"),
        ("something_new", "kept"), ("akismet_comment_nonce", "abc123"), ("HTTP_X_WP_NONCE", "abc123"),
    ]
    response = post(client, "/1.1/comment-check", fields)
    assert_answer(response, "false")
    check = flushed_store(app).get_check(response.headers["X-akismet-guid"])
    assert check is not None
    assert check.comment.comment_context == ("cooking", "bread", "rye")
    extra = dict(check.comment.extra)
    assert extra["HTTP_ACCEPT"] == "text/html" and extra["POST_comment_post_ID"] == "42"
    assert extra["something_new"] == "kept" and extra["REQUEST_URI"] == "/post/42"
    assert "api_key" not in extra and "key" not in extra
    assert "akismet_comment_nonce" not in extra  # a value other than the plugin's verdict: dropped
    assert "HTTP_X_WP_NONCE" not in extra  # a credential


@pytest.mark.parametrize("verdict", ["passed", "failed", "inactive"])
def test_the_wordpress_plugins_nonce_verdict_is_kept(app: Flask, client: FlaskClient, api_key: str,
                                                     verdict: str) -> None:
    # The plugin sends whether its form nonce checked out, not the nonce: a spam sign, no secret.
    fields = list(base(api_key).items()) + [("akismet_comment_nonce", verdict)]
    response = post(client, "/1.1/comment-check", fields)
    check = flushed_store(app).get_check(response.headers["X-akismet-guid"])
    assert check is not None and dict(check.comment.extra)["akismet_comment_nonce"] == verdict


def test_credentials_and_addresses_the_wordpress_plugin_forwards_are_not_stored(app: Flask, client: FlaskClient,
                                                                             api_key: str) -> None:
    """Found by a probe: the plugin forwards every string of the form as POST_<name>, a login or
    registration form's passwords included, and every server variable; those below were stored
    in clear by comment-check and submit-spam (in the check and in the report)."""
    leaks = {"POST_pwd": "hunter2-a", "POST_pass1": "hunter2-b", "POST_pass2": "hunter2-c",
             "POST_user_pass": "hunter2-d", "POST_passwort": "hunter2-e", "POST_session_id": "hunter2-f",
             "HTTP_X_AUTH": "hunter2-g", "HTTP_CF_CONNECTING_IPV6": "2001:db8:85a3::8a2e:370:7334",
             "HTTP_CF_PSEUDO_IPV4": "240.16.0.1", "POST_note": "contact me at 10.0.0.5"}
    kept = {"POST_bypass_cache": "1", "POST_passage": "Genesis 1", "akismet_comment_nonce": "failed",
            "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                               "Chrome/120.0.0.0 Safari/537.36"}
    fields = base(api_key, **leaks, **kept)
    check = post(client, "/1.1/comment-check", fields)
    assert check.get_data(as_text=True) in ("true", "false")
    assert_answer(post(client, "/1.1/submit-spam", fields), THANKS)
    rows = stored_extras(app)
    assert len(rows) == 2
    for row in rows:
        for value in ("hunter2", "2001:db8", "8a2e", "240.16", "10.0.0.5"):
            assert value not in row["extra"], value
        extra = json.loads(row["extra"])
        assert {name: extra[name] for name in kept} == kept
        assert re.fullmatch(r"contact me at hmac:[0-9a-f]{32}", extra["POST_note"])


def test_a_form_value_of_many_addresses_is_stored_no_longer_than_sent(app: Flask, client: FlaskClient,
                                                                      api_key: str) -> None:
    """Found by a probe: a 500 KB form value of "::1 ::1 ..." (raw ':' accepted) was stored as
    4.75 million characters, each address a 37-character pseudonym where it stood; 300 such
    checks put the recorder 20 s behind and a worker at 1.6 GB. Such a value is one pseudonym now,
    in the check and in the report."""
    fields = base(api_key, POST_note=("::1 " * 120_000)[:-1], POST_other="from 10.0.0.5")
    body = urlencode(fields, safe=":").encode()
    assert 480_000 < len(body) < 524_288
    assert post(client, "/1.1/comment-check", body).get_data(as_text=True) in ("true", "false")
    assert_answer(post(client, "/1.1/submit-spam", body), THANKS)
    rows = stored_extras(app)
    assert len(rows) == 2
    for row in rows:
        assert len(row["extra"]) < 200 and "::1" not in row["extra"] and "10.0.0.5" not in row["extra"]
        extra = json.loads(row["extra"])
        assert HEX32.fullmatch(extra["POST_note"].removeprefix("hmac:"))
        assert re.fullmatch(r"from hmac:[0-9a-f]{32}", extra["POST_other"])


def test_comment_context_as_one_string(app: Flask, client: FlaskClient, api_key: str) -> None:
    response = post(client, "/1.1/comment-check", base(api_key, comment_context="recipes"))
    check = flushed_store(app).get_check(response.headers["X-akismet-guid"])
    assert check is not None and check.comment.comment_context == ("recipes",)


@pytest.mark.parametrize("how", ["blog_charset", "content_type", "raw_bytes"])
def test_latin1_body_is_decoded(app: Flask, client: FlaskClient, api_key: str, how: str) -> None:
    text = "Un café au lait, s'il vous plaît, à côté"
    fields = base(api_key, comment_author="Zoë")
    fields.pop("comment_content")
    fields.pop("comment_author")
    body = urlencode(fields).encode()
    if how == "raw_bytes":  # not percent-encoded at all, as some old clients send it
        body += b"&comment_author=Zo\xeb&comment_content=" + text.encode("latin-1")
    else:
        body += ("&comment_author=" + quote("Zoë".encode("latin-1"))
                 + "&comment_content=" + quote(text.encode("latin-1"))).encode()
    content_type = FORM + "; charset=ISO-8859-1" if how == "content_type" else FORM
    if how in ("blog_charset", "raw_bytes"):
        body += b"&blog_charset=ISO-8859-1"
    response = post(client, "/1.1/comment-check", body, content_type=content_type)
    assert response.get_data(as_text=True) in ("true", "false")
    check = flushed_store(app).get_check(response.headers["X-akismet-guid"])
    assert check is not None
    assert check.comment.comment_content == text and check.comment.comment_author == "Zoë"


@pytest.mark.parametrize("charset", ["rot13", "zlib", "base64", "unicode_escape", "raw_unicode_escape", "utf-7",
                                     "punycode", "undefined"])
@pytest.mark.parametrize("how", ["blog_charset", "content_type"])
def test_a_declared_codec_that_is_not_a_charset_is_ignored(app: Flask, client: FlaskClient, api_key: str,
                                                           charset: str, how: str) -> None:
    # Transforms (rot13, zlib...) answered "Temporarily unavailable"; the escape codecs turned
    # "\\ud800" into a lone surrogate, answered and then not stored. Now UTF-8 is used.
    fields = base(api_key, comment_content="caf\u00e9 \\ud800 +2AA-")
    content_type = FORM
    if how == "blog_charset":
        fields["blog_charset"] = charset
    else:
        content_type = f"{FORM}; charset={charset}"
    response = post(client, "/1.1/comment-check", fields, content_type=content_type)
    assert response.get_data(as_text=True) in ("true", "false")
    check = flushed_store(app).get_check(response.headers["X-akismet-guid"])
    assert check is not None and check.comment.comment_content == "caf\u00e9 \\ud800 +2AA-"


def test_utf8_is_the_default(app: Flask, client: FlaskClient, api_key: str) -> None:
    response = post(client, "/1.1/comment-check", base(api_key, comment_content="Grüße aus Köln 👋"))
    check = flushed_store(app).get_check(response.headers["X-akismet-guid"])
    assert check is not None and check.comment.comment_content == "Grüße aus Köln 👋"


def test_empty_body_is_invalid(client: FlaskClient) -> None:
    response = client.post("/1.1/comment-check", data=b"", content_type=FORM)
    assert response.status_code == 200 and response.get_data(as_text=True) == "invalid"
    assert response.headers["X-akismet-debug-help"] == 'Empty "api_key" value'


@pytest.mark.parametrize("missing", ["user_ip", "blog"])
def test_missing_required_field(client: FlaskClient, api_key: str, missing: str) -> None:
    fields = base(api_key)
    del fields[missing]
    for path in ("/1.1/comment-check", "/1.1/submit-spam", "/1.1/submit-ham"):
        response = post(client, path, fields)
        assert_protocol_error(response, f"Missing required field: {missing}.")
        assert response.headers["X-akismet-debug-help"] == f'Empty "{missing}" value'


def test_one_megabyte_body_gets_a_protocol_answer(client: FlaskClient, api_key: str) -> None:
    response = post(client, "/1.1/comment-check", base(api_key, comment_content="x" * 1_000_000))
    assert_protocol_error(response, "Request body too large: at most 524288 bytes.")
    assert response.headers["X-akismet-error"]


def test_a_long_wordpress_comment_is_checked_while_the_json_api_keeps_its_limit(
        client: FlaskClient, api_key: str) -> None:
    """The WordPress plugin sends the comment twice, percent-encoded: 20,000 Russian characters
    are about 230 KB, and the JSON API's 64 KiB used to refuse them, holding up the plugin's
    recheck of every comment after them."""
    text = "Длинный комментарий о рецепте хлеба. " * 550  # about 20,000 characters
    fields = {**base(api_key, comment_content=text), "POST_comment": text}
    response = post(client, "/1.1/comment-check", fields)
    assert response.get_data(as_text=True) in ("true", "false"), response.get_data(as_text=True)
    assert len(urlencode(fields)) > 200_000
    too_big = client.post("/api/v1/check", json={"comment_content": text * 2})
    assert too_big.status_code == 413 and too_big.get_json()["max_body_bytes"] == 65536


def test_wrong_method_and_internal_errors_stay_protocol_answers(
        app: Flask, client: FlaskClient, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_protocol_error(client.get("/1.1/comment-check"), "This endpoint takes POST requests.")

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(get_state(app).scorer, "score", explode)
    assert_protocol_error(post(client, "/1.1/comment-check", base(api_key)), "Temporarily unavailable")


def test_model_not_loaded_is_a_protocol_error(make_app: Callable[..., Flask], api_key: str, tmp_path: Any) -> None:
    client = make_app(scorer=None, model_path=tmp_path / "nothing").test_client()
    assert_protocol_error(post(client, "/1.1/comment-check", base(api_key)), "Temporarily unavailable")


# --- answers and headers ------------------------------------------------------------------

def test_ham_and_spam_answers_with_our_headers(app: Flask, client: FlaskClient, api_key: str) -> None:
    ham = post(client, "/1.1/comment-check", base(api_key))
    spam = post(client, "/1.1/comment-check", base(api_key, comment_content=SPAM_TEXT,
                                                     comment_author_url="http://bit.ly/x"))
    assert_answer(ham, "false")
    assert_answer(spam, "true")
    for response in (ham, spam):
        guid = response.headers["X-akismet-guid"]
        assert HEX32.fullmatch(guid) and response.headers["X-CommentGuard-Check-Id"] == guid
        assert 0.0 <= float(response.headers["X-CommentGuard-Score"]) <= 1.0
        assert response.headers["X-CommentGuard-Model-Version"] == "test-model-1"
        reasons = json.loads(response.headers["X-CommentGuard-Reasons"])
        assert isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)
    assert ham.headers["X-CommentGuard-Verdict"] == "ham"
    assert spam.headers["X-CommentGuard-Verdict"] in ("spam", "discard")
    store = flushed_store(app)
    check = store.get_check(spam.headers["X-akismet-guid"])
    assert check is not None and check.surface == "akismet" and check.tier == spam.headers["X-CommentGuard-Verdict"]
    assert check.key_id is not None and check.site_id is not None and not check.is_test
    assert check.comment.user_ip.startswith("hmac:")  # personal data hashed by default


def test_discard_carries_the_pro_tip(make_app: Callable[..., Flask], api_key: str) -> None:
    client = make_app(threshold_unsure=0.0, threshold_spam=0.0, threshold_discard=0.0).test_client()
    response = post(client, "/1.1/comment-check", base(api_key))
    assert_answer(response, "true")
    assert response.headers["X-akismet-pro-tip"] == "discard"
    assert response.headers["X-CommentGuard-Verdict"] == "discard"


@pytest.mark.parametrize("unsure_is_spam, answer", [(True, "true"), (False, "false")])
def test_unsure_mapping(make_app: Callable[..., Flask], api_key: str, unsure_is_spam: bool, answer: str) -> None:
    # Every score below 1.0 is "unsure" with these thresholds.
    client = make_app(threshold_unsure=0.0, threshold_spam=1.0, threshold_discard=1.0,
                      unsure_is_spam=unsure_is_spam).test_client()
    response = post(client, "/1.1/comment-check", base(api_key))
    assert_answer(response, answer)
    assert response.headers["X-CommentGuard-Verdict"] == "unsure"
    assert "X-akismet-pro-tip" not in response.headers


def test_log_only_mode_answers_false_but_records_the_verdict(make_app: Callable[..., Flask], api_key: str) -> None:
    app = make_app(mode="log_only")
    client = app.test_client()
    response = post(client, "/1.1/comment-check", base(api_key, comment_content=SPAM_TEXT,
                                                        comment_author_url="http://bit.ly/x"))
    assert_answer(response, "false")
    assert response.headers["X-CommentGuard-Verdict"] in ("spam", "discard")
    assert response.headers["X-CommentGuard-Enforced"] == "false"
    assert "X-akismet-pro-tip" not in response.headers
    guaranteed = post(client, "/1.1/comment-check", base(api_key, comment_author="akismet-guaranteed-spam"))
    assert_answer(guaranteed, "false")
    check = flushed_store(app).get_check(response.headers["X-akismet-guid"])
    assert check is not None and check.tier in ("spam", "discard")


@pytest.mark.parametrize("fields", [
    {"comment_author": "akismet-guaranteed-spam"},
    {"comment_author": "viagra-test-123"},
    {"comment_author_email": "akismet-guaranteed-spam@example.com"},
])
def test_guaranteed_spam_test_values(app: Flask, client: FlaskClient, api_key: str, fields: dict[str, str]) -> None:
    response = post(client, "/1.1/comment-check", base(api_key, **fields))
    assert_answer(response, "true")
    assert response.headers["X-CommentGuard-Verdict"] == "spam"
    # A test of the client's spam path, kept as a test check (a probe: `checks summary` counted it
    # among the site's spam), as reports on it are test labels.
    check = flushed_store(app).get_check(response.headers["X-akismet-guid"])
    assert check is not None and check.is_test


def test_administrator_is_always_ham(client: FlaskClient, api_key: str) -> None:
    response = post(client, "/1.1/comment-check", base(api_key, comment_content=SPAM_TEXT,
                                                        comment_author_url="http://bit.ly/x",
                                                        user_role="administrator"))
    assert_answer(response, "false")
    assert response.headers["X-CommentGuard-Verdict"] == "ham"


def test_honeypot(client: FlaskClient, api_key: str) -> None:
    filled = post(client, "/1.1/comment-check", base(api_key, honeypot_field_name="hp_website", hp_website="x"))
    assert_answer(filled, "true")
    assert json.loads(filled.headers["X-CommentGuard-Reasons"])[0] == HONEYPOT_REASON
    empty = post(client, "/1.1/comment-check", base(api_key, honeypot_field_name="hp_website", hp_website=""))
    assert_answer(empty, "false")


@pytest.mark.parametrize("name", ["comment_author_url", "referrer", "permalink", "comment_context"])
def test_a_honeypot_named_after_an_akismet_field(client: FlaskClient, api_key: str, name: str) -> None:
    # The form parser files these names into the record's own fields, not among the extras.
    filled = post(client, "/1.1/comment-check", base(api_key, honeypot_field_name=name, **{name: "http://bot.example/"}))
    assert_answer(filled, "true")
    assert json.loads(filled.headers["X-CommentGuard-Reasons"])[0] == HONEYPOT_REASON
    assert_answer(post(client, "/1.1/comment-check", base(api_key, honeypot_field_name=name)), "false")


def test_a_honeypot_named_after_itself_is_not_filled(client: FlaskClient, api_key: str) -> None:
    assert_answer(post(client, "/1.1/comment-check", base(api_key, honeypot_field_name="honeypot_field_name")),
                  "false")


def test_reasons_header_is_short_ascii_json() -> None:
    value = reasons_header(["liens raccourcis «bit.ly»", "x" * 2000, "third"], limit=120)
    assert value.isascii() and "\n" not in value and len(value) <= 120
    assert json.loads(value) == ["liens raccourcis «bit.ly»"]
    alone = reasons_header(["y" * 2000], limit=100)
    assert len(alone) <= 100 and json.loads(alone)[0].endswith("...")


# --- test calls, feedback, usage ----------------------------------------------------------

def test_is_test_is_answered_but_never_learned(app: Flask, client: FlaskClient, api_key: str) -> None:
    check = post(client, "/1.1/comment-check", base(api_key, comment_author="akismet-guaranteed-spam", is_test="1"))
    assert_answer(check, "true")
    submitted = post(client, "/1.1/submit-spam", base(api_key, comment_content="Fresh spam text", is_test="true"))
    assert_answer(submitted, THANKS)
    linked = post(client, "/1.1/submit-ham", base(api_key, comment_author="akismet-guaranteed-spam"))
    assert_answer(linked, THANKS)  # not marked is_test itself, but corrects a test check
    store = flushed_store(app)
    record = store.get_check(check.headers["X-akismet-guid"])
    assert record is not None and record.is_test
    assert store.list_feedback() == []
    assert len(store.list_feedback(include_test=True)) == 2


def test_submit_linked_by_guid(app: Flask, client: FlaskClient, api_key: str) -> None:
    check = post(client, "/1.1/comment-check", base(api_key))
    guid = check.headers["X-akismet-guid"]
    # Edited before the report, so only the guid can link it.
    response = post(client, "/1.1/submit-spam", base(api_key, comment_content="edited text", guid=guid,
                                                     reporter="mod-anna"))
    assert_answer(response, THANKS)
    assert response.headers["X-CommentGuard-Check-Id"] == guid
    (feedback,) = flushed_store(app).list_feedback()
    assert feedback.check_id == guid and feedback.label == "spam" and feedback.source == "akismet"
    assert feedback.reporter == "mod-anna" and feedback.key_id is not None


def test_a_reporters_e_mail_and_ip_are_stored_as_keyed_hashes(app: Flask, client: FlaskClient, api_key: str) -> None:
    """Found by a probe: the reporter of an Akismet submit (WordPress sends the moderator's
    user_login, often an e-mail) and of a JSON report was stored as sent, while the same row's
    extra fields were hashed."""
    assert_answer(post(client, "/1.1/submit-spam", base(api_key, reporter="mod2@corp.example")), THANKS)
    response = client.post("/api/v1/feedback", json={"comment": {"comment_content": "x"}, "label": "spam",
                                                     "reporter": "mod.erator@corp.example 203.0.113.11"},
                           headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 201, response.get_json()
    store = flushed_store(app)
    stored = sorted(f.reporter for f in store.list_feedback())
    privacy = store._privacy
    assert stored == sorted([privacy.pseudonym("mod2@corp.example", email=True),
                             f"{privacy.pseudonym('mod.erator@corp.example', email=True)} "
                             f"{privacy.pseudonym('203.0.113.11')}"])
    assert all(r.endswith("@corp.example") or " hmac:" in r for r in stored)


def test_a_submit_naming_its_check_by_guid_alone_is_about_that_comment(app: Flask, client: FlaskClient,
                                                                        api_key: str) -> None:
    # A plugin that keeps only the guid sends the required fields and nothing of the comment.
    texts = ["Cheap replica watches at http://watches.example/buy", "Thanks, this fixed my build."]
    guids = [post(client, "/1.1/comment-check", base(api_key, comment_content=text, comment_author="Zed",
                                                     comment_author_email="zed@mail.example")).headers["X-akismet-guid"]
             for text in texts]
    for guid, label in zip(guids, ("spam", "ham")):
        bare = {"api_key": api_key, "blog": TEST_SITE, "user_ip": "203.0.113.50", "guid": guid}
        response = post(client, "/1.1/submit-" + label, bare)
        assert_answer(response, THANKS)
        assert response.headers["X-CommentGuard-Check-Id"] == guid
    feedback = flushed_store(app).list_feedback()
    assert [(f.comment.comment_content, f.label, f.check_id) for f in feedback] == [
        (texts[0], "spam", guids[0]), (texts[1], "ham", guids[1])]
    assert all(f.comment.comment_author == "Zed" and f.comment.comment_author_email.endswith("@mail.example")
               for f in feedback)


def test_a_submit_with_no_text_and_an_unknown_guid_stores_nothing(app: Flask, client: FlaskClient,
                                                                   api_key: str) -> None:
    """An unknown (or purged) guid with no text was stored as an empty label, counted as a
    correction in the key's usage and never learned."""
    for label in ("spam", "ham"):
        bare = {"api_key": api_key, "blog": TEST_SITE, "user_ip": "203.0.113.50", "guid": "0123456789abcdef" * 2}
        response = post(client, "/1.1/submit-" + label, bare)
        assert_answer(response, THANKS)  # the protocol's one answer to a submit
        assert response.headers["X-CommentGuard-Feedback"].startswith("not stored")
        assert "X-CommentGuard-Feedback-Id" not in response.headers
    store = flushed_store(app)
    assert store.list_feedback() == []
    (info,) = store.list_keys()
    usage = store.usage(info.id, current_month())
    assert (usage["missed_spam"], usage["false_positives"]) == (0, 0)


def test_submit_linked_by_the_same_comment(app: Flask, client: FlaskClient, api_key: str) -> None:
    fields = base(api_key, comment_author_email="ann@example.org")
    check = post(client, "/1.1/comment-check", fields)
    assert_answer(post(client, "/1.1/submit-ham", fields), THANKS)
    other = post(client, "/1.1/submit-ham", base(api_key, comment_content="never checked"))
    assert "X-CommentGuard-Check-Id" not in other.headers
    feedback = flushed_store(app).list_feedback()
    assert [f.check_id for f in feedback] == [check.headers["X-akismet-guid"], None]
    assert [f.label for f in feedback] == ["ham", "ham"]


def test_usage_is_counted(app: Flask, client: FlaskClient, api_key: str) -> None:
    post(client, "/1.1/comment-check", base(api_key))
    post(client, "/1.1/comment-check", base(api_key, comment_author="akismet-guaranteed-spam"))
    assert post(client, "/1.1/comment-check", base(api_key, comment_content=SPAM_TEXT)).get_data(as_text=True) == "true"
    post(client, "/1.1/submit-spam", base(api_key))
    post(client, "/1.1/submit-ham", base(api_key, comment_content=SPAM_TEXT))
    # A report on an Akismet test value is a client trying its paths: a test, counted nowhere.
    post(client, "/1.1/submit-ham", base(api_key, comment_author="akismet-guaranteed-spam"))
    post(client, "/1.1/comment-check", base("0123456789ab"))  # invalid: not counted
    usage = client.get(f"/1.2/usage-limit?api_key={api_key}")
    assert usage.status_code == 200 and "X-akismet-debug-help" not in usage.headers
    assert usage.get_json() == {"limit": "none", "usage": 3, "percentage": "0.00", "throttled": False}
    month = current_month()
    sites = post(client, "/1.2/key-sites", {"api_key": api_key, "month": month}).get_json()
    assert sites["total"] == 1 and sites["offset"] == 0 and sites["limit"] == 500
    assert sites[month] == [{"site": TEST_SITE, "api_calls": 3, "spam": 2, "ham": 1, "missed_spam": 1,
                             "false_positives": 1, "is_revoked": False}]
    empty = client.get(f"/1.2/key-sites?api_key={api_key}&month=2001-01").get_json()
    assert empty["2001-01"][0]["api_calls"] == 0
    csv_text = client.get(f"/1.2/key-sites?api_key={api_key}&format=csv").get_data(as_text=True)
    lines = csv_text.splitlines()
    assert lines[0].startswith(f"Active sites for {api_key} during {month}")
    assert lines[1] == "Site,Total API Calls,Spam,Ham,Missed Spam,False Positives,Is Revoked"
    assert lines[2] == f"{TEST_SITE},3,2,1,1,1,false"
    filtered = client.get(f"/1.2/key-sites?api_key={api_key}&filter=nowhere").get_json()
    assert filtered["total"] == 0


def test_a_checks_mistake_counts_once_however_often_it_is_reported(client: FlaskClient, api_key: str) -> None:
    # A moderator clicking Spam, Not Spam, Spam again: one missed spam, not two.
    post(client, "/1.1/comment-check", base(api_key))  # answered ham
    for path in ("/1.1/submit-spam", "/1.1/submit-ham", "/1.1/submit-spam"):
        assert_answer(post(client, path, base(api_key)), THANKS)
    # A report on a test call is a test too: no mistake of the filter's.
    test_call = base(api_key, comment_content="Just trying the plugin out.", is_test="1")
    post(client, "/1.1/comment-check", test_call)
    post(client, "/1.1/submit-spam", test_call)
    (row,) = client.get(f"/1.2/key-sites?api_key={api_key}").get_json()[current_month()]
    assert (row["api_calls"], row["ham"], row["missed_spam"], row["false_positives"]) == (2, 2, 1, 0)


def test_in_log_only_mode_usage_counts_the_answers_given(make_app: Callable[..., Flask], api_key: str) -> None:
    # Everything was published: spam the model recognised was not blocked, and reported, it
    # is a missed spam.
    client = make_app(mode="log_only").test_client()
    spam = base(api_key, comment_content=SPAM_TEXT)
    response = post(client, "/1.1/comment-check", spam)
    assert response.get_data(as_text=True) == "false" and response.headers["X-CommentGuard-Verdict"] != "ham"
    post(client, "/1.1/submit-spam", spam)
    json_check = client.post("/api/v1/check", json={"comment_content": SPAM_TEXT},
                             headers={"Authorization": f"Bearer {api_key}"}).get_json()
    assert json_check["verdict"] == "ham" and json_check["recorded_verdict"] in ("spam", "discard")
    (row,) = client.get(f"/1.2/key-sites?api_key={api_key}").get_json()[current_month()]
    assert (row["api_calls"], row["spam"], row["ham"], row["missed_spam"]) == (2, 0, 2, 1)


def test_key_sites_lists_each_blog_a_key_serves(client: FlaskClient, api_key: str) -> None:
    # One key shared by a WordPress network: each subsite sends its own front page as blog.
    post(client, "/1.1/comment-check", base(api_key, blog="https://a.example.net/"))
    post(client, "/1.1/comment-check", base(api_key, blog="https://a.example.net",
                                            comment_author="akismet-guaranteed-spam"))
    post(client, "/1.1/comment-check", base(api_key, blog="https://b.example.net"))
    post(client, "/1.1/submit-ham", base(api_key, blog="https://b.example.net"))
    post_json_check = client.post("/api/v1/check", json={"comment_content": HAM_TEXT},
                                  headers={"Authorization": f"Bearer {api_key}"})
    assert post_json_check.status_code == 200  # no blog: counted for the key's own site
    month = current_month()
    sites = client.get(f"/1.2/key-sites?api_key={api_key}").get_json()
    # The submit-ham confirms its check (answered ham): it is no false positive.
    assert [(s["site"], s["api_calls"], s["spam"], s["ham"], s["false_positives"]) for s in sites[month]] == [
        ("https://a.example.net", 2, 1, 1, 0), ("https://b.example.net", 1, 0, 1, 0), (TEST_SITE, 1, 0, 1, 0)]
    assert sites["total"] == 3
    filtered = client.get(f"/1.2/key-sites?api_key={api_key}&filter=B.EXAMPLE").get_json()
    assert [s["site"] for s in filtered[month]] == ["https://b.example.net"]
    assert client.get(f"/1.2/usage-limit?api_key={api_key}").get_json()["usage"] == 4


def test_a_json_report_naming_no_blog_counts_on_its_checks_site(client: FlaskClient, api_key: str) -> None:
    """Counted on the key's own site, the per-site rows disagreed: the check on one, its correction
    on another."""
    headers = {"Authorization": f"Bearer {api_key}"}
    spam = "Cheap replica watches, best prices, buy now at http://watches.example/buy"
    check = client.post("/api/v1/check", json={"comment_content": spam, "blog": "https://sub2.example.net",
                                               "comment_author_url": "http://bit.ly/w"}, headers=headers).get_json()
    assert check["verdict"] in ("spam", "discard")
    report = client.post("/api/v1/feedback", json={"comment": {"comment_content": spam}, "label": "ham"},
                         headers=headers)
    assert report.get_json()["check_id"] == check["check_id"]  # linked by the same comment
    by_id = client.post("/api/v1/feedback", json={"check_id": check["check_id"], "label": "ham"}, headers=headers)
    assert report.status_code == by_id.status_code == 201
    sites = client.get(f"/1.2/key-sites?api_key={api_key}").get_json()[current_month()]
    # Two reports of one check: one false positive (repeated reports count once).
    assert [(s["site"], s["api_calls"], s["false_positives"]) for s in sites] == [("https://sub2.example.net", 1, 1)]


def test_a_submit_by_guid_of_a_check_without_text_is_stored(app: Flask, client: FlaskClient, api_key: str) -> None:
    """A signup or contact form may send no text at all; its guid-only report was refused as if
    the check were unknown, and its correction lost."""
    fields = base(api_key, comment_type="signup", honeypot_field_name="hp_website", hp_website="x",
                  POST_note="kept with the check")
    del fields["comment_content"]
    check = post(client, "/1.1/comment-check", fields)
    assert check.get_data(as_text=True) == "true"
    guid = check.headers["X-akismet-guid"]
    response = post(client, "/1.1/submit-ham", {"api_key": api_key, "blog": TEST_SITE,
                                                "user_ip": "203.0.113.50", "guid": guid})
    assert_answer(response, THANKS)
    assert "X-CommentGuard-Feedback" not in response.headers and response.headers["X-CommentGuard-Check-Id"] == guid
    store = flushed_store(app)
    (feedback,) = store.list_feedback()
    assert feedback.check_id == guid and feedback.comment.comment_type == "signup"
    # The check's own extra fields stay, with the report's guid beside them (it kept only the guid).
    assert feedback.comment.extra["POST_note"] == "kept with the check" and feedback.comment.extra["guid"] == guid
    (info,) = store.list_keys()
    assert store.usage(info.id, current_month())["false_positives"] == 1


def test_usage_endpoints_with_a_bad_key_or_bad_month(client: FlaskClient, api_key: str) -> None:
    for path in ("/1.2/usage-limit", "/1.2/key-sites"):
        response = client.get(f"{path}?api_key=0123456789ab")
        assert response.get_data(as_text=True) == "invalid" and response.headers["X-akismet-debug-help"]
    assert_protocol_error(client.get(f"/1.2/key-sites?api_key={api_key}&month=2024-13"), "Invalid month")
    # A full-width digit is a digit to Python's \d, not to anyone reading a month.
    assert_protocol_error(client.get(f"/1.2/key-sites?api_key={api_key}&month=%EF%BC%92024-01"), "Invalid month")


@pytest.mark.parametrize("body", [
    b"a+b=c+d%2B&plain=value&empty=&=nameless&bare",
    b"bad=%zz%4&pct=%41%62c&plus=1+%2B+1&utf8=caf%C3%A9+cr%C3%A8me",
    b"k=1&k=2&&comment_context[]=a&comment_context[]=b+c",
])
def test_form_decoding_equals_plain_percent_decoding(body: bytes) -> None:
    """Fields without '+' or '%' skip the decoder: the result is what decoding everything gives."""
    from urllib.parse import unquote_to_bytes

    from service.akismet_form import parse_form

    expected: dict[str, str] = {}
    for part in body.split(b"&"):
        name, _, value = part.partition(b"=")
        name, value = (unquote_to_bytes(x.replace(b"+", b" ")).decode("utf-8") for x in (name, value))
        if name and not name.startswith("comment_context"):
            expected[name] = value
    form = parse_form(body)
    assert form.fields == expected
    assert form.context == (["a", "b c"] if b"comment_context" in body else [])


# --- multipart/form-data bodies ----------------------------------------------------------------

def multipart(fields: Sequence[tuple[str, bytes]], boundary: str = "cgBoundary7MA4YWxk",
              files: Sequence[tuple[str, str, bytes]] = ()) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body as ``curl -F`` sends one, and its Content-Type."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
             for name, value in fields]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
              f"Content-Type: text/plain\r\n\r\n".encode() + value + b"\r\n" for name, filename, value in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_a_multipart_check_is_answered_as_the_same_form_urlencoded(app: Flask, client: FlaskClient,
                                                                   api_key: str) -> None:
    """``curl -F`` and multipart HTML forms: answered ``invalid`` ("Empty api_key") before 2026-11-28."""
    text = "Thanks!\r\nLine two of the comment, with a café and a +plus & an ampersand."
    for content in (text, SPAM_TEXT):
        fields = base(api_key, comment_content=content)
        body, content_type = multipart([(k, v.encode()) for k, v in fields.items()])
        answer = post(client, "/1.1/comment-check", body, content_type=content_type)
        plain = post(client, "/1.1/comment-check", fields)
        assert answer.get_data(as_text=True) == plain.get_data(as_text=True)
        assert answer.headers["X-CommentGuard-Score"] == plain.headers["X-CommentGuard-Score"]
        check = flushed_store(app).get_check(answer.headers["X-akismet-guid"])
        assert check is not None and check.comment.comment_content == content  # line breaks, "+" and "&" kept
        assert check.comment.comment_author == "Ann"


def test_multipart_reports_verify_key_charsets_and_file_parts(app: Flask, client: FlaskClient, api_key: str) -> None:
    body, content_type = multipart([("key", api_key.encode()), ("blog", TEST_SITE.encode())])
    assert_answer(post(client, "/1.1/verify-key", body, content_type=content_type), "valid")
    fields = [(k, v.encode("latin-1")) for k, v in base(api_key, comment_author="Zoë").items()]
    body, content_type = multipart([*fields, ("blog_charset", b"ISO-8859-1")],
                                   files=[("comment_content", "evil.txt", b"a file is no Akismet field")])
    answer = post(client, "/1.1/submit-spam", body, content_type=content_type)
    assert_answer(answer, THANKS)
    (feedback,) = flushed_store(app).list_feedback()
    assert feedback.label == "spam" and feedback.comment.comment_author == "Zoë"
    assert feedback.comment.comment_content == HAM_TEXT  # the file part is left out


def test_multipart_parts_without_a_name_are_left_out(app: Flask, client: FlaskClient, api_key: str) -> None:
    """Found by a probe: werkzeug gives such a part the name None, and the call was answered
    "Temporarily unavailable: internal error" (clients retry that) with a traceback logged."""
    fields = [(k, v.encode()) for k, v in base(api_key).items()]
    body, content_type = multipart(fields)
    nameless = b"--cgBoundary7MA4YWxk\r\nContent-Disposition: form-data\r\n\r\nstray\r\n"
    answer = post(client, "/1.1/comment-check", nameless + body, content_type=content_type)
    assert answer.get_data(as_text=True) == post(client, "/1.1/comment-check", base(api_key)).get_data(as_text=True)
    check = flushed_store(app).get_check(answer.headers["X-akismet-guid"])
    assert check is not None and "stray" not in json.dumps(check.comment.extra)


def test_a_multipart_content_type_without_a_body_reads_the_query_string(client: FlaskClient, api_key: str) -> None:
    """Found by a probe: a GET, or a POST with its fields in the query string, that carried a
    multipart Content-Type was answered "Invalid request: malformed multipart/form-data body"."""
    for content_type in ("multipart/form-data; boundary=xyz", "multipart/form-data"):
        usage = client.get(f"/1.2/key-sites?api_key={api_key}", content_type=content_type)
        assert usage.status_code == 200 and usage.is_json, usage.get_data(as_text=True)
        valid = client.post(f"/1.1/verify-key?key={api_key}&blog={quote(TEST_SITE)}", data=b"",
                            content_type=content_type)
        assert_answer(valid, "valid")


@pytest.mark.parametrize("body, content_type", [
    (b"api_key=x&blog=y", "multipart/form-data"),  # no boundary
    (b"no parts here at all", "multipart/form-data; boundary=abc"),
    (b'--abc\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nabcdef', "multipart/form-data; boundary=abc"),
])
def test_a_malformed_multipart_body_is_an_invalid_request_not_a_missing_key(client: FlaskClient, body: bytes,
                                                                            content_type: str) -> None:
    response = post(client, "/1.1/comment-check", body, content_type=content_type)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert text.startswith("Invalid request: ") and "multipart/form-data" in text, text
    assert response.headers["X-akismet-debug-help"] == text
