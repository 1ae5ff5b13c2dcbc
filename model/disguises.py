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
- Small capitals are Latin already: folded in a word that holds two or more of them
  (one alone is more often phonetics, as in "bɪt").
- Combining marks that NFKC could not compose into a letter are dropped; strike-through
  and underline overlays (three or more) and stacks of three on one letter ("Zalgo")
  count as a disguise, accents that some languages write that way do not.
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
    # Not α, β, γ, ε, κ, ν, ρ, τ, χ: science writes them inside Latin words (TNFα, Aβ42, NF-κB, hν, ρgh).
    "ι": "i", "ο": "o", "υ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}
_SMALL_CAPITALS = {
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "ꞯ": "q",
}
#: Cyrillic letters of a few languages (Macedonian ѕ, Tatar and Bashkir һ, Chechen ӏ...) that
#: Russian, Ukrainian, Bulgarian and Serbian never hold, and spam uses for their shapes: a word
#: of look-alikes with one of them ("сһеар", "ѕех") is folded even without a Latin letter, but
#: only in text with no real Cyrillic word (where they are ordinary letters).
_RARE = "ѕһԁԛԝӏЅҺԚԜӀ"

_IN_MIXED_WORDS = str.maketrans({**_CYRILLIC, **_GREEK, **_SMALL_CAPITALS})
_ANY = re.compile("[" + "".join(sorted({**_CYRILLIC, **_GREEK, **_SMALL_CAPITALS})) + "]")
#: Combining marks left over after NFKC composed what it could: overlays, underlines, stacks,
#: and also accents no precomposed letter has (Yoruba tones on ọ, Russian stress marks). Not
#: the symbol marks (U+20D0-20FF), which hold the emoji keycap of "1️⃣".
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\ufe20-\ufe2f]")
#: What only disguise makes of them: strike-through and underline overlays, or three or more
#: stacked on one letter ("Zalgo"); an accent per letter is how some languages are written.
_OVERLAY = re.compile("[\u0332-\u0338]")
_STACK = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\ufe20-\ufe2f]{3}")
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
_SMALL_CAPITAL = re.compile("[" + "".join(sorted(_SMALL_CAPITALS)) + "]")
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
    disguised = len(plain) < len(text) and (len(_OVERLAY.findall(text)) >= 3 or _STACK.search(text) is not None)
    plain = plain.replace("\u2800", " ")  # the braille blank: a space to a reader, a letter to \w
    if _ANY.search(plain):
        # In Russian or Ukrainian text, a Latin name takes Cyrillic endings ("VPNом", "iPhoneа"),
        # and minority-language letters are letters: such words are left as written there.
        cyrillic_text = _PLAIN_CYRILLIC.search(plain) is not None
        folded = _WORD.sub(lambda m: _fold_word(m.group(0), cyrillic_text), plain)
        disguised = disguised or folded != plain
        plain = folded
    return _join_spelt_out(plain), disguised


def _join_spelt_out(text: str) -> str:
    if not _SPELT_OUT_HINT.search(text):  # most comments: no two one-letter words in a row
        return text
    return _SPELT_OUT.sub(_join_letters, text)


def _join_letters(match: re.Match[str]) -> str:
    return match.group(0).replace(match.group(2), "")


def _fold_word(word: str, cyrillic_text: bool) -> str:
    small_capitals = len(_SMALL_CAPITAL.findall(word))
    foreign = _FOREIGN.search(word) is not None
    if small_capitals < 2 and not foreign:
        return word  # one small capital is IPA ("bɪt") more often than a disguise
    if foreign:
        if cyrillic_text and _DECLENSION.match(word):
            return word
        latin = _LATIN.search(word) is not None or small_capitals >= 2
        if not (latin or (not cyrillic_text and _RARE_LETTER.search(word))):
            return word
    folded = word.translate(_IN_MIXED_WORDS)
    # A Russian or Greek word with one Latin letter slipped in ("Pушкин", a keyboard left in
    # the wrong layout) keeps letters that imitate nothing Latin: it is left as written.
    return word if _CYRILLIC_OR_GREEK.search(folded) else folded
