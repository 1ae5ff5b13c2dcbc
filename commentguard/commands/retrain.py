"""``commentguard retrain``: learn from moderator feedback, and promote the result only if it is no worse.

Wires the store (feedback, registry), the training package (candidate, gate,
report) and the service's artifact lookup together; the logic lives in
:mod:`training.retrain` and :mod:`training.report`. The candidate is written to
``<models_dir>/<version>/`` with ``report.html`` beside it, and registered
either way: ``active`` when promoted (every running instance switches to it
within ``COMMENTGUARD_MODEL_CHECK_SECONDS``; with hot reload off, only workers that
start afterwards serve it), ``rejected`` otherwise.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

import click

from commentguard.context import cli_store
from model.artifact import load_model, read_metadata
from model.errors import ArtifactError
from model.scorer import Scorer
from service.model_watch import BOOTSTRAP_ACTOR, artifact_path, how_workers_follow, servable_refusal
from service.settings import Settings, SettingsError, load_settings
from store import RegistryError, Store
from training.loaders import DataFormatError
from training.report import write_report
from training.retrain import Gate, NothingToLearn, RetrainResult, retrain
from training.train import TrainingError


def default_actor() -> str:
    """Who the registry records as having promoted a model from this command line."""
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "commentguard cli"


def current_model(store: Store, settings: Settings) -> tuple[Optional[Scorer], Optional[str], Optional[str]]:
    """The active model, a problem loading it, and its version (None: none active).

    Registers the configured model first if the registry is empty.
    """
    try:
        meta = read_metadata(settings.model_path)  # type: ignore[arg-type]
        store.activate_if_none(meta, str(Path(settings.model_path).resolve()), BOOTSTRAP_ACTOR,  # type: ignore[arg-type]
                               "the configured model, registered on first retrain")
    except ArtifactError:
        pass
    active = store.get_active_model()
    if active is None:
        return None, "no active model and none at COMMENTGUARD_MODEL_PATH", None
    try:
        return load_model(artifact_path(active, settings.models_dir)), None, active.version
    except ArtifactError as exc:
        broken = f"the active model {active.version} cannot be loaded ({exc})"
    # The workers serve COMMENTGUARD_MODEL_PATH meanwhile: the gate compares with that. Compared
    # with nothing, a 60-row file with its labels swapped was promoted over a lost models volume.
    try:
        served = load_model(settings.model_path)  # type: ignore[arg-type]
    except ArtifactError as exc:
        return None, f"{broken}, nor COMMENTGUARD_MODEL_PATH ({exc})", active.version
    click.echo(f"warning: {broken}; comparing with COMMENTGUARD_MODEL_PATH ({served.version}), which the "
               "workers serve instead", err=True)
    return served, None, active.version


def summary(result: RetrainResult, report: Optional[Path]) -> dict[str, Any]:
    return {"version": result.version, "path": str(result.path), "report": str(report) if report else None,
            "promoted": result.promoted, "forced": result.forced, "decision": result.decision,
            "current_version": result.current_version,
            "gate": {"tolerance_fpr": result.gate.tolerance_fpr, "tolerance_recall": result.gate.tolerance_recall},
            "candidate": _figures(result.candidate_eval), "current": _figures(result.current_eval),
            "recent_feedback": {"held_out": result.feedback_held_out,
                                "candidate": _figures(result.candidate_feedback_eval),
                                "current": _figures(result.current_feedback_eval)},
            "feedback_labels": len(result.feedback)}


def _figures(ev: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    if ev is None:
        return None
    return {k: ev.get(k) for k in ("n", "spam", "recall", "false_positive_rate", "precision", "unsure_rate",
                                   "roc_auc")}


def not_nan(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    """click's FloatRange lets NaN through (every comparison with it is false)."""
    if math.isnan(value):
        raise click.BadParameter("must be a number, not nan", param=param)
    return value


@click.command("retrain")
@click.option("--data", "data", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An extra labelled file for the base data. Repeatable.")
@click.option("--no-seed", is_flag=True, help="Leave the seed corpus out of the base data.")
@click.option("--holdout", type=click.FloatRange(0.05, 0.5), default=0.2, show_default=True, callback=not_nan,
              help="Share of the base data (stratified) and of the most recent feedback held out for the gate "
                   "(0.05 to 0.5).")
@click.option("--tolerance-fpr", type=click.FloatRange(0, 1), default=0.005, show_default=True, callback=not_nan,
              help="How much higher the candidate's ham-flagged rate may be than the current model's "
                   "(widened to 1.96 standard errors when the held-out rows are too few, at most to 0.02).")
@click.option("--tolerance-recall", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              callback=not_nan,
              help="How much lower the candidate's spam-caught rate may be than the current model's "
                   "(widened likewise, at most to 0.10).")
@click.option("--force", is_flag=True, help="Promote even if the gate says no (needs --reason).")
@click.option("--reason", default=None, help="Why: recorded in the registry with the promotion.")
@click.option("--by", "actor", default=None, help="Who promotes (default: $USER, else $LOGNAME).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(data: tuple[str, ...], no_seed: bool, holdout: float, tolerance_fpr: float,
            tolerance_recall: float, force: bool, reason: Optional[str], actor: Optional[str],
            as_json: bool) -> None:
    """Train a candidate on the base data plus all moderator feedback; promote it if the gate passes."""
    if force and not (reason and reason.strip()):
        raise click.UsageError("--force needs --reason TEXT (it is recorded with the promotion)")
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    say = (lambda m: click.echo(f"[retrain] {m}", err=True))
    with cli_store() as store:
        current, problem, active_version = current_model(store, settings)
        if problem and active_version is not None and not force:
            # A model is active, but nothing to judge a candidate against: keep it.
            raise click.ClickException(f"{problem}: there is no model to compare a candidate with. Mend it, "
                                       "or promote regardless with --force --reason TEXT")
        if problem and not force:
            # No model at all (a first deployment, a lost volume with a fresh database): judged
            # against nothing, a probe's 30-row file was promoted, catching none of its held-out
            # spam, and the first `serve` then served it instead of the default model it trained.
            raise click.ClickException(
                f"{problem}: there is no model to compare a candidate with. Start the service once (it "
                "trains the default model there) or run `commentguard train --out` on that path, then "
                "retrain; or promote regardless with --force --reason TEXT")
        if problem:
            click.echo(f"warning: {problem}; the candidate is compared with nothing", err=True)
        try:
            result = retrain(store=store, models_dir=Path(settings.models_dir), current=current,  # type: ignore[arg-type]
                             data=data, use_seed=not no_seed, holdout=holdout,
                             gate=Gate(tolerance_fpr, tolerance_recall), force=force, progress=say)
        except NothingToLearn as exc:
            # Not an error: a scheduled retrain with no new labels simply has nothing to do.
            click.echo(json.dumps({"retrained": False, "reason": str(exc)}) if as_json else str(exc))
            return
        except (DataFormatError, TrainingError) as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # the models directory full or read-only: no candidate, nothing changed
            raise click.ClickException(f"writing the candidate into {settings.models_dir} failed: "
                                       f"{exc.strerror or exc}; the active model is unchanged") from exc
        # The gate judges a candidate at its own thresholds; the workers also hold it to the operator's
        # overrides. One they refuse was never served, and every later retrain found nothing new in it.
        refusal = servable_refusal(result.path, result.version, settings) if result.promoted else None
        if refusal is not None:
            result.promoted = result.forced = False
            result.decision = (f"not promoted: the workers would refuse it with this server's settings "
                               f"({refusal}); the gate said: {result.decision}")
            refusal = (f"{result.version} was not promoted: the workers would refuse it ({refusal}). Change "
                       "the COMMENTGUARD_THRESHOLD_* overrides the server runs with (or remove them), then "
                       "retrain again")
        meta = dict(result.metadata)
        meta["metrics"] = {**meta.get("metrics", {}), "held_out": result.candidate_eval,
                           "held_out_current": result.current_eval,
                           "recent_feedback": result.candidate_feedback_eval}
        who = actor or default_actor()
        if result.promoted:
            store.register_model(meta, str(result.path.resolve()), note=result.decision)
            why = (f"--force: {reason}" if result.forced else (reason or f"retrain gate passed: {result.decision}"))
            try:
                # Only over the model the gate compared it with: a retrain that ran at the same
                # time may have promoted its own meanwhile.
                store.activate_model(result.version, who, why, replacing=active_version)
            except RegistryError as exc:
                result.promoted = result.forced = False
                result.decision = f"not promoted: {exc}; the gate said: {result.decision}"
                refusal = (f"{result.version} was not promoted: {exc}. Run retrain again to compare a new "
                           "candidate with the active model")
        else:
            store.register_model(meta, str(result.path.resolve()), status="rejected", note=result.decision)
            if result.too_few is not None and refusal is None:
                # Not a verdict on the candidate but a sample that cannot give one: the operator has
                # to change the data (or force), so the command fails, as cron should hear.
                refusal = f"{result.version} was not promoted: {result.too_few}"
    try:
        report: Optional[Path] = write_report(result)
    except OSError as exc:
        # The decision above stands (a promoted candidate is active); only its page is missing,
        # and a failed exit would tell a cron job the model did not change.
        report = None
        click.echo(f"warning: the report could not be written ({exc.strerror or exc}); "
                   "the figures are below", err=True)
    out = summary(result, report)
    if refusal is not None:
        out["not_promoted"] = refusal
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        print_summary(result, out, report)
        if result.promoted:
            click.echo(f"{result.version} is the active model; {how_workers_follow(settings.model_check_seconds)}")
    if refusal is not None:
        raise click.ClickException(refusal)


def print_summary(result: RetrainResult, out: dict[str, Any], report: Optional[Path]) -> None:
    """The outcome in a few lines, for a person."""
    verb = "PROMOTED (forced)" if result.forced else ("PROMOTED" if result.promoted else "REJECTED")
    click.echo(f"{verb}: candidate {result.version} vs current {result.current_version or 'none'}")
    click.echo(f"why: {result.decision}")
    fb = out["recent_feedback"]
    if fb["candidate"] is not None and fb["current"] is not None:
        if fb["candidate"]["spam"]:
            click.echo(f"recent feedback held out ({fb['held_out']}): spam caught {fb['candidate']['recall']:.3f} "
                       f"(current {fb['current']['recall']:.3f})")
        else:  # a rate over no spam at all read as 'caught none'
            click.echo(f"recent feedback held out ({fb['held_out']}): no spam among it, so no spam-caught figure; "
                       f"ham flagged {fb['candidate']['false_positive_rate']:.3f} "
                       f"(current {fb['current']['false_positive_rate']:.3f})")
    click.echo(f"report: {report or 'not written'}")
