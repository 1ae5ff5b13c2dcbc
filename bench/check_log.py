"""What writing a check costs as the check log grows, with time-ordered or random check ids; prints JSON.

The service writes every check to the store's ``checks`` table, in batches of
200 from each worker's recorder thread (service/recorder.py). This bench writes
``--rows`` checks the same way (``Store.record_checks``, 200 per transaction,
the recorder's batch size) into a fresh SQLite file, and reports the median
microseconds per row over each tenth of the run, for check ids made as the
service makes them (uuid7: time-ordered, store/ids.py) and as uuid4 (random),
alternating batch by batch between two databases so that the host's load hits
both alike. The rows are the HTTP bench's 30 comments, scored by the default model,
each with its own author e-mail and IP so that every comment hash differs.

    python bench/check_log.py [--rows 300000] [--model DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import http_load  # bench/ is this script's directory, first on sys.path
from host import machine_reference_ms

sys.path.insert(0, str(http_load.ROOT))

from model.artifact import load_model  # noqa: E402
from model.comment import Comment  # noqa: E402
from store import open_store  # noqa: E402
from store.ids import random_id, time_ordered_id  # noqa: E402
from store.records import CheckRecord  # noqa: E402

#: Checks per transaction: the recorder's batch size (service/recorder.py).
BATCH = 200
SECRET = b"bench-check-log-secret-0123456789"


def make_records(scored: list[tuple[Comment, Any]], start: int, new_id: Callable[[], str]) -> list[CheckRecord]:
    """One batch of check records; comment ``start + i`` gets its own author e-mail and IP."""
    records = []
    now = datetime.now(timezone.utc)
    for i in range(start, start + BATCH):
        comment, verdict = scored[i % len(scored)]
        # A distinct author per row, so that the comment-hash index sees distinct keys as in use.
        comment = replace(comment, comment_author_email=f"reader{i}@example.org",
                          user_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        records.append(CheckRecord.from_verdict(comment, verdict, surface="json", check_id=new_id(),
                                                site_id=1, key_id=1, created=now))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="checks written with each kind of id")
    parser.add_argument("--model", help="an existing model artifact (default: train one once)")
    args = parser.parse_args()
    rows = max(BATCH * 10, args.rows // BATCH * BATCH)
    scorer = load_model(http_load.ensure_model(args.model))
    comments = [Comment.from_mapping(json.loads(body)) for body in http_load.json_bodies()]
    scored = [(comment, scorer.score(comment)) for comment in comments]
    kinds: dict[str, Callable[[], str]] = {"uuid7_time_ordered": time_ordered_id, "uuid4_random": random_id}
    result: dict[str, Any] = {"machine_reference_ms": machine_reference_ms(), "rows": rows, "batch": BATCH}
    with tempfile.TemporaryDirectory(prefix="commentguard-checklog-") as tmp:
        stores = {kind: open_store(str(Path(tmp) / f"{kind}.sqlite3"), secret=SECRET) for kind in kinds}
        per_row: dict[str, list[float]] = {kind: [] for kind in kinds}
        for start in range(0, rows, BATCH):
            for kind, new_id in kinds.items():
                records = make_records(scored, start, new_id)
                began = time.perf_counter()
                stores[kind].record_checks(records)
                per_row[kind].append((time.perf_counter() - began) / BATCH * 1e6)
        for kind, samples in per_row.items():
            tenth = len(samples) // 10
            medians = [round(statistics.median(samples[i * tenth:(i + 1) * tenth]), 1) for i in range(10)]
            size = (Path(tmp) / f"{kind}.sqlite3").stat().st_size
            result[kind] = {"us_per_row_by_tenth": medians, "db_mib": round(size / 2**20, 1)}
            stores[kind].close()
    first, last = (result["uuid7_time_ordered"]["us_per_row_by_tenth"],
                   result["uuid4_random"]["us_per_row_by_tenth"])
    result["last_tenth_uuid4_over_uuid7"] = round(last[-1] / first[-1], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
