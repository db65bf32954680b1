"""Alerts: what is pending or firing now, what happened, and the two things people do (ack, silence)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from rag_otel.config import parse_duration
from rag_otel.web import deps

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AlertStatusOut(BaseModel):
    rule: str
    fingerprint: str
    severity: str
    labels: dict[str, str]
    state: Literal["inactive", "pending", "firing"]
    value: float | None = None
    threshold: float | None = None
    reason: str = ""
    active_since: float | None = None
    fired_at: float | None = None
    last_notified: float | None = None
    acknowledged: bool = False
    silenced_until: float | None = None
    message: str = ""


class Silence(BaseModel):
    duration: str = Field(description="how long to send nothing: 30m, 2h, 1d; 0 lifts the silence",
                          examples=["1h"], max_length=32)


def engine(svc: Any = Depends(deps.service)) -> Any:
    if getattr(svc, "alerts", None) is None:
        raise HTTPException(503, "alerting is not available in this processor")
    return svc.alerts


def _status(eng: Any, fingerprint: str) -> Any:
    st = next((s for s in eng.statuses() if s.fingerprint == fingerprint), None)
    if st is None:
        raise HTTPException(404, f"no alert with fingerprint {fingerprint!r}")
    return st


@router.get("/active", response_model=list[AlertStatusOut])
def active(eng: Any = Depends(engine)) -> list[dict[str, Any]]:
    """Pending and firing alerts."""
    return [asdict(s) for s in eng.active()]


@router.get("/rules", response_model=list[AlertStatusOut])
def rules(eng: Any = Depends(engine)) -> list[dict[str, Any]]:
    """Every rule's alert, inactive ones included (with the reason when it cannot be judged)."""
    return [asdict(s) for s in eng.statuses()]


@router.get("/history")
def history(limit: int = Query(100, ge=1, le=10_000), rule: str | None = Query(None, max_length=200),
            state: Literal["pending", "firing", "resolved"] | None = None,
            svc: Any = Depends(deps.service)) -> list[dict[str, Any]]:
    """State changes, newest first: from the store (kept across restarts), else the engine's memory."""
    if svc.store is not None:
        return svc.store.alerts_history(limit, rule=rule, state=state)
    if svc.alerts is None:
        return []
    events = [asdict(e) for e in reversed(svc.alerts.history())]
    return [e for e in events if (rule is None or e["rule"] == rule) and (state is None or e["state"] == state)][:limit]


@router.post("/{fingerprint}/acknowledge", response_model=AlertStatusOut)
def acknowledge(fingerprint: str = Path(max_length=200), eng: Any = Depends(engine)) -> dict[str, Any]:
    """Stop repeat notifications of a firing alert until it resolves (409 when it is not firing)."""
    st = _status(eng, fingerprint)
    if not eng.acknowledge(fingerprint):
        raise HTTPException(409, f"alert {st.rule} is {st.state}, not firing: nothing to acknowledge")
    return asdict(_status(eng, fingerprint))


@router.post("/{fingerprint}/silence", response_model=AlertStatusOut)
def silence(body: Silence, fingerprint: str = Path(max_length=200), eng: Any = Depends(engine)) -> dict[str, Any]:
    """Send no notifications for this alert for ``duration`` (its state still changes and is recorded)."""
    _status(eng, fingerprint)
    text = body.duration.strip()
    seconds = 0.0 if text == "0" else parse_duration(text)
    eng.silence(fingerprint, time.time() + seconds if seconds else None)
    return asdict(_status(eng, fingerprint))
