"""Telling a training file's format from its content (the extension is only a hint).

The checks run in order of how unambiguous they are: XML, then the SMS layout,
then JSON Lines, then the CSV header's column names.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from training.formats.textio import head_text, read_head
from training.formats.wxr import check_wxr
from training.records import DataFormatError

_SMS_LINE = re.compile(r"^(ham|spam)\t", re.IGNORECASE)
_SNIFF_BYTES = 64 * 1024
_EXPECTED = (
    "expected a WordPress export (WXR XML), an SMS Spam Collection file (ham|spam<TAB>text), "
    "JSON Lines with comment_content or content and label, or a CSV whose header has CONTENT and "
    "CLASS (youtube), comment_number and website (wordpress_csv), or comment_content or content "
    "and label (generic)"
)


def detect_format(path: Path) -> str:
    """The name of the file's format; raises DataFormatError when it is none of them."""
    head = read_head(path, _SNIFF_BYTES).lstrip()
    if not head:
        raise DataFormatError(f"{path}: the file is empty; {_EXPECTED}")
    if head.startswith(b"<"):
        check_wxr(path)
        return "wordpress"
    lines = [line for line in head_text(path).split("\n", 50) if line.strip()]
    first = lines[0].rstrip("\r")
    second = lines[1] if len(lines) > 1 else ""
    if _SMS_LINE.match(first) or first.lower().startswith("label\t") and _SMS_LINE.match(second):
        return "sms"
    if first.lstrip().startswith("{"):
        return "generic"
    if first.lstrip().startswith("["):
        raise DataFormatError(f"{path}: a JSON array; {_EXPECTED}")
    header = {name.strip().lower() for name in next(csv.reader([first]), [])}
    if {"content", "class"} <= header:
        return "youtube"
    if {"comment_number", "website"} <= header:
        return "wordpress_csv"
    if header & {"comment_content", "content"}:
        return "generic"
    raise DataFormatError(f"{path}: unknown format (first line {first[:80]!r}); {_EXPECTED}")
