"""The :class:`Store` and :func:`open_store`, which migrates the schema and checks the secret."""
from __future__ import annotations

from types import TracebackType
from typing import Optional

from store.checks import ChecksMixin
from store.db import Database, Tx
from store.errors import SecretMismatchError, StoreConfigError, StoreError
from store.feedback import FeedbackMixin
from store.keys import KeysMixin
from store.migrations import migrate
from store.pg_url import redact_url
from store.privacy import Privacy
from store.registry import RegistryMixin
from store.review import ReviewMixin
from store.sender_history import SenderHistoryMixin

MIN_SECRET_BYTES = 16


class Store(KeysMixin, ChecksMixin, FeedbackMixin, RegistryMixin, ReviewMixin, SenderHistoryMixin):
    """Sites, API keys, usage, checks (and their review), feedback (and its counts per sender) and the model
    registry over SQLite or PostgreSQL.

    Thread-safe: every method takes a pooled connection for one transaction.
    Build it with :func:`open_store`; close it with :meth:`close` or ``with``.
    """

    def __enter__(self) -> "Store":
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


def open_store(url_or_path: str, *, secret: bytes, store_personal_data: bool = False,
               answer_timeout: Optional[float] = None) -> Store:
    """Open (creating and migrating as needed) the store at a SQLite path or ``postgresql://`` URL.

    ``secret`` keys the API-key digests and personal-data hashes; it must stay
    the same for the life of the database (a different one raises
    :class:`SecretMismatchError`). ``store_personal_data`` keeps IPs and emails
    in clear instead of as keyed hashes. ``answer_timeout``: once the schema is up to
    date, seconds after which a PostgreSQL call the server has not answered fails as an
    outage (:meth:`store.db.Database.bound_answers`).
    """
    if not isinstance(secret, (bytes, bytearray)) or len(secret) < MIN_SECRET_BYTES:
        raise StoreConfigError(f"the store secret must be at least {MIN_SECRET_BYTES} bytes")
    privacy = Privacy(bytes(secret), store_personal_data=store_personal_data)
    db = Database(url_or_path)

    def prepare() -> None:
        migrate(db)
        _check_secret(db, privacy)
        db.tighten_sqlite_files()  # only now is the file known to be this store's database

    try:
        prepare()
    except BaseException:
        db.close()
        raise
    db.bound_answers(answer_timeout)
    return Store(db, privacy)


def _check_secret(db: Database, privacy: Privacy) -> None:
    fingerprint = privacy.secret_fingerprint()

    def stored(tx: Tx) -> Optional[dict[str, str]]:
        return tx.fetchone("SELECT value FROM store_meta WHERE name = 'secret_check'")

    # Read first: a database the service may only read (a read-only file) serves key lookups.
    row = db.read(stored)
    if row is not None:
        _compare_secret(db, str(row["value"]), fingerprint)
        return

    def work(tx: Tx) -> str:
        tx.execute(
            "INSERT INTO store_meta (name, value) VALUES ('secret_check', ?) ON CONFLICT (name) DO NOTHING",
            (fingerprint,),
        )
        row = tx.fetchone("SELECT value FROM store_meta WHERE name = 'secret_check'")
        if row is None:  # pragma: no cover - just inserted
            raise StoreError("store_meta lost its secret check")
        return str(row["value"])

    _compare_secret(db, db.run(work), fingerprint)


def _compare_secret(db: Database, stored: str, fingerprint: str) -> None:
    if stored != fingerprint:
        raise SecretMismatchError(
            f"{redact_url(db.target)} was set up with a different secret; "
            "API keys and personal-data hashes depend on it, so it must not change"
        )
