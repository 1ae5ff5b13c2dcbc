"""``commentguard serve``: train the default model if there is none, then run the service under gunicorn.

This is where training and the service meet (the service never imports
``training``): the training package is imported only when a model is missing,
so a deployment that ships its own model does not need it.
"""
from __future__ import annotations

import errno
import importlib
import signal
from pathlib import Path

import click

from commentguard.context import open_store_from_settings
from model.artifact import METADATA_NAME
from service import logging_setup, server
from service.settings import (SECRET_FILE_NAME, WORKER_CLASSES, Settings, SettingsError, default_help,
                              load_settings, unknown_variables)
from store import NewerSchemaError, SecretMismatchError, StoreConfigError, StoreError, StoreUnavailableError
from store.db import owner_only
from store.pg_url import without_secrets


@click.command("serve")
@click.option("--host", default=None, help=f"Address to bind (default: {default_help('host')}).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help=f"Port to listen on (default: {default_help('port')}).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help=f"Worker processes (default: {default_help('workers')}).")
@click.option("--worker-class", type=click.Choice(WORKER_CLASSES), default=None,
              help=f"gunicorn worker class (default: {default_help('worker_class')}).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help=f"Threads per worker with gthread (default: {default_help('threads')}).")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request to standard output.")
def command(host: str | None, port: int | None, workers: int | None, worker_class: str | None,
            threads: int | None, access_log: bool) -> None:
    """Serve the JSON API (and the other surfaces) with gunicorn."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    for name in unknown_variables():
        click.echo(f"warning: {name} is not a CommentGuard setting (typo?)", err=True)
    # JSON lines from here on, as the workers write: what opening the store logs (migrations
    # applied, permissions tightened) goes out before gunicorn starts.
    logging_setup.configure_logging(settings.log_level)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the database, the secret
    if (worker_class or settings.worker_class) == "gevent":
        try:
            importlib.import_module("gevent")  # only to see that it is there
        except ImportError as exc:
            # Named as it was given: the flag wins over the variable, which may not be set at all.
            given = "--worker-class gevent" if worker_class else "COMMENTGUARD_WORKER_CLASS=gevent"
            raise click.ClickException(f"{given} needs the gevent package: "
                                       "pip install 'commentguard[gevent]'") from exc
    check_store(settings)  # creates the secret and the SQLite database on a first start
    make_data_dir_private(settings)
    try:
        # Before the first run's training (a minute): a port already taken was reported only after it.
        server.check_address_free(host or settings.host, port or settings.port)
        ensure_model(settings)
        server.serve(settings, host=host, port=port, workers=workers,
                     worker_class=worker_class, threads=threads, access_log=access_log)
    except server.CannotListen as exc:  # from either check: serve checks again, the port may go meanwhile
        hint = " (is another server running there?)" if exc.errno == errno.EADDRINUSE else ""
        raise click.ClickException(f"{exc.strerror}{hint}") from exc


def make_data_dir_private(settings: Settings) -> None:
    """Take group and other permissions off the data directory once it holds the service's own
    files: the secret, the SQLite database (which :func:`check_store` has just created on a first start).

    Only then: ``COMMENTGUARD_DATA_DIR`` may name a directory that is not the service's alone (a
    home directory, a shared one), which must not lose its modes for holding a model. Checked
    after the store is opened, not before: a directory that existed before the first start (made
    0755 by ``commentguard train --out ./var/model`` under the usual umask) stayed 0755 with the
    secret and the database in it, as did a data directory of releases before 2026-11-27.
    """
    data_dir = settings.data_dir
    if (data_dir / SECRET_FILE_NAME).is_file() or any(data_dir.glob("commentguard.sqlite3*")):
        owner_only(data_dir, 0o700)


#: What a connection pooler answers for a setting it will never take: a configuration error for
#: the operator, not an outage to wait out (PgBouncer's words; a probe saw `serve` call both
#: "unavailable now" and start workers that could never open the store).
POOLER_REFUSALS = {
    "transaction blocks not allowed in statement pooling mode":
        "the connection pooler runs in statement mode, and the store needs transactions: use "
        "transaction or session mode",
    "unsupported startup parameter":
        "the connection pooler refuses a startup parameter the URL sets (such as ?options=...): set it "
        "on the database or role instead (ALTER ROLE ... SET ...)",
}


def check_store(settings: Settings) -> None:
    """Refuse to start with a store setting no worker could ever open (naming the variable).

    A bad URL scheme, a PostgreSQL URL libpq would refuse before connecting (a port of ``abc``,
    ``sslmode=bogus``: see store.pg_url), PostgreSQL without psycopg, or a secret the database
    was not set up with used to start a server that was never ready, every check a 503. A
    database that is merely down is no reason to stop: workers open it when it is back.
    """
    target = str(settings.database_url)
    try:
        with open_store_from_settings(settings):
            pass
    except SecretMismatchError as exc:
        raise click.ClickException(f"COMMENTGUARD_SECRET_KEY: {without_secrets(str(exc), target)}") from exc
    except StoreConfigError as exc:
        raise click.ClickException(f"COMMENTGUARD_DATABASE_URL: {without_secrets(str(exc), target)}") from exc
    except NewerSchemaError as exc:
        # It started and stayed not ready while /healthz said 200: an orchestrator kept it.
        raise click.ClickException(f"COMMENTGUARD_DATABASE_URL: {without_secrets(str(exc), target)}: run "
                                   "that release (or a newer one) against it") from exc
    except StoreUnavailableError as exc:
        # It said "(MigrationError)": a server that is merely down is no failed migration.
        reason = " ".join(without_secrets(str(exc), target).split())  # libpq's words span lines
        for refusal, advice in POOLER_REFUSALS.items():
            if refusal in reason:
                raise click.ClickException(f"COMMENTGUARD_DATABASE_URL: {advice} ({reason})") from exc
        click.echo(f"warning: the database is unavailable now ({reason}); the workers will open the "
                   "store when it is back", err=True)
    except StoreError as exc:
        click.echo(f"warning: the store cannot be opened now ({type(exc).__name__}); the workers "
                   "will open it when it is back", err=True)


def ensure_model(settings: Settings) -> None:
    """Train the default model into ``settings.model_path`` when no artifact is there."""
    path = Path(settings.model_path or settings.data_dir / "model")
    if (path / METADATA_NAME).is_file():
        return  # a broken artifact is reported by /readyz, not silently replaced
    try:
        from training.defaults import ensure_default_model
    except ImportError as exc:
        raise click.ClickException(
            f"no model at {path}, and the default model cannot be trained here: {exc}. "
            "Train one with `commentguard train --out PATH` and set COMMENTGUARD_MODEL_PATH."
        ) from exc
    # As PID 1 in a container, a process without a SIGTERM handler ignores
    # SIGTERM; training takes a while, so make `podman stop` end it at once.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        ensure_default_model(path)
    except OSError as exc:  # a traceback after a minute of training told an operator nothing
        raise click.ClickException(
            f"cannot train the default model into {path}: {exc}. Make it (or its parent) writable for "
            "this user, or train one with `commentguard train --out PATH` and set COMMENTGUARD_MODEL_PATH"
        ) from exc
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
