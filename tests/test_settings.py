"""Tests of service.settings: parsing every variable, refusing bad values by name, docs, the secret file."""
from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from model.verdict import Thresholds
from service.settings import (
    SETTINGS,
    Settings,
    SettingsError,
    load_or_create_secret_key,
    load_settings,
    resolve_secret_key,
    settings_doc,
    settings_markdown,
    unknown_variables,
    variable_name,
)

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def test_defaults() -> None:
    s = load_settings({})
    assert s == Settings()
    assert s.data_dir == Path("var") and s.model_path == Path("var/model")
    assert s.database_url == str(Path("var/commentguard.sqlite3"))
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 8000, 2)
    assert (s.max_body_bytes, s.max_batch_items) == (65536, 100)
    assert (s.threshold_unsure, s.threshold_spam, s.threshold_discard) == (None, None, None)
    assert s.mode == "enforce" and not s.log_only
    assert s.secret_key is None
    assert (s.allow_anonymous_json, s.unsure_is_spam, s.store_personal_data) == (False, True, False)
    assert (s.retention_days, s.log_level) == (90, "INFO")


@pytest.mark.parametrize("variable, raw, field, expected", [
    ("COMMENTGUARD_DATA_DIR", "/srv/cg", "data_dir", Path("/srv/cg")),
    ("COMMENTGUARD_MODEL_PATH", "/models/v2", "model_path", Path("/models/v2")),
    ("COMMENTGUARD_MODELS_DIR", "/srv/models", "models_dir", Path("/srv/models")),
    ("COMMENTGUARD_MODEL_CHECK_SECONDS", "0.5", "model_check_seconds", 0.5),
    ("COMMENTGUARD_HOST", "0.0.0.0", "host", "0.0.0.0"),
    ("COMMENTGUARD_PORT", "9000", "port", 9000),
    ("COMMENTGUARD_WORKERS", " 4 ", "workers", 4),
    ("COMMENTGUARD_WORKER_CLASS", "sync", "worker_class", "sync"),
    ("COMMENTGUARD_THREADS", "8", "threads", 8),
    ("COMMENTGUARD_REUSE_PORT", "false", "reuse_port", False),
    ("COMMENTGUARD_SCORING_ENGINE", " numpy ", "scoring_engine", "numpy"),
    ("COMMENTGUARD_MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
    ("COMMENTGUARD_AKISMET_MAX_BODY_BYTES", "2048", "akismet_max_body_bytes", 2048),
    ("COMMENTGUARD_MAX_BATCH_ITEMS", "10", "max_batch_items", 10),
    ("COMMENTGUARD_THRESHOLD_UNSURE", "0.3", "threshold_unsure", 0.3),
    ("COMMENTGUARD_THRESHOLD_SPAM", "0.7", "threshold_spam", 0.7),
    ("COMMENTGUARD_THRESHOLD_DISCARD", "1", "threshold_discard", 1.0),
    ("COMMENTGUARD_MODE", "log_only", "mode", "log_only"),
    ("COMMENTGUARD_MODE", "Log-Only", "mode", "log_only"),
    ("COMMENTGUARD_MODE", "ENFORCE", "mode", "enforce"),
    ("COMMENTGUARD_DATABASE_URL", "postgresql://cg@db/cg", "database_url", "postgresql://cg@db/cg"),
    ("COMMENTGUARD_DATABASE_TIMEOUT", "2.5", "database_timeout", 2.5),
    ("COMMENTGUARD_SECRET_KEY", "0123456789abcdef0123", "secret_key", "0123456789abcdef0123"),
    ("COMMENTGUARD_ALLOW_ANONYMOUS_JSON", "yes", "allow_anonymous_json", True),
    ("COMMENTGUARD_AKISMET_UNSURE_AS_SPAM", "off", "unsure_is_spam", False),
    ("COMMENTGUARD_STORE_PERSONAL_DATA", "1", "store_personal_data", True),
    ("COMMENTGUARD_RETENTION_DAYS", "0", "retention_days", 0),
    ("COMMENTGUARD_SENDER_HISTORY", "off", "sender_history", False),
    ("COMMENTGUARD_SENDER_HISTORY_DAYS", "3650", "sender_history_days", 3650),
    ("COMMENTGUARD_LOG_LEVEL", "debug", "log_level", "DEBUG"),
    # A mode other than off (or forwarding) also needs a key: see test_upstream.py.
    ("COMMENTGUARD_UPSTREAM_MODE", "OFF", "upstream_mode", "off"),
    ("COMMENTGUARD_UPSTREAM_URL", "http://127.0.0.1:9", "upstream_url", "http://127.0.0.1:9"),
    ("COMMENTGUARD_UPSTREAM_KEY", "0123456789ab", "upstream_key", "0123456789ab"),
    ("COMMENTGUARD_UPSTREAM_BUDGET_MS", "500", "upstream_budget_ms", 500),
    ("COMMENTGUARD_UPSTREAM_GRAY_TIERS", "unsure,SPAM", "upstream_gray_tiers", ("unsure", "spam")),
    ("COMMENTGUARD_UPSTREAM_GRAY_BAND", "0.3, 0.8", "upstream_gray_band", (0.3, 0.8)),
    ("COMMENTGUARD_UPSTREAM_BREAKER_FAILURES", "3", "upstream_breaker_failures", 3),
    ("COMMENTGUARD_UPSTREAM_BREAKER_OPEN_SECONDS", "2.5", "upstream_breaker_open_seconds", 2.5),
    ("COMMENTGUARD_UPSTREAM_FORWARD_FEEDBACK", "no", "upstream_forward_feedback", False),
])
def test_every_variable_is_read(variable: str, raw: str, field: str, expected: Any) -> None:
    assert getattr(load_settings({variable: raw}), field) == expected


def test_every_setting_is_covered_by_the_parsing_test() -> None:
    params = test_every_variable_is_read.pytestmark[0].args[1]  # type: ignore[attr-defined]
    assert {p[0] for p in params} == {d.variable for d in settings_doc()}


def test_paths_derive_from_data_dir_unless_set() -> None:
    s = load_settings({"COMMENTGUARD_DATA_DIR": "/srv/cg"})
    assert s.model_path == Path("/srv/cg/model")
    assert s.database_url == "/srv/cg/commentguard.sqlite3"
    s = Settings(data_dir=Path("/a"), model_path=Path("/b/model"), database_url="sqlite:///c.db")
    assert (s.model_path, s.database_url) == (Path("/b/model"), "sqlite:///c.db")


@pytest.mark.parametrize("raw, expected", [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True), (" On ", True),
    ("0", False), ("false", False), ("False", False), ("no", False), ("off", False),
])
def test_boolean_spellings(raw: str, expected: bool) -> None:
    assert load_settings({"COMMENTGUARD_STORE_PERSONAL_DATA": raw}).store_personal_data is expected


def test_empty_value_counts_as_unset() -> None:
    assert load_settings({"COMMENTGUARD_PORT": "", "COMMENTGUARD_SECRET_KEY": "  "}) == Settings()


@pytest.mark.parametrize("variable, raw", [
    ("COMMENTGUARD_PORT", "eighty"), ("COMMENTGUARD_PORT", "0"), ("COMMENTGUARD_PORT", "70000"),
    ("COMMENTGUARD_PORT", "80.5"), ("COMMENTGUARD_WORKERS", "0"), ("COMMENTGUARD_WORKERS", "two"),
    ("COMMENTGUARD_MAX_BODY_BYTES", "0"), ("COMMENTGUARD_MAX_BODY_BYTES", "64k"),
    ("COMMENTGUARD_MAX_BATCH_ITEMS", "-1"), ("COMMENTGUARD_RETENTION_DAYS", "-1"),
    ("COMMENTGUARD_RETENTION_DAYS", "forever"), ("COMMENTGUARD_DATABASE_TIMEOUT", "0.5"),
    ("COMMENTGUARD_DATABASE_TIMEOUT", "3601"), ("COMMENTGUARD_DATABASE_TIMEOUT", "nan"),
    ("COMMENTGUARD_THRESHOLD_UNSURE", "high"), ("COMMENTGUARD_THRESHOLD_SPAM", "1.5"),
    ("COMMENTGUARD_THRESHOLD_DISCARD", "-0.1"), ("COMMENTGUARD_THRESHOLD_SPAM", "nan"),
    ("COMMENTGUARD_MODE", "strict"), ("COMMENTGUARD_LOG_LEVEL", "LOUD"),
    ("COMMENTGUARD_SECRET_KEY", "short"),
    ("COMMENTGUARD_ALLOW_ANONYMOUS_JSON", "maybe"), ("COMMENTGUARD_AKISMET_UNSURE_AS_SPAM", "2"),
    ("COMMENTGUARD_STORE_PERSONAL_DATA", "y"), ("COMMENTGUARD_SCORING_ENGINE", "fortran"),
    # Past these, a timer or a date overflows in a thread, long after start-up.
    ("COMMENTGUARD_MODEL_CHECK_SECONDS", "inf"), ("COMMENTGUARD_MODEL_CHECK_SECONDS", "1e309"),
    ("COMMENTGUARD_MODEL_CHECK_SECONDS", "86401"), ("COMMENTGUARD_RETENTION_DAYS", "1000000"),
    ("COMMENTGUARD_UPSTREAM_BREAKER_OPEN_SECONDS", "inf"),
    ("COMMENTGUARD_SENDER_HISTORY", "sometimes"), ("COMMENTGUARD_SENDER_HISTORY_DAYS", "0"),
    ("COMMENTGUARD_SENDER_HISTORY_DAYS", "3651"),
])
def test_bad_values_raise_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({variable: raw})
    assert info.value.variable == variable
    assert variable in str(info.value)


@pytest.mark.parametrize("field", ["data_dir", "model_path", "models_dir"])
def test_a_directory_setting_naming_a_file_is_refused(tmp_path: Path, field: str) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    variable = f"COMMENTGUARD_{field.upper()}"
    with pytest.raises(SettingsError, match="must be a directory") as info:
        load_settings({"COMMENTGUARD_DATA_DIR": str(tmp_path), variable: str(a_file)})
    assert info.value.variable == variable
    assert load_settings({variable: str(tmp_path / "not-yet")})  # missing is fine: created on first use


def test_threshold_overrides_out_of_order_are_refused() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"COMMENTGUARD_THRESHOLD_UNSURE": "0.8", "COMMENTGUARD_THRESHOLD_SPAM": "0.5"})
    assert info.value.variable == "COMMENTGUARD_THRESHOLD_SPAM"


def test_thresholds_for_merges_overrides_with_the_model() -> None:
    model = Thresholds(0.4, 0.6, 0.9)
    assert Settings().thresholds_for(model) == model
    assert not Settings().has_threshold_overrides
    s = Settings(threshold_spam=0.7)
    assert s.has_threshold_overrides and s.thresholds_for(model) == Thresholds(0.4, 0.7, 0.9)
    with pytest.raises(SettingsError, match="COMMENTGUARD_THRESHOLD_SPAM"):
        Settings(threshold_spam=0.95).thresholds_for(model)


def test_settings_are_frozen_and_hide_credentials() -> None:
    s = Settings(secret_key="x" * 20, database_url="postgresql://u:hunter2@db/cg")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]
    assert "hunter2" not in repr(s) and "x" * 20 not in repr(s)


def test_an_upstream_url_is_quoted_without_its_password() -> None:
    """Found by a probe: "got 'ftp://user:pw0rdXYZ@host/x'" quoted the password."""
    with pytest.raises(SettingsError, match="COMMENTGUARD_UPSTREAM_URL") as raised:
        load_settings({"COMMENTGUARD_UPSTREAM_URL": "ftp://user:pw0rdXYZ@host/x"})
    assert "pw0rdXYZ" not in str(raised.value) and "host/x" in str(raised.value)
    kept = load_settings({"COMMENTGUARD_UPSTREAM_URL": "https://user:pw0rdXYZ@host/x"})
    assert kept.upstream_url == "https://user:pw0rdXYZ@host/x" and "pw0rdXYZ" not in repr(kept)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(SettingsError, match="COMMENTGUARD_WORKERS"):
        Settings(workers=0)
    assert Settings(mode="log_only").log_only


def test_nothing_is_read_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh interpreter: reloading the module here would swap classes under other tests.
    env = {**os.environ, "COMMENTGUARD_PORT": "not a port", "COMMENTGUARD_MODE": "bad"}
    code = "import service.settings, service.app, service.server, commentguard.commands.serve"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("COMMENTGUARD_PORT", "8123")
    assert load_settings().port == 8123


def test_unknown_variables_are_reported() -> None:
    env = {"COMMENTGUARD_PORT": "1", "COMMENTGUARD_WORKER": "3", "COMMENTGUARD_TEST_DATABASE_URL": "x",
           "PATH": "/bin"}
    assert unknown_variables(env) == ["COMMENTGUARD_WORKER"]


# --- documentation ------------------------------------------------------------------------

def test_every_field_is_documented_once() -> None:
    fields = [f.name for f in dataclasses.fields(Settings)]
    assert [s.field for s in SETTINGS] == fields
    docs = settings_doc()
    assert [d.variable for d in docs] == [variable_name(f) for f in fields]
    assert len({d.variable for d in docs}) == len(docs)
    for doc in docs:
        assert doc.variable.startswith("COMMENTGUARD_") and doc.default
        assert doc.description and "\n" not in doc.description
    assert variable_name("unsure_is_spam") == "COMMENTGUARD_AKISMET_UNSURE_AS_SPAM"


def test_markdown_table_lists_every_variable() -> None:
    table = settings_markdown()
    assert all(f"`{d.variable}`" in table for d in settings_doc())


def test_readme_documents_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [d.variable for d in settings_doc() if d.variable not in text]
    assert not missing, f"README.md does not document {missing}; paste service.settings.settings_markdown()"


def test_readme_settings_rows_are_the_codes_rows() -> None:
    """Names alone drifted: the README's rows for COMMENTGUARD_ALLOW_ANONYMOUS_JSON and
    COMMENTGUARD_DATABASE_URL said more than SETTINGS' descriptions. Every row must be the same."""
    readme_rows = [line for line in README.read_text(encoding="utf-8").splitlines()
                   if line.startswith("| `COMMENTGUARD_")]
    for code_row in settings_markdown().splitlines()[2:]:
        name = code_row.split("`")[1]
        rows = [r for r in readme_rows if r.startswith(f"| `{name}` |")]
        assert len(rows) == 1, f"README.md has {len(rows)} settings rows for {name}, not 1"
        if rows[0] != code_row:
            at = next(i for i, (a, b) in enumerate(zip(rows[0] + "\0", code_row + "\0")) if a != b)
            raise AssertionError(
                f"README.md's row for {name} differs from service/settings.py's SETTINGS description "
                f"from character {at}:\n  README: ...{rows[0][max(0, at - 40):at + 80]!r}\n"
                f"  code:   ...{code_row[max(0, at - 40):at + 80]!r}\nChange the description in "
                "SETTINGS, then paste service.settings.settings_markdown() into the README")
    # And the table as a whole, so that a row the code does not have, or another order, fails too.
    assert settings_markdown() + "\n" in README.read_text(encoding="utf-8"), (
        "README.md's Settings table is not service.settings.settings_markdown() as a whole (a row "
        "the code does not have, or rows in another order): paste it into the README")


def test_command_line_help_gives_the_default_of_every_setting_it_names() -> None:
    """`serve --threads` said "(default: COMMENTGUARD_THREADS)", without the number the README gives."""
    import re

    import click
    from click.testing import CliRunner

    from commentguard.cli import COMMANDS, cli

    defaults = {d.variable: d.default for d in settings_doc()}
    paths = []
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        subcommands = sorted(command.commands) if isinstance(command, click.Group) else []
        paths += [[name, sub] for sub in subcommands] or [[name]]
    named = 0
    for path in paths:
        result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=1000)
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        for variable in re.findall(r"\(default: [^()]*?(COMMENTGUARD_\w+)", text):
            named += 1
            assert f"{variable} or {defaults[variable]})" in text, (path, variable)
    assert named >= 6  # serve's five options and check's --model


# --- the secret file ----------------------------------------------------------------------

def test_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "var"
    first = load_or_create_secret_key(data_dir)
    path = data_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and load_or_create_secret_key(data_dir) == first
    assert [p.name for p in data_dir.iterdir()] == ["secret_key"]  # no temporary files left
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_the_sqlite_files_are_the_owners_only(tmp_path: Path) -> None:
    """They hold comments, author names and feedback; they were 0644 under the usual umask."""
    from store import open_store

    data_dir = tmp_path / "fresh" / "var"
    with open_store(str(data_dir / "commentguard.sqlite3"), secret=b"s" * 32) as store:
        store.create_key("https://blog.example")
        files = [p for p in data_dir.iterdir() if p.name.startswith("commentguard.sqlite3")]
        assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_an_upgraded_installs_world_readable_files_are_made_the_owners_only(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Releases before these modes created the data directory 0755 and the database 0644 (a probe
    upgraded such an install: they stayed so, without a word)."""
    from store import open_store
    from store.db import owner_only

    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    database = data_dir / "commentguard.sqlite3"
    with open_store(str(database), secret=b"s" * 32) as store:
        store.create_key("https://blog.example")
    for path in (database, data_dir / "commentguard.sqlite3-wal"):
        if path.exists():
            path.chmod(0o644)
    with caplog.at_level("WARNING", logger="store.db"):
        with open_store(str(database), secret=b"s" * 32) as store:
            assert store.list_keys()
        owner_only(data_dir, 0o700)  # what `commentguard serve` does with the data directory
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert "readable by others (mode 644)" in caplog.text and "readable by others (mode 755)" in caplog.text


def test_permissions_are_left_alone_where_they_are_not_the_services(tmp_path: Path) -> None:
    """A probe pointed the database at another program's config file (made 0600, then refused as
    no database) and the data directory at a shared 1777 one (made 0700)."""
    from store import StoreError, open_store
    from store.db import owner_only

    config = tmp_path / "other.conf"
    config.write_text("not a database, " * 100)
    config.chmod(0o644)
    with pytest.raises(StoreError):
        open_store(str(config), secret=b"s" * 32)
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    owner_only(shared, 0o700)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    target = tmp_path / "target"
    target.mkdir()
    target.chmod(0o755)
    link = tmp_path / "link"
    link.symlink_to(target)
    owner_only(link, 0o700)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_configured_secret_wins(tmp_path: Path) -> None:
    assert resolve_secret_key(Settings(data_dir=tmp_path, secret_key="s" * 16)) == "s" * 16
    assert not (tmp_path / "secret_key").exists()
    generated = resolve_secret_key(Settings(data_dir=tmp_path))
    assert generated == (tmp_path / "secret_key").read_text().strip()


def test_concurrent_first_use_agrees_on_one_secret(tmp_path: Path) -> None:
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(load_or_create_secret_key(tmp_path)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1


def test_short_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("abc\n")
    with pytest.raises(SettingsError, match="COMMENTGUARD_SECRET_KEY"):
        load_or_create_secret_key(tmp_path)
