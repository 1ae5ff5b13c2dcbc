"""The fast scoring path: a fitted pipeline compiled into dict lookups and a dot product.

Scoring one comment through the scikit-learn pipeline costs milliseconds, nearly
all of it per-call overhead (input validation, a sparse matrix per vectorizer,
the FeatureUnion's stacking); the arithmetic is microseconds. A
:class:`CompiledModel` is built once, when the artifact is loaded, from a
:class:`ModelSpec`: each vectorizer's fitted options and vocabulary, and the
weights that are constant per column (logistic-regression coefficient × idf ×
the FeatureUnion's block weight) folded into one number per vocabulary term.
:mod:`model.compile_pipeline` reads that spec off a fitted pipeline;
:mod:`model.tables` stores it in the artifact, so the service builds it without
unpickling anything or importing scikit-learn. Scoring reuses
:func:`model.features.prepare` unchanged, re-creates each vectorizer's analyser
from its options, and is then a few dict lookups per token, the tf-idf norm, and
a sum.

The ``word`` and ``char_wb`` blocks are scored by the compiled core,
:mod:`model._fastcore` (Cython, built by ``pip install``), when it is built: the
same steps as C loops. This module's numpy code is their reference (tests compare
the two engines comment by comment) and the fallback where the core could not be
compiled (``engine="numpy"``).

It reproduces the pipeline's feature values and contributions exactly (up to
floating-point rounding, ~1e-15): tests compare every comment of the seed
corpus and the YouTube collection with ``predict_proba``. Any vectorizer option
it does not reproduce raises :class:`~model.errors.FastPathUnsupportedError` when
the spec is read off the pipeline, so a change of settings fails loudly instead
of scoring wrongly.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

from model.comment import Comment, as_comment
from model.errors import FastPathUnsupportedError
from model.features import PreparedComment, prepare

try:  # the compiled core (setup.py builds it; optional, so a machine without a C compiler still installs)
    from model import _fastcore
except ImportError:  # pragma: no cover - exercised only where the extension was not built
    _fastcore = None

#: The engines :class:`CompiledModel` can score text blocks with: ``"c"``, the compiled core
#: (model/_fastcore.pyx), and ``"numpy"``, this module's reference implementation of the same steps.
ENGINES = ("c", "numpy")
#: The engine used when none is asked for: the compiled core when it was built.
DEFAULT_ENGINE = "c" if _fastcore is not None else "numpy"

#: (column, contribution to the log-odds) of one non-zero feature.
Contribution = tuple[int, float]

T = TypeVar("T")
# sklearn's own whitespace rule for the character analysers (_VectorizerMixin._white_spaces).
_WHITE_SPACES = re.compile(r"\s\s+")
# The words char n-grams are credited to (model.reasons.credit_char_ngrams): runs of word characters.
_CREDIT_WORD = re.compile(r"(?u)\b\w+\b")
#: Distinct words whose char_wb n-gram ids are cached per model (and, for crediting
#: n-grams to words, each token's words and each word's n-grams with their counts); each
#: cache is emptied when full (a crude bound: at most ~20 MB per worker for all three).
WORD_CACHE_SIZE = 20_000
#: Longer words are not cached: an entry grows with its word (a 60,000-letter word held 0.4 MB),
#: and a stream of unique long words, within the body limit, filled a worker's memory by
#: hundreds of megabytes. Real words this long are rare; scoring one uncached costs the same.
MAX_CACHED_WORD = 64
#: The vectorizer options this module reproduces (model.compile_pipeline and model.tables check them).
SUPPORTED_ANALYZERS = ("word", "char", "char_wb")
SUPPORTED_NORMS = (None, "l1", "l2")
SUPPORTED_ACCENTS = (None, "ascii", "unicode")


@dataclass(frozen=True)
class FastScore:
    """One comment's score from the fast path, with what the explanation needs."""

    score: float
    logit: float
    text: str
    #: (column, contribution to the log-odds) in the feature matrix's column order; empty
    #: when scored with ``explain=False``.
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True)
class Explained:
    """One comment's score with what the reasons need, the char n-grams already credited to words.

    ``contributions`` holds the (column, contribution) pairs of every block but the credited
    one, in column order; ``word_credit`` maps each word of the text to the summed
    contributions of the credited block's n-grams it holds, exactly as
    :func:`model.reasons.credit_char_ngrams` shares them, ordered by the first column credited.
    """

    score: float
    logit: float
    text: str
    contributions: tuple[Contribution, ...]
    word_credit: dict[str, float]


@dataclass(frozen=True)
class TextBlockSpec:
    """What scoring one fitted ``TfidfVectorizer`` block takes: its options and per-column numbers.

    ``vocab`` maps each term to its column within the block (``offset`` is the block's first
    column in the feature matrix); ``weighted`` is coefficient × idf × block weight per column.
    ``strip_accents`` is ``None``, ``"ascii"``, ``"unicode"`` or (in-process only) a function.
    """

    name: str
    offset: int
    vocab: dict[str, int]
    analyzer: str
    min_n: int
    max_n: int
    lowercase: bool
    strip_accents: Any
    binary: bool
    sublinear: bool
    norm: str | None
    use_idf: bool
    idf: np.ndarray
    weighted: np.ndarray
    token_pattern: str | None = None
    stop_words: frozenset[str] | None = None


@dataclass(frozen=True)
class MetaBlockSpec:
    """The fitted metadata block: one-hot token → column, and each column's weighted coefficient."""

    name: str
    offset: int
    vocab: dict[str, int]
    weighted: np.ndarray


@dataclass(frozen=True)
class ModelSpec:
    """Everything the fast path scores with: the intercept and the feature blocks in column order.

    Made from a fitted pipeline by :func:`model.compile_pipeline.spec_from_pipeline`, or
    read from an artifact's serving tables by :func:`model.tables.read_tables`.
    """

    intercept: float
    blocks: tuple[TextBlockSpec | MetaBlockSpec, ...]

    @property
    def n_features(self) -> int:
        return sum(len(block.vocab) for block in self.blocks)

    def feature_names(self) -> list[str]:
        """``block__term`` for every column, in column order (the pipeline's ``feature_names``)."""
        return [f"{block.name}__{term}" for block in self.blocks for term in column_terms(block.vocab)]


def column_terms(vocab: dict[str, int]) -> list[str]:
    """A block's terms in column order (``vocab`` maps each term to its column)."""
    terms = [""] * len(vocab)
    for term, column in vocab.items():
        terms[column] = term
    return terms


class _TextBlock:
    """One fitted TfidfVectorizer behind a TextOf selector, as lookup tables."""

    def __init__(self, spec: TextBlockSpec, engine: str = "numpy") -> None:
        where = f"FeatureUnion block {spec.name!r}"
        self.name = spec.name
        self.offset = spec.offset
        self.vocab: dict[str, int] = spec.vocab
        self.min_n, self.max_n = spec.min_n, spec.max_n
        self.lowercase = spec.lowercase
        self.strip_accents = _accent_function(spec.strip_accents, where)
        self.analyzer: str = spec.analyzer
        self.binary = spec.binary
        self.sublinear = spec.sublinear
        self.norm: str | None = spec.norm
        self.use_idf = spec.use_idf
        self.idf = spec.idf
        #: coefficient × idf × block weight: all of a column's contribution but tf / norm.
        self.weighted = spec.weighted
        if self.analyzer == "word":
            self.token_re = re.compile(str(spec.token_pattern))
            require_supported(self.token_re.groups <= 1, where, "a token_pattern with several groups")
            self.stop_words: frozenset[str] | None = spec.stop_words
        self._word_ids: dict[str, np.ndarray] = {}
        #: Crediting char n-grams to words (model.reasons) is done here only when the words the
        #: reasons see (``\w+`` runs of ``text.lower()``) can be read off this block's own tokens.
        self.can_credit = (self.analyzer == "char_wb" and self.lowercase and self.strip_accents is None)
        self._token_words: dict[str, tuple[str, ...]] = {}
        self._credit_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._gram_lengths: tuple[int, ...] = ()
        if self.can_credit:
            self._gram_lengths = tuple(sorted({len(gram) for gram in self.vocab}))
        #: The compiled core doing :meth:`contributions` (and the credit) for this block, if any.
        self.core: Any = self._build_core() if engine == "c" and self.analyzer != "char" else None

    def _build_core(self) -> Any:
        """The block's tables handed to a compiled :class:`model._fastcore.TextCore`."""
        word = self.analyzer == "word"
        return _fastcore.TextCore(
            vocab=self.vocab, weighted=self.weighted, idf=self.idf, offset=self.offset,
            analyzer=self.analyzer, min_n=self.min_n, max_n=self.max_n, binary=self.binary,
            sublinear=self.sublinear, norm=self.norm, use_idf=self.use_idf, cache_size=WORD_CACHE_SIZE,
            cache_word_chars=MAX_CACHED_WORD,
            word_ids=self._char_wb_ids, credit_grams=self._credit_grams, credit_words=_CREDIT_WORD.findall,
            token_findall=self.token_re.findall if word else None,
            stop_words=self.stop_words if word else None)

    def preprocess(self, doc: str) -> str:
        if self.lowercase:
            doc = doc.lower()
        if self.strip_accents is not None:
            doc = self.strip_accents(doc)
        return doc

    def _word_grams(self, doc: str) -> list[str]:
        tokens = self.token_re.findall(doc)
        if self.stop_words is not None:
            tokens = [t for t in tokens if t not in self.stop_words]
        grams = list(tokens) if self.min_n == 1 else []
        for n in range(max(self.min_n, 2), min(self.max_n + 1, len(tokens) + 1)):
            if n == 2:
                grams += [a + " " + b for a, b in zip(tokens, tokens[1:])]
            else:
                grams += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        return grams

    def _char_grams(self, doc: str) -> list[str]:
        doc = _WHITE_SPACES.sub(" ", doc)
        size = len(doc)
        grams: list[str] = []
        for n in range(self.min_n, min(self.max_n + 1, size + 1)):
            grams += [doc[i:i + n] for i in range(size - n + 1)]
        return grams

    def _char_wb_arrays(self, tokens: Counter[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """(vocabulary ids, ascending; their counts as floats) of a document's whitespace tokens."""
        # Each word's n-grams depend on the word alone, so their vocabulary ids are cached per word.
        cache = self._word_ids
        parts: list[np.ndarray] = []
        for word, times in tokens.items():
            ids = cache.get(word)
            if ids is None:
                ids = _remember(cache, word, np.array(self._char_wb_ids(word), dtype=np.int32))
            if times == 1:
                parts.append(ids)
            else:  # a repeated word's n-grams count that many times (np.tile is 5x slower)
                parts.extend([ids] * times)
        if not parts:
            return None
        every = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()  # sorted in place below
        return _distinct_counts(every) if every.size else None

    def _char_wb_ids(self, word: str) -> tuple[int, ...]:
        """Vocabulary ids of the n-grams sklearn's ``_char_wb_ngrams`` cuts from one word."""
        padded = f" {word} "
        size = len(padded)
        vocab = self.vocab
        ids: list[int] = []
        for n in range(self.min_n, self.max_n + 1):
            if size <= n:  # a short word is counted once, whole, and longer n-grams stop
                j = vocab.get(padded)
                if j is not None:
                    ids.append(j)
                break
            for i in range(size - n + 1):
                j = vocab.get(padded[i:i + n])
                if j is not None:
                    ids.append(j)
        return tuple(ids)

    def contributions(self, text: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(columns, log-odds contributions) of the non-zero features, in column order; None if none."""
        if self.core is not None:
            return self.core.contributions(self.preprocess(text))
        if self.analyzer == "char_wb":
            found = self._char_wb_arrays(_tokens(self.preprocess(text)))
            return None if found is None else self._weigh(*found)
        doc = self.preprocess(text)
        grams = self._word_grams(doc) if self.analyzer == "word" else self._char_grams(doc)
        ids = [j for j in map(self.vocab.get, grams) if j is not None]
        if not ids:
            return None
        return self._weigh(*_distinct_counts(np.array(ids, dtype=np.intp)))

    def contributions_and_credit(self, text: str) -> tuple[tuple[np.ndarray, np.ndarray] | None,
                                                           dict[str, float]]:
        """:meth:`contributions`, and the contributions credited to the words of ``text``.

        The credit is :func:`model.reasons.credit_char_ngrams` computed from the cached
        tokens: the words are the ``\\w+`` runs of each whitespace token (the same, in the
        same order, as those of the whole lowercased text), each word's vocabulary n-grams
        (every substring of its padded form ``" word "``, with ``str.count`` occurrences) are
        cached, and an n-gram's contribution is shared among the words holding it in
        proportion to (occurrences of the word) × (occurrences of the n-gram in it). Each
        share is the reference's ``value * n / total`` and each word's shares are summed one
        by one in column order (``np.bincount``), as the reference does, so the credit comes
        out bit for bit the same. Only for blocks with :attr:`can_credit`.
        """
        if self.core is not None:
            return self.core.contributions_and_credit(self.preprocess(text))
        tokens = _tokens(self.preprocess(text))
        arrays = self._char_wb_arrays(tokens)
        if arrays is None:
            return None, {}
        found = self._weigh(*arrays)
        if found is None:
            return None, {}
        local = arrays[0]  # the block's own ids, ascending, as the values
        values = found[1]
        # The words of the text with their occurrences, in order of first occurrence.
        token_words, credit_cache = self._token_words, self._credit_cache
        words: dict[str, int] = {}
        for token, times in tokens.items():
            pieces = token_words.get(token)
            if pieces is None:
                pieces = _remember(token_words, token, tuple(_CREDIT_WORD.findall(token)))
            for word in pieces:
                words[word] = words.get(word, 0) + times
        if not words:
            return found, {}
        names = list(words)
        id_parts, count_parts = [], []
        for word, times in words.items():
            grams = credit_cache.get(word)
            if grams is None:
                grams = _remember(credit_cache, word, self._credit_grams(word))
            word_ids, word_counts = grams
            id_parts.append(word_ids)
            count_parts.append(word_counts * np.int64(times) if times != 1 else word_counts)
        ids = np.concatenate(id_parts)
        held = np.concatenate(count_parts)  # (occurrences of the word) × (of the n-gram in it)
        lengths = np.fromiter(map(len, id_parts), dtype=np.intp, count=len(id_parts))
        owner = np.repeat(np.arange(len(names)), lengths)
        # Keep the n-grams that are features of this comment; pos: their index in ``local``.
        pos = np.searchsorted(local, ids)
        np.minimum(pos, len(local) - 1, out=pos)
        keep = local[pos] == ids
        if not keep.any():
            return found, {}
        pos, held, owner, ids = pos[keep], held[keep], owner[keep], ids[keep]
        totals = np.bincount(pos, weights=held, minlength=len(local))  # sums of small integers: exact
        shares = values[pos] * held / totals[pos]
        sums = np.bincount(owner, weights=shares, minlength=len(names))  # in order: column by column
        # Credit in the order the reference gives it: by the first column each word is credited.
        starts = _run_starts(owner)
        order = starts[np.argsort(ids[starts], kind="stable")]
        credited = owner[order].tolist()
        return found, dict(zip([names[w] for w in credited], sums[credited].tolist()))

    def _credit_grams(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary ids, ascending; ``str.count`` occurrences) of the n-grams in ``" word "``."""
        padded = f" {word} "
        size = len(padded)
        vocab = self.vocab
        grams: dict[int, int] = {}
        for length in self._gram_lengths:
            if length > size:
                break
            for piece in dict.fromkeys([padded[i:i + length] for i in range(size - length + 1)]):
                j = vocab.get(piece)
                if j is not None:
                    grams[j] = padded.count(piece)
        # One (2, n) buffer, ids over counts in ascending id order, handed out as its two rows
        # (indexing the rows once here, not on every comment that holds the word).
        both = np.array(sorted(grams.items()), dtype=np.int32).reshape(-1, 2).T.copy()
        return both[0], both[1]

    def _weigh(self, cols: np.ndarray, tf: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(columns, contributions) from ascending block ids and their term counts (a fresh array)."""
        # The steps of CountVectorizer(binary) and TfidfTransformer.transform, on one row.
        if self.binary:
            tf.fill(1.0)
        elif self.sublinear:
            np.log(tf, out=tf)
            tf += 1.0
        if self.norm is None:
            values = tf * self.weighted[cols]
        else:
            x = tf * self.idf[cols] if self.use_idf else tf
            norm = math.sqrt(float(x @ x)) if self.norm == "l2" else float(np.abs(x).sum())
            if norm == 0.0:  # sklearn leaves an all-zero row as it is
                return None
            values = tf * self.weighted[cols] / norm
        return cols + self.offset, values


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Indexes where each run of equal values starts in a non-empty array (0 first)."""
    first = np.empty(values.size, dtype=bool)
    first[0] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return np.flatnonzero(first)


def _distinct_counts(every: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct ids, ascending, as intp; how often each occurs, as floats) of a non-empty id array.

    ``np.unique(every, return_counts=True)`` without its generic wrapper (~35% faster here):
    sort in place, mark where each run of equal ids starts, count a run by where the next starts.
    """
    size = every.size
    every.sort()
    starts = _run_starts(every)
    tf = np.empty(starts.size, dtype=np.float64)
    np.subtract(starts[1:], starts[:-1], out=tf[:-1])
    tf[-1] = size - starts[-1]
    return every[starts].astype(np.intp, copy=False), tf


def _tokens(doc: str) -> Counter[str]:
    """The whitespace tokens of a preprocessed document, counted (sklearn's char_wb splitting)."""
    # str.split() already splits on runs of the same whitespace sklearn collapses first.
    return Counter(doc.split())


class _MetaBlock:
    """The fitted DictVectorizer behind a MetaOf selector: token → weighted coefficient."""

    def __init__(self, spec: MetaBlockSpec) -> None:
        self.name = spec.name
        self.offset = spec.offset
        self.vocab: dict[str, int] = spec.vocab
        self.weighted = spec.weighted

    def contributions(self, meta: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """(columns, log-odds contributions) of the tokens in the vocabulary, in column order."""
        vocab = self.vocab
        found = sorted({j for j in map(vocab.get, meta) if j is not None})  # one-hot: a repeat is still 1.0
        if not found:
            return None
        cols = np.array(found, dtype=np.intp)
        return cols + self.offset, self.weighted[cols]


class CompiledModel:
    """A fitted CommentGuard model compiled for scoring one comment at a time; read-only after build.

    Built from a fitted pipeline (read by :func:`model.compile_pipeline.spec_from_pipeline`,
    which raises :class:`FastPathUnsupportedError` for a shape or an option this class does
    not reproduce exactly) or from a :class:`ModelSpec` (an artifact's serving tables, read
    without scikit-learn). ``engine`` picks what scores the ``word`` and ``char_wb`` blocks
    (:data:`ENGINES`; default :data:`DEFAULT_ENGINE`); a ``char`` block and the metadata
    block are always scored here.
    """

    def __init__(self, model: Any, engine: str | None = None) -> None:
        engine = engine or DEFAULT_ENGINE
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if engine == "c" and _fastcore is None:
            raise FastPathUnsupportedError("the compiled scoring core (model._fastcore) is not built")
        #: What scores the text blocks: "c" (the compiled core) or "numpy".
        self.engine = engine
        if not isinstance(model, ModelSpec):
            from model.compile_pipeline import spec_from_pipeline  # imports scikit-learn

            model = spec_from_pipeline(model)
        #: The tables this model scores with (what an artifact's serving tables store).
        self.spec: ModelSpec = model
        self.intercept = model.intercept
        #: The blocks in the FeatureUnion's order, so contributions come out in its column order.
        self.blocks: list[_TextBlock | _MetaBlock] = [
            _TextBlock(block, engine) if isinstance(block, TextBlockSpec) else _MetaBlock(block)
            for block in model.blocks]
        self.n_features = model.n_features

    def clear_caches(self) -> None:
        """Forget the cached per-word n-gram ids (for benchmarks of the cold path)."""
        for block in self.blocks:
            if isinstance(block, _TextBlock):
                block._word_ids.clear()
                block._token_words.clear()
                block._credit_cache.clear()
                if block.core is not None:
                    block.core.clear_caches()

    def can_credit(self, name: str) -> bool:
        """True when :meth:`explain_prepared` can credit block ``name``'s n-grams to words."""
        return any(isinstance(b, _TextBlock) and b.name == name and b.can_credit for b in self.blocks)

    def explain_prepared(self, prepared: PreparedComment, credit_block: str) -> Explained:
        """The score, the other blocks' contributions, and block ``credit_block`` credited to words.

        ``credit_block`` must be one :meth:`can_credit` accepts. The score is the same number
        :meth:`score_prepared` gives (the same values summed in the same order).
        """
        values, pairs = [], []
        credit: dict[str, float] = {}
        for block in self.blocks:
            if isinstance(block, _TextBlock):
                if block.name == credit_block:
                    found, credit = block.contributions_and_credit(prepared.text)
                    if found is not None:
                        values.append(found[1])
                    continue
                found = block.contributions(prepared.text)
            else:
                found = block.contributions(prepared.meta)
            if found is not None:
                values.append(found[1])
                pairs.extend(zip(found[0].tolist(), found[1].tolist()))
        if not values:
            return Explained(_sigmoid(self.intercept), self.intercept, prepared.text, (), {})
        logit = self.intercept + float(np.concatenate(values).sum())
        return Explained(_sigmoid(logit), logit, prepared.text, tuple(pairs), credit)

    @staticmethod
    def prepare(item: Any) -> PreparedComment:
        """What the pipeline's ``prepare`` step computes for one comment (Comment, dict or str)."""
        return prepare(as_comment(item))

    def score_prepared(self, prepared: PreparedComment, *, explain: bool = True) -> FastScore:
        """The score of a prepared comment, and (with ``explain``) its per-column contributions."""
        columns, values = [], []
        for block in self.blocks:
            if isinstance(block, _TextBlock):
                found = block.contributions(prepared.text)
            else:
                found = block.contributions(prepared.meta)
            if found is not None:
                columns.append(found[0])
                values.append(found[1])
        if not values:
            return FastScore(_sigmoid(self.intercept), self.intercept, prepared.text, ())
        all_values = np.concatenate(values)
        logit = self.intercept + float(all_values.sum())
        pairs = tuple(zip(np.concatenate(columns).tolist(), all_values.tolist())) if explain else ()
        return FastScore(_sigmoid(logit), logit, prepared.text, pairs)

    def score(self, item: Comment | Any, *, explain: bool = True) -> FastScore:
        """Prepare and score one comment (with ``explain``, keep its per-column contributions)."""
        return self.score_prepared(self.prepare(item), explain=explain)

    def score_many(self, items: Iterable[Any], *, explain: bool = True) -> list[FastScore]:
        """Prepare and score each comment (one at a time: there is no per-call overhead to share)."""
        return [self.score_prepared(self.prepare(item), explain=explain) for item in items]

    def spam_probability(self, items: Iterable[Any]) -> np.ndarray:
        """Spam probabilities, as ``pipeline.predict_proba(items)[:, 1]`` gives them."""
        return np.array([s.score for s in self.score_many(items, explain=False)], dtype=np.float64)


def _remember(cache: dict[str, T], word: str, value: T) -> T:
    """Keep ``value`` in a per-word cache (emptied when full; long words are not kept)."""
    if len(word) <= MAX_CACHED_WORD:
        if len(cache) >= WORD_CACHE_SIZE:
            cache.clear()
        cache[word] = value
    return value


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-min(max(x, -500.0), 500.0)))


def _accent_function(option: Any, where: str) -> Callable[[str], str] | None:
    if not option:
        return None
    if option in ("ascii", "unicode"):
        # scikit-learn's own functions, imported only for a model that strips accents.
        from sklearn.feature_extraction.text import strip_accents_ascii, strip_accents_unicode

        return strip_accents_ascii if option == "ascii" else strip_accents_unicode
    if callable(option):
        return option
    raise FastPathUnsupportedError(f"{where}: strip_accents={option!r} is not supported")


def require_supported(condition: bool, where: str, what: str) -> None:
    """Raise :class:`FastPathUnsupportedError` naming ``what`` unless ``condition`` holds."""
    if not condition:
        raise FastPathUnsupportedError(
            f"{where}: the fast scoring path does not support {what}; "
            "teach model/fastpath.py the option or keep the vectorizer's default")


__all__ = ["DEFAULT_ENGINE", "ENGINES", "CompiledModel", "Contribution", "Explained", "FastScore",
           "FastPathUnsupportedError", "MetaBlockSpec", "ModelSpec", "SUPPORTED_ACCENTS", "SUPPORTED_ANALYZERS",
           "SUPPORTED_NORMS", "TextBlockSpec", "MAX_CACHED_WORD", "WORD_CACHE_SIZE", "column_terms",
           "require_supported"]
