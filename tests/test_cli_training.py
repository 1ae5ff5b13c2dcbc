"""CliRunner tests of `commentguard train`, `evaluate` and `check` on a small generic CSV."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from commentguard.cli import cli
from model.artifact import METADATA_NAME, PICKLE_NAME
from model.verdict import Thresholds

SPAM_TEXTS = [
    "Buy cheap viagra online today at http://bit.ly/pills{}",
    "Check out my channel and subscribe, sub for sub number {}",
    "Earn ${}00 a day working from home, click here",
    "FREE gift cards!!! visit cheap-deals{}.xyz today",
    "Casino bonus code WIN{} claim your free spins now",
    "Congratulations you have won prize {}, call 0800 123 4567",
    "Cheap replica watches, best prices at replicas{}.top",
    "Follow me on instagram: hotdeals_{} for giveaways",
    "Make money fast with crypto, guaranteed profit {} percent",
    "Loans with no credit check, apply at fastloans{}.biz",
]
HAM_TEXTS = [
    "Thanks for the clear explanation of part {} of the series",
    "I tried recipe {} and it turned out great",
    "Could you share the source code for example {}?",
    "I disagree with point {} about interest rates",
    "Great photos, where was picture {} taken?",
    "The docs explain option {} in more detail",
    "Is there a version {} for Windows users?",
    "This helped me fix my bike brakes, step {} was key",
    "Typo in paragraph {}: 'their' should be 'there'",
    "How long should the dough rest in step {}?",
]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["comment_content", "label", "comment_author_url"])
        for text, label in rows:
            writer.writerow([text, label, "https://deals.xyz" if label == "spam" else ""])
    return path


def small_rows() -> list[tuple[str, str]]:
    rows = []
    for i in range(3):
        rows += [(t.format(i + 1), "spam") for t in SPAM_TEXTS]
        rows += [(t.format(i + 1), "ham") for t in HAM_TEXTS]
    return rows  # 60 rows, 30 of each


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, runner: CliRunner) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cli")
    data = write_csv(base / "small.csv", small_rows())
    out = base / "model"
    result = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return data, out


def test_train_writes_an_artifact(trained) -> None:
    data, out = trained
    assert (out / PICKLE_NAME).is_file() and (out / METADATA_NAME).is_file()
    meta = json.loads((out / METADATA_NAME).read_text())
    assert meta["training"]["rows"] == 60
    assert meta["training"]["seed_corpus"] is False
    assert [s["path"] for s in meta["training"]["sources"]] == [str(data)]


def test_train_json_output(tmp_path: Path, runner: CliRunner, trained) -> None:
    data, _ = trained
    result = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--out", str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)
    assert meta["training"]["rows"] == 60 and "sha256" in meta


def test_evaluate_prints_the_documented_json(trained, runner: CliRunner) -> None:
    data, out = trained
    result = runner.invoke(cli, ["evaluate", "--model", str(out), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    for key in ("n", "spam", "accuracy", "precision", "recall", "f1", "mcc", "false_positive_rate",
                "unsure_rate", "roc_auc", "at_0_5", "model_version"):
        assert key in figures, key
    assert set(figures["at_0_5"]) >= {"accuracy", "precision", "recall", "f1", "mcc", "false_positive_rate"}
    assert figures["n"] == 60 and figures["spam"] == 30
    assert figures["at_0_5"]["accuracy"] > 0.9  # it has seen these rows


def test_evaluate_plain_text(trained, runner: CliRunner) -> None:
    data, out = trained
    result = runner.invoke(cli, ["evaluate", "--model", str(out), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "60 comments" in result.output and "ROC AUC" in result.output


def test_check_prints_a_verdict(trained, runner: CliRunner) -> None:
    _, out = trained
    result = runner.invoke(cli, ["check", "Buy cheap viagra online today at http://bit.ly/x", "--model", str(out)])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] in ("ham", "unsure", "spam", "discard")
    assert 0.0 <= verdict["score"] <= 1.0
    assert isinstance(verdict["reasons"], list)
    assert verdict["model_version"] == json.loads((out / METADATA_NAME).read_text())["version"]


def test_check_spam_scores_above_ham(trained, runner: CliRunner) -> None:
    _, out = trained
    spam = json.loads(runner.invoke(cli, ["check", "Casino bonus code WIN9 claim your free spins now",
                                          "--model", str(out)]).stdout)
    ham = json.loads(runner.invoke(cli, ["check", "Could you share the source code for example 9?",
                                         "--model", str(out)]).stdout)
    assert spam["score"] > ham["score"]


def test_train_no_seed_without_data_is_a_usage_error(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["train", "--no-seed", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "--no-seed" in result.output and "--data" in result.output
    assert not (tmp_path / "m").exists()


def test_evaluate_on_a_missing_model_fails_clearly(trained, tmp_path: Path, runner: CliRunner) -> None:
    data, _ = trained
    missing = tmp_path / "no-model"
    result = runner.invoke(cli, ["evaluate", "--model", str(missing), "--data", str(data)])
    assert result.exit_code not in (0, None)
    assert "Traceback" not in result.output
    assert "no model artifact" in result.output and str(missing) in result.output
    assert isinstance(result.exception, SystemExit)  # a handled error, not a crash


def test_check_on_a_missing_model_fails_clearly(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", "hello", "--model", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no model artifact" in result.output and "Traceback" not in result.output


def test_malformed_row_is_reported_with_file_and_line(tmp_path: Path, runner: CliRunner) -> None:
    rows = small_rows()
    rows.insert(4, ("This row has a label nobody understands", "maybe"))  # file line 6
    data = write_csv(tmp_path / "bad.csv", rows)
    result = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert f"warning: {data}:6:" in result.stderr
    strict = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--strict",
                                 "--out", str(tmp_path / "m2")])
    assert strict.exit_code == 1
    assert f"{data}:6" in strict.output and "Traceback" not in strict.output


# --- what is refused before any training, and what a failed run still says ------------------------

def test_train_refuses_an_out_it_cannot_write_before_training(tmp_path: Path, runner: CliRunner, trained) -> None:
    data, model = trained
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    crowded = tmp_path / "photos"
    crowded.mkdir()
    (crowded / "holiday.jpg").write_text("x")
    (crowded / METADATA_NAME).write_text("{}")  # an unrelated file of that name is not replaced either
    for out in (a_file, a_file / "sub", crowded):
        result = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--out", str(out)])
        assert result.exit_code == 2 and "--out" in result.output, result.output
        assert "[train] loading" not in result.stderr  # refused before any work
    assert (crowded / METADATA_NAME).read_text() == "{}"
    # An earlier artifact's directory is replaced, as before.
    again = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--out", str(model)])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("options", [("--spam-max-fpr", "nan"), ("--spam-max-fpr", "-5"), ("--spam-max-fpr", "3"),
                                     ("--discard-max-fpr", "0.02")])
def test_train_refuses_threshold_policies_outside_0_to_1(tmp_path: Path, runner: CliRunner, trained,
                                                         options: tuple[str, str]) -> None:
    data, _ = trained
    result = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--out", str(tmp_path / "m"), *options])
    assert result.exit_code == 2 and options[0] in result.output, result.output
    assert not (tmp_path / "m").exists()


def test_a_run_that_fails_for_want_of_rows_still_lists_the_rows_it_left_out(tmp_path: Path,
                                                                          runner: CliRunner, trained) -> None:
    data, _ = trained  # a CSV read as SMS: every line is malformed, so nothing is left
    result = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--format", "sms",
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "both spam and ham" in result.output
    assert f"warning: {data}:1: no TAB" in result.stderr
    assert "... and 11 more rows reported" in result.stderr  # 61 lines, 50 listed


def test_the_streaming_path_counts_every_problem(tmp_path: Path, runner: CliRunner) -> None:
    rows = small_rows() + [(f"row {i} with a label nobody knows", "maybe") for i in range(1500)]
    data = write_csv(tmp_path / "many.csv", rows)
    result = runner.invoke(cli, ["train", "--data", str(data), "--no-seed", "--streaming", "--strict",
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "1500 problem(s)" in result.output
    assert "... and 1480 more" in result.output


def test_in_memory_training_records_its_peak_memory(trained) -> None:
    _, out = trained
    peak = json.loads((out / METADATA_NAME).read_text())["training"]["peak_rss_mb"]
    assert peak["main"] > 50  # MiB: Python with scikit-learn loaded


def test_evaluate_counts_the_rows_it_left_out(trained, tmp_path: Path, runner: CliRunner) -> None:
    data, out = trained
    bad = write_csv(tmp_path / "bad.csv", small_rows()[:4] + [(f"odd row {i}", "maybe") for i in range(70)])
    text = runner.invoke(cli, ["evaluate", "--model", str(out), "--data", str(bad)])
    assert text.exit_code == 0 and "70 rows reported and left out" in text.stdout
    assert text.stderr.count("warning: ") == 51 and "... and 20 more rows reported" in text.stderr
    figures = json.loads(runner.invoke(cli, ["evaluate", "--model", str(out), "--data", str(bad), "--json"]).stdout)
    assert figures["rows_reported"] == 70 and figures["n"] == 4


def test_check_refuses_empty_text_and_a_bad_setting_clearly(trained, runner: CliRunner,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, out = trained
    empty = runner.invoke(cli, ["check", "  ", "--model", str(out)])
    assert empty.exit_code == 2 and "TEXT" in empty.output
    monkeypatch.setenv("COMMENTGUARD_MODEL_CHECK_SECONDS", "abc")
    bad = runner.invoke(cli, ["check", "hello"])
    assert bad.exit_code == 1 and "COMMENTGUARD_MODEL_CHECK_SECONDS" in bad.output
    assert isinstance(bad.exception, SystemExit)


def test_check_applies_the_threshold_overrides_the_service_does(trained, runner: CliRunner,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _, out = trained
    text = "Buy cheap viagra online today at http://bit.ly/x"
    plain = json.loads(runner.invoke(cli, ["check", text, "--model", str(out)]).stdout)
    overrides = Thresholds(unsure=plain["score"] / 4, spam=plain["score"] / 3, discard=plain["score"] / 2)
    assert overrides.tier(plain["score"]) == "discard" != plain["verdict"]
    for name in ("unsure", "spam", "discard"):
        monkeypatch.setenv(f"COMMENTGUARD_THRESHOLD_{name.upper()}", repr(getattr(overrides, name)))
    moved = json.loads(runner.invoke(cli, ["check", text, "--model", str(out)]).stdout)
    assert moved["score"] == plain["score"] and moved["verdict"] == "discard"


def test_check_scores_with_the_model_the_service_serves(trained, tmp_path: Path, runner: CliRunner,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """After a retrain the registry's active model is served, not COMMENTGUARD_MODEL_PATH: check used
    the starting model and told an operator 'ham' about a comment the service held."""
    from commentguard.context import open_store_from_settings
    from model.artifact import read_metadata, save_model
    from model.pipeline import build_pipeline, fit_pipeline
    from service.settings import load_settings
    from tests.conftest import tiny_training_set

    _, served = trained
    configured = tmp_path / "configured"
    comments, labels = tiny_training_set()
    save_model(fit_pipeline(build_pipeline(), comments, labels), configured,
               thresholds=Thresholds(unsure=0.4, spam=0.6, discard=0.9), metadata={"version": "configured-1"})
    monkeypatch.setenv("COMMENTGUARD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMENTGUARD_MODEL_PATH", str(configured))
    # No store yet: the configured model, and no database is created by asking.
    first = runner.invoke(cli, ["check", "hello there"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["model_version"] == "configured-1"
    assert not (tmp_path / "var" / "commentguard.sqlite3").exists()
    store = open_store_from_settings(load_settings())
    try:
        store.register_model(read_metadata(served), str(served))
        store.activate_model(read_metadata(served)["version"], "test", "a retrain promoted it")
    finally:
        store.close()
    second = runner.invoke(cli, ["check", "hello there"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["model_version"] == read_metadata(served)["version"]
    # --model still wins.
    third = runner.invoke(cli, ["check", "hello there", "--model", str(configured)])
    assert json.loads(third.stdout)["model_version"] == "configured-1"


def test_check_leaves_a_database_without_a_registry_untouched(trained, pg_url: str, tmp_path: Path,
                                                               runner: CliRunner,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """In an empty PostgreSQL database, check created every table and fixed a secret of its own,
    which the real server (with its COMMENTGUARD_SECRET_KEY) then refused."""
    import psycopg

    _, served = trained
    monkeypatch.setenv("COMMENTGUARD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMENTGUARD_MODEL_PATH", str(served))
    monkeypatch.setenv("COMMENTGUARD_DATABASE_URL", pg_url)
    result = runner.invoke(cli, ["check", "hello there"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model_version"] == json.loads((served / METADATA_NAME).read_text())["version"]
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT count(*) FROM information_schema.tables "
                              "WHERE table_schema = current_schema()").fetchone()[0]
    assert tables == 0 and not (tmp_path / "var" / "secret_key").exists()


def test_check_scores_as_the_workers_do_when_they_refuse_the_active_model(
        trained, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's active artifact gone (a models volume not mounted): the workers serve
    COMMENTGUARD_MODEL_PATH, and check failed with 'no model artifact'."""
    import shutil

    from commentguard.context import open_store_from_settings
    from model.artifact import read_metadata
    from service.settings import load_settings

    _, served = trained
    gone = tmp_path / "gone"
    shutil.copytree(served, gone)
    monkeypatch.setenv("COMMENTGUARD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMENTGUARD_MODEL_PATH", str(served))
    store = open_store_from_settings(load_settings())
    try:
        meta = dict(read_metadata(gone), version="promoted-then-lost")
        store.register_model(meta, str(gone))
        store.activate_model("promoted-then-lost", "test", "a retrain promoted it")
    finally:
        store.close()
    shutil.rmtree(gone)
    result = runner.invoke(cli, ["check", "hello there"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model_version"] == read_metadata(served)["version"]
    assert "refuse the registry's active model promoted-then-lost" in result.stderr
