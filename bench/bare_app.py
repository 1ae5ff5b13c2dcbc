"""The baseline for ``bench/http_load.py``: a bare Flask app with one route returning a constant JSON.

It runs under exactly the gunicorn configuration ``commentguard serve`` uses
(:func:`service.server.gunicorn_options`: the same worker class, worker and
thread counts, timeouts, logger), so the ratio of the service's throughput to
this one's is the cost of CommentGuard itself: parsing, auth, scoring, recording.

    python bench/bare_app.py --port 8001 [--workers 2] [--worker-class gthread] [--threads 4]
"""
from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds scripts named like project packages (bench/training.py): keep it off sys.path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402

from flask import Flask, Response, jsonify  # noqa: E402

from service.server import CommentGuardServer, gunicorn_options  # noqa: E402
from service.settings import load_settings  # noqa: E402

ANSWER = {"verdict": "ham", "score": 0.01, "reasons": [], "model_version": "bare", "check_id": "0" * 32}


def create_bare_app() -> Flask:
    """One route, any method, any body: a constant JSON answer."""
    app = Flask(__name__)

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def answer(path: str) -> Response:
        return jsonify(ANSWER)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--worker-class", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    # The same settings source as the service (COMMENTGUARD_* variables).
    settings = load_settings()
    options = gunicorn_options(settings, port=args.port, workers=args.workers,
                               worker_class=args.worker_class, threads=args.threads)
    options["proc_name"] = "commentguard-bare"
    CommentGuardServer(create_bare_app, options).run()


if __name__ == "__main__":
    main()
