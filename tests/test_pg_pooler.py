"""PostgreSQL behind PgBouncer in transaction mode, as multi-instance deployments often run it.

A pooler in transaction mode gives each transaction (each statement, in autocommit) to any of
its server sessions. Before 2026-11-28 the service kept two kinds of session state there: the
driver's server-side prepared statements (psycopg prepares a query run five times), so the check
log's batches and the model watcher's reads failed at random with "prepared statement "_pg3_0"
already exists" or "does not exist" (found with a live PgBouncer 1.18 under load); and the
server-side statement timeout set per session, which missed the service's own transactions
and stayed behind on sessions the pool then gave other clients.

These tests start a real PgBouncer from the binary ``COMMENTGUARD_TEST_PGBOUNCER`` names
(Debian's package: ``/usr/sbin/pgbouncer``; `.ci/run` installs it) in front of the server of
``COMMENTGUARD_TEST_DATABASE_URL``; without both they skip, and with both a PgBouncer that does
not start fails them.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from model.comment import Comment
from model.verdict import Reason, Verdict
from store import StoreTimeoutError, open_store
from store.records import CheckRecord
from tests.conftest import PG_ENV, free_port, replace_url, start_live_server

PGBOUNCER_ENV = "COMMENTGUARD_TEST_PGBOUNCER"
SECRET = secrets.token_bytes(32)
#: Server sessions the pooler keeps per database and user: few, so that every one of them is
#: used (and can be looked at) in a short test.
POOL_SIZE = 4
#: The pooler's name for a database in statement mode.
STATEMENT_MODE_DB = "statement_mode"


@pytest.fixture(scope="module")
def server_url() -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: the pooler cases need a PostgreSQL server (CI sets it)")
    if not os.environ.get(PGBOUNCER_ENV):
        pytest.skip(f"{PGBOUNCER_ENV} is not set: the pooler cases need PgBouncer's binary (CI sets it)")
    return base


@pytest.fixture(scope="module")
def pgbouncer(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A PgBouncer in transaction mode on a free port, in front of the test server; its port."""
    target = urlsplit(server_url)
    user = target.username or "postgres"
    folder = tmp_path_factory.mktemp("pgbouncer")
    folder.chmod(0o755)  # PgBouncer will not run as root: as root, it runs as nobody, who reads these
    port = free_port()
    users = folder / "users.txt"
    users.write_text(f'"{user}" ""\n')
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={target.hostname or '127.0.0.1'} port={target.port or 5432}\n"
        # The server's own postgres database in statement mode, which the store cannot work in.
        f"{STATEMENT_MODE_DB} = host={target.hostname or '127.0.0.1'} port={target.port or 5432} "
        "dbname=postgres pool_mode=statement\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 200\n")
    for file in (users, config):
        file.chmod(0o644)
    command = [os.environ[PGBOUNCER_ENV], *(["-u", "nobody"] if os.geteuid() == 0 else []), str(config)]
    log = open(folder / "pgbouncer.log", "wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, proc, folder / "pgbouncer.log")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import socket

    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PgBouncer did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)


@pytest.fixture
def database(server_url: str) -> Iterator[str]:
    """A throwaway database on the test server (by its direct URL), dropped after the test.

    Not a schema through ``options=-csearch_path`` as elsewhere: PgBouncer refuses that
    startup parameter.
    """
    import psycopg
    from psycopg import sql

    name = f"commentguard_pool_{secrets.token_hex(5)}"
    admin = replace_url(server_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield replace_url(server_url, dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pooled(url: str, port: int) -> str:
    """``url`` through the pooler on ``port``."""
    parts = urlsplit(url)
    login = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{login}127.0.0.1:{port}").geturl()


def _check(i: int) -> CheckRecord:
    comment = Comment(comment_content=f"Comment number {i}: thanks for the write-up!", comment_author=f"Reader {i}",
                      comment_author_email=f"reader{i}@example.org", user_ip="203.0.113.7")
    verdict = Verdict("ham", 0.12, (Reason("no links in the text", -2.0),), "m-1")
    return CheckRecord.from_verdict(comment, verdict, surface="json", created=datetime.now(timezone.utc))


def _server_sessions_settings(url: str) -> list[str]:
    """``statement_timeout`` of every server session the pool holds for ``url``'s database: as
    many transactions open at once as the pool has sessions, so each holds a different one."""
    import psycopg

    conns = [psycopg.connect(url, prepare_threshold=None) for _ in range(POOL_SIZE)]
    try:
        # Inside a transaction, each client keeps its server session: the four are different.
        pids = {conn.execute("SELECT pg_backend_pid()").fetchone()[0] for conn in conns}  # type: ignore[index]
        assert len(pids) == POOL_SIZE
        return [conn.execute("SHOW statement_timeout").fetchone()[0] for conn in conns]  # type: ignore[index]
    finally:
        for conn in conns:
            conn.close()


def _run_threads(count: int, work: Any) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


def test_the_store_works_through_a_transaction_pooler(pgbouncer: int, database: str) -> None:
    """Writes and reads from several threads, each query well past the driver's prepare
    threshold of five runs: before, nearly every batch met another session's or no prepared
    statement."""
    store = open_store(pooled(database, pgbouncer), secret=SECRET, answer_timeout=10)
    try:
        key, info = store.create_key("https://blog.example.org")

        def work(thread: int) -> None:
            for batch in range(8):
                store.record_checks([_check(thread * 1000 + batch * 10 + i) for i in range(10)])
                assert store.authenticate(key) is not None
                store.count_usage(info.id, "2026-11", api_calls=1)

        assert _run_threads(4, work) == []
        counted = store.database.read(lambda tx: tx.fetchone("SELECT count(*) AS n FROM checks"))
        assert counted == {"n": 4 * 8 * 10}
        assert store.usage(info.id, "2026-11")["api_calls"] == 32
    finally:
        store.close()


def test_the_statement_timeout_stays_in_the_services_own_transactions(pgbouncer: int, database: str) -> None:
    url = pooled(database, pgbouncer)
    store = open_store(url, secret=SECRET, answer_timeout=5)
    try:
        assert _run_threads(POOL_SIZE, lambda i: [store.get_check(f"{i:032x}") for _ in range(20)]) == []
        store.record_checks([_check(i) for i in range(20)])
        # Set per session, the 4.5 s limit landed on whichever server sessions ran it and stayed
        # there for the pool's next clients (here any client of this database and user).
        assert _server_sessions_settings(url) == ["0"] * POOL_SIZE
    finally:
        store.close()


@pytest.mark.parametrize("route", ["direct", "pooled"])
@pytest.mark.parametrize("own, applied", [("0", "9s"), ("1min", "9s"), ("300ms", "300ms")])
def test_each_transaction_has_the_shorter_of_the_services_limit_and_the_databases(
        pgbouncer: int, database: str, route: str, own: str, applied: str) -> None:
    """Nine tenths of COMMENTGUARD_DATABASE_TIMEOUT (10 s), unless the database's own is shorter,
    in the service's reads and writes, directly connected or through the pooler."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {urlsplit(database).path.lstrip('/')} SET statement_timeout = '{own}'")
    store = open_store(database if route == "direct" else pooled(database, pgbouncer), secret=SECRET,
                       answer_timeout=10)
    try:
        show = "SHOW statement_timeout"
        assert store.database.read(lambda tx: tx.fetchone(show)) == {"statement_timeout": applied}
        assert store.database.run(lambda tx: tx.fetchone(show)) == {"statement_timeout": applied}
    finally:
        store.close()
    if route == "pooled":  # outside the service's transactions, the database's own stands
        assert _server_sessions_settings(pooled(database, pgbouncer)) == [own] * POOL_SIZE


def test_behind_the_pooler_the_server_still_gives_up_a_statement_waiting_on_a_lock(
        pgbouncer: int, database: str) -> None:
    """The server-side limit, set in each transaction, still frees the server's process (see
    tests/test_pg_hung_server.py): for writes and for reads."""
    import psycopg

    store = open_store(pooled(database, pgbouncer), secret=SECRET, answer_timeout=1.0)
    holder = psycopg.connect(database)  # direct, not autocommit: the lock lasts until rollback
    try:
        assert store.get_check("0" * 32) is None
        holder.execute("LOCK TABLE checks IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(StoreTimeoutError, match="server cancelled the statement"):
            store.get_check("1" * 32)
        with pytest.raises(StoreTimeoutError, match="server cancelled the statement"):
            store.record_checks([_check(1)])
        assert time.monotonic() - started < 10
        waiting = holder.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND datname = current_database()").fetchone()
        assert waiting == (0,)
        holder.rollback()
        store.record_checks([_check(2)])
        assert store.database.read(lambda tx: tx.fetchone("SELECT count(*) AS n FROM checks")) == {"n": 1}
    finally:
        holder.close()
        store.close()


@pytest.mark.slow
def test_a_served_instance_records_every_check_through_the_pooler(
        pgbouncer: int, database: str, tmp_path: Path, model_dir: Path) -> None:
    server = start_live_server(tmp_path / "var", model_dir, database_url=pooled(database, pgbouncer), workers=2,
                               env={"COMMENTGUARD_LOG_LEVEL": "WARNING"})
    try:
        auth = {"Authorization": f"Bearer {server.key}"}
        answers: list[int] = []

        def send(thread: int) -> None:
            with httpx.Client(base_url=server.base_url, headers=auth, timeout=30) as client:
                for i in range(60):
                    answer = client.post("/api/v1/check", json={
                        "comment_content": f"Reader {thread}-{i} says: which version added this option?"})
                    answers.append(answer.status_code)

        assert _run_threads(4, send) == []
        assert answers == [200] * 240
        import psycopg

        deadline = time.monotonic() + 30
        while True:  # the check log's writers flush every 0.2 s
            with psycopg.connect(database) as conn:
                stored = conn.execute("SELECT count(*) FROM checks").fetchone()[0]  # type: ignore[index]
            if stored >= 240 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert stored == 240
        log = (tmp_path / "var" / "server.log").read_text(errors="replace")
        assert "prepared statement" not in log and "failed" not in log, log[-3000:]
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["statement mode", "options in the URL"])
def test_serve_refuses_a_pooler_setting_the_store_can_never_work_with(
        pgbouncer: int, database: str, tmp_path: Path, model_dir: Path, how: str) -> None:
    """Found by a probe: `serve` called both "the database is unavailable now" and started workers
    that could never open the store (a 503 for every report, /readyz ready for 30 s)."""
    if how == "statement mode":
        url = replace_url(pooled(database, pgbouncer), dbname=STATEMENT_MODE_DB)
        said = "statement mode"
    else:
        url = replace_url(pooled(database, pgbouncer), options="-cstatement_timeout=5000")
        said = "startup parameter"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTGUARD_")}
    env.update({"COMMENTGUARD_DATA_DIR": str(tmp_path / "var"), "COMMENTGUARD_MODEL_PATH": str(model_dir),
                "COMMENTGUARD_DATABASE_URL": url, "COMMENTGUARD_SECRET_KEY": "s" * 32})
    run = subprocess.run([sys.executable, "-m", "commentguard", "serve", "--port", str(free_port())],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "COMMENTGUARD_DATABASE_URL" in run.stderr and said in run.stderr, run.stderr[-2000:]
