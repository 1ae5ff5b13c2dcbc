"""Real Akismet clients beyond the PyPI one, unchanged, against a live ``commentguard serve``.

npm ``@cedx/akismet`` and ``akismet-api``, Debian's ``ruby-akismet``,
``libnet-akismet-perl`` (Net::Akismet) and ``golang-github-adtac-go-akismet-dev``
(go-akismet, Commento's client), each run by a small driver of ours in
``tests/clients/`` (its README says how each is pointed at the server) that
prints one JSON answer; the Go driver is built once a session with the ``go``
tool. The server is the session's :func:`live_server`; what it stored is read
back from its database.

The tests run when ``COMMENTGUARD_TEST_CLIENTS=1`` (``.ci/run`` installs the
clients and sets it); then a missing interpreter, toolchain or library is a failure.

Where a client cannot express something (a discard pro-tip, ``is_test``, the
check's guid), the test pins what it does instead, so a client update that
changes it is noticed. No client here sends the guid back with a report (none
even returns it), so reports are linked to their check by the same comment.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import pytest

from service.akismet import THANKS
from service.settings import load_or_create_secret_key
from store import open_store
from tests.conftest import REPO, TEST_SITE, LiveServer, free_port

CLIENTS_ENV = "COMMENTGUARD_TEST_CLIENTS"
DRIVERS = REPO / "tests" / "clients"
NODE_MODULES = DRIVERS / "node" / "node_modules"
DRIVER_TIMEOUT = 60  # seconds; an answer takes well under one, Node's start-up about 0.2
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-*-dev packages put their sources
GO_AKISMET = GOPATH / "src" / "github.com" / "adtac" / "go-akismet" / "akismet"
GO_BUILD_TIMEOUT = 300  # seconds; about 10 with an empty Go build cache on 2 cores, under 1 with a warm one

SPAM_TEXT = "Buy cheap viagra online now!!! click http://bit.ly/cheap-pills"
QUESTION = "Does the second example also work on Windows, or only on Linux?"
NON_ASCII_TEXT = "Привет! Отличная статья, спасибо 👍🏽 Работает ли это на Windows? 🚀"
NON_ASCII_AUTHOR = "Дмитрий Ёлкин 🐻"


@dataclass(frozen=True)
class Client:
    """One real client: how to run its driver and what its API can express."""

    name: str
    command: tuple[str, ...]  # relative to tests/clients/; empty for a driver built by go_driver
    discard: bool       # reports the X-akismet-pro-tip: discard answer
    sends_is_test: bool
    verifies_key: bool = True  # has a verify-key call


CLIENTS = [
    Client("cedx-akismet", ("node", "node/cedx_akismet.mjs"), discard=True, sends_is_test=True),
    Client("akismet-api", ("node", "node/akismet_api.mjs"), discard=False, sends_is_test=True),
    Client("ruby-akismet", ("ruby", "ruby_akismet.rb"), discard=True, sends_is_test=True),
    Client("net-akismet", ("perl", "perl_net_akismet.pl"), discard=False, sends_is_test=False),
    Client("go-akismet", (), discard=False, sends_is_test=False, verifies_key=False),
]


@pytest.fixture(scope="session")
def clients_installed() -> None:
    """Skip without ``COMMENTGUARD_TEST_CLIENTS``; with it, fail unless every client is installed."""
    if os.environ.get(CLIENTS_ENV) != "1":
        pytest.skip(f"{CLIENTS_ENV}=1 is not set: these tests need Node.js with tests/clients/node's "
                    "packages, ruby-akismet, libnet-akismet-perl, golang-go and "
                    "golang-github-adtac-go-akismet-dev (.ci/run installs them)")
    missing = [tool for tool in ("node", "ruby", "perl", "go") if shutil.which(tool) is None]
    for package in ("@cedx/akismet", "akismet-api"):
        if not (NODE_MODULES / package / "package.json").is_file():
            missing.append(f"npm {package} (npm ci --prefix tests/clients/node)")
    for tool, probe, package in (("ruby", "require 'akismet'", "ruby-akismet"),
                                 ("perl", "use Net::Akismet;", "libnet-akismet-perl")):
        if shutil.which(tool) and subprocess.run([tool, "-e", probe], capture_output=True).returncode != 0:
            missing.append(package)
    if not (GO_AKISMET / "akismet.go").is_file():
        missing.append("golang-github-adtac-go-akismet-dev")
    if missing:
        pytest.fail(f"{CLIENTS_ENV}=1 but these are missing: {', '.join(missing)}")


@pytest.fixture(scope="session")
def go_driver(clients_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/clients/go_akismet`` built against Debian's go-akismet sources, once a session.

    GOPATH mode needs neither a go.mod nor the module proxy: the build stays offline.
    """
    binary = tmp_path_factory.mktemp("go_akismet") / "go_akismet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(GO111MODULE="off", GOPATH=str(GOPATH), CGO_ENABLED="0",  # no C compiler needed
               GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="")
    if not any(env.get(name) for name in ("XDG_CACHE_HOME", "HOME")):
        env["GOCACHE"] = str(binary.parent / "cache")  # go has no default build cache then
    started = time.monotonic()
    done = subprocess.run(["go", "build", "-o", str(binary), "."], cwd=DRIVERS / "go_akismet", env=env,
                          capture_output=True, text=True, timeout=GO_BUILD_TIMEOUT)
    if done.returncode != 0:
        pytest.fail(f"building tests/clients/go_akismet failed ({done.returncode}):\n{done.stderr}")
    print(f"go_akismet driver built in {time.monotonic() - started:.1f} s")
    return binary


@pytest.fixture(params=CLIENTS, ids=lambda c: c.name)
def client(request: pytest.FixtureRequest, clients_installed: None) -> Client:
    chosen: Client = request.param
    if not chosen.command:  # the Go driver: a binary of this session's build
        return replace(chosen, command=(str(request.getfixturevalue("go_driver")),))
    return chosen


def run(client: Client, server_url: str, key: str, action: str,
        comment: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Run ``client``'s driver once and return its JSON answer."""
    argv = [*client.command, server_url, key, TEST_SITE, action, json.dumps(comment or {})]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}  # straight to the server
    done = subprocess.run(argv, cwd=DRIVERS, env=env, capture_output=True, text=True, timeout=DRIVER_TIMEOUT)
    assert done.returncode == 0, f"{client.name} driver failed ({done.returncode}):\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"{client.name} driver printed nothing:\n{done.stderr}"
    return dict(json.loads(lines[-1]))


def ok(answer: dict[str, Any]) -> Any:
    """The result of a call that returned; fails with the client's error if it threw."""
    assert answer["ok"] is True, f"the client threw: {answer}"
    return answer["result"]


def comment(text: str, **fields: Any) -> dict[str, Any]:
    return {"user_ip": "203.0.113.20", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "comment_type": "comment",
            "comment_content": text, **fields}


def unique(text: str) -> str:
    """``text`` made unique, so its check and report rows are this test's alone."""
    return f"{text} (ref {secrets.token_hex(4)})"


def unknown_key(server: LiveServer) -> str:
    key = secrets.token_hex(6)
    return key if key != server.key else unknown_key(server)


def stored_rows(server: LiveServer, sql: str, params: tuple[Any, ...], *, count: int = 1) -> list[dict[str, Any]]:
    """Rows of the server's database, waiting up to 10 s for ``count`` of them.

    Checks are written by each worker's background thread within about 0.2 s.
    """
    settings = server.settings
    secret = load_or_create_secret_key(settings.data_dir).encode()
    with open_store(str(settings.database_url), secret=secret) as store:
        deadline = time.monotonic() + 10
        while True:
            rows = [dict(r) for r in store.database.read(lambda tx: tx.fetchall(sql, params))]
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)


def stored_checks(server: LiveServer, text: str, count: int = 1) -> list[dict[str, Any]]:
    return stored_rows(server, "SELECT * FROM checks WHERE comment_content = ? ORDER BY created, id",
                       (text,), count=count)


def stored_feedback(server: LiveServer, text: str) -> list[dict[str, Any]]:
    return stored_rows(server, "SELECT * FROM feedback WHERE comment_content = ? ORDER BY id", (text,))


# --- the tests ------------------------------------------------------------------------------

# go-akismet has no verify-key call (Check, SubmitSpam and SubmitHam are all it has).
@pytest.mark.parametrize("client", [c for c in CLIENTS if c.verifies_key], ids=lambda c: c.name, indirect=True)
def test_verify_key(client: Client, live_server: LiveServer) -> None:
    assert ok(run(client, live_server.base_url, live_server.key, "verify-key")) is True
    assert ok(run(client, live_server.base_url, unknown_key(live_server), "verify-key")) is False


def test_comment_check_verdicts(client: Client, live_server: LiveServer) -> None:
    url, key = live_server.base_url, live_server.key
    permalink = f"https://blog.example.org/p/{secrets.token_hex(4)}"  # finds the check (not a feature)
    spam = ok(run(client, url, key, "comment-check", comment(SPAM_TEXT)))
    blatant = ok(run(client, url, key, "comment-check",
                     comment(SPAM_TEXT, comment_author_url="http://bit.ly/x", permalink=permalink)))
    question = ok(run(client, url, key, "comment-check", comment(QUESTION, comment_author="Ann")))
    assert spam == "spam"
    # The server answers the second one "true" with X-akismet-pro-tip: discard (its stored tier
    # says so); a client without a place for the pro-tip reports plain spam.
    (check,) = stored_rows(live_server, "SELECT tier FROM checks WHERE permalink = ?", (permalink,))
    assert check["tier"] == "discard"
    assert blatant == ("discard" if client.discard else "spam")
    assert question == "ham"


def test_test_values(client: Client, live_server: LiveServer) -> None:
    url, key = live_server.base_url, live_server.key
    guaranteed = comment(QUESTION, comment_author="akismet-guaranteed-spam")
    assert ok(run(client, url, key, "comment-check", guaranteed)) == "spam"
    text = unique(QUESTION)
    answer = run(client, url, key, "comment-check", comment(text, is_test=True))
    assert ok(answer) == "ham"
    (check,) = stored_checks(live_server, text)
    if client.sends_is_test:
        assert answer["unsent"] == [] and bool(check["is_test"]) is True
    else:  # Net::Akismet and go-akismet send a fixed set of fields: is_test is not among them
        assert answer["unsent"] == ["is_test"] and bool(check["is_test"]) is False


@pytest.mark.parametrize("label", ["spam", "ham"])
def test_submit_is_recorded_and_linked_to_its_check(client: Client, live_server: LiveServer, label: str) -> None:
    url, key = live_server.base_url, live_server.key
    text = unique(SPAM_TEXT if label == "spam" else QUESTION)
    sent = comment(text, comment_author="Reporter Test")
    ok(run(client, url, key, "comment-check", sent))
    # Wait for the check to be stored: a report naming only its comment does not wait for
    # a check still on its way from another worker (see service.feedback).
    (check,) = stored_checks(live_server, text)
    answer = run(client, url, key, f"submit-{label}", sent)
    assert ok(answer) is True
    if "body" in answer:  # the drivers of clients that leave the answer unread show it
        assert answer["body"] == THANKS
    (feedback,) = stored_feedback(live_server, text)
    assert feedback["label"] == label and feedback["source"] == "akismet"
    assert feedback["check_id"] == check["id"]
    assert feedback["comment_author"] == "Reporter Test"


def test_non_ascii_comment_round_trip(client: Client, live_server: LiveServer) -> None:
    url, key = live_server.base_url, live_server.key
    text = unique(NON_ASCII_TEXT)
    sent = comment(text, comment_author=NON_ASCII_AUTHOR)
    assert ok(run(client, url, key, "comment-check", sent)) in ("ham", "spam", "discard")
    (check,) = stored_checks(live_server, text)
    assert check["comment_author"] == NON_ASCII_AUTHOR
    assert ok(run(client, url, key, "submit-ham", sent)) is True
    (feedback,) = stored_feedback(live_server, text)
    assert feedback["comment_author"] == NON_ASCII_AUTHOR and feedback["check_id"] == check["id"]


#: Every field a comment can carry, and those each client has no way to send.
ALL_FIELDS = ("user_agent", "referrer", "permalink", "comment_type", "comment_author",
              "comment_author_url", "user_role", "comment_context")
UNSENDABLE = {
    "cedx-akismet": [],
    "akismet-api": ["comment_context"],
    "ruby-akismet": ["comment_context"],
    "net-akismet": ["comment_context", "user_role"],
    "go-akismet": ["comment_context"],
}


def test_fields_arrive_as_sent(client: Client, live_server: LiveServer) -> None:
    text = unique(QUESTION)
    sent = comment(text, comment_type="reply", comment_author="Ann Example", user_role="subscriber",
                   comment_author_email="ann@example.net", comment_author_url="https://ann.example.net/about",
                   permalink="https://blog.example.org/2026/11/a-post", referrer="https://blog.example.org/2026/",
                   comment_context=["python", "windows"])
    answer = run(client, live_server.base_url, live_server.key, "comment-check", sent)
    assert ok(answer) == "ham"
    assert answer["unsent"] == UNSENDABLE[client.name]
    (check,) = stored_checks(live_server, text)
    for name in ALL_FIELDS:
        if name in answer["unsent"]:
            continue
        value = sent[name]
        assert check[name] == (json.dumps(value) if isinstance(value, list) else value), name
    assert check["blog"].rstrip("/") == TEST_SITE  # @cedx/akismet sends the blog URL with a "/"
    assert check["comment_author_email"] and check["comment_author_email"] != "ann@example.net"  # a keyed hash


@dataclass(frozen=True)
class Outcome:
    """What a client call did: returned ``result``, or threw ``error_type`` with ``error`` containing ``text``."""

    returned: bool
    result: Any = None
    error_type: str = ""
    text: str = ""

    def check(self, answer: dict[str, Any]) -> None:
        if self.returned:
            assert answer["ok"] is True and answer["result"] == self.result, answer
        else:
            assert answer["ok"] is False and answer["error_type"] == self.error_type, answer
            assert self.text in f"{answer['error']} {answer.get('cause') or ''}", answer


def returned(result: Any) -> Outcome:
    return Outcome(True, result)


def threw(error_type: str, text: str = "") -> Outcome:
    return Outcome(False, error_type=error_type, text=text)


# The server's side is the same for all: "invalid" with X-akismet-debug-help (here
# "Invalid API key: it is unknown or has been revoked."). Net::Akismet checks the key in
# new(), which returns undef: no call can be made. akismet-api and go-akismet do not read a
# submit's body; go-akismet's Check makes the body its error's text (the header is unread).
UNKNOWN_KEY = {
    "cedx-akismet": {"comment-check": threw("Error", "Invalid API key: it is unknown"),
                     "submit-spam": threw("Error", "Invalid API key: it is unknown")},
    "akismet-api": {"comment-check": threw("Error", "Invalid API key"),
                    "submit-spam": Outcome(True, True)},
    "ruby-akismet": {"comment-check": threw("Akismet::Error", "Invalid API key: it is unknown"),
                     "submit-spam": threw("Akismet::Error", "Invalid API key: it is unknown")},
    "net-akismet": {"comment-check": threw("undef"), "submit-spam": threw("undef")},
    "go-akismet": {"comment-check": threw("*errors.errorString", "invalid"), "submit-spam": returned(True)},
}


def test_unknown_key_on_every_call(client: Client, live_server: LiveServer) -> None:
    key = unknown_key(live_server)
    for action, outcome in UNKNOWN_KEY[client.name].items():
        answer = run(client, live_server.base_url, key, action, comment(unique(SPAM_TEXT)))
        outcome.check(answer)
        if client.name in ("akismet-api", "go-akismet") and action == "submit-spam":
            assert answer["body"] == "invalid"  # the server refused it; the client resolves all the same
        if client.name == "go-akismet" and action == "comment-check":
            assert answer["error"] == "invalid"
            assert answer["raw"] is True  # Check says "spam" along with every error


# With nothing listening, @cedx/akismet's verifyKey and Net::Akismet's new() say "invalid
# key": a site cannot tell a key problem from an outage. go-akismet (no verify-key) errors
# on both calls with Go's *url.Error, whose text holds the URL, so the key in its host name.
SERVER_DOWN = {
    "cedx-akismet": {"verify-key": returned(False), "comment-check": threw("TypeError", "ECONNREFUSED")},
    "akismet-api": {"verify-key": threw("Error", "ECONNREFUSED"), "comment-check": threw("Error", "ECONNREFUSED")},
    "ruby-akismet": {"verify-key": threw("Errno::ECONNREFUSED", "Connection refused"),
                     "comment-check": threw("Errno::ECONNREFUSED", "Connection refused")},
    "net-akismet": {"verify-key": returned(False), "comment-check": threw("undef")},
    "go-akismet": {"comment-check": threw("*url.Error", "connection refused"),
                   "submit-spam": threw("*url.Error", "connection refused")},
}


def test_server_down(client: Client, live_server: LiveServer) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    for action, outcome in SERVER_DOWN[client.name].items():
        answer = run(client, nobody, live_server.key, action, comment(QUESTION))
        outcome.check(answer)
        if client.name == "go-akismet":
            assert f"https://{live_server.key}.rest.akismet.com/1.1/{action}" in answer["error"]
            if action == "comment-check":
                assert answer["raw"] is True  # "spam", with the error


def test_akismet_api_honeypot(clients_installed: None, live_server: LiveServer) -> None:
    """akismet-api's ``honeypot`` option: it names its own field, which the server reads as the honeypot."""
    (api,) = [c for c in CLIENTS if c.name == "akismet-api"]
    url, key = live_server.base_url, live_server.key
    assert ok(run(api, url, key, "comment-check", comment(QUESTION, honeypot="filled in by a bot"))) == "spam"
    assert ok(run(api, url, key, "comment-check", comment(QUESTION, honeypot=""))) == "ham"


def test_go_akismet_other_answers(clients_installed: None, go_driver: Path, live_server: LiveServer) -> None:
    """go-akismet with an answer neither ``true`` nor ``false`` (a missing ``user_ip``).

    Check returns it as its error's text, with "spam"; SubmitSpam returns no error at all:
    a site cannot tell that its report was refused.
    """
    go = Client("go-akismet", (str(go_driver),), discard=False, sends_is_test=False, verifies_key=False)
    url, key = live_server.base_url, live_server.key
    sent = {k: v for k, v in comment(unique(SPAM_TEXT)).items() if k != "user_ip"}
    answer = run(go, url, key, "comment-check", sent)
    threw("*errors.errorString").check(answer)
    assert answer["error"] == "Missing required field: user_ip." and answer["raw"] is True
    answer = run(go, url, key, "submit-spam", sent)
    assert ok(answer) is True and answer["body"] == "Missing required field: user_ip."
    assert stored_rows(live_server, "SELECT id FROM feedback WHERE comment_content = ?",
                       (sent["comment_content"],), count=0) == []
