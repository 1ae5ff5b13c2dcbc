"""A sender's history with the site's moderators (service.sender_history, store.sender_history).

Every test runs on SQLite and, with ``COMMENTGUARD_TEST_DATABASE_URL``, on PostgreSQL. The
thresholds are lowered (unsure from 0.05) so that the tiny test model has the three tiers a
policy needs: :data:`HAM_TEXT` is ham, :data:`UNSURE_TEXT` unsure, :data:`SPAM_TEXT` spam.
Labels are stored through the store, then the worker's table is reloaded at once (the thread
does it every 30 s).
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from model.comment import Comment
from model.verdict import Thresholds, Verdict
from service.app import get_state
from service.sender_history import SenderHistory, approved_reason, judge, reported_reason
from service.settings import Settings, SettingsError, load_settings
from store import FeedbackRecord, Store, StoreUnavailableError, open_store
from store.privacy import Privacy
from store.records import utcnow
from tests.conftest import TEST_SECRET_KEY, TEST_SITE, auth_headers, create_test_key
from tests.test_service_api import HAM_TEXT, SPAM_TEXT, post_json

UNSURE_TEXT = "Nice post about the weather"
OTHER_SITE = "https://other.example"
EMAIL = "Joe.Reader@Example.org"
IP = "203.0.113.50"
SECRET = b"test-secret-0123456789abcdef"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path) -> Settings:
    """The conftest's settings on either backend, with an unsure tier the tiny model reaches."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return Settings(data_dir=tmp_path / "var", model_path=model_dir, secret_key=TEST_SECRET_KEY,
                    database_url=url, threshold_unsure=0.05)


@pytest.fixture
def other_key(settings: Settings, api_key: str) -> str:
    return create_test_key(settings, site=OTHER_SITE)


def store_of(app: Flask) -> Store:
    store = get_state(app).store
    assert store is not None
    return store


def label(app: Flask, kind: str, *, email: str = "", ip: str = "", site: str = TEST_SITE, days_ago: float = 0,
          is_test: bool = False, times: int = 1) -> list[int]:
    """Store ``times`` labels of ``kind`` for earlier comments by this sender on ``site``."""
    store = store_of(app)
    found = store.find_site(site)
    assert found is not None
    ids = []
    for n in range(times):
        comment = Comment(comment_content=f"an earlier comment {kind} {n} {days_ago}", comment_author_email=email,
                          user_ip=ip, is_test=is_test)
        ids.append(store.add_feedback(FeedbackRecord(label=kind, comment=comment, site_id=found.id, is_test=is_test,
                                                     created=utcnow() - timedelta(days=days_ago))))
    return ids


def refresh(app: Flask) -> None:
    history = get_state(app).sender_history
    assert history is not None and history.refresh()


def check(client: FlaskClient, text: str, *, email: str = EMAIL, ip: str = IP, **fields: Any) -> dict[str, Any]:
    response = post_json(client, "/api/v1/check", {"comment_content": text, "comment_author_email": email,
                                                   "user_ip": ip, **fields})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def akismet(client: FlaskClient, key: str, text: str, *, email: str = EMAIL, ip: str = IP, **fields: str) -> Any:
    form = {"api_key": key, "blog": TEST_SITE, "user_ip": ip, "comment_author_email": email,
            "comment_content": text, **fields}
    response = client.post("/1.1/comment-check", data=form)
    assert response.status_code == 200
    return response


def first_reason(answer: dict[str, Any]) -> str:
    return answer["reasons"][0]["reason"] if answer["reasons"] else ""


# --- reported senders ------------------------------------------------------------------------

def test_two_spam_labels_on_the_email_make_spam_on_both_apis(app: Flask, client: FlaskClient, api_key: str) -> None:
    assert check(client, HAM_TEXT)["verdict"] == "ham"
    label(app, "spam", email=EMAIL.upper(), times=2)  # an e-mail is matched whatever its case
    refresh(app)
    answer = check(client, HAM_TEXT, email=f" {EMAIL.lower()} ")
    assert answer["verdict"] == "spam"
    assert answer["score"] >= 0.6  # at least the spam threshold
    assert first_reason(answer) == reported_reason(2, "e-mail address")
    batch = post_json(client, "/api/v1/check/batch", {"comments": [
        {"comment_content": HAM_TEXT, "comment_author_email": EMAIL},
        {"comment_content": HAM_TEXT, "comment_author_email": "someone.else@example.org"}]}).get_json()
    assert [r["verdict"] for r in batch["results"]] == ["spam", "ham"]
    response = akismet(client, api_key, HAM_TEXT)
    assert response.get_data(as_text=True) == "true"
    assert response.headers["X-CommentGuard-Verdict"] == "spam"
    assert "moderators marked 2 earlier comments" in response.headers["X-CommentGuard-Reasons"]
    # The reason names the kind of address, never the address: it goes back to the client.
    for text in (json.dumps(answer), json.dumps(batch), response.headers["X-CommentGuard-Reasons"]):
        assert "joe" not in text.lower() and IP not in text


def test_a_reported_ip_alone_holds_a_ham_comment_and_makes_unsure_spam(app: Flask, client: FlaskClient,
                                                                       api_key: str) -> None:
    """An IP is shared (a household, a carrier's NAT, a site's own proxy): a probe's new sender with a
    plain comment from an IP with two spam reports was answered spam. Now one step up: held."""
    label(app, "spam", ip=IP, times=3)
    label(app, "ham", ip=IP, times=2)
    refresh(app)
    answer = check(client, HAM_TEXT, email="")
    assert (answer["verdict"], first_reason(answer)) == ("unsure", reported_reason(3, "IP address"))
    unsure = check(client, UNSURE_TEXT, email="")
    assert (unsure["verdict"], first_reason(unsure)) == ("spam", reported_reason(3, "IP address"))
    assert unsure["score"] < 0.9  # raised to spam, not to discard
    assert akismet(client, api_key, UNSURE_TEXT, email="").get_data(as_text=True) == "true"


def test_each_comment_counts_once_by_its_latest_label(app: Flask, client: FlaskClient) -> None:
    """Found by a probe: one approval sent twice made an "approved" sender of one comment, and spam,
    ham, spam again on one comment counted two spam labels."""
    store, site = store_of(app), store_of(app).find_site(TEST_SITE)
    assert site is not None
    once = Comment(comment_content="one comment, approved twice", comment_author_email=EMAIL, user_ip=IP)
    for _ in range(2):
        store.add_feedback(FeedbackRecord(label="ham", comment=once, site_id=site.id))
    toggled = Comment(comment_content="one comment, corrected", comment_author_email="toggle@example.org")
    for kind in ("spam", "ham", "spam"):
        store.add_feedback(FeedbackRecord(label=kind, comment=toggled, site_id=site.id))
    refresh(app)
    assert check(client, UNSURE_TEXT)["verdict"] == "unsure"  # one comment approved: no history yet
    assert check(client, HAM_TEXT, email="toggle@example.org", ip="")["verdict"] == "ham"
    label(app, "ham", email=EMAIL, ip=IP)  # a second comment approved
    refresh(app)
    answer = check(client, UNSURE_TEXT)
    assert (answer["verdict"], first_reason(answer)) == ("ham", approved_reason(2))


def test_a_correction_that_leaves_out_the_ip_still_corrects_the_comment(app: Flask, client: FlaskClient) -> None:
    """Found by a probe: two comments labelled spam, then corrected to ham by reports without ``user_ip``
    (the JSON API does not require it): the older spam labels stayed the comments' latest on the IP,
    so a new sender from that IP was held, and the corrected sender was not approved."""
    store, site = store_of(app), store_of(app).find_site(TEST_SITE)
    assert site is not None
    for n in range(2):
        sent = Comment(comment_content=f"an earlier comment {n}", comment_author_email=EMAIL, user_ip=IP)
        store.add_feedback(FeedbackRecord(label="spam", comment=sent, site_id=site.id))
        store.add_feedback(FeedbackRecord(label="ham", site_id=site.id, comment=Comment(
            comment_content=f"an earlier comment {n}", comment_author_email=EMAIL)))
    refresh(app)
    assert check(client, HAM_TEXT, email="someone.new@example.org")["verdict"] == "ham"
    answer = check(client, UNSURE_TEXT)
    assert (answer["verdict"], first_reason(answer)) == ("ham", approved_reason(2))


@pytest.mark.parametrize("surface", ["akismet", "json"])
def test_a_report_naming_its_check_with_some_fields_is_about_the_whole_comment(
        app: Flask, client: FlaskClient, api_key: str, surface: str) -> None:
    """Found by a probe: a submit-ham giving the guid, the text and the IP but no e-mail was stored
    without the e-mail, as another comment than the check's (another comment_hash): the spam labels
    given by guid stayed the comments' latest on the e-mail, and the sender was answered spam."""
    for n in range(2):
        text = f"an earlier comment {n}"
        if surface == "akismet":
            answer = akismet(client, api_key, text)
            check_id = answer.headers["X-akismet-guid"]
            base = {"api_key": api_key, "blog": TEST_SITE, "user_ip": IP}
            assert client.post("/1.1/submit-spam", data={**base, "guid": check_id}).status_code == 200
            ham = client.post("/1.1/submit-ham", data={**base, "guid": check_id, "comment_content": text})
            assert ham.headers["X-CommentGuard-Check-Id"] == check_id
        else:
            check_id = check(client, text)["check_id"]
            get_state(app).recorder.flush()
            assert post_json(client, "/api/v1/feedback", {"check_id": check_id, "label": "spam"}).status_code == 201
            ham = post_json(client, "/api/v1/feedback", {"check_id": check_id, "label": "ham", "comment_content": text})
            assert ham.status_code == 201
    stored = [f for f in store_of(app).list_feedback() if f.label == "ham"]
    assert len(stored) == 2 and all(f.comment.comment_author_email for f in stored)  # the check's, filled in
    refresh(app)
    answer = check(client, UNSURE_TEXT)
    assert (answer["verdict"], first_reason(answer)) == ("ham", approved_reason(2))


def test_one_text_pasted_under_several_posts_counts_once_a_post(app: Flask, client: FlaskClient) -> None:
    """Found by a probe: a spammer posting one text under three posts (other IPs), each check labelled
    spam by its id, counted as one comment (one comment_hash) and was never reported."""
    text = "Great article, visit my page for more"
    for n in range(3):
        check_id = check(client, text, ip=f"198.51.100.{n + 1}", permalink=f"https://blog.example/post-{n}")["check_id"]
        get_state(app).recorder.flush()
        assert post_json(client, "/api/v1/feedback", {"check_id": check_id, "label": "spam"}).status_code == 201
    refresh(app)
    answer = check(client, HAM_TEXT, ip="192.0.2.9")
    assert (answer["verdict"], first_reason(answer)) == ("spam", reported_reason(3, "e-mail address"))


def test_a_comment_checked_again_is_one_comment(app: Flask, client: FlaskClient) -> None:
    """Found by a probe of the fix above (when a comment was the check a label names): a comment
    checked again (an edit, a retry) and corrected by the second check's id kept its first check's
    spam label too, and one spam comment labelled on both checks made a reported sender."""
    def checked_twice(text: str, page: str) -> tuple[str, str]:
        ids = tuple(check(client, text, permalink=page)["check_id"] for _ in range(2))
        get_state(app).recorder.flush()
        return ids  # type: ignore[return-value]

    def report(check_id: str, kind: str) -> None:
        assert post_json(client, "/api/v1/feedback", {"check_id": check_id, "label": kind}).status_code == 201

    first, again = checked_twice("a comment about the garden", "https://blog.example/a")
    report(first, "spam")
    report(again, "spam")
    refresh(app)
    assert check(client, HAM_TEXT)["verdict"] == "ham"  # one spam comment: not a reported sender
    report(again, "ham")
    first, again = checked_twice("another comment about the roses", "https://blog.example/b")
    report(first, "spam")
    report(again, "ham")
    refresh(app)
    answer = check(client, UNSURE_TEXT)
    assert (answer["verdict"], first_reason(answer)) == ("ham", approved_reason(2))


def test_a_report_naming_its_check_keeps_what_tells_the_comment_apart(app: Flask, client: FlaskClient) -> None:
    """Found by probes: a correction naming its check but giving the permalink in another form, the
    author with other spacing, the e-mail in other capitals, or a permalink the check lacked, counted
    as another comment beside the first label. A page's forms (case, trailing slash, fragment) are
    one page too."""
    posted = "2026-11-28 10:00:00"  # sent or not, the check's is kept
    for n, (page, sent) in enumerate([
            ("https://blog.example/2026/11/Roses/", {"permalink": "https://blog.example/2026/11/roses"}),
            ("https://blog.example/b", {"comment_author": " Joe  Reader ", "comment_author_email": EMAIL.upper()}),
            ("", {"permalink": "https://blog.example/c"})]):
        text = f"one comment about roses {n}"
        check_id = check(client, text, permalink=page, comment_author="Joe Reader", comment_date_gmt=posted)["check_id"]
        get_state(app).recorder.flush()
        assert post_json(client, "/api/v1/feedback", {"check_id": check_id, "label": "spam"}).status_code == 201
        ham = {"check_id": check_id, "label": "ham", "comment_content": text, **sent}
        assert post_json(client, "/api/v1/feedback", ham).status_code == 201
    store, site = store_of(app), store_of(app).find_site(TEST_SITE)
    assert site is not None
    assert {(f.comment.comment_author, f.comment.permalink) for f in store.list_feedback() if f.label == "ham"} == {
        ("Joe Reader", "https://blog.example/2026/11/Roses/"), ("Joe Reader", "https://blog.example/b"),
        ("Joe Reader", "")}
    refresh(app)
    answer = check(client, UNSURE_TEXT)
    assert (answer["verdict"], first_reason(answer)) == ("ham", approved_reason(3))
    for form in ("https://blog.example/2026/11/roses", "https://blog.example/2026/11/roses/#comment-12"):
        store.add_feedback(FeedbackRecord(label="spam", site_id=site.id, comment=Comment(
            comment_content="one comment about roses 0", comment_author="Joe Reader", comment_author_email=EMAIL,
            user_ip=IP, permalink=form)))
    refresh(app)  # the first comment labelled spam on its page in two other forms: one spam comment, two approved
    assert check(client, UNSURE_TEXT)["verdict"] == "unsure"  # a spam label blocks the e-mail's vouching
    assert check(client, HAM_TEXT)["verdict"] == "ham"  # one spam comment: not reported


def test_an_approval_never_replaces_another_comments_spam_label(app: Flask, client: FlaskClient) -> None:
    """Found by a probe: when a comment was its sender on a page, approving a harmless comment there
    replaced the spam label of another comment on that page, and a reported spammer became an
    approved sender."""
    store, site = store_of(app), store_of(app).find_site(TEST_SITE)
    assert site is not None
    for n, kind in enumerate(["spam", "spam", "ham", "ham"]):
        store.add_feedback(FeedbackRecord(label=kind, site_id=site.id, comment=Comment(
            comment_content=f"comment {n}", comment_author_email=EMAIL, permalink=f"https://blog.example/p{n % 2}",
            comment_date_gmt=f"2026-11-28 10:0{n}:00")))
    refresh(app)
    answer = check(client, UNSURE_TEXT)
    assert answer["verdict"] == "unsure"  # 2 spam, 2 ham: neither reported (not more spam) nor approved


def test_a_report_by_fields_is_about_the_check_on_its_page(app: Flask, client: FlaskClient, api_key: str) -> None:
    """Found by a probe: one text pasted under three posts and reported on each by its fields (no
    guid) was linked to the latest check three times, and counted once."""
    text = "Great article, visit my page for more"
    for n in range(3):  # all three posted, then reported: the latest check is post-2's
        akismet(client, api_key, text, permalink=f"https://blog.example/post-{n}/")
    get_state(app).recorder.flush()
    for n in range(3):  # each report gives its page in another form (a probe: those were not linked)
        form = {"api_key": api_key, "blog": TEST_SITE, "user_ip": IP, "comment_author_email": EMAIL,
                "comment_content": text, "permalink": f"https://Blog.example/post-{n}#comment-9"}
        assert client.post("/1.1/submit-spam", data=form).status_code == 200
    links = {f.check_id for f in store_of(app).list_feedback()}
    assert len(links) == 3 and None not in links
    refresh(app)
    answer = check(client, HAM_TEXT)
    assert (answer["verdict"], first_reason(answer)) == ("spam", reported_reason(3, "e-mail address"))


def test_anonymous_comments_on_one_page_count_each(app: Flask, client: FlaskClient) -> None:
    """A flood of comments without an e-mail on one post from one IP: no sender to tell one comment
    from another, so each text counts (as one sender's comments on a page would count once)."""
    store, site = store_of(app), store_of(app).find_site(TEST_SITE)
    assert site is not None
    for n in range(2):
        store.add_feedback(FeedbackRecord(label="spam", site_id=site.id, comment=Comment(
            comment_content=f"flood {n}", user_ip=IP, permalink="https://blog.example/post")))
    refresh(app)
    answer = check(client, HAM_TEXT, email="")
    assert (answer["verdict"], first_reason(answer)) == ("unsure", reported_reason(2, "IP address"))


def test_reports_on_akismet_test_values_are_tests(app: Flask, client: FlaskClient, api_key: str) -> None:
    """Found by a probe: an owner trying the plugin's spam path (author viagra-test-123) with their own
    address and IP, reported twice, made themselves a reported sender."""
    for n in range(2):
        fields = {"comment_author": "viagra-test-123"}
        response = akismet(client, api_key, f"trying the spam path {n}", email="owner@example.org", **fields)
        assert response.get_data(as_text=True) == "true"
        guid = response.headers["X-akismet-guid"]
        post_form = {"api_key": api_key, "blog": TEST_SITE, "user_ip": IP, "guid": guid}
        assert client.post("/1.1/submit-spam", data=post_form).status_code == 200
    labels = store_of(app).list_feedback(include_test=True)
    assert len(labels) == 2 and all(lab.is_test for lab in labels)
    refresh(app)
    assert check(client, HAM_TEXT, email="owner@example.org")["verdict"] == "ham"


def test_one_spam_label_changes_nothing(app: Flask, client: FlaskClient) -> None:
    label(app, "spam", email=EMAIL, ip=IP)
    refresh(app)
    assert check(client, HAM_TEXT)["verdict"] == "ham"


def test_as_much_ham_as_spam_is_not_reported(app: Flask, client: FlaskClient) -> None:
    label(app, "spam", email=EMAIL, times=2)
    label(app, "ham", email=EMAIL, times=2)
    refresh(app)
    answer = check(client, UNSURE_TEXT)
    # Not reported (spam is not more than ham), and not approved either (it has spam labels).
    assert answer["verdict"] == "unsure"


def test_a_spam_verdict_keeps_its_tier_and_says_why(app: Flask, client: FlaskClient) -> None:
    before = check(client, SPAM_TEXT)
    label(app, "spam", email=EMAIL, times=2)
    refresh(app)
    after = check(client, SPAM_TEXT)
    assert (after["verdict"], after["score"]) == (before["verdict"], before["score"])
    assert first_reason(after) == reported_reason(2, "e-mail address")


def test_log_only_records_the_history_verdict_and_answers_ham(make_app: Callable[..., Flask]) -> None:
    app = make_app(mode="log_only")
    label(app, "spam", email=EMAIL, times=2)
    refresh(app)
    answer = check(app.test_client(), HAM_TEXT)
    assert (answer["verdict"], answer["recorded_verdict"]) == ("ham", "spam")


# --- approved senders ------------------------------------------------------------------------

def test_an_approved_email_turns_unsure_into_ham(app: Flask, client: FlaskClient, api_key: str) -> None:
    assert check(client, UNSURE_TEXT)["verdict"] == "unsure"
    label(app, "ham", email=EMAIL, times=4)
    label(app, "ham", ip=IP, times=1)  # an IP's ham labels do not block it
    refresh(app)
    answer = check(client, UNSURE_TEXT)
    assert answer["verdict"] == "ham"
    assert answer["score"] < 0.05
    assert first_reason(answer) == approved_reason(4)
    response = akismet(client, api_key, UNSURE_TEXT)
    assert (response.get_data(as_text=True), response.headers["X-CommentGuard-Verdict"]) == ("false", "ham")


def test_an_approved_email_never_lowers_spam(app: Flask, client: FlaskClient) -> None:
    before = check(client, SPAM_TEXT)
    label(app, "ham", email=EMAIL, times=5)
    refresh(app)
    after = check(client, SPAM_TEXT)
    assert after["verdict"] == before["verdict"] == "spam"
    assert after["score"] == before["score"]
    assert all("approved" not in r["reason"] for r in after["reasons"])


def test_an_ips_ham_labels_vouch_for_nothing(app: Flask, client: FlaskClient) -> None:
    label(app, "ham", ip=IP, times=5)
    refresh(app)
    assert check(client, UNSURE_TEXT)["verdict"] == "unsure"


def test_a_spam_label_on_the_ip_blocks_the_emails_vouching(app: Flask, client: FlaskClient) -> None:
    label(app, "ham", email=EMAIL, times=3)
    label(app, "spam", ip=IP)
    refresh(app)
    assert check(client, UNSURE_TEXT)["verdict"] == "unsure"
    assert check(client, UNSURE_TEXT, ip="198.51.100.1")["verdict"] == "ham"  # from another address it vouches


def test_a_spam_label_on_the_email_blocks_its_vouching(app: Flask, client: FlaskClient) -> None:
    label(app, "ham", email=EMAIL, times=3)
    label(app, "spam", email=EMAIL)
    refresh(app)
    assert check(client, UNSURE_TEXT)["verdict"] == "unsure"


# --- what counts -----------------------------------------------------------------------------

def test_labels_of_another_site_do_not_count(app: Flask, client: FlaskClient, other_key: str) -> None:
    label(app, "spam", email=EMAIL, site=OTHER_SITE, times=3)
    refresh(app)
    assert check(client, HAM_TEXT)["verdict"] == "ham"
    other = post_json(client, "/api/v1/check", {"comment_content": HAM_TEXT, "comment_author_email": EMAIL},
                      headers=auth_headers(other_key)).get_json()
    assert other["verdict"] == "spam"


def test_test_labels_do_not_count_but_test_calls_are_judged(app: Flask, client: FlaskClient) -> None:
    label(app, "spam", email=EMAIL, times=3, is_test=True)
    refresh(app)
    assert check(client, HAM_TEXT)["verdict"] == "ham"
    label(app, "spam", email=EMAIL, times=2)
    refresh(app)
    answer = check(client, HAM_TEXT, is_test=True)
    assert (answer["verdict"], first_reason(answer)) == ("spam", reported_reason(2, "e-mail address"))


def test_labels_older_than_the_window_do_not_count(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    label(app, "spam", email=EMAIL, times=2, days_ago=91)
    label(app, "spam", email=EMAIL, times=1, days_ago=89)
    refresh(app)
    assert check(app.test_client(), HAM_TEXT)["verdict"] == "ham"
    longer = make_app(sender_history_days=120)
    refresh(longer)
    assert first_reason(check(longer.test_client(), HAM_TEXT)) == reported_reason(3, "e-mail address")


def test_forgotten_labels_stop_counting_once_the_table_is_reloaded(app: Flask, client: FlaskClient) -> None:
    ids = label(app, "spam", email=EMAIL, times=2)
    refresh(app)
    assert check(client, HAM_TEXT)["verdict"] == "spam"
    assert store_of(app).forget_feedback(ids[0])
    assert check(client, HAM_TEXT)["verdict"] == "spam"  # until the table is reloaded (30 s at most)
    refresh(app)
    assert check(client, HAM_TEXT)["verdict"] == "ham"


def test_a_report_through_the_api_counts_after_the_reload(app: Flask, client: FlaskClient, api_key: str) -> None:
    for n in range(2):
        form = {"api_key": api_key, "blog": TEST_SITE, "user_ip": IP, "comment_author_email": EMAIL,
                "comment_content": f"an earlier comment {n}"}
        assert client.post("/1.1/submit-spam", data=form).status_code == 200
    refresh(app)
    assert check(client, HAM_TEXT, ip="198.51.100.7")["verdict"] == "spam"


def test_anonymous_calls_use_no_history(make_app: Callable[..., Flask]) -> None:
    app = make_app(allow_anonymous_json=True)
    label(app, "spam", email=EMAIL, times=3)
    refresh(app)
    plain = FlaskClient(app, app.response_class)
    assert post_json(plain, "/api/v1/check", {"comment_content": HAM_TEXT,
                                              "comment_author_email": EMAIL}).get_json()["verdict"] == "ham"


# --- settings, outages, rules ----------------------------------------------------------------

def test_history_off_changes_nothing(make_app: Callable[..., Flask]) -> None:
    app = make_app(sender_history=False)
    assert get_state(app).sender_history is None
    label(app, "spam", email=EMAIL, times=3)
    assert check(app.test_client(), HAM_TEXT)["verdict"] == "ham"
    assert app.test_client().get("/readyz").get_json()["sender_history"] == {"status": "off"}


def test_the_settings_are_read_and_checked() -> None:
    assert load_settings({}).sender_history is True
    loaded = load_settings({"COMMENTGUARD_SENDER_HISTORY": "off", "COMMENTGUARD_SENDER_HISTORY_DAYS": "30"})
    assert (loaded.sender_history, loaded.sender_history_days) == (False, 30)
    for bad in ("0", "3651", "ninety"):
        with pytest.raises(SettingsError, match="COMMENTGUARD_SENDER_HISTORY_DAYS"):
            load_settings({"COMMENTGUARD_SENDER_HISTORY_DAYS": bad})


def test_readyz_shows_the_tables_age_and_size(app: Flask, client: FlaskClient) -> None:
    label(app, "spam", email=EMAIL, ip=IP, times=2)
    label(app, "ham", email="other@example.org", times=1)  # one label: nothing a rule can use, not held
    refresh(app)
    status = client.get("/readyz").get_json()["sender_history"]
    assert status["status"] == "loaded" and status["senders"] == 2 and status["days"] == 90
    assert status["load_seconds"] >= 0
    assert status["loaded_at"].endswith("+00:00")


def test_a_slow_load_stretches_the_interval(app: Flask) -> None:
    history = get_state(app).sender_history
    history.load_seconds = 0.2
    assert history.next_wait() == 30.0
    history.load_seconds = 3.0  # at most 5% of the thread's time loading
    assert history.next_wait() == 60.0


def test_a_store_that_fails_leaves_the_last_table_serving(app: Flask, client: FlaskClient,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    label(app, "spam", email=EMAIL, times=2)
    refresh(app)
    store = store_of(app)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError(f"could not connect to {EMAIL}")

    monkeypatch.setattr(store, "sender_label_counts", down)
    history = get_state(app).sender_history
    with caplog.at_level(logging.WARNING, logger="service.sender_history"):
        assert not history.refresh() and not history.refresh()
    warnings = [r for r in caplog.records if r.name == "service.sender_history"]
    assert len(warnings) == 1  # once, until it loads again
    assert "joe" not in warnings[0].getMessage().lower()  # the driver's words are not logged
    assert check(client, HAM_TEXT)["verdict"] == "spam"  # the last table serves
    assert client.get("/readyz").get_json()["sender_history"]["error"] == "StoreUnavailableError"
    monkeypatch.undo()
    assert history.refresh() and "error" not in history.status()


def test_a_store_down_before_the_first_load_answers_checks_without_history(
        settings: Settings, scorer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(str(settings.database_url), secret=TEST_SECRET_KEY.encode()) as store:
        monkeypatch.setattr(store, "sender_label_counts", lambda *a, **k: (_ for _ in ()).throw(
            StoreUnavailableError("down")))
        history = SenderHistory(store, 90)
        assert not history.refresh()
        verdict = Verdict("unsure", 0.3)
        comment = Comment(comment_content="x", comment_author_email=EMAIL)
        assert history.apply(comment, verdict, Thresholds(0.2, 0.6, 0.9), 1) is verdict
        assert history.status()["loaded_at"] is None


def test_the_fixed_rules_win_over_history(app: Flask, client: FlaskClient, api_key: str) -> None:
    label(app, "spam", email=EMAIL, times=2)
    label(app, "ham", email="friend@example.org", times=2)
    refresh(app)
    admin = akismet(client, api_key, HAM_TEXT, user_role="administrator")
    assert (admin.get_data(as_text=True), admin.headers["X-CommentGuard-Verdict"]) == ("false", "ham")
    assert check(client, HAM_TEXT, user_role="administrator")["verdict"] == "ham"
    honeypot = check(client, UNSURE_TEXT, email="friend@example.org", honeypot_field_name="hp", hp="filled")
    assert (honeypot["verdict"], first_reason(honeypot)) == ("spam", "a hidden honeypot field was filled in")
    test_value = akismet(client, api_key, UNSURE_TEXT, email="friend@example.org",
                         comment_author="akismet-guaranteed-spam")
    assert test_value.get_data(as_text=True) == "true"


def test_an_approval_settles_the_models_doubt_only_and_a_report_outweighs_the_upstream(
        make_app: Callable[..., Flask]) -> None:
    """Found by a probe: an upstream's ham ('always' mode: one step) brought a comment the model
    called spam (0.98) to unsure, and the approval then published it: an approval overruled a
    confident verdict. An approval acts only where the model itself was unsure; a report stands
    whatever the upstream answered."""
    from tests.test_upstream import BrokenUpstream, upstream_app

    upstream = BrokenUpstream()
    try:
        app = upstream_app(make_app, upstream.url)
        client = app.test_client()
        label(app, "ham", email=EMAIL, times=2)
        label(app, "spam", email="reported@example.org", times=2)
        refresh(app)
        upstream.check = "false"
        spam = check(client, SPAM_TEXT)
        assert (spam["verdict"], spam["reasons"][0]["reason"]) == ("unsure", "upstream: ham")
        reported = check(client, HAM_TEXT, email="reported@example.org")
        assert (reported["verdict"], first_reason(reported)) == ("spam", reported_reason(2, "e-mail address"))
        upstream.check = "true"  # the upstream says spam to a comment the model is unsure of: spam, approved or not
        assert check(client, UNSURE_TEXT)["verdict"] == "spam"
    finally:
        upstream.close()


# --- the policy and the store's counts -------------------------------------------------------

def test_judge_keeps_discard_and_the_spam_score() -> None:
    thresholds = Thresholds(0.2, 0.6, 0.9)
    discard = judge(Verdict("discard", 0.95), thresholds, (2, 0), None)
    assert (discard.tier, discard.score) == ("discard", 0.95)
    raised = judge(Verdict("unsure", 0.3), thresholds, (3, 1), (2, 0))
    assert (raised.tier, raised.score) == ("spam", 0.6)
    assert [r.text for r in raised.reasons] == [reported_reason(3, "e-mail address"), reported_reason(2, "IP address")]


def test_a_sender_is_one_digest_in_clear_or_pseudonymised(tmp_path: Path, settings: Settings) -> None:
    privacy = Privacy(SECRET)
    for value, email in (("Joe@Example.org", True), ("2001:DB8::42", False), ("::ffff:203.0.113.7", False)):
        pseudonym = privacy.pseudonym(value, email=email)
        assert privacy.sender_digest(value, email=email) == bytes.fromhex(pseudonym[5:37])
        assert privacy.sender_digest(pseudonym, email=email) == privacy.sender_digest(value, email=email)
    assert privacy.sender_digest("2001:db8:0:0:0:0:0:42") == privacy.sender_digest("2001:DB8::42")
    assert privacy.sender_digest(" ") == b""
    # One label stored in clear (store_personal_data) and one as a pseudonym count together.
    url = str(settings.database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open_store(url, secret=SECRET) as store:
        site_id = store.create_key(TEST_SITE)[1].site_id
    for keep in (True, False):
        with open_store(url, secret=SECRET, store_personal_data=keep) as store:
            store.add_feedback(FeedbackRecord(label="spam", site_id=site_id, comment=Comment(
                comment_content=f"kept {keep}", comment_author_email="JOE@example.org", user_ip="2001:DB8::42")))
    with open_store(url, secret=SECRET) as store:
        counts = store.sender_label_counts(90)
        assert counts.emails[site_id] == {store.sender_digest("joe@example.org", email=True): (2, 0)}
        assert counts.ips[site_id] == {store.sender_digest("2001:db8::42"): (2, 0)}


def test_the_check_command_applies_history_with_email(app: Flask, settings: Settings,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from commentguard.cli import cli

    label(app, "spam", email=EMAIL, times=2)
    monkeypatch.setenv("COMMENTGUARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COMMENTGUARD_MODEL_PATH", str(settings.model_path))
    monkeypatch.setenv("COMMENTGUARD_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("COMMENTGUARD_THRESHOLD_UNSURE", "0.05")
    if settings.database_url and settings.database_url.startswith("postgresql"):
        monkeypatch.setenv("COMMENTGUARD_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(cli, ["check", HAM_TEXT, "--site", TEST_SITE, "--email", EMAIL])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["verdict"], out["reasons"][0]["reason"]) == ("spam", reported_reason(2, "e-mail address"))
    plain = CliRunner().invoke(cli, ["check", HAM_TEXT, "--site", TEST_SITE, "--email", "new@example.org"])
    assert json.loads(plain.stdout)["verdict"] == "ham"
