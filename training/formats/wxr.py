"""Reader for WordPress export files (WXR XML): one example per ``<wp:comment>``.

WordPress marks its verdict in ``wp:comment_approved``: ``spam`` is spam and
``1`` (approved) is ham; pending (``0``) and trashed comments were never judged,
so they are skipped and counted, not guessed. The file is parsed incrementally
(``iterparse``) and each post is dropped once read, so a large export never sits
in memory whole. Rows are numbered by comment, in file order.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from training.formats.delimited import Rows, make_example
from training.records import HAM, SPAM, DataFormatError, Row, RowProblem, SkippedRow

#: The wp namespace of every WXR version (1.0, 1.1, 1.2...). Not a bare prefix match:
#: ``http://wordpress.org/export/1.2/excerpt/`` is a different namespace.
_WP_NAMESPACE = re.compile(r"^http://wordpress\.org/export/[^/]+/$")
_LABELS: dict[str, int] = {"spam": SPAM, "1": HAM}
_SKIPPED: dict[str, str] = {
    "0": "pending: never moderated (comment_approved 0)",
    "trash": "in the trash (comment_approved trash)",
    "post-trashed": "its post is in the trash (comment_approved post-trashed)",
}
#: wp:* element → record field.
_FIELDS: dict[str, str] = {
    "comment_content": "comment_content",
    "comment_author": "comment_author",
    "comment_author_email": "comment_author_email",
    "comment_author_url": "comment_author_url",
    "comment_author_IP": "user_ip",
    "comment_type": "comment_type",
    "comment_date_gmt": "comment_date_gmt",
}


@dataclass
class _Position:
    """Where the parse is: the blog and post that the next comment belongs to."""

    blog: str = ""
    permalink: str = ""
    comments: int = 0


def _split(tag: str) -> tuple[str, str]:
    """``{namespace}local`` → (namespace, local)."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _wp_name(tag: str) -> str | None:
    """The local name of a wp:* element of any WXR version, else None."""
    namespace, local = _split(tag)
    return local if _WP_NAMESPACE.match(namespace) else None


def _xml_error(path: Path, exc: ET.ParseError) -> DataFormatError:
    return DataFormatError(
        f"{path}:{exc.position[0]}: not well-formed XML ({exc}); expected a WordPress export (WXR)"
    )


def check_wxr(path: Path) -> None:
    """Raise DataFormatError unless the file is XML whose root is a WXR ``<rss>``."""
    namespaces: list[str] = []
    with path.open("rb") as handle:
        try:
            for event, item in ET.iterparse(handle, events=("start-ns", "start")):
                if event == "start-ns":
                    namespaces.append(item[1])
                else:
                    _check_root(item, namespaces, str(path))
                    return
        except ET.ParseError as exc:
            raise _xml_error(path, exc) from exc
    raise DataFormatError(f"{path}: no XML element found; expected a WordPress export (WXR)")


def read_wordpress(path: Path) -> Rows:
    """The comments of a WordPress export; raises DataFormatError if it is not well-formed WXR."""
    with path.open("rb") as handle:
        try:
            yield from _read_wxr(handle, str(path))
        except ET.ParseError as exc:
            raise _xml_error(path, exc) from exc


def _read_wxr(handle: BinaryIO, source: str) -> Iterator[tuple[int, Row]]:
    stack: list[ET.Element] = []
    namespaces: list[str] = []
    where = _Position()
    for event, item in ET.iterparse(handle, events=("start-ns", "start", "end")):
        if event == "start-ns":
            namespaces.append(item[1])
        elif event == "start":
            if not stack:
                _check_root(item, namespaces, source)
            stack.append(item)
        else:
            stack.pop()
            row = _on_end(item, stack[-1] if stack else None, where, source)
            if row is not None:
                yield where.comments, row


def _check_root(root: ET.Element, namespaces: list[str], source: str) -> None:
    if root.tag != "rss" or not any(_WP_NAMESPACE.match(ns) for ns in namespaces):
        raise DataFormatError(
            f"{source}: XML with root <{_split(root.tag)[1]}> is not a WordPress export; "
            "expected <rss> with the namespace http://wordpress.org/export/<version>/"
        )


def _on_end(elem: ET.Element, parent: ET.Element | None, where: _Position, source: str) -> Row | None:
    """Handle one closed element; return a row when it was a comment."""
    parent_name = _split(parent.tag)[1] if parent is not None else ""
    if elem.tag == "link" and parent_name == "channel":
        where.blog = (elem.text or "").strip()
    elif elem.tag == "link" and parent_name == "item":
        where.permalink = (elem.text or "").strip()
    elif elem.tag == "item":
        where.permalink = ""
        if parent is not None:
            parent.remove(elem)  # read and done: keeps memory flat on a large export
    elif _wp_name(elem.tag) == "comment" and parent_name == "item":
        where.comments += 1
        row = _comment_row(elem, where, source)
        elem.clear()
        return row
    return None


def _comment_row(elem: ET.Element, where: _Position, source: str) -> Row:
    line = where.comments
    values = {name: child.text or "" for child in elem if (name := _wp_name(child.tag))}
    approved = values.get("comment_approved", "").strip()
    if approved in _SKIPPED:
        return SkippedRow(source, line, _SKIPPED[approved])
    label = _LABELS.get(approved)
    if label is None:
        return RowProblem(
            source, line,
            f"unknown wp:comment_approved {approved!r} (expected spam, 1, 0, trash or post-trashed)",
        )
    fields = {field: values.get(name, "") for name, field in _FIELDS.items()}
    if fields["comment_date_gmt"].startswith("0000-00-00"):
        fields["comment_date_gmt"] = ""  # WordPress's way of writing "no date"
    fields["permalink"] = where.permalink
    fields["blog"] = where.blog
    return make_example(fields, label, source, line)
