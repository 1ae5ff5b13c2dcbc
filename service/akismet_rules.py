"""The fixed rules of the Akismet protocol, applied on top of the model's verdict on both
surfaces (the JSON API takes the same fields, and one comment gets one verdict either way),
but for the test values, which the JSON API leaves out (it has ``is_test``).

* Test values: ``comment_author`` ``akismet-guaranteed-spam`` (older clients:
  ``viagra-test-123``) or ``comment_author_email``
  ``akismet-guaranteed-spam@example.com`` always give spam;
  ``user_role=administrator`` always gives ham. The spam test values win over
  the administrator rule: they exist only to test the spam path.
* A filled-in honeypot (the field named by ``honeypot_field_name``) makes the
  comment spam: a human never sees that field.

A rule replaces the tier and moves the score to match (1.0 / 0.0 for test
values; at least the spam threshold for the honeypot), and puts its reason
first. Rule reasons carry weight 0: they override the model rather than add
to its log-odds. The model's reasons that pointed the other way go (an
administrator's comment answered ham showed "word 'casino'" as a reason).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from model.comment import Comment
from model.verdict import DISCARD, HAM, SPAM, UNSURE, Reason, Thresholds, Verdict

GUARANTEED_SPAM_AUTHORS = frozenset({"akismet-guaranteed-spam", "viagra-test-123"})
GUARANTEED_SPAM_EMAIL = "akismet-guaranteed-spam@example.com"
ADMINISTRATOR = "administrator"
TEST_SPAM_REASON = "an Akismet test value asks for a spam answer"
ADMINISTRATOR_REASON = "the comment was written by a site administrator"
HONEYPOT_REASON = "a hidden honeypot field was filled in"


def apply_rules(comment: Comment, verdict: Verdict, thresholds: Thresholds, *, test_values: bool = True) -> Verdict:
    """The verdict after the fixed rules (unchanged when none applies).

    ``test_values=False`` leaves out the test values: they are the Akismet protocol's way to
    test a client's spam path; the JSON API has ``is_test`` for tests, and a JSON client's
    comment by an author who happens to be called so is checked like any other.
    """
    rule = matching_rule(comment, test_values=test_values)
    if rule is None:
        return verdict
    if rule == TEST_SPAM_REASON:
        return _override(verdict, SPAM, 1.0, rule)
    if rule == ADMINISTRATOR_REASON:
        return _override(verdict, HAM, 0.0, rule)
    tier = DISCARD if verdict.tier == DISCARD else SPAM
    return _override(verdict, tier, max(verdict.score, thresholds.spam), rule)


def matching_rule(comment: Comment, *, test_values: bool = True) -> Optional[str]:
    """The reason of the rule that decides this comment, or ``None`` to let the model decide."""
    author = comment.comment_author.strip().lower()
    email = comment.comment_author_email.strip().lower()
    if test_values and (author in GUARANTEED_SPAM_AUTHORS or email == GUARANTEED_SPAM_EMAIL):
        return TEST_SPAM_REASON
    roles = {r.strip().lower() for r in comment.user_role.split(",")}
    if ADMINISTRATOR in roles:
        return ADMINISTRATOR_REASON
    if comment.honeypot_value.strip():
        return HONEYPOT_REASON
    return None


def is_flagged(tier: str, unsure_is_spam: bool) -> bool:
    """Whether a tier is answered ``true`` on the Akismet surface (before log-only mode)."""
    return tier in (SPAM, DISCARD) or (tier == UNSURE and unsure_is_spam)


def _override(verdict: Verdict, tier: str, score: float, reason: str) -> Verdict:
    toward_spam = tier != HAM
    reasons = (Reason(reason, 0.0),) + tuple(
        r for r in verdict.reasons if r.text != reason and (r.weight > 0) == toward_spam and r.weight != 0)
    return replace(verdict, tier=tier, score=float(score), reasons=reasons)


__all__ = ["ADMINISTRATOR_REASON", "GUARANTEED_SPAM_AUTHORS", "GUARANTEED_SPAM_EMAIL", "HONEYPOT_REASON",
           "TEST_SPAM_REASON", "apply_rules", "is_flagged", "matching_rule"]
