"""Checking a ``postgresql://`` URL before connecting, and keeping its secrets out of messages.

A URL no connection could ever use is a configuration error (:class:`StoreConfigError`), not a
database that is down. libpq takes a URL with a port of ``abc`` or ``sslmode=bogus`` apart
without complaint and refuses it only when asked to connect; a server that is merely down fails
at the same moment. Told apart by the error alone, the two looked the same: ``commentguard
serve`` started, warned that the store would be opened when it was back, and stayed not ready
for good. Here the URL is parsed as libpq parses it (:func:`psycopg.conninfo.conninfo_to_dict`,
which opens nothing), and the values libpq (or psycopg) refuses before any network traffic are
checked as they check them: the URL's own, and for an option it leaves out, the value libpq
would take from its ``PG*`` environment variables or a service file (:class:`_Values`).

A password holding a character the URL reserves is cut where libpq cuts it: libpq ends the
login part at the first ``@`` (``pw@rd`` puts ``rd@host`` in the host name) and looks for that
``@`` only up to the first ``/`` (half of ``openssl rand -base64`` outputs hold one: the user
name becomes the host, the password's start the port, its rest the database name). Such URLs
are refused, and no message quotes a value taken out of the URL's login part or host: the
pieces of the password can sit in any of them. :func:`url_secrets` lists every text a message
must not show (the password as written, percent-decoded, and the pieces libpq may have cut it
into), and :func:`scrub` blanks them out of driver errors too, which quote host names, ports
and database names.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, Mapping, Optional
from urllib.parse import unquote

from store.errors import StoreConfigError

#: Options whose value must be one of these (libpq compares them case-sensitively).
_CHOICES: dict[str, tuple[str, ...]] = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "sslcertmode": ("disable", "allow", "require"),
    "sslnegotiation": ("postgres", "direct"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
}
#: TLS versions libpq accepts for ``ssl_min_protocol_version``/``ssl_max_protocol_version``
#: (compared case-insensitively).
_TLS_VERSIONS = ("tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3")
#: Options libpq reads as whole numbers (``port`` is checked on its own: a list, in range).
_INTEGERS = ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout")
#: An integer as libpq's strtol reads one: spaces around it and a sign allowed, ASCII digits only.
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
#: What ``require_auth`` may list (each after a ``!`` to refuse it instead; libpq 16 and later).
_AUTH_METHODS = ("password", "md5", "gss", "sspi", "scram-sha-256", "oauth", "none")
#: The environment variable psycopg reads ``connect_timeout`` from when the URL leaves it out.
CONNECT_TIMEOUT_VARIABLE = "PGCONNECT_TIMEOUT"

#: What a person should do about a password (or user name) the URL cuts short.
ENCODING_HINT = ("percent-encode / @ : ? # & and % in the user name and password "
                 "(%2F %40 %3A %3F %23 %26 %25), or give the password as PGPASSWORD")
#: A query parameter whose value is a secret: any whose name holds "password" or "secret", in
#: any case (``sslpassword``, ``oauth_client_secret``; libpq refuses a mis-cased ``PASSWORD``,
#: and the message saying so must not show its value either).
#: Its value runs on past an ``&`` that starts no ``name=`` pair: a password holding an
#: unencoded ``&`` showed its tail ("?password=Xk3&9zQpLm" -> libpq quoted "9zQpLm").
_SECRET_PARAM = re.compile(r"([?&][^=&]*(?:password|secret)[^=&]*=)([^&]*(?:&(?![A-Za-z_]+=)[^&]*)*)",
                           re.IGNORECASE)
_SECRET_NAME = re.compile(r"password|secret", re.IGNORECASE)
#: What follows the ``@`` that ends the login part: hosts (no ``@``), a path (no ``@``), a query
#: of ``name=value`` pairs (a value may hold ``@``: ``?user=me@corp``).
_AFTER_LOGIN = re.compile(r"[^@/?]*(?:/[^@?]*)?(?:\?(?:[A-Za-z_]+=[^&]*(?:&[A-Za-z_]+=[^&]*)*)?)?", re.DOTALL)
#: Where libpq's parser ends a value: the characters a password is cut at.
_CUTS = re.compile(r"[/@:?#,&=\[\]]")
#: Pieces of a cut password shorter than this are not blanked out on their own (they would blank
#: out ordinary words and carry little of a secret); a whole value holding one still is.
MIN_PIECE = 4
#: Connection options whose value names where to connect: a cut password's pieces land there.
_WHERE = ("host", "hostaddr", "port", "dbname", "user")
_QUOTED = re.compile(r'"([^"]*)"')
#: Stands in for anything secret in a message.
BLANK = "…"


def redact_url(target: str) -> str:
    """``target`` with a URL's login part (user and password) and every secret query value
    replaced by ``…`` (a path is returned as it is)."""
    if "://" not in target:
        return target
    scheme, rest = target.split("://", 1)
    end = _login_end(rest, _parse(target))
    if end is not None:
        rest = BLANK + rest[end:]
    return f"{scheme}://{_SECRET_PARAM.sub(lambda m: m[1] + BLANK, rest)}"


def url_secrets(url: str) -> frozenset[str]:
    """Every text a message about ``url`` must not show.

    The password as written and percent-decoded, as a person meant it (up to the ``@`` before
    the host) and as libpq took it (up to the first ``@``); its pieces at the characters libpq
    cuts at, of :data:`MIN_PIECE` characters or more; every host, port, database or user name
    libpq took out of the URL that holds such a piece or lies inside the password; and the value
    of every query parameter named for a password or secret. Empty for a SQLite path.
    """
    if "://" not in url:
        return frozenset()
    rest = url.split("://", 1)[1]
    params = _parse(url)
    secrets: set[str] = set()
    passwords: list[str] = []
    end = _login_end(rest, params)
    if end is not None and ":" in rest[:end]:
        passwords.append(rest[:end].split(":", 1)[1])
    if params is not None and params.get("password"):
        passwords.append(params["password"])
    pieces: set[str] = set()
    for password in passwords:
        secrets |= {password, unquote(password)}
        for piece in _CUTS.split(password):
            if len(piece) >= MIN_PIECE:
                pieces |= {piece, unquote(piece)}
    secrets |= pieces
    for match in _SECRET_PARAM.finditer(rest):
        secrets |= {match[2], unquote(match[2])}
        secrets |= {piece for piece in _CUTS.split(match[2]) if len(piece) >= MIN_PIECE}
    for name, value in (params or {}).items():
        if _SECRET_NAME.search(name):
            secrets.add(value)
        elif name in _WHERE:
            for item in {value, *value.split(",")}:
                if any(piece in item for piece in pieces) or (
                        len(item) >= MIN_PIECE and any(item in password for password in passwords)):
                    secrets |= {item, value}
    return frozenset(s for s in secrets if s)


def environment_secrets() -> frozenset[str]:
    """The passwords libpq would take from the environment or a service file (``PGPASSWORD``)."""
    try:
        from psycopg import pq

        defaults = pq.Conninfo.get_defaults()
    except Exception:  # noqa: BLE001 - no psycopg, no libpq: nothing it could take
        return frozenset()
    # libpq marks the options it keeps out of sight ("*": password, sslpassword, oauth_client_secret).
    return frozenset(d.val.decode("utf-8", "replace") for d in defaults
                     if d.dispchar == b"*" and d.val)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` in it replaced by ``…`` (the longest first)."""
    for secret in sorted(set(secrets) - {""}, key=len, reverse=True):
        text = text.replace(secret, BLANK)
    return text


def without_secrets(text: str, target: str) -> str:
    """``text`` (a message about the store at ``target``) with the URL's secrets and PGPASSWORD
    blanked out: for the places a store error becomes a message (/readyz, logs, the command line)."""
    if "://" not in target:
        return text
    return scrub(text, url_secrets(target) | environment_secrets())


def scrub_exception(exc: BaseException, secrets: Iterable[str]) -> None:
    """Blank ``secrets`` out of ``exc`` and the exceptions it was raised from, in place.

    A wrapping error keeps the driver's in ``__cause__``, and a traceback prints that one's
    message too.
    """
    secrets = frozenset(secrets)
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    pending: list[BaseException] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(scrub(a, secrets) if isinstance(a, str) else a for a in current.args)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        current = pending.pop() if pending else None


def check_postgres_url(url: str) -> None:
    """Raise :class:`StoreConfigError` when no connection could ever be made with ``url``.

    A URL that only fails against the server (a wrong password, a database that does not
    exist, a host that is down or unknown) passes: that may be mended without changing it.
    """
    try:
        from psycopg import ProgrammingError
    except ImportError as exc:
        raise StoreConfigError("PostgreSQL storage needs psycopg: pip install 'commentguard[postgres]'") from exc
    from psycopg.conninfo import conninfo_to_dict

    secrets = url_secrets(url)
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except ProgrammingError as exc:
        # libpq's words can quote the URL or a piece of it (the password among them).
        raise StoreConfigError(scrub(f"not a valid PostgreSQL URL ({_libpq_words(str(exc), url, secrets)}): "
                                     f"{redact_url(url)}", secrets)) from None
    problem = _login_problem(url, params) or _value_problem(params)
    if problem is not None:
        raise StoreConfigError(scrub(f"{problem}, in {redact_url(url)}", secrets))


def _parse(url: str) -> Optional[dict[str, str]]:
    """``url``'s options as libpq takes them apart, or None when it does not."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        return {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except Exception:  # noqa: BLE001 - psycopg.ProgrammingError, or no psycopg at all
        return None


def _libpq_words(words: str, url: str, secrets: frozenset[str]) -> str:
    """libpq's reason for refusing ``url``, each quoted value in it kept only where the redacted
    URL shows it too (an option's name is; a password's piece is not), and what to do when the
    password may be what it stumbled on."""
    shown = redact_url(url)
    before_host = url.rsplit("@", 1)[0] if "@" in url else ""  # whatever the login part is, it is in here
    blanked: list[str] = []

    def quoted(match: re.Match[str]) -> str:
        value = match[1]
        if not any(c.isalnum() for c in value) or (
                value in shown and scrub(value, secrets) == value and value not in before_host):
            return match[0]  # punctuation ("=") or an option's name: nothing of a secret
        blanked.append(value)
        return f'"{BLANK}"'

    words = scrub(_QUOTED.sub(quoted, words.strip()), secrets)
    return f"{words}; {ENCODING_HINT}" if blanked or "percent" in words else words


def _login_end(rest: str, params: Optional[Mapping[str, str]]) -> Optional[int]:
    """Where in ``rest`` (a URL after ``://``) the login part ends, as a person meant it: the
    index of its ``@``, or None when there is none.

    The first ``@`` after which only hosts, a path and a query follow (a password may hold
    ``@``, ``/`` or ``?``; a host or a path does not hold ``@``). When libpq took the URL apart
    and found no login part before the first ``/``, and its path holds no ``@``, the ``@`` is in
    the query (``?user=me@corp``): there is no login part.
    """
    ats = [i for i, c in enumerate(rest) if c == "@"]
    if not ats:
        return None
    slash = rest.find("/")
    if params is not None and 0 <= slash < ats[0] and "@" not in _raw_path(rest):
        return None
    for at in ats:
        if _AFTER_LOGIN.fullmatch(rest, at + 1):
            return at
    return ats[-1]


def _raw_path(rest: str) -> str:
    """The path of ``rest`` (a URL after ``://``) as libpq reads it: from the ``/`` after the
    login part and hosts to the ``?``, not percent-decoded."""
    slash = rest.find("/")
    at = rest.find("@")
    start = at + 1 if 0 <= at and (slash < 0 or at < slash) else 0  # libpq's login part ends at the first "@"
    hosts_end = min((i for i in (rest.find("/", start), rest.find("?", start)) if i >= 0), default=len(rest))
    if not rest.startswith("/", hosts_end):
        return ""
    return rest[hosts_end + 1:].split("?", 1)[0]


def _login_problem(url: str, params: Mapping[str, str]) -> Optional[str]:
    """A password or user name libpq cut short, as it shows in ``params`` (quoting nothing)."""
    rest = url.split("://", 1)[1]
    for name in ("host", "hostaddr"):
        if "@" in params.get(name, ""):
            return f"the URL's host holds an '@': {ENCODING_HINT}"
    if "@" in _raw_path(rest):
        return (f"an '@' comes after the first '/': {ENCODING_HINT} (a '/' in the password ends "
                "the URL's login part there; an '@' in a database name is written %40)")
    return None


class _Values:
    """The connection options libpq would use, and where each came from.

    The URL's own, then for each option it leaves out the default libpq takes from its
    environment variable (``PGSSLMODE``, ``PGPORT``, …) or from the service file ``PGSERVICE``
    names (:func:`psycopg.pq.Conninfo.get_defaults` is libpq's ``PQconndefaults``, which opens
    nothing), then libpq's compiled-in default. When the URL names a service itself
    (``?service=``), that file comes before the environment and is not read here: only the URL's
    options are checked then.
    """

    def __init__(self, params: Mapping[str, str]) -> None:
        self.values: dict[str, str] = dict(params)
        self.origins: dict[str, str] = {name: "url" for name in params}
        self.complete = "service" not in params  # every default libpq would add is known
        # psycopg reads connect_timeout itself, from the URL or else PGCONNECT_TIMEOUT (no service file).
        if "connect_timeout" not in params and os.environ.get(CONNECT_TIMEOUT_VARIABLE) is not None:
            self.values["connect_timeout"] = os.environ[CONNECT_TIMEOUT_VARIABLE]
            self.origins["connect_timeout"] = CONNECT_TIMEOUT_VARIABLE
        if not self.complete:
            return
        try:
            from psycopg import pq

            defaults = pq.Conninfo.get_defaults()
        except Exception:  # noqa: BLE001 - no libpq: psycopg is checked for before this
            return
        for option in defaults:
            name = option.keyword.decode()
            if name in params or name == "connect_timeout" or option.val is None or option.dispchar == b"*":
                continue  # given in the URL, read by psycopg, not set, or a secret (none is checked)
            value = option.val.decode("utf-8", "replace")
            variable = option.envvar.decode() if option.envvar else ""
            if variable and os.environ.get(variable) == value:
                origin = variable
            elif option.compiled is not None and option.compiled.decode() == value:
                origin = "default"
            else:
                origin = "service"
            self.values[name], self.origins[name] = value, origin

    def get(self, name: str) -> Optional[str]:
        return self.values.get(name)

    def named(self, name: str, quote: bool = True) -> str:
        """How a message names option ``name`` (with its value unless ``quote`` is false)."""
        value = f"={self.values[name]!r}" if quote else ""
        origin = self.origins.get(name, "url")
        if origin == "url":
            return f"{name}{value}" if quote else f"the URL's {name}"
        if origin == "service":
            return f"{name}{value} (from the service file PGSERVICE names)"
        if origin == "default":
            return f"{name}{value} (libpq's default)"
        return f"{origin}{value} (libpq's {name}, which the URL leaves out)"


def _value_problem(params: Mapping[str, str]) -> Optional[str]:
    """What libpq or psycopg would refuse in ``params`` (or in the defaults libpq would add to
    them: :class:`_Values`) before connecting, or None.

    Hosts and ports are never quoted: a password libpq cut short can sit in either.
    """
    values = _Values(params)
    ports = values.get("port") or ""
    for port in ports.split(",") if ports else ():
        if not port.strip():
            continue  # an empty entry means the default port
        number = _integer(port)
        if number is None:
            hint = (" (where a password holds a '/', libpq takes what comes before it for the port: "
                    f"{ENCODING_HINT})") if values.origins.get("port") == "url" else ""
            return f"{values.named('port', quote=False)} is not a number{hint}"
        if not 1 <= number <= 65535:
            return f"{values.named('port', quote=False)} is not a TCP port (1-65535)"
    hosts = [h for h in (values.get("host"), values.get("hostaddr")) if h]
    host_count = max((len(h.split(",")) for h in hosts), default=1)
    port_count = len(ports.split(",")) if ports else 0
    if port_count > 1 and port_count != host_count:
        return f"{port_count} ports given for {host_count} host(s)"
    if len(hosts) == 2 and len(hosts[0].split(",")) != len(hosts[1].split(",")):
        return "host and hostaddr list different numbers of hosts"
    for name, choices in _CHOICES.items():
        value = values.get(name)
        if value is not None and value not in choices:  # an empty value too: libpq refuses ""
            return f"{values.named(name)} is not one of {', '.join(choices)}"
    sslmode = values.get("sslmode") or ("prefer" if values.complete else "require")  # unknown: no refusal
    if values.get("sslnegotiation") == "direct" and sslmode[:1] not in ("r", "v"):
        return (f"{values.named('sslnegotiation')} needs sslmode require, verify-ca or verify-full, "
                f"not {values.named('sslmode') if values.get('sslmode') else repr(sslmode)}")
    versions = {}
    for name in ("ssl_min_protocol_version", "ssl_max_protocol_version"):
        value = values.get(name)
        if value:  # empty: no bound
            if value.lower() not in _TLS_VERSIONS:
                return f"{values.named(name)} is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"
            versions[name] = _TLS_VERSIONS.index(value.lower())
    if len(versions) == 2 and versions["ssl_min_protocol_version"] > versions["ssl_max_protocol_version"]:
        return (f"{values.named('ssl_max_protocol_version')} is below "
                f"{values.named('ssl_min_protocol_version')}")
    problem = _require_auth_problem(values.get("require_auth"))
    if problem is not None:
        return f"{values.named('require_auth')}: {problem}"
    for name in _INTEGERS:
        value = values.get(name)
        if value is not None and _c_int(value) is None:  # an empty value too: libpq refuses ""
            return f"{values.named(name)} is not a whole number (of at most 10 digits)"
    timeout = values.get("connect_timeout")
    if timeout is not None:
        try:
            int(float(timeout))  # as psycopg reads it: "", "inf" and "nan" are refused
        except (ValueError, OverflowError):
            return f"{values.named('connect_timeout')} is not a number of seconds"
    return None


def _require_auth_problem(value: Optional[str]) -> Optional[str]:
    """What libpq refuses in a ``require_auth`` list: an unknown method, one given twice, or
    methods with and without ``!`` mixed."""
    if not value:
        return None
    seen: set[str] = set()
    parts = value.split(",")
    negated = parts[0].startswith("!")
    for part in parts:
        method = part.strip().removeprefix("!")  # stripped: lenient where libpq may be strict
        if part.startswith("!") != negated:
            return "methods with and without '!' cannot be mixed"
        if method not in _AUTH_METHODS:
            return f"{method!r} is not one of {', '.join(_AUTH_METHODS)}"
        if method in seen:
            return f"{method!r} is given twice"
        seen.add(method)
    return None


def _integer(text: str) -> Optional[int]:
    """``text`` as libpq reads an integer option, or None when it does not read as one."""
    return int(text) if _INTEGER.fullmatch(text) else None


def _c_int(text: str) -> Optional[int]:
    """``text`` as libpq reads an integer option into a C ``int``, or None when it does not fit."""
    number = _integer(text)
    return number if number is not None and -2**31 <= number < 2**31 else None


__all__ = ["BLANK", "ENCODING_HINT", "check_postgres_url", "environment_secrets", "redact_url", "scrub",
           "scrub_exception", "url_secrets", "without_secrets"]
