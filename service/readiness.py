"""Readiness across the server's worker processes, for ``GET /readyz``.

Each worker answers ``/readyz`` for itself, and with a socket per worker a probe lands on one
at random: when one worker had refused its model (or started during a database outage) while
the other served, ``/readyz`` flapped between 200 and 503 and an orchestrator kept the
instance in rotation while half its checks got 503 (found by a probe, 2026-11-27).

So each worker writes its own readiness to a small file in the server's metrics directory
(``ready-<pid>.json``, shared by the workers of one ``commentguard serve``, removed with it):
when its app is built, whenever its model watcher looks at the registry (every
``COMMENTGUARD_MODEL_CHECK_SECONDS``), and whenever it answers ``/readyz``. ``/readyz`` is 200
only when the worker answering is ready and no other live worker's file says it is not.
Outside gunicorn (tests, ``flask run``) there is no such directory and a worker speaks for
itself, as before.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from service.metrics import MULTIPROC_ENV
from service.processes import alive

PREFIX = "ready-"


def _directory() -> Optional[Path]:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def _path(directory: Path, pid: int) -> Path:
    return directory / f"{PREFIX}{pid}.json"


def publish_state(state: Any) -> None:
    """Publish a worker's :class:`service.app.ServiceState` readiness (its ``ready`` and reason)."""
    publish(state.ready, None if state.ready else state.not_ready_reason or "no model")


def publish(ready: bool, reason: Optional[str]) -> None:
    """Write this worker's readiness (atomically) where the other workers read it."""
    directory = _directory()
    if directory is None or not directory.is_dir():
        return
    path = _path(directory, os.getpid())
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps({"ready": bool(ready), "reason": reason}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # readiness is advisory across workers; this worker still answers for itself


def others_not_ready() -> list[tuple[int, str]]:
    """(pid, reason) of every other live worker whose last word was "not ready"."""
    directory = _directory()
    if directory is None or not directory.is_dir():
        return []
    found = []
    for path in directory.glob(f"{PREFIX}*.json"):
        try:
            pid = int(path.stem[len(PREFIX):])
        except ValueError:
            continue
        if pid == os.getpid() or not alive(pid):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being replaced this instant: its next word counts
        if not data.get("ready"):
            found.append((pid, str(data.get("reason") or "not ready")))
    return sorted(found)


def forget(pid: int) -> None:
    """Remove a dead worker's file (the gunicorn master calls this when a worker exits)."""
    directory = _directory()
    if directory is not None:
        _path(directory, pid).unlink(missing_ok=True)


__all__ = ["forget", "others_not_ready", "publish", "publish_state"]
