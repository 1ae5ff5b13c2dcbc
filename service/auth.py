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
"""
from __future__ import annotations

import re
from typing import Mapping, Optional

from flask import Response, g, request

from service.app import get_state
from service.errors import error_response
from store import KeyInfo, StoreError

KEY_SHAPE = re.compile(r"[0-9a-f]{12}")
AKISMET_KEY_FIELDS: tuple[str, ...] = ("api_key", "key")
REALM = "commentguard"


def key_from_host(host: Optional[str]) -> str:
    """The first label of a ``Host`` header value, lowercased, when it looks like a key; else ``""``."""
    if not host:
        return ""
    name = host.strip()
    if name.startswith("["):  # an IPv6 literal carries no key
        return ""
    label = name.split(":", 1)[0].split(".", 1)[0].lower()
    return label if KEY_SHAPE.fullmatch(label) else ""


def akismet_key(fields: Mapping[str, str], host: Optional[str]) -> str:
    """The key of an Akismet request: ``api_key``, then ``key``, then the host name; ``""`` if none."""
    for name in AKISMET_KEY_FIELDS:
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
    "temporarily unavailable", never as "invalid key".
    """
    store = get_state().store
    if store is None or not key:
        return None
    return store.authenticate(key)


def current_key() -> Optional[KeyInfo]:
    """The key the current request authenticated with (``None`` when anonymous)."""
    return g.get("commentguard_key")


def require_json_key() -> Optional[Response]:
    """``before_request`` hook of the JSON API: authenticate the Bearer key, or answer 401."""
    state = get_state()
    key = bearer_key(request.headers.get("Authorization"))
    g.commentguard_key = None
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


__all__ = ["AKISMET_KEY_FIELDS", "KEY_SHAPE", "akismet_key", "authenticate", "bearer_key",
           "current_key", "key_from_host", "require_json_key"]
