"""CPU cost of one check inside the service, and what its parts add; prints JSON.

``bench/http_load.py`` measures the service under load, where gunicorn, the
GIL and the host's noise blur the picture. This bench calls the WSGI app
directly, one request after another, with the same 30 comments
``bench/http_load.py`` sends (JSON to ``/api/v1/check``, form posts to
``/1.1/comment-check``) and a real key, store and model, and measures CPU time
per request (``time.process_time``: every thread of the process, so the
recorder thread's SQLite writes count; the recorder is flushed inside each
timed stretch). It also times the bare Flask app of ``bench/bare_app.py`` in
the same harness, and the JSON check again with parts taken out:

* ``without_scoring``: ``Scorer.score_many`` returns a verdict computed before;
* ``without_scoring_or_recording``: ``record_check`` is skipped as well.

The differences between the variants are what each part costs.

``--instructions`` counts instructions instead, with valgrind's callgrind: a JSON
check and an Akismet check, each from two runs of the service (30 and 1,030
checks after the same warm-up), so start-up cancels out. The count does not move
with the host's load, so it shows a change of a few per cent that CPU time on a
shared machine cannot. What still moves it a little is what threads do on timers
(the model watcher's polls, the key cache's expiry), so the recorder writes on its
batch size only (about 8 minutes)::

    python bench/request_cost.py [--calls 2000] [--repeats 5] [--model DIR] [--instructions]
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import http_load  # bench/ is this script's directory, first on sys.path
from host import machine_reference_ms  # not from scoring.py, which imports scikit-learn

ROOT = http_load.ROOT
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]
#: The two runs of --instructions (checks after the warm-up), and the warm-up.
INSTRUCTIONS_CALLS = (30, 1030)
INSTRUCTIONS_WARMUP = 60


def load_bare_app() -> WsgiApp:
    """The baseline app of ``bench/bare_app.py`` (loaded from its file: bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bare_app", ROOT / "bench" / "bare_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_bare_app()  # type: ignore[no-any-return]


def environ(path: str, body: bytes, content_type: str, key: str | None = None) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it for a POST."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "wrk", "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http", "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False}
    if key:
        env["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return env


class Requests:
    """The bench's JSON and form requests, sent to a WSGI app in rotation."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.json = [body.encode() for body in http_load.json_bodies()]
        self.form = [body.encode() for body in http_load.form_bodies(key)]

    def send(self, app: WsgiApp, kind: str, calls: int) -> None:
        bodies = self.json if kind == "json" else self.form
        for i in range(calls):
            body = bodies[i % len(bodies)]
            if kind == "json":
                env = environ("/api/v1/check", body, "application/json", self.key)
            else:
                env = environ("/1.1/comment-check", body, "application/x-www-form-urlencoded")
            status: list[str] = []
            result = app(env, lambda s, headers, exc_info=None: status.append(s))
            b"".join(result)
            getattr(result, "close", lambda: None)()
            if not status[0].startswith("200"):
                raise RuntimeError(f"{kind} request answered {status[0]}")


def cpu_us_per_call(run: Callable[[int], None], flush: Callable[[], Any], calls: int,
                    repeats: int) -> dict[str, float]:
    """Median and range of CPU µs per call over ``repeats`` stretches of ``calls`` (after a warm-up)."""
    run(min(calls, 300))
    flush()
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        run(calls)
        flush()
        samples.append((time.process_time() - start) / calls * 1e6)
    return {"median": round(statistics.median(samples), 1), "min": round(min(samples), 1),
            "max": round(max(samples), 1)}


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    """``obj.name`` set to ``value`` for the block (a part of the check taken out)."""
    saved = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


@dataclass
class Service:
    """The service app with a key in a temporary data directory, and the requests to send it."""

    app: WsgiApp
    requests: Requests
    state: Any
    flush: Callable[[], Any]


@contextmanager
def running_service(model: Path) -> Iterator[Service]:
    """The app as ``commentguard serve`` builds it (settings from the environment), closed after."""
    with tempfile.TemporaryDirectory(prefix="commentguard-cost-") as tmp:
        env = http_load.base_env(Path(tmp), model)
        os.environ.clear()  # base_env is this environment without COMMENTGUARD_* settings, plus ours
        os.environ.update(env)
        created = subprocess.run([sys.executable, "-m", "commentguard", "keys", "create", "--site",
                                  http_load.SITE, "--json"], cwd=ROOT, env=env, capture_output=True,
                                 text=True, check=True)
        from service.app import close_app, create_app, get_state

        app = create_app()
        with app.app_context():
            state = get_state()
        recorder = state.recorder
        try:
            yield Service(app, Requests(json.loads(created.stdout)["key"]), state,
                          recorder.flush if recorder is not None else (lambda: None))
        finally:
            close_app(app)


def cpu_costs(model: Path, calls: int, repeats: int) -> dict[str, Any]:
    """CPU µs per request of each variant, and the parts they give."""
    import service.api as api
    from model.comment import Comment
    from model.scorer import Scorer

    with running_service(model) as service:
        bare = load_bare_app()

        def measure(target: WsgiApp, kind: str) -> dict[str, float]:
            return cpu_us_per_call(lambda n: service.requests.send(target, kind, n), service.flush, calls, repeats)

        result: dict[str, Any] = {"machine_reference_ms": machine_reference_ms(), "calls": calls,
                                  "repeats": repeats, "scoring_engine": service.state.scorer.engine}
        costs: dict[str, dict[str, float]] = {
            "bare_json": measure(bare, "json"), "bare_form": measure(bare, "form"),
            "check_json": measure(service.app, "json"), "check_form": measure(service.app, "form")}
        verdict = service.state.scorer.score(Comment.from_mapping(json.loads(service.requests.json[0])))
        with patched(Scorer, "score_many", lambda self, comments, thresholds=None: [verdict] * len(comments)):
            costs["check_json_without_scoring"] = measure(service.app, "json")
            with patched(api, "record_check", lambda *a, **k: "0" * 32):
                costs["check_json_without_scoring_or_recording"] = measure(service.app, "json")

    median = {name: cost["median"] for name, cost in costs.items()}
    result["us_per_request"] = costs
    result["parts_us"] = {
        "flask_bare": median["bare_json"],
        "request_work": round(median["check_json_without_scoring_or_recording"] - median["bare_json"], 1),
        "recording": round(median["check_json_without_scoring"]
                           - median["check_json_without_scoring_or_recording"], 1),
        "scoring_with_reasons": round(median["check_json"] - median["check_json_without_scoring"], 1),
        "form_over_json": round(median["check_form"] - median["check_json"], 1),
    }
    return result


def send_only(model: Path, kind: str, calls: int) -> None:
    """The child of --instructions: a warm-up, then ``calls`` checks of ``kind``, all written."""
    with running_service(model) as service:
        # As in a worker (service.server.post_worker_init): what start-up built is frozen.
        gc.freeze()
        if service.state.recorder is not None:
            # Writes every batch_size checks as in production, but never on the 0.2 s timer:
            # under valgrind's slowdown the timer would cut batches at random sizes, and the
            # count would vary with them.
            service.state.recorder.interval = 3600.0
        service.requests.send(service.app, kind, INSTRUCTIONS_WARMUP)
        service.flush()
        service.requests.send(service.app, kind, calls)
        service.flush()


def instruction_counts(model: Path, calls: tuple[int, int]) -> dict[str, Any]:
    """Instructions per check under callgrind: the difference of two runs over the difference of calls.

    The count is the same from run to run whatever else the machine is doing, so it shows
    changes of a few per cent that the host's noise hides from CPU time. Start-up, imports and
    the warm-up are the same in both runs and cancel out.
    """
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    counts: dict[str, list[int]] = {}
    for kind in ("json", "form"):
        for n in calls:
            with tempfile.TemporaryDirectory(prefix="commentguard-callgrind-") as tmp:
                done = subprocess.run(
                    ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable,
                     __file__, "--model", str(model), "--send-only", kind, str(n)],
                    capture_output=True, text=True, check=True)
            found = re.search(r"Collected : (\d+)", done.stderr)
            if found is None:
                raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
            counts.setdefault(kind, []).append(int(found.group(1)))
    per_check = {f"check_{kind}": round((high - low) / (calls[1] - calls[0]))
                 for kind, (low, high) in counts.items()}
    return {"calls": list(calls), "instructions_total": counts, "instructions_per_check": per_check}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="requests per timed stretch")
    parser.add_argument("--repeats", type=int, default=5, help="timed stretches per variant")
    parser.add_argument("--model", help="an existing model artifact (default: train one once)")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per check under valgrind's callgrind instead of CPU time")
    parser.add_argument("--send-only", nargs=2, metavar=("KIND", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = http_load.ensure_model(args.model)
    if args.send_only:
        send_only(model, args.send_only[0], int(args.send_only[1]))
        return
    if args.instructions:
        print(json.dumps(instruction_counts(model, INSTRUCTIONS_CALLS), indent=2))
        return
    print(json.dumps(cpu_costs(model, args.calls, args.repeats), indent=2))


if __name__ == "__main__":
    main()
