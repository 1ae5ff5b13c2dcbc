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
import resource
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from model.artifact import save_model
from model.comment import Comment
from model.pipeline import (
    CommentPreparer,
    apply_monotone_constraints,
    build_pipeline,
    fold_feature_scaling,
)
from training.formats import detect_format
from training.loaders import iter_file
from training.metrics import evaluate_scores
from training.records import DataFormatError, LabeledComment, RowProblem, SkippedRow, dedup_key
from training.thresholds import ThresholdPolicy, choose_thresholds

Progress = Callable[[str], None]

#: Inputs with more rows than this (seed corpus included) train on the streaming path.
STREAMING_ROWS = 200_000
#: Rows the vocabularies, idf and naive-Bayes scaling are fitted on.
SAMPLE_ROWS = 60_000
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
#: L2 penalty of the SGD learner (per row; about C = 1 / (alpha · rows)).
SGD_ALPHA = 2e-6
_KEEP, _DROP = 1, 0
_WORD_CACHE = 200_000


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
                    if len(survey.sample) < SAMPLE_ROWS:
                        survey.sample.append((row.comment, row.label))
                    elif (j := rng.randrange(seen_train)) < SAMPLE_ROWS:
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


# -- features: fitted on the sample; a fast, identical transform for pass 2 ------------------------

class FastFeatures:
    """``FeatureUnion.transform`` of prepared comments, with char_wb n-grams counted per word.

    The fitted union is used as it is; only a ``char_wb`` TfidfVectorizer's
    counting is replaced by a per-word cache of column ids (the analyser pads
    and slices each word on its own, so a word always gives the same columns).
    The idf, sublinear tf and norm are the vectorizer's own ``_tfidf`` step.
    """

    def __init__(self, features: FeatureUnion) -> None:
        self.features = features
        self._caches: dict[int, dict[str, np.ndarray]] = {}

    def transform(self, prepared: list[Any]) -> sparse.csr_matrix:
        weights = self.features.transformer_weights or {}
        blocks = []
        for name, block in self.features.transformer_list:
            X: Any = prepared
            for _step, transformer in block.steps:
                if type(transformer) is TfidfVectorizer and transformer.analyzer == "char_wb":
                    X = self._char_wb(transformer, X)
                else:
                    X = transformer.transform(X)
            X = sparse.csr_matrix(X)
            if weights.get(name, 1) != 1:
                X = X * weights[name]
            blocks.append(X)
        return sparse.hstack(blocks, format="csr")

    def _char_wb(self, vec: TfidfVectorizer, texts: list[str]) -> sparse.csr_matrix:
        cache = self._caches.setdefault(id(vec), {})
        if len(cache) > _WORD_CACHE:
            cache.clear()
        vocabulary, analyse = vec.vocabulary_, vec.build_analyzer()
        preprocess = vec.build_preprocessor()
        indices: list[np.ndarray] = []
        indptr = [0]
        for text in texts:
            for word in preprocess(text).split():
                ids = cache.get(word)
                if ids is None:
                    ids = np.fromiter((vocabulary[g] for g in analyse(word) if g in vocabulary),
                                      dtype=np.int32)
                    cache[word] = ids
                indices.append(ids)
            indptr.append(indptr[-1] + sum(len(a) for a in indices[len(indices) - 0:]) if False else 0)
            indptr[-1] = sum(map(len, indices)) if False else indptr[-1]
        return self._counts(vec, texts, preprocess, cache)

    def _counts(self, vec: TfidfVectorizer, texts: list[str], preprocess: Callable[[str], str],
                cache: dict[str, np.ndarray]) -> sparse.csr_matrix:
        parts: list[np.ndarray] = []
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        for i, text in enumerate(texts):
            n = 0
            for word in preprocess(text).split():
                ids = cache[word]
                parts.append(ids)
                n += len(ids)
            indptr[i + 1] = indptr[i] + n
        indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        counts = sparse.csr_matrix((np.ones(len(indices), dtype=vec.dtype), indices, indptr),
                                   shape=(len(texts), len(vec.vocabulary_)))
        counts.sum_duplicates()
        counts.sort_indices()
        if vec.binary:
            counts.data.fill(1)
        return vec._tfidf.transform(counts, copy=False)
