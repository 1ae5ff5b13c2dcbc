"""The records the store reads and writes, and their validation.

Records are frozen dataclasses holding the project's :class:`model.comment.Comment`;
the column layout of a stored comment is frozen here (``COMMENT_COLUMNS``) and in
the migrations, never derived from the live ``Comment`` class, because a schema
must not change when the code does (a new ``Comment`` field needs a migration).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from model.comment import Comment
from model.verdict import TIERS, Verdict
from store.errors import InvalidRecordError
from store.ids import time_ordered_id

#: The text columns a stored comment occupies in ``checks`` and ``feedback``.
#: ``Comment.is_test`` is not among them: both tables carry a boolean ``is_test`` flag.
COMMENT_COLUMNS: tuple[str, ...] = (
    "blog",
    "user_ip",
    "user_agent",
    "referrer",
    "permalink",
    "comment_type",
    "comment_author",
    "comment_author_email",
    "comment_author_url",
    "comment_content",
    "comment_date_gmt",
    "comment_post_modified_gmt",
    "comment_parent",
    "blog_lang",
    "blog_charset",
    "user_role",
    "recheck_reason",
    "honeypot_field_name",
    "callback",
)

SURFACES: tuple[str, ...] = ("json", "akismet")
LABELS: tuple[str, ...] = ("spam", "ham")
#: The most characters of a report's ``reporter`` that are stored (after its addresses are hidden).
MAX_REPORTER = 200
#: Usage counters per key and month, as the Akismet ``/1.2/key-sites`` endpoint names them.
USAGE_COUNTERS: tuple[str, ...] = ("api_calls", "spam", "ham", "missed_spam", "false_positives")

_MONTH_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")  # not \d: it takes any script's digits
_CHECK_ID_RE = re.compile(r"[0-9a-f]{32}")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | str) -> datetime:
    """A stored or given time as an aware UTC datetime (naive times are taken as UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def current_month(now: Optional[datetime] = None) -> str:
    """The UTC month ``YYYY-MM`` that usage is counted under."""
    return as_utc(now or utcnow()).strftime("%Y-%m")


def check_month(month: str) -> str:
    """Return ``month`` if it is shaped ``YYYY-MM``, else raise :class:`InvalidRecordError`."""
    if not isinstance(month, str) or not _MONTH_RE.fullmatch(month):
        raise InvalidRecordError(f"month must look like YYYY-MM, got {month!r}")
    return month


def new_check_id() -> str:
    """A fresh check id: a uuid7 as 32 lowercase hex characters (:func:`store.ids.time_ordered_id`).

    Time-ordered, so the check log's primary key index grows at its end.
    """
    return time_ordered_id()


#: The verdict modes a site may be set to (``None``: the global ``COMMENTGUARD_MODE``).
SITE_MODES: tuple[str, ...] = ("enforce", "log_only")


@dataclass(frozen=True)
class SiteSettings:
    """A site's own verdict settings; each ``None`` means "use the global setting".

    Small, frozen and hashable: it rides in every :class:`KeyInfo` (and so in the service's
    key cache), and the service memoises what it resolves to by it.
    """

    mode: Optional[str] = None
    threshold_unsure: Optional[float] = None
    threshold_spam: Optional[float] = None
    threshold_discard: Optional[float] = None

    @property
    def is_default(self) -> bool:
        """True when every setting is the global one (the service's fast path)."""
        return self.mode is None and not self.has_thresholds

    @property
    def has_thresholds(self) -> bool:
        # No dict: is_default asks on every check.
        return not (self.threshold_unsure is None and self.threshold_spam is None and self.threshold_discard is None)

    def thresholds(self) -> dict[str, Optional[float]]:
        """The threshold overrides by tier name (``unsure``, ``spam``, ``discard``)."""
        return {"unsure": self.threshold_unsure, "spam": self.threshold_spam, "discard": self.threshold_discard}

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "threshold_unsure": self.threshold_unsure,
                "threshold_spam": self.threshold_spam, "threshold_discard": self.threshold_discard}


#: A site with no settings of its own, shared (KeyInfo's default).
DEFAULT_SITE_SETTINGS = SiteSettings()


@dataclass(frozen=True)
class SiteInfo:
    """A site (a blog's front page URL) that API keys belong to, with its own verdict settings."""

    id: int
    url: str
    created: datetime
    settings: SiteSettings = DEFAULT_SITE_SETTINGS


@dataclass(frozen=True)
class KeyInfo:
    """What the store knows about an API key; never the key itself.

    ``hint`` is the key's last two characters, enough for an operator to tell keys
    apart in a listing without weakening them.
    """

    id: int
    site_id: int
    site_url: str
    label: str
    created: datetime
    revoked_at: Optional[datetime] = None
    hint: str = ""
    #: The key's site's verdict settings, read with the key: a check needs no other query.
    site_settings: SiteSettings = DEFAULT_SITE_SETTINGS

    @property
    def revoked(self) -> bool:
        """True once the key has been revoked; a revoked key never authenticates."""
        return self.revoked_at is not None


@dataclass(frozen=True)
class CheckRecord:
    """One scored comment, as logged by the service.

    ``comment_hash`` may be left empty: the store fills it in on insert (see
    :meth:`store.Store.comment_hash`), so a later submit of the same comment finds it.
    """

    id: str
    created: datetime
    surface: str
    tier: str
    score: float
    comment: Comment
    model_version: str = ""
    reasons: Sequence[str] = ()
    site_id: Optional[int] = None
    key_id: Optional[int] = None
    is_test: bool = False
    upstream: Optional[Mapping[str, Any]] = None
    comment_hash: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _CHECK_ID_RE.fullmatch(self.id):
            raise InvalidRecordError(f"check id must be 32 lowercase hex characters, got {self.id!r}")
        if self.surface not in SURFACES:
            raise InvalidRecordError(f"surface must be one of {SURFACES}, got {self.surface!r}")
        if self.tier not in TIERS:
            raise InvalidRecordError(f"tier must be one of {TIERS}, got {self.tier!r}")
        if not 0.0 <= float(self.score) <= 1.0:
            raise InvalidRecordError(f"score must be in [0, 1], got {self.score!r}")
        if not all(isinstance(r, str) for r in self.reasons):
            raise InvalidRecordError("reasons must be strings")

    @classmethod
    def from_verdict(
        cls,
        comment: Comment,
        verdict: Verdict,
        *,
        surface: str,
        site_id: Optional[int] = None,
        key_id: Optional[int] = None,
        upstream: Optional[Mapping[str, Any]] = None,
        is_test: Optional[bool] = None,
        created: Optional[datetime] = None,
        check_id: Optional[str] = None,
    ) -> "CheckRecord":
        """A record for a fresh verdict (new id, now, reasons as text; ``is_test`` from the comment)."""
        return cls(
            id=check_id or new_check_id(),
            created=as_utc(created or utcnow()),
            surface=surface,
            tier=verdict.tier,
            score=float(verdict.score),
            comment=comment,
            model_version=verdict.model_version,
            reasons=tuple(r.text for r in verdict.reasons),
            site_id=site_id,
            key_id=key_id,
            is_test=comment.is_test_call if is_test is None else is_test,
            upstream=upstream,
        )


@dataclass(frozen=True)
class FeedbackRecord:
    """A moderator's label for one comment, with its own copy of the comment.

    ``id`` and ``comment_hash`` are filled in by the store; ``check_id`` links the
    check it corrects, when known, and stays set after that check is purged.
    """

    label: str
    comment: Comment
    source: str = ""
    reporter: str = ""
    check_id: Optional[str] = None
    site_id: Optional[int] = None
    key_id: Optional[int] = None
    is_test: bool = False
    created: datetime = field(default_factory=utcnow)
    id: Optional[int] = None
    comment_hash: str = ""

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise InvalidRecordError(f"label must be 'spam' or 'ham', got {self.label!r}")


#: JSON text as stored (non-ASCII kept as is). Built once: ``json.dumps`` with options builds
#: a new encoder per call, which cost as much as the encoding on the check log's hot path.
to_json = json.JSONEncoder(ensure_ascii=False).encode
_to_json_sorted = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def comment_to_row(comment: Comment) -> dict[str, Any]:
    """The column values of a stored comment (context and extra as JSON text)."""
    row: dict[str, Any] = {name: getattr(comment, name) for name in COMMENT_COLUMNS}
    row["comment_context"] = to_json(list(comment.comment_context)) if comment.comment_context else "[]"
    row["extra"] = _to_json_sorted(dict(comment.extra)) if comment.extra else "{}"
    return row


def comment_from_row(row: Mapping[str, Any], *, is_test: bool) -> Comment:
    """Rebuild a :class:`Comment` from its stored columns."""
    values = {name: row[name] or "" for name in COMMENT_COLUMNS}
    return Comment(
        **values,
        is_test="1" if is_test else "",
        comment_context=tuple(json.loads(row["comment_context"] or "[]")),
        extra=json.loads(row["extra"] or "{}"),
    )
