"""``commentguard feedback``: add a moderator label to a stored check, export labels for retraining,
list them, forget them.

``feedback add`` labels a check seen in ``checks list`` exactly as ``POST /api/v1/feedback`` with its
``check_id`` does, through the same :func:`service.feedback.record_label`.

``feedback export`` writes the generic training format (JSON Lines with
``comment_content``, ``label`` and the other Akismet fields) that
``commentguard train --data`` reads. Forgetting deletes the label outright
(erasure requests, unlearning a wrong correction), and the comment's checks once
it has no label left: the next export (``--include-upstream`` too) and the
model trained on it no longer contain it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import click

from commentguard.context import cli_settings, cli_store
from commentguard.tables import echo_table
from commentguard.terminal import one_line
from service.feedback import CHECK_ID, record_label
from service.settings import Settings
from service.upstream_client import UpstreamClient
from service.upstream_outbox import FeedbackForwarder
from store import LABELS, FeedbackRecord, Store, current_month
from store.feedback import Forgotten

PREVIEW_CHARS = 60
#: The ``source`` of labels added by ``feedback add`` (``api`` and ``akismet`` are the service's).
CLI_SOURCE = "cli"


def preview(text: str, width: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, cut to ``width`` characters, safe for a terminal (:mod:`commentguard.terminal`)."""
    return one_line(text, width)


def feedback_dict(record: FeedbackRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "created": record.created.isoformat(timespec="seconds"),
        "label": record.label,
        "source": record.source,
        "check_id": record.check_id,
        "is_test": record.is_test,
        "preview": preview(record.comment.comment_content),
    }


@click.group("feedback")
def command() -> None:
    """Moderator feedback: the labels retraining learns from."""


@command.command("add")
@click.option("--check", "check_id", required=True, metavar="CHECK_ID", help="The check's id (from `checks list`).")
@click.option("--label", required=True, type=click.Choice(LABELS), help="The moderator's label.")
@click.option("--by", "reporter", default="", metavar="WHO",
              help="Who labels it (stored as a report's reporter: an e-mail or IP in it as its keyed hash).")
def add(check_id: str, label: str, reporter: str) -> None:
    """Label the stored check CHECK_ID as spam or ham, as `POST /api/v1/feedback` with its check_id does."""
    settings = cli_settings()
    wanted = check_id.strip().lower()
    with cli_store(create=False) as store:
        check = store.get_check(wanted) if CHECK_ID.fullmatch(wanted) else None
        if check is None:
            raise click.ClickException(f"--check: no check {check_id!r} in the check log (it may have been purged; "
                                       "see `commentguard checks list`)")
        # The label is the check's key's, as if that key had sent the report: the same site, the same
        # usage counters, the same mode deciding whether it corrects the answer given.
        key = store.get_key(check.key_id) if check.key_id is not None else None
        forwarder = _forwarder(store, settings)
        feedback_id = record_label(
            store, settings, label=label, comment=check.comment, source=CLI_SOURCE, reporter=reporter,
            check=check, key=key, forwarder=forwarder,
            # Written at once: this process has no check-log writer to queue usage for.
            count_usage=lambda key_id, *, blog, **counts: store.count_usage(key_id, current_month(), blog=blog, **counts))
    note = "; queued for the upstream (a running server forwards it)" if forwarder is not None else ""
    click.echo(f"feedback {feedback_id}: check {check.id} labelled {label}{note}")


def _forwarder(store: Store, settings: Settings) -> Optional[FeedbackForwarder]:
    """The upstream outbox's producer when reports are forwarded; its sender is not started here:
    the server's senders deliver what is queued in the shared outbox."""
    if not settings.upstream_forward_feedback:
        return None
    return FeedbackForwarder(store, UpstreamClient(settings.upstream_url, settings.upstream_key))


@command.command("export")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The JSON Lines file to write (replaced atomically).")
@click.option("--include-upstream", is_flag=True,
              help="Also export upstream answers recorded in shadow/gray/always mode, as weak labels "
                   "(\"label_source\": \"upstream\") for comments no moderator labelled.")
def export(out: str, include_upstream: bool) -> None:
    """Write the training set (each comment's latest label; test calls left out) to --out."""
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with cli_store(create=False) as store:
        count = store.export_feedback(target, include_upstream=include_upstream)
    click.echo(f"exported {count} labelled comment{'' if count == 1 else 's'} to {target}")
    if count:
        click.echo(f"learn from it with `commentguard retrain` (a label there overrides a seed comment of the "
                   f"same text), or `commentguard train --data {target} --out DIR` (which keeps the seed's "
                   "label for such a text)", err=True)


@command.command("list")
@click.option("--include-test", is_flag=True, help="Also list feedback sent as test calls (never exported).")
@click.option("--json", "as_json", is_flag=True, help="Print the labels as a JSON array.")
def list_feedback(include_test: bool, as_json: bool) -> None:
    """List stored labels, oldest first."""
    with cli_store(create=False) as store:
        rows = [feedback_dict(r) for r in store.list_feedback(include_test=include_test)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no feedback")
        return
    echo_table(("id", "created", "label", "source", "check id", "content"),
               [(str(r["id"]), r["created"], r["label"], r["source"] or "-", r["check_id"] or "-", r["preview"])
                for r in rows])


@command.command("forget")
@click.argument("feedback_id", required=False, type=click.IntRange(min=1))
@click.option("--check", "check_id", default=None, metavar="CHECK_ID",
              help="Forget every label given for this check instead of one label by id.")
def forget(feedback_id: int | None, check_id: str | None) -> None:
    """Delete the label FEEDBACK_ID, or every label of --check CHECK_ID."""
    if (feedback_id is None) == (check_id is None):
        raise click.UsageError("give either a feedback ID or --check CHECK_ID")
    with cli_store(create=False) as store:
        if check_id is not None:
            forgotten = store.forget_feedback_for_check(check_id.strip().lower())
            if not forgotten:
                raise click.ClickException(f"no feedback for check {check_id}")
            labels = forgotten.labels
            click.echo(f"forgot {labels} label{'' if labels == 1 else 's'} of check {check_id}" + _checks(forgotten))
            return
        forgotten = store.forget_feedback(feedback_id)  # type: ignore[arg-type]
        if not forgotten:
            raise click.ClickException(f"no feedback with id {feedback_id}")
    click.echo(f"forgot feedback {feedback_id}" + _checks(forgotten))


def _checks(forgotten: Forgotten) -> str:
    n, reports = forgotten.checks, forgotten.reports
    said = f", and {n} check{'' if n == 1 else 's'} of that comment from the check log" if n else ""
    if reports:
        said += f"; {reports} report{'' if reports == 1 else 's'} not yet forwarded upstream will not be"
    return said
