"""Moderator feedback: the labels retraining learns from.

Each row keeps its own minimised copy of the comment, so it outlives the check
log. Forgetting deletes the row outright rather than marking it: forgetting
serves erasure requests and unlearning, and a marked row would still hold the
comment and the (pseudonymised) sender. Its report waiting in the upstream
outbox goes too (that copy holds the sender in clear). Once a row is gone, the comment's
previous label, if any, is the latest again; once a comment has no label left,
its checks leave the check log too.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from store.base import StoreBase
from store.db import Tx
from store.privacy import normalise_text
from store.records import COMMENT_COLUMNS, MAX_REPORTER, FeedbackRecord, as_utc, comment_from_row, comment_to_row

_COLUMNS: tuple[str, ...] = (
    "created", "label", "source", "reporter", "check_id", "site_id", "key_id", "is_test",
    "comment_hash", *COMMENT_COLUMNS, "comment_context", "extra",
)
_INSERT = f"INSERT INTO feedback ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
_ORDER = "ORDER BY created, id"
#: Fields of the generic training format, besides ``comment_content`` and ``label``.
_EXPORT_FIELDS: tuple[str, ...] = tuple(c for c in COMMENT_COLUMNS if c != "comment_content")


def _feedback_from_row(row: dict[str, Any]) -> FeedbackRecord:
    is_test = bool(row["is_test"])
    return FeedbackRecord(
        id=int(row["id"]),
        created=as_utc(row["created"]),
        label=row["label"],
        source=row["source"],
        reporter=row["reporter"],
        check_id=row["check_id"],
        site_id=row["site_id"],
        key_id=row["key_id"],
        is_test=is_test,
        comment_hash=row["comment_hash"],
        comment=comment_from_row(row, is_test=is_test),
    )


@dataclass(frozen=True)
class Forgotten:
    """What forgetting removed: labels, checks of the comments left without one, and reports of those
    labels still waiting for the upstream. Falsy: nothing."""

    labels: int
    checks: int
    reports: int = 0

    def __bool__(self) -> bool:
        return self.labels > 0


def _check_lock_id(check_id: str) -> int:
    """A PostgreSQL advisory-lock key for one check (a signed 64-bit number from its id)."""
    return int.from_bytes(hashlib.blake2b(check_id.encode(), digest_size=8).digest(), "big", signed=True)


class FeedbackMixin(StoreBase):
    """Adding, listing, forgetting and exporting feedback."""

    def add_feedback(self, record: FeedbackRecord) -> int:
        """Store one label; return its id."""
        return self.add_feedback_noting_repeats(record)[0]

    def add_feedback_noting_repeats(self, record: FeedbackRecord) -> tuple[int, bool]:
        """Store one label; return its id, and whether its check already had this label (from a
        report other than a test's).

        Asked and stored in one transaction, serialised per check: two identical reports at
        the same moment (a double click, two workers, two instances) both found none before
        either was stored, and both were counted.
        """
        values: dict[str, Any] = {
            "created": as_utc(record.created), "label": record.label, "source": record.source,
            # Minimised as the comment is: WordPress sends the moderator's user_login, often an e-mail.
            "reporter": self._privacy.minimise_text(record.reporter, MAX_REPORTER), "check_id": record.check_id, "site_id": record.site_id,
            "key_id": record.key_id, "is_test": bool(record.is_test),
            "comment_hash": record.comment_hash or self._privacy.comment_hash(record.comment),
            **comment_to_row(self._privacy.minimise(record.comment)),
        }
        params = [values[c] for c in _COLUMNS]
        check_id, label = record.check_id, record.label

        def work(tx: Tx) -> tuple[int, bool]:
            repeated = False
            if check_id is not None:
                if self.backend == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises writers
                    tx.fetchone("SELECT pg_advisory_xact_lock(?) AS locked", (_check_lock_id(check_id),))
                repeated = tx.fetchone(
                    "SELECT 1 AS found FROM feedback WHERE check_id = ? AND label = ? AND is_test = ? LIMIT 1",
                    (check_id, label, False)) is not None
            return tx.insert(_INSERT, params), repeated

        return self._db.run(work)

    def list_feedback(self, include_test: bool = False, latest_per_comment: bool = False) -> list[FeedbackRecord]:
        """Stored labels, oldest first; with ``latest_per_comment`` only each comment's latest."""
        where = "" if include_test else "WHERE is_test = ?"
        params: list[Any] = [] if include_test else [False]
        if latest_per_comment:
            sql = f"""SELECT * FROM (
                SELECT f.*, ROW_NUMBER() OVER (
                    PARTITION BY comment_hash ORDER BY created DESC, id DESC) AS recency
                FROM feedback f {where}) ranked
                WHERE recency = 1 {_ORDER}"""
        else:
            sql = f"SELECT * FROM feedback {where} {_ORDER}"
        return [_feedback_from_row(r) for r in self._db.read(lambda tx: tx.fetchall(sql, params))]

    def forget_feedback(self, feedback_id: int) -> Forgotten:
        """Delete one label (falsy result when there was none with that id); see :meth:`_forget`."""
        return self._forget("id = ?", (feedback_id,))

    def forget_feedback_for_check(self, check_id: str) -> Forgotten:
        """Delete every label given for a check (also after the check was purged); see :meth:`_forget`."""
        return self._forget("check_id = ?", (check_id,))

    def _forget(self, where: str, params: tuple[Any, ...]) -> Forgotten:
        """Delete the labels ``where`` selects, their reports still waiting for the upstream, and the
        checks of each comment left without a label on the label's site.

        The check log holds the comment's text too, and the upstream's answer about it, which
        ``export --include-upstream`` would otherwise bring back as a weak label. Only the label's
        own site's checks: forgetting a label of one site had deleted other sites' checks of the
        same text, and their own reports by check id were then refused (a probe).
        """
        same_site = "site_id IS ?" if self.backend == "sqlite" else "site_id IS NOT DISTINCT FROM CAST(? AS BIGINT)"

        def work(tx: Tx) -> Forgotten:
            rows = tx.fetchall(f"SELECT id, comment_hash, site_id FROM feedback WHERE {where}", params)
            comments = {(r["comment_hash"], r["site_id"]) for r in rows}
            labels = tx.execute(f"DELETE FROM feedback WHERE {where}", params)
            # A forwarded report not delivered yet holds the comment as the upstream needs it, IP
            # and e-mail in clear, and would still be sent once the upstream is back. (A delivered
            # one holds nothing any more.) A sender holding the row meanwhile delivers it at most once.
            reports = sum(tx.execute("DELETE FROM upstream_outbox WHERE feedback_id = ? AND delivered_at IS NULL",
                                     (row["id"],)) for row in rows)
            checks = 0
            for digest, site_id in sorted(comments, key=lambda c: (c[0], c[1] is None, c[1] or 0)):
                mine = (digest, site_id)
                if tx.fetchone(f"SELECT 1 AS one FROM feedback WHERE comment_hash = ? AND {same_site}", mine) is None:
                    checks += tx.execute(f"DELETE FROM checks WHERE comment_hash = ? AND {same_site}", mine)
            return Forgotten(labels, checks, reports)

        return self._db.run(work)

    def export_feedback(self, path: Union[str, "os.PathLike[str]"], *, include_upstream: bool = False) -> int:
        """Write the training set as JSON Lines; return the number of lines.

        One object per comment: its latest label wins; test feedback and labels of
        comments without text are never exported. Each line has ``comment_content``, ``label`` and every other
        non-empty Akismet field (``comment_context`` as a list). The file is
        replaced atomically. ``include_upstream`` adds the upstream's answers
        recorded with checks as weak labels, after the moderators' labels, for
        comments no moderator labelled; they carry ``"label_source": "upstream"``
        (moderator lines carry ``"moderator"`` then).
        """
        records = self.list_feedback(include_test=False, latest_per_comment=True)
        # One line per text, the latest label winning, as `retrain` counts them: the same text
        # reported by two sites (other authors) made two lines, and `train`, which keeps the
        # first of duplicate texts, learned the older label where `retrain` learned the newer.
        latest: dict[str, FeedbackRecord] = {}
        for record in records:  # oldest first
            # A label without text (a report of a pingback, or of a check no longer in the log)
            # has nothing to learn from, and the training loader would refuse its line.
            if record.comment.comment_content.strip():
                text = normalise_text(record.comment.comment_content)
                latest.pop(text, None)
                latest[text] = record
        rows = [_training_row(r) for r in latest.values()]
        if include_upstream:
            from store.upstream import upstream_weak_labels  # store.upstream imports this package's base

            for row in rows:
                row["label_source"] = "moderator"
            rows += [{**_training_row(FeedbackRecord(label=label, comment=comment)), "label_source": "upstream"}
                     for comment, label in upstream_weak_labels(self)]
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=".feedback-", suffix=".jsonl", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for row in rows:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(rows)


def _training_row(record: FeedbackRecord) -> dict[str, Any]:
    comment = record.comment
    row: dict[str, Any] = {"comment_content": comment.comment_content, "label": record.label}
    row.update({f: getattr(comment, f) for f in _EXPORT_FIELDS if getattr(comment, f)})
    if comment.comment_context:
        row["comment_context"] = list(comment.comment_context)
    return row
