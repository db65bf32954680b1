"""``GET /api/v1/analytics/{name}``: each analysis in :data:`rag_otel.analytics.ANALYTICS` over a period."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from rag_otel.analytics import ANALYTICS, analyse
from rag_otel.analytics.period import Period
from rag_otel.web import deps

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

# An enum makes the OpenAPI description list the valid names (and unknown names a clear 422).
AnalysisName = Enum("AnalysisName", {n: n for n in ANALYTICS}, type=str)  # type: ignore[misc]


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


@router.get("")
def list_analytics() -> dict[str, list[str]]:
    """The analyses this processor answers."""
    return {"analytics": list(ANALYTICS)}


@router.get("/{name}")
def analysis(name: AnalysisName, period: Period = Depends(deps.period),  # type: ignore[valid-type]
             service: str | None = Query(None, max_length=200), model: str | None = Query(None, max_length=200),
             user: str | None = Query(None, max_length=200, description="user_behavior: this one user in detail"),
             store: Any = Depends(deps.store)) -> AnalysisAnswer:
    """One analysis over the period: ``analysis``, ``period``, ``generated_at`` and the analysis' fields."""
    generated = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return AnalysisAnswer(**{**analyse(name.value, store, period, service=service, model=model, user_id=user),
                             "analysis": name.value, "generated_at": generated})
