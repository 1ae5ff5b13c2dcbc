"""The scorer: a compiled model plus thresholds, giving verdicts with reasons.

It owns the path from comment records to :class:`~model.verdict.Verdict`: the
spam probability (the logistic regression's, computed from the same per-feature
contributions used for the explanation, so score and reasons always agree), the
tier from the thresholds, and the reasons from those contributions. Scoring goes
through :class:`~model.fastpath.CompiledModel`, compiled from the fitted pipeline
(or read from an artifact's serving tables, model.tables); it gives the
pipeline's own numbers without its per-call overhead. This module does not
import scikit-learn.

Scoring holds a per-scorer lock, one comment at a time. It is CPU work, and the numpy engine gives
the GIL up inside it (sorts, searches, larger loops): two threads of one worker scoring at
once hand the GIL back and forth at each of those points, which measured ~25%
more CPU per comment and a p99 five times longer than scoring one after the
other (2 threads × 600 YouTube comments, in-process). Under the lock the other
thread waits asleep, or does its request's other, pure-Python, work.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from model.comment import Comment
from model.fastpath import MAX_CACHED_WORD, CompiledModel, Contribution, Explained, column_terms
from model.reasons import credit_char_ngrams, describe_meta, describe_ngram, quiet_words, top_reasons
from model.verdict import HAM, Reason, Thresholds, Verdict


#: The feature block whose character n-grams are credited to the words they were cut from.
CHAR_BLOCK = "chars"
#: Distinct words whose reason text is cached (emptied when full).
WORD_TEXT_CACHE_SIZE = 20_000


class Scorer:
    """Scores comments with a compiled model; shared between threads (one scores at a time)."""

    def __init__(self, model: Any, *, thresholds: Thresholds, version: str,
                 metadata: dict[str, Any] | None = None, engine: str | None = None,
                 quiet: Iterable[str] | None = None,
                 pipeline_loader: Callable[[], Any] | None = None) -> None:
        """``model``: a fitted pipeline, or a :class:`CompiledModel` (``engine`` is then its own).

        ``quiet``: the function words reasons leave out (default: model.reasons.quiet_words).
        ``pipeline_loader``: gives the fitted pipeline on first use of :attr:`pipeline` when
        ``model`` is a compiled one (an artifact's pickle, unpickled only when asked for).
        """
        if isinstance(model, CompiledModel):
            compiled, self._pipeline = model, None
        else:
            # Raises FastPathUnsupportedError for a pipeline it cannot reproduce exactly.
            compiled, self._pipeline = CompiledModel(model, engine), model
        self._pipeline_loader = pipeline_loader
        self.compiled = compiled
        self.thresholds = thresholds
        self.version = version
        self.metadata: dict[str, Any] = dict(metadata or {})
        # Each column's block and term, so explaining a comment is a few list lookups.
        blocks = compiled.spec.blocks
        self._block: list[str] = [block.name for block in blocks for _ in range(len(block.vocab))]
        self._name: list[str] = [term for block in blocks for term in column_terms(block.vocab)]
        self._quiet = frozenset(quiet_words() if quiet is None else quiet)
        #: The description of each words/meta column, filled on first use (the vocabulary is
        #: large, a comment touches a few dozen columns); each word credited from char n-grams.
        self._column_text: dict[int, str] = {}
        self._word_text: dict[str, str] = {}
        #: The char n-grams are credited to words inside the fast path when it can (char_wb).
        self._fast_credit = self.compiled.can_credit(CHAR_BLOCK)
        self._lock = threading.Lock()

    @property
    def pipeline(self) -> Any:
        """The fitted scikit-learn pipeline (unpickled from the artifact on first use when served from tables)."""
        if self._pipeline is None:
            if self._pipeline_loader is None:
                raise AttributeError("this scorer was built without its pipeline")
            self._pipeline = self._pipeline_loader()
        return self._pipeline

    @property
    def engine(self) -> str:
        """What scores the text features: ``"c"`` (the compiled core) or ``"numpy"`` (model.fastpath)."""
        return self.compiled.engine

    def score(self, comment: Comment, thresholds: Thresholds | None = None) -> Verdict:
        """The verdict for one comment."""
        return self.score_many([comment], thresholds)[0]

    def score_many(self, comments: Sequence[Comment],
                   thresholds: Thresholds | None = None) -> list[Verdict]:
        """Verdicts for many comments, in one call (each scored by the compiled fast path)."""
        limits = thresholds or self.thresholds
        # The lock is taken per comment, so a batch does not hold up another thread's check.
        return [self._score_one(comment, limits) for comment in comments]

    def _score_one(self, comment: Comment, limits: Thresholds) -> Verdict:
        compiled = self.compiled
        with self._lock:
            # The reasons explain the verdict, so the tier is decided first.
            if self._fast_credit:
                explained = compiled.explain_prepared(compiled.prepare(comment), CHAR_BLOCK)
                score = explained.score
                tier = limits.tier(score)
                reasons = self._explain_credited(explained, tier != HAM)
            else:
                result = compiled.score(comment)
                score = result.score
                tier = limits.tier(score)
                reasons = self._explain(result.text, result.contributions, tier != HAM)
        return Verdict(tier, score, reasons, self.version)

    def spam_probability(self, comments: Iterable[Any]) -> np.ndarray:
        """Spam probabilities only (no reasons), for evaluation over many comments.

        Equal to ``pipeline.predict_proba(comments)[:, 1]`` (to ~1e-15), computed by the fast path.
        """
        return self.compiled.spam_probability(comments)

    def _explain_credited(self, explained: Explained, toward_spam: bool) -> tuple[Reason, ...]:
        """:meth:`_explain` with the char n-grams already credited to words by the fast path.

        The same groups, summed in the same order, so the same reasons and weights.
        """
        grouped: dict[str, float] = {}
        get = grouped.get
        column_text = self._column_text
        for col, value in explained.contributions:
            text = column_text.get(col)
            if text is None:
                text = column_text[col] = self._describe_column(col)
            grouped[text] = get(text, 0.0) + value
        word_text = self._word_text
        for word, value in explained.word_credit.items():
            text = word_text.get(word)
            if text is None:
                text = describe_ngram(word, self._quiet)
                if len(word) <= MAX_CACHED_WORD:  # long words would fill memory (model.fastpath)
                    if len(word_text) >= WORD_TEXT_CACHE_SIZE:
                        word_text.clear()
                    word_text[word] = text
            grouped[text] = get(text, 0.0) + value
        return top_reasons(grouped, toward_spam)

    def _describe_column(self, col: int) -> str:
        if self._block[col] == "words":
            return describe_ngram(self._name[col], self._quiet)
        return describe_meta(self._name[col])

    def _explain(self, text: str, contributions: Iterable[Contribution],
                 toward_spam: bool) -> tuple[Reason, ...]:
        """Reasons from (column, log-odds contribution) pairs, in the feature matrix's column order."""
        grouped: dict[str, float] = defaultdict(float)
        char_grams: list[tuple[str, float]] = []
        for col, value in contributions:
            block, name = self._block[col], self._name[col]
            if block == "chars":
                char_grams.append((name, value))
            elif block == "words":
                grouped[describe_ngram(name, self._quiet)] += value
            else:
                grouped[describe_meta(name)] += value
        for word, value in credit_char_ngrams(text, char_grams).items():
            grouped[describe_ngram(word, self._quiet)] += value
        return top_reasons(grouped, toward_spam)
