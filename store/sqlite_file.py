"""Whether the SQLite file a connection pool opened is still the one at its path.

A SQLite connection keeps the file it opened, not its name: when an operator deleted, moved or
replaced the database file under a running service (restoring a backup with ``mv``), every
pooled connection went on reading and writing the unlinked file, and every later check and key
was lost without a word (a probe: 604 of 747 checks never reached the moved file; a key made in
the new file got 401). :class:`SqliteFile` compares the path's ``st_dev``/``st_ino`` with the
file the pool opened (:class:`store.db.Database` asks before each write transaction and at most
once a second for reads: a ``stat``, never per check). The pool then stops using the file until
it is back, and a new file at the path is left to the next start: a first version opened a
restored file under the running service, and a probe corrupted databases that way (the
``-wal`` and ``-shm`` beside a file are found by name, so a new file shares them with the old
one while any process still has the old one open).

SQLite neither checkpoints nor removes the ``-wal`` of a file that was moved or deleted while it
was open: the last process to close the old file leaves it beside the path, and the next one to
open the file now there replays the old file's pages into it (a restored backup lost keys made
in it). So a pool closing after its file was replaced removes that leftover, when it is the
``-wal`` its own connections had open and no other process still holds the old file.
"""
from __future__ import annotations

import fcntl
import logging
import os
import struct
from enum import Enum
from typing import Optional

log = logging.getLogger(__name__)
#: SQLite's "dead man switch" byte in the -shm file: every process with the database open in WAL
#: mode holds a read lock on it (os_unix.c, UNIX_SHM_DMS = 120 + 8).
_SHM_DMS_BYTE = 128

#: Seconds between two looks at the path for reads (writes look every time).
FILE_CHECK_SECONDS = 1.0

Identity = tuple[int, int]


class Look(Enum):
    """What :meth:`SqliteFile.look` found at the path."""

    SAME = "same"        # the file the pool opened
    MISSING = "missing"  # nothing there (deleted or moved)
    OTHER = "other"      # another file (replaced)


class SqliteFile:
    """The database file's path and the identity of the file the pool opened."""

    def __init__(self, path: str) -> None:
        self.path = path
        #: (st_dev, st_ino) of the file at the path when the pool opened it.
        self.identity: Optional[Identity] = _identity(path)
        #: Where SQLite keeps its -wal and -shm: beside the file a symbolic link points to.
        self.real_path = os.path.realpath(path)

    def look(self) -> Look:
        """Whether the path still names the pool's file."""
        found = _identity(self.path)
        if found is None:
            return Look.MISSING
        return Look.SAME if found == self.identity else Look.OTHER


    def open_wal_files(self) -> set[Identity]:
        """The identities of the -wal files this process has open under the file's name (its
        connections'), read from /proc/self/fd; empty where there is no /proc."""
        wal, found = self.real_path + "-wal", set()
        try:
            fds = os.listdir("/proc/self/fd")
        except OSError:
            return found
        for fd in fds:
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target == wal or target == wal + " (deleted)":
                    st = os.fstat(int(fd))
                    found.add((st.st_dev, st.st_ino))
            except OSError:
                continue
        return found

    def remove_leftover_wal(self, ours: set[Identity]) -> None:
        """Remove the -wal (and -shm) beside the path if it is one of ``ours``, the old file's,
        and no other process still holds the old file (SQLite's lock byte in the -shm)."""
        wal, shm = self.real_path + "-wal", self.real_path + "-shm"
        if _identity(wal) not in ours or _shm_held_by_another_process(shm):
            return
        log.warning("removing the -wal and -shm the replaced SQLite database file left at %s", self.real_path)
        for leftover in (wal, shm):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass


def _shm_held_by_another_process(shm: str) -> bool:
    """Whether some process holds a lock on the -shm's lock byte (called once this process has
    closed its own connections: the descriptor opened here drops no lock of theirs)."""
    try:
        fd = os.open(shm, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_BYTE, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        return struct.unpack("hhqqi4x", answer)[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)


def _identity(path: str) -> Optional[Identity]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


__all__ = ["FILE_CHECK_SECONDS", "Look", "SqliteFile"]
