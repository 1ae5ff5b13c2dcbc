"""What a store error may say in a log line: its type, and its driver's words when they hold no data.

A failed write was logged by exception type alone (``StoreDatabaseError``), since a driver's
message may quote what was being written: PostgreSQL's ``DETAIL: Key (id)=(…)``, a value in
``invalid input syntax for type json: "…"``. An operator then could not tell a full disk from
a lock or a read-only file. :func:`error_text` adds what is known to be safe: SQLite's fixed
messages for its result codes (the words ``sqlite3_errstr`` gives, such as "database or disk
is full") with the code's name, and for psycopg the error class and SQLSTATE (``DiskFull``,
``53100``) or, for a connection that failed, a known phrase of libpq's. Anything else is left
out: the text is matched against a fixed list, never passed through.
"""
from __future__ import annotations

from typing import Optional

#: SQLite's messages for its result codes (sqlite3ErrStr in SQLite's main.c): fixed texts.
SQLITE_MESSAGES = frozenset({
    "SQL logic error", "access permission denied", "query aborted", "database is locked",
    "database table is locked", "out of memory", "attempt to write a readonly database",
    "interrupted", "disk I/O error", "database disk image is malformed", "unknown operation",
    "database or disk is full", "unable to open database file", "locking protocol",
    "database schema has changed", "string or blob too big", "constraint failed",
    "datatype mismatch", "bad parameter or other API misuse", "large file support is disabled",
    "authorization denied", "column index out of range", "file is not a database",
})
#: Phrases of libpq's connection failures that name no host, user or value.
LIBPQ_PHRASES: tuple[str, ...] = (
    "Connection refused", "timeout expired", "No route to host", "Network is unreachable",
    "server closed the connection unexpectedly", "the database system is shutting down",
    "the database system is starting up", "the database system is in recovery mode",
    "too many clients already", "could not translate host name", "No space left on device",
    "SSL connection has been closed unexpectedly", "consuming input failed",
)
#: How far down ``__cause__`` to look for the driver's error (the store wraps it once).
_DEPTH = 3


def error_text(exc: BaseException) -> str:
    """``exc``'s type name, with its driver's error in words that hold no personal data.

    ``StoreBusyError: database is locked (SQLITE_BUSY)``, ``StoreDatabaseError: database or disk
    is full (SQLITE_FULL)``, ``StoreDataError (psycopg UniqueViolation, SQLSTATE 23505)``.
    """
    name = type(exc).__name__
    cause = _driver_error(exc)
    if cause is None:
        return name
    code = getattr(cause, "sqlite_errorname", None)
    if code is not None or type(cause).__module__ == "sqlite3":
        message = str(cause)
        words = f": {message}" if message in SQLITE_MESSAGES else ""
        return f"{name}{words} ({code or type(cause).__name__})"
    sqlstate = getattr(cause, "sqlstate", None)
    phrase = next((p for p in LIBPQ_PHRASES if p in str(cause)), None)
    words = f": {phrase}" if phrase else ""
    state = f", SQLSTATE {sqlstate}" if isinstance(sqlstate, str) and sqlstate.isalnum() else ""
    return f"{name}{words} (psycopg {type(cause).__name__}{state})"


def _driver_error(exc: BaseException) -> Optional[BaseException]:
    """The sqlite3 or psycopg exception ``exc`` wraps (or is), if any."""
    current: Optional[BaseException] = exc
    for _ in range(_DEPTH):
        if current is None:
            return None
        module = type(current).__module__
        if module == "sqlite3" or module.startswith("psycopg"):
            return current
        current = current.__cause__
    return None


__all__ = ["LIBPQ_PHRASES", "SQLITE_MESSAGES", "error_text"]
