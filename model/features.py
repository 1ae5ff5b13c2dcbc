"""Feature extraction: a comment becomes normalised text plus metadata tokens.

The text feeds word and character n-grams; the metadata tokens (links and their
hosts, the author URL, the e-mail domain, the comment type, length, capitals,
repeated characters, phone numbers, money) feed a one-hot block. Every metadata
token has a stable name with a prefix (``link_host=bit.ly``), which
:mod:`model.reasons` turns into words a moderator understands.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from model.comment import Comment
from model.cues import find_cues
from model.normalize import Link, link_of_author_url, normalize

_PHONE = re.compile(r"(?:\+?\d[\d\s().-]{6,}\d)")
_MONEY = re.compile(r"[$£€¥₹]\s?\d|\d\s?(?:usd|eur|gbp|dollars?|bucks|k/month|/week|/day)\b", re.IGNORECASE)
_REPEAT_CHAR = re.compile(r"([^\W\d_])\1{3,}")
_REPEAT_PUNCT = re.compile(r"([!?.$*])\1{2,}")
_LETTER = re.compile(r"[^\W\d_]")
_NOT_LETTER = re.compile(r"[\W\d_]+")
_DIGIT = re.compile(r"\d")
_PLACEHOLDER = re.compile(r"\bxx(?:url|email)\b")

#: Metadata token prefixes whose features fire only when a link is present or letters
#: are disguised. Their weights are kept non-negative after fitting (see
#: model.pipeline), so that adding a link to a comment's author URL, a shortener link
#: to its text, or a disguise can never make it look more legitimate.
MONOTONE_PREFIXES: tuple[str, ...] = ("author_url", "link_shortener", "link_obfuscated", "link_referral",
                                     "link_only", "disguised_letters")

#: What the text and metadata features are, as a number: raised when a change to normalisation or
#: to the tokens would give a model trained with it different inputs (2: disguised letters and
#: links, 2026-11-28; 3: spam words spelt with digits, symbols, accents or other alphabets,
#: model.keywords, 2026-11-28; 4: no tokens of the author's e-mail domain, 2026-11-28). An artifact
#: records the version it was trained with; a release refuses one of a higher version (trained by a
#: newer release) and warns about a lower one.
FEATURES_VERSION = 4

_LENGTH_BUCKETS = ((20, "lt20"), (60, "lt60"), (150, "lt150"), (400, "lt400"), (1500, "lt1500"))


@dataclass(frozen=True)
class PreparedComment:
    """What the feature blocks read: the normalised text and the metadata tokens."""

    text: str
    meta: tuple[str, ...]


def prepare(comment: Comment) -> PreparedComment:
    """Normalise a comment and compute its metadata tokens."""
    norm = normalize(comment.comment_content)
    tokens: list[str] = []
    tokens += _link_tokens(norm.links)
    tokens += _author_url_tokens(comment.comment_author_url)
    # The author's e-mail is no feature (until features version 4 its domain and TLD were): the seed
    # corpus writes its ham commenters' addresses at reserved example domains and its spammers' at
    # real-looking ones, so the model learnt "a real domain is spam", and a probe's ordinary comments
    # from gmail.com were flagged 6 times in 10 (none without the address). A real site's commenters
    # use the same webmail as its spammers; the address still serves the sender history.
    if norm.email_domains:
        tokens.append("email_in_text")
    tokens.append(f"type={(comment.comment_type or 'comment').strip().lower()[:32]}")
    tokens += _shape_tokens(norm.text, bool(norm.links))
    if norm.disguised_letters:
        tokens.append("disguised_letters")
    tokens += [f"cue={name}" for name in find_cues(norm.text)]
    return PreparedComment(text=norm.text, meta=tuple(tokens))


def _link_tokens(links: tuple[Link, ...]) -> list[str]:
    count = len(links)
    tokens = [f"links={min(count, 3)}{'+' if count >= 3 else ''}"]
    for link in links[:10]:  # a flood of links says enough by its count
        tokens.append(f"link_host={link.host}")
        if link.domain != link.host:
            tokens.append(f"link_domain={link.domain}")
        if link.is_referral:
            tokens.append("link_referral")
        tokens.append(f"link_tld={link.tld}")
        if link.is_shortener:
            tokens.append(f"link_shortener={link.host}")
        if link.obfuscated:
            tokens.append("link_obfuscated")
    return tokens


def _author_url_tokens(url: str) -> list[str]:
    link = link_of_author_url(url) if url.strip() else None
    if link is None:
        return []
    tokens = ["author_url", f"author_url_tld={link.tld}"]
    if link.is_shortener:
        tokens.append(f"author_url_shortener={link.host}")
    return tokens


def _shape_tokens(text: str, has_links: bool = False) -> list[str]:
    # A comment that is nothing but links says nothing to its readers: name that, rather
    # than call it "a very short text" (which short, friendly comments make look harmless).
    if has_links and not _LETTER.search(_PLACEHOLDER.sub("", text)):
        return ["link_only"]
    tokens = [f"length={_length_bucket(len(text))}"]
    letters = _NOT_LETTER.sub("", text)  # one string, not a list of one-letter strings
    if len(letters) >= 8:
        caps = sum(map(str.isupper, letters)) / len(letters)
        if caps >= 0.7:
            tokens.append("caps=most")
        elif caps >= 0.3:
            tokens.append("caps=many")
    if _REPEAT_CHAR.search(text):
        tokens.append("repeated_letters")
    if _REPEAT_PUNCT.search(text):
        tokens.append("repeated_punctuation")
    if _DIGIT.search(text):  # both need a digit; most comments have none
        if _PHONE.search(text):
            tokens.append("phone_number")
        if _MONEY.search(text):
            tokens.append("money")
    return tokens


def _length_bucket(n: int) -> str:
    for limit, name in _LENGTH_BUCKETS:
        if n < limit:
            return name
    return "long"
