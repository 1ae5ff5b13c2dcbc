"""A worker that runs out of file descriptors keeps serving (``service.gthread_worker``).

gunicorn's worker re-raises ``EMFILE`` from ``accept()``, and the worker process dies,
resetting every connection it held; ours leaves new connections waiting in the listener's
backlog until a descriptor is free.
"""
from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.conftest import auth_headers, start_live_server


def worker_pids(arbiter: int) -> set[int]:
    """The gunicorn arbiter's child processes (its workers)."""
    return {int(pid) for pid in Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()}


def test_running_out_of_file_descriptors_kills_no_worker(tmp_path: Path, model_dir: Path) -> None:
    server = start_live_server(tmp_path / "var", model_dir, open_files=128)
    try:
        deadline = time.monotonic() + 20
        while len(workers := worker_pids(server.proc.pid)) < 2:  # /readyz answers once one is up
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1)  # both booted
        port = urlsplit(server.base_url).port
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(400)]  # ~3x what fits
        time.sleep(2)
        for sock in idle:
            sock.close()
        # The connections that found no descriptor waited in the backlog, then were taken and
        # dropped as they closed; the workers are the same processes, and answer.
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.post(f"{server.base_url}/api/v1/check", json={"comment_content": "Nice post."},
                                      headers=auth_headers(server.key), timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert response.status_code == 200
        assert worker_pids(server.proc.pid) == workers
    finally:
        server.stop()
    log = (tmp_path / "var" / "server.log").read_text(errors="replace")
    assert "Exception in worker process" not in log
    assert "out of file descriptors" in log
