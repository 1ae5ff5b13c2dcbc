"""The streaming training path (training/large.py) on a small generated corpus, and the cut-over."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from click.testing import CliRunner

from commentguard.commands.train import command as train_command
from model.artifact import load_model, read_metadata
from model.comment import Comment
from model.pipeline import build_pipeline
from training import large
from training.fast_features import FastFeatures
from training.loaders import load_files
from training.seed import seed_files
from training.train import train_model

ROOT = Path(__file__).resolve().parents[1]
BAD_LINES = ['{"comment_content": "no label here"}', "this line is not JSON"]
DUPLICATED = 50


def _make_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "bench" / "make_corpus.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_corpus(path: Path, rows: int, *, bad: bool = False) -> Path:
    generated = list(_make_corpus().generate_rows(rows, seed=7))
    lines = [json.dumps(row, ensure_ascii=False) for row in generated]
    lines += lines[:DUPLICATED]  # exact duplicates, to be removed
    if bad:
        lines[100:100] = BAD_LINES  # at lines 101 and 102
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    tmp = tmp_path_factory.mktemp("large")
    data = write_corpus(tmp / "corpus.jsonl", 5_000, bad=True)
    out = tmp / "model"
    result = train_model(out, [data], use_seed=False, streaming=True)
    return data, out, result


def test_streaming_artifact_loads_and_says_which_path(streamed) -> None:
    _, out, _ = streamed
    scorer = load_model(out)  # checksum, scikit-learn version and the fast path all accept it
    meta = read_metadata(out)
    assert meta["training"]["path"] == "streaming"
    assert meta["training"]["held_out"] > 0
    assert meta["training"]["trained_on"] + meta["training"]["held_out"] == meta["training"]["rows"]
    assert meta["training"]["peak_rss_mb"]["main"] > 0
    assert len(meta["training"]["sources"][0]["sha256"]) == 64
    assert "held_out" in meta["metrics"]
    assert scorer.pipeline.named_steps["classifier"].coef_.shape[1] == len(
        scorer.pipeline.named_steps["features"].transform(
            scorer.pipeline.named_steps["prepare"].transform([Comment("x")]))
        .toarray()[0])


def test_streaming_model_scores_spam_above_ham(streamed) -> None:
    scorer = load_model(streamed[1])
    spam = Comment("Cheap viagra online, best casino bonus! Click https://bit.ly/3xYz now and subscribe",
                   comment_author_url="https://cheap-pills-now.xyz")
    ham = Comment("Could you explain how the second step of the recipe works? Mine came out too dry.")
    spam_score, ham_score = (v.score for v in scorer.score_many([spam, ham]))
    assert spam_score > 0.8 > 0.2 > ham_score


def test_streaming_dedups_and_reports_malformed_rows(streamed) -> None:
    data, out, result = streamed
    source = read_metadata(out)["training"]["sources"][0]
    assert source["duplicates_removed"] >= DUPLICATED
    assert source["rows_invalid"] == len(BAD_LINES)
    assert source["rows_read"] == 5_000 + DUPLICATED + len(BAD_LINES)
    assert source["rows_read"] == sum(source[k] for k in (
        "rows_kept", "duplicates_removed", "rows_skipped", "rows_invalid"))
    assert read_metadata(out)["training"]["rows"] == source["rows_kept"]
    assert {p.split(": ", 1)[0] for p in result.problems} >= {f"{data}:101", f"{data}:102"}


def test_streaming_thresholds_meet_the_held_out_policy(streamed) -> None:
    meta = read_metadata(streamed[1])
    held = meta["metrics"]["held_out"]
    policy = meta["training"]["threshold_policy"]
    assert held["false_positive_rate"] <= policy["spam_max_fpr"]
    t = meta["thresholds"]
    assert 0 < t["unsure"] <= t["spam"] <= t["discard"] <= 1
    assert held["roc_auc"] > 0.95


def test_fast_features_equal_the_feature_union() -> None:
    loaded = load_files(seed_files())
    pipeline = build_pipeline(min_df=2)
    prepared = pipeline.named_steps["prepare"].transform([r.comment for r in loaded.records])
    features = pipeline.named_steps["features"].fit(prepared, np.array([r.label for r in loaded.records]))
    expected = features.transform(prepared)
    got = FastFeatures(features).transform(prepared)
    assert got.shape == expected.shape
    assert abs(got - expected).max() == 0


def test_small_input_uses_the_in_memory_path(tmp_path: Path) -> None:
    data = write_corpus(tmp_path / "small.jsonl", 300)
    assert not large.should_stream([data])
    assert large.should_stream([data], limit=100)
    train_model(tmp_path / "model", [data], use_seed=False)
    meta = read_metadata(tmp_path / "model")
    assert meta["training"]["path"] == "in-memory"
    assert "out_of_fold" in meta["metrics"]


def test_cli_forces_the_streaming_path(tmp_path: Path) -> None:
    data = write_corpus(tmp_path / "small.jsonl", 600)
    out = tmp_path / "model"
    result = CliRunner().invoke(train_command, ["--no-seed", "--data", str(data), "--out", str(out),
                                                "--streaming"])
    assert result.exit_code == 0, result.output
    assert "held-out:" in result.output
    assert read_metadata(out)["training"]["path"] == "streaming"


def test_a_small_streamed_input_is_regularised_as_the_in_memory_path_would_be() -> None:
    from model.pipeline import DEFAULT_C
    from training.large import SGD_ALPHA, sgd_alpha

    assert sgd_alpha(1_000_000) == SGD_ALPHA == sgd_alpha(50_000)  # the large inputs it is meant for
    assert sgd_alpha(5_000) == pytest.approx(1 / (DEFAULT_C * 5_000))
    assert sgd_alpha(0) == 1 / DEFAULT_C
