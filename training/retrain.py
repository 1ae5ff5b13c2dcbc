"""Retraining from moderator feedback, with a promotion gate.

:func:`retrain` is what ``commentguard retrain`` does:

1. Gather the base data (the seed corpus and any ``--data`` files) and every
   moderator label in the store (each comment's latest label; ``is_test``
   feedback never counts; forgotten feedback is gone because forgetting deletes
   the row). A feedback label overrides a base row with the same text.
2. Hold out data for the gate: a stratified share of the base data (fixed
   ``random_state``, so the same rows are held out every time the base data is
   unchanged) plus the *most recent* share of the feedback, the part that tells
   whether the model has learned what moderators are reporting now.
3. Train a candidate on the rest (out-of-fold thresholds, as ``train`` does) into
   ``<models_dir>/<version>/``.
4. Score the held-out data with the candidate and with the current active model,
   each at its own operating point (flagged = ``spam`` or ``discard``).
5. The gate: promote only if the candidate's ham-flagged rate is at most the
   current one's + ``tolerance_fpr`` and its spam-caught rate at least the
   current one's − ``tolerance_recall``, where each tolerance is widened to
   :attr:`Gate.z` standard errors of the difference when the held-out rows are too
   few to measure it that finely (a few hundred held-out ham measure a 1% rate to
   ±0.6 points: the fixed 0.005 refused clearly better models on one comment).
   And the comparisons must cover at least :attr:`Gate.min_per_class` held-out
   rows of each class: on fewer, a tie (1 ham and 2 spam from a 6-row ``--data``
   file) promoted. ``force`` promotes anyway, with a reason.
6. A candidate that passes (or is forced) is not what is promoted: the same
   recipe is fitted again on all the rows, the held-out ones included, so the
   newest reports are learned too (the held-out share of the feedback is always
   the most recent, and a model that never learns it lags its moderators by one
   retrain). The gate's figures stand for it, as out-of-fold figures stand for
   ``train``'s final fit.

The gate needs held-out base data of both classes (the seed corpus or ``--data``
files): judged on a few recent reports alone, a candidate trained on feedback
alone passed while catching a quarter of ordinary spam. And a retrain with
nothing new (the same labels the current model learned, no ``--data``) stops
with :class:`NothingToLearn` instead of promoting an identical model.

The current model may have been trained on some held-out rows (the default
model saw the whole seed corpus), and its figures on those would flatter it. So
the gate (:func:`gate_figures`) compares both models on the held-out rows the
current model never saw, and on the rows it did see compares the candidate with
the current model's own out-of-fold figure (its metadata's estimate for unseen
data). Every comparison must pass.
"""
from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from model.artifact import load_model, save_model, shared_mode
from model.pipeline import build_pipeline, fit_pipeline
from model.scorer import Scorer
from training.loaders import LoadedData, LabeledComment
from training.metrics import evaluate_scores
from training.records import dedup_key
from training.thresholds import ThresholdPolicy, choose_thresholds
from training.train import TrainingError, load_training_data, out_of_fold_scores

Progress = Callable[[str], None]
FEEDBACK_SOURCE = "feedback"
#: How many of the base data's row problems the progress lists (a malformed row is left out, never silently).
PROBLEMS_SHOWN = 50


@dataclass(frozen=True)
class Gate:
    """The promotion rule's tolerances."""

    tolerance_fpr: float = 0.005
    tolerance_recall: float = 0.02
    #: Standard errors of the difference a comparison allows when that is more than the tolerance.
    z: float = 1.96
    #: The most the widening may allow, whatever the sample: with 11 held-out ham a probe's
    #: candidate was allowed 0.43 more ham flagged, so a tiny --data file replaced a good model.
    #: Too few rows to measure a difference must keep the current model, not wave a worse one through.
    max_margin_fpr: float = 0.02
    max_margin_recall: float = 0.10
    #: The fewest held-out rows of each class the comparisons must cover for a promotion: below it a
    #: rate moves by 2 points or more per row, and a probe's tie on 1 ham and 2 spam (a 6-row --data
    #: file and 4 reports) replaced the seed-trained model. 50 rows still measure a rate only to
    #: about ±0.1, but the capped margins then decide; the seed corpus holds out 60+ of each even
    #: at --holdout 0.05. Counted over every comparison of the class (rows the current model never
    #: saw and rows it trained on alike), since each of those rows measures the candidate.
    min_per_class: int = 50

    def margin(self, comparison: dict[str, Any]) -> float:
        """How far the candidate may fall behind in ``comparison``: the tolerance, or ``z`` standard
        errors, capped at ``max_margin_*`` (never below the tolerance itself)."""
        if comparison["key"] == "false_positive_rate":
            tolerance, cap = self.tolerance_fpr, self.max_margin_fpr
        else:
            tolerance, cap = self.tolerance_recall, self.max_margin_recall
        return max(tolerance, min(cap, self.z * float(comparison.get("se", 0.0))))

    def too_few(self, comparisons: list[dict[str, Any]]) -> Optional[str]:
        """Why the comparisons cover too few held-out rows of a class to judge by, or None."""
        counts = {key: sum(int(c.get("n", 0)) for c in comparisons if c["key"] == key)
                  for key in ("false_positive_rate", "recall")}
        ham, spam = counts["false_positive_rate"], counts["recall"]
        if min(ham, spam) >= self.min_per_class:
            return None
        return (f"too few held-out rows to judge: {ham} ham and {spam} spam compared, and the gate needs at "
                f"least {self.min_per_class} of each (fewer cannot tell a worse model from a better one). "
                "Retrain with more --data, with the seed corpus (without --no-seed), or promote regardless "
                "with --force --reason TEXT")

    def decide(self, comparisons: Optional[list[dict[str, Any]]]) -> tuple[bool, str]:
        """(promote?, why) from the comparisons :func:`gate_figures` made (None: no current model).

        Too few held-out rows of a class (:meth:`too_few`) never promote, whatever the figures."""
        if comparisons is None:
            return True, "there is no current model to compare with"
        verdicts, ok_all = [], True
        for c in comparisons:
            cand, cur, margin = c["candidate"], c["current"], self.margin(c)
            if c["key"] == "false_positive_rate":
                limit, ok = cur + margin, cand <= cur + margin + 1e-12
                verdicts.append(f"ham flagged {cand:.4f} vs {cur:.4f} (at most {limit:.4f}) "
                                f"on {c['basis']}: {'ok' if ok else 'TOO HIGH'}")
            else:
                limit, ok = cur - margin, cand >= cur - margin - 1e-12
                verdicts.append(f"spam caught {cand:.4f} vs {cur:.4f} (at least {limit:.4f}) "
                                f"on {c['basis']}: {'ok' if ok else 'TOO LOW'}")
            ok_all = ok_all and ok
        too_few = self.too_few(comparisons)
        if too_few is not None:
            return False, f"{too_few}; the figures: " + "; ".join(verdicts)
        return ok_all, "; ".join(verdicts)


class NothingToLearn(TrainingError):
    """The store holds the very labels the current model learned, and no other data was given."""


@dataclass
class Split:
    """The training part and the held-out part, as records; ``feedback_held_out`` marks held-out feedback."""

    train: list[LabeledComment]
    held_out: list[LabeledComment]
    feedback: list[LabeledComment] = field(default_factory=list)


@dataclass
class RetrainResult:
    """Everything the command prints and the report shows."""

    version: str
    path: Path
    promoted: bool
    forced: bool
    decision: str
    gate: Gate
    candidate_eval: dict[str, Any]
    current_eval: Optional[dict[str, Any]]
    current_version: Optional[str]
    metadata: dict[str, Any]
    held_out: list[LabeledComment]
    candidate_scores: np.ndarray
    current_scores: Optional[np.ndarray]
    feedback: list[LabeledComment]
    feedback_held_out: int
    candidate_feedback_eval: Optional[dict[str, Any]] = None
    current_feedback_eval: Optional[dict[str, Any]] = None
    #: Every feedback row's score by each model (for the report's "got wrong" list).
    feedback_candidate_scores: Optional[np.ndarray] = None
    feedback_current_scores: Optional[np.ndarray] = None
    #: Whether the current model's verdict agreed with each feedback label (flagged = spam/discard).
    feedback_current_right: Optional[list[bool]] = None
    #: Set when the gate refused because the held-out sample was too small to judge (why, and the remedy).
    too_few: Optional[str] = None


def feedback_records(store: Any) -> list[LabeledComment]:
    """The store's feedback as training rows: latest label per comment, no test calls, oldest first.

    Two reports of the same text (different authors) count once, the later label winning.
    """
    latest: dict[str, LabeledComment] = {}
    for record in store.list_feedback(include_test=False, latest_per_comment=True):
        if not record.comment.comment_content.strip():
            continue
        row = LabeledComment(record.comment, 1 if record.label == "spam" else 0, FEEDBACK_SOURCE,
                             int(record.id or 0))
        key = dedup_key(record.comment.comment_content)
        latest.pop(key, None)  # re-insert so dict order stays "oldest latest-label first"
        latest[key] = row
    return list(latest.values())


def gather(data: Sequence[str | Path], *, use_seed: bool, store: Any) -> tuple[LoadedData, list[LabeledComment]]:
    """The base data (minus rows a moderator relabelled) and the feedback rows."""
    base = load_training_data(data, use_seed=use_seed) if (use_seed or data) else LoadedData()
    feedback = feedback_records(store)
    relabelled = {dedup_key(r.comment.comment_content) for r in feedback}
    base.records = [r for r in base.records if dedup_key(r.comment.comment_content) not in relabelled]
    return base, feedback


def split(base: Sequence[LabeledComment], feedback: Sequence[LabeledComment], holdout: float,
          random_state: int = 0) -> Split:
    """Stratified held-out share of ``base`` plus the most recent share of ``feedback``."""
    if not 0 < holdout < 1:
        raise TrainingError(f"--holdout must be between 0 and 1, got {holdout}")
    base = list(base)
    labels = [r.label for r in base]
    if base and min(labels.count(0), labels.count(1)) >= 2:
        train_part, held_part = train_test_split(base, test_size=holdout, stratify=labels,
                                                 random_state=random_state)
    else:
        train_part, held_part = base, []
    n_recent = math.ceil(len(feedback) * holdout) if feedback else 0
    ordered = list(feedback)  # oldest first (feedback ids grow with time)
    recent = ordered[len(ordered) - n_recent:] if n_recent else []
    older = ordered[: len(ordered) - n_recent]
    return Split(train=list(train_part) + older, held_out=list(held_part) + recent, feedback=recent)


def fit_records(out_dir: Path, records: Sequence[LabeledComment], *, sources: list[dict[str, Any]],
                policy: ThresholdPolicy, random_state: int, progress: Progress,
                extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Fit, choose thresholds out-of-fold and save, as ``train_model`` does, from in-memory rows."""
    started = time.monotonic()
    comments = [r.comment for r in records]
    labels = np.array([r.label for r in records], dtype=int)
    if len(set(labels.tolist())) < 2:
        raise TrainingError("training data must contain both spam and ham")
    oof = out_of_fold_scores(comments, labels, random_state=random_state, progress=progress)
    thresholds = choose_thresholds(labels, oof, policy)
    progress(f"fitting on the {len(labels)} rows")  # the training part, or all rows when refitting after the gate
    pipeline = fit_pipeline(build_pipeline(random_state=random_state), comments, labels)
    metadata = {
        "training": {"sources": sources, "rows": int(len(labels)), "spam": int(labels.sum()),
                     "ham": int((labels == 0).sum()), "random_state": random_state,
                     "seconds": round(time.monotonic() - started, 2), "threshold_policy": policy.__dict__,
                     **(extra or {})},
        "metrics": {"out_of_fold": evaluate_scores(labels, oof, thresholds)},
    }
    return save_model(pipeline, out_dir, thresholds=thresholds, metadata=metadata)


def _fit_into(models_dir: Path, records: Sequence[LabeledComment], **fit: Any) -> dict[str, Any]:
    """:func:`fit_records` into a new ``<models_dir>/<version>/``, which appears complete or not at all."""
    models_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".candidate-", dir=models_dir))
    scratch.chmod(shared_mode(0o755))  # mkdtemp makes it owner-only; the service may run as another user
    try:
        meta = fit_records(scratch, records, **fit)
        scratch.rename(models_dir / str(meta["version"]))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return meta


def _feedback_ids(scorer: Scorer) -> tuple[set[int], bool]:
    """The feedback ids the model at ``scorer`` learned (from its metadata), and whether a
    retrain held some out of it."""
    training = scorer.metadata.get("training", {}) or {}
    ids: set[int] = set()
    held_out = False
    for src in training.get("sources", []):
        if isinstance(src, dict) and src.get("path") == FEEDBACK_SOURCE:
            ids.update(int(i) for i in src.get("feedback_ids", []))
            held_out = held_out or bool(src.get("held_out_feedback_ids"))
    return ids, held_out


def learned_feedback_ids(scorer: Scorer) -> Optional[set[int]]:
    """The feedback ids the model at ``scorer`` was trained on (none for a model ``train`` made),
    or None when it was made by a retrain that held some out (it did not learn those)."""
    ids, held_out = _feedback_ids(scorer)
    return None if held_out else ids


def seen_by(scorer: Scorer, rows: Sequence[LabeledComment], file_sha: dict[str, str]) -> list[bool]:
    """Which of ``rows`` the model at ``scorer`` was trained on, from its metadata.

    A base row counts as seen when its file (by SHA-256) is among the model's
    sources, unless the model was made by ``retrain`` and held that row out; a
    feedback row when its id is among the model's feedback ids.
    """
    training = scorer.metadata.get("training", {}) or {}
    shas = {src.get("sha256") for src in training.get("sources", []) if isinstance(src, dict)}
    ids, _ = _feedback_ids(scorer)
    held = set(training.get("held_out_keys", []))
    out = []
    for row in rows:
        if row.source == FEEDBACK_SOURCE:
            out.append(row.line in ids)
        else:
            out.append(file_sha.get(row.source) in shas and _short_key(row) not in held)
    return out


def gate_figures(cand: dict[str, Any], cand_scores: np.ndarray, cur: Scorer, cur_scores: np.ndarray,
                 rows: Sequence[LabeledComment], seen: Sequence[bool]) -> list[dict[str, Any]]:
    """The comparisons the gate judges: ham-flagged and spam-caught rates of both models.

    Per class: on the held-out rows the current model was not trained on, both
    models on the same rows; on the held-out rows it *was* trained on (its figures
    there would flatter it), the candidate against the current model's own
    out-of-fold figure, its estimate for unseen data.
    """
    labels = np.array([r.label for r in rows])
    unseen = ~np.array(seen, dtype=bool)
    cand_flag = cand_scores >= cand["thresholds"]["spam"]
    cur_flag = cur_scores >= cur.thresholds.spam
    oof = (cur.metadata.get("metrics", {}) or {}).get("out_of_fold", {}) or {}
    out: list[dict[str, Any]] = []
    for label, key, name in ((0, "false_positive_rate", "ham"), (1, "recall", "spam")):
        fair, learned = unseen & (labels == label), ~unseen & (labels == label)
        if fair.any():
            n = int(fair.sum())
            # Both models on the same rows: the difference's error comes from the rows they
            # disagree on (a paired comparison of two proportions).
            disagree = int((cand_flag[fair] != cur_flag[fair]).sum())
            out.append({"key": key, "n": n, "candidate": float(cand_flag[fair].mean()),
                        "current": float(cur_flag[fair].mean()), "se": math.sqrt(disagree) / n,
                        "basis": f"{n} held-out {name} neither model trained on"})
        if learned.any():
            n = int(learned.sum())
            cand_rate = float(cand_flag[learned].mean())
            if key in oof:
                reference, what = float(oof[key]), "its out-of-fold figure"
                # The out-of-fold figure was measured on the current model's own training rows.
                n_ref = int(oof.get("ham" if label == 0 else "spam", 0) or n)
                se = math.sqrt(_variance(cand_rate, n) + _variance(reference, n_ref))
            else:
                reference, what = float(cur_flag[learned].mean()), "its (in-sample) figure"
                se = math.sqrt(_variance(cand_rate, n))
            out.append({"key": key, "n": n, "candidate": cand_rate, "current": reference, "se": se,
                        "basis": f"{n} held-out {name} the current model trained on ({what})"})
    return out


def _variance(rate: float, n: int) -> float:
    """The sampling variance of a proportion measured on ``n`` rows (at least half a row's worth)."""
    rate = min(max(rate, 0.5 / n), 1 - 0.5 / n) if n > 1 else 0.5
    return rate * (1 - rate) / max(n, 1)


def _short_key(row: LabeledComment) -> str:
    import hashlib

    return hashlib.sha256(dedup_key(row.comment.comment_content).encode("utf-8")).hexdigest()[:16]


def evaluate(scorer: Scorer, rows: Sequence[LabeledComment]) -> tuple[dict[str, Any], np.ndarray]:
    """A model's held-out figures at its own operating point, and its scores."""
    scores = np.asarray(scorer.spam_probability([r.comment for r in rows]), dtype=float)
    result = evaluate_scores([r.label for r in rows], scores, scorer.thresholds)
    result["model_version"] = scorer.version
    return result, scores


def retrain(*, store: Any, models_dir: Path, current: Optional[Scorer], data: Sequence[str | Path] = (),
            use_seed: bool = True, holdout: float = 0.2, gate: Gate = Gate(), force: bool = False,
            policy: ThresholdPolicy = ThresholdPolicy(), random_state: int = 0,
            progress: Optional[Progress] = None) -> RetrainResult:
    """Train a candidate, compare it with ``current`` on the same held-out data, and decide.

    Writes the candidate to ``<models_dir>/<version>/``; registering and
    activating it is the caller's job (see ``commentguard retrain``).
    """
    say = progress or (lambda _m: None)
    say("gathering the base data and the moderator feedback")
    base, feedback = gather(data, use_seed=use_seed, store=store)
    for problem in base.problems[:PROBLEMS_SHOWN]:
        say(f"warning: {problem}")  # a malformed row is left out, never silently
    if len(base.problems) > PROBLEMS_SHOWN:
        say(f"warning: ... and {len(base.problems) - PROBLEMS_SHOWN} more rows reported")
    if current is not None and not data and not force:
        learned = learned_feedback_ids(current)
        if learned is not None and learned == {r.line for r in feedback}:
            raise NothingToLearn(f"nothing new to learn: the current model {current.version} learned "
                                 f"the same {len(feedback)} moderator labels the store holds now")
    parts = split(base.records, feedback, holdout, random_state)
    say(f"{len(base.records)} base rows, {len(feedback)} feedback labels; training on {len(parts.train)}, "
        f"holding out {len(parts.held_out)} ({len(parts.feedback)} of them recent feedback)")
    held_base = {r.label for r in parts.held_out if r.source != FEEDBACK_SOURCE}
    if current is not None and held_base != {0, 1} and not force:
        raise TrainingError("the gate needs held-out base data of both spam and ham (the seed corpus or "
                            "--data files): judged on recent reports alone, it cannot tell a candidate "
                            "that forgot ordinary spam. Add --data, or --force with a --reason")
    held_labels = {r.label for r in parts.held_out}
    if held_labels != {0, 1}:
        raise TrainingError("the held-out data needs both spam and ham: add base data or feedback")
    held_ids = {r.line for r in parts.feedback}
    # feedback_ids: the labels the candidate learned from (seen_by reads them); the held-out ones apart.
    feedback_source = {"path": FEEDBACK_SOURCE, "format": "store", "rows_kept": len(feedback),
                       "spam": sum(r.label for r in feedback),
                       "feedback_ids": sorted(r.line for r in feedback if r.line not in held_ids),
                       "held_out_feedback_ids": sorted(held_ids)}
    meta = _fit_into(models_dir, parts.train, sources=base.sources + [feedback_source], policy=policy,
                     random_state=random_state, progress=say,
                     extra={"holdout": holdout, "held_out_rows": len(parts.held_out),
                            "held_out_keys": sorted(_short_key(r) for r in parts.held_out
                                                    if r.source != FEEDBACK_SOURCE),
                            "held_out_feedback": len(parts.feedback), "seed_corpus": use_seed})
    target = models_dir / str(meta["version"])
    candidate = load_model(target)
    say("evaluating the candidate and the current model on the same held-out data")
    cand_eval, cand_scores = evaluate(candidate, parts.held_out)
    cur_eval, cur_scores = evaluate(current, parts.held_out) if current is not None else (None, None)
    comparisons = None
    if current is not None:
        file_sha = {str(src.get("path")): str(src.get("sha256")) for src in base.sources}
        seen = seen_by(current, parts.held_out, file_sha)
        comparisons = gate_figures(cand_eval, cand_scores, current, cur_scores, parts.held_out, seen)
    promote, why = gate.decide(comparisons)
    too_few = gate.too_few(comparisons) if comparisons is not None and not promote else None
    forced = force and not promote
    if promote or force:
        say(f"refitting the candidate on all {len(parts.train) + len(parts.held_out)} rows, "
            "the held-out ones included")
        all_source = dict(feedback_source, feedback_ids=sorted(r.line for r in feedback), held_out_feedback_ids=[])
        gate_facts = {"candidate_version": str(meta["version"]), "held_out_rows": len(parts.held_out),
                      "held_out": {k: cand_eval.get(k) for k in ("n", "spam", "recall", "false_positive_rate")}}
        # The gate's candidate goes first (it is in memory): the refit replaces it, and on a models
        # volume with room for one more model only, keeping it until then failed the refit for
        # want of space and left it behind, unregistered, to fail every later retrain too.
        shutil.rmtree(target, ignore_errors=True)
        meta = _fit_into(models_dir, parts.train + parts.held_out, sources=base.sources + [all_source],
                         policy=policy, random_state=random_state, progress=say,
                         extra={"holdout": holdout, "refit_after_gate": gate_facts, "seed_corpus": use_seed})
        target = models_dir / str(meta["version"])
        why += f"; promoted as the same recipe refitted on all {len(parts.train) + len(parts.held_out)} rows"
    result = RetrainResult(
        version=str(meta["version"]), path=target, promoted=promote or force, forced=forced,
        decision=why, gate=gate, candidate_eval=cand_eval, current_eval=cur_eval,
        current_version=current.version if current is not None else None, metadata=meta,
        held_out=parts.held_out, candidate_scores=cand_scores, current_scores=cur_scores,
        feedback=feedback, feedback_held_out=len(parts.feedback), too_few=too_few)
    if parts.feedback:
        result.candidate_feedback_eval = evaluate(candidate, parts.feedback)[0]
        if current is not None:
            result.current_feedback_eval = evaluate(current, parts.feedback)[0]
    if feedback:
        comments = [r.comment for r in feedback]
        result.feedback_candidate_scores = candidate.spam_probability(comments)
        if current is not None:
            result.feedback_current_scores = current.spam_probability(comments)
            result.feedback_current_right = [
                (current.thresholds.tier(float(s)) in ("spam", "discard")) == bool(row.label)
                for row, s in zip(feedback, result.feedback_current_scores)]
    return result


__all__ = ["FEEDBACK_SOURCE", "Gate", "NothingToLearn", "learned_feedback_ids", "gate_figures", "seen_by", "RetrainResult", "Split", "evaluate", "feedback_records",
           "fit_records", "gather", "retrain", "split"]
