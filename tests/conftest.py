"""Shared pytest fixtures: a tiny real model, settings, and the Flask ``app``/``client``/``runner`` trio.

The model is trained once per session on a handful of made-up comments (a
second or so), saved and loaded through the real artifact code, so service
tests exercise the real scorer. Settings point into ``tmp_path``, so no test
writes to the working directory. Add fixtures here when several test modules
need them; keep module-specific ones in the module.

API keys: :func:`api_key` creates a key in the test database before any app is
built, and apps from :func:`make_app` hand out test clients that send it as
``Authorization: Bearer <key>`` (pass ``headers={"Authorization": ...}`` to
override it, or use :func:`anonymous_client`). Apps are closed (check log
flushed, store closed) when the test ends.

:func:`live_server` runs the real ``commentguard serve`` once per session;
:func:`start_live_server` starts more (for instance on PostgreSQL, from
:func:`pg_url`, a throwaway database made on ``COMMENTGUARD_TEST_DATABASE_URL``).
"""
from __future__ import annotations

import dataclasses
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from model.artifact import load_model, save_model
from model.comment import Comment
from model.pipeline import build_pipeline, fit_pipeline
from model.scorer import Scorer
from model.verdict import Thresholds
from service.app import close_app, create_app
from service.settings import Settings, load_or_create_secret_key
from store import open_store

TEST_SECRET_KEY = "test-secret-key-not-for-production"
TEST_THRESHOLDS = Thresholds(unsure=0.4, spam=0.6, discard=0.9)
TEST_SITE = "https://blog.example.org"
PG_ENV = "COMMENTGUARD_TEST_DATABASE_URL"
PORTS_ENV = "COMMENTGUARD_TEST_PORTS"
REPO = Path(__file__).resolve().parents[1]

_HAM = [
    "Thanks for the clear explanation, the second example finally made it click for me.",
    "Does this approach also work with Python 3.10, or do I need a newer version?",
    "I tried the recipe last night and my family loved it. Less sugar next time.",
    "Great write-up. Could you share the benchmark numbers for the larger data set?",
    "Small typo in the third paragraph: it should say their, not there.",
    "I disagree with the conclusion, but the argument is well made. Thanks for posting.",
    "Where did you buy the blue fabric in the photos? It looks lovely.",
    "This helped me fix my build, the missing flag was exactly the problem.",
]
_SPAM = [
    "Buy cheap viagra online now!!! Best prices http://bit.ly/cheap-pills",
    "Earn $5000 a week from home, click here http://tinyurl.com/easy-money",
    "Hot singles in your area, visit http://bit.ly/hot-dates now",
    "Cheap replica watches and bags, free shipping, http://replica-shop.example/buy",
    "Make money fast with crypto casino bonus, click http://bit.ly/casino-bonus",
    "Best SEO backlinks cheap, rank first on google http://seo-links.example",
    "Get free bitcoin now click here http://tinyurl.com/free-btc winner",
    "Cheap loans no credit check apply now http://bit.ly/fast-loans",
]


def tiny_training_set() -> tuple[list[Comment], list[int]]:
    """A handful of comments and labels (1 = spam): enough to fit, not to evaluate."""
    ham = [Comment(comment_content=t, comment_author="Reader") for t in _HAM]
    spam = [Comment(comment_content=t, comment_author="Best Deals",
                    comment_author_url="http://bit.ly/x") for t in _SPAM]
    return ham + spam, [0] * len(ham) + [1] * len(spam)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model artifact directory, trained once per session (treat it as read-only)."""
    comments, labels = tiny_training_set()
    pipeline = fit_pipeline(build_pipeline(), comments, labels)
    out = tmp_path_factory.mktemp("model") / "model"
    save_model(pipeline, out, thresholds=TEST_THRESHOLDS, metadata={"version": "test-model-1"})
    return out


@pytest.fixture(scope="session")
def scorer(model_dir: Path) -> Scorer:
    """The session's real scorer, loaded from :func:`model_dir`."""
    return load_model(model_dir)


@pytest.fixture
def settings(tmp_path: Path, model_dir: Path) -> Settings:
    """Test settings: data in ``tmp_path``, the session model, a fixed secret."""
    return Settings(data_dir=tmp_path / "var", model_path=model_dir, secret_key=TEST_SECRET_KEY)


def create_test_key(settings: Settings, site: str = TEST_SITE, label: str = "tests") -> str:
    """A new API key in the database ``settings`` point to, made through the store API."""
    secret = settings.secret_key or load_or_create_secret_key(settings.data_dir)
    with open_store(str(settings.database_url), secret=secret.encode("utf-8")) as store:
        key, _ = store.create_key(site, label=label)
    return key


@pytest.fixture
def api_key(settings: Settings) -> str:
    """A live API key (12 hex characters) in the test database, for :data:`TEST_SITE`."""
    return create_test_key(settings)


def auth_headers(key: str) -> dict[str, str]:
    """The JSON API's authentication header for ``key``."""
    return {"Authorization": f"Bearer {key}"}


class KeyedClient(FlaskClient):
    """A test client that sends the app's test key (``app.config["TEST_API_KEY"]``) on every request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        key = self.application.config.get("TEST_API_KEY")
        if key:
            self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"


@pytest.fixture
def make_app(settings: Settings, scorer: Scorer, api_key: str) -> Iterator[Callable[..., Flask]]:
    """Build an app with setting overrides: ``make_app(mode="log_only")``, ``make_app(scorer=None)``.

    ``scorer`` defaults to the session scorer; pass ``scorer=None`` to load from
    ``model_path`` as the real service does. Its test clients send :func:`api_key`.
    """
    apps: list[Flask] = []

    def build(*, scorer: Any = scorer, **overrides: Any) -> Flask:
        app = create_app(dataclasses.replace(settings, **overrides), scorer=scorer)
        app.config["TESTING"] = True
        app.config["TEST_API_KEY"] = api_key
        app.test_client_class = KeyedClient
        apps.append(app)
        return app

    yield build
    for app in apps:
        close_app(app)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The service app with the session model and default settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client sending the test key."""
    return app.test_client()


@pytest.fixture
def anonymous_client(app: Flask) -> FlaskClient:
    """A test client sending no key."""
    return FlaskClient(app, app.response_class)


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner bound to ``app``; pass the command: ``runner.invoke(cli, ["serve"])``."""
    return app.test_cli_runner()


# --- PostgreSQL -----------------------------------------------------------------------------

def replace_url(url: str, *, dbname: Optional[str] = None, **query: str) -> str:
    """``url`` with another database name and/or extra query parameters."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params.update(query)
    path = f"/{dbname}" if dbname is not None else parts.path
    return urlunsplit(parts._replace(path=path, query=urlencode(params)))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database on the test server, dropped when the session ends."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: the PostgreSQL cases need a server (CI sets it)")
    import psycopg
    from psycopg import sql

    admin = replace_url(base, dbname="postgres")
    name = f"commentguard_test_{secrets.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield replace_url(base, dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture()
def pg_url(pg_database: str) -> str:
    """An empty PostgreSQL store for one test: a fresh schema in the session's database.

    Each test gets its own schema (through ``search_path`` in the URL), so stores opened
    with different secrets, or left with rows, never meet.
    """
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return replace_url(pg_database, options=f"-csearch_path={schema}")


# --- a live server ----------------------------------------------------------------------------

@dataclass
class LiveServer:
    """A running ``commentguard serve``: where it listens, its key and its settings."""

    base_url: str
    key: str
    settings: Settings
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops it; kill if it does not stop in 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on now: the system's pick, or one in ``PORTS_ENV``'s range.

    ``COMMENTGUARD_TEST_PORTS=LOW-HIGH`` keeps the tests' servers inside a range, for a
    machine shared with other test runs.
    """
    low, _, high = os.environ.get(PORTS_ENV, "").partition("-")
    candidates = range(int(low), int(high) + 1) if low and high else [0]
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port in {PORTS_ENV}={low}-{high}")


def start_live_server(data_dir: Path, model_path: Path, *, database_url: Optional[str] = None,
                      workers: int = 2, env: Optional[dict[str, str]] = None,
                      args: tuple[str, ...] = (), port: Optional[int] = None,
                      open_files: Optional[int] = None) -> LiveServer:
    """Create a key, then run the real CLI (``python -m commentguard serve [args]``) and wait for ``/readyz``.

    ``port``: where to listen (default: any free port). ``open_files``: the server's limit on
    open file descriptors (``ulimit -n``), when given.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, model_path=model_path, database_url=database_url)
    key = create_test_key(settings)
    port = port or free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTGUARD_")}
    environ.update({"COMMENTGUARD_DATA_DIR": str(data_dir), "COMMENTGUARD_MODEL_PATH": str(model_path),
                    "COMMENTGUARD_WORKERS": str(workers), "COMMENTGUARD_LOG_LEVEL": "WARNING"})
    if database_url:
        environ["COMMENTGUARD_DATABASE_URL"] = database_url
    environ.update(env or {})
    log = open(data_dir / "server.log", "wb")
    def limit_open_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    proc = subprocess.Popen([sys.executable, "-m", "commentguard", "serve", "--port", str(port), *args],
                            cwd=REPO, env=environ, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=limit_open_files if open_files is not None else None)
    server = LiveServer(f"http://127.0.0.1:{port}", key, settings, proc)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            output = (data_dir / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"commentguard serve did not become ready:\n{output}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LiveServer]:
    """``commentguard serve`` on a free 127.0.0.1 port with SQLite in a temp data dir, for the session."""
    server = start_live_server(tmp_path_factory.mktemp("live") / "var", model_dir)
    yield server
    server.stop()
