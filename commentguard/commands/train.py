"""``commentguard train``: fit a model on the seed corpus and/or labelled files."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import click

from model.artifact import METADATA_NAME, PICKLE_NAME, TABLES_NAME
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
@click.option("--spam-max-fpr", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Largest share of ham the spam tier may flag (out-of-fold), 0 to 1.")
@click.option("--discard-max-fpr", type=click.FloatRange(0, 1), default=0.001, show_default=True,
              help="Largest share of ham the discard tier may catch, 0 to 1, at most --spam-max-fpr.")
@click.option("--streaming/--in-memory", "streaming", default=None,
              help="Force the streaming path (two passes, held-out thresholds) or the in-memory path "
                   "(5-fold cross-validation). Default: streaming above 50,000 rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the artifact's metadata as JSON.")
def command(data: tuple[str, ...], no_seed: bool, fmt: str | None, out: str, strict: bool,
            spam_max_fpr: float, discard_max_fpr: float, streaming: bool | None, as_json: bool) -> None:
    """Train a model and write its artifact to --out."""
    if no_seed and not data:
        raise click.UsageError("--no-seed needs at least one --data file")
    for name, value in (("--spam-max-fpr", spam_max_fpr), ("--discard-max-fpr", discard_max_fpr)):
        if math.isnan(value):
            raise click.BadParameter("must be a number from 0 to 1", param_hint=name)
    if discard_max_fpr > spam_max_fpr:
        raise click.BadParameter(f"must not exceed --spam-max-fpr ({spam_max_fpr})", param_hint="--discard-max-fpr")
    check_out_dir(Path(out))
    policy = ThresholdPolicy(spam_max_fpr=spam_max_fpr, discard_max_fpr=discard_max_fpr)
    try:
        result = train_model(out, data, use_seed=not no_seed, fmt=fmt, strict=strict, policy=policy,
                             progress=lambda m: click.echo(f"[train] {m}", err=True),
                             streaming=streaming)
    except TrainingError as exc:
        echo_problems(exc.problems, exc.problem_count)  # they may be why too little was left
        raise click.ClickException(str(exc)) from exc
    except DataFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write the artifact to {out}: {exc.strerror or exc}") from exc
    echo_problems(result.problems, result.problem_count)
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


#: What ``--out`` may already hold: an earlier artifact (replaced), its report, temporary files.
ARTIFACT_NAMES = frozenset({METADATA_NAME, PICKLE_NAME, TABLES_NAME, "report.html"})
PROBLEMS_SHOWN = 50


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` training cannot write, before training: a file, a directory of other
    things (its files would be mixed with, or replaced by, the artifact's), no write access."""
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is a file, not a directory", param_hint="--out")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in ARTIFACT_NAMES and not p.name.startswith("."))
        if others:
            raise click.BadParameter(f"{out} holds other files ({', '.join(others[:3])}...): choose a new or empty "
                                     "directory, or an earlier artifact's", param_hint="--out")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot create or write {out} ({existing} is not a writable directory)",
                                 param_hint="--out")


def echo_problems(problems: Sequence[str], count: int) -> None:
    """The first reported rows as warnings on standard error, and how many more there were."""
    for problem in problems[:PROBLEMS_SHOWN]:
        click.echo(f"warning: {problem}", err=True)
    if count > PROBLEMS_SHOWN:
        click.echo(f"warning: ... and {count - PROBLEMS_SHOWN} more rows reported", err=True)
