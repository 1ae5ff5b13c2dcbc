"""Everything keyed with the server secret: API-key digests, personal-data hashes, comment hashes.

Personal data is minimised before it is written: ``user_ip`` and
``comment_author_email`` (and, in ``extra``, the server variables named for an
address, host or e-mail, and proxy headers holding an IP address) become
``hmac:<hex>`` keyed hashes, unless the operator chose ``store_personal_data``. The same input always gives the same hash, so
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
_PERSONAL_EXTRA = re.compile(r"_ADDR$|_IP$|CLIENTIP|CLIENT_IP|FORWARDED|REAL_IP|EMAIL|REMOTE_HOST|^HTTP_VIA$"
                             r"|EDGESCAPE|X_ORIGINAL_HOST", re.IGNORECASE)
# By value, in the headers proxies and firewalls add (HTTP_X_*), whatever their name: an IPv4
# address, or an IPv6 one (at least three groups). Not in every value: a browser's user agent
# holds version quads ("Chrome/120.0.0.0"), and the search costs a microsecond a value.
_HOLDS_ADDRESS = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"
                            r"|(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{1,4}(?![\w:])", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


_KEEP, _DROP, _PERSONAL, _PROXY_HEADER = range(4)


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
    if _PERSONAL_EXTRA.search(key):
        return _PERSONAL
    return _PROXY_HEADER if key[:7].upper() == "HTTP_X_" else _KEEP


def _is_nonce_verdict(key: str, value: str) -> bool:
    """The WordPress plugin's ``akismet_comment_nonce``: not the nonce but whether its form's nonce
    checked out (``passed``, ``failed``, ``inactive``), a spam sign worth keeping. Any other value
    is dropped with the credentials."""
    return key == "akismet_comment_nonce" and value in ("passed", "failed", "inactive")


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
            kind = _key_kind(key)
            if kind == _PERSONAL or (kind == _PROXY_HEADER and _HOLDS_ADDRESS.search(value)):
                extra[key] = self.pseudonym(value, email="EMAIL" in key.upper())
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
