"""Text normalisation: turn raw comment markup into clean text plus the links it hides.

Spammers dress text up so that naive filters miss it: HTML entities and tags,
zero-width characters between letters, full-width or other compatibility forms
of Latin letters, and links written as ``hxxp://example ,com`` or
``example [dot] com``. :func:`normalize` undoes all of that once, and reports
the links and e-mail addresses it found so that features can name their
domains, top-level domains and shortener services.
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from model.disguises import undisguise
from model.keywords import read_keywords

#: Invisible characters spammers put between letters: Unicode's default-ignorable code points
#: (zero-width spaces and joiners, direction marks and overrides, the BOM that YouTube appends,
#: soft hyphens, the combining grapheme joiner, variation selectors, Hangul fillers, Khmer and
#: Mongolian invisible signs, tag characters...). Any one of them inside each word of
#: "cheap cialis" took it from spam to unsure, and inside a host cut the link short.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")
_TAG = re.compile(r"<[^<>]{0,2000}>")
_IDEOGRAPHIC_DOT = re.compile(r"(?<=[A-Za-z0-9])\u3002(?=[A-Za-z0-9])")
# Linear time, whatever the text: no pattern here may scan on past where its match can end and
# then try again from the next character, or a body of 64 KiB like "<a <a <a ...", "a.a.a.a..."
# or "[url=[url=..." takes seconds to minutes (quadratic), holding a worker. An anchor's
# attributes stop at the next "<", a BBCode value at the next "[", a host at 16 labels, and a
# run of whitespace is entered only at its start. tests/test_normalize.py times them.
# (Spaces after the quote only: "\s*["']?\s*" let a run of spaces be split two ways at every
# start, and '<a href=' then 64 KiB of spaces took 52 s.)
_HREF = re.compile(r"""<a\b[^<>]*?\bhref\s*=\s*(?:["']\s*)?([^"'\s>]+)""", re.IGNORECASE)
# The value may be quoted (XenForo writes [url="..."]); the quotes are not part of the URL.
_BBCODE_URL = re.compile(r"""\[url=\s*["']?([^\[\]\s"']+)["']?\s*\]""", re.IGNORECASE)
_BBCODE_TAG = re.compile(r"\[/?(?:url|b|i|u|img|link)(?:=[^\[\]]*)?\]", re.IGNORECASE)

# Obfuscations of the scheme and of the dot before a domain's last label.
_HXXP = re.compile(r"\bh(?:xx|\*\*|tt)p(s?)\s*(?::|\[:\])\s*/\s*/", re.IGNORECASE)
#: Common top-level domains, to recognise bare domains ("cheap-pills.xyz")
#: where a full list of TLDs would turn ordinary text into links.
COMMON_TLDS: frozenset[str] = frozenset(
    """com net org info biz io co me ru cn de uk fr es it nl pl br in us tk ml ga cf gq xyz top
    club online site store shop live life pro vip win bid loan work click link icu buzz today
    fun space website tech app dev ly gl gd be to cc tv ws su ua kz pw am mobi name asia eu
    ca au jp kr id vn ph pk ng za mx ar cl tr ir gr pt se no fi dk ch at cz sk hu ro bg hr rs
    sbs cfd cyou bond quest monster xin kim gdn ltd cam bet casino pharmacy racing cricket
    accountant makeup""".split()
)
#: TLDs that are also everyday words ("great.me", "works.It"): a bare "word.me" is
#: not taken for a link, though "http://x.me" and "www.x.me" still are.
_WORDLIKE_TLDS = frozenset("me to be in it am no us id at is so do my go on an as or up we he".split())
_BARE_TLDS = "|".join(sorted(COMMON_TLDS - _WORDLIKE_TLDS, key=len, reverse=True))
#: TLDs a bare domain in capitals may end with: none of them an English word.
_CAPITAL_TLDS = "COM|NET|ORG|INFO|BIZ|XYZ|RU"
#: TLDs no sentence ends a clause with, so "example ,com" or "example dot com" is a link.
#: An ordinary comma ("Great article, top notch", "Thanks, net result") is not an
#: obfuscated dot, nor is an article before the TLD ("the dot com bubble", "a .com").
_SPLIT_TLDS = "com|net|org|ru|xyz|biz|top"
_DOT_WORD = re.compile(
    rf"(?<!\s)\s*(?:\[\s*(?:dot|\.)\s*\]|\(\s*(?:dot|\.)\s*\)|\{{\s*dot\s*\}})\s*"
    rf"|(?<!\s)(?<!\bthe)(?<!\ba)(?<!\ban)\s+dot\s+(?=(?:{_BARE_TLDS})\b)",
    re.IGNORECASE,
)
_SPLIT_DOMAIN = re.compile(
    rf"\b(?!(?:the|an?)\b)([a-z0-9][a-z0-9-]{{1,62}})(?:\s+[.,]\s*|,)({_SPLIT_TLDS})\b", re.IGNORECASE
)
#: What every _SPLIT_DOMAIN match ends with. Searched first: most texts hold a comma or a
#: dot but no split TLD, and _SPLIT_DOMAIN tries every length of every word before failing.
_SPLIT_DOMAIN_END = re.compile(rf"(?:\s[.,]\s*|,)(?:{_SPLIT_TLDS})\b", re.IGNORECASE)
#: A link whose host is written with a space after each dot ("http://doit. mymoby. tv/",
#: "www.bangb. tv"), which a link filter that wants ``a.b`` does not see. Only after a scheme or
#: ``www.`` and a host of one label (so "www.example.com. then" keeps its real host), and only
#: lowercase labels after a gap (a capital after ". " starts a sentence).
_SPACED_HOST = re.compile(r"((?i:https?://(?:www\.)?|www\.)[A-Za-z0-9-]+)((?:\.[ \t][a-z0-9][a-z0-9-]*)+)")
_DOT_GAP = re.compile(r"\.[ \t]")
# Bare domains need a lowercase TLD ("works.It" is a typo, not a link).
_URL = re.compile(
    r"""(?i:(?:https?://|www\.)[^\s<>"'()\[\]{}]+)"""
    rf"""|(?i:\b(?:[a-z0-9](?:[a-z0-9-]{{0,62}}[a-z0-9])?\.){{1,16}})(?:{_BARE_TLDS})\b(?:/[^\s<>"'()]*)?"""
    r"""|\b(?:t\.me|wa\.me|is\.gd|x\.co|u\.to)/[^\s<>"'()]+"""
    # A bare domain in capitals, TLD included ("CHEAP-PILLS.COM"), on TLDs that are no words:
    # "I READ IT TWICE.SHOP OWNERS" and "NICE WORK.PRO TIP" are sentences without a space.
    rf"""|\b(?:[A-Z0-9](?:[A-Z0-9-]{{0,62}}[A-Z0-9])?\.){{1,16}}(?:{_CAPITAL_TLDS})\b(?:/[^\s<>"'()]*)?"""
)
#: What every match of ``_URL`` contains: ``://``, ``www.``, or a letter or digit, a dot and a
#: lowercase letter (``t.me``, a bare domain's ``e.com``: their TLDs are matched case-sensitively;
#: the same letter class and flags as ``_URL`` before the dot), or the same in capitals; a
#: capital after a lowercase dot ("end.Next") passes too, and ``_URL`` then finds nothing. Most
#: comments have none of them, and this scan costs a fraction of ``_URL``'s.
_URL_HINT = re.compile(r"://|(?i:www\.)|[A-Za-z0-9]\.[A-Za-z]")
_EMAIL = re.compile(r"\b[\w.+-]{1,64}@([a-z0-9-]+(?:\.[a-z0-9-]+)+)\b", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?)]}'\""
#: One to three words said three or more times in a row (a backreference: slow, run rarely).
_REPEATED = re.compile(r"\b(\w+(?:\W+\w+){0,2}?)(?:\W+\1\b){2,}")
_OTHER_SCHEME = re.compile(r"(?:mailto|tel|sms|callto|javascript|data|file|ftp|news|irc|skype|whatsapp):",
                           re.IGNORECASE)
#: An IPv4 address in any form a browser takes: dotted decimal, one number, hex or octal parts.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}")
_DOTTED_QUAD = re.compile(r"(?:[1-9]?[0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])(?:\.(?:[1-9]?[0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])){3}")

#: URL shortener and redirect services: a link through one hides its target.
SHORTENERS: frozenset[str] = frozenset(
    """bit.ly bitly.com tinyurl.com t.co goo.gl is.gd cutt.ly rb.gy ow.ly buff.ly shorturl.at
    tiny.cc v.gd t.ly rebrand.ly s.id bl.ink short.io lnkd.in adf.ly bc.vc shorte.st ouo.io
    soo.gd qr.ae x.co po.st su.pr tr.im u.to clck.ru linktr.ee t.me wa.me""".split()
)


#: Second-level labels under which a country's registrable domains sit ("example.co.uk").
_SECOND_LEVEL = frozenset("co com net org gov edu ac or ne go gob mil nic ltd plc".split())
#: A referral, invite or affiliate code in a link's path or query: "?ref=abc", "/invite/x1",
#: "/share/url/505b" — a link that pays its poster for every click.
_REFERRAL = re.compile(
    r"(?:^|[/?&#])(?:ref|refer|referr?al|refid|ref_id|aff|aff_id|affiliate|affid|invite|invitation|"
    r"promo|promocode|coupon|share|partner|sponsor|r)(?:[=/_-]|$)",
    re.IGNORECASE,
)


def registrable_domain(host: str) -> str:
    """The last two labels of a host, or three under a country's second level (``co.uk``)."""
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


@dataclass(frozen=True)
class Link:
    """One link found in a text: its host (``www.`` removed), top-level domain and how it was written."""

    url: str
    host: str
    tld: str
    obfuscated: bool = False

    @property
    def is_shortener(self) -> bool:
        return self.host in SHORTENERS or self.domain in SHORTENERS

    @property
    def domain(self) -> str:
        """The registrable domain (``m.shop.example.co.uk`` → ``example.co.uk``), so that
        every subdomain of one site counts as that site."""
        return registrable_domain(self.host)

    @property
    def is_referral(self) -> bool:
        """Whether the link's path or query carries a referral, invite or affiliate code."""
        return bool(_REFERRAL.search(self.url.split("//", 1)[-1].partition("/")[2]))


@dataclass(frozen=True)
class NormalizedText:
    """A comment's text after normalisation, with the links and e-mail domains pulled out.

    ``text`` keeps the words, with every link replaced by the placeholder word
    ``xxurl`` and every e-mail address by ``xxemail``, so that word and
    character n-grams learn "there is a link here" rather than the spelling of
    each URL; the links themselves become metadata features.
    """

    text: str
    links: tuple[Link, ...] = field(default_factory=tuple)
    email_domains: tuple[str, ...] = field(default_factory=tuple)
    #: Disguised letters were read as plain ones (``саsinо``, ``ᴄᴀsɪɴᴏ``, ``c̶a̶s̶i̶n̶o̶``;
    #: :mod:`model.disguises`).
    disguised_letters: bool = False


def clean_text(raw: str) -> str:
    """Entities decoded, invisible characters removed, compatibility forms folded (NFKC), and
    disguised letters read as plain ones (:mod:`model.disguises`).

    Tags are not touched; see :func:`normalize` for the full treatment.
    """
    return _clean(raw)[0]


def _clean(raw: str) -> tuple[str, bool]:
    """:func:`clean_text`, and whether letters were disguised (:mod:`model.disguises`)."""
    text = raw
    for _ in range(2):  # double-encoded entities ("&amp;#39;") are common in exports
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    if not text.isascii():  # most comments are ASCII, which is NFKC-stable and holds no invisible character
        text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    text, disguised = undisguise(text)
    if "\u3002" in text:  # an ideographic full stop between Latin letters (undisguised) is a dot in a host
        text = _IDEOGRAPHIC_DOT.sub(".", text)
    return text, disguised


def normalize(raw: str) -> NormalizedText:
    """Normalise a comment's text and extract its links and e-mail domains."""
    text, disguised = _clean(raw)
    hrefs = [h for h in _HREF.findall(text)] + _BBCODE_URL.findall(text)
    text = _TAG.sub(" ", text)
    text = _BBCODE_TAG.sub(" ", text)
    text, obfuscated = _deobfuscate(text)

    email_domains: list[str] = []

    def _email(match: re.Match[str]) -> str:
        # "http://google.com@evil.example/" is a link to evil.example whose user name looks
        # like a host, not an e-mail address: the URL pattern below takes it whole.
        # (At most 2 KiB back, so that a body of thousands of addresses stays linear.)
        before = text[max(0, match.start() - 2048):match.start()]
        if before and not before[-1].isspace() and "://" in before.rsplit(None, 1)[-1]:
            return match.group(0)
        if before.endswith("@"):
            # "@alice@fosstodon.org" is an account on a federated network (a reply from Mastodon,
            # a webmention), not an address to write to: it had counted as "an e-mail address in
            # the text", which spam's contact lines weigh.
            return " xxhandle "
        email_domains.append(match.group(1).lower())
        return " xxemail "

    if "@" in text:  # the cheap test skips a regex scan of every comment without one
        text = _EMAIL.sub(_email, text)
    links: list[Link] = []
    seen: set[str] = set()

    def _link(match: re.Match[str]) -> str:
        url = match.group(0).rstrip(_TRAILING_PUNCT)
        link = parse_link(url, obfuscated=obfuscated)
        if link is not None:
            links.append(link)
            seen.add(link.url.lower())
        return " xxurl " + match.group(0)[len(url):]

    if _URL_HINT.search(text):
        text = _URL.sub(_link, text)
    for href in hrefs:  # anchors whose text did not repeat the URL still count as links
        link = parse_link(href)
        if link is not None and link.url.lower() not in seen:
            links.append(link)
            seen.add(link.url.lower())
    # Spam's words spelt with digits, symbols, accents or other alphabets ("v1agra", "vïágra"):
    # after the links and addresses are placeholders, so that none of theirs is read as a word.
    text, keyword_disguised = read_keywords(text)
    words = text.split()
    text = " ".join(words)  # runs of whitespace to one space, none at the ends (as \s+ and strip())
    # Filler repeated to drown the rest ("the the the ..." thirty times took spam to ham): a word
    # or phrase said three or more times in a row is kept twice. (Not a feature of its own:
    # "cool cool cool cool" is how people cheer too.) The pattern costs ~60 us a comment, so
    # it runs only where at most half the words are distinct (few comments).
    if len(words) >= 6 and 2 * len(set(words)) <= len(words):
        text = _REPEATED.sub(r"\1 \1", text)
    return NormalizedText(text=text, links=tuple(links), email_domains=tuple(email_domains),
                          disguised_letters=disguised or keyword_disguised)


def parse_link(url: str, *, obfuscated: bool = False) -> Link | None:
    """A :class:`Link` for a URL or bare domain, or ``None`` when it has no usable host."""
    candidate = url.strip()
    if _OTHER_SCHEME.match(candidate):  # mailto:, tel:, javascript: ... (an href can be any of them)
        return None
    schemed = re.match(r"^[a-z][a-z0-9+.-]*://", candidate, re.IGNORECASE) is not None
    if candidate.startswith("//"):  # protocol-relative, as in <a href="//example.com/">
        candidate, schemed = "http:" + candidate, True
    elif not schemed:
        candidate = "http://" + candidate
    try:
        parts = urlsplit(candidate)
        host = (parts.hostname or "").lower().strip(".")
    except ValueError:
        return None
    numeric = _NUMERIC_HOST.fullmatch(host) is not None
    # A host without a dot is a link only as an address written as one number after a scheme
    # ("http://3405803853/"); a bare number is a number.
    if not host or ("." not in host and not (numeric and schemed)):
        return None
    if host.startswith("www."):
        host = host[4:]
    # Disguises a reader does not see through: a user name that looks like a host
    # ("http://google.com@evil.example/"), an address written as one number or in hex.
    user, at, _ = parts.netloc.rpartition("@")
    if (at and "." in user) or (numeric and not _DOTTED_QUAD.fullmatch(host)):
        obfuscated = True
    return Link(url=url, host=host, tld="ip" if numeric else host.rsplit(".", 1)[-1], obfuscated=obfuscated)


def link_of_author_url(url: str) -> Link | None:
    """The link in a ``comment_author_url`` field (a bare domain or a full URL)."""
    cleaned = clean_text(url).strip()
    cleaned, obfuscated = _deobfuscate(cleaned)
    return parse_link(cleaned.replace(" ", ""), obfuscated=obfuscated) if cleaned else None


def _deobfuscate(text: str) -> tuple[str, bool]:
    """Rewrite ``hxxp://``, ``[dot]``, ``example ,com`` and ``http://a. b. tv`` into plain URL syntax."""
    # Each rewrite needs a character the cheap ``in`` tests look for; most
    # comments have none of them, and these scans dominate normalisation time.
    disguised: list[bool] = []
    if ":" in text:
        text = _HXXP.sub(lambda m: _plain_scheme(m, disguised), text)
    original = text
    if "[" in text or "(" in text or "{" in text or "dot" in text.lower():
        text = _DOT_WORD.sub(".", text)
    if ("," in text or "." in text) and _SPLIT_DOMAIN_END.search(text):
        text = _SPLIT_DOMAIN.sub(_join_split_domain, text)
    if ". " in text or ".\t" in text:
        text = _SPACED_HOST.sub(_join_spaced_host, text)
    return text, any(disguised) or text != original


def _plain_scheme(match: re.Match[str], disguised: list[bool]) -> str:
    """``http://`` or ``https://`` for a scheme match; notes whether it was disguised.

    ``Http://`` (a phone keyboard's capital) or ``HTTPS://`` is written in lower case but is
    no disguise; ``hxxp://``, ``h**p://``, ``http [:] //`` and ``http : //`` are.
    """
    plain = f"http{match.group(1).lower()}://"
    disguised.append(match.group(0).lower() != plain)
    return plain


def _join_split_domain(match: re.Match[str]) -> str:
    return f"{match.group(1)}.{match.group(2)}"


def _join_spaced_host(match: re.Match[str]) -> str:
    return match.group(1) + _DOT_GAP.sub(".", match.group(2))
