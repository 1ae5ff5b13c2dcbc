"""JSON bodies that are valid JSON but not usable as they are: deep nesting and lone surrogates.

Both used to get through the parser: a deeply nested body raised RecursionError (a 500),
and a lone surrogate escape was answered but could not be stored, failing the recorder's
whole batch with it (tests/test_recorder_isolation.py covers the recorder's side).
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import json_limits
from service.app import get_state
from tests.test_service_api import assert_error, post_json


def raw_post(client: FlaskClient, path: str, text: str) -> Any:
    return client.post(path, data=text.encode("utf-8"), content_type="application/json")


def nested(depth: int) -> str:
    """A check body whose unknown field nests lists so that the whole body is ``depth`` levels deep."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return '{"comment_content": "Nice post", "thread": ' + inner + "}"


def stored_check(app: Flask, check_id: str) -> Any:
    state = get_state(app)
    assert state.recorder is not None and state.store is not None
    assert state.recorder.flush()
    record = state.store.get_check(check_id)
    assert record is not None
    return record


@pytest.mark.parametrize("depth", [json_limits.MAX_DEPTH + 1, 900, 5000, 30000])
def test_bodies_nested_deeper_than_the_limit_are_a_400(client: FlaskClient, depth: int) -> None:
    body = assert_error(raw_post(client, "/api/v1/check", nested(depth)), 400)
    assert "nested more than 16 levels" in body["error"] and body["max_depth"] == json_limits.MAX_DEPTH


def test_a_body_at_the_limit_is_checked(client: FlaskClient) -> None:
    response = raw_post(client, "/api/v1/check", nested(json_limits.MAX_DEPTH))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_full_batch_is_not_mistaken_for_deep_nesting(client: FlaskClient) -> None:
    comments = [{"comment_content": f"comment {i}", "comment_context": ["a", "b"], "extra": {"k": "v"}}
                for i in range(100)]
    response = post_json(client, "/api/v1/check/batch", {"comments": comments})
    assert response.status_code == 200 and len(response.get_json()["results"]) == 100


def test_deep_nesting_in_a_batch_item_is_a_400(client: FlaskClient) -> None:
    text = '{"comments": [{"comment_content": "x"}, ' + nested(json_limits.MAX_DEPTH - 1) + "]}"
    assert_error(raw_post(client, "/api/v1/check/batch", text), 400)


def test_a_lone_surrogate_is_checked_and_stored_as_the_replacement_character(app: Flask,
                                                                             client: FlaskClient) -> None:
    # What a JavaScript client sends after cutting a string inside an emoji's UTF-16 pair.
    text = '{"comment_content": "Loved it \\ud83d", "comment_author": "Ann \\udc00"}'
    response = raw_post(client, "/api/v1/check", text)
    assert response.status_code == 200, response.get_data(as_text=True)
    record = stored_check(app, response.get_json()["check_id"])
    assert record.comment.comment_content == "Loved it \ufffd"
    assert record.comment.comment_author == "Ann \ufffd"


def test_escaped_surrogate_pairs_stay_the_character_they_encode(app: Flask, client: FlaskClient) -> None:
    text = json.dumps({"comment_content": "Loved it \U0001F600 and \u00e9t\u00e9"}, ensure_ascii=True)
    assert "\\ud83d\\ude00" in text
    response = raw_post(client, "/api/v1/check", text)
    assert response.status_code == 200
    record = stored_check(app, response.get_json()["check_id"])
    assert record.comment.comment_content == "Loved it \U0001F600 and \u00e9t\u00e9"


def test_lone_surrogates_in_batch_items_and_keys_are_replaced(app: Flask, client: FlaskClient) -> None:
    text = ('{"comments": [{"comment_content": "fine"}, '
            '{"comment_content": "cut \\udbff", "extra": {"note\\ud800": "x\\udfff"}}]}')
    response = raw_post(client, "/api/v1/check/batch", text)
    assert response.status_code == 200, response.get_data(as_text=True)
    first, second = response.get_json()["results"]
    assert stored_check(app, first["check_id"]).comment.comment_content == "fine"
    record = stored_check(app, second["check_id"])
    assert record.comment.comment_content == "cut \ufffd"
    assert dict(record.comment.extra) == {"note\ufffd": "x\ufffd"}


def test_the_helpers_leave_ordinary_data_alone() -> None:
    data = {"a": ["b", {"c": 1, "d": None}], "e": "caf\u00e9 \U0001F600"}
    assert json_limits.replace_lone_surrogates(data) == data
    json_limits.check_depth(data)
    assert not json_limits.may_be_too_deep(json.dumps(data))
    assert not json_limits.may_hold_surrogates(json.dumps(data, ensure_ascii=False))


def test_a_byte_order_mark_is_ignored_and_a_huge_number_is_named(client: FlaskClient) -> None:
    body = b"\xef\xbb\xbf" + json.dumps({"comment_content": "Which version added this?"}).encode()
    response = client.post("/api/v1/check", data=body, content_type="application/json; charset=utf-8")
    assert response.status_code == 200, response.get_json()
    huge = '{"comment_content": "hi", "comment_parent": ' + "9" * 5000 + "}"
    response = client.post("/api/v1/check", data=huge, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "a number in the JSON body has too many digits (at most 4300)"


def test_a_compressed_body_is_refused_by_name(client: FlaskClient) -> None:
    """It was read as text: "not valid utf-8" on the JSON API, a missing key on Akismet."""
    import gzip

    body = gzip.compress(json.dumps({"comment_content": "hello"}).encode())
    response = client.post("/api/v1/check", data=body, headers={"Content-Encoding": "gzip"},
                           content_type="application/json")
    assert response.status_code == 415 and response.get_json()["content_encoding"] == "gzip"
    assert "Content-Encoding 'gzip' is not supported" in response.get_json()["error"]
    answer = client.post("/1.1/comment-check", data=gzip.compress(b"api_key=0123456789ab&blog=x"),
                         headers={"Content-Encoding": "gzip"}, content_type="application/x-www-form-urlencoded")
    assert answer.get_data(as_text=True).startswith("Invalid request: Content-Encoding 'gzip'")
