"""Reports: recorded runs, one run's file in a format, and "run now" (the same path the scheduler takes)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from rag_otel.reports import get_report, list_reports, report_file, run_report
from rag_otel.reports.builder import previous_day
from rag_otel.web import deps
from rag_otel.web.models import ReportRunResult, RunReport

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

MEDIA = {"json": "application/json", "markdown": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}
BY_SUFFIX = {".json": MEDIA["json"], ".md": MEDIA["markdown"], ".html": MEDIA["html"], ".png": "image/png"}


class ReportOutputs(BaseModel):
    """What a run produced (older or failed runs may lack some fields; unknown ones pass through)."""

    model_config = ConfigDict(extra="allow")
    trigger: Literal["manual", "schedule", "api"] | None = None
    name: str | None = Field(None, description="the report's title, e.g. 'daily 2026-11-18'")
    files: list[str] = Field(default_factory=list, description="absolute paths of the written files")
    deliveries: dict[str, str] = Field(default_factory=dict, description="channel -> 'ok' or the error")
    summary: dict[str, Any] | None = Field(None, description="the report's summary section")
    recommendations: int | None = Field(None, description="how many recommendations the report makes")


class ReportRunRow(BaseModel):
    """One recorded run, as stored."""

    id: int
    kind: Literal["daily", "weekly"]
    period_start: str | None = Field(None, description="UTC ISO 8601")
    period_end: str | None = Field(None, description="UTC ISO 8601 (exclusive)")
    ran_at: str = Field(description="UTC ISO 8601")
    status: str = Field(description="ok, partial, failed, or skipped (a scheduled run that had nothing to do)")
    outputs: ReportOutputs | None = None
    error: str | None = Field(None, description="what failed (a failed build or a delivery channel)")


@router.get("", response_model=list[ReportRunRow])
def reports(kind: Literal["daily", "weekly"] | None = None, limit: int = Query(50, ge=1, le=1000),
            store: Any = Depends(deps.store)) -> list[dict[str, Any]]:
    """Recorded report runs, newest first (``outputs`` lists files, deliveries and the summary)."""
    return list_reports(store, limit, kind=kind)


@router.get("/{run_id}", response_class=FileResponse, responses={
    200: {"content": {m.split(";")[0]: {} for m in MEDIA.values()}, "description": "the report file"}})
def report(run_id: int, format: Literal["json", "markdown", "html"] = "html",
           store: Any = Depends(deps.store)) -> FileResponse:
    """One run's report file in ``format`` (404 when the run or that file does not exist)."""
    path = get_report(store, run_id, format)
    if path is None:
        raise HTTPException(404, f"report run {run_id} has no {format} file (unknown run, format not written, "
                                 "or the file was removed)")
    return FileResponse(path, media_type=MEDIA[format], filename=path.name)


@router.get("/{run_id}/files/{name}", response_class=FileResponse, responses={
    200: {"content": {m.split(";")[0]: {} for m in BY_SUFFIX.values()}, "description": "the file"}})
def report_file_by_name(run_id: int, name: str, store: Any = Depends(deps.store)) -> FileResponse:
    """One file a run wrote, by its name as listed in the run's ``files`` (PNG charts too): how
    ``rag-otel report`` copies a report the server built into the user's output directory."""
    path = report_file(store, run_id, name)
    if path is None:
        raise HTTPException(404, f"report run {run_id} wrote no file named {name!r} (or it was removed)")
    return FileResponse(path, media_type=BY_SUFFIX.get(path.suffix, "application/octet-stream"), filename=path.name)


@router.post("/run", status_code=201, response_model=ReportRunResult)
def run_now(body: RunReport, svc: Any = Depends(deps.service), store: Any = Depends(deps.store)) -> dict[str, Any]:
    """Build (and optionally deliver) a report now; the run is recorded like a scheduled one."""
    cfg = svc.config
    first = body.date or previous_day(body.kind, dt.datetime.now(ZoneInfo(cfg.reporting.timezone)).date())
    return run_report(store, body.kind, first, cfg, formats=body.formats, send=body.send, trigger="api",
                      env=svc.env)
