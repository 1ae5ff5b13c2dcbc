"""``commentguard sites``: the registered sites and their own verdict settings.

A site (registered by ``keys create --site``) may have its own mode (``enforce`` or
``log_only``) and threshold overrides; each setting it lacks is the global one
(``COMMENTGUARD_MODE``, ``COMMENTGUARD_THRESHOLD_*``), and each threshold neither sets is the
model's. The settings travel with the site's keys' authentication, so running workers
apply a change within their key cache's 30 s, as they do a revocation.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Optional

import click

from commentguard.context import (ModelUnreadable, cli_settings, cli_store, registered_site, served_thresholds,
                                  threshold_option)
from commentguard.tables import echo_table
from model.verdict import Thresholds
from service.settings import Settings
from service.site_settings import merged_thresholds
from store import InvalidRecordError, SiteInfo, SiteSettings

#: What ``--mode default`` means: the site follows COMMENTGUARD_MODE again.
DEFAULT_MODE = "default"
APPLY_NOTICE = "running workers apply it within 30 s (they reuse a key's check, and its site's settings, that long)"


def site_dict(site: SiteInfo) -> dict[str, Any]:
    """A site as ``sites list --json`` shows it: ``null`` settings are the global ones."""
    return {"id": site.id, "site": site.url, "created": site.created.isoformat(timespec="seconds"),
            **site.settings.to_dict()}


def _shown(value: Optional[object]) -> str:
    return "(global)" if value is None else str(value)


@click.group("sites")
def command() -> None:
    """Registered sites and their own verdict mode and thresholds."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True,
              help="Print the sites as a JSON array (null: the global setting; out_of_order null: not known).")
def list_sites(as_json: bool) -> None:
    """Every site with its settings ("(global)": COMMENTGUARD_MODE / COMMENTGUARD_THRESHOLD_*, else the model's).

    A site whose thresholds the served model (with the global overrides) puts out of order is
    marked: its checks use the global thresholds until `sites set` mends them.
    """
    settings = cli_settings()
    with cli_store(create=False) as store:
        sites = store.list_sites()
    model = None
    if any(s.settings.has_thresholds for s in sites):
        try:
            model = served_thresholds(settings)[0]
        except ModelUnreadable:
            pass  # no mark: the artifact the workers would serve cannot be read here
    rows = []
    for site in sites:
        row = site_dict(site)
        # Every row has the field, so a script can read it (a probe's KeyError): null when the
        # served model's thresholds cannot be read here to tell.
        row["out_of_order"] = (False if not site.settings.has_thresholds else
                               None if model is None else _out_of_order(site.settings, settings, model))
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no sites; create a key with `commentguard keys create --site URL`")
        return
    echo_table(("id", "site", "mode", "unsure", "spam", "discard", "note"),
               [(str(r["id"]), r["site"], _shown(r["mode"]), _shown(r["threshold_unsure"]),
                 _shown(r["threshold_spam"]), _shown(r["threshold_discard"]),
                 "out of order: global thresholds used" if r.get("out_of_order") else "") for r in rows])


def _out_of_order(site: SiteSettings, settings: Settings, model: Thresholds) -> bool:
    try:
        merged_thresholds(site, settings, model)
    except ValueError:
        return True
    return False


@command.command("set")
@click.argument("url")
@click.option("--mode", type=click.Choice(["enforce", "log_only", DEFAULT_MODE]), default=None,
              help="enforce, log_only, or default (follow COMMENTGUARD_MODE again).")
@click.option("--threshold-unsure", type=float, default=None, help="The site's unsure threshold (0 to 1).")
@click.option("--threshold-spam", type=float, default=None, help="The site's spam threshold (0 to 1).")
@click.option("--threshold-discard", type=float, default=None, help="The site's discard threshold (0 to 1).")
@click.option("--clear-thresholds", is_flag=True,
              help="Drop the site's thresholds (the global ones apply) before setting any given here.")
def set_site(url: str, mode: Optional[str], threshold_unsure: Optional[float], threshold_spam: Optional[float],
             threshold_discard: Optional[float], clear_thresholds: bool) -> None:
    """Set the verdict settings of the site URL (as registered by `keys create --site`)."""
    given = {"unsure": threshold_option("--threshold-unsure", threshold_unsure),
             "spam": threshold_option("--threshold-spam", threshold_spam),
             "discard": threshold_option("--threshold-discard", threshold_discard)}
    if mode is None and not clear_thresholds and all(v is None for v in given.values()):
        raise click.UsageError("nothing to set: give --mode, a --threshold-* option or --clear-thresholds")
    settings = cli_settings()
    with cli_store(create=False) as store:
        site = registered_site(store, url, option="")
        new = site.settings
        if clear_thresholds:
            new = replace(new, threshold_unsure=None, threshold_spam=None, threshold_discard=None)
        new = replace(new, **{f"threshold_{tier}": v for tier, v in given.items() if v is not None})
        if mode is not None:
            new = replace(new, mode=None if mode == DEFAULT_MODE else mode)
        if new.has_thresholds and (clear_thresholds or any(v is not None for v in given.values())):
            # Only thresholds being set are checked: a mode change alone must go through even when a
            # model activated since put the site's stored thresholds out of order (its checks use the
            # global thresholds then), so that an operator can stop a site enforcing at once.
            _check_order(new, settings)
        try:
            updated = store.set_site_settings(site.id, new)
        except InvalidRecordError as exc:  # pragma: no cover - checked above; the store checks again
            raise click.ClickException(str(exc)) from exc
    if updated is None:  # pragma: no cover - the site was found just above; sites are never deleted
        raise click.ClickException(f"the site {site.url} vanished")
    shown = ", ".join(f"{k} {_shown(v)}" for k, v in updated.settings.to_dict().items())
    click.echo(f"{updated.url}: {shown}; {APPLY_NOTICE}")


def _check_order(site: SiteSettings, settings: Settings) -> None:
    """Refuse thresholds that, with the global overrides and the served model's, are out of order."""
    try:
        model, note = served_thresholds(settings)
    except ModelUnreadable as exc:
        path, cause = exc.args
        raise click.ClickException(f"cannot check the site's thresholds against the model at {path}: {cause}") from exc
    if _out_of_order(site, settings, model):
        given = ", ".join(f"{k} {v}" for k, v in site.thresholds().items() if v is not None)
        glob = {k: v for k, v in (("unsure", settings.threshold_unsure), ("spam", settings.threshold_spam),
                                  ("discard", settings.threshold_discard)) if v is not None}
        raise click.ClickException(
            f"the site's thresholds ({given}) with the global overrides {glob or '(none)'} and the model's "
            f"{model.to_dict()} would not keep unsure <= spam <= discard; nothing was changed")
    if note:
        click.echo(f"note: {note}", err=True)
