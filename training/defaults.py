"""The default model: trained from the seed corpus the first time the service needs one.

Several instances may share one model path (compose, "Scaling out") and start together.
Each used to train into it directly: the last to finish overwrote the artifact the first had
already registered as the active model, and the registry named a version no disk held (a
probe of two instances on one database). Now one process at a time trains, under a lock
file beside the target, into a temporary directory that is renamed into place; whoever gets
the lock after it finds the artifact there and trains nothing.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

from model.artifact import METADATA_NAME
from training.train import train_model


def ensure_default_model(path: str | Path, *, quiet: bool = False) -> bool:
    """Train the default model into ``path`` unless an artifact is already there.

    Returns True when it trained one. Progress goes to standard error.
    """
    target = Path(path)
    if (target / METADATA_NAME).is_file():
        return False
    say: Callable[[str], None] = ((lambda _m: None) if quiet
                                  else (lambda m: print(f"[train] {m}", file=sys.stderr, flush=True)))
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.training.lock", "a+b") as lock:
        if not _try_lock(lock):
            say(f"another process is training the default model into {target}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / METADATA_NAME).is_file():
            return False  # trained by whoever held the lock
        say(f"no model at {target}: training the default model from the seed corpus")
        _train_into_place(target, say)
        return True


def _try_lock(lock: object) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[arg-type]
        return True
    except BlockingIOError:
        return False


def _train_into_place(target: Path, say: Callable[[str], None]) -> None:
    """Train into a temporary directory beside ``target`` and rename it into place.

    A reader never sees a directory without its metadata. Where the target cannot be replaced
    by a rename (an empty mount point), the artifact is written into it directly: its writer
    renames each file into place and the metadata last, so a reader still sees all or nothing.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.training-", dir=target.parent))
    try:
        train_model(tmp, progress=say)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # as a plain mkdir would make it (mkdtemp's is 0700)
        try:
            os.rename(tmp, target)  # replaces a missing or empty directory, atomically
            return
        except OSError:
            if not target.is_dir() or any(target.iterdir()):
                raise
        for name in sorted(os.listdir(tmp), key=lambda n: n == METADATA_NAME):  # metadata last
            part = target / f".{name}.part"
            shutil.copyfile(tmp / name, part)  # the mount point may be another file system
            os.replace(part, target / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
