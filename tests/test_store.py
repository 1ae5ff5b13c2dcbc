"""Tests of the storage layer, each run against SQLite and PostgreSQL.

The PostgreSQL cases need ``COMMENTGUARD_TEST_DATABASE_URL`` (any database on the
server; the tests create and drop their own throwaway database, and give every
test a fresh schema inside it). Without it they skip.
"""
from __future__ import annotations

import json
import multiprocessing
import re
import threading
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

try:
    import psycopg
except ImportError:  # pragma: no cover - the postgres extra
    psycopg = None  # type: ignore[assignment]

from model.comment import TEXT_FIELDS, Comment
from model.verdict import Reason, Verdict
from store import (
    CheckRecord,
    FeedbackRecord,
    InvalidRecordError,
    MigrationError,
    SecretMismatchError,
    Store,
    StoreBusyError,
    StoreClosedError,
    StoreCommitUnknownError,
    StoreConfigError,
    StoreDatabaseError,
    StoreDataError,
    StoreError,
    StoreUnavailableError,
    open_store,
)
from store.db import Database
from store.feedback import Forgotten
from store.keys import MAX_BLOG_CHARS, normalise_site_url
from store.migrations import MIGRATIONS, Migration, applied_versions, migrate
from store.privacy import Privacy
from store.records import COMMENT_COLUMNS, new_check_id

SECRET = b"test-secret-0123456789abcdef"
MONTH = "2025-03"


# --- fixtures ---------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a fresh SQLite file, or a fresh schema in the session's PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url, secret=SECRET) as opened:
        yield opened


def _comment(content: str = "Great post, thanks!", **fields: Any) -> Comment:
    base: dict[str, Any] = {
        "comment_author": "Alice",
        "comment_author_email": "alice@example.org",
        "user_ip": "203.0.113.7",
        "blog": "https://blog.example.org",
    }
    base.update(fields)
    return Comment(comment_content=content, **base)


def _check(comment: Comment, *, created: datetime | None = None, site_id: int | None = None,
           tier: str = "spam") -> CheckRecord:
    verdict = Verdict(tier, 0.91, (Reason("shortened link", 1.2),), "m-1")
    return CheckRecord.from_verdict(comment, verdict, surface="akismet", site_id=site_id, created=created)


def _rows(store: Store, table: str) -> list[dict[str, Any]]:
    return store.database.read(lambda tx: tx.fetchall(f"SELECT * FROM {table}"))


def _run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- opening ----------------------------------------------------------------

@pytest.mark.parametrize("target", ["", ":memory:", "mysql://db/x", "sqlite:memory"])
def test_unusable_targets_are_refused(target: str) -> None:
    with pytest.raises(StoreConfigError):
        open_store(target, secret=SECRET)


def test_short_or_text_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError):
        open_store(str(tmp_path / "a.db"), secret=b"short")
    with pytest.raises(StoreConfigError):
        open_store(str(tmp_path / "a.db"), secret="a text secret, not bytes")  # type: ignore[arg-type]


def test_sqlite_url_form_and_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "cg.db"
    with open_store(f"sqlite:///{path}", secret=SECRET) as store:
        key, _ = store.create_key("https://a.example")
    assert path.exists()
    with open_store(str(path), secret=SECRET) as store:
        assert store.authenticate(key) is not None


def test_different_secret_is_refused(store_url: str) -> None:
    with open_store(store_url, secret=SECRET) as store:
        store.create_key("https://a.example")
    with pytest.raises(SecretMismatchError):
        open_store(store_url, secret=b"another-secret-0123456789")


def test_closed_store_raises(store: Store) -> None:
    store.close()
    with pytest.raises(StoreClosedError):
        store.list_keys()


# --- keys and sites -----------------------------------------------------------

def test_create_authenticate_revoke(store: Store) -> None:
    key, info = store.create_key("https://blog.example.org/", label="main")
    assert len(key) == 12 and all(c in "0123456789abcdef" for c in key)
    assert (info.site_url, info.label, info.hint, info.revoked) == ("https://blog.example.org", "main", key[-2:], False)
    assert info.created.tzinfo is not None and info.created.utcoffset() == timedelta(0)
    assert store.authenticate(key) == info
    assert store.revoke_key(info.id) is True
    assert store.revoke_key(info.id) is False
    assert store.revoke_key(999_999) is False
    assert store.authenticate(key) is None
    listed = store.list_keys()
    assert [k.id for k in listed] == [info.id] and listed[0].revoked
    assert store.list_keys(include_revoked=False) == []


def test_keys_share_a_site_and_differ(store: Store) -> None:
    key1, info1 = store.create_key("https://blog.example.org")
    key2, info2 = store.create_key(" https://blog.example.org/ ")
    _, info3 = store.create_key("https://other.example")
    assert key1 != key2 and info1.site_id == info2.site_id != info3.site_id
    assert [s.url for s in store.list_sites()] == ["https://blog.example.org", "https://other.example"]
    assert store.authenticate(key2).id == info2.id  # type: ignore[union-attr]
    for bad in ("   ", "not a url", "javascript:alert(1)", "ftp://files.example", "https://", "https:///path",
                "https://blog.example\nid 9", "https://blog.example/a b", "https://x.example/" + "p" * 300):
        with pytest.raises(InvalidRecordError):
            store.create_key(bad)
    assert len(store.list_sites()) == 2
    # Case is kept, as earlier releases stored it: lowering it now would split their sites.
    assert normalise_site_url(" HTTP://A.Example/Blog/ ") == "HTTP://A.Example/Blog"


def test_key_is_never_stored_in_clear(store: Store) -> None:
    key, _ = store.create_key("https://blog.example.org", label="lbl")
    for table in ("api_keys", "sites", "store_meta"):
        for row in _rows(store, table):
            assert not any(key in str(value) for value in row.values()), table
    (row,) = _rows(store, "api_keys")
    assert row["digest"] == Privacy(SECRET).key_digest(key)


@pytest.mark.parametrize("bad", [
    "", "abc", "0123456789abc", "0123456789AB", "g123456789ab", " 0123456789a",
    "0123456789ab\n", None, 123456789012, b"0123456789ab",
])
def test_wrong_shape_keys_never_reach_the_database(
    store: Store, bad: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("authenticate touched the database")

    monkeypatch.setattr(store.database, "run", forbidden)
    monkeypatch.setattr(store.database, "read", forbidden)
    assert store.authenticate(bad) is None


def test_unknown_well_shaped_key_does_not_authenticate(store: Store) -> None:
    store.create_key("https://blog.example.org")
    assert store.authenticate("0123456789ab") is None


# --- usage ----------------------------------------------------------------------

def test_count_usage_and_usage(store: Store) -> None:
    _, info = store.create_key("https://blog.example.org")
    store.count_usage(info.id, MONTH, api_calls=1, spam=1)
    store.count_usage(info.id, MONTH, api_calls=2, ham=2, missed_spam=1, false_positives=3)
    store.count_usage(info.id, "2025-04", api_calls=5)
    store.count_usage(info.id, MONTH)  # nothing to add: no row change
    assert store.usage(info.id, MONTH) == {
        "api_calls": 3, "spam": 1, "ham": 2, "missed_spam": 1, "false_positives": 3}
    assert store.usage(info.id, "2025-05")["api_calls"] == 0
    with pytest.raises(InvalidRecordError):
        store.count_usage(info.id, MONTH, calls=1)
    with pytest.raises(InvalidRecordError):
        store.count_usage(info.id, "2025-13", api_calls=1)
    with pytest.raises(InvalidRecordError):
        store.count_usage(info.id, MONTH, api_calls=-1)


def test_count_usage_for_unknown_key_fails(store: Store) -> None:
    with pytest.raises(StoreDatabaseError):
        store.count_usage(424242, MONTH, api_calls=1)


def test_count_usage_is_exact_under_concurrency(store: Store) -> None:
    _, info = store.create_key("https://blog.example.org")

    def work(_: int) -> None:
        for _ in range(50):
            store.count_usage(info.id, MONTH, api_calls=1, spam=1)

    _run_threads(8, work)
    assert store.usage(info.id, MONTH)["api_calls"] == 400
    assert store.usage(info.id, MONTH)["spam"] == 400


def test_a_label_sent_twice_at_once_is_a_repeat_once(store: Store) -> None:
    # A double click, or two workers: both reports found none before either was stored, and a
    # site's usage counted the one missed spam twice.
    check = _check(_comment())
    store.record_check(check)
    repeats: list[bool] = []

    def report(i: int) -> None:
        label = "spam" if i % 2 else "ham"
        repeats.append((label, store.add_feedback_noting_repeats(
            FeedbackRecord(label, _comment(), check_id=check.id))[1]))

    _run_threads(8, report)
    assert sorted(repeats) == [("ham", False)] + [("ham", True)] * 3 + [("spam", False)] + [("spam", True)] * 3
    # A test report is no first label, nor is it counted as one.
    other = _check(_comment())
    store.record_check(other)
    assert store.add_feedback_noting_repeats(FeedbackRecord("spam", _comment(), check_id=other.id, is_test=True))[1] is False
    assert store.add_feedback_noting_repeats(FeedbackRecord("spam", _comment(), check_id=other.id))[1] is False
    assert store.add_feedback_noting_repeats(FeedbackRecord("spam", _comment(), check_id=other.id))[1] is True


def test_key_sites(store: Store) -> None:
    _, a1 = store.create_key("https://a.example")
    _, a2 = store.create_key("https://a.example")
    _, b1 = store.create_key("https://b.example")
    store.count_usage(a1.id, MONTH, api_calls=3, spam=1)
    store.count_usage(a2.id, MONTH, api_calls=4, ham=2)
    store.count_usage(b1.id, MONTH, api_calls=1, false_positives=1)
    store.count_usage(b1.id, "2025-02", api_calls=100)
    store.revoke_key(b1.id)
    sites = store.key_sites(MONTH)
    assert [s["site"] for s in sites] == ["https://a.example", "https://b.example"]
    assert sites[0] | {"site_id": 0} == {"site": "https://a.example", "site_id": 0, "api_calls": 7, "spam": 1,
                                         "ham": 2, "missed_spam": 0, "false_positives": 0, "is_revoked": False}
    assert (sites[1]["api_calls"], sites[1]["false_positives"], sites[1]["is_revoked"]) == (1, 1, True)
    assert [s["api_calls"] for s in store.key_sites("2025-06")] == [0, 0]
    with pytest.raises(InvalidRecordError):
        store.key_sites("March")


def test_key_blogs_count_each_site_a_key_serves(store: Store) -> None:
    _, key = store.create_key("https://network.example")
    store.count_usage(key.id, MONTH, blog="https://a.network.example/", api_calls=2, spam=1, ham=1)
    store.count_usage(key.id, MONTH, blog=" https://a.network.example", api_calls=1, ham=1)
    store.count_usage(key.id, MONTH, blog="https://b.network.example", api_calls=1, missed_spam=1)
    store.count_usage(key.id, MONTH, api_calls=4, ham=4)  # no blog: the key's own site
    store.count_usage(key.id, MONTH, blog="https://x.example/" + "p" * 400, api_calls=1, ham=1)
    rows = store.key_blogs(key.id, MONTH)
    assert [(r["site"], r["api_calls"], r["spam"], r["ham"], r["missed_spam"]) for r in rows] == [
        ("https://network.example", 4, 0, 4, 0),
        ("https://a.network.example", 3, 1, 2, 0),
        ("https://b.network.example", 1, 0, 0, 1),
        ("https://x.example/" + "p" * (MAX_BLOG_CHARS - len("https://x.example/")), 1, 0, 1, 0)]
    # The key's total (usage-limit) counts every call once.
    assert store.usage(key.id, MONTH)["api_calls"] == 9 == sum(r["api_calls"] for r in rows)
    assert not any(r["is_revoked"] for r in rows)
    store.revoke_key(key.id)
    assert all(r["is_revoked"] for r in store.key_blogs(key.id, MONTH))
    # A month without calls shows the key's own site with zeros; an unknown key, nothing.
    (empty,) = store.key_blogs(key.id, "2001-01")
    assert (empty["site"], empty["api_calls"]) == ("https://network.example", 0)
    assert store.key_blogs(424242, MONTH) == []
    with pytest.raises(InvalidRecordError):
        store.key_blogs(key.id, "2025-1")


def test_key_blogs_keep_usage_counted_before_sites_were(store: Store) -> None:
    # Usage counted by key only (before blog_usage existed) stays the registered site's.
    _, key = store.create_key("https://old.example")
    store._db.run(lambda tx: tx.execute(
        "INSERT INTO key_usage (key_id, month, api_calls, spam, ham, missed_spam, false_positives) "
        "VALUES (?, ?, 10, 3, 7, 0, 1)", (key.id, MONTH)))
    store.count_usage(key.id, MONTH, blog="https://new.example", api_calls=2, spam=2)
    rows = {r["site"]: r for r in store.key_blogs(key.id, MONTH)}
    assert (rows["https://old.example"]["api_calls"], rows["https://old.example"]["ham"]) == (10, 7)
    assert (rows["https://new.example"]["api_calls"], rows["https://new.example"]["spam"]) == (2, 2)


# --- checks ----------------------------------------------------------------------

def test_record_checks_batch_get_and_find(store: Store) -> None:
    _, info = store.create_key("https://blog.example.org")
    old = datetime(2025, 1, 1, tzinfo=timezone.utc)
    first = _check(_comment("Buy now http://bit.ly/x"), created=old, site_id=info.site_id)
    again = _check(_comment("buy   NOW http://bit.ly/x"), created=old + timedelta(hours=1), site_id=info.site_id)
    elsewhere = _check(_comment("Buy now http://bit.ly/x"), created=old + timedelta(hours=2))
    other = _check(_comment("A thoughtful reply"), tier="ham")
    store.record_checks([first, again, elsewhere, other])

    got = store.get_check(first.id)
    assert got is not None
    assert (got.tier, got.score, got.model_version, got.reasons) == ("spam", 0.91, "m-1", ("shortened link",))
    assert (got.surface, got.site_id, got.created, got.is_test, got.upstream) == (
        "akismet", info.site_id, old, False, None)
    assert got.comment.comment_content == "Buy now http://bit.ly/x"
    # Normalised content (case, spacing) gives the same hash; the latest check wins.
    assert store.comment_hash(first.comment) == store.comment_hash(again.comment) == got.comment_hash
    assert store.find_check(got.comment_hash).id == elsewhere.id  # type: ignore[union-attr]
    assert store.find_check(got.comment_hash, site_id=info.site_id).id == again.id  # type: ignore[union-attr]
    assert store.find_check(store.comment_hash(_comment("never seen"))) is None
    assert store.get_check(new_check_id()) is None


def test_check_stores_context_extra_reasons_and_upstream_as_json_text(store: Store) -> None:
    comment = _comment("Très bien", comment_context=("café", "日本"),
                       extra={"POST_b": "ü", "POST_a": "1", "HTTP_ACCEPT": "text/html"})
    verdict = Verdict("ham", 0.1, (Reason("phrase 'très bien'", -1.0),), "m-1")
    record = CheckRecord.from_verdict(comment, verdict, surface="json", upstream={"verdict": "ham", "note": "ü"})
    plain = _check(_comment("no context"))
    store.record_checks([record, plain])
    rows = {row["id"]: row for row in _rows(store, "checks")}
    row = rows[record.id]
    # Non-ASCII kept as is, extra in key order: the text a stored row has always had.
    assert row["comment_context"] == json.dumps(["café", "日本"], ensure_ascii=False)
    assert row["extra"] == json.dumps(dict(comment.extra), ensure_ascii=False, sort_keys=True)
    assert row["reasons"] == json.dumps(["phrase 'très bien'"], ensure_ascii=False)
    assert row["upstream"] == json.dumps({"verdict": "ham", "note": "ü"}, ensure_ascii=False)
    assert (rows[plain.id]["comment_context"], rows[plain.id]["extra"], rows[plain.id]["upstream"]) == ("[]", "{}", None)
    got = store.get_check(record.id)
    assert got is not None
    assert (got.comment.comment_context, dict(got.comment.extra)) == (comment.comment_context, dict(comment.extra))
    assert (got.reasons, got.upstream) == (("phrase 'très bien'",), {"verdict": "ham", "note": "ü"})


def test_text_with_nul_characters_is_stored_on_both_engines(store: Store) -> None:
    """NUL reaches us from "%00" in an Akismet form or "\\u0000" in JSON; PostgreSQL text cannot
    hold it (the driver refused the whole batch), so there U+FFFD stands in for it."""
    comment = _comment("buy\x00 now", comment_author="A\x00B")
    record = _check(comment)
    store.record_checks([record, _check(_comment("clean"))])
    store.add_feedback(FeedbackRecord("spam", comment, source="akismet", reporter="mod\x00"))
    nul = "\x00" if store._db.dialect.name == "sqlite" else "\ufffd"
    got = store.get_check(record.id)
    assert got is not None
    assert (got.comment.comment_content, got.comment.comment_author) == (f"buy{nul} now", f"A{nul}B")
    found = store.find_check(store.comment_hash(comment))
    assert found is not None and found.id == record.id
    (feedback,) = store.list_feedback()
    assert feedback.comment.comment_content == f"buy{nul} now" and feedback.reporter == f"mod{nul}"


class _FakePgConnection:
    """A PostgreSQL connection that breaks when told: ``at`` "begin" or "commit"."""

    def __init__(self, at: str | None) -> None:
        self.at, self.broken, self.closed = at, False, False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.at == "begin":
            self.broken = True
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        yield
        if self.at == "commit":
            self.broken = True
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    def close(self) -> None:
        self.closed = True


def test_a_write_gives_up_on_a_locked_sqlite_file_after_the_deadline(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Each attempt waits out the busy timeout; eight of them held a request for 40 s.
    import sqlite3

    import store.db as db

    monkeypatch.setattr(db, "_SQLITE_BUSY_MS", 200)
    monkeypatch.setattr(db, "_RUN_DEADLINE_S", 0.5)
    path = tmp_path / "locked.sqlite3"
    with open_store(str(path), secret=SECRET) as opened:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the file
        try:
            with pytest.raises(StoreBusyError) as info:
                opened.create_key("https://blog.example.org")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        attempts = int(re.search(r"after (\d+) attempts", str(info.value)).group(1))  # type: ignore[union-attr]
        assert 1 <= attempts < db._ATTEMPTS
        assert opened.create_key("https://blog.example.org")  # and works once the lock is gone


def test_a_connection_lost_during_commit_is_not_run_again() -> None:
    # The server may have committed: running the work again could write it twice (usage
    # counters counted twice). A connection found broken before that is retried, as before.
    pytest.importorskip("psycopg")
    db = Database("postgresql://nowhere.invalid/db")
    breaks = iter(["commit"])
    db._connect = lambda: _FakePgConnection(next(breaks, None))  # type: ignore[method-assign]
    runs: list[int] = []
    with pytest.raises(StoreCommitUnknownError):
        db.run(lambda tx: runs.append(1))
    assert runs == [1]
    breaks = iter(["begin"])
    db._idle = type(db._idle)()  # no pooled connections left from the first case
    assert db.run(lambda tx: runs.append(2) or "done") == "done" and runs == [1, 2]


def test_record_checks_is_all_or_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _check(_comment("one"))
    real_row = store._check_row
    monkeypatch.setattr(store, "_check_row", lambda record: (
        [None] * len(real_row(record)) if record.comment.comment_content == "bad" else real_row(record)))
    with pytest.raises(StoreDataError):  # NOT NULL broken by the last row
        store.record_checks([good, _check(_comment("two")), _check(_comment("bad"))])
    assert store.get_check(good.id) is None
    store.record_checks([])
    assert _rows(store, "checks") == []
    # A check id already written is skipped, not an error, and the rest of its batch is written.
    store.record_checks([good])
    store.record_checks([good, _check(_comment("two"))])
    assert len(_rows(store, "checks")) == 2


@pytest.mark.parametrize("per_insert", [1, 7, 50])
def test_record_checks_in_chunks_keeps_every_row(store: Store, per_insert: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch larger than one multi-row INSERT (SQLite) arrives whole, each row with its own values."""
    import store.db as db

    monkeypatch.setattr(db, "SQLITE_ROWS_PER_INSERT", per_insert)
    records = [_check(_comment(f"comment number {i}"), tier="ham" if i % 2 else "spam") for i in range(123)]
    store.record_checks(records)
    assert len(_rows(store, "checks")) == 123
    for record in records[::10] + records[-3:]:
        got = store.get_check(record.id)
        assert got is not None
        assert (got.tier, got.comment.comment_content) == (record.tier, record.comment.comment_content)
    real_row = store._check_row

    def row(record: CheckRecord) -> list[Any]:  # the last row breaks NOT NULL: the database refuses it
        values = real_row(record)
        return [None] * len(values) if record.comment.comment_content == "bad" else values

    monkeypatch.setattr(store, "_check_row", row)
    with pytest.raises(StoreDataError):  # still one transaction: a bad row in the last chunk
        store.record_checks([_check(_comment("fine")) for _ in range(20)] + [_check(_comment("bad"))])
    assert len(_rows(store, "checks")) == 123
    # A check written already is left as it is (a batch sent again after a lost COMMIT reply).
    store.record_checks(records[:5] + [_check(_comment("new"))])
    assert len(_rows(store, "checks")) == 124


def test_check_keeps_upstream_context_extra_and_test_flag(store: Store) -> None:
    comment = _comment(comment_context=("news", "cats"), extra={"HTTP_ACCEPT": "text/html"}, is_test="1")
    record = _check(comment)
    record = replace(record, upstream={"akismet": "true", "pro_tip": "discard"})
    store.record_checks([record])
    got = store.get_check(record.id)
    assert got is not None and got.is_test and got.comment.is_test_call
    assert got.upstream == {"akismet": "true", "pro_tip": "discard"}
    assert got.comment.comment_context == ("news", "cats")
    assert got.comment.extra == {"HTTP_ACCEPT": "text/html"}


def test_records_validate_their_values() -> None:
    with pytest.raises(InvalidRecordError):
        CheckRecord.from_verdict(_comment(), Verdict("spam", 0.9), surface="email")
    with pytest.raises(InvalidRecordError):
        CheckRecord.from_verdict(_comment(), Verdict("maybe", 0.9), surface="json")
    with pytest.raises(InvalidRecordError):
        FeedbackRecord(label="junk", comment=_comment())


def test_every_comment_field_round_trips(store_url: str) -> None:
    assert set(TEXT_FIELDS) - {"is_test"} <= set(COMMENT_COLUMNS), "a new Comment field needs a migration"
    values = {name: f"value of {name}" for name in TEXT_FIELDS if name != "is_test"}
    comment = Comment(**values, comment_context=("tag",), extra={"HTTP_X": "y"})
    with open_store(store_url, secret=SECRET, store_personal_data=True) as store:
        record = _check(comment)
        store.record_checks([record])
        fid = store.add_feedback(FeedbackRecord("spam", comment, source="cli"))
        assert store.get_check(record.id).comment == comment  # type: ignore[union-attr]
        (feedback,) = store.list_feedback()
        assert feedback.id == fid and feedback.comment == comment


# --- personal data ------------------------------------------------------------------

def test_personal_data_is_hashed_by_default(store: Store) -> None:
    extra = {"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "198.51.100.1", "HTTP_COOKIE": "session=abc",
             "POST_email": "alice@example.org", "HTTP_USER_AGENT": "Mozilla/5.0", "akismet_comment_nonce": "n1"}
    first, second = _check(_comment("one", extra=extra)), _check(_comment("two", comment_author_email=" ALICE@example.org"))
    store.record_checks([first, second])
    store.add_feedback(FeedbackRecord("spam", _comment("three"), source="akismet"))
    for table in ("checks", "feedback"):
        text = json.dumps(_rows(store, table), default=str)
        for secret_value in ("203.0.113.7", "198.51.100.1", "alice@", "session=abc", "n1\""):
            assert secret_value not in text, (table, secret_value)
    got1, got2 = store.get_check(first.id), store.get_check(second.id)
    assert got1 is not None and got2 is not None
    assert got1.comment.user_ip.startswith("hmac:")
    assert got1.comment.comment_author_email.startswith("hmac:")
    assert got1.comment.comment_author_email.endswith("@example.org")  # the domain is kept as a feature
    # Same input, same hash: "same sender" still works.
    assert got1.comment.comment_author_email == got2.comment.comment_author_email
    assert got1.comment.user_ip == got2.comment.user_ip
    assert got1.comment.extra["REMOTE_ADDR"] == got1.comment.user_ip
    assert got1.comment.extra["HTTP_USER_AGENT"] == "Mozilla/5.0"
    assert "HTTP_COOKIE" not in got1.comment.extra and "akismet_comment_nonce" not in got1.comment.extra
    # The stored (hashed) comment hashes like the original one.
    assert store.comment_hash(got1.comment) == store.comment_hash(first.comment) == got1.comment_hash


def test_server_variables_with_an_address_or_a_credential_are_never_kept_in_clear(store: Store) -> None:
    """Found by a probe: Sucuri's and Akamai's headers, Via and REMOTE_HOST were stored in clear,
    and PHP's basic-auth password too."""
    extra = {"HTTP_X_SUCURI_CLIENTIP": "203.0.113.77", "HTTP_X_REMOTE_ADDR": "203.0.113.78",
             "HTTP_VIA": "1.1 203.0.113.79", "HTTP_X_AKAMAI_EDGESCAPE": "georegion=1,ip=203.0.113.80",
             "REMOTE_HOST": "joe-home.dsl.example", "HTTP_X_SOMETHING": "for 2001:db8::7 please",
             "PHP_AUTH_PW": "hunter2", "PHP_AUTH_USER": "joe", "HTTP_X_API_KEY": "k-123",
             "POST_author": "Joe", "HTTP_USER_AGENT": "Mozilla/5.0"}
    record = _check(_comment("one", extra=extra))
    store.record_checks([record])
    text = json.dumps(_rows(store, "checks"), default=str)
    for value in ("203.0.113.7", "joe-home", "2001:db8", "hunter2", "k-123"):
        assert value not in text, value
    stored = store.get_check(record.id)
    assert stored is not None
    assert not {"PHP_AUTH_PW", "PHP_AUTH_USER", "HTTP_X_API_KEY"} & set(stored.comment.extra)
    assert stored.comment.extra["POST_author"] == "Joe" and stored.comment.extra["HTTP_USER_AGENT"] == "Mozilla/5.0"


# Credentials under the names real forms and clients give them: WordPress's login and
# registration fields as the plugin forwards them (POST_<name>), other languages, session ids,
# auth headers of any name, CSRF tokens, keys in camelCase.
CREDENTIAL_NAMES = (
    "POST_pwd", "POST_pass1", "POST_pass2", "POST_user_pass", "POST_password", "POST_confirm_password",
    "POST_passwort", "POST_kennwort", "POST_contraseña", "pass1-text", "POST_newpass", "PHP_AUTH_PW",
    "PHP_AUTH_USER", "REDIRECT_HTTP_AUTHORIZATION",
    "POST_session_id", "PHPSESSID", "JSESSIONID", "ASP.NET_SessionId", "HTTP_X_SESSION_ID",
    "HTTP_X_AUTH", "HTTP_X_AUTH_USER", "HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION", "oauth_signature",
    "HTTP_COOKIE", "HTTP_COOKIE2", "POST__wpnonce", "HTTP_X_WP_NONCE", "POST_akismet_comment_nonce",
    "POST__wp_unfiltered_html_comment_disabled", "HTTP_X_CSRF_TOKEN", "csrfmiddlewaretoken", "accessToken",
    "POST_secret", "HTTP_X_API_KEY", "apiKey", "POST_apikey", "HTTP_X_AMZ_SECURITY_TOKEN", "POST_otp",
    "POST_mot_de_passe", "POST__bbp_unfiltered_html_reply", "POST__bbp_unfiltered_html_topic",
    # A third probe: PINs, second factors, cards, security answers, captcha answers, signatures.
    "POST_pin", "POST_2fa_code", "POST_cvv", "POST_credit_card", "POST_cc_number", "POST_ssn",
    "POST_security_answer", "POST_g-recaptcha-response", "g-recaptcha-response", "POST_h-captcha-response",
    "POST_cf-turnstile-response", "POST_signature", "HTTP_X_HUB_SIGNATURE",
)
# Ordinary fields whose names merely hold some of those letters, kept as sent.
ORDINARY_NAMES = (
    "HTTP_USER_AGENT", "POST_passage", "compass", "POST_bypass_cache", "passenger", "keywords", "monkey",
    "POST_author", "POST_comment_author", "HTTP_X_AUTHOR", "authority", "HTTP_KEEP_ALIVE", "POST_comment",
    "POST_wp-comment-cookies-consent", "POST_ak_hp_textarea", "HTTP_SEC_FETCH_SITE",
    "considerations", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_SSL",
    "POST_spinner", "POST_pinned", "POST_opinion", "POST_shipping", "POST_account_number", "POST_design",
)


@pytest.mark.parametrize("personal", [False, True], ids=["hashed", "store_personal_data"])
def test_credentials_are_dropped_whatever_their_field_is_called(store_url: str, personal: bool) -> None:
    """Found by a probe: POST_pwd, POST_pass1/2, POST_user_pass, POST_passwort, POST_session_id and
    HTTP_X_AUTH were stored in clear (only PASSWORD, PASSWD and a trailing _PW were credentials);
    a second one: POST_mot_de_passe and bbPress's nonces too, while X-Forwarded-Proto, -Port and
    -Ssl were hashed as if they held an address."""
    extra = {name: f"v{i}-s3cr3t" for i, name in enumerate(CREDENTIAL_NAMES)}
    extra |= {name: f"ordinary {name}" for name in ORDINARY_NAMES}
    extra["akismet_comment_nonce"] = "passed"  # the plugin's verdict on its nonce, not the nonce
    with open_store(store_url, secret=SECRET, store_personal_data=personal) as store:
        record = _check(_comment("one", extra=extra))
        store.record_checks([record])
        store.add_feedback(FeedbackRecord("spam", _comment("two", extra=extra), source="akismet"))
        for table in ("checks", "feedback"):
            assert "s3cr3t" not in json.dumps(_rows(store, table), default=str), table
        stored = store.get_check(record.id)
        assert stored is not None
        kept = {name: f"ordinary {name}" for name in ORDINARY_NAMES} | {"akismet_comment_nonce": "passed"}
        assert dict(stored.comment.extra) == kept
        assert dict(store.list_feedback()[0].comment.extra) == kept


@pytest.mark.parametrize("personal", [False, True], ids=["hashed", "store_personal_data"])
def test_a_reporters_addresses_are_kept_only_as_their_keyed_hashes(store_url: str, personal: bool) -> None:
    """Found by a probe: a report's reporter (WordPress sends the moderator's user_login, often an
    e-mail) was stored as sent, beside extra fields whose addresses were hashed."""
    sent = "mod.erator@corp.example 203.0.113.11"
    with open_store(store_url, secret=SECRET, store_personal_data=personal) as store:
        store.add_feedback(FeedbackRecord("spam", _comment("one"), source="api", reporter=sent))
        store.add_feedback(FeedbackRecord("ham", _comment("two"), source="akismet", reporter="x" * 500))
        reporters = [r["reporter"] for r in sorted(_rows(store, "feedback"), key=lambda r: r["id"])]
        if personal:
            assert reporters == [sent, "x" * 200]
            return
        privacy = Privacy(SECRET)
        assert reporters[0] == (f"{privacy.pseudonym('mod.erator@corp.example', email=True)} "
                                f"{privacy.pseudonym('203.0.113.11')}")
        assert reporters[1] == "x" * 200
        assert "mod.erator" not in json.dumps(_rows(store, "feedback"), default=str)


def test_an_ip_address_in_any_extra_value_is_kept_only_as_its_keyed_hash(store: Store) -> None:
    """Found by a probe: only proxy headers (HTTP_X_*) and names on a list were searched, so
    Cloudflare's IPv6 and pseudo-IPv4 headers and a free field were stored in clear. An address
    becomes its keyed hash where it stands: the rest of the value stays readable, and the hash is
    the one the same address gets as user_ip."""
    extra = {"HTTP_CF_CONNECTING_IPV6": "2001:db8:85a3::8a2e:370:7334", "HTTP_CF_PSEUDO_IPV4": "240.16.0.1",
             "note": "contact me at 10.0.0.5.", "POST_comment": "my router 192.0.2.44 and [2001:db8::1]:8080",
             "HTTP_REFERER": "http://203.0.113.7/wp-admin/", "REQUEST_URI": "/whois/198.51.100.200",
             "HTTP_X_SOMETHING": "for 2001:db8::7 please", "mapped": "::ffff:192.0.2.99"}
    record = _check(_comment("one", user_ip="10.0.0.5", extra=extra))
    store.record_checks([record])
    store.add_feedback(FeedbackRecord("spam", _comment("two", extra=extra), source="akismet"))
    for table in ("checks", "feedback"):
        text = json.dumps(_rows(store, table), default=str)
        for address in ("2001:db8", "8a2e", "240.16", "10.0.0.5", "192.0.2", "203.0.113.7", "198.51.100"):
            assert address not in text, (table, address)
    stored = store.get_check(record.id)
    assert stored is not None
    got = stored.comment.extra
    same_sender = stored.comment.user_ip  # the pseudonym of 10.0.0.5
    assert got["note"] == f"contact me at {same_sender}."
    assert got["HTTP_CF_PSEUDO_IPV4"] == store.minimised(_comment(user_ip="240.16.0.1")).user_ip
    assert re.fullmatch(r"hmac:[0-9a-f]{32}", got["HTTP_CF_CONNECTING_IPV6"])
    assert re.fullmatch(r"my router hmac:[0-9a-f]{32} and \[hmac:[0-9a-f]{32}\]:8080", got["POST_comment"])
    assert re.fullmatch(r"http://hmac:[0-9a-f]{32}/wp-admin/", got["HTTP_REFERER"])
    assert re.fullmatch(r"/whois/hmac:[0-9a-f]{32}", got["REQUEST_URI"])
    # Minimising twice changes nothing: a stored comment stored again (a report by check id) stays as it is.
    assert store.minimised(stored.comment) == stored.comment


def test_an_address_written_any_way_is_one_sender_in_checks_and_feedback(store: Store) -> None:
    """Found by a probe: user_ip "2001:DB8::42", "2001:db8::42" and "2001:db8:0:0:0:0:0:42" were
    three senders, and REMOTE_ADDR "::ffff:203.0.113.7" was not "203.0.113.7" in other fields."""
    records = [_check(_comment("one", user_ip="2001:DB8::42", extra={"REMOTE_ADDR": "::ffff:203.0.113.7"})),
               _check(_comment("two", user_ip="2001:db8:0:0:0:0:0:42", extra={"note": "via 203.0.113.7"}))]
    store.record_checks(records)
    store.add_feedback(FeedbackRecord("spam", _comment("three", user_ip="2001:db8::42"), source="akismet"))
    first, second = (store.get_check(record.id) for record in records)
    assert first is not None and second is not None
    (feedback,) = store.list_feedback()
    assert first.comment.user_ip == second.comment.user_ip == feedback.comment.user_ip
    v4 = store.minimised(_comment(user_ip="203.0.113.7")).user_ip
    assert first.comment.extra["REMOTE_ADDR"] == v4 and second.comment.extra["note"] == f"via {v4}"


@pytest.mark.parametrize("value", [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
    "Edg/120.0.0.0", "Mozilla/5.0 Chrome/120.0.6099.109 OPR/105.0.0.0",
    "Wed, 21 Oct 2015 07:28:00 GMT", "meeting at 12:30:45", "2024-01-01T12:30:45+01:00", "1.2.3.4.5",
    "v1.2.3.4", "version 999.1.1.1", "std::vector", "00:1a:2b:3c:4d:5e",
])
def test_version_quads_and_times_are_not_addresses(store: Store, value: str) -> None:
    """A browser's user agent holds version quads ("Chrome/120.0.0.0"), headers hold times: kept as sent."""
    extra = {"HTTP_USER_AGENT": value, "HTTP_X_UA": value, "note": value}
    stored = store.minimised(_comment(extra=extra))
    assert dict(stored.extra) == extra


def test_personal_data_in_clear_when_enabled(store_url: str) -> None:
    with open_store(store_url, secret=SECRET, store_personal_data=True) as store:
        record = _check(_comment(extra={"REMOTE_ADDR": "203.0.113.7", "HTTP_COOKIE": "session=abc"}))
        store.record_checks([record])
        store.add_feedback(FeedbackRecord("ham", _comment(), source="json"))
        got = store.get_check(record.id)
        assert got is not None
        assert (got.comment.user_ip, got.comment.comment_author_email) == ("203.0.113.7", "alice@example.org")
        assert got.comment.extra == {"REMOTE_ADDR": "203.0.113.7"}  # credentials are dropped regardless
        assert store.list_feedback()[0].comment.user_ip == "203.0.113.7"
    with open_store(store_url, secret=SECRET) as hashed:
        # The comment hash does not depend on the setting, so checks stay findable.
        assert hashed.find_check(hashed.comment_hash(_comment())).id == record.id  # type: ignore[union-attr]


# --- purge -------------------------------------------------------------------------

def test_purge_checks_keeps_feedback(store: Store) -> None:
    now = datetime.now(timezone.utc)
    old, recent = _check(_comment("old spam"), created=now - timedelta(days=40)), _check(_comment("new"), created=now)
    store.record_checks([old, recent])
    store.add_feedback(FeedbackRecord("spam", old.comment, source="akismet", check_id=old.id))
    assert store.purge_checks(30) == 1
    assert store.get_check(old.id) is None and store.get_check(recent.id) is not None
    (feedback,) = store.list_feedback()
    assert feedback.check_id == old.id and feedback.comment.comment_content == "old spam"
    assert store.purge_checks(30) == 0
    with pytest.raises(InvalidRecordError):
        store.purge_checks(-1)


def test_purge_deletes_in_batches_until_none_is_left(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """One DELETE of months of checks could outlast the service's answer deadline on PostgreSQL
    (and held SQLite's write lock throughout): the purge goes in transactions of PURGE_BATCH."""
    import store.checks as checks_module

    monkeypatch.setattr(checks_module, "PURGE_BATCH", 3)
    statements: list[int] = []
    real_run = store.database.run
    monkeypatch.setattr(store.database, "run", lambda work, **kw: statements.append(1) or real_run(work, **kw))
    now = datetime.now(timezone.utc)
    old = [_check(_comment(f"old {i}"), created=now - timedelta(days=40 + i)) for i in range(7)]
    recent = [_check(_comment(f"new {i}"), created=now) for i in range(2)]
    store.record_checks(old + recent)
    statements.clear()
    assert store.purge_checks(30) == 7
    assert len(statements) == 4  # 3 + 3 + 1, then one that finds none left
    assert all(store.get_check(c.id) is None for c in old)
    assert all(store.get_check(c.id) is not None for c in recent)


def test_a_purge_whose_batch_meets_another_workers_delete_carries_on(store: Store,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every worker purges at start. On PostgreSQL a batch skips the rows another worker's
    delete took while it waited for them, so a short batch does not mean none is left: a probe's
    two workers stopped so and left 41,905 of 76,572 old checks. Here the other worker's delete
    of the oldest check is held open until the purge's first batch waits on it. (SQLite
    serialises writers: there the batch starts after the other delete and is whole.)"""
    import store.checks as checks_module

    monkeypatch.setattr(checks_module, "PURGE_BATCH", 3)
    now = datetime.now(timezone.utc)
    old = [_check(_comment(f"old {i}"), created=now - timedelta(days=40 + i)) for i in range(7)]
    store.record_checks(old)
    oldest = old[-1].id
    deleting, release = threading.Event(), threading.Event()

    def other_worker(tx: Any) -> None:
        tx.execute("DELETE FROM checks WHERE id = ?", (oldest,))
        deleting.set()
        release.wait(30)

    other = threading.Thread(target=store.database.run, args=(other_worker,))
    other.start()
    assert deleting.wait(10)
    threading.Timer(1.0, release.set).start()  # while the purge's first batch waits on that row
    removed = store.purge_checks(30)
    other.join(30)
    assert removed == 6
    assert store.database.read(lambda tx: tx.fetchone("SELECT COUNT(*) AS n FROM checks"))["n"] == 0


# --- feedback ---------------------------------------------------------------------

def test_add_and_list_feedback(store: Store) -> None:
    t0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
    fid = store.add_feedback(FeedbackRecord("spam", _comment("spam!"), source="akismet", reporter="mod",
                                            check_id="c" * 32, created=t0))
    store.add_feedback(FeedbackRecord("ham", _comment("test"), source="json", is_test=True, created=t0))
    (only,) = store.list_feedback()
    assert (only.id, only.label, only.source, only.reporter, only.check_id, only.created) == (
        fid, "spam", "akismet", "mod", "c" * 32, t0)
    assert only.comment_hash == store.comment_hash(_comment("spam!"))
    assert [f.label for f in store.list_feedback(include_test=True)] == ["spam", "ham"]


def test_latest_label_per_comment(store: Store) -> None:
    t0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
    store.add_feedback(FeedbackRecord("spam", _comment("A"), created=t0))
    store.add_feedback(FeedbackRecord("ham", _comment("a "), created=t0 + timedelta(minutes=5)))
    store.add_feedback(FeedbackRecord("spam", _comment("B"), created=t0 + timedelta(minutes=1)))
    store.add_feedback(FeedbackRecord("spam", _comment("a"), is_test=True, created=t0 + timedelta(minutes=9)))
    latest = store.list_feedback(latest_per_comment=True)
    assert [(f.comment.comment_content, f.label) for f in latest] == [("B", "spam"), ("a ", "ham")]
    with_test = store.list_feedback(include_test=True, latest_per_comment=True)
    assert [(f.comment.comment_content, f.label) for f in with_test] == [("B", "spam"), ("a", "spam")]


def test_forget_feedback(store: Store) -> None:
    check_id = new_check_id()
    first = store.add_feedback(FeedbackRecord("spam", _comment("x"), check_id=check_id))
    store.add_feedback(FeedbackRecord("ham", _comment("x"), check_id=check_id))
    keep = store.add_feedback(FeedbackRecord("spam", _comment("y")))
    checks = [_check(_comment("x")), _check(_comment("x")), _check(_comment("y"))]
    store.record_checks(checks)
    # The comment still has a label: its checks stay.
    assert store.forget_feedback(first) == Forgotten(labels=1, checks=0)
    assert not store.forget_feedback(first)
    assert store.get_check(checks[0].id) is not None
    # Its last label gone, the check log's copies of it go too (text, upstream answer); not y's.
    assert store.forget_feedback_for_check(check_id) == Forgotten(labels=1, checks=2)
    assert not store.forget_feedback_for_check(check_id)
    assert [f.id for f in store.list_feedback(include_test=True)] == [keep]
    assert [store.get_check(c.id) is not None for c in checks] == [False, False, True]


def test_a_page_is_the_same_in_sql_and_in_python(store: Store) -> None:
    """store.pages: the sender history groups by the SQL form, reports are linked by both."""
    from store.pages import PAGE_SQL, page_of

    cast = "CAST(? AS TEXT)" if store.backend == "postgresql" else "?"
    for permalink in ("", "/", "https://Blog.Example/2026/Roses/", "https://blog.example/2026/roses#comment-12",
                      "https://blog.example/?p=12#c", "HTTPS://ÉTÉ.example/Été//", "#only", "a#b#c/"):
        row = store.database.read(lambda tx: tx.fetchone(
            f"SELECT {PAGE_SQL[store.backend]} AS page FROM (SELECT {cast} AS permalink) t", (permalink,)))
        assert row is not None and row["page"] == page_of(permalink), permalink
    assert page_of("https://Blog.Example/2026/Roses/#x") == "https://blog.example/2026/roses"
    assert page_of("https://blog.example/?p=12") != page_of("https://blog.example/?p=13")  # queries stay


def test_forgetting_a_label_deletes_its_own_sites_checks_only(store: Store) -> None:
    """Found by a probe: forgetting site A's label of a text deleted site B's checks of the same text,
    and B's own reports by check id were then refused as 'no such check'."""
    a, b = store.create_key("https://a.example")[1].site_id, store.create_key("https://b.example")[1].site_id
    text = _comment("the same text on two sites")
    on_a, on_b, keyless = _check(text, site_id=a), _check(text, site_id=b), _check(text)
    store.record_checks([on_a, on_b, keyless])
    label = store.add_feedback(FeedbackRecord("spam", text, check_id=on_a.id, site_id=a))
    assert store.forget_feedback(label) == Forgotten(labels=1, checks=1)
    assert [store.get_check(c.id) is not None for c in (on_a, on_b, keyless)] == [False, True, True]
    unlinked = store.add_feedback(FeedbackRecord("ham", text))  # a label without a site: the checks without one
    assert store.forget_feedback(unlinked) == Forgotten(labels=1, checks=1)
    assert [store.get_check(c.id) is not None for c in (on_b, keyless)] == [True, False]


def test_export_feedback(store: Store, tmp_path: Path) -> None:
    t0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
    tagged = _comment("Cheap pills", comment_author_url="http://pills.example", comment_context=("health",))
    store.add_feedback(FeedbackRecord("ham", tagged, created=t0))
    store.add_feedback(FeedbackRecord("spam", tagged, created=t0 + timedelta(days=1)))
    store.add_feedback(FeedbackRecord("ham", _comment("Nice recipe", comment_author=""), created=t0))
    store.add_feedback(FeedbackRecord("spam", _comment("Nice recipe", comment_author=""), is_test=True,
                                      created=t0 + timedelta(days=2)))
    store.add_feedback(FeedbackRecord("spam", _comment("only a test"), is_test=True, created=t0))
    out = tmp_path / "feedback.jsonl"
    assert store.export_feedback(out) == 2
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(row["comment_content"], row["label"]) for row in lines] == [("Nice recipe", "ham"), ("Cheap pills", "spam")]
    pills = lines[1]
    assert pills["comment_author_url"] == "http://pills.example" and pills["comment_context"] == ["health"]
    assert pills["comment_author_email"].startswith("hmac:") and "is_test" not in pills
    assert "comment_author" not in lines[0] and "permalink" not in lines[0]  # empty fields left out
    assert not list(tmp_path.glob(".feedback-*"))


def test_export_has_one_line_per_text_the_latest_label_winning(store: Store, tmp_path: Path) -> None:
    """Two sites reported one text (other authors): two lines, and `train` kept the older label."""
    t0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
    store.add_feedback(FeedbackRecord("spam", _comment("Join my  group", comment_author="A"), created=t0))
    store.add_feedback(FeedbackRecord("ham", _comment("join my group", comment_author="B"),
                                      created=t0 + timedelta(hours=1)))
    out = tmp_path / "feedback.jsonl"
    assert store.export_feedback(out) == 1
    (line,) = [json.loads(row) for row in out.read_text(encoding="utf-8").splitlines()]
    assert (line["comment_content"], line["label"], line["comment_author"]) == ("join my group", "ham", "B")


def test_feedback_from_many_threads_all_lands(store: Store) -> None:
    def work(thread: int) -> None:
        for i in range(200):
            store.add_feedback(FeedbackRecord("spam" if i % 2 else "ham", _comment(f"t{thread} c{i}"), source="json"))

    _run_threads(8, work)
    rows = store.list_feedback(include_test=True)
    assert len(rows) == 1600 and len({r.id for r in rows}) == 1600
    assert len({r.comment.comment_content for r in rows}) == 1600


def _process_feedback(url: str, worker: int, count: int) -> None:
    with open_store(url, secret=SECRET) as store:
        for i in range(count):
            store.add_feedback(FeedbackRecord("spam", _comment(f"p{worker} c{i}"), source="cli"))


@pytest.mark.slow
def test_feedback_from_many_processes_all_lands(store_url: str) -> None:
    open_store(store_url, secret=SECRET).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_process_feedback, args=(store_url, w, 100)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    with open_store(store_url, secret=SECRET) as store:
        assert len(store.list_feedback()) == 400


# --- migrations -------------------------------------------------------------------

def test_upgrade_from_an_earlier_migration_keeps_rows(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(store_url)
    assert migrate(db, MIGRATIONS[:1]) == [1]
    old = Store(db, Privacy(SECRET))  # what the release with one migration could do
    # The key is written as that release wrote it: today's create_key reads the sites' later columns.
    key = "0123456789ab"
    now = datetime.now(timezone.utc)

    def old_create_key(tx: Any) -> int:
        tx.execute("INSERT INTO sites (url, created) VALUES (?, ?)", ("https://blog.example.org", now))
        return tx.insert("INSERT INTO api_keys (site_id, digest, hint, label, created) VALUES (1, ?, ?, ?, ?)",
                         (Privacy(SECRET).key_digest(key), key[-2:], "kept", now))

    key_id = db.run(old_create_key)
    old.count_usage(key_id, MONTH, api_calls=3)
    old.close()
    with caplog.at_level("INFO", logger="store.migrations"), open_store(store_url, secret=SECRET) as store:
        assert applied_versions(store.database) == [m.version for m in MIGRATIONS]
        # The upgrade says what it did, once.
        assert caplog.text.count("database schema migrated: 2 (") == 1, caplog.text
        assert f"{MIGRATIONS[-1].version} ({MIGRATIONS[-1].name})" in caplog.text
        info = store.authenticate(key)
        assert info is not None and (info.id, info.site_url, info.label) == (key_id, "https://blog.example.org", "kept")
        assert info.site_settings.is_default  # the columns added later are NULL: the global settings
        assert store.usage(info.id, MONTH)["api_calls"] == 3
        assert store.add_feedback(FeedbackRecord("spam", _comment(), key_id=info.id)) > 0


def test_a_new_migration_alters_a_table_and_keeps_rows(store_url: str) -> None:
    with open_store(store_url, secret=SECRET) as store:
        fid = store.add_feedback(FeedbackRecord("spam", _comment("kept row")))
    next_version = Migration(len(MIGRATIONS) + 1, "feedback notes",
                             ("ALTER TABLE feedback ADD COLUMN note TEXT NOT NULL DEFAULT 'none'",))
    db = Database(store_url)
    try:
        assert migrate(db, (*MIGRATIONS, next_version)) == [next_version.version]
        assert migrate(db, (*MIGRATIONS, next_version)) == []
        rows = db.read(lambda tx: tx.fetchall("SELECT id, comment_content, note FROM feedback"))
        assert rows == [{"id": fid, "comment_content": "kept row", "note": "none"}]
    finally:
        db.close()
    with pytest.raises(MigrationError, match="newer release"):
        open_store(store_url, secret=SECRET)  # this code does not know the new migration


def test_a_failing_migration_changes_nothing(store_url: str) -> None:
    open_store(store_url, secret=SECRET).close()
    broken = Migration(len(MIGRATIONS) + 1, "broken", (
        "CREATE TABLE half_done (id INTEGER)",
        "ALTER TABLE no_such_table ADD COLUMN x TEXT",
    ))
    db = Database(store_url)
    try:
        with pytest.raises(MigrationError):
            migrate(db, (*MIGRATIONS, broken))
        assert applied_versions(db) == [m.version for m in MIGRATIONS]
        assert migrate(db, MIGRATIONS) == []
        with pytest.raises(StoreDatabaseError):
            db.read(lambda tx: tx.fetchall("SELECT * FROM half_done"))
        with pytest.raises(MigrationError):
            migrate(db, (MIGRATIONS[1],))  # misnumbered list
    finally:
        db.close()


def test_concurrent_opens_apply_each_migration_once(store_url: str) -> None:
    stores: list[Store] = []
    _run_threads(6, lambda _: stores.append(open_store(store_url, secret=SECRET)))
    for opened in stores:
        opened.close()
    with open_store(store_url, secret=SECRET) as store:
        versions = store.database.read(lambda tx: tx.fetchall("SELECT version FROM schema_migrations"))
        assert sorted(r["version"] for r in versions) == [m.version for m in MIGRATIONS]


def test_a_postgresql_server_that_never_answers_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq waits forever by default; a server that accepts but never answers must not hold a thread."""
    pytest.importorskip("psycopg", reason="psycopg is the [postgres] extra")
    import socket

    import store.db as db

    monkeypatch.setattr(db, "PG_CONNECT_TIMEOUT", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes connections; nothing ever reads or answers them
    outcome: list[BaseException] = []

    def connect() -> None:
        try:
            open_store(f"postgresql://commentguard@127.0.0.1:{silent.getsockname()[1]}/checks", secret=SECRET)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome.append(exc)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(30)
    silent.close()
    assert not worker.is_alive(), "still waiting for a server that never answers"
    assert len(outcome) == 1 and isinstance(outcome[0], StoreError)
    assert "connection timeout" in str(outcome[0])


PASSWORD = "pw-7731%41"  # "%41" decodes to "A": neither spelling may be shown


@pytest.mark.parametrize("url, problem", [
    (f"postgresql://u:{PASSWORD}@127.0.0.1:abc/x", "port is not a number"),
    (f"postgresql://u:{PASSWORD}@127.0.0.1:0/x", "not a TCP port"),
    (f"postgresql://u:{PASSWORD}@127.0.0.1:5432/x?sslmode=bogus", "sslmode='bogus' is not one of"),
    (f"postgresql://u:{PASSWORD}@127.0.0.1:5432/x?target_session_attrs=writable", "target_session_attrs="),
    (f"postgresql://u:{PASSWORD}@127.0.0.1:5432/x?keepalives_idle=soon", "keepalives_idle='soon'"),
    (f"postgresql://u:{PASSWORD}@127.0.0.1:5432/x?connect_timeout=abc", "connect_timeout='abc'"),
    ("postgresql:///x?port=5432,5433", "2 ports given for 1 host"),
    (f"postgresql://u:{PASSWORD}@127.0.0.1:5432/x?no_such_option=1", "not a valid PostgreSQL URL"),
    (f"postgresql://u:{PASSWORD}@[::1/x", "not a valid PostgreSQL URL"),
    (f"postgresql://u:{PASSWORD}%zz@127.0.0.1/x", "invalid percent-encoded"),  # libpq quotes the password
    (f"postgresql://u@127.0.0.1/x?password={PASSWORD}&sslmode=bogus", "sslmode='bogus'"),
])
def test_a_postgresql_url_no_connection_could_use_is_a_configuration_error(url: str, problem: str) -> None:
    """libpq parses these without complaint and refuses them only when connecting, as it refuses a
    server that is down: `serve` warned "the workers will open it when it is back" and was never ready."""
    pytest.importorskip("psycopg", reason="psycopg is the [postgres] extra")
    with pytest.raises(StoreConfigError) as raised:
        open_store(url, secret=SECRET)
    assert problem in str(raised.value)
    assert "pw-7731" not in str(raised.value) and "pw-7731A" not in str(raised.value)


def test_a_postgresql_url_that_only_the_server_refuses_is_not_a_configuration_error() -> None:
    """Nothing listens there: the database is down, and may come back with the same URL."""
    pytest.importorskip("psycopg", reason="psycopg is the [postgres] extra")
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(StoreError) as raised:
        open_store(f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/x?sslmode=disable&keepalives_idle=30", secret=SECRET)
    assert not isinstance(raised.value, StoreConfigError)
    # Nor a failed migration: it said "schema migration failed, nothing was changed: cannot connect…".
    assert isinstance(raised.value, StoreUnavailableError) and not isinstance(raised.value, MigrationError)
    assert "migration" not in str(raised.value) and "cannot connect" in str(raised.value)


def test_a_connection_that_keeps_breaking_is_an_unavailable_database(pg_url: str) -> None:
    """The server went away twice in a row: no fault of the work (nor of a migration)."""
    db = Database(pg_url)
    try:
        with pytest.raises(StoreUnavailableError):
            db.run(lambda tx: tx.execute("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert db.read(lambda tx: tx.fetchone("SELECT 1 AS one")) == {"one": 1}
    finally:
        db.close()
