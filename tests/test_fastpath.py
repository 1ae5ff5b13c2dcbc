"""The compiled fast scoring path gives the pipeline's own scores, contributions and reasons.

The reference is scikit-learn itself: ``pipeline.predict_proba`` for the score and
``named_steps['features'].transform`` times the coefficients for the per-feature
contributions, grouped into reasons by the scorer's original (slow-path) method,
re-implemented below. Compared on every comment of the seed corpus and of the
YouTube Spam Collection (when ``../shared/data`` is present), on edge cases, and
on variants of the vectorizer settings the fast path claims to support; settings
it does not support must fail when the model is built, not score differently.

The reference reasons use the original, unindexed ``credit_char_ngrams`` (copied
below), so the faster one in :mod:`model.reasons` is held to the same output.

The main model is fitted once per module on the seed corpus exactly as
``train_model`` fits its final model (same data loader, ``build_pipeline`` and
``fit_pipeline``), without the five cross-validation fits it spends on choosing
thresholds, which these tests do not need (6 s instead of 40 s); it is then saved
and loaded through the real artifact code, so the compiled model is built at load.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import re

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

import model.fastpath as fastpath
from model.artifact import load_model, save_model
from model.comment import Comment
from model.compile_pipeline import spec_from_pipeline
from model.errors import ArtifactIncompatibleError, FastPathUnsupportedError
from model.fastpath import CompiledModel
from model.pipeline import build_pipeline, feature_names, fit_pipeline
from model.reasons import credit_char_ngrams, describe_meta, describe_ngram, top_reasons
from model.scorer import Scorer
from model.tables import TABLES_NAME, read_tables, tables_bytes
from model.verdict import Reason, Thresholds
from training.loaders import load_files
from training.seed import seed_files
from training.train import load_training_data

YOUTUBE = (Path(__file__).resolve().parents[2] / "shared" / "data" / "youtube_spam_collection"
           / "youtube_spam_collection_all.csv")
THRESHOLDS = Thresholds(unsure=0.4, spam=0.6, discard=0.9)
TOLERANCE = 1e-6  # the contract; the fast path is in fact within ~1e-14
EDGE_CASES = {
    "empty": Comment(comment_content=""),
    "whitespace": Comment(comment_content=" \t\n  "),
    "punctuation": Comment(comment_content="!!! ... ??? --- ;;; ***"),
    "emoji": Comment(comment_content="🎉🎉🎉 😂😂 🔥 👍👍👍"),
    "emoji and punctuation with metadata": Comment(
        comment_content="!!! 🎉 ???", comment_author_url="http://bit.ly/x",
        comment_author_email="a@b.example", comment_type="trackback"),
    "unknown words only": Comment(comment_content="zxqvj blorptag fnarglewub qqqxxy vvwwzz"),
    "long (20k chars)": Comment(comment_content=(
        "Buy cheap pills at http://bit.ly/abc now, best prices!!! Thanks for the great article, "
        "très utile. Call +1 (888) 555-0142 ") * 200 + "x" * 1000),
    "one 20k-char word": Comment(comment_content="a" * 20_000),
    "whitespace runs and tabs": Comment(comment_content="free\t\tmoney \n\n  click   here\u00a0\u2003now"),
    "accents and case": Comment(comment_content="CAFÉ Crème brûlée ÜBER naïve Ǆ ﬁnance"),
}


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    """The seed-corpus model, saved and loaded through the artifact code (so compiled at load)."""
    loaded = load_training_data([])
    comments = [r.comment for r in loaded.records]
    labels = np.array([r.label for r in loaded.records], dtype=int)
    pipeline = fit_pipeline(build_pipeline(random_state=0), comments, labels)
    out = tmp_path_factory.mktemp("fastpath-model") / "model"
    save_model(pipeline, out, thresholds=THRESHOLDS, metadata={"version": "fastpath-test"})
    return load_model(out)


@pytest.fixture(scope="module")
def seed_comments() -> list[Comment]:
    return [r.comment for r in load_files(seed_files()).records]


@pytest.fixture(scope="module")
def youtube_comments() -> list[Comment]:
    if not YOUTUBE.parent.is_dir():
        pytest.skip(f"the YouTube Spam Collection is absent ({YOUTUBE.parent} does not exist)")
    return [r.comment for r in load_files([YOUTUBE]).records]


@pytest.fixture(scope="module")
def small_training(seed_comments: list[Comment]) -> tuple[list[Comment], np.ndarray]:
    """A few hundred seed comments with labels, to fit the variant pipelines quickly."""
    loaded = load_files(seed_files()).records
    picked = loaded[::5]
    return [r.comment for r in picked], np.array([r.label for r in picked], dtype=int)


# --- the reference (slow path) ---------------------------------------------------------------

def reference(pipeline: Pipeline, comments: list[Any]) -> tuple[np.ndarray, list[list[tuple[int, float]]], list[str]]:
    """Scores by predict_proba, and per comment the (column, contribution) pairs of its feature row."""
    scores = pipeline.predict_proba(comments)[:, 1]
    prepared = pipeline.named_steps["prepare"].transform(comments)
    matrix = sparse.csr_matrix(pipeline.named_steps["features"].transform(prepared))
    coef = pipeline.named_steps["classifier"].coef_[0]
    rows = []
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        cols = matrix.indices[start:end]
        rows.append(list(zip(cols.tolist(), (matrix.data[start:end] * coef[cols]).tolist())))
    return scores, rows, [p.text for p in prepared]


def original_credit_char_ngrams(text: str, contributions: list[tuple[str, float]]) -> dict[str, float]:
    """model.reasons.credit_char_ngrams as it was before it was indexed for speed (word by word)."""
    words = re.findall(r"(?u)\b\w+\b", text.lower())
    padded = {w: f" {w} " for w in set(words)}
    counts: dict[str, int] = defaultdict(int)
    for w in words:
        counts[w] += 1
    credit: dict[str, float] = defaultdict(float)
    for gram, value in contributions:
        holders = [(w, counts[w] * padded[w].count(gram)) for w in padded if gram in padded[w]]
        total = sum(n for _, n in holders)
        for w, n in holders:
            credit[w] += value * n / total
    return credit


def previous_reasons(scorer: Scorer, comment: Comment) -> tuple[float, tuple[Reason, ...]]:
    """The score and reasons as Scorer.score gave them before the fast path credited the char n-grams:
    every contribution from ``CompiledModel.score``, grouped as the slow path groups them, with
    the indexed :func:`model.reasons.credit_char_ngrams`."""
    result = scorer.compiled.score(comment)
    names = feature_names(scorer.pipeline).astype(str).tolist()
    return result.score, reference_reasons(names, result.text, list(result.contributions),
                                           THRESHOLDS.tier(result.score) != "ham", credit=credit_char_ngrams)


def reference_reasons(names: list[str], text: str, row: list[tuple[int, float]], toward_spam: bool,
                      credit: Callable[[str, list[tuple[str, float]]], dict[str, float]]
                      = original_credit_char_ngrams) -> tuple[Reason, ...]:
    """The scorer's original explanation, from a sparse feature row (as before the fast path)."""
    grouped: dict[str, float] = defaultdict(float)
    char_grams: list[tuple[str, float]] = []
    for col, value in row:
        block, name = names[col].split("__", 1)
        if block == "chars":
            char_grams.append((name, value))
        elif block == "words":
            grouped[describe_ngram(name)] += value
        else:
            grouped[describe_meta(name)] += value
    for word, value in credit(text, char_grams).items():
        grouped[describe_ngram(word)] += value
    return top_reasons(grouped, toward_spam)


def assert_same_as_pipeline(compiled: CompiledModel, pipeline: Pipeline, comments: list[Any],
                            labels: list[str] | None = None) -> None:
    expected, rows, _ = reference(pipeline, comments)
    for i, (comment, want, row) in enumerate(zip(comments, expected, rows)):
        got = compiled.score(comment)
        where = labels[i] if labels else f"comment {i}: {str(getattr(comment, 'comment_content', comment))[:80]!r}"
        assert abs(got.score - want) <= TOLERANCE, (where, got.score, want)
        assert [c for c, _ in got.contributions] == [c for c, _ in row], where
        np.testing.assert_allclose([v for _, v in got.contributions], [v for _, v in row],
                                   rtol=1e-9, atol=1e-12, err_msg=where)


def assert_same_reasons(scorer: Scorer, comments: list[Comment]) -> None:
    expected, rows, texts = reference(scorer.pipeline, comments)
    names = feature_names(scorer.pipeline).astype(str).tolist()
    verdicts = scorer.score_many(comments)  # the batch path: one call for all of them
    assert len(verdicts) == len(comments)
    worst = 0.0
    for comment, verdict, want, row, text in zip(comments, verdicts, expected, rows, texts):
        worst = max(worst, abs(verdict.score - want))
        slow = reference_reasons(names, text, row, THRESHOLDS.tier(float(want)) != "ham")
        assert [r.text for r in verdict.reasons] == [r.text for r in slow], comment.comment_content[:80]
        np.testing.assert_allclose([r.weight for r in verdict.reasons], [r.weight for r in slow],
                                   rtol=1e-9, atol=1e-12)
        assert verdict.tier == THRESHOLDS.tier(verdict.score)
    assert worst <= TOLERANCE, worst


# --- the main model on the corpora -----------------------------------------------------------

def test_seed_corpus_scores_match_predict_proba(scorer: Scorer, seed_comments: list[Comment]) -> None:
    expected = scorer.pipeline.predict_proba(seed_comments)[:, 1]
    got = np.array([scorer.compiled.score(c).score for c in seed_comments])
    assert len(got) > 2000
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    assert np.abs(got - expected).max() < 1e-12  # what the fast path actually achieves


def test_youtube_scores_match_predict_proba(scorer: Scorer, youtube_comments: list[Comment]) -> None:
    expected = scorer.pipeline.predict_proba(youtube_comments)[:, 1]
    got = np.array([scorer.compiled.score(c).score for c in youtube_comments])
    assert len(got) > 1500
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    assert np.abs(got - expected).max() < 1e-12


def test_seed_corpus_contributions_match_the_feature_rows(scorer: Scorer,
                                                          seed_comments: list[Comment]) -> None:
    assert_same_as_pipeline(scorer.compiled, scorer.pipeline, seed_comments)


def test_youtube_contributions_match_the_feature_rows(scorer: Scorer,
                                                      youtube_comments: list[Comment]) -> None:
    assert_same_as_pipeline(scorer.compiled, scorer.pipeline, youtube_comments)


def test_seed_corpus_reasons_match_the_slow_path(scorer: Scorer, seed_comments: list[Comment]) -> None:
    assert_same_reasons(scorer, seed_comments)


def test_youtube_reasons_match_the_slow_path(scorer: Scorer, youtube_comments: list[Comment]) -> None:
    assert_same_reasons(scorer, youtube_comments)


def test_seed_corpus_reasons_equal_the_previous_implementation(scorer: Scorer,
                                                               seed_comments: list[Comment]) -> None:
    """The char n-grams credited inside the fast path give the reasons the scorer gave before.

    Every fourth seed comment: the reference implementation is the slow one being replaced,
    and a quarter of the corpus (all families, 575 comments) keeps this test to seconds.
    """
    comments = seed_comments[::4] + list(EDGE_CASES.values())
    assert scorer._fast_credit  # the default model takes the fast credit path
    verdicts = scorer.score_many(comments)
    for comment, verdict in zip(comments, verdicts):
        score, before = previous_reasons(scorer, comment)
        where = comment.comment_content[:80]
        assert verdict.score == score, where
        assert [r.text for r in verdict.reasons] == [r.text for r in before], where
        np.testing.assert_allclose([r.weight for r in verdict.reasons], [r.weight for r in before],
                                   rtol=1e-9, atol=1e-12, err_msg=where)


def test_fast_credit_equals_the_indexed_credit(scorer: Scorer, seed_comments: list[Comment]) -> None:
    """Word by word, the credit from the fast path equals credit_char_ngrams (to rounding)."""
    names = feature_names(scorer.pipeline).astype(str).tolist()
    compiled = scorer.compiled
    for comment in seed_comments[::3] + list(EDGE_CASES.values()):
        prepared = compiled.prepare(comment)
        explained = compiled.explain_prepared(prepared, "chars")
        grams = [(names[c].split("__", 1)[1], v) for c, v in compiled.score_prepared(prepared).contributions
                 if names[c].startswith("chars__")]
        want = credit_char_ngrams(prepared.text, grams)
        assert set(explained.word_credit) == set(want), comment.comment_content[:80]
        for word, value in want.items():
            assert explained.word_credit[word] == pytest.approx(value, rel=1e-12, abs=1e-15), word


def test_spam_probability_matches_predict_proba(scorer: Scorer, seed_comments: list[Comment]) -> None:
    items: list[Any] = seed_comments[:200] + [{"comment_content": "free money http://bit.ly/x"}, "plain text"]
    np.testing.assert_allclose(scorer.spam_probability(items),
                               scorer.pipeline.predict_proba(items)[:, 1], rtol=0, atol=1e-12)


# --- edge cases ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_match_the_pipeline(scorer: Scorer, name: str) -> None:
    comment = EDGE_CASES[name]
    assert_same_as_pipeline(scorer.compiled, scorer.pipeline, [comment], [name])
    assert_same_reasons(scorer, [comment])


def test_unknown_words_only_leave_just_the_metadata(scorer: Scorer) -> None:
    result = scorer.compiled.score(EDGE_CASES["unknown words only"])
    names = feature_names(scorer.pipeline)
    blocks = {names[c].split("__", 1)[0] for c, _ in result.contributions}
    assert "words" not in blocks


def test_empty_text_scores_from_metadata_and_intercept(scorer: Scorer) -> None:
    result = scorer.compiled.score(Comment(comment_content=""))
    assert result.text == ""
    assert 0.0 < result.score < 1.0
    assert result.logit == pytest.approx(scorer.compiled.intercept + sum(v for _, v in result.contributions))


def test_score_many_equals_one_by_one_and_handles_empty(scorer: Scorer,
                                                        seed_comments: list[Comment]) -> None:
    batch = seed_comments[:50]
    assert scorer.score_many(batch) == [scorer.score(c) for c in batch]
    assert scorer.score_many([]) == []


def test_a_tiny_word_cache_changes_nothing(scorer: Scorer, seed_comments: list[Comment],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    sample = seed_comments[:300]
    before = [scorer.compiled.score(c) for c in sample]
    monkeypatch.setattr(fastpath, "WORD_CACHE_SIZE", 3)
    fresh = CompiledModel(scorer.pipeline)
    assert [fresh.score(c) for c in sample] == before


# --- the compiled core (model/_fastcore.pyx) against the numpy engine ------------------------

def assert_same_engines(pipeline: Pipeline, comments: list[Any]) -> None:
    """Both engines give the same scores, contributions and word credit (in the same order)."""
    c, reference_engine = CompiledModel(pipeline, "c"), CompiledModel(pipeline, "numpy")
    for comment in comments:
        where = str(getattr(comment, "comment_content", comment))[:80]
        got, want = c.score(comment), reference_engine.score(comment)
        assert got.score == pytest.approx(want.score, rel=0, abs=1e-14), where
        assert [col for col, _ in got.contributions] == [col for col, _ in want.contributions], where
        np.testing.assert_allclose([v for _, v in got.contributions], [v for _, v in want.contributions],
                                   rtol=1e-12, atol=1e-15, err_msg=where)
        got_x = c.explain_prepared(c.prepare(comment), "chars")
        want_x = reference_engine.explain_prepared(reference_engine.prepare(comment), "chars")
        assert list(got_x.word_credit) == list(want_x.word_credit), where  # the order reasons tie-break on
        np.testing.assert_allclose(list(got_x.word_credit.values()), list(want_x.word_credit.values()),
                                   rtol=1e-12, atol=1e-15, err_msg=where)
        assert got_x.score == pytest.approx(want_x.score, rel=0, abs=1e-14), where


def test_the_compiled_core_is_built_and_scores_by_default(scorer: Scorer) -> None:
    """setup.py compiles the core on install; a model loaded through the artifact code uses it."""
    assert fastpath.DEFAULT_ENGINE == "c", "model._fastcore is not built: reinstall with a C compiler"
    assert scorer.compiled.engine == "c"
    text_blocks = [b for b in scorer.compiled.blocks if isinstance(b, fastpath._TextBlock)]
    assert [b.name for b in text_blocks] == ["words", "chars"]
    assert all(b.core is not None for b in text_blocks)


def test_the_numpy_engine_uses_no_core(scorer: Scorer) -> None:
    reference_engine = CompiledModel(scorer.pipeline, "numpy")
    assert reference_engine.engine == "numpy"
    assert all(getattr(b, "core", None) is None for b in reference_engine.blocks)
    with pytest.raises(ValueError, match="engine must be one of"):
        CompiledModel(scorer.pipeline, "fortran")


def test_engines_agree_on_the_seed_corpus(scorer: Scorer, seed_comments: list[Comment]) -> None:
    assert_same_engines(scorer.pipeline, seed_comments + list(EDGE_CASES.values()))


def test_engines_agree_on_youtube(scorer: Scorer, youtube_comments: list[Comment]) -> None:
    assert_same_engines(scorer.pipeline, youtube_comments)


def test_engines_agree_with_tiny_caches(scorer: Scorer, seed_comments: list[Comment],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches emptied every few words (misses, refills) change nothing in the compiled core."""
    monkeypatch.setattr(fastpath, "WORD_CACHE_SIZE", 2)
    sample = seed_comments[::9]
    assert_same_engines(scorer.pipeline, sample + sample[::-1])
    compiled = CompiledModel(scorer.pipeline, "c")
    first = [compiled.score(c) for c in sample]
    compiled.clear_caches()
    assert [compiled.score(c) for c in sample] == first


@pytest.mark.parametrize("engine", ["c", "numpy"])
def test_long_words_are_scored_but_not_cached(scorer: Scorer, engine: str) -> None:
    # Unique long words (a 64 KiB body holds one of 60,000 letters) would fill a worker's memory.
    compiled = CompiledModel(scorer.pipeline, engine)
    long_word = "q" * 5000 + "z" * 3000
    short = "thanks for the write-up"
    comment = Comment(comment_content=f"{short} {long_word} http://bit.ly/x")
    first = compiled.explain_prepared(compiled.prepare(comment), "chars")
    again = compiled.explain_prepared(compiled.prepare(comment), "chars")
    assert (again.score, again.word_credit) == (first.score, first.word_credit)
    assert first.score == pytest.approx(float(scorer.pipeline.predict_proba([comment])[0, 1]), abs=1e-12)
    chars = next(b for b in compiled.blocks if getattr(b, "name", "") == "chars")
    caches = (chars.core.cached_keys() if engine == "c"
              else (list(chars._word_ids), list(chars._token_words), list(chars._credit_cache)))
    for cache in caches:
        assert cache and max(len(word) for word in cache) <= fastpath.MAX_CACHED_WORD
        assert "thanks" in cache or any("thanks" in word for word in cache)


def test_the_core_refuses_what_it_does_not_reproduce(scorer: Scorer) -> None:
    from model import _fastcore

    chars = next(b for b in scorer.compiled.blocks if getattr(b, "name", "") == "chars")
    common = dict(weighted=chars.weighted, idf=chars.idf, offset=0, min_n=2, max_n=5, binary=False,
                  sublinear=True, norm="l2", use_idf=True, cache_size=10)
    with pytest.raises(ValueError, match="not 'char'"):
        _fastcore.TextCore(vocab=chars.vocab, analyzer="char", **common)
    with pytest.raises(ValueError, match="empty vocabulary"):
        _fastcore.TextCore(vocab={}, analyzer="char_wb", **common)
    with pytest.raises(ValueError, match="do not match"):
        _fastcore.TextCore(vocab={"ab": 0}, analyzer="char_wb", **common)


# --- other vectorizer settings ---------------------------------------------------------------

VARIANTS: dict[str, dict[str, Any]] = {
    "char analyzer, wider ranges, block weights": dict(
        build=dict(char_analyzer="char", char_range=(1, 4), word_range=(1, 3),
                   meta_weight=0.5, char_weight=2.0, word_weight=1.5)),
    "words: accents, case, binary, l1, stop words; chars: ascii accents, no idf, no norm": dict(
        words=dict(strip_accents="unicode", lowercase=False, binary=True, sublinear_tf=False,
                   norm="l1", stop_words="english"),
        chars=dict(strip_accents="ascii", use_idf=False, norm=None, sublinear_tf=False)),
    "bigrams only, char_wb from 1, no transformer weights": dict(
        build=dict(word_range=(2, 2), char_range=(1, 3)), union=dict(transformer_weights=None),
        words=dict(token_pattern=r"(?u)\b(\w\w+)\b", smooth_idf=False)),
    "no sublinear tf, a word cut at max_features": dict(
        build=dict(max_features=500, char_range=(3, 6)), chars=dict(sublinear_tf=False)),
}


def _variant(settings: dict[str, Any], comments: list[Comment], labels: np.ndarray) -> Pipeline:
    pipeline = build_pipeline(**settings.get("build", {}))
    features = pipeline.named_steps["features"]
    features.set_params(**settings.get("union", {}))
    for block in ("words", "chars"):
        features.set_params(**{f"{block}__tfidf__{k}": v for k, v in settings.get(block, {}).items()})
    return fit_pipeline(pipeline, comments, labels)


@pytest.mark.parametrize("engine", fastpath.ENGINES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_supported_vectorizer_settings_match_the_pipeline(name: str, engine: str, small_training,
                                                          seed_comments) -> None:
    comments, labels = small_training
    pipeline = _variant(VARIANTS[name], comments, labels)
    probe = seed_comments[1::7][:300] + list(EDGE_CASES.values())
    compiled = CompiledModel(pipeline, engine)
    assert compiled.engine == engine
    assert_same_as_pipeline(compiled, pipeline, probe)


@pytest.mark.parametrize("engine", fastpath.ENGINES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_serving_tables_hold_every_supported_setting(name: str, engine: str, small_training, seed_comments,
                                                     tmp_path: Path) -> None:
    """Written to an artifact's serving tables and read back, each variant scores exactly as compiled."""
    comments, labels = small_training
    pipeline = _variant(VARIANTS[name], comments, labels)
    path = tmp_path / TABLES_NAME
    path.write_bytes(tables_bytes(spec_from_pipeline(pipeline), ["the", "and"]))
    spec, quiet = read_tables(path)
    assert quiet == {"the", "and"}
    assert spec.feature_names() == feature_names(pipeline).astype(str).tolist()
    probe = seed_comments[2::7][:300] + list(EDGE_CASES.values())
    direct, from_tables = CompiledModel(pipeline, engine), CompiledModel(spec, engine)
    assert [from_tables.score(c) for c in probe] == [direct.score(c) for c in probe]


def test_the_served_model_is_the_pipelines(scorer: Scorer) -> None:
    """The fixture's scorer was loaded from the serving tables; its columns are the pipeline's."""
    assert scorer._pipeline_loader is not None  # built from the tables, the pickle left for when asked
    assert scorer.compiled.spec.feature_names() == feature_names(scorer.pipeline).astype(str).tolist()
    direct = spec_from_pipeline(scorer.pipeline)
    assert scorer.compiled.intercept == direct.intercept
    for served, fitted in zip(scorer.compiled.spec.blocks, direct.blocks):
        np.testing.assert_array_equal(served.weighted, fitted.weighted)


def _fitted_tiny(small_training) -> Pipeline:
    comments, labels = small_training
    return fit_pipeline(build_pipeline(), comments[::3], labels[::3])


def _shout(text: str) -> str:
    return text.upper()


def _split(text: str) -> list[str]:
    return text.split()


UNSUPPORTED = {
    "custom analyzer": ("chars", dict(analyzer=_split), "analyzer"),
    "custom preprocessor": ("words", dict(preprocessor=_shout), "preprocessor"),
    "custom tokenizer": ("words", dict(tokenizer=_split), "tokenizer"),
    "float32": ("chars", dict(dtype=np.float32), "dtype"),
    "file input": ("words", dict(input="filename"), "input"),
    "norm changed after fitting": ("words", dict(norm="l1"), "norm changed after fitting"),
    "bad accents option": ("words", dict(strip_accents="latin"), "strip_accents"),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_vectorizer_options_fail_at_build(name: str, small_training) -> None:
    pipeline = _fitted_tiny(small_training)
    block, params, mentioned = UNSUPPORTED[name]
    pipeline.named_steps["features"].set_params(**{f"{block}__tfidf__{k}": v for k, v in params.items()})
    with pytest.raises(FastPathUnsupportedError, match=mentioned) as caught:
        CompiledModel(pipeline)
    assert repr(block) in str(caught.value)


def test_other_vectorizer_or_classifier_types_fail_at_build(small_training) -> None:
    comments, labels = small_training
    pipeline = _fitted_tiny(small_training)
    words = pipeline.named_steps["features"].transformer_list[0][1]
    words.steps[1] = ("tfidf", CountVectorizer().fit([c.comment_content for c in comments]))
    with pytest.raises(FastPathUnsupportedError, match="CountVectorizer"):
        CompiledModel(pipeline)
    pipeline = _fitted_tiny(small_training)
    pipeline.steps[-1] = ("classifier", SGDClassifier())
    with pytest.raises(FastPathUnsupportedError, match="LogisticRegression"):
        CompiledModel(pipeline)


def test_loading_an_unsupported_model_is_refused_clearly(small_training, tmp_path: Path) -> None:
    pipeline = _fitted_tiny(small_training)
    pipeline.named_steps["features"].set_params(chars__tfidf__dtype=np.float32)
    save_model(pipeline, tmp_path / "model", thresholds=THRESHOLDS)
    with pytest.raises(ArtifactIncompatibleError, match="fast scoring path does not support dtype"):
        load_model(tmp_path / "model")
