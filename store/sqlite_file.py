"""Which SQLite file a connection pool has open, and whether it is still the one at its path.

A SQLite connection keeps the file it opened, not its name: when an operator deleted, moved or
replaced the database file under a running service (restoring a backup with ``mv``), every
pooled connection went on reading and writing the unlinked file, and every later check and key
was lost without a word (a probe: 604 of 747 checks never reached the moved file; a key made in
the new file got 401). :class:`SqliteFile` compares the path's ``st_dev``/``st_ino`` with the
file the pool opened (:class:`store.db.Database` asks before each write transaction and at most
once a second for reads: a ``stat``, never per check) and says what to do.

The ``-wal`` and ``-shm`` files beside the database are found by name, so a new file at the path
would share them with the old one: SQLite replays the ``-wal`` it finds into the file it opens,
and processes that still have the old file open go on using both. So a new file is opened only
once no process holds the old one's ``-shm`` (:meth:`SqliteFile.old_file_in_use`); SQLite never
checkpoints nor removes the ``-wal`` of a moved or deleted file, so the pool then removes the
leftover pair itself before it opens the new file (the old file itself put back keeps its own).
"""
from __future__ import annotations

import fcntl
import logging
import os
import struct
from enum import Enum
from typing import Optional

log = logging.getLogger(__name__)

#: Seconds between two looks at the path for reads (writes look every time: see the module doc).
FILE_CHECK_SECONDS = 1.0
#: SQLite's "dead man switch" byte in the -shm file: every process with the database open in WAL
#: mode holds a read lock on it (os_unix.c, UNIX_SHM_DMS = 120 + 8).
_SHM_DMS_BYTE = 128

Identity = tuple[int, int]


class Look(Enum):
    """What :meth:`SqliteFile.look` found at the path."""

    SAME = "same"        # the file the pool has open
    MISSING = "missing"  # nothing there (deleted or moved)
    OTHER = "other"      # another file (replaced, or back after being missing)


class SqliteFile:
    """The database file's path and the identity of the file the pool's connections have open."""

    def __init__(self, path: str) -> None:
        self.path = path
        #: (st_dev, st_ino) of the file the pooled connections have open; None while they have none.
        self.identity: Optional[Identity] = None
        #: The file the pool let go, and its -wal, held open so that its inode number cannot pass
        #: to a new -wal (see :meth:`old_file_in_use`); SQLite locks no -wal: closing it is harmless.
        self._gone: Optional[Identity] = None
        self._old_wal: Optional[tuple[int, Identity]] = None

    def stat(self) -> Optional[Identity]:
        """The identity of the file at the path now, or None when there is none."""
        return _identity(self.path)

    def look(self) -> tuple[Look, Optional[Identity]]:
        """Whether the path still names the pool's file; the identity found there."""
        found = self.stat()
        if found is None:
            return Look.MISSING, None
        return (Look.SAME if found == self.identity else Look.OTHER), found

    def let_go(self, remember_wal: bool = True) -> None:
        """The pool is closing its connections to its file: remember that file's -wal (unless the
        file was never used, and its -wal may be other processes' own)."""
        self._gone, self.identity = self.identity, None
        self._forget_wal()
        if remember_wal:
            try:
                fd = os.open(self.path + "-wal", os.O_RDONLY)
            except OSError:
                return
            st = os.fstat(fd)
            self._old_wal = fd, (st.st_dev, st.st_ino)

    def old_file_in_use(self, found: Identity) -> bool:
        """Whether another process may still have the old file open through the shared -wal,
        ``found`` being the file now at the path.

        It may while the old -wal is still at the path and a process holds the -shm's lock
        byte. SQLite neither checkpoints nor removes the -wal of a database file that was moved
        or deleted (pager.c, databaseIsUnmoved), so once no process holds it, it is a leftover:
        it is removed with the -shm, so that opening the new file does not replay the old one's
        pages into it. The old file itself put back (``found``) keeps its own.
        """
        if found == self._gone or self._old_wal is None or _identity(self.path + "-wal") != self._old_wal[1]:
            self._forget_wal()
            return False
        if _shm_held_by_another_process(self.path + "-shm"):
            return True
        log.warning("removing the old SQLite file's -wal and -shm at %s, which no process holds, "
                    "before opening the new file", self.path)
        for suffix in ("-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass
        self._forget_wal()
        return False

    def adopt(self, identity: Identity) -> None:
        """The pool now opens the file with ``identity``."""
        self.identity = identity
        self._forget_wal()

    def _forget_wal(self) -> None:
        if self._old_wal is not None:
            os.close(self._old_wal[0])
            self._old_wal = None


def _identity(path: str) -> Optional[Identity]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _shm_held_by_another_process(shm: str) -> bool:
    """Whether a process other than this one holds a lock on the -shm's lock byte.

    The descriptor opened here is closed at once, which drops this process's own POSIX locks on
    that file: it is only called when this pool has no connection left to it.
    """
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


__all__ = ["FILE_CHECK_SECONDS", "Look", "SqliteFile"]
