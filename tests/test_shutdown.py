"""Graceful shutdown: SIGTERM while checks are in flight loses no answered check."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from store import open_store
from tests.conftest import TEST_SITE, start_live_server

pytestmark = pytest.mark.slow


def test_sigterm_finishes_in_flight_requests_and_records_every_answered_check(
        tmp_path: Path, model_dir: Path) -> None:
    server = start_live_server(tmp_path / "var", model_dir, workers=2)
    headers = {"Authorization": f"Bearer {server.key}"}
    batch = {"comments": [{"comment_content": f"Comment number {i}: thanks for the article, it helped a lot.",
                           "blog": TEST_SITE} for i in range(100)]}
    answered: list[str] = []
    finished_after_signal = []
    lock = threading.Lock()
    stop = threading.Event()
    signalled_at: list[float] = []

    def load(use_batch: bool) -> None:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    if use_batch:
                        response = client.post("/api/v1/check/batch", json=batch)
                    else:
                        response = client.post("/api/v1/check", json={
                            "comment_content": f"Single check {i}: could you share the code?"})
                except httpx.TransportError:
                    return  # the server stopped accepting: expected after SIGTERM
                if response.status_code != 200:
                    continue
                body = response.json()
                ids = [r["check_id"] for r in body["results"]] if use_batch else [body["check_id"]]
                with lock:
                    answered.extend(ids)
                    if signalled_at:
                        finished_after_signal.append(time.monotonic())

    threads = [threading.Thread(target=load, args=(n % 2 == 0,)) for n in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    with lock:
        before_signal = len(answered)
        signalled_at.append(time.monotonic())
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=60)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    assert server.proc.returncode == 0
    assert before_signal > 0 and finished_after_signal, "some requests should have been in flight at SIGTERM"
    with open_store(str(server.settings.database_url), secret=_secret(server.settings.data_dir)) as store:
        missing = [check_id for check_id in answered if store.get_check(check_id) is None]
    assert not missing, f"{len(missing)} of {len(answered)} answered checks are not in the store"


def _secret(data_dir: Path) -> bytes:
    return (data_dir / "secret_key").read_text().strip().encode("utf-8")


def _workers(master: int) -> set[int]:
    """The pids of the master's child processes (its gunicorn workers)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    return {int(pid) for pid in children.read_text().split()} if children.exists() else set()


def _handles_signals(pid: int) -> bool:
    """Whether a worker has installed gunicorn's own handlers for SIGTERM and SIGABRT (/proc SigCgt)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return all(caught & (1 << (sig - 1)) for sig in (signal.SIGTERM, signal.SIGABRT))


@pytest.mark.parametrize("how", ["worker SIGTERM", "worker SIGABRT", "master SIGHUP"])
def test_a_worker_that_exits_is_replaced_and_the_server_goes_on(tmp_path: Path, model_dir: Path, how: str) -> None:
    # gunicorn ends a worker with sys.exit() (SIGTERM to it, SIGABRT on its timeout, every worker
    # on SIGHUP); the replacement must boot into the same metrics directory.
    server = start_live_server(tmp_path / "var", model_dir, workers=2)
    try:
        # /readyz answers once one worker is ready; gunicorn forks the second a moment apart (a CI
        # run looked in between and found one), and a signal sent to a worker before it has set up
        # its own handlers is not the exit under test (a CI run's SIGABRT went unheeded then).
        deadline = time.monotonic() + 10
        while not (len(before := _workers(server.proc.pid)) == 2 and all(map(_handles_signals, before))) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(before) == 2 and all(map(_handles_signals, before))
        if how == "master SIGHUP":
            server.proc.send_signal(signal.SIGHUP)
        else:
            victim = min(before)
            os.kill(victim, signal.SIGTERM if how == "worker SIGTERM" else signal.SIGABRT)
        deadline = time.monotonic() + 30
        after = before
        while time.monotonic() < deadline and server.proc.poll() is None:
            after = _workers(server.proc.pid)
            if len(after) == 2 and after != before and (how != "master SIGHUP" or not after & before):
                break
            time.sleep(0.1)
        assert server.proc.poll() is None, "the server stopped"
        assert len(after) == 2 and after != before
        headers = {"Authorization": f"Bearer {server.key}"}
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            # The kernel spreads connections over the workers' sockets: enough new ones reach both.
            for i in range(20):
                with httpx.Client(base_url=server.base_url, timeout=10) as fresh:
                    assert fresh.get("/readyz").status_code == 200
                    check = fresh.post("/api/v1/check", headers=headers,
                                       json={"comment_content": f"Still here after the restart? {i}"})
                    assert check.status_code == 200, check.text
            metrics = client.get("/metrics")
            assert metrics.status_code == 200 and "commentguard_checks_total" in metrics.text
        assert server.proc.poll() is None
    finally:
        server.stop()
    assert server.proc.returncode == 0
