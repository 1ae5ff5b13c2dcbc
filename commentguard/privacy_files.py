"""The files outside the store that may hold a commenter's data: retrain reports and the check log's spool.

``commentguard privacy`` lists them; it edits neither. A retrain's ``report.html`` (under the
models directory, owner-only) quotes moderator-labelled comments the current model got wrong,
HTML-escaped, with their author's name: the operator deletes or regenerates it (model artifacts
are never edited here). Spool files (``<data_dir>/spool/``) hold checks a stopping worker could
not write to the store, minimised as the store keeps them; the next worker to start writes them
to the store and deletes the file, so they are counted here and erased by running ``forget``
again after that start (a running worker may claim a file at any moment: editing it here could
race with that).
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from model.comment import Comment
from service.spool import SPOOL_DIR_NAME
from store.subjects import FoundRow, Matcher

REPORT_NAME = "report.html"
#: The most of a comment's text a report quotes (training.report quotes comment_content[:600]).
REPORT_QUOTE_CHARS = 600


@dataclass(frozen=True)
class SpoolMatches:
    """Spooled checks of the person's: lines matching, files holding them, and files that could not be read."""

    lines: int
    files: int
    unreadable: int


def reports_quoting(models_dir: Path, rows: Iterable[FoundRow], matcher: Matcher) -> list[Path]:
    """The retrain reports under ``models_dir`` that quote one of ``rows``' comments, or the person's
    name as a comment's byline, or one of their addresses in clear."""
    if not models_dir.is_dir():
        return []
    # A quote is a whole table cell's text ("<td class='text'>QUOTE<br>…" or "…QUOTE</td>"): bounded
    # by tags, so a short comment ("hi") does not match every report that has the word.
    quotes = {html.escape(row.content[:REPORT_QUOTE_CHARS]) for row in rows if row.content.strip()}
    patterns = [re.compile(">" + re.escape(q) + "<") for q in quotes]
    patterns += [re.compile("— \\s*" + re.escape(html.escape(a)) + "\\s*<", re.IGNORECASE)
                 for a in matcher.subject.authors]
    found = []
    for path in sorted(models_dir.rglob(REPORT_NAME)):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            found.append(path)  # unreadable here: the operator looks at it
            continue
        if any(p.search(text) for p in patterns) or matcher.row_matches({"comment_content": html.unescape(text)}):
            found.append(path)
    return found


def spooled_matches(data_dir: Path, matcher: Matcher) -> SpoolMatches:
    """How many spooled checks (every spool file, claimed or not yet) are the person's."""
    directory = data_dir / SPOOL_DIR_NAME
    if not directory.is_dir():
        return SpoolMatches(0, 0, 0)
    lines = files = unreadable = 0
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        try:
            with path.open("rb") as handle:
                matched = sum(1 for raw in handle if _spooled_check_matches(raw, matcher))
        except OSError:
            unreadable += 1
            continue
        lines += matched
        files += 1 if matched else 0
    return SpoolMatches(lines, files, unreadable)


def _spooled_check_matches(raw: bytes, matcher: Matcher) -> bool:
    try:
        item = json.loads(raw.decode("utf-8"))
        comment = Comment.from_mapping(item["check"]["comment"])
    except (ValueError, KeyError, TypeError):
        return False  # a usage line (counts only), or a line cut short
    return bool(matcher.comment_matches(comment))


__all__ = ["REPORT_NAME", "SpoolMatches", "reports_quoting", "spooled_matches"]
