"""The SQLite database file under a running service: replaced, deleted and restored, read-only,
and SQLite's temporary files (store.sqlite_file, store.db).

A probe deleted, moved and replaced the file under a running server: the pooled connections
went on writing the unlinked file (604 of 747 later checks never reached the moved file),
/readyz stayed 200, and a key made in the new file got 401. A read-only database made every
check 503 after a worker restart, and a full $TMPDIR stopped the check log.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from flask import Flask

import store.db as db_module
from service.app import close_app, get_state
from service.settings import Settings
from store import StoreError, open_store
from tests.conftest import TEST_SECRET_KEY, TEST_SITE, auth_headers

HAM = "Thanks for the write-up, the second example finally made it click for me."


@pytest.fixture(autouse=True)
def quick_file_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reads look at the path once a second; the tests wait a tenth of that.
    monkeypatch.setattr(db_module, "FILE_CHECK_SECONDS", 0.1)


def _check(app: Flask, key: str, text: str = HAM) -> Any:
    response = app.test_client().post("/api/v1/check", json={"comment_content": text}, headers=auth_headers(key))
    return response


def _stored_check_ids(path: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM checks")}
    finally:
        conn.close()


def _backup_copy(source: Path, target: Path) -> None:
    """A copy of ``source`` made with SQLite's backup API, as an operator's backup would be."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _secret() -> bytes:
    return TEST_SECRET_KEY.encode("utf-8")


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_backup_restored_over_the_file_is_used_from_the_next_start(
        make_app: Callable[..., Flask], settings: Settings, api_key: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Nothing more goes to the old file, and no process opens the new one under the running
    service: the -wal beside a file is found by name, and a first version that opened the
    restored file while another process still had the old one open corrupted it."""
    app = make_app()
    path = Path(settings.database_url)
    state = get_state(app)
    assert state.recorder is not None and state.store is not None
    before = _check(app, api_key).get_json()["check_id"]
    assert state.recorder.flush()
    backup = tmp_path / "backup.sqlite3"
    _backup_copy(path, backup)
    with open_store(str(backup), secret=_secret()) as restored:
        new_key, _ = restored.create_key(TEST_SITE, label="made in the backup")
    os.replace(backup, path)  # restoring the backup: another file at the path
    time.sleep(0.15)  # past the read check's interval

    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503 and "was replaced" in ready.get_json()["reason"]
    assert "restarts" in ready.get_json()["reason"]
    during = [_check(app, api_key, f"{HAM} {n}").get_json()["check_id"] for n in range(5)]  # still answered
    assert not state.recorder.flush()  # and kept, not written to the old file
    assert any("was replaced by another file" in r.getMessage() for r in caplog.records)
    close_app(app)  # the worker stops: what it holds is spooled, and the next start writes it

    app = make_app()
    assert _check(app, new_key).status_code == 200  # the key lives only in the new file
    state = get_state(app)
    assert state.recorder is not None and state.recorder.flush()
    stored = _stored_check_ids(path)
    assert set(during) <= stored and before in stored  # the backup had it; the spool brought the rest
    assert app.test_client().get("/readyz").status_code == 200


def test_a_deleted_file_is_reported_and_no_check_is_lost_once_it_is_restored(
        make_app: Callable[..., Flask], settings: Settings, api_key: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    path = Path(settings.database_url)
    state = get_state(app)
    assert state.recorder is not None
    first = _check(app, api_key).get_json()["check_id"]
    assert state.recorder.flush()
    moved = tmp_path / "moved-away.sqlite3"
    os.rename(path, moved)  # moved away (as a careless backup would)
    time.sleep(0.15)

    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert "is missing" in ready.get_json()["reason"] and str(path) in ready.get_json()["reason"]
    # Checks go on for a key the worker knows, and wait in the queue.
    during = [_check(app, api_key, f"{HAM} {n}") for n in range(5)]
    assert all(r.status_code == 200 for r in during)
    assert not state.recorder.flush() and state.recorder.store_unreachable
    assert not path.exists()  # no empty database made in its place
    assert any("is missing (deleted or moved" in r.getMessage() for r in caplog.records)

    os.rename(moved, path)  # put back: the same file, used again at once
    _wait_for(lambda: app.test_client().get("/readyz").status_code == 200, "never ready again")
    assert state.recorder.flush()
    assert {first, *(r.get_json()["check_id"] for r in during)} <= _stored_check_ids(path)


def test_writes_never_go_to_a_replaced_file_even_within_the_read_interval(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A write looks at the path every time: the old file's -wal is the new one's by name, and
    SQLite replays the -wal it finds into the file it opens."""
    monkeypatch.setattr(db_module, "FILE_CHECK_SECONDS", 3600.0)
    path = tmp_path / "db.sqlite3"
    with open_store(str(path), secret=_secret()) as store:
        store.create_key(TEST_SITE)
        backup = tmp_path / "backup.sqlite3"
        _backup_copy(path, backup)
        with open_store(str(backup), secret=_secret()) as restored:
            in_backup, _ = restored.create_key(TEST_SITE, label="only in the backup")
        os.replace(backup, path)
        with pytest.raises(StoreError, match="was replaced"):
            store.create_key(TEST_SITE, label="after the restore")
    with open_store(str(path), secret=_secret()) as reopened:
        assert reopened.authenticate(in_backup) is not None  # its pages untouched
        assert reopened.database.read(lambda tx: tx.fetchone("PRAGMA integrity_check"))["integrity_check"] == "ok"


def test_sqlite_keeps_its_temporary_data_in_memory(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "db.sqlite3"), secret=_secret()) as store:
        assert store.database.read(lambda tx: tx.fetchone("PRAGMA temp_store"))["temp_store"] == 2  # MEMORY


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """``path`` made read-only for this process: chmod 400 for a user; root passes over file
    modes, so for root the immutable flag (``chattr +i``), which holds root to it too."""
    if os.geteuid() != 0:
        path.chmod(0o400)
        try:
            yield
        finally:
            path.chmod(0o600)
        return
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"running as root, and chattr +i failed here ({made.stderr.strip()}): "
                    "a read-only file cannot be made that root cannot write")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_database_serves_key_lookups_and_checks_and_keeps_what_it_cannot_write(
        make_app: Callable[..., Flask], settings: Settings, api_key: str) -> None:
    """_resolve opened the existing file for writing: after chmod 400 and a restart every check got
    503 ("the key store is not available") although the keys could be read."""
    path = Path(settings.database_url)
    with _read_only(path):
        with pytest.raises(OSError):
            os.open(path, os.O_WRONLY)  # the file really is read-only to this process
        app = make_app()
        state = get_state(app)
        assert state.recorder is not None and state.store is not None
        answered = _check(app, api_key)
        assert answered.status_code == 200, answered.get_json()
        assert not state.recorder.flush() and state.recorder.store_unreachable  # kept, not dropped
        assert state.recorder.pending >= 1
    assert state.recorder.flush()  # writable again: the queued check is written
    assert answered.get_json()["check_id"] in _stored_check_ids(path)


def test_a_connection_opened_while_read_only_does_not_fail_the_first_write_after(
        settings: Settings, api_key: str) -> None:
    """Found in CI: a connection opened during a read-only spell (by a thread busy with it when a
    failed write closed the idle ones) stays read-only once the file is writable again, and the next
    write drawn on it failed. A read-only refusal is now tried again on a new connection."""
    from model.comment import Comment
    from model.verdict import Verdict
    from store import CheckRecord, new_check_id

    path = Path(settings.database_url)
    with contextlib.ExitStack() as stack:
        with _read_only(path):
            # Opened, and read from, during the spell: SQLite opens the pooled connection read-only.
            store = stack.enter_context(open_store(str(path), secret=TEST_SECRET_KEY.encode()))
            assert store.list_keys()
        record = CheckRecord.from_verdict(Comment(comment_content="after the spell"), Verdict("ham", 0.1),
                                          surface="json", check_id=new_check_id())
        store.record_checks([record])  # the pooled read-only connection first, then a new one
        assert store.get_check(record.id) is not None


_WRITE_CHECKS = """
import random, string, sys
from model.comment import Comment
from store import CheckRecord, new_check_id, open_store
from store.records import utcnow
rnd = random.Random(1)
with open_store(sys.argv[1], secret=b"x" * 32) as store:
    for _ in range(3):  # batches as the recorder writes them, large enough to spill a statement journal
        store.record_checks([CheckRecord(
            id=new_check_id(), created=utcnow(), surface="json", tier="ham", score=0.1,
            comment=Comment(comment_content="".join(rnd.choice(string.ascii_letters + " ") for _ in range(2000))))
            for _ in range(200)])
print("written")
"""


def test_the_check_log_is_written_while_tmpdir_is_full(tmp_path: Path) -> None:
    """A full $TMPDIR (a small tmpfs in a container) failed every batch: "database or disk is full"."""
    full, data = tmp_path / "tmp", tmp_path / "data"
    full.mkdir()
    data.mkdir()
    script = tmp_path / "write_checks.py"
    script.write_text(_WRITE_CHECKS, encoding="utf-8")
    inside = (f"mount -t tmpfs -o size=64k tmpfs {full} && (dd if=/dev/zero of={full}/fill bs=4k 2>/dev/null; true)"
              f" && SQLITE_TMPDIR={full} TMPDIR={full} {sys.executable} {script} {data}/db.sqlite3")
    # A mount namespace of its own for a full tmpfs: root's, or as a user one mapped to root.
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    probe = subprocess.run([*unshare, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace for a full tmpfs here: {probe.stderr.strip()}")
    run = subprocess.run([*unshare, "sh", "-c", inside], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0 and "written" in run.stdout, run.stderr[-2000:]
