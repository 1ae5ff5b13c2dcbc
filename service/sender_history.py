"""A sender's history with the site's moderators, counted in the verdict at check time.

Owns the policy and the per-worker table it reads. The table (:class:`store.sender_history.SenderLabels`:
spam and ham labels per site and sender digest, over the last ``COMMENTGUARD_SENDER_HISTORY_DAYS``)
is loaded by a thread of its own at start and every :data:`REFRESH_SECONDS` (longer when loads are
slow: :data:`LOAD_SHARE`), and swapped in by one
assignment: a check reads it without a query or a lock. A sender is known per registered site (the
key's site) by the keyed hash of its ``comment_author_email`` and, apart, of its ``user_ip``; a
site with no labelled sender costs a check one dict lookup, a site with some two keyed hashes.

The policy (conservative, and said in the reasons; the addresses never are):

* **reported sender**: at least 2 spam labels for the e-mail (or for the IP), and more spam than
  ham for it: the verdict becomes at least ``spam`` (never ``discard`` by this rule), the score at
  least the spam threshold, reason "moderators marked 3 earlier comments from this sender's e-mail
  address as spam". Reported by its IP alone, a ``ham`` verdict becomes ``unsure`` only (held for
  a moderator): an IP is shared.
* **approved sender**: at least 2 ham labels for the e-mail, and no spam label for the e-mail nor
  for the IP: an ``unsure`` verdict becomes ``ham`` (score just under the unsure threshold), reason
  "moderators approved 4 earlier comments from this sender's e-mail address". Never lower than
  that: the site does not verify an e-mail address, and a spammer may use a known commenter's, so
  history settles a doubt and never overrules a confident verdict. An IP alone never vouches
  (shared NAT, proxies).

History comes after the upstream cross-check (service.upstream): a report stands whatever the
upstream answered, and an approval acts only where the model itself was unsure (a probe: an
upstream's ham had brought a comment the model called spam to unsure, and the approval then
published it). The fixed Akismet rules (service.akismet_rules) are applied last, and win. A
store that fails leaves the last table serving (or none, before the first load); one warning
says so, and ``/readyz`` shows the table's age, size and the error.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Optional

from model.comment import Comment
from model.verdict import DISCARD, HAM, SPAM, UNSURE, Reason, Thresholds, Verdict
from store import Store, StoreError
from store.error_text import error_text
from store.sender_history import MIN_LABELS, Counts, SenderLabels

#: Seconds between two loads of the table: the most a new or forgotten label waits to count,
#: unless loads are slow (:data:`LOAD_SHARE`).
REFRESH_SECONDS = 30.0
#: The most of its thread's time loading may take: after a load of L seconds the next waits at
#: least L / LOAD_SHARE (on 300,000 labels in the window a load took 1.4-2.6 s on a busy host:
#: every 30 s, that was up to a tenth of a core per worker).
LOAD_SHARE = 0.05
#: How far under the unsure threshold an approved sender's score goes (JSON rounds scores to 6 places).
BELOW_UNSURE = 1e-6
EMAIL, IP = "e-mail address", "IP address"

log = logging.getLogger(__name__)


def reported_reason(count: int, what: str) -> str:
    """The reason of a reported sender (``what``: :data:`EMAIL` or :data:`IP`)."""
    return f"moderators marked {count} earlier comments from this sender's {what} as spam"


def approved_reason(count: int) -> str:
    """The reason of an approved sender (by e-mail: an IP never vouches)."""
    return f"moderators approved {count} earlier comments from this sender's {EMAIL}"


def is_reported(counts: Optional[Counts]) -> bool:
    return counts is not None and counts[0] >= MIN_LABELS and counts[0] > counts[1]


def judge(verdict: Verdict, thresholds: Thresholds, email: Optional[Counts], ip: Optional[Counts],
          model_tier: Optional[str] = None) -> Verdict:
    """``verdict`` after the policy, given the sender's e-mail and IP counts (``None``: no labels).

    ``model_tier``: the model's own tier, where the upstream cross-check moved ``verdict``
    (default: ``verdict``'s): an approval settles the model's doubt, never the upstream's.
    """
    reported = [Reason(reported_reason(c[0], what), 0.0) for c, what in ((email, EMAIL), (ip, IP)) if is_reported(c)]
    if reported:
        if verdict.tier in (SPAM, DISCARD):
            return replace(verdict, reasons=(*reported, *verdict.reasons))  # said, changes nothing
        # Weight 0, as the fixed rules' reasons: history overrides the model, it adds no log-odds.
        # The model's reasons for a lower tier go; other notes (the upstream's) stay.
        kept = tuple(r for r in verdict.reasons if r.weight >= 0)
        if not is_reported(email) and verdict.tier == HAM:
            # An IP alone is shared (a household, an office, a mobile carrier's NAT, a site's own
            # proxy sending its address as user_ip): it holds a comment for a moderator, one step
            # up, and never sends an ordinary one to spam (a probe: a new sender's plain comment
            # from an IP with two spam reports was answered spam).
            return replace(verdict, tier=UNSURE, score=max(verdict.score, thresholds.unsure), reasons=(*reported, *kept))
        return replace(verdict, tier=SPAM, score=max(verdict.score, thresholds.spam), reasons=(*reported, *kept))
    if (verdict.tier == UNSURE and (model_tier or verdict.tier) == UNSURE and email is not None
            and email[1] >= MIN_LABELS and email[0] == 0 and (ip is None or ip[0] == 0)):
        kept = tuple(r for r in verdict.reasons if r.weight <= 0)
        score = min(verdict.score, max(0.0, thresholds.unsure - BELOW_UNSURE))
        return replace(verdict, tier=HAM, score=score, reasons=(Reason(approved_reason(email[1]), 0.0), *kept))
    return verdict


class SenderHistory:
    """The label counts one worker applies, and the thread that reloads them (see the module)."""

    def __init__(self, store: Store, days: int, interval: float = REFRESH_SECONDS) -> None:
        self.store = store
        self.days = days
        self.interval = interval
        self.labels: Optional[SenderLabels] = None
        self.loaded_at: Optional[float] = None
        #: The last refresh's error while refreshes fail (the table of ``loaded_at`` serves).
        self.error: Optional[str] = None
        #: How long the last successful load took.
        self.load_seconds = 0.0
        self._lock = threading.Lock()  # one refresh at a time: the last to read is the last to assign
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def apply(self, comment: Comment, verdict: Verdict, thresholds: Thresholds, site_id: Optional[int], *,
              model_tier: Optional[str] = None) -> Verdict:
        """``verdict`` after the sender's history on ``site_id`` (``None``: no key, no history);
        ``model_tier`` as :func:`judge` takes it."""
        labels = self.labels
        if labels is None or site_id is None:
            return verdict
        emails, ips = labels.emails.get(site_id), labels.ips.get(site_id)
        if emails is None and ips is None:
            return verdict  # no labelled sender on this site: no hashing
        digest = self.store.sender_digest
        email = emails.get(digest(comment.comment_author_email, email=True)) if emails is not None else None
        ip = ips.get(digest(comment.user_ip)) if ips is not None else None
        if email is None and ip is None:
            return verdict
        return judge(verdict, thresholds, email, ip, model_tier)

    def refresh(self) -> bool:
        """Load the counts from the store; False (the last table serving) when it fails."""
        with self._lock:
            started = time.monotonic()
            try:
                labels = self.store.sender_label_counts(self.days)
            except StoreError as exc:
                if self.error is None:
                    log.warning("the sender history could not be loaded (%s); checks go on with %s", error_text(exc),
                                "the table loaded before" if self.labels is not None else "no history")
                self.error = error_text(exc)
                return False
            self.labels, self.loaded_at = labels, time.time()
            self.load_seconds = time.monotonic() - started
            if self.error is not None:
                log.info("the sender history is loaded again (%d senders)", labels.senders)
                self.error = None
            return True

    def start(self) -> "SenderHistory":
        """Load in a thread at once, then every ``interval`` seconds, until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="commentguard-sender-history", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the thread must outlive any surprise; checks go on
                log.exception("loading the sender history failed")
            wait = self.next_wait()

    def next_wait(self) -> float:
        """Seconds from one load to the next: ``interval``, longer when the last load was slow."""
        return max(self.interval, self.load_seconds / LOAD_SHARE)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        """What ``/readyz`` says: when the table was loaded, how many senders it holds, any error."""
        labels, loaded_at = self.labels, self.loaded_at
        out: dict[str, Any] = {
            "loaded_at": (datetime.fromtimestamp(loaded_at, timezone.utc).isoformat(timespec="seconds")
                          if loaded_at is not None else None),
            "senders": labels.senders if labels is not None else 0, "days": self.days,
            "load_seconds": round(self.load_seconds, 3)}
        if self.error is not None:
            out["error"] = self.error
        return out


__all__ = ["BELOW_UNSURE", "LOAD_SHARE", "REFRESH_SECONDS", "SenderHistory", "approved_reason", "is_reported", "judge",
           "reported_reason"]
