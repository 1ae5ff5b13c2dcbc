"""``commentguard feedback``: export moderator labels for retraining, list them, forget them.

``feedback export`` writes the generic training format (JSON Lines with
``comment_content``, ``label`` and the other Akismet fields) that
``commentguard train --data`` reads. Forgetting deletes the label outright
(erasure requests, unlearning a wrong correction), and the comment's checks once
it has no label left: the next export (``--include-upstream`` too) and the
model trained on it no longer contain it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from commentguard.context import cli_store
from commentguard.tables import echo_table
from store import FeedbackRecord
from store.feedback import Forgotten

PREVIEW_CHARS = 60
_SPACE = re.compile(r"\s+")
# Comment text is the spammer's: control characters (ESC starts terminal sequences that clear
# the screen or retitle the window), C1 controls and bidirectional overrides must not reach a
# terminal as they are.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def preview(text: str, width: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, cut to ``width`` characters (an ellipsis marks the cut)."""
    line = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", _SPACE.sub(" ", text)).strip()
    return line if len(line) <= width else line[: width - 1] + "…"


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
    with cli_store() as store:
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
    with cli_store() as store:
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
    with cli_store() as store:
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
