"""The store's tables as ordered, versioned migrations.

``MIGRATIONS[i]`` moves a database from version ``i`` to ``i + 1``; each runs in the caller's
transaction together with the ``schema_version`` update, so a failed migration leaves the file at
the version it had.  ``rag_otel_meta`` marks a file as ours: a DuckDB file without it that already
has tables belongs to someone else and is refused.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from rag_otel.semconv import QUALITY_AXES

APP_ID = "rag-otel-store"

# Latency histogram bucket upper bounds (seconds) kept in rollups, so long ranges can estimate
# percentiles without raw rows; the last bucket is open-ended.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0
)

# One count column per latency bucket (h00 = up to the first bound, the last one open-ended):
# plain columns sum in SQL, where a list column would need per-element lambdas.
HIST_COLUMNS: tuple[str, ...] = tuple(f"h{i:02d}" for i in range(len(LATENCY_BOUNDS) + 1))

_AXIS_COLUMNS = ", ".join(f"q_{a} DOUBLE" for a in QUALITY_AXES)


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    """The first layout: raw rows for queries, system samples, alerts, feedback, report runs."""
    con.execute(f"""
        CREATE TABLE queries (
            trace_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, duration_s DOUBLE NOT NULL, ttfc_s DOUBLE,
            service VARCHAR, user_id VARCHAR, session_id VARCHAR, conversation_id VARCHAR,
            category VARCHAR, topic VARCHAR, model VARCHAR, models VARCHAR[], provider VARCHAR,
            input_tokens BIGINT, output_tokens BIGINT, cached_input_tokens BIGINT, reasoning_tokens BIGINT,
            cost_usd DOUBLE, status VARCHAR, error_type VARCHAR, features VARCHAR[],
            {_AXIS_COLUMNS}, q_overall DOUBLE, q_grade VARCHAR, q_status VARCHAR,
            latency_category VARCHAR, alerts VARCHAR[], documents INTEGER, query_text VARCHAR
        )""")
    con.execute("""
        CREATE TABLE system_samples (
            ts TIMESTAMP NOT NULL, service VARCHAR, host VARCHAR, cpu_percent DOUBLE, memory_percent DOUBLE,
            disk_percent DOUBLE, network_bytes_per_s DOUBLE, process_rss_bytes DOUBLE, health_score DOUBLE
        )""")
    con.execute("""
        CREATE TABLE alerts (
            ts TIMESTAMP NOT NULL, rule VARCHAR, state VARCHAR, severity VARCHAR, value DOUBLE, threshold DOUBLE,
            labels JSON, started_at TIMESTAMP, message VARCHAR, fingerprint VARCHAR
        )""")
    con.execute("""
        CREATE TABLE feedback (
            trace_id VARCHAR, ts TIMESTAMP NOT NULL, score DOUBLE, thumbs VARCHAR, comment VARCHAR, user_id VARCHAR
        )""")
    con.execute("""
        CREATE SEQUENCE report_run_id;
        CREATE TABLE report_runs (
            id BIGINT DEFAULT nextval('report_run_id') PRIMARY KEY, kind VARCHAR NOT NULL,
            period_start TIMESTAMP, period_end TIMESTAMP, ran_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL,
            outputs JSON, error VARCHAR
        )""")


def _v2(con: duckdb.DuckDBPyConnection) -> None:
    """Normalized text and word count for cache/complexity analytics; additive rollups."""
    con.execute("ALTER TABLE queries ADD COLUMN query_norm VARCHAR")
    con.execute("ALTER TABLE queries ADD COLUMN query_words INTEGER")
    axis_cols = ", ".join(f"q_{a}_sum DOUBLE, q_{a}_n BIGINT" for a in QUALITY_AXES)
    hist_cols = ", ".join(f"{c} BIGINT" for c in HIST_COLUMNS)
    con.execute(f"""
        CREATE TABLE rollups (
            level VARCHAR NOT NULL, bucket TIMESTAMP NOT NULL, service VARCHAR NOT NULL, model VARCHAR NOT NULL,
            category VARCHAR NOT NULL,
            n BIGINT, errors BIGINT, latency_sum DOUBLE, latency_max DOUBLE, {hist_cols},
            input_tokens BIGINT, output_tokens BIGINT, cost_usd DOUBLE, cost_n BIGINT,
            q_overall_sum DOUBLE, q_overall_n BIGINT, {axis_cols},
            PRIMARY KEY (level, bucket, service, model, category)
        )""")


def _v3(con: duckdb.DuckDBPyConnection) -> None:
    """What a query record says beyond totals (requested vs answered model, whether its cost is whole, its
    answer and sources), and ingestion traces (index builds, uploads) counted apart from queries."""
    con.execute("ALTER TABLE queries ADD COLUMN response_models VARCHAR[]")
    con.execute("ALTER TABLE queries ADD COLUMN cost_complete BOOLEAN")
    con.execute("ALTER TABLE queries ADD COLUMN answer_text VARCHAR")
    con.execute("ALTER TABLE queries ADD COLUMN sources STRUCT(id VARCHAR, score DOUBLE, text VARCHAR)[]")
    con.execute("""
        CREATE TABLE ingestion (
            trace_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, duration_s DOUBLE NOT NULL, service VARCHAR,
            models VARCHAR[], input_tokens BIGINT, output_tokens BIGINT, cost_usd DOUBLE, cost_complete BOOLEAN
        )""")


def _v4(con: duckdb.DuckDBPyConnection) -> None:
    """What the query view shows beyond the row: span waterfall, model calls, sources, axis explanations.

    A table of its own (not columns on ``queries``): analytics never scan it, and it is deleted with
    the raw rows by the same retention.
    """
    con.execute("""
        CREATE TABLE query_details (
            trace_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, spans JSON, sources JSON, quality JSON
        )""")


def _v5(con: duckdb.DuckDBPyConnection) -> None:
    """A record per question, not per trace: a trace may hold several (a LangServe ``/batch`` call), so
    queries, their details and feedback are named by ``query_id``: the trace id for a trace that is one
    question (every row written before, so old links keep working), else "<trace id>-<unit root span id>"."""
    for table in ("queries", "query_details", "feedback"):
        con.execute(f"ALTER TABLE {table} ADD COLUMN query_id VARCHAR")
        con.execute(f"UPDATE {table} SET query_id = trace_id")


MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_v1, _v2, _v3, _v4, _v5]
SCHEMA_VERSION = len(MIGRATIONS)
