"""The scorer: a fitted pipeline plus thresholds, giving verdicts with reasons.

It owns the path from comment records to :class:`~model.verdict.Verdict`: the
spam probability (the logistic regression's, computed from the same feature
row used for the explanation, so score and reasons always agree), the tier
from the thresholds, and the reasons from the per-feature contributions.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import sparse
from sklearn.pipeline import Pipeline

from model.comment import Comment
from model.features import PreparedComment
from model.pipeline import feature_names
from model.reasons import credit_char_ngrams, describe_meta, describe_ngram, top_reasons
from model.verdict import Reason, Thresholds, Verdict


class Scorer:
    """Scores comments with a fitted pipeline; cheap to share between threads (read-only)."""

    def __init__(self, pipeline: Pipeline, *, thresholds: Thresholds, version: str,
                 metadata: dict[str, Any] | None = None) -> None:
        self.pipeline = pipeline
        self.thresholds = thresholds
        self.version = version
        self.metadata: dict[str, Any] = dict(metadata or {})
        classifier = pipeline.named_steps["classifier"]
        self._coef = np.asarray(classifier.coef_[0], dtype=np.float64)
        self._intercept = float(classifier.intercept_[0])
        names = feature_names(pipeline).astype(str)
        # Split "block__feature" once, so explaining a comment is a few lookups.
        self._block = np.array([n.split("__", 1)[0] for n in names])
        self._name = np.array([n.split("__", 1)[1] for n in names], dtype=object)
        self._prepare = pipeline.named_steps["prepare"]
        self._features = pipeline.named_steps["features"]

    def score(self, comment: Comment, thresholds: Thresholds | None = None) -> Verdict:
        """The verdict for one comment."""
        return self.score_many([comment], thresholds)[0]

    def score_many(self, comments: Sequence[Comment],
                   thresholds: Thresholds | None = None) -> list[Verdict]:
        """Verdicts for many comments, computed together (one feature matrix)."""
        if not comments:
            return []
        limits = thresholds or self.thresholds
        prepared: list[PreparedComment] = self._prepare.transform(comments)
        matrix = sparse.csr_matrix(self._features.transform(prepared))
        logits = matrix @ self._coef + self._intercept
        scores = _sigmoid(logits)
        verdicts = []
        for i, (item, score) in enumerate(zip(prepared, scores)):
            reasons = self._explain(item.text, matrix.getrow(i), float(score))
            verdicts.append(Verdict(limits.tier(float(score)), float(score), reasons, self.version))
        return verdicts

    def spam_probability(self, comments: Iterable[Any]) -> np.ndarray:
        """Spam probabilities only (no reasons), for evaluation over many comments."""
        return self.pipeline.predict_proba(list(comments))[:, 1]

    def _explain(self, text: str, row: sparse.csr_matrix, score: float) -> tuple[Reason, ...]:
        cols = row.indices
        values = row.data * self._coef[cols]
        grouped: dict[str, float] = defaultdict(float)
        char_grams: list[tuple[str, float]] = []
        for col, value in zip(cols, values):
            block, name = self._block[col], self._name[col]
            if block == "chars":
                char_grams.append((name, float(value)))
            elif block == "words":
                grouped[describe_ngram(name)] += float(value)
            else:
                grouped[describe_meta(name)] += float(value)
        for word, value in credit_char_ngrams(text, char_grams).items():
            grouped[describe_ngram(word)] += value
        return top_reasons(grouped, score)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -500, 500)))
