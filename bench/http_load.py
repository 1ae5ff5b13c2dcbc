"""HTTP throughput and latency of ``commentguard serve`` against a bare Flask app, with wrk; prints JSON.

In one run:

1. trains the default model into a cache directory unless ``--model`` names one
   (not timed), makes a temporary data directory and creates an API key there
   with ``commentguard keys create`` (SQLite store, the default);
2. starts ``commentguard serve`` with its production settings (only the data dir,
   model path and port are set; ``--workers/--worker-class/--threads`` override
   the defaults for comparisons) and times process start to the first
   ``/readyz`` 200;
3. starts ``bench/bare_app.py`` (one route, constant JSON) under the same
   gunicorn configuration;
4. loads each with ``wrk --latency`` (2 threads, 32 connections, ``--duration``
   seconds after a short warm-up) through a Lua script per endpoint that POSTs
   realistic comments in rotation: ``/api/v1/check`` (JSON, Bearer key) and
   ``/1.1/comment-check`` (form); the bare app gets the same requests;
   The server's CPU time per answered request is measured too (from /proc): on a
   machine shared with other work, requests/s swings with the load while
   CPU-ms per request does not, so ``cpu_ratio_bare_to_service`` (bare CPU per
   request / service CPU per request) is the steadier measure of the same ratio;
5. reads each worker's RSS and PSS, sends SIGTERM (graceful stop: in-flight
   requests finish, each worker flushes its check log), and counts the checks
   in the store against the 2xx answers wrk got.

wrk counts the responses it received; requests still in flight when a run's
time is up are answered by the server (and recorded) but not counted by wrk, so
``recorded`` may exceed ``answered_2xx`` by at most the connection count per run;
it must never be below it.

    python bench/http_load.py [--duration 10] [--model DIR] [--workers N] [--worker-class C] [--threads T]
                              [--no-reuse-port] [--scoring-engine auto|c|numpy]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SITE = "https://blog.example.org"
CACHE = Path(tempfile.gettempdir()) / "commentguard-bench-model"

# author, email, author url, content: what real readers and real spammers post.
COMMENTS: list[tuple[str, str, str, str]] = [
    ("Marta Kowalska", "marta.k@example.net", "",
     "Thanks for this write-up! The part about sourdough hydration finally made sense to me. "
     "I had been adding far too much water and wondering why the loaf spread out flat."),
    ("Dev Patel", "dev@example.com", "https://devpatel.example.com",
     "Does the second approach also work when the list is empty? I get an IndexError on Python 3.11 "
     "with the exact code from the gist."),
    ("Jonas", "jonas@example.de", "", "Ich habe das Rezept ausprobiert und es hat super funktioniert. Danke!"),
    ("Claire", "claire@example.fr", "",
     "Très bon article, mais la deuxième méthode me semble plus lente sur de grands fichiers."),
    ("Sam", "sam@example.org", "", "Small typo in the third paragraph: 'their' should be 'there'."),
    ("Priya", "priya@example.in", "https://priya.example.in/blog",
     "I ran your benchmark on an M2 and got roughly half the numbers you report. Any idea why? "
     "Same dataset, same flags, only the compiler version differs."),
    ("Tom Hughes", "tom@example.co.uk", "",
     "Where did you get the blue fabric in the photos? It would be perfect for my daughter's quilt."),
    ("Ana", "ana@example.es", "", "Gracias por compartir. ¿Tienes una versión para principiantes?"),
    ("Lee", "lee@example.kr", "",
     "This fixed my build. The missing --no-cache flag was exactly the problem, thank you so much."),
    ("Olu", "olu@example.ng", "",
     "I disagree with the conclusion, but the argument is well made. Looking forward to part two."),
    ("Best Deals", "deals@cheap-pills.example", "http://bit.ly/cheap-rx",
     "Buy cheap viagra online now!!! Best prices, no prescription needed http://bit.ly/cheap-rx"),
    ("Crypto King", "win@casino-bonus.example", "http://tinyurl.com/btc-win",
     "Make $5000 a week from home with our crypto casino bonus, click http://tinyurl.com/btc-win"),
    ("SEO Expert", "links@seo.example", "http://seo-links.example",
     "Rank first on Google! Cheap backlinks, guaranteed results in 7 days http://seo-links.example/buy"),
    ("replica watches", "sales@replica.example", "http://replica.example",
     "Replica watches and bags, free shipping worldwide, visit http://replica.example/shop now"),
    ("Loans Fast", "apply@loans.example", "http://bit.ly/fast-loan",
     "Need money today? Loans with no credit check, instant approval, apply now http://bit.ly/fast-loan"),
    ("Hot Dates", "meet@dates.example", "http://bit.ly/meet-now",
     "Lonely tonight? Hot singles in your area are waiting for you, visit http://bit.ly/meet-now"),
    ("nice post", "x1@mail.example", "http://pharma.example",
     'nice post thanks for sharing <a href="http://pharma.example">cheap cialis</a>'),
    ("Reader", "reader@example.net", "",
     "Could you share the code for the plots? I'd like to reproduce them with our own sensor data."),
    ("Kenji", "kenji@example.jp", "", "とても分かりやすい説明でした。ありがとうございます。"),
    ("Mia", "mia@example.se", "https://mia.example.se",
     "Tried it with oat milk instead and it still worked. Great recipe, the kids asked for seconds!"),
    ("Gardener Bob", "bob@example.com", "",
     "My tomatoes had the same yellow leaves last summer. Turned out to be overwatering, not blight."),
    ("Fatima", "fatima@example.ae", "",
     "Is there a way to run this on Windows without WSL? Our IT department will not allow it."),
    ("Channel Promo", "promo@yt-views.example", "http://yt-views.example",
     "Great video!! Please check out my channel and subscribe, I post new music every week!!! "
     "Like and share http://youtu.be/abc123"),
    ("FollowMe", "fm@insta.example", "",
     "follow me on instagram @best_fitness_tips_2025 for daily workouts and free giveaways!!!"),
    ("Winner Notice", "claims@prize.example", "http://prize-claim.example",
     "CONGRATULATIONS! You have been selected to receive a $1000 gift card. Claim your prize at "
     "http://prize-claim.example before it expires"),
    ("Essay Writers", "orders@essays.example", "https://essays.example",
     "Need help with your homework? Professional essay writing service, plagiarism free, 24/7 "
     "support, order now at essays [dot] example"),
    ("Henrik", "henrik@example.no", "",
     "We switched our CI to this setup last month and build times went from 14 to 6 minutes."),
    ("Lucia", "lucia@example.it", "",
     "Bellissime foto! Which lens did you use for the night shots over the harbour?"),
    ("Work From Home", "jobs@easy-cash.example", "http://bit.ly/easy-cash",
     "I make $85 an hour working from home on my laptop. It is so easy, see how: hxxp://easy-cash [dot] example"),
    ("Ravi", "ravi@example.in", "",
     "One question: does the API rate limit apply per key or per IP address? The docs are unclear."),
]
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

LUA = r"""
local bodies = {%(bodies)s}
local path = %(path)s
local headers = {%(headers)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", path, headers, bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "mean_us": %%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for our text


def json_bodies() -> list[str]:
    out = []
    for i, (author, email, url, content) in enumerate(COMMENTS):
        out.append(json.dumps({
            "comment_content": content, "comment_author": author, "comment_author_email": email,
            "comment_author_url": url, "comment_type": "comment", "blog": SITE,
            "user_ip": f"203.0.113.{i + 1}", "user_agent": UA,
            "permalink": f"{SITE}/2025/03/post-{i % 7}/", "blog_lang": "en_US"}))
    return out


def form_bodies(key: str) -> list[str]:
    out = []
    for i, (author, email, url, content) in enumerate(COMMENTS):
        out.append(urlencode({
            "api_key": key, "blog": SITE, "user_ip": f"198.51.100.{i + 1}", "user_agent": UA,
            "referrer": f"{SITE}/2025/03/post-{i % 7}/", "permalink": f"{SITE}/2025/03/post-{i % 7}/",
            "comment_type": "comment", "comment_author": author, "comment_author_email": email,
            "comment_author_url": url, "comment_content": content, "blog_lang": "en_US",
            "blog_charset": "UTF-8", "comment_date_gmt": "2025-03-14T10:00:00Z",
            "HTTP_ACCEPT": "text/html,application/xhtml+xml", "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.8",
            "REQUEST_URI": "/wp-comments-post.php", "POST_comment_post_ID": str(i % 7 + 1)}))
    return out


def write_lua(path: Path, url_path: str, bodies: list[str], headers: dict[str, str]) -> Path:
    path.write_text(LUA % {
        "bodies": ", ".join(lua_string(b) for b in bodies),
        "path": lua_string(url_path),
        "headers": ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()),
    }, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> float:
    """Seconds until ``url`` answers 200 (polled every 10 ms)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def run_wrk(url: str, script: Path, duration: int, threads: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("WRKJSON "))
    raw = json.loads(line[len("WRKJSON "):])
    errors = {k: raw[k] for k in ("connect", "read", "write", "timeout")}
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000, "mean_ms": round(raw["mean_us"] / 1000, 3),
        "non_2xx": raw["status"], "socket_errors": errors,
        "answered_2xx": raw["requests"] - raw["status"],
    }


def server_cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) used so far by a gunicorn master and its live workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    pids = [str(master_pid)] + Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def worker_memory(master_pid: int) -> list[dict[str, Any]]:
    """RSS and PSS (MiB) of each child of the gunicorn master."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    out = []
    for pid in children:
        fields = {}
        for name in ("status", "smaps_rollup"):
            try:
                for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                    key, _, value = line.partition(":")
                    fields[key.strip()] = value.strip()
            except OSError:
                pass
        kib = lambda k: int(fields.get(k, "0 kB").split()[0])  # noqa: E731
        out.append({"pid": int(pid), "rss_mib": round(kib("VmRSS") / 1024, 1),
                    "pss_mib": round(kib("Pss") / 1024, 1)})
    return out


def base_env(data_dir: Path, model: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMMENTGUARD_", "PROMETHEUS_"))}
    env.update({"COMMENTGUARD_DATA_DIR": str(data_dir), "COMMENTGUARD_MODEL_PATH": str(model)})
    return env


def server_args(args: argparse.Namespace) -> list[str]:
    out = []
    for flag, value in (("--workers", args.workers), ("--worker-class", args.worker_class),
                        ("--threads", args.threads)):
        if value is not None:
            out += [flag, str(value)]
    return out


def stop(proc: subprocess.Popen[bytes]) -> float:
    start = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return round(time.monotonic() - start, 3)


def ensure_model(path: Optional[str]) -> Path:
    if path:
        return Path(path)
    sys.path.insert(0, str(ROOT))
    from training.defaults import ensure_default_model

    ensure_default_model(CACHE / "model", quiet=True)
    return CACHE / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="an existing model artifact (default: train one once)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--worker-class", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-reuse-port", action="store_true",
                        help="both servers share one listening socket (COMMENTGUARD_REUSE_PORT=false)")
    parser.add_argument("--scoring-engine", choices=("auto", "c", "numpy"), default=None,
                        help="COMMENTGUARD_SCORING_ENGINE for the service (default: its own default, auto)")
    args = parser.parse_args()
    model = ensure_model(args.model)
    result: dict[str, Any] = {"config": {k: getattr(args, k) for k in
                                         ("duration", "connections", "wrk_threads", "workers",
                                          "worker_class", "threads", "no_reuse_port", "scoring_engine")}}

    with tempfile.TemporaryDirectory(prefix="commentguard-bench-") as tmp:
        tmpdir = Path(tmp)
        data_dir = tmpdir / "var"
        data_dir.mkdir()
        env = base_env(data_dir, model)
        if args.no_reuse_port:
            env["COMMENTGUARD_REUSE_PORT"] = "false"
        if args.scoring_engine:
            env["COMMENTGUARD_SCORING_ENGINE"] = args.scoring_engine
        created = subprocess.run([PYTHON, "-m", "commentguard", "keys", "create", "--site", SITE, "--json"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        key = json.loads(created.stdout)["key"]
        json_lua = write_lua(tmpdir / "check_json.lua", "/api/v1/check", json_bodies(),
                             {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        form_lua = write_lua(tmpdir / "comment_check.lua", "/1.1/comment-check", form_bodies(key),
                             {"Content-Type": "application/x-www-form-urlencoded"})

        port, bare_port = free_port(), free_port()
        log = open(tmpdir / "serve.log", "wb")
        proc = subprocess.Popen([PYTHON, "-m", "commentguard", "serve", "--port", str(port)] + server_args(args),
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        bare_log = open(tmpdir / "bare.log", "wb")
        bare = None
        try:
            base = f"http://127.0.0.1:{port}"
            result["startup_s"] = round(wait_ready(base + "/readyz", proc), 3)
            result["scoring_engine"] = httpx.get(base + "/readyz", timeout=5).json().get("scoring_engine")
            bare_env = {**env, "COMMENTGUARD_DATA_DIR": str(tmpdir / "bare")}
            bare = subprocess.Popen([PYTHON, str(ROOT / "bench" / "bare_app.py"), "--port", str(bare_port)]
                                    + server_args(args), cwd=ROOT, env=bare_env, stdout=bare_log,
                                    stderr=subprocess.STDOUT)
            bare_base = f"http://127.0.0.1:{bare_port}"
            wait_ready(bare_base + "/", bare)
            result["gunicorn"] = _gunicorn_line(tmpdir / "serve.log")

            runs: dict[str, dict[str, Any]] = {}
            sent = 0
            for name, url, script in (("bare_json", bare_base + "/api/v1/check", json_lua),
                                      ("check_json", base + "/api/v1/check", json_lua),
                                      ("bare_form", bare_base + "/1.1/comment-check", form_lua),
                                      ("comment_check", base + "/1.1/comment-check", form_lua)):
                if args.warmup:
                    warm = run_wrk(url, script, args.warmup, args.wrk_threads, args.connections)
                    if not name.startswith("bare"):
                        sent += warm["answered_2xx"]
                pid = bare.pid if name.startswith("bare") else proc.pid
                cpu = server_cpu_seconds(pid)
                runs[name] = run_wrk(url, script, args.duration, args.wrk_threads, args.connections)
                # CPU per answer: robust to other load on the machine, unlike requests/s.
                runs[name]["server_cpu_ms_per_request"] = round(
                    (server_cpu_seconds(pid) - cpu) * 1000 / max(runs[name]["requests"], 1), 3)
                if not name.startswith("bare"):
                    sent += runs[name]["answered_2xx"]
            for name, bare_name in (("check_json", "bare_json"), ("comment_check", "bare_form")):
                runs[name]["ratio_to_bare"] = round(runs[name]["rps"] / runs[bare_name]["rps"], 3)
                runs[name]["cpu_ratio_bare_to_service"] = round(
                    runs[bare_name]["server_cpu_ms_per_request"] / runs[name]["server_cpu_ms_per_request"], 3)
            result["runs"] = runs
            result["workers_memory"] = worker_memory(proc.pid)
        finally:
            result["stop_s"] = stop(proc)
            if bare is not None:
                stop(bare)
        db = sqlite3.connect(data_dir / "commentguard.sqlite3")
        recorded = db.execute("SELECT COUNT(*) FROM checks").fetchone()[0]
        db.close()
        runs_with_wrk = 2 * (2 if args.warmup else 1)
        result["recording"] = {
            "answered_2xx": sent, "recorded": recorded,
            "all_recorded": recorded >= sent,
            "unanswered_in_flight_max": runs_with_wrk * args.connections,
            "consistent": sent <= recorded <= sent + runs_with_wrk * args.connections,
        }
        errors_total = sum(r["non_2xx"] + sum(r["socket_errors"].values()) for r in result["runs"].values())
        result["targets"] = {
            "ratio_json>=0.65": result["runs"]["check_json"]["ratio_to_bare"] >= 0.65,
            "ratio_akismet>=0.65": result["runs"]["comment_check"]["ratio_to_bare"] >= 0.65,
            "p99<25ms": all(result["runs"][n]["p99_ms"] < 25 for n in ("check_json", "comment_check")),
            "no_errors": errors_total == 0,
            "all_recorded": result["recording"]["all_recorded"],
            "worker_rss<300MiB": all(w["rss_mib"] < 300 for w in result["workers_memory"]),
            "ready<3s": result["startup_s"] < 3,
        }
    print(json.dumps(result, indent=2))


def _gunicorn_line(log: Path) -> str:
    for line in log.read_text(errors="replace").splitlines():
        if "Using worker" in line:
            return json.loads(line).get("message", line) if line.startswith("{") else line
    return ""


if __name__ == "__main__":
    main()
