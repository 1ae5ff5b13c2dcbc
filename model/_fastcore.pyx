# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The compiled core of the fast scoring path: one text block of one comment, in C.

:mod:`model.fastpath` scores a comment with dict lookups and a few numpy calls
per block. On a comment of a few hundred n-grams each of those numpy calls
(concatenate, sort, unique, searchsorted, bincount, ...) costs more in call
overhead than in arithmetic, and the Python loops around them cost more again.
:class:`TextCore` does the same steps for one ``word`` or ``char_wb`` block as C
loops over C buffers: gather the n-gram ids (per-word ids cached as packed
``int32`` bytes), sort them (LSD radix sort), count runs, apply the tf-idf
transform and norm, and, for the block whose char n-grams are credited to
words, share each n-gram's contribution among the words holding it.

It is the reference implementation in :mod:`model.fastpath` step for step, with
the same operations in the same order on every value, so its numbers equal the
reference's up to the last bit or two of a norm (numpy's dot product pairs its
sums differently); ``tests/test_fastcore.py`` compares the two on every comment
of the seed corpus and the YouTube collection. Misses of the per-word caches are
rare and go to the reference's own Python code (``word_ids`` and
``credit_grams`` callables), so the n-grams a word yields are defined once.

Safe to share between threads: it holds the GIL throughout (no ``nogil``: the GIL
handed back and forth mid-comment costs more than the loops), every call works in
buffers of its own, and its caches are plain dicts that two threads missing on the
same word both fill with the same value. :class:`model.scorer.Scorer` scores one
comment at a time per model anyway.
"""
from array import array

import numpy as np

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.math cimport fabs, log, sqrt
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

# How the term counts become tf (CountVectorizer(binary) / TfidfTransformer(sublinear_tf)).
cdef enum TfMode:
    TF_RAW, TF_BINARY, TF_SUBLINEAR

# The row norm (TfidfTransformer(norm)).
cdef enum NormMode:
    NORM_NONE, NORM_L1, NORM_L2


cdef class _Buffer:
    """An owned C array of ``n`` items of ``item`` bytes (freed with the object)."""

    cdef char* data

    def __cinit__(self, Py_ssize_t n, Py_ssize_t item):
        self.data = <char*>malloc(max(n, 1) * item)
        if self.data == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.data)


cdef void _radix_sort(int32_t* ids, int32_t* scratch, Py_ssize_t n, int32_t largest) noexcept:
    """Sort ``n`` non-negative ids in place, 8 bits per pass (as many passes as ``largest`` needs)."""
    cdef Py_ssize_t counts[256]
    cdef Py_ssize_t i, total, c
    cdef int shift = 0
    cdef int32_t* src = ids
    cdef int32_t* dst = scratch
    cdef int32_t* tmp
    while shift == 0 or (largest >> shift) > 0:
        memset(counts, 0, sizeof(counts))
        for i in range(n):
            counts[(src[i] >> shift) & 0xFF] += 1
        total = 0
        for i in range(256):
            c = counts[i]
            counts[i] = total
            total += c
        for i in range(n):
            c = (src[i] >> shift) & 0xFF
            dst[counts[c]] = src[i]
            counts[c] += 1
        tmp = src
        src = dst
        dst = tmp
        shift += 8
    if src != ids:
        memcpy(ids, src, n * sizeof(int32_t))


cdef Py_ssize_t _bsearch(const int32_t* sorted_ids, Py_ssize_t n, int32_t key) noexcept:
    """The index of ``key`` in ascending ``sorted_ids``, or -1."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if sorted_ids[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and sorted_ids[lo] == key:
        return lo
    return -1


cdef inline object _remember(dict cache, object key, object value, Py_ssize_t size, Py_ssize_t longest):
    """Store ``value`` under ``key`` in a per-word cache (emptied when full; keys longer than
    ``longest`` are not kept), as the reference does."""
    if len(key) <= longest:
        if len(cache) >= size:
            cache.clear()
        cache[key] = value
    return value


cdef inline bytes _pack(object ids):
    """A sequence of ids as packed native int32 bytes (what the per-word caches hold)."""
    return array("i", ids).tobytes()


cdef class TextCore:
    """One fitted ``word`` or ``char_wb`` TfidfVectorizer block, scored in C.

    Built by :class:`model.fastpath._TextBlock` from its own tables, with its
    Python methods for the cache misses (``word_ids(word)``: the ids of a
    whitespace token's char_wb n-grams; ``credit_grams(word)``: a word's
    (ids, occurrences) arrays; ``credit_words(token)``: a token's words).
    """

    cdef dict vocab
    cdef object _weighted, _idf  # the arrays behind the two pointers, kept alive
    cdef const double* weighted
    cdef const double* idf
    cdef int32_t largest
    cdef Py_ssize_t offset
    cdef TfMode tf_mode
    cdef NormMode norm_mode
    cdef bint use_idf
    cdef bint char_wb
    cdef int min_n, max_n
    cdef object token_findall, stop_words
    cdef object word_ids, credit_grams, credit_words
    cdef dict _ids_cache, _token_words, _credit_cache
    cdef Py_ssize_t cache_size, cache_word_chars

    def __init__(self, *, dict vocab, weighted, idf, Py_ssize_t offset, str analyzer, int min_n, int max_n,
                 bint binary, bint sublinear, norm, bint use_idf, Py_ssize_t cache_size,
                 Py_ssize_t cache_word_chars=64, word_ids=None, credit_grams=None, credit_words=None, token_findall=None, stop_words=None):
        if analyzer not in ("word", "char_wb"):
            raise ValueError(f"TextCore scores word and char_wb blocks, not {analyzer!r}")
        if not vocab:
            raise ValueError("an empty vocabulary")
        self.vocab = vocab
        self._weighted = np.ascontiguousarray(weighted, dtype=np.float64)
        self._idf = np.ascontiguousarray(idf, dtype=np.float64)
        if self._weighted.shape != (len(vocab),) or self._idf.shape != (len(vocab),):
            raise ValueError("the weights do not match the vocabulary")
        cdef const double[::1] w = self._weighted
        cdef const double[::1] f = self._idf
        self.weighted = &w[0]
        self.idf = &f[0]
        self.largest = <int32_t>(len(vocab) - 1)
        self.offset = offset
        self.tf_mode = TF_BINARY if binary else (TF_SUBLINEAR if sublinear else TF_RAW)
        self.norm_mode = NORM_NONE if norm is None else (NORM_L1 if norm == "l1" else NORM_L2)
        self.use_idf = use_idf
        self.char_wb = analyzer == "char_wb"
        self.min_n, self.max_n = min_n, max_n
        self.token_findall = token_findall
        self.stop_words = stop_words
        self.word_ids, self.credit_grams, self.credit_words = word_ids, credit_grams, credit_words
        self._ids_cache, self._token_words, self._credit_cache = {}, {}, {}
        self.cache_size = cache_size
        self.cache_word_chars = cache_word_chars

    def cached_keys(self):
        """The words (tokens) each per-word cache holds now: n-gram ids, words of tokens, credit."""
        return list(self._ids_cache), list(self._token_words), list(self._credit_cache)

    def clear_caches(self):
        self._ids_cache.clear()
        self._token_words.clear()
        self._credit_cache.clear()

    # -- gathering the n-gram ids of one document -------------------------------------------

    cdef _Buffer _char_wb_ids(self, dict tokens, Py_ssize_t* n_out):
        """The ids of every token's n-grams, each token's repeated as often as it occurs."""
        cdef list packed = []
        cdef Py_ssize_t total = 0, times, size, i, k, at = 0
        cdef PyObject* hit
        cdef bytes ids
        cdef dict cache = self._ids_cache
        for token, count in tokens.items():
            hit = PyDict_GetItem(cache, token)
            ids = _remember(cache, token, _pack(self.word_ids(token)), self.cache_size, self.cache_word_chars) if hit == NULL \
                else <bytes><object>hit
            times = count
            total += (PyBytes_GET_SIZE(ids) // 4) * times
            packed.append((ids, times))
        cdef _Buffer out = _Buffer(total, sizeof(int32_t))
        cdef int32_t* dst = <int32_t*>out.data
        for ids, times in packed:
            size = PyBytes_GET_SIZE(ids) // 4
            for k in range(times):
                memcpy(dst + at, PyBytes_AS_STRING(ids), size * sizeof(int32_t))
                at += size
        n_out[0] = total
        return out

    cdef _Buffer _word_ids(self, str doc, Py_ssize_t* n_out):
        """The ids of the word n-grams of a document (sklearn's _word_ngrams, looked up as cut)."""
        cdef list tokens = self.token_findall(doc)
        if self.stop_words is not None:
            stop = self.stop_words
            tokens = [t for t in tokens if t not in stop]
        cdef Py_ssize_t n_tok = len(tokens), i, n, at = 0
        cdef Py_ssize_t most = n_tok * (self.max_n - self.min_n + 1)
        cdef _Buffer out = _Buffer(most, sizeof(int32_t))
        cdef int32_t* dst = <int32_t*>out.data
        cdef PyObject* hit
        cdef dict vocab = self.vocab
        if self.min_n == 1:
            for i in range(n_tok):
                hit = PyDict_GetItem(vocab, tokens[i])
                if hit != NULL:
                    dst[at] = <int32_t><object>hit
                    at += 1
        for n in range(max(self.min_n, 2), min(self.max_n + 1, n_tok + 1)):
            for i in range(n_tok - n + 1):
                if n == 2:
                    gram = <str>tokens[i] + " " + <str>tokens[i + 1]
                else:
                    gram = " ".join(tokens[i:i + n])
                hit = PyDict_GetItem(vocab, gram)
                if hit != NULL:
                    dst[at] = <int32_t><object>hit
                    at += 1
        n_out[0] = at
        return out

    # -- counting and weighing ------------------------------------------------------------

    cdef Py_ssize_t _count_and_weigh(self, int32_t* ids, Py_ssize_t n, int32_t* cols, double* values):
        """Sort ``ids``, count each distinct id, weigh: the number of (cols, values) written.

        Returns 0 also when the row's norm is 0 (sklearn leaves such a row as it is: no features).
        """
        if n == 0:
            return 0
        cdef _Buffer scratch = _Buffer(n, sizeof(int32_t))
        _radix_sort(ids, <int32_t*>scratch.data, n, self.largest)
        cdef Py_ssize_t i, m = 0
        cdef double* tf = values  # the counts first, then the values in place
        for i in range(n):
            if i == 0 or ids[i] != ids[i - 1]:
                cols[m] = ids[i]
                tf[m] = 1.0
                m += 1
            else:
                tf[m - 1] += 1.0
        cdef double x, norm = 0.0
        for i in range(m):
            if self.tf_mode == TF_BINARY:
                tf[i] = 1.0
            elif self.tf_mode == TF_SUBLINEAR:
                tf[i] = log(tf[i]) + 1.0
        if self.norm_mode != NORM_NONE:
            for i in range(m):
                x = tf[i] * self.idf[cols[i]] if self.use_idf else tf[i]
                norm += x * x if self.norm_mode == NORM_L2 else fabs(x)
            if self.norm_mode == NORM_L2:
                norm = sqrt(norm)
            if norm == 0.0:
                return 0
            for i in range(m):
                values[i] = tf[i] * self.weighted[cols[i]] / norm
        else:
            for i in range(m):
                values[i] = tf[i] * self.weighted[cols[i]]
        return m

    cdef tuple _arrays(self, const int32_t* cols, const double* values, Py_ssize_t m):
        """(columns with the block offset, as intp; values) as new numpy arrays."""
        out_cols = np.empty(m, dtype=np.intp)
        out_values = np.empty(m, dtype=np.float64)
        cdef Py_ssize_t[::1] c = out_cols
        cdef double[::1] v = out_values
        cdef Py_ssize_t i
        for i in range(m):
            c[i] = cols[i] + self.offset
            v[i] = values[i]
        return out_cols, out_values

    # -- the two entry points ---------------------------------------------------------------

    def contributions(self, str doc):
        """(columns, log-odds contributions) of a preprocessed document's features, or None."""
        cdef Py_ssize_t n = 0, m
        cdef _Buffer ids
        if self.char_wb:
            ids = self._char_wb_ids(_count_tokens(doc), &n)
        else:
            ids = self._word_ids(doc, &n)
        if n == 0:
            return None
        cdef _Buffer cols = _Buffer(n, sizeof(int32_t))
        cdef _Buffer values = _Buffer(n, sizeof(double))
        m = self._count_and_weigh(<int32_t*>ids.data, n, <int32_t*>cols.data, <double*>values.data)
        if m == 0:
            return None
        return self._arrays(<int32_t*>cols.data, <double*>values.data, m)

    def contributions_and_credit(self, str doc):
        """:meth:`contributions`, and the contributions credited to the words of the document.

        What ``_TextBlock.contributions_and_credit`` computes (see there), for a char_wb block.
        """
        cdef dict tokens = _count_tokens(doc)
        cdef Py_ssize_t n = 0, m
        cdef _Buffer ids = self._char_wb_ids(tokens, &n)
        if n == 0:
            return None, {}
        cdef _Buffer cols_buf = _Buffer(n, sizeof(int32_t))
        cdef _Buffer values_buf = _Buffer(n, sizeof(double))
        cdef int32_t* cols = <int32_t*>cols_buf.data
        cdef double* values = <double*>values_buf.data
        m = self._count_and_weigh(<int32_t*>ids.data, n, cols, values)
        if m == 0:
            return None, {}
        found = self._arrays(cols, values, m)
        words = self._words_of(tokens)
        if not words:
            return found, {}
        return found, self._credit(words, cols, values, m)

    cdef dict _words_of(self, dict tokens):
        """The words of the tokens (``\\w+`` runs) with their occurrences, in order of first occurrence."""
        cdef dict words = {}
        cdef dict cache = self._token_words
        cdef PyObject* hit
        cdef PyObject* seen
        for token, times in tokens.items():
            hit = PyDict_GetItem(cache, token)
            pieces = _remember(cache, token, tuple(self.credit_words(token)), self.cache_size, self.cache_word_chars) if hit == NULL \
                else <object>hit
            for word in pieces:
                seen = PyDict_GetItem(words, word)
                words[word] = times if seen == NULL else <object>seen + times
        return words

    cdef bytes _pack_credit_grams(self, word):
        """A word's (id, occurrences) pairs, ascending by id, as packed native int32 bytes."""
        word_ids, word_counts = self.credit_grams(word)
        packed = np.empty((len(word_ids), 2), dtype=np.int32)
        packed[:, 0] = word_ids
        packed[:, 1] = word_counts
        return packed.tobytes()

    cdef dict _credit(self, dict words, const int32_t* local, const double* values, Py_ssize_t m):
        cdef Py_ssize_t n_words = len(words), k, j, size, total = 0, at, e
        cdef list names = list(words)
        cdef list grams = []
        cdef dict cache = self._credit_cache
        cdef PyObject* hit
        for word in names:
            hit = PyDict_GetItem(cache, word)
            gram_bytes = _remember(cache, word, self._pack_credit_grams(word), self.cache_size, self.cache_word_chars) if hit == NULL \
                else <object>hit
            grams.append(gram_bytes)
            total += PyBytes_GET_SIZE(gram_bytes) // 8
        # One entry per (word, n-gram of the word that is a feature of this comment), in word
        # order and, within a word, ascending id: the order the reference sums them in.
        cdef _Buffer pos_buf = _Buffer(total, sizeof(Py_ssize_t))
        cdef _Buffer held_buf = _Buffer(total, sizeof(int64_t))
        cdef _Buffer owner_buf = _Buffer(total, sizeof(Py_ssize_t))
        cdef _Buffer totals_buf = _Buffer(m, sizeof(double))
        cdef _Buffer sums_buf = _Buffer(n_words, sizeof(double))
        cdef _Buffer first_buf = _Buffer(n_words, sizeof(int32_t))
        cdef _Buffer order_buf = _Buffer(n_words, sizeof(Py_ssize_t))
        cdef Py_ssize_t* pos = <Py_ssize_t*>pos_buf.data
        cdef int64_t* held = <int64_t*>held_buf.data
        cdef Py_ssize_t* owner = <Py_ssize_t*>owner_buf.data
        cdef double* totals = <double*>totals_buf.data
        cdef double* sums = <double*>sums_buf.data
        cdef int32_t* first = <int32_t*>first_buf.data
        cdef Py_ssize_t* order = <Py_ssize_t*>order_buf.data
        cdef const int32_t* pairs
        cdef int64_t times
        cdef Py_ssize_t n_credited = 0
        memset(totals, 0, m * sizeof(double))
        memset(sums, 0, n_words * sizeof(double))
        at = 0
        for k in range(n_words):
            gram_bytes = grams[k]
            pairs = <const int32_t*>PyBytes_AS_STRING(gram_bytes)
            size = PyBytes_GET_SIZE(gram_bytes) // 8
            times = <int64_t>words[names[k]]
            first[k] = -1
            for j in range(size):
                e = _bsearch(local, m, pairs[2 * j])
                if e < 0:
                    continue
                if first[k] < 0:
                    first[k] = pairs[2 * j]
                    order[n_credited] = k
                    n_credited += 1
                pos[at] = e
                held[at] = pairs[2 * j + 1] * times
                owner[at] = k
                totals[e] += <double>held[at]
                at += 1
        if n_credited == 0:
            return {}
        for e in range(at):
            sums[owner[e]] += values[pos[e]] * <double>held[e] / totals[pos[e]]
        # Credit in the reference's order: by the first column each word is credited, ties in
        # word order (a stable insertion sort of the few credited words).
        cdef Py_ssize_t a, b, w
        for a in range(1, n_credited):
            w = order[a]
            b = a - 1
            while b >= 0 and first[order[b]] > first[w]:
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = w
        cdef dict credit = {}
        for a in range(n_credited):
            credit[names[order[a]]] = sums[order[a]]
        return credit


cdef dict _count_tokens(str doc):
    """The whitespace tokens of a preprocessed document, counted in order of first occurrence."""
    cdef dict tokens = {}
    cdef PyObject* seen
    for token in doc.split():
        seen = PyDict_GetItem(tokens, token)
        tokens[token] = 1 if seen == NULL else <object>seen + 1
    return tokens
