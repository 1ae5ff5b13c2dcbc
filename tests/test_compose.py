"""compose.yaml's promise that POSTGRES_PASSWORD may be "any long random string".

It put ${POSTGRES_PASSWORD} into COMMENTGUARD_DATABASE_URL unencoded: a password holding '/'
(half of `openssl rand -base64` outputs) or '@' was cut by libpq, and the instances never
connected (found by a probe, 2026-11-28). The password now reaches libpq as PGPASSWORD.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg import pq

from store.pg_url import check_postgres_url

REPO = Path(__file__).resolve().parent.parent
#: Every character a URL reserves, and those base64 uses.
NASTY_PASSWORD = "Zm9v/K3x+Q@w?r#s%zz:t==$"


def _check_compose() -> Any:
    spec = importlib.util.spec_from_file_location("check_compose", REPO / "deploy" / "check_compose.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """``value`` with compose's ``${NAME}``, ``${NAME:?message}`` and ``${NAME:-default}`` filled in."""
    def one(match: re.Match[str]) -> str:
        name, op, word = match[1], match[2], match[3]
        if variables.get(name):
            return variables[name]
        assert op == ":-", f"{name} would stop compose: {word}"
        return word

    return re.sub(r"\$\{(\w+)(?:(:[?-])([^}]*))?\}", one, value)


def test_the_compose_file_keeps_its_promises() -> None:
    _check_compose().check(REPO / "compose.yaml")


def test_an_instance_gets_any_password_the_postgres_service_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    variables = {"POSTGRES_PASSWORD": NASTY_PASSWORD, "COMMENTGUARD_SECRET_KEY": "k" * 32}
    environment = {name: _interpolate(str(value), variables)
                   for name, value in doc["services"]["commentguard-1"]["environment"].items()}
    server = _interpolate(doc["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"], variables)
    assert server == NASTY_PASSWORD
    url = environment["COMMENTGUARD_DATABASE_URL"]
    check_postgres_url(url)  # refused when the password was put into it
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # What libpq sends when it connects with this URL in this environment.
    given = {d.keyword: d.val for d in pq.Conninfo.parse(url.encode())}
    defaults = {d.keyword: d.val for d in pq.Conninfo.get_defaults()}
    password = given.get(b"password") or defaults.get(b"password")
    assert password is not None and password.decode() == NASTY_PASSWORD
