"""Query records: the newest, a filtered search, and feedback on one of them.

Each row carries ``trace_url`` (the trace in Jaeger) when ``dashboards.jaeger_ui_url`` is set.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rag_otel.analytics.period import Period, parse_period
from rag_otel.records import Feedback
from rag_otel.store.store import QUERY_COLUMNS
from rag_otel.web import deps

router = APIRouter(prefix="/api/v1", tags=["queries"])

_COLUMNS = ", ".join(c for c in QUERY_COLUMNS if c != "query_norm")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
# a query id: the trace id, or "<trace id>-<span id>" for one question of several in a trace (a /batch call)
_QUERY_ID = re.compile(r"^([0-9a-f]{32})(?:-[0-9a-f]{16})?$")


class QueryRow(BaseModel):
    """One query record as stored (the main fields typed here; every other stored column passes through)."""

    model_config = ConfigDict(extra="allow")
    trace_id: str
    query_id: str | None = Field(None, description="what names this query: the trace id, or \"<trace id>-<span "
                                                   "id>\" when the trace held several questions (a /batch call)")
    ts: str = Field(description="start, UTC ISO 8601")
    duration_s: float
    service: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    category: str | None = None
    topic: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    status: str | None = None
    q_overall: float | None = None
    query_text: str | None = Field(None, description="only when the app captured it")
    trace_url: str | None = Field(None, description="the trace in Jaeger (dashboards.jaeger_ui_url)")


class FeedbackStored(BaseModel):
    stored: bool
    trace_id: str
    query_id: str


class FeedbackIn(BaseModel):
    trace_id: str = Field(description="the query's trace id, 32 hex digits; or its query id (\"<trace id>-<span "
                                      "id>\") when the trace held several questions",
                          examples=["4bf92f3577b34da6a3ce929d0e0e4736"])
    score: float | None = Field(None, ge=0.0, le=1.0, description="satisfaction in [0, 1]")
    thumbs: Literal["up", "down"] | None = None
    comment: str | None = Field(None, max_length=4000)
    user_id: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _something(self) -> FeedbackIn:
        self.trace_id = self.trace_id.strip().lower().removeprefix("0x")
        m = _QUERY_ID.match(self.trace_id)
        if not m or not int(m.group(1), 16):
            raise ValueError("trace_id must be 32 hex digits and not all zero (or a query id: <trace id>-<span id>)")
        if self.score is None and self.thumbs is None:
            raise ValueError("give a score (0..1) or thumbs (up/down)")
        return self


def _rows(svc: Any, store: Any, where: list[str], params: list[Any], limit: int) -> list[dict[str, Any]]:
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = store.dicts(f"SELECT {_COLUMNS} FROM queries {clause} ORDER BY ts DESC LIMIT ?", [*params, limit])
    jaeger = svc.config.dashboards.jaeger_ui_url
    for r in rows:
        r["trace_url"] = deps.trace_url(jaeger, r.get("trace_id"))
    return rows


@router.get("/queries", response_model=list[QueryRow])
def recent(limit: int = Query(50, ge=1, le=1000), service: str | None = Query(None, max_length=200),
           svc: Any = Depends(deps.service), store: Any = Depends(deps.store)) -> list[dict[str, Any]]:
    """The newest query records (query text only when the app captured it)."""
    where, params = ([], []) if service is None else (["service = ?"], [service])
    return _rows(svc, store, where, params, limit)


@router.get("/queries/search", response_model=list[QueryRow])
def search(text: str | None = Query(None, max_length=500,
                                    description="substring of query text, topic or category; or a trace id"),
           user: str | None = Query(None, max_length=200), session: str | None = Query(None, max_length=200),
           model: str | None = Query(None, max_length=200), service: str | None = Query(None, max_length=200),
           status: Literal["ok", "error"] | None = None,
           category: str | None = Query(None, max_length=100),
           min_quality: float | None = Query(None, ge=0, le=1), max_quality: float | None = Query(None, ge=0, le=1),
           period: str | None = Query(None, description="1h, 24h, 7d...; with from/to, or neither for all time"),
           from_: str | None = Query(None, alias="from"), to: str | None = None,
           limit: int = Query(50, ge=1, le=1000),
           svc: Any = Depends(deps.service), store: Any = Depends(deps.store)) -> list[dict[str, Any]]:
    """Query records matching every filter given, newest first."""
    where: list[str] = []
    params: list[Any] = []
    if text:
        where.append("(query_text ILIKE ? OR topic ILIKE ? OR category ILIKE ? OR trace_id = ? OR query_id = ?)")
        params += [f"%{text}%"] * 3 + [text.strip().lower()] * 2
    for col, value in (("user_id", user), ("session_id", session), ("service", service), ("status", status),
                       ("category", category)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    if model is not None:
        where.append("(model = ? OR list_contains(models, ?))")
        params += [model, model]
    if min_quality is not None:
        where.append("q_overall >= ?")
        params.append(min_quality)
    if max_quality is not None:
        where.append("q_overall <= ?")
        params.append(max_quality)
    if period or from_ or to:
        p: Period = parse_period(period, start=from_, end=to)
        where += ["ts >= ?", "ts < ?"]
        params += [p.start, p.end]
    return _rows(svc, store, where, params, limit)


class QueryDetail(QueryRow):
    """One query as the query view shows it: the row plus what ``query_details`` keeps for it."""

    spans: list[dict[str, Any]] = Field(description="id, parent, name, role, start_ms (from the query's start), "
                                                    "duration_ms, status; model calls add model, input_tokens, "
                                                    "output_tokens, cost_usd, counted")
    sources: list[dict[str, Any]] = Field(description="retrieved documents: id and score (never content)")
    quality: dict[str, Any] | None = Field(description="status, evaluator, overall, grade, axes {axis: {score, "
                                                       "label, explanation, evaluator, evidence (when content is "
                                                       "kept)}}")
    details_stored: bool = Field(description="false for queries stored before the store kept details")
    feedback: list[dict[str, Any]]
    alert_events: list[dict[str, Any]] = Field(description="state changes of the alert rules this query tripped")


@router.get("/queries/{query_id}", response_model=QueryDetail, responses={404: {"description": "no such query"}})
def detail(query_id: str, svc: Any = Depends(deps.service), store: Any = Depends(deps.store)) -> dict[str, Any]:
    """One query by its query id (the trace id; "<trace id>-<span id>" for one question of several in a trace):
    span waterfall, model calls, sources, quality explanations, feedback, alerts."""
    qid = query_id.strip().lower().removeprefix("0x")
    m = _QUERY_ID.match(qid)
    if not m:
        raise HTTPException(400, f"query id {query_id[:64]!r} is not a trace id (32 hex digits) or "
                                 "<trace id>-<span id>")
    out = store.query_detail(qid)
    if out is None:
        kind = "trace id" if "-" not in qid else "query id"
        raise HTTPException(404, f"no query with {kind} {qid} in the store (older than the retention, "
                                 "not a RAG query, or not written yet: records appear a few seconds after a query)")
    out["trace_url"] = deps.trace_url(svc.config.dashboards.jaeger_ui_url, m.group(1))
    return out


@router.post("/feedback", status_code=201, response_model=FeedbackStored)
def feedback(body: FeedbackIn, store: Any = Depends(deps.store)) -> dict[str, Any]:
    """Store a user's feedback on a query (joined to it by query id in the analytics)."""
    trace_id = body.trace_id.partition("-")[0]
    item = Feedback(trace_id=trace_id, time=time.time(), score=body.score, thumbs=body.thumbs,
                    comment=body.comment, user_id=body.user_id, query_id=body.trace_id)
    store.write_feedback(item)  # written now, not batched: the caller's 201 means it is on disk
    return {"stored": True, "trace_id": item.trace_id, "query_id": body.trace_id}
