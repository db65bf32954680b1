"""The contract between the OTLP receiver and whatever consumes what it receives.

The receiver decodes and validates a request, then *offers* it to a :class:`Sink`.  The sink
answers at once with an :class:`Admission`: taken (perhaps with some items refused as invalid,
which becomes OTLP ``partial_success``), or ``full`` (nothing taken: the receiver answers
HTTP 503 / gRPC UNAVAILABLE with a retry delay, so the sender's retry queue keeps the data
instead of our memory).

Rules for implementations:

- ``offer_*`` is called concurrently from gRPC worker threads and the HTTP server's threads:
  be thread-safe.
- Never block on downstream work: answer ``full`` rather than wait.  The receiver's latency is
  the sender's latency.
- Take ownership of the request: the receiver does not touch it after a non-full answer.
- Do not raise for bad data: refuse the bad items and count them in ``rejected``.  (An
  exception is answered as a retryable server error and logged, never crashes the receiver.)
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = [
    "ACCEPTED",
    "Admission",
    "ExportLogsServiceRequest",
    "ExportMetricsServiceRequest",
    "ExportTraceServiceRequest",
    "MemorySink",
    "Sink",
]


@dataclass(frozen=True, slots=True)
class Admission:
    """A sink's answer to one offered request.

    ``full``: nothing was taken; retry after ``retry_after`` seconds.
    Otherwise the request was taken except ``rejected`` items (spans, data points or log
    records), which ``message`` explains (sent back to the client as ``partial_success``).
    """

    rejected: int = 0
    message: str = ""
    full: bool = False
    retry_after: float = 1.0

    @classmethod
    def partial(cls, rejected: int, message: str) -> Admission:
        return cls(rejected=rejected, message=message)

    @classmethod
    def back_off(cls, retry_after: float = 1.0, message: str = "queue full") -> Admission:
        return cls(full=True, retry_after=retry_after, message=message)


ACCEPTED = Admission()


class Sink(Protocol):
    """Where the receiver hands decoded OTLP requests (see the module docstring for the rules)."""

    def offer_traces(self, request: ExportTraceServiceRequest) -> Admission: ...

    def offer_metrics(self, request: ExportMetricsServiceRequest) -> Admission: ...

    def offer_logs(self, request: ExportLogsServiceRequest) -> Admission: ...


Request = ExportTraceServiceRequest | ExportMetricsServiceRequest | ExportLogsServiceRequest


class MemorySink:
    """Keeps every offered request in memory, up to ``capacity`` requests, then answers ``full``.

    A real (if trivial) sink: a downstream stand-in for tests and benchmarks, and the simplest
    example of the contract.  ``capacity=None`` is unbounded.
    """

    def __init__(self, capacity: int | None = None, retry_after: float = 1.0) -> None:
        self.capacity = capacity
        self.retry_after = retry_after
        self.traces: deque[ExportTraceServiceRequest] = deque()
        self.metrics: deque[ExportMetricsServiceRequest] = deque()
        self.logs: deque[ExportLogsServiceRequest] = deque()
        self._lock = threading.RLock()  # re-entrant: wait_for's predicate may call spans()
        self._arrived = threading.Condition(self._lock)

    def _offer(self, box: deque, request: Request) -> Admission:
        with self._lock:
            if self.capacity is not None and self._count() >= self.capacity:
                return Admission.back_off(self.retry_after)
            box.append(request)
            self._arrived.notify_all()
        return ACCEPTED

    def _count(self) -> int:
        return len(self.traces) + len(self.metrics) + len(self.logs)

    def offer_traces(self, request: ExportTraceServiceRequest) -> Admission:
        return self._offer(self.traces, request)

    def offer_metrics(self, request: ExportMetricsServiceRequest) -> Admission:
        return self._offer(self.metrics, request)

    def offer_logs(self, request: ExportLogsServiceRequest) -> Admission:
        return self._offer(self.logs, request)

    def clear(self) -> None:
        """Free space (all of it): a full sink accepts again."""
        with self._lock:
            self.traces.clear()
            self.metrics.clear()
            self.logs.clear()

    def spans(self) -> list[Span]:
        """Every received span, flattened (a snapshot)."""
        with self._lock:
            return [s for r in self.traces for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def wait_for(self, predicate: Callable[[MemorySink], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on each arrival) or ``timeout`` passes."""
        with self._arrived:
            return self._arrived.wait_for(lambda: predicate(self), timeout)
