"""A worker that started while the database was down becomes ready once it is back, without a restart.

It used to stay "not ready" (every check 503) until gunicorn restarted it, which a healthy
worker never is: one database blip at a worker's start left it useless for its lifetime.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

import service.app as app_module
import service.model_watch as model_watch
from service.app import close_app, create_app, get_state
from service.settings import Settings
from store import StoreDatabaseError
from tests.conftest import auth_headers, create_test_key

HAM_TEXT = "Thanks for the write-up, the second example finally made it click for me."


@pytest.mark.parametrize("model_check_seconds", [0.05, 0.0])
def test_a_worker_started_without_its_store_becomes_ready_when_the_store_is_back(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, model_check_seconds: float) -> None:
    # 0 turns hot reload off; the store must still be opened once it is back.
    monkeypatch.setattr(model_watch, "STORE_RETRY_SECONDS", 0.05)
    key = create_test_key(settings)
    real_open = app_module.open_store
    failures = {"left": 3}

    def open_while_down(*args: Any, **kwargs: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise StoreDatabaseError("cannot connect to the postgresql database: connection refused")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(app_module, "open_store", open_while_down)
    app = create_app(dataclasses.replace(settings, model_check_seconds=model_check_seconds))
    try:
        client = app.test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "store could not be opened" in ready.get_json()["reason"]
        assert ready.get_json()["error"] == "not ready"  # the model is loaded; the store is what is missing
        body = {"comment_content": HAM_TEXT}
        refused = client.post("/api/v1/check", json=body, headers=auth_headers(key))
        assert refused.status_code == 503 and "store" in refused.get_json()["error"]
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code != 200:  # the watcher retries every 0.05 s
            assert time.monotonic() < deadline, "the store was never reopened"
            time.sleep(0.02)
        assert failures["left"] == 0
        response = client.post("/api/v1/check", json=body, headers=auth_headers(key))
        assert response.status_code == 200
        state = get_state(app)
        assert state.recorder is not None and state.store is not None and state.store_failure is None
        assert state.recorder.flush()
        assert state.store.get_check(response.get_json()["check_id"]) is not None
        # The configured model was registered once the store opened, as at a normal start.
        active = state.store.get_active_model()
        assert active is not None and active.version == state.scorer.version
        assert client.get("/readyz").get_json()["registry_version"] == active.version
    finally:
        close_app(app)


def test_readyz_says_the_database_is_unreachable_not_that_a_migration_failed(settings: Settings) -> None:
    """/readyz said "the store could not be opened: schema migration failed, nothing was changed:
    cannot connect…" while the server was only down."""
    from tests.conftest import free_port

    url = f"postgresql://postgres:pw-7731@127.0.0.1:{free_port()}/x"
    app = create_app(dataclasses.replace(settings, database_url=url, model_check_seconds=0.0))
    try:
        reason = app.test_client().get("/readyz").get_json()["reason"]
        assert reason.startswith("the store could not be opened: cannot connect to the postgresql database")
        assert "migration" not in reason and "pw-7731" not in reason
    finally:
        close_app(app)
