"""Look-alike letters: Cyrillic and Greek letters that pass for Latin ones, and Latin small capitals.

Spammers write "саsinо" with a Cyrillic с, а and о so that the word matches no
n-gram a model learned, while a reader sees "casino". NFKC (in
:func:`model.normalize.clean_text`) already folds full-width, mathematical and
circled letters; it leaves these alone, because in Russian, Ukrainian or Greek they
are ordinary letters. So a letter is folded only where it cannot be ordinary: inside
a word that also holds Latin letters (no language mixes scripts within a word), and
only when every non-Latin letter of the word is a look-alike, so that the word reads
as Latin. A word written wholly in Cyrillic or Greek stays as it is, look-alikes and all.

Small capitals (ᴄᴀsɪɴᴏ) are Latin already and have no other use in comments than
looking odd, so they are folded wherever they occur.
"""
from __future__ import annotations

import re

# Each pair: a letter of another script, the Latin letter a reader takes it for. Only
# letters drawn the same in common fonts; Cyrillic и or Greek λ look like nothing Latin.
_CYRILLIC = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ї": "I", "Ј": "J", "Һ": "H",
    "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "Ӏ": "I",
}
_GREEK = {
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}
_SMALL_CAPITALS = {
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ǫ": "q", "ʀ": "r",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
}

_IN_MIXED_WORDS = str.maketrans({**_CYRILLIC, **_GREEK})
_ALWAYS = str.maketrans(_SMALL_CAPITALS)
_ANY = re.compile("[" + "".join(sorted({**_CYRILLIC, **_GREEK, **_SMALL_CAPITALS})) + "]")
# A word as a reader sees one: letters (any script) and digits, no punctuation or spaces.
# Linear: each word is matched once and never re-entered.
_WORD = re.compile(r"[^\W_]+")
_LATIN = re.compile("[A-Za-z]")
_FOREIGN = re.compile("[" + "".join(sorted({**_CYRILLIC, **_GREEK})) + "]")
_CYRILLIC_OR_GREEK = re.compile("[\u0370-\u03ff\u0400-\u052f\u1f00-\u1fff]")


def fold_lookalikes(text: str) -> tuple[str, bool]:
    """``text`` with look-alike letters read as the Latin ones they imitate (see the module's
    doc), and whether any were: a disguise is itself a sign of spam."""
    if not _ANY.search(text):  # nearly every comment: one scan, no rewriting
        return text, False
    folded = text.translate(_ALWAYS)
    if _FOREIGN.search(folded):
        folded = _WORD.sub(_fold_mixed_word, folded)
    return folded, folded != text


def _fold_mixed_word(match: re.Match[str]) -> str:
    word = match.group(0)
    if not (_LATIN.search(word) and _FOREIGN.search(word)):
        return word
    folded = word.translate(_IN_MIXED_WORDS)
    # A Russian or Greek word with one Latin letter slipped in ("Pушкин", a keyboard left in
    # the wrong layout) keeps letters that imitate nothing Latin: it is left as written.
    return word if _CYRILLIC_OR_GREEK.search(folded) else folded
