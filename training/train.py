"""Training: fit the pipeline, choose thresholds from out-of-fold scores, write the artifact.

One call, :func:`train_model`, does what ``commentguard train`` promises:
load the data (seed corpus and/or files), remove duplicates, score every
training comment out-of-fold to choose the tier thresholds, fit the final
model on all of it, evaluate it, and save the artifact with its metadata.
"""
from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from model.artifact import save_model
from model.pipeline import build_pipeline, fit_pipeline
from model.verdict import Thresholds
from training.loaders import LoadedData, load_files
from training.metrics import evaluate_scores
from training.seed import seed_files
from training.thresholds import ThresholdPolicy, choose_thresholds

Progress = Callable[[str], None]


class TrainingError(ValueError):
    """Raised when the data cannot train a model (no files, one class only, too few rows).

    ``problems``: the rows reported while loading (they may be why too little was left),
    the first of them; ``problem_count``: how many there were in all.
    """

    def __init__(self, message: str, problems: Sequence[Any] = (), problem_count: int | None = None) -> None:
        super().__init__(message)
        self.problems = [str(p) for p in problems]
        self.problem_count = len(self.problems) if problem_count is None else problem_count


@dataclass
class TrainingResult:
    """What a training run produced: the artifact's metadata and the rows reported while loading.

    ``problems`` may be the first of them only (the streaming path keeps 1,000);
    ``problem_count`` is how many there were in all.
    """

    metadata: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0


def load_training_data(data: Sequence[str | Path], *, use_seed: bool = True,
                       fmt: str | None = None, strict: bool = False) -> LoadedData:
    """The seed corpus (unless ``use_seed`` is false) plus every file in ``data``, deduplicated."""
    paths: list[str | Path] = [*seed_files()] if use_seed else []
    paths += list(data)
    if not paths:
        raise TrainingError("no training data: give --data files or leave the seed corpus on")
    # A named format applies to the --data files only; the seed's is always detected (generic).
    formats = [None] * (len(paths) - len(data)) + [fmt] * len(data)
    return load_files(paths, strict=strict, formats=formats)


def out_of_fold_scores(comments: list[Any], labels: np.ndarray, *, folds: int = 5,
                       random_state: int = 0, progress: Progress | None = None) -> np.ndarray:
    """Each comment's spam probability from a model that did not see it (stratified k-fold)."""
    n_folds = int(min(folds, np.bincount(labels).min()))
    if n_folds < 2:
        raise TrainingError("each class needs at least 2 examples to choose thresholds")
    scores = np.zeros(len(labels), dtype=float)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    template = build_pipeline(random_state=random_state)
    for k, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(len(labels)), labels), 1):
        if progress:
            progress(f"cross-validation fold {k}/{n_folds}")
        model = fit_pipeline(clone(template), [comments[i] for i in train_idx], labels[train_idx])
        scores[test_idx] = model.predict_proba([comments[i] for i in test_idx])[:, 1]
    return scores


def train_model(out_dir: str | Path, data: Sequence[str | Path] = (), *, use_seed: bool = True,
                fmt: str | None = None, strict: bool = False,
                policy: ThresholdPolicy = ThresholdPolicy(), random_state: int = 0,
                progress: Progress | None = None, streaming: bool | None = None) -> TrainingResult:
    """Train on the seed corpus and/or files and write the artifact to ``out_dir``.

    ``streaming`` None picks the path by the input's size (see :mod:`training.large`);
    True or False forces the streaming or the in-memory path.
    """
    from training import large

    files = ([*seed_files()] if use_seed else []) + list(data)
    if streaming is None:
        streaming = bool(data) and large.should_stream(files)
    if streaming:
        if not files:
            raise TrainingError("no training data: give --data files or leave the seed corpus on")
        paths = [(p, None) for p in seed_files()] if use_seed else []
        paths += [(p, fmt) for p in data]  # a named format applies to the --data files only
        return large.train_streaming(out_dir, paths, strict=strict, policy=policy, use_seed=use_seed,
                                     random_state=random_state, progress=progress)
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    say("loading training data")
    loaded = load_training_data(data, use_seed=use_seed, fmt=fmt, strict=strict)
    comments = [r.comment for r in loaded.records]
    labels = np.array([r.label for r in loaded.records], dtype=int)
    if len(set(labels.tolist())) < 2:
        raise TrainingError("training data must contain both spam and ham", loaded.problems)
    say(f"{len(labels)} comments ({int(labels.sum())} spam) after removing duplicates; "
        f"{len(loaded.problems)} rows reported")
    try:
        oof = out_of_fold_scores(comments, labels, random_state=random_state, progress=say)
    except TrainingError as exc:
        raise TrainingError(str(exc), loaded.problems) from None
    thresholds = choose_thresholds(labels, oof, policy)
    say("fitting the final model on all training data")
    pipeline = fit_pipeline(build_pipeline(random_state=random_state), comments, labels)
    evaluation = evaluate_scores(labels, oof, thresholds)
    metadata = {
        "training": {
            "path": "in-memory",
            "sources": loaded.sources,
            "rows": int(len(labels)),
            "spam": int(labels.sum()),
            "ham": int((labels == 0).sum()),
            "seed_corpus": use_seed,
            "problems": len(loaded.problems),
            "random_state": random_state,
            "seconds": round(time.monotonic() - started, 2),
            "peak_rss_mb": peak_rss_mb(),
            "threshold_policy": policy.__dict__,
        },
        "metrics": {"out_of_fold": evaluation},
    }
    say(f"writing the artifact to {out_dir}")
    meta = save_model(pipeline, out_dir, thresholds=thresholds, metadata=metadata)
    return TrainingResult(metadata=meta, problems=[str(p) for p in loaded.problems],
                          problem_count=len(loaded.problems))


def peak_rss_mb() -> dict[str, float]:
    """The peak resident memory so far, in MiB: this process's, and its largest child's (workers)."""
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 / (1024 * 1024) if sys.platform == "darwin" else 1 / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"main": round(own, 1), "largest_worker": round(child, 1)}


__all__ = ["TrainingError", "TrainingResult", "train_model", "load_training_data",
           "out_of_fold_scores", "Thresholds"]
