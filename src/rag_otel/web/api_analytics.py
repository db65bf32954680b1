"""``GET /api/v1/analytics/{name}``: each analysis in :data:`rag_otel.analytics.ANALYTICS` over a period."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends, Query

from rag_otel.analytics import ANALYTICS, run
from rag_otel.analytics.period import Period
from rag_otel.web import deps

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
             store: Any = Depends(deps.store)) -> dict[str, Any]:
    """One analysis over the period; the shape is the analysis function's (see rag_otel.analytics)."""
    return run(name.value, store, period, service=service, model=model)
