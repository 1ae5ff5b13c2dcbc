"""The scorer: a fitted pipeline plus thresholds, giving verdicts with reasons.

It owns the path from comment records to :class:`~model.verdict.Verdict`: the
spam probability (the logistic regression's, computed from the same per-feature
contributions used for the explanation, so score and reasons always agree), the
tier from the thresholds, and the reasons from those contributions. Scoring goes
through :class:`~model.fastpath.CompiledModel`, compiled from the pipeline when
the scorer is built; it gives the pipeline's own numbers without its per-call
overhead.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np
from sklearn.pipeline import Pipeline

from model.comment import Comment
from model.fastpath import CompiledModel, Contribution
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
        names = feature_names(pipeline).astype(str).tolist()
        # Split "block__feature" once, so explaining a comment is a few list lookups.
        self._block: list[str] = [n.split("__", 1)[0] for n in names]
        self._name: list[str] = [n.split("__", 1)[1] for n in names]
        # Raises FastPathUnsupportedError for a pipeline it cannot reproduce exactly.
        self.compiled = CompiledModel(pipeline)

    def score(self, comment: Comment, thresholds: Thresholds | None = None) -> Verdict:
        """The verdict for one comment."""
        return self.score_many([comment], thresholds)[0]

    def score_many(self, comments: Sequence[Comment],
                   thresholds: Thresholds | None = None) -> list[Verdict]:
        """Verdicts for many comments, in one call (each scored by the compiled fast path)."""
        limits = thresholds or self.thresholds
        verdicts = []
        for result in self.compiled.score_many(comments):
            reasons = self._explain(result.text, result.contributions, result.score)
            verdicts.append(Verdict(limits.tier(result.score), result.score, reasons, self.version))
        return verdicts

    def spam_probability(self, comments: Iterable[Any]) -> np.ndarray:
        """Spam probabilities only (no reasons), for evaluation over many comments.

        Equal to ``pipeline.predict_proba(comments)[:, 1]`` (to ~1e-15), computed by the fast path.
        """
        return self.compiled.spam_probability(comments)

    def _explain(self, text: str, contributions: Iterable[Contribution],
                 score: float) -> tuple[Reason, ...]:
        """Reasons from (column, log-odds contribution) pairs, in the feature matrix's column order."""
        grouped: dict[str, float] = defaultdict(float)
        char_grams: list[tuple[str, float]] = []
        for col, value in contributions:
            block, name = self._block[col], self._name[col]
            if block == "chars":
                char_grams.append((name, value))
            elif block == "words":
                grouped[describe_ngram(name)] += value
            else:
                grouped[describe_meta(name)] += value
        for word, value in credit_char_ngrams(text, char_grams).items():
            grouped[describe_ngram(word)] += value
        return top_reasons(grouped, score)
