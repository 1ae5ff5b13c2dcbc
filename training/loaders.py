"""Loading labelled training data from files: the loaders' public entry points.

Owns turning one or more input files (generic CSV/JSONL, YouTube Spam
Collection, SMS Spam Collection, WordPress WXR export, WordPress spam CSV) into
one deduplicated list of :class:`LabeledComment`, with every malformed row
reported as a :class:`RowProblem` and a provenance entry per file (format,
SHA-256, row counts) for the model artifact's metadata.

Exact duplicates are removed here, before anything can split the data, because
both public corpora are full of repeated spam templates that would otherwise
land on both sides of a train/test split. The per-format parsing lives in
:mod:`training.formats`; :func:`iter_file` streams one file for callers that
must not hold it in memory.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from training.formats import READERS, detect_format
from training.formats.textio import head_text
from training.records import (
    DataFormatError,
    LabeledComment,
    Row,
    RowProblem,
    SkippedRow,
    dedup_key,
    parse_label,
)

__all__ = [
    "DataFormatError",
    "FORMATS",
    "LabeledComment",
    "LoadedData",
    "RowProblem",
    "SkippedRow",
    "dedup_key",
    "detect_format",
    "iter_file",
    "load_file",
    "load_files",
    "parse_label",
]

#: The format names ``fmt`` accepts.
FORMATS: tuple[str, ...] = tuple(READERS)
#: How many problems a strict-mode error lists before "and N more".
_STRICT_LISTED = 20

PathLike = str | os.PathLike[str]


@dataclass
class LoadedData:
    """The examples loaded from one or more files, the rows that were not usable, and provenance.

    Each ``sources`` entry has: path, format, sha256 (of the file bytes), rows_read,
    rows_kept, duplicates_removed, rows_skipped (left out on purpose, e.g. pending
    WordPress comments) and rows_invalid (reported in ``problems``); rows_read is
    the sum of the other four.
    """

    records: list[LabeledComment] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)


def iter_file(path: PathLike, fmt: str | None = None) -> Iterator[tuple[int, Row]]:
    """Stream one file as ``(line, LabeledComment | RowProblem | SkippedRow)``, in file order.

    No deduplication happens here. The format is detected from the content when
    ``fmt`` is None. Raises :class:`DataFormatError` at once for an unknown format
    or a file that is not UTF-8, and while iterating for a bad header or broken XML.
    """
    file = Path(path)
    name = fmt if fmt is not None else detect_format(file)
    reader = READERS.get(name)
    if reader is None:
        raise DataFormatError(f"{file}: unknown format {name!r}; expected one of {', '.join(READERS)}")
    if name != "wordpress":
        head_text(file)  # an XML file declares its own encoding; every other format must be UTF-8
    return reader(file)


def load_file(path: PathLike, fmt: str | None = None, *, strict: bool = False) -> LoadedData:
    """Load one file; see :func:`load_files`."""
    return load_files([path], fmt, strict=strict)


def load_files(paths: Iterable[PathLike], fmt: str | None = None, *, strict: bool = False,
               formats: Sequence[str | None] | None = None) -> LoadedData:
    """Load several files into one deduplicated data set (the first occurrence of a text wins).

    ``fmt`` applies to every file; None detects each file's format; ``formats`` gives one
    per path instead. A later duplicate whose label differs from the first is reported as
    a problem. With ``strict``, any problem raises :class:`DataFormatError` listing the first 20.
    """
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError("load_files takes a list of paths; use load_file for one path")
    paths = list(paths)
    if formats is not None and len(formats) != len(paths):
        raise ValueError(f"{len(formats)} formats for {len(paths)} paths")
    data = LoadedData()
    seen = _FirstSeen()
    for path, name in zip(paths, formats if formats is not None else [fmt] * len(paths)):
        _load_into(data, seen, Path(path), name)
    if strict and data.problems:
        raise _strict_error(data.problems)
    return data


class _FirstSeen:
    """The first label and place of each duplicate key, across all files of one load."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[int, str, int]] = {}

    def earlier(self, example: LabeledComment) -> tuple[int, str, int] | None:
        """The (label, source, line) of an earlier equal text, or None (and remember this one)."""
        key = dedup_key(example.comment.comment_content)
        first = self._first.get(key)
        if first is None:
            self._first[key] = (example.label, example.source, example.line)
        return first


def _load_into(data: LoadedData, seen: _FirstSeen, path: Path, fmt: str | None) -> None:
    name = fmt if fmt is not None else detect_format(path)
    counts = dict.fromkeys(
        ("rows_read", "rows_kept", "duplicates_removed", "rows_skipped", "rows_invalid"), 0
    )
    for _, row in iter_file(path, name):
        counts["rows_read"] += 1
        if isinstance(row, SkippedRow):
            counts["rows_skipped"] += 1
        elif isinstance(row, RowProblem):
            counts["rows_invalid"] += 1
            data.problems.append(row)
        elif (first := seen.earlier(row)) is None:
            counts["rows_kept"] += 1
            data.records.append(row)
        else:
            counts["duplicates_removed"] += 1
            if first[0] != row.label:
                data.problems.append(_conflict(row, first))
    data.sources.append({"path": str(path), "format": name, "sha256": _sha256(path), **counts})


def _conflict(row: LabeledComment, first: tuple[int, str, int]) -> RowProblem:
    label, source, line = first
    names = {1: "spam", 0: "ham"}
    return RowProblem(
        row.source, row.line,
        f"duplicate of {source}:{line} with a conflicting label: {names[row.label]} here, "
        f"{names[label]} there (the first is kept)",
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _strict_error(problems: list[RowProblem], total: int | None = None) -> DataFormatError:
    """The error of a strict load: the first problems listed, and how many there were in all
    (``total``, when ``problems`` holds only the first of them)."""
    total = len(problems) if total is None else total
    listed = "\n".join(f"  {problem}" for problem in problems[:_STRICT_LISTED])
    more = total - _STRICT_LISTED
    tail = f"\n  ... and {more} more" if more > 0 else ""
    message = f"{total} problem(s) in the training data (strict mode):\n{listed}{tail}"
    return DataFormatError(message, problems)
