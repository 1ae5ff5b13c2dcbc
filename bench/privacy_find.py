"""How long `commentguard privacy find` takes on a large check log (SQLite), and what an index would cost; prints JSON.

The check log has no index on ``comment_author_email``, ``user_ip`` or ``comment_author``, and
an address written in a comment's text or in ``extra`` could not use one anyway: a request
from a commenter scans the table (:mod:`store.subjects`). This bench writes ``--rows`` checks
(seed-corpus texts; each with its own author e-mail and IP, WordPress-like ``extra`` fields
with the address in ``REMOTE_ADDR`` and ``HTTP_X_FORWARDED_FOR``; one comment in 5,000 signs
with an e-mail address) through ``Store.record_checks`` as the recorder does, 200 per
transaction, into a SQLite file (kept with ``--db``, and reused when it exists), then times
``find_subject`` by e-mail, by IP and by name, each twice (the first run reads the file
from disk unless the page cache holds it).

    python bench/privacy_find.py [--rows 1000000] [--db /tmp/privacy-bench.sqlite3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.comment import Comment  # noqa: E402
from model.verdict import Verdict  # noqa: E402
from store import open_store  # noqa: E402
from store.records import CheckRecord  # noqa: E402
from store.subjects import Subject, find_subject  # noqa: E402

BATCH = 200
SECRET = b"bench-privacy-secret-0123456789ab"
_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"


def seed_texts() -> list[str]:
    texts = []
    for path in sorted((ROOT / "training" / "seed").glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            texts += [json.loads(line)["comment_content"] for line in lines if line.strip()]
    return texts


def record(i: int, texts: list[str], now: datetime) -> CheckRecord:
    ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
    text = texts[i % len(texts)]
    if i % 5000 == 0:
        text += f" -- write to me at reader{i}@example.org"
    comment = Comment(comment_content=text, comment_author=f"Reader {i}", comment_author_email=f"reader{i}@example.org",
                      user_ip=ip, user_agent=_UA, blog="https://blog.example.org",
                      permalink=f"https://blog.example.org/post-{i % 300}/", comment_type="comment",
                      extra={"REMOTE_ADDR": ip, "HTTP_X_FORWARDED_FOR": ip, "HTTP_ACCEPT": "text/html",
                             "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9", "SERVER_NAME": "blog.example.org",
                             "POST_comment_post_ID": str(i % 300), "akismet_comment_nonce": "passed"})
    return CheckRecord.from_verdict(comment, Verdict("ham", 0.1, (), "bench"), surface="akismet", site_id=None,
                                    created=now)


def build(db: Path, rows: int) -> float:
    texts = seed_texts()
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    with open_store(str(db), secret=SECRET) as store:
        for start in range(0, rows, BATCH):
            store.record_checks(record(i, texts, now) for i in range(start, min(rows, start + BATCH)))
    return time.perf_counter() - started


def timed(store: object, subject: Subject) -> dict[str, float]:
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        found = find_subject(store, subject)  # type: ignore[arg-type]
        runs.append(round(time.perf_counter() - started, 2))
    return {"seconds": runs, "checks_found": len(found.checks)}  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default="/tmp/privacy-bench.sqlite3")
    args = parser.parse_args()
    db = Path(args.db)
    out: dict[str, object] = {"rows": args.rows}
    if not db.exists():
        out["build_seconds"] = round(build(db, args.rows), 1)
    out["db_bytes"] = db.stat().st_size
    target = (args.rows // 2) // 5000 * 5000  # a row that also signs its comment with the address
    with open_store(str(db), secret=SECRET) as store:
        out["find_email"] = timed(store, Subject.of(emails=[f"Reader{target}@Example.org"]))
        out["find_ip"] = timed(store, Subject.of(ips=[f"10.{target >> 16 & 255}.{target >> 8 & 255}.{target & 255}"]))
        out["find_author"] = timed(store, Subject.of(authors=[f"reader {target}"]))
        out["find_all_three"] = timed(store, Subject.of(emails=[f"reader{target}@example.org"], ips=["2001:db8::42"],
                                                        authors=[f"Reader {target}"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
