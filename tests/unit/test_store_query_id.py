"""Schema v5: records are named by query id (one trace may hold several questions), and a v4 store upgrades
in place: its rows keep their trace id as query id, so old links, details and feedback still resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_otel.analytics import parse_period, run
from rag_otel.records import Feedback, QueryRecord, SpanSummary
from rag_otel.store import Store
from rag_otel.store import store as store_module
from rag_otel.store.schema import SCHEMA_VERSION
from tests.support.store_data import text_config

T = "4bf92f3577b34da6a3ce929d0e0e4736"
BATCH = "0af7651916cd43dd8448eb211c80319c"


def write_v4_rows(store: Store, now: float) -> None:
    """Rows as a v4 store holds them (no query_id column), written with v4's columns."""
    store._con.execute("INSERT INTO queries (trace_id, ts, duration_s, service, user_id, status, model) "
                       "VALUES (?, to_timestamp(?)::TIMESTAMP, 1.5, 'old', 'ana', 'ok', 'gpt-4o-mini')", [T, now])
    store._con.execute("INSERT INTO query_details VALUES (?, to_timestamp(?)::TIMESTAMP, '[]', "
                       "'[{\"id\": \"d1\", \"score\": 0.5}]', NULL)", [T, now])
    store._con.execute("INSERT INTO feedback VALUES (?, to_timestamp(?)::TIMESTAMP, 1.0, 'up', 'great', 'ana')",
                       [T, now])


def v4_store(path: Path, monkeypatch: pytest.MonkeyPatch, now: float) -> None:
    with monkeypatch.context() as m:
        m.setattr(store_module, "SCHEMA_VERSION", 4)
        with Store.open(path) as old:
            assert old.schema_version == 4
            assert "query_id" not in {r[0] for r in old.sql("DESCRIBE queries")}
            write_v4_rows(old, now)


def unit(span: int, question: str, start: float) -> QueryRecord:
    sid = f"{span:016x}"
    return QueryRecord(BATCH, sid, start, start + 1, service="batch", user_id="bo", query_text=question,
                       models=["gpt-4o-mini"], cost_usd=0.001 * span, query_id=f"{BATCH}-{sid}",
                       spans=[SpanSummary(sid, None, "chat gpt-4o-mini", "llm", start, start + 1)])


def test_a_v4_store_upgrades_and_its_rows_answer_by_trace_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    now = time.time() - 60
    v4_store(tmp_path, monkeypatch, now)
    with Store.open(tmp_path, config=text_config()) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        detail = store.query_detail(T)  # the dashboard's #/query/<trace id> of an old row
        assert detail is not None and detail["query_id"] == T and detail["service"] == "old"
        assert detail["sources"] == [{"id": "d1", "score": 0.5}] and detail["details_stored"] is True
        assert [f["comment"] for f in detail["feedback"]] == ["great"]
        assert [r["query_id"] for r in store.search_queries(T)] == [T]
        # new rows of a trace that held two questions: each by its own query id
        store.write_records([unit(6, "How do I descale my kettle?", now + 1),
                             unit(7, "Is limescale covered?", now + 2)])
        one = store.query_detail(f"{BATCH}-{6:016x}")
        two = store.query_detail(f"{BATCH}-{7:016x}")
        assert one["query_text"] == "How do I descale my kettle?" and two["query_text"] == "Is limescale covered?"
        assert [s["id"] for s in one["spans"]] == [f"{6:016x}"]
        assert store.query_detail(BATCH) is None  # the trace alone names no query
        assert len(store.search_queries(BATCH)) == 2  # searching by trace id finds both
        # feedback on one question of the batch joins that question only
        store.write_feedback(Feedback(BATCH, now + 3, thumbs="down", user_id="bo", query_id=f"{BATCH}-{7:016x}"))
        assert [f["thumbs"] for f in store.query_detail(f"{BATCH}-{7:016x}")["feedback"]] == ["down"]
        assert store.query_detail(f"{BATCH}-{6:016x}")["feedback"] == []
        users = {u["user_id"]: u for u in run("user_behavior", store, parse_period("1d"))["users"]}
        assert users["bo"]["queries"] == 2 and users["bo"]["feedback_count"] == 1
        assert users["bo"]["satisfaction"] == 0.0
        assert run("model_usage_and_cost", store, parse_period("1d"))["queries"] == 3
