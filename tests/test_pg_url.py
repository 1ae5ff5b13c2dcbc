"""PostgreSQL URLs: what is refused before connecting, and what no message may show.

Found by a probe (2026-11-28): a password holding '/' (half of `openssl rand -base64` outputs)
was quoted as "the port 'Zm9vYmFy' is not a number"; one holding '@' passed, and the
unauthenticated /readyz then said "failed to resolve host 'Zr9SECRETTAIL@127.0.0.1'";
`?sslpassword=` and a mis-cased `?PASSWORD=` were shown in full.
"""
from __future__ import annotations

import dataclasses
import os
import traceback
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

import service.app as app_module
from commentguard.cli import cli
from service.app import close_app, create_app
from service.settings import PREFIX, Settings
from store import StoreConfigError, StoreDatabaseError, open_store
from store.db import Database
from store.pg_url import check_postgres_url, redact_url, scrub, url_secrets
from tests.conftest import TEST_SECRET_KEY

SECRET = b"test-secret-0123456789abcdef"

#: Each URL, and the pieces of its secrets that no message may show.
CUT_PASSWORDS = [
    # '/': libpq takes "commentguard" for the host, "Zm9vYmFy" for the port, the rest for the database.
    ("postgresql://commentguard:Zm9vYmFy/K3xQ+w==@127.0.0.1:5432/commentguard", ("Zm9vYmFy", "K3xQ")),
    # The same with digits before the '/': a port libpq would take, and a database name "K3xQ+w==@…".
    ("postgresql://commentguard:48213/K3xQ+w==@127.0.0.1:5432/commentguard", ("48213", "K3xQ")),
    # '@': libpq ends the password at the first one and takes the rest for the host name.
    ("postgresql://commentguard:Pq7x@Zr9SECRETTAIL@127.0.0.1:5432/commentguard", ("Pq7x", "Zr9SECRET")),
    # '/' and '?': the rest of the password becomes a query parameter libpq quotes.
    ("postgresql://commentguard:Ab9/cd?Zr9SECRETTAIL@127.0.0.1:5432/commentguard", ("Ab9/", "Zr9SECRET")),
    # '/', '@' and '?' together (a password manager's symbols): the query libpq sees is the password's.
    ("postgresql://commentguard:Zm9v/K3x+Q@w?r#s%zz:t==$@127.0.0.1:5432/commentguard", ("Zm9v", "K3x", "r#s", "zz:t")),
    # '%' not followed by two hex digits: libpq quotes the password it cannot decode.
    ("postgresql://commentguard:Zr9SECRET%zz@127.0.0.1:5432/commentguard", ("Zr9SECRET",)),
]


@pytest.mark.parametrize("url, pieces", CUT_PASSWORDS)
def test_a_password_libpq_would_cut_is_refused_without_showing_any_piece_of_it(url: str,
                                                                              pieces: tuple[str, ...]) -> None:
    with pytest.raises(StoreConfigError) as raised:
        open_store(url, secret=SECRET)
    message = str(raised.value)
    assert "percent-encode" in message, message
    assert not [piece for piece in pieces if piece in message], message
    assert "127.0.0.1:5432/commentguard" in message  # where it was meant to go is still said


@pytest.mark.parametrize("url, secret", [
    ("postgresql://u@127.0.0.1:5432/x?sslpassword=KeyPassphrase1&sslmode=bogus", "KeyPassphrase1"),
    ("postgresql://u@127.0.0.1:5432/x?PASSWORD=Hunter2Secret", "Hunter2Secret"),
    ("postgresql://u@127.0.0.1:5432/x?oauth_client_secret=Hunter2Secret&sslmode=bogus", "Hunter2Secret"),
])
def test_every_query_parameter_named_for_a_password_is_redacted(url: str, secret: str) -> None:
    with pytest.raises(StoreConfigError) as raised:
        open_store(url, secret=SECRET)
    assert secret not in str(raised.value) and "127.0.0.1:5432/x?" in str(raised.value)
    assert secret not in redact_url(url)


@pytest.mark.parametrize("url, tail", [
    ("postgresql://postgres@127.0.0.1:5432/postgres?password=Xk3&9zQpLm", "9zQpLm"),
    ("postgresql://postgres@127.0.0.1:5432/postgres?password=Kq7&Vv9Ww8=1", "Vv9Ww8"),
    ("postgresql://postgres@127.0.0.1:5432/postgres?sslpassword=Kq7&Vv9Ww8&sslmode=require", "Vv9Ww8"),
    ("postgresql://postgres@127.0.0.1:5432/postgres?password=abcd=efgh&ijkl", "ijkl"),
])
def test_a_query_password_holding_an_ampersand_shows_no_tail(url: str, tail: str) -> None:
    """libpq reads the tail after an unencoded '&' as a parameter of its own and quoted it, and
    the redacted URL showed it too."""
    with pytest.raises(StoreConfigError) as raised:
        open_store(url, secret=SECRET)
    assert tail not in str(raised.value) and tail not in redact_url(url)
    assert tail in url_secrets(url)


def test_a_query_password_ends_where_the_next_parameter_starts() -> None:
    url = "postgresql://u@db.example/x?password=Kq7%26Vv9Ww8&sslmode=require"
    assert redact_url(url) == "postgresql://…@db.example/x?password=…&sslmode=require"


def test_an_at_sign_in_the_query_is_not_taken_for_a_login_part() -> None:
    url = "postgresql://db.example:5432/x?user=me@corp&sslmode=require"
    assert redact_url(url) == url and url_secrets(url) == frozenset()


def test_a_driver_error_never_shows_the_password_pieces_or_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    """Driver errors quote host names, ports and database names: the pieces of a cut password,
    as in "failed to resolve host 'Zr9SECRETTAIL@127.0.0.1'". A traceback prints the driver's
    error too, as the cause of the store's."""
    monkeypatch.setenv("PGPASSWORD", "Env-Secret-4471")
    db = Database("postgresql://commentguard:Pq7x-Zr9SECRETTAIL@127.0.0.1:5432/commentguard")
    words = "password Pq7x-Zr9SECRETTAIL refused; PGPASSWORD Env-Secret-4471 refused"

    def refuse() -> Any:
        raise psycopg.OperationalError(words)

    monkeypatch.setattr(db, "_connect", refuse)
    with pytest.raises(StoreDatabaseError) as raised:
        db.read(lambda tx: tx.fetchall("SELECT 1"))
    shown = "".join(traceback.format_exception(raised.value))
    assert "cannot connect" in shown and "refused" in shown
    assert "Zr9SECRET" not in shown and "Pq7x" not in shown and "Env-Secret" not in shown, shown


@pytest.mark.parametrize("url, words", [
    (CUT_PASSWORDS[0][0], "failed to resolve host 'commentguard': port Zm9vYmFy, database "
                          "\"K3xQ+w==@127.0.0.1:5432/commentguard\" (K3xQ+w%3D%3D)"),
    (CUT_PASSWORDS[1][0], 'connection to server at "commentguard", port 48213 failed'),
    (CUT_PASSWORDS[2][0], "failed to resolve host 'Zr9SECRETTAIL@127.0.0.1': [Errno -2] Name or service "
                          "not known (password Pq7x for user commentguard)"),
])
def test_the_pieces_libpq_cuts_a_password_into_are_blanked_out_of_driver_words(url: str, words: str) -> None:
    """What psycopg and libpq said about the probe's URLs, had they been let through."""
    shown = scrub(words, url_secrets(url))
    assert not [piece for piece in ("Zm9vYmFy", "K3xQ", "48213", "Zr9SECRET", "Pq7x") if piece in shown], shown
    assert "failed" in shown and "commentguard" in shown  # the user name is no secret


@pytest.mark.parametrize("url, pieces", CUT_PASSWORDS[:3])
def test_readyz_and_the_log_never_show_a_piece_of_the_password(settings: Settings, url: str,
                                                               pieces: tuple[str, ...],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """/readyz answers anyone: its reason said "failed to resolve host 'Zr9SECRETTAIL@127.0.0.1'"."""
    app = create_app(dataclasses.replace(settings, database_url=url))
    try:
        answer = app.test_client().get("/readyz")
        assert answer.status_code == 503
        shown = answer.get_data(as_text=True) + caplog.text
        assert "store could not be opened" in shown and "percent-encode" in shown
        assert not [piece for piece in pieces if piece in shown], shown
    finally:
        close_app(app)


def test_readyz_blanks_the_password_out_of_a_store_error_that_quotes_it(settings: Settings,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever path a driver's words take into a store error, /readyz blanks the URL's secrets."""
    url = "postgresql://commentguard:Zr9SECRETTAIL@127.0.0.1:5432/commentguard"

    def quoting(*args: Any, **kwargs: Any) -> Any:
        raise StoreDatabaseError("cannot connect: the server said 'Zr9SECRETTAIL' and '%s'" % url)

    monkeypatch.setattr(app_module, "open_store", quoting)
    app = create_app(dataclasses.replace(settings, database_url=url))
    try:
        reason = app.test_client().get("/readyz").get_json()["reason"]
        assert "cannot connect" in reason and "Zr9SECRET" not in reason, reason
    finally:
        close_app(app)


@pytest.mark.parametrize("args", [["keys", "list"], ["serve"]])
def test_the_command_line_names_the_setting_and_never_a_piece_of_the_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    """`commentguard keys list` printed "the port 'Zm9vYmFy' is not a number" too."""
    for name in list(os.environ):
        if name.startswith(PREFIX) and not name.startswith(PREFIX + "TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(PREFIX + "SECRET_KEY", TEST_SECRET_KEY)
    url, pieces = CUT_PASSWORDS[0]
    monkeypatch.setenv(PREFIX + "DATABASE_URL", url)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "percent-encode" in result.output, result.output
    assert not [piece for piece in pieces if piece in result.output], result.output


def test_names_inside_the_password_are_still_shown() -> None:
    """A short user or database name the password happens to contain is no piece of it."""
    url = "postgresql://u:pw-u-db-x@db.example/db"
    shown = scrub('password authentication failed for user "u" on database "db"', url_secrets(url))
    assert shown == 'password authentication failed for user "u" on database "db"'


# --- what libpq would refuse on connecting, from the URL or its environment -----------------

@pytest.fixture
def no_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No PG* variable of the machine running the tests: each test sets its own."""
    for name in list(os.environ):
        if name.startswith("PG"):
            monkeypatch.delenv(name)
    return monkeypatch


BASE = "postgresql://u:pw-7731@127.0.0.1:5432/x"


@pytest.mark.parametrize("variables, named", [
    ({"PGSSLMODE": "bogus"}, "PGSSLMODE='bogus'"),
    ({"PGSSLMODE": ""}, "PGSSLMODE=''"),
    ({"PGGSSENCMODE": "always"}, "PGGSSENCMODE='always'"),
    ({"PGTARGETSESSIONATTRS": "writable"}, "PGTARGETSESSIONATTRS='writable'"),
    ({"PGSSLMAXPROTOCOLVERSION": "TLSv1.1"}, "PGSSLMAXPROTOCOLVERSION='TLSv1.1'"),  # below libpq's minimum
    ({"PGREQUIREAUTH": "scram"}, "PGREQUIREAUTH='scram'"),
    ({"PGCONNECT_TIMEOUT": "inf"}, "PGCONNECT_TIMEOUT='inf'"),
])
def test_libpq_environment_variables_are_checked_as_the_url_is(no_libpq_environment: pytest.MonkeyPatch,
                                                               variables: dict[str, str], named: str) -> None:
    """libpq takes what the URL leaves out from PG* variables: PGSSLMODE=bogus bypassed the check,
    and serve started a server that was never ready."""
    for name, value in variables.items():
        no_libpq_environment.setenv(name, value)
    with pytest.raises(StoreConfigError) as raised:
        open_store(BASE, secret=SECRET)
    assert named in str(raised.value) and "pw-7731" not in str(raised.value)


def test_a_port_from_the_environment_is_checked_and_not_quoted(no_libpq_environment: pytest.MonkeyPatch) -> None:
    no_libpq_environment.setenv("PGPORT", "Zm9vYmFy")
    with pytest.raises(StoreConfigError, match="PGPORT .* is not a number") as raised:
        open_store("postgresql://u@127.0.0.1/x", secret=SECRET)
    assert "Zm9vYmFy" not in str(raised.value)


def test_the_service_file_pgservice_names_is_checked(no_libpq_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    services = tmp_path / "pg_service.conf"
    services.write_text("[commentguard]\nsslmode=bogus\n", encoding="utf-8")
    no_libpq_environment.setenv("PGSERVICEFILE", str(services))
    no_libpq_environment.setenv("PGSERVICE", "commentguard")
    with pytest.raises(StoreConfigError, match="service file"):
        open_store(BASE, secret=SECRET)


@pytest.mark.parametrize("query, problem", [
    ("connect_timeout=", "connect_timeout=''"),
    ("connect_timeout=inf", "connect_timeout='inf'"),
    ("connect_timeout=nan", "connect_timeout='nan'"),
    ("connect_timeout=1e400", "connect_timeout='1e400'"),
    ("keepalives=99999999999", "keepalives='99999999999'"),  # beyond a C int
    ("keepalives_idle=", "keepalives_idle=''"),
    ("sslmode=", "sslmode=''"),
    ("gssencmode=", "gssencmode=''"),
    ("sslnegotiation=direct", "needs sslmode require"),  # libpq's default sslmode is prefer
    ("ssl_min_protocol_version=TLSv1.3&ssl_max_protocol_version=TLSv1.2", "is below"),
    ("require_auth=password,!md5", "cannot be mixed"),
    ("require_auth=md5,md5", "given twice"),
])
def test_values_libpq_or_psycopg_refuse_on_connecting_are_refused_before(no_libpq_environment: pytest.MonkeyPatch,
                                                                         query: str, problem: str) -> None:
    """Each passed the check and then failed every connection, as a server that is down does."""
    with pytest.raises(StoreConfigError) as raised:
        open_store(f"{BASE}?{query}", secret=SECRET)
    assert problem in str(raised.value)


@pytest.mark.parametrize("query, variables", [
    ("sslmode=disable", {"PGSSLMODE": "bogus"}),  # the URL's own value wins
    ("keepalives=-2147483648&keepalives_idle= 30 ", {}),
    ("connect_timeout=-1", {"PGCONNECT_TIMEOUT": "inf"}),
    ("sslnegotiation=direct", {"PGSSLMODE": "verify-full"}),
    ("ssl_max_protocol_version=TLSv1.1&ssl_min_protocol_version=tlsv1", {}),
    ("require_auth=!password,!md5", {"PGCONNECT_TIMEOUT": "2.5"}),
    ("service=elsewhere", {"PGSSLMODE": "bogus"}),  # that service file would come first: not read here
])
def test_values_libpq_takes_are_not_refused(no_libpq_environment: pytest.MonkeyPatch, query: str,
                                            variables: dict[str, str]) -> None:
    for name, value in variables.items():
        no_libpq_environment.setenv(name, value)
    check_postgres_url(f"{BASE}?{query}")


def test_pgconnect_timeout_is_honoured(no_libpq_environment: pytest.MonkeyPatch) -> None:
    """The store's own 5 s default was passed to every connection, overriding PGCONNECT_TIMEOUT."""
    import store.db

    given: list[dict[str, Any]] = []
    no_libpq_environment.setattr(psycopg, "connect", lambda url, **kwargs: given.append(kwargs))
    store.db._connect_postgres(BASE)
    no_libpq_environment.setenv("PGCONNECT_TIMEOUT", "30")
    store.db._connect_postgres(BASE)
    assert given[0]["connect_timeout"] == store.db.PG_CONNECT_TIMEOUT and "connect_timeout" not in given[1]


def test_serve_names_the_libpq_variable_it_refuses(tmp_path: Path, no_libpq_environment: pytest.MonkeyPatch) -> None:
    monkeypatch = no_libpq_environment
    for name in list(os.environ):
        if name.startswith(PREFIX) and not name.startswith(PREFIX + "TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(PREFIX + "SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv(PREFIX + "DATABASE_URL", BASE)
    monkeypatch.setenv("PGSSLMODE", "bogus")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1 and "PGSSLMODE='bogus'" in result.output, result.output
    assert "when it is back" not in result.output
