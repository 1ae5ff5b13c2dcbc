"""``commentguard upstream report``: how our verdicts and the upstream's compare over a period.

Reads the ``upstream`` JSON kept with each check (see :mod:`service.upstream`):
counts per outcome, the agreement rate (agreed / (agreed + disagreed)), a
confusion table of our verdict *before* the upstream was combined with it
against the upstream's answer, answer times, and the feedback outbox. Test
calls (``is_test``) are left out.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Iterable

import click

from commentguard.context import cli_store
from model.verdict import TIERS
from service.upstream import OUTCOMES
from store.records import utcnow
from store.upstream import upstream_checks, upstream_outbox_counts


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The report's figures from :func:`store.upstream.upstream_checks` rows."""
    outcomes = {name: 0 for name in OUTCOMES}
    modes: dict[str, int] = {}
    confusion = {tier: {"spam": 0, "ham": 0} for tier in TIERS}
    times: list[int] = []
    total = 0
    for row in rows:
        if row["is_test"]:
            continue
        data = row["upstream"] or {}
        total += 1
        outcome = str(data.get("outcome"))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        modes[str(data.get("mode"))] = modes.get(str(data.get("mode")), 0) + 1
        ours, theirs = data.get("ours", row["tier"]), data.get("upstream")
        if theirs in ("spam", "ham") and ours in confusion:
            confusion[ours][theirs] += 1
        if outcome not in ("skipped_breaker", "skipped_mode") and data.get("ms") is not None:
            times.append(int(data["ms"]))
    answered = outcomes["agreed"] + outcomes["disagreed"]
    times.sort()
    return {
        "checks": total,
        "modes": modes,
        "outcomes": outcomes,
        "answered": answered,
        "agreement_rate": round(outcomes["agreed"] / answered, 4) if answered else None,
        "confusion": confusion,
        "ms": {"p50": _pct(times, 0.5), "p95": _pct(times, 0.95), "max": times[-1] if times else None},
    }


def _pct(values: list[int], q: float) -> int | None:
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


@click.group("upstream")
def command() -> None:
    """The upstream Akismet-compatible API we cross-check with."""


@command.command("report")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True,
              help="Report on checks from the last N days.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def report(days: int, as_json: bool) -> None:
    """Agreement between our verdicts and the upstream's: outcomes, agreement rate, confusion table."""
    since = utcnow() - timedelta(days=days)
    with cli_store(create=False) as store:
        figures = summarize(upstream_checks(store, since))
        figures["outbox"] = upstream_outbox_counts(store)
    figures = {"days": days, "since": since.isoformat(timespec="seconds"), **figures}
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    _print_text(figures)


def _print_text(f: dict[str, Any]) -> None:
    click.echo(f"upstream cross-check, last {f['days']} days (since {f['since']}): {f['checks']} checks")
    if f["modes"]:
        click.echo("modes: " + ", ".join(f"{m} {n}" for m, n in sorted(f["modes"].items())))
    rate = f["agreement_rate"]
    click.echo(f"agreement: {'-' if rate is None else f'{rate:.1%}'} of {f['answered']} answered")
    click.echo("outcomes:")
    for name, n in f["outcomes"].items():
        click.echo(f"  {name:<16}{n:>8}")
    click.echo("ours \\ upstream      spam       ham")
    for tier, row in f["confusion"].items():
        click.echo(f"  {tier:<16}{row['spam']:>8}  {row['ham']:>8}")
    ms = f["ms"]
    if ms["max"] is None:
        click.echo("answer time ms: no answers yet")
    else:
        click.echo(f"answer time ms: p50 {ms['p50']}, p95 {ms['p95']}, max {ms['max']}")
    outbox = f["outbox"]
    # Refused reports are lost to the upstream for good: an operator must see them (only --json showed them).
    refused = (f", {outbox['rejected']} refused by the upstream for good (see last_error in upstream_outbox)"
               if outbox.get("rejected") else "")
    click.echo(f"feedback outbox: {outbox['pending']} pending, {outbox['delivered']} delivered{refused}")
