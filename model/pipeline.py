"""The classifier pipeline: one scikit-learn ``Pipeline`` with named steps.

``prepare`` normalises each comment; ``features`` unites word n-grams,
character n-grams and the metadata one-hot block; ``classifier`` is a logistic
regression, whose output is a probability fitted by log-loss.

While fitting, each n-gram column is scaled by a naive-Bayes weight (NBSVM-style,
Wang & Manning 2012): the square root of the absolute log-ratio of its share in
spam and in ham. For an L2-regularised linear model that is a per-feature
penalty that lets n-grams which tell the classes apart carry weight cheaply and
keeps the rest near zero. The scaling is then folded into the coefficients and
the step removed (:func:`fit_pipeline`), so a fitted pipeline's feature blocks
are plain TF-IDF vectorizers and the score stays ``sigmoid(X·w + b)``. Classes are
weighted to balance, so the score is the spam probability under equal priors:
sites differ in their share of spam, and the thresholds chosen at training
time (not the 0.5 point) decide what is blocked. The Brier score in the
training report measures calibration. The transformers live in this
module because joblib pickles them by import path.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from model.comment import as_comment
from model.features import MONOTONE_PREFIXES, PreparedComment, prepare

WORD_PATTERN = r"(?u)\b\w+\b"


class CommentPreparer(BaseEstimator, TransformerMixin):
    """Turns comment records (or dicts with Akismet field names) into :class:`PreparedComment`."""

    def fit(self, X: Iterable[Any], y: Any = None) -> "CommentPreparer":
        return self

    def transform(self, X: Iterable[Any]) -> list[PreparedComment]:
        return [prepare(as_comment(item)) for item in X]


class TextOf(BaseEstimator, TransformerMixin):
    """Selects the normalised text of prepared comments."""

    def fit(self, X: Any, y: Any = None) -> "TextOf":
        return self

    def transform(self, X: Iterable[PreparedComment]) -> list[str]:
        return [p.text for p in X]


class MetaOf(BaseEstimator, TransformerMixin):
    """Selects the metadata tokens of prepared comments as a one-hot dict each."""

    def fit(self, X: Any, y: Any = None) -> "MetaOf":
        return self

    def transform(self, X: Iterable[PreparedComment]) -> list[dict[str, float]]:
        return [dict.fromkeys(p.meta, 1.0) for p in X]


class NaiveBayesScale(BaseEstimator, TransformerMixin):
    """Scales each column by ``|log(p_spam / p_ham)| ** power`` of its smoothed class shares.

    Only used while fitting: :func:`fit_pipeline` folds ``scale_`` into the
    classifier's coefficients and drops this step.
    """

    def __init__(self, alpha: float = 1.0, power: float = 0.5) -> None:
        self.alpha = alpha
        self.power = power

    def fit(self, X: Any, y: Any) -> "NaiveBayesScale":
        X = sparse.csr_matrix(X)
        y = np.asarray(y)
        spam = np.asarray(X[y == 1].sum(axis=0)).ravel() + self.alpha
        ham = np.asarray(X[y == 0].sum(axis=0)).ravel() + self.alpha
        ratio = np.log((spam / spam.sum()) / (ham / ham.sum()))
        self.scale_ = np.abs(ratio) ** self.power
        return self

    def transform(self, X: Any) -> sparse.csr_matrix:
        return sparse.csr_matrix(sparse.csr_matrix(X).multiply(self.scale_))


#: The logistic regression's inverse regularisation strength (chosen by cross-validation on the seed corpus).
DEFAULT_C = 16.0


def build_pipeline(*, c: float = DEFAULT_C, min_df: int = 1, max_features: int | None = None,
                   meta_weight: float = 1.0, char_weight: float = 1.0, word_weight: float = 1.0,
                   char_range: tuple[int, int] = (2, 5), char_analyzer: str = "char_wb",
                   word_range: tuple[int, int] = (1, 2), class_weight: str | None = "balanced",
                   nb_alpha: float = 1.0, nb_power: float = 0.5, random_state: int = 0) -> Pipeline:
    """A fresh, unfitted pipeline with the project's features and classifier."""
    words = TfidfVectorizer(
        token_pattern=WORD_PATTERN, ngram_range=word_range, sublinear_tf=True,
        min_df=min_df, max_features=max_features, dtype=np.float64,
    )
    chars = TfidfVectorizer(
        analyzer=char_analyzer, ngram_range=char_range, sublinear_tf=True,
        min_df=max(min_df, 2), max_features=max_features, dtype=np.float64,
    )
    def text_block(vectorizer: TfidfVectorizer) -> Pipeline:
        steps = [("text", TextOf()), ("tfidf", vectorizer)]
        if nb_power:
            steps.append(("nb", NaiveBayesScale(alpha=nb_alpha, power=nb_power)))
        return Pipeline(steps)

    features = FeatureUnion([
        ("words", text_block(words)),
        ("chars", text_block(chars)),
        ("meta", Pipeline([("tokens", MetaOf()), ("onehot", DictVectorizer())])),
    ], transformer_weights={"words": word_weight, "chars": char_weight, "meta": meta_weight})
    classifier = LogisticRegression(C=c, max_iter=2000, class_weight=class_weight,
                                    random_state=random_state)
    return Pipeline([("prepare", CommentPreparer()), ("features", features), ("classifier", classifier)])


def feature_names(pipeline: Pipeline) -> np.ndarray:
    """Names of the pipeline's features, in column order, prefixed by block (``words__...``)."""
    blocks = []
    for name, block in pipeline.named_steps["features"].transformer_list:
        inner = block.steps[1][1].get_feature_names_out()  # the vectorizer, after the selector
        blocks.append(np.char.add(f"{name}__", inner.astype(str)))
    return np.concatenate(blocks)


def apply_monotone_constraints(pipeline: Pipeline) -> int:
    """Clip the weights of link-presence features to be non-negative; return how many moved.

    Called after every fit (see :func:`fit_pipeline`), so that adding a link to
    the author URL or a shortener link never lowers a comment's score.
    """
    names = feature_names(pipeline)
    meta = np.char.startswith(names.astype(str), "meta__")
    mask = np.zeros(len(names), dtype=bool)
    for prefix in MONOTONE_PREFIXES:
        mask |= meta & np.char.startswith(names.astype(str), f"meta__{prefix}")
    coef = pipeline.named_steps["classifier"].coef_
    negative = mask & (coef[0] < 0)
    coef[0, negative] = 0.0
    return int(negative.sum())


def fit_pipeline(pipeline: Pipeline, comments: list[Any], labels: Any) -> Pipeline:
    """Fit, fold the naive-Bayes scaling into the coefficients, and apply the monotone constraints."""
    pipeline.fit(comments, labels)
    fold_feature_scaling(pipeline)
    apply_monotone_constraints(pipeline)
    return pipeline


def fold_feature_scaling(pipeline: Pipeline) -> None:
    """Move each block's fitted :class:`NaiveBayesScale` into the coefficients and drop the step.

    ``w · (x * s) == (w * s) · x``: the fitted pipeline scores exactly as before,
    with feature blocks that are the plain vectorizers the scorer explains.
    """
    classifier = pipeline.named_steps["classifier"]
    start = 0
    for _name, block in pipeline.named_steps["features"].transformer_list:
        width = len(block.steps[1][1].get_feature_names_out())
        if block.steps[-1][0] == "nb":
            scale = block.steps[-1][1].scale_
            classifier.coef_[:, start:start + width] *= scale
            block.steps.pop()
        start += width
