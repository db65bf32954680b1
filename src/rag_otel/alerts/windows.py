"""Bounded, incremental windows: what lets 20 rules over 100k records evaluate in microseconds.

Two tiers per selected series (a rule's filters):

* windows up to ``RAW_LIMIT`` keep the compact points of their records in time order plus a
  running :class:`Summary` (add on arrival, subtract on expiry), so a value is O(1) to read and
  exact, percentiles included;
* longer windows and baselines (7d at 100 qps is 60M records) read per-minute bucket summaries,
  whose memory depends on the time span only, never on traffic.  Their edges are minute-aligned
  and their percentiles come from the latency histogram, as in Prometheus.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

from rag_otel.alerts.metrics import Point, QueryPoint, Summary

RAW_LIMIT = 15 * 60.0  # seconds: longer windows are answered from minute buckets
BUCKET = 60.0
MAX_POINTS = 2_000_000  # hard cap per exact window, should evaluate() stop being called


class SlidingWindow:
    """The last ``length`` seconds of points, with their summary and distinct users kept current."""

    def __init__(self, length: float, *, exact: bool, users: bool) -> None:
        self.length = length
        self.points: deque[Point] = deque()
        self.summary = Summary(exact=exact)
        self.users: OrderedDict[str, float] | None = OrderedDict() if users else None
        self.start = -math.inf

    def add(self, p: Point) -> None:
        if p.t <= self.start:
            return  # arrived after its window passed
        pts = self.points
        if not pts or p.t >= pts[-1].t:
            pts.append(p)
        else:  # a late record: insert in order (it is late by seconds, so this walks a few steps)
            i = len(pts) - 1
            while i > 0 and pts[i - 1].t > p.t:
                i -= 1
            pts.insert(i, p)
        self.summary.add(p)
        if self.users is not None and isinstance(p, QueryPoint) and p.user is not None:
            last = self.users.get(p.user)
            if last is None or p.t >= last:
                self.users[p.user] = p.t
                self.users.move_to_end(p.user)
        if len(pts) > MAX_POINTS:
            self.summary.add(pts.popleft(), -1)

    def advance(self, now: float) -> Summary:
        self.start = max(self.start, now - self.length)
        pts = self.points
        while pts and pts[0].t <= self.start:
            self.summary.add(pts.popleft(), -1)
        if self.users is not None:
            while self.users and next(iter(self.users.values())) <= self.start:
                self.users.popitem(last=False)
            self.summary.users = len(self.users)
        return self.summary


class MinuteBuckets:
    """Per-minute summaries over ``span`` seconds: bounded by time, not by traffic.

    Hourly roll-ups are kept beside them, so a 7-day range merges ~170 summaries, not 10,080.
    """

    def __init__(self, span: float) -> None:
        self.span = span
        self.buckets: dict[int, Summary] = {}
        self.hours: dict[int, Summary] = {}

    def add(self, p: Point) -> None:
        key = int(p.t // BUCKET)
        for table, k in ((self.buckets, key), (self.hours, key // 60)):
            b = table.get(k)
            if b is None:
                b = table[k] = Summary()
            b.add(p)

    def prune(self, now: float) -> None:
        oldest = int((now - self.span) // BUCKET) - 1
        for table, limit in ((self.buckets, oldest), (self.hours, oldest // 60 - 1)):
            for key in list(table):  # insertion order is time order but for rare late minutes
                if key >= limit:
                    break
                del table[key]

    def range(self, start: float, end: float) -> Summary:
        """The merged summary of the whole minutes in ``[start, end)``."""
        out = Summary()
        m, stop = math.ceil(start / BUCKET), int(end // BUCKET)
        while m < stop:
            if m % 60 == 0 and m + 60 <= stop:
                b = self.hours.get(m // 60)
                m += 60
            else:
                b = self.buckets.get(m)
                m += 1
            if b is not None:
                out.merge(b)
        return out


class UserChunks:
    """Distinct users per aligned chunk of a rule's window length, kept as counts for baselines."""

    def __init__(self, width: float, span: float) -> None:
        self.width = width
        self.span = span
        self.open: dict[int, set[str]] = {}
        self.closed: dict[int, int] = {}

    def add(self, p: Point) -> None:
        if isinstance(p, QueryPoint) and p.user is not None:
            self.open.setdefault(int(p.t // self.width), set()).add(p.user)

    def advance(self, now: float) -> None:
        current = int(now // self.width)
        for key in [k for k in self.open if k < current]:
            self.closed[key] = len(self.open.pop(key))
        oldest = int((now - self.span) // self.width) - 1
        for key in [k for k in self.closed if k < oldest]:
            del self.closed[key]

    def mean(self, start: float, end: float) -> tuple[float | None, int]:
        """Mean distinct users of the chunks (with traffic) wholly inside ``[start, end)``, and their number."""
        counts = [c for k, c in self.closed.items() if k * self.width >= start and (k + 1) * self.width <= end]
        return (sum(counts) / len(counts) if counts else None), len(counts)


class Series:
    """Everything kept for one selection of records (one set of rule filters)."""

    def __init__(self) -> None:
        self.windows: dict[float, SlidingWindow] = {}
        self.buckets: MinuteBuckets | None = None
        self.chunks: dict[float, UserChunks] = {}

    def need_window(self, length: float, *, exact: bool, users: bool) -> None:
        """Declare a window some rule reads (before any point is added); needs of one length add up."""
        if length > RAW_LIMIT:
            self.need_history(length)
            return
        old = self.windows.get(length)
        if old is not None:
            exact = exact or old.summary.durations is not None
            users = users or old.users is not None
        self.windows[length] = SlidingWindow(length, exact=exact, users=users)

    def need_history(self, span: float) -> None:
        if self.buckets is None:
            self.buckets = MinuteBuckets(span)
        self.buckets.span = max(self.buckets.span, span)

    def need_user_chunks(self, width: float, span: float) -> None:
        c = self.chunks.setdefault(width, UserChunks(width, span))
        c.span = max(c.span, span)

    def add(self, p: Point) -> None:
        for w in self.windows.values():
            w.add(p)
        if self.buckets is not None:
            self.buckets.add(p)
        for c in self.chunks.values():
            c.add(p)

    def advance(self, now: float) -> None:
        for w in self.windows.values():
            w.advance(now)
        if self.buckets is not None:
            self.buckets.prune(now)
        for c in self.chunks.values():
            c.advance(now)

    def current(self, length: float, now: float) -> Summary:
        """The window ending now (exact when short, minute buckets when long; active users only when short)."""
        w = self.windows.get(length)
        if w is not None:
            return w.advance(now)
        assert self.buckets is not None, "need_window() was not called for this length"
        return self.buckets.range(now - length, now + BUCKET)  # includes the running minute

    def past(self, start: float, end: float) -> Summary:
        assert self.buckets is not None, "need_history() was not called"
        return self.buckets.range(start, end)
