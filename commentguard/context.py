"""Opening the store the way the service does, for commands that work on its data.

The store keys API-key digests and personal-data hashes with the server secret
and refuses a database first opened with a different one, so every process that
opens it must derive the secret identically: :func:`resolve_secret_key` (the
``COMMENTGUARD_SECRET_KEY`` setting, else ``<data_dir>/secret_key``), encoded as
UTF-8. The service cannot import this package (the import arrows point the
other way), so it must open its store with exactly these arguments; the
command-line tests open a store here and authenticate through the app to keep
the two in step.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import click

from model.errors import ArtifactError
from model.verdict import Thresholds
from service.settings import Settings, SettingsError, load_settings, resolve_secret_key
from store import SiteInfo, Store, StoreError, open_store
from store.pg_url import without_secrets
from store.registry import peek_active_model


def store_secret(settings: Settings) -> bytes:
    """The bytes the store is keyed with for ``settings``."""
    return resolve_secret_key(settings).encode("utf-8")


def open_store_from_settings(settings: Settings) -> Store:
    """The store at ``settings.database_url``, keyed with the server secret (close it when done)."""
    return open_store(str(settings.database_url), secret=store_secret(settings),
                      store_personal_data=settings.store_personal_data)


def cli_settings() -> Settings:
    """The settings from the environment; a bad one exits 1 with its message."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def cli_store(*, create: bool = True) -> Iterator[Store]:
    """The service's store for a command, from the environment; bad settings or store errors exit 1.

    ``create=False`` for commands that only work on data already there (listing, reviewing,
    labelling a stored check, forgetting): a SQLite file that does not exist is refused, naming
    it, instead of created empty (a mistyped COMMENTGUARD_DATA_DIR answered "no checks match").
    """
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    target = str(settings.database_url)
    missing = _sqlite_path_if_missing(target)
    if missing is not None and not create:
        # (A malformed URL, sqlite:relative.db, reads as a path: say so rather than only "no database".)
        hint = (f"; COMMENTGUARD_DATABASE_URL {target!r} was read as a file path (SQLite URLs look like "
                "sqlite:///path.db)" if ":" in target and not target.startswith("sqlite:///") else "")
        raise click.ClickException(
            f"there is no database at {missing.resolve()}: run commands with the server's settings "
            "(COMMENTGUARD_DATA_DIR, default ./var relative to the working directory, or COMMENTGUARD_DATABASE_URL)"
            + hint)
    try:
        new_file = missing
        store = open_store_from_settings(settings)
    except StoreError as exc:
        raise click.ClickException(without_secrets(str(exc), target)) from exc
    if new_file is not None:
        # A command run from another directory than the server's opened a new, empty store and
        # printed a key the server had never heard of, without a word.
        click.echo(f"note: there was no database at {new_file.resolve()}; a new one was created. The "
                   "default COMMENTGUARD_DATA_DIR (./var) is relative to the working directory: run "
                   "commands with the server's settings to work on its data", err=True)
    try:
        yield store
    except StoreError as exc:
        raise click.ClickException(without_secrets(str(exc), target)) from exc
    finally:
        store.close()


def served_model_path(settings: Settings) -> tuple[str, Optional[str]]:
    """The artifact the service serves, and a note when that is not the registry's model.

    The registry's active model when there is one (a retrain promotes there, and every instance
    follows it) and the workers would serve it; else ``COMMENTGUARD_MODEL_PATH``, which is what
    the workers serve then too (a missing artifact, thresholds the overrides contradict). The
    registry is only read: a store that does not exist yet is not created, nor migrated, nor
    given a secret (:func:`store.registry.peek_active_model`).
    """
    from service.model_watch import artifact_path, servable_refusal

    configured = str(settings.model_path)
    if _sqlite_path_if_missing(str(settings.database_url)) is not None:
        return configured, None
    try:
        active = peek_active_model(str(settings.database_url))
    except StoreError as exc:
        return configured, (f"the model registry could not be read ({type(exc).__name__}); "
                            "scoring with COMMENTGUARD_MODEL_PATH")
    if active is None:
        return configured, None
    path = artifact_path(active, settings.models_dir)
    refusal = servable_refusal(path, active.version, settings)
    if refusal is not None:
        return configured, (f"the workers refuse the registry's active model {active.version} ({refusal}) and "
                            "serve COMMENTGUARD_MODEL_PATH: scoring with that")
    return str(path), None


class ModelUnreadable(Exception):
    """The served model's thresholds cannot be read (its path is the first argument, the cause the second)."""


def served_thresholds(settings: Settings) -> tuple[Thresholds, Optional[str]]:
    """The thresholds of the model the workers serve (the registry's active one, else the model
    path), and a note when that is not the registry's; :class:`ModelUnreadable` when they cannot be read."""
    from model.artifact import read_metadata

    path, note = served_model_path(settings)
    try:
        return Thresholds.from_dict(read_metadata(path)["thresholds"]), note
    except (ArtifactError, KeyError, TypeError, ValueError) as exc:
        raise ModelUnreadable(path, exc) from exc


def registered_site(store: Store, url: str, *, option: str = "--site") -> SiteInfo:
    """The site registered at ``url``; exit 1 naming ``option`` (empty: none) when there is none."""
    site = store.find_site(url)
    if site is None:
        prefix = f"{option}: " if option else ""
        raise click.ClickException(f"{prefix}no registered site {url!r} (see `commentguard sites list`; sites are "
                                   "registered by `commentguard keys create --site URL`)")
    return site


def threshold_option(param_hint: str, value: Optional[float]) -> Optional[float]:
    """A ``--threshold-*`` option's value, refused (naming the option) unless it is between 0 and 1."""
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise click.BadParameter(f"must be between 0 and 1, got {value}", param_hint=param_hint)
    return value


def _sqlite_path_if_missing(url: str) -> Optional[Path]:
    """The SQLite file ``url`` names when it does not exist yet (None for PostgreSQL or an existing file)."""
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):]
    elif "://" in url:
        return None
    path = Path(url).expanduser()
    return None if path.exists() else path


__all__ = ["ModelUnreadable", "cli_settings", "cli_store", "open_store_from_settings", "registered_site", "served_model_path",
           "served_thresholds", "store_secret", "threshold_option"]
