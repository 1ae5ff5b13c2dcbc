"""Reading text training files line by line, without holding them in memory.

Owns the UTF-8 policy: a file whose first megabyte is not UTF-8 is rejected as a
whole (it was saved in another encoding), while a stray undecodable line further
on only costs that row, reported with its line number. Also owns the CSV record
stream, which tracks the physical line each record starts on.
"""
from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from training.records import DataFormatError

#: How much of a file decides whether it is UTF-8 at all (and is sniffed for its format).
HEAD_BYTES: int = 1 << 20
#: The longest CSV field read (the csv module's default, 128 KiB, cut long comments short).
MAX_CSV_FIELD: int = 16 << 20
csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of the file, without a UTF-8 byte-order mark."""
    with path.open("rb") as handle:
        head = handle.read(size)
    return head[len(codecs.BOM_UTF8):] if head.startswith(codecs.BOM_UTF8) else head


def check_line_endings(path: Path, head: bytes) -> None:
    """Raise :class:`DataFormatError` when ``head`` ends its lines with lone carriage returns.

    Lines are split on ``\\n`` (see :class:`DecodedLines`): a classic-Mac file would be one
    line, its rows run together into one text, or one CSV field error.
    """
    if b"\n" not in head and b"\r" in head.rstrip(b"\r"):
        raise DataFormatError(f"{path}:1: lines end with a lone carriage return (CR, classic Mac); "
                              "convert the file to LF or CRLF line endings and try again")


def head_text(path: Path) -> str:
    """The head of the file as text; raises :class:`DataFormatError` if it is not UTF-8."""
    head = read_head(path)
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is not an encoding error.
        if len(head) >= HEAD_BYTES - 3 and exc.start >= len(head) - 3:
            return head[: exc.start].decode("utf-8")
        line = head.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(
            f"{path}:{line}: not UTF-8 (byte 0x{head[exc.start]:02x} at offset {exc.start}); "
            "expected a UTF-8 text file: save it as UTF-8 and try again"
        ) from exc


class DecodedLines:
    """The lines of a binary file as text, remembering the numbers of undecodable ones.

    Splitting on b"\\n" ourselves (rather than text mode) keeps line numbers right
    when a text holds a lone carriage return.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.undecodable: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for number, raw in enumerate(self._handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.undecodable.add(number)
                yield raw.decode("utf-8", "replace")

    def take_undecodable(self, first: int, last: int) -> bool:
        """True if any line in ``first..last`` was undecodable (and forget them)."""
        hits = {n for n in self.undecodable if first <= n <= last}
        self.undecodable -= hits
        return bool(hits)


def numbered_lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(1-based line number, text without its line ending, or None if undecodable)."""
    check_line_endings(path, read_head(path))
    with path.open("rb") as handle:
        lines = DecodedLines(handle)
        for number, text in enumerate(lines, start=1):
            yield number, None if lines.take_undecodable(number, number) else text.rstrip("\r\n")


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record: its first and last physical line, and its fields or what went wrong."""

    first: int
    last: int
    fields: list[str] | None
    error: str | None = None


def csv_records(path: Path) -> Iterator[CsvRecord]:
    """The file's non-blank CSV records, each with the lines it spans.

    A record the csv module cannot read (a field over :data:`MAX_CSV_FIELD`, most likely a
    quote never closed) ends the file: the reader cannot tell where that record ends, and
    reading on would turn the rest of its text into rows of their own.
    """
    check_line_endings(path, read_head(path))
    with path.open("rb") as handle:
        lines = DecodedLines(handle)
        reader = csv.reader(lines)
        last = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield CsvRecord(last + 1, reader.line_num, None,
                                f"unreadable CSV record ({exc}; a quote left open?): the file is not "
                                f"read past line {reader.line_num}")
                return
            first, last = last + 1, reader.line_num
            if lines.take_undecodable(first, last):
                yield CsvRecord(first, last, None, "undecodable bytes (not UTF-8)")
            elif fields:  # csv yields [] for a blank line, which is not a row
                yield CsvRecord(first, last, fields)
