"""Text from the internet, made safe to print on an operator's terminal.

Comment text, author names, even a reason's words come from whoever sent the comment. Control
characters must not reach a terminal as they are: ESC starts sequences that clear the screen,
move the cursor or retitle the window, CR overwrites the line, C1 controls (U+0080-U+009F, CSI
among them) are escapes of their own on some terminals, and bidirectional overrides reorder what
is shown. Tables replace them (:func:`one_line`); JSON keeps them, escaped (:func:`safe_json`).
"""
from __future__ import annotations

import json
import re
from typing import Any

#: C0 and C1 controls, DEL, the bidi marks, embeddings, overrides and isolates, and the
#: line and paragraph separators (a terminal may break the line there).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: What of it ``json.dumps`` leaves as it is (it escapes C0 controls itself).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")


def one_line(text: str, width: int) -> str:
    """``text`` on one line (runs of white space as one space), unsafe characters as U+FFFD, cut to
    ``width`` characters (an ellipsis marks the cut)."""
    line = UNSAFE.sub("\N{REPLACEMENT CHARACTER}", _SPACE.sub(" ", text)).strip()
    return line if len(line) <= width else line[: width - 1] + "…"


def safe_json(value: Any) -> str:
    """``value`` as indented JSON whose strings keep every character, the unsafe ones as ``\\uXXXX``
    escapes (``json.dumps`` escapes C0 controls itself, but not C1 controls nor bidi overrides)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    # Outside strings JSON text is ASCII (its layout's line breaks aside), so only characters inside
    # strings change.
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


__all__ = ["UNSAFE", "one_line", "safe_json"]
