"""Requests from commenters: `commentguard privacy find/forget` and :mod:`store.subjects`, on both backends.

A person is found by e-mail (any case), IP (any written form), or name, through the pseudonyms
the store writes, inside ``extra``, in clear (``store_personal_data``) and inside the comment's
text; forgetting deletes exactly their rows (checks, labels, undelivered upstream reports).
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result

from commentguard.cli import cli
from commentguard.context import open_store_from_settings
from model.comment import Comment
from model.verdict import Reason, Verdict
from service.settings import PREFIX, Settings, load_settings
from store import CheckRecord, FeedbackRecord, Store, open_store
from store.subjects import BY_TEXT, Subject, SubjectError, find_subject, forget_subject
from store.upstream import enqueue_upstream_report, mark_upstream_delivered
from tests.conftest import TEST_SECRET_KEY

SECRET = b"test-secret-0123456789abcdef"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url, secret=SECRET) as opened:
        yield opened


def _comment(content: str = "Nice post.", **fields: Any) -> Comment:
    base: dict[str, Any] = {"comment_author": "Someone Else", "comment_author_email": "other@example.net",
                            "user_ip": "198.51.100.9", "blog": "https://blog.example.org"}
    base.update(fields)
    return Comment(comment_content=content, **base)


def _check(store: Store, comment: Comment, tier: str = "spam") -> str:
    record = CheckRecord.from_verdict(comment, Verdict(tier, 0.9, (Reason("r", 1.0),), "m-1"), surface="akismet")
    store.record_check(record)
    return record.id


def _found_ids(store: Store, **identifiers: Any) -> set[str]:
    return {str(r.id) for r in find_subject(store, Subject.of(**identifiers)).checks}


def _count(store: Store, table: str) -> int:
    return int(store.database.read(lambda tx: tx.fetchone(f"SELECT COUNT(*) AS n FROM {table}"))["n"])


# --- finding ---------------------------------------------------------------------------------

def test_email_is_found_through_its_pseudonym_whatever_its_case(store: Store) -> None:
    mine = _check(store, _comment(comment_author_email="Joe.Bloggs@Example.org"))
    _check(store, _comment())
    _check(store, _comment(comment_author_email="joe.bloggs@example.com"))
    assert _found_ids(store, emails=["JOE.BLOGGS@example.ORG"]) == {mine}
    found = find_subject(store, Subject.of(emails=["joe.bloggs@example.org"])).checks[0]
    assert found.matched == ("e-mail in comment_author_email",) and found.kind == "spam"


def test_ipv6_written_two_ways_is_one_address(store: Store) -> None:
    mine = _check(store, _comment(user_ip="2001:DB8::42"))
    _check(store, _comment(user_ip="2001:db8::43"))
    assert _found_ids(store, ips=["2001:db8:0:0:0:0:0:42"]) == {mine}
    assert _found_ids(store, ips=["2001:0db8:0000:0000:0000:0000:0000:0042"]) == {mine}


def test_author_matches_exactly_ignoring_case_and_space(store: Store) -> None:
    mine = _check(store, _comment(comment_author="  Zoë Bloggs "))
    _check(store, _comment(comment_author="Zoë Bloggs Jr"))
    _check(store, _comment(comment_author="Zoe Bloggs"))
    assert _found_ids(store, authors=["ZOË BLOGGS"]) == {mine}


def test_a_name_sent_decomposed_is_the_name_typed_composed(store: Store) -> None:
    """Found by a probe: an Akismet client sent "Zoë" as "Zoe" and a combining diaeresis (NFD); the
    operator's "Zoë" (NFC) did not find it, nor the other way round."""
    decomposed = _check(store, _comment(comment_author="Zoe\u0308"))
    composed = _check(store, _comment(comment_author="Zo\u00eb"))
    _check(store, _comment(comment_author="Zoe"))
    assert _found_ids(store, authors=["ZO\u00cb"]) == {decomposed, composed}
    assert _found_ids(store, authors=["zoe\u0308"]) == {decomposed, composed}
    # Compatibility forms are other names, whichever form is typed (the SQL filter cannot fold them
    # both ways: a probe found the full-width name by the full-width form only).
    full_width = _check(store, _comment(comment_author="\uff2aoe"))
    assert full_width not in _found_ids(store, authors=["Joe"])
    assert _found_ids(store, authors=["\uff2aoe"]) == {full_width}


@pytest.mark.parametrize("written", ["[2001:db8::42]", "[2001:db8::42]:443", "2001:db8::42%eth0"])
def test_an_ip_as_logs_write_it_is_the_address(store: Store, written: str) -> None:
    """Found by a probe: a zone (``%eth0``) was a traceback; brackets and ports are how web-server
    logs write addresses."""
    mine = _check(store, _comment(user_ip="2001:db8::42"))
    _check(store, _comment(user_ip="2001:db8::43"))
    assert _found_ids(store, ips=[written]) == {mine}


def test_an_ipv4_address_with_a_port_is_the_address(store: Store) -> None:
    mine = _check(store, _comment(user_ip="203.0.113.7"))
    assert _found_ids(store, ips=["203.0.113.7:5678"]) == {mine}


def test_identifiers_pasted_with_invisible_characters(store: Store) -> None:
    mine = _check(store, _comment(comment_author_email="zoe@example.org", user_ip="203.0.113.7"))
    assert _found_ids(store, emails=["zoe@example.org\u200b"]) == {mine}
    assert _found_ids(store, ips=["\ufeff203.0.113.7 "]) == {mine}


def test_pseudonyms_inside_extra_are_found(store: Store) -> None:
    by_email = _check(store, _comment(extra={"POST_note": "reach me at Joe@Example.org please"}))
    by_ip = _check(store, _comment(extra={"HTTP_X_FORWARDED_FOR": "10.0.0.5"}))
    in_text = _check(store, _comment(extra={"POST_note": "behind the proxy at 10.0.0.5 today"}))
    _check(store, _comment(extra={"POST_note": "reach me at jo@example.org"}))
    stored = store.get_check(by_email)
    assert stored is not None and "Joe@Example.org" not in json.dumps(stored.comment.extra)  # hashed, not clear
    assert _found_ids(store, emails=["joe@example.org"]) == {by_email}
    assert _found_ids(store, ips=["10.0.0.5"]) == {by_ip, in_text}


def test_addresses_written_in_the_comment_are_found_and_lookalikes_not(store: Store) -> None:
    mine = _check(store, _comment("Mail me at JOE@example.org or find me on 10.0.0.5."))
    _check(store, _comment("Write to xjoe@example.org, or to joe@example.org.uk; my box is 110.0.0.55"))
    assert _found_ids(store, emails=["joe@example.org"]) == {mine}
    assert _found_ids(store, ips=["10.0.0.5"]) == {mine}
    v6 = _check(store, _comment("my router: 2001:0db8:0000:0000:0000:0000:0000:0042"))
    assert _found_ids(store, ips=["2001:db8::42"]) == {v6}


def test_clear_values_are_found_when_the_store_keeps_personal_data(store_url: str) -> None:
    with open_store(store_url, secret=SECRET, store_personal_data=True) as store:
        mine = _check(store, _comment(comment_author_email="Joe@Example.ORG", user_ip="2001:DB8:0:0:0:0:0:42",
                                      extra={"REMOTE_ADDR": "2001:db8::42"}))
        _check(store, _comment())
        stored = store.get_check(mine)
        assert stored is not None and stored.comment.comment_author_email == "Joe@Example.ORG"
        assert _found_ids(store, emails=["joe@example.org"]) == {mine}
        found = find_subject(store, Subject.of(ips=["2001:db8::42"])).checks
        assert [str(r.id) for r in found] == [mine] and set(found[0].matched) == {"ip in user_ip", "ip in extra"}


def test_bad_identifiers_name_their_field() -> None:
    with pytest.raises(SubjectError) as caught:
        Subject.of(ips=["10.0.0.256"])
    assert caught.value.field == "ip"
    with pytest.raises(SubjectError) as caught:
        Subject.of(emails=["joe at example.org"])
    assert caught.value.field == "email"


# --- forgetting ------------------------------------------------------------------------------

def test_forget_deletes_exactly_the_persons_rows_and_their_outbox_reports(store: Store) -> None:
    joe = _comment("Buy now", comment_author_email="joe@example.org", user_ip="192.0.2.1")
    other = _comment("Lovely recipe")
    joe_check, other_check = _check(store, joe), _check(store, other)
    joe_label = store.add_feedback(FeedbackRecord(label="spam", comment=joe, check_id=joe_check))
    other_label = store.add_feedback(FeedbackRecord(label="ham", comment=other, check_id=other_check))
    # Reports waiting for the upstream: Joe's in clear, one by check id (no address: found by its
    # label), another person's, and a delivered one of Joe's (its payload is gone already).
    enqueue_upstream_report(store, "spam", {"comment_content": "Buy now", "user_ip": "192.0.2.1",
                                            "comment_author_email": "joe@example.org"})
    enqueue_upstream_report(store, "spam", {"comment_content": "Buy now", "user_ip": "0.0.0.0"}, joe_label)
    enqueue_upstream_report(store, "ham", {"comment_content": "Lovely recipe", "user_ip": "198.51.100.9"},
                            other_label)
    delivered = enqueue_upstream_report(store, "spam", {"user_ip": "192.0.2.1"})
    mark_upstream_delivered(store, delivered)
    subject = Subject.of(emails=["joe@example.org"])
    found = find_subject(store, subject)
    assert [len(found.checks), len(found.labels), len(found.reports)] == [1, 1, 2]
    erased = forget_subject(store, subject)
    assert (erased.checks, erased.labels, erased.reports) == (1, 1, 2)
    assert store.get_check(joe_check) is None and store.get_check(other_check) is not None
    assert [r.id for r in store.list_feedback()] == [other_label]
    left = store.database.read(lambda tx: tx.fetchall("SELECT id, feedback_id FROM upstream_outbox ORDER BY id"))
    assert [(r["id"], r["feedback_id"]) for r in left][-1] == (delivered, None) and len(left) == 2
    assert not find_subject(store, subject)


def test_reports_giving_only_the_persons_text_are_found_and_forgotten(store: Store) -> None:
    """Found by a probe: a report by text alone (`POST /api/v1/feedback {"comment_content": ...}`)
    is stored with no address; `forget` left it, and its outbox report, holding the person's words
    and still to be forwarded upstream."""
    text = "My unique recipe for plum jam, by Zoe"
    zoe = _comment(text, comment_author_email="zoe@example.org", user_ip="203.0.113.7")
    zoe_check = _check(store, zoe)
    by_text = store.add_feedback(FeedbackRecord(label="spam", comment=Comment(comment_content=text)))
    enqueue_upstream_report(store, "spam", {"comment_content": text})
    # The same words with anything that says whose they are belong to that person, and stay (a second
    # probe: forgetting one "Thanks!" took others' labels, and the reports made from others' labels,
    # which carry no e-mail address).
    others = [store.add_feedback(FeedbackRecord(label="ham", comment=_comment(text))),
              store.add_feedback(FeedbackRecord(label="ham", comment=Comment(comment_content=text,
                                                                            user_ip="10.0.0.9")))]
    someone = _check(store, _comment(text, comment_author="", comment_author_email="", user_ip=""))
    others.append(store.add_feedback(FeedbackRecord(label="ham", comment=Comment(comment_content=text),
                                                    check_id=someone)))
    enqueue_upstream_report(store, "ham", {"comment_content": text, "comment_author_email": "x@example.net"})
    enqueue_upstream_report(store, "ham", {"comment_content": text, "user_ip": "198.51.100.1"})
    enqueue_upstream_report(store, "ham", {"comment_content": text, "user_ip": "0.0.0.0"}, others[2])
    subject = Subject.of(emails=["zoe@example.org"])
    found = find_subject(store, subject)
    assert [str(c.id) for c in found.checks] == [zoe_check]
    assert [lab.id for lab in found.labels] == [by_text] and found.labels[0].matched == (BY_TEXT,)
    assert len(found.reports) == 1 and found.reports[0].matched == (BY_TEXT,)
    erased = forget_subject(store, subject)
    assert (erased.checks, erased.labels, erased.reports) == (1, 1, 1)
    assert sorted(r.id for r in store.list_feedback()) == sorted(others)
    assert _count(store, "upstream_outbox") == 3 and store.get_check(someone) is not None


def test_many_identifiers_in_one_run(store: Store) -> None:
    """Found by a probe: 48 IPv6 addresses (a commenter on privacy addresses) made SQLite refuse the
    search ("Expression tree is too large (maximum depth 1000)")."""
    mine = _check(store, _comment(user_ip="2001:db8::77"))
    ips = [f"2001:db8::{n:x}" for n in range(1, 300)]
    emails = [f"person{n}@example.org" for n in range(300)]
    assert _found_ids(store, ips=ips, emails=emails) == {mine}


def test_over_long_identifiers_are_refused_clearly() -> None:
    with pytest.raises(SubjectError) as caught:
        Subject.of(authors=["x" * 50_001])
    assert caught.value.field == "author" and "at most 1000" in str(caught.value)
    with pytest.raises(SubjectError) as caught:
        Subject.of(emails=["a" * 300 + "@example.org"])
    assert caught.value.field == "email" and len(str(caught.value)) < 200


# --- the command line ------------------------------------------------------------------------

@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> Settings:
    for name in list(os.environ):
        if name.startswith(PREFIX) and not name.startswith(PREFIX + "TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(PREFIX + "SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv(PREFIX + "DATABASE_URL", store_url)
    return load_settings()


@pytest.fixture
def cli_store(env: Settings) -> Iterator[Store]:
    with open_store_from_settings(env) as opened:
        yield opened


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _people(store: Store) -> tuple[str, str, int]:
    joe = _comment("Contact me: joe@example.org", comment_author="Joe")
    joe_check = _check(store, joe)
    other_check = _check(store, _comment())
    label = store.add_feedback(FeedbackRecord(label="spam", comment=joe, check_id=joe_check))
    return joe_check, other_check, label


def test_cli_find_lists_checks_and_labels(cli_store: Store) -> None:
    joe_check, other_check, label = _people(cli_store)
    result = run("privacy", "find", "--email", "Joe@Example.org", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["id"] for c in data["checks"]] == [joe_check] and data["checks"][0]["tier"] == "spam"
    assert [(lab["id"], lab["label"]) for lab in data["labels"]] == [(label, "spam")]
    text = run("privacy", "find", "--author", "joe").stdout
    assert joe_check in text and other_check not in text and "keeps what it learnt" in text


def test_cli_without_identifier_is_a_usage_error_naming_the_options(env: Settings) -> None:
    result = run("privacy", "forget", "--yes")
    assert result.exit_code == 2 and "--email, --ip or --author" in result.output
    result = run("privacy", "find", "--ip", "not-an-ip")
    assert result.exit_code == 2 and "--ip" in result.output and "Traceback" not in result.output


def test_cli_forget_refused_leaves_everything(cli_store: Store) -> None:
    _people(cli_store)
    result = run("privacy", "forget", "--email", "joe@example.org", input="n\n")
    assert result.exit_code == 1 and "Delete 1 check(s), 1 label(s)" in result.output
    assert _count(cli_store, "checks") == 2 and _count(cli_store, "feedback") == 1


def test_cli_forget_yes_deletes_and_reports_counts(cli_store: Store) -> None:
    joe_check, other_check, _ = _people(cli_store)
    result = run("privacy", "forget", "--email", "joe@example.org", "--yes")
    assert result.exit_code == 0, result.output
    assert "deleted 1 check(s), 1 label(s)" in result.stdout
    assert cli_store.get_check(joe_check) is None and cli_store.get_check(other_check) is not None
    assert _count(cli_store, "feedback") == 0


def test_cli_lists_retrain_reports_quoting_the_persons_comments(cli_store: Store, env: Settings) -> None:
    text = 'Contact me: <joe@example.org> & "friends"'
    joe = _comment(text, comment_author="Joe")
    cli_store.add_feedback(FeedbackRecord(label="spam", comment=joe))
    assert env.models_dir is not None
    quoting = env.models_dir / "20260101T000000Z-aaaa" / "report.html"
    other = env.models_dir / "20260102T000000Z-bbbb" / "report.html"
    quoting.parent.mkdir(parents=True)
    other.parent.mkdir(parents=True)
    # As training.report writes a label's row: the text escaped, the author as a byline.
    quoting.write_text(f"<td class='text'>{html.escape(text)}<br><span class='muted'>— Joe</span></td>")
    other.write_text("<td class='text'>Lovely recipe</td>")
    result = run("privacy", "find", "--author", "joe", "--json")
    assert json.loads(result.stdout)["retrain_reports"] == [str(quoting)]
    result = run("privacy", "forget", "--author", "joe", "--yes")
    assert str(quoting) in result.stdout and str(other) not in result.stdout
    assert "keeps what it learnt until the next `commentguard retrain`" in result.stdout
    assert quoting.exists()  # listed, never edited


def test_cli_counts_spooled_checks(cli_store: Store, env: Settings) -> None:
    from service.spool import write_spool

    joe = CheckRecord.from_verdict(_comment(user_ip="10.0.0.5"), Verdict("ham", 0.1, (), "m"), surface="json")
    other = CheckRecord.from_verdict(_comment(), Verdict("ham", 0.1, (), "m"), surface="json")
    write_spool(env.data_dir / "spool", [joe, other, joe], {}, cli_store.minimised)
    data = json.loads(run("privacy", "find", "--ip", "10.0.0.5", "--json").stdout)
    assert data["spooled_checks"] == {"lines": 2, "files": 1, "unreadable_files": 0}
