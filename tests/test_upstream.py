"""The upstream cross-check (service/upstream*.py): modes, a broken upstream, the breaker, report forwarding.

Two kinds of upstream: a second real CommentGuard (``start_live_server``, its
own data dir and key) for the modes and for forwarding, and
:class:`BrokenUpstream`, a small threaded ``http.server`` told how to
misbehave (hang, answer slowly, 500, garbage, ``invalid``, reset the
connection, or be down for reports). Every check must still get our own
verdict within the budget: the median call within it + 100 ms, and no call
past it by half a second (what a loaded CI host can add; ignoring the budget costs 1.5 s or more).
"""
from __future__ import annotations

import json
import socket
import statistics
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner
from flask import Flask

from commentguard.cli import cli
from model.comment import Comment
from model.verdict import HAM, SPAM, UNSURE, Reason, Thresholds, Verdict
from service.app import get_state
from service.settings import Settings, SettingsError, load_settings
from service.upstream import ALWAYS, GRAY, SHADOW, CircuitBreaker, Upstream, combine
from store import open_store
from store.upstream import upstream_outbox_counts
from tests.conftest import TEST_SECRET_KEY, TEST_SITE, LiveServer, start_live_server
from tests.test_metrics import samples, value

HAM_TEXT = "Thanks for the clear explanation, the second example finally made it click for me."
SPAM_TEXT = "Buy cheap viagra online now!!! Best prices http://bit.ly/cheap-pills"
BUDGET_MS = 300
SLACK_S = 0.1
# A shared CI host can stall any one request (GC, another process on both cores), so a single
# call only has to stay far below what ignoring the budget would cost (``slow`` answers after
# 1.5 s, ``hang`` never); the median of a test's calls must keep to the budget + SLACK_S.
STALL_S = 0.5


def assert_within_budget(timings: list[float], what: str, budget_s: float = BUDGET_MS / 1000) -> None:
    """Every call well under a blown budget, and the typical call within it plus the slack."""
    shown = ", ".join(f"{t * 1000:.0f}" for t in timings)
    assert max(timings) <= budget_s + STALL_S, f"{what}: {shown} ms"
    assert statistics.median(timings) <= budget_s + SLACK_S, f"{what}: {shown} ms"
UPSTREAM_KEY = "0123456789ab"


# --- a deliberately broken upstream ---------------------------------------------------------------

class BrokenUpstream:
    """An Akismet-shaped server whose comment-check answer is ``self.check`` and whose reports ``self.submit``.

    ``check``: ``true``/``false``/``invalid`` (that body), ``garbage``, ``500``, ``hang``, ``slow``
    (1.5 s, then ``false``), ``reset``, ``longtrue`` (``true`` and then 5,000 more bytes).
    ``submit``: ``ok``, ``500``/``reset`` (down), ``trickle`` (accepts, then sends the thank-you
    a byte every 0.2 s), or any other text, answered as it is with 200.
    """

    def __init__(self) -> None:
        self.check = "false"
        self.submit = "ok"
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.accepted_reports: list[dict[str, list[str]]] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = parse_qs(body)
                with upstream.lock:
                    upstream.requests.append((self.path, form))
                behaviour = upstream.check if self.path.endswith("comment-check") else upstream.submit
                if behaviour == "hang":
                    upstream.release.wait(10)
                    return self._reset()
                if behaviour == "slow":
                    upstream.release.wait(1.5)
                    return self._send(200, "false")
                if behaviour == "reset":
                    return self._reset()
                if behaviour == "500":
                    return self._send(500, "Internal Server Error")
                if behaviour == "garbage":
                    return self._send(200, "maybe?")
                if behaviour == "longtrue":
                    return self._send(200, "true" + " " * 5000 + "<html>an error page</html>")
                if behaviour == "trickle":
                    return self._trickle("Thanks for making the web a better place.")
                if behaviour == "ok":
                    with upstream.lock:
                        upstream.accepted_reports.append(form)
                    return self._send(200, "Thanks for making the web a better place.")
                return self._send(200, behaviour)

            def _send(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _trickle(self, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                for char in text:
                    if upstream.release.wait(0.2):
                        return
                    self.wfile.write(char.encode())
                    self.wfile.flush()

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls(self, path: str = "comment-check") -> int:
        with self.lock:
            return sum(1 for p, _ in self.requests if p.endswith(path))

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def broken() -> Iterator[BrokenUpstream]:
    server = BrokenUpstream()
    yield server
    server.close()


def upstream_app(make_app: Callable[..., Flask], url: str, mode: str = ALWAYS, **overrides: Any) -> Flask:
    values: dict[str, Any] = {"upstream_mode": mode, "upstream_url": url, "upstream_key": UPSTREAM_KEY,
                              "upstream_budget_ms": BUDGET_MS, "upstream_breaker_failures": 1000}
    values.update(overrides)
    return make_app(**values)


def akismet_check(app: Flask, content: str, **fields: str) -> tuple[Any, float]:
    """One timed comment-check through the Akismet surface (key from the app's test config)."""
    client = app.test_client()
    form = {"api_key": app.config["TEST_API_KEY"], "blog": TEST_SITE, "user_ip": "203.0.113.9",
            "comment_content": content, "comment_author": "Reader", **fields}
    start = time.monotonic()
    response = client.post("/1.1/comment-check", data=form)
    return response, time.monotonic() - start


def json_check(app: Flask, content: str, **fields: str) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    body = {"comment_content": content, "user_ip": "203.0.113.9", **fields}
    response = app.test_client().post("/api/v1/check", json=body)
    elapsed = time.monotonic() - start
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(), elapsed


def stored_upstream(app: Flask, check_id: str) -> dict[str, Any]:
    state = get_state(app)
    state.recorder.flush()
    record = state.store.get_check(check_id)
    assert record is not None and record.upstream is not None
    return dict(record.upstream)


def reason_texts(result: dict[str, Any]) -> list[str]:
    return [r["reason"] for r in result["reasons"]]


# --- pure parts -----------------------------------------------------------------------------------

def test_breaker_opens_after_n_failures_and_probes_once_when_half_open() -> None:
    now = [0.0]
    breaker = CircuitBreaker(3, 10.0, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # consecutive failures only
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 9.9
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe, the others skip
    breaker.failure()  # the probe failed: open for another period
    assert not breaker.allow()
    now[0] = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


@pytest.mark.parametrize("mode, ours, upstream_spam, expected", [
    (ALWAYS, HAM, True, UNSURE), (ALWAYS, HAM, False, HAM),
    (ALWAYS, UNSURE, True, SPAM), (ALWAYS, UNSURE, False, HAM),
    (ALWAYS, SPAM, False, UNSURE), (ALWAYS, SPAM, True, SPAM),
    (ALWAYS, "discard", False, SPAM), (ALWAYS, "discard", True, "discard"),
    (GRAY, UNSURE, True, SPAM), (GRAY, UNSURE, False, HAM), (GRAY, HAM, True, SPAM),
    (SHADOW, HAM, True, HAM),
])
def test_combine_rule(mode: str, ours: str, upstream_spam: bool, expected: str) -> None:
    verdict = Verdict(ours, 0.5, (Reason("word 'casino'", 1.0),), "m")
    combined = combine(mode, verdict, upstream_spam)
    assert combined.tier == expected and combined.score == 0.5
    if mode != SHADOW:
        assert combined.reasons[0].text == f"upstream: {'spam' if upstream_spam else 'ham'}"


def test_settings_need_a_key_and_a_sane_band(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="COMMENTGUARD_UPSTREAM_KEY"):
        load_settings({"COMMENTGUARD_UPSTREAM_MODE": "gray"})
    with pytest.raises(SettingsError, match="COMMENTGUARD_UPSTREAM_KEY"):
        load_settings({"COMMENTGUARD_UPSTREAM_FORWARD_FEEDBACK": "true"})
    with pytest.raises(SettingsError, match="COMMENTGUARD_UPSTREAM_GRAY_BAND"):
        load_settings({"COMMENTGUARD_UPSTREAM_GRAY_BAND": "0.8,0.2"})
    # An empty band (low inclusive, high exclusive) was accepted: gray mode then asked about nothing.
    with pytest.raises(SettingsError, match=r"COMMENTGUARD_UPSTREAM_GRAY_BAND.*low < high"):
        load_settings({"COMMENTGUARD_UPSTREAM_GRAY_BAND": "0.5,0.5"})
    assert load_settings({"COMMENTGUARD_UPSTREAM_GRAY_BAND": "0.5,0.51"}).upstream_gray_band == (0.5, 0.51)
    # Every tier may be asked about, as the README says.
    everything = load_settings({"COMMENTGUARD_UPSTREAM_GRAY_TIERS": "ham, unsure,spam,discard"})
    assert everything.upstream_gray_tiers == ("ham", "unsure", "spam", "discard")
    with pytest.raises(SettingsError, match="COMMENTGUARD_UPSTREAM_MODE"):
        load_settings({"COMMENTGUARD_UPSTREAM_MODE": "sometimes", "COMMENTGUARD_UPSTREAM_KEY": "k"})
    s = load_settings({"COMMENTGUARD_UPSTREAM_MODE": "always", "COMMENTGUARD_UPSTREAM_KEY": "sekrit-upstream"})
    assert (s.upstream_budget_ms, s.upstream_gray_band, s.upstream_url) == (800, None, "https://rest.akismet.com")
    assert "sekrit-upstream" not in repr(s)


# --- a broken upstream: our verdict, on time ------------------------------------------------------

@pytest.mark.parametrize("behaviour, outcome", [
    ("hang", "timeout"), ("slow", "timeout"), ("500", "error"), ("garbage", "error"),
    ("invalid", "invalid_key"), ("reset", "error"),
])
def test_a_broken_upstream_never_costs_our_verdict_or_the_budget(
        make_app: Callable[..., Flask], broken: BrokenUpstream, behaviour: str, outcome: str) -> None:
    plain = make_app()
    app = upstream_app(make_app, broken.url)
    broken.check = behaviour
    timings: dict[str, list[float]] = {"Akismet": [], "JSON": []}
    for content in (HAM_TEXT, SPAM_TEXT, HAM_TEXT):
        ours, _ = akismet_check(plain, content)
        response, elapsed = akismet_check(app, content)
        timings["Akismet"].append(elapsed)
        assert response.get_data(as_text=True) == ours.get_data(as_text=True)
        assert response.headers["X-CommentGuard-Verdict"] == ours.headers["X-CommentGuard-Verdict"]
        record = stored_upstream(app, response.headers["X-CommentGuard-Check-Id"])
        assert record["mode"] == "always" and record["outcome"] == outcome and record["upstream"] is None
        assert record["ours"] == ours.headers["X-CommentGuard-Verdict"]

        expected, _ = json_check(plain, content)
        result, elapsed = json_check(app, content)
        timings["JSON"].append(elapsed)
        assert result["verdict"] == expected["verdict"]
        assert not any(r.startswith("upstream:") for r in reason_texts(result))
    for surface, values in timings.items():
        assert_within_budget(values, f"{behaviour} ({surface})")
    counters = get_state(app).upstream.counters.snapshot()
    assert counters[outcome] == 6
    assert broken.calls() >= 6


def test_a_batch_shares_one_budget(make_app: Callable[..., Flask], broken: BrokenUpstream) -> None:
    app = upstream_app(make_app, broken.url)
    broken.check = "hang"
    timings = []
    for _ in range(3):
        start = time.monotonic()
        response = app.test_client().post(
            "/api/v1/check/batch", json={"comments": [{"comment_content": HAM_TEXT, "user_ip": "192.0.2.1"}] * 40})
        timings.append(time.monotonic() - start)
        assert response.status_code == 200 and len(response.get_json()["results"]) == 40
    assert_within_budget(timings, "batch of 40")
    assert get_state(app).upstream.counters.snapshot()["timeout"] == 120


def test_time_already_spent_comes_out_of_the_budget(tmp_path: Path, broken: BrokenUpstream) -> None:
    upstream = Upstream(Settings(data_dir=tmp_path, upstream_mode=ALWAYS, upstream_url=broken.url,
                                 upstream_key=UPSTREAM_KEY, upstream_budget_ms=BUDGET_MS,
                                 upstream_breaker_failures=1000))
    broken.check = "hang"
    comment = Comment(comment_content=HAM_TEXT, user_ip="192.0.2.1", blog=TEST_SITE)
    ours = Verdict(HAM, 0.1, (), "m")
    budget = BUDGET_MS / 1000
    spent_values = (0.0, budget / 2, budget)
    timings: dict[float, list[float]] = {spent: [] for spent in spent_values}
    try:
        for _ in range(3):
            for spent in spent_values:
                start = time.monotonic()
                verdict, record = upstream.check(comment, ours, Thresholds(0.4, 0.6, 0.9), spent_s=spent)
                timings[spent].append(time.monotonic() - start)
                assert verdict.tier == HAM and record is not None and record["outcome"] == "timeout"
    finally:
        upstream.close()
    for spent, values in timings.items():
        assert min(values) >= budget - spent - 0.02, f"spent {spent}: {values}"
        assert_within_budget(values, f"spent {spent}", budget_s=budget - spent)


def test_the_breaker_opens_and_closes_as_documented(make_app: Callable[..., Flask],
                                                     broken: BrokenUpstream) -> None:
    app = upstream_app(make_app, broken.url, upstream_breaker_failures=3, upstream_breaker_open_seconds=0.5)
    upstream = get_state(app).upstream
    broken.check = "500"
    for _ in range(3):
        json_check(app, HAM_TEXT)
    assert upstream.breaker.state == "open"
    before = broken.calls()
    for _ in range(5):  # open: nobody asks the upstream, answers come at once
        result, elapsed = json_check(app, SPAM_TEXT)
        assert elapsed < 0.1
    assert broken.calls() == before
    assert upstream.counters.snapshot()["skipped_breaker"] == 5
    time.sleep(0.55)
    json_check(app, HAM_TEXT)  # half-open: the probe fails, open again
    assert broken.calls() > before and upstream.breaker.state == "open"
    broken.check = "false"
    time.sleep(0.55)
    result, _ = json_check(app, HAM_TEXT)  # the probe succeeds: closed
    assert upstream.breaker.state == "closed"
    assert "upstream: ham" in reason_texts(result)
    json_check(app, HAM_TEXT)
    assert upstream.counters.snapshot()["agreed"] == 2


# --- a second CommentGuard as the upstream --------------------------------------------------------

@pytest.fixture(scope="module")
def cg_upstream(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LiveServer]:
    server = start_live_server(tmp_path_factory.mktemp("upstream") / "var", model_dir, workers=1)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cg_upstream_ham(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LiveServer]:
    """An upstream that answers ham unless a fixed rule says spam: its thresholds are all 1.

    (The administrator role made the upstream say ham until the JSON API applied the fixed
    rules itself: now it makes our own verdict ham too, and cannot show the upstream's effect.)
    """
    pinned = {f"COMMENTGUARD_THRESHOLD_{tier}": "1" for tier in ("UNSURE", "SPAM", "DISCARD")}
    server = start_live_server(tmp_path_factory.mktemp("upstream-ham") / "var", model_dir, workers=1, env=pinned)
    yield server
    server.stop()


def upstream_store_checks(server: LiveServer) -> list[Any]:
    with open_store(str(server.settings.database_url), secret=_secret(server)) as store:
        rows = store.database.read(lambda tx: tx.fetchall("SELECT id FROM checks ORDER BY created"))
        return [store.get_check(r["id"]) for r in rows]


def _secret(server: LiveServer) -> bytes:
    return (server.settings.data_dir / "secret_key").read_text().strip().encode()


# The upstream's Akismet rules make these disagree with our JSON API, which has no such rules:
# our model says ham, the upstream says spam (a test value), and the other way round.
UPSTREAM_SAYS_SPAM = {"comment_author": "akismet-guaranteed-spam"}


def test_shadow_asks_records_and_never_changes_the_verdict(make_app: Callable[..., Flask],
                                                           cg_upstream: LiveServer) -> None:
    app = upstream_app(make_app, cg_upstream.base_url, SHADOW, upstream_key=cg_upstream.key,
                       upstream_budget_ms=800)
    plain = make_app()
    for content, extra in ((HAM_TEXT, {}), (SPAM_TEXT, {}), (HAM_TEXT, UPSTREAM_SAYS_SPAM)):
        result, elapsed = json_check(app, content, **extra)
        expected, _ = json_check(plain, content, **extra)
        assert result["verdict"] == expected["verdict"] and elapsed < 0.9
        assert not any(r.startswith("upstream:") for r in reason_texts(result))
        record = stored_upstream(app, result["check_id"])
        assert record["mode"] == "shadow" and record["answer"] in ("true", "false")
        assert record["ms"] >= 0
    record = stored_upstream(app, result["check_id"])
    assert record["upstream"] == "spam" and record["outcome"] == "disagreed"
    counters = get_state(app).upstream.counters.snapshot()
    assert counters["calls"] == 3 and counters["agreed"] == 2 and counters["disagreed"] == 1
    # ... and /metrics says so (commentguard_upstream_total was documented but never counted).
    exposed = samples(app.test_client().get("/metrics").get_data(as_text=True))
    assert value(exposed, "commentguard_upstream_total", outcome="agreed") >= 2
    assert value(exposed, "commentguard_upstream_total", outcome="disagreed") >= 1


def test_the_upstream_gets_the_comment_the_blog_and_is_test(make_app: Callable[..., Flask],
                                                            cg_upstream: LiveServer) -> None:
    app = upstream_app(make_app, cg_upstream.base_url, SHADOW, upstream_key=cg_upstream.key,
                       upstream_budget_ms=800)
    marker = f"Is the marker {time.time_ns()} visible upstream? Asking for a friend."
    response, _ = akismet_check(app, marker, is_test="1", comment_author_url="https://me.example")
    assert response.status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [c for c in upstream_store_checks(cg_upstream) if c.comment.comment_content == marker]
        if found:
            break
        time.sleep(0.1)
    assert found, "the upstream never logged the check"
    seen = found[0]
    assert seen.is_test and seen.surface == "akismet"
    assert seen.comment.blog == TEST_SITE and seen.comment.comment_author_url == "https://me.example"


def test_gray_asks_only_in_the_band_and_lets_the_upstream_decide(make_app: Callable[..., Flask],
                                                                 cg_upstream: LiveServer,
                                                                 cg_upstream_ham: LiveServer) -> None:
    # The default band is the unsure tier: clear verdicts are not sent.
    app = upstream_app(make_app, cg_upstream.base_url, GRAY, upstream_key=cg_upstream.key, upstream_budget_ms=800)
    result, _ = json_check(app, HAM_TEXT, **UPSTREAM_SAYS_SPAM)
    assert result["verdict"] == HAM
    assert stored_upstream(app, result["check_id"])["outcome"] == "skipped_mode"
    assert get_state(app).upstream.counters.snapshot()["calls"] == 0
    # A band that covers every score: the upstream's answer decides.
    app = upstream_app(make_app, cg_upstream.base_url, GRAY, upstream_key=cg_upstream.key,
                       upstream_budget_ms=800, upstream_gray_band=(0.0, 1.0))
    result, _ = json_check(app, HAM_TEXT, **UPSTREAM_SAYS_SPAM)
    assert result["verdict"] == SPAM and reason_texts(result)[0] == "upstream: spam"
    app = upstream_app(make_app, cg_upstream_ham.base_url, GRAY, upstream_key=cg_upstream_ham.key,
                       upstream_budget_ms=800, upstream_gray_band=(0.0, 1.0))
    result, _ = json_check(app, SPAM_TEXT)
    assert result["verdict"] == HAM and reason_texts(result)[0] == "upstream: ham"
    record = stored_upstream(app, result["check_id"])
    assert record["mode"] == "gray" and record["upstream"] == "ham" and record["ours"] != HAM


def test_gray_asks_about_the_configured_tiers_only(make_app: Callable[..., Flask],
                                                 cg_upstream: LiveServer) -> None:
    app = upstream_app(make_app, cg_upstream.base_url, GRAY, upstream_key=cg_upstream.key,
                       upstream_budget_ms=800, upstream_gray_tiers=("ham",))
    result, _ = json_check(app, HAM_TEXT, **UPSTREAM_SAYS_SPAM)
    assert result["verdict"] == SPAM and reason_texts(result)[0] == "upstream: spam"
    assert stored_upstream(app, result["check_id"])["ours"] == HAM
    result, _ = json_check(app, SPAM_TEXT)
    assert result["verdict"] != HAM
    assert stored_upstream(app, result["check_id"])["outcome"] == "skipped_mode"
    assert get_state(app).upstream.counters.snapshot()["calls"] == 1


def test_gray_tiers_setting_is_checked() -> None:
    assert load_settings({"COMMENTGUARD_UPSTREAM_GRAY_TIERS": "Unsure, spam"}).upstream_gray_tiers == (
        "unsure", "spam")
    assert load_settings({}).upstream_gray_tiers == ("unsure",)
    for bad in ("maybe", "unsure,blocked", ","):
        with pytest.raises(SettingsError, match="COMMENTGUARD_UPSTREAM_GRAY_TIERS"):
            load_settings({"COMMENTGUARD_UPSTREAM_GRAY_TIERS": bad})


def test_always_moves_one_step_toward_the_upstream(make_app: Callable[..., Flask],
                                                   cg_upstream: LiveServer, cg_upstream_ham: LiveServer) -> None:
    app = upstream_app(make_app, cg_upstream.base_url, ALWAYS, upstream_key=cg_upstream.key,
                       upstream_budget_ms=800)
    plain = make_app()
    result, _ = json_check(app, HAM_TEXT, **UPSTREAM_SAYS_SPAM)
    assert result["verdict"] == UNSURE and reason_texts(result)[0] == "upstream: spam"
    ours, _ = json_check(plain, SPAM_TEXT)
    says_ham = upstream_app(make_app, cg_upstream_ham.base_url, ALWAYS, upstream_key=cg_upstream_ham.key,
                            upstream_budget_ms=800)
    result, _ = json_check(says_ham, SPAM_TEXT)
    assert result["verdict"] == {"spam": UNSURE, "discard": SPAM}[ours["verdict"]]
    result, _ = json_check(app, HAM_TEXT)  # agreement changes nothing
    assert result["verdict"] == HAM and reason_texts(result)[0] == "upstream: ham"
    # The Akismet surface: the fixed rules still win over the upstream.
    response, _ = akismet_check(app, HAM_TEXT, comment_author="akismet-guaranteed-spam")
    assert response.get_data(as_text=True) == "true"


def test_forwarded_reports_reach_a_commentguard_upstream(make_app: Callable[..., Flask],
                                                         cg_upstream: LiveServer) -> None:
    app = upstream_app(make_app, cg_upstream.base_url, SHADOW, upstream_key=cg_upstream.key,
                       upstream_budget_ms=800, upstream_forward_feedback=True)
    marker = f"Forward me upstream please {time.time_ns()}, this is a real question about the post."
    response = app.test_client().post("/api/v1/feedback", json={"comment_content": marker, "label": "spam",
                                                                "user_ip": "192.0.2.7"})
    assert response.status_code == 201
    deadline = time.monotonic() + 10
    with open_store(str(cg_upstream.settings.database_url), secret=_secret(cg_upstream)) as store:
        while time.monotonic() < deadline:
            found = [f for f in store.list_feedback() if f.comment.comment_content == marker]
            if found:
                break
            time.sleep(0.1)
    assert len(found) == 1 and found[0].label == "spam" and found[0].comment.blog == TEST_SITE
    store = get_state(app).store
    while upstream_outbox_counts(store)["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the upstream has it; the mark follows its answer
    assert upstream_outbox_counts(store) == {"pending": 0, "delivered": 1}


def test_a_report_by_check_id_is_accepted_by_a_commentguard_upstream(make_app: Callable[..., Flask],
                                                                    cg_upstream: LiveServer) -> None:
    """The check log keeps the IP as a hash, so the report went without user_ip, and an upstream
    refused every JSON report by check id for good ("Missing required field: user_ip")."""
    app = upstream_app(make_app, cg_upstream.base_url, SHADOW, upstream_key=cg_upstream.key,
                       upstream_budget_ms=800, upstream_forward_feedback=True)
    marker = f"Reported by its check id {time.time_ns()}: cheap replica watches at http://watches.example/"
    checked, _ = json_check(app, marker, user_ip="192.0.2.9", blog=TEST_SITE)
    response = app.test_client().post("/api/v1/feedback", json={"check_id": checked["check_id"], "label": "spam"})
    assert response.status_code == 201
    store = get_state(app).store
    deadline = time.monotonic() + 10
    while upstream_outbox_counts(store)["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream_outbox_counts(store) == {"pending": 0, "delivered": 1}
    with open_store(str(cg_upstream.settings.database_url), secret=_secret(cg_upstream)) as upstream_store:
        (found,) = [f for f in upstream_store.list_feedback() if f.comment.comment_content == marker]
    assert found.label == "spam"


# --- reports survive an outage, and arrive once ---------------------------------------------------

def _fast_retries(app: Flask) -> Any:
    forwarder = get_state(app).upstream.forwarder
    forwarder.poll_s, forwarder.backoff_base, forwarder.backoff_cap = 0.05, 0.05, 0.2
    return forwarder


def test_reports_given_while_the_upstream_is_down_arrive_once_it_is_back(
        make_app: Callable[..., Flask], broken: BrokenUpstream) -> None:
    from service.upstream_outbox import FeedbackForwarder

    broken.submit = "500"
    app = upstream_app(make_app, broken.url, SHADOW, upstream_forward_feedback=True)
    forwarder = _fast_retries(app)
    client = app.test_client()
    key = app.config["TEST_API_KEY"]
    texts = [f"Outage report number {i}: a perfectly normal comment about the post." for i in range(4)]
    for text in texts[:2]:
        start = time.monotonic()
        answer = client.post("/1.1/submit-spam", data={"api_key": key, "blog": TEST_SITE, "user_ip": "198.51.100.4",
                                                       "comment_content": text})
        assert answer.get_data(as_text=True) == "Thanks for making the web a better place."
        assert time.monotonic() - start < 0.2  # the moderator never waits for the upstream
    for text in texts[2:]:
        assert client.post("/api/v1/feedback", json={"comment_content": text, "label": "ham"}).status_code == 201
    time.sleep(0.5)
    assert broken.calls("submit-spam") + broken.calls("submit-ham") >= 2  # it tried, and failed
    broken.submit = "reset"
    time.sleep(0.3)
    store = get_state(app).store
    assert upstream_outbox_counts(store)["pending"] == 4 and not broken.accepted_reports
    # A second sender on the same outbox (another worker process would have one) must not double-send.
    other = FeedbackForwarder(store, get_state(app).upstream.client, poll_s=0.05, backoff_base=0.05,
                              backoff_cap=0.2).start()
    try:
        broken.submit = "ok"
        deadline = time.monotonic() + 10
        while upstream_outbox_counts(store)["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        other.close()
    assert upstream_outbox_counts(store) == {"pending": 0, "delivered": 4}
    delivered = sorted(r["comment_content"][0] for r in broken.accepted_reports)
    assert delivered == sorted(texts), "each report exactly once"
    assert all(r["api_key"] == [UPSTREAM_KEY] for r in broken.accepted_reports)
    assert forwarder.delivered + other.delivered == 4


def test_a_forgotten_report_is_not_forwarded_once_the_upstream_is_back(
        make_app: Callable[..., Flask], broken: BrokenUpstream) -> None:
    """Found by a probe: `commentguard feedback forget` left the report in the outbox, user_ip in
    clear, and it was delivered once the upstream was back."""
    broken.submit = "500"
    app = upstream_app(make_app, broken.url, ALWAYS, upstream_forward_feedback=True)
    _fast_retries(app)
    client = app.test_client()
    sent = [client.post("/api/v1/feedback", json={"comment": {"comment_content": f"Forget me {i}, a comment.",
                                                              "user_ip": "198.51.100.77"}, "label": "spam"})
            for i in range(2)]
    assert [r.status_code for r in sent] == [201, 201]
    forgotten_id, kept_id = (r.get_json()["feedback_id"] for r in sent)
    assert _wait_for(lambda: broken.calls("submit-spam") >= 2)  # tried, and failed
    store = get_state(app).store
    forgotten = store.forget_feedback(forgotten_id)
    assert forgotten.labels == 1 and forgotten.reports == 1
    rows = store.database.read(lambda tx: tx.fetchall("SELECT feedback_id, payload FROM upstream_outbox"))
    assert [r["feedback_id"] for r in rows] == [kept_id] and "Forget me 0" not in json.dumps(rows)
    broken.submit = "ok"
    assert _wait_for(lambda: upstream_outbox_counts(store) == {"pending": 0, "delivered": 1})
    time.sleep(0.3)
    assert [r["comment_content"] for r in broken.accepted_reports] == [["Forget me 1, a comment."]]


def test_the_cli_says_a_forgotten_report_will_not_be_forwarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from store import FeedbackRecord
    from store.upstream import enqueue_upstream_report

    monkeypatch.setenv("COMMENTGUARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMMENTGUARD_SECRET_KEY", TEST_SECRET_KEY)
    with open_store(str(tmp_path / "commentguard.sqlite3"), secret=TEST_SECRET_KEY.encode()) as store:
        fid = store.add_feedback(FeedbackRecord("spam", Comment(comment_content="forget me"), source="api"))
        enqueue_upstream_report(store, "spam", {"comment_content": "forget me", "user_ip": "192.0.2.1"}, fid)
    result = CliRunner().invoke(cli, ["feedback", "forget", str(fid)])
    assert result.exit_code == 0, result.output
    assert "1 report not yet forwarded upstream will not be" in result.output
    with open_store(str(tmp_path / "commentguard.sqlite3"), secret=TEST_SECRET_KEY.encode()) as store:
        assert upstream_outbox_counts(store) == {"pending": 0, "delivered": 0}


def test_reports_outlive_a_restart(make_app: Callable[..., Flask], broken: BrokenUpstream) -> None:
    from service.app import close_app

    broken.submit = "reset"
    first = upstream_app(make_app, broken.url, SHADOW, upstream_forward_feedback=True)
    _fast_retries(first)
    assert first.test_client().post("/api/v1/feedback", json={"comment_content": "Kept across a restart?",
                                                              "label": "ham"}).status_code == 201
    time.sleep(0.2)
    close_app(first)
    broken.submit = "ok"
    second = upstream_app(make_app, broken.url, SHADOW, upstream_forward_feedback=True)
    _fast_retries(second)
    deadline = time.monotonic() + 10
    while not broken.accepted_reports and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert [r["comment_content"] for r in broken.accepted_reports] == [["Kept across a restart?"]]


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("answer", ["Temporarily unavailable: the report could not be stored, please retry",
                                    "<html><body>502 Bad Gateway</body></html>", ""])
def test_a_report_answered_with_a_passing_failure_is_sent_again(make_app: Callable[..., Flask],
                                                                 broken: BrokenUpstream, answer: str) -> None:
    # CommentGuard itself answers "Temporarily unavailable" (HTTP 200) while its store is down;
    # a proxy may answer 200 with a page. Neither says anything about the report.
    broken.submit = answer
    app = upstream_app(make_app, broken.url, SHADOW, upstream_forward_feedback=True)
    forwarder = _fast_retries(app)
    assert app.test_client().post("/api/v1/feedback", json={"comment_content": "Retry me later, please.",
                                                            "label": "ham"}).status_code == 201
    assert _wait_for(lambda: broken.calls("submit-ham") >= 2)
    store = get_state(app).store
    assert upstream_outbox_counts(store) == {"pending": 1, "delivered": 0} and forwarder.rejected == 0
    broken.submit = "ok"
    assert _wait_for(lambda: upstream_outbox_counts(store) == {"pending": 0, "delivered": 1})
    assert [r["comment_content"] for r in broken.accepted_reports] == [["Retry me later, please."]]


def test_reports_forward_real_values_never_the_stored_hashes(make_app: Callable[..., Flask],
                                                             broken: BrokenUpstream) -> None:
    app = upstream_app(make_app, broken.url, SHADOW, upstream_forward_feedback=True)
    _fast_retries(app)
    client = app.test_client()
    ip, email = "203.0.113.77", "someone@spam.example"
    checked, _ = json_check(app, SPAM_TEXT, comment_author_email=email, blog=TEST_SITE, user_ip=ip)
    # By check id: only the check log's copy exists, whose IP and e-mail are keyed hashes.
    assert client.post("/api/v1/feedback", json={"check_id": checked["check_id"], "label": "spam"}).status_code == 201
    # By guid alone on the Akismet surface: the form's own user_ip is the real one.
    guid = akismet_check(app, HAM_TEXT, comment_author_email=email)[0].headers["X-akismet-guid"]
    form = {"api_key": app.config["TEST_API_KEY"], "blog": TEST_SITE, "user_ip": "198.51.100.8", "guid": guid}
    assert client.post("/1.1/submit-ham", data=form).get_data(as_text=True).startswith("Thanks")
    assert _wait_for(lambda: len(broken.accepted_reports) == 2)
    by_id, by_guid = sorted(broken.accepted_reports, key=lambda r: r["comment_content"] != [SPAM_TEXT])
    sent = json.dumps(broken.accepted_reports)
    assert "hmac:" not in sent and email not in sent
    # The protocol requires user_ip: the unspecified address stands for the one kept only as a hash.
    assert by_id["comment_content"] == [SPAM_TEXT] and by_id["user_ip"] == ["0.0.0.0"]
    assert by_guid["comment_content"] == [HAM_TEXT] and by_guid["user_ip"] == ["198.51.100.8"]


def test_a_report_refused_for_what_it_is_is_not_sent_again(make_app: Callable[..., Flask],
                                                           broken: BrokenUpstream, settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    broken.submit = "Missing required field: user_ip."
    app = upstream_app(make_app, broken.url, SHADOW, upstream_forward_feedback=True)
    forwarder = _fast_retries(app)
    assert app.test_client().post("/api/v1/feedback", json={"comment_content": "No IP with this one.",
                                                            "label": "spam"}).status_code == 201
    assert _wait_for(lambda: forwarder.rejected == 1)
    time.sleep(0.3)
    assert broken.calls("submit-spam") == 1
    assert upstream_outbox_counts(get_state(app).store) == {"pending": 0, "delivered": 0, "rejected": 1}
    # The text report says so (only --json did): such reports are lost to the upstream.
    monkeypatch.setenv("COMMENTGUARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COMMENTGUARD_SECRET_KEY", TEST_SECRET_KEY)
    text = CliRunner().invoke(cli, ["upstream", "report"])
    assert text.exit_code == 0 and "0 delivered, 1 refused by the upstream for good" in text.output


def test_a_thank_you_that_trickles_in_is_cut_off_before_the_lease_ends(
        make_app: Callable[..., Flask], broken: BrokenUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    import service.upstream_client as upstream_client

    # Scaled down: the deadline is 30 s against a 120 s lease; here 0.5 s against an answer of
    # 41 bytes at 0.2 s each, each read well inside the per-read timeout.
    monkeypatch.setattr(upstream_client, "SUBMIT_DEADLINE_S", 0.5)
    broken.submit = "trickle"
    app = upstream_app(make_app, broken.url, SHADOW, upstream_forward_feedback=True)
    forwarder = _fast_retries(app)
    start = time.monotonic()
    assert app.test_client().post("/api/v1/feedback", json={"comment_content": "Slow thanks.",
                                                            "label": "spam"}).status_code == 201
    assert _wait_for(lambda: forwarder.failed_attempts >= 1, timeout=5)
    assert time.monotonic() - start < 3  # not the 8 s the whole answer would take
    assert upstream_outbox_counts(get_state(app).store)["pending"] == 1


def test_an_answer_longer_than_a_verdict_is_no_verdict(make_app: Callable[..., Flask],
                                                       broken: BrokenUpstream) -> None:
    broken.check = "longtrue"
    app = upstream_app(make_app, broken.url, ALWAYS)
    result, _ = json_check(app, HAM_TEXT, blog=TEST_SITE)
    assert result["verdict"] == "ham" and "upstream: spam" not in reason_texts(result)
    stored = stored_upstream(app, result["check_id"])
    assert stored["outcome"] == "error" and stored["answer"] == "answer too long"


# --- the report and the weak-label export ---------------------------------------------------------

def test_report_and_export_with_upstream_labels(make_app: Callable[..., Flask], broken: BrokenUpstream,
                                                settings: Settings, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app = upstream_app(make_app, broken.url, SHADOW)
    broken.check = "true"
    json_check(app, HAM_TEXT)
    json_check(app, SPAM_TEXT)
    broken.check = "500"
    json_check(app, "Another perfectly ordinary remark about the recipe, thanks.")
    assert app.test_client().post("/api/v1/feedback", json={"comment_content": SPAM_TEXT,
                                                            "label": "spam"}).status_code == 201
    get_state(app).recorder.flush()
    monkeypatch.setenv("COMMENTGUARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COMMENTGUARD_SECRET_KEY", TEST_SECRET_KEY)
    runner = CliRunner()
    result = runner.invoke(cli, ["upstream", "report", "--days", "1", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["checks"] == 3 and figures["outcomes"]["error"] == 1
    assert figures["answered"] == 2 and figures["modes"] == {"shadow": 3}
    assert sum(row["spam"] for row in figures["confusion"].values()) == 2
    assert figures["agreement_rate"] == round(figures["outcomes"]["agreed"] / 2, 4)
    text = runner.invoke(cli, ["upstream", "report"])
    assert text.exit_code == 0 and "agreement" in text.output

    out = tmp_path / "train.jsonl"
    assert runner.invoke(cli, ["feedback", "export", "--out", str(out)]).exit_code == 0
    assert [json.loads(line)["comment_content"] for line in out.read_text().splitlines()] == [SPAM_TEXT]
    result = runner.invoke(cli, ["feedback", "export", "--out", str(out), "--include-upstream"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # The moderator's label for SPAM_TEXT wins; HAM_TEXT comes from the upstream ("true"); the 500 is no label.
    assert [(r["comment_content"], r["label"], r["label_source"]) for r in rows] == [
        (SPAM_TEXT, "spam", "moderator"), (HAM_TEXT, "spam", "upstream")]
    # Forgotten (an erasure request), the comment does not come back as the upstream's weak label.
    (label,) = get_state(app).store.list_feedback()
    assert "1 check of that comment" in runner.invoke(cli, ["feedback", "forget", str(label.id)]).output
    assert runner.invoke(cli, ["feedback", "export", "--out", str(out), "--include-upstream"]).exit_code == 0
    assert [json.loads(line)["comment_content"] for line in out.read_text().splitlines()] == [HAM_TEXT]


# --- the outbox on both engines -------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_outbox_claims_are_exclusive_and_delivery_drops_the_payload(engine: str, tmp_path: Path,
                                                                    request: pytest.FixtureRequest) -> None:
    from store.upstream import (claim_upstream_reports, enqueue_upstream_report, mark_upstream_delivered,
                                mark_upstream_failed, mark_upstream_rejected)
    from store.records import utcnow

    url = str(tmp_path / "db.sqlite3") if engine == "sqlite" else request.getfixturevalue("pg_url")
    with open_store(url, secret=TEST_SECRET_KEY.encode()) as store:
        ids = [enqueue_upstream_report(store, "spam", {"comment_content": f"c{i}", "user_ip": "192.0.2.1"})
               for i in range(3)]
        first = claim_upstream_reports(store, limit=2)
        assert [i.id for i in first] == ids[:2] and first[0].payload["comment_content"] == "c0"
        assert [i.id for i in claim_upstream_reports(store, limit=5)] == ids[2:]  # leased rows are not handed out
        assert claim_upstream_reports(store) == []
        mark_upstream_delivered(store, ids[0])
        mark_upstream_failed(store, ids[1], "HTTP 500", utcnow())
        mark_upstream_rejected(store, ids[2], "refused: 'Missing required field: user_ip.'")
        again = claim_upstream_reports(store)
        assert [i.id for i in again] == [ids[1]] and again[0].attempts == 1
        assert upstream_outbox_counts(store) == {"pending": 1, "delivered": 1, "rejected": 1}
        payloads = store.database.read(lambda tx: tx.fetchall("SELECT payload FROM upstream_outbox ORDER BY id"))
        assert payloads[0]["payload"] == "{}" and payloads[2]["payload"] == "{}"


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_forgetting_and_the_retention_drop_undelivered_reports(engine: str, tmp_path: Path,
                                                               request: pytest.FixtureRequest,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """A report's payload holds IP and e-mail in clear until it is delivered: forgetting its label
    deletes it (not the other labels' reports), and one the upstream never took goes with the
    retention (found by a probe: it was kept, and later forwarded, for ever)."""
    from service.recorder import Recorder
    from store import FeedbackRecord
    from store.upstream import enqueue_upstream_report, mark_upstream_delivered

    url = str(tmp_path / "db.sqlite3") if engine == "sqlite" else request.getfixturevalue("pg_url")
    payload = {"comment_content": "c", "user_ip": "192.0.2.1"}
    with open_store(url, secret=TEST_SECRET_KEY.encode()) as store:
        fids = [store.add_feedback(FeedbackRecord("spam", Comment(comment_content=f"forget {i}"), source="api",
                                                  check_id="0" * 31 + "1" if i < 2 else None)) for i in range(3)]
        ids = [enqueue_upstream_report(store, "spam", payload, fid) for fid in fids]
        mark_upstream_delivered(store, ids[1])
        assert store.forget_feedback_for_check("0" * 31 + "1").reports == 1  # the delivered one holds nothing
        left = store.database.read(lambda tx: tx.fetchall("SELECT id FROM upstream_outbox ORDER BY id"))
        assert [r["id"] for r in left] == ids[1:]
        # An old undelivered report, and an old delivered one (kept for the counts).
        old = enqueue_upstream_report(store, "ham", payload)
        store.database.run(lambda tx: tx.execute("UPDATE upstream_outbox SET created = created - INTERVAL '40 days' "
                                                 "WHERE id IN (?, ?)", (old, ids[1]))
                           if engine == "postgresql" else
                           tx.execute("UPDATE upstream_outbox SET created = ? WHERE id IN (?, ?)",
                                      ("2000-01-01 00:00:00", old, ids[1])))
        with caplog.at_level("WARNING", logger="service.recorder"):
            Recorder(store, retention_days=30).purge()
        left = store.database.read(lambda tx: tx.fetchall("SELECT id FROM upstream_outbox ORDER BY id"))
        assert [r["id"] for r in left] == ids[1:]
        assert "dropped 1 reports for the upstream not delivered within 30 days" in caplog.text
        assert Recorder(store, retention_days=0).purge() == 0  # 0: kept for ever
        assert upstream_outbox_counts(store) == {"pending": 1, "delivered": 1}
