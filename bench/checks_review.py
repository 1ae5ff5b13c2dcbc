"""`commentguard checks summary` and `checks list` on a large check log, through the command line.

Fills a fresh SQLite store (or the PostgreSQL URL given) with N checks spread over the last 30 days
across 5 sites (the store's own batch insert, 10,000 a transaction) and labels 1% of them; then
times each command, run as a subprocess (the interpreter's start and imports included, and
reported apart). Prints one JSON object.

Usage: python bench/checks_review.py [--checks 1000000] [--repeat 3] [--database-url URL]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.comment import Comment  # noqa: E402
from model.verdict import Thresholds  # noqa: E402
from store import CheckRecord, FeedbackRecord, new_check_id, open_store  # noqa: E402
from store.records import utcnow  # noqa: E402

SITES = [f"https://site{i}.example" for i in range(5)]
SECRET = "bench-secret-0123456789abcdef"
TEXTS = ["Great post, thanks for the clear explanation of the second example.",
         "Buy cheap pills online now http://bit.ly/x best prices",
         "I tried the recipe and my family loved it.",
         "Earn money from home, click here http://tinyurl.com/y"]


def fill(url: str, n: int) -> None:
    rng = random.Random(7)
    thresholds = Thresholds(0.4, 0.6, 0.9)
    now = utcnow()
    with open_store(url, secret=SECRET.encode()) as store:
        keys = [store.create_key(site)[1] for site in SITES]
        batch: list[CheckRecord] = []
        labels: list[FeedbackRecord] = []
        for i in range(n):
            key = keys[i % len(keys)]
            score = rng.random() ** 2
            record = CheckRecord(
                id=new_check_id(), created=now - timedelta(seconds=rng.uniform(0, 30 * 86400)), surface="json",
                tier=thresholds.tier(score), score=score, model_version="v1" if i % 10 else "v2",
                comment=Comment(comment_content=TEXTS[i % len(TEXTS)], comment_author=f"author {i % 997}"),
                reasons=("word 'casino'", "link to a URL shortener (bit.ly)"), site_id=key.site_id, key_id=key.id)
            batch.append(record)
            if i % 100 == 0:
                labels.append(FeedbackRecord(label="spam" if score > 0.5 else "ham", comment=record.comment,
                                             check_id=record.id, site_id=key.site_id, key_id=key.id))
            if len(batch) == 10_000:
                store.record_checks(batch)
                batch = []
        store.record_checks(batch)
        for label in labels:
            store.add_feedback(label)


def timed(env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "commentguard", *args], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or str(Path(tmp) / "bench.db")
        start = time.perf_counter()
        fill(url, args.checks)
        fill_s = time.perf_counter() - start
        env = {**os.environ, "COMMENTGUARD_DATA_DIR": tmp, "COMMENTGUARD_DATABASE_URL": url,
               "COMMENTGUARD_SECRET_KEY": SECRET}
        given = ["--threshold-unsure", "0.3", "--threshold-spam", "0.7", "--threshold-discard", "0.95"]
        runs = {
            "startup (--help)": ["checks", "--help"],
            "summary, 7 days": ["checks", "summary", "--json", *given],
            "summary, 30 days": ["checks", "summary", "--json", "--days", "30", *given],
            "summary, one site, 30 days": ["checks", "summary", "--json", "--days", "30", "--site", SITES[0], *given],
            "list, default": ["checks", "list"],
            "list --unlabelled --tier spam,discard": ["checks", "list", "--unlabelled", "--tier", "spam,discard"],
            "list --limit 1000 --json": ["checks", "list", "--limit", "1000", "--json"],
        }
        seconds = {}
        for name, argv in runs.items():
            times = [timed(env, *argv)[0] for _ in range(args.repeat)]
            seconds[name] = round(min(times), 3)
        checked = json.loads(timed(env, "checks", "summary", "--json", "--days", "30", *given)[1])
        print(json.dumps({"checks": args.checks, "backend": "postgresql" if args.database_url else "sqlite",
                          "fill_s": round(fill_s, 1), "seconds_best_of": args.repeat, "seconds": seconds,
                          "summary_total_checks_30_days": sum(s["checks"] for s in checked["sites"])}, indent=2))


if __name__ == "__main__":
    main()
