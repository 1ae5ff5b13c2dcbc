"""The check log's spool: what a stopping worker could not write to the store, kept on disk.

A worker that stops while the store is unreachable (PostgreSQL stopped before CommentGuard
by ``docker compose down``, a SQLite file locked past the graceful timeout) used to lose
every check it had answered but not yet written, without a word in the log (a probe: 3,903
checks answered, none stored). :class:`service.recorder.Recorder` now tries until its close
deadline and then writes what is left here: one JSON Lines file per stopping worker in
``<data_dir>/spool/``, readable by its owner only, with personal data already minimised as
the store keeps it (keyed hashes unless ``COMMENTGUARD_STORE_PERSONAL_DATA``). The next
worker to start claims each file by renaming it (so only one worker takes it), queues its
records ahead of new checks, and deletes it.
"""
from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from model.comment import Comment
from service.processes import alive
from store import CheckRecord

log = logging.getLogger(__name__)

SPOOL_DIR_NAME = "spool"
SUFFIX = ".jsonl"
#: Usage counters as the recorder queues them: (key id, month, blog) -> counts.
Usage = Mapping[tuple[int, str, str], Mapping[str, int]]


def check_to_json(record: CheckRecord, minimise: Callable[[Comment], Comment]) -> dict[str, Any]:
    """A spool line's object for ``record``: its fields, the comment as the store keeps it."""
    data = {f.name: getattr(record, f.name) for f in fields(CheckRecord)}
    data.update(created=record.created.isoformat(), score=float(record.score), reasons=list(record.reasons),
                comment=minimise(record.comment).to_dict())
    return {"check": data}


def check_from_json(data: Mapping[str, Any]) -> CheckRecord:
    fields = dict(data)
    fields["created"] = datetime.fromisoformat(fields["created"])
    fields["comment"] = Comment.from_mapping(fields["comment"])
    fields["reasons"] = tuple(fields.get("reasons") or ())
    return CheckRecord(**fields)


def write_spool(directory: Path, checks: Iterable[CheckRecord], usage: Usage,
                minimise: Callable[[Comment], Comment]) -> tuple[Path, int]:
    """Write ``checks`` and ``usage`` to a new spool file; (its path, the checks written)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"checks-{os.getpid()}-{datetime.now().strftime('%Y%m%dT%H%M%S%f')}{SUFFIX}"
    partial = path.with_suffix(".partial")
    written = 0
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for record in checks:
            out.write(json.dumps(check_to_json(record, minimise), ensure_ascii=False) + "\n")
            written += 1
        for (key_id, month, blog), counts in usage.items():
            out.write(json.dumps({"usage": {"key_id": key_id, "month": month, "blog": blog,
                                            "counts": dict(counts)}}) + "\n")
        out.flush()
        os.fsync(out.fileno())
    partial.rename(path)  # a file appears whole or not at all
    return path, written


CLAIMED = ".claimed-"
#: A spool file that could not be read is renamed so, for an operator to look at.
UNREADABLE_SUFFIX = ".unreadable"


def claim_spools(directory: Path) -> list[Path]:
    """Take the spool files waiting in ``directory`` (renamed to this process's own names),
    and those claimed by a process that died before it wrote them (it crashed reading one)."""
    if not directory.is_dir():
        return []
    waiting = sorted(directory.glob(f"*{SUFFIX}"))
    for path in directory.glob(f"*{SUFFIX}{CLAIMED}*"):
        pid = path.name.rsplit(CLAIMED, 1)[1]
        if pid.isdigit() and not alive(int(pid)):
            waiting.append(path)
    claimed = []
    for path in waiting:
        original = path.name.split(CLAIMED, 1)[0]
        mine = path.with_name(f"{original}{CLAIMED}{os.getpid()}")
        try:
            path.rename(mine)
        except OSError:
            continue  # another worker took it first
        claimed.append(mine)
    return claimed


def set_aside(path: Path) -> Path:
    """Rename a spool file that could not be read, so that it is neither retried nor lost."""
    aside = path.with_name(path.name.split(CLAIMED, 1)[0] + UNREADABLE_SUFFIX)
    try:
        path.rename(aside)
    except OSError:
        return path
    return aside



def read_spool(path: Path) -> tuple[list[CheckRecord], dict[tuple[int, str, str], Counter[str]]]:
    """The checks and usage counters in a claimed spool file (a line that does not parse is logged and skipped)."""
    checks: list[CheckRecord] = []
    usage: dict[tuple[int, str, str], Counter[str]] = {}
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                item = json.loads(raw.decode("utf-8"))
                if "check" in item:
                    checks.append(check_from_json(item["check"]))
                else:
                    u = item["usage"]
                    slot = (int(u["key_id"]), str(u["month"]), str(u["blog"]))
                    usage.setdefault(slot, Counter()).update({str(k): int(v) for k, v in u["counts"].items()})
            except (ValueError, KeyError, TypeError) as exc:
                log.error("spool %s line %d could not be read (%s); skipped", path.name, number,
                          type(exc).__name__)
    return checks, usage


def spool_dir(data_dir: Optional[Path]) -> Optional[Path]:
    return Path(data_dir) / SPOOL_DIR_NAME if data_dir is not None else None


__all__ = ["CLAIMED", "SPOOL_DIR_NAME", "UNREADABLE_SUFFIX", "set_aside", "check_from_json", "check_to_json", "claim_spools", "read_spool", "spool_dir",
           "write_spool"]
