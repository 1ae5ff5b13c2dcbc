"""Training at scale: `commentguard train` on generated corpora of 100,000 and 1,000,000 rows.

Runs ``commentguard train --no-seed --data <corpus> --out <tmp>`` as a subprocess
per size (the corpora are made by ``bench/make_corpus.py`` under /tmp when
absent), and prints JSON per run: rows, wall seconds, CPU seconds (user + system
of the whole process tree: a figure that machine load does not inflate much),
peak memory of the process tree, rows per second, the held-out metrics from the
artifact's metadata; then the ratio of the largest run's time to the smallest's.

Peak memory is polled from /proc every 0.2 s over the training process and its
workers: ``peak_pss_mb`` (proportional set size: shared copy-on-write pages
counted once, the memory really used) and ``peak_rss_sum_mb`` (RSS summed, an
over-estimate); also ``ru_maxrss_mb``, the largest single process.

Usage: python bench/training.py [--rows 100000 1000000] [--corpus-dir /tmp] [--extra-args ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMMENTGUARD = Path(sys.executable).with_name("commentguard")


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children_of(current)
    return pids


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB, or zeros if it has gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


class _TreeMemory(threading.Thread):
    """Polls the memory of a process and all its descendants; keeps the peaks."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_pss = self.peak_rss = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pss = rss = 0
            for pid in _tree(self.pid):
                p, r = _memory_kb(pid)
                pss, rss = pss + p, rss + r
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self.done.wait(self.every)


def ensure_corpus(rows: int, directory: Path) -> Path:
    path = directory / f"commentguard-corpus-{rows}.jsonl"
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_corpus.py"), "--rows", str(rows),
                        "--out", str(path)], check=True)
    return path


def run_training(corpus: Path, extra: list[str]) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="commentguard-bench-model-"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    log = out.with_suffix(".log")
    with log.open("w") as stderr:
        child = subprocess.Popen([str(COMMENTGUARD), "train", "--no-seed", "--data", str(corpus),
                                  "--out", str(out), *extra], stdout=subprocess.DEVNULL, stderr=stderr)
        memory = _TreeMemory(child.pid)
        memory.start()
        code = child.wait()
    seconds = time.monotonic() - started
    memory.done.set()
    memory.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"commentguard train failed ({code}); see {log}")
    meta = json.loads((out / "metadata.json").read_text())
    training = meta["training"]
    kind, metrics = next(iter(meta["metrics"].items()))
    return {
        "rows_in_file": sum(s["rows_read"] for s in training["sources"]),
        "rows": training["rows"],
        "path": training.get("path"),
        "seconds": round(seconds, 1),
        "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "rows_per_second": round(training["rows"] / seconds, 1),
        "peak_pss_mb": round(memory.peak_pss / 1024, 1),
        "peak_rss_sum_mb": round(memory.peak_rss / 1024, 1),
        "ru_maxrss_mb": round(after.ru_maxrss / 1024, 1),
        "load_average_after": os.getloadavg(),
        "artifact": str(out),
        "log": str(log),
        "evaluation": kind,
        "metrics": {k: metrics[k] for k in ("n", "accuracy", "precision", "recall", "false_positive_rate",
                                             "unsure_rate", "roc_auc", "brier")},
        "thresholds": meta["thresholds"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--corpus-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--extra-args", nargs=argparse.REMAINDER, default=[],
                        help="passed to commentguard train (e.g. --streaming)")
    args = parser.parse_args(argv)
    runs = []
    for rows in args.rows:
        result = {"requested_rows": rows, **run_training(ensure_corpus(rows, args.corpus_dir), args.extra_args)}
        print(json.dumps(result), flush=True)
        runs.append(result)
    if len(runs) > 1:
        small, big = min(runs, key=lambda r: r["rows"]), max(runs, key=lambda r: r["rows"])
        print(json.dumps({
            "rows_ratio": round(big["rows"] / small["rows"], 2),
            "seconds_ratio": round(big["seconds"] / small["seconds"], 2),
            "cpu_seconds_ratio": round(big["cpu_seconds"] / small["cpu_seconds"], 2),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
