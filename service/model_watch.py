"""Hot model reload: each worker follows the registry's active model without a restart.

The registry (:mod:`store.registry`) names one active version for every
instance sharing the database. :class:`ModelWatcher` runs one daemon thread per
app (so one per gunicorn worker, since workers build their own app after the
fork). Every ``model_check_seconds`` it asks the registry for the active version
(one indexed query on a one-row table); when that differs from the version being
served, it verifies and loads the new artifact *in that thread*, off the request
path, and then swaps ``state.thresholds`` and ``state.scorer`` by plain attribute
assignment. A request that already took the old scorer finishes with it; the
next one gets the new one. Nothing waits on a lock, so no request fails or
stalls while a model loads (the load competes for the GIL for ~0.2 s, no more).

An artifact that fails its checks (checksums, scikit-learn version, version id
not the one registered, thresholds that contradict the configured overrides) is
refused: logged, reported by ``/readyz``, and remembered with the artifact
files' size and modification time, so it is not retried every two seconds but
is retried once someone repairs the files. The old model keeps serving.

At start-up, :meth:`ModelWatcher.startup_path` registers the configured model
(``settings.model_path``, the default model trained on first run) and makes it
active if nothing is, so the registry is never empty; then it loads the active
version's artifact with the checks a reload makes, and when that artifact is
refused, the app loads ``settings.model_path`` instead (the refusal shows in
``/readyz``).
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from model.artifact import METADATA_NAME, PICKLE_NAME, TABLES_NAME, load_model, read_metadata, verify_artifact
from model.errors import ArtifactError
from model.features import FEATURES_VERSION
from service import readiness
from service.settings import SettingsError
from store import ActiveModel, StoreError

if TYPE_CHECKING:
    from model.scorer import Scorer
    from model.verdict import Thresholds
    from service.app import ServiceState
    from service.settings import Settings

log = logging.getLogger(__name__)

BOOTSTRAP_ACTOR = "commentguard serve"
#: Seconds between attempts to open a store that could not be opened at start, when
#: ``model_check_seconds`` is 0 (hot reload off); otherwise that interval is used.
STORE_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class Refusal:
    """A registry version this worker would not serve, and why."""

    version: str
    path: str
    reason: str
    fingerprint: tuple[Any, ...]
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "reason": self.reason,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))}


def artifact_path(active: ActiveModel, models_dir: Optional[Path]) -> Path:
    """Where to find the active artifact: its registered path, else ``<models_dir>/<version>``.

    The fallback serves instances that mount the shared model volume at another place.
    """
    registered = Path(active.path)
    if registered.is_dir() or models_dir is None:
        return registered
    local = Path(models_dir) / active.version
    return local if local.is_dir() else registered


def _fingerprint(path: Path) -> tuple[Any, ...]:
    """The artifact files' sizes and modification times: a refused artifact is retried once they change."""
    out: list[Any] = [str(path)]
    for name in (PICKLE_NAME, TABLES_NAME, METADATA_NAME):
        try:
            st = (path / name).stat()
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [None, None]
    return tuple(out)


def servable_model(path: Path, version: Optional[str], settings: "Settings") -> tuple["Scorer", Optional["Thresholds"]]:
    """The artifact at ``path`` loaded as a worker serves registry version ``version``, with its thresholds.

    Raises :class:`ArtifactError` (checksums, scikit-learn version, a version id that is not
    ``version`` when one is given, bad thresholds) or :class:`SettingsError` (thresholds that contradict the
    configured overrides). ``commentguard models activate``/``rollback`` call it too, so a
    model the workers would refuse is refused before it is made active.
    """
    meta = verify_artifact(path)  # cheap, and refuses before anything is read further
    if version is not None and str(meta.get("version")) != version:
        raise ArtifactError(f"the artifact at {path} is version {meta.get('version')!r}, not the registered {version!r}")
    scorer = load_model(path, engine=settings.model_engine, unpickle=False)
    thresholds = settings.thresholds_for(scorer.thresholds) if settings.has_threshold_overrides else None
    return scorer, thresholds


def servable_refusal(path: Path, version: Optional[str], settings: "Settings") -> Optional[str]:
    """Why the workers would refuse the artifact at ``path`` (see :func:`servable_model`), or None."""
    try:
        servable_model(path, version, settings)
    except (ArtifactError, SettingsError) as exc:
        return str(exc)
    return None


class ModelWatcher:
    """Follows the registry's active model for one app; see the module docstring."""

    def __init__(self, state: "ServiceState", interval: float,
                 reopen_store: Optional[Callable[[], bool]] = None) -> None:
        """``reopen_store``: opens the app's store when it could not be opened at start
        (service.app.open_storage); the thread calls it each interval until it succeeds."""
        self.state = state
        self.interval = interval
        self.reopen_store = reopen_store
        self.registry_version: Optional[str] = None
        self.refused: Optional[Refusal] = None
        self.last_check: Optional[float] = None
        self.last_error: Optional[str] = None
        self.reloads = 0
        #: The not-ready reason the first load left (cleared when a model loads later).
        self.startup_reason: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._refusals: dict[str, Refusal] = {}
        #: The configured model's files as last tried, while no model is served.
        self._fallback_fingerprint: Optional[tuple[Any, ...]] = None

    # --- start-up ------------------------------------------------------------------------

    def startup_path(self) -> Path:
        """Register the configured model if the registry is empty; the path of the model to load first.

        The registry's active model is loaded here already when it can be served; when it is
        refused, the configured ``settings.model_path`` is the one to load.
        """
        settings, store = self.state.settings, self.state.store
        fallback = Path(settings.model_path)  # type: ignore[arg-type]
        if store is None:
            return fallback
        try:
            self._bootstrap(store, fallback)
            active = store.get_active_model()
        except StoreError as exc:
            log.error("the model registry is unavailable (%s); serving %s", exc, fallback)
            return fallback
        if active is None:
            return fallback
        self.registry_version = active.version
        path = artifact_path(active, settings.models_dir)
        # Loaded with every check a reload makes (version id, thresholds, overrides), so a
        # worker started after a bad activation serves the configured model instead of nothing.
        return path if self._load(active, path) else fallback

    def _bootstrap(self, store: Any, path: Path) -> None:
        try:
            meta = read_metadata(path)
        except ArtifactError:
            return  # nothing to register; /readyz reports the missing model
        if store.activate_if_none(meta, str(path.resolve()), BOOTSTRAP_ACTOR,
                                  "the configured model, registered on first start"):
            log.info("registered %s (%s) as the active model", meta.get("version"), path)

    # --- the thread ------------------------------------------------------------------------

    def start(self) -> "ModelWatcher":
        """Start the thread: to follow the registry (``interval`` > 0), and, whatever the
        interval, to open a store that could not be opened at start or load a model that was
        refused at start (without them nothing is ready)."""
        reopening = self.state.store is None and self.reopen_store is not None
        following = self.interval > 0 and (self.state.store is not None or self.reopen_store is not None)
        # Without hot reload too: a worker that refused its model at start tries again until it
        # serves one (mended files were never looked at, and /readyz stayed 503 for good).
        retrying = self.state.scorer is None and self.state.store is not None
        if self._thread is None and (following or reopening or retrying):
            self._thread = threading.Thread(target=self._run, name="commentguard-model-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        period = self.interval if self.interval > 0 else STORE_RETRY_SECONDS
        # A random first delay spreads the workers' polls over the interval.
        wait = random.uniform(0, period)
        while not self._stop.wait(wait):
            wait = period
            try:
                if self.state.store is None:
                    if self.reopen_store is None or not self.reopen_store():
                        continue  # still no store: try again next interval (it calls store_opened)
                if self.interval <= 0:
                    if self.state.scorer is None:
                        self.check_once()  # a model refused at start: its files may be mended
                    if self.state.scorer is not None:
                        return  # hot reload is off: the store and a model were all this thread waited for
                    continue
                self.check_once()
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise
                log.exception("model check failed")
            finally:
                readiness.publish_state(self.state)  # for the server's other workers (service.readiness)

    def store_opened(self) -> None:
        """The store opened after start-up: register the configured model, as start-up would have.

        Called by ``reopen_store`` (service.app.open_storage) before the app says it is ready."""
        store = self.state.store
        if store is None:
            return
        try:
            self._bootstrap(store, Path(self.state.settings.model_path))  # type: ignore[arg-type]
            active = store.get_active_model()
        except StoreError as exc:
            log.warning("the model registry is unavailable: %s", exc)
            return
        self.registry_version = active.version if active is not None else None

    def startup_loaded(self, path: Path, reason: Optional[str]) -> None:
        """What the app's first load of ``path`` gave (``reason``: why it failed, or None).

        Called by the app after loading :meth:`startup_path`'s answer. When that was the
        configured model standing in for a refused registry model, the log and the not-ready
        reason name both: an operator mending only the one named would still be down, or
        would serve the older model without knowing.
        """
        self.startup_reason = reason
        refused = self.refused
        fallback = Path(self.state.settings.model_path)  # type: ignore[arg-type]
        if refused is None or path != fallback or _same_place(refused.path, fallback):
            return  # no stand-in (the usual install: the registry's model is the configured one)
        if reason is None:
            _log_stand_in(self.state.scorer, fallback, refused)
            return
        self._fallback_fingerprint = _fingerprint(fallback)
        both = (f"the registry's active model {refused.version} was refused ({refused.reason}), and the "
                f"configured model {fallback} could not be loaded either ({reason})")
        if self.state.not_ready_reason == reason:
            self.state.not_ready_reason = both
        self.startup_reason = both

    def check_once(self) -> bool:
        """Ask the registry once and switch models if it names another; True when it switched."""
        store = self.state.store
        if store is None:
            return False
        if self.state.scorer is None and self._retry_fallback():
            return True
        self.last_check = time.time()
        try:
            active = store.get_active_model()
            self.last_error = None
        except StoreError as exc:
            if self.last_error is None:
                log.warning("cannot read the active model from the registry: %s", exc)
            self.last_error = str(exc)
            return False
        if active is None:
            return False
        self.registry_version = active.version
        current = self.state.scorer
        if current is not None and current.version == active.version:
            self.refused = None
            return False
        path = artifact_path(active, self.state.settings.models_dir)
        earlier = self._refusals.get(active.version)
        if earlier is not None and earlier.fingerprint == _fingerprint(path):
            self.refused = earlier
            return False
        return self._load(active, path)

    def _load(self, active: ActiveModel, path: Path) -> bool:
        fingerprint = _fingerprint(path)
        started = time.monotonic()
        try:
            scorer, thresholds = servable_model(path, active.version, self.state.settings)
        except (ArtifactError, SettingsError) as exc:
            self._refuse(active, path, str(exc), fingerprint)
            return False
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is a refusal too
            log.exception("loading model %s from %s failed", active.version, path)
            self._refuse(active, path, f"loading failed: {type(exc).__name__}: {exc}", fingerprint)
            return False
        old = self.state.scorer.version if self.state.scorer is not None else None
        recovered = old is None and self.startup_reason is not None  # not ready since the start
        self._serve(scorer, thresholds)
        self._refusals.pop(active.version, None)
        self.refused = None
        self.reloads += 1
        if old is not None or recovered:
            log.warning("model %s -> %s loaded from %s in %.2f s (process %d)", old or "(none)", active.version,
                        path, time.monotonic() - started, os.getpid())
        return True

    def _serve(self, scorer: "Scorer", thresholds: Optional["Thresholds"]) -> None:
        """Serve ``scorer`` from the next request on, and clear the not-ready reason the start left."""
        # The swap: two reference assignments, no lock on the request path.
        self.state.thresholds = thresholds
        self.state.scorer = scorer
        _report_version(scorer.version)
        warn_if_older_features(scorer)
        if self.startup_reason is not None and self.state.not_ready_reason == self.startup_reason:
            self.state.not_ready_reason = None
            self.startup_reason = None

    def _retry_fallback(self) -> bool:
        """While nothing is served: load the configured model once its files change (mended
        with ``commentguard models add-tables``, say); True when it loaded."""
        if self._fallback_fingerprint is None:
            return False
        fallback = Path(self.state.settings.model_path)  # type: ignore[arg-type]
        fingerprint = _fingerprint(fallback)
        if fingerprint == self._fallback_fingerprint:
            return False
        self._fallback_fingerprint = fingerprint
        try:
            scorer, thresholds = servable_model(fallback, None, self.state.settings)  # any version: not the registry's
        except (ArtifactError, SettingsError) as exc:
            log.error("the configured model %s is still refused: %s", fallback, exc)
            return False
        self._serve(scorer, thresholds)
        self._fallback_fingerprint = None
        refused = self.refused
        if refused is not None and not _same_place(refused.path, fallback):
            _log_stand_in(scorer, fallback, refused)
        else:
            log.warning("model %s loaded from %s: ready", scorer.version, fallback)
        return True

    def _refuse(self, active: ActiveModel, path: Path, reason: str,
                fingerprint: Optional[tuple[Any, ...]] = None) -> None:
        refusal = Refusal(active.version, str(path), reason, fingerprint or _fingerprint(path), time.time())
        self._refusals[active.version] = refusal
        self.refused = refusal
        log.error("refused model %s from %s: %s; still serving %s", active.version, path, reason,
                  self.state.scorer.version if self.state.scorer is not None else "nothing")

    def status(self) -> dict[str, Any]:
        """What ``/readyz`` tells operators about the registry and any refused model."""
        out: dict[str, Any] = {"registry_version": self.registry_version}
        if self.refused is not None:
            out["refused"] = self.refused.to_dict()
        if self.last_error is not None:
            out["registry_error"] = self.last_error
        return out


def how_workers_follow(interval: float) -> str:
    """What running workers do once the registry names another active model (``interval``: the
    ``model_check_seconds`` setting), for the commands that change it to say."""
    if interval > 0:
        return (f"running instances switch to it within {interval:g} s (COMMENTGUARD_MODEL_CHECK_SECONDS) "
                "and the time it takes to load")
    # The thread does not follow the registry then; only start-up (startup_path) reads it.
    return ("hot reload is off (COMMENTGUARD_MODEL_CHECK_SECONDS=0): running workers keep the model they "
            "serve, and each worker that starts from now on serves this one; restart the service, or send "
            "its gunicorn master SIGHUP to replace every worker")


def warn_if_older_features(scorer: "Scorer") -> None:
    """Log a warning when ``scorer`` was trained with an older release's features (it serves)."""
    trained_with = scorer.metadata.get("features_version", 1)
    if isinstance(trained_with, int) and trained_with < FEATURES_VERSION:
        log.warning("model %s was trained with an older release's features (version %s, this release has "
                    "%s): it serves, but text this release normalises differently scores less well; "
                    "retrain it", scorer.version, trained_with, FEATURES_VERSION)


def _log_stand_in(scorer: Optional["Scorer"], fallback: Path, refused: Refusal) -> None:
    log.error("serving the configured model %s (%s) instead of the registry's active model %s, which "
              "is refused: %s", scorer.version if scorer is not None else "?", fallback, refused.version,
              refused.reason)


def _same_place(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def _report_version(version: str) -> None:
    try:
        from service import metrics
    except ImportError:  # pragma: no cover - metrics is optional to this module
        return
    metrics.set_model_version(version)


__all__ = ["ModelWatcher", "Refusal", "artifact_path", "how_workers_follow", "servable_model",
           "servable_refusal", "warn_if_older_features"]
