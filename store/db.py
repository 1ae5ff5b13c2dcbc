"""The database layer: the two SQL dialects, connections, transactions and retries.

This is the one place that knows SQLite from PostgreSQL. Queries elsewhere are
written once, with ``?`` placeholders and SQL both engines accept (UPSERT with
``ON CONFLICT``, window functions); DDL uses the type tokens of
:attr:`Dialect.types`. A literal ``?`` must therefore never appear inside SQL text.

Connections come from a small pool (idle connections are reused; extra ones are
closed on return), so any threading model works, including a thread per request.
Every unit of work runs as a function in one transaction through
:meth:`Database.run`, which retries the whole function when SQLite reports
"database is locked" or PostgreSQL a deadlock, so a write is never dropped
because of a concurrent writer.
"""
from __future__ import annotations

import functools
import logging
import os
import queue
import random
import sqlite3
import stat
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypeVar
from urllib.parse import quote

from store.answer_deadline import AnswerDeadlines, Call
from store.errors import (StoreBusyError, StoreClosedError, StoreCommitUnknownError, StoreConfigError,
                          StoreDatabaseError, StoreDataError, StoreTimeoutError, StoreUnavailableError)
from store.pg_url import (CONNECT_TIMEOUT_VARIABLE, check_postgres_url, environment_secrets, scrub,
                          scrub_exception, url_secrets)
from store.sqlite_file import FILE_CHECK_SECONDS, Look, SqliteFile

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
log = logging.getLogger(__name__)
Params = Sequence[Any]

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
#: Rows per multi-row INSERT on SQLite (Tx.insert_rows), within the parameter limit below.
SQLITE_ROWS_PER_INSERT = 50
#: SQLite's limit on parameters per statement when the connection cannot say (999 before 3.32).
SQLITE_MAX_PARAMS = 999
#: Key of the PostgreSQL advisory lock that serialises migrations (any fixed 64-bit number).
MIGRATION_LOCK_ID = 0x436F6D6D656E74  # "Comment"
_SQLITE_BUSY_MS = 5000
_ATTEMPTS = 8
#: Seconds after which a transaction that keeps finding the database locked stops retrying
#: (a request waiting on it holds one of its worker's threads).
_RUN_DEADLINE_S = 10.0
#: The share of the answer deadline after which the PostgreSQL server gives a statement up
#: (Database._server_limit).
_SERVER_SHARE = 0.9
#: SQLSTATE of a statement the server cancelled (its statement_timeout).
_QUERY_CANCELED = "57014"
#: Lowers ``statement_timeout`` for the current transaction unless it is already lower (0 means
#: no limit). Parameters: the limit in ms as text, then as a number. ``current_setting``, not the
#: ``pg_settings`` view, which builds every setting's row: 0.57 ms of server time per call.
_STATEMENT_TIMEOUT_SQL = ("SELECT set_config('statement_timeout', %s, true) "
                          "WHERE current_setting('statement_timeout')::interval = interval '0' "
                          "OR current_setting('statement_timeout')::interval > %s * interval '1 millisecond'")


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines, and nothing else."""

    name: str
    types: Mapping[str, str] = field(default_factory=dict)
    #: Run first in the migration transaction so concurrent openers wait their turn
    #: (empty for SQLite, where ``BEGIN IMMEDIATE`` already holds the write lock).
    schema_lock_sql: str = ""

    def ddl(self, statement: str) -> str:
        """A schema statement with its ``{serial}``, ``{ts}``, ``{bool}``… tokens filled in."""
        return statement.format(**self.types)

    def query(self, sql: str) -> str:
        """The query in this engine's placeholder style."""
        return _pyformat(sql) if self.name == POSTGRESQL else sql

    def param(self, value: Any) -> Any:
        """A Python value as the driver should receive it.

        Only datetimes change, and on PostgreSQL text with NUL characters (Tx._params passes
        nothing else here).
        """
        if self.name == SQLITE:
            if isinstance(value, datetime):
                # Fixed-width ISO text in UTC sorts and compares like the time it names.
                return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
        elif isinstance(value, str) and "\x00" in value:
            # PostgreSQL text cannot hold NUL (a comment may: "%00" in an Akismet form, "\u0000"
            # in JSON); U+FFFD, the replacement character, stands in for it.
            return value.replace("\x00", "\ufffd")
        return value

    @property
    def converted_types(self) -> tuple[type, ...]:
        """The parameter types :meth:`param` changes: datetimes, and on PostgreSQL (whose text
        cannot hold NUL) text too."""
        return (datetime,) if self.name == SQLITE else (datetime, str)


SQLITE_DIALECT = Dialect(
    SQLITE,
    {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "ts": "TEXT", "bool": "INTEGER",
     "float": "REAL", "bigint": "INTEGER"},
)
POSTGRESQL_DIALECT = Dialect(
    POSTGRESQL,
    {"serial": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "ts": "TIMESTAMPTZ",
     "bool": "BOOLEAN", "float": "DOUBLE PRECISION", "bigint": "BIGINT"},
    schema_lock_sql=f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})",
)


@functools.lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class Tx:
    """One open transaction: run statements and read rows as dicts."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect
        self._converted = dialect.converted_types

    def _params(self, params: Params) -> list[Any]:
        # Only the types Dialect.param changes go through it; the check log passes ~35 values per row.
        param, converted = self.dialect.param, self._converted
        return [param(p) if isinstance(p, converted) else p for p in params]

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        cur = self._conn.execute(self.dialect.query(sql), self._params(params))
        return int(cur.rowcount)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each parameter row."""
        cur = self._conn.cursor()
        cur.executemany(self.dialect.query(sql), [self._params(r) for r in rows])
        cur.close()

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Params], *,
                    skip_existing: Optional[str] = None) -> None:
        """INSERT many rows; on SQLite a few rows per statement, elsewhere ``executemany``.

        ``skip_existing``: a unique column; a row whose value is already there is left as it
        is (``ON CONFLICT DO NOTHING``), so writing the same rows twice writes them once.

        sqlite3 gives the GIL up around every step it runs, and on a busy threaded worker
        each time it wants the GIL back it waits up to the switch interval (5 ms) behind the
        request threads: with one step per row a 200-row batch took a second or more of wall
        time in the recorder thread. One statement per :data:`SQLITE_ROWS_PER_INSERT` rows
        takes as many fewer steps.
        """
        if not rows:
            return
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        one = "(" + ", ".join("?" for _ in columns) + ")"
        tail = f" ON CONFLICT ({skip_existing}) DO NOTHING" if skip_existing else ""
        if self.dialect.name != SQLITE:
            self.executemany(head + one + tail, rows)
            return
        getlimit = getattr(self._conn, "getlimit", None)  # Python 3.11+
        limit = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else SQLITE_MAX_PARAMS
        step = max(1, min(SQLITE_ROWS_PER_INSERT, limit // len(columns)))
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            params = [value for row in chunk for value in self._params(row)]
            self._conn.execute(head + ", ".join([one] * len(chunk)) + tail, params)

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT into a table with a ``{serial}`` id; return the new id."""
        if self.dialect.name == SQLITE:
            return int(self._conn.execute(sql, self._params(params)).lastrowid)
        row = self._conn.execute(self.dialect.query(sql + " RETURNING id"), self._params(params)).fetchone()
        return int(row["id"])

    def lock_schema(self) -> None:
        """Hold the migration lock until this transaction ends."""
        if self.dialect.schema_lock_sql:
            self._conn.execute(self.dialect.schema_lock_sql).fetchall()

    def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """All rows of a query, each as a dict keyed by column name."""
        return [dict(r) for r in self._conn.execute(self.dialect.query(sql), self._params(params))]

    def fetchone(self, sql: str, params: Params = ()) -> Optional[dict[str, Any]]:
        """The first row of a query, or None."""
        row = self._conn.execute(self.dialect.query(sql), self._params(params)).fetchone()
        return dict(row) if row is not None else None


#: Connections a pool keeps open between uses. A service worker uses at most about five at
#: once (two request threads, the check-log writer, the model watcher, the report sender),
#: usually two; on PostgreSQL each open one counts against ``max_connections``.
MAX_IDLE_CONNECTIONS = 4


class Database:
    """A pool of connections to one database, and transactions with retries."""

    def __init__(self, target: str, *, max_idle: int = MAX_IDLE_CONNECTIONS) -> None:
        self.target = target
        self.dialect, self._connect = _resolve(target)
        #: What no error message may show: the URL's password and the pieces libpq may cut it
        #: into (driver errors quote host names, ports and database names), and PGPASSWORD.
        self._secrets = (url_secrets(target) | environment_secrets()
                         if self.dialect.name == POSTGRESQL else frozenset())
        self._idle: "queue.LifoQueue[Any]" = queue.LifoQueue()
        self._max_idle = max_idle
        self._closed = False
        self._lock = threading.Lock()
        self._file: Optional[SqliteFile] = None
        self._file_lock = threading.Lock()
        self._file_checked = 0.0
        self._file_problem: Optional[str] = None  # why the pool cannot use the path now
        self._deadlines: Optional[AnswerDeadlines] = None  # see bound_answers
        if self.dialect.name == SQLITE:
            self._init_sqlite_file()
            self._file = SqliteFile(self._connect.args[0])  # type: ignore[attr-defined]
            self._file_checked = time.monotonic()

    def tighten_sqlite_files(self) -> None:
        """Make a SQLite database's files owner-only (see :func:`owner_only`); nothing for PostgreSQL.

        Called once the file has opened as this store's database, never on a path merely named.
        """
        if self.dialect.name == SQLITE:
            path = Path(self._connect.args[0])  # type: ignore[attr-defined]
            for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                owner_only(file)

    @property
    def closed(self) -> bool:
        return self._closed

    def bound_answers(self, seconds: Optional[float]) -> None:
        """From now on, give up on a PostgreSQL call whose server has not answered within
        ``seconds`` (``None``: wait as long as it takes); nothing for SQLite, whose waits its
        busy timeout bounds.

        The service sets this once the schema is migrated (a migration may rightly take long);
        the command line leaves it off. See :mod:`store.answer_deadline`.
        """
        if self.dialect.name == POSTGRESQL:
            self._deadlines = AnswerDeadlines(seconds) if seconds is not None else None

    def run(self, work: Callable[[Tx], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction and return its result.

        The transaction commits when ``work`` returns and rolls back when it
        raises. On a lock conflict the whole function runs again (so it must not
        have effects outside the database), up to a few times with backoff.
        """
        last: Optional[BaseException] = None
        deadline = time.monotonic() + _RUN_DEADLINE_S
        for attempt in range(_ATTEMPTS):
            conn = self._checkout(write)
            keep = True
            committing: list[bool] = []
            deadlines = self._deadlines
            call: Optional[Call] = None
            try:
                with deadlines.bounded(conn) if deadlines is not None else nullcontext() as call:
                    limit = self._server_limit(deadlines) if deadlines is not None else None
                    return self._in_transaction(conn, work, write, committing, limit)
            except (sqlite3.Error, _pg_error()) as exc:
                broken = _is_broken(conn)
                if call is not None and call.expired and deadlines is not None:
                    # No answer in time (store.answer_deadline): the server is hung or out of
                    # reach, and another attempt would wait as long again.
                    # The driver's error is only the cut's echo ("server closed the connection").
                    keep = False
                    what = f"no answer from the {self.dialect.name} database within {deadlines.seconds:g} s"
                    raise self._error(StoreCommitUnknownError if committing else StoreTimeoutError,
                                      what, None) from None
                if deadlines is not None and getattr(exc, "sqlstate", None) == _QUERY_CANCELED:
                    # The server gave the statement up: its statement_timeout (ours, _server_limit, or
                    # a shorter one of the URL's or the database's), or an operator's cancel. The
                    # transaction is rolled back (but for a COMMIT waiting on a synchronous
                    # replica, which the server has committed locally), the connection kept.
                    raise self._error(StoreTimeoutError, f"the {self.dialect.name} server cancelled the "
                                      "statement (statement_timeout or a cancel request)", exc) from exc
                # SQLite opens a file it may not write read-only, and the connection stays so
                # after the file is made writable again: a new one will see.
                keep = not broken and not _is_read_only(exc)
                if _is_read_only(exc):
                    # The idle ones may have been opened in the same read-only spell (another
                    # thread's reads succeed on them): each would fail one write after the fix.
                    self._close_idle()
                if committing and broken:
                    # The connection broke while COMMIT was on its way: the server may have
                    # committed. Running the work again could write it twice.
                    raise self._error(StoreCommitUnknownError, f"{self.dialect.name} error during commit", exc) from exc
                if not (_is_retryable(exc) or ((broken or _is_read_only(exc)) and attempt == 0)):
                    # A connection that broke (twice: the first is retried on a new one) says the
                    # server went away, not that the work was wrong. A read-only refusal is tried
                    # once more on a new connection too: one opened during a read-only spell by a
                    # thread busy with it when the idle ones were closed stays read-only after the
                    # file is writable again (a check written only at the next flush, in CI).
                    error = (StoreUnavailableError if broken else
                             StoreDataError if isinstance(exc, _data_errors()) else StoreDatabaseError)
                    raise self._error(error, f"{self.dialect.name} error", exc) from exc
                last = exc
            finally:
                # A cut connection is no use, even when its answer came in just before the cut.
                self._checkin(conn, keep and not (call is not None and call.expired))
            pause = min(0.5, 0.01 * 2**attempt) * (0.5 + random.random())
            if time.monotonic() + pause >= deadline:
                break  # each attempt may wait out SQLite's busy timeout: a caller waits this long at most
            time.sleep(pause)
        raise self._error(StoreBusyError, f"database stayed locked after {attempt + 1} attempts", last) from last

    @staticmethod
    def _server_limit(deadlines: AnswerDeadlines) -> int:
        """The ``statement_timeout`` (ms) each transaction sets: the server gives a statement up a
        little before the watchdog would cut it, unless the connection's own limit is shorter.

        A statement waiting on a lock, or a slow COMMIT, then fails cleanly: rolled back, the
        connection kept, and the server's process freed. A cut alone left that process waiting
        on the lock (it does not notice its client leaving) while each retry opened another
        connection that waited too: a probe (2026-11-28) filled the server's 100 connections in
        35 s with the deadline at 1 s.

        Set in each transaction (``_in_transaction``), not once for the session: behind a pooler
        in transaction mode (PgBouncer) each transaction may run on any of its server sessions,
        so a session setting missed ours and stayed behind on sessions the pool later gave
        other clients, the command line's unbounded ``retrain`` among them.
        """
        return max(1, int(deadlines.seconds * 1000 * _SERVER_SHARE))

    def read(self, work: Callable[[Tx], T]) -> T:
        """Run ``work``, which only reads, statement by statement in autocommit mode (in one
        transaction where PostgreSQL calls are bounded, so that the server's limit applies)."""
        return self.run(work, write=False)

    def close(self) -> None:
        """Close idle connections now, and busy ones when they come back."""
        with self._lock:
            self._closed = True
        moved = self._file is not None and self._file.look() is not Look.SAME
        old_wal = self._file.open_wal_files() if moved and self._file is not None else set()
        self._close_idle()
        if moved and self._file is not None:
            self._file.remove_leftover_wal(old_wal)

    def _close_idle(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def _in_transaction(self, conn: Any, work: Callable[[Tx], T], write: bool, committing: list[bool],
                        server_limit: Optional[int] = None) -> T:
        """Run ``work`` in a transaction (a read in autocommit, but for a PostgreSQL
        ``server_limit``: the statement timeout in ms, set for this transaction alone)."""
        tx = Tx(conn, self.dialect)
        if not write and server_limit is None:
            # Reads here are single statements: autocommit saves the BEGIN/COMMIT
            # round trips on hot paths such as authenticate() (the service's reads, bounded,
            # take them: a key's answer is cached, so they are a few per second per worker).
            return work(tx)
        if self.dialect.name == POSTGRESQL:
            with conn.transaction():
                if server_limit is not None:
                    conn.execute(_STATEMENT_TIMEOUT_SQL, (str(server_limit), server_limit))
                result = work(tx)
                if write:
                    committing.append(True)  # leaving the block sends COMMIT
            return result
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not mid-transaction
        try:
            result = work(tx)
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    def _checkout(self, write: bool = True) -> Any:
        if self._closed:
            raise StoreClosedError("the store has been closed")
        if self._file is not None:
            self._check_file(write)
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        try:
            return self._connect()
        except (sqlite3.Error, _pg_error()) as exc:
            raise self._error(StoreUnavailableError, f"cannot connect to the {self.dialect.name} database",
                              exc) from exc

    def file_problem(self) -> Optional[str]:
        """Why the pool cannot use its SQLite file now (missing, or replaced until a restart), or None.

        Looks at the path at most once a second (for ``/readyz``); always None on PostgreSQL.
        """
        if self._file is None or self._closed:
            return None
        try:
            self._check_file(False)
        except StoreUnavailableError as exc:
            return str(exc)
        return None

    def _check_file(self, write: bool) -> None:
        """Raise StoreUnavailableError unless the file at the path is still the one the pool opened.

        A file deleted, moved or replaced under the running service is no longer written (its
        pooled connections would go on writing the unlinked file, and a new file at the path
        would share its -wal by name); a new file is opened by the next start, and the old one
        put back is used again. Writes look every time (a ``stat``, once per transaction); reads
        at most once a second, the key lookups' cost unchanged.
        """
        now = time.monotonic()
        if not write and now - self._file_checked < FILE_CHECK_SECONDS:
            if self._file_problem is not None:
                raise StoreUnavailableError(self._file_problem)
            return
        file = self._file
        assert file is not None
        with self._file_lock:
            self._file_checked = now
            found = file.look()
            if found is Look.SAME:
                if self._file_problem is not None:
                    log.warning("the SQLite database file %s is back; writing to it again", file.path)
                    self._file_problem = None
                return
            problem = (f"the SQLite database file {file.path} is missing (deleted or moved while the service "
                       "runs); nothing is written until it is back at that path, or the service restarts"
                       if found is Look.MISSING else
                       f"the SQLite database file {file.path} was replaced by another file while the service "
                       "runs; nothing is written until the service restarts (and opens the file now at the "
                       "path) or the old file is put back")
            if problem != self._file_problem:
                log.error("%s", problem)
            self._file_problem = problem
            raise StoreUnavailableError(problem)

    def _error(self, kind: type[E], what: str, exc: Optional[BaseException]) -> E:
        """``kind`` saying ``what: <the driver's words>``, with the URL's secrets blanked out of both
        the message and the driver's error (a traceback prints it as the cause)."""
        if exc is None:
            return kind(what)
        scrub_exception(exc, self._secrets)
        return kind(scrub(f"{what}: {exc}", self._secrets))

    def _checkin(self, conn: Any, keep: bool) -> None:
        with self._lock:
            if keep and not self._closed and self._idle.qsize() < self._max_idle:
                self._idle.put(conn)
                return
        conn.close()

    def _init_sqlite_file(self) -> None:
        # WAL lets readers run beside the one writer; the mode is stored in the file,
        # and cannot change inside a transaction, so it is set once here.
        # Switching a new file to WAL takes an exclusive lock without calling the
        # busy handler, so processes opening the same new database at once get
        # "database is locked" at once: retry until the busy timeout runs out.
        conn = self._checkout()
        deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc).lower() and time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                self._checkin(conn, False)
                raise StoreDatabaseError(f"cannot open SQLite database {self.target}: {exc}") from exc
            except sqlite3.Error as exc:
                self._checkin(conn, False)
                raise StoreDatabaseError(f"cannot open SQLite database {self.target}: {exc}") from exc
        self._checkin(conn, True)


def _resolve(target: str) -> tuple[Dialect, Callable[[], Any]]:
    if not isinstance(target, str) or not target.strip():
        raise StoreConfigError("the store needs a file path or a postgresql:// URL")
    if target.startswith(("postgresql://", "postgres://")):
        check_postgres_url(target)  # a port of "abc" is refused here, not retried as if the server were down
        return POSTGRESQL_DIALECT, functools.partial(_connect_postgres, target)
    if target.startswith("sqlite:"):
        # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them
        if not target.startswith("sqlite:///"):
            raise StoreConfigError(f"SQLite URLs look like sqlite:///path.db, got {target!r}")
        target = target[len("sqlite:///"):]
    elif "://" in target:
        raise StoreConfigError(f"unsupported database URL scheme: {target.split('://')[0]!r}")
    if target in ("", ":memory:") or target.startswith("file:"):
        raise StoreConfigError("SQLite storage needs a file path (not :memory: or a file: URI)")
    path = Path(target).expanduser()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Comments, author names and feedback: the owner's only. SQLite gives its -wal and -shm
        # files the database file's permissions, so creating that one so covers all three
        # (it was 0644 under the usual umask). An existing file is left as it is: asking to
        # write it made a read-only database (chmod 400) refuse every key lookup too.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreConfigError(f"cannot create {path}: {exc}") from exc
    return SQLITE_DIALECT, functools.partial(_connect_sqlite, str(path))


def owner_only(path: Path, mode: int = 0o600) -> None:
    """Take group and other permissions off ``path``, saying so when it had any.

    Releases before 2026-11-27 created the data directory and the SQLite files readable by
    everyone (the usual umask); creating them owner-only does nothing for an upgraded install.
    Only a plain file or directory of ours is changed: not a symbolic link (its target may be
    anyone's), a device, or a shared directory with the sticky bit (``/tmp``); one that is
    readable by others and not ours is logged and left alone.
    """
    try:
        st = path.lstat()
    except OSError:
        return  # missing: the -wal and -shm files come and go
    plain = stat.S_ISREG(st.st_mode) or (stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_ISVTX)
    if not st.st_mode & 0o077 or not plain:
        return
    if st.st_uid != os.geteuid():
        log.warning("%s is readable by others (mode %o) and not this user's to change", path, st.st_mode & 0o7777)
        return
    try:
        path.chmod(mode)
    except OSError as exc:
        log.warning("%s is readable by others (mode %o) and could not be made owner-only: %s",
                    path, st.st_mode & 0o7777, exc)
        return
    log.warning("%s was readable by others (mode %o): made owner-only (%o)", path, st.st_mode & 0o7777, mode)


def _connect_sqlite(path: str) -> sqlite3.Connection:
    # mode=rw: the file exists (_resolve made it); one deleted under a running service must not
    # come back empty (SQLITE_OPEN_READWRITE still opens a read-only file for reading).
    # isolation_level=None: the module never opens transactions behind our back;
    # check_same_thread=False: pooled connections move between threads, one at a time.
    conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=_SQLITE_BUSY_MS / 1000,
                           isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    # Statement journals and temporary tables in memory, not in $TMPDIR: a full /tmp (a small
    # tmpfs in a container) failed every check-log batch while the data disk had room.
    conn.execute("PRAGMA temp_store=MEMORY")
    # NORMAL is durable across application crashes in WAL mode; only an OS crash
    # or power cut can lose the last commits, and it saves an fsync per call.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


#: Seconds to wait for a PostgreSQL connection unless the URL sets ``connect_timeout`` (or the
#: environment PGCONNECT_TIMEOUT, which psycopg reads when the URL does not).
PG_CONNECT_TIMEOUT = 5


def _connect_postgres(url: str) -> Any:
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
        from psycopg.rows import dict_row
    except ImportError as exc:  # pragma: no cover - psycopg is a declared extra
        raise StoreConfigError("PostgreSQL storage needs psycopg: pip install 'commentguard[postgres]'") from exc
    options: dict[str, Any] = {}
    if "connect_timeout" not in conninfo_to_dict(url) and os.environ.get(CONNECT_TIMEOUT_VARIABLE) is None:
        # libpq waits forever by default: a server that accepts the connection but never answers
        # (hung, or behind a stalled proxy) would hold the request thread asking about a key.
        options["connect_timeout"] = PG_CONNECT_TIMEOUT
    # No server-side prepared statements (psycopg prepares a query run five times): behind a
    # pooler in transaction mode (PgBouncer before 1.21, or without max_prepared_statements)
    # the next transaction may run on a server session that does not have them, or has
    # another client's of the same name, and the check log's batches failed at random with
    # "prepared statement "_pg3_0" already exists". Measured direct on the test server, the
    # check log's insert cost the same either way (36.5 µs a row) and a key read 2.7 µs more.
    return psycopg.connect(url, autocommit=True, row_factory=dict_row, prepare_threshold=None, **options)


@functools.lru_cache(maxsize=1)
def _pg_error() -> type[BaseException]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return sqlite3.Error
    return psycopg.Error


@functools.lru_cache(maxsize=1)
def _data_errors() -> tuple[type[BaseException], ...]:
    """The drivers' errors for values the database refuses (a bad value, not a bad moment):
    a value it cannot hold, or one a constraint forbids (a duplicate key, a missing reference)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return (sqlite3.DataError, sqlite3.IntegrityError)
    return (sqlite3.DataError, sqlite3.IntegrityError, psycopg.DataError, psycopg.IntegrityError)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return "locked" in message or "busy" in message
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate in ("40001", "40P01")  # serialization failure, deadlock detected


def _is_read_only(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # the extended code; its low byte is the primary
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == sqlite3.SQLITE_READONLY


def _is_broken(conn: Any) -> bool:
    return bool(getattr(conn, "broken", False) or getattr(conn, "closed", False) is True)
