"""A faster, identical ``FeatureUnion.transform`` for the streaming training path.

Character n-grams dominate the cost of vectorising a comment; ``char_wb``
n-grams never cross a word boundary, so each distinct word's column ids are
computed once and cached. ``tests/test_training_large.py`` checks the output
equals the union's own ``transform`` exactly.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

#: Distinct words whose n-gram columns are cached per vectorizer (the cache is emptied when full).
WORD_CACHE = 200_000


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
        if len(cache) > WORD_CACHE:
            cache.clear()
        vocabulary, analyse = vec.vocabulary_, vec.build_analyzer()
        preprocess = vec.build_preprocessor()
        parts: list[np.ndarray] = []
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        for i, text in enumerate(texts):
            n = 0
            # The analyser lower-cases, collapses white space and pads each word: per word, the
            # n-grams are always the same; ``analyse(word)`` re-applies the (idempotent) preprocessor.
            for word in preprocess(text).split():
                ids = cache.get(word)
                if ids is None:
                    ids = np.fromiter((vocabulary[g] for g in analyse(word) if g in vocabulary),
                                      dtype=np.int32)
                    cache[word] = ids
                parts.append(ids)
                n += len(ids)
            indptr[i + 1] = indptr[i] + n
        indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        counts = sparse.csr_matrix((np.ones(len(indices), dtype=vec.dtype), indices, indptr),
                                   shape=(len(texts), len(vocabulary)))
        counts.sum_duplicates()
        counts.sort_indices()
        if vec.binary:
            counts.data.fill(1)
        return vec._tfidf.transform(counts, copy=False)
