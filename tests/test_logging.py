"""Structured logs: JSON lines, a request id on every line of a request (and echoed), no personal data."""
from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from flask import Flask

from service.logging_setup import (JsonFormatter, RequestIdFilter, ServerMessageFilter, request_id_from,
                                   scrub_server_message)
from tests.conftest import start_live_server

# Distinctive personal data: none of it may appear in any log line.
CONTENT = "Zanzibar-marmalade-7731 is my secret recipe, see http://bit.ly/zz7731"
EMAIL = "private.person.7731@example.net"
IP = "198.51.100.231"
AUTHOR = "Quentin Privatus"


def comment() -> dict[str, str]:
    return {"comment_content": CONTENT, "comment_author_email": EMAIL, "user_ip": IP,
            "comment_author": AUTHOR, "blog": "https://blog.example.org"}


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line parsed as a JSON object (fails on a line that is not one)."""
    out = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            assert isinstance(record, dict), line
            out.append(record)
    return out


def assert_no_personal_data(text: str, key: str) -> None:
    for secret in (CONTENT, "Zanzibar", EMAIL, IP, AUTHOR, key):
        assert secret not in text, f"{secret!r} appears in the logs"


def test_formatter_writes_one_json_object_with_the_fields() -> None:
    record = logging.LogRecord("service.x", logging.WARNING, __file__, 1, "hello %s", ("there",), None)
    record.check_id = "abc"
    RequestIdFilter().filter(record)
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "hello there" and out["level"] == "WARNING" and out["logger"] == "service.x"
    assert out["request_id"] is None and out["check_id"] == "abc"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", out["time"])


def test_exception_is_logged_without_its_message() -> None:
    try:
        raise ValueError(f"bad email {EMAIL}")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = JsonFormatter().format(record)
    assert EMAIL not in out and json.loads(out)["exc_type"] == "ValueError"


@pytest.mark.parametrize("header, kept", [("req-123_abc.DEF:9", True), ("a" * 64, True), ("a" * 65, False),
                                          ("bad id", False), ("x\r\nSet-Cookie: a", False), ("", False),
                                          ("<script>", False)])
def test_incoming_request_id_is_kept_only_when_safe(header: str, kept: bool) -> None:
    rid = request_id_from(header)
    assert (rid == header) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", rid)


@pytest.mark.parametrize("header", ["6995a10a239c", "6995A10A239C", "2001:db8::7", "203.0.113.11", "::1",
                                    "::ffff:192.0.2.1", "trace-10.0.0.5", "req:2001:db8::7", "mod@corp.example"])
def test_a_request_id_shaped_like_a_key_or_holding_an_address_is_replaced(header: str) -> None:
    """Found by a probe: an API key's shape (12 hex characters) and an IPv6 address were logged on
    every line of their request as its id."""
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_from(header))


@pytest.mark.parametrize("header", ["6995a10a239", "6995a10a239c0", "123e4567-e89b-12d3-a456-426614174000",
                                    "12:30:45", "v1.2.3", "trace-42"])
def test_request_ids_that_are_neither_are_kept(header: str) -> None:
    assert request_id_from(header) == header


def test_request_lines_carry_the_request_id_and_it_is_echoed(
        make_app: Callable[..., Flask], api_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(log_level="DEBUG")
    client = app.test_client()
    capsys.readouterr()
    response = client.post("/api/v1/check", json=comment(), headers={"X-Request-Id": "trace-42"})
    assert response.status_code == 200 and response.headers["X-Request-Id"] == "trace-42"
    generated = client.post("/api/v1/check", json=comment(), headers={"X-Request-Id": "not safe!"})
    rid = generated.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert client.get("/healthz").headers["X-Request-Id"] != rid  # a new one per request
    err = capsys.readouterr().err
    records = json_lines(err)
    assert {"time", "level", "logger", "message", "request_id"} <= set(records[0])
    done = [r for r in records if r["message"] == "request done"]
    assert [r["request_id"] for r in done][:2] == ["trace-42", rid]
    assert done[0]["route"] == "/api/v1/check" and done[0]["status"] == 200
    assert_no_personal_data(err, api_key)


def test_every_line_of_a_failing_request_has_its_id_and_no_personal_data(
        make_app: Callable[..., Flask], api_key: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(log_level="DEBUG")
    client = app.test_client()

    def explode(self: Any, comment: Any, thresholds: Any = None) -> Any:
        logging.getLogger("model.test").warning("scoring a comment")
        raise RuntimeError(f"cannot score {comment.comment_content} from {comment.user_ip}")

    state = app.extensions["commentguard"]
    monkeypatch.setattr(type(state.scorer), "score", explode)
    capsys.readouterr()
    response = client.post("/api/v1/check", json=comment(), headers={"X-Request-Id": "boom-1"})
    assert response.status_code == 500
    form = {**comment(), "api_key": api_key}
    akismet = client.post("/1.1/comment-check", data=form, headers={"X-Request-Id": "boom-2"})
    assert akismet.headers["X-Request-Id"] == "boom-2"
    bad_key = client.post("/api/v1/check", json=comment(), headers={"Authorization": "Bearer 0123456789ab",
                                                                     "X-Request-Id": "boom-3"})
    assert bad_key.status_code == 401
    err = capsys.readouterr().err
    records = json_lines(err)
    assert records, "the failures should have been logged"
    ids = {r["request_id"] for r in records}
    assert None not in ids and ids <= {"boom-1", "boom-2", "boom-3"}
    assert any(r["level"] == "ERROR" and r["request_id"] == "boom-1" for r in records)
    assert any(r["logger"] == "model.test" and r["request_id"] == "boom-1" for r in records)
    assert_no_personal_data(err, api_key)
    assert "0123456789ab" not in err


def test_log_level_setting_filters(make_app: Callable[..., Flask], capsys: pytest.CaptureFixture[str]) -> None:
    client = make_app(log_level="WARNING").test_client()
    capsys.readouterr()
    client.post("/api/v1/check", json=comment())
    assert "request done" not in capsys.readouterr().err
    assert logging.getLogger().level == logging.WARNING


@pytest.mark.slow
def test_live_server_logs_are_json_lines_with_request_ids(tmp_path: Path, model_dir: Path) -> None:
    server = start_live_server(tmp_path / "var", model_dir, env={"COMMENTGUARD_LOG_LEVEL": "DEBUG"},
                               args=("--access-log",))
    try:
        headers = {"Authorization": f"Bearer {server.key}"}
        ids = [f"live-{i}" for i in range(6)]
        for rid in ids[:3]:
            response = httpx.post(f"{server.base_url}/api/v1/check", json=comment(),
                                  headers={**headers, "X-Request-Id": rid}, timeout=10)
            assert response.status_code == 200 and response.headers["x-request-id"] == rid
        for rid in ids[3:]:
            form = {**comment(), "api_key": server.key}
            response = httpx.post(f"{server.base_url}/1.1/comment-check", data=form,
                                  headers={"X-Request-Id": rid}, params={"api_key": server.key}, timeout=10)
            assert response.status_code == 200 and response.headers["x-request-id"] == rid
        generated = httpx.get(f"{server.base_url}/readyz", headers={"X-Request-Id": "no spaces allowed"})
        assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
        # A client that does not percent-encode its query: gunicorn cannot parse the request line
        # and logs it (with the key, IP and e-mail in it) unless the line is scrubbed.
        for tail in ("\t", "\x7f", "'\""):
            line = (f"POST /1.1/comment-check?api_key={server.key}&user_ip={IP}&comment_author_email={EMAIL}"
                    f"&comment_author={AUTHOR}{tail} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert b"400" in raw_exchange(server.base_url, line.encode())
        # A path is the client's to fill: an e-mail and a key in one never reach the log.
        assert httpx.get(f"{server.base_url}/leak.{EMAIL}/{server.key}").status_code == 404
    finally:
        server.stop()
    text = (tmp_path / "var" / "server.log").read_text()
    records = json_lines(text)  # every line of the server's output, gunicorn's included
    assert any(r["logger"].startswith("gunicorn") for r in records)
    for rid in ids:
        mine = [r for r in records if r.get("request_id") == rid]
        assert {r["message"] for r in mine} >= {"request done", "request"}, rid  # app line + access line
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert access and all(r["request_id"] for r in access)
    assert not any("path" in r for r in access)
    assert {r.get("route") for r in access} >= {"/api/v1/check", "/1.1/comment-check", "/readyz", None}
    # Where it listens, said by the server itself, and in gunicorn's own line (which had no address
    # when each worker holds its own socket).
    port = server.base_url.rsplit(":", 1)[1]
    assert any(r["message"].startswith(f"Listening at: http://127.0.0.1:{port} (") for r in records)
    assert any(r["message"] == f"listening on http://127.0.0.1:{port} (2 workers, a socket per worker)"
               for r in records), [r["message"] for r in records if "isten" in r["message"]]
    invalid = [r["message"] for r in records if r["message"].startswith("Invalid request")]
    assert len(invalid) == 3, invalid  # logged, without what the request carried
    assert_no_personal_data(text, server.key)


def raw_exchange(base_url: str, data: bytes) -> bytes:
    """Send ``data`` as it is over a fresh connection; what the server answers before closing."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("message, shown", [
    ("Invalid request from ip=198.51.100.7: Invalid HTTP request line: 'POST /x?api_key=abc HTTP/1.1'",
     "Invalid request from ip=…: Invalid HTTP request line: '…'"),
    ("Invalid request from ip=::1: Invalid HTTP request line: \"GET /a?b='c' HTTP/1.1\"",
     "Invalid request from ip=…: Invalid HTTP request line: '…'"),
    ("Error handling request /1.1/comment-check?api_key=0123456789ab&user_ip=1.2.3.4",
     "Error handling request /…"),
    ("GET /leak.ann@example.org/0123456789ab", "GET /…"),
    ("Booting worker with pid: 4242", "Booting worker with pid: 4242"),
    # gunicorn's words about its own sockets stay whole (they named no address before).
    ("Connection in use: ('127.0.0.1', 8000)", "Connection in use: ('127.0.0.1', 8000)"),
    ("Can't connect to ('127.0.0.1', 8000)", "Can't connect to ('127.0.0.1', 8000)"),
])
def test_server_messages_lose_what_a_request_put_in_them(message: str, shown: str) -> None:
    assert scrub_server_message(message) == shown
    record = logging.LogRecord("gunicorn.error", logging.WARNING, __file__, 1, "%s", (message,), None)
    assert ServerMessageFilter().filter(record) and record.getMessage() == shown


@pytest.mark.parametrize("reuse_port", [True, False])
def test_gunicorns_listening_line_names_the_address(reuse_port: bool, capsys: pytest.CaptureFixture[str]) -> None:
    """It read "Listening at:  (4242)": with a socket per worker the master holds none to name.
    The server's own address is no personal data."""
    from gunicorn.config import Config

    from service.logging_setup import GunicornLogger

    cfg = Config()
    cfg.set("bind", ["127.0.0.1:8123", "[::1]:8123"])
    cfg.set("reuse_port", reuse_port)
    logger = GunicornLogger(cfg)
    capsys.readouterr()
    listeners = "" if reuse_port else "http://127.0.0.1:8123,http://[::1]:8123"  # what gunicorn passes
    logger.info("Listening at: %s (%s)", listeners, 4242)
    logger.info("Listening at: %s", "")  # after a reload that changed the address
    messages = [json.loads(line)["message"] for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert messages == ["Listening at: http://127.0.0.1:8123,http://[::1]:8123 (4242)",
                        "Listening at: http://127.0.0.1:8123,http://[::1]:8123"]


@pytest.mark.parametrize("accesslog, lines", [(None, 0), ("-", 1)])
def test_the_access_log_is_written_only_when_configured(accesslog, lines, capsys) -> None:
    """gunicorn calls access() for every request; it writes a line only with an access log configured."""
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from service.logging_setup import GunicornLogger

    cfg = Config()
    if accesslog:
        cfg.set("accesslog", accesslog)
    logger = GunicornLogger(cfg)
    response = SimpleNamespace(status_code=200, headers=[("X-Request-Id", "r-1")])
    logger.access(response, None, {"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz/x",
                                   "commentguard.route": "/healthz"}, timedelta(milliseconds=3))
    written = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(written) == lines
    if lines:
        record = json.loads(written[0])
        assert (record["route"], record["status"], record["request_id"]) == ("/healthz", 200, "r-1")
        assert "path" not in record
