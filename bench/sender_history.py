"""The sender history's costs: loading the table, its memory, and applying it to a check; prints JSON.

Seeds a fresh store with ``--senders`` labelled senders on one site (each an e-mail with two
spam labels and its IP with one: every one is held in the table, as an e-mail and an IP) and
``--noise`` more labels of senders seen once (read by the query, filtered out in SQL), then:

* ``load_s``: :meth:`store.Store.sender_label_counts`, best of 3 (what a worker's thread runs
  every 30 s);
* ``table_mib``: what the loaded table holds in memory (tracemalloc, ``SenderLabels`` only);
* ``apply_us``: :meth:`service.sender_history.SenderHistory.apply` per check, for a site with
  no labelled sender, a sender with no history on a site with some, and a reported sender.

    python bench/sender_history.py [--senders 100000] [--noise 100000] [--database-url URL]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host import machine_reference_ms  # noqa: E402  (bench/ is first on sys.path)
from model.comment import Comment  # noqa: E402
from model.verdict import Thresholds, Verdict  # noqa: E402
from service.sender_history import SenderHistory  # noqa: E402
from store import open_store  # noqa: E402
from store.privacy import Privacy  # noqa: E402
from store.records import utcnow  # noqa: E402

SECRET = b"bench-secret-0123456789abcdef"
SITE = "https://blog.example.org"
COLUMNS = ("created", "label", "site_id", "is_test", "comment_hash", "comment_author_email", "user_ip")


def seed(url: str, senders: int, noise: int) -> int:
    """Labels of ``senders`` reported senders and ``noise`` one-off ones; returns the site id."""
    privacy = Privacy(SECRET)
    with open_store(url, secret=SECRET) as store:
        site_id = store.create_key(SITE)[1].site_id
        now = utcnow()
        rows: list[tuple[Any, ...]] = []
        for i in range(senders):
            email, ip = privacy.pseudonym(f"sender{i}@example.org", email=True), privacy.pseudonym(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
            rows += [(now, "spam", site_id, False, f"s{i}a", email, ip), (now, "spam", site_id, False, f"s{i}b", email, "")]
        for i in range(noise):
            rows.append((now, "ham", site_id, False, f"n{i}", privacy.pseudonym(f"once{i}@example.org", email=True),
                         privacy.pseudonym(f"172.16.{(i >> 8) & 255}.{i & 255}")))
        for start in range(0, len(rows), 20_000):
            chunk = rows[start:start + 20_000]
            store.database.run(lambda tx: tx.insert_rows("feedback", COLUMNS, chunk))
    return site_id


def per_call_us(history: SenderHistory, comment: Comment, site_id: int, calls: int = 200_000) -> float:
    verdict, thresholds = Verdict("unsure", 0.3), Thresholds(0.2, 0.6, 0.9)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            history.apply(comment, verdict, thresholds, site_id)
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return round(best, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=100_000)
    parser.add_argument("--noise", type=int, default=100_000)
    parser.add_argument("--database-url", help="a PostgreSQL URL with an empty schema (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="commentguard-history-") as tmp:
        url = args.database_url or str(Path(tmp) / "store.sqlite3")
        site_id = seed(url, args.senders, args.noise)
        with open_store(url, secret=SECRET) as store:
            loads = []
            for _ in range(3):
                start = time.perf_counter()
                store.sender_label_counts(90)
                loads.append(time.perf_counter() - start)
            tracemalloc.start()
            labels = store.sender_label_counts(90)
            held = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            history = SenderHistory(store, 90)
            history.labels = labels
            result = {
                "machine_reference_ms": machine_reference_ms(), "backend": store.backend,
                "labels": 2 * args.senders + args.noise, "senders_held": labels.senders,
                "load_s": round(min(loads), 3), "table_mib": round(held / 2**20, 1),
                "apply_us": {
                    "site_without_history": per_call_us(history, Comment("x", comment_author_email="a@b.org",
                                                                         user_ip="192.0.2.1"), site_id + 1),
                    "sender_without_history": per_call_us(history, Comment("x", comment_author_email="new@example.org",
                                                                           user_ip="192.0.2.1"), site_id),
                    "reported_sender": per_call_us(history, Comment("x", comment_author_email="sender7@example.org",
                                                                    user_ip="10.0.0.7"), site_id)}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
