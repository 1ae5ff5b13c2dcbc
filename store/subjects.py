"""Requests from commenters (GDPR access and erasure): what the store holds about one person, and erasing it.

An operator knows the person by an e-mail address, an IP address or a name. The store keeps
the first two as keyed pseudonyms (``hmac:<hex>@domain``, :mod:`store.privacy`), in the
comment's own fields and wherever one stood inside an ``extra`` value, or in clear where it
keeps personal data (``store_personal_data``, now or when the row was written); and people
write their address into the comment itself. So a row is this person's when:

- its ``comment_author_email`` or ``user_ip`` is the identifier's pseudonym, or the identifier
  in clear (an IP in any written form: compared in canonical form);
- its ``extra`` holds the pseudonym, or the address in clear;
- its text (``comment_content``, ``comment_author``, ``comment_author_url``, or ``extra`` in
  clear) holds the address in clear, as :func:`store.personal_text.find_personal` finds one
  (so ``xjoe@example.org`` and ``110.0.0.55`` are not ``joe@example.org`` and ``10.0.0.5``);
- its ``comment_author`` is the name, composed or decomposed alike, ignoring case and surrounding space
  (not compatibility forms: :func:`_fold_name`);
- a label or undelivered upstream report that nothing else identifies (no e-mail address, IP or
  name; a label by check id only for one of their checks; a report made from a label only with
  that label) whose text is the text of one of the person's rows found so (a report giving the
  comment by its text alone).

The check log may hold millions of rows and has no index on these columns: one SQL scan per
table picks candidates by case-insensitive substrings (a superset), and Python confirms each
with the rules above. The upstream outbox holds few rows (reports not delivered yet): all are
read. Erasing deletes by id in one transaction per table (outbox, labels, checks, in that
order): an interrupted run leaves each table whole or untouched, and running it again finishes.
Usage counters are left alone: they are counts per key and month, no personal data.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Sequence

from model.comment import Comment
from store.base import StoreBase
from store.db import Tx
from store.errors import InvalidRecordError
from store.personal_text import TooMany, canonical_address, find_personal
from store.records import as_utc, comment_to_row

#: Characters of context read on each side of a clear address found by substring, to judge it
#: as the store's finder would (what comes before and after decides whether it is one).
_WINDOW = 80
#: Ids deleted per statement (well under SQLite's parameter limit); all in one transaction.
_DELETE_CHUNK = 500
#: The text columns searched for an address in clear.
_CLEAR_COLUMNS = ("user_ip", "comment_author_email", "comment_author", "comment_author_url", "comment_content",
                  "extra")
#: The columns a pseudonym can be in.
_PSEUDONYM_COLUMNS = ("user_ip", "comment_author_email", "extra")
_DIGEST = re.compile(r"hmac:[0-9a-f]{32}")
#: The longest e-mail address a mailbox can have (RFC 5321's path limit, less the brackets), and the
#: longest name searched for.
MAX_EMAIL = 254
MAX_AUTHOR = 1000
#: Where a label or report sent without an e-mail address matched: its text is one of the person's.
BY_TEXT = "text of one of these comments (sent with no e-mail address, IP or name)"
_PORT = re.compile(r":[0-9]{1,5}")
_INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"


class SubjectError(InvalidRecordError):
    """An identifier that cannot be searched for; ``field`` is ``email``, ``ip`` or ``author``."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class Subject:
    """One person, by the identifiers the operator has: e-mail addresses (lower case, as the store
    keys them), IP addresses (canonical form) and names (stripped)."""

    emails: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()

    @classmethod
    def of(cls, *, emails: Iterable[str] = (), ips: Iterable[str] = (), authors: Iterable[str] = ()) -> "Subject":
        """Check and canonicalise the identifiers; raises :class:`SubjectError` naming the field."""
        out_emails = []
        for email in emails:
            value = _trim(email).lower()
            local, at, domain = value.rpartition("@")
            if not at or not local or not domain or any(c.isspace() for c in value) or len(value) > MAX_EMAIL:
                raise SubjectError("email", f"not an e-mail address: {_shown(email)}")
            out_emails.append(value)
        out_ips = []
        for ip in ips:
            canonical = canonical_address(_bare_address(_trim(ip)))
            if canonical is None:
                raise SubjectError("ip", f"not an IP address: {_shown(ip)}")
            out_ips.append(canonical)
        out_authors = []
        for author in authors:
            name = _trim(author)
            if not name:
                raise SubjectError("author", "an author name cannot be empty")
            if len(name) > MAX_AUTHOR:
                # (SQLite refuses a LIKE pattern over 50,000 characters, with a message that says nothing.)
                raise SubjectError("author", f"an author name is at most {MAX_AUTHOR} characters here, got {len(author)}")
            out_authors.append(name)
        subject = cls(tuple(dict.fromkeys(out_emails)), tuple(dict.fromkeys(out_ips)),
                      tuple(dict.fromkeys(out_authors)))
        if not subject:
            raise SubjectError("email", "give at least one e-mail address, IP address or author name")
        return subject

    def __bool__(self) -> bool:
        return bool(self.emails or self.ips or self.authors)


@dataclass(frozen=True)
class FoundRow:
    """One stored row about the person: its id, time, what it is (a check's tier, a label), its
    site, and where the identifiers were found (``"e-mail in comment_content"``). ``content``
    is the comment's text, for finding where else it is quoted (never printed)."""

    id: Any
    created: datetime
    kind: str
    site: str
    matched: tuple[str, ...]
    check_id: Optional[str] = None
    content: str = field(default="", repr=False)


@dataclass(frozen=True)
class SubjectData:
    """What the store holds about one person."""

    checks: tuple[FoundRow, ...]
    labels: tuple[FoundRow, ...]
    reports: tuple[FoundRow, ...]

    def __bool__(self) -> bool:
        return bool(self.checks or self.labels or self.reports)


@dataclass(frozen=True)
class Erased:
    """What :func:`forget_subject` deleted, per table."""

    checks: int
    labels: int
    reports: int


class Matcher:
    """Whether a stored comment is the person's, and where (see the module's rules)."""

    def __init__(self, store: StoreBase, subject: Subject) -> None:
        privacy = store._privacy  # the store's own keyed hashing: the pseudonyms it writes
        self.subject = subject
        # An e-mail's pseudonym is "hmac:<hex>@domain" in its own field and "hmac:<hex>@domain"
        # inside other text too: its digest part finds both.
        self._email_digests = {_DIGEST.match(privacy.pseudonym(e, email=True)).group(): e  # type: ignore[union-attr]
                               for e in subject.emails}
        self._ip_digests = {privacy.pseudonym(ip): ip for ip in subject.ips}
        self._authors = {_fold_name(a) for a in subject.authors}
        # Clear forms to look for, each with what it must turn out to be.
        self._clear: list[tuple[str, str, bool]] = []  # (substring, canonical, is e-mail)
        for email in subject.emails:
            local, _, domain = email.rpartition("@")
            self._clear += [(email, email, True), (f"{local}%40{domain}", email, True)]
        for ip in subject.ips:
            for form in _written_forms(ip):
                self._clear.append((form, ip, False))
        self._clear_res = [(re.compile(re.escape(s), re.IGNORECASE), canonical, email)
                           for s, canonical, email in self._clear]

    def sql_filter(self, prefix: str, like: str) -> tuple[str, list[str]]:
        """A WHERE condition (columns under ``prefix``) that every row of the person's meets, and
        its parameters; ``like`` is the dialect's case-insensitive LIKE."""
        terms: list[str] = []
        params: list[str] = []

        def add(columns: Sequence[str], needle: str) -> None:
            for column in columns:
                terms.append(f"{prefix}{column} {like} ? ESCAPE '!'")
                params.append(_like_pattern(needle))

        for digest in (*self._email_digests, *self._ip_digests):
            add(_PSEUDONYM_COLUMNS, digest)
        for needle, _, _ in self._clear:
            add(_CLEAR_COLUMNS, needle)
        for author in self.subject.authors:
            add(("comment_author",), author)
        return _any_of(terms), params

    def row_matches(self, row: Mapping[str, Any]) -> tuple[str, ...]:
        """Where the person's identifiers are in a stored comment's columns (empty: not theirs)."""
        found: list[str] = []
        for column in _PSEUDONYM_COLUMNS:
            value = row.get(column) or ""
            if "hmac:" in value:
                for digest in _DIGEST.findall(value):
                    if digest in self._email_digests:
                        found.append(f"e-mail in {column}")
                    elif digest in self._ip_digests:
                        found.append(f"ip in {column}")
        for column in _CLEAR_COLUMNS:
            value = row.get(column) or ""
            if value:
                found += [f"{'e-mail' if email else 'ip'} in {column}" for email in self._clear_in(value)]
        if self._authors and _fold_name(row.get("comment_author") or "") in self._authors:
            found.append("author in comment_author")
        return tuple(dict.fromkeys(found))

    def comment_matches(self, comment: Comment) -> tuple[str, ...]:
        """:meth:`row_matches` for a comment as the store keeps it (a spooled check's)."""
        return self.row_matches(comment_to_row(comment))

    def _clear_in(self, value: str) -> set[bool]:
        """Which kinds (True: e-mail, False: ip) of the person's addresses ``value`` holds in clear."""
        kinds: set[bool] = set()
        for pattern, canonical, email in self._clear_res:
            if email in kinds:
                continue
            for hit in pattern.finditer(value):
                start = max(0, hit.start() - _WINDOW)
                window = value[start:hit.end() + _WINDOW]
                try:
                    items = find_personal(window, most=len(window))
                except TooMany:
                    kinds.add(email)  # too crowded to judge: an erasure errs on the side of erasing
                    break
                at = hit.start() - start
                if any(item.start <= at < item.stop and item.email == email
                       and (item.text.lower() if email else item.text) == canonical for item in items):
                    kinds.add(email)
                    break
        return kinds


def _shown(value: str) -> str:
    """A refused identifier in a message: quoted, and cut when long."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _any_of(terms: Sequence[str]) -> str:
    """``terms`` joined by OR as a balanced tree: SQLite parses ``a OR b OR c ...`` into a tree as
    deep as the terms are many and refuses one deeper than 1,000 ("Expression tree is too large"),
    which 48 IPv6 addresses reached (21 terms each)."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({_any_of(terms[:middle])} OR {_any_of(terms[middle:])})"


def _trim(value: str) -> str:
    """``value`` without the white space and invisible characters a copy and paste brings at its ends
    (a zero-width space after a pasted address found nothing, without a word)."""
    return value.strip().strip(_INVISIBLE).strip()


def _bare_address(text: str) -> str:
    """An address as web-server logs and URLs write it, without what is no part of it: brackets and a
    port (``[2001:db8::42]:443``, ``203.0.113.7:5678``) and an IPv6 zone (``fe80::1%eth0``, which
    no visitor's address has; ``ipaddress`` keeps it, and the written forms could not be made)."""
    if text.startswith("["):
        end = text.find("]")
        if end > 0 and (end == len(text) - 1 or _PORT.fullmatch(text[end + 1:])):
            text = text[1:end]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if port.isascii() and port.isdigit():
            text = host
    return text.partition("%")[0] if ":" in text else text


def _written_forms(ip: str) -> list[str]:
    """The ways an address is commonly written in clear: IPv4 has one; IPv6 its compressed form,
    its eight groups without and with leading zeros (an IPv4-mapped address is found by its IPv4
    tail). A form written otherwise in clear ("2001:db8:0:0::42") is not found."""
    if ":" not in ip:
        return [ip]
    import ipaddress

    address = ipaddress.IPv6Address(ip)
    exploded = address.exploded
    return list(dict.fromkeys([address.compressed, ":".join(g.lstrip("0") or "0" for g in exploded.split(":")),
                               exploded]))


def _fold_name(name: str) -> str:
    """A name as names are compared: one Unicode form (an Akismet client may send "Zoë" decomposed,
    ``Zoe`` and a combining diaeresis, and the operator paste it composed), case and surrounding
    space ignored. Not compatibility forms (full-width ``Ｊｏｅ``, the ligature in ``ﬁona``) nor
    ``ß`` as ``ss``: the SQL filter could honour those one way only, so which rows were found would
    depend on the form the operator typed."""
    return unicodedata.normalize("NFC", name).strip().lower()


def _like_pattern(needle: str) -> str:
    """``%needle%`` for LIKE with '!' as the escape; a letter outside ASCII, or an ASCII one an accent
    follows when decomposed, matches any run (SQLite folds the case of ASCII letters only, a name
    may be stored composed or decomposed, and the match is confirmed in Python anyway)."""
    out = []
    decomposed = unicodedata.normalize("NFD", needle.lower())
    for i, char in enumerate(decomposed):
        accented = i + 1 < len(decomposed) and unicodedata.combining(decomposed[i + 1])
        if ord(char) > 127 or accented:
            if not out or out[-1] != "%":
                out.append("%")
        elif char in "%_!":
            out.append("!" + char)
        else:
            out.append(char)
    return "%" + "".join(out) + "%"


_COMMENT_SQL = ", ".join(f"t.{c}" for c in _CLEAR_COLUMNS)


def find_subject(store: StoreBase, subject: Subject) -> SubjectData:
    """Every check, label and undelivered upstream report about ``subject``, oldest first."""
    matcher = Matcher(store, subject)
    like = "ILIKE" if store.backend == "postgresql" else "LIKE"  # SQLite's LIKE ignores ASCII case
    where, params = matcher.sql_filter("t.", like)

    def scan(tx: Tx) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        checks = tx.fetchall(
            f"SELECT t.id, t.created, t.tier, t.blog, s.url AS site, {_COMMENT_SQL} FROM checks t "
            f"LEFT JOIN sites s ON s.id = t.site_id WHERE {where} ORDER BY t.created, t.id", params)
        labels = tx.fetchall(
            f"SELECT t.id, t.created, t.label, t.check_id, t.blog, s.url AS site, {_COMMENT_SQL} FROM feedback t "
            f"LEFT JOIN sites s ON s.id = t.site_id WHERE {where} ORDER BY t.created, t.id", params)
        reports = tx.fetchall("SELECT id, created, label, feedback_id, payload FROM upstream_outbox "
                              "WHERE delivered_at IS NULL ORDER BY id")
        return checks, labels, reports

    check_rows, label_rows, report_rows = store.database.read(scan)
    checks = [_found(r, r["tier"], matcher.row_matches(r)) for r in check_rows]
    labels = [_found(r, r["label"], matcher.row_matches(r), check_id=r["check_id"]) for r in label_rows]
    checks = [c for c in checks if c.matched]
    labels = [lab for lab in labels if lab.matched]
    # A report may give a comment by its text alone (`POST /api/v1/feedback {"comment_content": ...}`):
    # no address ties it to the person, but it holds their words (a probe found such labels and
    # their outbox reports left after `forget`, the text still to be forwarded upstream).
    texts = {row.content for row in (*checks, *labels) if row.content}
    labels += _labels_by_text(store, texts, {lab.id for lab in labels}, {str(c.id) for c in checks})
    label_ids = {lab.id for lab in labels}
    reports = []
    for row in report_rows:
        payload = _payload(row["payload"])
        matched = matcher.row_matches(payload)
        if row["feedback_id"] is not None and int(row["feedback_id"]) in label_ids:
            matched += ("report of a label above",)
        if not matched and row["feedback_id"] is None and _only_text(payload) and payload.get("comment_content") in texts:
            # (A report made from a label is judged by that label alone: it carries no e-mail address,
            # and its text matched every report of another "Thanks!".)
            matched = (BY_TEXT,)
        if matched:
            reports.append(FoundRow(int(row["id"]), as_utc(row["created"]), row["label"],
                                    str(payload.get("blog") or ""), matched,
                                    content=str(payload.get("comment_content") or "")))
    return SubjectData(tuple(checks), tuple(labels), tuple(reports))


def _only_text(row: Mapping[str, Any]) -> bool:
    """Whether nothing but its text says whose comment a label or report is (no e-mail address, IP
    or name: another person's "Thanks!" carries theirs, and stays)."""
    return not any((row.get(column) or "").strip() for column in ("comment_author_email", "user_ip", "comment_author"))


def _labels_by_text(store: StoreBase, texts: set[str], known: set[Any], checks: set[str]) -> list[FoundRow]:
    """Labels whose text is one of ``texts`` and which nothing else identifies (:func:`_only_text`),
    not already ``known``: given by check id, only for one of ``checks`` (the person's)."""
    found: list[FoundRow] = []
    ordered = sorted(texts)
    for start in range(0, len(ordered), _DELETE_CHUNK):
        chunk = ordered[start:start + _DELETE_CHUNK]
        sql = (f"SELECT t.id, t.created, t.label, t.check_id, t.blog, s.url AS site, {_COMMENT_SQL} FROM feedback t "
               f"LEFT JOIN sites s ON s.id = t.site_id WHERE COALESCE(t.comment_author_email, '') = '' "
               f"AND t.comment_content IN ({', '.join('?' for _ in chunk)}) ORDER BY t.created, t.id")
        rows = store.database.read(lambda tx, sql=sql, chunk=chunk: tx.fetchall(sql, chunk))
        found += [_found(r, r["label"], (BY_TEXT,), check_id=r["check_id"]) for r in rows
                  if int(r["id"]) not in known and _only_text(r) and (r["check_id"] is None or r["check_id"] in checks)]
    return found


def forget_subject(store: StoreBase, subject: Subject, found: Optional[SubjectData] = None) -> Erased:
    """Delete what :func:`find_subject` finds (or ``found``, from it): one transaction per table.

    The outbox first: a report by check id carries no e-mail or IP, and once its label is gone
    only its text would tie it to the person; then labels, then checks. Rows that arrive after
    the scan (the person commenting again) are not deleted: running it again takes them.
    """
    data = found if found is not None else find_subject(store, subject)
    reports = _delete(store, "upstream_outbox", [r.id for r in data.reports], "delivered_at IS NULL")
    labels = _delete(store, "feedback", [r.id for r in data.labels])
    checks = _delete(store, "checks", [r.id for r in data.checks])
    return Erased(checks=checks, labels=labels, reports=reports)


def _delete(store: StoreBase, table: str, ids: list[Any], also: str = "") -> int:
    if not ids:
        return 0
    extra = f" AND {also}" if also else ""

    def work(tx: Tx) -> int:
        deleted = 0
        for start in range(0, len(ids), _DELETE_CHUNK):
            chunk = ids[start:start + _DELETE_CHUNK]
            deleted += tx.execute(f"DELETE FROM {table} WHERE id IN ({', '.join('?' for _ in chunk)}){extra}",
                                  chunk)
        return deleted

    return store.database.run(work)


def _found(row: Mapping[str, Any], kind: str, matched: tuple[str, ...], *,
           check_id: Optional[str] = None) -> FoundRow:
    return FoundRow(row["id"] if isinstance(row["id"], str) else int(row["id"]), as_utc(row["created"]), kind,
                    str(row["site"] or row["blog"] or ""), matched, check_id, str(row["comment_content"] or ""))


def _payload(text: str) -> dict[str, Any]:
    """An outbox payload (the Akismet form, in clear) as the columns :meth:`Matcher.row_matches` reads."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)}


__all__ = ["BY_TEXT", "Erased", "FoundRow", "Matcher", "Subject", "SubjectData", "SubjectError", "find_subject",
           "forget_subject"]
