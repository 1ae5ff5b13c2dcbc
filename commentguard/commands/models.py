"""``commentguard models``: the registry of trained models: list, activate, roll back; and
``add-tables``, which makes an artifact saved before the serving tables existed servable.

Activation and rollback change one row in the shared database; every running
instance that uses that database picks the new model up within
``COMMENTGUARD_MODEL_CHECK_SECONDS`` (see :mod:`service.model_watch`), without a
restart; with hot reload off (0), only workers that start afterwards do.
"""
from __future__ import annotations

import json
from typing import Optional

import click

from commentguard.commands.retrain import default_actor
from commentguard.context import cli_settings, cli_store
from model.artifact import add_tables, read_metadata
from model.errors import ArtifactError
from service.model_watch import artifact_path, how_workers_follow, servable_refusal
from service.settings import Settings
from store import ActiveModel, RegistryError


def require_servable(version: str, registered_path: str, settings: Settings, doing: str) -> None:
    """Refuse (ClickException) a version the workers would refuse: load it as they would."""
    path = artifact_path(ActiveModel(version, registered_path, 0), settings.models_dir)
    refusal = servable_refusal(path, version, settings)
    if refusal is not None:
        raise click.ClickException(f"refusing to {doing} {version}: {refusal}")


@click.group("models")
def command() -> None:
    """Registered model versions and which one is active."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as a JSON array.")
def list_models(as_json: bool) -> None:
    """Every registered version, newest first (the active one marked with *)."""
    with cli_store(create=False) as store:
        rows = [m.to_dict() for m in store.list_models()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no models registered; `commentguard serve` registers the default model on first start")
        return
    for r in rows:
        held = (r["metrics"] or {}).get("held_out") or {}
        figures = (f"spam caught {held['recall']:.3f}, ham flagged {held['false_positive_rate']:.4f}"
                   if held else "no held-out figures")
        mark = "*" if r["status"] == "active" else " "
        click.echo(f"{mark} {r['version']}  {r['status']:<9} {r['created']}  {figures}")
        if r["promoted_reason"]:
            click.echo(f"    {r['promoted_by']}: {r['promoted_reason']}")


@command.command("activate")
@click.argument("version")
@click.option("--reason", default="", help="Why: recorded in the registry.")
@click.option("--by", "actor", default=None, help="Who (default: $USER, else $LOGNAME).")
def activate(version: str, reason: str, actor: Optional[str]) -> None:
    """Make VERSION the active model for every instance sharing the database."""
    settings = cli_settings()
    with cli_store(create=False) as store:
        model = store.get_model(version)
        if model is None:
            raise click.ClickException(f"no registered model {version!r} (see `commentguard models list`)")
        # The workers check again before loading; this catches the mistake before anyone sees it.
        require_servable(version, model.path, settings, "activate")
        try:
            store.activate_model(version, actor or default_actor(), reason or "activated by hand")
        except RegistryError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{version} is now the active model; {how_workers_follow(settings.model_check_seconds)}")


@command.command("add-tables")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
def add_tables_command(model_dir: str) -> None:
    """Write the serving tables of MODEL_DIR, an artifact saved before they existed.

    The service does not unpickle models, so it refuses such an artifact; this unpickles it
    once, here, on your say-so: run it only on a file you trust.
    """
    try:
        had_tables = "tables" in read_metadata(model_dir)
        meta = add_tables(model_dir)
    except ArtifactError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # a read-only mount, another user's directory
        raise click.ClickException(f"cannot write the tables into {model_dir}: {exc.strerror}") from exc
    if had_tables:
        click.echo(f"{model_dir}: it has its serving tables already (model {meta['version']}); nothing done")
    else:
        click.echo(f"{model_dir}: serving tables written (model {meta['version']}); the service can load it now")


@command.command("rollback")
@click.option("--reason", default="", help="Why: recorded in the registry.")
@click.option("--by", "actor", default=None, help="Who (default: $USER, else $LOGNAME).")
def rollback(reason: str, actor: Optional[str]) -> None:
    """Reactivate the model the current one replaced."""
    settings = cli_settings()
    with cli_store(create=False) as store:
        try:
            target = store.rollback_target()
            require_servable(target.id, target.path, settings, "roll back to")
            model = store.rollback(actor or default_actor(), reason or "rolled back by hand", expected=target.id)
        except RegistryError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"rolled back: {model.id} is the active model again; "
               f"{how_workers_follow(settings.model_check_seconds)}")
