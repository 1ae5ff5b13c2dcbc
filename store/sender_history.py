"""Moderator labels counted per sender and site: what the service's sender history reads.

One aggregate query over ``feedback`` per refresh (GROUP BY site, stored e-mail or IP, within
the last N days, each comment (a text on its page) once, by its latest label; test labels and
labels without a site left out), so a worker never queries the store per check. Senders are keyed
by the 16 bytes of their pseudonym's hash
(:meth:`store.privacy.Privacy.sender_digest`), whether the row holds the pseudonym or, where
``COMMENTGUARD_STORE_PERSONAL_DATA`` kept it, the address in clear: no address is held in
memory, and both forms of one sender count together.

Only senders a rule can act on are kept (service.sender_history): an e-mail with at least
:data:`MIN_LABELS` spam or ham labels, an IP with at least one spam label (an IP's ham labels
vouch for nothing). The query filters so in SQL, unless some label of the window holds its
sender in clear: then every group is read, and filtered once the clear ones have joined their
pseudonyms' (the usual store, all pseudonyms, sends only the groups that matter).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from store.base import StoreBase
from store.pages import PAGE_SQL
from store.records import utcnow

#: Labels of one kind a sender needs before history says anything about them.
MIN_LABELS = 2
#: (spam labels, ham labels) of one sender.
Counts = tuple[int, int]

# A comment counts once, by its latest label in the window (a probe: a double-clicked approval made
# a sender "approved" on one comment, and spam, ham, spam again counted two spam labels). A comment
# is its text, author and e-mail (comment_hash) on its page ({page}: the permalink without its
# fragment and a trailing slash, in lower case). Probes found each other rule wrong (2026-11-28):
# the text alone counted a spammer pasting one text under three posts once; the check a label
# names counted a comment checked again twice; a sender on a page let one approved comment replace
# the spam labels of the sender's other comments there. The cost of this one: an edited comment,
# checked again with another text, is another comment (WordPress sends no posting time with a
# comment's first check, so nothing ties the two checks together).
# Rows without the sender's value are dropped after the ranking, not before: a correction to ham
# that came without the IP had left the older spam label as the comment's latest on that IP.
# The ranking runs once for both kinds of sender: the CTE, read twice, is materialised by both
# engines (a query per kind, each ranking the window, took 2.5 s on 300,000 labels in SQLite; one,
# 1.7 s; bench/sender_history.py).
_WINDOW = "is_test = ? AND created >= ? AND site_id IS NOT NULL"
_QUERY = f"""WITH latest AS (
    SELECT site_id, comment_author_email, user_ip, label FROM (
        SELECT site_id, comment_author_email, user_ip, label,
               ROW_NUMBER() OVER (PARTITION BY site_id, comment_hash, {{page}}
                                  ORDER BY created DESC, id DESC) AS recency
        FROM feedback WHERE {_WINDOW}) ranked
    WHERE recency = 1)
{{email}}
UNION ALL
{{ip}}"""
# One kind of sender's groups: {column} is comment_author_email or user_ip; {keep} the HAVING clause
# for pseudonymised rows. When any row of the window holds its sender in clear, every group is
# read: a clear row and a pseudonymised one of one sender are two groups here, which only count
# together once hashed. (The EXISTS is uncorrelated: both engines run it once.)
_GROUPS = f"""SELECT '{{kind}}' AS kind, site_id, {{column}} AS sender,
       SUM(CASE WHEN label = 'spam' THEN 1 ELSE 0 END) AS spam,
       SUM(CASE WHEN label = 'ham' THEN 1 ELSE 0 END) AS ham
FROM latest WHERE {{column}} <> ''
GROUP BY site_id, {{column}}
HAVING {{keep}} OR EXISTS (SELECT 1 FROM feedback WHERE {_WINDOW} AND {{column}} <> ''
                                                  AND substr({{column}}, 1, 5) <> 'hmac:')"""
_KEEP_EMAIL = f"SUM(CASE WHEN label = 'spam' THEN 1 ELSE 0 END) >= {MIN_LABELS} " \
              f"OR SUM(CASE WHEN label = 'ham' THEN 1 ELSE 0 END) >= {MIN_LABELS}"
_KEEP_IP = "SUM(CASE WHEN label = 'spam' THEN 1 ELSE 0 END) >= 1"


def keeps_email(counts: Counts) -> bool:
    """Whether an e-mail's counts can move a verdict (reported, or approved)."""
    return counts[0] >= MIN_LABELS or counts[1] >= MIN_LABELS


def keeps_ip(counts: Counts) -> bool:
    """Whether an IP's counts can move a verdict (reported, or blocking its e-mail's vouching)."""
    return counts[0] >= 1


@dataclass(frozen=True)
class SenderLabels:
    """Label counts per site and sender digest, apart for e-mails and IPs (an address and an
    e-mail of the same text hash alike)."""

    emails: dict[int, dict[bytes, Counts]] = field(default_factory=dict)
    ips: dict[int, dict[bytes, Counts]] = field(default_factory=dict)

    @property
    def senders(self) -> int:
        """How many e-mails and IPs are held."""
        return sum(map(len, self.emails.values())) + sum(map(len, self.ips.values()))


class SenderHistoryMixin(StoreBase):
    """Reading label counts per sender, and the digest a check's sender is looked up by."""

    def sender_digest(self, value: str, *, email: bool = False) -> bytes:
        """The digest a sender's ``comment_author_email`` (``email``) or ``user_ip`` is known by
        in :meth:`sender_label_counts` (``b""`` for an empty value)."""
        return self._privacy.sender_digest(value, email=email)

    def sender_label_counts(self, days: int, now: Optional[datetime] = None) -> SenderLabels:
        """Non-test labels of the last ``days`` days (to ``now``) counted per site and sender."""
        since = (now or utcnow()) - timedelta(days=days)
        sql = _QUERY.format(page=PAGE_SQL[self.backend],
                            email=_GROUPS.format(kind="e", column="comment_author_email", keep=_KEEP_EMAIL),
                            ip=_GROUPS.format(kind="i", column="user_ip", keep=_KEEP_IP))
        rows = self._db.read(lambda tx: tx.fetchall(sql, (False, since) * 3))
        email_rows = [row for row in rows if row["kind"] == "e"]
        ip_rows = [row for row in rows if row["kind"] == "i"]
        return SenderLabels(emails=self._merged(email_rows, True), ips=self._merged(ip_rows, False))

    def _merged(self, rows: list[dict[str, Any]], email: bool) -> dict[int, dict[bytes, Counts]]:
        """Rows by site and digest, a sender's clear and pseudonymised rows added up, and only
        the senders a rule can act on kept."""
        digest = self._privacy.sender_digest
        out: dict[int, dict[bytes, Counts]] = {}
        for row in rows:
            senders = out.setdefault(int(row["site_id"]), {})
            key = digest(str(row["sender"]), email=email)
            spam, ham = senders.get(key, (0, 0))
            senders[key] = (spam + int(row["spam"]), ham + int(row["ham"]))
        keep = keeps_email if email else keeps_ip
        # Most senders have the same few counts ((2, 0), (0, 3)...): one tuple each, shared,
        # saves 56 bytes a sender (a third of the table).
        shared: dict[Counts, Counts] = {}
        for site_id in list(out):
            kept = {key: shared.setdefault(counts, counts) for key, counts in out[site_id].items() if keep(counts)}
            if kept:
                out[site_id] = kept
            else:
                del out[site_id]
        return out


__all__ = ["MIN_LABELS", "SenderHistoryMixin", "SenderLabels", "keeps_email", "keeps_ip"]
