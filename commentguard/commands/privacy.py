"""``commentguard privacy``: requests from commenters (GDPR access and erasure) about one person.

``privacy find`` lists what the store holds about a person known by e-mail address, IP address
or name (checks, moderator labels, reports waiting for the upstream), the spooled checks not
written yet and the retrain reports quoting their comments; ``privacy forget`` deletes the
store's rows (:mod:`store.subjects`), after asking unless ``--yes``. Neither prints the
comments themselves, nor logs anything: the identifiers are personal data.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from commentguard.context import cli_store
from commentguard.privacy_files import SpoolMatches, reports_quoting, spooled_matches
from commentguard.tables import echo_table
from service.settings import SettingsError, load_settings
from store import Store
from store.subjects import FoundRow, Matcher, Subject, SubjectData, SubjectError, find_subject, forget_subject

F = TypeVar("F", bound=Callable[..., Any])

_NONE_GIVEN = "give at least one of --email, --ip or --author"
_MODELS_NOTE = ("A model already trained on this person's labelled comments keeps what it learnt until the next "
                "`commentguard retrain`, which no longer sees them. Usage counters (counts per key and month, no "
                "personal data) are kept.")


def _identifiers(func: F) -> F:
    for option in reversed((
            click.option("--email", "emails", multiple=True, metavar="ADDR",
                         help="The person's e-mail address (any case; repeatable)."),
            click.option("--ip", "ips", multiple=True, metavar="ADDR",
                         help="An IP address the person wrote from (IPv4 or IPv6, any written form; repeatable)."),
            click.option("--author", "authors", multiple=True, metavar="NAME",
                         help="The name the person comments under (exact, ignoring case and surrounding space; "
                              "repeatable)."))):
        func = option(func)
    return func


def _subject(emails: tuple[str, ...], ips: tuple[str, ...], authors: tuple[str, ...]) -> Subject:
    if not (emails or ips or authors):
        raise click.UsageError(_NONE_GIVEN)
    try:
        return Subject.of(emails=emails, ips=ips, authors=authors)
    except SubjectError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{exc.field}") from exc


@click.group("privacy")
def command() -> None:
    """Requests from commenters: find or erase what is stored about one person."""


class _Findings:
    """What is held about the person, in the store and in files beside it."""

    def __init__(self, store: Store, subject: Subject) -> None:
        try:
            settings = load_settings()
        except SettingsError as exc:  # pragma: no cover - cli_store already loaded them
            raise click.ClickException(str(exc)) from exc
        self.matcher = Matcher(store, subject)
        self.data: SubjectData = find_subject(store, subject)
        self.spool: SpoolMatches = spooled_matches(Path(settings.data_dir), self.matcher)
        self.spool_dir = Path(settings.data_dir) / "spool"
        assert settings.models_dir is not None
        self.reports: list[Path] = reports_quoting(Path(settings.models_dir),
                                                   (*self.data.labels, *self.data.checks), self.matcher)

    def to_json(self) -> dict[str, Any]:
        return {
            "checks": [_row_json(r, "tier") for r in self.data.checks],
            "labels": [_row_json(r, "label") for r in self.data.labels],
            "upstream_reports": [_row_json(r, "label") for r in self.data.reports],
            "spooled_checks": {"lines": self.spool.lines, "files": self.spool.files,
                               "unreadable_files": self.spool.unreadable},
            "retrain_reports": [str(p) for p in self.reports],
            "notes": [_MODELS_NOTE],
        }

    def echo(self) -> None:
        data = self.data
        _section(f"checks in the check log: {len(data.checks)}", ("check id", "created", "site", "tier", "found"),
                 [(str(r.id), _time(r), r.site or "-", r.kind, "; ".join(r.matched)) for r in data.checks])
        _section(f"moderator labels: {len(data.labels)}", ("feedback id", "created", "label", "check id", "found"),
                 [(str(r.id), _time(r), r.kind, r.check_id or "-", "; ".join(r.matched)) for r in data.labels])
        _section(f"reports waiting for the upstream: {len(data.reports)}", ("report id", "created", "label", "found"),
                 [(str(r.id), _time(r), r.kind, "; ".join(r.matched)) for r in data.reports])
        if self.spool.lines or self.spool.unreadable:
            click.echo(f"spooled checks not yet in the store: {self.spool.lines} in {self.spool.files} file(s) "
                       f"under {self.spool_dir}" + (f" ({self.spool.unreadable} file(s) could not be read)"
                                                    if self.spool.unreadable else "")
                       + ". The next start of the service writes them to the store: run `privacy forget` again "
                         "then.")
        if self.reports:
            click.echo("retrain reports quoting this person's comments (delete them, or regenerate them with the "
                       "next `commentguard retrain`; this command never edits model artifacts):")
            for path in self.reports:
                click.echo(f"  {path}")
        click.echo(_MODELS_NOTE)


def _section(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    click.echo(title)
    if rows:
        echo_table(header, rows)


def _time(row: FoundRow) -> str:
    return row.created.isoformat(timespec="seconds")


def _row_json(row: FoundRow, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "created": _time(row), kind: row.kind, "site": row.site or None,
                           "found": list(row.matched)}
    if row.check_id is not None:
        out["check_id"] = row.check_id
    return out


@command.command("find")
@_identifiers
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON object.")
def find(emails: tuple[str, ...], ips: tuple[str, ...], authors: tuple[str, ...], as_json: bool) -> None:
    """List what is stored about the person (GDPR access requests)."""
    subject = _subject(emails, ips, authors)
    with cli_store(create=False) as store:
        findings = _Findings(store, subject)
    if as_json:
        click.echo(json.dumps(findings.to_json(), indent=2, ensure_ascii=False))
    else:
        findings.echo()


@command.command("forget")
@_identifiers
@click.option("--yes", is_flag=True, help="Delete without asking first.")
def forget(emails: tuple[str, ...], ips: tuple[str, ...], authors: tuple[str, ...], yes: bool) -> None:
    """Delete every check, label and undelivered upstream report about the person (GDPR erasure requests)."""
    subject = _subject(emails, ips, authors)
    with cli_store(create=False) as store:
        findings = _Findings(store, subject)
        data = findings.data
        if not yes:
            findings.echo()
            if data:
                click.confirm(f"Delete {len(data.checks)} check(s), {len(data.labels)} label(s) and "
                              f"{len(data.reports)} upstream report(s)?", abort=True)
        erased = forget_subject(store, subject, data)
    click.echo(f"deleted {erased.checks} check(s), {erased.labels} label(s) and {erased.reports} report(s) waiting "
               "for the upstream (one transaction per table: interrupted, run it again to finish)")
    if yes:
        # Not shown above: what stays outside the store, for the operator to act on.
        if findings.spool.lines:
            click.echo(f"{findings.spool.lines} spooled check(s) under {findings.spool_dir} are written to the store "
                       "at the next start of the service: run `privacy forget` again then")
        for path in findings.reports:
            click.echo(f"retrain report quoting this person's comments, to delete or regenerate: {path}")
        click.echo(_MODELS_NOTE)
