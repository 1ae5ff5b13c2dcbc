"""The moderator loop end to end: reports -> retrain -> promotion -> hot reload in running servers.

Each test runs the real ``commentguard serve`` (gunicorn, several workers) and the
real command line (``commentguard retrain`` / ``models activate``) as subprocesses.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from model.artifact import METADATA_NAME, PICKLE_NAME, TABLES_NAME, add_tables, read_metadata, save_model
from model.pipeline import build_pipeline, fit_pipeline
from service.settings import load_or_create_secret_key
from store import Store, open_store
from tests.campaign_data import GRANT_SCAM, OWN_HAM
from service.app import close_app, get_state
from tests.conftest import REPO, TEST_SECRET_KEY, TEST_THRESHOLDS, LiveServer, start_live_server, tiny_training_set

pytestmark = pytest.mark.slow

REPORTED, FRESH = GRANT_SCAM[:30], GRANT_SCAM[30:]
BLOG = "https://blog.example.org"


# --- helpers ----------------------------------------------------------------------------------

def cli_env(server: LiveServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTGUARD_")}
    env.update({"COMMENTGUARD_DATA_DIR": str(server.settings.data_dir),
                "COMMENTGUARD_MODEL_PATH": str(server.settings.model_path)})
    if server.settings.database_url and "://" in server.settings.database_url:
        env["COMMENTGUARD_DATABASE_URL"] = server.settings.database_url
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commentguard", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def comment_form(server: LiveServer, text: str, author: str = "Linda M") -> dict[str, str]:
    # A sender (e-mail and IP) per comment, as a campaign rotates them: this measures what the
    # model learns, and one sender's labels would move the verdicts on their own (service.sender_history).
    n = zlib.crc32(text.encode())
    return {"api_key": server.key, "blog": BLOG, "user_ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
            "comment_type": "comment", "comment_author": author,
            "comment_author_email": f"{author.split()[0].lower()}.{n}@example.net", "comment_content": text}


def check(client: httpx.Client, server: LiveServer, text: str, author: str = "Linda M") -> httpx.Response:
    return client.post(f"{server.base_url}/1.1/comment-check", data=comment_form(server, text, author))


def flagged(response: httpx.Response) -> bool:
    return response.headers["X-CommentGuard-Verdict"] in ("spam", "discard")


def version_of(response: httpx.Response) -> str:
    return response.headers["X-CommentGuard-Model-Version"]


def tiny_model(out: Path, version: str, flip: bool = False) -> dict[str, Any]:
    """A small real artifact with its own version id (``flip`` swaps the labels: a different model)."""
    comments, labels = tiny_training_set()
    if flip:
        labels = [1 - y for y in labels]
    pipeline = fit_pipeline(build_pipeline(), comments, labels)
    return save_model(pipeline, out, thresholds=TEST_THRESHOLDS, metadata={"version": version})


def wait_for(predicate: Any, timeout: float, step: float = 0.1) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


class Load:
    """Client threads sending a steady stream of checks; every answer is kept."""

    def __init__(self, server: LiveServer, threads: int = 4) -> None:
        self.server = server
        self.results: list[tuple[float, int, str, float]] = []  # (time, status, version, seconds)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    r = check(client, self.server, "Thanks, the second example made it click for me.")
                    ok = r.status_code == 200 and r.text in ("true", "false")
                    self.results.append((time.monotonic(), r.status_code if ok else -r.status_code,
                                         version_of(r) if ok else r.text[:80], time.monotonic() - started))
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def failures(self) -> list[Any]:
        return self.errors + [r for r in self.results if r[1] != 200]


def switched_processes(server: LiveServer, version: str) -> set[int]:
    log = (server.settings.data_dir / "server.log").read_text(errors="replace")
    return {int(pid) for pid in re.findall(rf"-> {re.escape(version)} loaded .*?\(process (\d+)\)", log)}


def worker_pids(server: LiveServer) -> set[int]:
    """The gunicorn master's children, from /proc (the master is the serve process itself)."""
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    return {int(c) for c in children}


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def default_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real default model (trained from the seed corpus, as ``serve`` does on first run)."""
    from training.defaults import ensure_default_model

    path = tmp_path_factory.mktemp("default") / "model"
    ensure_default_model(path, quiet=True)
    return path


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


# --- the loop end to end --------------------------------------------------------------------------

def test_reported_campaign_is_learned_and_served_without_restart(
        tmp_path: Path, default_model: Path, servers: list[LiveServer]) -> None:
    server = start_live_server(tmp_path / "var", default_model, workers=2)
    servers.append(server)
    env = cli_env(server)
    with httpx.Client(timeout=10) as client:
        before_version = client.get(f"{server.base_url}/readyz").json()["model_version"]
        fresh_before = sum(flagged(check(client, server, t)) for t in FRESH)
        ham_before = sum(flagged(check(client, server, t, "Sam Reader")) for t in OWN_HAM)
        reported_caught = 0
        for text in REPORTED:  # a moderator finds each in the approved queue and reports it
            r = check(client, server, text)
            reported_caught += flagged(r)
            s = client.post(f"{server.base_url}/1.1/submit-spam",
                            data={**comment_form(server, text), "guid": r.headers["X-akismet-guid"]})
            assert s.text == "Thanks for making the web a better place."
    assert reported_caught <= 3 and fresh_before <= 2, "the campaign must be new to the default model"

    run = cli(env, "retrain", "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout)
    assert outcome["promoted"] and not outcome["forced"], outcome["decision"]
    assert outcome["recent_feedback"]["held_out"] == 6
    report = Path(outcome["report"])
    assert report.is_file() and report.parent == server.settings.data_dir / "models" / outcome["version"]

    promoted_at = time.monotonic()
    with httpx.Client(timeout=10) as client:
        took = wait_for(lambda: client.get(f"{server.base_url}/readyz").json()["model_version"]
                        == outcome["version"], timeout=15)
        # Every worker, not just the one answering /readyz: 30 checks in a row on the new model.
        wait_for(lambda: all(version_of(check(client, server, OWN_HAM[0], "Sam Reader")) == outcome["version"]
                             for _ in range(30)), timeout=15)
        fresh_after = [check(client, server, t) for t in FRESH]
        ham_after = sum(flagged(check(client, server, t, "Sam Reader")) for t in OWN_HAM)
    switch_seconds = time.monotonic() - promoted_at
    assert {version_of(r) for r in fresh_after} == {outcome["version"]}
    caught_after = sum(flagged(r) for r in fresh_after)
    figures = {"model_before": before_version, "model_after": outcome["version"],
               "fresh_caught_before": f"{fresh_before}/{len(FRESH)}",
               "fresh_caught_after": f"{caught_after}/{len(FRESH)}",
               "reported_caught_before": f"{reported_caught}/{len(REPORTED)}",
               "own_ham_flagged_before": f"{ham_before}/{len(OWN_HAM)}",
               "own_ham_flagged_after": f"{ham_after}/{len(OWN_HAM)}",
               "readyz_switch_seconds": round(took, 2), "all_workers_seconds": round(switch_seconds, 2),
               "gate": outcome["decision"]}
    print("MODERATOR LOOP", json.dumps(figures, indent=2))
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    assert caught_after >= 0.9 * len(FRESH), figures
    assert ham_after <= ham_before, figures
    assert switch_seconds < 20, figures

    listing = json.loads(cli(env, "models", "list", "--json").stdout)
    assert [m["status"] for m in listing if m["version"] == outcome["version"]] == ["active"]
    assert [m["status"] for m in listing if m["version"] == before_version] == ["retired"]
    promoted = next(m for m in listing if m["version"] == outcome["version"])
    assert promoted["promoted_reason"].startswith("retrain gate passed")
    assert promoted["metrics"]["held_out"]["n"] > 0

    # Rollback: the running service goes back to the default model, again without a restart.
    assert cli(env, "models", "rollback", "--reason", "test").returncode == 0
    with httpx.Client(timeout=10) as client:
        wait_for(lambda: client.get(f"{server.base_url}/readyz").json()["model_version"] == before_version,
                 timeout=15)


# --- reload under load ---------------------------------------------------------------------------

def test_activation_under_load_fails_no_request_and_reaches_every_worker(
        tmp_path: Path, model_dir: Path, servers: list[LiveServer]) -> None:
    server = start_live_server(tmp_path / "var", model_dir, workers=3,
                               env={"COMMENTGUARD_LOG_LEVEL": "WARNING"})
    servers.append(server)
    new = tiny_model(server.settings.data_dir / "models" / "test-model-2", "test-model-2", flip=True)
    with open_store(str(server.settings.database_url),
                    secret=load_or_create_secret_key(server.settings.data_dir).encode()) as store:
        store.register_model(new, str(server.settings.data_dir / "models" / "test-model-2"))
    # /readyz answers as soon as one worker is up; gunicorn may still be forking the others.
    wait_for(lambda: len(worker_pids(server)) == 3, timeout=15)
    workers = worker_pids(server)
    assert len(workers) == 3
    store = open_store(str(server.settings.database_url),
                       secret=load_or_create_secret_key(server.settings.data_dir).encode())
    with Load(server) as load:
        time.sleep(2)
        command = subprocess.Popen([sys.executable, "-m", "commentguard", "models", "activate", "test-model-2",
                                    "--reason", "load test"], cwd=REPO, env=cli_env(server))
        # Timed from the moment the registry row changes, not from the command's start-up.
        wait_for(lambda: store.get_active_model().version == "test-model-2", timeout=30, step=0.02)
        activated = time.monotonic()
        assert command.wait(30) == 0
        wait_for(lambda: any(r[2] == "test-model-2" for r in list(load.results)), timeout=10)
        wait_for(lambda: switched_processes(server, "test-model-2") >= workers, timeout=10)
        all_done = time.monotonic()
        time.sleep(2)
    store.close()
    assert load.failures() == []
    results = load.results
    after = [r for r in results if r[0] > all_done + 0.2]
    assert len(after) > 50 and {r[2] for r in after} == {"test-model-2"}
    assert all_done - activated < 10
    slowest = max(r[3] for r in results)
    during = [r[3] for r in results if activated <= r[0] <= all_done + 0.5]
    print("RELOAD UNDER LOAD", json.dumps({"requests": len(results), "failed": 0,
                                           "all_workers_switched_s": round(all_done - activated, 2),
                                           "slowest_request_s": round(slowest, 3),
                                           "slowest_during_switch_s": round(max(during), 3)}))
    assert slowest < 2.0


# --- two instances, one database -----------------------------------------------------------------

@pytest.mark.postgres
def test_two_instances_sharing_postgres_and_models_dir_both_switch(
        tmp_path: Path, model_dir: Path, pg_url: str, servers: list[LiveServer]) -> None:
    shared_models = tmp_path / "shared-models"
    secret = "shared-secret-0123456789abcdef"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "secret_key").write_text(secret + "\n")
        (tmp_path / name / "secret_key").chmod(0o600)
    env = {"COMMENTGUARD_MODELS_DIR": str(shared_models)}
    a = start_live_server(tmp_path / "a", model_dir, database_url=pg_url, workers=2, env=env)
    servers.append(a)
    b = start_live_server(tmp_path / "b", model_dir, database_url=pg_url, workers=2, env=env)
    servers.append(b)
    new = tiny_model(shared_models / "shared-2", "shared-2", flip=True)
    with open_store(pg_url, secret=secret.encode()) as store:
        assert store.get_active_model().version == "test-model-1"  # registered by the first start
        store.register_model(new, str(shared_models / "shared-2"))
    assert cli(cli_env(a, **env), "models", "activate", "shared-2").returncode == 0
    with httpx.Client(timeout=10) as client:
        for server in (a, b):
            wait_for(lambda: all(version_of(check(client, server, OWN_HAM[1])) == "shared-2"
                                 for _ in range(20)), timeout=10)
            assert client.get(f"{server.base_url}/readyz").json()["model_version"] == "shared-2"


# --- a corrupted artifact --------------------------------------------------------------------------

def test_corrupted_artifact_is_refused_and_the_old_model_keeps_serving(
        tmp_path: Path, model_dir: Path, servers: list[LiveServer]) -> None:
    server = start_live_server(tmp_path / "var", model_dir, workers=2)
    servers.append(server)
    bad_dir = server.settings.data_dir / "models" / "broken-1"
    meta = tiny_model(bad_dir, "broken-1", flip=True)
    pickle = bad_dir / PICKLE_NAME
    data = bytearray(pickle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pickle.write_bytes(bytes(data))
    # "By mistake": straight into the registry, past the CLI's own check.
    with open_store(str(server.settings.database_url),
                    secret=load_or_create_secret_key(server.settings.data_dir).encode()) as store:
        store.register_model(meta, str(bad_dir))
        store.activate_model("broken-1", "someone", "oops")
    with httpx.Client(timeout=10) as client:
        def refused_everywhere() -> bool:
            bodies = [client.get(f"{server.base_url}/readyz") for _ in range(10)]
            return all(b.status_code == 200 and b.json().get("refused", {}).get("version") == "broken-1"
                       for b in bodies)
        wait_for(refused_everywhere, timeout=10)
        body = client.get(f"{server.base_url}/readyz").json()
        assert body["model_version"] == "test-model-1" and body["registry_version"] == "broken-1"
        assert "SHA-256" in body["refused"]["reason"]
        answers = [check(client, server, "Great post, thanks!") for _ in range(20)]
        assert all(r.status_code == 200 and version_of(r) == "test-model-1" for r in answers)
    log = (server.settings.data_dir / "server.log").read_text(errors="replace")
    # Refused once per worker, not retried every two seconds.
    time.sleep(3)
    log = (server.settings.data_dir / "server.log").read_text(errors="replace")
    assert 1 <= log.count("refused model broken-1") <= 2
    # The CLI refuses the same mistake up front.
    run = cli(cli_env(server), "models", "activate", "broken-1")
    assert run.returncode != 0


def test_a_model_the_workers_would_refuse_is_refused_by_the_cli_and_at_start(
        tmp_path: Path, model_dir: Path, servers: list[LiveServer]) -> None:
    server = start_live_server(tmp_path / "var", model_dir, workers=2)
    servers.append(server)
    env = cli_env(server)
    models = server.settings.data_dir / "models"
    good = tiny_model(models / "good-2", "good-2", flip=True)
    # Intact files, impossible thresholds: only loading the model finds it out.
    bad = tiny_model(models / "bad-thresholds", "bad-thresholds")
    bad_meta = models / "bad-thresholds" / "metadata.json"
    bad_meta.write_text(json.dumps({**json.loads(bad_meta.read_text()),
                                    "thresholds": {"unsure": 0.9, "spam": 0.5, "discard": 0.99}}))
    secret = load_or_create_secret_key(server.settings.data_dir).encode()
    with open_store(str(server.settings.database_url), secret=secret) as store:
        store.register_model(good, str(models / "good-2"))
        store.register_model(bad, str(models / "bad-thresholds"))
    refused = cli(env, "models", "activate", "bad-thresholds")
    assert refused.returncode != 0 and "refusing to activate bad-thresholds" in refused.stderr, refused.stderr
    assert "thresholds" in refused.stderr
    assert cli(env, "models", "activate", "good-2").returncode == 0
    with open_store(str(server.settings.database_url), secret=secret) as store:
        store.activate_model("bad-thresholds", "someone", "past the CLI, by mistake")
    with httpx.Client(timeout=10) as client:
        # A fresh connection each time: one kept alive would ask the same worker every time.
        wait_for(lambda: all(httpx.get(f"{server.base_url}/readyz").json().get("refused") for _ in range(10)), 15)
        # A worker started now (gunicorn replacing one that died) must not load the refused model
        # and serve nothing: it serves the configured model and is ready.
        before = worker_pids(server)
        os.kill(min(before), 9)
        wait_for(lambda: len(worker_pids(server)) == 2 and worker_pids(server) != before, 30)
        for _ in range(20):
            with httpx.Client(timeout=10) as fresh:  # new connections reach both workers
                ready = fresh.get(f"{server.base_url}/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json().get("refused", {}).get("version") == "bad-thresholds", ready.json()
                answer = check(fresh, server, "Great post, thanks!")
                assert answer.status_code == 200 and version_of(answer) in ("good-2", "test-model-1")
    # Rolling back onto the refused model is refused too, and changes nothing.
    assert cli(env, "models", "activate", "good-2").returncode == 0
    rollback = cli(env, "models", "rollback")
    assert rollback.returncode != 0 and "refusing to roll back to bad-thresholds" in rollback.stderr
    with open_store(str(server.settings.database_url), secret=secret) as store:
        active = store.get_active_model()
        assert active is not None and active.version == "good-2"


def test_a_worker_refuses_a_registered_version_whose_files_are_another_model(
        tmp_path: Path, model_dir: Path, servers: list[LiveServer]) -> None:
    # The files of version "v-old" overwritten in place by another model (`train --out` there).
    data_dir = tmp_path / "var"
    models = data_dir / "models"
    meta = tiny_model(models / "v-old", "v-old", flip=True)
    tiny_model(models / "v-old", "v-new")
    server = start_live_server(data_dir, model_dir, workers=1)
    servers.append(server)
    with open_store(str(server.settings.database_url),
                    secret=load_or_create_secret_key(data_dir).encode()) as store:
        store.register_model(meta, str(models / "v-old"))
        store.activate_model("v-old", "someone", "test")
    with httpx.Client(timeout=10) as client:
        wait_for(lambda: client.get(f"{server.base_url}/readyz").json().get("refused") is not None, 15)
        os.kill(min(worker_pids(server)), 9)  # its replacement starts with v-old active
        time.sleep(1)
        wait_for(lambda: client.get(f"{server.base_url}/readyz").status_code == 200, 30)
        body = client.get(f"{server.base_url}/readyz").json()
        assert body["model_version"] == "test-model-1" and "not the registered" in body["refused"]["reason"]
        assert version_of(check(client, server, "Great post, thanks!")) == "test-model-1"


# --- forgetting ----------------------------------------------------------------------------------

def test_forgotten_feedback_is_not_learned_by_the_next_retrain(tmp_path: Path, model_dir: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    base = tmp_path / "base.jsonl"
    comments, labels = tiny_training_set()
    base.write_text("".join(json.dumps({"comment_content": c.comment_content, "label": "spam" if y else "ham"})
                            + "\n" for c, y in zip(comments, labels))
                    # Two malformed rows: left out, and said so.
                    + json.dumps({"comment_content": "", "label": "spam"}) + "\n"
                    + json.dumps({"comment_content": "A fine comment.", "label": "maybe"}) + "\n")
    n_rows = len(comments)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTGUARD_")}
    env.update({"COMMENTGUARD_DATA_DIR": str(data_dir), "COMMENTGUARD_MODEL_PATH": str(model_dir)})
    from model.comment import Comment
    from store import FeedbackRecord

    secret = load_or_create_secret_key(data_dir).encode()
    with open_store(str(data_dir / "commentguard.sqlite3"), secret=secret) as store:
        ids = [store.add_feedback(FeedbackRecord(label="spam", comment=Comment(comment_content=t)))
               for t in GRANT_SCAM[:10]]
        store.add_feedback(FeedbackRecord(label="spam", comment=Comment(comment_content=GRANT_SCAM[11]),
                                          is_test=True))
    forgotten = ids[3]
    assert cli(env, "feedback", "forget", str(forgotten)).returncode == 0
    run = cli(env, "retrain", "--no-seed", "--data", str(base), "--json", "--force", "--reason", "test")
    assert run.returncode == 0, run.stderr[-2000:]
    warnings = [line for line in run.stderr.splitlines() if "warning: " in line]
    assert len(warnings) == 2 and f"base.jsonl:{n_rows + 1}" in warnings[0] and f"base.jsonl:{n_rows + 2}" in warnings[1]
    out = json.loads(run.stdout)
    assert out["feedback_labels"] == 9  # forgotten and is_test labels never count
    meta = read_metadata(out["path"])
    source = next(s for s in meta["training"]["sources"] if s["path"] == "feedback")
    learned, held = set(source["feedback_ids"]), set(source["held_out_feedback_ids"])
    assert forgotten not in learned | held
    # Promoted (forced), so refitted on every row after the gate: every label learned.
    assert learned == set(ids) - {forgotten} and held == set()
    assert meta["training"]["refit_after_gate"]["held_out_rows"] > 0


def _as_before_tables(path: Path) -> None:
    """Make ``path`` an artifact as releases wrote it before serving tables existed."""
    (path / TABLES_NAME).unlink()
    meta = json.loads((path / METADATA_NAME).read_text())
    del meta["tables"]
    (path / METADATA_NAME).write_text(json.dumps(meta))


def test_an_upgrade_from_before_serving_tables_names_both_models_and_notices_the_mended_one(
        tmp_path: Path, make_app: Any) -> None:
    """A probe upgraded an install whose registry had a retrained model: /readyz said to add tables to
    the configured model alone, stayed 503 after that was done, and after a restart served the older
    configured model with nothing in the log but a refusal."""
    configured = tmp_path / "model"
    tiny_model(configured, "configured-1")
    retrained = tmp_path / "var" / "models" / "retrained-2"
    meta = tiny_model(retrained, "retrained-2", flip=True)
    app = make_app(scorer=None, model_path=configured, model_check_seconds=0)  # a store, the registry
    close_app(app)
    with open_store(str(get_state(app).settings.database_url),
                    secret=TEST_SECRET_KEY.encode()) as store:
        store.register_model(meta, str(retrained))
        store.activate_model("retrained-2", "retrain", "promoted")
    _as_before_tables(configured)
    _as_before_tables(retrained)

    app = make_app(scorer=None, model_path=configured, model_check_seconds=0)
    state = get_state(app)
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    reason = ready.get_json()["reason"]
    assert "retrained-2" in reason and str(configured) in reason and "add-tables" in reason, reason

    add_tables(configured)  # what the reason says, for the configured model only
    assert state.watcher.check_once() is True
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert state.scorer.version == "configured-1"
    assert ready.get_json()["refused"]["version"] == "retrained-2"  # still named, for the operator

    add_tables(retrained)  # and then the registry's model: served without a restart
    assert state.watcher.check_once() is True
    assert state.scorer.version == "retrained-2"
    assert "refused" not in app.test_client().get("/readyz").get_json()


def test_a_refused_configured_model_is_named_once_and_its_recovery_is_logged(
        tmp_path: Path, make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The usual install: the registry's active model is the configured one. A probe saw its refusal
    stated twice in /readyz, and once mended, an error that it was served 'instead of' itself."""
    configured = tmp_path / "model"
    tiny_model(configured, "configured-1")
    app = make_app(scorer=None, model_path=configured, model_check_seconds=0)  # registers it
    close_app(app)
    _as_before_tables(configured)
    app = make_app(scorer=None, model_path=configured, model_check_seconds=0)
    state = get_state(app)
    reason = app.test_client().get("/readyz").get_json()["reason"]
    assert reason.count("has no serving tables") == 1, reason
    add_tables(configured)
    with caplog.at_level("WARNING", logger="service.model_watch"):
        assert state.watcher.check_once() is True
    assert app.test_client().get("/readyz").status_code == 200
    assert "instead of" not in caplog.text
    assert "configured-1 loaded from" in caplog.text, caplog.text  # the recovery is in the log


def test_a_model_of_older_features_is_warned_about_when_it_becomes_active(
        tmp_path: Path, make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    configured = tmp_path / "model"
    tiny_model(configured, "configured-1")
    older = tmp_path / "var" / "models" / "older-0"
    meta = tiny_model(older, "older-0", flip=True)
    meta_path = older / METADATA_NAME
    stored = json.loads(meta_path.read_text())
    del stored["features_version"]  # as releases before 2026-11-28 wrote it
    meta_path.write_text(json.dumps(stored))
    app = make_app(scorer=None, model_path=configured, model_check_seconds=0)
    state = get_state(app)
    with open_store(str(state.settings.database_url), secret=TEST_SECRET_KEY.encode()) as store:
        store.register_model({**meta, **stored}, str(older))
        store.activate_model("older-0", "operator", "rolled back")
    with caplog.at_level("WARNING", logger="service.model_watch"):
        assert state.watcher.check_once() is True
    assert state.scorer.version == "older-0"
    assert "trained with an older release's features" in caplog.text


# --- promotion under the operator's threshold overrides ---------------------------------------

def labelled_base(tmp_path: Path) -> Path:
    """The tiny training set as a JSON Lines file, base data for retrain --no-seed --data."""
    base = tmp_path / "base.jsonl"
    comments, labels = tiny_training_set()
    base.write_text("".join(json.dumps({"comment_content": c.comment_content, "label": "spam" if y else "ham"})
                            + "\n" for c, y in zip(comments, labels)))
    return base


def cli_data_store(data_dir: Path) -> Store:
    """The store the command line opens for ``data_dir`` (its secret made as the command line makes it)."""
    return open_store(str(data_dir / "commentguard.sqlite3"), secret=load_or_create_secret_key(data_dir).encode())


def report_spam(store: Store, texts: list[str]) -> None:
    """Moderators' spam labels for ``texts``, by text alone."""
    from model.comment import Comment
    from store import FeedbackRecord

    for text in texts:
        store.add_feedback(FeedbackRecord(label="spam", comment=Comment(comment_content=text)))


def store_env(data_dir: Path, model_dir: Path) -> dict[str, str]:
    """This environment without COMMENTGUARD_* settings, plus a data dir and a model path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTGUARD_")}
    env.update({"COMMENTGUARD_DATA_DIR": str(data_dir), "COMMENTGUARD_MODEL_PATH": str(model_dir)})
    return env

def test_retrain_never_promotes_a_model_the_workers_would_refuse(tmp_path: Path, model_dir: Path) -> None:
    """With a discard override below any spam threshold a model can have (0.5 is the floor), the
    workers refuse every candidate: retrain promoted one all the same, the site stopped learning and
    every later retrain found 'nothing new to learn' in the refused model (found by a probe)."""
    data_dir, base = tmp_path / "var", labelled_base(tmp_path)
    data_dir.mkdir()
    env = store_env(data_dir, model_dir)
    with cli_data_store(data_dir) as store:
        report_spam(store, GRANT_SCAM[:6])
    refusing = dict(env, COMMENTGUARD_THRESHOLD_DISCARD="0.45")
    run = cli(refusing, "retrain", "--no-seed", "--data", str(base), "--json", "--force", "--reason", "test")
    assert run.returncode == 1, run.stdout[-2000:]
    out = json.loads(run.stdout)
    assert out["promoted"] is False and "COMMENTGUARD_THRESHOLD_DISCARD" in out["not_promoted"]
    assert "was not promoted" in run.stderr and "COMMENTGUARD_THRESHOLD_" in run.stderr
    with cli_data_store(data_dir) as store:
        assert store.get_active_model().version == "test-model-1"  # the configured model, registered first
        statuses = {m.id: m.status for m in store.list_models()}
    assert statuses[out["version"]] == "rejected"
    # Under the server's real settings the same labels are new to learn, and promoted.
    again = cli(env, "retrain", "--no-seed", "--data", str(base), "--json", "--force", "--reason", "test")
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["promoted"] is True


def test_retrain_on_a_file_too_small_to_judge_keeps_the_active_model(tmp_path: Path, model_dir: Path) -> None:
    """A probe: `retrain --no-seed --data gen.csv` (6 rows, plus 4 reports) tied on 1 held-out ham
    and 2 held-out spam, passed the gate, and running workers switched to it."""
    data_dir, base = tmp_path / "var", labelled_base(tmp_path)
    data_dir.mkdir()
    env = store_env(data_dir, model_dir)
    with cli_data_store(data_dir) as store:
        report_spam(store, GRANT_SCAM[:2])
    run = cli(env, "retrain", "--no-seed", "--data", str(base), "--json")
    assert run.returncode == 1, run.stdout[-2000:]
    out = json.loads(run.stdout)
    assert out["promoted"] is False and out["forced"] is False
    assert "too few held-out rows to judge" in out["not_promoted"] and "at least 50 of each" in out["not_promoted"]
    assert f"{out['candidate']['n'] - out['candidate']['spam']} ham and {out['candidate']['spam']} spam" \
        in out["not_promoted"]
    assert "--force --reason" in run.stderr and "Traceback" not in run.stderr
    with cli_data_store(data_dir) as store:
        assert store.get_active_model().version == "test-model-1"
        assert {m.id: m.status for m in store.list_models()}[out["version"]] == "rejected"
    # The operator's call: forced, it is promoted.
    forced = cli(env, "retrain", "--no-seed", "--data", str(base), "--json", "--force", "--reason", "test")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert json.loads(forced.stdout)["promoted"] is True and "not_promoted" not in json.loads(forced.stdout)


def test_a_retrain_whose_report_cannot_be_written_still_succeeds(tmp_path: Path, model_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk after the candidate was promoted: a traceback and exit 1 told cron the model
    had not changed, while the workers served the new one."""
    import errno

    from click.testing import CliRunner

    from commentguard import cli as cli_module
    from commentguard.commands import retrain as retrain_command

    data_dir, base = tmp_path / "var", labelled_base(tmp_path)
    data_dir.mkdir()
    for name in [n for n in os.environ if n.startswith("COMMENTGUARD_")]:
        monkeypatch.delenv(name)
    for name, value in store_env(data_dir, model_dir).items():
        if name.startswith("COMMENTGUARD_"):
            monkeypatch.setenv(name, value)

    def full_disk(*_: Any, **__: Any) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(retrain_command, "write_report", full_disk)
    run = CliRunner().invoke(cli_module.cli, ["retrain", "--no-seed", "--data", str(base), "--json",
                                              "--force", "--reason", "test"])
    assert run.exit_code == 0, run.output[-2000:]
    out = json.loads(run.stdout)
    assert out["promoted"] is True and out["report"] is None
    assert "the report could not be written (No space left on device)" in run.stderr
    secret = load_or_create_secret_key(data_dir).encode()
    with open_store(str(data_dir / "commentguard.sqlite3"), secret=secret) as store:
        assert store.get_active_model().version == out["version"]


def test_a_retrain_that_cannot_write_its_candidate_fails_in_one_line(tmp_path: Path, model_dir: Path) -> None:
    data_dir, base = tmp_path / "var", labelled_base(tmp_path)
    data_dir.mkdir()
    unwritable = dict(store_env(data_dir, model_dir), COMMENTGUARD_MODELS_DIR="/proc/self/commentguard-models")
    run = cli(unwritable, "retrain", "--no-seed", "--data", str(base), "--force", "--reason", "test")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "the active model is unchanged" in run.stderr


def test_retrain_with_a_lost_active_model_compares_with_what_the_workers_serve(tmp_path: Path,
                                                                               model_dir: Path) -> None:
    """The active version's directory gone (a models volume not mounted), the candidate was
    compared with nothing and promoted: a 60-row file with swapped labels replaced a good model."""
    import shutil

    data_dir, base = tmp_path / "var", labelled_base(tmp_path)
    data_dir.mkdir()
    lost = tmp_path / "lost"
    shutil.copytree(model_dir, lost)
    env = store_env(data_dir, model_dir)
    with cli_data_store(data_dir) as store:
        store.register_model(dict(read_metadata(lost), version="lost-1"), str(lost))
        store.activate_model("lost-1", "test", "promoted, then its volume went")
        report_spam(store, GRANT_SCAM[:6])
    shutil.rmtree(lost)
    # Nothing to compare with at all: the active model stays unless forced.
    nothing = dict(env, COMMENTGUARD_MODEL_PATH=str(tmp_path / "none"))
    refused = cli(nothing, "retrain", "--no-seed", "--data", str(base), "--json")
    assert refused.returncode == 1 and "no model to compare a candidate with" in refused.stderr
    with cli_data_store(data_dir) as store:
        assert store.get_active_model().version == "lost-1"
    # The workers serve COMMENTGUARD_MODEL_PATH meanwhile: the gate compares with that.
    run = cli(env, "retrain", "--no-seed", "--data", str(base), "--json")
    assert "comparing with COMMENTGUARD_MODEL_PATH (test-model-1)" in run.stderr, run.stderr[-2000:]
    assert json.loads(run.stdout)["current_version"] == "test-model-1"


def test_retrain_with_no_model_at_all_refuses_unless_forced(tmp_path: Path) -> None:
    """A first deployment (or a lost models volume with a fresh database): no active model and
    nothing at COMMENTGUARD_MODEL_PATH. Compared with nothing, a probe's 30-row file was promoted
    (it caught none of its held-out spam), and the first `serve` served it instead of the default
    model it trained."""
    data_dir, base = tmp_path / "var", labelled_base(tmp_path)
    data_dir.mkdir()
    env = store_env(data_dir, tmp_path / "no-model-yet")
    refused = cli(env, "retrain", "--no-seed", "--data", str(base), "--json")
    assert refused.returncode == 1, refused.stdout[-2000:]
    assert "no model to compare a candidate with" in refused.stderr and "--force" in refused.stderr
    secret = load_or_create_secret_key(data_dir).encode()
    with open_store(str(data_dir / "commentguard.sqlite3"), secret=secret) as store:
        assert store.get_active_model() is None and store.list_models() == []
    forced = cli(env, "retrain", "--no-seed", "--data", str(base), "--force", "--reason", "our own data", "--json")
    assert forced.returncode == 0, forced.stderr[-2000:]
    with open_store(str(data_dir / "commentguard.sqlite3"), secret=secret) as store:
        active = store.get_active_model()
        assert active is not None and active.version == json.loads(forced.stdout)["version"]
