"""The service's configuration: the typed :class:`Settings` object and where its values come from.

Every value comes from one ``COMMENTGUARD_*`` environment variable, read once by
:func:`load_settings` (nothing is read at import time); tests build
:class:`Settings` directly. :data:`SETTINGS` is the single table of variables,
defaults and descriptions: :func:`load_settings` parses from it and
:func:`settings_doc` documents from it, so the README cannot drift from the code.
This module also owns the server secret file (:func:`load_or_create_secret_key`).
"""
from __future__ import annotations

import logging
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from model.verdict import TIERS, Thresholds
from store.pg_url import redact_url

PREFIX = "COMMENTGUARD_"
ENFORCE = "enforce"
LOG_ONLY = "log_only"
MODES: tuple[str, ...] = (ENFORCE, LOG_ONLY)
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: gunicorn worker classes `commentguard serve` supports (gevent needs the optional gevent package).
WORKER_CLASSES: tuple[str, ...] = ("gthread", "sync", "gevent")
#: ``auto`` and the engines of model.fastpath.ENGINES (not imported: settings loads no numpy or model code).
SCORING_ENGINES: tuple[str, ...] = ("auto", "c", "numpy")
#: How the upstream Akismet-compatible API is consulted (see service/upstream.py).
UPSTREAM_MODES: tuple[str, ...] = ("off", "shadow", "gray", "always")
SECRET_FILE_NAME = "secret_key"
#: The store keys its digests with the secret; shorter secrets are too easy to guess.
MIN_SECRET_LENGTH = 16
#: The longest interval a periodic setting takes (a day): past it, timers overflow (``inf``).
MAX_CHECK_SECONDS = 86_400.0
#: The longest retention (a century): past it, the purge's cutoff date does not exist.
MAX_RETENTION_DAYS = 36_500
#: The longest window of labels the sender history counts (ten years).
MAX_SENDER_HISTORY_DAYS = 3650
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """Raised when a setting has a bad value; ``variable`` names its environment variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


class SettingDoc(NamedTuple):
    """One row of the settings documentation."""

    variable: str
    default: str
    description: str


class _Spec(NamedTuple):
    field: str
    parse: Callable[[str], Any]
    default: str
    description: str


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected one of 1/0/true/false/yes/no/on/off, got {raw!r}")


def _parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {raw!r}") from None


def _parse_float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None


def _parse_mode(raw: str) -> str:
    # "log-only" is how people type it; the canonical spelling is the identifier.
    return raw.strip().lower().replace("-", "_")


def _parse_str(raw: str) -> str:
    return raw.strip()


def _parse_path(raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def _parse_tiers(raw: str) -> tuple[str, ...]:
    tiers = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
    unknown = [t for t in tiers if t not in TIERS]
    if unknown or not tiers:
        raise ValueError(f"expected tiers from {', '.join(TIERS)} separated by commas, got {raw!r}")
    return tiers


def _parse_band(raw: str) -> tuple[float, float]:
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) != 2:
        raise ValueError(f"expected two scores 'low,high', got {raw!r}")
    return _parse_float(parts[0]), _parse_float(parts[1])


#: Every setting, in README order. The variable name is PREFIX + field name upper-cased,
#: except where ``_VARIABLE_NAMES`` says otherwise.
SETTINGS: tuple[_Spec, ...] = (
    _Spec("data_dir", _parse_path, "./var",
          "Directory for the model, the SQLite database, the secret key and the check log's spool "
          "(relative to the working directory; created owner-only)."),
    _Spec("model_path", _parse_path, "<data_dir>/model",
          "Model artifact directory; `commentguard serve` trains a default model there when it is missing."),
    _Spec("models_dir", _parse_path, "<data_dir>/models",
          "Where `commentguard retrain` writes model versions (`<models_dir>/<version>/`); "
          "share it between instances that share a database."),
    _Spec("model_check_seconds", _parse_float, "2",
          "How often each worker asks the registry which model is active and loads a new one "
          "in the background; 0 turns hot reload off: a new active model is served only by workers that "
          "start afterwards (a restart, or SIGHUP to the master), and a worker that refused its model at "
          "start still tries again every 2 s. At most 86400."),
    _Spec("host", _parse_str, "127.0.0.1",
          "Address `commentguard serve` binds to."),
    _Spec("port", _parse_int, "8000",
          "TCP port `commentguard serve` listens on."),
    _Spec("workers", _parse_int, "2",
          "Number of server worker processes (each loads the model)."),
    _Spec("worker_class", _parse_str, "gthread",
          "gunicorn worker class: `gthread` (threads in each worker process), `sync`, or `gevent` "
          "(needs the gevent package)."),
    _Spec("threads", _parse_int, "2",
          "Threads per worker process for the `gthread` worker class (other classes ignore it)."),
    _Spec("reuse_port", _parse_bool, "true",
          "Give each worker its own listening socket (`SO_REUSEPORT`) so that the kernel spreads "
          "connections evenly over the workers; `false` shares one socket, and a client's "
          "keep-alive connections can then all land on one worker. `serve` refuses a port already in use either way."),
    _Spec("scoring_engine", _parse_str, "auto",
          "What scores the text features: `c`, the compiled core (the service is not ready "
          "where it was not built), `numpy`, the same steps in numpy (1.4x slower per comment; to "
          "rule the core out when diagnosing), or `auto`: `c` when it was built, else `numpy`."),
    _Spec("max_body_bytes", _parse_int, "65536",
          "Largest request body the JSON API (and every endpoint but Akismet's) accepts; larger "
          "bodies get 413."),
    _Spec("akismet_max_body_bytes", _parse_int, "524288",
          "Largest request body the Akismet API accepts; larger bodies get the 200 text answer "
          "`Request body too large: ...`. Larger than the JSON API's: the WordPress plugin sends "
          "the comment twice, percent-encoded, and WordPress takes comments of up to 65,525 bytes."),
    _Spec("max_batch_items", _parse_int, "100",
          "Most comments one `POST /api/v1/check/batch` may carry."),
    _Spec("threshold_unsure", _parse_float, "(from the model)",
          "Override the score from which a comment is `unsure` (0 to 1)."),
    _Spec("threshold_spam", _parse_float, "(from the model)",
          "Override the score from which a comment is `spam` (0 to 1)."),
    _Spec("threshold_discard", _parse_float, "(from the model)",
          "Override the score from which a comment is `discard` (0 to 1)."),
    _Spec("mode", _parse_mode, ENFORCE,
          "`enforce`, or `log_only`: answer every check as ham on the wire (Akismet `false`, JSON "
          "`verdict` `ham`), while recording the real verdict and returning it beside the answer "
          "(JSON `recorded_verdict`, Akismet `X-CommentGuard-Verdict`)."),
    _Spec("database_url", _parse_str, "<data_dir>/commentguard.sqlite3",
          "Where checks, feedback and API keys are stored: a SQLite path (relative to the working "
          "directory; `sqlite:///relative.db` and `sqlite:////absolute.db` work too) or a "
          "`postgresql://` (or `postgres://`) URL, which needs `pip install 'commentguard[postgres]'`. "
          "A password holding `/`, `@` or `%` must be percent-encoded (`%2F`, `%40`, `%25`; `:`, `?` "
          "and `#` may be too; in a `?password=` query value, `&` too: `%26`) or given as `PGPASSWORD` instead: libpq ends the login part at the first "
          "`/` or `@` and decodes `%XX`. `serve` refuses, naming this variable, a URL no worker could "
          "open: an unknown scheme, a port that is not one, a password libpq would cut, PostgreSQL "
          "without psycopg, or a connection option libpq refuses before connecting, whether in the URL "
          "or, for one the URL leaves out, in a libpq `PG*` environment variable (`PGSSLMODE`, "
          "`PGPORT`, …) or the service file `PGSERVICE` names. No message shows the password or a "
          "piece of it (nor do `/readyz`, the logs and the command line). A database that is down "
          "only gets a warning."),
    _Spec("database_timeout", _parse_float, "10",
          "PostgreSQL: seconds a call may wait for the server's answer before the service gives the "
          "connection up and treats the database as down (checks wait in the check log's queue, "
          "reports get \"please retry\"). It bounds a server that hangs with its connections open, or "
          "a stalled proxy, which TCP settings do not. Migrations at start are not bounded; the "
          "command line waits as long as it takes. 1 to 3600."),
    _Spec("secret_key", _parse_str, "(generated into <data_dir>/secret_key)",
          "Server secret keying API-key digests and personal-data hashes (at least 16 characters)."),
    _Spec("allow_anonymous_json", _parse_bool, "false",
          "Accept JSON API calls without an API key. Feedback sent without a key reaches only checks "
          "made without one (never a keyed site's, by id or by text)."),
    _Spec("unsure_is_spam", _parse_bool, "true",
          "On the Akismet surface, answer `unsure` as spam (`true`) so clients hold it for review."),
    _Spec("store_personal_data", _parse_bool, "false",
          "Keep IP addresses and emails in clear instead of as keyed hashes."),
    _Spec("retention_days", _parse_int, "90",
          "Days to keep stored checks, and reports for the upstream it never took; 0 keeps them forever. "
          "At most 36500."),
    _Spec("sender_history", _parse_bool, "on",
          "Count a sender's history with the site's moderators in the verdict: an e-mail with at least 2 "
          "spam labels, more spam than ham, makes the comment at least `spam` (an IP so reported: one step "
          "up, `ham` to `unsure`, `unsure` to `spam`); an e-mail with at least 2 ham "
          "labels and no spam label (nor on the IP) turns `unsure` into `ham` (see Sender history). `off`: "
          "verdicts are the model's and the fixed rules' alone."),
    _Spec("sender_history_days", _parse_int, "90",
          "Days of moderator labels the sender history counts (1 to 3650); each worker reloads its counts "
          "every 30 s (less often when a load is slow: see Limits)."),
    _Spec("log_level", _parse_str, "INFO",
          "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL."),
    _Spec("upstream_mode", _parse_mode, "off",
          "Cross-check an upstream Akismet-compatible API: `off`, `shadow` (ask and record, never change "
          "the verdict), `gray` (ask only about the tiers or score band below and let it decide), "
          "`always` (ask every time and combine; see Upstream cross-check). Comments, IPs and e-mails "
          "are sent to it."),
    _Spec("upstream_url", _parse_str, "https://rest.akismet.com",
          "Base URL of the upstream API (`/1.1/comment-check` is appended)."),
    _Spec("upstream_key", _parse_str, "(none)",
          "API key for the upstream; required when `COMMENTGUARD_UPSTREAM_MODE` is not `off` "
          "or feedback is forwarded."),
    _Spec("upstream_budget_ms", _parse_int, "800",
          "Total time a check may spend before the upstream answers, counted from the start of the "
          "request, retry included; past it our own verdict stands. 50 to 60000."),
    _Spec("upstream_gray_tiers", _parse_tiers, "unsure",
          "In `gray` mode, the verdicts upstream is asked about, as tiers separated by commas, any of "
          "`ham`, `unsure`, `spam` and `discard`: `unsure`, or `unsure,spam` for a second opinion before "
          "blocking too; `ham` asks about what we would let through, and `discard` lets an upstream `false` "
          "turn our surest spam into `ham` (see Upstream cross-check)."),
    _Spec("upstream_gray_band", _parse_band, "(none)",
          "In `gray` mode, ask upstream when the score lies in `low,high` (low inclusive, high exclusive, "
          "0 <= low < high <= 1) instead of by tier; overrides `COMMENTGUARD_UPSTREAM_GRAY_TIERS`."),
    _Spec("upstream_breaker_failures", _parse_int, "5",
          "Consecutive upstream failures (timeout, error, invalid key) that open the circuit breaker."),
    _Spec("upstream_breaker_open_seconds", _parse_float, "30",
          "Seconds the breaker stays open (upstream not asked) before one probe call may close it. At most 86400."),
    _Spec("upstream_forward_feedback", _parse_bool, "false",
          "Forward moderator reports (submit-spam / submit-ham, `POST /api/v1/feedback`) to the upstream, "
          "through a durable outbox."),
)
# The Akismet-specific setting says so in its name; the field stays short.
_VARIABLE_NAMES: dict[str, str] = {"unsure_is_spam": PREFIX + "AKISMET_UNSURE_AS_SPAM"}


def variable_name(field_name: str) -> str:
    """The environment variable that sets the :class:`Settings` field ``field_name``."""
    return _VARIABLE_NAMES.get(field_name, PREFIX + field_name.upper())


def default_help(field_name: str) -> str:
    """A command-line option's default as its help states it: the variable, else the setting's default.

    From the table the README's Settings section is made of, so the two say the same."""
    spec = next(s for s in SETTINGS if s.field == field_name)
    return f"{variable_name(field_name)} or {spec.default}"


def settings_doc() -> list[SettingDoc]:
    """(variable, default, one-line description) for every setting, in README order."""
    return [SettingDoc(variable_name(s.field), s.default, s.description) for s in SETTINGS]


def settings_markdown() -> str:
    """The settings table as Markdown, for the README."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    rows += [f"| `{d.variable}` | `{d.default}` | {d.description} |" for d in settings_doc()]
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one service process; validated when built.

    ``model_path`` and ``database_url`` default to places inside ``data_dir``
    (filled in when left ``None``, so they are never ``None`` on a built object).
    """

    data_dir: Path = Path("./var")
    model_path: Path | None = None
    models_dir: Path | None = None
    model_check_seconds: float = 2.0
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    worker_class: str = "gthread"
    threads: int = 2
    reuse_port: bool = True
    scoring_engine: str = "auto"
    max_body_bytes: int = 65536
    akismet_max_body_bytes: int = 524288
    max_batch_items: int = 100
    threshold_unsure: float | None = None
    threshold_spam: float | None = None
    threshold_discard: float | None = None
    mode: str = ENFORCE
    # repr=False: these end up in logs and tracebacks, and they hold credentials.
    database_url: str | None = field(default=None, repr=False)
    database_timeout: float = 10.0
    secret_key: str | None = field(default=None, repr=False)
    allow_anonymous_json: bool = False
    unsure_is_spam: bool = True
    store_personal_data: bool = False
    retention_days: int = 90
    sender_history: bool = True
    sender_history_days: int = 90
    log_level: str = "INFO"
    upstream_mode: str = "off"
    upstream_url: str = field(default="https://rest.akismet.com", repr=False)  # may hold a login
    upstream_key: str = field(default="", repr=False)
    upstream_budget_ms: int = 800
    upstream_gray_tiers: tuple[str, ...] = ("unsure",)
    upstream_gray_band: tuple[float, float] | None = None
    upstream_breaker_failures: int = 5
    upstream_breaker_open_seconds: float = 30.0
    upstream_forward_feedback: bool = False

    def __post_init__(self) -> None:
        # Frozen, so defaults derived from data_dir are set through object.__setattr__.
        data_dir = Path(self.data_dir)
        object.__setattr__(self, "data_dir", data_dir)
        object.__setattr__(self, "model_path", Path(self.model_path or data_dir / "model"))
        object.__setattr__(self, "models_dir", Path(self.models_dir or data_dir / "models"))
        if not self.database_url:
            object.__setattr__(self, "database_url", str(data_dir / "commentguard.sqlite3"))
        object.__setattr__(self, "log_level", str(self.log_level).upper())
        _validate(self)

    @property
    def log_only(self) -> bool:
        """True in log-only mode: clients are told "ham" whatever the verdict."""
        return self.mode == LOG_ONLY

    @property
    def model_engine(self) -> str | None:
        """The engine to ask model.artifact.load_model for (``None``: its default, the core if built)."""
        return None if self.scoring_engine == "auto" else self.scoring_engine

    @property
    def has_threshold_overrides(self) -> bool:
        return any(v is not None for v in self._threshold_overrides().values())

    def thresholds_for(self, base: Thresholds) -> Thresholds:
        """The model's thresholds ``base`` with this configuration's overrides applied.

        Raises :class:`SettingsError` when the result is out of order (the
        overrides can only be checked against the model's values once it is loaded).
        """
        merged = {k: v if v is not None else getattr(base, k)
                  for k, v in self._threshold_overrides().items()}
        try:
            return Thresholds(**merged)
        except ValueError as exc:
            names = ", ".join(variable_name(f"threshold_{k}") for k, v
                              in self._threshold_overrides().items() if v is not None)
            raise SettingsError(names, f"with the model's thresholds {base.to_dict()}: {exc}") from exc

    def _threshold_overrides(self) -> dict[str, float | None]:
        return {"unsure": self.threshold_unsure, "spam": self.threshold_spam,
                "discard": self.threshold_discard}


def _validate(s: Settings) -> None:
    def check(name: str, ok: bool, message: str) -> None:
        if not ok:
            raise SettingsError(variable_name(name), message)

    check("host", bool(s.host), "must not be empty")
    check("port", 1 <= s.port <= 65535, f"must be a TCP port (1-65535), got {s.port}")
    check("workers", s.workers >= 1, f"must be at least 1, got {s.workers}")
    check("worker_class", s.worker_class in WORKER_CLASSES,
          f"must be one of {', '.join(WORKER_CLASSES)}, got {s.worker_class!r}")
    check("threads", s.threads >= 1, f"must be at least 1, got {s.threads}")
    check("scoring_engine", s.scoring_engine in SCORING_ENGINES,
          f"must be one of {', '.join(SCORING_ENGINES)}, got {s.scoring_engine!r}")
    check("max_body_bytes", s.max_body_bytes >= 1, f"must be at least 1, got {s.max_body_bytes}")
    check("akismet_max_body_bytes", s.akismet_max_body_bytes >= 1,
          f"must be at least 1, got {s.akismet_max_body_bytes}")
    check("max_batch_items", s.max_batch_items >= 1, f"must be at least 1, got {s.max_batch_items}")
    check("model_check_seconds", 0 <= s.model_check_seconds <= MAX_CHECK_SECONDS,
          f"must be 0 (no hot reload) to {MAX_CHECK_SECONDS:g}, got {s.model_check_seconds}")
    check("database_timeout", 1 <= s.database_timeout <= 3600,
          f"must be 1 to 3600 seconds, got {s.database_timeout:g}")
    check("retention_days", 0 <= s.retention_days <= MAX_RETENTION_DAYS,
          f"must be 0 (keep forever) to {MAX_RETENTION_DAYS}, got {s.retention_days}")
    check("sender_history_days", 1 <= s.sender_history_days <= MAX_SENDER_HISTORY_DAYS,
          f"must be 1 to {MAX_SENDER_HISTORY_DAYS}, got {s.sender_history_days}")
    for name in ("data_dir", "model_path", "models_dir"):
        path = getattr(s, name)
        # An artifact and the data dir are directories; a file there fails later, with a traceback.
        check(name, path is None or not path.exists() or path.is_dir(), f"must be a directory, {path} is a file")
    check("mode", s.mode in MODES, f"must be one of {', '.join(MODES)}, got {s.mode!r}")
    check("log_level", s.log_level in LOG_LEVELS, f"must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}")
    check("secret_key", s.secret_key is None or len(s.secret_key) >= MIN_SECRET_LENGTH,
          f"must be at least {MIN_SECRET_LENGTH} characters")
    _validate_upstream(s, check)
    present = []
    for tier in ("unsure", "spam", "discard"):
        value = getattr(s, f"threshold_{tier}")
        if value is not None:
            check(f"threshold_{tier}", 0.0 <= value <= 1.0, f"must be between 0 and 1, got {value}")
            present.append((tier, value))
    # Only the overrides given can be ordered here; the rest come from the model (thresholds_for).
    for (low_tier, low), (high_tier, high) in zip(present, present[1:]):
        check(f"threshold_{high_tier}", low <= high,
              f"must not be below {variable_name(f'threshold_{low_tier}')} ({high} < {low})")


def _validate_upstream(s: Settings, check: Callable[[str, bool, str], None]) -> None:
    check("upstream_mode", s.upstream_mode in UPSTREAM_MODES,
          f"must be one of {', '.join(UPSTREAM_MODES)}, got {s.upstream_mode!r}")
    # Quoted without its login part: "ftp://user:password@host" would show the password.
    check("upstream_url", s.upstream_url.startswith(("http://", "https://")),
          f"must be an http:// or https:// URL, got {redact_url(s.upstream_url)!r}")
    check("upstream_key", bool(s.upstream_key) or (s.upstream_mode == "off" and not s.upstream_forward_feedback),
          "is required when the upstream mode is not off or feedback is forwarded")
    check("upstream_budget_ms", 50 <= s.upstream_budget_ms <= 60_000,
          f"must be between 50 and 60000, got {s.upstream_budget_ms}")
    check("upstream_breaker_failures", s.upstream_breaker_failures >= 1,
          f"must be at least 1, got {s.upstream_breaker_failures}")
    check("upstream_breaker_open_seconds", 0 < s.upstream_breaker_open_seconds <= MAX_CHECK_SECONDS,
          f"must be more than 0, at most {MAX_CHECK_SECONDS:g}, got {s.upstream_breaker_open_seconds}")
    band = s.upstream_gray_band
    # low == high is an empty band (low inclusive, high exclusive): gray mode would ask about nothing,
    # silently; mode `off` says that plainly.
    check("upstream_gray_band", band is None or (len(band) == 2 and 0.0 <= band[0] < band[1] <= 1.0),
          f"must be two scores 'low,high' with 0 <= low < high <= 1 (low is included, high is not, so "
          f"low = high asks about no score), got {band!r}")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the ``COMMENTGUARD_*`` variables of ``environ`` (default ``os.environ``) into :class:`Settings`.

    An empty value counts as unset (container environments often pass ``VAR=``).
    Raises :class:`SettingsError` naming the variable for a bad value.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for spec in SETTINGS:
        name = variable_name(spec.field)
        raw = env.get(name)
        if raw is None or not raw.strip():
            continue
        try:
            values[spec.field] = spec.parse(raw)
        except ValueError as exc:
            raise SettingsError(name, str(exc)) from None
    return Settings(**values)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``COMMENTGUARD_*`` variables no setting reads: most likely typos, worth a warning.

    ``COMMENTGUARD_TEST_*`` is left out: the test suite's own variables.
    """
    env = os.environ if environ is None else environ
    known = {variable_name(s.field) for s in SETTINGS}
    return sorted(k for k in env if k.startswith(PREFIX) and k not in known
                  and not k.startswith(PREFIX + "TEST_"))


def resolve_secret_key(settings: Settings) -> str:
    """The configured secret, or the one kept in ``<data_dir>/secret_key`` (created on first use)."""
    if settings.secret_key:
        return settings.secret_key
    return load_or_create_secret_key(settings.data_dir)


def load_or_create_secret_key(data_dir: Path) -> str:
    """Read ``<data_dir>/secret_key``, creating it (mode 0600) with a fresh random secret if absent.

    Several worker processes may start at once: the file is written under a
    temporary name and hard-linked into place, which fails if another process
    got there first, so every process ends up with the same secret and no
    process ever reads a half-written file.
    """
    path = Path(data_dir) / SECRET_FILE_NAME
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_secret_file(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); chmod 600 it", path, mode)
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(variable_name("secret_key"),
                            f"{path} holds fewer than {MIN_SECRET_LENGTH} characters")
    return secret


def _create_secret_file(path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".secret_key.", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; use theirs
    finally:
        os.unlink(tmp)


__all__ = [
    "ENFORCE", "LOG_ONLY", "MODES", "SETTINGS", "WORKER_CLASSES", "UPSTREAM_MODES", "SettingDoc", "Settings", "SettingsError",
    "default_help", "load_or_create_secret_key", "load_settings", "resolve_secret_key", "settings_doc",
    "settings_markdown", "unknown_variables", "variable_name",
]
