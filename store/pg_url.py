"""Checking a ``postgresql://`` URL before connecting: a URL no connection could ever use is a
configuration error (:class:`StoreConfigError`), not a database that is down.

libpq takes a URL with a port of ``abc`` or ``sslmode=bogus`` apart without complaint and refuses
it only when asked to connect; a server that is merely down fails at the same moment. Told
apart by the error alone, the two looked the same: ``commentguard serve`` started, warned that
the store would be opened when it was back, and stayed not ready for good. Here the URL is
parsed as libpq parses it (:func:`psycopg.conninfo.conninfo_to_dict`, which opens nothing),
and the values libpq (or psycopg) refuses before any network traffic are checked as they
check them. Messages never quote the URL's password.
"""
from __future__ import annotations

import re
from typing import Mapping, Optional
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


#: A password given as a query parameter (``?password=...``) rather than before the host.
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&]*)")


def redact_url(target: str) -> str:
    """``target`` with a URL's user and password replaced by ``…`` (a path is returned as it is)."""
    if "://" not in target:
        return target
    if "@" in target:
        scheme, rest = target.split("://", 1)
        target = f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
    return _QUERY_PASSWORD.sub(r"\1…", target)


def check_postgres_url(url: str) -> None:
    """Raise :class:`StoreConfigError` when no connection could ever be made with ``url``.

    A URL that only fails against the server (a wrong password, a database that does not
    exist, a host that is down or unknown) passes: that may be mended without changing it.
    """
    try:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError as exc:
        raise StoreConfigError("PostgreSQL storage needs psycopg: pip install 'commentguard[postgres]'") from exc
    try:
        params = conninfo_to_dict(url)
    except ProgrammingError as exc:
        # libpq's words can quote the URL or a piece of it (the password among them).
        raise StoreConfigError(f"not a valid PostgreSQL URL ({_without_secrets(str(exc).strip(), url)}): "
                               f"{redact_url(url)}") from None
    problem = _value_problem({k: str(v) for k, v in params.items() if v is not None})
    if problem is not None:
        raise StoreConfigError(f"{problem}, in {redact_url(url)}")


def _value_problem(params: Mapping[str, str]) -> Optional[str]:
    """What libpq or psycopg would refuse in ``params`` before connecting, or None."""
    ports = params.get("port", "")
    for port in ports.split(",") if ports else ():
        if not port.strip():
            continue  # an empty entry means the default port
        number = _integer(port)
        if number is None:
            return f"the port {port!r} is not a number"
        if not 1 <= number <= 65535:
            return f"the port {port!r} is not a TCP port (1-65535)"
    hosts = [h for h in (params.get("host"), params.get("hostaddr")) if h]
    host_count = max((len(h.split(",")) for h in hosts), default=1)
    port_count = len(ports.split(",")) if ports else 0
    if port_count > 1 and port_count != host_count:
        return f"{port_count} ports given for {host_count} host(s)"
    if len(hosts) == 2 and len(hosts[0].split(",")) != len(hosts[1].split(",")):
        return "host and hostaddr list different numbers of hosts"
    for name, choices in _CHOICES.items():
        value = params.get(name)
        if value and value not in choices:
            return f"{name}={value!r} is not one of {', '.join(choices)}"
    for name in ("ssl_min_protocol_version", "ssl_max_protocol_version"):
        value = params.get(name)
        if value and value.lower() not in _TLS_VERSIONS:
            return f"{name}={value!r} is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"
    for name in _INTEGERS:
        value = params.get(name)
        if value and value.strip() and _integer(value) is None:
            return f"{name}={value!r} is not a whole number"
    timeout = params.get("connect_timeout")
    if timeout:
        try:
            float(timeout)  # psycopg reads it as int(float(value)) and refuses anything else
        except ValueError:
            return f"connect_timeout={timeout!r} is not a number of seconds"
    return None


def _integer(text: str) -> Optional[int]:
    """``text`` as libpq reads an integer option, or None when it does not read as one."""
    return int(text) if _INTEGER.fullmatch(text) else None


def _without_secrets(message: str, url: str) -> str:
    """``message`` with ``url`` redacted and the password in it (as written and decoded) blanked out."""
    message = message.replace(url, redact_url(url))
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    secrets: set[str] = set()
    # libpq ends the user information at the first "@"; a person may have meant the last one.
    for userinfo in {authority.split("@", 1)[0], authority.rsplit("@", 1)[0]} if "@" in authority else ():
        if ":" in userinfo:
            password = userinfo.split(":", 1)[1]
            secrets |= {password, unquote(password)}
    for match in _QUERY_PASSWORD.finditer(url):
        secrets |= {match[2], unquote(match[2])}
    for secret in sorted(secrets - {""}, key=len, reverse=True):
        message = message.replace(secret, "…")
    return message


__all__ = ["check_postgres_url", "redact_url"]
