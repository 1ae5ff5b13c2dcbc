"""The application factory and the per-app state (settings, scorer, store, recorder) in ``app.extensions``.

:func:`create_app` loads the model and opens the store once per app, and starts
the :class:`~service.recorder.Recorder` that writes the check log in the
background; :func:`close_app` (registered with ``atexit``, and called by the
gunicorn ``worker_exit`` hook) flushes it and closes the store. A model that fails to load
does not stop the app: ``/healthz`` still answers, ``/readyz`` says why it is
not ready, and the check endpoints answer 503, so an orchestrator can tell
"process up" from "able to score" and an operator can read the reason.
"""
from __future__ import annotations

import atexit
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager

from flask import Flask, current_app

from model.artifact import load_model
from model.errors import ArtifactError
from model.scorer import Scorer
from model.verdict import TIERS, Thresholds
from service import errors
from service.body import drain
from service.recorder import Recorder
from service.spool import spool_dir
from service.store_turns import StoreTurns, turns_for
from service.settings import Settings, SettingsError, load_settings, resolve_secret_key
from store import LABELS, SURFACES, Store, StoreError, open_store
from store.pg_url import without_secrets

if TYPE_CHECKING:
    from service.model_watch import ModelWatcher

EXTENSION_KEY = "commentguard"

log = logging.getLogger(__name__)


class ServiceFlask(Flask):
    """Flask, with each view's and hook's sync-or-async check made once rather than per request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ensured: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # Flask asks inspect.iscoroutinefunction of the view and every hook on every request
        # (six times per check, 3% of a check's CPU); whether a function is async never changes.
        # A race only computes the same answer twice.
        try:
            return self._ensured[func]
        except KeyError:
            ensured = self._ensured[func] = super().ensure_sync(func)
            return ensured
        except TypeError:  # an unhashable callable: ask each time, as Flask does
            return super().ensure_sync(func)


@dataclass
class ServiceState:
    """What the views of one app share: settings, scorer (if one loaded), store and recorder.

    ``store`` is ``None`` when the database could not be opened; the app then
    is not ready, like without a model, and ``not_ready_reason`` says why, until
    the model watcher's thread opens it (it tries every ``model_check_seconds``).

    ``thresholds`` is what views pass to ``Scorer.score``: ``None`` to use the
    model's own, or the model's with the configured overrides applied.
    """

    settings: Settings
    scorer: Scorer | None = None
    thresholds: Thresholds | None = None
    not_ready_reason: str | None = None
    store: Store | None = None
    #: Why the store could not be opened, while it cannot (the model watcher retries it).
    store_failure: str | None = None
    recorder: Recorder | None = None
    #: The upstream cross-check and report forwarder (service.upstream); None when both are off.
    upstream: Any = None
    #: Follows the registry's active model and swaps ``scorer``/``thresholds`` (service.model_watch).
    watcher: "ModelWatcher | None" = None
    #: The moderators' labels per sender, applied at check time (service.sender_history); None when off.
    sender_history: Any = None
    #: The turns this worker's request threads take to wait on the store (service.store_turns).
    store_turns: StoreTurns = field(init=False, repr=False)
    #: Per-site verdict settings resolved so far (service.site_settings), by site and thresholds.
    verdict_memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    _secret_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.store_turns = StoreTurns(turns_for(self.settings.threads, self.settings.worker_class))

    @property
    def ready(self) -> bool:
        return self.scorer is not None and self.store is not None and self.not_ready_reason is None

    def store_turn(self) -> ContextManager[None]:
        """A turn at the store for a request thread (service.store_turns): waited for while the
        store answers; while the check log's writer finds it unreachable, a free turn or none."""
        return self.store_turns.turn(wait=self.recorder is None or not self.recorder.store_unreachable)

    def secret_key(self) -> str:
        """The server secret, created in the data directory on first use (see settings)."""
        if self._secret_key is None:
            self._secret_key = resolve_secret_key(self.settings)
        return self._secret_key

    def close(self) -> None:
        """Write the queued check log and close the store (idempotent)."""
        atexit.unregister(self.close)
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.sender_history is not None:
            self.sender_history.stop()
            self.sender_history = None
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        if self.store is not None:
            self.store.close()
            self.store = None


def get_state(app: Flask | None = None) -> ServiceState:
    """The :class:`ServiceState` of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION_KEY]


#: Every answer is about one request: never cached (a verdict, a key's usage, an Akismet GET
#: with the key in its URL), and never sniffed into another type than it says.
PROTECTIVE_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"))


#: gunicorn reads at most this much of a body the app left unread, then closes the connection
#: after an answer that said keep-alive (gunicorn 27, ``http/parser.py``): the client's next
#: request on it is lost.
SERVER_DRAIN_BYTES = 64 * 1024


def _with_protective_headers(wsgi_app: Callable[..., Any], largest_body: int) -> Callable[..., Any]:
    """``wsgi_app`` adding :data:`PROTECTIVE_HEADERS` to every answer, at the WSGI layer (an
    ``after_request`` hook setting them through werkzeug's header object cost ~2 us a request),
    and reading to its end a declared body over :data:`SERVER_DRAIN_BYTES` that the view left
    unread (``/1.1/test``, a GET, a refused encoding with an Akismet-sized body), if within
    ``largest_body``: a longer one is refused, and its connection closed, anyway."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.extend(PROTECTIVE_HEADERS)
            return start_response(status, headers, exc_info)
        result = wsgi_app(environ, start)
        length = environ.get("CONTENT_LENGTH")
        if length and len(length) >= 5 and length.isdigit() and SERVER_DRAIN_BYTES < int(length) <= largest_body:
            drain(environ.get("wsgi.input"), int(length))
        return result
    return app


def create_app(settings: Settings | None = None, *, scorer: Scorer | None = None) -> Flask:
    """Build the service app. ``scorer`` skips loading the model and following the registry.

    Without it, the store opens first so the registry can name the model to load
    (its active version, else ``settings.model_path``), and a
    :class:`~service.model_watch.ModelWatcher` thread then follows the registry.
    """
    settings = settings if settings is not None else load_settings()
    from service import logging_setup, metrics
    from service.upstream import OUTCOMES as UPSTREAM_OUTCOMES
    logging_setup.configure_logging(settings.log_level)
    app = ServiceFlask(__name__)
    logging_setup.init_app(app)  # first: the request id is set before any other hook logs
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes  # the Akismet views set their own
    # What the HTTP worker reads in full before a thread takes a request (service.gthread_worker).
    app.config["COMMENTGUARD_LARGEST_BODY"] = max(settings.max_body_bytes, settings.akismet_max_body_bytes)
    app.config["COMMENTGUARD_MAX_BATCH_ITEMS"] = settings.max_batch_items  # for the OpenAPI document
    # Keep keys in the order the views wrote them: verdict first reads better than sorted.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if scorer is None:
        from service.model_watch import ModelWatcher

        state = ServiceState(settings=settings)
        open_storage(state)
        state.watcher = ModelWatcher(state, settings.model_check_seconds)
        # The store reopened after a failed start: the configured model is registered before the
        # app says ready (it said ready first, and a registry read at once found nothing).
        state.watcher.reopen_store = functools.partial(open_storage, state, state.watcher.store_opened)
        first = state.watcher.startup_path()
        state.watcher.startup_loaded(first, load_scorer(state, first))
    else:
        state = build_state(settings, scorer)
        open_storage(state)
    app.extensions[EXTENSION_KEY] = state
    errors.init_app(app)
    metrics.init_app(app)
    metrics.declare_series(verdicts=TIERS, surfaces=SURFACES, labels=LABELS, sources=("api", "akismet"),
                           outcomes=UPSTREAM_OUTCOMES if state.upstream is not None else ())
    metrics.set_model_version(state.scorer.version if state.scorer is not None else None)
    # Imported here, as flaskr does, because the views import get_state from this module.
    from service import akismet, api, ops

    app.register_blueprint(ops.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(akismet.bp)
    from service.docs import bp as docs_bp; app.register_blueprint(docs_bp)  # noqa: E702 (one line: app.py is shared)
    app.wsgi_app = _with_protective_headers(  # type: ignore[method-assign]
        app.wsgi_app, app.config["COMMENTGUARD_LARGEST_BODY"])
    from service import readiness
    readiness.publish_state(state)
    if state.watcher is not None:
        state.watcher.start()
    return app


def close_app(app: Flask) -> None:
    """Flush the app's check log and close its store; safe to call more than once."""
    state = app.extensions.get(EXTENSION_KEY)
    if isinstance(state, ServiceState):
        state.close()


def open_storage(state: ServiceState, before_ready: Callable[[], None] | None = None) -> bool:
    """Open the store and start the recorder; a failure leaves the app up but not ready.

    Returns whether the store is open. Called again (by the model watcher) after a failure,
    a success clears the not-ready reason the failure left: a worker that started while the
    database was down becomes ready when it is back, without a restart. The recorder's first
    act is the retention purge, in its own thread, so a large purge never delays start-up.
    ``before_ready`` runs once the store is open, before the not-ready reason is cleared (the
    model watcher registers the configured model there, as a normal start does before ready).
    """
    settings = state.settings
    try:
        store = open_store(str(settings.database_url), secret=state.secret_key().encode("utf-8"),
                           store_personal_data=settings.store_personal_data,
                           answer_timeout=settings.database_timeout)
    except (StoreError, SettingsError, OSError) as exc:
        # The message names the target (the store redacts a URL's password), never request data.
        # /readyz shows it to anyone who asks: a driver's words about a URL it cut short can quote
        # pieces of the password (as a host name), so they are blanked here once more.
        reason = without_secrets(f"the store could not be opened: {exc}", str(settings.database_url))
        if state.store_failure is None:
            log.error("not ready: %s", reason)
        state.store_failure = reason
        state.not_ready_reason = state.not_ready_reason or reason
        return False
    from service import readiness  # the other workers learn when this one's check log fails or recovers
    state.recorder = Recorder(store, retention_days=settings.retention_days, spool_dir=spool_dir(settings.data_dir),
                              on_health_change=functools.partial(readiness.publish_state, state)).start()
    from service.upstream import build_upstream  # imported here: it imports settings, not the app
    state.upstream = build_upstream(settings, store)
    if settings.sender_history:
        from service.sender_history import SenderHistory  # its thread loads the table; checks never wait for it
        state.sender_history = SenderHistory(store, settings.sender_history_days).start()
    state.store = store  # last: a request that sees the store finds the recorder beside it
    atexit.register(state.close)
    if before_ready is not None:
        before_ready()
    if state.store_failure is not None:
        if state.not_ready_reason == state.store_failure:
            state.not_ready_reason = None
        state.store_failure = None
        log.info("the store is open%s", "" if state.not_ready_reason else ": ready")
    return True


def build_state(settings: Settings, scorer: Scorer | None = None) -> ServiceState:
    """Load the model (unless given) and resolve thresholds; failures become a not-ready reason."""
    state = ServiceState(settings=settings, scorer=scorer)
    load_scorer(state, settings.model_path)
    return state


def load_scorer(state: ServiceState, path: Path | None) -> str | None:
    """Load the model at ``path`` into ``state`` (unless it has one) and resolve the thresholds.

    A failure becomes the not-ready reason (unless one is set already); returns the model's own reason.
    """
    reason = None
    if state.scorer is None:
        state.scorer, reason = _load_scorer(path, state.settings.model_engine)
        if state.scorer is not None:  # the watcher's own loads warn in its _serve
            from service.model_watch import warn_if_older_features  # imported with the watcher

            warn_if_older_features(state.scorer)
    if state.scorer is not None and state.settings.has_threshold_overrides:
        try:
            state.thresholds = state.settings.thresholds_for(state.scorer.thresholds)
        except SettingsError as exc:
            # Overrides that contradict the model's thresholds: refuse to score rather than guess.
            reason = str(exc)
    state.not_ready_reason = state.not_ready_reason or reason
    if state.not_ready_reason:
        log.error("not ready: %s", state.not_ready_reason)
    elif state.scorer is not None:
        engine = state.scorer.engine
        log.info("model %s loaded (scoring engine: %s)", state.scorer.version, engine)
        if "tables" not in state.scorer.metadata and "sha256" in state.scorer.metadata:
            log.warning("model %s has no serving tables (it was saved by an older release): each worker "
                        "unpickles it and imports scikit-learn, about a second and 90 MiB more; retrain it "
                        "to serve from tables", state.scorer.version)
        if engine != "c" and state.settings.scoring_engine == "auto":
            log.warning("the compiled scoring core (model._fastcore) is not built: scoring with numpy, "
                        "about 1.4x slower per comment; reinstall where a C compiler is available")
    return reason


def _load_scorer(path: Path | None, engine: str | None) -> tuple[Scorer | None, str | None]:
    if path is None:
        return None, "no model path configured"
    try:
        return load_model(path, engine=engine, unpickle=False), None
    except ArtifactError as exc:
        return None, str(exc)
    except Exception as exc:  # the service must come up to report it; /readyz carries the reason
        log.exception("loading the model at %s failed", path)
        return None, f"loading the model at {path} failed: {type(exc).__name__}"


__all__ = ["EXTENSION_KEY", "ServiceState", "build_state", "load_scorer", "close_app", "create_app", "get_state",
           "open_storage"]
