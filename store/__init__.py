"""The storage layer: sites, API keys, usage, checks and moderator feedback.

One Python API over SQLite (a file path, the default) and PostgreSQL (a
``postgresql://`` URL)::

    from store import open_store
    store = open_store("var/commentguard.db", secret=secret_bytes)
    key, info = store.create_key("https://blog.example.org", label="main blog")

Both the service and the training job may import this package; it imports only
``model`` and the standard library (psycopg when PostgreSQL is used).
Schema changes are versioned migrations (:mod:`store.migrations`), applied on open.
"""
from __future__ import annotations

from store.core import Store, open_store
from store.errors import (
    InvalidRecordError,
    MigrationError,
    NewerSchemaError,
    SecretMismatchError,
    StoreBusyError,
    StoreClosedError,
    StoreCommitUnknownError,
    StoreConfigError,
    StoreDatabaseError,
    StoreDataError,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from store.registry import ActiveModel, ModelVersion, RegistryError
from store.records import (
    LABELS,
    SURFACES,
    USAGE_COUNTERS,
    CheckRecord,
    FeedbackRecord,
    KeyInfo,
    SiteInfo,
    SiteSettings,
    current_month,
    new_check_id,
)

__all__ = [
    "ActiveModel",
    "ModelVersion",
    "RegistryError",
    "CheckRecord",
    "FeedbackRecord",
    "InvalidRecordError",
    "KeyInfo",
    "LABELS",
    "MigrationError",
    "NewerSchemaError",
    "SURFACES",
    "SecretMismatchError",
    "SiteInfo",
    "SiteSettings",
    "Store",
    "StoreBusyError",
    "StoreClosedError",
    "StoreConfigError",
    "StoreDatabaseError",
    "StoreDataError",
    "StoreCommitUnknownError",
    "StoreError",
    "StoreTimeoutError",
    "StoreUnavailableError",
    "USAGE_COUNTERS",
    "current_month",
    "new_check_id",
    "open_store",
]
