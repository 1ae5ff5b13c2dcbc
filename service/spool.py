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
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from model.comment import Comment
from service.processes import alive
from store import CheckRecord

log = logging.getLogger(__name__)

SPOOL_DIR_NAME = "spool"
SUFFIX = ".jsonl"
#: A spool file being written; one whose writer died (killed mid-write) is read like the rest.
PARTIAL = ".partial"
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


@dataclass(frozen=True)
class Spooled:
    """What :func:`write_spool` kept: the file (None when not one line was), its checks and
    usage lines, and the error that cut it short (a full disk), if one did."""

    path: Optional[Path]
    checks: int
    usage: int
    error: Optional[OSError] = None


def write_spool(directory: Path, checks: Iterable[CheckRecord], usage: Usage,
                minimise: Callable[[Comment], Comment]) -> Spooled:
    """Write ``checks`` and ``usage`` to a new spool file, one line each.

    A write that fails (a full disk) ends it: the file is cut back to the complete lines
    before it and kept, for the next start to read, or removed when it has none. (It used to
    be all or nothing, and left a ``.partial`` file that no later start read or removed.)
    Raises OSError only when the file cannot be made at all.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"checks-{os.getpid()}-{datetime.now().strftime('%Y%m%dT%H%M%S%f')}{SUFFIX}"
    partial = path.with_suffix(PARTIAL)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    done = {"check": 0, "usage": 0}
    kept = 0  # bytes of complete lines in the file
    error: Optional[OSError] = None
    try:
        try:
            for kind, line in _lines(checks, usage, minimise):
                _write_all(fd, line)
                kept += len(line)
                done[kind] += 1
            os.fsync(fd)
        except OSError as exc:
            error = exc
            os.ftruncate(fd, kept)  # a line cut short would be read as a bad line
            try:
                os.fsync(fd)
            except OSError:
                pass  # what the disk kept is read line by line; a bad line is skipped
    finally:
        os.close(fd)
    if not kept:
        partial.unlink()
        return Spooled(None, 0, 0, error)
    partial.rename(path)  # the next start reads only whole files
    return Spooled(path, done["check"], done["usage"], error)


def _lines(checks: Iterable[CheckRecord], usage: Usage,
           minimise: Callable[[Comment], Comment]) -> Iterator[tuple[str, bytes]]:
    for record in checks:
        yield "check", (json.dumps(check_to_json(record, minimise), ensure_ascii=False) + "\n").encode("utf-8")
    for (key_id, month, blog), counts in usage.items():
        yield "usage", (json.dumps({"usage": {"key_id": key_id, "month": month, "blog": blog,
                                              "counts": dict(counts)}}) + "\n").encode("utf-8")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


CLAIMED = ".claimed-"
#: A spool file that could not be read is renamed so, for an operator to look at.
UNREADABLE_SUFFIX = ".unreadable"


def claim_spools(directory: Path) -> list[Path]:
    """Take the spool files waiting in ``directory`` (renamed to this process's own names),
    those claimed by a process that died before it wrote them (it crashed reading one), and
    those a process died writing (``checks-<pid>-….partial``: their complete lines count)."""
    if not directory.is_dir():
        return []
    waiting = sorted(directory.glob(f"*{SUFFIX}"))
    for path in directory.glob(f"*{PARTIAL}"):
        pid = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        if pid.isdigit() and not alive(int(pid)):
            waiting.append(path)
    for path in directory.glob(f"*{CLAIMED}*"):
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


__all__ = ["CLAIMED", "PARTIAL", "SPOOL_DIR_NAME", "UNREADABLE_SUFFIX", "Spooled", "set_aside", "check_from_json",
           "check_to_json", "claim_spools", "read_spool", "spool_dir", "write_spool"]
