"""The model registry (store/registry.py), on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest

from store import RegistryError, Store, StoreDatabaseError, open_store
from tests.test_store import SECRET, store_url  # noqa: F401 - fixtures

pytestmark = []


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    with open_store(store_url, secret=SECRET) as opened:
        yield opened


def meta(version: str, created: str = "2026-01-01T00:00:00+00:00", **metrics: Any) -> dict[str, Any]:
    return {"version": version, "created": created, "metrics": {"held_out": metrics},
            "training": {"sources": [{"path": "seed/ham_a.jsonl", "sha256": "ab" * 32}]}}


def test_register_list_and_idempotence(store: Store) -> None:
    assert store.list_models() == [] and store.get_active_model() is None
    first = store.register_model(meta("v1", recall=0.9), "/models/v1")
    again = store.register_model(meta("v1", recall=0.1), "/elsewhere")
    assert first == again and again.path == "/models/v1" and again.metrics == {"held_out": {"recall": 0.9}}
    store.register_model(meta("v2", "2026-02-01T00:00:00+00:00"), "/models/v2", status="rejected")
    listed = store.list_models()
    assert [m.id for m in listed] == ["v2", "v1"]
    assert [m.status for m in listed] == ["rejected", "candidate"]
    assert listed[1].sources[0]["path"] == "seed/ham_a.jsonl"
    with pytest.raises(RegistryError):
        store.register_model(meta("v3"), "/x", status="active")


def test_activation_over_a_named_model_only_replaces_that_one(store: Store) -> None:
    """Two retrains compared their candidates with v1 and both were promoted, the second over the
    first's; a rollback then went to the twin, not to v1."""
    for n in (1, 2, 3):
        store.register_model(meta(f"v{n}", f"2026-0{n}-01T00:00:00+00:00"), f"/models/v{n}")
    with pytest.raises(RegistryError, match="now none"):
        store.activate_model("v2", "retrain", "gate passed", replacing="v1")
    store.activate_model("v1", "bootstrap", "first", replacing=None)
    store.activate_model("v2", "retrain", "gate passed", replacing="v1")
    with pytest.raises(RegistryError, match="now v2, not v1"):
        store.activate_model("v3", "retrain", "gate passed", replacing="v1")
    assert store.get_active_model().version == "v2"
    assert store.get_model("v3").status == "candidate"
    assert store.rollback("ops", "bad retrain").id == "v1"
    store.activate_model("v3", "ops", "by hand")  # without replacing: whatever is active


def test_activate_and_rollback_pop_a_stack(store: Store) -> None:
    for n in (1, 2, 3):
        store.register_model(meta(f"v{n}", f"2026-0{n}-01T00:00:00+00:00"), f"/models/v{n}")
    with pytest.raises(RegistryError, match="roll back"):
        store.rollback("ops", "nothing yet")
    store.activate_model("v1", "alice", "first")
    store.activate_model("v2", "bob", "better recall")
    row = store.activate_model("v3", "carol", "campaign")
    assert row.status == "active" and row.promoted_by == "carol" and row.promoted_reason == "campaign"
    assert store.get_active_model().version == "v3"
    assert store.get_active_model().path == "/models/v3"
    assert {m.id: m.status for m in store.list_models()} == {"v1": "retired", "v2": "retired", "v3": "active"}

    assert store.rollback("dave", "v3 flags too much").id == "v2"
    assert store.get_active_model().version == "v2"
    assert store.rollback("dave", "still bad").id == "v1"  # a stack, not a toggle
    with pytest.raises(RegistryError):
        store.rollback("dave", "no more")
    assert store.get_active_model().version == "v1"
    history = store.model_history()
    assert [(h["version"], h["action"]) for h in history] == [
        ("v1", "rollback"), ("v2", "rollback"), ("v3", "activate"), ("v2", "activate"), ("v1", "activate")]
    assert history[0]["reason"] == "still bad"
    with pytest.raises(RegistryError, match="already"):
        store.activate_model("v1", "x", "y")
    with pytest.raises(RegistryError, match="no registered"):
        store.activate_model("nope", "x", "y")


def test_only_one_row_can_be_active(store: Store) -> None:
    store.register_model(meta("v1"), "/a")
    store.register_model(meta("v2"), "/b")
    store.activate_model("v1", "a", "b")
    with pytest.raises(StoreDatabaseError):  # the partial unique index, whatever the code does
        store.database.run(lambda tx: tx.execute("UPDATE models SET status = 'active' WHERE id = 'v2'"))
    with pytest.raises(StoreDatabaseError):  # the pointer table holds one row only
        store.database.run(lambda tx: tx.execute("INSERT INTO active_model (slot) VALUES (2)"))


def test_activate_if_none_bootstraps_once_under_concurrency(store: Store, store_url: str) -> None:  # noqa: F811
    results: list[bool] = []
    lock = threading.Lock()

    def boot(i: int) -> None:
        with open_store(store_url, secret=SECRET) as other:
            done = other.activate_if_none(meta("default"), "/models/default", "serve", "first start")
        with lock:
            results.append(done)

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert store.get_active_model().version == "default"
    store.register_model(meta("v2"), "/b")
    store.activate_model("v2", "a", "b")
    assert store.activate_if_none(meta("default"), "/models/default", "serve", "again") is False
    assert store.get_active_model().version == "v2"
    assert [h["action"] for h in store.model_history()] == ["activate", "bootstrap"]


def test_two_stores_on_one_database_agree(store: Store, store_url: str) -> None:  # noqa: F811
    store.register_model(meta("v1"), "/a")
    store.register_model(meta("v2"), "/b")
    with open_store(store_url, secret=SECRET) as other:
        store.activate_model("v1", "a", "b")
        assert other.get_active_model().version == "v1"
        other.activate_model("v2", "c", "d")
        assert store.get_active_model().version == "v2"
        assert store.rollback("e", "f").id == "v1"
        assert other.get_active_model().version == "v1"


def test_peek_reads_the_active_model_without_opening_a_store(store_url: str) -> None:  # noqa: F811
    from store.registry import peek_active_model

    with open_store(store_url, secret=SECRET) as store:
        assert peek_active_model(store_url) is None
        store.register_model(meta("v1"), "/models/v1")
        store.activate_model("v1", "alice", "first")
        active = store.get_active_model()
    assert peek_active_model(store_url) == active
