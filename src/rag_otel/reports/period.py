"""Which hours a daily or weekly report covers, in the reporting time zone.

A day is local midnight to local midnight (23 or 25 hours across a DST change), a week is the
seven local days from ``week_start``; both become half-open naive-UTC ranges, as the store keeps time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rag_otel.analytics.period import Period

Kind = Literal["daily", "weekly"]
KINDS: tuple[Kind, ...] = ("daily", "weekly")


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    kind: Kind
    first_day: date  # local date the report starts on
    tz: str
    start: datetime  # naive UTC
    end: datetime  # naive UTC, exclusive

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.first_day.isoformat()}"

    @property
    def days(self) -> int:
        return 1 if self.kind == "daily" else 7

    def as_period(self) -> Period:
        return Period(self.start, self.end, self.label)

    def previous(self) -> ReportPeriod:
        """The period just before, for day-over-day / week-over-week trends."""
        return report_period(self.kind, self.first_day - timedelta(days=self.days), self.tz)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like UTC or Europe/Paris)") from None


def parse_day(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date like 2026-11-19") from None


def _utc(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)


def report_period(kind: str, first_day: str | date, tz: str = "UTC") -> ReportPeriod:
    """``report_period("daily", "2026-11-19", "Europe/Paris")`` is that local day in UTC."""
    if kind not in KINDS:
        raise ValueError(f"report kind {kind!r} must be daily or weekly")
    day = parse_day(first_day)
    z = zone(tz)
    span = 1 if kind == "daily" else 7
    return ReportPeriod(kind, day, tz, _utc(day, z), _utc(day + timedelta(days=span), z))  # type: ignore[arg-type]
