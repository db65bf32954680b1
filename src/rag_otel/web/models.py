"""The API's request and answer models that clients share: the routers and the CLI reading through a
running serve (:mod:`rag_otel.remote`) parse with the same classes; no FastAPI import, so the CLI
does not pay for it."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PeriodOut(BaseModel):
    start: str = Field(description="UTC ISO 8601")
    end: str = Field(description="UTC ISO 8601 (exclusive)")
    label: str = Field(description="what was asked, e.g. '7d' or the from/to range")


class AnalysisAnswer(BaseModel):
    """The typed envelope of every analysis.

    The analysis' own fields stay at the top level beside ``period`` (the shape clients already read,
    e.g. ``.p95_latency_s``); their meaning per analysis is documented in ``rag_otel.analytics``.
    """

    model_config = ConfigDict(extra="allow")
    analysis: str = Field(description="which analysis answered")
    period: PeriodOut
    generated_at: str = Field(description="when this answer was computed, UTC ISO 8601")


class RunReport(BaseModel):
    kind: Literal["daily", "weekly"] = "daily"
    date: dt.date | None = Field(None, description="first day of the report (default: the last complete day/week)")
    formats: list[Literal["json", "markdown", "html", "png"]] | None = Field(
        None, max_length=4, description="default: reporting.formats")
    send: bool = Field(False, description="also deliver by the configured email/webhook/folder channels")


class ReportRunResult(BaseModel):
    """The run just made."""

    id: int | None = Field(description="the run's id (null when the store is read-only and it was not recorded)")
    kind: Literal["daily", "weekly"]
    name: str
    status: Literal["ok", "partial"] = Field(description="partial: files written, a delivery channel failed")
    period_start: str = Field(description="UTC ISO 8601")
    period_end: str = Field(description="UTC ISO 8601 (exclusive)")
    trigger: Literal["manual", "schedule", "api"]
    files: list[str]
    deliveries: dict[str, str] = Field(description="channel -> 'ok' or the error (empty unless send)")
    summary: dict[str, Any] = Field(description="the report's summary section (queries, latency, quality, cost...)")


class StoreStatus(BaseModel):
    path: str = Field(description="the store file this serve holds")


class HealthStore(BaseModel):
    """The part of ``/health`` a CLI checks before reading through a serve: which store it holds."""

    model_config = ConfigDict(extra="allow")
    status: str
    store: StoreStatus | None = None
