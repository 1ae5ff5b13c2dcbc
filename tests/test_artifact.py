"""Tests of model.artifact: save, load, and refusing bad artifacts before unpickling them."""
from __future__ import annotations

import os
import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn

import model.artifact as artifact
from model.features import FEATURES_VERSION
from model.artifact import (
    METADATA_NAME,
    PICKLE_NAME,
    TABLES_NAME,
    load_model,
    read_metadata,
    save_model,
    sha256_file,
)
from model.comment import Comment
from model.errors import (
    ArtifactCorruptError,
    ArtifactError,
    ArtifactIncompatibleError,
    ArtifactMissingError,
)
from model.pipeline import build_pipeline, fit_pipeline
from model.scorer import Scorer
from model.verdict import Thresholds

SPAM = [
    "Buy cheap viagra online at http://bit.ly/pills now",
    "Check out my channel and subscribe, sub for sub!",
    "Earn $500 a day working from home, click here",
    "FREE gift cards!!! visit cheap-deals.xyz today",
    "Best casino bonus code, claim your free spins",
    "Congratulations you have won a prize, call 0800 123 4567",
    "Cheap replica watches, best prices http://replicas.top",
    "Follow me on instagram: hotdeals_88 for giveaways",
    "Make money fast with crypto, guaranteed profit",
    "Txt WIN to 80082 to claim your cash prize",
    "Loans with no credit check, apply at fastloans.biz",
    "Visit my website for the best SEO services",
    "Lose 20 pounds in a week with this pill http://tinyurl.com/slim",
    "Hot singles in your area, click the link",
    "Get 10000 followers instantly, cheap likes",
    "Essay writing service, cheap and fast, order now",
    "Download free movies at movies-free.xyz",
    "Work from home and earn big, limited offer",
    "Bitcoin doubler, send 1 BTC and get 2 back",
    "Cheap pharmacy, no prescription needed, buy now",
]
HAM = [
    "Thanks for the clear explanation of the tax rules",
    "I tried the recipe and it turned out great",
    "Could you share the source code for the second example?",
    "I disagree with the point about interest rates",
    "Great photos of the mountains, where was the last one taken?",
    "The docs at docs.python.org explain this too",
    "My tomatoes also split after heavy rain, good to know why",
    "Is there a version of this for Windows users?",
    "This helped me fix my bike brakes, thank you",
    "Interesting history of the town, I never knew that",
    "Typo in the third paragraph: 'their' should be 'there'",
    "How long should the dough rest before baking?",
    "I read the book last year and loved the ending",
    "Your chart has the axes swapped, I think",
    "We had the same problem with our router last week",
    "Nice write-up, the diagram makes it clear",
    "What lens did you use for the night shots?",
    "Following up on my question: it works now after the update",
    "The meeting notes are a helpful summary",
    "Does the library support Python 3.12 yet?",
]


@pytest.fixture(scope="module")
def fitted():
    comments = [Comment(comment_content=t) for t in SPAM + HAM]
    labels = np.array([1] * len(SPAM) + [0] * len(HAM))
    return fit_pipeline(build_pipeline(), comments, labels)


THRESHOLDS = Thresholds(unsure=0.3, spam=0.6, discard=0.95)
PROBE = [Comment(comment_content=t) for t in (
    "cheap pills at http://bit.ly/abc", "thanks, the recipe worked", "subscribe to my channel",
    "what camera did you use?", "",
)]


@pytest.fixture()
def saved(fitted, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    save_model(fitted, out, thresholds=THRESHOLDS, metadata={"training": {"rows": 40}})
    return out


@pytest.fixture()
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        pytest.fail("load_model unpickled an artifact it should have refused")
    monkeypatch.setattr(joblib, "load", refuse)


def test_load_gives_a_scorer_with_the_pipelines_scores(fitted, saved: Path) -> None:
    scorer = load_model(saved)
    assert isinstance(scorer, Scorer)
    expected = fitted.predict_proba(PROBE)[:, 1]
    got = np.array([v.score for v in scorer.score_many(PROBE)])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scorer.spam_probability(PROBE), expected, rtol=0, atol=1e-12)
    assert scorer.thresholds == THRESHOLDS


def test_metadata_contents(saved: Path) -> None:
    meta = read_metadata(saved)
    assert meta["version"] and isinstance(meta["version"], str)
    assert meta["created"].startswith("20")
    assert set(meta["libraries"]) >= {"python", "scikit-learn", "joblib"}
    assert meta["libraries"]["scikit-learn"] == sklearn.__version__
    assert meta["libraries"]["joblib"] == joblib.__version__
    assert meta["sha256"] == sha256_file(saved / PICKLE_NAME)
    assert meta["thresholds"] == {"unsure": 0.3, "spam": 0.6, "discard": 0.95}
    assert meta["training"] == {"rows": 40}  # the caller's metadata is kept
    assert meta["format_version"] == artifact.FORMAT_VERSION
    assert load_model(saved).version == meta["version"]


def test_save_leaves_no_temporary_files(fitted, saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == sorted([PICKLE_NAME, TABLES_NAME, METADATA_NAME])
    save_model(fitted, saved, thresholds=THRESHOLDS)  # overwriting in place too
    assert sorted(p.name for p in saved.iterdir()) == sorted([PICKLE_NAME, TABLES_NAME, METADATA_NAME])


def _refused(path: Path, error: type[ArtifactError], *words: str) -> str:
    with pytest.raises(error) as info:
        load_model(path)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_tampered_pickle_is_refused_before_unpickling(saved: Path, no_unpickling) -> None:
    _flip_a_byte(saved / PICKLE_NAME)
    _refused(saved, ArtifactCorruptError, "SHA-256", PICKLE_NAME)


def test_truncated_pickle_is_refused_before_unpickling(saved: Path, no_unpickling) -> None:
    pickle = saved / PICKLE_NAME
    pickle.write_bytes(pickle.read_bytes()[:100])
    _refused(saved, ArtifactCorruptError, "SHA-256")


def test_missing_metadata(saved: Path, no_unpickling) -> None:
    (saved / METADATA_NAME).unlink()
    _refused(saved, ArtifactMissingError, METADATA_NAME, "missing")


def test_missing_pickle(saved: Path, no_unpickling) -> None:
    (saved / PICKLE_NAME).unlink()
    _refused(saved, ArtifactMissingError, PICKLE_NAME, "missing")


def test_missing_directory(tmp_path: Path) -> None:
    _refused(tmp_path / "nowhere", ArtifactMissingError, "nowhere")


def test_unreadable_metadata_json(saved: Path, no_unpickling) -> None:
    (saved / METADATA_NAME).write_text("{not json", encoding="utf-8")
    _refused(saved, ArtifactCorruptError, METADATA_NAME, "JSON")


def test_metadata_without_checksum(saved: Path, no_unpickling) -> None:
    meta = json.loads((saved / METADATA_NAME).read_text())
    del meta["sha256"]
    (saved / METADATA_NAME).write_text(json.dumps(meta))
    _refused(saved, ArtifactCorruptError, "sha256")


@pytest.mark.parametrize("changes", [{"libraries": "oops"}, {"libraries": None}, {"sha256": 42}, {"sha256": ["a"]}])
def test_metadata_of_the_wrong_shape_is_refused_clearly(saved: Path, no_unpickling, changes: dict) -> None:
    _edit_meta(saved, **changes)  # hand-made or damaged: a clear refusal, not an AttributeError
    _refused(saved, ArtifactCorruptError, METADATA_NAME)


def _edit_meta(path: Path, **changes) -> None:
    meta = json.loads((path / METADATA_NAME).read_text())
    meta.update(changes)
    (path / METADATA_NAME).write_text(json.dumps(meta))


def test_other_scikit_learn_minor_version_is_refused_before_unpickling(saved: Path, no_unpickling) -> None:
    major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
    other = f"{major}.{minor + 1}.0"
    meta = json.loads((saved / METADATA_NAME).read_text())
    _edit_meta(saved, libraries={**meta["libraries"], "scikit-learn": other})
    message = _refused(saved, ArtifactIncompatibleError, other, sklearn.__version__)
    assert "scikit-learn" in message


def test_other_scikit_learn_patch_version_is_accepted(saved: Path) -> None:
    major, minor = sklearn.__version__.split(".")[:2]
    meta = json.loads((saved / METADATA_NAME).read_text())
    _edit_meta(saved, libraries={**meta["libraries"], "scikit-learn": f"{major}.{minor}.99"})
    assert isinstance(load_model(saved), Scorer)


def test_wrong_format_version_is_refused_before_unpickling(saved: Path, no_unpickling) -> None:
    _edit_meta(saved, format_version=99)
    _refused(saved, ArtifactIncompatibleError, "format", "99")
    _edit_meta(saved, format_version=True)
    _refused(saved, ArtifactIncompatibleError, "format", "True")


def test_artifacts_are_written_in_a_format_releases_before_features_versions_refuse(saved: Path) -> None:
    """Releases before 2026-11-28 checked only that the format is 1, and a probe's rolling upgrade
    saw one serve a model of newer features with its own older normalisation (other verdicts,
    the same model version, no warning). Written as 2, such a model is refused there; this
    release still reads the artifacts of format 1 those releases and later ones wrote."""
    assert read_metadata(saved)["format_version"] == 2
    _edit_meta(saved, format_version=1)
    assert isinstance(load_model(saved), Scorer)


def test_a_model_trained_by_a_newer_releases_features_is_refused(saved: Path, no_unpickling) -> None:
    """Its tokens are ones this code never makes: served anyway, a probe's disguised spam scored ham."""
    assert read_metadata(saved)["features_version"] == FEATURES_VERSION
    _edit_meta(saved, features_version=FEATURES_VERSION + 1)
    _refused(saved, ArtifactIncompatibleError, "newer release", f"features version {FEATURES_VERSION + 1}")
    _edit_meta(saved, features_version="2")
    _refused(saved, ArtifactCorruptError, "features_version")


def test_a_model_from_before_features_versions_still_loads(saved: Path) -> None:
    meta = read_metadata(saved)
    del meta["features_version"]
    (saved / METADATA_NAME).write_text(json.dumps(meta))
    assert isinstance(load_model(saved, unpickle=False), Scorer)


def test_all_refusals_share_one_base_class(saved: Path) -> None:
    (saved / PICKLE_NAME).write_bytes(b"junk")
    with pytest.raises(ArtifactError):
        load_model(saved)


def test_a_copied_artifact_still_loads(saved: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    assert load_model(copy).version == load_model(saved).version


def test_artifact_files_are_readable_by_other_users(saved: Path) -> None:
    # A container's service user and instances sharing a model volume read artifacts
    # written by someone else; the umask, not the temporary-file default, decides.
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.joblib", "scoring.npz", "metadata.json"):
        mode = (saved / name).stat().st_mode & 0o777
        assert mode == 0o644 & ~umask, (name, oct(mode))


# --- the serving tables (model.tables) ------------------------------------------------------

def _without_tables(path: Path) -> None:
    """Make ``path`` an artifact as written before serving tables existed."""
    (path / TABLES_NAME).unlink()
    meta = json.loads((path / METADATA_NAME).read_text())
    del meta["tables"]
    (path / METADATA_NAME).write_text(json.dumps(meta))


def test_metadata_names_the_tables_and_their_checksum(saved: Path) -> None:
    meta = read_metadata(saved)
    assert meta["tables"] == {"file": TABLES_NAME, "sha256": sha256_file(saved / TABLES_NAME)}


def test_load_scores_from_the_tables_without_unpickling(fitted, saved: Path, no_unpickling) -> None:
    scorer = load_model(saved)
    from_pipeline = Scorer(fitted, thresholds=THRESHOLDS, version="same")
    np.testing.assert_array_equal(scorer.spam_probability(PROBE), from_pipeline.spam_probability(PROBE))
    for mine, reference in zip(scorer.score_many(PROBE), from_pipeline.score_many(PROBE)):
        assert (mine.tier, mine.score, mine.reasons) == (reference.tier, reference.score, reference.reasons)


def test_the_pipeline_is_unpickled_only_when_asked_for(fitted, saved: Path, monkeypatch) -> None:
    calls = []
    real_load = joblib.load
    monkeypatch.setattr(joblib, "load", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    scorer = load_model(saved)
    assert calls == []
    np.testing.assert_allclose(scorer.pipeline.predict_proba(PROBE)[:, 1], fitted.predict_proba(PROBE)[:, 1],
                               rtol=0, atol=0)
    assert scorer.pipeline is scorer.pipeline and len(calls) == 1


def test_the_pipeline_of_a_changed_artifact_is_refused_when_asked_for(saved: Path, no_unpickling) -> None:
    scorer = load_model(saved)
    pickle = saved / PICKLE_NAME
    pickle.write_bytes(pickle.read_bytes()[:100])
    with pytest.raises(ArtifactCorruptError, match="SHA-256"):
        scorer.pipeline


def test_tampered_tables_are_refused_before_reading(saved: Path, no_unpickling, monkeypatch) -> None:
    monkeypatch.setattr(artifact, "read_tables", lambda *a: pytest.fail("read tables that fail their checksum"))
    _flip_a_byte(saved / TABLES_NAME)
    _refused(saved, ArtifactCorruptError, "SHA-256", TABLES_NAME)


def test_missing_tables_named_by_the_metadata(saved: Path, no_unpickling) -> None:
    (saved / TABLES_NAME).unlink()
    _refused(saved, ArtifactMissingError, TABLES_NAME, "missing")


@pytest.mark.parametrize("entry", ["scoring.npz", {"file": "../elsewhere.npz", "sha256": "0" * 64},
                                   {"file": TABLES_NAME}])
def test_malformed_tables_entry(saved: Path, no_unpickling, entry) -> None:
    _edit_meta(saved, tables=entry)
    _refused(saved, ArtifactCorruptError, "tables")


def test_unreadable_tables_with_a_matching_checksum(saved: Path, no_unpickling) -> None:
    # What a bug in a writer would leave: the hash is right, the content is not an archive.
    (saved / TABLES_NAME).write_bytes(b"not an npz archive")
    _edit_meta(saved, tables={"file": TABLES_NAME, "sha256": sha256_file(saved / TABLES_NAME)})
    _refused(saved, ArtifactCorruptError, "serving tables", "not readable")


def _edit_tables_header(path: Path, edit) -> None:
    """Rewrite the tables' JSON header with ``edit(header)``, and their checksum to match."""
    import io

    with np.load(path / TABLES_NAME, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(bytes(arrays["header"]).decode())
    edit(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    (path / TABLES_NAME).write_bytes(out.getvalue())
    _edit_meta(path, tables={"file": TABLES_NAME, "sha256": sha256_file(path / TABLES_NAME)})


def test_tables_of_another_format_are_refused(saved: Path, no_unpickling) -> None:
    _edit_tables_header(saved, lambda header: header.update(format=99))
    _refused(saved, ArtifactIncompatibleError, "format", "99")


@pytest.mark.parametrize("field, value, words", [
    ("analyzer", "sentence", "unknown analyzer"),
    ("norm", "l3", "unknown norm"),
    ("min_n", 0, "n-gram range"),
    ("max_n", "5", "n-gram range"),
    ("offset", 7, "starts at column 7"),
])
def test_tables_with_options_the_scorer_does_not_know_are_refused(saved: Path, no_unpickling, field, value,
                                                                   words) -> None:
    def edit(header):
        header["blocks"][1][field] = value  # the character block
    _edit_tables_header(saved, edit)
    _refused(saved, ArtifactCorruptError, "not readable", words)


def test_an_artifact_without_tables_is_unpickled(fitted, saved: Path) -> None:
    _without_tables(saved)
    scorer = load_model(saved)
    np.testing.assert_allclose(scorer.spam_probability(PROBE), fitted.predict_proba(PROBE)[:, 1], rtol=0, atol=1e-12)
    assert scorer.version == read_metadata(saved)["version"]


def test_the_service_refuses_an_artifact_without_tables_until_they_are_added(fitted, saved: Path,
                                                                            monkeypatch) -> None:
    """A probe made a pickle whose unpickling ran a shell command, removed the tables and set the
    metadata's checksum to the new pickle's: every worker ran the command. The checksums show a
    file is whole, not who wrote it."""
    _without_tables(saved)
    real_load = joblib.load

    def refuse(*args, **kwargs):
        pytest.fail("the service's load unpickled the artifact")
    monkeypatch.setattr(joblib, "load", refuse)
    with pytest.raises(ArtifactIncompatibleError, match="does not unpickle.*models add-tables"):
        load_model(saved, unpickle=False)
    monkeypatch.setattr(joblib, "load", real_load)
    meta = artifact.add_tables(saved)  # the operator's explicit step
    assert meta["tables"]["sha256"] == sha256_file(saved / TABLES_NAME)
    monkeypatch.setattr(joblib, "load", refuse)
    scorer = load_model(saved, unpickle=False)
    np.testing.assert_allclose(scorer.spam_probability(PROBE), fitted.predict_proba(PROBE)[:, 1], rtol=0, atol=1e-12)


def test_saving_over_an_artifact_keeps_its_tables_in_step(fitted, saved: Path) -> None:
    # The caller's metadata may be an older model's (a retrain copies it): its tables entry must not survive.
    stale = read_metadata(saved)
    refit = fit_pipeline(build_pipeline(c=1.0), [Comment(comment_content=t) for t in SPAM + HAM],
                         np.array([1] * len(SPAM) + [0] * len(HAM)))
    save_model(refit, saved, thresholds=THRESHOLDS, metadata={"tables": stale["tables"]})
    meta = read_metadata(saved)
    assert meta["tables"]["sha256"] == sha256_file(saved / TABLES_NAME) != stale["tables"]["sha256"]
    np.testing.assert_allclose(load_model(saved).spam_probability(PROBE), refit.predict_proba(PROBE)[:, 1],
                               rtol=0, atol=1e-12)


def test_a_model_the_tables_cannot_hold_is_saved_without_them(tmp_path: Path) -> None:
    pipeline = build_pipeline()
    pipeline.named_steps["features"].transformer_list[0][1].steps[1][1].strip_accents = str.upper
    comments = [Comment(comment_content=t) for t in SPAM + HAM]
    fitted = fit_pipeline(pipeline, comments, np.array([1] * len(SPAM) + [0] * len(HAM)))
    out = tmp_path / "model"
    meta = save_model(fitted, out, thresholds=THRESHOLDS)
    assert "tables" not in meta and not (out / TABLES_NAME).exists()
    np.testing.assert_allclose(load_model(out).spam_probability(PROBE), fitted.predict_proba(PROBE)[:, 1],
                               rtol=0, atol=1e-12)


def test_loading_from_tables_imports_no_scikit_learn(saved: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from model.artifact import load_model; s = load_model(sys.argv[1]); "
            "s.score_many(['cheap pills at http://bit.ly/abc']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'joblib'}))")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(saved)], cwd=root, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_the_pipeline_of_a_rewritten_artifact_is_refused(fitted, saved: Path) -> None:
    """A scorer never hands out another model's pipeline: a retrain into the same directory is refused."""
    scorer = load_model(saved)
    refit = fit_pipeline(build_pipeline(c=1.0), [Comment(comment_content=t) for t in SPAM + HAM],
                         np.array([1] * len(SPAM) + [0] * len(HAM)))
    save_model(refit, saved, thresholds=THRESHOLDS)
    with pytest.raises(ArtifactCorruptError, match="rewritten"):
        scorer.pipeline
    assert load_model(saved).pipeline is not None  # a fresh load gets the new one
