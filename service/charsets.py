"""Which charsets a client may declare for a request body: text encodings, and only those.

A client names the charset of what it sends (the Content-Type's ``charset``,
Akismet's ``blog_charset``), and Python's codec registry holds more than
charsets: transforms (``base64``, ``zlib``, ``rot13``...) that ``bytes.decode``
refuses with ``LookupError``; codecs that turn escapes into any code point
(``unicode_escape``, ``raw_unicode_escape``, ``utf-7``), which can make a lone
surrogate that no store can hold; and ``punycode``, ``idna`` and ``undefined``,
which raise on ordinary text. Each of those once made a check a 500 (JSON) or a
"Temporarily unavailable" (Akismet), or a check that was answered and not stored.
"""
from __future__ import annotations

import codecs
from typing import Optional

#: Text codecs that are not charsets a body is written in.
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "utf-7", "punycode", "idna", "undefined"})


def text_codec(name: Optional[str]) -> Optional[str]:
    """The codec to decode a body declared as ``name`` with; ``None`` for an absent, unknown or unusable one."""
    if not name or not name.strip():
        return None
    try:
        codec = codecs.lookup(name.strip().strip('"')).name
        # bytes.decode refuses a transform codec (base64, zlib...) before reading its input
        # (but skips the question for b"", hence one byte).
        b"\x00".decode(codec)
    except LookupError:
        return None
    except UnicodeError:
        pass  # a text codec that does not take this one byte alone (utf-16...)
    return None if codec in _NOT_CHARSETS else codec


__all__ = ["text_codec"]
