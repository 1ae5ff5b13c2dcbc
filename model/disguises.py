"""Disguised letters: text a reader reads as plain words, spelt so that a filter does not.

Spammers write "саsinо" with a Cyrillic с, а and о, "ᴄᴀsɪɴᴏ" in small capitals,
"c̶a̶s̶i̶n̶o̶" struck through, "c a s i n o" or "c.a.s.i.n.o" letter by letter, so that
the word matches no n-gram a model learned. :func:`undisguise` reads such text as
the plain letters, and says whether it met a disguise that honest writers do not use,
which is itself a sign of spam.

- Look-alikes: NFKC (in :func:`model.normalize.clean_text`) already folds full-width,
  mathematical and circled letters; it leaves Cyrillic and Greek letters alone,
  because in Russian, Ukrainian or Greek they are ordinary letters. So one is folded
  only where it cannot be ordinary: inside a word that also holds Latin letters (no
  language mixes scripts within a word), and only when every non-Latin letter of the
  word is a look-alike, so that the word reads as Latin. A word written wholly in
  Cyrillic or Greek stays as it is, look-alikes and all, unless it holds a Cyrillic
  letter no major language using the script has (``һ`` in "сһеар").
- Small capitals are Latin already and have no other use in comments than looking
  odd: folded wherever they occur.
- Combining marks that NFKC could not compose into a letter (strike-through and
  underline overlays, "Zalgo" stacks) are dropped; three or more count as a disguise
  (one can be a rare accent).
- Latin letters spelt out one at a time, at least four, with the same separator
  between each (space, dot, dash, underscore, asterisk, middle dot) are joined. This
  alone is no disguise: people write "P E A C E" for emphasis too.
"""
from __future__ import annotations

import re

# Each pair: a letter of another script, the Latin letter a reader takes it for. Only
# letters drawn the same in common fonts; Cyrillic и or Greek λ look like nothing Latin.
_CYRILLIC = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y", "п": "n", "г": "r", "ѵ": "v",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ї": "I", "Ј": "J", "Һ": "H",
    "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "Ӏ": "I",
}
_GREEK = {
    # Not α, β, γ, ε, κ, τ, χ: science writes them inside Latin words (TNFα, Aβ42, NF-κB).
    "ι": "i", "ν": "v", "ο": "o", "ρ": "p", "υ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}
_SMALL_CAPITALS = {
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ǫ": "q", "ʀ": "r",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "ɑ": "a",
}
#: Cyrillic letters of a few minority languages that Russian, Ukrainian, Bulgarian and Serbian
#: text never holds, and spam uses for their shapes: a word of look-alikes with one of them
#: ("сһеар", "ѕех") is folded even without a Latin letter.
_RARE = "ѕһԁԛԝӏЅҺԚԜӀ"

_IN_MIXED_WORDS = str.maketrans({**_CYRILLIC, **_GREEK})
_ALWAYS = str.maketrans(_SMALL_CAPITALS)
_ANY = re.compile("[" + "".join(sorted({**_CYRILLIC, **_GREEK, **_SMALL_CAPITALS})) + "]")
#: Combining marks left over after NFKC composed what it could: overlays, underlines, stacks.
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
#: Four or more Latin letters, each alone, with one separator repeated between them ("c a s i n o",
#: "v.i.a.g.r.a", "c-a-s-i-n-o"). Not inside a word (lookarounds), and linear: a run is matched
#: once and the scan goes on after it.
_SPELT_OUT = re.compile(r"(?<![^\W_])([A-Za-z])([ .*_\-\u00b7])(?:[A-Za-z]\2){2,}[A-Za-z](?![^\W_])")
#: What every such run holds: two of its inner letters between separators. A plain scan, without
#: the lookarounds, costs a fifth of _SPELT_OUT's and most comments have no match.
_SPELT_OUT_HINT = re.compile(r"[ .*_\-\u00b7][A-Za-z][ .*_\-\u00b7][A-Za-z][ .*_\-\u00b7]")
# A word as a reader sees one: letters (any script) and digits, no punctuation or spaces.
# Linear: each word is matched once and never re-entered.
_WORD = re.compile(r"[^\W_]+")
_LATIN = re.compile("[A-Za-z]")
_FOREIGN = re.compile("[" + "".join(sorted({**_CYRILLIC, **_GREEK})) + "]")
_RARE_LETTER = re.compile(f"[{_RARE}]")
#: A Cyrillic letter that imitates nothing Latin: the text holds real Cyrillic words.
_PLAIN_CYRILLIC = re.compile("[" + "".join(c for c in map(chr, range(0x400, 0x530)) if c not in _CYRILLIC) + "]")
#: A Latin name with a Cyrillic case ending of up to three letters.
_DECLENSION = re.compile(r"[A-Za-z0-9]+['’]?[\u0400-\u052f]{1,3}\Z")
_CYRILLIC_OR_GREEK = re.compile("[\u0370-\u03ff\u0400-\u052f\u1f00-\u1fff]")


def undisguise(text: str) -> tuple[str, bool]:
    """``text`` read as the plain letters it imitates (see the module's doc), and whether it
    held a disguise. Expects NFKC text; ASCII text is returned as it is."""
    if text.isascii():
        return _join_spelt_out(text), False
    plain = _MARKS.sub("", text)
    disguised = len(text) - len(plain) >= 3
    plain = plain.replace("\u2800", " ")  # the braille blank: a space to a reader, a letter to \w
    if _ANY.search(plain):
        folded = plain.translate(_ALWAYS)
        if _FOREIGN.search(folded):
            # In Russian or Ukrainian text, a Latin name takes Cyrillic endings ("VPNом",
            # "iPhoneа"): such a word is left as written there, and folded elsewhere.
            declined = _DECLENSION if _PLAIN_CYRILLIC.search(folded) else None
            folded = _WORD.sub(lambda m: _fold_mixed_word(m.group(0), declined), folded)
        disguised = disguised or folded != plain
        plain = folded
    return _join_spelt_out(plain), disguised


def _join_spelt_out(text: str) -> str:
    if not _SPELT_OUT_HINT.search(text):  # most comments: no two one-letter words in a row
        return text
    return _SPELT_OUT.sub(_join_letters, text)


def _join_letters(match: re.Match[str]) -> str:
    return match.group(0).replace(match.group(2), "")


def _fold_mixed_word(word: str, declined: re.Pattern[str] | None) -> str:
    if declined is not None and declined.match(word):
        return word
    if not (_FOREIGN.search(word) and (_LATIN.search(word) or _RARE_LETTER.search(word))):
        return word
    folded = word.translate(_IN_MIXED_WORDS)
    # A Russian or Greek word with one Latin letter slipped in ("Pушкин", a keyboard left in
    # the wrong layout) keeps letters that imitate nothing Latin: it is left as written.
    return word if _CYRILLIC_OR_GREEK.search(folded) else folded
