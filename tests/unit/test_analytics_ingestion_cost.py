"""Cost analytics: ingestion traces apart from queries, and queries whose cost misses a call."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from rag_otel.analytics import parse_period, run
from rag_otel.config import ModelObservation
from rag_otel.records import IngestionRecord, QueryRecord, Source
from rag_otel.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path, config=ModelObservation())
    yield s
    s.close()


def test_ingestion_is_counted_apart_and_incomplete_costs_are_counted(store: Store) -> None:
    now = time.time() - 60
    whole = QueryRecord("a" * 32, "b" * 16, now, now + 1, service="app", models=["gpt-4o-mini"],
                        response_models=["gpt-4o-mini-2024-07-18"], input_tokens=100, output_tokens=10,
                        cost_usd=0.001, sources=[Source("d1", 0.9, "secret text")], answer_text="secret answer")
    partial = QueryRecord("c" * 32, "d" * 16, now, now + 1, service="app", models=["gpt-4o-mini"],
                          input_tokens=9, cost_usd=0.0000002, cost_complete=False)
    store.write_records([whole, partial])
    store.write_ingestion([IngestionRecord("e" * 32, now, now + 2, "app", ["text-embedding-3-small"], 500, 0,
                                           0.00001, True)])
    period = parse_period("1h", end=datetime.fromtimestamp(now + 600, timezone.utc))
    out = run("model_usage_and_cost", store, period)
    assert out["queries"] == 2 and out["cost_incomplete_queries"] == 1
    assert [m["model"] for m in out["models"]] == ["gpt-4o-mini"]  # one name, no "unknown" row for the index build
    assert out["ingestion"] == {"traces": 1, "input_tokens": 500, "output_tokens": 0, "cost_usd": 0.00001,
                                "cost_incomplete": 0, "models": ["text-embedding-3-small"]}
    row = store.dicts("SELECT response_models, cost_complete, answer_text, sources FROM queries "
                      "WHERE trace_id = ?", ["a" * 32])[0]
    # content is not kept in the store unless capture is full: ids and scores are
    assert row == {"response_models": ["gpt-4o-mini-2024-07-18"], "cost_complete": True, "answer_text": None,
                   "sources": [{"id": "d1", "score": 0.9, "text": None}]}
    assert store.count("ingestion") == 1
