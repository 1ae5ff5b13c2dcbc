"""``/readyz`` speaks for the whole server, not for whichever worker answers (service.readiness).

A probe broke the model files and killed one worker: its replacement refused the model while
the other worker served the one it had, and ``/readyz`` answered 200 or 503 at random while
half the checks got 503.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import httpx

from tests.conftest import start_live_server
from tests.test_moderator_loop import worker_pids


def readyz_answers(base_url: str, n: int = 12) -> list[int]:
    """Status codes of ``n`` probes, each on a new connection (so they spread over the workers)."""
    return [httpx.get(f"{base_url}/readyz", timeout=10).status_code for _ in range(n)]


def replace_a_worker(server, old: set[int]) -> set[int]:  # type: ignore[no-untyped-def]
    os.kill(next(iter(old)), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = worker_pids(server)
        if len(now) == len(old) and now != old:
            return now
        time.sleep(0.2)
    raise AssertionError("the killed worker was not replaced")


def test_one_worker_that_refused_its_model_makes_the_server_not_ready(tmp_path: Path, model_dir: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    server = start_live_server(tmp_path / "var", model, workers=2,
                               env={"COMMENTGUARD_MODEL_CHECK_SECONDS": "0"})
    try:
        assert set(readyz_answers(server.base_url)) == {200}
        good_tables = (model / "scoring.npz").read_bytes()
        (model / "scoring.npz").write_bytes(b"not the tables")
        pids = replace_a_worker(server, worker_pids(server))
        time.sleep(1.0)  # the replacement builds its app (and says it is not ready)
        answers = readyz_answers(server.base_url)
        assert set(answers) == {503}, answers
        body = httpx.get(f"{server.base_url}/readyz", timeout=10).json()
        assert body["error"] in ("not ready", "model not loaded") and body["reason"]
        # Mended files: the refusing worker tries again (hot reload is off here, and it used to
        # stay refused for good, the server 503 until restarted), and the server is ready.
        (model / "scoring.npz").write_bytes(good_tables)
        assert pids
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and set(readyz_answers(server.base_url, 4)) != {200}:
            time.sleep(0.5)
        assert set(readyz_answers(server.base_url)) == {200}
    finally:
        server.stop()
