"""Forwarding moderator reports upstream without making the moderator wait, and without losing one.

A report (``submit-spam``/``submit-ham``, ``POST /api/v1/feedback``) is
written to the store's outbox (:mod:`store.upstream`) in the request, which
costs one insert; a sender thread per worker process delivers it. A failed
delivery (upstream down, 5xx, a refused key, anything but the thank-you
sentence) is retried with exponential backoff (``backoff_base`` doubling up to
``backoff_cap`` seconds, with jitter); a report stays in the outbox until it is
delivered, across restarts, so nothing is lost while the upstream is down.
A report the upstream answers but refuses for what it is (say ``Missing
required field: user_ip.``) is marked rejected, with the reason, and not retried.

Delivery is at-least-once, and duplicates are harmless. A sender claims rows
with a lease (``lease_s``, well beyond the request timeout) so two senders
never send one row at the same time, and marks a row delivered right after
the upstream's thank-you. A duplicate can therefore only come from a process
that dies between the thank-you and the mark, or from an upstream that
accepted a report but whose answer was lost; a repeated report of the same
comment with the same label is idempotent in effect (Akismet and CommentGuard
both learn one label per comment; our own export keeps the latest label per
comment). Exactly-once would need the upstream to dedupe by an id it does not
take. In normal operation, and in the tests, each report is sent once.
"""
from __future__ import annotations

import logging
import random
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any, Optional

from model.comment import Comment
from service.upstream_client import UpstreamClient, UpstreamSubmitError, comment_form
from store import Store
from store.privacy import without_pseudonyms
from store.records import utcnow
from store.upstream import (
    claim_upstream_reports,
    enqueue_upstream_report,
    mark_upstream_delivered,
    mark_upstream_failed,
    mark_upstream_rejected,
)

log = logging.getLogger(__name__)


class FeedbackForwarder:
    """The outbox's producer side (:meth:`enqueue`) and its sender thread."""

    def __init__(self, store: Store, client: UpstreamClient, *, poll_s: float = 2.0, backoff_base: float = 1.0,
                 backoff_cap: float = 300.0, lease_s: float = 120.0, batch: int = 20) -> None:
        self.store = store
        self.client = client
        self.poll_s = poll_s
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lease_s = lease_s
        self.batch = batch
        self.delivered = 0
        self.failed_attempts = 0
        self.rejected = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None

    def enqueue(self, label: str, comment: Comment, *, blog: str, feedback_id: Optional[int] = None,
                comment_check_response: str = "") -> int:
        """Queue one report for the upstream and wake the sender; raises ``StoreError`` if it cannot be stored."""
        form = comment_form(comment, api_key="", blog=blog)
        form.pop("api_key")  # the key is added at send time, never stored
        if comment_check_response in ("true", "false"):
            form["comment_check_response"] = comment_check_response
        item_id = enqueue_upstream_report(self.store, label, form, feedback_id)
        self._wake.set()
        return item_id

    def start(self) -> "FeedbackForwarder":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="commentguard-upstream-outbox", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def deliver_due(self) -> int:
        """One pass: claim due reports and send them in order; return how many were delivered.

        After a failure the pass stops and the rest of its claim goes back
        untried, due together with the failed one: the upstream is most
        likely down, and hammering it helps nobody.
        """
        items = claim_upstream_reports(self.store, limit=self.batch, lease_s=self.lease_s)
        delivered = 0
        for index, item in enumerate(items):
            try:
                self.client.submit(item.label, item.payload)
            except UpstreamSubmitError as exc:
                if exc.permanent:
                    log.error("the upstream refused a forwarded report for good: %s", exc)
                    mark_upstream_rejected(self.store, item.id, str(exc))
                    self.rejected += 1
                    continue
                self.failed_attempts += 1
                delay = min(self.backoff_cap, self.backoff_base * 2 ** item.attempts) * (0.5 + random.random() / 2)
                retry_at = utcnow() + timedelta(seconds=delay)
                log.warning("forwarding a report upstream failed (%s); retry in %.1f s", exc, delay)
                mark_upstream_failed(self.store, item.id, str(exc), retry_at)
                for rest in items[index + 1:]:
                    mark_upstream_failed(self.store, rest.id, "not tried: upstream failing", retry_at,
                                         attempted=False)
                break
            mark_upstream_delivered(self.store, item.id)
            delivered += 1
        self.delivered += delivered
        return delivered

    def _run(self) -> None:
        while not self._stopping:
            try:
                more = self.deliver_due() >= self.batch
            except Exception as exc:  # noqa: BLE001 - the sender must outlive a store hiccup
                log.error("the upstream outbox sender failed: %s", type(exc).__name__)
                more = False
            if not more:
                self._wake.wait(self.poll_s)
                self._wake.clear()


#: The ``user_ip`` of a forwarded report whose address this server keeps only as a keyed hash.
UNKNOWN_IP = "0.0.0.0"


def forward_report(forwarder: Any, label: str, comment: Comment, *, blog: str,
                   feedback_id: Optional[int], upstream_json: Any) -> None:
    """Queue a report if forwarding is on; a failure to queue is logged, never raised into the request."""
    if forwarder is None:
        return
    answer = upstream_json.get("answer") if isinstance(upstream_json, dict) else None
    try:
        # A comment taken from the check log has its IP and e-mail as keyed hashes: those stay here.
        sent = without_pseudonyms(comment)
        if not sent.user_ip.strip():
            # The protocol requires user_ip on a submit: an upstream refused every report by check
            # id ("Missing required field: user_ip") for good. The unspecified address says "not
            # known" without inventing a sender.
            sent = replace(sent, user_ip=UNKNOWN_IP)
        forwarder.enqueue(label, sent, blog=blog, feedback_id=feedback_id,
                          comment_check_response=answer if answer in ("true", "false") else "")
    except Exception as exc:  # noqa: BLE001 - the moderator's label is stored; forwarding is best effort here
        log.error("queueing a report for the upstream failed: %s", type(exc).__name__)


__all__ = ["UNKNOWN_IP", "FeedbackForwarder", "forward_report"]
