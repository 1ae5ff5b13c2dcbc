"""Reading an Akismet request: its charset, its fields, and the comment in it (the body: service.body).

Flask's ``request.form`` decodes bodies as UTF-8 and would turn a client's
ISO-8859-1 ``café`` into replacement characters, so the body is parsed here
from its raw bytes: fields are split and percent-decoded to bytes first, then
decoded in the charset the request names: the ``Content-Type`` charset (it
describes the bytes on the wire), else ``blog_charset``, else UTF-8. A body
that is not valid in that charset falls back to Windows-1252, which decodes any
byte, rather than failing the call. Query-string fields are read too (the
``/1.2`` endpoints are GETs), with body fields winning over them.

A ``multipart/form-data`` body (``curl -F``, an HTML form with that encoding, PHP's
clients) is read too, as Akismet's own PHP servers read one: each part without a
file name is a field, its bytes decoded like a form's. Parts with a file name are no
Akismet field and are left out. Before 2026-11-28 such a body was parsed as if
URL-encoded, and a call with a good key was answered ``invalid`` (``Empty "api_key"
value``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import unquote_to_bytes

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, Preamble

from model.comment import TEXT_FIELDS, Comment
from service.charsets import text_codec

DEFAULT_CHARSET = "utf-8"
FALLBACK_CHARSET = "cp1252"
#: Never stored with a comment: they are the credential.
KEY_FIELDS = frozenset({"api_key", "key"})
#: Where a client may send back the check id of the comment it reports (``X-akismet-guid``).
GUID_FIELDS = frozenset({"guid", "akismet_guid", "x-akismet-guid", "x_akismet_guid"})
_CONTEXT = re.compile(r"comment_context(\[\d*\])?")
_TEXT_SET = frozenset(TEXT_FIELDS)


@dataclass
class AkismetForm:
    """The fields of one request: the last value of each name, and ``comment_context`` values in order."""

    fields: dict[str, str] = field(default_factory=dict)
    context: list[str] = field(default_factory=list)
    charset: str = DEFAULT_CHARSET

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def flag(self, name: str) -> bool:
        """A boolean field as Akismet clients send them (``1``, ``true``)."""
        return self.get(name).strip().lower() not in ("", "0", "false", "no", "off")

    def guid(self) -> str:
        """The check id the client sent back with a submit call, if any (lowercased)."""
        for name, value in self.fields.items():
            if name.lower() in GUID_FIELDS and value.strip():
                return value.strip().lower()
        return ""


class MalformedMultipart(ValueError):
    """A ``multipart/form-data`` body that does not parse (no boundary, broken framing, cut short)."""


def parse_form(body: bytes, query: bytes = b"", content_type_charset: Optional[str] = None,
               multipart_boundary: Optional[str] = None) -> AkismetForm:
    """Split, percent-decode and charset-decode an ``application/x-www-form-urlencoded`` body
    (or, given its boundary, a ``multipart/form-data`` one) and the query string.

    Raises :class:`MalformedMultipart` for a multipart body that does not parse.
    """
    fields = _split_multipart(body, multipart_boundary) if multipart_boundary is not None else _split(body)
    pairs = _split(query) + fields  # body last: its values win
    charset = text_codec(content_type_charset) or text_codec(_ascii_value(pairs, b"blog_charset")) or DEFAULT_CHARSET
    try:
        decoded = [(k.decode(charset), v.decode(charset)) for k, v in pairs]
    except UnicodeDecodeError:
        charset = FALLBACK_CHARSET
        decoded = [(k.decode(charset, "replace"), v.decode(charset, "replace")) for k, v in pairs]
    form = AkismetForm(charset=charset)
    for name, value in decoded:
        if name.startswith("comment_context") and _CONTEXT.fullmatch(name):  # the cheap test first
            if value:
                form.context.append(value)
        else:
            form.fields[name] = value
    return form


def comment_from_form(form: AkismetForm) -> Comment:
    """The :class:`Comment` a request describes; unknown fields go to ``extra``, the key nowhere."""
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    for name, value in form.fields.items():
        if name in KEY_FIELDS:
            continue
        if name in _TEXT_SET:
            values[name] = value
        else:
            extra[name] = value
    return Comment(**values, comment_context=tuple(form.context), extra=extra)


def _split(raw: bytes) -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of a form-encoded string: ``+`` is a space, ``%XX`` a byte; no empty names."""
    # A "+" is a space wherever it stands (a literal "+" arrives as %2B), so one replace serves
    # every field; most names and many values hold no "%", so they skip the decoding call.
    if b"+" in raw:
        raw = raw.replace(b"+", b" ")
    pairs = []
    # "&" only: ";" as a separator is obsolete, and user agents contain raw semicolons.
    for part in raw.split(b"&"):
        name, _, value = part.partition(b"=")
        if b"%" in name:
            name = unquote_to_bytes(name)
        if not name:
            continue
        pairs.append((name, unquote_to_bytes(value) if b"%" in value else value))
    return pairs


def _split_multipart(raw: bytes, boundary: str) -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of a ``multipart/form-data`` body's parts without a file name."""
    if not boundary or not boundary.isascii():
        raise MalformedMultipart("multipart/form-data without a boundary")
    decoder = MultipartDecoder(boundary.encode("ascii"))
    decoder.receive_data(raw)
    decoder.receive_data(None)
    pairs: list[tuple[bytes, bytes]] = []
    name: Optional[bytes] = None  # the current part's, None for a file part
    chunks: list[bytes] = []
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, Epilogue):
                return pairs
            if isinstance(event, Field):
                # A part without a name (None) is left out, as PHP leaves it. werkzeug reads part
                # headers as UTF-8 (a name in another charset is a malformed body): back to bytes,
                # so that names and values go through the same charset decoding as a form's.
                name, chunks = (event.name or "").encode("utf-8"), []
            elif isinstance(event, File):
                name, chunks = None, []
            elif isinstance(event, Data):
                chunks.append(event.data)
                if not event.more_data and name:
                    pairs.append((name, b"".join(chunks)))
            elif not isinstance(event, Preamble):  # NeedData after the end: cut short
                raise MalformedMultipart("the multipart/form-data body ends before its closing boundary")
    except ValueError as exc:
        if isinstance(exc, MalformedMultipart):
            raise
        raise MalformedMultipart("malformed multipart/form-data body") from None


def _ascii_value(pairs: list[tuple[bytes, bytes]], name: bytes) -> Optional[str]:
    value = None
    for key, raw in pairs:
        if key == name:
            value = raw.decode("ascii", "ignore")
    return value


__all__ = ["AkismetForm", "GUID_FIELDS", "KEY_FIELDS", "MalformedMultipart", "comment_from_form", "parse_form"]
