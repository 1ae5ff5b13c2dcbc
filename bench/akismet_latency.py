"""Latency of ``POST /1.1/comment-check`` on a real ``commentguard serve``; prints JSON.

Starts the server (temp data dir, SQLite, a fresh key, the model at
``--model`` or the default model trained into the temp dir), sends ``--calls``
comment-checks from ``--threads`` threads with realistic bodies (the fields the
WordPress plugin sends), and prints p50/p90/p99/max latency in milliseconds,
throughput and the error count. Not a test; nothing gates on it.

    python bench/akismet_latency.py [--calls 2000] [--threads 4] [--workers 2] [--model PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.settings import Settings, load_or_create_secret_key  # noqa: E402
from store import open_store  # noqa: E402

SITE = "https://blog.example.org"
COMMENTS: list[tuple[str, str, str, str]] = [  # author, email, url, content
    ("Marta", "marta.k@example.net", "", "Thanks for this write-up! The part about sourdough hydration finally made sense to me."),
    ("Dev Patel", "dev@example.com", "https://devpatel.example.com", "Does the second approach also work when the list is empty? I get an IndexError on Python 3.11."),
    ("Jonas", "jonas@example.de", "", "Ich habe das Rezept ausprobiert und es hat super funktioniert. Danke!"),
    ("Claire", "claire@example.fr", "", "Très bon article, mais la deuxième méthode me semble plus lente sur de grands fichiers."),
    ("Sam", "sam@example.org", "", "Small typo in the third paragraph: 'their' should be 'there'."),
    ("Priya", "priya@example.in", "https://priya.example.in/blog", "I ran your benchmark on an M2 and got roughly half the numbers you report. Any idea why?"),
    ("Tom", "tom@example.co.uk", "", "Where did you get the blue fabric in the photos? It would be perfect for my quilt."),
    ("Ana", "ana@example.es", "", "Gracias por compartir. ¿Tienes una versión para principiantes?"),
    ("Lee", "lee@example.kr", "", "This fixed my build. The missing --no-cache flag was exactly the problem, thank you."),
    ("Olu", "olu@example.ng", "", "I disagree with the conclusion, but the argument is well made. Looking forward to part two."),
    ("Best Deals", "deals@cheap-pills.example", "http://bit.ly/cheap-rx", "Buy cheap viagra online now!!! Best prices, no prescription http://bit.ly/cheap-rx"),
    ("Crypto King", "win@casino-bonus.example", "http://tinyurl.com/btc-win", "Make $5000 a week from home with our crypto casino bonus, click http://tinyurl.com/btc-win"),
    ("SEO Expert", "links@seo.example", "http://seo-links.example", "Rank first on Google! Cheap backlinks, guaranteed results http://seo-links.example/buy"),
    ("replica watches", "sales@replica.example", "http://replica.example", "Replica watches and bags, free shipping worldwide, visit http://replica.example/shop now"),
    ("Loans Fast", "apply@loans.example", "http://bit.ly/fast-loan", "Need money today? Loans with no credit check, apply now http://bit.ly/fast-loan"),
    ("Hot Dates", "meet@dates.example", "http://bit.ly/meet-now", "Lonely? Hot singles in your area are waiting, visit http://bit.ly/meet-now"),
    ("nice post", "x1@mail.example", "http://pharma.example", "nice post thanks for sharing <a href=\"http://pharma.example\">cheap cialis</a>"),
    ("Reader", "reader@example.net", "", "Could you share the code for the plots? I'd like to reproduce them with our data."),
    ("Kenji", "kenji@example.jp", "", "とても分かりやすい説明でした。ありがとうございます。"),
    ("Mia", "mia@example.se", "https://mia.example.se", "Tried it with oat milk instead and it still worked. Great recipe!"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body(key: str, i: int) -> bytes:
    author, email, url, content = COMMENTS[i % len(COMMENTS)]
    fields = {
        "api_key": key, "blog": SITE, "user_ip": f"203.0.113.{i % 250 + 1}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "referrer": f"{SITE}/2025/03/post-{i % 7}/", "permalink": f"{SITE}/2025/03/post-{i % 7}/",
        "comment_type": "comment", "comment_author": author, "comment_author_email": email,
        "comment_author_url": url, "comment_content": content, "blog_lang": "en_US", "blog_charset": "UTF-8",
        "comment_date_gmt": "2025-03-14T10:00:00Z", "HTTP_ACCEPT": "text/html,application/xhtml+xml",
        "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.8", "REQUEST_URI": "/wp-comments-post.php",
        "POST_comment_post_ID": str(i % 7 + 1), "comment_context[]": "recipes",
    }
    return urlencode(fields).encode()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", type=Path, default=None, help="model artifact (default: train one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        data_dir = Path(tmp) / "var"
        data_dir.mkdir()
        model = args.model or data_dir / "model"
        settings = Settings(data_dir=data_dir, model_path=model)
        secret = load_or_create_secret_key(data_dir).encode("utf-8")
        with open_store(str(settings.database_url), secret=secret) as store:
            key, _ = store.create_key(SITE, label="bench")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTGUARD_")}
        env.update({"COMMENTGUARD_DATA_DIR": str(data_dir), "COMMENTGUARD_MODEL_PATH": str(model),
                    "COMMENTGUARD_WORKERS": str(args.workers), "COMMENTGUARD_LOG_LEVEL": "WARNING"})
        proc = subprocess.Popen([sys.executable, "-m", "commentguard", "serve", "--port", str(port)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300  # training the default model takes a while
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not become ready")
                time.sleep(0.2)
            result = run(base, key, args.calls, args.threads)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    result.update({"workers": args.workers, "threads": args.threads})
    print(json.dumps(result, indent=2))


def run(base: str, key: str, calls: int, threads: int) -> dict[str, object]:
    latencies: list[float] = []
    errors: list[str] = []
    answers: dict[str, int] = {}
    lock = threading.Lock()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    def work(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            http.post("/1.1/verify-key", content=urlencode({"key": key, "blog": SITE}).encode(), headers=headers)
            for i in range(offset, calls, threads):
                payload = body(key, i)
                start = time.perf_counter()
                try:
                    response = http.post("/1.1/comment-check", content=payload, headers=headers)
                    elapsed = (time.perf_counter() - start) * 1000
                    ok = response.status_code == 200 and response.text in ("true", "false")
                    with lock:
                        latencies.append(elapsed)
                        answers[response.text if ok else "error"] = answers.get(response.text if ok else "error", 0) + 1
                        if not ok:
                            errors.append(f"{response.status_code} {response.text[:60]}")
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(type(exc).__name__)

    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    return {
        "endpoint": "/1.1/comment-check", "calls": calls, "errors": len(errors), "error_samples": errors[:5],
        "answers": answers,
        "p50_ms": round(percentile(latencies, 50), 2) if latencies else None,
        "p90_ms": round(percentile(latencies, 90), 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 2) if latencies else None,
        "max_ms": round(max(latencies), 2) if latencies else None,
        "throughput_per_s": round(len(latencies) / wall, 1),
    }


if __name__ == "__main__":
    main()
