"""``GET /api/v1/analytics/{name}``: each analysis in :data:`rag_otel.analytics.ANALYTICS` over a period."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends, Query

from rag_otel.analytics import ANALYTICS, analyse
from rag_otel.analytics.period import Period
from rag_otel.web import deps
from rag_otel.web.models import AnalysisAnswer

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

# An enum makes the OpenAPI description list the valid names (and unknown names a clear 422).
AnalysisName = Enum("AnalysisName", {n: n for n in ANALYTICS}, type=str)  # type: ignore[misc]


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
