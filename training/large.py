"""Training on corpora too large for the in-memory path: two streaming passes, bounded memory.

:func:`training.train.train_model` hands over to :func:`train_streaming` when the
input has more than :data:`STREAMING_ROWS` rows (counted cheaply as lines, see
:func:`should_stream`), or when asked to. It produces the same artifact as the
in-memory path: the ``prepare → features → classifier`` pipeline with fitted
TfidfVectorizer/DictVectorizer blocks and a fitted binary LogisticRegression.

1. **Pass 1** streams every file (:func:`training.loaders.iter_file`), counts and
   reports rows like the loaders do, removes exact duplicates by an 8-byte
   BLAKE2b digest of the loaders' duplicate key (a set of ints, ~70 B a row),
   sets a hash-chosen share of the rows aside as held-out data, and keeps a
   reservoir sample of the training rows.
2. The feature blocks (vocabularies with ``max_features`` caps, idf, the
   naive-Bayes column scaling) are fitted on the sample.
3. **Pass 2** streams the files again: worker processes prepare and vectorise
   chunks (character n-grams through a per-word cache, identical to the
   vectorizer's own output), a shuffle buffer mixes the order, and
   ``SGDClassifier(loss="log_loss")`` learns with ``partial_fit`` (classes
   weighted to balance from the pass-1 counts, as the in-memory path does).
4. The SGD weights become a LogisticRegression (same model, ``sigmoid(X·w + b)``),
   the scaling is folded in and the monotone constraints applied; thresholds
   come from the held-out rows' scores instead of cross-validation.

Time and memory grow linearly with the rows (the sample, the vocabularies and
the held-out share are capped).
"""
from __future__ import annotations

import hashlib
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from model.artifact import save_model
from model.comment import Comment
from model.pipeline import (
    DEFAULT_C,
    CommentPreparer,
    apply_monotone_constraints,
    build_pipeline,
    fold_feature_scaling,
)
from training.fast_features import FastFeatures
from training.formats import detect_format
from training.loaders import iter_file
from training.metrics import evaluate_scores
from training.records import LabeledComment, RowProblem, SkippedRow, dedup_key
from training.thresholds import ThresholdPolicy, choose_thresholds

Progress = Callable[[str], None]

#: Inputs with more rows than this (seed corpus included) train on the streaming path.
STREAMING_ROWS = 50_000
#: Rows the vocabularies, idf and naive-Bayes scaling are fitted on: this share of the
#: training rows, within SAMPLE_ROWS (proportional, so that the cost stays linear).
SAMPLE_SHARE = 0.06
SAMPLE_ROWS = (5_000, 60_000)
#: Size caps of the word and character vocabularies.
MAX_FEATURES = 2 ** 18
#: Rows set aside to choose thresholds and evaluate: about this many, within HOLDOUT_SHARE.
HOLDOUT_ROWS = 10_000
HOLDOUT_SHARE = (0.01, 0.2)
#: Rows per chunk sent to a worker, and rows the shuffle buffer holds.
CHUNK_ROWS = 4_000
SHUFFLE_ROWS = 40_000
#: Problems kept in memory for the report (all are counted).
PROBLEMS_KEPT = 1_000
#: L2 penalty of the SGD learner (per row; about C = 1 / (alpha · rows)). A smaller input
#: (``--streaming`` forced below the cut-over) is regularised at least as much as the in-memory
#: path's ``DEFAULT_C`` would (:func:`sgd_alpha`): with 2e-6 alone, 5,000 generated rows had
#: C = 100, ham scored so close to 1.0 that the spam threshold ended at 1.0, and 1.0-1.6% of the
#: held-out ham was flagged against a policy of 1%. From about 31,000 rows on, 2e-6 is the larger.
SGD_ALPHA = 2e-6
_KEEP, _DROP = 1, 0


def sgd_alpha(rows: int) -> float:
    """The SGD learner's L2 penalty for ``rows`` training rows (see :data:`SGD_ALPHA`)."""
    return max(SGD_ALPHA, 1.0 / (DEFAULT_C * max(rows, 1)))


def count_lines(paths: Sequence[str | Path]) -> int:
    """Lines in the files: a cheap upper estimate of their rows (reads bytes, parses nothing)."""
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                total += block.count(b"\n")
    return total


def should_stream(paths: Sequence[str | Path], limit: int = STREAMING_ROWS) -> bool:
    """True when the files hold more than ``limit`` rows (estimated by their lines)."""
    return count_lines(paths) > limit


# -- progress -------------------------------------------------------------------------------------

class _Meter:
    """Says how a pass is going, at most every ``every`` seconds: rows, rows/s and ETA."""

    def __init__(self, say: Progress, label: str, total: int, every: float = 3.0) -> None:
        self.say, self.label, self.total, self.every = say, label, max(total, 1), every
        self.started = self.last = time.monotonic()

    def tick(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        left = max(self.total - done, 0) / max(rate, 1e-9)
        self.say(f"{self.label}: {done:,}/~{self.total:,} rows, {rate:,.0f} rows/s, "
                 f"ETA {int(left // 60)}m{int(left % 60):02d}s")


# -- pass 1: count, deduplicate, split, sample ------------------------------------------------------

@dataclass
class _Survey:
    """What pass 1 learnt: per-row keep flags, counts, problems, the sample and provenance."""

    keep: bytearray = field(default_factory=bytearray)
    sources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    problem_count: int = 0
    train_counts: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    held_counts: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    sample: list[tuple[Comment, int]] = field(default_factory=list)
    label_runs: int = 0


def _digest(text: str) -> int:
    key = dedup_key(text).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def _held_out(digest: int, share: float) -> bool:
    # The top bits decide, so the split is fixed by the text alone (deterministic, order-free).
    return (digest >> 40) < share * (1 << 24)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _survey(files: list[tuple[Path, str]], share: float, estimate: int, random_state: int,
            say: Progress) -> _Survey:
    survey = _Survey()
    first: dict[int, set[int]] = {0: set(), 1: set()}  # digests seen, by the first label
    rng = random.Random(random_state)
    meter = _Meter(say, "pass 1/2 (count, deduplicate, sample)", estimate)
    seen_train, previous, done = 0, -1, 0
    size = int(np.clip(SAMPLE_SHARE * estimate, *SAMPLE_ROWS))
    for path, name in files:
        counts = dict.fromkeys(("rows_read", "rows_kept", "duplicates_removed", "rows_skipped",
                                "rows_invalid"), 0)
        for _, row in iter_file(path, name):
            done += 1
            counts["rows_read"] += 1
            flag = _DROP
            if isinstance(row, SkippedRow):
                counts["rows_skipped"] += 1
            elif isinstance(row, RowProblem):
                counts["rows_invalid"] += 1
                _report(survey, row)
            else:
                flag = _accept(survey, first, row, counts, share)
                if flag == _KEEP and not _held_out(_digest(row.comment.comment_content), share):
                    seen_train += 1  # reservoir sampling (algorithm R) over the training rows
                    if len(survey.sample) < size:
                        survey.sample.append((row.comment, row.label))
                    elif (j := rng.randrange(seen_train)) < size:
                        survey.sample[j] = (row.comment, row.label)
                if flag == _KEEP:
                    survey.label_runs += row.label != previous
                    previous = row.label
            survey.keep.append(flag)
            if done % 2048 == 0:
                meter.tick(done)
        survey.sources.append({"path": str(path), "format": name, "sha256": _sha256(path), **counts})
    return survey


def _accept(survey: _Survey, first: dict[int, set[int]], row: LabeledComment,
            counts: dict[str, int], share: float) -> int:
    digest = _digest(row.comment.comment_content)
    if digest in first[row.label]:
        counts["duplicates_removed"] += 1
        return _DROP
    if digest in first[1 - row.label]:
        counts["duplicates_removed"] += 1
        _report(survey, RowProblem(row.source, row.line,
                                   "duplicate of an earlier row with a conflicting label (the first is kept)"))
        return _DROP
    first[row.label].add(digest)
    counts["rows_kept"] += 1
    bucket = survey.held_counts if _held_out(digest, share) else survey.train_counts
    bucket[row.label] += 1
    return _KEEP


def _report(survey: _Survey, problem: RowProblem) -> None:
    survey.problem_count += 1
    if len(survey.problems) < PROBLEMS_KEPT:
        survey.problems.append(problem)


# -- workers ---------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(features: FeatureUnion) -> None:
    _WORKER["fast"] = FastFeatures(features)
    _WORKER["prepare"] = CommentPreparer()


def _featurise(comments: list[Comment]) -> sparse.csr_matrix:
    return _WORKER["fast"].transform(_WORKER["prepare"].transform(comments))


def _prepare(comments: list[Comment]) -> list[Any]:
    return CommentPreparer().transform(comments)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Workers:
    """A process pool fed at most ``ahead`` chunks in advance, results in submission order."""

    def __init__(self, processes: int, features: FeatureUnion | None = None) -> None:
        context = get_context("fork") if "fork" in _start_methods() else get_context()
        self.pool = context.Pool(processes, _init_worker, (features,)) if features is not None \
            else context.Pool(processes)
        self.pending: deque[Any] = deque()
        self.ahead = 2 * processes + 1

    def submit(self, func: Callable[..., Any], arg: Any, tag: Any = None) -> Iterator[tuple[Any, Any]]:
        """Queue one task; yield (tag, result) of the oldest tasks while too many are waiting."""
        self.pending.append((tag, self.pool.apply_async(func, (arg,))))
        while len(self.pending) > self.ahead:
            tag_, result = self.pending.popleft()
            yield tag_, result.get()

    def drain(self) -> Iterator[tuple[Any, Any]]:
        while self.pending:
            tag, result = self.pending.popleft()
            yield tag, result.get()

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


# -- training --------------------------------------------------------------------------------------

def _fit_features(sample: list[tuple[Comment, int]], workers: int, random_state: int,
                  say: Progress) -> Pipeline:
    """The pipeline with its feature blocks (and naive-Bayes scaling) fitted on the sample."""
    say(f"fitting the vocabularies on a sample of {len(sample):,} rows")
    comments = [c for c, _ in sample]
    labels = np.array([y for _, y in sample], dtype=int)
    pool = _Workers(workers)
    prepared: list[Any] = []
    for chunk in _chunks(comments, CHUNK_ROWS):
        for _, part in pool.submit(_prepare, chunk):
            prepared += part
    for _, part in pool.drain():
        prepared += part
    pool.close()
    pipeline = build_pipeline(min_df=2, max_features=MAX_FEATURES, random_state=random_state)
    features = pipeline.named_steps["features"]
    # The blocks fit side by side in forked processes that inherit the prepared sample (no
    # copying it through pickles, and no worker pool left behind as joblib's would be).
    _WORKER["sample"] = (prepared, labels)
    pool = _Workers(min(workers, len(features.transformer_list)))
    try:
        fitted = [(name, pool.pool.apply_async(_fit_block, (block,)))
                  for name, block in features.transformer_list]
        features.transformer_list = [(name, result.get()) for name, result in fitted]
    finally:
        _WORKER.pop("sample", None)
        pool.close()
    return pipeline


def _fit_block(block: Pipeline) -> Pipeline:
    prepared, labels = _WORKER["sample"]
    return block.fit(prepared, labels)


def _class_weight(counts: np.ndarray) -> dict[int, float]:
    total = counts.sum()
    return {k: float(total / (2 * counts[k])) for k in (0, 1)}


def _pass_two(files: list[tuple[Path, str]], survey: _Survey, features: FeatureUnion,
              sgd: SGDClassifier, share: float, workers: int, random_state: int,
              say: Progress) -> tuple[list[sparse.csr_matrix], list[np.ndarray]]:
    """Stream the kept rows through the workers into ``sgd``; return the held-out X and y."""
    rng = np.random.default_rng(random_state)
    buffer_rows: list[tuple[Comment, int]] = []
    held_x: list[sparse.csr_matrix] = []
    held_y: list[np.ndarray] = []
    pool = _Workers(workers, features)
    total = int(survey.train_counts.sum() + survey.held_counts.sum())
    meter = _Meter(say, "pass 2/2 (features, learning)", total)
    done = 0

    def learn(results: Iterator[tuple[Any, sparse.csr_matrix]]) -> None:
        nonlocal done
        for (labels, held), X in results:
            if held.any():
                held_x.append(X[held])
                held_y.append(labels[held])
            train = ~held
            if train.any():
                sgd.partial_fit(X[train], labels[train], classes=np.array([0, 1]))
            done += len(labels)
            meter.tick(done)

    def send(rows: list[tuple[Comment, int]]) -> None:
        labels = np.array([y for _, y in rows], dtype=int)
        held = np.array([_held_out(_digest(c.comment_content), share) for c, _ in rows], dtype=bool)
        learn(pool.submit(_featurise, [c for c, _ in rows], (labels, held)))

    index = 0
    for path, name in files:
        for _, row in iter_file(path, name):
            flag = survey.keep[index]
            index += 1
            if flag != _KEEP or not isinstance(row, LabeledComment):
                continue
            buffer_rows.append((row.comment, row.label))
            if len(buffer_rows) >= SHUFFLE_ROWS:
                # Send a random half of the buffer: mixes the order within ~SHUFFLE_ROWS rows.
                order = rng.permutation(len(buffer_rows))
                out = [buffer_rows[i] for i in order[:SHUFFLE_ROWS // 2]]
                buffer_rows = [buffer_rows[i] for i in order[SHUFFLE_ROWS // 2:]]
                for chunk in _chunks(out, CHUNK_ROWS):
                    send(chunk)
    order = rng.permutation(len(buffer_rows))
    rest = [buffer_rows[i] for i in order]
    for chunk in _chunks(rest, CHUNK_ROWS):
        send(chunk)
    learn(pool.drain())
    pool.close()
    return held_x, held_y


def _as_logistic_regression(sgd: SGDClassifier, rows: int) -> LogisticRegression:
    """The SGD weights as a fitted LogisticRegression: the same ``sigmoid(X·w + b)`` model."""
    model = LogisticRegression(C=1.0 / (sgd.alpha * max(rows, 1)), class_weight=sgd.class_weight)
    model.classes_ = np.array([0, 1])
    model.coef_ = np.array(sgd.coef_, dtype=np.float64, copy=True)
    model.intercept_ = np.array(sgd.intercept_, dtype=np.float64, copy=True)
    model.n_features_in_ = sgd.coef_.shape[1]
    model.n_iter_ = np.array([1], dtype=np.int32)
    return model


def _resolve(paths: Sequence[tuple[str | Path, str | None]]) -> list[tuple[Path, str]]:
    files = []
    for path, fmt in paths:
        file = Path(path)
        files.append((file, fmt if fmt is not None else detect_format(file)))
    return files


def train_streaming(out_dir: str | Path, paths: Sequence[tuple[str | Path, str | None]], *,
                    strict: bool = False, policy: ThresholdPolicy = ThresholdPolicy(),
                    random_state: int = 0, use_seed: bool = False, workers: int | None = None,
                    progress: Progress | None = None) -> Any:
    """Train on ``paths`` (each ``(path, format or None)``) in two streaming passes; write the artifact.

    Returns a :class:`training.train.TrainingResult`; raises ``TrainingError``
    (no usable data, one class only, a held-out slice without both classes) or
    ``DataFormatError`` (unreadable files; any problem in ``strict`` mode).
    """
    from training.loaders import _strict_error
    from training.train import TrainingError, TrainingResult, peak_rss_mb

    started = time.monotonic()
    tell = progress or (lambda _msg: None)

    def say(message: str) -> None:
        tell(f"{time.monotonic() - started:6.1f}s {message}")

    workers = workers or max(1, min(os.cpu_count() or 1, 4))
    files = _resolve(paths)
    estimate = count_lines([f for f, _ in files])
    share = float(np.clip(HOLDOUT_ROWS / max(estimate, 1), *HOLDOUT_SHARE))
    say(f"streaming path: ~{estimate:,} rows in {len(files)} file(s), {workers} worker(s), "
        f"{share:.1%} held out")
    survey = _survey(files, share, estimate, random_state, say)
    sample_rows = len(survey.sample)
    if strict and survey.problems:
        raise _strict_error(survey.problems, survey.problem_count)
    train_n, held_n = survey.train_counts, survey.held_counts
    if (train_n + held_n).min() == 0:
        raise TrainingError("training data must contain both spam and ham", survey.problems, survey.problem_count)
    if train_n.min() == 0 or held_n.min() == 0:
        raise TrainingError("too few rows to set both classes aside for the held-out slice; "
                            "use the in-memory path (--in-memory)", survey.problems, survey.problem_count)
    rows = int(train_n.sum() + held_n.sum())
    say(f"{rows:,} comments ({int(train_n[1] + held_n[1]):,} spam) after removing duplicates; "
        f"{survey.problem_count} rows reported; {int(held_n.sum()):,} held out")
    spam_share = float(train_n[1] + held_n[1]) / rows
    if survey.label_runs < 0.1 * 2 * rows * spam_share * (1 - spam_share):
        say("warning: the rows look sorted by label; shuffled only within "
            f"{SHUFFLE_ROWS:,}-row windows, so the model may lean to the last label")
    pipeline = _fit_features(survey.sample, workers, random_state, say)
    survey.sample = []
    features = pipeline.named_steps["features"]
    alpha = sgd_alpha(int(train_n.sum()))
    sgd = SGDClassifier(loss="log_loss", alpha=alpha, class_weight=_class_weight(train_n),
                        average=True, random_state=random_state)
    held_x, held_y = _pass_two(files, survey, features, sgd, share, workers, random_state, say)
    pipeline.steps[-1] = ("classifier", _as_logistic_regression(sgd, int(train_n.sum())))
    # The constraints touch metadata columns only, which carry no naive-Bayes scaling, so they
    # may be applied before the scaling is folded in; the held-out rows (scaled features) are
    # then scored by exactly the weights the artifact will hold.
    apply_monotone_constraints(pipeline)
    say("scoring the held-out rows and choosing thresholds")
    labels = np.concatenate(held_y)
    scores = pipeline.named_steps["classifier"].predict_proba(sparse.vstack(held_x, format="csr"))[:, 1]
    fold_feature_scaling(pipeline)
    thresholds = choose_thresholds(labels, scores, policy)
    evaluation = evaluate_scores(labels, scores, thresholds)
    metadata = {
        "training": {
            "path": "streaming",
            "sources": survey.sources,
            "rows": rows,
            "spam": int(train_n[1] + held_n[1]),
            "ham": int(train_n[0] + held_n[0]),
            "trained_on": int(train_n.sum()),
            "held_out": int(held_n.sum()),
            "seed_corpus": use_seed,
            "problems": survey.problem_count,
            "random_state": random_state,
            "optimizer": {"name": "SGDClassifier", "loss": "log_loss", "alpha": alpha,
                          "average": True, "epochs": 1},
            "sample_rows": sample_rows,
            "max_features": MAX_FEATURES,
            "workers": workers,
            "seconds": round(time.monotonic() - started, 2),
            "peak_rss_mb": peak_rss_mb(),
            "threshold_policy": policy.__dict__,
        },
        "metrics": {"held_out": evaluation},
    }
    say(f"writing the artifact to {out_dir}")
    meta = save_model(pipeline, out_dir, thresholds=thresholds, metadata=metadata)
    return TrainingResult(metadata=meta, problems=[str(p) for p in survey.problems],
                          problem_count=survey.problem_count)
