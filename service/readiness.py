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

The file also says since when the worker's check log has been failing to be written, if it has
(its recorder publishes each change, :mod:`service.check_log_health`), so that ``/readyz`` says
``degraded`` whichever worker answers it.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

from service.metrics import MULTIPROC_ENV
from service.processes import alive

PREFIX = "ready-"


def _directory() -> Optional[Path]:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def _path(directory: Path, pid: int) -> Path:
    return directory / f"{PREFIX}{pid}.json"


def publish_state(state: Any, readiness: Optional[tuple[bool, Optional[str]]] = None) -> None:
    """Publish a worker's :class:`service.app.ServiceState` readiness (its ``ready`` and reason,
    :func:`state_readiness`'s answer unless the caller has it already) and its check log's health."""
    ready, reason = readiness if readiness is not None else state_readiness(state)
    recorder = state.recorder
    health = recorder.health if recorder is not None else None
    publish(ready, reason, health.failing_since_wall if health is not None else None,
            health.last_error if health is not None and health.failing else None)


def state_readiness(state: Any) -> tuple[bool, Optional[str]]:
    """Whether a worker's state is ready, and why not: the state's own reason, or its SQLite file
    deleted or replaced under the running service (store.sqlite_file). One answer for every
    publisher (``/readyz``, the model watcher, the check-log writer), so none undoes another's."""
    store = state.store
    problem = store.database.file_problem() if store is not None else None
    if state.ready and problem is None:
        return True, None
    return False, state.not_ready_reason or problem or "no model"


def publish(ready: bool, reason: Optional[str], check_log_failing_since: Optional[float] = None,
            check_log_error: Optional[str] = None) -> None:
    """Write this worker's readiness (atomically) where the other workers read it."""
    directory = _directory()
    if directory is None or not directory.is_dir():
        return
    path = _path(directory, os.getpid())
    # Unique per writer: the recorder's thread and a request's /readyz may publish at once.
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
    data = {"ready": bool(ready), "reason": reason, "check_log_failing_since": check_log_failing_since,
            "check_log_error": check_log_error}
    try:
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # readiness is advisory across workers; this worker still answers for itself


def _others() -> Iterator[tuple[int, dict[str, Any]]]:
    """(pid, last word) of every other live worker."""
    directory = _directory()
    if directory is None or not directory.is_dir():
        return
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
        if isinstance(data, dict):
            yield pid, data


def others_not_ready() -> list[tuple[int, str]]:
    """(pid, reason) of every other live worker whose last word was "not ready"."""
    return sorted((pid, str(data.get("reason") or "not ready")) for pid, data in _others() if not data.get("ready"))


def others_check_log_failing() -> list[tuple[int, float, str]]:
    """(pid, failing since as Unix time, error) of every other live worker whose check log is failing."""
    found = []
    for pid, data in _others():
        since = data.get("check_log_failing_since")
        if isinstance(since, (int, float)):
            found.append((pid, float(since), str(data.get("check_log_error") or "")))
    return sorted(found)


def forget(pid: int) -> None:
    """Remove a dead worker's file (the gunicorn master calls this when a worker exits)."""
    directory = _directory()
    if directory is not None:
        _path(directory, pid).unlink(missing_ok=True)


__all__ = ["forget", "others_check_log_failing", "others_not_ready", "publish", "publish_state", "state_readiness"]
