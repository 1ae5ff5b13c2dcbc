"""The default model trained on first start: one artifact, however many instances start at once.

Two instances sharing a model path used to train into it side by side; the later one
overwrote the artifact the earlier had registered as active (a probe of two instances on
one PostgreSQL database).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model.artifact import METADATA_NAME, load_model, read_metadata
from tests.conftest import REPO

# A stand-in for the seed-corpus training (seconds): a tiny model, written slowly enough that
# the two starts overlap, and each process says whether it trained.
STARTER = """
import json, sys, time
import training.defaults as defaults
from model.artifact import save_model
from model.pipeline import build_pipeline, fit_pipeline
from model.verdict import Thresholds
from tests.conftest import tiny_training_set

def slow_train(out, progress=None):
    time.sleep(1.5)
    comments, labels = tiny_training_set()
    save_model(fit_pipeline(build_pipeline(), comments, labels), out,
               thresholds=Thresholds(unsure=0.4, spam=0.6, discard=0.9), metadata={"version": sys.argv[2]})

defaults.train_model = slow_train
print(json.dumps(defaults.ensure_default_model(sys.argv[1], quiet=True)))
"""


def start(target: Path, version: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", STARTER, str(target), version], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("existing", ["missing", "empty directory"])
def test_instances_starting_together_train_one_default_model(tmp_path: Path, existing: str) -> None:
    target = tmp_path / "shared" / "model"
    if existing == "empty directory":
        target.mkdir(parents=True)
    runs = [start(target, f"instance-{i}") for i in (1, 2)]
    outcomes = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err[-2000:]
        outcomes.append(json.loads(out))
    assert sorted(outcomes) == [False, True]  # one trained, the other found its model
    winner = f"instance-{outcomes.index(True) + 1}"
    assert read_metadata(target)["version"] == winner
    assert load_model(target).version == winner  # checksums whole: nothing overwritten half-way
    assert sorted(p.name for p in target.parent.iterdir()) == [".model.training.lock", "model"]


def test_an_existing_model_is_never_retrained(tmp_path: Path, model_dir: Path) -> None:
    from training.defaults import ensure_default_model

    assert ensure_default_model(model_dir, quiet=True) is False
    assert (model_dir / METADATA_NAME).is_file()


def test_a_target_holding_something_else_is_trained_into(tmp_path: Path) -> None:
    """An ext4 mount point's lost+found (or a README) made the rename fail after training, with a
    traceback, on every start; the old code trained into the directory."""
    target = tmp_path / "model"
    (target / "lost+found").mkdir(parents=True)
    run = start(target, "instance-1")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err[-2000:]
    assert json.loads(out) is True and load_model(target).version == "instance-1"
    assert (target / "lost+found").is_dir()


def test_a_read_only_parent_trains_into_the_target_with_the_lock_inside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writable volume mounted in a read-only tree: the lock file and the temporary directory
    beside the target could not be made (a traceback after training, on every start). The
    parent is reported unwritable here, as root writes through directory permissions."""
    import training.defaults as defaults
    from model.artifact import save_model
    from model.pipeline import build_pipeline, fit_pipeline
    from model.verdict import Thresholds
    from tests.conftest import tiny_training_set

    target = tmp_path / "ro" / "model"
    target.mkdir(parents=True)

    def train(out: Path, progress: object = None) -> None:
        comments, labels = tiny_training_set()
        save_model(fit_pipeline(build_pipeline(), comments, labels), out,
                   thresholds=Thresholds(unsure=0.4, spam=0.6, discard=0.9), metadata={"version": "in-place"})

    monkeypatch.setattr(defaults, "train_model", train)
    monkeypatch.setattr(defaults, "_writable", lambda directory: directory != target.parent)
    assert defaults.ensure_default_model(target, quiet=True) is True
    assert load_model(target).version == "in-place" and (target / ".training.lock").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]  # nothing made beside it


def test_a_killed_runs_leftovers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "model"
    leftover = tmp_path / ".model.training-abc123"
    (leftover / "partial").mkdir(parents=True)
    run = start(target, "instance-1")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err[-2000:]
    assert not leftover.exists() and load_model(target).version == "instance-1"
