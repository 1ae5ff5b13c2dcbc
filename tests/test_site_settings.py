"""Per-site verdict settings: the store's columns, `commentguard sites`, and checks on both APIs.

Two sites share one app: the test key's (:data:`TEST_SITE`) and :data:`OTHER_SITE`'s. Each
test changes one site's settings in the store and shows the other keeps the global ones.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from commentguard.cli import cli
from model.scorer import Scorer
from service.app import get_state
from service.auth import KEY_CACHE_SECONDS
from service.settings import PREFIX, Settings
from store import InvalidRecordError, SiteSettings, Store, current_month, open_store
from store.db import Database
from store.migrations import MIGRATIONS, applied_versions, migrate
from store.privacy import Privacy
from tests.conftest import TEST_SECRET_KEY, TEST_SITE, auth_headers, create_test_key
from tests.test_auth import fake_key_clock
from tests.test_service_api import HAM_TEXT, SPAM_TEXT, post_json

OTHER_SITE = "https://other.example"
SECRET = b"test-secret-0123456789abcdef"


# --- helpers -------------------------------------------------------------------------------

def set_site(app: Flask, url: str, **values: Any) -> None:
    """Give the site at ``url`` these settings (through the app's store)."""
    store = get_state(app).store
    assert store is not None
    site = store.find_site(url)
    assert site is not None
    assert store.set_site_settings(site.id, SiteSettings(**values)) is not None


def akismet(client: FlaskClient, key: str, text: str, **fields: str) -> Any:
    form = {"api_key": key, "blog": fields.pop("blog", TEST_SITE), "user_ip": "203.0.113.9",
            "comment_content": text, **fields}
    return client.post("/1.1/comment-check", data=form)


@pytest.fixture
def other_key(settings: Settings, api_key: str) -> str:
    """A key of a second site (after the test key, so the test site is site 1)."""
    return create_test_key(settings, site=OTHER_SITE)


@pytest.fixture
def plain(app: Flask) -> FlaskClient:
    """A client that sends only the headers given."""
    return FlaskClient(app, app.response_class)


def usage(app: Flask, key: str) -> dict[str, int]:
    state = get_state(app)
    assert state.recorder is not None and state.store is not None
    state.recorder.flush()
    info = state.store.authenticate(key)
    assert info is not None
    return state.store.usage(info.id, current_month())


# --- checks --------------------------------------------------------------------------------

def test_a_log_only_site_answers_ham_on_both_apis_while_another_enforces(
        app: Flask, plain: FlaskClient, api_key: str, other_key: str) -> None:
    set_site(app, OTHER_SITE, mode="log_only")
    trying = post_json(plain, "/api/v1/check", {"comment_content": SPAM_TEXT}, headers=auth_headers(other_key))
    body = trying.get_json()
    assert body["verdict"] == "ham" and body["enforced"] is False
    assert body["recorded_verdict"] in ("spam", "discard")
    enforcing = post_json(plain, "/api/v1/check", {"comment_content": SPAM_TEXT},
                          headers=auth_headers(api_key)).get_json()
    assert enforcing["verdict"] in ("spam", "discard") and "enforced" not in enforcing
    answer = akismet(plain, other_key, SPAM_TEXT, blog=OTHER_SITE)
    assert answer.get_data(as_text=True) == "false"
    assert answer.headers["X-CommentGuard-Enforced"] == "false"
    assert "X-akismet-pro-tip" not in answer.headers
    assert akismet(plain, api_key, SPAM_TEXT).get_data(as_text=True) == "true"
    batch = post_json(plain, "/api/v1/check/batch", {"comments": [{"comment_content": SPAM_TEXT}] * 2},
                      headers=auth_headers(other_key)).get_json()["results"]
    assert [r["verdict"] for r in batch] == ["ham", "ham"] and all(r["enforced"] is False for r in batch)
    batch = post_json(plain, "/api/v1/check/batch", {"comments": [{"comment_content": SPAM_TEXT}] * 2},
                      headers=auth_headers(api_key)).get_json()["results"]
    assert all(r["verdict"] in ("spam", "discard") for r in batch)
    # Usage counts the answer each site was given.
    counted = usage(app, other_key)
    assert (counted["api_calls"], counted["spam"], counted["ham"]) == (4, 0, 4)
    assert usage(app, api_key)["spam"] == 4 and usage(app, api_key)["ham"] == 0


def test_a_site_set_to_enforce_enforces_under_a_global_log_only(
        make_app: Callable[..., Flask], api_key: str, other_key: str) -> None:
    app = make_app(mode="log_only")
    set_site(app, OTHER_SITE, mode="enforce")
    client = FlaskClient(app, app.response_class)
    assert akismet(client, other_key, SPAM_TEXT, blog=OTHER_SITE).get_data(as_text=True) == "true"
    assert akismet(client, api_key, SPAM_TEXT).get_data(as_text=True) == "false"


def test_a_stricter_site_flags_what_the_global_thresholds_do_not(
        app: Flask, plain: FlaskClient, scorer: Scorer, api_key: str, other_key: str) -> None:
    score = scorer.score_many([_comment(HAM_TEXT)])[0].score
    assert score < scorer.thresholds.unsure  # ham everywhere by default
    set_site(app, OTHER_SITE, threshold_unsure=score / 4, threshold_spam=score / 2)
    strict = post_json(plain, "/api/v1/check", {"comment_content": HAM_TEXT}, headers=auth_headers(other_key))
    assert strict.get_json()["verdict"] == "spam"
    lax = post_json(plain, "/api/v1/check", {"comment_content": HAM_TEXT}, headers=auth_headers(api_key))
    assert lax.get_json()["verdict"] == "ham"
    assert akismet(plain, other_key, HAM_TEXT, blog=OTHER_SITE).get_data(as_text=True) == "true"
    assert akismet(plain, api_key, HAM_TEXT).get_data(as_text=True) == "false"
    batch = post_json(plain, "/api/v1/check/batch", {"comments": [{"comment_content": HAM_TEXT}]},
                      headers=auth_headers(other_key)).get_json()["results"]
    assert batch[0]["verdict"] == "spam"
    assert usage(app, other_key)["spam"] == 3


def test_the_honeypot_rule_lifts_a_score_to_the_site_s_spam_threshold(
        app: Flask, plain: FlaskClient, scorer: Scorer, other_key: str) -> None:
    assert scorer.thresholds.spam < 0.95
    set_site(app, OTHER_SITE, threshold_spam=0.95, threshold_discard=0.99)
    trapped = post_json(plain, "/api/v1/check", {"comment_content": HAM_TEXT, "honeypot_field_name": "hp",
                                                 "hp": "filled"}, headers=auth_headers(other_key)).get_json()
    assert trapped["verdict"] == "spam" and trapped["score"] == 0.95


def _comment(text: str) -> Any:
    from model.comment import Comment

    return Comment.from_mapping({"comment_content": text})


def test_anonymous_json_calls_use_the_global_settings(make_app: Callable[..., Flask], api_key: str) -> None:
    app = make_app(allow_anonymous_json=True)
    set_site(app, TEST_SITE, mode="log_only")
    anonymous = FlaskClient(app, app.response_class)
    assert post_json(anonymous, "/api/v1/check", {"comment_content": SPAM_TEXT}).get_json()["verdict"] != "ham"
    keyed = post_json(anonymous, "/api/v1/check", {"comment_content": SPAM_TEXT}, headers=auth_headers(api_key))
    assert keyed.get_json()["verdict"] == "ham"


def test_reports_are_judged_by_the_mode_of_their_site(app: Flask, plain: FlaskClient,
                                                      api_key: str, other_key: str) -> None:
    set_site(app, OTHER_SITE, mode="log_only")
    for key in (api_key, other_key):
        check_id = post_json(plain, "/api/v1/check", {"comment_content": SPAM_TEXT},
                             headers=auth_headers(key)).get_json()["check_id"]
        get_state(app).recorder.flush()  # type: ignore[union-attr]
        response = post_json(plain, "/api/v1/feedback", {"check_id": check_id, "label": "spam"},
                             headers=auth_headers(key))
        assert response.status_code == 201
    # Answered ham in log-only mode: the spam report is a missed spam there, a confirmation here.
    assert usage(app, other_key)["missed_spam"] == 1
    assert usage(app, api_key)["missed_spam"] == 0


def test_a_change_applies_within_the_key_cache_seconds(app: Flask, plain: FlaskClient, other_key: str) -> None:
    clock = fake_key_clock(app)
    check = lambda: post_json(plain, "/api/v1/check", {"comment_content": SPAM_TEXT},  # noqa: E731
                              headers=auth_headers(other_key)).get_json()["verdict"]
    assert check() != "ham"
    set_site(app, OTHER_SITE, mode="log_only")
    clock.now += KEY_CACHE_SECONDS - 1
    assert check() != "ham"  # the worker still reuses the key's answer, settings included
    clock.now += 1
    assert check() == "ham"


def test_thresholds_out_of_order_under_the_model_fall_back_to_the_global_ones(
        app: Flask, plain: FlaskClient, scorer: Scorer, other_key: str, caplog: pytest.LogCaptureFixture) -> None:
    # As after activating a model whose spam threshold is below the site's unsure one: the store
    # takes it (the site's own values are in order), the service must not fail the checks.
    assert scorer.thresholds.spam < 0.99
    set_site(app, OTHER_SITE, mode="log_only", threshold_unsure=0.99)
    with caplog.at_level(logging.WARNING, logger="service.site_settings"):
        for _ in range(2):
            body = post_json(plain, "/api/v1/check", {"comment_content": SPAM_TEXT},
                             headers=auth_headers(other_key)).get_json()
            assert body["verdict"] == "ham" and body["recorded_verdict"] in ("spam", "discard")  # mode kept
    site_id = get_state(app).store.find_site(OTHER_SITE).id  # type: ignore[union-attr]
    warnings = [r.getMessage() for r in caplog.records if r.name == "service.site_settings"]
    assert len(warnings) == 1 and warnings[0].startswith(f"site {site_id}:") and OTHER_SITE not in warnings[0]


# --- store ---------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "sites.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url, secret=SECRET) as opened:
        yield opened


def test_store_sets_reads_and_clears_site_settings(store: Store) -> None:
    key, info = store.create_key("https://a.example")
    store.create_key("https://b.example")
    assert info.site_settings == SiteSettings() and info.site_settings.is_default
    site = store.find_site("HTTPS://A.EXAMPLE/")
    assert site is not None and site.url == "https://a.example"
    wanted = SiteSettings(mode="log_only", threshold_unsure=0.25, threshold_spam=0.5, threshold_discard=0.75)
    assert store.set_site_settings(site.id, wanted).settings == wanted  # type: ignore[union-attr]
    assert store.authenticate(key).site_settings == wanted  # type: ignore[union-attr]
    assert [s.settings for s in store.list_sites()] == [wanted, SiteSettings()]
    store.set_site_settings(site.id, SiteSettings())
    assert store.authenticate(key).site_settings.is_default  # type: ignore[union-attr]
    assert store.find_site("https://nowhere.example") is None and store.find_site("not a url") is None
    assert store.set_site_settings(999, SiteSettings(mode="enforce")) is None


@pytest.mark.parametrize("bad", [SiteSettings(mode="shadow"), SiteSettings(threshold_spam=1.5),
                                 SiteSettings(threshold_unsure=-0.1), SiteSettings(threshold_discard=float("nan")),
                                 SiteSettings(threshold_unsure=0.6, threshold_spam=0.4)])
def test_store_refuses_bad_site_settings(store: Store, bad: SiteSettings) -> None:
    store.create_key("https://a.example")
    with pytest.raises(InvalidRecordError):
        store.set_site_settings(1, bad)
    assert store.list_sites()[0].settings.is_default


def test_migration_adds_the_columns_to_an_existing_database(store_url: str) -> None:
    db = Database(store_url)
    assert migrate(db, MIGRATIONS[:6]) == [1, 2, 3, 4, 5, 6]
    key, now = "0123456789ab", datetime.now(timezone.utc)

    def old_key(tx: Any) -> None:  # as the release before per-site settings wrote it
        tx.execute("INSERT INTO sites (url, created) VALUES (?, ?)", ("https://a.example", now))
        tx.execute("INSERT INTO api_keys (site_id, digest, hint, label, created) VALUES (1, ?, 'ab', 'old', ?)",
                   (Privacy(SECRET).key_digest(key), now))

    db.run(old_key)
    db.close()
    with open_store(store_url, secret=SECRET) as upgraded:
        assert applied_versions(upgraded.database)[-1] == 7
        info = upgraded.authenticate(key)
        assert info is not None and info.label == "old" and info.site_settings.is_default
        upgraded.set_site_settings(info.site_id, SiteSettings(mode="log_only"))
        assert upgraded.authenticate(key).site_settings.mode == "log_only"  # type: ignore[union-attr]


# --- command line --------------------------------------------------------------------------

@pytest.fixture
def env(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(PREFIX) and not name.startswith(PREFIX + "TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(PREFIX + "SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv(PREFIX + "MODEL_PATH", str(model_dir))
    for site in ("https://a.example", "https://b.example"):
        assert CliRunner().invoke(cli, ["keys", "create", "--site", site]).exit_code == 0


def cli_run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def listed() -> list[dict[str, Any]]:
    result = cli_run("sites", "list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_sets_lists_and_clears(env: None, scorer: Scorer) -> None:
    assert [s["mode"] for s in listed()] == [None, None]
    result = cli_run("sites", "set", "HTTPS://A.example/", "--mode", "log_only", "--threshold-spam",
                     str(scorer.thresholds.spam), "--threshold-discard", str(scorer.thresholds.discard))
    assert result.exit_code == 0, result.output
    assert "within 30 s" in result.stdout
    first = listed()[0]
    assert (first["site"], first["mode"], first["threshold_spam"]) == ("https://a.example", "log_only",
                                                                       scorer.thresholds.spam)
    assert listed()[1]["mode"] is None
    table = cli_run("sites", "list").stdout
    assert "log_only" in table and "(global)" in table
    assert cli_run("sites", "set", "https://a.example", "--clear-thresholds").exit_code == 0
    assert listed()[0]["threshold_spam"] is None and listed()[0]["mode"] == "log_only"
    assert cli_run("sites", "set", "https://a.example", "--mode", "default").exit_code == 0
    assert listed()[0]["mode"] is None


@pytest.mark.parametrize("args, message", [
    (["https://nowhere.example", "--mode", "enforce"], "no registered site"),
    (["https://a.example", "--threshold-spam", "1.5"], "between 0 and 1"),
    (["https://a.example", "--threshold-unsure", "nan"], "between 0 and 1"),
    (["https://a.example", "--mode", "shadow"], "shadow"),
    (["https://a.example"], "nothing to set"),
    (["https://a.example", "--threshold-unsure", "0.999"], "unsure <= spam <= discard"),  # above the model's spam
])
def test_cli_refusals(env: None, args: list[str], message: str) -> None:
    result = cli_run("sites", "set", *args)
    assert result.exit_code != 0 and message in result.output
    assert all(s["mode"] is None and s["threshold_unsure"] is None for s in listed())


def test_cli_refuses_thresholds_the_global_overrides_put_out_of_order(
        env: None, scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fine with the model's thresholds alone, but the global unsure override sits above it.
    low = scorer.thresholds.unsure / 2
    monkeypatch.setenv(PREFIX + "THRESHOLD_UNSURE", str(min(1.0, scorer.thresholds.spam)))
    result = cli_run("sites", "set", "https://a.example", "--threshold-spam", str(low))
    assert result.exit_code != 0 and "global overrides" in result.output
    assert listed()[0]["threshold_spam"] is None
    monkeypatch.delenv(PREFIX + "THRESHOLD_UNSURE")
    assert cli_run("sites", "set", "https://a.example", "--threshold-unsure", str(low / 2),
                   "--threshold-spam", str(low)).exit_code == 0


def test_a_mode_change_goes_through_when_the_sites_thresholds_fell_out_of_order(
        env: None, scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a probe: after a model (here a global override) put a site's stored thresholds out of
    order, `sites set --mode log_only` was refused for them, so an operator could not stop the site
    enforcing without also changing its thresholds."""
    low = scorer.thresholds.unsure / 2
    assert cli_run("sites", "set", "https://a.example", "--threshold-spam", str(low),
                   "--threshold-unsure", str(low / 2)).exit_code == 0
    monkeypatch.setenv(PREFIX + "THRESHOLD_DISCARD", str(low / 4))  # now below the site's spam
    changed = cli_run("sites", "set", "https://a.example", "--mode", "log_only")
    assert changed.exit_code == 0, changed.output
    assert listed()[0]["mode"] == "log_only" and listed()[0]["threshold_spam"] == low
    # `sites list` marks it (the workers use the global thresholds for it), and only it.
    assert listed()[0]["out_of_order"] is True and listed()[1]["out_of_order"] is False  # every row has it
    assert "out of order: global thresholds used" in cli_run("sites", "list").stdout
    refused = cli_run("sites", "set", "https://a.example", "--threshold-unsure", str(low / 3))
    assert refused.exit_code != 0 and "unsure <= spam <= discard" in refused.output
    monkeypatch.delenv(PREFIX + "THRESHOLD_DISCARD")
    assert listed()[0]["out_of_order"] is False


def check_as(site: str, text: str = HAM_TEXT) -> dict[str, Any]:
    result = cli_run("check", text, "--site", site)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_check_answers_as_the_site_would(env: None, scorer: Scorer) -> None:
    """`commentguard check --site` gives the answer the JSON API gives that site's keys: its own
    thresholds and mode; another site keeps the global ones."""
    plain = json.loads(cli_run("check", HAM_TEXT).stdout)
    score = plain["score"]
    assert plain["verdict"] == "ham" and score > 0.0
    # A site whose spam threshold sits just under this comment's score flags it...
    assert cli_run("sites", "set", "https://a.example", "--threshold-unsure", str(score / 4),
                   "--threshold-spam", str(score / 2), "--threshold-discard", "1.0").exit_code == 0
    strict = check_as("https://A.example/")
    assert (strict["site"], strict["mode"], strict["verdict"]) == ("https://a.example", "enforce", "spam")
    assert strict["score"] == score and "enforced" not in strict
    # ...the other site does not...
    other = check_as("https://b.example")
    assert (other["mode"], other["verdict"]) == ("enforce", "ham")
    # ...and in log-only mode the site is answered ham, the model's verdict beside it.
    assert cli_run("sites", "set", "https://a.example", "--mode", "log_only").exit_code == 0
    trying = check_as("https://a.example")
    assert (trying["mode"], trying["verdict"], trying["recorded_verdict"], trying["enforced"]) == (
        "log_only", "ham", "spam", False)


def test_cli_check_as_a_site_whose_thresholds_fell_out_of_order(
        env: None, scorer: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    low = scorer.thresholds.unsure / 2
    assert cli_run("sites", "set", "https://a.example", "--mode", "log_only", "--threshold-spam", str(low),
                   "--threshold-unsure", str(low / 2)).exit_code == 0
    # Global thresholds all under the site's spam threshold (low): the site's are out of order.
    for tier, value in (("UNSURE", low / 8), ("SPAM", low / 6), ("DISCARD", low / 4)):
        monkeypatch.setenv(PREFIX + "THRESHOLD_" + tier, str(value))
    result = CliRunner().invoke(cli, ["check", SPAM_TEXT, "--site", "https://a.example"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "out of order" in result.stderr and result.stderr.count("out of order") == 1
    answer = json.loads(result.stdout)
    # The global thresholds (discard at low / 4), with the site's own mode.
    assert answer["mode"] == "log_only" and answer["verdict"] == "ham" and answer["recorded_verdict"] == "discard"


def test_cli_check_refuses_an_unknown_site(env: None) -> None:
    result = cli_run("check", HAM_TEXT, "--site", "https://nowhere.example")
    assert result.exit_code == 1 and "--site: no registered site" in result.output
