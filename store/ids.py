"""Random ids (check ids, request ids): version-4 UUIDs as 32 lowercase hex characters.

Drawn from ``os.urandom``, 256 at a time: every ``os.urandom`` call releases the
GIL for its system call, and on a threaded worker the request that made it then
waits for the GIL to come back, which cost ~25 µs per id under load; a batch pays
that once per 256 ids. A forked child drops the batch it inherited, so two
worker processes never hand out the same ids.
"""
from __future__ import annotations

import os
import threading
import uuid

BATCH = 256
_ID_BYTES = 16


class _IdPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[str] = []

    def next(self) -> str:
        with self._lock:
            if not self._ids:
                raw = os.urandom(_ID_BYTES * BATCH)
                self._ids = [uuid.UUID(bytes=raw[i:i + _ID_BYTES], version=4).hex
                             for i in range(0, len(raw), _ID_BYTES)]
            return self._ids.pop()

    def forget(self) -> None:
        self._lock = threading.Lock()  # the parent's lock may have been held at fork time
        self._ids = []


_POOL = _IdPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.forget)


def random_id() -> str:
    """A fresh uuid4 as 32 lowercase hex characters (122 random bits from the OS's CSPRNG)."""
    return _POOL.next()


__all__ = ["random_id"]
