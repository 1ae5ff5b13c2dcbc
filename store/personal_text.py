"""Finding the personal data inside a free text: IP addresses and e-mail addresses.

:mod:`store.privacy` hides what these finders return where it stands. Each finder
works behind a cheap first test (``may_hold_personal``, some 0.1 µs a value),
starts from a literal where it can (the regex engine finds one at memchr speed),
and checks a candidate address with :mod:`ipaddress` rather than by pattern
alone. An address comes back in its canonical form (:func:`canonical_address`),
so the same address written two ways gets one pseudonym.
"""
from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple


class Found(NamedTuple):
    """A piece of personal data at ``value[start:stop]``: ``text`` is the address in canonical form,
    or the e-mail address (decoded when it was percent-encoded)."""

    start: int
    stop: int
    text: str
    email: bool


class TooMany(Exception):
    """A value holds more addresses than are hidden one by one, or more candidates than are
    examined: it is hidden whole."""


_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")

# An IPv4 address is four numbers of at most 255 (no leading zeros: ``ipaddress`` refuses them
# too), not part of a longer dotted run ("1.2.3.4.5", an OID). An address may end a sentence
# ("at 10.0.0.5."). What may come before it is checked by hand (``_clear_before``).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_AT = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}(?![0-9]|\.[0-9])", re.ASCII)
_IPV4_WHOLE = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}", re.ASCII)
# The cheap test: what follows an IPv4 address's first number, led by a literal.
_DOTTED_TAIL = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")
# A run of IPv6 groups with at least two colons, from its first colon (written ':' or, in a
# percent-encoded query, '%3A'); the groups before that colon are walked back to by hand.
_COLON = r"(?::|%3[Aa])"
_V6_RUN = re.compile(rf"{_COLON}[0-9A-Fa-f.]*{_COLON}(?:[0-9A-Fa-f.:]|%3[Aa])*")
# An e-mail address: a local part not glued to a word before it (a percent-escape may come
# before it, as in "?email%3Djoe%40example.org"), '@' or its escape, and a domain ending in a
# top-level domain of letters (so "joe@192.0.2.1" is an address after an '@', not an e-mail).
_EMAIL = re.compile(r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![\w.+%-]))([\w.+-]{1,64})(?:@|%40)"
                    r"((?:[\w-]{1,63}\.)+[^\W\d_]{2,63})(?![\w-]|\.\w)")


def canonical_address(text: str) -> str | None:
    """``text`` as the one way to write its IP address (``ipaddress``'s compressed lower case,
    an IPv4-mapped IPv6 address as its IPv4 address), or None when it is no address."""
    if len(text) > 45:
        return None
    if _IPV4_WHOLE.fullmatch(text):
        return text  # already canonical: no leading zeros, nothing to fold
    if ":" not in text:
        return None
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else address.compressed


def may_hold_personal(value: str) -> bool:
    """A quick test that ``value`` might hold an IP or e-mail address: false for most values."""
    return (("." in value and _DOTTED_TAIL.search(value) is not None)
            or (":" in value and ("::" in value or value.count(":") >= 6))
            or "@" in value
            or ("%" in value and ("%40" in value or "%3A" in value or "%3a" in value)))


def _is_escape_tail(value: str, at: int) -> bool:
    """Whether ``value[at]`` is one of the two hex digits of a percent-escape (``%2F``)."""
    return (at >= 1 and value[at - 1] == "%") or (at >= 2 and value[at - 2] == "%" and value[at - 1] in _HEX)


def _clear_before(value: str, at: int) -> bool:
    """Whether what starts at ``at`` is not glued to a word before it: the value's start, a
    character other than a letter, digit, ``_`` or ``.``, or a percent-escape (``%20``, ``%3D``,
    ``%2F``: an address in a percent-encoded query or URL)."""
    if at == 0:
        return True
    before = value[at - 1]
    if not (before.isalnum() or before in "_."):
        return True
    return at >= 3 and value[at - 3] == "%" and value[at - 2] in _HEX and before in _HEX


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


def _ipv4(value: str, budget: list[int]) -> list[Found]:
    """The IPv4 addresses in ``value``: ``_IPV4_AT`` tried only where ``_DOTTED_TAIL`` found a tail."""
    found: list[Found] = []
    tail = _DOTTED_TAIL.search(value)
    while tail is not None:
        _spend(budget, _SEEN)
        first = start = tail.start()
        # Back over the first number (at most three digits), not into a percent-escape's digits.
        while first > 0 and start - first < 3 and value[first - 1] in _DIGITS and not _is_escape_tail(value, first - 1):
            first -= 1
        match = _IPV4_AT.match(value, first) if first < start else None
        if match is not None and (not _clear_before(value, first) or _is_version(value, first)):
            match = None
        if match is not None:
            found.append(Found(first, match.end(), match.group(), False))
        tail = _DOTTED_TAIL.search(value, match.end() if match is not None else start + 1)
    return found


def _ipv6_at(value: str, start: int, stop: int, budget: list[int]) -> Found | None:
    """The IPv6 address ``value[start:stop]`` holds (a run of groups), trimmed of what ends a
    sentence or a clause ("at 2001:db8::1.", "from 2001:db8::43: timeout"), or None."""
    while stop > start and value[stop - 1] == ".":
        stop -= 1
    raw = value[start:stop]
    text = raw.replace("%3A", ":").replace("%3a", ":") if "%" in raw else raw
    if text.endswith(":") and not text.endswith("::"):
        stop -= 1 if raw.endswith(":") else 3
        text = text[:-1]
    # An address has one '::' or eight groups (seven colons; six before an IPv4 tail), and a digit:
    # times ("12:30:45"), MAC addresses and "::" alone are none. Cheap, before ipaddress.
    colons = text.count(":")
    if not ("::" in text or colons == 7 or (colons == 6 and "." in text)) or text.count("::") > 1 \
            or not text.strip(":."):
        return None
    _spend(budget, _CHECKED)
    canonical = canonical_address(text)
    if canonical is None and "." in text:
        # "2001:db8::1.5" is no address, but the address before the dot is.
        return _ipv6_at(value, start, start + raw.index("."), budget)
    return Found(start, stop, canonical, False) if canonical is not None else None


def _ipv6(value: str, budget: list[int]) -> list[Found]:
    """The IPv6 addresses in ``value``, written with ':' or, percent-encoded, with '%3A'."""
    found: list[Found] = []
    for run in _V6_RUN.finditer(value):
        first_colon, stop = run.span()
        start = first_colon
        while start > 0 and value[start - 1] in _HEX:
            start -= 1
        if start > 0 and value[start - 1] == "%" and start + 2 <= first_colon:
            start += 2  # the groups begin after a percent-escape ("%3D2001:db8::1")
        elif start > 0 and (value[start - 1].isalnum() or value[start - 1] == "_"):
            # Glued to a word, the part before the first colon is a label: "IPv6:2001:db8::42",
            # "addr:...", "ip:..." (else "6:2001:db8::42" would be taken for the address).
            start = first_colon + (1 if value[first_colon] == ":" else 3)
        _spend(budget, _SEEN)
        address = _ipv6_at(value, start, stop, budget)
        if address is None and start < first_colon:
            # Not an address with what came before its first colon ("deadbeef1:2001:db8::1"):
            # maybe one after it.
            address = _ipv6_at(value, first_colon + (1 if value[first_colon] == ":" else 3), stop, budget)
        if address is not None:
            found.append(address)
    return found


def _emails(value: str, budget: list[int]) -> list[Found]:
    """The e-mail addresses in ``value`` (not those already hidden: ``hmac:<hex>@domain``)."""
    found: list[Found] = []
    for match in _EMAIL.finditer(value):
        _spend(budget, _SEEN)
        if value.endswith("hmac:", 0, match.start()):
            continue
        found.append(Found(match.start(), match.end(), f"{match.group(1)}@{match.group(2)}", True))
    return found


# What examining a candidate costs, out of a value's budget (``find_personal``): a pattern's match
# (about 1 µs), or a check with ipaddress (some 2-4 µs more).
_SEEN, _CHECKED = 1, 15


def _spend(budget: list[int], cost: int) -> None:
    budget[0] -= cost
    if budget[0] < 0:
        raise TooMany


def find_personal(value: str, *, most: int) -> list[Found]:
    """The IP and e-mail addresses in ``value``, in order, none overlapping another.

    Raises :class:`TooMany` when ``value`` holds more than ``most`` of them, or more candidates
    than are examined (some 1,000 that a pattern turns down, 64 that need ipaddress's word): the
    caller hides such a value whole, and the work on one value stays bounded however long it is.
    """
    budget = [64 * (_SEEN + _CHECKED)]
    found: list[Found] = []
    if ":" in value and ("::" in value or value.count(":") >= 6) or "%3A" in value or "%3a" in value:
        found += _ipv6(value, budget)
    if "." in value:
        found += _ipv4(value, budget)
    if "@" in value or "%40" in value:
        found += _emails(value, budget)
    if len(found) > most:
        raise TooMany
    if len(found) < 2:
        return found
    found.sort(key=lambda f: (f.start, -f.stop))
    kept = [found[0]]
    for item in found[1:]:
        if item.start >= kept[-1].stop:  # an IPv4 tail inside an IPv6 address is part of it
            kept.append(item)
    return kept
