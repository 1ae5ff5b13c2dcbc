"""Running the service under gunicorn, programmatically (no gunicorn command line or config file).

:func:`gunicorn_options` turns settings into gunicorn's options (testable
without starting anything); :class:`CommentGuardServer` feeds them to gunicorn;
:func:`serve` runs it until it is stopped. ``preload_app`` is off: each worker
builds its own app and loads the model after the fork, so a worker restart
reloads a retrained model and no model state is shared across a fork.
The ``worker_exit`` hook (:func:`worker_exit`) flushes the worker's queued
check log and closes its store when gunicorn stops the worker (SIGTERM);
``atexit`` does the same for any other way the process ends normally.

On SIGTERM gunicorn stops accepting, lets in-flight requests finish (up to
``graceful_timeout`` seconds), then each worker runs ``worker_exit``, so every
answered check is in the store when the master exits. The ``child_exit`` hook
(:func:`child_exit`, in the master) drops a dead worker's live metrics. Logs are
JSON lines (:mod:`service.logging_setup`), gunicorn's own included.

Each worker listens on its own ``SO_REUSEPORT`` socket (``COMMENTGUARD_REUSE_PORT``, on by
default), so the kernel spreads connections over the workers; :func:`check_address_free`
keeps a port that is already taken an error, as it is with one shared socket.

The worker class and counts come from settings (``COMMENTGUARD_WORKER_CLASS``,
``COMMENTGUARD_WORKERS``, ``COMMENTGUARD_THREADS``); the defaults were chosen by
measurement with ``bench/http_load.py`` (see the README's Performance section).
"""
from __future__ import annotations

import errno
import functools
import gc
import os
import socket
from typing import Any, Callable

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.config import Config

from service import metrics, readiness
from service.app import close_app, create_app
from service.logging_setup import GunicornLogger, configure_logging
from service.settings import Settings

DEFAULT_WORKER_CLASS = Settings.worker_class
DEFAULT_GRACEFUL_TIMEOUT = 30
DEFAULT_TIMEOUT = 30
#: What ``COMMENTGUARD_WORKER_CLASS=gthread`` runs.
GTHREAD_WORKER = "service.gthread_worker.BufferedThreadWorker"


class CommentGuardServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    """A gunicorn application whose options come from a dict and whose app from a factory."""

    def __init__(self, app_factory: Callable[[], Flask], options: dict[str, Any]) -> None:
        # Checked here: gunicorn reports a bad option by printing it and calling sys.exit.
        unknown = sorted(set(options) - set(Config().settings))
        if unknown:
            raise ValueError(f"unknown gunicorn settings: {', '.join(unknown)}")
        self.app_factory = app_factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.app_factory()


def post_worker_init(worker: Any) -> None:
    """gunicorn hook, run in the worker once its app (and model) is loaded: freeze the GC's view.

    Everything built so far (imported libraries, the app, the model) lives as long as the
    worker. ``gc.freeze()`` moves those ~125,000 objects into the collector's permanent
    generation, so a full collection no longer walks them: unfrozen, one took 60 ms (up to
    120 ms while checks were being scored) on this project's 2-core test machine, a pause
    that every request in flight waited through; frozen, under 50 ms with 20,000 checks queued.
    What is frozen is still freed by reference counting; only cycles among it would stay.
    """
    gc.freeze()


def worker_exit(arbiter: Any, worker: Any) -> None:
    """gunicorn hook, run in the worker as it exits: flush the check log, close the store."""
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        close_app(app)


def when_ready(arbiter: Any) -> None:
    """gunicorn hook, run in the master once it is ready: say where the server listens, with how
    many workers and sockets.

    With a socket per worker (``reuse_port``) the master holds none, and gunicorn's own
    "Listening at:" line would have an empty address (GunicornLogger fills it in).
    """
    cfg = arbiter.cfg
    where = ", ".join(f"http://{address}" for address in cfg.bind)
    sockets = "a socket per worker" if cfg.reuse_port else "one shared socket"
    arbiter.log.info("listening on %s (%d workers, %s)", where, cfg.workers, sockets)


def child_exit(arbiter: Any, worker: Any) -> None:
    """gunicorn hook, run in the master when a worker has exited: forget its live metrics and readiness."""
    metrics.mark_process_dead(worker.pid)
    readiness.forget(worker.pid)


def bind_address(host: str, port: int) -> str:
    """gunicorn's bind string; IPv6 literals need brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def gunicorn_options(settings: Settings, *, host: str | None = None, port: int | None = None,
                     workers: int | None = None, worker_class: str | None = None,
                     threads: int | None = None, access_log: bool = False,
                     graceful_timeout: int = DEFAULT_GRACEFUL_TIMEOUT) -> dict[str, Any]:
    """The gunicorn options for ``settings``, with explicit arguments taking precedence."""
    worker_class = worker_class or settings.worker_class
    options: dict[str, Any] = {
        "bind": [bind_address(host or settings.host, port or settings.port)],
        "workers": workers or settings.workers,
        # gthread is gunicorn's threaded worker with requests read in full before a thread
        # takes one (service/gthread_worker.py): slow or idle clients cannot hold the threads.
        "worker_class": GTHREAD_WORKER if worker_class == "gthread" else worker_class,
        # gunicorn turns `sync` with threads > 1 into gthread: only gthread gets threads.
        "threads": (threads or settings.threads) if worker_class == "gthread" else 1,
        "timeout": DEFAULT_TIMEOUT,
        "graceful_timeout": graceful_timeout,
        "preload_app": False,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "proc_name": "commentguard",
        "logger_class": GunicornLogger,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
        "when_ready": when_ready,
        # Each worker binds its own SO_REUSEPORT socket and the kernel hashes connections over
        # them. With one shared socket, whichever worker wakes first accepts: wrk's 32 keep-alive
        # connections all landed on one worker in about one run of five (half the throughput).
        "reuse_port": settings.reuse_port,
        # The body limit is enforced by the app (413 JSON); gunicorn's own limits stay at defaults.
    }
    if "control_socket_disable" in Config().settings:
        # gunicorn 27+ opens ~/.gunicorn/gunicorn.ctl by default: unused here, shared between
        # instances of one user, and unwritable in a read-only container home.
        options["control_socket_disable"] = True
    return options


class CannotListen(OSError):
    """``serve`` cannot bind its address: taken by another server (or CommentGuard), or not allowed."""


def check_address_free(host: str, port: int) -> None:
    """Raise :class:`CannotListen` when a socket without SO_REUSEPORT cannot bind ``host:port``.

    With ``reuse_port`` the workers bind with SO_REUSEPORT, and a second server doing the same
    on the same port would quietly share its traffic instead of failing: probing with a plain
    socket first makes a taken port an error again. (SO_REUSEADDR, as gunicorn sets, so that
    connections of a just-stopped server in TIME_WAIT do not count.)
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CannotListen(errno.EADDRNOTAVAIL, f"cannot resolve {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            where = bind_address(host, port)
            raise CannotListen(exc.errno, f"cannot listen on {where}: {exc.strerror}") from exc


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          workers: int | None = None, *, worker_class: str | None = None, threads: int | None = None,
          access_log: bool = False) -> None:
    """Serve the app with gunicorn until stopped (SIGTERM: graceful shutdown)."""
    configure_logging(settings.log_level)
    options = gunicorn_options(settings, host=host, port=port, workers=workers,
                               worker_class=worker_class, threads=threads, access_log=access_log)
    # Either way: with one shared socket gunicorn retries for 5 s and then logs the conflict
    # in its own words; this says it at once, naming the address.
    check_address_free(host or settings.host, port or settings.port)
    # Before the fork: every worker writes its metric values into this server's own fresh directory.
    metrics_dir = metrics.prepare_multiprocess_dir()
    master = os.getpid()
    try:
        CommentGuardServer(functools.partial(create_app, settings), options).run()
    finally:
        # A worker is a fork of this call: gunicorn ends one with sys.exit(), which unwinds
        # through here too. Only the master may remove the directory; a worker that did left
        # its replacement unable to boot, and gunicorn then stopped the whole server.
        if os.getpid() == master:
            metrics.remove_multiprocess_dir(metrics_dir)


__all__ = ["CannotListen", "CommentGuardServer", "DEFAULT_WORKER_CLASS", "GTHREAD_WORKER", "bind_address", "check_address_free",
           "child_exit", "gunicorn_options", "post_worker_init", "serve", "when_ready", "worker_exit"]
