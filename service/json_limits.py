"""What the JSON API asks of a parsed body beyond JSON's grammar: bounded nesting, and text that is Unicode.

JSON's grammar allows any nesting and any ``\\uXXXX`` escape, so a valid body can
still break what comes after the parser:

* **Nesting.** Python's JSON parser recurses once per level and raises
  ``RecursionError`` near a thousand levels; ``str()`` of an unknown field's
  value (kept in ``extra``) and the check log's JSON encoder recurse the same way.
  A comment record needs two levels (a batch, four), so a body nested deeper than
  :data:`MAX_DEPTH` is refused with a 400 before anything else reads it.
* **Lone surrogates.** ``"\\ud83d"`` alone (half of an emoji's UTF-16 pair, as a
  JavaScript client sends after cutting a string in the middle of one) decodes to
  a code point that no UTF-8 encoder accepts: the check was answered, and then the
  check log could not store it. Each one becomes U+FFFD, the replacement
  character, as browsers do when they turn such a string into text: the comment is
  still checked, and stored as it was scored.

Both checks cost nothing on the usual body: they run only when a quick count of
brackets, or a search for ``\\ud`` escapes, says they may be needed.
"""
from __future__ import annotations

import re
from typing import Any

#: The deepest nesting of arrays and objects a JSON body may have.
MAX_DEPTH = 16

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class TooDeep(ValueError):
    """A JSON body nested deeper than :data:`MAX_DEPTH`."""


def may_be_too_deep(text: str) -> bool:
    """False when ``text`` has too few brackets to nest deeper than :data:`MAX_DEPTH` (a quick count)."""
    return text.count("[") + text.count("{") > MAX_DEPTH


def check_depth(data: Any) -> None:
    """Raise :class:`TooDeep` when ``data`` nests arrays and objects deeper than :data:`MAX_DEPTH`.

    Walks without recursion, so any depth the parser let through is measured.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TooDeep(f"the JSON body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values() if isinstance(item, (dict, list)))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, (dict, list)))


def may_hold_surrogates(text: str) -> bool:
    """False when no ``\\uD800``-``\\uDFFF`` escape is in ``text`` (the only way a body decoded
    strictly from UTF-8 can hold a surrogate)."""
    # A backslash first: one memchr, where each three-character search scans the text again.
    return "\\" in text and ("\\ud" in text or "\\uD" in text)


def replace_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys included) replaced by U+FFFD.

    The parser has already joined each escaped pair into one code point, so any surrogate
    left is a lone one. Call only on data :func:`check_depth` accepted (this recurses).
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {replace_lone_surrogates(key): replace_lone_surrogates(item) for key, item in value.items()}
    return value


__all__ = ["MAX_DEPTH", "TooDeep", "check_depth", "may_be_too_deep", "may_hold_surrogates",
           "replace_lone_surrogates"]
