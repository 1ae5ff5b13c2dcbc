"""The exception tree of the storage layer.

Every error the store raises on purpose derives from :class:`StoreError`, so the
service can catch one class; each subclass says when it is raised. Driver
exceptions (``sqlite3.Error``, ``psycopg.Error``) never escape: they are wrapped
with ``raise ... from exc`` so the original stays in ``__cause__``.
"""
from __future__ import annotations


class StoreError(Exception):
    """Base class of every error the storage layer raises on purpose."""


class StoreConfigError(StoreError, ValueError):
    """Raised by :func:`store.open_store` for an unusable target or secret.

    For example an unknown URL scheme, ``:memory:`` (each pooled connection would
    see its own empty database), a PostgreSQL URL without psycopg installed, or a
    secret that is not bytes or is shorter than 16 bytes.
    """


class SecretMismatchError(StoreConfigError):
    """Raised on open when the database was initialised with a different secret.

    Key digests and personal-data hashes are keyed with the secret: opening with
    another one would silently make every API key invalid and every "same sender"
    hash different, so the store refuses instead.
    """


class MigrationError(StoreError):
    """Raised on open when the schema cannot be brought up to date.

    A migration statement failed (the whole upgrade is rolled back, so no data is
    lost), the migration list itself is malformed, or the database carries a
    migration this code does not know (it was upgraded by a newer release).
    """


class NewerSchemaError(MigrationError):
    """Raised on open when a newer release has migrated the database: this code cannot use it.

    No wait makes it work (unlike a database that is down), so ``serve`` refuses to start.
    """


class StoreBusyError(StoreError):
    """Raised when a write still found the database locked after every retry.

    SQLite: another writer held the lock past the busy timeout on each attempt.
    PostgreSQL: a deadlock or serialization failure repeated on each attempt.
    """


class StoreDatabaseError(StoreError):
    """Raised when the database driver reports any other error.

    A refused connection, a violated constraint (for example usage counted for
    a key id that does not exist), or a broken connection that a retry did not mend.
    """


class StoreUnavailableError(StoreDatabaseError):
    """Raised when the database cannot be reached: a connection refused, timed out or broken (a
    server that is down, restarting or unknown, a password it refuses).

    Nothing about the work itself failed; the same call may succeed once the database is back.
    Opening the store says so, not that a migration failed.
    """


class StoreDataError(StoreDatabaseError):
    """Raised when the database refuses the values themselves (the driver's ``DataError`` or
    ``IntegrityError``: a value it cannot hold, a duplicate key, a missing reference).

    Unlike a refused connection or a lock, writing the same values again fails the same way.
    """


class StoreTimeoutError(StoreUnavailableError):
    """Raised when a PostgreSQL server has not answered a call within the answer deadline the
    service sets (``COMMENTGUARD_DATABASE_TIMEOUT``; :mod:`store.answer_deadline`): hung, or out
    of reach behind a network that keeps the connection open.

    The connection was cut and is not reused; whether a write was committed is not known when
    its COMMIT had been sent (then :class:`StoreCommitUnknownError` is raised instead).
    """


class StoreCommitUnknownError(StoreDatabaseError):
    """Raised when a PostgreSQL connection broke while the transaction's COMMIT was on its way.

    The server may or may not have committed; the work is not run again (it could be
    written twice). Writing it again is safe only where a write is idempotent.
    """


class StoreClosedError(StoreError):
    """Raised when a store is used after :meth:`store.Store.close`."""


class InvalidRecordError(StoreError, ValueError):
    """Raised when a record or argument has a bad value before anything is written.

    For example a feedback label other than ``spam``/``ham``, a check surface other
    than ``json``/``akismet``, a month not shaped ``YYYY-MM``, or an unknown usage
    counter name.
    """
