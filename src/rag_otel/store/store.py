"""The analytics store: one DuckDB file in the processor's data directory (the default backend).

:class:`Store` is also the interface every backend keeps: the fleet store
(:class:`~rag_otel.store.lake.LakeStore`, many writers on one DuckLake) subclasses it and overrides
only the hooks marked "backend hook" below, so analytics and the web layer run the same SQL on both.
One writer (the processor's :class:`~rag_otel.store.writer.StoreWriter`) appends whole batches,
each in one transaction that also upserts the hourly/daily/weekly rollups it touched, so a crash
loses at most the batch being written, never the database (DuckDB's WAL replays on open).
Readers use their own cursor and may run concurrently with the writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from rag_otel.config import ModelObservation
from rag_otel.records import (
    AlertEvent,
    Feedback,
    IngestionRecord,
    QualityResult,
    QueryRecord,
    SpanSummary,
    SystemSample,
)
from rag_otel.semconv import QUALITY_AXES
from rag_otel.store.classify import Classifier
from rag_otel.store.schema import APP_ID, HIST_COLUMNS, LATENCY_BOUNDS, MIGRATIONS, SCHEMA_VERSION

logger = logging.getLogger("rag_otel.store")

FILENAME = "rag-otel.duckdb"
TABLES = ("queries", "query_details", "system_samples", "alerts", "feedback", "report_runs",
          "rollups", "ingestion")  # what export writes
LEVELS = {"hourly": "hour", "daily": "day", "weekly": "week"}


def _newer_duckdb(path: str, msg: str) -> str | None:
    """Why a file DuckDB refuses by its storage version can't be opened, and how to keep its data.

    A data dir written before rag-otel pinned DuckDB 1.5.x (the fleet extensions exist only for that
    line) is refused with a bare version number; it is not foreign or corrupt, and saying so matters
    more than the number."""
    if "version number" not in msg or "can only read" not in msg:
        return None
    try:
        with open(path, "rb") as f:
            header = f.read(0x44)
        writer = header[0x34:0x44].split(b"\0", 1)[0].decode("ascii") or "a newer DuckDB"
    except (OSError, UnicodeDecodeError):
        writer = "a newer DuckDB"
    return (f"{path} was written by DuckDB {writer}, which this install's DuckDB {duckdb.__version__} cannot "
            "read (rag-otel pins DuckDB 1.5.x: the fleet store's extensions exist only for that line). The data "
            f"is intact and left untouched. To keep it: with DuckDB {writer} run EXPORT DATABASE 'dump' "
            f"(FORMAT parquet) on it, then IMPORT DATABASE 'dump' into a new file with DuckDB "
            f"{duckdb.__version__}, and point --data-dir at that; or move the file away to start afresh.")


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says which file and what to do."""


class StoreLockedError(StoreError):
    """Another process (normally a running ``rag-otel serve``) holds the file: the CLI then reads through its API."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def utc(ts: float) -> datetime:
    """Unix seconds -> naive UTC datetime (the store keeps TIMESTAMP in UTC)."""
    return datetime(1970, 1, 1) + timedelta(seconds=ts)


def jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v != v:  # NaN
        return None
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def _us(ts: float) -> int:
    return round(ts * 1_000_000)


_QUERY_SCHEMA = pa.schema([
    ("trace_id", pa.string()), ("ts", pa.timestamp("us")), ("duration_s", pa.float64()), ("ttfc_s", pa.float64()),
    ("service", pa.string()), ("user_id", pa.string()), ("session_id", pa.string()),
    ("conversation_id", pa.string()), ("category", pa.string()), ("topic", pa.string()), ("model", pa.string()),
    ("models", pa.list_(pa.string())), ("provider", pa.string()), ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()), ("cached_input_tokens", pa.int64()), ("reasoning_tokens", pa.int64()),
    ("cost_usd", pa.float64()), ("status", pa.string()), ("error_type", pa.string()),
    ("features", pa.list_(pa.string())),
    *[(f"q_{a}", pa.float64()) for a in QUALITY_AXES],
    ("q_overall", pa.float64()), ("q_grade", pa.string()), ("q_status", pa.string()),
    ("latency_category", pa.string()), ("alerts", pa.list_(pa.string())), ("documents", pa.int32()),
    ("query_text", pa.string()), ("query_norm", pa.string()), ("query_words", pa.int32()),
    ("response_models", pa.list_(pa.string())), ("cost_complete", pa.bool_()), ("answer_text", pa.string()),
    ("sources", pa.list_(pa.struct([("id", pa.string()), ("score", pa.float64()), ("text", pa.string())]))),
    ("query_id", pa.string()),
])
QUERY_COLUMNS = [f.name for f in _QUERY_SCHEMA]


def _hist_sql() -> str:
    parts, lo = [], None
    for b in (*LATENCY_BOUNDS, None):
        cond = " AND ".join(c for c in (
            f"duration_s > {lo}" if lo is not None else "", f"duration_s <= {b}" if b is not None else "") if c)
        parts.append(f"count(*) FILTER (WHERE {cond})")
        lo = b
    return ", ".join(parts)


def _rollup_sql(levels: Sequence[str], source: str, *, upsert: bool = True) -> str:
    """Every configured level's partial aggregates of the rows in ``source``: an upsert into the
    existing buckets, or (``upsert=False``) plain appended rows, which readers sum like any other
    (every rollup read aggregates with sum/max, so N rows per bucket mean the same as one)."""
    axes_sel = ", ".join(f"sum(q_{a}), count(q_{a})" for a in QUALITY_AXES)
    axes_upd = ", ".join(f"q_{a}_sum = coalesce(q_{a}_sum, 0) + coalesce(EXCLUDED.q_{a}_sum, 0), "
                         f"q_{a}_n = q_{a}_n + EXCLUDED.q_{a}_n" for a in QUALITY_AXES)
    hist_upd = ", ".join(f"{h} = {h} + EXCLUDED.{h}" for h in HIST_COLUMNS)
    lv = ", ".join(f"('{lvl}', '{LEVELS[lvl]}')" for lvl in levels)
    return f"""
        INSERT INTO rollups
        SELECT lv.level, date_trunc(lv.unit, ts), coalesce(service, ''), coalesce(model, ''),
               coalesce(category, ''), count(*), count(*) FILTER (WHERE status = 'error'), sum(duration_s),
               max(duration_s), {_hist_sql()}, sum(input_tokens), sum(output_tokens), sum(cost_usd),
               count(cost_usd), sum(q_overall), count(q_overall), {axes_sel}
        FROM {source}, (VALUES {lv}) lv(level, unit)
        GROUP BY lv.level, lv.unit, 2, 3, 4, 5
    """ + ("" if not upsert else f"""
        ON CONFLICT DO UPDATE SET
            n = n + EXCLUDED.n, errors = errors + EXCLUDED.errors, latency_sum = latency_sum + EXCLUDED.latency_sum,
            latency_max = greatest(latency_max, EXCLUDED.latency_max), {hist_upd},
            input_tokens = input_tokens + EXCLUDED.input_tokens, output_tokens = output_tokens + EXCLUDED.output_tokens,
            cost_usd = coalesce(cost_usd, 0) + coalesce(EXCLUDED.cost_usd, 0), cost_n = cost_n + EXCLUDED.cost_n,
            q_overall_sum = coalesce(q_overall_sum, 0) + coalesce(EXCLUDED.q_overall_sum, 0),
            q_overall_n = q_overall_n + EXCLUDED.q_overall_n, {axes_upd}
    """)


class Store:
    """Typed writes and common reads over the DuckDB file; analytics live in :mod:`rag_otel.analytics`."""

    kind = "duckdb"
    shared = False  # True when other processes write the same store (the fleet): reads are fleet-wide
    upsert_rollups = True  # one writer may update its buckets in place; N writers append partials
    min_batch = 1  # fewest query records the writer gathers for one commit (within its flush_interval)

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, config: ModelObservation, read_only: bool) -> None:
        self._root = con  # readers take cursors from it
        self._con = self.cursor()  # the writer's own cursor (a DuckDB connection object is not thread-safe)
        self.path = path
        self.config = config
        self.read_only = read_only
        self.classifier = Classifier(config.analytics.categories)
        self.levels: list[str] = list(dict.fromkeys(config.dashboards.historical.aggregation_levels))
        # Query text is content: kept only when the operator asked for full capture (or keep_content);
        # under scoring_only it serves the write-time labels and a hash for duplicate detection, then goes.
        self.keep_text = config.content.capture == "full" or config.processor.keep_content
        self._lock = threading.RLock()
        self._closed = False

    # --- open / close --------------------------------------------------------------------------
    @classmethod
    def open(cls, location: str | Path, *, read_only: bool = False,
             config: ModelObservation | None = None) -> Store:
        """Open (creating or migrating) the store; ``location`` is a data directory, a file or ``:memory:``.

        A file that is not a DuckDB database, or a DuckDB database of another application, is
        refused with :class:`StoreError` and left untouched.
        """
        config = config or ModelObservation()
        if str(location) == ":memory:":
            path = ":memory:"
        else:
            p = Path(location)
            if p.is_dir() or (not p.exists() and not p.suffix):
                if read_only and not (p / FILENAME).exists():
                    raise StoreError(f"no rag-otel store in {p} (expected {p / FILENAME}); run `rag-otel serve "
                                     f"--data-dir {p}` first")
                p.mkdir(parents=True, exist_ok=True)
                p = p / FILENAME
            elif read_only and not p.exists():
                raise StoreError(f"no rag-otel store at {p}")
            elif not read_only:
                p.parent.mkdir(parents=True, exist_ok=True)
            path = str(p)
        try:
            con = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as e:
            msg = str(e).splitlines()[0]
            if "lock" in msg.lower():
                raise StoreLockedError(f"{path} is in use by another process (a running `rag-otel serve`?): {msg}",
                                       path) from None
            newer = _newer_duckdb(path, msg)
            if newer:
                raise StoreError(newer) from None
            raise StoreError(f"{path} is not a rag-otel store (not a readable DuckDB database: {msg}); "
                             "refusing to touch it: move it away or choose another --data-dir") from None
        try:
            _check_and_migrate(con, path, read_only)
        except BaseException:
            con.close()
            raise
        return cls(con, path, config, read_only)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                if not self.read_only:
                    self._before_close()
                self._con.close()
                self._root.close()

    def _before_close(self) -> None:
        """Backend hook: fold the WAL into the file so the next open is quick."""
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error:
            logger.exception("rag-otel store: checkpoint at close failed (the WAL still has the data)")

    def is_transient(self, error: BaseException) -> bool:
        """Backend hook: may ``error`` pass if the write is retried later (a server away), rather than
        being a bad batch?  The file has no server: its errors are not retried."""
        return False

    def recover(self) -> None:
        """Backend hook: re-establish connections after a transient error (nothing to do for a file)."""

    def compact(self) -> dict[str, Any]:
        """Backend hook: merge small data files and drop unreferenced ones; the file needs none."""
        return {}

    def lease(self, job: str, *, ttl: float = 15.0) -> Any:
        """Backend hook: the lease that makes one process the leader of ``job`` (reports, maintenance).
        The file has one writer, so it always leads (:class:`~rag_otel.store.lease.SoleLease`)."""
        from rag_otel.store.lease import SoleLease

        return SoleLease(job)

    def alert_state(self, job: str, holder: str) -> Any:
        """Backend hook: where fleet-scope alerts keep their state between evaluations and leaders
        (:mod:`rag_otel.store.alert_state`); the file's one processor keeps it in memory."""
        from rag_otel.store.alert_state import MemoryAlertState

        return MemoryAlertState()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self.sql("SELECT max(version) FROM schema_version")[0][0])

    # --- reads ---------------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own for a reader thread (DuckDB cursors are safe in parallel)."""
        return self._root.cursor()

    def sql(self, query: str, params: Sequence[Any] | None = None) -> list[tuple]:
        cur = self.cursor()
        try:
            return cur.execute(query, params or []).fetchall()
        finally:
            cur.close()

    def dicts(self, query: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts (timestamps as ISO 8601 UTC strings)."""
        cur = self.cursor()
        try:
            cur.execute(query, params or [])
            names = [d[0] for d in cur.description]
            return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]
        finally:
            cur.close()

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        return int(self.sql(f"SELECT count(*) FROM {table}")[0][0])

    def recent_queries(self, limit: int = 50, *, service: str | None = None, user_id: str | None = None,
                       model: str | None = None, status: str | None = None, since: datetime | None = None,
                       category: str | None = None) -> list[dict[str, Any]]:
        """Newest first; each row is a query record (query text only when it was captured)."""
        where, params = _filters(service=service, user_id=user_id, model=model, status=status, category=category)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        return self._query_rows(where, params, limit)

    def search_queries(self, text: str, limit: int = 50, *, service: str | None = None) -> list[dict[str, Any]]:
        """Case-insensitive substring match on query text, topic, category, trace id or user id."""
        where, params = _filters(service=service)
        where.append("(query_text ILIKE ? OR topic ILIKE ? OR category ILIKE ? OR trace_id = ? OR query_id = ? "
                     "OR user_id = ?)")
        like = f"%{text}%"
        params += [like, like, like, text.lower(), text.lower(), text]
        return self._query_rows(where, params, limit)

    def _query_rows(self, where: list[str], params: list[Any], limit: int) -> list[dict[str, Any]]:
        cols = [c for c in QUERY_COLUMNS if c != "query_norm"]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.dicts(f"SELECT {', '.join(cols)} FROM queries {clause} ORDER BY ts DESC LIMIT ?",
                          [*params, int(limit)])

    def alerts_history(self, limit: int = 100, *, rule: str | None = None, since: datetime | None = None,
                       state: str | None = None) -> list[dict[str, Any]]:
        where, params = _filters(rule=rule, state=state)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.dicts(f"SELECT * FROM alerts {clause} ORDER BY ts DESC LIMIT ?", [*params, int(limit)])
        for r in rows:
            r["labels"] = json.loads(r["labels"]) if r["labels"] else {}
        return rows

    def report_runs(self, limit: int = 50, *, kind: str | None = None) -> list[dict[str, Any]]:
        where, params = _filters(kind=kind)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.dicts(f"SELECT * FROM report_runs {clause} ORDER BY ran_at DESC, id DESC LIMIT ?",
                          [*params, int(limit)])
        for r in rows:
            r["outputs"] = json.loads(r["outputs"]) if r["outputs"] else None
        return rows

    def raw_cutoff(self, now: datetime | None = None) -> datetime:
        """Raw rows older than this are deleted by retention; longer ranges read rollups."""
        now = now or utc(time.time())
        return now - timedelta(days=self.config.metrics_collection.retention_days)

    # --- writes --------------------------------------------------------------------------------
    def _write(self, fn: Any, *args: Any) -> Any:
        if self.read_only:
            raise StoreError(f"{self.path} was opened read-only")
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                out = fn(*args)
                self._con.execute("COMMIT")
                return out
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already rolled back
                    self._con.execute("ROLLBACK")
                raise

    def write_records(self, records: Sequence[QueryRecord]) -> int:
        """Append query records and upsert the rollup buckets they touch, in one transaction."""
        if not records:
            return 0
        table = self.query_table(records)
        details = self.details_table(records)
        return self._write(self._insert_queries, table, details)

    def details_table(self, records: Sequence[QueryRecord]) -> pa.Table:
        """What the query view needs per record (``query_details``): spans, source ids/scores, axis explanations.

        Content-free except axis evidence, kept only where query text is (and only when the
        processor did not strip it as captured for scoring only).
        """
        cols: dict[str, list[Any]] = {"trace_id": [], "ts": [], "spans": [], "sources": [], "quality": [],
                                      "query_id": []}
        for r in records:
            cols["trace_id"].append(r.trace_id)
            cols["query_id"].append(r.query_id)
            cols["ts"].append(_us(r.start_time))
            cols["spans"].append(json.dumps([_span_json(sp, r.start_time) for sp in r.spans]))
            cols["sources"].append(json.dumps([{"id": x.id, "score": x.score} for x in r.sources]))
            cols["quality"].append(None if r.quality is None else json.dumps(_quality_json(r.quality, self.keep_text)))
        return pa.table(cols, schema=_DETAILS_SCHEMA)

    def query_detail(self, query_id: str) -> dict[str, Any] | None:
        """One query (by its query id: the trace id, or "<trace id>-<span id>" for one question of several in a
        trace): its row, spans, sources, quality explanations, feedback and the alerts it tripped."""
        cols = [c for c in QUERY_COLUMNS if c != "query_norm"]
        rows = self.dicts(f"SELECT {', '.join(cols)} FROM queries WHERE query_id = ? ORDER BY ts DESC LIMIT 1",
                          [query_id])
        if not rows:
            return None
        out = rows[0]
        det = self.sql("SELECT spans, sources, quality FROM query_details WHERE query_id = ? ORDER BY ts DESC "
                       "LIMIT 1", [query_id])
        spans, sources, quality = (json.loads(x) if x else None for x in det[0]) if det else (None, None, None)
        out["spans"] = spans or []
        out["sources"] = sources or []
        out["quality"] = quality
        out["details_stored"] = bool(det)
        out["feedback"] = self.dicts("SELECT ts, score, thumbs, comment, user_id FROM feedback WHERE query_id = ? "
                                     "ORDER BY ts", [query_id])
        # The alerts it tripped: its rules' state changes from before the query to an hour after it.
        names = out.get("alerts") or []
        out["alert_events"] = [] if not names else self.dicts(
            "SELECT ts, rule, state, severity, value, threshold, message, fingerprint FROM alerts "
            "WHERE list_contains(?, rule) AND started_at <= ?::TIMESTAMP + INTERVAL 1 HOUR "
            "AND ts >= ?::TIMESTAMP - INTERVAL 1 HOUR ORDER BY ts LIMIT 20",
            [names, out["ts"].rstrip("Z"), out["ts"].rstrip("Z")])
        return out

    def query_table(self, records: Sequence[QueryRecord]) -> pa.Table:
        """Records as an Arrow table in the ``queries`` layout, with write-time labels computed."""
        cols: dict[str, list[Any]] = {c: [] for c in QUERY_COLUMNS}
        for r in records:
            lab = self.classifier.labels(r.query_text, r.category, r.topic)
            q = r.quality
            axes = q.axes if q is not None else {}
            row = {
                "trace_id": r.trace_id, "query_id": r.query_id, "ts": _us(r.start_time), "duration_s": r.duration_s,
                "ttfc_s": r.time_to_first_chunk, "service": r.service, "user_id": r.user_id,
                "session_id": r.session_id, "conversation_id": r.conversation_id, "category": lab.category,
                "topic": lab.topic, "model": r.model, "models": list(r.models), "provider": r.provider,
                "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                "cached_input_tokens": r.cached_input_tokens, "reasoning_tokens": r.reasoning_tokens,
                "cost_usd": r.cost_usd, "status": r.status, "error_type": r.error_type, "features": list(r.features),
                "q_overall": q.overall if q is not None else None, "q_grade": q.grade if q is not None else None,
                "q_status": q.status if q is not None else None, "latency_category": r.latency_category,
                "alerts": list(r.alerts), "documents": len(r.sources),
                "query_text": r.query_text if self.keep_text else None,
                "query_norm": lab.normalized if self.keep_text or lab.normalized is None else _digest(lab.normalized),
                "query_words": lab.words,
                "response_models": list(r.response_models), "cost_complete": r.cost_complete,
                "answer_text": r.answer_text if self.keep_text else None,
                # ids and scores always; the text only where the store keeps text
                "sources": [{"id": s.id, "score": s.score, "text": s.content if self.keep_text else None}
                            for s in r.sources],
            }
            for a in QUALITY_AXES:
                row[f"q_{a}"] = axes[a].score if a in axes else None
            for c in QUERY_COLUMNS:
                cols[c].append(row[c])
        return pa.table(cols, schema=_QUERY_SCHEMA)

    def _insert_queries(self, table: pa.Table, details: pa.Table | None = None) -> int:
        con = self._con
        con.register("_batch", table)
        try:
            con.execute(f"INSERT INTO queries ({', '.join(QUERY_COLUMNS)}) SELECT * FROM _batch")
            if self.levels:
                con.execute(_rollup_sql(self.levels, "_batch", upsert=self.upsert_rollups))
            if details is not None:
                con.register("_details", details)
                con.execute("INSERT INTO query_details SELECT * FROM _details")
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister("_batch")
            with contextlib.suppress(duckdb.Error):
                con.unregister("_details")
        return table.num_rows

    def _insert_rows(self, table: str, rows: list[tuple]) -> int:
        """Row tuples in the table's column order, inserted through Arrow (executemany is ~100x slower)."""
        names = [r[0] for r in self._con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_catalog = current_database() ORDER BY ordinal_position",
            [table]).fetchall()]
        arrow = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
        self._con.register("_rows", arrow)
        try:
            self._con.execute(f"INSERT INTO {table} SELECT * FROM _rows")
        finally:
            self._con.unregister("_rows")
        return len(rows)

    def rebuild_rollups(self) -> None:
        """Recompute every rollup from the raw rows still kept (bulk loads, repairs)."""
        def run() -> None:
            self._con.execute("DELETE FROM rollups")
            if self.levels:
                self._con.execute(_rollup_sql(self.levels, "queries", upsert=False))
        self._write(run)

    def write_ingestion(self, records: Sequence[IngestionRecord]) -> int:
        """Traces that were not questions (index builds, uploads): their model work and cost."""
        if not records:
            return 0
        rows = [(r.trace_id, utc(r.start_time), max(0.0, r.end_time - r.start_time), r.service, list(r.models),
                 r.input_tokens, r.output_tokens, r.cost_usd, r.cost_complete) for r in records]
        return self._write(self._insert_rows, "ingestion", rows)

    def write_system(self, samples: Sequence[SystemSample]) -> int:
        if not samples:
            return 0
        rows = [(utc(s.time), s.service, s.host, s.cpu_percent, s.memory_percent, s.disk_percent,
                 s.network_bytes_per_s, s.process_rss_bytes, s.health_score) for s in samples]
        return self._write(self._insert_rows, "system_samples", rows)

    def write_alerts(self, events: Sequence[AlertEvent]) -> int:
        if not events:
            return 0
        rows = [(utc(e.at), e.rule, e.state, e.severity, e.value, e.threshold, json.dumps(e.labels, sort_keys=True),
                 utc(e.started_at), e.message, e.fingerprint) for e in events]
        return self._write(self._insert_rows, "alerts", rows)

    def write_alert(self, event: AlertEvent) -> None:
        self.write_alerts([event])

    def write_feedbacks(self, items: Sequence[Feedback]) -> int:
        for f in items:
            if f.score is not None and not 0.0 <= f.score <= 1.0:
                raise ValueError(f"feedback score {f.score} for trace {f.trace_id} is outside [0, 1]")
            if f.thumbs not in (None, "up", "down"):
                raise ValueError(f"feedback thumbs {f.thumbs!r} must be 'up' or 'down'")
        rows = [(f.trace_id, utc(f.time), f.score, f.thumbs, f.comment, f.user_id, f.query_id or f.trace_id)
                for f in items]
        return self._write(self._insert_rows, "feedback", rows) if rows else 0

    def write_feedback(self, item: Feedback) -> None:
        self.write_feedbacks([item])

    def write_report_run(self, kind: str, period_start: datetime | None, period_end: datetime | None, *,
                         status: str = "ok", outputs: Any = None, error: str | None = None,
                         ran_at: datetime | None = None) -> int:
        """Record one report run (``status`` ok/failed/...); returns its id. ``outputs`` is any JSON."""
        ran_at = ran_at or utc(time.time())
        def run() -> int:
            run_id = self._new_run_id()
            self._con.execute(
                "INSERT INTO report_runs (id, kind, period_start, period_end, ran_at, status, outputs, error) "
                "VALUES (?,?,?,?,?,?,?,?)",
                [run_id, kind, _naive(period_start), _naive(period_end), _naive(ran_at), status,
                 json.dumps(outputs) if outputs is not None else None, error])
            return run_id
        return self._write(run)

    def _new_run_id(self) -> int:
        """Backend hook: the next ``report_runs.id`` (the file's sequence, inside the write transaction)."""
        return int(self._con.execute("SELECT nextval('report_run_id')").fetchone()[0])

    def apply_retention(self, now: datetime | None = None) -> dict[str, int]:
        """Delete raw rows past ``metrics_collection.retention_days`` and rollups past the historical one."""
        now = now or utc(time.time())
        raw = self.raw_cutoff(now)
        roll = now - timedelta(days=self.config.dashboards.historical.retention_days)
        def run() -> dict[str, int]:
            out = {}
            for table, cutoff in (("queries", raw), ("ingestion", raw), ("query_details", raw),
                                  ("system_samples", raw), ("feedback", raw), ("alerts", roll)):
                out[table] = int(self._con.execute(f"DELETE FROM {table} WHERE ts < ?", [cutoff]).fetchone()[0])
            out["rollups"] = int(self._con.execute("DELETE FROM rollups WHERE bucket < ?", [roll]).fetchone()[0])
            return out
        return self._write(run)

    def export_parquet(self, out_dir: str | Path, *, tables: Iterable[str] | None = None,
                       start: datetime | None = None, end: datetime | None = None) -> list[Path]:
        """One Parquet file per table (optionally only rows in [start, end)); returns the files written."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for t in tables or TABLES:
            self.count(t)  # validates the name
            col = {"rollups": "bucket", "report_runs": "ran_at"}.get(t, "ts")
            where, params = [], []
            if start is not None:
                where.append(f"{col} >= ?")
                params.append(start)
            if end is not None:
                where.append(f"{col} < ?")
                params.append(end)
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            path = out / f"{t}.parquet"
            cur = self.cursor()
            try:
                cur.execute(f"COPY (SELECT * FROM {t} {clause}) TO '{_sql_str(str(path))}' (FORMAT parquet)", params)
            finally:
                cur.close()
            written.append(path)
        return written


_DETAILS_SCHEMA = pa.schema([("trace_id", pa.string()), ("ts", pa.timestamp("us")), ("spans", pa.string()),
                             ("sources", pa.string()), ("quality", pa.string()), ("query_id", pa.string())])


def _span_json(sp: SpanSummary, t0: float) -> dict[str, Any]:
    """A span with times in ms from the query's start (compact, and what the waterfall draws)."""
    out: dict[str, Any] = {"id": _hex(sp.span_id), "parent": _hex(sp.parent_id), "name": sp.name, "role": sp.role,
                           "start_ms": round((sp.start - t0) * 1000, 3),
                           "duration_ms": round(max(0.0, sp.end - sp.start) * 1000, 3), "status": sp.status}
    if sp.model is not None or sp.role in ("llm", "embedding"):
        out.update(model=sp.model, input_tokens=sp.input_tokens, output_tokens=sp.output_tokens,
                   cost_usd=sp.cost_usd, counted=sp.counted)
    return out


def _hex(v: bytes | str | None) -> str | None:
    return v.hex() if isinstance(v, bytes) else v


def _quality_json(q: QualityResult, keep_evidence: bool) -> dict[str, Any]:
    return {"status": q.status, "evaluator": q.evaluator, "overall": q.overall, "grade": q.grade,
            "evidence_kept": keep_evidence,
            "axes": {a: {"score": s.score, "label": s.label, "explanation": s.explanation, "evaluator": s.evaluator,
                         **({"evidence": s.evidence} if keep_evidence and s.evidence else {})}
                     for a, s in q.axes.items()}}


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


def _naive(d: datetime | None) -> datetime | None:
    if d is None or d.tzinfo is None:
        return d
    return d.astimezone(timezone.utc).replace(tzinfo=None)


def _filters(**kw: Any) -> tuple[list[str], list[Any]]:
    where, params = [], []
    for k, v in kw.items():
        if v is not None:
            where.append(f"{k} = ?")
            params.append(v)
    return where, params


def _check_and_migrate(con: duckdb.DuckDBPyConnection, path: str, read_only: bool) -> None:
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    if "rag_otel_meta" not in tables:
        if tables:
            raise StoreError(f"{path} is a DuckDB database of another application (tables: "
                             f"{', '.join(sorted(tables)[:5])}); refusing to touch it: choose another --data-dir")
        if read_only:
            raise StoreError(f"{path} is an empty database, not a rag-otel store")
        con.execute("BEGIN TRANSACTION")
        con.execute("CREATE TABLE rag_otel_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        con.execute("INSERT INTO rag_otel_meta VALUES ('app', ?)", [APP_ID])
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMP)")
        con.execute("INSERT INTO schema_version VALUES (0, now()::TIMESTAMP)")
        con.execute("COMMIT")
    # fetchall, not fetchone: a result left unread keeps its transaction open on this connection, and
    # an open transaction made the CHECKPOINT at close fail whenever the file already held a store
    app = next(iter(con.execute("SELECT value FROM rag_otel_meta WHERE key = 'app'").fetchall()), None)
    if not app or app[0] != APP_ID:
        raise StoreError(f"{path} belongs to another application ({app[0] if app else 'unknown'}); refusing it")
    version = int(con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0])
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has schema version {version}, newer than this rag-otel ({SCHEMA_VERSION}); "
                         "upgrade rag-otel")
    if version < SCHEMA_VERSION and read_only:
        raise StoreError(f"{path} has schema version {version} < {SCHEMA_VERSION}; open it once read-write "
                         "(e.g. `rag-otel serve`) to migrate it")
    migrate(con, version, SCHEMA_VERSION)


def migrate(con: duckdb.DuckDBPyConnection, from_version: int, to_version: int) -> None:
    """Apply migrations ``from_version+1 .. to_version``, each in its own transaction."""
    for v in range(from_version, to_version):
        con.execute("BEGIN TRANSACTION")
        try:
            MIGRATIONS[v](con)
            con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [v + 1])
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT (a lost race in a lake) has rolled back
                con.execute("ROLLBACK")
            raise
        logger.info("rag-otel store: migrated schema to version %d", v + 1)
