"""``commentguard checks``: what the service decided, for an operator's review.

``checks list`` shows the check log (the model's recorded verdict, also in log-only mode, its
score and reasons, the comment as stored, the latest moderator label); ``checks summary`` counts
it per site and recomputes the tiers from the stored scores at other thresholds (what-if), for
deciding when a site leaves log-only mode and where its thresholds go. Comment text and author
come from the internet and are made terminal-safe (:mod:`commentguard.terminal`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

import click

from commentguard.context import cli_settings, cli_store, registered_site, threshold_option
from commentguard.tables import echo_table
from commentguard.terminal import one_line, safe_json
from commentguard.what_if import ThresholdsChoice, choose_thresholds
from model.verdict import TIERS
from service.akismet_rules import ADMINISTRATOR_REASON, HONEYPOT_REASON, TEST_SPAM_REASON
from service.settings import Settings
from store import SiteInfo, Store
from store.records import utcnow
from store.review import MAX_LIST, ReviewedCheck, SiteSummary

#: Longest window, in days (the check log's retention is usually far shorter).
MAX_DAYS = 3650
NO_SITE = "(no key)"
SCORES_NOTE = ("what-if re-tiers the stored scores; a check a fixed rule decided keeps its recorded tier, and "
               "the upstream cross-check and the sender history are not applied again")
#: The reasons of the fixed rules: a check holding one was decided by the rule, not by its score.
DECIDED_BY = (TEST_SPAM_REASON, ADMINISTRATOR_REASON, HONEYPOT_REASON)
MODELS_NOTE = "scored by more than one model: their scores are not comparable, so one set of thresholds fits them unevenly"

_days = click.option("--days", type=click.IntRange(1, MAX_DAYS), default=7, show_default=True,
                     help="Checks of the last N days.")
_site = click.option("--site", "site_url", default=None, metavar="URL", help="Only this registered site.")
_include_test = click.option("--include-test", is_flag=True, help="Also test calls (is_test) and their labels.")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON (texts whole) instead of a table.")


@click.group("checks")
def command() -> None:
    """The check log: the verdicts the service recorded, their labels, and what-if thresholds."""


def _find_site(store: Store, url: Optional[str]) -> Optional[SiteInfo]:
    return registered_site(store, url) if url is not None else None


def _since(days: int) -> datetime:
    return utcnow() - timedelta(days=days)


def _tiers(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    tiers = [t.strip().lower() for value in values for t in value.split(",") if t.strip()]
    if values and not tiers:
        # `--tier ""` (an unset shell variable) listed every tier, the opposite of a filter.
        raise click.BadParameter(f"no tier given; tiers are {', '.join(TIERS)}")
    unknown = sorted(set(tiers) - set(TIERS))
    if unknown:
        raise click.BadParameter(f"unknown tier {', '.join(map(repr, unknown))}; tiers are {', '.join(TIERS)}")
    return list(dict.fromkeys(tiers))


def check_dict(check: ReviewedCheck) -> dict[str, Any]:
    """A check as ``checks list --json`` shows it."""
    return {"id": check.id, "created": check.created.isoformat(timespec="seconds"), "site": check.site_url,
            "site_id": check.site_id, "surface": check.surface, "tier": check.tier, "score": round(check.score, 6),
            "model_version": check.model_version, "reasons": list(check.reasons), "label": check.label,
            "is_test": check.is_test, "author": check.author, "content": check.content}


@command.command("list")
@_site
@click.option("--tier", "tiers", multiple=True, callback=_tiers, metavar="T[,T...]",
              help=f"Only checks recorded with these tiers ({', '.join(TIERS)}).")
@_days
@click.option("--limit", type=click.IntRange(1, MAX_LIST), default=50, show_default=True,
              help=f"At most this many checks (up to {MAX_LIST}).")
@click.option("--unlabelled", is_flag=True, help="Only checks no moderator has labelled yet.")
@_include_test
@_json
def list_checks(site_url: Optional[str], tiers: list[str], days: int, limit: int, unlabelled: bool,
                include_test: bool, as_json: bool) -> None:
    """The latest checks, newest first: recorded verdict (the model's, in log-only mode too), score,
    reasons, the moderator's latest label, and the comment as stored."""
    with cli_store(create=False) as store:
        site = _find_site(store, site_url)
        checks = store.review_checks(_since(days), limit=limit, site_id=site.id if site else None,
                                     tiers=tiers or None, unlabelled=unlabelled, include_test=include_test)
    if as_json:
        click.echo(safe_json([check_dict(c) for c in checks]))
        return
    if not checks:
        click.echo(f"no checks in the last {days} day{'' if days == 1 else 's'} match")
        return
    echo_table(("check id", "time (UTC)", "site", "surface", "tier", "score", "model", "label", "author",
                "reasons", "text"),
               [(c.id, c.created.strftime("%Y-%m-%d %H:%M:%S"), one_line(c.site_url or NO_SITE, 40), c.surface,
                 c.tier, f"{c.score:.3f}", one_line(c.model_version, 24), c.label or "-",
                 one_line(c.author, 20) or "-", one_line("; ".join(c.reasons[:2]), 50) or "-",
                 one_line(c.content, 60)) for c in checks])


@command.command("summary")
@_site
@_days
@click.option("--threshold-unsure", type=float, default=None, help="What-if unsure threshold (0 to 1).")
@click.option("--threshold-spam", type=float, default=None, help="What-if spam threshold (0 to 1).")
@click.option("--threshold-discard", type=float, default=None, help="What-if discard threshold (0 to 1).")
@_include_test
@_json
def summary(site_url: Optional[str], days: int, threshold_unsure: Optional[float], threshold_spam: Optional[float],
            threshold_discard: Optional[float], include_test: bool, as_json: bool) -> None:
    """Per site: checks by recorded tier, how moderators' labels agree with them, and the same counts
    re-tiered from the stored scores at the site's thresholds now, or at the --threshold-* given."""
    given = {"unsure": threshold_option("--threshold-unsure", threshold_unsure),
             "spam": threshold_option("--threshold-spam", threshold_spam),
             "discard": threshold_option("--threshold-discard", threshold_discard)}
    settings = cli_settings()
    with cli_store(create=False) as store:
        site = _find_site(store, site_url)
        sites = [site] if site is not None else store.list_sites()
        choice = choose_thresholds(settings, sites, {k: v for k, v in given.items() if v is not None},
                                   include_global=site is None)
        counts = store.summarise_checks(_since(days), what_if=choice.thresholds, decided_by=DECIDED_BY,
                                        site_id=site.id if site else None, include_test=include_test)
    by_id = {s.id: s for s in sites}
    ids = [s.id for s in sites] + [sid for sid in counts if sid not in by_id and sid is not None]
    if site is None and None in counts:
        ids.append(None)  # type: ignore[arg-type]
    rows = [_site_dict(sid, by_id.get(sid) if sid is not None else None, counts.get(sid) or SiteSummary(sid),
                       choice, settings) for sid in ids]
    result = {"days": days, "since": _since(days).isoformat(timespec="seconds"), "include_test": include_test,
              "what_if": {"thresholds_from": choice.source, "unavailable": choice.unavailable, "note": SCORES_NOTE},
              "sites": rows}
    if as_json:
        click.echo(safe_json(result))
        return
    _print_summary(result)


def _site_dict(site_id: Optional[int], site: Optional[SiteInfo], counts: SiteSummary, choice: ThresholdsChoice,
               settings: Settings) -> dict[str, Any]:
    mode = (site.settings.mode if site is not None else None) or settings.mode
    thresholds = choice.for_site(site_id)
    versions = dict(counts.model_versions.most_common())
    return {"site_id": site_id, "site": site.url if site is not None else None, "mode": mode,
            "checks": counts.checks, "recorded": counts.recorded.to_dict(),
            "what_if": ({"thresholds": thresholds.to_dict(), **counts.what_if.to_dict()}
                        if thresholds is not None else None),
            "model_versions": versions, "models_comparable": len(versions) <= 1}


def _tiers_line(tiers: dict[str, int]) -> str:
    return "  ".join(f"{t} {tiers[t]}" for t in TIERS)


def _agreement_line(tally: dict[str, Any]) -> str:
    held = tally["held_by_label"]
    if not tally["labelled"]:
        return "none labelled by a moderator"
    return (f"{tally['labelled']} labelled: flagged but labelled ham (false positives) {tally['false_positives']} "
            f"of {tally['flagged_labelled']}; published but labelled spam (missed) {tally['missed']} of "
            f"{tally['ham_labelled']}; held (unsure) labelled spam {held['spam']}, ham {held['ham']}")


def _print_summary(result: dict[str, Any]) -> None:
    days = result["days"]
    if not any(row["checks"] for row in result["sites"]):
        click.echo(f"no checks in the last {days} day{'' if days == 1 else 's'}"
                   + ("" if result["include_test"] else " (test calls left out: --include-test)"))
    for row in result["sites"]:
        name = one_line(row["site"] or NO_SITE, 200)
        plural = "" if row["checks"] == 1 else "s"
        click.echo(f"{name} (mode {row['mode']} now): {row['checks']} check{plural} in the last {days} days")
        if not row["checks"]:
            continue
        click.echo(f"  recorded   {_tiers_line(row['recorded']['tiers'])}")
        click.echo(f"             {_agreement_line(row['recorded'])}")
        what_if = row["what_if"]
        if what_if is not None:
            th = what_if["thresholds"]
            # Full precision: an operator copies these into --threshold-* (:g rounded 0.123456789).
            click.echo(f"  what-if    {_tiers_line(what_if['tiers'])}  (unsure {th['unsure']!r}, spam {th['spam']!r}, "
                       f"discard {th['discard']!r})")
            click.echo(f"             {_agreement_line(what_if)}")
        versions = ", ".join(f"{one_line(v or '(none)', 40)} {n}" for v, n in row["model_versions"].items())
        click.echo(f"  models     {versions}" + ("" if row["models_comparable"] else f": {MODELS_NOTE}"))
    info = result["what_if"]
    if info["unavailable"]:
        click.echo(f"what-if: not computed: {info['unavailable']}")
    else:
        click.echo(f"what-if thresholds: {info['thresholds_from']}; {info['note']}")


__all__ = ["MAX_DAYS", "check_dict", "command"]
