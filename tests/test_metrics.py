"""``GET /metrics``: names and labels present, counts that move after checks, in-process and across workers."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from service import metrics
from tests.conftest import start_live_server

SPAM = {"comment_content": "Buy cheap viagra online now!!! Best prices http://bit.ly/cheap-pills",
        "comment_author": "Best Deals", "comment_author_url": "http://bit.ly/x"}
HAM = {"comment_content": "Does this approach also work with Python 3.10, or do I need a newer version?",
       "comment_author": "Reader"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(all_samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of ``name`` samples whose labels include ``labels`` (0 when none)."""
    return sum(v for (n, ls), v in all_samples.items()
               if n == name and all((k, w) in ls for k, w in labels.items()))


def scrape(client: FlaskClient) -> dict[Any, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return samples(response.get_data(as_text=True))


def test_metrics_names_and_labels_in_process(client: FlaskClient) -> None:
    client.post("/api/v1/check", json=HAM)
    text = client.get("/metrics").get_data(as_text=True)
    for name in ("commentguard_checks_total", "commentguard_check_duration_seconds_bucket",
                 "commentguard_check_duration_seconds_count", "commentguard_check_verdict_share",
                 "commentguard_model_info"):
        assert re.search(rf"^{name}\{{", text, re.M), name
    assert "# TYPE commentguard_upstream_total counter" in text
    assert "# TYPE commentguard_feedback_total counter" in text
    all_samples = samples(text)
    assert value(all_samples, "commentguard_model_info", version="test-model-1") == 1
    assert {dict(ls).get("verdict") for (n, ls) in all_samples if n == "commentguard_check_verdict_share"} \
        == {"ham", "unsure", "spam", "discard"}


def test_check_counts_move_by_verdict_and_surface(client: FlaskClient, api_key: str) -> None:
    before = scrape(client)
    spam = client.post("/api/v1/check", json=SPAM).get_json()
    ham = client.post("/api/v1/check", json=HAM).get_json()
    form = {"api_key": api_key, "blog": "https://blog.example.org", "user_ip": "203.0.113.9", **SPAM}
    assert client.post("/1.1/comment-check", data=form).status_code == 200
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("commentguard_checks_total", surface="json") == 2
    assert moved("commentguard_checks_total", surface="akismet") == 1
    assert moved("commentguard_checks_total", verdict=spam["verdict"], surface="json") >= 1
    assert moved("commentguard_checks_total", verdict=ham["verdict"], surface="json") >= 1
    assert moved("commentguard_check_duration_seconds_count", surface="json") == 2
    assert moved("commentguard_check_duration_seconds_count", surface="akismet") == 1
    shares = [value(after, "commentguard_check_verdict_share", verdict=v) for v in metrics.VERDICTS]
    assert sum(shares) == pytest.approx(1.0)
    total = value(after, "commentguard_checks_total")
    assert shares[metrics.VERDICTS.index(ham["verdict"])] == pytest.approx(
        value(after, "commentguard_checks_total", verdict=ham["verdict"]) / total)


def test_feedback_and_upstream_counts_move(client: FlaskClient) -> None:
    before = scrape(client)
    check = client.post("/api/v1/check", json=SPAM).get_json()
    assert client.post("/api/v1/feedback", json={"check_id": check["check_id"], "label": "ham"}).status_code == 201
    metrics.count_upstream("timeout")
    after = scrape(client)
    assert value(after, "commentguard_feedback_total", label="ham", source="api") \
        - value(before, "commentguard_feedback_total", label="ham", source="api") == 1
    assert value(after, "commentguard_upstream_total", outcome="timeout") \
        - value(before, "commentguard_upstream_total", outcome="timeout") == 1


def test_verdict_share_is_zero_without_checks() -> None:
    share = metrics.verdict_shares([])
    assert {s.labels["verdict"]: s.value for s in share.samples} == {v: 0.0 for v in metrics.VERDICTS}


@pytest.mark.slow
def test_metrics_are_summed_across_live_workers(tmp_path: Path, model_dir: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    server = start_live_server(tmp_path / "var", model_dir, workers=3, env={"TMPDIR": str(tmpdir)})
    try:
        # Before any check, every series of the fixed vocabularies is there, at 0.
        fresh = samples(httpx.get(f"{server.base_url}/metrics", timeout=10).text)
        for verdict in ("ham", "unsure", "spam", "discard"):
            for surface in ("json", "akismet"):
                assert fresh[("commentguard_checks_total", (("surface", surface), ("verdict", verdict)))] == 0
        for label in ("spam", "ham"):
            for source in ("api", "akismet"):
                assert fresh[("commentguard_feedback_total", (("label", label), ("source", source)))] == 0
        assert value(fresh, "commentguard_check_duration_seconds_count", surface="akismet") == 0
        headers = {"Authorization": f"Bearer {server.key}"}
        n = 60
        for i in range(n):  # a fresh connection per call, so the calls spread over the workers
            response = httpx.post(f"{server.base_url}/api/v1/check", json=HAM if i % 2 else SPAM,
                                  headers=headers, timeout=10)
            assert response.status_code == 200
        (metrics_dir,) = tmpdir.glob("commentguard-metrics-*")
        writers = {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
        assert len(writers) >= 2, "the checks should have been answered by several workers"
        for _ in range(10):  # whichever worker answers the scrape sees every worker's checks
            all_samples = samples(httpx.get(f"{server.base_url}/metrics", timeout=10).text)
            assert value(all_samples, "commentguard_checks_total", surface="json") == n
            assert value(all_samples, "commentguard_check_duration_seconds_count", surface="json") == n
            assert value(all_samples, "commentguard_model_info", version="test-model-1") == 1
            assert sum(value(all_samples, "commentguard_check_verdict_share", verdict=v)
                       for v in metrics.VERDICTS) == pytest.approx(1.0)
    finally:
        server.stop()
    assert not list(tmpdir.glob("commentguard-metrics-*")), "the metric files go when the server stops"
    assert "Traceback" not in (tmp_path / "var" / "server.log").read_text()


def test_refused_keys_are_counted_and_summed_up_in_the_log(client: FlaskClient,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """1,550 guesses a second left no trace anywhere (a probe)."""
    from service import auth

    before = value(scrape(client), "commentguard_auth_failures_total")
    auth._refused.update(count=0, logged_at=0.0)
    with caplog.at_level("WARNING", logger="service.auth"):
        for guess in ("0123456789ab", "0123456789ac", "not-a-key"):
            client.post("/1.1/verify-key", data={"key": guess, "blog": "https://b.example"})
            client.post("/api/v1/check", json=HAM, headers={"Authorization": f"Bearer {guess}"})
    assert value(scrape(client), "commentguard_auth_failures_total") == before + 6
    lines = [r.getMessage() for r in caplog.records if "API key" in r.getMessage()]
    assert len(lines) == 1  # at most one a minute, however many guesses
    assert "0123456789a" not in caplog.text  # never which key
