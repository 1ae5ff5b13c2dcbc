"""Tests of the training-data loaders (training.loaders and training.formats).

Every example file is written here into tmp_path with made-up texts; the tests
at the end read the real corpora from ../shared/data and skip when it is absent.
"""
from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path

import pytest

from training.loaders import (
    DataFormatError,
    LabeledComment,
    RowProblem,
    SkippedRow,
    detect_format,
    iter_file,
    load_file,
    load_files,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def problem_lines(data_problems: list[RowProblem]) -> list[int]:
    return [p.line for p in data_problems]


# --- generic CSV and JSON Lines ------------------------------------------------------------

def test_generic_csv_maps_fields_labels_and_extra(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a.csv",
        "comment_content,label,comment_author,section\n"
        "Buy cheap watches now,spam,Bob,news\n"
        "Nice write-up on tomatoes,ham,Ann,garden\n"
        "Win a prize today, SPAM ,,news\n"
        "Thanks for the recipe,0,Cy,food\n"
        "Click my profile,1,Dee,food\n",
    )
    data = load_file(path)
    assert [r.label for r in data.records] == [1, 0, 1, 0, 1]
    assert [r.line for r in data.records] == [2, 3, 4, 5, 6]
    first = data.records[0]
    assert first.comment.comment_content == "Buy cheap watches now"
    assert first.comment.comment_author == "Bob"
    assert first.comment.extra == {"section": "news"}
    assert first.source == str(path)
    assert data.problems == []


def test_generic_csv_accepts_content_alias_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "b.csv", "\ufeffContent,Label\r\nhello there friend,ham\r\nfree pills,spam\r\n")
    data = load_file(path)
    assert [(r.comment.comment_content, r.label) for r in data.records] == [
        ("hello there friend", 0), ("free pills", 1)]
    assert data.sources[0]["format"] == "generic"


def test_generic_jsonl_keeps_string_extras_and_drops_non_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path, "c.jsonl",
        '{"comment_content": "Great post about bikes", "label": "ham", "topic": "bikes", "score": 3}\n'
        '{"content": "cheap loans here", "label": 1, "comment_author_url": "http://x.example",'
        ' "comment_context": ["money", "loans"]}\n',
    )
    data = load_file(path)
    ham, spam = data.records
    assert ham.label == 0 and ham.comment.extra == {"topic": "bikes"}
    assert spam.label == 1 and spam.comment.comment_content == "cheap loans here"
    assert spam.comment.comment_author_url == "http://x.example"
    assert spam.comment.comment_context == ("money", "loans")


def test_generic_csv_malformed_rows_are_reported_with_their_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bad.csv",
        "comment_content,label\n"            # 1
        "fine text,ham\n"                    # 2
        "too,many,columns\n"                 # 3
        "odd label,maybe\n"                  # 4
        ",spam\n"                            # 5 empty text
        '"a text that\nruns over\nthree lines",spam\n'  # 6-8
        "no label,\n"                        # 9
        "last good one,spam\n",              # 10
    )
    data = load_file(path)
    assert [r.line for r in data.records] == [2, 6, 10]
    assert data.records[1].comment.comment_content == "a text that\nruns over\nthree lines"
    assert problem_lines(data.problems) == [3, 4, 5, 9]
    assert "columns" in data.problems[0].message
    assert "maybe" in data.problems[1].message
    assert "empty" in data.problems[2].message
    assert "missing label" in data.problems[3].message
    assert data.sources[0]["rows_invalid"] == 4


def test_generic_jsonl_malformed_rows_are_reported_with_their_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bad.jsonl",
        '{"comment_content": "ok one", "label": "ham"}\n'       # 1
        "{not json\n"                                           # 2
        "[1, 2]\n"                                              # 3
        "\n"                                                    # 4 blank: not a row
        '{"comment_content": "typed", "label": "spam", "comment_author": 5}\n'  # 5
        '{"comment_content": "no label here"}\n'                # 6
        '{"label": "spam", "comment_author": "x"}\n'           # 7 no text
        '{"comment_content": "bool label", "label": true}\n'   # 8
        '{"comment_content": "ok two", "label": 0}\n',          # 9
    )
    data = load_file(path)
    assert [r.line for r in data.records] == [1, 9]
    assert problem_lines(data.problems) == [2, 3, 5, 6, 7, 8]
    assert "JSON" in data.problems[0].message
    assert "JSON object" in data.problems[1].message
    assert "comment_author" in data.problems[2].message
    assert data.sources[0]["rows_read"] == 8


def test_generic_csv_without_label_column_is_a_format_error(tmp_path: Path) -> None:
    path = write(tmp_path, "nolabel.csv", "comment_content,author\nhi,bob\n")
    with pytest.raises(DataFormatError, match="label"):
        load_file(path, "generic")


def test_csv_header_with_a_repeated_column_is_a_format_error(tmp_path: Path) -> None:
    path = write(tmp_path, "twice.csv", "content,label,Content\nx,spam,y\n")
    with pytest.raises(DataFormatError, match="repeats content"):
        load_file(path)


# --- YouTube --------------------------------------------------------------------------------

YOUTUBE_CSV = (
    "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"
    "IDTOKENAAA111,Zed Q,2014-01-02T03:04:05,\"subscribe to my channel pls\ufeff\",1\n"
    "IDTOKENBBB222,Mia R,,this song takes me back\ufeff,0\n"
)


def test_youtube_maps_content_and_author_and_strips_bom(tmp_path: Path) -> None:
    data = load_file(write(tmp_path, "yt.csv", YOUTUBE_CSV))
    spam, ham = data.records
    assert (spam.label, ham.label) == (1, 0)
    assert spam.comment.comment_content == "subscribe to my channel pls"
    assert spam.comment.comment_author == "Zed Q"
    assert ham.comment.comment_content == "this song takes me back"


def test_youtube_never_exposes_date_or_comment_id(tmp_path: Path) -> None:
    for record in load_file(write(tmp_path, "yt.csv", YOUTUBE_CSV)).records:
        dumped = repr(record.comment.to_dict(include_empty=True))
        assert "IDTOKEN" not in dumped and "2014-01-02" not in dumped
        assert record.comment.comment_date_gmt == ""
        assert not {"date", "comment_id", "DATE", "COMMENT_ID"} & set(record.comment.extra)


def test_youtube_joined_file_keeps_video_as_grouping_key(tmp_path: Path) -> None:
    path = write(
        tmp_path, "all.csv",
        "VIDEO,COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"
        "Clip1,IDTOKENCCC,Al,2015-05-05T00:00:00,check my page,1\n",
    )
    (record,) = load_file(path).records
    assert record.comment.extra == {"video": "Clip1"}
    assert "IDTOKEN" not in repr(record)


def test_youtube_malformed_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path, "yt_bad.csv",
        "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"
        "a,b,c,fine comment,0\n"
        "a,b,c,bad class,2\n"
        "a,b,short row\n"
        "a,b,c,,1\n",
    )
    data = load_file(path, "youtube")
    assert len(data.records) == 1
    assert problem_lines(data.problems) == [3, 4, 5]


# --- SMS ------------------------------------------------------------------------------------

def test_sms_lines_and_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path, "sms.txt",
        "ham\tsee you at lunch\n"        # 1
        "spam\tWIN a car! text 555\n"    # 2
        "no tab on this line\n"          # 3
        "maybe\tunknown label\n"         # 4
        "spam\t\n"                       # 5 empty text
        "ham\ttabs\tinside text\n",      # 6
    )
    data = load_file(path)
    assert data.sources[0]["format"] == "sms"
    assert [(r.line, r.label) for r in data.records] == [(1, 0), (2, 1), (6, 0)]
    assert data.records[2].comment.comment_content == "tabs\tinside text"
    assert problem_lines(data.problems) == [3, 4, 5]


def test_sms_accepts_a_label_header_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sms_h.tsv", "Label\tSMS\nham\tok see you\nspam\tfree ringtone\n")
    assert detect_format(path) == "sms"
    data = load_file(path)
    assert [r.line for r in data.records] == [2, 3] and data.problems == []


def test_undecodable_line_after_the_head_is_a_row_problem(tmp_path: Path) -> None:
    good = "".join(f"ham\tmessage number {i}\n" for i in range(50000)).encode()
    assert len(good) > 1 << 20  # past the sample that decides whether the file is UTF-8
    path = tmp_path / "late.txt"
    path.write_bytes(good + "spam\tcaf\xe9 prize\n".encode("latin-1") + b"ham\tlast one\n")
    data = load_file(path, "sms")
    assert problem_lines(data.problems) == [50001]
    assert "UTF-8" in data.problems[0].message
    assert data.records[-1].line == 50002


# --- WordPress WXR --------------------------------------------------------------------------

def wxr(version: str, comments: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/{version}/excerpt/"'
        f' xmlns:wp="http://wordpress.org/export/{version}/">\n'
        "<channel><title>My Blog</title><link>https://blog.example</link>\n"
        "<item><title>Post One</title><link>https://blog.example/one/</link>\n"
        f"{comments}</item>\n"
        "<item><title>Post Two</title><link>https://blog.example/two/</link>\n"
        + wp_comment("1", "a second post reply") +
        "</item></channel></rss>\n"
    )


def wp_comment(approved: str, text: str, author: str = "Sam") -> str:
    return (
        "<wp:comment><wp:comment_id>7</wp:comment_id>"
        f"<wp:comment_author><![CDATA[{author}]]></wp:comment_author>"
        "<wp:comment_author_email>sam@mail.example</wp:comment_author_email>"
        "<wp:comment_author_url>http://sam.example</wp:comment_author_url>"
        "<wp:comment_author_IP>192.0.2.9</wp:comment_author_IP>"
        "<wp:comment_date_gmt>2020-02-03 04:05:06</wp:comment_date_gmt>"
        f"<wp:comment_content><![CDATA[{text}]]></wp:comment_content>"
        f"<wp:comment_approved>{approved}</wp:comment_approved>"
        "<wp:comment_type>comment</wp:comment_type>"
        "<wp:commentmeta><wp:meta_key>k</wp:meta_key></wp:commentmeta>"
        "</wp:comment>\n"
    )


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_wxr_spam_approved_pending_trash(tmp_path: Path, version: str) -> None:
    comments = (
        wp_comment("spam", "cheap pills online")        # 1
        + wp_comment("1", "Thanks, this helped me")     # 2
        + wp_comment("0", "pending one")                # 3
        + wp_comment("trash", "trashed one")            # 4
        + wp_comment("post-trashed", "post gone")       # 5
        + wp_comment("weird", "odd status")             # 6
    )
    data = load_file(write(tmp_path, "export.xml", wxr(version, comments)))
    assert [(r.line, r.label) for r in data.records] == [(1, 1), (2, 0), (7, 0)]
    spam = data.records[0].comment
    assert spam.comment_content == "cheap pills online"
    assert (spam.comment_author, spam.comment_author_email) == ("Sam", "sam@mail.example")
    assert (spam.comment_author_url, spam.user_ip) == ("http://sam.example", "192.0.2.9")
    assert (spam.comment_type, spam.comment_date_gmt) == ("comment", "2020-02-03 04:05:06")
    assert (spam.blog, spam.permalink) == ("https://blog.example", "https://blog.example/one/")
    assert data.records[2].comment.permalink == "https://blog.example/two/"
    assert problem_lines(data.problems) == [6]
    source = data.sources[0]
    assert (source["format"], source["rows_skipped"], source["rows_read"]) == ("wordpress", 3, 7)


def test_wxr_pending_rows_stream_as_skipped(tmp_path: Path) -> None:
    rows = list(iter_file(write(tmp_path, "e.xml", wxr("1.2", wp_comment("0", "pending")))))
    assert isinstance(rows[0][1], SkippedRow) and rows[0][0] == 1
    assert isinstance(rows[1][1], LabeledComment)


def test_broken_xml_raises_format_error(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.xml", wxr("1.2", wp_comment("1", "hi"))[:-40])
    with pytest.raises(DataFormatError, match="broken.xml.*XML"):
        load_file(path)


def test_xml_that_is_not_wxr_raises_format_error(tmp_path: Path) -> None:
    path = write(tmp_path, "feed.xml", "<feed><entry>hi</entry></feed>")
    with pytest.raises(DataFormatError, match="feed.xml.*not a WordPress export"):
        load_file(path)


# --- WordPress spam CSV ---------------------------------------------------------------------

def test_wordpress_csv_maps_metadata_and_drops_numbers_and_dates(tmp_path: Path) -> None:
    path = write(
        tmp_path, "wp.csv",
        "comment_number,author,website,email,ip,submit_time,year,month,day,content,post_title,label\n"
        '991,shoe deals,http://shoes.example/,deal@mail.example,198.51.100.4,5:46 pm,2017,05,16,'
        '"Lovely article,\n will bookmark",My Capstone,spam\n',
    )
    (record,) = load_file(path).records
    c = record.comment
    assert (record.label, record.line) == (1, 2)
    assert c.comment_content == "Lovely article,\n will bookmark"
    assert (c.comment_author, c.comment_author_url) == ("shoe deals", "http://shoes.example/")
    assert (c.comment_author_email, c.user_ip) == ("deal@mail.example", "198.51.100.4")
    dumped = repr(c.to_dict(include_empty=True))
    assert "991" not in dumped and "5:46" not in dumped and "2017" not in dumped
    assert c.extra == {}


# --- detection ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.xml", wxr("1.2", wp_comment("1", "x")), "wordpress"),
        ("sms", "spam\tfree stuff\nham\thi\n", "sms"),
        ("yt.csv", YOUTUBE_CSV, "youtube"),
        ("wp.csv", "comment_number,author,website,content,label\n1,a,b,c,spam\n", "wordpress_csv"),
        # The layout the README gives, without comment_number: author and website must not end
        # up unused in a generic row's extras.
        ("wp2.csv", "author,website,email,ip,content,label\na,http://b.example,c@d.example,1.2.3.4,x,spam\n",
         "wordpress_csv"),
        ("wp16.xml", wxr("1.2", wp_comment("1", "x")).replace('encoding="UTF-8"', 'encoding="UTF-16"'),
         "wordpress"),
        ("g.csv", "comment_content,label\nhi,ham\n", "generic"),
        ("g.txt", "content,label\nhi,ham\n", "generic"),
        ("g.jsonl", '{"comment_content": "hi", "label": "ham"}\n', "generic"),
        ("g.json", '\ufeff{"content": "hi", "label": 0}\n', "generic"),
        ("mislabelled.csv", "ham\tthis is really sms\n", "sms"),
    ],
)
def test_detect_format_by_content(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path, name, text, "utf-16" if name.startswith("wp16") else "utf-8")
    assert detect_format(path) == expected
    assert load_file(path).records  # and the format detected reads it


def test_the_readme_wordpress_layout_keeps_its_metadata(tmp_path: Path) -> None:
    path = write(tmp_path, "wp.csv", "author,website,email,ip,content,label\n"
                                     "Bo,http://pills.example,bo@mail.example,192.0.2.1,Cheap pills here,spam\n")
    (row,) = load_file(path).records
    assert (row.comment.comment_author, row.comment.comment_author_url, row.comment.user_ip) == (
        "Bo", "http://pills.example", "192.0.2.1")


@pytest.mark.parametrize("name, text", [
    ("g.csv", "comment_content,label\rhello there friend,ham\rbuy cheap pills now,spam\r"),
    ("sms.txt", "ham\thello how are you\rspam\tWIN a free prize now\rham\tsee you at lunch\r"),
])
@pytest.mark.parametrize("fmt", [None, "forced"])
def test_lone_carriage_return_line_endings_are_refused_clearly(tmp_path: Path, name: str, text: str,
                                                               fmt: str | None) -> None:
    # Read as one line, the SMS file was one ham row holding a spam message.
    path = write(tmp_path, name, text)
    forced = ("sms" if name.startswith("sms") else "generic") if fmt else None
    with pytest.raises(DataFormatError, match="lone carriage return"):
        load_files([path], forced)


def test_a_long_multi_line_csv_field_is_read_whole(tmp_path: Path) -> None:
    long_text = "first paragraph\n" + "word " * 30_000 + "\nthis paragraph is part of the long comment"
    path = write(tmp_path, "long.csv", "comment_content,label\nshort one,ham\n"
                                       f'"{long_text}",spam\nanother,ham\n')
    data = load_file(path)
    assert [r.comment.comment_content for r in data.records] == ["short one", long_text, "another"]
    assert data.problems == []


def test_an_unreadable_csv_record_ends_the_file_instead_of_becoming_rows(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A quote never closed swallows the rest; past the field limit the reader gives up in the
    # middle of the record, and what followed used to be read as rows (with labels from the text).
    import csv

    monkeypatch.setattr(csv, "field_size_limit", csv.field_size_limit)
    old = csv.field_size_limit(1000)
    try:
        path = write(tmp_path, "open.csv", "comment_content,label\nfine,ham\n"
                                           '"never closed ' + "x" * 2000 + '\nspam text,spam\nham text,ham\n')
        data = load_file(path)
    finally:
        csv.field_size_limit(old)
    assert [r.comment.comment_content for r in data.records] == ["fine"]
    (problem,) = data.problems
    assert problem.line == 3 and "not read past line" in problem.message


def test_a_named_format_still_reports_conflicts_with_the_seed(tmp_path: Path) -> None:
    from training.seed import seed_files
    from training.train import load_training_data

    seed = load_files(list(seed_files()))
    ham = [r.comment.comment_content for r in seed.records if r.label == 0][:3]
    lines = "".join(f'{{"comment_content": {json.dumps(t)}, "label": "spam"}}\n' for t in ham)
    path = write(tmp_path, "relabelled.jsonl", lines + '{"comment_content": "brand new", "label": "spam"}\n')
    for fmt in (None, "generic"):
        data = load_training_data([path], fmt=fmt)
        assert len(data.problems) == 3 and all("conflicting label" in p.message for p in data.problems)
        (source,) = [s for s in data.sources if s["path"] == str(path)]
        assert (source["rows_read"], source["rows_kept"], source["duplicates_removed"]) == (4, 1, 3)


@pytest.mark.parametrize(
    ("text", "hint"),
    [("name,age\nbob,3\n", "first line"), ("", "empty"), ('[{"content": "x"}]\n', "JSON array")],
)
def test_unknown_format_names_the_file_and_what_was_expected(tmp_path: Path, text: str, hint: str) -> None:
    path = write(tmp_path, "mystery.dat", text)
    with pytest.raises(DataFormatError) as info:
        load_file(path)
    message = str(info.value)
    assert "mystery.dat" in message and hint in message and "expected" in message


def test_unknown_format_name_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="unknown format 'excel'"):
        load_file(write(tmp_path, "x.csv", "content,label\nhi,ham\n"), "excel")


def test_iso_8859_1_file_raises_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "latin.csv", "comment_content,label\ncaf\xe9 au lait,ham\n", encoding="latin-1")
    for fmt in (None, "generic"):
        with pytest.raises(DataFormatError, match=r"latin\.csv:2: not UTF-8.*0xe9"):
            load_file(path, fmt)


# --- duplicates -----------------------------------------------------------------------------

def test_duplicates_ignore_case_bom_zero_width_and_outer_spaces(tmp_path: Path) -> None:
    path = write(
        tmp_path, "dups.jsonl",
        '{"content": "Check out my channel", "label": "spam"}\n'
        '{"content": "  check OUT my channel\\ufeff", "label": "spam"}\n'
        '{"content": "check\\u200b out my channel", "label": "spam"}\n'
        '{"content": "check out my channel!", "label": "spam"}\n',
    )
    data = load_file(path)
    assert [r.line for r in data.records] == [1, 4]
    assert data.sources[0]["duplicates_removed"] == 2
    assert data.problems == []


def test_conflicting_duplicate_keeps_first_and_reports_later(tmp_path: Path) -> None:
    first = write(tmp_path, "one.csv", "content,label\nsee you soon,ham\nbuy now,spam\n")
    second = write(tmp_path, "two.tsv", "spam\tSee you soon\nspam\tbuy now\nham\tnew text\n")
    data = load_files([first, second])
    assert [(r.source, r.line, r.label) for r in data.records] == [
        (str(first), 2, 0), (str(first), 3, 1), (str(second), 3, 0)]
    (problem,) = data.problems
    assert (problem.source, problem.line) == (str(second), 1)
    assert f"{first}:2" in problem.message and "conflicting" in problem.message
    assert data.sources[1]["duplicates_removed"] == 2


def test_source_entries_account_for_every_row(tmp_path: Path) -> None:
    path = write(tmp_path, "mix.tsv", "ham\ta\nham\ta\nbad line\nspam\tb\n")
    data = load_file(path)
    (source,) = data.sources
    assert source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (source["rows_read"], source["rows_kept"], source["duplicates_removed"]) == (4, 2, 1)
    assert source["rows_read"] == sum(
        source[k] for k in ("rows_kept", "duplicates_removed", "rows_skipped", "rows_invalid"))


# --- strict mode, streaming, API details ----------------------------------------------------

def test_strict_mode_raises_listing_problems(tmp_path: Path) -> None:
    lines = "".join("nonsense without a tab\n" for _ in range(25))
    path = write(tmp_path, "many.tsv", "ham\tfine\n" + lines)
    with pytest.raises(DataFormatError) as info:
        load_file(path, "sms", strict=True)
    message = str(info.value)
    assert f"{path}:2:" in message and f"{path}:21:" in message
    assert f"{path}:22:" not in message and "5 more" in message
    assert len(info.value.problems) == 25
    assert len(load_file(path, "sms").problems) == 25  # not strict: reported, not raised


def test_strict_mode_passes_clean_files_and_catches_conflicts(tmp_path: Path) -> None:
    clean = write(tmp_path, "clean.tsv", "ham\thello\nspam\tprize\n")
    assert len(load_file(clean, strict=True).records) == 2
    conflict = write(tmp_path, "conflict.tsv", "ham\tsame\nspam\tsame\n")
    with pytest.raises(DataFormatError, match=r"conflict\.tsv:2:"):
        load_file(conflict, strict=True)


def test_iter_file_is_a_lazy_stream_of_line_and_row(tmp_path: Path) -> None:
    path = write(tmp_path, "s.tsv", "ham\tone\nbroken\nspam\tthree\n")
    stream = iter_file(path)
    assert isinstance(stream, types.GeneratorType)
    rows = list(stream)
    assert [line for line, _ in rows] == [1, 2, 3]
    assert [type(row) for _, row in rows] == [LabeledComment, RowProblem, LabeledComment]
    assert all(line == row.line for line, row in rows)


def test_row_problem_str_is_path_line_message() -> None:
    assert str(RowProblem("data/x.csv", 12, "unknown label 'x'")) == "data/x.csv:12: unknown label 'x'"


def test_load_files_rejects_a_single_path_string(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        load_files(str(write(tmp_path, "x.tsv", "ham\thi\n")))


# --- the real corpora in ../shared/data -----------------------------------------------------

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent (public corpora are not in the repository)"
)


def _labels(path: Path) -> list[int]:
    return [row.label for _, row in iter_file(path) if isinstance(row, LabeledComment)]


@needs_shared_data
def test_real_youtube_counts() -> None:
    folder = SHARED_DATA / "youtube_spam_collection"
    files = sorted(folder.glob("Youtube0*.csv"))
    labels = [label for path in files for label in _labels(path)]
    assert (len(labels), sum(labels)) == (1956, 1005)
    data = load_files(files)
    assert data.problems == [] and len(data.records) == 1722  # 234 duplicate rows, none conflicting
    joined = load_file(folder / "youtube_spam_collection_all.csv")
    assert joined.sources[0]["rows_read"] == 1956 and len(joined.records) == 1722
    assert all(set(r.comment.extra) == {"video"} for r in joined.records)
    assert not any(r.comment.comment_content.endswith("\ufeff") for r in joined.records)


@needs_shared_data
def test_real_sms_counts() -> None:
    path = SHARED_DATA / "sms_spam_collection" / "SMSSpamCollection"
    labels = _labels(path)
    assert (len(labels), sum(labels)) == (5574, 747)
    data = load_file(path)
    assert data.problems == []
    # 5,171 byte-distinct texts per the README; the duplicate key also ignores case
    # and surrounding spaces, which merges 12 more.
    assert len(data.records) == 5159


@needs_shared_data
def test_real_wordpress_csv_counts() -> None:
    data = load_file(SHARED_DATA / "wordpress_spam_only" / "wordpress_spam_comments.csv")
    assert data.sources[0]["format"] == "wordpress_csv"
    assert data.sources[0]["rows_read"] == 2870 and len(data.records) == 2724
    assert data.problems == [] and all(r.label == 1 for r in data.records)
    # The metadata reaches the record: all rows but one carry an email, all an IP.
    assert sum(1 for r in data.records if not r.comment.comment_author_email) == 1
    assert all(r.comment.user_ip and r.comment.comment_author for r in data.records)
