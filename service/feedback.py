"""Moderator feedback, shared by the Akismet submit calls and ``POST /api/v1/feedback``.

Owns finding the check a report corrects (by its id, else by the same comment
on the same site) and storing the label. A check may still sit in the
recorder's queue, or in the batch it is writing, when its report arrives (a
moderator can be quick); a lookup that misses flushes the queue, waiting for a
write in progress, and looks once more. The check may also be on its way from
another worker process, whose queue this one cannot flush: a check id is a
uuid7 and tells when it was made, so a miss on an id less than
:data:`IN_FLIGHT_SECONDS` old asks the store again until it is that old. (With
two workers, 12 of 30 reports sent right after their check got 404 "no such
check", and Akismet submits by guid were stored without their comment.) A report
naming only its comment does not wait: nothing tells whether a check of it is on
its way, and a moderator's bulk report of old comments would wait on every one;
sent within ~0.2 s of its check to another worker, it is stored unlinked (its
label and text are kept all the same).

During a store outage a report must not wait out the writer's attempt nor make its own on the
queue (each may wait 10 s on a locked SQLite file), nor take the last thread checks need
(:mod:`service.store_turns`), and must not say a check does not exist when it is only not
written yet: a check that this worker's recorder still holds unwritten, or an id not found while
the recorder is failing to write, raises :class:`CheckNotWritten`, which the surfaces answer as
the store outage it is ("please retry"; until 2026-11-28, 404 "no such check", and an Akismet
submit by guid alone was not stored).
With ``COMMENTGUARD_UPSTREAM_FORWARD_FEEDBACK`` on, a stored label is also queued
for the upstream (:mod:`service.upstream_outbox`), never waiting for it.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Optional

from model.comment import TEXT_FIELDS, Comment
from service import readiness
from service.akismet_rules import TEST_SPAM_REASON, is_flagged, matching_rule
from service.app import ServiceState
from service.metrics import count_feedback
from service.settings import Settings
from service.site_settings import site_log_only
from service.upstream_outbox import forward_report
from store import CheckRecord, FeedbackRecord, KeyInfo, Store, StoreError
from store.ids import id_time
from store.pages import page_of
from store.records import MAX_REPORTER

CHECK_ID = re.compile(r"[0-9a-f]{32}")
#: How long after a check its record may still be on its way to the store from another
#: worker (each worker's recorder writes every 0.2 s; a busy or backing-off one takes longer).
IN_FLIGHT_SECONDS = 2.0
#: How often a lookup that missed asks the store again meanwhile.
POLL_SECONDS = 0.05


class CheckNotWritten(StoreError):
    """Raised when a report's check is not in the store yet: this worker's recorder holds it
    unwritten, or (for a report that names its check) the recorder is failing to write, so the
    check may be waiting in a queue. Sent again once the store takes writes, the report links."""


def check_by_id(state: ServiceState, check_id: str, site_id: Optional[int], *,
                outage_is_retryable: bool = True) -> Optional[CheckRecord]:
    """The check with this id, if it exists and belongs to that site (``None``: a caller
    without a key, who sees only the checks made without one).

    Raises :class:`CheckNotWritten` when this worker holds that check unwritten, or, with
    ``outage_is_retryable``, when no such check is found while the recorder is failing to write.
    """
    if state.store is None or not CHECK_ID.fullmatch(check_id):
        return None
    age = time.time() - id_time(check_id)  # a check id is time-ordered (uuid7)
    # A made-up or old id waits for nothing; a fresh one until it is IN_FLIGHT_SECONDS old.
    wait = IN_FLIGHT_SECONDS - age if -IN_FLIGHT_SECONDS < age < IN_FLIGHT_SECONDS else 0.0
    check = _found_or_flushed(state, lambda store: store.get_check(check_id),
                              lambda record: record.id == check_id and record.site_id == site_id,
                              wait, outage_is_retryable)
    if check is not None and check.site_id != site_id:
        # Another site's check, as good as unknown; also to a caller without a key (anonymous
        # JSON, COMMENTGUARD_ALLOW_ANONYMOUS_JSON), who could otherwise label any site's check.
        return None
    return check


def check_by_comment(state: ServiceState, comment: Comment, site_id: Optional[int]) -> Optional[CheckRecord]:
    """The latest check of the same comment (content, author, email; and the page and posting time
    where the report gives them) on the site (``None``: among the checks made without a key).

    Raises :class:`CheckNotWritten` when this worker holds such a check unwritten.
    """
    store = state.store
    if store is None:
        return None
    digest = store.comment_hash(comment)
    content, page, posted = comment.comment_content, comment.permalink, comment.comment_date_gmt

    def same(record: CheckRecord) -> bool:  # the text first: the hash only for a likely match
        return (record.site_id == site_id and record.comment.comment_content == content
                and (not page or page_of(record.comment.permalink) == page_of(page))
                and (not posted or record.comment.comment_date_gmt == posted)
                and store.comment_hash(record.comment) == digest)

    # A report by fields naming its page is about the check on that page: one text pasted under
    # three posts and reported on each had been linked to the latest check three times (a probe).
    return _found_or_flushed(
        state, lambda store: store.find_check(digest, site_id, siteless=True, permalink=page, posted=posted),
        same, 0.0, False)


def _found_or_flushed(state: ServiceState, find: Callable[[Store], Optional[CheckRecord]],
                      held: Callable[[CheckRecord], bool], wait: float,
                      outage_is_retryable: bool) -> Optional[CheckRecord]:
    """``find(store)``; on a miss of a check this worker's recorder holds (``held``), once more
    after the recorder has written it, else every :data:`POLL_SECONDS` for up to ``wait``
    seconds (another worker's).

    A request writes the queue only for a check it holds, waits for the writer's write in
    progress only briefly, and neither while the writer finds the store unreachable
    (:meth:`service.recorder.Recorder.flush_for_a_request`); a check it still holds then raises
    :class:`CheckNotWritten`. (The recorder says a check of the batch it is writing is held
    until that batch is committed, so "not held" after a miss means "look once more".)
    """
    store, recorder = state.store, state.recorder
    assert store is not None

    def look() -> Optional[CheckRecord]:
        # Reads take a turn too: a PostgreSQL server that stops answering holds a read until the
        # store's answer deadline (store.answer_deadline), and reports must leave threads for checks.
        with state.store_turn():
            return find(store)

    check = look()
    if check is not None or recorder is None:
        return check
    if recorder.holds(held):
        try:
            with state.store_turn():
                recorder.flush_for_a_request()
        except StoreError:
            pass  # no turn at the store: the check stays where it is, and the answer says so
        check = look()
        if check is None and recorder.holds(held):
            raise CheckNotWritten("the check is not written yet: the store is not taking the check log")
    if check is None:
        check = look()  # written between the first look and the look in the queue
    if check is not None:
        return check
    # This worker's writer failing, or another's of this server (its readiness file says so: the
    # check may be in that worker's queue). Polling for it then only holds the thread.
    failing = recorder.store_unreachable
    if not failing and (wait > 0 or outage_is_retryable):  # a report by comment needs neither
        failing = bool(readiness.others_check_log_failing())
    deadline = time.monotonic() + (0.0 if failing else wait)
    while check is None and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        check = look()
    if check is None and outage_is_retryable and (failing or recorder.store_unreachable):
        raise CheckNotWritten("no such check in the store while the check log cannot be written")
    return check


#: The fields that tell one comment from another (its author and e-mail, in the comment hash, and
#: its page, for the sender history, store.sender_history; its posting time, for linking a report
#: by fields, check_by_comment): a report naming its check keeps the check's.
IDENTITY_FIELDS = frozenset({"comment_author", "comment_author_email", "permalink", "comment_date_gmt"})


def reported_comment(sent: Comment, check: Optional[CheckRecord]) -> Comment:
    """What a report is about: the comment sent, or, when it names a check (an Akismet ``guid``, a
    JSON ``check_id``, or the check found for its text), that check's stored comment with the
    fields the report did send (its text, ``user_ip``, ``blog``...) over it.

    A report that sends some fields only is still about the whole comment: a submit-ham giving
    its guid, text and IP but no e-mail had been stored without the e-mail, so the sender's
    history counted the older spam label as the comment's latest on that e-mail (a probe). What
    tells one comment from another (:data:`IDENTITY_FIELDS`) stays the check's, empty or not: a
    report giving the permalink in another form, the author with another spacing or the e-mail in
    other capitals had made the comment another one for the sender history (probes).
    """
    if check is None:
        return sent
    stored = check.comment
    given = {name: getattr(sent, name) for name in TEXT_FIELDS
             if getattr(sent, name) and name not in IDENTITY_FIELDS}
    # The report's own extra fields (its guid, a reporter's note) over the check's, not instead
    # of them: a submit by guid kept only {"guid": ...} of the check's server variables.
    return replace(stored, **given, extra={**stored.extra, **sent.extra},
                   comment_context=sent.comment_context or stored.comment_context)


def add_feedback(state: ServiceState, *, label: str, comment: Comment, source: str, reporter: str,
                 check: Optional[CheckRecord], key: Optional[KeyInfo]) -> int:
    """Store one label (test feedback stays test feedback) and count it; return the feedback id.

    Raises :class:`store.StoreError` when the store fails; callers answer that.
    """
    assert state.store is not None
    recorder = state.recorder
    feedback_id = record_label(
        state.store, state.settings, label=label, comment=comment, source=source, reporter=reporter,
        check=check, key=key, forwarder=state.upstream.forwarder if state.upstream is not None else None,
        count_usage=recorder.count_usage if recorder is not None else None, store_turn=state.store_turn)
    count_feedback(label, source)
    return feedback_id


def record_label(store: Store, settings: Settings, *, label: str, comment: Comment, source: str, reporter: str,
                 check: Optional[CheckRecord], key: Optional[KeyInfo], forwarder: Any,
                 count_usage: Optional[Callable[..., None]],
                 store_turn: Callable[[], ContextManager[Any]] = nullcontext) -> int:
    """What every moderator label goes through, in the service and from ``commentguard feedback add``:
    stored (test feedback stays test feedback), queued for the upstream by ``forwarder`` when
    forwarding is on, and, when it corrects the check's answer, counted as ``missed_spam`` /
    ``false_positives`` through ``count_usage(key_id, blog=..., **increments)``. Returns the feedback id.

    Raises :class:`store.StoreError` when the store fails; callers answer that.
    """
    record = FeedbackRecord(
        label=label,
        comment=comment,
        source=source,
        # Capped by the store once its addresses are hidden (cut first, an e-mail cut in half
        # would be no e-mail any more, and stored in clear); this bound only keeps it small.
        reporter=reporter.strip()[:MAX_REPORTER * 8],
        check_id=check.id if check is not None else None,
        # One comment, however the report gave it: the check's, as the check log hashed it.
        comment_hash=check.comment_hash if check is not None else "",
        site_id=key.site_id if key is not None else (check.site_id if check is not None else None),
        key_id=key.id if key is not None else None,
        # A report on a test check is a test too: is_test calls must never be learned from; and so is
        # one on an Akismet test value (a client trying its spam path: a probe's two such reports
        # made the owner's own address and IP a reported sender).
        is_test=comment.is_test_call or bool(check is not None and check.is_test) or _on_test_value(comment, source, check),
    )
    # A turn at the store (service.store_turns): during an outage a write waits up to 10 s, and
    # requests waiting so must leave threads for checks.
    with store_turn():
        # Counted once per check and label: a moderator's repeated clicks (spam, not spam, spam
        # again) multiplied a site's missed spam.
        feedback_id, repeated = store.add_feedback_noting_repeats(record)
    if forwarder is not None:
        forward_report(forwarder, label, comment, feedback_id=feedback_id,
                       blog=key.site_url if key is not None else comment.blog,
                       upstream_json=check.upstream if check is not None else None)
    if (count_usage is not None and key is not None and not record.is_test and not repeated
            and corrects(label, check, settings.unsure_is_spam, site_log_only(settings, key))):
        # On the site of the check it corrects when the report names none (a JSON report by
        # comment): counted on the key's own site, the per-site rows disagreed with each other.
        blog = comment.blog or (check.comment.blog if check is not None else "")
        count_usage(key.id, blog=blog, **{"missed_spam" if label == "spam" else "false_positives": 1})
    return feedback_id


def _on_test_value(comment: Comment, source: str, check: Optional[CheckRecord]) -> bool:
    """Whether a report is about an Akismet test value (``comment_author`` ``akismet-guaranteed-spam``...):
    the comment carries one, or its check was decided by one, on the Akismet surface (the JSON API
    has no test values)."""
    if check is not None:
        if check.surface != "akismet":
            return False
        if TEST_SPAM_REASON in check.reasons:
            return True  # (the stored e-mail is a pseudonym: the reason says it was the test address)
    elif source != "akismet":
        return False
    return matching_rule(comment) == TEST_SPAM_REASON


def corrects(label: str, check: Optional[CheckRecord], unsure_is_spam: bool, log_only: bool = False) -> bool:
    """Whether a report is a correction (counted as ``missed_spam`` / ``false_positives``).

    A report on a check we answered the same way confirms it: counted as neither (a site's
    usage showed mistakes where the filter had made none). "The same way" is as the check was
    counted: on the Akismet surface ``unsure`` is answered (and counted) as the setting says, on
    the JSON API it is counted as ham, not flagged (a ham report on a JSON ``unsure`` was a false
    positive of a check the same figures called ham). Without a check to compare with, a report
    is a correction, as Akismet counts its submits. In log-only mode every check was answered
    ham (and counted so), so a spam report is a missed spam whatever the recorded verdict.
    """
    if check is None:
        return True
    flagged = not log_only and is_flagged(check.tier, unsure_is_spam and check.surface == "akismet")
    return flagged != (label == "spam")


__all__ = ["CHECK_ID", "MAX_REPORTER", "CheckNotWritten", "add_feedback", "corrects", "check_by_comment", "check_by_id",
           "record_label", "reported_comment"]
