"""Scoring latency: the compiled fast path against the pipeline's predict_proba, one comment at a time.

Both are timed on the same comments in the same run (the seed corpus plus, when
present, the YouTube Spam Collection), interleaved per comment with the order
alternating, so that machine noise hits both alike. The fast path is timed as
the service uses it (``CompiledModel.score``: prepare + features + dot product;
``fast`` computes the score, as ``predict_proba`` does, ``fast_with_contributions``
also keeps every column's contribution), with its per-word n-gram cache warm (after one warm-up pass, as in a running
service) and, separately, cold (cache emptied before every comment); the full
verdict with reasons (``Scorer.score``) is reported too. ``fast`` uses the default
engine (``engine``: the compiled core, ``c``, when it is built); ``fast_numpy_engine``
is the same path with the text blocks scored by model/fastpath.py's numpy code, the
fallback where the core cannot be compiled (``core_speedup_median``: numpy / c).
Also: the time to compile the model when an artifact is loaded, and the share of
``prepare()``.

Usage: python bench/scoring.py [--model ARTIFACT_DIR] [--data-dir ../shared/data]
Without --model, a model is fitted on the seed corpus first (a few seconds, not timed).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from host import machine_reference_ms  # bench/host.py: this script's directory is first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.artifact import load_model, save_model  # noqa: E402
from model.comment import Comment  # noqa: E402
from model.fastpath import CompiledModel  # noqa: E402
from model.features import prepare  # noqa: E402
from model.pipeline import build_pipeline, fit_pipeline  # noqa: E402
from model.scorer import Scorer  # noqa: E402
from model.verdict import Thresholds  # noqa: E402
from training.loaders import load_files  # noqa: E402
from training.seed import seed_files  # noqa: E402
from training.train import load_training_data  # noqa: E402

TYPICAL = (50, 400)  # characters of comment_content
YOUTUBE = Path("youtube_spam_collection") / "youtube_spam_collection_all.csv"


def fitted_scorer(out: Path) -> Scorer:
    loaded = load_training_data([])
    pipeline = fit_pipeline(build_pipeline(random_state=0), [r.comment for r in loaded.records],
                            np.array([r.label for r in loaded.records], dtype=int))
    save_model(pipeline, out, thresholds=Thresholds(0.4, 0.6, 0.9), metadata={"version": "bench"})
    return load_model(out)


def timed(fn: Callable[[Any], Any], arg: Any) -> float:
    started = time.perf_counter_ns()
    fn(arg)
    return (time.perf_counter_ns() - started) / 1000.0


def summary(micros: list[float]) -> dict[str, float]:
    ordered = sorted(micros)
    return {
        "median_us": round(statistics.median(ordered), 1),
        "p90_us": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


def measure(scorer: Scorer, comments: list[Comment]) -> dict[str, list[float]]:
    fast = scorer.compiled
    cold = CompiledModel(scorer.pipeline)
    numpy_engine = CompiledModel(scorer.pipeline, "numpy")
    predict = scorer.pipeline.predict_proba
    runs: dict[str, Callable[[Comment], Any]] = {
        # What predict_proba computes: the score. Then the same with every column's
        # contribution kept, and the verdict with reasons the service answers with.
        "fast": lambda c: fast.score(c, explain=False),
        "pipeline": lambda c: predict([c]),
        "fast_with_contributions": fast.score,
        "fast_cold_cache": lambda c: (cold.clear_caches(), cold.score(c, explain=False)),
        "fast_numpy_engine": lambda c: numpy_engine.score(c, explain=False),
        "scorer_with_reasons": scorer.score,
        "prepare_only": prepare,
    }
    for comment in comments[:300]:  # warm-up: caches, branch predictors, lazy imports
        for run in runs.values():
            run(comment)
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i, comment in enumerate(comments):
        order = names if i % 2 == 0 else names[::-1]  # alternate who goes first
        for name in order:
            times[name].append(timed(runs[name], comment))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model artifact directory (default: fit one on the seed corpus)")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        scorer = load_model(args.model) if args.model else fitted_scorer(Path(tmp) / "model")
        path = args.model or Path(tmp) / "model"
        loads = []
        for _ in range(5):  # what a worker does at start: verify the artifact, read its serving tables
            started = time.perf_counter()
            load_model(path)
            loads.append((time.perf_counter() - started) * 1000)
        scorer.pipeline  # unpickled now, while the artifact is still there
    comments = [r.comment for r in load_files(seed_files()).records]
    sources = {"seed": len(comments)}
    youtube = args.data_dir / YOUTUBE
    if youtube.is_file():
        extra = [r.comment for r in load_files([youtube]).records]
        comments += extra
        sources["youtube"] = len(extra)

    builds = []
    for _ in range(7):
        started = time.perf_counter()
        CompiledModel(scorer.pipeline)
        builds.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    Scorer(scorer.pipeline, thresholds=scorer.thresholds, version=scorer.version)
    scorer_init_ms = (time.perf_counter() - started) * 1000

    times = measure(scorer, comments)
    lengths = np.array([len(c.comment_content) for c in comments])
    typical = [i for i, n in enumerate(lengths) if TYPICAL[0] <= n <= TYPICAL[1]]
    report: dict[str, Any] = {
        "comments": sources,
        "typical_length_chars": list(TYPICAL),
        "typical_comments": len(typical),
        "machine_reference_ms": machine_reference_ms(),
        "engine": scorer.engine,
        "compile_ms_median": round(statistics.median(builds), 2),
        "load_model_ms_median": round(statistics.median(loads), 1),
        "scorer_init_ms": round(scorer_init_ms, 1),
    }
    for name, micros in times.items():
        report[name] = summary(micros) | {
            "typical_median_us": round(statistics.median([micros[i] for i in typical]), 1),
        }
    fast, slow = times["fast"], times["pipeline"]
    report["speedup_median"] = round(statistics.median(slow) / statistics.median(fast), 1)
    report["speedup_typical_median"] = round(
        statistics.median([slow[i] for i in typical]) / statistics.median([fast[i] for i in typical]), 1)
    report["speedup_per_comment_median"] = round(statistics.median(np.array(slow) / np.array(fast)), 1)
    report["core_speedup_median"] = round(statistics.median(times["fast_numpy_engine"]) / statistics.median(fast), 2)
    report["prepare_share_of_fast_median"] = round(
        statistics.median(np.array(times["prepare_only"]) / np.array(fast)), 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
