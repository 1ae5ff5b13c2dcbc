"""Upstream cross-check: how many upstream calls each mode makes, and the accuracy (MCC) it buys; prints JSON.

A simulated upstream (an in-process threaded HTTP server speaking Akismet's
comment-check) knows each comment's true label from a side table keyed by the
SHA-256 of its text, answers right 97% of the time (which comments it gets
wrong is fixed by a hash, so every mode sees the same upstream), and takes
150 ms per answer. The service runs in-process with the documented defaults
(budget 800 ms, no gray band); comments go through
``POST /api/v1/check`` in modes ``off``, ``gray`` (default tiers: ``unsure``),
``gray`` with ``COMMENTGUARD_UPSTREAM_GRAY_TIERS=unsure,spam`` and ``always``, from
``--threads`` client threads, in two scenarios:

* ``site``: the model a site runs once its moderators have labelled its past
  comments: trained on the seed corpus plus the oldest 70% of each class of
  every video (the TubeSpam training parts); checked on the newest 30%, less
  any comment whose text it was trained on.
* ``default``: the default model (seed corpus only) on every comment of the
  collection: out-of-domain data, where the model is much weaker than the
  upstream.

MCC counts ``spam`` and ``discard`` as flagged (the project's operating
point, as ``commentguard evaluate``); ``mcc_unsure_as_spam`` also counts
``unsure`` as flagged (what the Akismet surface answers by default).
Not a test; nothing gates on it.

    python bench/upstream.py [--scenario site|default|both] [--threads 16] [--limit N]
"""
from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds scripts named like project packages (bench/training.py): keep it off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import csv
import hashlib
import json
import math
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.comment import Comment  # noqa: E402
from service.app import close_app, create_app, get_state  # noqa: E402
from service.settings import Settings  # noqa: E402

YOUTUBE = REPO.parent / "shared" / "data" / "youtube_spam_collection"
DATA = YOUTUBE / "youtube_spam_collection_all.csv"
VIDEOS = ("Youtube01-Psy", "Youtube02-KatyPerry", "Youtube03-LMFAO", "Youtube04-Eminem", "Youtube05-Shakira")
ACCURACY = 0.97
LATENCY_S = 0.150
#: (name, mode, gray tiers): ``gray_unsure_spam`` also asks before blocking (tiers unsure,spam).
MODES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("off", "off", ("unsure",)), ("gray", "gray", ("unsure",)),
    ("gray_unsure_spam", "gray", ("unsure", "spam")), ("always", "always", ("unsure",)))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SimulatedUpstream:
    """Answers ``true``/``false`` after ``LATENCY_S``, right for ``ACCURACY`` of the comments."""

    def __init__(self, truth: dict[str, int]) -> None:
        self.truth = truth
        self.calls = 0
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                with upstream.lock:
                    upstream.calls += 1
                time.sleep(LATENCY_S)
                body = b"true" if upstream.answer(form.get("comment_content", [""])[0]) else b"false"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, text: str) -> bool:
        digest = text_hash(text)
        label = self.truth.get(digest, 0)
        right = int(hashlib.sha256(("wrong?" + digest).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < ACCURACY
        return bool(label) if right else not label


def mcc(pairs: list[tuple[int, int]]) -> float:
    tp = sum(1 for y, p in pairs if y and p)
    tn = sum(1 for y, p in pairs if not y and not p)
    fp = sum(1 for y, p in pairs if not y and p)
    fn = sum(1 for y, p in pairs if y and not p)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return round((tp * tn - fp * fn) / denominator, 4) if denominator else 0.0


def run_mode(name: str, mode: str, tiers: tuple[str, ...], comments: list[Comment], model: Path,
             upstream: SimulatedUpstream, work: Path, threads: int) -> dict[str, Any]:
    settings = Settings(data_dir=work / name, model_path=model, secret_key="bench-secret-key-0123456789",
                        allow_anonymous_json=True, upstream_mode=mode, upstream_gray_tiers=tiers,
                        upstream_url=upstream.url,
                        upstream_key="0123456789ab" if mode != "off" else "")
    app = create_app(settings)
    local = threading.local()

    def check(comment: Comment) -> tuple[str, float]:
        client = getattr(local, "client", None) or app.test_client()
        local.client = client
        body = {"comment_content": comment.comment_content, "comment_author": comment.comment_author,
                "user_ip": "192.0.2.1", "blog": "https://bench.example"}
        start = time.monotonic()
        response = client.post("/api/v1/check", json=body)
        return response.get_json()["verdict"], time.monotonic() - start

    before = upstream.calls
    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(check, comments))
    wall = time.monotonic() - start
    state = get_state(app)
    counters = state.upstream.counters.snapshot() if state.upstream is not None else {}
    close_app(app)
    latencies = sorted(t for _, t in results)
    return {"tiers": [tier for tier, _ in results], "upstream_calls": upstream.calls - before,
            "outcomes": {k: v for k, v in counters.items() if v and k not in ("calls", "requests")},
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1), "wall_s": round(wall, 1)}


def site_split(work: Path) -> tuple[Path, list[Comment], list[int]]:
    """The TubeSpam split: a training file of the oldest 70% per class per video, and the rest."""
    from training.loaders import load_file
    from training.records import dedup_key

    train_rows: list[tuple[str, str, int]] = []
    test: list[tuple[Comment, int]] = []
    for video in VIDEOS:
        records = load_file(YOUTUBE / f"{video}.csv", "youtube").records  # in time order
        for label in (0, 1):
            of_class = [r for r in records if r.label == label]
            cut = round(len(of_class) * 0.7)
            train_rows += [(r.comment.comment_content, r.comment.comment_author, label) for r in of_class[:cut]]
            test += [(r.comment, label) for r in of_class[cut:]]
    seen = {dedup_key(text) for text, _, _ in train_rows}
    test = [(c, y) for c, y in test if dedup_key(c.comment_content) not in seen]
    path = work / "site-history.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS"])
        writer.writerows([str(i), author, "", text, label] for i, (text, author, label) in enumerate(train_rows))
    return path, [c for c, _ in test], [y for _, y in test]


def run_scenario(comments: list[Comment], labels: list[int], model: Path, work: Path,
                 threads: int) -> dict[str, Any]:
    """Every mode on the same comments against one simulated upstream."""
    truth = {text_hash(c.comment_content): y for c, y in zip(comments, labels)}
    upstream = SimulatedUpstream(truth)
    out: dict[str, Any] = {"comments": len(comments), "spam": sum(labels),
                           "upstream_alone_mcc": mcc([(y, int(upstream.answer(c.comment_content)))
                                                      for c, y in zip(comments, labels)]),
                           "modes": {}}
    for name, mode, gray_tiers in MODES:
        result = run_mode(name, mode, gray_tiers, comments, model, upstream, work, threads)
        tiers = result.pop("tiers")
        result["mcc"] = mcc([(y, int(t in ("spam", "discard"))) for t, y in zip(tiers, labels)])
        result["mcc_unsure_as_spam"] = mcc([(y, int(t != "ham")) for t, y in zip(tiers, labels)])
        result["tiers"] = {t: tiers.count(t) for t in ("ham", "unsure", "spam", "discard")}
        out["modes"][name] = result
    upstream.server.shutdown()
    always = out["modes"]["always"]
    for name in ("gray", "gray_unsure_spam"):
        gray = out["modes"][name]
        share = round(gray["upstream_calls"] / max(1, always["upstream_calls"]), 4)
        out[f"{name}_calls_share_of_always"] = share
        out[f"{name}_target_met"] = bool(share <= 0.2 and gray["mcc"] >= always["mcc"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=("site", "default", "both"), default="both")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N comments of each scenario")
    args = parser.parse_args()
    if not DATA.is_file():
        sys.exit(f"the YouTube Spam Collection is not at {DATA}; nothing to measure")
    import logging

    logging.basicConfig(level=logging.ERROR)
    from training.defaults import ensure_default_model
    from training.loaders import load_file
    from training.train import train_model

    out: dict[str, Any] = {"upstream_accuracy": ACCURACY, "upstream_latency_ms": LATENCY_S * 1000,
                           "budget_ms": 800, "scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="cg-bench-upstream-") as tmp:
        work = Path(tmp)
        if args.scenario in ("site", "both"):
            history, comments, labels = site_split(work)
            train_model(work / "site-model", [history], fmt="youtube")
            n = args.limit or len(comments)
            out["scenarios"]["site"] = run_scenario(comments[:n], labels[:n], work / "site-model",
                                                    work / "site", args.threads)
        if args.scenario in ("default", "both"):
            records = load_file(DATA, "youtube").records
            n = args.limit or len(records)
            ensure_default_model(work / "default-model", quiet=True)
            out["scenarios"]["default"] = run_scenario([r.comment for r in records[:n]],
                                                       [r.label for r in records[:n]],
                                                       work / "default-model", work / "default", args.threads)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
