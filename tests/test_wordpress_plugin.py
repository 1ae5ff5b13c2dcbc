"""Real WordPress and its real Akismet plugin against a live ``commentguard serve``.

A throwaway WordPress site (its own MariaDB database, table prefix and
``wp-config.php``; :mod:`tests.clients.wordpress.site`) is installed with
WordPress's ``wp_install()``, Akismet is activated with ``activate_plugin()``,
and ``deploy/wordpress/commentguard-akismet.php`` (the must-use plugin a site
owner drops in) sends the plugin's calls to the server named by
``COMMENTGUARD_URL``. Every step runs WordPress's own code from PHP CLI
(``tests/clients/wordpress/driver.php``): a visitor's comment goes through
``wp_handle_comment_submission()`` / ``wp_new_comment()`` and the plugin's
``preprocess_comment`` hook, a moderator's Spam / Not Spam through
``wp_spam_comment()`` / ``wp_unspam_comment()`` as wp-admin's links call them.
What the plugin did is read back from WordPress (comment status and meta), what
CommentGuard understood from its store and ``commentguard feedback list``.

The server uses the session's tiny test model (``conftest.model_dir``): the
texts below get ``spam``, ``discard``, ``unsure`` and ``ham`` from it.

Runs when ``COMMENTGUARD_TEST_WORDPRESS=1`` (CI sets it); then php with mysqli,
WordPress (``/usr/share/wordpress`` or ``COMMENTGUARD_WORDPRESS_DIR``) and
MariaDB (root without a password on 127.0.0.1:3306, or
``COMMENTGUARD_TEST_MARIADB=mysql://user:password@host:port``) must be
there, or the tests fail. ``COMMENTGUARD_TEST_PORTS=LOW-HIGH`` keeps the
servers' ports in a range (any free port otherwise).
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from model.comment import Comment
from store import CheckRecord, current_month, open_store
from service.settings import load_or_create_secret_key
from tests.clients.wordpress.site import HOME, WordPressSite
from tests.conftest import REPO, LiveServer, free_port, start_live_server

ENABLE_ENV = "COMMENTGUARD_TEST_WORDPRESS"
PORTS_ENV = "COMMENTGUARD_TEST_PORTS"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get(ENABLE_ENV) != "1",
                       reason=f"{ENABLE_ENV}=1 is not set: these tests need php, WordPress and MariaDB (CI sets it)"),
]

SPAM_TEXT = "Buy cheap viagra online now!!! click http://bit.ly/cheap-pills"
UNSURE_TEXT = "Great post, check my site for more tips http://example.com"
QUESTION = "Does the second example also work with Python 3.12, or do I need a newer build flag?"
PERMALINK = f"{HOME}/?p=1"  # wp_install()'s "Hello world!" post, open for comments
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


# --- the server and the site ------------------------------------------------------------------

def port_for_server() -> int:
    """A free port, from ``COMMENTGUARD_TEST_PORTS`` (``LOW-HIGH``) when it is set."""
    span = os.environ.get(PORTS_ENV, "")
    if not span:
        return free_port()
    low, _, high = span.partition("-")
    for port in range(int(low), int(high) + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS_ENV}={span}")


class Service:
    """The CommentGuard server the site talks to; stopped and started again on the same data."""

    def __init__(self, data_dir: Path, model_dir: Path) -> None:
        self.data_dir, self.model_dir = data_dir, model_dir
        self.server: Optional[LiveServer] = None
        self.key = ""
        self.start()

    def start(self, env: Optional[dict[str, str]] = None) -> LiveServer:
        self.server = start_live_server(self.data_dir, self.model_dir, port=port_for_server(), env=env)
        self.key = self.key or self.server.key  # the site keeps the key it was given first
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def store_secret(self) -> bytes:
        return load_or_create_secret_key(self.data_dir).encode()

    def database_url(self) -> str:
        assert self.server is not None
        return str(self.server.settings.database_url)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("wp-commentguard") / "var", model_dir)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, service: Service) -> Iterator[WordPressSite]:
    """The installed site with Akismet active, pointed at :func:`service`, the key entered."""
    wp = WordPressSite(tmp_path_factory.mktemp("wp-site"))
    wp.point_at(service.url)
    try:
        installed = wp.create()
        assert installed["activated"] is True and installed["active"] == ["akismet/akismet.php"]
        wp.run("options", options={"wordpress_api_key": service.key})
        yield wp
    finally:
        wp.drop()


@pytest.fixture
def settings_reset(site: WordPressSite) -> Iterator[None]:
    """Discussion and Akismet settings back to WordPress's defaults after a test changes them."""
    yield
    site.run("options", options={"akismet_strictness": None, "comment_previously_approved": "1",
                                 "moderation_notify": "1"})


# --- helpers ----------------------------------------------------------------------------------

def unique(text: str) -> str:
    """``text`` made unique to one test run (WordPress refuses duplicate comments)."""
    return f"{text} [{secrets.token_hex(3)}]"


_visitors = itertools.count(1)


def visitor_ip() -> str:
    """A new address for each comment: WordPress refuses a second comment from one address
    (or one e-mail) within 15 seconds as a flood."""
    n = next(_visitors)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


def comment_form(content: str, *, author: str = "Ann Reader", email: str = "",
                 url: str = "", ip: Optional[str] = None) -> dict[str, Any]:
    """A browser posting the comment form of the "Hello world!" post, as the web server hands it to PHP."""
    email = email or f"reader{next(_visitors)}@reader.example"
    return {
        "server": {
            "REQUEST_METHOD": "POST", "REQUEST_URI": "/wp-comments-post.php",
            "SCRIPT_NAME": "/wp-comments-post.php", "PHP_SELF": "/wp-comments-post.php",
            "REMOTE_ADDR": ip or visitor_ip(), "HTTP_USER_AGENT": BROWSER, "HTTP_REFERER": PERMALINK,
            "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.8", "HTTP_ACCEPT": "text/html",
            "HTTP_COOKIE": "wordpress_test_cookie=WP%20Cookie%20check",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
        },
        "post": {"comment": content, "author": author, "email": email, "url": url,
                 "submit": "Post Comment", "comment_post_ID": "1", "comment_parent": "0"},
    }


def post_comment(site: WordPressSite, content: str, **form: Any) -> dict[str, Any]:
    as_admin = form.pop("as_admin", False)
    return site.run("comment", request=comment_form(content, **form), as_admin=as_admin)


def moderate(site: WordPressSite, comment_id: int, to: str) -> dict[str, Any]:
    """A moderator's click on Spam / Not Spam / Approve / Unapprove / Trash / Restore / Check for
    Spam under the comment (wp-admin/comment.php, edit-comments.php)."""
    action = {"spam": "spamcomment", "unspam": "unspamcomment", "approve": "approvecomment",
              "hold": "unapprovecomment", "trash": "trashcomment", "untrash": "untrashcomment",
              "recheck": "akismet_recheck_queue"}[to]
    request = {"get": {"action": action, "c": str(comment_id)},
               "server": {"REQUEST_URI": f"/wp-admin/comment.php?action={action}&c={comment_id}",
                          "SCRIPT_NAME": "/wp-admin/comment.php", "PHP_SELF": "/wp-admin/comment.php"}}
    return site.run("moderate", request=request, comment_id=comment_id, to=to)


def events(state: dict[str, Any]) -> list[str]:
    """The plugin's history of a comment (``akismet_history``), oldest first."""
    history = sorted(state["meta"].get("akismet_history", []), key=lambda e: e["time"])
    return [e["event"] for e in history]


def checks_of(service: Service, content: str, *, count: int = 1) -> list[CheckRecord]:
    """The checks CommentGuard logged for a comment text (the log is written within ~0.2 s)."""
    with open_store(service.database_url(), secret=service.store_secret()) as store:
        deadline = time.monotonic() + 10
        while True:
            rows = store.database.read(lambda tx: tx.fetchall(
                "SELECT id FROM checks WHERE comment_content = ? ORDER BY created", (content,)))
            if len(rows) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        found = [store.get_check(r["id"]) for r in rows]
    return [c for c in found if c is not None]


def pseudonym(service: Service, ip: str) -> str:
    """How the store keeps an IP address (a keyed hash, the default)."""
    with open_store(service.database_url(), secret=service.store_secret()) as store:
        return store.minimised(Comment(comment_content="x", user_ip=ip)).user_ip


def cli(service: Service, *args: str) -> str:
    """``commentguard ARGS`` on the server's data; its standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTGUARD_")}
    env["COMMENTGUARD_DATA_DIR"] = str(service.data_dir)
    return subprocess.run([sys.executable, "-m", "commentguard", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True).stdout


def feedback_list(service: Service) -> list[dict[str, Any]]:
    """``commentguard feedback list --json`` on the server's data."""
    return json.loads(cli(service, "feedback", "list", "--json"))


@contextlib.contextmanager
def restarted(site: WordPressSite, service: Service, *, env: Optional[dict[str, str]] = None,
              down: bool = False) -> Iterator[None]:
    """For the block, CommentGuard stopped (``down``) or running with ``env``; after it, running
    as the module started it (the same data), and the site pointed at it."""
    service.stop()
    if not down:
        service.start(env=env)
        site.point_at(service.url)
    try:
        yield
    finally:
        service.stop()
        service.start()
        site.point_at(service.url)


def assert_plugin_logged_nothing(site: WordPressSite) -> None:
    """No PHP warning or notice came from the Akismet plugin or the must-use plugin."""
    lines = [line for line in site.debug_log().splitlines()
             if "plugins/akismet/" in line or "commentguard-akismet" in line]
    assert lines == []


# --- the tests --------------------------------------------------------------------------------

def test_site_runs_the_plugin_through_the_mu_plugin(site: WordPressSite) -> None:
    state = site.run("plugin-state")
    assert state == {"active": True, "mu_plugins": ["commentguard-akismet.php"], "akismet_init": True,
                     "redirect": True}


def test_the_mu_plugin_maps_only_akismets_urls(site: WordPressSite) -> None:
    base = "https://cg.example.org/spam/"
    cases = [
        ["https://rest.akismet.com/1.1/comment-check", "rest.akismet.com", base],
        ["http://abcdef012345.rest.akismet.com/1.2/key-sites?month=2026-11", "", "http://10.0.0.5:8000"],
        ["http://192.0.2.1/1.1/verify-key", "rest.akismet.com", base],
        ["http://192.0.2.1/1.1/verify-key", "", base],
        ["https://api.wordpress.org/core/version-check/1.7/", "", base],
        ["https://rest.akismet.com/1.1/comment-check", "", "https://rest.akismet.com"],
    ]
    assert site.run("mu-target", cases=cases) == [
        {"url": "https://cg.example.org/spam/1.1/comment-check", "host": "cg.example.org", "label": ""},
        {"url": "http://10.0.0.5:8000/1.2/key-sites?month=2026-11", "host": "10.0.0.5:8000",
         "label": "abcdef012345"},
        {"url": "https://cg.example.org/spam/1.1/verify-key", "host": "cg.example.org", "label": ""},
        None, None, None,
    ]


def test_key_verification(site: WordPressSite, service: Service) -> None:
    good = site.run("verify-key", key=service.key)
    assert good["verify_key"] == "valid" and good["body"] == "valid"
    assert "x-akismet-debug-help" not in good["headers"]
    # A key pasted in capitals: the plugin keeps it so, and it is the same key.
    assert site.run("verify-key", key=service.key.upper())["verify_key"] == "valid"
    wrong = site.run("verify-key", key="0123456789ab")
    assert wrong["verify_key"] == "invalid" and wrong["body"] == "invalid"
    assert wrong["headers"]["x-akismet-debug-help"]
    # The plugin's connectivity check pins calls to Akismet's addresses (Host: rest.akismet.com);
    # the mu-plugin sends those here too (192.0.2.1 is unroutable: the call would fail otherwise).
    pinned = site.run("verify-key", key=service.key, ip="192.0.2.1")
    assert pinned["verify_key"] == "valid" and pinned["headers"]["server"] == "gunicorn"
    assert_plugin_logged_nothing(site)


def test_the_settings_page_finds_the_server_reachable(site: WordPressSite) -> None:
    assert site.run("connectivity") == {"connected": True}


def test_the_settings_page_saves_keys(site: WordPressSite, service: Service) -> None:
    # A site owner replaces the configured key (here one revoked meanwhile) in Settings > Akismet.
    made = json.loads(cli(service, "keys", "create", "--site", HOME, "--json"))
    cli(service, "keys", "revoke", str(made["id"]))
    try:
        site.run("options", options={"wordpress_api_key": made["key"]})
        # The plugin verifies the new key as `key`, with the configured (revoked) one as `api_key`.
        saved = site.run("save-key", key=service.key)
        assert saved["notice"] == "new-key-valid" and saved["saved_key"] == service.key
        assert saved["account"]["status"] == "active"  # the account box of the settings page
        # A wrong key is refused, and the good one configured stays.
        refused = site.run("save-key", key="0123456789ab")
        assert refused["notice"] == "new-key-invalid" and refused["saved_key"] == service.key
    finally:
        site.run("options", options={"wordpress_api_key": service.key})
    assert_plugin_logged_nothing(site)


def test_spam_goes_to_the_spam_queue(site: WordPressSite, service: Service) -> None:
    content, ip = unique(SPAM_TEXT), visitor_ip()
    state = post_comment(site, content, author="Best Deals", email="deals@offers.example", ip=ip)
    (check,) = checks_of(service, content)
    assert check.tier == "spam" and check.surface == "akismet"
    assert state["approved"] == "spam"
    meta = state["meta"]
    assert meta["akismet_result"] == ["true"]
    assert events(state) == ["check-spam"]
    assert "akismet_pro_tip" not in meta and "akismet_error" not in meta
    (submitted,) = meta["akismet_as_submitted"]  # what the plugin will send again with a report
    assert submitted["comment_content"] == content and submitted["user_ip"] == ip
    assert submitted["blog"] == HOME and submitted["permalink"] == PERMALINK
    assert_plugin_logged_nothing(site)


@pytest.mark.usefixtures("settings_reset")
def test_discard_follows_the_plugins_setting(site: WordPressSite, service: Service) -> None:
    # Settings > Akismet: "Silently discard the worst and most pervasive spam" off (kept in Spam)...
    kept = unique(SPAM_TEXT)
    site.run("options", options={"akismet_strictness": "0"})
    state = post_comment(site, kept, author="Best Deals", url="http://bit.ly/x")
    (check,) = checks_of(service, kept)
    assert check.tier == "discard"
    assert state["approved"] == "spam" and state["meta"]["akismet_pro_tip"] == ["discard"]
    assert events(state) == ["check-spam"]
    # ... and on: the plugin redirects the visitor and ends the request; nothing is stored.
    dropped = unique(SPAM_TEXT)
    site.run("options", options={"akismet_strictness": "1"})
    result = post_comment(site, dropped, author="Best Deals", url="http://bit.ly/x")
    assert result == {"exited": True, "error": None}
    assert site.run("find-comments", content=dropped) == []
    (check,) = checks_of(service, dropped)
    assert check.tier == "discard"
    assert_plugin_logged_nothing(site)


@pytest.mark.usefixtures("settings_reset")
def test_a_question_follows_the_sites_moderation_settings(site: WordPressSite, service: Service) -> None:
    # WordPress's default: a first-time commenter waits for approval ("previously approved").
    held = unique(QUESTION)
    state = post_comment(site, held, author="Ben Asker", email="ben@asker.example")
    (check,) = checks_of(service, held)
    assert check.tier == "ham"
    assert state["approved"] == "0"
    assert state["meta"]["akismet_result"] == ["false"] and events(state) == ["check-ham"]
    # With that setting off, the same kind of comment is published at once.
    site.run("options", options={"comment_previously_approved": "0"})
    published = unique(QUESTION)
    state = post_comment(site, published, author="Cy Asker", email="cy@asker.example")
    (check,) = checks_of(service, published)
    assert check.tier == "ham"
    assert state["approved"] == "1"
    assert state["meta"]["akismet_result"] == ["false"] and events(state) == ["check-ham"]
    assert_plugin_logged_nothing(site)


def test_the_check_carries_what_wordpress_sent(site: WordPressSite, service: Service) -> None:
    content, ip = unique(QUESTION), visitor_ip()
    post_comment(site, content, author="Dee Fields", email="dee@fields.example", url="https://dee.example", ip=ip)
    (check,) = checks_of(service, content)
    c = check.comment
    hashed_ip = pseudonym(service, ip)
    assert (c.blog, c.permalink, c.comment_type, c.referrer) == (HOME, PERMALINK, "comment", PERMALINK)
    assert (c.user_agent, c.user_ip) == (BROWSER, hashed_ip)
    assert (c.comment_author, c.comment_author_url) == ("Dee Fields", "https://dee.example")
    assert c.comment_author_email.endswith("@fields.example") and c.comment_author_email.startswith("hmac:")
    assert (c.blog_lang, c.blog_charset, c.comment_parent) == ("en_US", "UTF-8", "0")
    assert c.comment_post_modified_gmt  # the post's last change, "YYYY-MM-DD HH:MM:SS"
    # The server variables and form fields the plugin adds are kept (addresses as keyed hashes).
    extra = c.extra
    assert extra["HTTP_USER_AGENT"] == BROWSER and extra["HTTP_ACCEPT_LANGUAGE"] == "en-GB,en;q=0.8"
    assert extra["HTTP_HOST"] == "blog.wordpress.test" and extra["REQUEST_URI"] == "/wp-comments-post.php"
    assert extra["POST_comment"] == content and extra["POST_author"] == "Dee Fields"
    assert extra["POST_comment_post_ID"] == "1" and extra["comment_post_ID"] == "1"
    assert extra["REMOTE_ADDR"] == hashed_ip and extra["comment_author_IP"] == hashed_ip
    assert not any("COOKIE" in name.upper() for name in extra)  # the plugin never sends cookies
    assert_plugin_logged_nothing(site)


def test_an_administrators_comment_is_ham(site: WordPressSite, service: Service) -> None:
    # The plugin sends the commenter's roles; Akismet's rule: an administrator is never spam.
    content = unique(SPAM_TEXT)
    state = post_comment(site, content, author="admin", email="admin@example.org", as_admin=True)
    (check,) = checks_of(service, content)
    assert check.comment.user_role == "administrator" and check.tier == "ham"
    assert state["approved"] == "1" and state["meta"]["akismet_result"] == ["false"]
    assert_plugin_logged_nothing(site)


def test_moderator_reports_become_feedback(site: WordPressSite, service: Service) -> None:
    content = unique(SPAM_TEXT)
    state = post_comment(site, content, author="Ed Mistaken", email="ed@mistaken.example")
    comment_id = state["comment_id"]
    (check,) = checks_of(service, content)
    assert state["approved"] == "spam" and check.tier == "spam"
    before = {row["id"] for row in feedback_list(service)}

    unspammed = moderate(site, comment_id, "unspam")  # Not Spam: the plugin sends submit-ham
    assert unspammed["changed"] is True and unspammed["comment"]["approved"] == "0"
    assert unspammed["comment"]["meta"]["akismet_user_result"] == ["false"]
    spammed = moderate(site, comment_id, "spam")  # Spam again: submit-spam
    assert spammed["changed"] is True and spammed["comment"]["approved"] == "spam"
    assert spammed["comment"]["meta"]["akismet_user_result"] == ["true"]
    assert spammed["comment"]["meta"]["akismet_user"] == ["admin"]
    assert events(spammed["comment"]) == ["check-spam", "report-ham", "report-spam"]

    new = [row for row in feedback_list(service) if row["id"] not in before]
    assert [(r["label"], r["source"], r["check_id"]) for r in new] == [
        ("ham", "akismet", check.id), ("spam", "akismet", check.id)]
    with open_store(service.database_url(), secret=service.store_secret()) as store:
        records = {f.id: f for f in store.list_feedback()}
        usage = store.usage(check.key_id or 0, current_month())
    for row in new:
        record = records[row["id"]]
        assert record.reporter == "admin" and record.comment.comment_content == content
    # The ham report corrected a spam verdict; the spam report confirmed it.
    assert usage["false_positives"] >= 1
    assert_plugin_logged_nothing(site)


@pytest.mark.usefixtures("settings_reset")
def test_while_the_server_is_down_comments_wait_for_a_recheck(site: WordPressSite, service: Service) -> None:
    site.run("options", options={"comment_previously_approved": "0"})  # a ham would be published at once
    spam, question = unique(SPAM_TEXT), unique(QUESTION)
    with restarted(site, service, down=True):
        spam_state = post_comment(site, spam, author="Best Deals")
        question_state = post_comment(site, question, author="Fay Patient", email="fay@patient.example")
        cron = site.run("cron")
    # Neither is lost, neither is published: both wait in the moderation queue, marked for a recheck.
    for state in (spam_state, question_state):
        assert state["approved"] == "0"
        assert "akismet_result" not in state["meta"] and state["meta"]["akismet_error"]
        assert events(state) == ["check-error"]
        assert "commentguard_verdict" not in state["meta"]
    assert 0 < cron["recheck"] - cron["now"] <= 1200  # the plugin's retry, 20 minutes on
    assert checks_of(service, spam, count=0) == []

    site.run("recheck")  # WP-Cron's run of that event, once the server is back
    spam_after = site.run("comment-state", comment_id=spam_state["comment_id"])
    question_after = site.run("comment-state", comment_id=question_state["comment_id"])
    assert spam_after["approved"] == "spam" and events(spam_after) == ["check-error", "cron-retry-spam"]
    assert question_after["approved"] == "1" and events(question_after) == ["check-error", "cron-retry-ham"]
    for state in (spam_after, question_after):
        assert "akismet_error" not in state["meta"]
    assert spam_after["meta"]["akismet_result"] == ["true"]
    assert question_after["meta"]["akismet_result"] == ["false"]
    (spam_check,) = checks_of(service, spam)
    (question_check,) = checks_of(service, question)
    assert (spam_check.tier, question_check.tier) == ("spam", "ham")
    assert spam_check.comment.recheck_reason == "retry" == question_check.comment.recheck_reason
    assert_plugin_logged_nothing(site)


def rest_comment(site: WordPressSite, content: str, *, author: str, email: str,
                 as_admin: bool = False) -> dict[str, Any]:
    """A visitor's comment through the REST API (POST /wp/v2/comments), or (``as_admin``) the
    logged-in administrator's, whose name and address WordPress takes from the account."""
    request = comment_form(content, author=author, email=email)
    request["post"] = ({"post": "1", "content": content} if as_admin else
                       {"post": "1", "author_name": author, "author_email": email, "content": content})
    return site.run("rest-comment", request=request, as_admin=as_admin)


@pytest.mark.usefixtures("settings_reset")
def test_while_the_server_is_down_rest_and_unsure_comments_wait_too(site: WordPressSite, service: Service) -> None:
    # The plugin holds a form post whose check failed, but published a REST one (its check runs
    # after WordPress's approval filter) and then dropped it from its retry, which takes only
    # Pending comments. An unsure verdict on the retry moved a comment to Spam.
    site.run("options", options={"comment_previously_approved": "0"})  # a ham would be published at once
    question, unsure = unique(QUESTION), unique(UNSURE_TEXT)
    with restarted(site, service, down=True):
        rest_state = rest_comment(site, question, author="Rae Rest", email="rae@rest.example")
        unsure_state = post_comment(site, unsure, author="Sam Waiting")
    for state in (rest_state, unsure_state):
        assert state["approved"] == "0" and events(state) == ["check-error"]
    site.run("recheck")
    rest_after = site.run("comment-state", comment_id=rest_state["comment_id"])
    unsure_after = site.run("comment-state", comment_id=unsure_state["comment_id"])
    assert rest_after["approved"] == "1" and events(rest_after) == ["check-error", "cron-retry-ham"]
    assert unsure_after["approved"] == "0" and "commentguard_held_unsure" in unsure_after["meta"]
    assert [c.tier for c in checks_of(service, unsure)] == ["unsure"]
    assert_plugin_logged_nothing(site)


def test_an_unsure_verdict_is_held_for_moderation(site: WordPressSite, service: Service) -> None:
    # `unsure` is answered `true` (COMMENTGUARD_AKISMET_UNSURE_AS_SPAM's default), which alone
    # would put the comment in Spam; the must-use plugin reads the verdict header and holds it.
    content = unique(UNSURE_TEXT)
    state = post_comment(site, content, author="Sam")
    (check,) = checks_of(service, content)
    assert check.tier == "unsure"
    assert state["approved"] == "0" and state["meta"]["akismet_result"] == ["true"]
    assert events(state) == ["check-spam", "status-changed-0"]
    assert "commentguard_held_unsure" in state["meta"]
    assert_plugin_logged_nothing(site)


def test_moderators_see_the_verdict_and_its_reasons(site: WordPressSite, service: Service) -> None:
    content = unique(UNSURE_TEXT)
    state = post_comment(site, content, author="Sam Explained")
    (check,) = checks_of(service, content)
    (kept,) = state["meta"]["commentguard_verdict"]
    assert kept["verdict"] == check.tier == "unsure" and kept["check_id"] == check.id
    assert kept["reasons"] == list(check.reasons) and kept["reasons"]
    assert abs(kept["score"] - check.score) < 1e-6 and kept["enforced"] is True

    shown = site.run("admin-comment-text", comment_id=state["comment_id"])
    visitors_see = site.run("comment-text", comment_id=state["comment_id"])
    assert "CommentGuard" not in visitors_see and content.split(" http")[0] in visitors_see
    line = f"CommentGuard: unsure (score {check.score:.2f}): " + "; ".join(map(esc_html, check.reasons))
    assert shown == f'{visitors_see}\n<p class="commentguard-verdict"><small>{line}</small></p>'


def test_in_log_only_mode_moderators_see_the_recorded_verdict(site: WordPressSite, service: Service) -> None:
    with restarted(site, service, env={"COMMENTGUARD_MODE": "log_only"}):
        content = unique(SPAM_TEXT)
        state = post_comment(site, content, author="Logged Only")
        shown = site.run("admin-comment-text", comment_id=state["comment_id"])
    (check,) = checks_of(service, content)
    # Answered `false`: WordPress's own rules decide (a first comment waits for approval), and
    # nothing is held by the must-use plugin, yet the moderator sees what would have happened.
    assert check.tier == "spam" and state["meta"]["akismet_result"] == ["false"]
    assert state["approved"] == "0" and "commentguard_held_unsure" not in state["meta"]
    (kept,) = state["meta"]["commentguard_verdict"]
    assert kept["verdict"] == "spam" and kept["enforced"] is False
    assert f"CommentGuard: spam (score {check.score:.2f}), log-only: " in shown


def esc_html(text: str) -> str:
    """What WordPress's ``esc_html`` makes of plain text."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#039;"))


def test_a_spam_verdict_is_not_held(site: WordPressSite, service: Service) -> None:
    # Holding is for `unsure` only: a comment after a held one goes to Spam as before.
    post_comment(site, unique(UNSURE_TEXT), author="Sam")
    content = unique(SPAM_TEXT)
    state = post_comment(site, content, author="Best Deals")
    (check,) = checks_of(service, content)
    assert check.tier == "spam" and state["approved"] == "spam"
    assert "commentguard_held_unsure" not in state["meta"]
    assert [m["verdict"] for m in state["meta"]["commentguard_verdict"]] == ["spam"]


def test_approving_a_held_comment_reports_it_as_ham(site: WordPressSite, service: Service) -> None:
    content = unique(UNSURE_TEXT)
    held = post_comment(site, content, author="Sam Approved", email="sam@approved.example")
    (check,) = checks_of(service, content)
    before = {row["id"] for row in feedback_list(service)}

    approved = moderate(site, held["comment_id"], "approve")
    assert approved["changed"] is True and approved["comment"]["approved"] == "1"
    assert approved["comment"]["meta"]["akismet_user_result"] == ["false"]
    assert "commentguard_held_unsure" not in approved["comment"]["meta"]
    new = [row for row in feedback_list(service) if row["id"] not in before]
    assert [(r["label"], r["source"], r["check_id"]) for r in new] == [("ham", "akismet", check.id)]
    with open_store(service.database_url(), secret=service.store_secret()) as store:
        (record,) = [f for f in store.list_feedback() if f.id == new[0]["id"]]
    assert record.reporter == "admin" and record.comment.comment_content == content

    # One decision, one report: taking it back to Pending and approving again sends nothing.
    assert moderate(site, held["comment_id"], "hold")["comment"]["approved"] == "0"
    assert moderate(site, held["comment_id"], "approve")["comment"]["approved"] == "1"
    assert [row for row in feedback_list(service) if row["id"] not in before] == new
    assert_plugin_logged_nothing(site)


def test_a_held_comment_marked_spam_is_reported_once(site: WordPressSite, service: Service) -> None:
    content = unique(UNSURE_TEXT)
    held = post_comment(site, content, author="Sam Spammed", email="sam@spammed.example")
    (check,) = checks_of(service, content)
    before = {row["id"] for row in feedback_list(service)}
    spammed = moderate(site, held["comment_id"], "spam")  # the plugin's own report: submit-spam
    assert spammed["comment"]["approved"] == "spam"
    new = [row for row in feedback_list(service) if row["id"] not in before]
    assert [(r["label"], r["check_id"]) for r in new] == [("spam", check.id)]


def test_an_unsure_comment_through_the_rest_api_is_held(site: WordPressSite, service: Service) -> None:
    content = unique(UNSURE_TEXT)
    state = rest_comment(site, content, author="Rest Sam", email="rest@sam.example")
    (check,) = checks_of(service, content)
    assert check.tier == "unsure"
    assert state["approved"] == "0" and state["meta"]["akismet_result"] == ["true"]
    assert "commentguard_held_unsure" in state["meta"]


def new_feedback(service: Service, before: set[int]) -> list[tuple[str, Optional[str]]]:
    """(label, check id) of the feedback stored since ``before`` (the ids listed then)."""
    return [(r["label"], r["check_id"]) for r in feedback_list(service) if r["id"] not in before]


def hold_one(site: WordPressSite, service: Service, author: str) -> tuple[int, CheckRecord, set[int]]:
    """An unsure comment, held for moderation: its id, CommentGuard's check of it, and the ids of
    the feedback stored so far."""
    content = unique(UNSURE_TEXT)
    held = post_comment(site, content, author=author, email=f"{author.split()[-1].lower()}@held.example")
    assert held["approved"] == "0"
    (check,) = checks_of(service, content)
    return held["comment_id"], check, {row["id"] for row in feedback_list(service)}


def test_a_held_comment_approved_after_15_days_is_still_reported(site: WordPressSite, service: Service) -> None:
    # The plugin deletes its copy of the checked comment after 15 days; its late report then had
    # no user_ip, which the server refuses, and nothing was learned.
    comment_id, check, before = hold_one(site, service, "Sam Late")
    assert site.run("delete-comment-meta", comment_id=comment_id, key="akismet_as_submitted") is True
    assert moderate(site, comment_id, "approve")["comment"]["approved"] == "1"
    assert new_feedback(service, before) == [("ham", check.id)]


def test_a_held_comment_trashed_then_restored_is_still_reported(site: WordPressSite, service: Service) -> None:
    comment_id, check, before = hold_one(site, service, "Sam Restored")
    assert moderate(site, comment_id, "trash")["comment"]["approved"] == "trash"
    assert moderate(site, comment_id, "untrash")["comment"]["approved"] == "0"
    assert moderate(site, comment_id, "approve")["comment"]["approved"] == "1"
    assert new_feedback(service, before) == [("ham", check.id)]


def test_an_approval_the_server_missed_is_reported_on_the_next(site: WordPressSite, service: Service) -> None:
    comment_id, check, before = hold_one(site, service, "Sam Offline")
    with restarted(site, service, down=True):
        approved = moderate(site, comment_id, "approve")
    assert approved["comment"]["approved"] == "1" and "commentguard_held_unsure" in approved["comment"]["meta"]
    moderate(site, comment_id, "hold")
    final = moderate(site, comment_id, "approve")
    assert "commentguard_held_unsure" not in final["comment"]["meta"]
    assert new_feedback(service, before) == [("ham", check.id)]


def test_check_for_spam_keeps_an_unsure_comment_held(site: WordPressSite, service: Service) -> None:
    content = unique(UNSURE_TEXT)
    held = post_comment(site, content, author="Sam Rechecked")
    rechecked = moderate(site, held["comment_id"], "recheck")
    assert rechecked["changed"] is True  # the plugin got `true` and moved the comment to Spam...
    assert rechecked["comment"]["approved"] == "0"  # ...and it is back in Pending, still held
    assert "commentguard_held_unsure" in rechecked["comment"]["meta"]
    assert [c.tier for c in checks_of(service, content, count=2)] == ["unsure", "unsure"]
    assert_plugin_logged_nothing(site)


def test_a_refused_comment_gives_its_verdict_to_no_other(site: WordPressSite, service: Service) -> None:
    # WordPress refuses a duplicate after its check; a comment another plugin inserts next in
    # the same request took the refused one's verdict (and its held mark).
    content = unique(UNSURE_TEXT)
    result = site.run("duplicate-then-insert", request=comment_form(content, author="Sam Twice"))
    assert result["first"]["approved"] == "0" and result["second"] == "comment_duplicate"
    assert result["note"]["approved"] == "0"
    assert "commentguard_verdict" not in result["note"]["meta"]
    assert "commentguard_held_unsure" not in result["note"]["meta"]


def test_the_sites_block_list_still_wins(site: WordPressSite, service: Service) -> None:
    # Without a trash (EMPTY_TRASH_DAYS 0) WordPress sends a comment on its block list to Spam;
    # holding unsure comments must not fish it out.
    site.point_at(service.url, EMPTY_TRASH_DAYS=0)
    site.run("options", options={"disallowed_keys": "blocked.example"})
    try:
        content = unique(UNSURE_TEXT)
        state = post_comment(site, content, author="Sam Blocked", email="sam@blocked.example")
    finally:
        site.run("options", options={"disallowed_keys": None})
        site.point_at(service.url)
    (check,) = checks_of(service, content)
    assert check.tier == "unsure" and state["approved"] == "spam"


def test_holding_can_be_turned_off(site: WordPressSite, service: Service) -> None:
    # Without holding, the plugin does what it does with any `true`: the comment goes to Spam
    # (where its daily clean-up deletes spam older than 15 days).
    site.point_at(service.url, COMMENTGUARD_HOLD_UNSURE=False)
    try:
        content = unique(UNSURE_TEXT)
        state = post_comment(site, content, author="Sam")
    finally:
        site.point_at(service.url)
    (check,) = checks_of(service, content)
    assert check.tier == "unsure"
    assert state["approved"] == "spam" and events(state) == ["check-spam"]
    assert "commentguard_held_unsure" not in state["meta"]
    assert_plugin_logged_nothing(site)


def test_the_longest_comment_wordpress_takes_is_checked_at_once(site: WordPressSite, service: Service) -> None:
    # The plugin sends the text twice (comment_content and POST_comment), percent-encoded. With a
    # 64 KiB limit, 40,000 characters were refused ("Request body too large"), held, and queued for
    # a recheck that stops at its first failure: one long comment held up the recheck of all
    # after it. Akismet's own limit (COMMENTGUARD_AKISMET_MAX_BODY_BYTES) takes them now.
    content = unique(" ".join([QUESTION] * 480))
    assert 40_000 < len(content) < 65_525  # WordPress's own limit for a comment
    state = post_comment(site, content, author="Gus Verbose")
    assert events(state) == ["check-ham"] and state["meta"]["akismet_result"] == ["false"]
    (check,) = checks_of(service, content)
    assert check.tier == "ham" and check.comment.comment_content == content
    assert_plugin_logged_nothing(site)


# --- moderation e-mail ------------------------------------------------------------------------
#
# WordPress e-mails the moderators about a held form post (wp_new_comment(), `comment_post`), never
# about a REST API comment (wp_insert_comment()). The driver records e-mails instead of sending them.

def moderation_mails(site: WordPressSite, comment_id: int) -> list[dict[str, Any]]:
    """The moderation e-mails ("Please moderate") the site sent about one comment."""
    approve_link = f"comment.php?action=approve&c={comment_id}#"
    return [m for m in site.mails() if "Please moderate" in m["subject"] and approve_link in m["message"]]


@pytest.mark.usefixtures("settings_reset")
def test_a_rest_comment_held_as_unsure_is_mailed_to_the_moderators(site: WordPressSite, service: Service) -> None:
    site.run("options", options={"comment_previously_approved": "0"})  # WordPress would publish it
    content = unique(UNSURE_TEXT)
    state = rest_comment(site, content, author="Rest Mailed", email="mailed@rest.example")
    assert state["approved"] == "0" and "commentguard_held_unsure" in state["meta"]
    (mail,) = moderation_mails(site, state["comment_id"])
    assert mail["to"] == ["admin@example.org"]  # the site's address (also the post's author's)
    assert content.split(" http")[0] in mail["message"] and "Rest Mailed" in mail["message"]
    assert_plugin_logged_nothing(site)


@pytest.mark.usefixtures("settings_reset")
def test_an_address_wordpress_rewrites_on_saving_still_matches_its_check(site: WordPressSite, service: Service) -> None:
    # WordPress stores `a&b@…` as `a&amp;b@…` (kses on the author's e-mail): compared as sent
    # with the stored one, a held REST comment lost its e-mail and its held mark (its approval
    # reported nothing), and an unsure form post went to Spam instead of Pending (a probe).
    site.run("options", options={"comment_previously_approved": "0"})
    rest = rest_comment(site, unique(UNSURE_TEXT), author="Amp Rest", email="a&b@amp.example")
    form = post_comment(site, unique(UNSURE_TEXT), author="Amp Form", email="c&d@amp.example")
    for state in (rest, form):
        assert state["approved"] == "0" and "commentguard_held_unsure" in state["meta"], state
        assert "commentguard_verdict" in state["meta"]
        assert len(moderation_mails(site, state["comment_id"])) == 1
    assert_plugin_logged_nothing(site)


@pytest.mark.usefixtures("settings_reset")
def test_a_moderators_own_rest_comment_is_not_held_in_an_outage(site: WordPressSite, service: Service) -> None:
    # The plugin does not hold a moderator's form post after a failed check; the drop-in held
    # their REST comment, and the retry e-mailed them about their own comment (a probe).
    site.run("options", options={"comment_previously_approved": "1"})
    with restarted(site, service, down=True):
        state = rest_comment(site, unique(QUESTION), author="admin", email="admin@example.org", as_admin=True)
    assert state["approved"] == "1", state
    site.run("recheck")
    assert moderation_mails(site, state["comment_id"]) == []
    assert site.run("comment-state", comment_id=state["comment_id"])["approved"] == "1"


@pytest.mark.usefixtures("settings_reset")
def test_rest_comments_it_did_not_hold_are_not_mailed(site: WordPressSite, service: Service) -> None:
    # Published (ham), sent to Spam (spam), or held by WordPress's own rules anyway (a first-time
    # commenter, below): WordPress's REST API mails about none of them, and neither does the drop-in.
    site.run("options", options={"comment_previously_approved": "0"})
    ham = rest_comment(site, unique(QUESTION), author="Rest Ham", email="ham@rest.example")
    spam = rest_comment(site, unique(SPAM_TEXT), author="Best Deals", email="deals@rest.example")
    site.run("options", options={"comment_previously_approved": "1"})
    first_timer = rest_comment(site, unique(UNSURE_TEXT), author="Rest First", email="first@rest.example")
    assert (ham["approved"], spam["approved"], first_timer["approved"]) == ("1", "spam", "0")
    assert "commentguard_held_unsure" in first_timer["meta"]
    for state in (ham, spam, first_timer):
        assert moderation_mails(site, state["comment_id"]) == []


@pytest.mark.usefixtures("settings_reset")
def test_a_held_form_post_gets_wordpresss_one_mail(site: WordPressSite, service: Service) -> None:
    site.run("options", options={"comment_previously_approved": "0"})
    state = post_comment(site, unique(UNSURE_TEXT), author="Form Mailed", email="mailed@form.example")
    assert state["approved"] == "0" and "commentguard_held_unsure" in state["meta"]
    assert len(moderation_mails(site, state["comment_id"])) == 1


@pytest.mark.usefixtures("settings_reset")
def test_comments_held_in_an_outage_are_mailed_once_the_retry_holds_them(site: WordPressSite,
                                                                         service: Service) -> None:
    # The plugin defers the moderation e-mail of a comment checked during an outage (it may be
    # spam) and sends it after its retry only for a ham answer; an unsure answer holds the comment
    # again, and its e-mail is sent then. A REST comment is deferred like a form post.
    site.run("options", options={"comment_previously_approved": "0"})
    with restarted(site, service, down=True):
        rest_unsure = rest_comment(site, unique(UNSURE_TEXT), author="Rest Outage", email="outage@rest.example")
        rest_ham = rest_comment(site, unique(QUESTION), author="Rest Fine", email="fine@rest.example")
        form_unsure = post_comment(site, unique(UNSURE_TEXT), author="Form Outage", email="outage@form.example")
    for state in (rest_unsure, rest_ham, form_unsure):
        assert state["approved"] == "0" and events(state) == ["check-error"]
        assert state["meta"]["akismet_delayed_moderation_email"] == ["1"]
        assert moderation_mails(site, state["comment_id"]) == []
    site.run("recheck")
    for state in (rest_unsure, form_unsure):
        after = site.run("comment-state", comment_id=state["comment_id"])
        assert after["approved"] == "0" and "commentguard_held_unsure" in after["meta"]
        assert "akismet_delayed_moderation_email" not in after["meta"]
        assert len(moderation_mails(site, state["comment_id"])) == 1
    assert site.run("comment-state", comment_id=rest_ham["comment_id"])["approved"] == "1"
    assert moderation_mails(site, rest_ham["comment_id"]) == []  # published: nothing to moderate
    site.run("recheck")  # nothing left to retry: no second e-mail
    for state in (rest_unsure, form_unsure):
        assert len(moderation_mails(site, state["comment_id"])) == 1
    assert_plugin_logged_nothing(site)


@pytest.mark.usefixtures("settings_reset")
def test_no_mail_when_the_site_turns_it_off(site: WordPressSite, service: Service) -> None:
    # Settings > Discussion: "Email me whenever a comment is held for moderation" off.
    site.run("options", options={"comment_previously_approved": "0", "moderation_notify": "0"})
    rest = rest_comment(site, unique(UNSURE_TEXT), author="Rest Quiet", email="quiet@rest.example")
    form = post_comment(site, unique(UNSURE_TEXT), author="Form Quiet", email="quiet@form.example")
    for state in (rest, form):
        assert state["approved"] == "0" and "commentguard_held_unsure" in state["meta"]
        assert moderation_mails(site, state["comment_id"]) == []
