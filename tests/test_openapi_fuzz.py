"""Schemathesis against the app: generated requests for every documented operation.

The schema is loaded from the app itself (``GET /openapi.json`` through WSGI),
so what is fuzzed is what is served. Every case carries a real API key; the
checks are schemathesis' defaults: no 5xx, a documented status code and content
type, a body the response schema accepts, invalid requests refused with a 4xx
and valid ones accepted. Hypothesis runs derandomized with a bounded number of
examples so CI sees the same cases every time.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import negative_data_rejection
from schemathesis.generation.modes import GenerationMode

from model.scorer import Scorer
from service.app import close_app, create_app
from service.settings import Settings
from tests.conftest import TEST_SECRET_KEY
from tests.test_openapi import DOC_PATH, HTTP_METHODS, app_operations, create_api_key

MAX_EXAMPLES = 30
#: Cases sent per operation, for the summary a -s run prints.
SENT: Counter[str] = Counter()
STATUSES: defaultdict[str, Counter[int]] = defaultdict(Counter)


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "var", model_path=model_dir,
                    secret_key=TEST_SECRET_KEY, allow_anonymous_json=False)


@pytest.fixture(scope="module")
def fuzz_app(fuzz_settings: Settings, scorer: Scorer) -> Iterator[Flask]:
    app = create_app(fuzz_settings, scorer=scorer)
    app.config["TESTING"] = True
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def auth_headers(fuzz_settings: Settings, fuzz_app: Flask) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_api_key(fuzz_settings)}"}


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)


def fuzz_targets() -> list[tuple[str, str, GenerationMode]]:
    """Every operation of the shipped document with valid inputs, and those that take input with invalid ones.

    An operation without parameters or body (``GET /healthz``) has no invalid request to make.
    """
    doc = json.loads(DOC_PATH.read_text(encoding="utf-8"))
    targets = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                targets.append((method.upper(), path, GenerationMode.POSITIVE))
                if "requestBody" in operation or operation.get("parameters"):
                    targets.append((method.upper(), path, GenerationMode.NEGATIVE))
    return sorted(targets, key=lambda t: (t[1], t[0], t[2].value))


# schemathesis' own pytest loader (`schemathesis.pytest.from_fixture`) does not run under pytest 9
# (it rewrites a private node attribute), so each operation is driven through its hypothesis
# strategy: the same cases and the same checks, one test per operation and generation mode.
@pytest.mark.parametrize(("method", "path", "mode"), fuzz_targets(),
                         ids=[f"{m} {p} {g.value}" for m, p, g in fuzz_targets()])
def test_api_conforms_to_its_document(api_schema: Any, auth_headers: dict[str, str], fuzz_app: Flask,
                                      method: str, path: str, mode: GenerationMode) -> None:
    assert (method, path) in app_operations(fuzz_app), f"{method} {path} is documented but not served"
    operation = api_schema[path][method]
    label = f"{method} {path} ({mode.value})"

    # The key goes into the strategy, not just the call: otherwise schemathesis makes up (and, in
    # negative mode, mangles) an Authorization header, and the case's body is then left valid.
    @given(case=operation.as_strategy(generation_mode=mode, headers=auth_headers))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call()
        SENT[label] += 1
        STATUSES[label][response.status_code] += 1
        if mode is GenerationMode.NEGATIVE and response.status_code == 413:
            # Invalid and over the body limit (a batch past maxItems can be): refused by its
            # size before its content is read. A rejection all the same, which schemathesis'
            # list of rejection statuses leaves out; every other check still applies.
            case.validate_response(response, excluded_checks=[negative_data_rejection])
            return
        case.validate_response(response)

    run()


def test_zz_report_fuzz_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the cases sent per operation (run with -s to see them)."""
    with capsys.disabled():
        for operation, count in sorted(SENT.items()):
            statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STATUSES[operation].items()))
            print(f"\nschemathesis: {operation}: {count} cases ({statuses})", end="")
        print(f"\nschemathesis: {sum(SENT.values())} cases over {len(SENT)} operation runs")
