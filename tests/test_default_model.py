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
