"""Time ranges for analytics: a relative window ("1h", "24h", "7d", "30d") or explicit from/to."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from rag_otel.config import parse_duration


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open range [start, end) in naive UTC, as the store keeps timestamps."""

    start: datetime
    end: datetime
    label: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def days(self) -> float:
        return self.seconds / 86400

    def to_dict(self) -> dict[str, str]:
        return {"start": _iso(self.start), "end": _iso(self.end), "label": self.label}


def _iso(d: datetime) -> str:
    return d.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def to_utc(value: datetime | date | str | float) -> datetime:
    """Naive UTC from an aware/naive (taken as UTC) datetime, a date, an ISO string or unix seconds."""
    if isinstance(value, (int, float)):
        return datetime(1970, 1, 1) + timedelta(seconds=float(value))
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not a date or time like 2026-11-20 or 2026-11-20T09:00:00Z") from None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise TypeError(f"cannot read a time from {value!r}")


def parse_period(text: str | None = None, start: datetime | date | str | float | None = None,
                 end: datetime | date | str | float | None = None, now: datetime | float | None = None) -> Period:
    """``text`` is a duration ending at ``end`` (default now); or give ``start`` (and ``end``).

    ``parse_period("7d")`` is the last seven days; ``parse_period(start="2026-11-01", end="2026-11-08")``
    is that week; ``parse_period("1d", end="2026-11-20")`` the day before the 20th.  Without text or
    start the period is the last 24 hours.
    """
    now_dt = to_utc(now if now is not None else time.time())
    end_dt = to_utc(end) if end is not None else now_dt
    if start is not None:
        start_dt = to_utc(start)
        label = text or f"{_iso(start_dt)}/{_iso(end_dt)}"
    else:
        text = text or "24h"
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise ValueError(f"period {text!r} is not a duration like 1h, 24h, 7d, 30d") from None
        if seconds <= 0:
            raise ValueError(f"period {text!r} must be longer than zero")
        start_dt = end_dt - timedelta(seconds=seconds)
        label = text
    if end_dt <= start_dt:
        raise ValueError(f"period end {_iso(end_dt)} is not after its start {_iso(start_dt)}")
    return Period(start_dt, end_dt, label)
