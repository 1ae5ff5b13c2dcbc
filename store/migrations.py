"""Versioned schema migrations.

``MIGRATIONS`` is an ordered list; a migration, once released, is never edited —
a schema change is a new migration at the end. :func:`migrate` applies the ones
a database lacks, all in one transaction (both engines have transactional DDL,
so a failed upgrade leaves the database as it was), and records each in
``schema_migrations``. Two processes opening one database at once are
serialised: PostgreSQL by a transaction-scoped advisory lock, SQLite by
``BEGIN IMMEDIATE`` (the write lock is held before ``schema_migrations`` is read).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

from store.db import Database, Tx
from store.errors import (MigrationError, NewerSchemaError, StoreCommitUnknownError, StoreDatabaseError,
                          StoreUnavailableError)
from store.records import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """One schema step: a version number, a name, and its DDL statements."""

    version: int
    name: str
    statements: tuple[str, ...]


# The stored copy of a comment; both tables below repeat it literally, because a
# released migration must never change when the Comment class grows a field.
_COMMENT_DDL = """
    blog TEXT NOT NULL DEFAULT '',
    user_ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    referrer TEXT NOT NULL DEFAULT '',
    permalink TEXT NOT NULL DEFAULT '',
    comment_type TEXT NOT NULL DEFAULT '',
    comment_author TEXT NOT NULL DEFAULT '',
    comment_author_email TEXT NOT NULL DEFAULT '',
    comment_author_url TEXT NOT NULL DEFAULT '',
    comment_content TEXT NOT NULL DEFAULT '',
    comment_date_gmt TEXT NOT NULL DEFAULT '',
    comment_post_modified_gmt TEXT NOT NULL DEFAULT '',
    comment_parent TEXT NOT NULL DEFAULT '',
    blog_lang TEXT NOT NULL DEFAULT '',
    blog_charset TEXT NOT NULL DEFAULT '',
    user_role TEXT NOT NULL DEFAULT '',
    recheck_reason TEXT NOT NULL DEFAULT '',
    honeypot_field_name TEXT NOT NULL DEFAULT '',
    callback TEXT NOT NULL DEFAULT '',
    comment_context TEXT NOT NULL DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{{}}'"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sites, api keys and usage", (
        "CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE sites (id {serial}, url TEXT NOT NULL UNIQUE, created {ts} NOT NULL)",
        """CREATE TABLE api_keys (
            id {serial},
            site_id {bigint} NOT NULL REFERENCES sites (id),
            digest TEXT NOT NULL UNIQUE,
            hint TEXT NOT NULL DEFAULT '',
            label TEXT NOT NULL DEFAULT '',
            created {ts} NOT NULL,
            revoked_at {ts})""",
        """CREATE TABLE key_usage (
            key_id {bigint} NOT NULL REFERENCES api_keys (id),
            month TEXT NOT NULL,
            api_calls {bigint} NOT NULL DEFAULT 0,
            spam {bigint} NOT NULL DEFAULT 0,
            ham {bigint} NOT NULL DEFAULT 0,
            missed_spam {bigint} NOT NULL DEFAULT 0,
            false_positives {bigint} NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, month))""",
    )),
    Migration(2, "checks", (
        # No foreign keys on site_id/key_id: the check log is written in batches,
        # and one stale id must not make a whole batch fail.
        f"""CREATE TABLE checks (
            id TEXT PRIMARY KEY,
            created {{ts}} NOT NULL,
            site_id {{bigint}},
            key_id {{bigint}},
            surface TEXT NOT NULL,
            tier TEXT NOT NULL,
            score {{float}} NOT NULL,
            model_version TEXT NOT NULL DEFAULT '',
            reasons TEXT NOT NULL DEFAULT '[]',
            is_test {{bool}} NOT NULL,
            upstream TEXT,
            comment_hash TEXT NOT NULL,{_COMMENT_DDL})""",
        "CREATE INDEX checks_by_hash ON checks (comment_hash, created)",
        "CREATE INDEX checks_by_created ON checks (created)",
    )),
    Migration(3, "moderator feedback", (
        # check_id is a plain column, not a foreign key: feedback outlives the
        # checks it corrects (purge_checks), and must still be found by check id.
        f"""CREATE TABLE feedback (
            id {{serial}},
            created {{ts}} NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('spam', 'ham')),
            source TEXT NOT NULL DEFAULT '',
            reporter TEXT NOT NULL DEFAULT '',
            check_id TEXT,
            site_id {{bigint}},
            key_id {{bigint}},
            is_test {{bool}} NOT NULL,
            comment_hash TEXT NOT NULL,{_COMMENT_DDL})""",
        "CREATE INDEX feedback_by_hash ON feedback (comment_hash, created)",
        "CREATE INDEX feedback_by_check ON feedback (check_id)",
    )),
    Migration(4, "model registry", (
        # One row per trained model; metrics and sources are JSON text. status is
        # 'candidate', 'active', 'retired' or 'rejected'; at most one row is 'active'.
        """CREATE TABLE models (
            id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            created {ts} NOT NULL,
            registered_at {ts} NOT NULL,
            metrics TEXT NOT NULL DEFAULT '{{}}',
            sources TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'retired', 'rejected')),
            note TEXT NOT NULL DEFAULT '',
            promoted_by TEXT,
            promoted_reason TEXT,
            promoted_at {ts})""",
        "CREATE UNIQUE INDEX models_one_active ON models (status) WHERE status = 'active'",
        # Every switch of the active model; previous_id chains them so rollback pops a stack.
        """CREATE TABLE model_activations (
            id {serial},
            version TEXT NOT NULL REFERENCES models (id),
            previous_id {bigint} REFERENCES model_activations (id),
            action TEXT NOT NULL CHECK (action IN ('activate', 'rollback', 'bootstrap')),
            actor TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            at {ts} NOT NULL)""",
        # The single row every service instance polls: which activation is current.
        """CREATE TABLE active_model (
            slot INTEGER PRIMARY KEY CHECK (slot = 1),
            activation_id {bigint} REFERENCES model_activations (id))""",
        "INSERT INTO active_model (slot, activation_id) VALUES (1, NULL)",
    )),
    Migration(5, "upstream report outbox", (
        # Moderator reports waiting to be forwarded upstream (service/upstream_outbox.py).
        # claimed_until is a sender's lease; payload is emptied once delivered.
        """CREATE TABLE upstream_outbox (
            id {serial},
            created {ts} NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('spam', 'ham')),
            feedback_id {bigint},
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt {ts} NOT NULL,
            claimed_until {ts},
            delivered_at {ts},
            last_error TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX upstream_outbox_due ON upstream_outbox (delivered_at, next_attempt)",
    )),
    Migration(6, "usage per site a key's calls name", (
        # Akismet's key-sites reports a key per blog: one key may serve several sites
        # (a WordPress network). key_usage stays the key's total (usage-limit reads it).
        """CREATE TABLE blog_usage (
            key_id {bigint} NOT NULL REFERENCES api_keys (id),
            month TEXT NOT NULL,
            blog TEXT NOT NULL,
            api_calls {bigint} NOT NULL DEFAULT 0,
            spam {bigint} NOT NULL DEFAULT 0,
            ham {bigint} NOT NULL DEFAULT 0,
            missed_spam {bigint} NOT NULL DEFAULT 0,
            false_positives {bigint} NOT NULL DEFAULT 0,
            PRIMARY KEY (key_id, month, blog))""",
    )),
    Migration(7, "per-site verdict settings", (
        # NULL is "the global setting" (COMMENTGUARD_MODE, COMMENTGUARD_THRESHOLD_*): existing
        # sites keep behaving as before. The ordering of the thresholds is checked by the code,
        # which knows the global overrides and the model's thresholds they combine with.
        "ALTER TABLE sites ADD COLUMN mode TEXT CHECK (mode IN ('enforce', 'log_only'))",
        "ALTER TABLE sites ADD COLUMN threshold_unsure {float} CHECK (threshold_unsure BETWEEN 0 AND 1)",
        "ALTER TABLE sites ADD COLUMN threshold_spam {float} CHECK (threshold_spam BETWEEN 0 AND 1)",
        "ALTER TABLE sites ADD COLUMN threshold_discard {float} CHECK (threshold_discard BETWEEN 0 AND 1)",
    )),
)


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Bring the database up to the last of ``migrations``; return the versions applied now."""
    _check_list(migrations)
    if _up_to_date(db, migrations):
        return []  # nothing to write: a database the service may only read opens too
    try:
        applied, fresh = db.run(lambda tx: _apply(tx, migrations))
    except (StoreUnavailableError, StoreCommitUnknownError):
        # The database could not be reached (or went away while committing, when whether anything
        # changed is unknown): no migration failed, and saying one did sent people looking at the
        # schema of a server that was only down.
        raise
    except StoreDatabaseError as exc:
        raise MigrationError(f"schema migration failed, nothing was changed: {exc}") from exc
    if applied:
        names = ", ".join(f"{m.version} ({m.name})" for m in migrations if m.version in applied)
        # An upgrade, once, whichever command opened the database first: a warning, so that a
        # command line shows it too. A new database is no news.
        (log.info if fresh else log.warning)("database schema %s: %s", "created" if fresh else "migrated", names)
    return applied


def applied_versions(db: Database) -> list[int]:
    """The migration versions recorded in the database, in order."""
    rows = db.read(lambda tx: tx.fetchall("SELECT version FROM schema_migrations ORDER BY version"))
    return [int(r["version"]) for r in rows]


def _up_to_date(db: Database, migrations: Sequence[Migration]) -> bool:
    """Whether the database has exactly ``migrations`` (read without a write transaction).

    Anything else (no schema yet, a migration missing or unknown, a table that cannot be read)
    is left to :func:`_apply`, which decides under the write lock.
    """
    try:
        done = {int(r["version"]) for r in db.read(lambda tx: tx.fetchall("SELECT version FROM schema_migrations"))}
    except StoreDatabaseError:
        return False
    return done == {m.version for m in migrations}


def _check_list(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migrations must be numbered 1, 2, 3… in order, got {versions}")


def _apply(tx: Tx, migrations: Sequence[Migration]) -> tuple[list[int], bool]:
    """The versions applied, and whether the database had none before (a new one)."""
    tx.lock_schema()
    tx.execute(tx.dialect.ddl(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {ts} NOT NULL)"
    ))
    done = {int(r["version"]) for r in tx.fetchall("SELECT version FROM schema_migrations")}
    unknown = sorted(done - {m.version for m in migrations})
    if unknown:
        raise NewerSchemaError(
            f"the database has migrations {unknown} that this code does not know; "
            "it was upgraded by a newer release"
        )
    applied: list[int] = []
    for migration in migrations:
        if migration.version in done:
            continue
        for statement in migration.statements:
            tx.execute(tx.dialect.ddl(statement))
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, utcnow()),
        )
        applied.append(migration.version)
    return applied, not done
