"""Accuracy on the public corpora, measured through the command line (`train` then `evaluate`).

Protocols (see README, "Accuracy"):
- YouTube Spam Collection, TubeSpam: per video, the oldest 70% of each class trains, the newest 30% tests.
- YouTube, leave one video out: train on four videos, test on the fifth.
- SMS Spam Collection, published split: the first 30% of the file trains, the last 70% tests.
- The default model (seed corpus only) on the whole YouTube collection, and on the WordPress
  spam of one blog's moderation queue (spam only: how much real blog spam it catches).
All models here except the default one are trained with --no-seed. Split files are written to a
temporary directory, never into the repository. Prints one JSON object.

Usage: python bench/accuracy.py [--data-dir ../shared/data] [--only youtube|lovo|sms|default]
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ["Youtube01-Psy", "Youtube02-KatyPerry", "Youtube03-LMFAO", "Youtube04-Eminem", "Youtube05-Shakira"]


def cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "commentguard", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return out.stdout


def train(out: Path, data: list[Path], seed: bool = False) -> float:
    started = time.monotonic()
    cli("train", *[a for p in data for a in ("--data", str(p))], *([] if seed else ["--no-seed"]),
        "--out", str(out))
    return time.monotonic() - started


def evaluate(model: Path, data: Path) -> dict:
    return json.loads(cli("evaluate", "--model", str(model), "--data", str(data), "--json"))


def read_youtube(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def tubespam(data_dir: Path, work: Path) -> dict:
    per_video = {}
    for video in VIDEOS:
        header, rows = read_youtube(data_dir / "youtube_spam_collection" / f"{video}.csv")
        cls = header.index("CLASS")
        train_rows, test_rows = [], []
        for label in ("0", "1"):  # the oldest 70% of each class; files are in time order
            of_class = [r for r in rows if r[cls] == label]
            cut = round(len(of_class) * 0.7)
            train_rows += of_class[:cut]
            test_rows += of_class[cut:]
        tr = write_csv(work / f"{video}-train.csv", header, train_rows)
        te = write_csv(work / f"{video}-test.csv", header, test_rows)
        model = work / f"{video}-model"
        seconds = train(model, [tr])
        result = evaluate(model, te)
        per_video[video] = {"n_test": result["n"], "train_seconds": round(seconds, 1),
                            "at_0_5": result["at_0_5"], "operating_point": _op(result)}
    mccs = [v["at_0_5"]["mcc"] for v in per_video.values()]
    accs = [v["at_0_5"]["accuracy"] for v in per_video.values()]
    return {"per_video": per_video, "mean_mcc": statistics.mean(mccs), "min_mcc": min(mccs),
            "mean_accuracy": statistics.mean(accs)}


def leave_one_video_out(data_dir: Path, work: Path) -> dict:
    files = {v: data_dir / "youtube_spam_collection" / f"{v}.csv" for v in VIDEOS}
    per_video = {}
    for video in VIDEOS:
        model = work / f"lovo-{video}"
        train(model, [p for v, p in files.items() if v != video])
        result = evaluate(model, files[video])
        per_video[video] = {"n_test": result["n"], "at_0_5": result["at_0_5"], "operating_point": _op(result)}
    mccs = [v["at_0_5"]["mcc"] for v in per_video.values()]
    return {"per_video": per_video, "mean_mcc": statistics.mean(mccs), "min_mcc": min(mccs)}


def sms(data_dir: Path, work: Path) -> dict:
    lines = (data_dir / "sms_spam_collection" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines(True)
    cut = int(len(lines) * 0.3)
    tr = work / "sms-train.tsv"
    te = work / "sms-test.tsv"
    tr.write_text("".join(lines[:cut]), encoding="utf-8")
    te.write_text("".join(lines[cut:]), encoding="utf-8")
    model = work / "sms-model"
    seconds = train(model, [tr])
    result = evaluate(model, te)
    return {"n_train_rows": cut, "n_test": result["n"], "train_seconds": round(seconds, 1),
            "at_0_5": result["at_0_5"], "operating_point": _op(result)}


def default_model(data_dir: Path, work: Path) -> dict:
    model = work / "default-model"
    seconds = train(model, [], seed=True)
    result = evaluate(model, data_dir / "youtube_spam_collection" / "youtube_spam_collection_all.csv")
    report = {"train_seconds": round(seconds, 1), "n": result["n"], "spam_caught": result["recall"],
              "ham_flagged": result["false_positive_rate"], "held_for_moderation": result["unsure_rate"],
              "operating_point": _op(result), "at_0_5": result["at_0_5"]}
    wordpress = data_dir / "wordpress_spam_only" / "wordpress_spam_comments.csv"
    if wordpress.is_file():
        report["wordpress_spam"] = _spam_only(evaluate(model, wordpress))
    return report


def _spam_only(result: dict) -> dict:
    """A set of spam alone: what share is flagged (spam or discard), held, and published as ham."""
    return {"n": result["n"], "spam_caught": result["recall"], "held_for_moderation": result["unsure_rate"],
            "published_as_ham": 1.0 - result["recall"] - result["unsure_rate"],
            "discarded": result["discard_rate"], "caught_at_0_5": result["at_0_5"]["recall"]}


def _op(result: dict) -> dict:
    keys = ("accuracy", "precision", "recall", "f1", "mcc", "false_positive_rate", "unsure_rate", "roc_auc")
    return {k: result[k] for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", choices=["youtube", "lovo", "sms", "default"], action="append")
    args = parser.parse_args()
    if not args.data_dir.is_dir():
        sys.exit(f"no data at {args.data_dir}: the public corpora are needed for this benchmark")
    runs = {"youtube": tubespam, "lovo": leave_one_video_out, "sms": sms, "default": default_model}
    chosen = args.only or list(runs)
    report = {}
    with tempfile.TemporaryDirectory(prefix="commentguard-accuracy-") as tmp:
        for name in chosen:
            report[name] = runs[name](args.data_dir, Path(tmp))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
