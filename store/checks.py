"""The check log: every scored comment, for correlation with later feedback and for audit.

Checks hold personal data minimised (see :mod:`store.privacy`) and are meant to
be purged after a retention period; feedback keeps its own copy of the comment.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Iterable, Optional

from model.comment import Comment
from store.base import StoreBase
from store.errors import InvalidRecordError
from store.pages import PAGE_SQL, page_of
from store.records import COMMENT_COLUMNS, CheckRecord, as_utc, comment_from_row, comment_to_row, to_json, utcnow

_COLUMNS: tuple[str, ...] = (
    "id", "created", "site_id", "key_id", "surface", "tier", "score", "model_version",
    "reasons", "is_test", "upstream", "comment_hash", *COMMENT_COLUMNS, "comment_context", "extra",
)
#: Checks deleted per transaction by :meth:`ChecksMixin.purge_checks`.
PURGE_BATCH = 5000
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM checks"


def _check_from_row(row: dict[str, Any]) -> CheckRecord:
    is_test = bool(row["is_test"])
    return CheckRecord(
        id=row["id"],
        created=as_utc(row["created"]),
        surface=row["surface"],
        tier=row["tier"],
        score=float(row["score"]),
        comment=comment_from_row(row, is_test=is_test),
        model_version=row["model_version"],
        reasons=tuple(json.loads(row["reasons"])),
        site_id=row["site_id"],
        key_id=row["key_id"],
        is_test=is_test,
        upstream=json.loads(row["upstream"]) if row["upstream"] is not None else None,
        comment_hash=row["comment_hash"],
    )


class ChecksMixin(StoreBase):
    """Recording, finding and purging checks."""

    def _check_row(self, record: CheckRecord) -> list[Any]:
        # The stored values are built directly, not through dataclasses.replace of the record:
        # this runs for every check in the recorder thread, and replace() cost about as much as the insert.
        comment = self._privacy.minimise(record.comment)
        values: dict[str, Any] = {
            "id": record.id, "created": as_utc(record.created), "site_id": record.site_id,
            "key_id": record.key_id, "surface": record.surface, "tier": record.tier,
            "score": float(record.score), "model_version": record.model_version,
            "reasons": to_json(list(record.reasons)),
            "is_test": bool(record.is_test),
            "upstream": to_json(record.upstream) if record.upstream is not None else None,
            # The minimised comment hashes the same (its email is already the pseudonym the
            # hash takes), without keying the email a second time.
            "comment_hash": record.comment_hash or self._privacy.comment_hash(comment),
            **comment_to_row(comment),
        }
        return [values[c] for c in _COLUMNS]

    def minimised(self, comment: Comment) -> Comment:
        """``comment`` as this store keeps it (personal data as keyed hashes, credentials dropped)."""
        return self._privacy.minimise(comment)

    def record_checks(self, records: Iterable[CheckRecord]) -> None:
        """Insert many checks in one transaction (all or none).

        ``records`` is read once, row by row, so a caller may pace it (the service's writer
        thread lets request threads run between rows: service.recorder).
        """
        rows = []
        for record in records:
            if not isinstance(record, CheckRecord):
                raise InvalidRecordError("record_checks takes CheckRecord objects")
            rows.append(self._check_row(record))
        if rows:
            # A check already there is left alone: when a batch's COMMIT reply was lost, the
            # recorder sends the batch again (the check id is the key).
            self._db.run(lambda tx: tx.insert_rows("checks", _COLUMNS, rows, skip_existing="id"))

    def record_check(self, record: CheckRecord) -> None:
        """Insert one check."""
        self.record_checks([record])

    def get_check(self, check_id: str) -> Optional[CheckRecord]:
        """A check by its id, or None (also after it was purged)."""
        row = self._db.read(lambda tx: tx.fetchone(_SELECT + " WHERE id = ?", (check_id,)))
        return _check_from_row(row) if row is not None else None

    def find_check(self, comment_hash: str, site_id: Optional[int] = None, *, siteless: bool = False,
                   permalink: str = "", posted: str = "") -> Optional[CheckRecord]:
        """The most recent check of a comment (by :meth:`comment_hash`), optionally on one site,
        or (``siteless``) among the checks made without a key; with ``permalink`` / ``posted``
        (``comment_date_gmt``), only a check that has them (one text pasted under several posts
        is several comments)."""
        sql = _SELECT + " WHERE comment_hash = ?"
        params: list[Any] = [comment_hash]
        if permalink:  # the page, in any of its forms (store.pages)
            sql, params = sql + f" AND {PAGE_SQL[self.backend]} = ?", [*params, page_of(permalink)]
        if posted:
            sql, params = sql + " AND comment_date_gmt = ?", [*params, posted]
        if site_id is not None:
            sql, params = sql + " AND site_id = ?", [*params, site_id]
        elif siteless:
            sql += " AND site_id IS NULL"
        row = self._db.read(lambda tx: tx.fetchone(sql + " ORDER BY created DESC, id DESC LIMIT 1", params))
        return _check_from_row(row) if row is not None else None

    def purge_checks(self, older_than_days: int) -> int:
        """Delete checks created more than ``older_than_days`` days ago; return how many."""
        if not isinstance(older_than_days, int) or older_than_days < 0:
            raise InvalidRecordError("older_than_days must be a non-negative integer")
        cutoff = utcnow() - timedelta(days=older_than_days)
        # In transactions of PURGE_BATCH rows: each stays short, so it ends well inside the
        # service's answer deadline (store.answer_deadline) and holds SQLite's write lock only
        # briefly, however much a first purge after months has to delete. Until a batch deletes
        # nothing: on PostgreSQL another worker purging at the same time deletes some of the rows
        # a batch picked, so a short batch does not mean none is left (a probe's two workers left
        # 41,905 of 76,572 old checks that way).
        removed = 0
        while True:
            deleted = self._db.run(lambda tx: tx.execute(
                "DELETE FROM checks WHERE id IN (SELECT id FROM checks WHERE created < ? ORDER BY created LIMIT ?)",
                (cutoff, PURGE_BATCH)))
            removed += deleted
            if not deleted:
                return removed
