"""Readers for the line- and CSV-based formats: generic CSV/JSONL, YouTube, SMS, WordPress CSV.

Each reader is a generator of ``(line, row)`` pairs, where ``row`` is a
:class:`LabeledComment`, a :class:`RowProblem` or a :class:`SkippedRow`; it raises
:class:`DataFormatError` only for a problem with the whole file (a header that
lacks a required column). What each format may and may not carry into the
comment record is decided here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from model.comment import CONTENT_ALIASES, TEXT_FIELDS, Comment
from model.errors import CommentFieldError
from training.formats.textio import csv_records, head_text, numbered_lines
from training.records import DataFormatError, LabeledComment, Row, RowProblem, dedup_key, parse_label

Rows = Iterator[tuple[int, Row]]
CsvRow = dict[str, str]

#: Keys of a generic row that belong to the record whatever their value's type
#: (so a wrong type is reported rather than dropped).
_RECORD_KEYS = frozenset(TEXT_FIELDS) | frozenset(CONTENT_ALIASES) | {"comment_context"}
_GENERIC_KNOWN = _RECORD_KEYS | {"label", "extra"}


def make_example(fields: Mapping[str, Any], label: int, source: str, line: int) -> Row:
    """A labelled comment from record fields, or the problem that prevents one."""
    try:
        comment = Comment.from_mapping(fields)
    except CommentFieldError as exc:
        return RowProblem(source, line, exc.message)
    if not dedup_key(comment.comment_content):
        return RowProblem(source, line, "missing or empty comment text")
    return LabeledComment(comment, label, source, line)


def _label_problem(value: object, source: str, line: int) -> RowProblem:
    if value is None or value == "":
        return RowProblem(source, line, "missing label (expected spam/ham or 1/0)")
    return RowProblem(source, line, f"unknown label {value!r} (expected spam/ham or 1/0)")


def _csv_rows(
    path: Path,
    fmt: str,
    header_key: Callable[[str], str],
    required: set[str],
    any_of: frozenset[str] = frozenset(),
) -> Iterator[tuple[int, CsvRow | RowProblem]]:
    """The data rows of a CSV file as dicts keyed by ``header_key(column)``.

    The header must hold every ``required`` column and, if given, one of ``any_of``.
    """
    source = str(path)
    records = csv_records(path)
    head = next(records, None)
    if head is None or head.fields is None:
        raise DataFormatError(f"{source}: no readable CSV header; expected a '{fmt}' file")
    header = [header_key(name.strip()) for name in head.fields]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:  # a dict row would silently keep only the last of them
        raise DataFormatError(f"{source}:{head.first}: the header repeats {', '.join(repeated)}")
    missing = sorted(required - set(header))
    if any_of and not any_of & set(header):
        missing.append(" or ".join(sorted(any_of)))
    if missing:
        needs = ", ".join([*sorted(required), *([" or ".join(sorted(any_of))] if any_of else [])])
        raise DataFormatError(
            f"{source}:{head.first}: the header lacks {', '.join(missing)}; a '{fmt}' CSV needs "
            f"the columns {needs} (found {', '.join(header)})"
        )
    for rec in records:
        if rec.fields is None:
            yield rec.first, RowProblem(source, rec.first, rec.error or "unreadable record")
        elif len(rec.fields) != len(header):
            span = ""
            if rec.last > rec.first:
                span = f" (the record runs to line {rec.last}: an unbalanced quote?)"
            message = f"expected {len(header)} columns, found {len(rec.fields)}{span}"
            yield rec.first, RowProblem(source, rec.first, message)
        else:
            yield rec.first, dict(zip(header, rec.fields))


def _generic_example(data: Mapping[str, Any], source: str, line: int) -> Row:
    """A row of the generic format (CSV or JSON): the record's fields plus ``label``."""
    label = parse_label(data.get("label"))
    if label is None:
        return _label_problem(data.get("label"), source, line)
    if not any(key in data for key in CONTENT_ALIASES):
        return RowProblem(source, line, "missing comment text (comment_content or content)")
    # Unknown fields go to ``extra`` only as strings: a number or object there is
    # not something the record can carry faithfully.
    fields = {
        key: value
        for key, value in data.items()
        if key in _RECORD_KEYS
        or isinstance(value, str) and key != "label"
        or key == "extra" and isinstance(value, Mapping)
    }
    return make_example(fields, label, source, line)


def _generic_header_key(name: str) -> str:
    return name.lower() if name.lower() in _GENERIC_KNOWN else name


def _read_generic_csv(path: Path) -> Rows:
    source = str(path)
    for line, row in _csv_rows(path, "generic", _generic_header_key, {"label"}, frozenset(CONTENT_ALIASES)):
        if isinstance(row, RowProblem):
            yield line, row
        else:
            yield line, _generic_example(row, source, line)


def _read_generic_jsonl(path: Path) -> Rows:
    source = str(path)
    for line, text in numbered_lines(path):
        if text is None:
            yield line, RowProblem(source, line, "undecodable bytes (not UTF-8)")
            continue
        if not text.strip():
            continue  # blank lines separate nothing in JSON Lines; they are not rows
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line, RowProblem(source, line, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(data, dict):
            yield line, RowProblem(source, line, f"not a JSON object but a {type(data).__name__}")
            continue
        yield line, _generic_example(data, source, line)


def read_generic(path: Path) -> Rows:
    """The generic format: JSON Lines if the file starts with '{', else CSV with a header."""
    first = head_text(path).lstrip()[:1]
    if first == "[":
        raise DataFormatError(f"{path}: a JSON array; expected JSON Lines (one object per line) or CSV")
    return _read_generic_jsonl(path) if first == "{" else _read_generic_csv(path)


def _labelled_csv_rows(path: Path, fmt: str, text_column: str,
                       label_column: str) -> Iterator[tuple[int, Any, int]]:
    """A fixed-layout CSV's rows with their parsed label, as ``(line, row, label)``.

    Header names are compared in lower case. A malformed row or an unknown label
    comes back as ``(line, RowProblem, -1)`` for the caller to pass on.
    """
    source = str(path)
    for line, row in _csv_rows(path, fmt, str.lower, {text_column, label_column}):
        if isinstance(row, RowProblem):
            yield line, row, -1
            continue
        label = parse_label(row[label_column])
        if label is None:
            yield line, _label_problem(row[label_column], source, line), -1
            continue
        yield line, row, label


def read_youtube(path: Path) -> Rows:
    """The YouTube Spam Collection CSV (one video's file, or all joined with a VIDEO column)."""
    source = str(path)
    for line, row, label in _labelled_csv_rows(path, "youtube", "content", "class"):
        if isinstance(row, RowProblem):
            yield line, row
            continue
        # DATE and COMMENT_ID are never read: in this collection they reveal the class
        # (every Eminem spam row has an empty DATE). The trailing U+FEFF correlates with
        # the class too, so it goes as well.
        fields: dict[str, Any] = {
            "comment_content": row["content"].strip("\ufeff"),
            "comment_author": row.get("author", ""),
        }
        if row.get("video"):
            fields["extra"] = {"video": row["video"]}  # a grouping key for per-video splits
        yield line, make_example(fields, label, source, line)


#: WordPress spam CSV column → record field. Everything else (comment_number,
#: submit time and date parts, post_title) identifies the scrape, not spam.
_WORDPRESS_CSV_FIELDS: dict[str, str] = {
    "content": "comment_content",
    "author": "comment_author",
    "website": "comment_author_url",
    "email": "comment_author_email",
    "ip": "user_ip",
}


def read_wordpress_csv(path: Path) -> Rows:
    """The shared WordPress spam CSV (comment_number, author, website, email, ip, …, content, …, label)."""
    source = str(path)
    for line, row, label in _labelled_csv_rows(path, "wordpress_csv", "content", "label"):
        if isinstance(row, RowProblem):
            yield line, row
            continue
        fields = {field: row[column] for column, field in _WORDPRESS_CSV_FIELDS.items() if column in row}
        yield line, make_example(fields, label, source, line)


def read_sms(path: Path) -> Rows:
    """The SMS Spam Collection: ``ham|spam<TAB>text`` per line, no header."""
    source = str(path)
    for line, text in numbered_lines(path):
        if text is None:
            yield line, RowProblem(source, line, "undecodable bytes (not UTF-8)")
            continue
        if not text.strip():
            continue
        label_text, tab, body = text.partition("\t")
        if line == 1 and label_text.strip().lower() == "label":
            continue  # some copies add a "Label<TAB>SMS" header
        if not tab:
            yield line, RowProblem(source, line, "no TAB after the label (expected ham|spam<TAB>text)")
            continue
        label = parse_label(label_text)
        if label is None:
            yield line, _label_problem(label_text, source, line)
            continue
        yield line, make_example({"comment_content": body}, label, source, line)
