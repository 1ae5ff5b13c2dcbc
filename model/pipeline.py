"""The classifier pipeline: one scikit-learn ``Pipeline`` with named steps.

``prepare`` normalises each comment; ``features`` unites word n-grams,
character n-grams and the metadata one-hot block; ``classifier`` is a logistic
regression, whose output is a probability fitted by log-loss. Classes are
weighted to balance, so the score is the spam probability under equal priors:
sites differ in their share of spam, and the thresholds chosen at training
time (not the 0.5 point) decide what is blocked. The Brier score in the
training report measures calibration. The transformers live in this
module because joblib pickles them by import path.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from model.comment import Comment
from model.features import MONOTONE_PREFIXES, PreparedComment, prepare

WORD_PATTERN = r"(?u)\b\w+\b"


class CommentPreparer(BaseEstimator, TransformerMixin):
    """Turns comment records (or dicts with Akismet field names) into :class:`PreparedComment`."""

    def fit(self, X: Iterable[Any], y: Any = None) -> "CommentPreparer":
        return self

    def transform(self, X: Iterable[Any]) -> list[PreparedComment]:
        return [prepare(_as_comment(item)) for item in X]


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


def _as_comment(item: Any) -> Comment:
    if isinstance(item, Comment):
        return item
    if isinstance(item, Mapping):
        return Comment.from_mapping(item)
    if isinstance(item, str):
        return Comment(comment_content=item)
    raise TypeError(f"cannot score a {type(item).__name__}; pass a Comment or a dict")


def build_pipeline(*, c: float = 8.0, min_df: int = 1, max_features: int | None = None,
                   meta_weight: float = 1.0, char_weight: float = 1.0, word_weight: float = 1.0,
                   char_range: tuple[int, int] = (2, 5), char_analyzer: str = "char_wb",
                   word_range: tuple[int, int] = (1, 2), class_weight: str | None = "balanced",
                   random_state: int = 0) -> Pipeline:
    """A fresh, unfitted pipeline with the project's features and classifier."""
    words = TfidfVectorizer(
        token_pattern=WORD_PATTERN, ngram_range=word_range, sublinear_tf=True,
        min_df=min_df, max_features=max_features, dtype=np.float64,
    )
    chars = TfidfVectorizer(
        analyzer=char_analyzer, ngram_range=char_range, sublinear_tf=True,
        min_df=max(min_df, 2), max_features=max_features, dtype=np.float64,
    )
    features = FeatureUnion([
        ("words", Pipeline([("text", TextOf()), ("tfidf", words)])),
        ("chars", Pipeline([("text", TextOf()), ("tfidf", chars)])),
        ("meta", Pipeline([("tokens", MetaOf()), ("onehot", DictVectorizer())])),
    ], transformer_weights={"words": word_weight, "chars": char_weight, "meta": meta_weight})
    classifier = LogisticRegression(C=c, max_iter=2000, class_weight=class_weight,
                                    random_state=random_state)
    return Pipeline([("prepare", CommentPreparer()), ("features", features), ("classifier", classifier)])


def feature_names(pipeline: Pipeline) -> np.ndarray:
    """Names of the pipeline's features, in column order, prefixed by block (``words__...``)."""
    blocks = []
    for name, block in pipeline.named_steps["features"].transformer_list:
        inner = block.steps[-1][1].get_feature_names_out()
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
    """Fit and apply the monotone constraints."""
    pipeline.fit(comments, labels)
    apply_monotone_constraints(pipeline)
    return pipeline
