"""Assemble spans into whole traces before anything reads them.

A RAG query is only understood as a whole (question on the root, documents on the retrieval
span, tokens on the chat span), so spans wait here until their trace is complete: the root
(a span without a parent, or our ``rag.query`` span) arrived plus ``trace_wait`` for stragglers,
or ``trace_timeout`` after the first span when no root ever comes.  The Collector's
``load_balancing`` exporter routes by trace id, so every span of a trace reaches this replica.

Cheap by design: spans stay the protobuf messages they were decoded as (no dict conversion),
deadlines live in a heap with lazy deletion (no scan of all traces per tick), and the number of
traces in flight is bounded: the oldest is flushed early (``reason="overflow"``), never dropped.

A span that arrives after its trace was released must not start a second record for the same
query: the ids of recently released traces are remembered (bounded in number and in time), and
such a span is released at once on its own with ``reason="late"``, to be exported as received.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from rag_otel import semconv

FlushReason = Literal["complete", "timeout", "overflow", "shutdown", "late"]


@dataclass(slots=True, eq=False)
class Origin:
    """Where a span came from (its resource and scope), shared by all spans of one ScopeSpans."""

    resource: Resource
    resource_schema_url: str
    scope: InstrumentationScope
    scope_schema_url: str
    service: str | None = None  # resource service.name, filled in on first use
    # the received ResourceSpans and how many spans / non-empty scopes it held: when one export
    # holds all of them, the message itself is exported (no copy; upb also encodes it faster)
    source: ResourceSpans | None = None
    scope_span_count: int = 0
    source_scope_count: int = 0
    plumbing: int | None = None  # which spans of the scope carry no GenAI data (passthrough.scope_rule), on first use


@dataclass(slots=True, eq=False)
class Trace:
    """The spans of one trace seen so far, each with its origin."""

    trace_id: bytes
    spans: list[tuple[Origin, Span]] = field(default_factory=list)
    root_seen: bool = False
    deadline: float = 0.0
    first_seen: float = 0.0
    ready_at: float = 0.0  # when the completion rule was met (root + wait, or timeout)
    reason: FlushReason = "complete"

    @property
    def complete(self) -> bool:
        return self.reason == "complete"


def is_root(span: Span) -> bool:
    """A span that completes its trace: parentless, or our ``rag.query`` span."""
    return not span.parent_span_id or span.name == semconv.SPAN_RAG_QUERY


class TraceAssembler:
    """Groups spans by trace id and releases whole traces; single-threaded (the pipeline worker owns it)."""

    def __init__(
        self,
        trace_wait: float,
        trace_timeout: float,
        max_in_flight: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        remember: int | None = None,
        remember_seconds: float | None = None,
    ) -> None:
        self.trace_wait = trace_wait
        self.trace_timeout = trace_timeout
        self.max_in_flight = max_in_flight
        self.clock = clock
        self._traces: dict[bytes, Trace] = {}  # insertion order = age, for overflow eviction
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()
        self.span_count = 0  # spans currently held
        # recently released trace ids -> when: a straggler of one of them is "late", not a new trace
        self._released: OrderedDict[bytes, float] = OrderedDict()
        self.remember = remember if remember is not None else max(10_000, 2 * max_in_flight)
        self.remember_seconds = remember_seconds if remember_seconds is not None else max(60.0, 2 * trace_timeout)
        self.late_spans = 0

    def __len__(self) -> int:
        return len(self._traces)

    def add_request(self, resource_spans: object) -> list[Trace]:
        """Take every span of a request's ``resource_spans``; return traces evicted by overflow.

        The common case (span of a trace already in flight, or of a new one with room) is inlined:
        this loop runs once per span and a call per span costs more than its work."""
        evicted: list[Trace] = []
        now = self.clock()
        traces = self._traces
        rag_query = semconv.SPAN_RAG_QUERY
        wait_deadline = now + self.trace_wait
        added = 0
        for rs in resource_spans:  # type: ignore[attr-defined]
            resource, rs_url = rs.resource, rs.schema_url
            scopes = [ss for ss in rs.scope_spans if ss.spans]
            for ss in scopes:
                spans = ss.spans
                origin = Origin(resource, rs_url, ss.scope, ss.schema_url, None, rs, len(spans), len(scopes))
                for span in spans:
                    trace = traces.get(span.trace_id)
                    if trace is None:
                        self.span_count += added
                        added = 0
                        evicted.extend(self._add(origin, span, now))
                        continue
                    trace.spans.append((origin, span))
                    added += 1
                    if not trace.root_seen and (not span.parent_span_id or span.name == rag_query):
                        trace.root_seen = True
                        if wait_deadline < trace.deadline:
                            trace.deadline = wait_deadline
                            heapq.heappush(self._heap, (wait_deadline, next(self._seq), trace.trace_id))
        self.span_count += added
        return evicted

    def add(self, origin: Origin, span: Span) -> list[Trace]:
        """Take one span; return traces flushed early because too many are in flight."""
        return self._add(origin, span, self.clock())

    def _add(self, origin: Origin, span: Span, now: float) -> list[Trace]:
        tid = span.trace_id
        trace = self._traces.get(tid)
        evicted: list[Trace] = []
        if trace is None:
            if tid in self._released:
                if now - self._released[tid] <= self.remember_seconds:
                    self.late_spans += 1
                    return [Trace(tid, [(origin, span)], first_seen=now, ready_at=now, reason="late")]
                del self._released[tid]
            if len(self._traces) >= self.max_in_flight:
                evicted.append(self._evict_oldest(now))
            trace = Trace(tid, first_seen=now, deadline=now + self.trace_timeout)
            self._traces[tid] = trace
            heapq.heappush(self._heap, (trace.deadline, next(self._seq), tid))
        trace.spans.append((origin, span))
        self.span_count += 1
        if not trace.root_seen and is_root(span):
            trace.root_seen = True
            deadline = now + self.trace_wait
            if deadline < trace.deadline:
                trace.deadline = deadline
                heapq.heappush(self._heap, (deadline, next(self._seq), tid))
        return evicted

    def _evict_oldest(self, now: float) -> Trace:
        tid = next(iter(self._traces))
        return self._release(tid, "overflow", now)

    def _release(self, tid: bytes, reason: FlushReason, now: float) -> Trace:
        trace = self._traces.pop(tid)
        trace.reason = reason
        trace.ready_at = now if reason != "complete" else trace.deadline
        self.span_count -= len(trace.spans)
        released = self._released
        released[tid] = now
        released.move_to_end(tid)
        while released and (len(released) > self.remember
                            or now - next(iter(released.values())) > self.remember_seconds):
            released.popitem(last=False)
        return trace

    def next_deadline(self) -> float | None:
        """When the earliest trace may become ready (for the worker's wait), or None."""
        while self._heap:
            deadline, _, tid = self._heap[0]
            trace = self._traces.get(tid)
            if trace is not None and trace.deadline == deadline:
                return deadline
            heapq.heappop(self._heap)  # stale: trace released or deadline moved earlier
        return None

    def expire(self, now: float | None = None) -> list[Trace]:
        """Release every trace whose deadline passed: complete if its root came, else timed out."""
        now = self.clock() if now is None else now
        out: list[Trace] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, tid = heapq.heappop(heap)
            trace = self._traces.get(tid)
            if trace is None or trace.deadline != deadline:
                continue
            out.append(self._release(tid, "complete" if trace.root_seen else "timeout", now))
            out[-1].ready_at = deadline
        return out

    def drain(self) -> list[Trace]:
        """Release everything now (shutdown), unscored: the caller has no time left to score."""
        now = self.clock()
        out = [self._release(tid, "shutdown", now) for tid in list(self._traces)]
        self._heap.clear()
        return out
