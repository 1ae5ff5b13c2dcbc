"""The state every part of the :class:`store.Store` shares: the database and the secret."""
from __future__ import annotations

from model.comment import Comment
from store.db import Database
from store.privacy import Privacy


class StoreBase:
    """The database and the keyed-hash policy, for the key, check and feedback mixins."""

    def __init__(self, db: Database, privacy: Privacy) -> None:
        self._db = db
        self._privacy = privacy

    @property
    def database(self) -> Database:
        """The underlying database (for tests and operator tooling)."""
        return self._db

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.dialect.name

    @property
    def store_personal_data(self) -> bool:
        """Whether IPs and emails are stored in clear (otherwise as keyed hashes)."""
        return self._privacy.store_personal_data

    def comment_hash(self, comment: Comment) -> str:
        """The hash that finds a comment's check and groups its feedback (see :mod:`store.privacy`)."""
        return self._privacy.comment_hash(comment)

    def close(self) -> None:
        """Close the store's connections; using it afterwards raises ``StoreClosedError``."""
        self._db.close()
