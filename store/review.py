"""Reviewing the check log: the checks a site's verdicts came from, and counts of them.

``commentguard checks list`` and ``checks summary`` read through here. A check's moderator
label is the latest feedback row naming it by ``check_id`` (a report by check id, or one by
comment that the service linked to the latest check of that comment on the reporting site):
that is the moderator's answer to that verdict. Labels are not matched by comment hash, which
would lend one site's label to every other check of the same text, on other sites and by
other models too. Test labels count only with test checks (``include_test``).

The summary is aggregated in SQL over the ``checks_by_created`` index (one GROUP BY whose
result has at most sites x models x 4 x 3 x 4 rows), so a log of millions of checks is never
loaded into Python.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Optional, Sequence

from model.verdict import TIERS, Thresholds
from store.base import StoreBase
from store.db import Tx
from store.errors import InvalidRecordError
from store.records import LABELS, as_utc

#: The most checks one listing returns.
MAX_LIST = 1000
#: ``site_id`` of checks made without a key, in the summary's SQL (site ids start at 1).
_NO_SITE = -1


@dataclass(frozen=True)
class ReviewedCheck:
    """One check as a reviewer sees it: its verdict, its comment as stored, and its label."""

    id: str
    created: datetime
    site_id: Optional[int]
    site_url: Optional[str]
    surface: str
    tier: str
    score: float
    model_version: str
    reasons: tuple[str, ...]
    is_test: bool
    author: str
    content: str
    label: Optional[str]


@dataclass
class Tally:
    """Counts of one site's checks by tier, and of its labelled checks by tier and label."""

    tiers: Counter[str] = field(default_factory=Counter)
    labelled: dict[str, Counter[str]] = field(default_factory=lambda: {t: Counter() for t in TIERS})

    @property
    def false_positives(self) -> int:
        """Flagged (spam or discard) and labelled ham."""
        return self.labelled["spam"]["ham"] + self.labelled["discard"]["ham"]

    @property
    def flagged_labelled(self) -> int:
        return sum(self.labelled["spam"].values()) + sum(self.labelled["discard"].values())

    @property
    def missed(self) -> int:
        """Published (ham) and labelled spam."""
        return self.labelled["ham"]["spam"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tiers": {t: self.tiers[t] for t in TIERS},
            "labelled": sum(sum(c.values()) for c in self.labelled.values()),
            "false_positives": self.false_positives,
            "flagged_labelled": self.flagged_labelled,
            "missed": self.missed,
            "ham_labelled": sum(self.labelled["ham"].values()),
            "held_by_label": {label: self.labelled["unsure"][label] for label in LABELS},
            "by_tier_and_label": {t: {label: self.labelled[t][label] for label in LABELS} for t in TIERS},
        }


@dataclass
class SiteSummary:
    """One site's checks in the window: as recorded, and re-tiered by the what-if thresholds."""

    site_id: Optional[int]
    checks: int = 0
    recorded: Tally = field(default_factory=Tally)
    what_if: Tally = field(default_factory=Tally)
    model_versions: Counter[str] = field(default_factory=Counter)


def _check_window(since: datetime, include_test: Any) -> None:
    if not isinstance(since, datetime):
        raise InvalidRecordError("since must be a datetime")
    if not isinstance(include_test, bool):
        raise InvalidRecordError("include_test must be true or false")


def _latest_labels(include_test: bool) -> tuple[str, list[Any]]:
    """SQL of each check's latest label (check_id, label), and its parameters."""
    where = "" if include_test else " AND is_test = ?"
    sql = f"""SELECT check_id, label FROM (
        SELECT check_id, label, ROW_NUMBER() OVER (PARTITION BY check_id ORDER BY created DESC, id DESC) AS recency
        FROM feedback WHERE check_id IS NOT NULL{where}) ranked WHERE recency = 1"""
    return sql, ([] if include_test else [False])


class ReviewMixin(StoreBase):
    """Listing and counting checks for an operator's review."""

    def review_checks(self, since: datetime, *, limit: int, site_id: Optional[int] = None,
                      tiers: Optional[Sequence[str]] = None, unlabelled: bool = False,
                      include_test: bool = False) -> list[ReviewedCheck]:
        """Checks created at ``since`` or later, newest first, at most ``limit`` (1 to :data:`MAX_LIST`).

        ``tiers`` keeps those recorded with one of them; ``unlabelled`` those no moderator labelled.
        """
        _check_window(since, include_test)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise InvalidRecordError(f"limit must be an integer from 1 to {MAX_LIST}, got {limit!r}")
        unknown = sorted(set(tiers or ()) - set(TIERS))
        if unknown:
            raise InvalidRecordError(f"unknown tiers {unknown}; known: {', '.join(TIERS)}")
        labels_sql, label_params = _latest_labels(include_test)
        where, params = ["c.created >= ?"], [as_utc(since)]
        if site_id is not None:
            where.append("c.site_id = ?")
            params.append(site_id)
        if tiers:
            where.append(f"c.tier IN ({', '.join('?' for _ in tiers)})")
            params.extend(tiers)
        if not include_test:
            where.append("c.is_test = ?")
            params.append(False)
        if unlabelled:
            where.append("l.label IS NULL")
        sql = f"""WITH l AS ({labels_sql})
            SELECT c.id, c.created, c.site_id, s.url AS site_url, c.surface, c.tier, c.score, c.model_version,
                   c.reasons, c.is_test, c.comment_author, c.comment_content, l.label
            FROM checks c LEFT JOIN sites s ON s.id = c.site_id LEFT JOIN l ON l.check_id = c.id
            WHERE {' AND '.join(where)} ORDER BY c.created DESC, c.id DESC LIMIT ?"""
        rows = self._db.read(lambda tx: tx.fetchall(sql, [*label_params, *params, limit]))
        return [ReviewedCheck(
            id=r["id"], created=as_utc(r["created"]), site_id=r["site_id"], site_url=r["site_url"],
            surface=r["surface"], tier=r["tier"], score=float(r["score"]), model_version=r["model_version"],
            reasons=tuple(json.loads(r["reasons"])), is_test=bool(r["is_test"]), author=r["comment_author"],
            content=r["comment_content"], label=r["label"]) for r in rows]

    def summarise_checks(self, since: datetime, *, what_if: Optional[Mapping[Optional[int], Thresholds]],
                         site_id: Optional[int] = None, include_test: bool = False,
                         decided_by: Sequence[str] = ()) -> dict[Optional[int], SiteSummary]:
        """Per site id (``None``: checks made without a key), the counts of checks created at
        ``since`` or later.

        ``what_if`` maps site ids to the thresholds to re-tier their stored scores with; its
        ``None`` entry serves checks without a key and sites it does not name. Without it (or
        without a ``None`` entry when it is needed) the what-if tallies stay empty.
        ``decided_by``: the beginnings of reasons that say something other than the score decided
        the tier (the fixed rules'); a check holding one keeps its recorded tier in the what-if.
        """
        _check_window(since, include_test)
        labels_sql, label_params = _latest_labels(include_test)
        fallback = (what_if or {}).get(None)
        listed = [(sid, t) for sid, t in (what_if or {}).items() if sid is not None]
        for _, t in [*listed, *([(None, fallback)] if fallback is not None else [])]:
            if not isinstance(t, Thresholds) or not all(math.isfinite(v) for v in t.to_dict().values()):
                raise InvalidRecordError("what_if takes Thresholds")
        # The thresholds travel as a small table of parameters joined by site; a site missing from
        # it takes the fallback's (NULL when there is none, and then so is the what-if tier).
        th_rows = [(sid, t.unsure, t.spam, t.discard) for sid, t in listed] or [(0, None, None, None)]
        fb = (fallback.unsure, fallback.spam, fallback.discard) if fallback is not None else (None, None, None)
        site_key = f"COALESCE(c.site_id, {_NO_SITE})"
        # PostgreSQL must be told the types of parameters that stand alone (in VALUES, COALESCE).
        pg = self.backend == "postgresql"
        cast = "CAST(? AS DOUBLE PRECISION)" if pg else "?"
        th_row = f"(CAST(? AS BIGINT), {cast}, {cast}, {cast})" if pg else "(?, ?, ?, ?)"
        th_sql = ", ".join(th_row for _ in th_rows)
        # A stored reason is a JSON string: one of these starts with a quote and the text.
        decided = [f'%"{_like_escaped(text)}%' for text in decided_by]
        kept = "".join("\n            WHEN c.reasons LIKE ? ESCAPE '!' THEN c.tier" for _ in decided)
        what_if_tier = f"""CASE
            WHEN COALESCE(th.u, {cast}) IS NULL THEN NULL{kept}
            WHEN c.score >= COALESCE(th.d, {cast}) THEN 'discard'
            WHEN c.score >= COALESCE(th.s, {cast}) THEN 'spam'
            WHEN c.score >= COALESCE(th.u, {cast}) THEN 'unsure' ELSE 'ham' END"""
        where, params = ["c.created >= ?"], [as_utc(since)]
        if site_id is not None:
            where.append("c.site_id = ?")
            params.append(site_id)
        if not include_test:
            where.append("c.is_test = ?")
            params.append(False)
        # Two queries in one read: every check in the window, then only the labelled ones, from the
        # labels' side (few). Joining the labels to every check cost 1.7 s of 5.8 s on 1,000,000.
        th_cte = f"WITH th (site_key, u, s, d) AS (VALUES {th_sql})"
        th_params = [v for row in th_rows for v in row]
        case_params = [fb[0], *decided, fb[2], fb[1], fb[0]]
        checks_sql = f"""{th_cte}
            SELECT site_key, model_version, tier, what_if, COUNT(*) AS n FROM (
                SELECT {site_key} AS site_key, c.model_version, c.tier, {what_if_tier} AS what_if
                FROM checks c LEFT JOIN th ON th.site_key = {site_key}
                WHERE {' AND '.join(where)}) tiered
            GROUP BY site_key, model_version, tier, what_if"""
        labelled_sql = f"""{th_cte}, l AS ({labels_sql})
            SELECT site_key, tier, label, what_if, COUNT(*) AS n FROM (
                SELECT {site_key} AS site_key, c.tier, l.label, {what_if_tier} AS what_if
                FROM l JOIN checks c ON c.id = l.check_id LEFT JOIN th ON th.site_key = {site_key}
                WHERE {' AND '.join(where)}) tiered
            GROUP BY site_key, tier, label, what_if"""

        def work(tx: Tx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            return (tx.fetchall(checks_sql, [*th_params, *case_params, *params]),
                    tx.fetchall(labelled_sql, [*th_params, *label_params, *case_params, *params]))

        checks, labelled = self._db.read(work)
        summaries: dict[Optional[int], SiteSummary] = {}

        def site(row: dict[str, Any]) -> SiteSummary:
            sid = None if row["site_key"] == _NO_SITE else int(row["site_key"])
            return summaries.setdefault(sid, SiteSummary(sid))

        for r in checks:
            summary, n = site(r), int(r["n"])
            summary.checks += n
            summary.model_versions[r["model_version"]] += n
            summary.recorded.tiers[r["tier"]] += n
            if r["what_if"] is not None:
                summary.what_if.tiers[r["what_if"]] += n
        for r in labelled:
            summary, n = site(r), int(r["n"])
            summary.recorded.labelled[r["tier"]][r["label"]] += n
            if r["what_if"] is not None:
                summary.what_if.labelled[r["what_if"]][r["label"]] += n
        return dict(sorted(summaries.items(), key=lambda item: (item[0] is None, item[0] or 0)))


def _like_escaped(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern whose escape character is ``!``."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


__all__ = ["MAX_LIST", "ReviewMixin", "ReviewedCheck", "SiteSummary", "Tally"]
