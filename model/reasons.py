"""Reasons: turn feature contributions into words a moderator understands.

A linear model's log-odds is a sum of (feature value × weight). This module
groups those contributions into things a person recognises — a word, a phrase,
a link to a shortener, a disguised link, an e-mail domain — and names them.
Character n-grams are credited to the words they were cut from, so "v1agra"
shows up as the word it is, not as the fragments ``"1ag"`` and ``"agr"``.
"""
from __future__ import annotations

import heapq
import re
from collections import defaultdict
from functools import lru_cache
from typing import AbstractSet, Iterable

from model.cues import CUE_DESCRIPTIONS
from model.normalize import SHORTENERS
from model.verdict import Reason

_WORD = re.compile(r"(?u)\b\w+\b")

_FIXED: dict[str, str] = {
    "links=0": "no links in the text",
    "links=1": "a link in the text",  # the words of the xxurl placeholder: one reason, not two
    "links=2": "two links in the text",
    "links=3+": "three or more links in the text",
    "link_obfuscated": "a disguised link (like 'example dot com' or 'hxxp://')",
    "link_only": "nothing but links, no words for the readers",
    "link_tld=ip": "link to a bare IP address",
    "disguised_letters": ("disguised letters (look-alikes from another alphabet, digits or symbols for "
                          "letters, small capitals, struck through)"),
    "link_referral": "a link carrying a referral, invite or affiliate code",
    "author_url": "the author gave a website",
    "email_in_text": "an e-mail address in the text",
    "caps=most": "written mostly in capital letters",
    "caps=many": "many capital letters",
    "repeated_letters": "letters repeated many times (like 'pleeease')",
    "repeated_punctuation": "repeated punctuation (like '!!!')",
    "phone_number": "a phone number in the text",
    "money": "an amount of money",
    "length=lt20": "a very short text",
    "length=lt60": "a short text",
    "length=lt150": "a text of ordinary length",
    "length=lt400": "a longer text",
    "length=lt1500": "a long text",
    "length=long": "a very long text",
}

_PREFIXED: tuple[tuple[str, str], ...] = (
    ("link_shortener=", "link to a URL shortener ({})"),
    ("link_host=", "link to {}"),
    ("link_domain=", "link to a site on {}"),
    ("link_tld=", "link to a .{} domain"),
    ("author_url_shortener=", "author website behind a URL shortener ({})"),
    ("author_url_tld=", "author website on a .{} domain"),
    ("email_domain=", "e-mail address at {}"),
    ("email_tld=", "e-mail address on a .{} domain"),
    ("type=", "comment type '{}'"),
)

_PLACEHOLDERS = {"xxurl": "a link in the text", "xxemail": "an e-mail address in the text",
                 "xxhandle": "a mention of an account on a federated network (like @alice@example.social)"}
#: The same placeholders inside a phrase ("at xxurl" is shown as "at [link]").
_IN_PHRASE = {"xxurl": "[link]", "xxemail": "[e-mail address]", "xxhandle": "[account]"}


#: Tokens every ordinary comment carries; they shift the baseline, they do not
#: explain a verdict, so they are never shown as reasons (their weight still counts).
_BASELINE_TOKENS = frozenset({"type=comment"})


@lru_cache(maxsize=1)
def quiet_words() -> frozenset[str]:
    """Function words, which say nothing a moderator can act on: scikit-learn's English stop words.

    Imported on first use; a model served from its tables (model.tables) carries this
    list, so the service never imports scikit-learn for it.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def describe_meta(token: str) -> str:
    """Words for one metadata token (``link_shortener=bit.ly`` → "link to a URL shortener (bit.ly)").

    Returns "" for baseline tokens, which are not shown as reasons. A link's host
    and its shortener token get the same words, so they add up to one reason.
    """
    if token in _BASELINE_TOKENS:
        return ""
    if token.startswith("link_host=") and token[len("link_host="):] in SHORTENERS:
        return f"link to a URL shortener ({token[len('link_host='):]})"
    if token in _FIXED:
        return _FIXED[token]
    if token.startswith("cue="):
        return CUE_DESCRIPTIONS.get(token[4:], token[4:].replace("_", " "))
    for prefix, template in _PREFIXED:
        if token.startswith(prefix):
            return template.format(token[len(prefix):])
    return token


def describe_ngram(ngram: str, quiet: AbstractSet[str] | None = None) -> str:
    """Words for a word n-gram: "word 'free'" or "phrase 'check out'"; "" for a quiet word.

    ``quiet``: the function words not shown (default: :func:`quiet_words`).
    """
    if ngram in _PLACEHOLDERS:
        return _PLACEHOLDERS[ngram]
    if ngram in (quiet_words() if quiet is None else quiet):
        return ""
    if " " in ngram:
        if "xx" in ngram:
            ngram = " ".join(_IN_PHRASE.get(word, word) for word in ngram.split(" "))
        return f"phrase '{ngram}'"
    return f"word '{ngram}'"


def credit_char_ngrams(text: str, contributions: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Share each character n-gram's contribution among the words of ``text`` that contain it.

    Mirrors scikit-learn's ``char_wb`` analyser: each word is padded with one
    space on both sides before n-grams are cut, so a gram can be credited to
    exactly the words it occurs in, in proportion to its occurrences.
    """
    words = [w for w in _WORD.findall(text.lower())]
    padded = {w: f" {w} " for w in set(words)}
    counts = defaultdict(int)
    for w in words:
        counts[w] += 1
    contributions = list(contributions)
    # Index every substring of the gram lengths in play with its holders and their occurrence
    # counts, so crediting a gram is one lookup rather than a scan of every word; the holders
    # keep the order of ``padded``, so the sums come out bit for bit as a scan gives them.
    holders_of: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for length in {len(gram) for gram, _ in contributions}:
        for w, p in padded.items():
            times = counts[w]
            for piece in dict.fromkeys([p[i:i + length] for i in range(len(p) - length + 1)]):
                holders_of[piece].append((w, times * p.count(piece)))
    credit: dict[str, float] = defaultdict(float)
    for gram, value in contributions:
        holders = holders_of.get(gram)
        if not holders:
            continue
        if len(holders) == 1:
            w, n = holders[0]
            credit[w] += value * n / n
            continue
        total = sum([n for _, n in holders])
        for w, n in holders:
            credit[w] += value * n / total
    return credit


def top_reasons(contributions: dict[str, float], toward_spam: bool, limit: int = 5,
                min_weight: float = 0.05) -> tuple[Reason, ...]:
    """The few reasons that pushed the score the way the verdict went, strongest first.

    ``contributions`` maps a description to its summed log-odds contribution.
    ``toward_spam`` (a verdict other than ``ham``): the reasons are those that raised the
    score; else those that lowered it. The verdict decides, not 0.5: a comment held at 0.27
    (the ``unsure`` threshold lies below 0.5) is held for what raised its score.
    """
    sign = 1.0 if toward_spam else -1.0
    chosen = [(text, weight) for text, weight in contributions.items() if weight * sign >= min_weight and text]
    if not chosen:
        # Nothing weighed that much the verdict's way (a comment held just above a low unsure
        # threshold): the lighter ones that did, else the strongest either way, never nothing.
        chosen = ([(text, weight) for text, weight in contributions.items() if weight * sign > 0 and text]
                  or [(text, weight) for text, weight in contributions.items() if weight and text])
    # nsmallest is sorted(...)[:limit], ties in the same (insertion) order, without sorting them all.
    return tuple(Reason(text, weight) for text, weight in heapq.nsmallest(limit, chosen, key=_strength))


def _strength(item: tuple[str, float]) -> float:
    return -abs(item[1])
