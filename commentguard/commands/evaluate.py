"""``commentguard evaluate``: a model's figures on a labelled file."""
from __future__ import annotations

import json

import click

from commentguard.commands.train import echo_problems
from model.artifact import load_model
from model.errors import ArtifactError
from training.loaders import FORMATS, DataFormatError, load_files
from training.metrics import evaluate_scores


@click.command("evaluate")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
              help="The artifact directory.")
@click.option("--data", "data", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A labelled file. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Format of the files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(model_dir: str, data: tuple[str, ...], fmt: str | None, as_json: bool) -> None:
    """Evaluate a model at its operating point and at the plain 0.5 decision point."""
    try:
        scorer = load_model(model_dir)
        loaded = load_files(list(data), fmt)
    except (ArtifactError, DataFormatError) as exc:
        raise click.ClickException(str(exc)) from exc
    echo_problems([str(p) for p in loaded.problems], len(loaded.problems))
    if not loaded.records:
        raise click.ClickException("no usable labelled rows in the data")
    labels = [r.label for r in loaded.records]
    scores = scorer.spam_probability([r.comment for r in loaded.records])
    result = evaluate_scores(labels, scores, scorer.thresholds)
    result["model_version"] = scorer.version
    result["rows_reported"] = len(loaded.problems)  # malformed or conflicting rows, left out
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    reported = f"; {len(loaded.problems)} rows reported and left out" if loaded.problems else ""
    click.echo(f"model {scorer.version} on {result['n']} comments ({result['spam']} spam){reported}")
    for title, figures in (("operating point (spam or discard)", result), ("score >= 0.5", result["at_0_5"])):
        click.echo(f"{title}: accuracy {figures['accuracy']:.4f}, precision {figures['precision']:.4f}, "
                   f"recall {figures['recall']:.4f}, F1 {figures['f1']:.4f}, MCC {figures['mcc']:.4f}, "
                   f"ham flagged {figures['false_positive_rate']:.4f}")
    click.echo(f"held for moderation: {result['unsure_rate']:.4f}; ROC AUC: {result['roc_auc']}")
