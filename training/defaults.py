"""The default model: trained from the seed corpus the first time the service needs one.

Several instances may share one model path (compose, "Scaling out") and start together.
Each used to train into it directly: the last to finish overwrote the artifact the first had
already registered as the active model, and the registry named a version no disk held (a
probe of two instances on one database). Now one process at a time trains, under a lock
file; whoever gets the lock after it finds the artifact there and trains nothing.

Where it can, training goes into a temporary directory beside the target, renamed into place.
A target whose parent is read-only (a writable volume mounted in a read-only tree), or one that
already holds something (an ext4 mount point's ``lost+found``), is trained into directly, as
before: the artifact writer renames each file into place and the metadata last.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Callable

from model.artifact import METADATA_NAME
from training.train import train_model

LOCK_NAME = ".training.lock"
TEMP_PREFIX = ".training-"


def ensure_default_model(path: str | Path, *, quiet: bool = False) -> bool:
    """Train the default model into ``path`` unless an artifact is already there.

    Returns True when it trained one. Progress goes to standard error. Raises OSError when
    neither the target nor its parent can be written.
    """
    target = Path(path)
    if (target / METADATA_NAME).is_file():
        return False
    say: Callable[[str], None] = ((lambda _m: None) if quiet
                                  else (lambda m: print(f"[train] {m}", file=sys.stderr, flush=True)))
    beside = _writable(target.parent)
    if not beside:
        target.mkdir(exist_ok=True)  # raises when neither is writable: nothing can be trained
    with _open_lock(target, beside) as lock:
        if not _try_lock(lock):
            say(f"another process is training the default model into {target}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / METADATA_NAME).is_file():
            return False  # trained by whoever held the lock
        if beside:
            _remove_leftovers(target)
        say(f"no model at {target}: training the default model from the seed corpus")
        if beside and (not target.exists() or _is_empty_dir(target)):
            _train_and_rename(target, say)
        else:
            train_model(target, progress=say)
        return True


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def _open_lock(target: Path, beside: bool) -> IO[bytes]:
    """The lock file: beside the target, or inside it when its parent cannot be written."""
    if beside:
        return open(target.parent / f".{target.name}{LOCK_NAME}", "a+b")
    return open(target / LOCK_NAME, "a+b")


def _try_lock(lock: IO[bytes]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _remove_leftovers(target: Path) -> None:
    """Temporary directories of runs that were killed (only the lock holder trains, so none is live)."""
    for leftover in target.parent.glob(f".{target.name}{TEMP_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _train_and_rename(target: Path, say: Callable[[str], None]) -> None:
    """Train into a temporary directory beside ``target`` and rename it into place.

    A reader never sees a directory without its metadata. Where the target cannot be replaced
    by a rename (an empty mount point), the files are copied into it, the metadata last.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TEMP_PREFIX}", dir=target.parent))
    try:
        train_model(tmp, progress=say)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # as a plain mkdir would make it (mkdtemp's is 0700)
        try:
            os.rename(tmp, target)  # replaces a missing or empty directory, atomically
            return
        except OSError:
            if not _is_empty_dir(target):
                raise
        for name in sorted(os.listdir(tmp), key=lambda n: n == METADATA_NAME):  # metadata last
            part = target / f".{name}.part"
            shutil.copyfile(tmp / name, part)  # the mount point may be another file system
            os.replace(part, target / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
