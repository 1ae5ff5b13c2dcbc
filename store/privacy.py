"""Everything keyed with the server secret: API-key digests, personal-data hashes, comment hashes.

Personal data is minimised before it is written: ``user_ip`` and
``comment_author_email`` (and, in ``extra``, the server variables named for an
address, host or e-mail) become ``hmac:<hex>`` keyed hashes, and an IP address
inside any other ``extra`` value is replaced by its keyed hash, unless the operator
chose ``store_personal_data``. The same input always gives the same hash, so
"same sender" still works. An email keeps its domain (``hmac:<hex>@example.org``)
because the email domain is a useful spam feature for retraining. Credentials a
client forwards (cookies, authorization headers of any name, passwords, session
ids, nonces, tokens, secrets, API keys) are dropped always.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import re
import unicodedata
from dataclasses import replace
from typing import Callable

from model.comment import Comment

HMAC_PREFIX = "hmac:"
_HEX_CHARS = 32  # 128 bits of the HMAC-SHA256: plenty to tell senders apart

# Credentials, by name. The WordPress plugin forwards every string of the form it got as
# POST_<name> (login and registration forms: pwd, pass1, pass2, user_pass...) and every
# server variable; JSON clients send what they like. Two tests, on the name as sent:
# a credential's text anywhere in it...
_CREDENTIAL_TEXT = re.compile(
    r"passw(?:or|r)?[dt]|pwd|passphrase|passcode|kennwort|wachtwoord|contrase|motdepasse"
    # (not WordPress's wp-comment-cookies-consent: the commenter's yes to a cookie, no credential)
    r"|cookie(?!s?[-_]?consent)|nonce|token|secret|csrf|xsrf|credential"
    r"|sessid|sessionid|apikey|accesskey|privatekey"
    r"|_wp_unfiltered_html_comment",  # WordPress's comment-form nonce, whose name does not say so
    re.IGNORECASE)
# ...or one of the name's words (split at non-letters and camelCase: user_pass, pass1, newpass,
# X-Auth, apiKey) being one. Whole words, so passage, compass, bypass_cache, keywords, monkey and author
# stay: "auth" starts a credential word only when "or" does not follow it (author, authority),
# unless the word goes on to authoriz-/authoris- (Authorization, Proxy-Authorization).
_CREDENTIAL_WORD = re.compile(r"o?auth(?!or(?!i[sz]))[a-z]*|(?:user|new|old|current|confirm|admin|login|my|re)?pass"
                              r"|pw|mdp|otp|totp|sid|sessions?|keys?|bearer|jwt", re.IGNORECASE)
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
# By name: the server variables that carry an address or a host (WordPress sends $_SERVER,
# and proxies and firewalls add their own: Sucuri's X-Sucuri-ClientIP, Akamai's EdgeScape...).
# Their whole value becomes one hash: a host name cannot be told from other text by its value.
_PERSONAL_EXTRA = re.compile(r"_ADDR$|_IP$|_IPV[46]$|CLIENTIP|CLIENT_IP|FORWARDED|REAL_IP|EMAIL|REMOTE_HOST"
                             r"|^HTTP_VIA$|EDGESCAPE|X_ORIGINAL_HOST", re.IGNORECASE)
# By value, in every other field, whatever its name: IP addresses. An IPv4 address is four
# numbers of at most 255, not part of a longer dotted run ("1.2.3.4.5", an OID) nor a product's
# version (``_is_version``). An address may end a sentence ("at 10.0.0.5.").
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9]|\.[0-9])", re.ASCII)
# An IPv6 address has eight groups or a "::"; so times ("12:30:45") and MAC addresses are none.
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9a-f:]*::|(?:[0-9a-f]{1,4}:){7}[0-9a-f])"
                   r"(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{1,4}(?![\w:]|\.[0-9])", re.ASCII | re.IGNORECASE)
# The cheap test first: both patterns above scan at some 20-50 ns a character, a user agent or
# a copy of the comment is hundreds of characters, and few values hold anything like an address.
# This one starts with a literal, which the regex engine finds at memchr speed: what follows an
# IPv4 address's first number.
_DOTTED_TAIL = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")
_SPACE = re.compile(r"\s+")


_KEEP, _DROP, _PERSONAL = range(3)


def _is_credential(key: str) -> bool:
    """Whether an ``extra`` field of this name holds a credential (see ``_CREDENTIAL_*``)."""
    if _CREDENTIAL_TEXT.search(key):
        return True
    return any(_CREDENTIAL_WORD.fullmatch(word) for word in _NAME_WORDS.findall(key))


@functools.lru_cache(maxsize=4096)
def _key_kind(key: str) -> int:
    """What minimising does with an ``extra`` field of this name (names repeat: cached)."""
    if _is_credential(key):
        return _DROP
    return _PERSONAL if _PERSONAL_EXTRA.search(key) else _KEEP


def _is_nonce_verdict(key: str, value: str) -> bool:
    """The WordPress plugin's ``akismet_comment_nonce``: not the nonce but whether its form's nonce
    checked out (``passed``, ``failed``, ``inactive``), a spam sign worth keeping. Any other value
    is dropped with the credentials."""
    return key == "akismet_comment_nonce" and value in ("passed", "failed", "inactive")


def _is_version(value: str, at: int) -> bool:
    """Whether the number at ``at`` is a product's version: right after ``Name/``, a word of
    letters, digits, ``_`` and ``-`` that starts with a letter and the value or a word, as a
    user agent's "Chrome/120.0.0.0" (Chrome's usual quad) does; not in a URL's path
    ("http://host/10.0.0.5", "example.org/10.0.0.5", "/whois/10.0.0.5")."""
    if at < 2 or value[at - 1] != "/":
        return False
    start = at - 1
    while start > 0 and (value[start - 1].isalnum() or value[start - 1] in "_-"):
        start -= 1
    return start < at - 1 and value[start].isalpha() and (start == 0 or value[start - 1] not in "/:.@")


def _ipv4_spans(value: str) -> list[tuple[int, int]]:
    """Where ``value`` holds an IPv4 address: ``_IPV4`` tried only where ``_DOTTED_TAIL`` found a tail."""
    spans: list[tuple[int, int]] = []
    tail = _DOTTED_TAIL.search(value)
    while tail is not None:
        first = start = tail.start()
        while first > 0 and start - first < 3 and "0" <= value[first - 1] <= "9":
            first -= 1
        found = _IPV4.match(value, first) if first < start else None
        if found is not None and _is_version(value, first):
            found = None
        if found is not None:
            spans.append(found.span())
        tail = _DOTTED_TAIL.search(value, found.end() if found is not None else start + 1)
    return spans


def may_hold_address(value: str) -> bool:
    """A quick test that ``value`` might hold an IP address: false for most values, at about 0.1 µs each."""
    return ("." in value and _DOTTED_TAIL.search(value) is not None) or (
        ":" in value and ("::" in value or value.count(":") >= 7))


def hide_addresses(value: str, hide: Callable[[str], str]) -> str:
    """``value`` with each IP address in it replaced by ``hide(address)``."""
    spans = _ipv4_spans(value)
    v6 = "::" in value or value.count(":") >= 7
    if not spans and not v6:
        return value  # most values that pass may_hold_address: a user agent's "Chrome/120.0.0.0"
    hidden: dict[str, str] = {}  # an address repeated in a value is hidden once (a keyed hash costs ~2 µs)

    def once(address: str) -> str:
        if address not in hidden:
            hidden[address] = hide(address)
        return hidden[address]

    if spans:
        parts, end = [], 0
        for start, stop in spans:
            parts += (value[end:start], once(value[start:stop]))
            end = stop
        value = "".join(parts) + value[end:]
    if v6:
        value = _IPV6.sub(lambda found: once(found.group()), value)
    return value


def without_pseudonyms(comment: Comment) -> Comment:
    """``comment`` without the values that are keyed hashes (a stored comment's IP and e-mail).

    For whatever leaves the server (the upstream): a hash means nothing to anyone else.
    """
    def clear(value: str) -> str:
        return "" if value.startswith(HMAC_PREFIX) else value

    extra = {k: v for k, v in comment.extra.items() if not v.startswith(HMAC_PREFIX)}
    return replace(comment, user_ip=clear(comment.user_ip), comment_author_email=clear(comment.comment_author_email),
                   extra=extra)


def normalise_text(text: str) -> str:
    """Text as comparisons of comments take it: NFKC, runs of white space as one, trimmed, casefolded."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


class Privacy:
    """Keyed hashing under one secret, and the personal-data policy of a store."""

    def __init__(self, secret: bytes, *, store_personal_data: bool = False) -> None:
        self._secret = bytes(secret)
        self.store_personal_data = store_personal_data

    def _mac(self, purpose: str, value: str) -> str:
        message = purpose.encode() + b"\x00" + value.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def key_digest(self, key: str) -> str:
        """The HMAC-SHA256 of an API key: what the store keeps instead of the key."""
        return self._mac("commentguard/api-key", key)

    def secret_fingerprint(self) -> str:
        """A value that tells whether a database was set up under this secret."""
        return self._mac("commentguard/secret-check", "")

    def pseudonym(self, value: str, *, email: bool = False) -> str:
        """The keyed hash of a personal value; empty and already-hashed values pass unchanged."""
        value = value.strip()
        if not value or value.startswith(HMAC_PREFIX):
            return value
        if not email:
            return HMAC_PREFIX + self._mac("commentguard/personal", value)[:_HEX_CHARS]
        value = value.lower()
        digest = HMAC_PREFIX + self._mac("commentguard/personal", value)[:_HEX_CHARS]
        _, at, domain = value.rpartition("@")
        return f"{digest}@{domain}" if at and domain else digest

    def minimise(self, comment: Comment) -> Comment:
        """The comment as it may be stored under this store's personal-data policy."""
        extra = {k: v for k, v in comment.extra.items() if _key_kind(k) != _DROP or _is_nonce_verdict(k, v)}
        if self.store_personal_data:
            return replace(comment, extra=extra) if len(extra) != len(comment.extra) else comment
        for key, value in extra.items():
            if _key_kind(key) == _PERSONAL:
                extra[key] = self.pseudonym(value, email="EMAIL" in key.upper())
            elif may_hold_address(value):
                # An address inside any other value (a proxy's header, a form's free field, the
                # plugin's copy of the comment) becomes its keyed hash where it stands, rather than
                # the whole value one hash: a moderator reading the stored check still reads the
                # rest ("contact me at hmac:3f2a..."), and an address hashes as it does in user_ip
                # or REMOTE_ADDR, so the same sender is seen across fields. A value that is just an
                # address comes out exactly as hashing it whole would.
                extra[key] = hide_addresses(value, self.pseudonym)
        return replace(
            comment,
            user_ip=self.pseudonym(comment.user_ip),
            comment_author_email=self.pseudonym(comment.comment_author_email, email=True),
            extra=extra,
        )

    def comment_hash(self, comment: Comment) -> str:
        """SHA-256 of the normalised content, author and (keyed) author email.

        The email enters as its pseudonym whatever the policy, so a comment hashes
        the same before and after it is stored, and the hash cannot be used to
        confirm a guessed email address.
        """
        parts = (
            "v1",
            normalise_text(comment.comment_content),
            normalise_text(comment.comment_author),
            self.pseudonym(comment.comment_author_email, email=True),
        )
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
