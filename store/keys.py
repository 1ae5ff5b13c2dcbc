"""Sites, API keys and usage counters.

A key is 12 lowercase hex characters (what Akismet clients accept), shown to the
operator once by :meth:`KeysMixin.create_key`; only its HMAC under the server
secret is stored, with the last two characters as a hint.
"""
from __future__ import annotations

import hmac
import re
import secrets
from typing import Any, Optional

from store.base import StoreBase
from store.db import Tx
from store.errors import InvalidRecordError, StoreError
from store.records import (DEFAULT_SITE_SETTINGS, SITE_MODES, USAGE_COUNTERS, KeyInfo, SiteInfo, SiteSettings, as_utc,
                           check_month, utcnow)

KEY_PATTERN = re.compile(r"[0-9a-f]{12}")

#: A site's verdict settings (migration 7), read with every key so that a check needs no other query.
_SITE_SETTINGS_COLUMNS = "s.mode, s.threshold_unsure, s.threshold_spam, s.threshold_discard"

_KEY_SELECT = f"""
    SELECT k.id, k.site_id, s.url AS site_url, k.label, k.created, k.revoked_at, k.hint, k.digest,
           {_SITE_SETTINGS_COLUMNS}
    FROM api_keys k JOIN sites s ON s.id = k.site_id"""

_SITE_SELECT = f"SELECT s.id, s.url, s.created, {_SITE_SETTINGS_COLUMNS} FROM sites s"

_UPSERT_USAGE = (
    f"INSERT INTO key_usage (key_id, month, {', '.join(USAGE_COUNTERS)}) "
    f"VALUES (?, ?, {', '.join('?' for _ in USAGE_COUNTERS)}) "
    "ON CONFLICT (key_id, month) DO UPDATE SET "
    + ", ".join(f"{c} = key_usage.{c} + excluded.{c}" for c in USAGE_COUNTERS)
)


_UPSERT_BLOG_USAGE = (
    f"INSERT INTO blog_usage (key_id, month, blog, {', '.join(USAGE_COUNTERS)}) "
    f"VALUES (?, ?, ?, {', '.join('?' for _ in USAGE_COUNTERS)}) "
    "ON CONFLICT (key_id, month, blog) DO UPDATE SET "
    + ", ".join(f"{c} = blog_usage.{c} + excluded.{c}" for c in USAGE_COUNTERS)
)

#: The longest ``blog`` value counted as it is sent; longer ones are cut (the value is the
#: client's, and one row is kept per distinct value).
MAX_BLOG_CHARS = 255


def normalise_site_url(url: str) -> str:
    """The form a site URL is stored and counted under: trimmed, without a trailing slash.

    Case is kept: sites stored by earlier releases kept it, and lowering it now would split
    such a site in two (its old rows under ``https://Blog.Example``, new ones under another).
    """
    return url.strip().rstrip("/")


def _fold_site_url(url: str) -> str:
    """A site URL with its scheme and host in ASCII lower case, the rest as it is: the form under
    which two URLs name one site. Paths keep their case (``/~Bob`` and ``/~bob`` are two
    sites on one host), and only ASCII letters are folded, as databases' LOWER() disagree
    beyond them (``BÜCHER``)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return (scheme + sep + host).translate(_ASCII_LOWER) + slash + path


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def check_site_url(url: str) -> str:
    """A key's site URL, normalised; InvalidRecordError unless it is an http(s) URL with a host."""
    normalised = normalise_site_url(url)
    if not normalised:
        raise InvalidRecordError("a key needs a site URL")
    if any(ch.isspace() or not ch.isprintable() for ch in normalised) or len(normalised) > MAX_BLOG_CHARS:
        raise InvalidRecordError(f"a site URL has no spaces or control characters and at most "
                                 f"{MAX_BLOG_CHARS} characters, got {normalised[:80]!r}")
    scheme, _, rest = normalised.partition("://")
    if scheme.lower() not in ("http", "https") or not rest.split("/", 1)[0]:
        raise InvalidRecordError(f"a site URL is http:// or https:// and a host, like https://blog.example, "
                                 f"got {normalised[:80]!r}")
    return normalised


def normalise_blog(blog: str) -> str:
    """The form a call's ``blog`` is counted under: as a site URL, at most :data:`MAX_BLOG_CHARS`."""
    return normalise_site_url(blog)[:MAX_BLOG_CHARS]


def _float_or_none(value: Any) -> Optional[float]:
    return float(value) if value is not None else None


def _site_settings(row: dict[str, Any]) -> SiteSettings:
    settings = SiteSettings(mode=row["mode"], threshold_unsure=_float_or_none(row["threshold_unsure"]),
                            threshold_spam=_float_or_none(row["threshold_spam"]),
                            threshold_discard=_float_or_none(row["threshold_discard"]))
    return DEFAULT_SITE_SETTINGS if settings.is_default else settings  # most sites: one shared object


def _site_info(row: dict[str, Any]) -> SiteInfo:
    return SiteInfo(int(row["id"]), row["url"], as_utc(row["created"]), _site_settings(row))


def check_site_settings(settings: SiteSettings) -> SiteSettings:
    """``settings`` if they can be stored; InvalidRecordError naming the field otherwise.

    Checked here: the mode, each threshold in 0..1, and the site's own thresholds in order. Their
    order with the global overrides and the model's thresholds is the caller's to check (the
    command line does; the service falls back to the global settings when it breaks).
    """
    if settings.mode is not None and settings.mode not in SITE_MODES:
        raise InvalidRecordError(f"mode must be one of {', '.join(SITE_MODES)}, got {settings.mode!r}")
    for tier, value in settings.thresholds().items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise InvalidRecordError(f"threshold_{tier} must be a number between 0 and 1, got {value!r}")
    given = [(tier, v) for tier, v in settings.thresholds().items() if v is not None]
    for (low_tier, low), (high_tier, high) in zip(given, given[1:]):
        if low > high:
            raise InvalidRecordError(f"threshold_{high_tier} ({high}) must not be below threshold_{low_tier} ({low})")
    return settings


def _key_info(row: dict[str, Any]) -> KeyInfo:
    return KeyInfo(
        id=int(row["id"]),
        site_id=int(row["site_id"]),
        site_url=row["site_url"],
        label=row["label"],
        created=as_utc(row["created"]),
        revoked_at=as_utc(row["revoked_at"]) if row["revoked_at"] is not None else None,
        hint=row["hint"],
        site_settings=_site_settings(row),
    )


class KeysMixin(StoreBase):
    """Sites, API keys and their monthly usage."""

    def create_key(self, site_url: str, label: str = "") -> tuple[str, KeyInfo]:
        """Make a new key for a site (created if new); return the key, once, and its info."""
        url = check_site_url(site_url)
        key = secrets.token_hex(6)
        digest = self._privacy.key_digest(key)

        def work(tx: Tx) -> KeyInfo:
            now = utcnow()
            # A URL differing from a registered site's only in the case of its scheme and host is
            # that site (those ignore case): a rotated key typed `HTTPS://Blog.Example` made a
            # second site, which could not report the first one's checks and split its usage.
            folded = _fold_site_url(url)
            same = [row["url"] for row in tx.fetchall("SELECT id, url FROM sites ORDER BY id")
                    if _fold_site_url(row["url"]) == folded]
            site_url = url if url in same or not same else same[0]  # the oldest, when several are
            tx.execute("INSERT INTO sites (url, created) VALUES (?, ?) ON CONFLICT (url) DO NOTHING", (site_url, now))
            site = tx.fetchone("SELECT id FROM sites WHERE url = ?", (site_url,))
            if site is None:  # pragma: no cover - inserted or present just above
                raise StoreError(f"site {site_url!r} vanished while its key was created")
            key_id = tx.insert(
                "INSERT INTO api_keys (site_id, digest, hint, label, created) VALUES (?, ?, ?, ?, ?)",
                (site["id"], digest, key[-2:], label, now),
            )
            row = tx.fetchone(_KEY_SELECT + " WHERE k.id = ?", (key_id,))
            if row is None:  # pragma: no cover - inserted just above
                raise StoreError("a new key vanished inside its own transaction")
            return _key_info(row)

        return key, self._db.run(work)

    def authenticate(self, key: str) -> Optional[KeyInfo]:
        """The key's info if it is a live key; None for unknown, revoked or malformed keys."""
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            return None  # never reaches the database
        digest = self._privacy.key_digest(key)
        row = self._db.read(lambda tx: tx.fetchone(_KEY_SELECT + " WHERE k.digest = ?", (digest,)))
        if row is None or not hmac.compare_digest(row["digest"], digest) or row["revoked_at"] is not None:
            return None
        return _key_info(row)

    def get_key(self, key_id: int) -> Optional[KeyInfo]:
        """One key's info by id, revoked or not."""
        row = self._db.read(lambda tx: tx.fetchone(_KEY_SELECT + " WHERE k.id = ?", (key_id,)))
        return _key_info(row) if row is not None else None

    def list_keys(self, *, include_revoked: bool = True) -> list[KeyInfo]:
        """Every key, oldest first."""
        where = "" if include_revoked else " WHERE k.revoked_at IS NULL"
        rows = self._db.read(lambda tx: tx.fetchall(_KEY_SELECT + where + " ORDER BY k.id"))
        return [_key_info(r) for r in rows]

    def revoke_key(self, key_id: int) -> bool:
        """Revoke a key; False when there is no such key or it was already revoked."""
        changed = self._db.run(lambda tx: tx.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (utcnow(), key_id)))
        return changed == 1

    def list_sites(self) -> list[SiteInfo]:
        """Every site that has had a key, oldest first, with its verdict settings."""
        rows = self._db.read(lambda tx: tx.fetchall(_SITE_SELECT + " ORDER BY s.id"))
        return [_site_info(r) for r in rows]

    def find_site(self, url: str) -> Optional[SiteInfo]:
        """The registered site ``url`` names (as ``keys create`` matches it: trailing slash and the
        case of scheme and host aside); None when there is none, or ``url`` is no site URL."""
        if not isinstance(url, str):
            return None
        try:
            wanted = check_site_url(url)
        except InvalidRecordError:
            return None
        folded = _fold_site_url(wanted)
        matches = [s for s in self.list_sites() if _fold_site_url(s.url) == folded]
        exact = [s for s in matches if s.url == wanted]
        return (exact or matches or [None])[0]

    def set_site_settings(self, site_id: int, settings: SiteSettings) -> Optional[SiteInfo]:
        """Replace a site's verdict settings (``SiteSettings()`` clears them all); the site
        after the change, or None when there is no such site.

        Running workers apply the change within their key cache's 30 s (service.auth): the
        settings travel with each key's authentication.
        """
        check_site_settings(settings)
        values = (settings.mode, settings.threshold_unsure, settings.threshold_spam, settings.threshold_discard)

        def work(tx: Tx) -> Optional[dict[str, Any]]:
            tx.execute("UPDATE sites SET mode = ?, threshold_unsure = ?, threshold_spam = ?, threshold_discard = ? "
                       "WHERE id = ?", (*values, site_id))
            return tx.fetchone(_SITE_SELECT + " WHERE s.id = ?", (site_id,))

        row = self._db.run(work)
        return _site_info(row) if row is not None else None

    def count_usage(self, key_id: int, month: str, *, blog: str = "", **increments: int) -> None:
        """Add to a key's counters for a month (``api_calls=1, spam=1``…), in one transaction.

        With ``blog`` (the site the calls named), the same increments also count for that
        site of the key, which :meth:`key_blogs` reports.
        """
        check_month(month)
        unknown = set(increments) - set(USAGE_COUNTERS)
        if unknown:
            raise InvalidRecordError(f"unknown usage counters {sorted(unknown)}; known: {USAGE_COUNTERS}")
        if any(not isinstance(v, int) or v < 0 for v in increments.values()):
            raise InvalidRecordError("usage increments must be non-negative integers")
        if not any(increments.values()):
            return
        values = [int(increments.get(c, 0)) for c in USAGE_COUNTERS]
        site = normalise_blog(blog) if isinstance(blog, str) else ""

        def work(tx: Tx) -> None:
            tx.execute(_UPSERT_USAGE, (key_id, month, *values))
            if site:
                tx.execute(_UPSERT_BLOG_USAGE, (key_id, month, site, *values))

        self._db.run(work)

    def usage(self, key_id: int, month: str) -> dict[str, int]:
        """A key's counters for a month (zeros when nothing was counted)."""
        check_month(month)
        row = self._db.read(lambda tx: tx.fetchone(
            f"SELECT {', '.join(USAGE_COUNTERS)} FROM key_usage WHERE key_id = ? AND month = ?",
            (key_id, month)))
        return {c: int(row[c]) if row else 0 for c in USAGE_COUNTERS}

    def key_blogs(self, key_id: int, month: str) -> list[dict[str, Any]]:
        """One key's month per site its calls named (``blog``), as Akismet's key-sites reports it.

        Each item has ``site``, the five counters and ``is_revoked`` (the key's). What the
        key counted without a ``blog`` (or before sites were counted) is its registered
        site's. Busiest first.
        """
        check_month(month)
        key = self.get_key(key_id)
        if key is None:
            return []
        counters = ", ".join(USAGE_COUNTERS)

        def work(tx: Tx) -> tuple[Optional[dict[str, Any]], list[dict[str, Any]]]:
            total = tx.fetchone(f"SELECT {counters} FROM key_usage WHERE key_id = ? AND month = ?",
                                (key_id, month))
            blogs = tx.fetchall(f"SELECT blog, {counters} FROM blog_usage WHERE key_id = ? AND month = ?",
                                (key_id, month))
            return total, blogs

        total, blogs = self._db.read(work)
        sites: dict[str, dict[str, int]] = {}
        for row in blogs:
            sites[row["blog"]] = {c: int(row[c]) for c in USAGE_COUNTERS}
        rest = {c: (int(total[c]) if total else 0) - sum(s[c] for s in sites.values()) for c in USAGE_COUNTERS}
        if any(rest.values()) or not sites:
            own = sites.setdefault(key.site_url, dict.fromkeys(USAGE_COUNTERS, 0))
            for c in USAGE_COUNTERS:
                own[c] += max(rest[c], 0)
        rows = [{"site": site, **counts, "is_revoked": key.revoked_at is not None} for site, counts in sites.items()]
        rows.sort(key=lambda r: (-r["api_calls"], r["site"]))
        return rows

    def key_sites(self, month: str) -> list[dict[str, Any]]:
        """Per registered site, the month's counters summed over its keys (``keys usage``).

        Each item has ``site``, ``site_id``, the five counters, and ``is_revoked``
        (the site has no live key left). Sites are ordered by API calls, busiest first.
        """
        check_month(month)
        sums = ", ".join(f"COALESCE(SUM(u.{c}), 0) AS {c}" for c in USAGE_COUNTERS)
        live = "SUM(CASE WHEN k.revoked_at IS NULL THEN 1 ELSE 0 END)"
        sql = f"""
            SELECT s.id AS site_id, s.url AS site, {sums}, {live} AS live_keys
            FROM sites s JOIN api_keys k ON k.site_id = s.id
            LEFT JOIN key_usage u ON u.key_id = k.id AND u.month = ?
            GROUP BY s.id, s.url
            ORDER BY 3 DESC, s.url"""
        params = [month]
        rows = self._db.read(lambda tx: tx.fetchall(sql, params))
        return [
            {"site": r["site"], "site_id": int(r["site_id"]),
             **{c: int(r[c]) for c in USAGE_COUNTERS}, "is_revoked": int(r["live_keys"]) == 0}
            for r in rows
        ]
