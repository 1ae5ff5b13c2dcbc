"""Running the service under gunicorn, programmatically (no gunicorn command line or config file).

:func:`gunicorn_options` turns settings into gunicorn's options (testable
without starting anything); :class:`CommentGuardServer` feeds them to gunicorn;
:func:`serve` runs it until it is stopped. ``preload_app`` is off: each worker
builds its own app and loads the model after the fork, so a worker restart
reloads a retrained model and no scikit-learn state is shared across a fork.
The ``worker_exit`` hook (:func:`worker_exit`) flushes the worker's queued
check log and closes its store when gunicorn stops the worker (SIGTERM);
``atexit`` does the same for any other way the process ends normally.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.config import Config

from service.app import close_app, create_app
from service.settings import Settings

DEFAULT_WORKER_CLASS = "sync"
DEFAULT_GRACEFUL_TIMEOUT = 30
DEFAULT_TIMEOUT = 30


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


def worker_exit(arbiter: Any, worker: Any) -> None:
    """gunicorn hook, run in the worker as it exits: flush the check log, close the store."""
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        close_app(app)


def bind_address(host: str, port: int) -> str:
    """gunicorn's bind string; IPv6 literals need brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def gunicorn_options(settings: Settings, *, host: str | None = None, port: int | None = None,
                     workers: int | None = None, worker_class: str = DEFAULT_WORKER_CLASS,
                     access_log: bool = False,
                     graceful_timeout: int = DEFAULT_GRACEFUL_TIMEOUT) -> dict[str, Any]:
    """The gunicorn options for ``settings``, with explicit arguments taking precedence."""
    options: dict[str, Any] = {
        "bind": [bind_address(host or settings.host, port or settings.port)],
        "workers": workers or settings.workers,
        "worker_class": worker_class,
        "timeout": DEFAULT_TIMEOUT,
        "graceful_timeout": graceful_timeout,
        "preload_app": False,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "proc_name": "commentguard",
        "worker_exit": worker_exit,
        # The body limit is enforced by the app (413 JSON); gunicorn's own limits stay at defaults.
    }
    if "control_socket_disable" in Config().settings:
        # gunicorn 27+ opens ~/.gunicorn/gunicorn.ctl by default: unused here, shared between
        # instances of one user, and unwritable in a read-only container home.
        options["control_socket_disable"] = True
    return options


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          workers: int | None = None, *, worker_class: str = DEFAULT_WORKER_CLASS,
          access_log: bool = False) -> None:
    """Serve the app with gunicorn until stopped (SIGTERM: graceful shutdown)."""
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
    options = gunicorn_options(settings, host=host, port=port, workers=workers,
                               worker_class=worker_class, access_log=access_log)
    CommentGuardServer(functools.partial(create_app, settings), options).run()


__all__ = ["CommentGuardServer", "DEFAULT_WORKER_CLASS", "bind_address", "gunicorn_options", "serve",
           "worker_exit"]
