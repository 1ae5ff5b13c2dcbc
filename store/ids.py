"""Ids as 32 lowercase hex characters: random ones (request ids) and time-ordered ones (check ids).

:func:`random_id` gives version-4 UUIDs. :func:`time_ordered_id` gives version-7
UUIDs (RFC 9562): the Unix time in milliseconds, then 74 random bits. Check ids
are the check log's primary key, and a B-tree takes keys that arrive in order
at its right edge; random keys land on random pages, which the page cache holds
less and less of as the log grows (``python bench/check_log.py``: by 300,000
checks a row cost 2.3 times as much with uuid4 keys, and stayed flat with uuid7).

Drawn from ``os.urandom``, 256 at a time: every ``os.urandom`` call releases the
GIL for its system call, and on a threaded worker the request that made it then
waits for the GIL to come back, which cost ~25 µs per id under load; a batch pays
that once per 256 ids. A forked child drops the batch it inherited, so two
worker processes never hand out the same ids.
"""
from __future__ import annotations

import os
import threading
import time
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


def time_ordered_id() -> str:
    """A fresh uuid7 as 32 lowercase hex characters: Unix milliseconds, then 74 random bits.

    Ids from one process sort by the millisecond they were made in (within a millisecond,
    at random). The random bits are those of a :func:`random_id` after its first 48, whose
    version nibble is replaced: its variant bits are already RFC 9562's.
    """
    millis = time.time_ns() // 1_000_000
    return f"{millis & 0xFFFF_FFFF_FFFF:012x}7{_POOL.next()[13:]}"


def id_time(ordered_id: str) -> float:
    """When a :func:`time_ordered_id` was made, in Unix seconds (its first 48 bits, milliseconds)."""
    return int(ordered_id[:12], 16) / 1000.0


__all__ = ["id_time", "random_id", "time_ordered_id"]
