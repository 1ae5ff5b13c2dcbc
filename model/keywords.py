"""Spam keywords spelt with stand-ins: ``v1agra``, ``ca$ino``, ``fr33``, ``vïágra``, ``ɑdսlt``.

Spammers keep the words a filter looks for readable to people and unreadable to the
filter: digits and symbols for letters (leetspeak), accents no language puts there, and
letters of other alphabets drawn like Latin ones (Armenian ``օ``, Cherokee ``Ꮯ``, IPA ``ɑ``).
:func:`read_keywords` reads such a token as the word it spells, but only when that word is
one of :data:`SPAM_WORDS`, the words spam disguises.

Why only those words: each of these stand-ins is also ordinary writing somewhere. Digits
sit inside words in code and names (``h2o``, ``b2b``, ``i18n``, ``mp3``, ``1st``, ``4k``),
``$`` and ``@`` start variables and mentions (``$var``, ``@param``), accents belong to French,
Portuguese or Vietnamese words, ``ı`` is a Turkish letter and ``ɛ`` an Akan one. Read
generally, they would turn such writing into other words; read only into a short list of
spam's own words, they change a legitimate comment only where it spells one of them. The list is
fixed, not taken from a model, so that every model and the fast path see the same text.

A token is a run of letters, digits and the stand-in symbols ``@ $ € £`` (and ``!`` or ``|``
between two letters). It is read when it holds a stand-in (a digit, a symbol, a letter that
is not plain ASCII) and at least two letters, and when one reading of its stand-ins spells a
listed word (or its plural in ``s``). Tokens wholly in Cyrillic, Greek or Armenian are left to
their languages (Russian ``сам`` must not become "cam"); Cherokee letters are read, as no
comment writes English words with them. The reading counts as a disguise (the
``disguised_letters`` feature) when it needed a digit, a symbol, a letter of another alphabet,
or accents on two or more letters. Accents alone are read only then, and only the kinds spam
scatters over vowels: one accent, or a caron or dot below, is how some language writes a word of
its own. A ``$`` in front of a token is a variable's or a cashtag's sign, not an "s".
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: Words spam disguises, in the families the seed corpus has (pharmacy, casino and betting,
#: crypto and forex, loans, adult, prizes and money offers, essays, phishing, channel
#: promotion, SEO, fake support). Each is evidence of spam: seed ham uses none of them in more
#: than a third as many comments as seed spam does, or in more than one (tests/test_keywords.py
#: checks it), so "easy" and "credit" are not here (French also writes "crédit").
SPAM_WORDS: frozenset[str] = frozenset(
    """viagra cialis levitra tramadol xanax valium oxycodone pharmacy prescription pills meds
    casino casinos jackpot slots poker roulette betting bets blackjack gambling lottery spins
    bonus bonuses deposit
    crypto bitcoin ethereum forex trading trader invest investment investor profit profits
    signals airdrop wallet
    loan loans payday lender lenders mortgage cash money debt
    porn porno sex sexy xxx nude nudes naked adult dating singles escort escorts webcam
    hookup horny erotic lonely girls meet
    free win prize prizes gift reward rewards claim earn income dollars cheap discount
    rich guaranteed offer offers deals limited instant online
    support helpline hacked recovery
    essay essays homework dissertation plagiarism
    password verify login suspended paypal
    subscribe subscribers channel followers visit click
    seo backlinks""".split()
)
#: Every listed word and its plural in "s", by length, and by length and each letter's place.
_READABLE = SPAM_WORDS | {word + "s" for word in SPAM_WORDS}
_LONGEST = max(map(len, _READABLE))
_BY_LENGTH: dict[int, tuple[str, ...]] = {}
_BY_LETTER: dict[tuple[int, int, str], tuple[str, ...]] = {}
for _word in sorted(_READABLE):
    _BY_LENGTH[len(_word)] = _BY_LENGTH.get(len(_word), ()) + (_word,)
    for _place, _letter in enumerate(_word):
        _BY_LETTER[len(_word), _place, _letter] = _BY_LETTER.get((len(_word), _place, _letter), ()) + (_word,)

#: What each digit or symbol may stand for; some for two letters (1 is an i or an l).
_STAND_INS: dict[str, str] = {
    "0": "o", "1": "il", "2": "z", "3": "e", "4": "a", "5": "s", "6": "gb", "7": "ty", "8": "b",
    "9": "g", "@": "a", "$": "s", "€": "e", "£": "le", "!": "il", "|": "li",
}
#: Letters of other alphabets, and Latin letters outside ASCII that are no accented letter,
#: drawn like a Latin letter (small capitals and the Cyrillic or Greek look-alikes inside Latin
#: words are folded before, by model.disguises; these are read here, and only into SPAM_WORDS).
_LOOKALIKES: dict[str, str] = {
    # Latin extended and IPA
    "ɑ": "a", "ɡ": "g", "ı": "i", "ɩ": "i", "ȷ": "j", "ɛ": "e", "ł": "l", "ø": "o", "đ": "d",
    "ƅ": "b", "ʋ": "v", "ɪ": "i", "ʏ": "y", "ɴ": "n", "ʀ": "r", "ʟ": "l",
    # Armenian
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ռ": "n", "ք": "p", "զ": "q", "ա": "w",
    "Օ": "o", "Ս": "u", "Տ": "s", "Լ": "l",
    # Cherokee capitals (their small forms are added below)
    "Ꭺ": "a", "Ᏼ": "b", "Ꮯ": "c", "Ꭰ": "d", "Ꭼ": "e", "Ꮐ": "g", "Ꮋ": "h", "Ꭵ": "i", "Ꭻ": "j",
    "Ꮶ": "k", "Ꮮ": "l", "Ꮇ": "m", "Ꮲ": "p", "Ꭱ": "r", "Ꮪ": "s", "Ꭲ": "t", "Ꮩ": "v", "Ꮃ": "w",
    "Ꮓ": "z", "Ꮤ": "w", "Ꮟ": "b",
    # Greek and Cyrillic, here also those science writes inside Latin words (TNFα spells no
    # listed word) and inside tokens with a digit or symbol ("с@sino")
    "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y", "ω": "w", "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i",
    "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "һ": "h", "ԁ": "d", "п": "n",
    "г": "r", "ѵ": "v", "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o",
    "Р": "p", "С": "c", "Т": "t", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j",
}
_LOOKALIKES.update({c.lower(): v for c, v in list(_LOOKALIKES.items()) if "\u13a0" <= c <= "\u13f5"})

#: A token: letters and digits of any script, the stand-in symbols, and "!" or "|" between two
#: of them (after a word they are punctuation: "casino!").
_TOKEN = re.compile(r"(?:[^\W_]|[@$€£]|(?<=[^\W_])[!|](?=[^\W_]))+")
_TOKEN_SYMBOLS = "@$€£!|"
#: Whether a text may hold such a token at all: a digit or stand-in symbol beside an ASCII
#: letter, a Latin letter outside ASCII or a Cherokee one, or a Greek, Cyrillic or Armenian
#: letter beside an ASCII letter, digit or symbol (their words alone are left to their
#: languages). Most comments have none. Each pattern starts with a character class, which the
#: regex engine skips ahead on: a first version, an alternation, cost 2 µs a comment.
_HINT_ASCII = re.compile(r"[0-9@$€£!|](?:(?<=[A-Za-z].)|(?=[A-Za-z]))")
_HINT_LATIN = re.compile("[\u00c0-\u02af\u1e00-\u1eff\u13a0-\u13ff\uab70-\uabbf]")
_HINT_MIXED = re.compile("[\u0370-\u058f\u1f00-\u1fff](?:(?<=[A-Za-z0-9@$€£].)|(?=[A-Za-z0-9@$€£]))")
_LETTER = re.compile(r"[^\W\d_]")
#: Tokens in these scripts alone are words of their languages (Cyrillic, Greek, Armenian).
_OWN_SCRIPT = re.compile("[\u0370-\u03ff\u0400-\u052f\u0530-\u058f\u1f00-\u1fff]")
_OTHER_LETTER = re.compile("[^\u0370-\u03ff\u0400-\u052f\u0530-\u058f\u1f00-\u1fff]")


def read_keywords(text: str) -> tuple[str, bool]:
    """``text`` with each token that spells a word of :data:`SPAM_WORDS` through stand-ins
    written as that word, and whether one of them was a disguise (see the module's doc)."""
    hits = [m.start() for m in _HINT_ASCII.finditer(text)]
    if not text.isascii():
        hits += [m.start() for m in _HINT_LATIN.finditer(text)]
        hits += [m.start() for m in _HINT_MIXED.finditer(text)]
        hits.sort()
    if not hits:
        return text, False
    # Each hint lies in a token: found from the hint (at most one word's length back, never into
    # the token before), read once; later hints inside it are skipped. Linear, whatever the text.
    pieces: list[tuple[int, int, str]] = []  # (start, end, word) of each token read
    disguised = False
    done = 0
    for hit in hits:
        if hit < done:
            continue
        start = hit
        floor = max(done, hit - _LONGEST)
        while start > floor and (text[start - 1].isalnum() or text[start - 1] in _TOKEN_SYMBOLS):
            start -= 1
        while start < hit and text[start] in "!|":  # punctuation before a word, not a letter
            start += 1
        match = _TOKEN.match(text, start)
        if match is None or match.end() <= hit:
            continue
        done = match.end()
        if start == floor and floor > 0 and (text[floor - 1].isalnum() or text[floor - 1] in _TOKEN_SYMBOLS):
            continue  # longer than any listed word
        # Symbols after a word are emphasis ("cash$$$") more often than letters ("p1ll$"): the
        # word before them is read first.
        token = match.group(0).rstrip("@$€£")
        read = _read_token(token)
        if read is None and token != match.group(0):
            token = match.group(0)
            read = _read_token(token)
        if read is None:
            continue
        word, disguise = read
        disguised = disguised or disguise
        pieces.append((start, start + len(token), _in_case_of(token, word)))
    if not pieces:
        return text, False
    out: list[str] = []
    last = 0
    for begin, stop, word in pieces:
        out += [text[last:begin], word]
        last = stop
    out.append(text[last:])
    return "".join(out), disguised


def _read_token(token: str) -> tuple[str, bool] | None:
    """The listed word ``token`` spells and whether that took a disguise, or None."""
    if not 3 <= len(token) <= _LONGEST or token[0] == "$":
        # A "$" in front is a variable's or a cashtag's sign: PHP's "catch (Exception $ex)" and
        # Pinterest's "$PINS" were read as "sex" and "SPINS".
        return None
    # Only words of the token's length with its first plain letter in the same place are
    # compared (most tokens, "100mg" or "für", have none), one letter at a time.
    first = next((i for i, char in enumerate(token) if char.isascii() and char.isalpha()), None)
    words = _BY_LENGTH.get(len(token), ()) if first is None else _BY_LETTER.get(
        (len(token), first, token[first].lower()), ())
    for word in words:
        read = _spells(token, word)
        if read is not None:
            if len(_LETTER.findall(token)) < 2 or (_OWN_SCRIPT.search(token) and not _OTHER_LETTER.search(token)):
                return None  # "5$" is a price; a word wholly in Cyrillic, Greek or Armenian is theirs
            return word, read
    return None


def _spells(token: str, word: str) -> bool | None:
    """Whether ``token`` reads as ``word`` letter by letter: None if not, else whether that took
    a disguise (a digit, a symbol, another alphabet's letter, or two or more accents).

    Accents alone spell a word only when there are two or more of them, each of the kinds
    spammers scatter over vowels (:func:`_disguise_accent`): one accent is how some language
    writes a word of its own (Vietnamese ``loạn`` is "chaos", ``sẹo`` a scar, Icelandic
    ``lögin`` the laws, Slovak ``horný`` upper), and a first version read each of them as the
    spam word, holding ordinary Vietnamese comments for "word 'loan'"."""
    disguise = False
    accented = 0
    for char, letter in zip(token, word):
        lower = char.lower()
        if lower == letter or (char == "İ" and letter == "i"):  # Turkish capital I, no accent
            continue
        if char in _STAND_INS or char in _LOOKALIKES or lower in _LOOKALIKES:
            # The letter itself first: a capital Greek Ν is drawn as an N, its small ν as a v.
            if letter not in (_STAND_INS.get(char) or _LOOKALIKES.get(char) or _LOOKALIKES[lower]):
                return None
            disguise = True
        elif _base_letter(char) == letter and _disguise_accent(char):
            accented += 1
        else:
            return None
    if not disguise and accented < 2:
        return None
    return True


@lru_cache(maxsize=4096)
def _base_letter(char: str) -> str | None:
    """The ASCII letter an accented Latin letter is written on (``é`` → ``e``), else None."""
    base = unicodedata.normalize("NFD", char)[0].lower()
    return base if "a" <= base <= "z" else None


#: Marks spammers put on letters (acute, grave, circumflex, tilde, macron, diaeresis). Carons,
#: dots below, hooks, horns, ogoneks, cedillas, rings and breves are letters of Czech,
#: Vietnamese, Polish or Turkish (``příze`` is Czech for yarn), not decoration of English words.
_DISGUISE_MARKS = frozenset("\u0300\u0301\u0302\u0303\u0304\u0308")


@lru_cache(maxsize=4096)
def _disguise_accent(char: str) -> bool:
    """Whether ``char`` is a letter with only the marks spammers scatter (``ï``, ``á``), not one of
    another language's own letters (``ř``, ``ạ``, ``ę``)."""
    marks = unicodedata.normalize("NFD", char)[1:]
    return bool(marks) and all(mark in _DISGUISE_MARKS for mark in marks)


def _in_case_of(token: str, word: str) -> str:
    """``word`` in the case the token's letters were written in: all capitals, a capital first, or lower."""
    letters = [c for c in token if c.isalpha()]
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return word.upper()
    if token[0].isupper():
        return word.capitalize()
    return word
