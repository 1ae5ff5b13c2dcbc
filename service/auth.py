"""API keys on every surface: where a request's key comes from, and the JSON API's 401.

Keys are 12 lowercase hex characters (what Akismet clients accept); the store
keeps only their keyed digests and compares in constant time
(:meth:`store.Store.authenticate`). Nothing here logs a key, a digest or a
key's hint: a log line names the key by its store id at most.

* Akismet: form field ``api_key``, then ``key``, then the first label of the
  ``Host`` header (``<key>.rest.example.org``), as ``AKISMET.md`` describes.
  A host label only counts when it is shaped like a key, so a plain host name
  (``localhost``, ``rest``) means "no key" rather than "wrong key".
* JSON API: ``Authorization: Bearer <key>``. Without a valid key the answer is
  401 in the one error shape with ``WWW-Authenticate: Bearer ...``. With
  ``allow_anonymous_json`` a request *without* a key is let through
  anonymously, but a wrong or revoked key is still refused: a typo must not
  quietly turn a site's calls anonymous.

A key's authentication result (live key, or unknown/revoked) is reused in the
process for :data:`KEY_CACHE_SECONDS` (:class:`KeyCache`, one per app), so a
check does not ask the database about its key every time: **revoking a key
takes effect within that many seconds** in every worker (at once for a worker
that has not seen the key lately). The answer carries the key's site's verdict settings
(``commentguard sites set``; :mod:`service.site_settings`), so a change to them applies
within the same seconds. The cache is keyed by a keyed BLAKE2b MAC of the
key under a random per-process secret, never by the key itself; store failures
are never cached.

**A store outage does not fail checks for keys a worker knows.** When the store
cannot answer, the last answer it gave for the key (live, or unknown/revoked) is
used for up to :data:`KEY_STALE_SECONDS` after the store last confirmed it, and the
store is asked again only every :data:`KEY_RETRY_SECONDS` for that key, so a
database that is down (or slow to refuse connections) is not waited on by every
request. Only a key the worker has not seen within that hour gets "temporarily
unavailable". The price: a key revoked during an outage keeps working until the
store answers again.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from typing import Any, Callable, Mapping, Optional

from flask import Flask, Response, current_app, g, request

from service.app import get_state
from service.errors import error_response
from service.metrics import count_auth_failure
from store import KeyInfo, StoreError

KEY_SHAPE = re.compile(r"[0-9a-f]{12}")
AKISMET_KEY_FIELDS: tuple[str, ...] = ("api_key", "key")
#: Where ``verify-key`` and ``get-subscription`` find the key they are asked about: ``key``
#: first. The WordPress plugin sends the key typed into its settings as ``key`` and adds the
#: key it is configured with as ``api_key``: checking ``api_key`` first answered "valid" for any
#: wrong key while a good one was configured, and "invalid" for a good new key replacing a
#: revoked one.
ASKED_KEY_FIELDS: tuple[str, ...] = ("key", "api_key")
REALM = "commentguard"
#: Seconds an authentication result is reused in-process: the most a revocation waits to apply.
KEY_CACHE_SECONDS = 30.0
#: Seconds after the store last confirmed a key's answer that the answer still serves while
#: the store cannot be reached.
KEY_STALE_SECONDS = 3600.0
#: Seconds between asking an unreachable store again about one key (meanwhile its stale answer serves).
KEY_RETRY_SECONDS = 5.0
#: Seconds a request waits for the store to confirm a key it has an answer for, before it
#: goes on with that answer (the lookup finishes in its own thread).
KEY_WAIT_SECONDS = 0.25
#: Seconds a request waits for the store to answer about a key it has no answer for; past
#: that, and for KEY_RETRY_SECONDS after, such requests are answered "temporarily unavailable"
#: at once: a store that hangs must not hold a thread per unknown key (random keys cost nothing).
KEY_MISS_WAIT_SECONDS = 1.0
#: Distinct keys remembered per app, live and unknown ones each (a table is emptied when full).
KEY_CACHE_SIZE = 10_000
KEY_CACHE_EXTENSION = "commentguard.key_cache"
_cache_lock = threading.Lock()
log = logging.getLogger(__name__)


class KeyCache:
    """Authentication results by keyed digest of the key, each fresh for ``ttl`` seconds.

    Thread-safe without a lock on the hot path: one dict read, and a dict write after a miss.
    Two threads missing on the same key at once both ask the store; both answers are right.
    When the store fails, an answer it confirmed within ``stale`` seconds is used instead,
    and asked about again after ``retry`` seconds; when it is slow, that answer is used after
    ``wait`` seconds (:meth:`get`).
    """

    def __init__(self, ttl: float = KEY_CACHE_SECONDS, size: int = KEY_CACHE_SIZE,
                 clock: Callable[[], float] = time.monotonic, stale: float = KEY_STALE_SECONDS,
                 retry: float = KEY_RETRY_SECONDS, wait: float = KEY_WAIT_SECONDS) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self.stale = stale
        self.retry = retry
        self.wait = wait
        self.miss_wait = KEY_MISS_WAIT_SECONDS
        #: Until when (clock) lookups of keys without an answer fail at once: the store hung on
        #: the last one.
        self._store_trouble_until = 0.0
        self._refresh_lock = threading.Lock()
        self._refreshing: set[bytes] = set()
        self._secret = secrets.token_bytes(32)
        #: digest -> (fresh until, confirmed by the store at, the answer), for live keys, and
        #: apart from them for unknown (or revoked) ones: a caller sending random keys fills
        #: only the second, so it cannot push the live keys' answers out, which a worker relies
        #: on while the store is down (it had emptied the one table at 10,000 keys).
        self._entries: dict[bytes, tuple[float, float, Optional[KeyInfo]]] = {}
        self._unknown: dict[bytes, tuple[float, float, Optional[KeyInfo]]] = {}

    def _digest(self, key: str) -> bytes:
        # Keyed BLAKE2b, a MAC in its own right: hashlib keeps the GIL for short inputs,
        # where the one-shot hmac.digest() releases it, and on a threaded worker each
        # request would then wait for the GIL to come back (~0.2 ms measured under load).
        return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), key=self._secret, digest_size=32).digest()

    def get(self, key: str, lookup: Callable[[str], Optional[KeyInfo]]) -> Optional[KeyInfo]:
        """The cached result for ``key`` if still fresh, else ``lookup(key)`` (remembered).

        When ``lookup`` raises :class:`store.StoreError`, an answer confirmed within
        ``stale`` seconds is returned (and used without asking for ``retry`` seconds);
        without one, the error propagates. Errors themselves are never remembered.

        A key with such an answer is looked up in a thread of its own, and the request
        waits for it ``wait`` seconds at most, then goes on with that answer: a store that
        hangs (locked, or a server that accepts and never answers) holds no check. One
        lookup per key at a time; meanwhile the others use the answer they have.
        """
        digest = self._digest(key)
        now = self.clock()
        hit = self._entries.get(digest) or self._unknown.get(digest)
        if hit is not None and now < hit[0]:
            return hit[2]
        if hit is not None and now - hit[1] <= self.stale:
            return self._refresh(key, digest, hit, lookup)
        if now < self._store_trouble_until:
            raise StoreError("the key store did not answer the last lookup; asking again shortly")
        return self._first_lookup(key, digest, lookup)

    def _first_lookup(self, key: str, digest: bytes, lookup: Callable[[str], Optional[KeyInfo]]) -> Optional[KeyInfo]:
        """``lookup(key)`` for a key without an answer to fall back on, waiting ``miss_wait``
        seconds at most. A store that hangs past that (a PostgreSQL server that
        accepts and never answers holds a connection attempt for its 5 s timeout), is left
        alone for ``retry`` seconds: a flood of made-up keys held every thread, and checks of
        known keys queued behind them although their answers were at hand."""
        done = threading.Event()
        outcome: list[Any] = []

        def ask() -> None:
            try:
                info = lookup(key)
                self._remember(digest, info)  # an answer that comes late serves the next request
                outcome.append(info)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=ask, name="commentguard-key-lookup", daemon=True).start()
        if not done.wait(self.miss_wait):
            self._store_trouble_until = self.clock() + self.retry
            raise StoreError("the key store is slow to answer")
        result = outcome[0]
        if isinstance(result, BaseException):  # a store that fails fast holds no thread: no pause
            raise result
        return result

    def _table(self, info: Optional[KeyInfo]) -> dict[bytes, tuple[float, float, Optional[KeyInfo]]]:
        return self._entries if info is not None else self._unknown

    def _remember(self, digest: bytes, info: Optional[KeyInfo]) -> None:
        if self.ttl > 0:
            table = self._table(info)
            if len(table) >= self.size:
                table.clear()
            # A key now known or unknown is forgotten in the other table (revoked, or created).
            (self._unknown if info is not None else self._entries).pop(digest, None)
            now = self.clock()
            table[digest] = (now + self.ttl, now, info)

    def _refresh(self, key: str, digest: bytes, hit: tuple[float, float, Optional[KeyInfo]],
                 lookup: Callable[[str], Optional[KeyInfo]]) -> Optional[KeyInfo]:
        with self._refresh_lock:
            if digest in self._refreshing:
                return hit[2]  # another thread is asking the store already
            self._refreshing.add(digest)
        # Until the lookup answers, or for ``retry`` seconds after it fails, the answer stands.
        self._table(hit[2])[digest] = (self.clock() + self.retry, hit[1], hit[2])
        done = threading.Event()
        answer: list[Optional[KeyInfo]] = []

        def ask() -> None:
            try:
                info = lookup(key)
                answer.append(info)
                self._remember(digest, info)
            except StoreError:
                pass  # the stale answer stands; asked again after ``retry`` seconds
            except Exception:  # noqa: BLE001 - a thread of its own: log, keep the answer
                log.exception("looking up a key failed")
            finally:
                with self._refresh_lock:
                    self._refreshing.discard(digest)
                done.set()

        threading.Thread(target=ask, name="commentguard-key-lookup", daemon=True).start()
        if done.wait(self.wait) and answer:
            return answer[0]
        return hit[2]

    def clear(self) -> None:
        """Forget every result (the next request of each key asks the store)."""
        self._entries.clear()
        self._unknown.clear()

    def __len__(self) -> int:
        return len(self._entries) + len(self._unknown)


def key_cache(app: Optional[Flask] = None) -> KeyCache:
    """The app's :class:`KeyCache` (created on first use)."""
    extensions = (app or current_app).extensions
    cache = extensions.get(KEY_CACHE_EXTENSION)
    if cache is None:
        with _cache_lock:
            cache = extensions.setdefault(KEY_CACHE_EXTENSION, KeyCache())
    return cache


def key_from_host(host: Optional[str]) -> str:
    """The first label of a ``Host`` header value, lowercased, when it looks like a key; else ``""``."""
    if not host:
        return ""
    name = host.strip()
    if name.startswith("["):  # an IPv6 literal carries no key
        return ""
    label = name.split(":", 1)[0].split(".", 1)[0].lower()
    return label if KEY_SHAPE.fullmatch(label) else ""


def akismet_key(fields: Mapping[str, str], host: Optional[str],
                order: tuple[str, ...] = AKISMET_KEY_FIELDS) -> str:
    """The key of an Akismet request: the fields in ``order`` (``api_key``, then ``key``), then
    the host name; ``""`` if none."""
    for name in order:
        value = (fields.get(name) or "").strip()
        if value:
            return value
    return key_from_host(host)


def bearer_key(authorization: Optional[str]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value; ``""`` if there is none."""
    if not authorization:
        return ""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate(key: str) -> Optional[KeyInfo]:
    """The live key's info, or ``None`` (no store, unknown, revoked or malformed key).

    A store failure raises :class:`store.StoreError`; callers answer it as
    "temporarily unavailable", never as "invalid key". A well-formed key's
    result comes from the app's :class:`KeyCache` for up to :data:`KEY_CACHE_SECONDS`.
    """
    store = get_state().store
    if store is None or not key:
        return None
    # Keys are hex, so case does not matter: the WordPress plugin keeps a key pasted in capitals,
    # and a Host label arrives lowercased anyway.
    key = key.lower()
    if not KEY_SHAPE.fullmatch(key):
        _refused_key()
        return None  # what the store answers, without filling the cache with junk
    info = key_cache().get(key, store.authenticate)
    if info is None:
        _refused_key()
    return info


#: Seconds between two log lines about refused keys (per worker): enough to see guessing.
REFUSED_KEY_LOG_SECONDS = 60.0
_refused = {"count": 0, "logged_at": 0.0}
_refused_lock = threading.Lock()


def _refused_key() -> None:
    """Count a refused key, and say how many there were at most once a minute (never which)."""
    count_auth_failure()
    now = time.monotonic()
    with _refused_lock:
        _refused["count"] += 1
        if now - _refused["logged_at"] < REFUSED_KEY_LOG_SECONDS:
            return
        count, _refused["count"], _refused["logged_at"] = _refused["count"], 0, now
    log.warning("%d requests with an unknown, revoked or malformed API key since the last such line", count)


def current_key() -> Optional[KeyInfo]:
    """The key the current request authenticated with (``None`` when anonymous)."""
    return g.get("commentguard_key")


def require_json_key() -> Optional[Response]:
    """``before_request`` hook of the JSON API: authenticate the Bearer key, or answer 401."""
    state = get_state()
    authorization = request.headers.get("Authorization")
    key = bearer_key(authorization)
    g.commentguard_key = None
    if not key and request.method == "OPTIONS":  # asked only without a key: the hot path skips it
        return None  # Flask answers it with the allowed methods; it reads and changes nothing
    if authorization is not None and not key:
        # A key sent in another form ("Authorization: <key>", "Token <key>") is a mistake to
        # report, not a reason to answer anonymously without the key's site and usage.
        response = error_response(401, "the Authorization header must be 'Bearer <key>'")
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", error="invalid_request"'
        return response
    if not key and state.settings.allow_anonymous_json:
        return None
    if state.store is None:
        return error_response(503, "the key store is not available", readiness="/readyz")
    try:
        info = authenticate(key)
    except StoreError:
        return error_response(503, "the key store is temporarily unavailable")
    if info is not None:
        g.commentguard_key = info
        return None
    if not key:
        response = error_response(401, "an API key is required: send 'Authorization: Bearer <key>'")
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
    else:
        response = error_response(401, "the API key is not valid (unknown or revoked)")
        response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", error="invalid_token"'
    return response


__all__ = ["AKISMET_KEY_FIELDS", "ASKED_KEY_FIELDS", "KEY_CACHE_SECONDS", "KEY_RETRY_SECONDS", "KEY_SHAPE", "KEY_STALE_SECONDS",
           "KeyCache", "akismet_key", "authenticate", "bearer_key", "current_key", "key_cache", "key_from_host",
           "require_json_key"]
