"""Schemathesis against the running processor's own OpenAPI description: no input makes it answer 500.

Bounded (a few examples per operation, derandomized) so it stays a quick check, not a soak.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from rag_otel.config import AlertRule
from rag_otel.processor.service import ProcessorService
from tests.support import store_data


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessorService]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    cfg = store_data.text_config()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp / "data")
    p.shutdown_grace = 3.0
    cfg.reporting.out_dir = str(tmp / "reports")
    cfg.dashboards.jaeger_ui_url = "http://127.0.0.1:16686"
    cfg.performance_monitoring.alert_rules = [
        AlertRule(name="costly", metric="cost_per_query", operator="gt", threshold=0.0, window="5m")]
    svc = ProcessorService(cfg).start()
    store_data.fill(svc.store, store_data.generate(seed=3, days=2, per_day=40))
    try:
        yield svc
    finally:
        svc.stop()


def test_no_input_makes_the_api_fail_with_500(running: ProcessorService) -> None:
    schema = schemathesis.openapi.from_url(f"http://{running.http_address}/openapi.json")
    problems: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        # a report run builds charts (~2 s each): fewer examples there keep the whole check short
        @settings(max_examples=2 if operation.path == "/api/v1/reports/run" else 4, deadline=None,
                  suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def probe(case: schemathesis.Case) -> None:
            response = case.call(timeout=20)
            ctype = response.headers.get("content-type", [""])
            ctype = (ctype[0] if isinstance(ctype, list) else ctype).split(";")[0]
            if response.status_code >= 500:
                problems.append(f"{case.as_curl_command()} -> {response.status_code} {response.text[:300]}")
            elif response.status_code >= 400 and (ctype != "application/json" or not response.json().get("message")):
                problems.append(f"{case.as_curl_command()} -> {response.status_code} without a JSON message")

        probe()
    assert operations >= 15
    assert not problems, "\n".join(problems[:10])
