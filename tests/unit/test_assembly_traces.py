"""Trace assembly: completion on root + wait, timeout without root, bounded in-flight, drain."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rag_otel.processor.assembly import Origin, TraceAssembler


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


ORIGIN = Origin(Resource(), "", InstrumentationScope(name="t"), "")


def span(trace: int, sid: int, parent: int = 0, name: str = "s") -> Span:
    return Span(
        trace_id=trace.to_bytes(16, "big"), span_id=sid.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"", name=name,
    )


def make(clock: Clock, wait: float = 2.0, timeout: float = 30.0, cap: int = 100) -> TraceAssembler:
    return TraceAssembler(trace_wait=wait, trace_timeout=timeout, max_in_flight=cap, clock=clock)


def test_trace_completes_trace_wait_after_its_root_and_keeps_late_children() -> None:
    clock = Clock()
    asm = make(clock)
    asm.add(ORIGIN, span(1, 2, parent=1))
    asm.add(ORIGIN, span(1, 1))  # root
    clock.now += 1.0
    assert asm.expire() == []
    asm.add(ORIGIN, span(1, 3, parent=1))  # straggler within the wait
    clock.now += 1.0
    [trace] = asm.expire()
    assert trace.complete and trace.reason == "complete"
    assert [s.span_id[-1] for _, s in trace.spans] == [2, 1, 3]
    assert len(asm) == 0 and asm.span_count == 0


def test_rag_query_span_with_a_remote_parent_counts_as_root() -> None:
    clock = Clock()
    asm = make(clock)
    asm.add(ORIGIN, span(1, 5, parent=9, name="rag.query"))
    clock.now += 2.0
    assert [t.reason for t in asm.expire()] == ["complete"]


def test_trace_without_root_times_out_unscored() -> None:
    clock = Clock()
    asm = make(clock, timeout=30.0)
    asm.add(ORIGIN, span(7, 2, parent=1))
    clock.now += 29.9
    assert asm.expire() == []
    assert asm.next_deadline() == 130.0
    clock.now += 0.2
    [trace] = asm.expire()
    assert trace.reason == "timeout" and not trace.root_seen


def test_overflow_flushes_the_oldest_trace_instead_of_dropping_it() -> None:
    clock = Clock()
    asm = make(clock, cap=2)
    assert asm.add(ORIGIN, span(1, 1)) == []
    assert asm.add(ORIGIN, span(2, 1)) == []
    assert asm.add(ORIGIN, span(2, 2, parent=1)) == []  # existing trace: no eviction
    [evicted] = asm.add(ORIGIN, span(3, 1))
    assert evicted.trace_id[-1] == 1 and evicted.reason == "overflow"
    assert len(asm) == 2
    # the evicted trace's heap entry is stale and never released twice
    clock.now += 100
    assert sorted(t.trace_id[-1] for t in asm.expire()) == [2, 3]


def test_drain_releases_everything_unscored_for_shutdown() -> None:
    clock = Clock()
    asm = make(clock)
    asm.add(ORIGIN, span(1, 1))
    asm.add(ORIGIN, span(2, 2, parent=1))
    out = asm.drain()
    assert sorted(t.trace_id[-1] for t in out) == [1, 2]
    assert {t.reason for t in out} == {"shutdown"}
    assert len(asm) == 0 and asm.next_deadline() is None


def test_many_traces_expire_in_deadline_order_without_scanning() -> None:
    clock = Clock()
    asm = make(clock, wait=1.0, cap=10_000)
    for t in range(1, 5001):
        asm.add(ORIGIN, span(t, 1))
        clock.now += 0.001
    clock.now = 100.0 + 1.0 + 2.5  # first 2500 ready
    out = asm.expire()
    assert len(out) in (2500, 2501)
    assert [t.trace_id for t in out] == sorted(t.trace_id for t in out)
