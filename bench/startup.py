"""Start-up time and worker memory of ``commentguard serve``: scoring from the serving tables vs the pickle.

Each run starts ``commentguard serve`` (production settings: gunicorn, its default
workers, SQLite in a temporary data directory) and measures the seconds until
``/readyz`` answers 200, then, once every worker has loaded the model, each
worker's RSS and PSS and whether scikit-learn is mapped into it (the seconds until
every worker has logged its model as loaded are reported too). Runs alternate
between the model as trained (served from ``scoring.npz``) and a copy of it
without the tables (``model.joblib`` unpickled at load, as before the tables
existed), so both are measured in the same run on the same host. Prints one
JSON object with every run and the medians.

    python bench/startup.py [--runs 5] [--model DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds scripts named like project packages (bench/training.py): keep it off sys.path.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(BENCH))
import http_load  # noqa: E402  (its server helpers; it imports nothing of the project at the top)

sys.path.remove(str(BENCH))


def without_tables(model: Path, out: Path) -> Path:
    """A copy of ``model`` as written before serving tables existed: pickle and metadata only."""
    shutil.copytree(model, out)
    meta_path = out / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.pop("tables", None) is None:
        raise SystemExit(f"{model} has no serving tables; retrain it with this release")
    (out / "scoring.npz").unlink()
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    return out


def one_run(model: Path, tmp: Path) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(dir=tmp))
    log = data_dir / "serve.log"
    port = http_load.free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([http_load.PYTHON, "-m", "commentguard", "serve", "--port", str(port)], cwd=ROOT,
                                env=http_load.base_env(data_dir, model), stdout=out, stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        ready = http_load.wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        all_loaded = _all_workers_loaded(proc.pid, log, started)
        return {"ready_s": round(ready, 3), "all_workers_loaded_s": round(all_loaded, 3),
                "workers": _workers(proc.pid)}
    finally:
        http_load.stop(proc)


def _all_workers_loaded(master: int, log: Path, started: float, timeout: float = 60) -> float:
    """Seconds from start until every worker has logged its model as loaded."""
    while time.monotonic() - started < timeout:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        loaded = log.read_text(encoding="utf-8", errors="replace").count("loaded (scoring engine")
        if children and loaded >= len(children):
            return time.monotonic() - started
        time.sleep(0.01)
    raise RuntimeError(f"the workers did not all load the model within {timeout} s")


def _workers(master: int) -> list[dict[str, Any]]:
    """Each worker's RSS and PSS, and whether scikit-learn is mapped into it."""
    time.sleep(0.5)  # let each worker's model watcher take its first look
    out = http_load.worker_memory(master)
    for worker in out:
        worker["sklearn_loaded"] = "/sklearn/" in Path(f"/proc/{worker['pid']}/maps").read_text()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (alternating)")
    parser.add_argument("--model", default=None, help="a model artifact with serving tables (default: train one once)")
    args = parser.parse_args()
    model = http_load.ensure_model(args.model)
    result: dict[str, Any] = {"runs": args.runs, "tables": [], "pickle": []}
    with tempfile.TemporaryDirectory(prefix="commentguard-startup-") as tmp:
        pickle_model = without_tables(model, Path(tmp) / "pickle-model")
        for _ in range(args.runs):
            for kind, path in (("tables", model), ("pickle", pickle_model)):
                result[kind].append(one_run(path, Path(tmp)))
    for kind in ("tables", "pickle"):
        runs = result[kind]
        result[f"{kind}_median"] = {
            "ready_s": statistics.median(r["ready_s"] for r in runs),
            "all_workers_loaded_s": statistics.median(r["all_workers_loaded_s"] for r in runs),
            # An even count's median is a mean of two: round off its float noise (43.400000000000006).
            "worker_rss_mib": round(statistics.median(w["rss_mib"] for r in runs for w in r["workers"]), 1),
            "worker_pss_mib": round(statistics.median(w["pss_mib"] for r in runs for w in r["workers"]), 1),
            "sklearn_loaded_in_workers": sorted({w["sklearn_loaded"] for r in runs for w in r["workers"]}),
        }
    t, p = result["tables_median"], result["pickle_median"]
    result["ready_ratio_pickle_to_tables"] = round(p["ready_s"] / t["ready_s"], 2)
    result["all_loaded_ratio_pickle_to_tables"] = round(p["all_workers_loaded_s"] / t["all_workers_loaded_s"], 2)
    result["rss_saved_mib"] = round(p["worker_rss_mib"] - t["worker_rss_mib"], 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
