"""The records the training-data loaders produce, and their one error class.

A loader turns each row of an input file into exactly one of three things: a
:class:`LabeledComment` (a usable example), a :class:`RowProblem` (a malformed row,
reported with its file and line so that nothing is dropped silently) or a
:class:`SkippedRow` (a row the format says to leave out on purpose, such as a
pending WordPress comment). This module also owns the duplicate key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from model.comment import Comment

SPAM: int = 1
HAM: int = 0

#: Invisible characters that make two visibly identical texts differ: the BOM
#: (YouTube appends one to most comments), zero-width spaces, joiners and the word joiner.
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u180e"))


class DataFormatError(ValueError):
    """Raised when a training file cannot be read as any supported format.

    That is: the format cannot be detected or is unknown, the header lacks a
    required column, the file is not UTF-8 or not well-formed XML, or, in strict
    mode, when any row had a problem (``problems`` then lists them).
    """

    def __init__(self, message: str, problems: "list[RowProblem] | None" = None) -> None:
        super().__init__(message)
        self.problems: list[RowProblem] = list(problems or [])


@dataclass(frozen=True)
class LabeledComment:
    """One training example: a comment and its label, with where it came from."""

    comment: Comment
    label: int  # 1 spam, 0 ham
    source: str  # file path
    line: int  # 1-based line where the row starts (record number for XML)


@dataclass
class RowProblem:
    """A row that was not used, and why; shown as ``path:line: message``."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass(frozen=True)
class SkippedRow:
    """A well-formed row the format says to leave out (e.g. a pending WordPress comment)."""

    source: str
    line: int
    reason: str


#: What a format reader yields for each row.
Row = Union[LabeledComment, RowProblem, SkippedRow]


def dedup_key(text: str) -> str:
    """The key under which two comment texts count as exact duplicates.

    Deliberately small (invisible characters, surrounding whitespace, case): the
    model's full normalisation may change, and the loaders' row counts must not.
    """
    return text.translate(_INVISIBLE).strip().lower()


def parse_label(value: object) -> int | None:
    """``spam``/``1`` → 1 and ``ham``/``0`` → 0 (any case, spaces ignored); else None."""
    if isinstance(value, bool):
        return None  # true/false does not say which class it means
    if isinstance(value, int):
        return value if value in (SPAM, HAM) else None
    if isinstance(value, str):
        return {"spam": SPAM, "1": SPAM, "ham": HAM, "0": HAM}.get(value.strip().lower())
    return None
