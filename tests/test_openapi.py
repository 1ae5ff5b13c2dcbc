"""The OpenAPI document (service/openapi.json) against the running app.

Three promises: the document is valid OpenAPI 3.1; it documents exactly the
routes the app serves under /api/v1 plus the operator routes; and what the app
answers, good input or bad, is a status the document lists for that operation
with a body its schema accepts. Requests carry a real API key made in the
app's own store, the way a client would get one from `commentguard keys create`.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from commentguard.context import open_store_from_settings
from model.comment import TEXT_FIELDS
from service.docs import load_document
from service.settings import Settings

DOC_PATH = Path(__file__).resolve().parents[1] / "service" / "openapi.json"
DOC_URI = "urn:commentguard:openapi"
API_PREFIX = "/api/v1"
#: Blueprints whose routes the document covers besides /api/v1 (the Akismet surface has its own protocol).
DOCUMENTED_BLUEPRINTS = ("api", "ops", "docs")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
SPAM_TEXT = "Buy cheap viagra online now!!! click http://bit.ly/cheap-pills"
HAM_TEXT = "Thanks for the clear explanation, it helped me fix my build."


# --- helpers shared with test_openapi_fuzz ------------------------------------------------

def create_api_key(settings: Settings) -> str:
    """A live key in the store the app with ``settings`` opens (as `commentguard keys create` makes)."""
    with open_store_from_settings(settings) as store:
        key, _ = store.create_key("https://blog.example.org", label="openapi tests")
    return key


def keyed_app(make_app: Callable[..., Flask], settings: Settings, **overrides: Any) -> tuple[Flask, str]:
    """An app with real API keys (anonymous JSON calls not allowed) and a key for it."""
    overrides.setdefault("allow_anonymous_json", False)
    key = create_api_key(dataclasses.replace(settings, **overrides))
    return make_app(**overrides), key


def flask_path(rule: str) -> str:
    """A werkzeug rule (``/x/<int:id>``) as an OpenAPI path (``/x/{id}``)."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def app_operations(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, path) of every route of the documented blueprints and of /api/v1."""
    found = set()
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".", 1)[0] if "." in rule.endpoint else ""
        if blueprint in DOCUMENTED_BLUEPRINTS or rule.rule.startswith(API_PREFIX):
            for method in rule.methods or ():
                if method not in ("HEAD", "OPTIONS"):
                    found.add((method, flask_path(rule.rule)))
    return found


def document_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items()
            for method in item if method in HTTP_METHODS}


class Contract:
    """Looks up what the document promises for an operation and checks a response against it."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(DOC_URI, resource)

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any]:
        """The JSON schema the document gives for ``status`` of ``method path``; fails if undocumented.

        A 405 is looked up on any operation of the path (it answers a method the path lacks).
        """
        item = self.doc["paths"][path]
        operations = [item[method.lower()]] if method.lower() in item else list(
            item[m] for m in item if m in HTTP_METHODS)
        for operation in operations:
            response = operation["responses"].get(str(status))
            if response is not None:
                return self._deref(response)["content"]["application/json"]["schema"]
        raise AssertionError(f"{method} {path} answered {status}, which the document does not list")

    def check(self, response: Any, path: str, method: str) -> Any:
        """Assert ``response`` is JSON, with a documented status and a body its schema accepts."""
        schema = self.response_schema(path, method, response.status_code)
        assert response.mimetype == "application/json", response.mimetype
        body = response.get_json()
        resolved = {"$ref": DOC_URI + schema["$ref"]} if "$ref" in schema else schema
        errors = sorted(Draft202012Validator(resolved, registry=self.registry).iter_errors(body), key=str)
        assert not errors, f"{method} {path} {response.status_code}: " + "; ".join(e.message for e in errors)
        return body


# --- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(DOC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def contract(doc: dict[str, Any]) -> Contract:
    return Contract(doc)


@pytest.fixture
def keyed(make_app: Callable[..., Flask], settings: Settings) -> tuple[FlaskClient, dict[str, str]]:
    app, key = keyed_app(make_app, settings)
    return app.test_client(), {"Authorization": f"Bearer {key}"}


def post(client: FlaskClient, path: str, body: Any, headers: dict[str, str], **kwargs: Any) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    kwargs.setdefault("content_type", "application/json")
    return client.post(path, data=data, headers=headers, **kwargs)


# --- the document itself -------------------------------------------------------------------

def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(doc).validate()


def test_served_document_is_the_shipped_file(client: FlaskClient, doc: dict[str, Any]) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == doc == load_document()


def test_served_document_states_this_servers_batch_limit(make_app: Callable[..., Flask]) -> None:
    served = make_app(max_batch_items=7).test_client().get("/openapi.json").get_json()
    assert served["components"]["schemas"]["BatchRequest"]["properties"]["comments"]["maxItems"] == 7


def test_comment_schema_has_every_akismet_field(doc: dict[str, Any]) -> None:
    schema = doc["components"]["schemas"]["Comment"]
    assert set(schema["properties"]) == set(TEXT_FIELDS) | {"comment_context", "extra"}
    assert schema["required"] == ["comment_content"]
    context = schema["properties"]["comment_context"]
    assert {"type": "string"} in context["oneOf"]
    assert {"type": "array", "items": {"type": "string"}} in context["oneOf"]


def test_api_operations_need_a_bearer_key_and_ops_do_not(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    for method, path in document_operations(doc):
        operation = doc["paths"][path][method.lower()]
        if path.startswith(API_PREFIX):
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
        else:
            assert operation["security"] == [], (method, path)


def test_every_error_response_uses_the_error_schema(doc: dict[str, Any], contract: Contract) -> None:
    for method, path in document_operations(doc):
        for status in doc["paths"][path][method.lower()]["responses"]:
            if int(status) >= 400:
                schema = contract.response_schema(path, method, int(status))
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_document_and_app_routes_match(app: Flask, doc: dict[str, Any]) -> None:
    served, documented = app_operations(app), document_operations(doc)
    assert sorted(served - documented) == [], "routes the document does not describe"
    assert sorted(documented - served) == [], "documented routes the app does not serve"
    assert ("POST", "/api/v1/feedback") in served


# --- the app's answers against the document ----------------------------------------------

def test_check_answers_match(keyed: tuple[FlaskClient, dict[str, str]], contract: Contract) -> None:
    client, auth = keyed
    body = contract.check(post(client, "/api/v1/check", {"comment_content": SPAM_TEXT}, auth),
                          "/api/v1/check", "POST")
    assert body["verdict"] in ("spam", "discard", "unsure")
    full = {f: "1" if f in ("is_test", "comment_parent") else "x" for f in TEXT_FIELDS}
    full.update(comment_content=HAM_TEXT, comment_context=["python", "flask"], extra={"HTTP_ACCEPT": "*/*"})
    response = post(client, "/api/v1/check", full, auth)
    assert response.status_code == 200
    contract.check(response, "/api/v1/check", "POST")


def test_batch_answers_match(keyed: tuple[FlaskClient, dict[str, str]], contract: Contract) -> None:
    client, auth = keyed
    comments = [{"comment_content": SPAM_TEXT}, {"comment_content": HAM_TEXT, "comment_context": "tag"}]
    body = contract.check(post(client, "/api/v1/check/batch", {"comments": comments}, auth),
                          "/api/v1/check/batch", "POST")
    assert len(body["results"]) == 2
    body = contract.check(post(client, "/api/v1/check/batch", {"comments": []}, auth),
                          "/api/v1/check/batch", "POST")
    assert body == {"results": []}


def test_log_only_result_matches(make_app: Callable[..., Flask], settings: Settings,
                                 contract: Contract) -> None:
    app, key = keyed_app(make_app, settings, mode="log_only")
    response = post(app.test_client(), "/api/v1/check", {"comment_content": SPAM_TEXT},
                    {"Authorization": f"Bearer {key}"})
    body = contract.check(response, "/api/v1/check", "POST")
    assert body["enforced"] is False and body["verdict"] == "ham" and body["recorded_verdict"] != "ham"


BAD_INPUTS: list[tuple[str, str, Any, dict[str, Any], int]] = [
    ("empty body", "/api/v1/check", "", {}, 400),
    ("malformed JSON", "/api/v1/check", "{not json", {}, 400),
    ("NaN", "/api/v1/check", '{"comment_content": NaN}', {}, 400),
    ("array body", "/api/v1/check", [{"comment_content": "x"}], {}, 400),
    ("not UTF-8", "/api/v1/check", b'{"comment_content": "\xff"}', {}, 400),
    ("text/plain", "/api/v1/check", {"comment_content": "x"}, {"content_type": "text/plain"}, 415),
    ("unknown charset", "/api/v1/check", {"comment_content": "x"},
     {"content_type": "application/json; charset=klingon"}, 415),
    ("no content", "/api/v1/check", {"comment_author": "x"}, {}, 422),
    ("blank content", "/api/v1/check", {"comment_content": "  \n"}, {}, 422),
    ("number field", "/api/v1/check", {"comment_content": "x", "comment_author": 5}, {}, 422),
    ("bad context", "/api/v1/check", {"comment_content": "x", "comment_context": [1]}, {}, 422),
    ("batch without comments", "/api/v1/check/batch", {}, {}, 422),
    ("batch not a list", "/api/v1/check/batch", {"comments": "x"}, {}, 422),
    ("batch bad items", "/api/v1/check/batch", {"comments": [{"comment_content": "ok"}, 3, {}]}, {}, 422),
    ("batch too big", "/api/v1/check/batch", {"comments": [{"comment_content": "x"}] * 101}, {}, 422),
    ("batch empty body", "/api/v1/check/batch", "", {}, 400),
]


@pytest.mark.parametrize(("path", "body", "kwargs", "status"),
                         [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_answers_match(keyed: tuple[FlaskClient, dict[str, str]], contract: Contract,
                                 path: str, body: Any, kwargs: dict[str, Any], status: int) -> None:
    client, auth = keyed
    response = post(client, path, body, auth, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    error = contract.check(response, path, "POST")
    assert error["status"] == status


def test_batch_error_lists_every_bad_item(keyed: tuple[FlaskClient, dict[str, str]], contract: Contract) -> None:
    client, auth = keyed
    response = post(client, "/api/v1/check/batch", {"comments": [{"comment_content": "ok"}, 3, {}]}, auth)
    body = contract.check(response, "/api/v1/check/batch", "POST")
    assert body["field"] == "comments[1]"
    assert [e["field"] for e in body["errors"]] == ["comments[1]", "comments[2].comment_content"]


def test_too_large_and_wrong_method_match(make_app: Callable[..., Flask], settings: Settings,
                                          contract: Contract) -> None:
    app, key = keyed_app(make_app, settings, max_body_bytes=200)
    client, auth = app.test_client(), {"Authorization": f"Bearer {key}"}
    response = post(client, "/api/v1/check", {"comment_content": "x" * 500}, auth)
    assert contract.check(response, "/api/v1/check", "POST")["max_body_bytes"] == 200
    for path in ("/api/v1/check", "/api/v1/check/batch"):
        response = client.get(path, headers=auth)
        assert response.status_code == 405
        assert "POST" in contract.check(response, path, "GET")["allowed"]
    for path in ("/healthz", "/readyz", "/openapi.json"):
        response = client.post(path)
        assert response.status_code == 405
        contract.check(response, path, "POST")


def test_ops_answers_match(client: FlaskClient, contract: Contract) -> None:
    assert contract.check(client.get("/healthz"), "/healthz", "GET") == {"status": "ok"}
    assert contract.check(client.get("/readyz"), "/readyz", "GET")["status"] == "ready"


def test_not_ready_answers_match(make_app: Callable[..., Flask], settings: Settings, tmp_path: Path,
                                 contract: Contract) -> None:
    key = create_api_key(settings)
    app = make_app(scorer=None, model_path=tmp_path / "no-model", allow_anonymous_json=False)
    client, auth = app.test_client(), {"Authorization": f"Bearer {key}"}
    body = contract.check(client.get("/readyz"), "/readyz", "GET")
    assert body["status"] == 503 and body["reason"]
    for path, payload in (("/api/v1/check", {"comment_content": "x"}),
                          ("/api/v1/check/batch", {"comments": [{"comment_content": "x"}]})):
        response = post(client, path, payload, auth)
        assert response.status_code == 503
        contract.check(response, path, "POST")


def test_keyless_calls_are_refused_as_documented(make_app: Callable[..., Flask], settings: Settings,
                                                 contract: Contract) -> None:
    app, key = keyed_app(make_app, settings)
    client = FlaskClient(app, app.response_class)  # sends only the headers given here
    for headers in ({}, {"Authorization": "Bearer 000000000000"}, {"Authorization": f"Basic {key}"}):
        response = post(client, "/api/v1/check", {"comment_content": "x"}, headers)
        assert response.status_code == 401, headers
        contract.check(response, "/api/v1/check", "POST")
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")  # documented as required
    assert post(client, "/api/v1/check", {"comment_content": "x"},
                {"Authorization": f"Bearer {key}"}).status_code == 200
    anonymous_ok, _ = keyed_app(make_app, settings, allow_anonymous_json=True)
    client = FlaskClient(anonymous_ok, anonymous_ok.response_class)
    assert post(client, "/api/v1/check", {"comment_content": "x"}, {}).status_code == 200
    response = post(client, "/api/v1/check", {"comment_content": "x"}, {"Authorization": "Bearer 000000000000"})
    assert response.status_code == 401, "a wrong key is refused even when anonymous calls are allowed"
    contract.check(response, "/api/v1/check", "POST")


# --- feedback --------------------------------------------------------------------------------

def test_feedback_answers_match(keyed: tuple[FlaskClient, dict[str, str]], contract: Contract) -> None:
    client, auth = keyed
    path = "/api/v1/feedback"
    check_id = post(client, "/api/v1/check", {"comment_content": SPAM_TEXT}, auth).get_json()["check_id"]
    body = contract.check(post(client, path, {"check_id": check_id, "label": "ham", "reporter": "mod"}, auth),
                          path, "POST")
    assert body["check_id"] == check_id and isinstance(body["feedback_id"], int)
    body = contract.check(post(client, path, {"comment": {"comment_content": HAM_TEXT}, "label": "ham"}, auth),
                          path, "POST")
    assert body["check_id"] is None
    body = contract.check(post(client, path, {"comment_content": SPAM_TEXT, "label": "spam"}, auth), path, "POST")
    assert body["check_id"] == check_id, "the shorthand links the latest check of the same comment"
    response = post(client, path, {"check_id": "0" * 32, "label": "spam"}, auth)
    assert response.status_code == 404
    contract.check(response, path, "POST")
    for bad in ({"check_id": check_id, "label": "maybe"}, {"label": "spam"},
                {"comment": {"comment_author": "x"}, "label": "spam"}):
        response = post(client, path, bad, auth)
        assert response.status_code == 422, bad
        contract.check(response, path, "POST")
