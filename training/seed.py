"""The seed corpus: the project's own labelled comments, the data of the default model.

It lives beside this module as JSON Lines files in the generic training format
(see ``seed/DATASHEET.md`` for how it was written and what it covers).
"""
from __future__ import annotations

from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent / "seed"


def seed_files() -> list[Path]:
    """The seed corpus files, in a stable order."""
    return sorted(SEED_DIR.glob("*.jsonl"))
