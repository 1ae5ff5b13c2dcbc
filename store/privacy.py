"""Everything keyed with the server secret: API-key digests, personal-data hashes, comment hashes.

Personal data is minimised before it is written: ``user_ip`` and
``comment_author_email`` (and, in ``extra``, the fields named for an address, a
host or an e-mail) become ``hmac:<hex>`` keyed hashes, and an IP or e-mail address
inside any other ``extra`` value is replaced by its keyed hash where it stands
(see :mod:`store.personal_text`), unless the operator chose ``store_personal_data``.
The same input always gives the same hash, so "same sender" still works; an IP
address is hashed in its canonical form. An email keeps its domain
(``hmac:<hex>@example.org``) because the email domain is a useful spam feature for
retraining. Credentials a client forwards (cookies, authorization headers of any
name, passwords, PINs, session ids, nonces, tokens, secrets, API keys, signatures,
captcha answers, second factors, payment-card numbers and codes) are dropped always,
inside a value's JSON text too. What is stored never grows much past what was sent.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from model.comment import Comment
from store.personal_text import TooMany, canonical_address, find_personal, may_hold_personal

HMAC_PREFIX = "hmac:"
_HEX_CHARS = 32  # 128 bits of the HMAC-SHA256: plenty to tell senders apart
_PSEUDONYM_CHARS = len(HMAC_PREFIX) + _HEX_CHARS

# Credentials, by name. The WordPress plugin forwards every string of the form it got as
# POST_<name> (login and registration forms: pwd, pass1, pass2, user_pass...) and every
# server variable; JSON clients send what they like. Two tests, on the name as sent:
# a credential's text anywhere in it...
_CREDENTIAL_TEXT = re.compile(
    r"passw(?:or|r)?[dt]|pwd|passphrase|passcode|kennwort|wachtwoord|contrase|mot[\W_]*de[\W_]*passe"
    # (not WordPress's wp-comment-cookies-consent: the commenter's yes to a cookie, no credential)
    r"|cookie(?!s?[-_]?consent)|nonce|token|secret|csrf|xsrf|credential"
    r"|sessid|sessionid|apikey|accesskey|privatekey"
    # WordPress's and bbPress's form nonces, whose names do not say so: _wp_unfiltered_html_comment,
    # _bbp_unfiltered_html_reply, _bbp_unfiltered_html_topic
    r"|unfiltered[\W_]*html"
    # Challenge answers (g-recaptcha-response, h-captcha-response, cf-turnstile-response), signatures
    # (X-Hub-Signature: a webhook's HMAC), second factors and one-time codes (2fa_code,
    # two-factor-backup-code, recovery_code, sms_code, googleotp; not footprint), payment cards
    # (credit_card, card_number, x_card_code, card_cvn, cc_number, not acc_number), bank routing
    # numbers, a social security number, a security question's answer or code
    r"|captcha|turnstile|signature|(?<![a-z0-9])2fa(?![a-z])|two[\W_]*factor|otp(?![a-z])"
    r"|(?:backup|recovery|verification|one[\W_]*time|sms)[\W_]*codes?"
    r"|credit[\W_]*card|card[\W_]*(?:num|no(?![a-z])|code|cvn|ccv|verif)"
    r"|(?<![a-z])cc[\W_]*(?:num|no(?![a-z]))|routing[\W_]*(?:num|no(?![a-z]))"
    r"|social[\W_]*security|security[\W_]*(?:answer|code|question)",
    re.IGNORECASE)
# ...or one of the name's words (split at non-letters and camelCase: user_pass, pass1, newpass,
# X-Auth, apiKey, POST_pin, cvv2) being one. Whole words, so passage, compass, bypass_cache, keywords, monkey and author
# stay: "auth" starts a credential word only when "or" does not follow it (author, authority),
# unless the word goes on to authoriz-/authoris- (Authorization, Proxy-Authorization).
_CREDENTIAL_WORD = re.compile(r"o?auth(?!or(?!i[sz]))[a-z]*|(?:user|new|old|current|confirm|admin|login|my|re)?pass"
                              r"|pw|mdp|otp|totp|mfa|sid|sessions?|keys?|bearer|jwt|hmac"
                              # a PIN (not spinner, pinned, pinterest), a social security number, a card's
                              # code (not ccv in access or csc in a word), a bank account's IBAN (not Lebanon)
                              r"|pin(?:code)?|ssn|cvv|cvc|ccv|csc|cvn|iban", re.IGNORECASE)
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
# By name: the server variables that carry an address or a host (WordPress sends $_SERVER,
# and proxies and firewalls add their own: Sucuri's X-Sucuri-ClientIP, Akamai's EdgeScape...).
# Their whole value becomes one hash: a host name cannot be told from other text by its value.
# Of the Forwarded family, those that name the client or a host (X-Forwarded-For, -Host, -Server,
# Forwarded: for=...), not X-Forwarded-Proto, -Port or -Ssl. Matched on the name in capitals with
# '_' for '-' (JSON clients send headers as they are written).
_ADDRESS_NAME = re.compile(r"_ADDR$|_IP$|_IPV[46]$|CLIENTIP|CLIENT_IP|FORWARDED_FOR|FORWARDED(?:_HOST|_SERVER|_BY)?$"
                           r"|REAL_IP|REMOTE_HOST|^HTTP_VIA$|EDGESCAPE|X_ORIGINAL_HOST")
# Fields named for an e-mail address: "email" anywhere in the name (POST_email, user_email,
# emailAddress), or "mail" one of its words (POST_e-mail, POST_e_mail, POST_mail, POST_user_mail,
# Jetpack's g2-e-mail; not mailer or mailing).
_EMAIL_TEXT = re.compile(r"email", re.IGNORECASE)
_EMAIL_WORD = re.compile(r"mail", re.IGNORECASE)

_KEEP, _DROP, _ADDRESS, _EMAIL = range(4)
# A host name an e-mail pseudonym keeps: labels of letters, digits and '-', the last with a letter.
_DOMAIN = re.compile(r"(?:[\w-]{1,63}\.){0,126}[\w-]*[^\W\d_][\w-]*")

# How much hiding may grow what a client sent. An address or e-mail hidden where it stands becomes
# a pseudonym of 37 characters (an e-mail keeps its domain too), so "::1 ::1 ..." would grow
# nine-fold: a value holding more than a few, or growing by more than a little, becomes one
# pseudonym instead; and once a comment's values have grown by more than a little in all (many
# fields of one short address each), a further value that would grow is left out.
_MOST_HIDDEN = 16  # addresses and e-mails hidden one by one in a value
_VALUE_SLACK = 256  # characters a value may grow by (some seven addresses), or a tenth of its length if more
_COMMENT_SLACK = 4096  # characters a comment's extra may grow by, or a quarter of its size if more
# JSON text in a value is searched to this depth (JSON text inside its strings counting on), and
# this many of its members and items; a value holding more is hidden whole (see _HideWhole).
_JSON_DEPTH = 32
_JSON_NODES = 4096
_JSON_LEAD = ("{", "[")  # what a value must start with to be read as JSON text
_SPACE = re.compile(r"\s+")
#: A surrogate code point on its own (a pair of escapes decodes to one character, so any left is alone).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: A pseudonym where it stands in a text (an e-mail's with its domain): a cap on the text's length
#: must not cut one in half.
_PSEUDONYM_AT = re.compile(r"hmac:[0-9a-f]{32}(?:@[\w.-]*)?")
#: A stored pseudonym's hash (an e-mail's domain may follow it).
_STORED_PSEUDONYM = re.compile(r"hmac:([0-9a-f]{32})(?![0-9a-f])")
# How much of a free text beyond its cap is read before hiding: hiding shortens a text by less than
# this (at most _MOST_HIDDEN addresses, each of at most 64 characters, become 37), so an address
# that reading cut in half ends past the cap once the rest is hidden, and is cut off with it.
_FREE_TEXT_MARGIN = 1024


class _HideWhole(Exception):
    """A value's JSON text nested deeper or holding more than is searched, or growing past its
    slack once hidden: the value is hashed whole (left out when personal data is kept, as its
    names might be credentials')."""


class _RepeatedName(ValueError):
    """A JSON object gives a name twice."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) < len(pairs):
        raise _RepeatedName
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members)


@dataclass
class _Walk:
    """How far a walk through a value's JSON text may still go."""

    room: int  # characters its strings may still grow by
    nodes: int = _JSON_NODES
    depth: int = 0


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
    if _EMAIL_TEXT.search(key) or any(_EMAIL_WORD.fullmatch(word) for word in _NAME_WORDS.findall(key)):
        return _EMAIL
    return _ADDRESS if _ADDRESS_NAME.search(key.upper().replace("-", "_")) else _KEEP


def _is_nonce_verdict(key: str, value: str) -> bool:
    """The WordPress plugin's ``akismet_comment_nonce``: not the nonce but whether its form's nonce
    checked out (``passed``, ``failed``, ``inactive``), a spam sign worth keeping. Any other value
    is dropped with the credentials."""
    return key == "akismet_comment_nonce" and value in ("passed", "failed", "inactive")


def _value_slack(value: str) -> int:
    """How many characters hiding what ``value`` holds may add to it (see ``_VALUE_SLACK``)."""
    return max(_VALUE_SLACK, len(value) // 10)


def _extra_chars(comment: Comment) -> int:
    """The size of a comment's ``extra`` as sent: its names and values."""
    return sum(len(key) + len(value) for key, value in comment.extra.items())


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
        # The personal-data MAC keyed and fed its purpose once: sender_digest runs on the check
        # path, and copying this state saves the key schedule each time.
        self._personal_mac = hmac.new(self._secret, b"commentguard/personal\x00", hashlib.sha256)

    def _mac(self, purpose: str, value: str) -> str:
        message = purpose.encode() + b"\x00" + value.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def key_digest(self, key: str) -> str:
        """The HMAC-SHA256 of an API key: what the store keeps instead of the key."""
        return self._mac("commentguard/api-key", key)

    def secret_fingerprint(self) -> str:
        """A value that tells whether a database was set up under this secret."""
        return self._mac("commentguard/secret-check", "")

    def _hash(self, text: str) -> str:
        return HMAC_PREFIX + self._mac("commentguard/personal", text)[:_HEX_CHARS]

    def pseudonym(self, value: str, *, email: bool = False) -> str:
        """The keyed hash of a personal value; empty and already-hashed values pass unchanged.

        An IP address is hashed in its canonical form (``canonical_address``), so one sender is
        one pseudonym however a client wrote the address: "2001:DB8::42", "2001:db8:0:0:0:0:0:42"
        and "2001:db8::42"; "::ffff:203.0.113.7" and "203.0.113.7".
        """
        value = value.strip()
        if not value or value.startswith(HMAC_PREFIX):
            return value
        if not email:
            # (Without a colon, no address needs rewriting: an IPv4 address has one form.)
            return self._hash(canonical_address(value) or value if ":" in value else value)
        value = value.lower()
        digest = self._hash(value)
        _, at, domain = value.rpartition("@")
        # The domain only when it is a host name: not an address literal ("joe@10.0.0.5") nor
        # whatever else a field holds after an '@' ("joe@example.org, 10.0.0.5").
        return f"{digest}@{domain}" if at and len(domain) <= 253 and _DOMAIN.fullmatch(domain) else digest

    def sender_digest(self, value: str, *, email: bool = False) -> bytes:
        """The 16 bytes of :meth:`pseudonym`'s hash of ``value`` (its hex digits, without the
        ``hmac:`` prefix or an e-mail's domain): the same for a value as sent and for its stored
        pseudonym, so a check's sender is matched with stored labels (service.sender_history)
        without storing or comparing addresses. ``b""`` for an empty value.
        """
        value = value.strip()
        if not value:
            return b""
        if value.startswith(HMAC_PREFIX):
            stored = _STORED_PSEUDONYM.match(value)
            if stored is not None:
                return bytes.fromhex(stored.group(1))
            text = value  # kept as it was by pseudonym(): hashed as it stands, on both sides
        elif email:
            text = value.lower()
        else:
            text = canonical_address(value) or value if ":" in value else value
        mac = self._personal_mac.copy()
        mac.update(text.encode("utf-8", "surrogatepass"))
        return mac.digest()[:_HEX_CHARS // 2]

    def minimise(self, comment: Comment) -> Comment:
        """The comment as it may be stored under this store's personal-data policy."""
        return _Minimising(self).comment(comment)

    def minimise_text(self, text: str, limit: int) -> str:
        """A free text outside any comment (a report's ``reporter``: WordPress sends the
        moderator's user_login, often an e-mail) as it may be stored, at most ``limit`` characters.

        Its IP and e-mail addresses are hashed where they stand, as in an ``extra`` value of any
        name, unless personal data is kept. The cap comes after hiding (a hidden address may be
        longer than it was) and never cuts a pseudonym: cut before hiding, "joe@example.org"
        could be left as "joe@exa", no e-mail any more, and stored in clear.
        """
        if self.store_personal_data or not may_hold_personal(text[:limit + _FREE_TEXT_MARGIN]):
            return text[:limit]
        stored = _Minimising(self)._hidden(text[:limit + _FREE_TEXT_MARGIN])
        if len(stored) <= limit:
            return stored
        cut = limit
        for match in _PSEUDONYM_AT.finditer(stored, max(0, limit - _PSEUDONYM_CHARS - 254)):
            if match.start() < limit < match.end():
                cut = match.start()
                break
        return stored[:cut]

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


class _Minimising:
    """One comment's minimising under a :class:`Privacy`'s policy. It remembers the pseudonyms it
    worked out: a sender's address is in several fields (user_ip, REMOTE_ADDR, X-Forwarded-For,
    X-Real-IP, CF-Connecting-IP), and a keyed hash costs some 1.5 µs."""

    __slots__ = ("privacy", "keep_personal", "hashed")

    def __init__(self, privacy: Privacy) -> None:
        self.privacy = privacy
        self.keep_personal = privacy.store_personal_data
        self.hashed: tuple[dict[str, str], dict[str, str]] = ({}, {})  # as an address or other, as an e-mail

    def pseudonym(self, value: str, *, email: bool = False) -> str:
        """:meth:`Privacy.pseudonym`, each value worked out once."""
        hashed = self.hashed[email]
        found = hashed.get(value)
        if found is None:
            found = hashed[value] = self.privacy.pseudonym(value, email=email)
        return found

    def comment(self, comment: Comment) -> Comment:
        """``comment`` as it may be stored."""
        extra: dict[str, str] = {}
        changed, grown, room = False, 0, None  # room: what the comment may grow by, worked out when needed
        for key, value in comment.extra.items():
            kind = _key_kind(key)
            if kind == _KEEP and not (value.startswith(_JSON_LEAD) or may_hold_personal(value)):
                extra[key] = value  # most values: the user agent, Accept..., the form's own fields
                continue
            if kind == _DROP and not _is_nonce_verdict(key, value):
                changed = True
                continue
            if room is not None and room - grown < _PSEUDONYM_CHARS and kind != _DROP:
                changed = True  # the comment's room is used up (below): not worked out only to be left out
                continue
            try:
                stored = value if kind == _DROP else self._value(value, kind, None)
            except _HideWhole:
                if self.keep_personal:
                    changed = True
                    continue
                stored = self.pseudonym(value)
            growth = len(stored) - len(value)
            if growth > 0 and grown + growth > _COMMENT_SLACK:
                room = max(_COMMENT_SLACK, _extra_chars(comment) // 4) if room is None else room
                if grown + growth > room:
                    # Many fields of a short address each ("a1=::1&a2=::1&..."): each pseudonym is
                    # longer than what it hides; the rest of them are left out.
                    changed = True
                    continue
            grown += max(growth, 0)
            changed = changed or stored is not value
            extra[key] = stored
        if self.keep_personal:
            return replace(comment, extra=extra) if changed else comment
        return replace(
            comment,
            user_ip=self.pseudonym(comment.user_ip),
            comment_author_email=self.pseudonym(comment.comment_author_email, email=True),
            extra=extra,
        )

    def _value(self, value: str, kind: int, walk: _Walk | None) -> str:
        """An ``extra`` value, or a string in one's JSON text (``walk``), as it may be stored;
        ``kind`` is what its name says. Raises :class:`_HideWhole`."""
        if value.startswith(_JSON_LEAD):
            inside = self._json(value, kind, walk or _Walk(_value_slack(value)))
            if inside is not None:
                return inside
        if self.keep_personal:
            return value
        if kind == _ADDRESS:
            stored = self.pseudonym(value)
        elif kind == _EMAIL:
            stored = self.pseudonym(value, email=True)
        elif may_hold_personal(value):
            stored = self._hidden(value)
        else:
            return value
        if walk is not None:
            walk.room -= len(stored) - len(value)
            if walk.room < 0:
                raise _HideWhole
        return stored

    def _hidden(self, value: str) -> str:
        """``value`` with each IP and e-mail address in it replaced by its pseudonym where it stands;
        one pseudonym for the whole value when it holds more than a few or would grow too much.

        Where it stands, rather than the whole value one hash: a moderator reading the stored check
        still reads the rest ("contact me at hmac:3f2a..."), and an address hashes as it does in
        user_ip or REMOTE_ADDR, an e-mail as in comment_author_email, so the same sender is seen
        across fields. A value that is just an address comes out as hashing it whole would.
        """
        try:
            found = find_personal(value, most=_MOST_HIDDEN)
        except TooMany:
            return self.pseudonym(value)
        if not found:
            return value
        growth = sum(_PSEUDONYM_CHARS - (item.stop - item.start)
                     + (len(item.text) - item.text.rindex("@") if item.email else 0) for item in found)
        if growth > _value_slack(value):
            return self.pseudonym(value)
        parts, end = [], 0
        for item in found:
            parts += (value[end:item.start], self.pseudonym(item.text, email=item.email))
            end = item.stop
        return "".join(parts) + value[end:]

    def _json(self, value: str, kind: int, walk: _Walk) -> str | None:
        """``value``, JSON text, with the rules for names applied to the names inside it and its
        strings minimised as values are; as sent when that changes nothing; None when it is no
        JSON text. The JSON API keeps a field's object or array as its JSON text, so
        ``{"user": {"password": ...}, "headers": [{"Authorization": ...}]}`` arrives so."""
        repeated = False
        try:
            try:
                data = _DECODER.decode(value)
            except _RepeatedName:
                data, repeated = json.loads(value), True
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, (dict, list)):
            return None
        out = self._json_node(data, kind, walk)
        # As sent only when nothing changed and nothing was out of sight: a name given twice
        # ('{"a": "10.0.0.5", "a": "x"}') parses as its last value, the text keeps both.
        if out == data and not repeated:
            return value
        # A "\ud800" escape parses as a lone surrogate, which neither SQLite nor PostgreSQL can
        # store: written out as it stood, the whole check was dropped after its answer.
        return _LONE_SURROGATE.sub("\ufffd", json.dumps(out, ensure_ascii=False))

    def _json_node(self, node: Any, kind: int, walk: _Walk) -> Any:
        """A parsed JSON node minimised: a member named for a credential is left out, one named
        for an address or an e-mail is hashed with all it holds."""
        walk.nodes -= 1
        if walk.nodes < 0 or walk.depth >= _JSON_DEPTH:
            raise _HideWhole
        if isinstance(node, str):
            return self._value(node, kind, walk)
        if not isinstance(node, (dict, list)):
            if kind != _KEEP and not self.keep_personal and isinstance(node, (int, float)) \
                    and not isinstance(node, bool):
                return self.pseudonym(json.dumps(node))  # {"client_ip": 3405803783}
            return node
        walk.depth += 1
        if isinstance(node, list):
            out: Any = [self._json_node(item, kind, walk) for item in node]
        else:
            out = {}
            for key, item in node.items():
                item_kind = _key_kind(key)
                if item_kind != _DROP:
                    out[key] = self._json_node(item, item_kind if kind == _KEEP else kind, walk)
        walk.depth -= 1
        return out
