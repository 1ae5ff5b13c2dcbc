"""Reviewing the check log: `commentguard checks list/summary`, `commentguard feedback add`, and the
store's queries behind them (store.review), on SQLite and PostgreSQL.

Each test builds its check log by hand (known times, scores, tiers and labels) with the store's
batch insert, and reads it back through the command line.
"""
from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
from click.testing import CliRunner, Result

from commentguard.cli import cli
from commentguard.context import open_store_from_settings
from model.comment import Comment
from model.verdict import Thresholds
from service.settings import PREFIX, load_settings
from store import CheckRecord, FeedbackRecord, InvalidRecordError, Store, current_month, new_check_id
from store.records import utcnow
from store.upstream import upstream_outbox_counts
from tests.conftest import TEST_SECRET_KEY

A, B = "https://a.example", "https://b.example"
HOSTILE_TEXT = "hi\x1b[2J\x1b]0;owned\x07 there\rFAKE \u202eevil\u2066 \x9b31m red\x85end"
HOSTILE_AUTHOR = "\x1b[31mEve\x1b[0m\u202e"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """COMMENTGUARD_* for the command line (the tiny test model served), two sites with a key each."""
    for name in list(os.environ):
        if name.startswith(PREFIX) and not name.startswith(PREFIX + "TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(PREFIX + "SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv(PREFIX + "MODEL_PATH", str(model_dir))
    if request.param == "postgresql":
        monkeypatch.setenv(PREFIX + "DATABASE_URL", str(request.getfixturevalue("pg_url")))
    for site in (A, B):
        assert CliRunner().invoke(cli, ["keys", "create", "--site", site]).exit_code == 0


@pytest.fixture
def store(env: None) -> Iterator[Store]:
    with open_store_from_settings(load_settings()) as opened:
        yield opened


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def listed(*args: str) -> list[dict[str, Any]]:
    return json.loads(ok("checks", "list", "--json", *args))


def summary(*args: str) -> dict[str, Any]:
    return json.loads(ok("checks", "summary", "--json", *args))


def refused(*args: str) -> str:
    result = run(*args)
    assert result.exit_code != 0, result.output
    return result.output


def check(store: Store, site: Optional[str], tier: str, score: float, *, minutes_ago: float = 1.0,
          text: str = "a comment", author: str = "Alice", model: str = "v1", is_test: bool = False) -> CheckRecord:
    """A check of ``site``'s key (``None``: made without a key), ``minutes_ago`` minutes old."""
    key = next((k for k in store.list_keys() if k.site_url == site), None)
    return CheckRecord(
        id=new_check_id(), created=utcnow() - timedelta(minutes=minutes_ago), surface="json", tier=tier,
        score=score, comment=Comment(comment_content=text, comment_author=author, blog=site or ""),
        model_version=model, reasons=("word 'casino'", "link to a URL shortener (bit.ly)", "third reason"),
        site_id=key.site_id if key else None, key_id=key.id if key else None, is_test=is_test)


def label(store: Store, record: CheckRecord, value: str, *, minutes_ago: float = 0.0, is_test: bool = False) -> None:
    store.add_feedback(FeedbackRecord(label=value, comment=record.comment, check_id=record.id, site_id=record.site_id,
                                      created=utcnow() - timedelta(minutes=minutes_ago), is_test=is_test))


# --- checks list ------------------------------------------------------------------------------

def test_list_is_newest_first_and_filters_by_site_tier_days_and_test(store: Store) -> None:
    rows = [check(store, A, "ham", 0.1, minutes_ago=5), check(store, A, "spam", 0.7, minutes_ago=4),
            check(store, B, "discard", 0.97, minutes_ago=3), check(store, A, "unsure", 0.45, minutes_ago=2),
            check(store, None, "ham", 0.2, minutes_ago=1),
            check(store, A, "spam", 0.8, minutes_ago=8 * 24 * 60),  # older than the default 7 days
            check(store, A, "discard", 0.99, minutes_ago=0.5, is_test=True)]
    store.record_checks(rows)
    ids = [r.id for r in rows]
    assert [c["id"] for c in listed()] == [ids[4], ids[3], ids[2], ids[1], ids[0]]
    first = listed()[1]
    assert (first["site"], first["tier"], first["score"], first["model_version"], first["author"],
            first["content"], first["label"]) == (A, "unsure", 0.45, "v1", "Alice", "a comment", None)
    assert first["reasons"][0] == "word 'casino'" and first["surface"] == "json"
    assert listed()[0]["site"] is None
    assert [c["id"] for c in listed("--site", A)] == [ids[3], ids[1], ids[0]]
    assert [c["id"] for c in listed("--tier", "spam,discard")] == [ids[2], ids[1]]
    assert [c["id"] for c in listed("--tier", "spam", "--tier", "DISCARD", "--days", "9")] == [ids[2], ids[1], ids[5]]
    assert [c["id"] for c in listed("--limit", "2")] == [ids[4], ids[3]]
    assert [c["id"] for c in listed("--include-test", "--limit", "1")] == [ids[6]]
    table = ok("checks", "list", "--site", A)
    assert ids[3] in table and "word 'casino'; link to a URL shortener (bit.ly)" in table
    assert "third reason" not in table and "time (UTC)" in table


def test_feedback_add_shows_in_the_list_counts_usage_and_unlabelled_is_the_queue(store: Store) -> None:
    spam, ham = check(store, A, "spam", 0.7, minutes_ago=2), check(store, A, "ham", 0.1, minutes_ago=1)
    store.record_checks([spam, ham])
    out = ok("feedback", "add", "--check", spam.id.upper(), "--label", "ham", "--by", "mod@example.org")
    assert f"check {spam.id} labelled ham" in out
    assert [(c["id"], c["label"]) for c in listed()] == [(ham.id, None), (spam.id, "ham")]
    assert [c["id"] for c in listed("--unlabelled")] == [ham.id]
    stored = store.list_feedback()
    assert [(f.label, f.source, f.check_id, f.site_id, f.key_id) for f in stored] == [
        ("ham", "cli", spam.id, spam.site_id, spam.key_id)]
    assert stored[0].comment.comment_content == "a comment"
    assert "mod@example.org" not in stored[0].reporter  # hashed, as a report's reporter is
    # A correction, counted once as the API counts it: a second identical label is no news.
    assert store.usage(spam.key_id, current_month())["false_positives"] == 1  # type: ignore[arg-type]
    ok("feedback", "add", "--check", spam.id, "--label", "ham")
    assert store.usage(spam.key_id, current_month())["false_positives"] == 1  # type: ignore[arg-type]
    # The latest label is the one shown; a confirmation (ham on ham) counts as no mistake.
    ok("feedback", "add", "--check", spam.id, "--label", "spam")
    ok("feedback", "add", "--check", ham.id, "--label", "ham")
    assert [c["label"] for c in listed()] == ["ham", "spam"] and listed("--unlabelled") == []
    assert store.usage(spam.key_id, current_month())["false_positives"] == 1  # type: ignore[arg-type]


def test_feedback_add_in_log_only_mode_counts_a_spam_label_as_missed(store: Store) -> None:
    flagged = check(store, A, "spam", 0.8)  # answered ham on the wire: the site was in log-only mode
    store.record_checks([flagged])
    ok("sites", "set", A, "--mode", "log_only")
    ok("feedback", "add", "--check", flagged.id, "--label", "spam")
    assert store.usage(flagged.key_id, current_month())["missed_spam"] == 1  # type: ignore[arg-type]


def test_feedback_add_queues_the_report_for_the_upstream_when_forwarding(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    record = check(store, A, "ham", 0.1)
    store.record_checks([record])
    monkeypatch.setenv(PREFIX + "UPSTREAM_FORWARD_FEEDBACK", "true")
    monkeypatch.setenv(PREFIX + "UPSTREAM_KEY", "upstream-key")
    monkeypatch.setenv(PREFIX + "UPSTREAM_URL", "http://127.0.0.1:9")
    assert "queued for the upstream" in ok("feedback", "add", "--check", record.id, "--label", "spam")
    assert upstream_outbox_counts(store) == {"pending": 1, "delivered": 0}


@pytest.mark.parametrize("check_id", ["ab" * 16, "not-a-check-id"])
def test_feedback_add_refuses_an_unknown_check(store: Store, check_id: str) -> None:
    result = run("feedback", "add", "--check", check_id, "--label", "spam")
    assert result.exit_code == 1 and "--check: no check" in result.output and check_id in result.output
    assert store.list_feedback(include_test=True) == []
    assert "'maybe' is not one of" in refused("feedback", "add", "--check", "ab" * 16, "--label", "maybe")


def test_hostile_text_cannot_reach_the_terminal_raw(store: Store) -> None:
    record = check(store, A, "spam", 0.7, text=HOSTILE_TEXT, author=HOSTILE_AUTHOR)
    store.record_checks([record])
    table = ok("checks", "list")
    raw_json = ok("checks", "list", "--json")
    for shown in (table, raw_json):
        for bad in ("\x1b", "\r", "\x07", "\x9b", "\x85", "\u202e", "\u2066"):
            assert bad not in shown, (bad, shown)
    assert "hi\N{REPLACEMENT CHARACTER}[2J" in table and "Eve" in table
    data = json.loads(raw_json)[0]
    assert (data["content"], data["author"]) == (HOSTILE_TEXT, HOSTILE_AUTHOR)  # whole, once decoded
    assert "\\u009b" in raw_json and "\\u202e" in raw_json


# --- checks summary ---------------------------------------------------------------------------

def _log(store: Store) -> list[CheckRecord]:
    """Site A: 7 checks with known scores, tiers and labels; site B: 2; one made without a key."""
    a = [check(store, A, "ham", 0.10), check(store, A, "ham", 0.30), check(store, A, "unsure", 0.45),
         check(store, A, "unsure", 0.55), check(store, A, "spam", 0.70), check(store, A, "spam", 0.85),
         check(store, A, "discard", 0.97)]
    b = [check(store, B, "ham", 0.05), check(store, B, "spam", 0.75, model="v2")]
    rows = [*a, *b, check(store, None, "discard", 0.99), check(store, A, "spam", 0.9, is_test=True)]
    store.record_checks(rows)
    label(store, a[1], "spam")                                   # missed
    label(store, a[2], "ham")                                    # held, ham
    label(store, a[3], "ham", minutes_ago=5)
    label(store, a[3], "spam")                                   # held, spam (the latest label)
    label(store, a[4], "ham")                                    # false positive
    label(store, a[6], "spam")                                   # flagged, right
    label(store, rows[-1], "ham", is_test=True)                  # a test: left out by default
    return rows


def test_summary_counts_a_known_log_as_recorded_and_at_given_thresholds(store: Store) -> None:
    _log(store)
    result = summary("--threshold-unsure", "0.5", "--threshold-spam", "0.8", "--threshold-discard", "0.95")
    sites = {row["site"]: row for row in result["sites"]}
    a = sites[A]
    assert a["checks"] == 7 and a["mode"] == "enforce"
    assert a["recorded"]["tiers"] == {"ham": 2, "unsure": 2, "spam": 2, "discard": 1}
    assert (a["recorded"]["labelled"], a["recorded"]["false_positives"], a["recorded"]["flagged_labelled"],
            a["recorded"]["missed"], a["recorded"]["ham_labelled"]) == (5, 1, 2, 1, 1)
    assert a["recorded"]["held_by_label"] == {"spam": 1, "ham": 1}
    # Re-tiered at 0.5 / 0.8 / 0.95: 0.10, 0.30, 0.45 ham; 0.55, 0.70 unsure; 0.85 spam; 0.97 discard.
    what_if = a["what_if"]
    assert what_if["thresholds"] == {"unsure": 0.5, "spam": 0.8, "discard": 0.95}
    assert what_if["tiers"] == {"ham": 3, "unsure": 2, "spam": 1, "discard": 1}
    assert (what_if["false_positives"], what_if["flagged_labelled"], what_if["missed"], what_if["ham_labelled"]) \
        == (0, 1, 1, 2)
    assert what_if["held_by_label"] == {"spam": 1, "ham": 1}
    assert a["model_versions"] == {"v1": 7} and a["models_comparable"] is True
    assert sites[B]["checks"] == 2 and sites[B]["models_comparable"] is False
    assert sites[B]["model_versions"] == {"v1": 1, "v2": 1}
    assert sites[None]["recorded"]["tiers"]["discard"] == 1 and sites[None]["what_if"]["tiers"]["discard"] == 1
    assert "stored scores" in result["what_if"]["note"]
    with_tests = {row["site"]: row for row in summary("--include-test", "--site", A)["sites"]}
    assert with_tests[A]["checks"] == 8 and with_tests[A]["recorded"]["false_positives"] == 2
    assert with_tests[A]["recorded"]["by_tier_and_label"]["spam"]["ham"] == 2
    text = ok("checks", "summary")
    assert "stored scores" in text and "not comparable" in text and "false positives) 1 of 2" in text


def test_summary_what_if_keeps_the_tiers_a_fixed_rule_decided(store: Store) -> None:
    """Found by a probe: an Akismet test value's check, recorded spam at score 1.0 by the rule, was
    counted as discard in the what-if at the site's own thresholds, which read as a change."""
    from dataclasses import replace

    from service.akismet_rules import HONEYPOT_REASON, TEST_SPAM_REASON

    decided = [replace(check(store, A, "spam", 1.0), reasons=(TEST_SPAM_REASON,)),
               replace(check(store, A, "spam", 0.97), reasons=(HONEYPOT_REASON, "word '100%_off!'"))]
    # The upstream's step is not applied again: such a check is re-tiered from its score, as any.
    others = [replace(check(store, A, "unsure", 0.9), reasons=("upstream: ham", "word 'casino'")),
              check(store, A, "spam", 1.0), check(store, A, "ham", 0.3)]
    store.record_checks(decided + others)
    what_if = {row["site"]: row for row in summary("--threshold-unsure", "0.2", "--threshold-spam", "0.5",
                                                   "--threshold-discard", "0.95")["sites"]}[A]["what_if"]
    # The rules' as recorded (spam, spam); the others re-tiered (spam, discard, unsure).
    assert what_if["tiers"] == {"ham": 0, "unsure": 1, "spam": 3, "discard": 1}


def test_summary_what_if_defaults_to_each_site_s_effective_thresholds(store: Store, model_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _log(store)
    ok("sites", "set", A, "--threshold-unsure", "0.2", "--threshold-spam", "0.5", "--threshold-discard", "0.6")
    monkeypatch.setenv(PREFIX + "THRESHOLD_UNSURE", "0.04")
    monkeypatch.setenv(PREFIX + "THRESHOLD_SPAM", "0.06")
    monkeypatch.setenv(PREFIX + "THRESHOLD_DISCARD", "0.98")
    sites = {row["site"]: row for row in summary()["sites"]}
    assert sites[A]["what_if"]["thresholds"] == {"unsure": 0.2, "spam": 0.5, "discard": 0.6}
    assert sites[A]["what_if"]["tiers"] == {"ham": 1, "unsure": 2, "spam": 1, "discard": 3}
    assert sites[B]["what_if"]["thresholds"] == {"unsure": 0.04, "spam": 0.06, "discard": 0.98}
    assert sites[B]["what_if"]["tiers"] == {"ham": 0, "unsure": 1, "spam": 1, "discard": 0}
    # One tier given: the others stay each site's.
    sites = {row["site"]: row for row in summary("--threshold-discard", "0.9")["sites"]}
    assert sites[A]["what_if"]["thresholds"] == {"unsure": 0.2, "spam": 0.5, "discard": 0.9}
    assert sites[A]["what_if"]["tiers"] == {"ham": 1, "unsure": 2, "spam": 3, "discard": 1}
    # The table prints thresholds in full, as an operator copies them into --threshold-* (found by a
    # probe: 0.123456789 was printed 0.123457).
    ok("sites", "set", A, "--threshold-unsure", "0.123456789")
    assert "unsure 0.123456789, spam 0.5, discard 0.6" in ok("checks", "summary", "--site", A)


@pytest.mark.parametrize("args, message", [
    (["checks", "list", "--days", "0"], "--days"),
    (["checks", "list", "--limit", "0"], "--limit"),
    (["checks", "list", "--limit", "1001"], "--limit"),
    (["checks", "list", "--limit", "many"], "--limit"),
    (["checks", "list", "--tier", "spam,maybe"], "--tier"),
    (["checks", "list", "--tier", ""], "no tier given"),  # an unset shell variable listed every tier
    (["checks", "list", "--tier", ",,"], "no tier given"),
    (["checks", "list", "--site", "https://nowhere.example"], "--site: no registered site"),
    (["checks", "summary", "--site", "https://nowhere.example"], "--site: no registered site"),
    (["checks", "summary", "--days", "-1"], "--days"),
    (["checks", "summary", "--threshold-spam", "1.5"], "--threshold-spam: must be between 0 and 1"),
    (["checks", "summary", "--threshold-unsure", "nan"], "--threshold-unsure: must be between 0 and 1"),
    (["checks", "summary", "--threshold-unsure", "0.9", "--threshold-spam", "0.5"],
     "--threshold-unsure 0.9, --threshold-spam 0.5: the thresholds must keep unsure <= spam <= discard"),
    (["checks", "summary", "--threshold-discard", "0.001"], "in place of the site https://a.example's thresholds"),
])
def test_bad_option_values_are_refused_naming_the_option(store: Store, args: list[str], message: str) -> None:
    out = refused(*args)
    assert message in out and "Traceback" not in out


def test_an_empty_log(store: Store) -> None:
    assert listed() == [] and "no checks in the last 7 days" in ok("checks", "list")
    result = summary()
    assert [(row["site"], row["checks"]) for row in result["sites"]] == [(A, 0), (B, 0)]
    assert result["sites"][0]["recorded"]["tiers"] == {"ham": 0, "unsure": 0, "spam": 0, "discard": 0}
    assert "no checks in the last 7 days" in ok("checks", "summary")


# --- the store -------------------------------------------------------------------------------

def test_store_refuses_bad_arguments(store: Store) -> None:
    since = utcnow() - timedelta(days=1)
    for bad in (0, 1001, True, "5"):
        with pytest.raises(InvalidRecordError, match="limit"):
            store.review_checks(since, limit=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="tiers"):
        store.review_checks(since, limit=5, tiers=["bogus"])
    with pytest.raises(InvalidRecordError, match="since"):
        store.summarise_checks("yesterday", what_if=None)  # type: ignore[arg-type]


def test_store_summary_without_what_if_and_with_a_fallback_for_unlisted_sites(store: Store) -> None:
    rows = _log(store)
    since = utcnow() - timedelta(days=1)
    plain = store.summarise_checks(since, what_if=None)
    assert sum(s.checks for s in plain.values()) == 10 and all(not s.what_if.tiers for s in plain.values())
    everyone = store.summarise_checks(since, what_if={None: Thresholds(0.0, 0.0, 0.0)})
    assert {sid: s.what_if.tiers["discard"] for sid, s in everyone.items()} == {
        rows[0].site_id: 7, rows[7].site_id: 2, None: 1}
    only_a = store.summarise_checks(since, site_id=rows[0].site_id,
                                    what_if={rows[0].site_id: Thresholds(1.0, 1.0, 1.0)})
    assert list(only_a) == [rows[0].site_id] and only_a[rows[0].site_id].what_if.tiers["ham"] == 7
