"""CliRunner tests of `commentguard keys` and `commentguard feedback`.

The commands read the same COMMENTGUARD_* settings as the service and open the
store through :func:`commentguard.context.open_store_from_settings`, so a key
made on the command line authenticates in the store and the app, and feedback
exported here trains with `commentguard train --data`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from commentguard.cli import cli
from commentguard.context import open_store_from_settings
from model.artifact import METADATA_NAME
from model.comment import Comment
from service.auth import KEY_CACHE_SECONDS, key_cache
from service.settings import PREFIX, Settings, load_settings
from store import FeedbackRecord, SecretMismatchError, Store, open_store
from tests.conftest import TEST_SECRET_KEY
from tests.test_cli_training import small_rows

CHECK_ID = "ab" * 16


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """COMMENTGUARD_* pointing into tmp_path (and nothing else set); the settings they give."""
    for name in list(os.environ):
        if name.startswith(PREFIX) and not name.startswith(PREFIX + "TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(PREFIX + "SECRET_KEY", TEST_SECRET_KEY)
    return load_settings()


@pytest.fixture
def store(env: Settings) -> Iterator[Store]:
    with open_store_from_settings(env) as opened:
        yield opened


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def ok(*args: str) -> str:
    """The command's standard output (notes go to standard error)."""
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


# --- keys ----------------------------------------------------------------------------------

def test_keys_create_prints_a_working_key_once(env: Settings, store: Store) -> None:
    out = ok("keys", "create", "--site", "https://blog.example.org/", "--label", "main blog")
    key = out.split("key: ", 1)[1].split()[0]
    assert len(key) == 12 and int(key, 16) >= 0
    assert "cannot be shown again" in out
    info = store.authenticate(key)
    assert info is not None and info.site_url == "https://blog.example.org" and info.label == "main blog"


def test_keys_create_json(env: Settings, store: Store) -> None:
    data = json.loads(ok("keys", "create", "--site", "https://b.example", "--json"))
    assert store.authenticate(data["key"]).id == data["id"]
    assert data["site"] == "https://b.example" and data["revoked"] is False
    assert "cannot be shown again" in data["notice"]


def test_keys_create_needs_a_site(env: Settings) -> None:
    assert run("keys", "create").exit_code == 2
    assert run("keys", "create", "--site", "  ").exit_code == 2
    bad = run("keys", "create", "--site", "javascript:alert(1)")
    assert bad.exit_code == 2 and "--site" in bad.output and "http://" in bad.output
    assert "no keys" in ok("keys", "list")


def test_keys_list_never_shows_the_key(env: Settings, store: Store) -> None:
    key_a, info_a = store.create_key("https://a.example", label="first")
    key_b, _ = store.create_key("https://b.example")
    store.revoke_key(info_a.id)
    text = ok("keys", "list")
    data = json.loads(ok("keys", "list", "--json"))
    for out in (text, json.dumps(data)):
        assert key_a not in out and key_b not in out
    assert [(d["id"], d["site"], d["label"], d["revoked"]) for d in data] == [
        (1, "https://a.example", "first", True), (2, "https://b.example", "", False)]
    assert set(data[0]) == {"id", "site", "ends_with", "label", "created", "revoked", "revoked_at"}
    # The last two characters tell an operator which of a site's keys a customer holds.
    assert [d["ends_with"] for d in data] == [key_a[-2:], key_b[-2:]]
    lines = text.splitlines()
    assert lines[0].split() == ["id", "site", "key", "label", "created", "revoked"]
    assert "https://a.example" in lines[1] and "first" in lines[1] and lines[2].endswith("no")
    assert f"…{key_a[-2:]}" in lines[1] and f"…{key_b[-2:]}" in lines[2]


def test_a_key_for_the_same_site_in_other_case_joins_it(env: Settings, store: Store) -> None:
    # Host names and schemes ignore case: a rotated key typed in capitals made a second site,
    # which could not report the first key's checks and split the site's usage.
    _, first = store.create_key("https://rot.example")
    _, second = store.create_key("HTTPS://Rot.Example/")
    assert second.site_id == first.site_id and second.site_url == "https://rot.example"
    data = json.loads(ok("keys", "create", "--site", "https://ROT.example", "--json"))
    assert data["site"] == "https://rot.example"
    assert len(store.list_sites()) == 1
    _, other = store.create_key("https://rot.example/blog")  # another path stays another site
    assert other.site_id != first.site_id
    _, bob = store.create_key("https://ROT.example/~Bob")  # and a path's case matters
    assert store.create_key("https://rot.example/~bob")[1].site_id != bob.site_id
    assert store.create_key("https://Rot.Example/~Bob")[1].site_id == bob.site_id
    # Only ASCII letters fold (databases' LOWER() disagree beyond them).
    _, books = store.create_key("https://BÜCHER.example")
    assert store.create_key("https://bücher.example")[1].site_id != books.site_id
    assert store.create_key("https://bÜcher.EXAMPLE")[1].site_id == books.site_id


def test_keys_list_when_empty(env: Settings) -> None:
    # No database yet (a mistyped COMMENTGUARD_DATA_DIR looks the same): refused, not created empty.
    missing = run("keys", "list")
    assert missing.exit_code == 1 and "there is no database at" in missing.output
    assert not any(Path(env.data_dir).glob("*.sqlite3"))
    ok("keys", "create", "--site", "https://a.example")
    assert "no keys" not in ok("keys", "list")
    assert "revoked" in ok("keys", "revoke", "1")
    assert json.loads(ok("keys", "list", "--json"))[0]["revoked_at"] is not None


@pytest.mark.parametrize("args", [
    ["keys", "usage"], ["keys", "revoke", "1"], ["sites", "list"], ["checks", "list"], ["checks", "summary"],
    ["feedback", "list"], ["feedback", "add", "--check", "0" * 32, "--label", "spam"],
    ["privacy", "find", "--email", "a@example.org"], ["privacy", "forget", "--yes", "--email", "a@example.org"],
    ["models", "list"], ["upstream", "report"],
])
def test_commands_on_existing_data_refuse_a_missing_database(env: Settings, args: list[str]) -> None:
    """Found by two probes: with a mistyped data directory, `checks list` answered "no checks match" and
    `privacy forget` "deleted 0" (a false "we hold nothing" to a commenter's request), each with exit 0,
    after creating an empty database and a new secret there."""
    result = run(*args)
    assert result.exit_code == 1 and "there is no database at" in result.output, result.output
    assert not any(Path(env.data_dir).glob("*.sqlite3")) and not (Path(env.data_dir) / "secret_key").exists()


def test_keys_revoke_stops_the_key(env: Settings, store: Store) -> None:
    key, info = store.create_key("https://a.example")
    assert f"key {info.id} revoked" in ok("keys", "revoke", str(info.id))
    assert store.authenticate(key) is None
    assert "already revoked" in ok("keys", "revoke", str(info.id))
    missing = run("keys", "revoke", "99")
    assert missing.exit_code == 1 and "no key with id 99" in missing.output


def test_keys_usage_sums_each_site_over_its_keys(env: Settings, store: Store) -> None:
    _, a1 = store.create_key("https://a.example")
    _, a2 = store.create_key("https://a.example")
    _, b1 = store.create_key("https://b.example")
    store.count_usage(a1.id, "2026-10", blog="https://elsewhere.example", api_calls=3, spam=2, ham=1)
    store.count_usage(a2.id, "2026-10", api_calls=1, ham=1, false_positives=1)
    store.count_usage(b1.id, "2026-10", api_calls=9, spam=9)
    store.revoke_key(b1.id)
    data = json.loads(ok("keys", "usage", "--month", "2026-10", "--json"))
    assert data["month"] == "2026-10"
    assert [(r["site"], r["api_calls"], r["spam"], r["ham"], r["false_positives"], r["revoked"])
            for r in data["sites"]] == [("https://b.example", 9, 9, 0, 0, True),
                                        ("https://a.example", 4, 2, 2, 1, False)]
    lines = ok("keys", "usage", "--month", "2026-10").splitlines()
    assert lines[0] == "usage in 2026-10"
    assert lines[1].split() == ["site", "api_calls", "spam", "ham", "missed_spam", "false_positives", "revoked"]
    assert lines[2].split() == ["https://b.example", "9", "9", "0", "0", "0", "yes"]
    this_month = json.loads(ok("keys", "usage", "--json"))
    assert [r["api_calls"] for r in this_month["sites"]] == [0, 0]
    bad = run("keys", "usage", "--month", "October")
    assert bad.exit_code == 2 and "--month" in bad.output and "YYYY-MM" in bad.output


def test_keys_usage_without_sites(env: Settings) -> None:
    open_store_from_settings(env).close()  # a store, empty
    assert "no sites" in ok("keys", "usage")


def test_cli_key_authenticates_in_the_app_until_revoked(env: Settings, make_app: Callable[..., Flask],
                                                        settings: Settings) -> None:
    """The command line and the service open the same store with the same secret."""
    key = json.loads(ok("keys", "create", "--site", "https://a.example", "--json"))["key"]
    app = make_app(data_dir=env.data_dir, database_url=env.database_url, allow_anonymous_json=False)
    client = FlaskClient(app, app.response_class)  # sends only the headers given here
    body = {"comment_content": "Thanks for the post, very helpful."}
    auth = {"Authorization": f"Bearer {key}"}
    assert client.post("/api/v1/check", json=body, headers=auth).status_code == 200
    assert client.post("/api/v1/check", json=body).status_code == 401
    key_id = json.loads(ok("keys", "list", "--json"))[-1]["id"]
    ok("keys", "revoke", str(key_id))
    # Each worker reuses a key's answer for up to KEY_CACHE_SECONDS: the revocation applies after that.
    cache = key_cache(app)
    clock = cache.clock
    cache.clock = lambda: clock() + KEY_CACHE_SECONDS
    assert client.post("/api/v1/check", json=body, headers=auth).status_code == 401


def test_a_store_with_another_secret_is_refused(env: Settings, store: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREFIX + "SECRET_KEY", "another-secret-0123456789")
    result = run("keys", "list")
    assert result.exit_code == 1 and "different secret" in result.output
    with pytest.raises(SecretMismatchError):
        open_store(str(env.database_url), secret=b"another-secret-0123456789")


def test_the_generated_secret_file_is_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without COMMENTGUARD_SECRET_KEY both sides use <data_dir>/secret_key, created on first use."""
    for name in list(os.environ):
        if name.startswith(PREFIX) and not name.startswith(PREFIX + "TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "var"))
    key = json.loads(ok("keys", "create", "--site", "https://a.example", "--json"))["key"]
    assert (tmp_path / "var" / "secret_key").is_file()
    settings = load_settings()
    with open_store_from_settings(settings) as store:
        assert store.authenticate(key) is not None


# --- feedback --------------------------------------------------------------------------------

def add(store: Store, text: str, label: str, **kwargs: object) -> int:
    return store.add_feedback(FeedbackRecord(label=label, comment=Comment(comment_content=text), **kwargs))


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_feedback_list_shows_a_preview(env: Settings, store: Store) -> None:
    long_text = "This is a long comment " * 10
    first = add(store, long_text, "ham", source="json", check_id=CHECK_ID)
    add(store, "Buy pills http://bit.ly/x", "spam", source="akismet")
    add(store, "a test call", "spam", is_test=True)
    data = json.loads(ok("feedback", "list", "--json"))
    assert [d["id"] for d in data] == [first, first + 1]
    assert data[0]["check_id"] == CHECK_ID and data[0]["source"] == "json" and data[0]["label"] == "ham"
    assert len(data[0]["preview"]) == 60 and data[0]["preview"].endswith("…")
    assert data[1]["preview"] == "Buy pills http://bit.ly/x"
    assert len(json.loads(ok("feedback", "list", "--json", "--include-test"))) == 3
    text = ok("feedback", "list")
    assert text.splitlines()[0].split() == ["id", "created", "label", "source", "check", "id", "content"]
    assert CHECK_ID in text and long_text not in text


def test_feedback_export_forget_round_trip(env: Settings, store: Store, tmp_path: Path) -> None:
    keep = add(store, "Thanks, this fixed my build.", "ham", source="json")
    wrong = add(store, "Cheap watches http://replica.example", "spam", check_id=CHECK_ID)
    add(store, "Cheap watches http://replica.example", "ham", check_id=CHECK_ID)  # relabelled
    gone = add(store, "Win money now http://bit.ly/win", "spam")
    add(store, "", "spam")  # a report with no text (a pingback): nothing to learn, left out
    out = tmp_path / "exports" / "feedback.jsonl"
    assert "exported 3 labelled comments" in ok("feedback", "export", "--out", str(out))
    rows = read_jsonl(out)
    assert {(r["comment_content"], r["label"]) for r in rows} == {
        ("Thanks, this fixed my build.", "ham"), ("Cheap watches http://replica.example", "ham"),
        ("Win money now http://bit.ly/win", "spam")}

    assert f"forgot feedback {gone}" in ok("feedback", "forget", str(gone))
    assert "forgot 2 labels" in ok("feedback", "forget", "--check", CHECK_ID)
    assert "exported 1 labelled comment " in ok("feedback", "export", "--out", str(out))
    assert read_jsonl(out) == [{"comment_content": "Thanks, this fixed my build.", "label": "ham"}]
    assert [r.id for r in store.list_feedback() if r.comment.comment_content] == [keep]
    assert wrong not in [r.id for r in store.list_feedback()]


def test_feedback_forget_errors(env: Settings, store: Store) -> None:
    assert run("feedback", "forget").exit_code == 2
    assert run("feedback", "forget", "1", "--check", CHECK_ID).exit_code == 2
    missing = run("feedback", "forget", "7")
    assert missing.exit_code == 1 and "no feedback with id 7" in missing.output
    missing = run("feedback", "forget", "--check", CHECK_ID)
    assert missing.exit_code == 1 and "no feedback for check" in missing.output


@pytest.mark.slow
def test_exported_feedback_trains_a_model(env: Settings, store: Store, tmp_path: Path) -> None:
    """`feedback export` writes the generic training format `train --data` reads."""
    rows = small_rows()
    for text, label in rows:
        add(store, text, label, source="json")
    forgotten = add(store, "Unlearn me: cheap pills at http://bit.ly/unlearn", "spam")
    ok("feedback", "forget", str(forgotten))
    data = tmp_path / "feedback.jsonl"
    assert f"exported {len(rows)} labelled comments" in ok("feedback", "export", "--out", str(data))
    model = tmp_path / "model"
    result = CliRunner().invoke(cli, ["train", "--no-seed", "--data", str(data), "--out", str(model), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    meta = json.loads((model / METADATA_NAME).read_text(encoding="utf-8"))
    assert meta["training"]["rows"] == len(rows)
    assert meta["training"]["spam"] == sum(1 for _, label in rows if label == "spam")
    assert "unlearn" not in data.read_text(encoding="utf-8").lower()


def test_feedback_previews_never_pass_terminal_control_sequences() -> None:
    """Comment text is the spammer's: ESC sequences cleared the screen and retitled the window."""
    from commentguard.commands.feedback import preview

    shown = preview("esc \x1b[2J\x1b[31mRED\x1b]0;title\x07 \u202eevil\x9b1m done")
    assert not any(ch in shown for ch in "\x1b\x07\x9b\u202e")
    assert shown.startswith("esc \N{REPLACEMENT CHARACTER}[2J") and shown.endswith("done")


def test_a_command_that_creates_a_new_database_says_so(env: Settings) -> None:
    """Run from another directory than the server's, `keys create` made a new store and printed a
    key the server had never heard of, without a word."""
    first = CliRunner().invoke(cli, ["keys", "create", "--site", "https://a.example"])
    assert first.exit_code == 0 and "a new one was created" in first.stderr
    assert str(Path(str(env.database_url)).resolve()) in first.stderr
    again = CliRunner().invoke(cli, ["keys", "create", "--site", "https://b.example"])
    assert again.exit_code == 0 and "new one" not in again.stderr


def test_serve_refuses_a_store_no_worker_could_open(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """It started a server that was never ready (every check a 503) with these."""
    from service import server

    monkeypatch.setattr(server, "serve", lambda *a, **k: pytest.fail("started anyway"))
    monkeypatch.setenv(PREFIX + "DATABASE_URL", "mysql://db.example/comments")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1 and "COMMENTGUARD_DATABASE_URL: unsupported database URL scheme" in result.output
    monkeypatch.delenv(PREFIX + "DATABASE_URL")
    ok("keys", "create", "--site", "https://a.example")  # the store, set up with the test secret
    monkeypatch.setenv(PREFIX + "SECRET_KEY", "another-secret-0123456789")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1 and "COMMENTGUARD_SECRET_KEY:" in result.output
    assert "different secret" in result.output


def test_serve_refuses_a_database_a_newer_release_migrated(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """It warned "the workers will open it when it is back", started, and was never ready while
    /healthz said 200 (a rolling downgrade kept such instances)."""
    from service import server
    from store.db import Database

    monkeypatch.setattr(server, "serve", lambda *a, **k: pytest.fail("started anyway"))
    ok("keys", "create", "--site", "https://a.example")  # creates and migrates the store
    db = Database(str(env.database_url))
    try:
        db.run(lambda tx: tx.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                                     "VALUES (999, 'from the future', ?)", ("2030-01-01T00:00:00+00:00",)))
    finally:
        db.close()
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1 and "COMMENTGUARD_DATABASE_URL:" in result.output
    assert "newer release" in result.output and "when it is back" not in result.output


@pytest.mark.parametrize("url", ["postgresql://postgres:pw-7731@127.0.0.1:abc/x",
                                 "postgresql://postgres:pw-7731@127.0.0.1:5432/postgres?sslmode=bogus"])
def test_serve_refuses_a_postgresql_url_no_connection_could_use(env: Settings, monkeypatch: pytest.MonkeyPatch,
                                                                url: str) -> None:
    """It warned "the workers will open it when it is back", started, and answered 503 for good."""
    from service import server

    monkeypatch.setattr(server, "serve", lambda *a, **k: pytest.fail("started anyway"))
    monkeypatch.setenv(PREFIX + "DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1 and "COMMENTGUARD_DATABASE_URL: " in result.output
    assert "pw-7731" not in result.output and "when it is back" not in result.output


def test_serve_starts_when_the_database_is_only_down(env: Settings, monkeypatch: pytest.MonkeyPatch,
                                                     model_dir: Path) -> None:
    """The same URL works once the server is back: a warning, and the workers open it then."""
    from service import server
    from tests.conftest import free_port

    served: list[object] = []
    monkeypatch.setattr(server, "serve", lambda *a, **k: served.append(a))
    monkeypatch.setenv(PREFIX + "MODEL_PATH", str(model_dir))
    monkeypatch.setenv(PREFIX + "PORT", str(free_port()))
    monkeypatch.setenv(PREFIX + "DATABASE_URL", f"postgresql://postgres:pw-7731@127.0.0.1:{free_port()}/x")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    assert "when it is back" in result.output and "pw-7731" not in result.output and len(served) == 1
    # It said "(MigrationError)": nothing about the schema failed, the server is only down.
    assert "the database is unavailable now (cannot connect" in result.output, result.output
    assert "Migration" not in result.output and "migration" not in result.output


def test_a_command_says_the_database_is_unreachable_not_that_a_migration_failed(
        env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv(PREFIX + "DATABASE_URL", f"postgresql://postgres:pw-7731@127.0.0.1:{free_port()}/x")
    result = CliRunner().invoke(cli, ["keys", "list"])
    assert result.exit_code == 1 and "cannot connect to the postgresql database" in result.output
    assert "migration" not in result.output and "pw-7731" not in result.output


def test_serve_with_gevent_missing_names_the_setting_and_the_extra(env: Settings,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn's own traceback said "gevent worker requires gevent 24.10.1 or higher"."""
    import sys

    monkeypatch.setitem(sys.modules, "gevent", None)  # as if it were not installed
    monkeypatch.setenv(PREFIX + "WORKER_CLASS", "gevent")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "COMMENTGUARD_WORKER_CLASS=gevent needs the gevent package" in result.output


def test_serve_with_gevent_missing_names_the_flag_that_asked_for_it(env: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """It named COMMENTGUARD_WORKER_CLASS, which was not set: the flag had asked for gevent."""
    import sys

    monkeypatch.setitem(sys.modules, "gevent", None)
    result = CliRunner().invoke(cli, ["serve", "--worker-class", "gevent"])
    assert result.exit_code == 1
    assert "--worker-class gevent needs the gevent package" in result.output
    assert "COMMENTGUARD_WORKER_CLASS" not in result.output


@pytest.mark.parametrize("check_seconds, says", [
    ("", "running instances switch to it within 2 s"),
    ("0", "hot reload is off (COMMENTGUARD_MODEL_CHECK_SECONDS=0): running workers keep the model they serve"),
])
def test_activate_and_rollback_say_what_running_workers_do(env: Settings, store: Store, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, check_seconds: str,
                                                          says: str) -> None:
    """With hot reload off they still said "running instances switch within a few seconds"; the
    workers' model watcher does not look at the registry then, and only a worker that starts does."""
    from tests.test_moderator_loop import tiny_model

    monkeypatch.setenv(PREFIX + "MODEL_CHECK_SECONDS", check_seconds)
    first, second = tmp_path / "models" / "first", tmp_path / "models" / "second"
    assert store.activate_if_none(tiny_model(first, "first"), str(first), "test", "first")
    store.register_model(tiny_model(second, "second", flip=True), str(second))
    activated = ok("models", "activate", "second")
    assert activated.startswith("second is now the active model; ") and says in activated
    rolled_back = ok("models", "rollback")
    assert rolled_back.startswith("rolled back: first is the active model again; ") and says in rolled_back
    assert "a few seconds" not in activated + rolled_back


def test_upstream_report_with_no_answers_says_so(env: Settings) -> None:
    open_store_from_settings(env).close()  # a store, empty
    shown = ok("upstream", "report")
    assert "no answers yet" in shown and "None" not in shown


def test_add_tables_says_what_it_did_and_why_it_could_not(env: Settings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    import errno
    import shutil

    from commentguard.commands import models as models_command

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    assert "has its serving tables already" in ok("models", "add-tables", str(copy))

    def read_only(_path: object) -> dict[str, object]:
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(models_command, "add_tables", read_only)
    result = run("models", "add-tables", str(copy))
    assert result.exit_code == 1 and "cannot write the tables into" in result.output
    assert "Traceback" not in result.output
