"""API keys on the JSON API (401s, Bearer keys, the anonymous setting), JSON checks in the log, and feedback."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import get_state
from service.auth import (KEY_CACHE_SECONDS, KEY_RETRY_SECONDS, KEY_STALE_SECONDS, KeyCache, akismet_key,
                          bearer_key, key_cache, key_from_host)
from store import KeyInfo, StoreError, current_month
from tests.conftest import auth_headers

HAM_TEXT = "Thanks for the clear explanation, it helped me fix my build."
SPAM_TEXT = "Buy cheap viagra online now!!! click http://bit.ly/cheap-pills"


def post_json(client: FlaskClient, path: str, body: Any, **kwargs: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", **kwargs)


def assert_401(response: Any) -> None:
    assert response.status_code == 401 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == 401 and isinstance(body["error"], str) and body["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_no_key_is_401(anonymous_client: FlaskClient) -> None:
    assert_401(post_json(anonymous_client, "/api/v1/check", {"comment_content": HAM_TEXT}))
    assert_401(post_json(anonymous_client, "/api/v1/check/batch", {"comments": []}))
    assert_401(post_json(anonymous_client, "/api/v1/feedback", {"comment_content": "x", "label": "ham"}))


@pytest.mark.parametrize("header", ["Bearer 0123456789ab", "Bearer not-a-key", "Basic dXNlcjpwYXNz", "Bearer"])
def test_wrong_key_is_401(anonymous_client: FlaskClient, header: str) -> None:
    assert_401(post_json(anonymous_client, "/api/v1/check", {"comment_content": HAM_TEXT},
                         headers={"Authorization": header}))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_key_clock(app: Flask) -> FakeClock:
    clock = FakeClock()
    key_cache(app).clock = clock
    return clock


def test_revoked_key_is_401_within_the_cache_ttl(app: Flask, anonymous_client: FlaskClient, api_key: str) -> None:
    clock = fake_key_clock(app)
    headers = auth_headers(api_key)
    assert post_json(anonymous_client, "/api/v1/check", {"comment_content": HAM_TEXT}, headers=headers).status_code == 200
    store = get_state(app).store
    assert store is not None
    (info,) = store.list_keys()
    assert store.revoke_key(info.id)
    # The worker remembers the key's answer for up to KEY_CACHE_SECONDS...
    clock.now += KEY_CACHE_SECONDS - 1
    assert post_json(anonymous_client, "/api/v1/check", {"comment_content": HAM_TEXT}, headers=headers).status_code == 200
    # ...and no longer: then the revocation applies.
    clock.now += 1
    response = post_json(anonymous_client, "/api/v1/check", {"comment_content": HAM_TEXT}, headers=headers)
    assert_401(response)
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_a_key_revoked_before_this_worker_saw_it_is_401_at_once(app: Flask, anonymous_client: FlaskClient,
                                                                api_key: str) -> None:
    store = get_state(app).store
    assert store is not None
    (info,) = store.list_keys()
    assert store.revoke_key(info.id)
    assert_401(post_json(anonymous_client, "/api/v1/check", {"comment_content": HAM_TEXT},
                         headers=auth_headers(api_key)))


def test_key_checks_are_cached_by_digest_and_store_errors_are_not(
        app: Flask, anonymous_client: FlaskClient, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = fake_key_clock(app)
    store = get_state(app).store
    assert store is not None
    calls: list[str] = []
    real = store.authenticate

    def counting(key: str) -> Any:
        calls.append("x")
        return real(key)

    def failing(key: str) -> Any:
        raise StoreError("database is locked")

    body, headers = {"comment_content": HAM_TEXT}, auth_headers(api_key)
    monkeypatch.setattr(store, "authenticate", failing)
    assert post_json(anonymous_client, "/api/v1/check", body, headers=headers).status_code == 503
    monkeypatch.setattr(store, "authenticate", counting)
    for _ in range(5):
        assert post_json(anonymous_client, "/api/v1/check", body, headers=headers).status_code == 200
    assert len(calls) == 1  # the failure was not remembered; the success was
    unknown = auth_headers("0123456789ab")
    for _ in range(3):
        assert_401(post_json(anonymous_client, "/api/v1/check", body, headers=unknown))
    assert len(calls) == 2  # an unknown key is remembered too
    for _ in range(3):  # malformed keys never reach the store or the cache
        assert_401(post_json(anonymous_client, "/api/v1/check", body, headers=auth_headers("not-a-key")))
    assert len(calls) == 2
    cache = key_cache(app)
    assert len(cache) == 2
    remembered = repr(cache._entries) + repr(cache._unknown)
    assert api_key not in remembered and "0123456789ab" not in remembered  # digests, never keys
    clock.now += KEY_CACHE_SECONDS
    assert post_json(anonymous_client, "/api/v1/check", body, headers=headers).status_code == 200
    assert len(calls) == 3  # expired: asked again


class Outage:
    """Stands in for ``store.authenticate``: the real answer, or a StoreError while ``down``."""

    def __init__(self, real: Callable[[str], Any]) -> None:
        self.real = real
        self.down = False
        self.asked = 0

    def __call__(self, key: str) -> Any:
        self.asked += 1
        if self.down:
            raise StoreError("postgresql error: connection refused")
        return self.real(key)


@pytest.fixture
def store_outage(app: Flask, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeClock, Outage]:
    """The app's key cache on a fake clock, and its store's ``authenticate`` behind an :class:`Outage`."""
    clock = fake_key_clock(app)
    store = get_state(app).store
    assert store is not None
    stand_in = Outage(store.authenticate)
    monkeypatch.setattr(store, "authenticate", stand_in)
    return clock, stand_in


def test_a_store_outage_does_not_fail_checks_for_keys_the_worker_knows(
        anonymous_client: FlaskClient, api_key: str, store_outage: tuple[FakeClock, Outage]) -> None:
    clock, outage = store_outage
    body, headers, unknown = {"comment_content": HAM_TEXT}, auth_headers(api_key), auth_headers("0123456789ab")

    def check(with_headers: dict[str, str]) -> int:
        return int(post_json(anonymous_client, "/api/v1/check", body, headers=with_headers).status_code)

    assert (check(headers), check(unknown)) == (200, 401)
    outage.down = True
    clock.now += KEY_CACHE_SECONDS  # both answers are due to be asked again, and the store is down
    assert (check(headers), check(unknown)) == (200, 401)  # the last answers stand
    asked = outage.asked
    for _ in range(5):  # and the store is not asked again on every request
        assert check(headers) == 200
    assert outage.asked == asked
    clock.now += KEY_RETRY_SECONDS
    assert check(headers) == 200 and outage.asked == asked + 1
    never_seen = auth_headers("abcdef012345")
    assert check(never_seen) == 503  # nothing to fall back on: "temporarily unavailable"
    clock.now += KEY_STALE_SECONDS  # an hour after the store last confirmed it
    assert check(headers) == 503
    outage.down = False
    assert check(headers) == 200


def test_random_keys_cannot_push_out_the_answers_an_outage_falls_back_on() -> None:
    # Unknown keys filled the one table, which was emptied at its size: some 24,000 random keys
    # sent to verify-key (no key needed) took the live keys' answers away, and a database outage
    # right after failed every check of every site.
    clock = FakeClock()
    live = KeyInfo(id=1, site_id=1, site_url="https://a.example", label="", created=datetime.now(timezone.utc))
    down = False

    def lookup(key: str) -> Optional[KeyInfo]:
        if down:
            raise StoreError("postgresql error: connection refused")
        return live if key == "aaaaaaaaaaaa" else None

    cache = KeyCache(size=100, clock=clock)
    assert cache.get("aaaaaaaaaaaa", lookup) == live
    for n in range(1000):
        assert cache.get(f"{n:012x}", lookup) is None
    down = True
    clock.now += KEY_CACHE_SECONDS
    assert cache.get("aaaaaaaaaaaa", lookup) == live  # the last answer stands
    assert len(cache) <= 2 * 100


def test_a_store_that_hangs_holds_no_thread_for_a_made_up_key() -> None:
    # Unknown keys had no answer to fall back on, and each waited out the store's connection
    # timeout: four random keys at a time (verify-key needs none) held every thread of a worker.
    clock, release, asked = FakeClock(), threading.Event(), []
    live = KeyInfo(id=1, site_id=1, site_url="https://a.example", label="", created=datetime.now(timezone.utc))

    def lookup(key: str) -> Optional[KeyInfo]:
        asked.append(key)
        if key != "aaaaaaaaaaaa":
            release.wait(30)  # the store hangs
        return live if key == "aaaaaaaaaaaa" else None

    cache = KeyCache(clock=clock)
    assert cache.get("aaaaaaaaaaaa", lookup) == live
    started = time.monotonic()
    with pytest.raises(StoreError):
        cache.get("0123456789ab", lookup)
    assert time.monotonic() - started < 10  # KEY_MISS_WAIT_SECONDS (1 s), not the hang
    for n in range(20):  # later made-up keys do not ask a store that hangs: answered at once
        with pytest.raises(StoreError):
            cache.get(f"{n:012x}", lookup)
    assert asked == ["aaaaaaaaaaaa", "0123456789ab"]
    assert cache.get("aaaaaaaaaaaa", lookup) == live  # a known key is not held up
    remembered = len(cache)
    release.set()
    deadline = time.monotonic() + 10
    while len(cache) == remembered and time.monotonic() < deadline:  # the hung lookup ends
        time.sleep(0.01)
    clock.now += KEY_RETRY_SECONDS  # after the pause, its late answer serves: no new lookup
    assert cache.get("0123456789ab", lookup) is None
    assert asked.count("0123456789ab") == 1


def test_a_store_that_hangs_holds_no_check_for_a_key_the_worker_knows(
        app: Flask, anonymous_client: FlaskClient, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A SQLite file locked by another process, or a PostgreSQL server that accepts and never
    # answers: the request goes on with the answer it has after KeyCache.wait, not the hang.
    clock = fake_key_clock(app)
    store = get_state(app).store
    assert store is not None
    real, release, asked = store.authenticate, threading.Event(), []

    def hanging(key: str) -> Any:
        asked.append(key)
        release.wait(30)
        return real(key)

    body, headers = {"comment_content": HAM_TEXT}, auth_headers(api_key)
    assert post_json(anonymous_client, "/api/v1/check", body, headers=headers).status_code == 200
    monkeypatch.setattr(store, "authenticate", hanging)
    clock.now += KEY_CACHE_SECONDS
    timings = []
    for _ in range(4):
        started = time.monotonic()
        assert post_json(anonymous_client, "/api/v1/check", body, headers=headers).status_code == 200
        timings.append(time.monotonic() - started)
    assert max(timings) < 2.0 and sum(timings) < 3.0, timings  # not the 30 s hang
    assert len(asked) == 1  # one lookup at a time, not one per request
    release.set()  # the store answers: the fresh answer is remembered
    deadline = time.monotonic() + 5
    while key_cache(app)._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert post_json(anonymous_client, "/api/v1/check", body, headers=headers).status_code == 200
    assert len(asked) == 1


def test_a_key_revoked_during_an_outage_applies_once_the_store_answers(
        app: Flask, anonymous_client: FlaskClient, api_key: str, store_outage: tuple[FakeClock, Outage]) -> None:
    clock, outage = store_outage
    store = get_state(app).store
    assert store is not None
    body, headers = {"comment_content": HAM_TEXT}, auth_headers(api_key)
    assert post_json(anonymous_client, "/api/v1/check", body, headers=headers).status_code == 200
    (info,) = store.list_keys()
    assert store.revoke_key(info.id)
    outage.down = True
    clock.now += KEY_CACHE_SECONDS
    assert post_json(anonymous_client, "/api/v1/check", body, headers=headers).status_code == 200
    outage.down = False
    clock.now += KEY_RETRY_SECONDS
    assert_401(post_json(anonymous_client, "/api/v1/check", body, headers=headers))


def test_akismet_checks_go_on_through_a_store_outage(
        anonymous_client: FlaskClient, api_key: str, store_outage: tuple[FakeClock, Outage]) -> None:
    clock, outage = store_outage
    form = {"api_key": api_key, "blog": "https://blog.example.org", "user_ip": "203.0.113.9",
            "comment_content": HAM_TEXT}
    assert anonymous_client.post("/1.1/comment-check", data=form).get_data(as_text=True) == "false"
    outage.down = True
    clock.now += KEY_CACHE_SECONDS
    answer = anonymous_client.post("/1.1/comment-check", data=form)
    assert answer.get_data(as_text=True) == "false" and outage.asked == 2
    form["api_key"] = "abcdef012345"
    assert "Temporarily unavailable" in anonymous_client.post("/1.1/comment-check", data=form).get_data(as_text=True)


def test_bearer_key_is_200_and_keeps_the_key_out_of_logs(
        app: Flask, anonymous_client: FlaskClient, api_key: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        response = post_json(anonymous_client, "/api/v1/check", {"comment_content": HAM_TEXT},
                             headers={"Authorization": f"bearer {api_key}"})
    assert response.status_code == 200 and response.get_json()["verdict"] == "ham"
    assert api_key not in caplog.text


def test_anonymous_setting(make_app: Callable[..., Flask]) -> None:
    app = make_app(allow_anonymous_json=True)
    anonymous = app.test_client()
    anonymous.environ_base.pop("HTTP_AUTHORIZATION")
    assert post_json(anonymous, "/api/v1/check", {"comment_content": HAM_TEXT}).status_code == 200
    # A wrong key is still refused: a typo must not turn a site's calls anonymous.
    assert_401(post_json(anonymous, "/api/v1/check", {"comment_content": HAM_TEXT},
                         headers={"Authorization": "Bearer 0123456789ab"}))
    # So is a key sent in another form (they were answered anonymously, without the key's site).
    key = app.config["TEST_API_KEY"]
    for header in (key, f"Token {key}", f"Basic {key}", "Bearer", "Bearer  "):
        response = post_json(anonymous, "/api/v1/check", {"comment_content": HAM_TEXT},
                             headers={"Authorization": header})
        assert response.status_code == 401, header
        assert "Bearer <key>" in response.get_json()["error"]


def test_anonymous_feedback_reaches_only_anonymous_checks(make_app: Callable[..., Flask]) -> None:
    # With anonymous JSON on beside keyed sites, a caller without a key could label any
    # site's check by its id or by its text.
    app = make_app(allow_anonymous_json=True)
    keyed = app.test_client()  # sends the test key
    anonymous = app.test_client()
    anonymous.environ_base.pop("HTTP_AUTHORIZATION")
    text = {"comment_content": "A keyed site's comment about its garden."}
    sites_check = post_json(keyed, "/api/v1/check", text).get_json()["check_id"]
    by_id = post_json(anonymous, "/api/v1/feedback", {"check_id": sites_check, "label": "spam"})
    assert by_id.status_code == 404 and by_id.get_json()["field"] == "check_id"
    by_text = post_json(anonymous, "/api/v1/feedback", {"comment": text, "label": "spam"})
    assert by_text.status_code == 201 and by_text.get_json()["check_id"] is None  # stored, unlinked
    # Its own checks it still reaches, by id and by text.
    own = post_json(anonymous, "/api/v1/check", text).get_json()["check_id"]
    assert post_json(anonymous, "/api/v1/feedback", {"check_id": own, "label": "ham"}).get_json()["check_id"] == own
    assert post_json(anonymous, "/api/v1/feedback", {"comment": text, "label": "ham"}).get_json()["check_id"] == own
    # And the keyed site its own, not the anonymous one made later.
    assert post_json(keyed, "/api/v1/feedback", {"comment": text, "label": "ham"}).get_json()["check_id"] == sites_check


def test_health_endpoints_need_no_key(anonymous_client: FlaskClient) -> None:
    assert anonymous_client.get("/healthz").status_code == 200
    assert anonymous_client.get("/readyz").status_code == 200


def test_key_sources() -> None:
    assert bearer_key("Bearer abc") == "abc" and bearer_key("Basic abc") == "" and bearer_key(None) == ""
    assert key_from_host("0123456789AB.rest.example.org:8000") == "0123456789ab"
    assert key_from_host("localhost:8000") == "" and key_from_host("[::1]:80") == ""
    assert akismet_key({"api_key": "a" * 12, "key": "b" * 12}, "c" * 12 + ".x") == "a" * 12
    assert akismet_key({"key": "b" * 12}, "c" * 12 + ".x") == "b" * 12
    assert akismet_key({"api_key": " "}, "c" * 12 + ".x") == "c" * 12


# --- JSON checks are logged and counted ---------------------------------------------------------

def test_json_checks_are_recorded_with_the_returned_id(app: Flask, client: FlaskClient) -> None:
    one = post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT, "is_test": 1}).get_json()
    batch = post_json(client, "/api/v1/check/batch", {"comments": [{"comment_content": "a b c"},
                                                                   {"comment_content": "d e f"}]}).get_json()
    state = get_state(app)
    assert state.recorder is not None and state.store is not None
    state.recorder.flush()
    stored = state.store.get_check(one["check_id"])
    assert stored is not None and stored.surface == "json" and stored.tier == one["verdict"]
    assert stored.is_test and stored.key_id is not None and stored.model_version == "test-model-1"
    assert stored.reasons == tuple(r["reason"] for r in one["reasons"])
    for result in batch["results"]:
        assert state.store.get_check(result["check_id"]) is not None
    (info,) = state.store.list_keys()
    assert state.store.usage(info.id, current_month())["api_calls"] == 3


# --- POST /api/v1/feedback ------------------------------------------------------------------

def test_feedback_by_check_id(app: Flask, client: FlaskClient) -> None:
    check_id = post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT}).get_json()["check_id"]
    response = post_json(client, "/api/v1/feedback", {"check_id": check_id, "label": "spam", "reporter": "mod"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["check_id"] == check_id and isinstance(body["feedback_id"], int)
    store = get_state(app).store
    assert store is not None
    (feedback,) = store.list_feedback()
    assert feedback.id == body["feedback_id"] and feedback.comment.comment_content == HAM_TEXT
    assert feedback.source == "api" and feedback.reporter == "mod" and feedback.label == "spam"


def test_feedback_finds_a_check_the_recorder_is_writing(app: Flask, client: FlaskClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer takes its batch off the queue, then commits: in between the check is in
    # neither place, and a report arriving then must wait for the write, not answer 404.
    state = get_state(app)
    assert state.store is not None and state.recorder is not None
    writing, real_write = threading.Event(), state.store.record_checks

    def slow_write(records: Any) -> None:
        writing.set()
        time.sleep(0.3)
        real_write(records)

    monkeypatch.setattr(state.store, "record_checks", slow_write)
    checked = [post_json(client, "/api/v1/check", {"comment_content": f"{HAM_TEXT} {i}"}).get_json()["check_id"]
               for i in range(2)]
    writer = threading.Thread(target=state.recorder.flush)
    writer.start()
    assert writing.wait(5) and state.recorder.pending == 0
    by_id = post_json(client, "/api/v1/feedback", {"check_id": checked[0], "label": "spam"})
    writer.join()
    assert by_id.status_code == 201 and by_id.get_json()["check_id"] == checked[0]
    writing.clear()
    post_json(client, "/api/v1/check", {"comment_content": "One more, written slowly."})
    writer = threading.Thread(target=state.recorder.flush)
    writer.start()
    assert writing.wait(5)
    by_comment = post_json(client, "/api/v1/feedback", {"comment_content": "One more, written slowly.",
                                                        "label": "spam"})
    writer.join()
    assert by_comment.status_code == 201 and by_comment.get_json()["check_id"] is not None


def test_feedback_by_comment_links_the_same_comment(client: FlaskClient) -> None:
    comment = {"comment_content": HAM_TEXT, "comment_author": "Ann"}
    check_id = post_json(client, "/api/v1/check", comment).get_json()["check_id"]
    nested = post_json(client, "/api/v1/feedback", {"comment": comment, "label": "ham"})
    top = post_json(client, "/api/v1/feedback", {**comment, "label": "ham"})
    fresh = post_json(client, "/api/v1/feedback", {"comment_content": "never checked", "label": "spam"})
    assert [r.status_code for r in (nested, top, fresh)] == [201, 201, 201]
    assert nested.get_json()["check_id"] == top.get_json()["check_id"] == check_id
    assert fresh.get_json()["check_id"] is None


def test_feedback_errors(client: FlaskClient) -> None:
    unknown = post_json(client, "/api/v1/feedback", {"check_id": "0" * 32, "label": "spam"})
    assert unknown.status_code == 404 and unknown.get_json()["field"] == "check_id"
    for label in ("maybe", None, 1):
        body = {"comment_content": "x", **({"label": label} if label is not None else {})}
        response = post_json(client, "/api/v1/feedback", body)
        assert response.status_code == 422 and response.get_json()["field"] == "label"
    empty = post_json(client, "/api/v1/feedback", {"label": "ham"})
    assert empty.status_code == 422
    bad_comment = post_json(client, "/api/v1/feedback", {"comment": {"comment_content": 5}, "label": "ham"})
    assert bad_comment.status_code == 422 and bad_comment.get_json()["field"] == "comment.comment_content"


def test_usage_counts_corrections_not_confirmations(app: Flask, client: FlaskClient) -> None:
    """A site's usage showed missed spam and false positives where the filter had made none."""
    spam = post_json(client, "/api/v1/check", {"comment_content": SPAM_TEXT,
                                               "comment_author_url": "http://bit.ly/x"}).get_json()
    ham = post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT}).get_json()
    assert spam["verdict"] in ("spam", "discard") and ham["verdict"] == "ham"
    for check_id, label in ((spam["check_id"], "spam"), (spam["check_id"], "spam"), (ham["check_id"], "ham"),
                            (ham["check_id"], "spam"), (spam["check_id"], "ham")):
        assert post_json(client, "/api/v1/feedback", {"check_id": check_id, "label": label}).status_code == 201
    # Without a check to compare with, a report is a correction (as Akismet counts submits).
    assert post_json(client, "/api/v1/feedback", {"comment_content": "never checked", "label": "ham"}
                     ).status_code == 201
    state = get_state(app)
    state.recorder.flush()
    (info,) = state.store.list_keys()
    counts = state.store.usage(info.id, current_month())
    assert (counts["missed_spam"], counts["false_positives"]) == (1, 2)


def test_a_report_corrects_a_check_as_its_surface_counted_it() -> None:
    """The JSON API counts ``unsure`` as ham in a key's usage; a ham report on it was counted as a
    false positive all the same (and a spam report as nothing), so the figures contradicted
    themselves. On the Akismet surface ``unsure`` counts as the setting answers it."""
    from model.comment import Comment
    from model.verdict import Verdict
    from service.feedback import corrects
    from store import CheckRecord

    def check(surface: str, tier: str) -> CheckRecord:
        return CheckRecord.from_verdict(Comment(comment_content="x"), Verdict(tier, 0.3), surface=surface,
                                        check_id="0" * 32)

    unsure_json, unsure_akismet = check("json", "unsure"), check("akismet", "unsure")
    assert corrects("spam", unsure_json, True) and not corrects("ham", unsure_json, True)
    assert corrects("ham", unsure_akismet, True) and not corrects("spam", unsure_akismet, True)
    assert corrects("spam", unsure_akismet, False) and not corrects("ham", unsure_akismet, False)
    for surface in ("json", "akismet"):
        assert corrects("ham", check(surface, "spam"), False) and not corrects("spam", check(surface, "discard"), True)
        assert corrects("spam", check(surface, "ham"), True) and not corrects("ham", check(surface, "ham"), True)
    assert corrects("ham", None, True) and corrects("spam", None, True)
