"""``commentguard keys``: create, list and revoke the API keys sites authenticate with; their usage.

The store keeps only a keyed digest of each key, so ``keys create`` is the one
moment the key exists in clear: it is printed once and cannot be recovered.
"""
from __future__ import annotations

import json
from typing import Any

import click

from commentguard.context import cli_store
from commentguard.tables import echo_table
from store import USAGE_COUNTERS, InvalidRecordError, KeyInfo, current_month

ONCE_NOTICE = "This key is shown only once and cannot be shown again: store it now."


def key_dict(info: KeyInfo) -> dict[str, Any]:
    """What a listing may show of a key: never the key or its digest; its last two characters
    (``ends_with``) tell an operator which of a site's keys a customer holds."""
    return {
        "id": info.id,
        "site": info.site_url,
        "ends_with": info.hint,
        "label": info.label,
        "created": info.created.isoformat(timespec="seconds"),
        "revoked": info.revoked,
        "revoked_at": info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else None,
    }


@click.group("keys")
def command() -> None:
    """Manage API keys (the service and these commands share COMMENTGUARD_DATABASE_URL and the secret)."""


@command.command("create")
@click.option("--site", required=True, help="The site's front-page URL (blog), e.g. https://blog.example.org.")
@click.option("--label", default="", help="A note for operators, e.g. which installation uses the key.")
@click.option("--json", "as_json", is_flag=True, help="Print the key and its details as JSON.")
def create(site: str, label: str, as_json: bool) -> None:
    """Create a key for --site and print it (once)."""
    with cli_store() as store:
        try:
            key, info = store.create_key(site, label=label)  # the store checks the URL (check_site_url)
        except InvalidRecordError as exc:
            raise click.BadParameter(str(exc), param_hint="--site") from None
    if as_json:
        click.echo(json.dumps({"key": key, **key_dict(info), "notice": ONCE_NOTICE}, indent=2))
        return
    click.echo(f"key: {key}")
    click.echo(f"id {info.id} for {info.site_url}" + (f" ({info.label})" if info.label else ""))
    click.echo(ONCE_NOTICE)


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as a JSON array.")
def list_keys(as_json: bool) -> None:
    """List every key, revoked ones included (without the keys themselves)."""
    with cli_store(create=False) as store:
        rows = [key_dict(info) for info in store.list_keys()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no keys; create one with `commentguard keys create --site URL`")
        return
    echo_table(("id", "site", "key", "label", "created", "revoked"),
               [(str(r["id"]), r["site"], f"…{r['ends_with']}", r["label"], r["created"], r["revoked_at"] or "no")
                for r in rows])


@command.command("revoke")
@click.argument("key_id", type=click.IntRange(min=1))
def revoke(key_id: int) -> None:
    """Revoke the key with id KEY_ID (from `keys list`); running workers refuse it within 30 s."""
    with cli_store(create=False) as store:
        if store.revoke_key(key_id):
            click.echo(f"key {key_id} revoked; running workers refuse it within 30 s (they reuse a key's check that long)")
            return
        info = store.get_key(key_id)
    if info is None:
        raise click.ClickException(f"no key with id {key_id}")
    click.echo(f"key {key_id} was already revoked")


@command.command("usage")
@click.option("--month", default=None, metavar="YYYY-MM", help="The month to show (default: this one, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the sites as a JSON array.")
def usage(month: str | None, as_json: bool) -> None:
    """Each site's checks and reports in a month, summed over its keys (busiest first)."""
    month = month if month is not None else current_month()
    with cli_store(create=False) as store:
        try:
            sites = store.key_sites(month)
        except InvalidRecordError:
            raise click.BadParameter("expected YYYY-MM, e.g. 2026-11", param_hint="--month") from None
    rows = [{"site": s["site"], **{c: s[c] for c in USAGE_COUNTERS}, "revoked": s["is_revoked"]} for s in sites]
    if as_json:
        click.echo(json.dumps({"month": month, "sites": rows}, indent=2))
        return
    if not rows:
        click.echo("no sites; create a key with `commentguard keys create --site URL`")
        return
    click.echo(f"usage in {month}")
    echo_table(("site", *USAGE_COUNTERS, "revoked"),
               [(r["site"], *(str(r[c]) for c in USAGE_COUNTERS), "yes" if r["revoked"] else "no") for r in rows])
