"""The model registry: every trained model as a version row, and which one is active.

All service instances that share a database agree on the active model because
it is one row (``active_model``, a single-row table) that each of them polls.
That row points at the current entry of ``model_activations``, the history of
every switch; each entry links the one it replaced (``previous_id``), so
:meth:`RegistryMixin.rollback` pops a stack: two rollbacks in a row go back two
versions, not back and forth. The ``models.status`` column mirrors the pointer
(one ``active`` row at most, enforced by a partial unique index) so listings
read well, and is only ever changed in the same transaction as the pointer.

Only metadata lives here; the artifacts themselves are directories on disk
(``<models_dir>/<version>/``) that the instances share through a volume.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Optional

from store.base import StoreBase
from store.db import SQLITE, Database, Tx
from store.errors import StoreError
from store.records import as_utc, utcnow

MODEL_STATUSES: tuple[str, ...] = ("candidate", "active", "retired", "rejected")


#: ``activate_model``'s default: whatever model is active now may be replaced.
ANY_CURRENT: Any = object()


class RegistryError(StoreError):
    """Raised for a registry request that cannot be done: an unknown version, nothing to roll back to."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: where its artifact is, how it measured, and how it got (de)activated."""

    id: str
    path: str
    created: datetime
    registered_at: datetime
    metrics: Mapping[str, Any]
    sources: list[Any]
    status: str
    note: str = ""
    promoted_by: Optional[str] = None
    promoted_reason: Optional[str] = None
    promoted_at: Optional[datetime] = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO text."""
        def iso(value: Optional[datetime]) -> Optional[str]:
            return value.isoformat(timespec="seconds") if value is not None else None
        return {"version": self.id, "path": self.path, "status": self.status,
                "created": iso(self.created), "registered_at": iso(self.registered_at),
                "metrics": dict(self.metrics), "sources": list(self.sources), "note": self.note,
                "promoted_by": self.promoted_by, "promoted_reason": self.promoted_reason,
                "promoted_at": iso(self.promoted_at)}


@dataclass(frozen=True)
class ActiveModel:
    """The registry's answer to "what should I serve": version, artifact path, and when it was chosen."""

    version: str
    path: str
    activation_id: int


def _version_from_row(row: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        id=row["id"], path=row["path"], created=as_utc(row["created"]),
        registered_at=as_utc(row["registered_at"]), metrics=json.loads(row["metrics"] or "{}"),
        sources=json.loads(row["sources"] or "[]"), status=row["status"], note=row["note"] or "",
        promoted_by=row["promoted_by"], promoted_reason=row["promoted_reason"],
        promoted_at=as_utc(row["promoted_at"]) if row["promoted_at"] is not None else None,
    )


_ACTIVE_SQL = """SELECT a.id AS activation_id, a.version, a.previous_id, m.path
    FROM active_model p JOIN model_activations a ON a.id = p.activation_id
    JOIN models m ON m.id = a.version WHERE p.slot = 1"""


_HAS_REGISTRY_SQL = {
    SQLITE: "SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = 'active_model'",
}
_HAS_REGISTRY_PG = ("SELECT 1 AS present FROM information_schema.tables "
                    "WHERE table_name = 'active_model' AND table_schema = current_schema()")


def peek_active_model(target: str) -> Optional[ActiveModel]:
    """The active model of the database at ``target``, read without opening a store.

    No migration runs and no secret is set up, so a command that only looks (``check``) leaves
    a database without a registry as it found it (None); opening a store there created every
    table and fixed a secret the real server then refused. Raises :class:`StoreError` when the
    database cannot be read.
    """
    db = Database(target)
    try:
        def work(tx: Tx) -> Optional[ActiveModel]:
            if tx.fetchone(_HAS_REGISTRY_SQL.get(tx.dialect.name, _HAS_REGISTRY_PG)) is None:
                return None
            row = tx.fetchone(_ACTIVE_SQL)
            if row is None:
                return None
            return ActiveModel(version=row["version"], path=row["path"], activation_id=int(row["activation_id"]))

        return db.read(work)
    finally:
        db.close()


class RegistryMixin(StoreBase):
    """Registering models, reading the active one, activating and rolling back."""

    def register_model(self, meta: Mapping[str, Any], path: str, *, status: str = "candidate",
                       note: str = "") -> ModelVersion:
        """Record the artifact at ``path`` whose metadata is ``meta``; idempotent per version.

        Registering a version that is already there changes nothing and returns the stored row.
        """
        if status not in ("candidate", "rejected", "retired"):
            raise RegistryError(f"a model is registered as candidate, rejected or retired, not {status!r}"
                                " (activate_model makes one active)")
        version = str(meta.get("version") or "")
        if not version:
            raise RegistryError("the model metadata has no version")
        created = meta.get("created")
        values = (version, str(path), as_utc(created) if created else utcnow(), utcnow(),
                  json.dumps(meta.get("metrics", {}), sort_keys=True),
                  json.dumps(meta.get("training", {}).get("sources", []), sort_keys=True), status, note)

        def work(tx: Tx) -> dict[str, Any]:
            tx.execute("INSERT INTO models (id, path, created, registered_at, metrics, sources, status, note) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", values)
            return tx.fetchone("SELECT * FROM models WHERE id = ?", (version,))  # type: ignore[return-value]

        return _version_from_row(self._db.run(work))

    def get_model(self, version: str) -> Optional[ModelVersion]:
        """One registered version, or None."""
        row = self._db.read(lambda tx: tx.fetchone("SELECT * FROM models WHERE id = ?", (version,)))
        return _version_from_row(row) if row is not None else None

    def list_models(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        rows = self._db.read(lambda tx: tx.fetchall("SELECT * FROM models ORDER BY created DESC, id DESC"))
        return [_version_from_row(r) for r in rows]

    def get_active_model(self) -> Optional[ActiveModel]:
        """The version every instance should serve, or None while nothing was activated.

        One indexed join on a one-row table: cheap enough to poll every few seconds per worker.
        """
        row = self._db.read(lambda tx: tx.fetchone(_ACTIVE_SQL))
        if row is None:
            return None
        return ActiveModel(version=row["version"], path=row["path"], activation_id=int(row["activation_id"]))

    def activate_model(self, version: str, by: str, reason: str, *, action: str = "activate",
                       replacing: Any = ANY_CURRENT) -> ModelVersion:
        """Make ``version`` the active model (the current one becomes ``retired``); return its row.

        With ``replacing`` (a version, or None for none), only if that is still the active model:
        a retrain compared its candidate with it, and another retrain may have promoted its own
        since (two at once both promoted, and a rollback then went to the twin).
        """
        def work(tx: Tx) -> dict[str, Any]:
            current = _lock_pointer(tx)
            if tx.fetchone("SELECT id FROM models WHERE id = ?", (version,)) is None:
                raise RegistryError(f"no registered model {version!r}")
            if current is not None and current["version"] == version:
                raise RegistryError(f"{version} is already the active model")
            now = current["version"] if current is not None else None
            if replacing is not ANY_CURRENT and now != replacing:
                raise RegistryError(f"the active model is now {now or 'none'}, not {replacing or 'none'}: "
                                    f"{version} was not compared with it")
            previous_id = current["activation_id"] if current is not None else None
            return _switch(tx, version, previous_id, action, by, reason)

        return _version_from_row(self._db.run(work))

    def activate_if_none(self, meta: Mapping[str, Any], path: str, by: str, reason: str) -> bool:
        """Register and activate this model only when no model is active yet; True when it did.

        Safe when several processes start at once: the pointer row is locked first.
        """
        self.register_model(meta, path)
        version = str(meta["version"])

        def work(tx: Tx) -> bool:
            if _lock_pointer(tx) is not None:
                return False
            _switch(tx, version, None, "bootstrap", by, reason)
            return True

        return self._db.run(work)

    def rollback_target(self) -> ModelVersion:
        """The model :meth:`rollback` would reactivate now (RegistryError when there is none)."""
        def work(tx: Tx) -> dict[str, Any]:
            earlier = _previous_activation(tx, tx.fetchone(_ACTIVE_SQL))
            model = tx.fetchone("SELECT * FROM models WHERE id = ?", (earlier["version"],))
            assert model is not None  # a foreign key
            return model

        return _version_from_row(self._db.read(work))

    def rollback(self, by: str, reason: str, *, expected: Optional[str] = None) -> ModelVersion:
        """Reactivate the model the current one replaced; return it (RegistryError when there is none).

        With ``expected``, only if that is the version it would reactivate (the caller checked
        that one; another rollback or activation may have come in between).
        """
        def work(tx: Tx) -> dict[str, Any]:
            earlier = _previous_activation(tx, _lock_pointer(tx))
            if expected is not None and earlier["version"] != expected:
                raise RegistryError(f"the model to roll back to changed meanwhile ({expected} -> "
                                    f"{earlier['version']}); try again")
            # The restored entry inherits the restored one's own predecessor: rollback pops a stack.
            return _switch(tx, earlier["version"], earlier["previous_id"], "rollback", by, reason)

        return _version_from_row(self._db.run(work))

    def model_history(self) -> list[dict[str, Any]]:
        """Every activation, newest first: version, action, actor, reason, time."""
        rows = self._db.read(lambda tx: tx.fetchall(
            "SELECT id, version, previous_id, action, actor, reason, at FROM model_activations "
            "ORDER BY id DESC"))
        for row in rows:
            row["at"] = as_utc(row["at"]).isoformat(timespec="seconds")
        return rows


def _lock_pointer(tx: Tx) -> Optional[dict[str, Any]]:
    """Lock the pointer row for this transaction (PostgreSQL row lock; SQLite holds the write lock
    already) and return the current activation, or None."""
    tx.execute("UPDATE active_model SET slot = 1 WHERE slot = 1")
    return tx.fetchone(_ACTIVE_SQL)


def _previous_activation(tx: Tx, current: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The activation ``current`` replaced (RegistryError when there is none)."""
    if current is None or current["previous_id"] is None:
        raise RegistryError("there is no earlier active model to roll back to")
    earlier = tx.fetchone("SELECT id, version, previous_id FROM model_activations WHERE id = ?",
                          (current["previous_id"],))
    assert earlier is not None  # a foreign key
    return earlier


def _switch(tx: Tx, version: str, previous_id: Optional[int], action: str, by: str,
            reason: str) -> dict[str, Any]:
    now = utcnow()
    activation_id = tx.insert(
        "INSERT INTO model_activations (version, previous_id, action, actor, reason, at) "
        "VALUES (?, ?, ?, ?, ?, ?)", (version, previous_id, action, by, reason, now))
    # Retire first: the partial unique index allows one 'active' row at any moment.
    tx.execute("UPDATE models SET status = 'retired' WHERE status = 'active'")
    tx.execute("UPDATE models SET status = 'active', promoted_by = ?, promoted_reason = ?, promoted_at = ? "
               "WHERE id = ?", (by, reason, now, version))
    tx.execute("UPDATE active_model SET activation_id = ? WHERE slot = 1", (activation_id,))
    return tx.fetchone("SELECT * FROM models WHERE id = ?", (version,))  # type: ignore[return-value]


__all__ = ["ActiveModel", "MODEL_STATUSES", "ModelVersion", "RegistryError", "RegistryMixin"]
