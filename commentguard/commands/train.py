"""``commentguard train``: fit a model on the seed corpus and/or labelled files."""
from __future__ import annotations

import json

import click

from training.loaders import FORMATS, DataFormatError
from training.thresholds import ThresholdPolicy
from training.train import TrainingError, train_model


@click.command("train")
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A labelled file (CSV, JSONL, YouTube CSV, SMS TSV, WordPress WXR). Repeatable.")
@click.option("--no-seed", is_flag=True, help="Train on the --data files only, without the seed corpus.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Format of the --data files (default: detected from each file).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory to write the artifact to.")
@click.option("--strict", is_flag=True, help="Fail on any malformed row instead of reporting and skipping it.")
@click.option("--spam-max-fpr", type=float, default=0.01, show_default=True,
              help="Largest share of ham the spam tier may flag (out-of-fold).")
@click.option("--discard-max-fpr", type=float, default=0.001, show_default=True,
              help="Largest share of ham the discard tier may catch.")
@click.option("--streaming/--in-memory", "streaming", default=None,
              help="Force the streaming path (two passes, held-out thresholds) or the in-memory path "
                   "(5-fold cross-validation). Default: streaming above 50,000 rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the artifact's metadata as JSON.")
def command(data: tuple[str, ...], no_seed: bool, fmt: str | None, out: str, strict: bool,
            spam_max_fpr: float, discard_max_fpr: float, streaming: bool | None, as_json: bool) -> None:
    """Train a model and write its artifact to --out."""
    if no_seed and not data:
        raise click.UsageError("--no-seed needs at least one --data file")
    policy = ThresholdPolicy(spam_max_fpr=spam_max_fpr, discard_max_fpr=discard_max_fpr)
    try:
        result = train_model(out, data, use_seed=not no_seed, fmt=fmt, strict=strict, policy=policy,
                             progress=lambda m: click.echo(f"[train] {m}", err=True),
                             streaming=streaming)
    except (DataFormatError, TrainingError) as exc:
        raise click.ClickException(str(exc)) from exc
    for problem in result.problems[:50]:
        click.echo(f"warning: {problem}", err=True)
    if len(result.problems) > 50:
        click.echo(f"warning: ... and {len(result.problems) - 50} more rows reported", err=True)
    meta = result.metadata
    if as_json:
        click.echo(json.dumps(meta, indent=2))
        return
    kind, oof = next(iter(meta["metrics"].items()))  # out_of_fold, or held_out (streaming)
    click.echo(f"model {meta['version']} written to {out}")
    click.echo(f"trained on {meta['training']['rows']} comments ({meta['training']['spam']} spam) "
               f"in {meta['training']['seconds']} s")
    click.echo("thresholds: " + ", ".join(f"{k} {v:.4f}" for k, v in meta["thresholds"].items()))
    click.echo(f"{kind.replace('_', '-')}: spam caught {oof['recall']:.3f}, ham flagged {oof['false_positive_rate']:.4f}, "
               f"held for moderation {oof['unsure_rate']:.3f}, MCC {oof['mcc']:.3f}, ROC AUC {oof['roc_auc']:.4f}")
