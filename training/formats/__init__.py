"""The input formats the training loaders understand, by name.

Each format is a reader: a function from a path to a generator of
``(line, LabeledComment | RowProblem | SkippedRow)``. Adding a format means
adding a reader module and one entry here (and a rule in :mod:`.detect`).
"""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from training.formats.delimited import Rows, read_generic, read_sms, read_wordpress_csv, read_youtube
from training.formats.detect import detect_format
from training.formats.wxr import read_wordpress

#: Format name → reader (read-only: this is a table, not state).
READERS: Mapping[str, Callable[[Path], Rows]] = MappingProxyType(
    {
        "generic": read_generic,
        "youtube": read_youtube,
        "sms": read_sms,
        "wordpress": read_wordpress,
        "wordpress_csv": read_wordpress_csv,
    }
)

__all__ = ["READERS", "Rows", "detect_format"]
