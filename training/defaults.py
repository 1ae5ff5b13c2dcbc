"""The default model: trained from the seed corpus the first time the service needs one."""
from __future__ import annotations

import sys
from pathlib import Path

from model.artifact import METADATA_NAME
from training.train import train_model


def ensure_default_model(path: str | Path, *, quiet: bool = False) -> bool:
    """Train the default model into ``path`` unless an artifact is already there.

    Returns True when it trained one. Progress goes to standard error.
    """
    target = Path(path)
    if (target / METADATA_NAME).is_file():
        return False
    say = (lambda _m: None) if quiet else (lambda m: print(f"[train] {m}", file=sys.stderr, flush=True))
    say(f"no model at {target}: training the default model from the seed corpus")
    train_model(target, progress=say)
    return True
