"""What the store keeps for the upstream cross-check: the report outbox, and the recorded upstream answers.

The outbox (table ``upstream_outbox``) holds moderator reports waiting to be
forwarded upstream. Senders in several processes share it: a sender *claims*
due rows by setting ``claimed_until`` (a lease) with a conditional UPDATE, so
two senders never hold one row at once; a delivered row gets ``delivered_at``
and loses its payload (the payload holds the comment as the upstream needs
it, IP and e-mail included, so it is kept only until it is delivered, or for the
retention period at most: :func:`purge_upstream_reports`; forgetting a label
deletes its report too, see :mod:`store.feedback`).

The upstream answers themselves live in ``checks.upstream`` (JSON); the
functions here read them back for ``commentguard upstream report`` and for
exporting weak labels.

These are functions over a :class:`store.Store` (through its ``database``)
rather than a mixin, so the Store class stays as it is.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from model.comment import Comment
from store.base import StoreBase
from store.db import Tx
from store.records import as_utc, comment_from_row, utcnow


@dataclass(frozen=True)
class OutboxItem:
    """One report waiting for the upstream: ``label`` (spam/ham) and the form to send."""

    id: int
    label: str
    payload: dict[str, Any]
    attempts: int
    feedback_id: Optional[int] = None


def enqueue_upstream_report(store: StoreBase, label: str, payload: dict[str, Any],
                            feedback_id: Optional[int] = None) -> int:
    """Add a report to the outbox, due now; return its id."""
    if label not in ("spam", "ham"):
        raise ValueError(f"label must be spam or ham, got {label!r}")
    now = utcnow()
    params = [now, label, feedback_id, json.dumps(payload, ensure_ascii=False), now]
    return store.database.run(lambda tx: tx.insert(
        "INSERT INTO upstream_outbox (created, label, feedback_id, payload, next_attempt) VALUES (?, ?, ?, ?, ?)",
        params))


def claim_upstream_reports(store: StoreBase, *, limit: int = 10, lease_s: float = 60.0) -> list[OutboxItem]:
    """Claim up to ``limit`` due, undelivered, unclaimed reports (oldest first) for ``lease_s`` seconds."""
    def work(tx: Tx) -> list[OutboxItem]:
        now = utcnow()
        until = now + timedelta(seconds=lease_s)
        due = tx.fetchall(
            "SELECT id FROM upstream_outbox WHERE delivered_at IS NULL AND next_attempt <= ? "
            "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?", (now, now, limit))
        claimed: list[OutboxItem] = []
        for row in due:
            # Conditional: a sender in another process may have claimed it since the SELECT.
            if tx.execute("UPDATE upstream_outbox SET claimed_until = ? WHERE id = ? AND delivered_at IS NULL "
                          "AND (claimed_until IS NULL OR claimed_until < ?)", (until, row["id"], now)) != 1:
                continue
            full = tx.fetchone("SELECT id, label, payload, attempts, feedback_id FROM upstream_outbox WHERE id = ?",
                               (row["id"],))
            assert full is not None
            claimed.append(OutboxItem(int(full["id"]), full["label"], json.loads(full["payload"]),
                                      int(full["attempts"]), full["feedback_id"]))
        return claimed

    return store.database.run(work)


def mark_upstream_delivered(store: StoreBase, item_id: int) -> None:
    """Record a delivery and drop the payload (it holds personal data)."""
    store.database.run(lambda tx: tx.execute(
        "UPDATE upstream_outbox SET delivered_at = ?, claimed_until = NULL, payload = '{}', last_error = '', "
        "attempts = attempts + 1 WHERE id = ?", (utcnow(), item_id)))


def mark_upstream_failed(store: StoreBase, item_id: int, error: str, retry_at: datetime, *,
                         attempted: bool = True) -> None:
    """Release a claimed report to be tried again at ``retry_at`` (``attempted``: count this try)."""
    store.database.run(lambda tx: tx.execute(
        "UPDATE upstream_outbox SET claimed_until = NULL, next_attempt = ?, last_error = ?, "
        f"attempts = attempts + {1 if attempted else 0} WHERE id = ?", (retry_at, error[:200], item_id)))


def mark_upstream_rejected(store: StoreBase, item_id: int, error: str) -> None:
    """Record that the upstream refused a report for good: done, not delivered (``last_error`` says why)."""
    store.database.run(lambda tx: tx.execute(
        "UPDATE upstream_outbox SET delivered_at = ?, claimed_until = NULL, payload = '{}', last_error = ?, "
        "attempts = attempts + 1 WHERE id = ?", (utcnow(), "rejected: " + error[:190], item_id)))


def purge_upstream_reports(store: StoreBase, older_than_days: int) -> int:
    """Delete the reports queued more than ``older_than_days`` days ago and never delivered (the
    upstream never took them); return how many.

    Their payload holds the comment as the upstream needs it, IP and e-mail in clear, and an
    upstream that never recovers would keep it so for ever: the retention that bounds the check
    log bounds these too. Delivered and rejected rows hold no payload and stay, for the counts.
    """
    if not isinstance(older_than_days, int) or older_than_days < 0:
        raise ValueError("older_than_days must be a non-negative integer")
    cutoff = utcnow() - timedelta(days=older_than_days)
    return store.database.run(lambda tx: tx.execute(
        "DELETE FROM upstream_outbox WHERE delivered_at IS NULL AND created < ?", (cutoff,)))


def upstream_outbox_counts(store: StoreBase) -> dict[str, int]:
    """``{"pending": n, "delivered": n}``, plus ``"rejected": n`` when the upstream refused any for good."""
    rows = store.database.read(lambda tx: tx.fetchall(
        "SELECT delivered_at IS NULL AS pending, last_error = '' AS clean, COUNT(*) AS n FROM upstream_outbox "
        "GROUP BY delivered_at IS NULL, last_error = ''"))
    out = {"pending": 0, "delivered": 0}
    for row in rows:
        name = "pending" if row["pending"] else ("delivered" if row["clean"] else "rejected")
        out[name] = out.get(name, 0) + int(row["n"])
    return out


def upstream_checks(store: StoreBase, since: Optional[datetime] = None) -> list[dict[str, Any]]:
    """Checks that carry upstream JSON, created at or after ``since``: ``{created, tier, is_test, upstream}``."""
    sql = "SELECT created, tier, is_test, upstream FROM checks WHERE upstream IS NOT NULL"
    params: list[Any] = []
    if since is not None:
        sql, params = sql + " AND created >= ?", [as_utc(since)]
    rows = store.database.read(lambda tx: tx.fetchall(sql + " ORDER BY created", params))
    return [{"created": as_utc(r["created"]), "tier": r["tier"], "is_test": bool(r["is_test"]),
             "upstream": json.loads(r["upstream"])} for r in rows]


def upstream_weak_labels(store: StoreBase) -> list[tuple[Comment, str]]:
    """Upstream answers as weak labels: (comment, ``spam``/``ham``), latest check per comment.

    Leaves out test calls and every comment a moderator labelled (their label
    is better). Only answers that were real (``upstream`` is spam or ham) count.
    """
    sql = """SELECT * FROM (
        SELECT c.*, ROW_NUMBER() OVER (PARTITION BY comment_hash ORDER BY created DESC, id DESC) AS recency
        FROM checks c WHERE upstream IS NOT NULL AND is_test = ?
          AND comment_hash NOT IN (SELECT comment_hash FROM feedback)) ranked
        WHERE recency = 1 ORDER BY created, id"""
    rows = store.database.read(lambda tx: tx.fetchall(sql, (False,)))
    out: list[tuple[Comment, str]] = []
    for row in rows:
        answer = (json.loads(row["upstream"]) or {}).get("upstream")
        if answer in ("spam", "ham"):
            out.append((comment_from_row(row, is_test=False), answer))
    return out


__all__ = ["OutboxItem", "claim_upstream_reports", "enqueue_upstream_report", "mark_upstream_delivered",
           "mark_upstream_failed", "mark_upstream_rejected", "purge_upstream_reports", "upstream_checks", "upstream_outbox_counts", "upstream_weak_labels"]
