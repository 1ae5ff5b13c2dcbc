"""Telling a training file's format from its content (the extension is only a hint).

The checks run in order of how unambiguous they are: XML, then the SMS layout,
then JSON Lines, then the CSV header's column names.
"""
from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

from training.formats.textio import check_line_endings, head_text, read_head
from training.formats.wxr import check_wxr
from training.records import DataFormatError

_SMS_LINE = re.compile(r"^(ham|spam)\t", re.IGNORECASE)
_SNIFF_BYTES = 64 * 1024
_WORDPRESS_NAMES = frozenset({"author", "website", "email", "ip"})
_EXPECTED = (
    "expected a WordPress export (WXR XML), an SMS Spam Collection file (ham|spam<TAB>text), "
    "JSON Lines with comment_content or content and label, or a CSV whose header has CONTENT and "
    "CLASS (youtube), content and label with author, website, email or ip (wordpress_csv), or "
    "comment_content or content and label (generic)"
)


def _utf16_xml(head: bytes) -> bool:
    """True for XML in UTF-16 with its byte-order mark."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):len(bom) + 200].decode(codec, "ignore").lstrip().startswith("<")
    return False


def detect_format(path: Path) -> str:
    """The name of the file's format; raises DataFormatError when it is none of them."""
    head = read_head(path, _SNIFF_BYTES).lstrip()
    if not head:
        raise DataFormatError(f"{path}: the file is empty; {_EXPECTED}")
    if head.startswith(b"<") or _utf16_xml(head):
        check_wxr(path)  # the XML parser reads any encoding the file declares or marks
        return "wordpress"
    check_line_endings(path, head)
    lines = [line for line in head_text(path).split("\n", 50) if line.strip()]
    first = lines[0].rstrip("\r")
    second = lines[1] if len(lines) > 1 else ""
    if _SMS_LINE.match(first) or first.lower().startswith("label\t") and _SMS_LINE.match(second):
        return "sms"
    if first.lstrip().startswith("{"):
        return "generic"
    if first.lstrip().startswith("["):
        raise DataFormatError(f"{path}: a JSON array; {_EXPECTED}")
    try:
        header = {name.strip().lower() for name in next(csv.reader([first]), [])}
    except csv.Error as exc:
        raise DataFormatError(f"{path}:1: unreadable first line ({exc}); {_EXPECTED}") from None
    if {"content", "class"} <= header:
        return "youtube"
    # The WordPress layout's short names (author, website, email, ip) would land in a generic
    # row's extras, unused as features; the README gives the layout without comment_number.
    if "comment_content" not in header and ({"comment_number", "website"} <= header or (
            {"content", "label"} <= header and header & _WORDPRESS_NAMES)):
        return "wordpress_csv"
    if header & {"comment_content", "content"}:
        return "generic"
    raise DataFormatError(f"{path}: unknown format (first line {first[:80]!r}); {_EXPECTED}")
