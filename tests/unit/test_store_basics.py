"""The store file: creation, migrations, refusal of foreign or corrupt files, retention and rollups,
reads, Parquet export."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pytest

from rag_otel.analytics import parse_period, run
from rag_otel.config import ModelObservation
from rag_otel.records import Feedback, QueryRecord
from rag_otel.store import FILENAME, Store, StoreError
from rag_otel.store.schema import MIGRATIONS, SCHEMA_VERSION
from tests.support.store_data import fill, generate, text_config


def test_new_store_is_created_in_the_data_dir_and_reopens(tmp_path):
    with Store.open(tmp_path / "data") as store:
        assert store.schema_version == SCHEMA_VERSION
        store.write_records(generate(days=1, per_day=10).records)
    with Store.open(tmp_path / "data", read_only=True) as store:
        assert store.count("queries") == 10
        with pytest.raises(StoreError, match="read-only"):
            store.write_records(generate(days=1, per_day=1).records)
    assert (tmp_path / "data" / FILENAME).exists()


def test_store_written_by_a_newer_duckdb_is_named_as_such_and_left_untouched(tmp_path):
    # tests/data/rag-otel-store-duckdb-2.0.1.duckdb.gz: a rag-otel store created by DuckDB 2.0.1 (the
    # version before the fleet pin to 1.5.x), gzipped; the message used to call it "not a rag-otel store"
    import gzip

    data = gzip.decompress((Path(__file__).parents[1] / "data" / "rag-otel-store-duckdb-2.0.1.duckdb.gz").read_bytes())
    path = tmp_path / FILENAME
    path.write_bytes(data)
    for read_only in (False, True):
        with pytest.raises(StoreError) as err:
            Store.open(tmp_path, read_only=read_only)
        text = str(err.value)
        assert "written by DuckDB v2.0.1" in text and duckdb.__version__ in text
        assert "EXPORT DATABASE" in text and "IMPORT DATABASE" in text
        assert "not a rag-otel store" not in text
    assert path.read_bytes() == data


def test_random_bytes_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / FILENAME
    junk = os.urandom(64 * 1024)
    path.write_bytes(junk)
    with pytest.raises(StoreError, match="not a rag-otel store"):
        Store.open(tmp_path)
    assert path.read_bytes() == junk


def test_duckdb_file_of_another_app_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / FILENAME
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE orders (id INTEGER, total DOUBLE)")
    con.execute("INSERT INTO orders VALUES (1, 9.5)")
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"another application.*orders"):
        Store.open(tmp_path)
    assert path.read_bytes() == before
    assert duckdb.connect(str(path)).execute("SELECT * FROM orders").fetchall() == [(1, 9.5)]


def test_a_newer_schema_is_refused(tmp_path):
    with Store.open(tmp_path) as store:
        store._con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [SCHEMA_VERSION + 1])
    with pytest.raises(StoreError, match="newer than this rag-otel"):
        Store.open(tmp_path)


def test_migration_from_version_1_keeps_rows_and_adds_rollups(tmp_path):
    path = tmp_path / FILENAME
    con = duckdb.connect(str(path))  # a store as the first release left it
    con.execute("CREATE TABLE rag_otel_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO rag_otel_meta VALUES ('app', 'rag-otel-store')")
    con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMP)")
    con.execute("INSERT INTO schema_version VALUES (1, now()::TIMESTAMP)")
    MIGRATIONS[0](con)
    con.execute("INSERT INTO queries (trace_id, ts, duration_s, service, status) "
                "VALUES ('t1', '2026-11-01 10:00:00', 1.5, 'old', 'ok')")
    con.close()
    with pytest.raises(StoreError, match="open it once read-write"):
        Store.open(tmp_path, read_only=True)
    with Store.open(tmp_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.sql("SELECT trace_id, service, query_norm FROM queries") == [("t1", "old", None)]
        store.write_records(generate(days=1, per_day=5).records)
        assert store.count("queries") == 6 and store.count("rollups") > 0


def old_and_new(now: datetime) -> list[QueryRecord]:
    """Two records a day for 60 days before ``now``."""
    out = []
    for d in range(60):
        for k in range(2):
            t = (now - timedelta(days=d, hours=3 + k * 5)).timestamp()
            out.append(QueryRecord(f"{d:016x}{k:016x}", "0" * 16, t, t + 0.4 + d * 0.05 + k, service="s",
                                   models=["m"], status="error" if d % 7 == 0 and k else "ok", cost_usd=0.001 * d))
    return out


def test_retention_deletes_old_raw_rows_and_rollups_still_answer(tmp_path):
    cfg = ModelObservation()
    cfg.metrics_collection.retention_days = 30
    cfg.dashboards.historical.retention_days = 90
    now = datetime(2026, 11, 20, tzinfo=timezone.utc)
    recs = old_and_new(now)
    period = parse_period("59d", now=now)
    with Store.open(tmp_path, config=cfg) as store:
        for i in range(0, len(recs), 17):
            store.write_records(recs[i:i + 17])
        raw = run("performance", store, period, source="raw")
        cost_raw = run("model_usage_and_cost", store, period, source="raw")
        deleted = store.apply_retention(now=now.replace(tzinfo=None))
        assert deleted["queries"] == sum(r.start_time < (now - timedelta(days=30)).timestamp() for r in recs)
        assert store.count("queries") == len(recs) - deleted["queries"] and deleted["rollups"] == 0
        # the period starts before the raw cutoff, so "auto" reads rollups
        rolled = run("performance", store, period)
        cost_rolled = run("model_usage_and_cost", store, period)
    assert rolled["source"] == "rollup:hourly"
    in_period = [r for r in recs if r.start_time >= (now - timedelta(days=59)).timestamp()]
    assert rolled["total"] == raw["total"] == len(in_period)
    for key in ("errors", "success_rate", "avg_latency_s", "max_latency_s"):
        assert rolled[key] == pytest.approx(raw[key], abs=1e-6)
    assert rolled["latency_categories"] == raw["latency_categories"]  # the thresholds are bucket bounds
    lat = np.array([r.duration_s for r in in_period])
    assert rolled["p50_latency_s"] == pytest.approx(np.percentile(lat, 50), rel=0.25)  # estimated from buckets
    assert cost_rolled["source"] == "rollup:hourly"
    assert cost_rolled["total_cost_usd"] == pytest.approx(cost_raw["total_cost_usd"], abs=1e-9)
    assert cost_rolled["cost_per_day"] == cost_raw["cost_per_day"]


def test_rollups_are_dropped_after_their_own_retention(tmp_path):
    cfg = ModelObservation()
    cfg.metrics_collection.retention_days = 5
    cfg.dashboards.historical.retention_days = 20
    now = datetime(2026, 11, 20)
    with Store.open(tmp_path, config=cfg) as store:
        store.write_records(old_and_new(now.replace(tzinfo=timezone.utc)))
        store.apply_retention(now=now)
        oldest = store.sql("SELECT min(bucket) FROM rollups WHERE level = 'hourly'")[0][0]
        assert oldest >= now - timedelta(days=20)
        assert store.sql("SELECT min(ts) FROM queries")[0][0] >= now - timedelta(days=5)


def test_reads_recent_search_alerts_feedback_and_report_runs(tmp_path):
    ds = generate(days=2, per_day=50)
    with Store.open(tmp_path, config=text_config()) as store:
        fill(store, ds)
        recent = store.recent_queries(5)
        newest = sorted(ds.records, key=lambda r: -r.start_time)[:5]
        assert [q["trace_id"] for q in recent] == [r.trace_id for r in newest]
        assert all(q["user_id"] == "user-01" for q in store.recent_queries(50, user_id="user-01"))
        hits = store.search_queries("PASSWORD")
        assert hits and all("password" in q["query_text"].lower() for q in hits)
        assert store.search_queries(ds.records[0].trace_id)[0]["trace_id"] == ds.records[0].trace_id
        alerts = store.alerts_history()
        assert [a["state"] for a in alerts] == ["resolved", "firing"] and alerts[0]["labels"] == {"service": "rag-app"}
        rid = store.write_report_run("daily", datetime(2026, 11, 19), datetime(2026, 11, 20),
                                     outputs={"html": "/tmp/r.html"})
        store.write_report_run("weekly", None, None, status="failed", error="smtp down")
        runs = store.report_runs(kind="daily")
        assert runs[0]["id"] == rid and runs[0]["outputs"] == {"html": "/tmp/r.html"}
        assert store.report_runs(limit=1)[0]["error"] == "smtp down"
        with pytest.raises(ValueError, match="outside"):
            store.write_feedback(Feedback("t", 1.0, score=3.0))
        assert store.count("feedback") == len(ds.feedback)  # the bad one was not written


def test_parquet_export_has_every_row(tmp_path):
    ds = generate(days=2, per_day=40)
    with Store.open(tmp_path / "db") as store:
        fill(store, ds)
        files = store.export_parquet(tmp_path / "out")
        one_day = store.export_parquet(tmp_path / "day", tables=["queries"],
                                       start=datetime(2026, 11, 19), end=datetime(2026, 11, 20))
    con = duckdb.connect()
    counts = {Path(f).stem: con.execute("SELECT count(*) FROM read_parquet(?)", [str(f)]).fetchone()[0] for f in files}
    assert counts["queries"] == len(ds.records) and counts["system_samples"] == len(ds.system)
    assert counts["feedback"] == len(ds.feedback) and counts["alerts"] == len(ds.alerts)
    last_day = sum(r.start_time >= datetime(2026, 11, 19, tzinfo=timezone.utc).timestamp() for r in ds.records)
    assert con.execute("SELECT count(*) FROM read_parquet(?)", [str(one_day[0])]).fetchone()[0] == last_day


def test_without_full_capture_text_is_dropped_but_labels_and_duplicates_remain(tmp_path):
    ds = generate(days=1, per_day=60)
    cfg = ModelObservation()
    cfg.content.capture = "scoring_only"  # text reached the processor for scoring only
    with Store.open(tmp_path, config=cfg) as store:
        store.write_records(ds.records)
        assert store.sql("SELECT count(query_text) FROM queries")[0][0] == 0
        with_text = sum(r.query_text is not None for r in ds.records)
        assert store.sql("SELECT count(category), count(topic) FROM queries WHERE query_words IS NOT NULL")[0] == (
            with_text, with_text)
        cache = next(o for o in run("model_usage_and_cost", store, parse_period("2d", end=ds.end))["opportunities"]
                     if o["type"] == "cache")
    distinct = len({r.query_text.lower().strip(" ?!.") for r in ds.records if r.query_text})
    assert cache["cacheable_queries"] == with_text - distinct
    assert all(e["query"] is None for e in cache["examples"])
