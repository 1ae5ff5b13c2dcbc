"""Reading a fitted CommentGuard pipeline into the fast path's plain tables (:class:`ModelSpec`).

This is the one place that looks inside the scikit-learn objects: it checks that
the pipeline has the shape and options :mod:`model.fastpath` reproduces exactly,
and raises :class:`~model.errors.FastPathUnsupportedError` for anything else, so a
change of settings fails loudly instead of scoring wrongly. It folds the numbers
that are constant per column (logistic-regression coefficient × idf × the
FeatureUnion's block weight) into one weight per vocabulary term. Scoring itself
(:mod:`model.fastpath`) and the serving tables (:mod:`model.tables`) never import
scikit-learn.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from model.errors import FastPathUnsupportedError
from model.fastpath import (
    SUPPORTED_ACCENTS,
    SUPPORTED_ANALYZERS,
    SUPPORTED_NORMS,
    MetaBlockSpec,
    ModelSpec,
    TextBlockSpec,
    require_supported,
)
from model.pipeline import CommentPreparer, MetaOf, TextOf


def spec_from_pipeline(pipeline: Any) -> ModelSpec:
    """The tables of a fitted pipeline, or :class:`FastPathUnsupportedError` naming what is not reproduced."""
    steps = getattr(pipeline, "named_steps", None)
    if not isinstance(pipeline, Pipeline) or list(steps) != ["prepare", "features", "classifier"]:
        raise FastPathUnsupportedError(
            "the fast path expects a Pipeline with steps prepare, features, classifier")
    if type(steps["prepare"]) is not CommentPreparer:
        raise FastPathUnsupportedError("the 'prepare' step is not a CommentPreparer")
    classifier = steps["classifier"]
    if type(classifier) is not LogisticRegression or len(getattr(classifier, "classes_", ())) != 2:
        raise FastPathUnsupportedError("the fast path reproduces a fitted binary LogisticRegression only")
    coef = np.asarray(classifier.coef_, dtype=np.float64)
    if coef.ndim != 2 or coef.shape[0] != 1:
        raise FastPathUnsupportedError(f"unexpected coef_ shape {coef.shape}")
    blocks = _block_specs(steps["features"], coef[0])
    n_features = sum(len(block.vocab) for block in blocks)
    if n_features != coef.shape[1]:
        raise FastPathUnsupportedError(
            f"the feature blocks give {n_features} columns, the classifier has {coef.shape[1]}")
    return ModelSpec(intercept=float(classifier.intercept_[0]), blocks=tuple(blocks))


def _block_specs(union: Any, coef: np.ndarray) -> list[TextBlockSpec | MetaBlockSpec]:
    if type(union) is not FeatureUnion:
        raise FastPathUnsupportedError("the 'features' step is not a FeatureUnion")
    weights = union.transformer_weights or {}
    offset = 0
    blocks: list[TextBlockSpec | MetaBlockSpec] = []
    for name, block in union.transformer_list:
        if isinstance(block, str) and block == "drop":
            continue
        if type(block) is not Pipeline or len(block.steps) != 2:
            raise FastPathUnsupportedError(
                f"FeatureUnion block {name!r} is not a two-step Pipeline (selector, vectorizer)")
        selector, vec = block.steps[0][1], block.steps[1][1]
        size = len(getattr(vec, "vocabulary_", {}))
        weight = weights.get(name)
        block_coef = coef[offset:offset + size]
        if type(selector) is TextOf:
            blocks.append(_text_spec(name, vec, offset, block_coef, weight))
        elif type(selector) is MetaOf:
            blocks.append(_meta_spec(name, vec, offset, block_coef, weight))
        else:
            raise FastPathUnsupportedError(
                f"FeatureUnion block {name!r} starts with {type(selector).__name__}, not TextOf or MetaOf")
        offset += size
    return blocks


def _fitted_block(name: str, vec: Any, expected: type) -> str:
    """Check a block holds a fitted ``expected`` vectorizer; return its name for messages."""
    where = f"FeatureUnion block {name!r}"
    if type(vec) is not expected:
        raise FastPathUnsupportedError(
            f"{where}: the fast path reproduces {expected.__name__}, not {type(vec).__name__}")
    if not hasattr(vec, "vocabulary_"):
        raise FastPathUnsupportedError(f"{where}: the vectorizer is not fitted")
    return where


def _text_spec(name: str, vec: Any, offset: int, coef: np.ndarray, weight: float | None) -> TextBlockSpec:
    """One fitted TfidfVectorizer behind a TextOf selector."""
    where = _fitted_block(name, vec, TfidfVectorizer)
    require_supported(vec.input == "content", where, f"input={vec.input!r} (only 'content')")
    require_supported(vec.preprocessor is None, where, "a custom preprocessor")
    require_supported(vec.analyzer in SUPPORTED_ANALYZERS, where,
                      f"analyzer={vec.analyzer!r} (only {', '.join(SUPPORTED_ANALYZERS)})")
    require_supported(np.dtype(vec.dtype) == np.float64, where, f"dtype={vec.dtype!r} (only float64)")
    require_supported(vec.norm in SUPPORTED_NORMS, where, f"norm={vec.norm!r} (only None, 'l1', 'l2')")
    inner = getattr(vec, "_tfidf", None)
    if inner is not None:  # transform() obeys the fitted transformer: refuse a set_params after fit
        for option in ("norm", "use_idf", "sublinear_tf"):
            require_supported(getattr(inner, option) == getattr(vec, option), where,
                              f"{option} changed after fitting (refit the model)")
    min_n, max_n = vec.ngram_range
    require_supported(1 <= min_n <= max_n, where, f"ngram_range={vec.ngram_range!r}")
    vocab: dict[str, int] = vec.vocabulary_
    size = len(vocab)
    if vec.use_idf:
        idf = np.asarray(vec.idf_, dtype=np.float64)
        require_supported(idf.shape == (size,), where, "idf_ does not match the vocabulary")
    else:
        idf = np.ones(size, dtype=np.float64)
    accents = vec.strip_accents
    require_supported(not accents or accents in SUPPORTED_ACCENTS or callable(accents), where,
                      f"strip_accents={accents!r}")
    token_pattern, stop_words = None, None
    if vec.analyzer == "word":
        require_supported(vec.tokenizer is None, where, "a custom tokenizer")
        require_supported(vec.token_pattern is not None, where, "token_pattern=None")
        token_pattern = str(vec.token_pattern)
        stop = vec.get_stop_words()
        stop_words = None if stop is None else frozenset(stop)
    return TextBlockSpec(
        name=name, offset=offset, vocab=vocab, analyzer=vec.analyzer, min_n=int(min_n), max_n=int(max_n),
        lowercase=bool(vec.lowercase), strip_accents=accents or None, binary=bool(vec.binary),
        sublinear=bool(vec.sublinear_tf), norm=vec.norm, use_idf=bool(vec.use_idf), idf=idf,
        # coefficient × idf × block weight: all of a column's contribution but tf / norm.
        weighted=coef * idf if weight is None else coef * idf * weight,
        token_pattern=token_pattern, stop_words=stop_words)


def _meta_spec(name: str, vec: Any, offset: int, coef: np.ndarray, weight: float | None) -> MetaBlockSpec:
    """The fitted DictVectorizer behind a MetaOf selector."""
    where = _fitted_block(name, vec, DictVectorizer)
    require_supported(np.dtype(vec.dtype) == np.float64, where, f"dtype={vec.dtype!r} (only float64)")
    return MetaBlockSpec(name=name, offset=offset, vocab=vec.vocabulary_,
                         weighted=np.asarray(coef if weight is None else coef * weight, dtype=np.float64))


__all__ = ["spec_from_pipeline"]
