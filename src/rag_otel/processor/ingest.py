"""What both OTLP fronts (gRPC, HTTP) share: decode, validate, offer to the sink, count, log.

The fronts only translate transport details (headers, compression, status codes).  Every
refusal goes through :meth:`Ingest.refuse`, so each one is counted by reason and logged with
a rate limit: a misbehaving sender cannot flood our log.
"""

from __future__ import annotations

import enum
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError, Message
from opentelemetry.metrics import Meter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from rag_otel import semconv
from rag_otel.processor import otlp_json
from rag_otel.processor.memory_limit import MemoryLimiter
from rag_otel.processor.sink import Admission, Sink

logger = logging.getLogger("rag_otel.processor.receiver")

_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)


class Signal(enum.Enum):
    """One OTLP signal: its request/response types, HTTP path, gRPC service and item name."""

    TRACES = ("traces", trace_pb.ExportTraceServiceRequest, trace_pb.ExportTraceServiceResponse,
              trace_pb.DESCRIPTOR.services_by_name["TraceService"].full_name, "spans")
    METRICS = ("metrics", metrics_pb.ExportMetricsServiceRequest, metrics_pb.ExportMetricsServiceResponse,
               metrics_pb.DESCRIPTOR.services_by_name["MetricsService"].full_name, "metric_points")
    LOGS = ("logs", logs_pb.ExportLogsServiceRequest, logs_pb.ExportLogsServiceResponse,
            logs_pb.DESCRIPTOR.services_by_name["LogsService"].full_name, "log_records")

    def __init__(self, path: str, request: type[Message], response: type[Message], service: str, items: str) -> None:
        self.http_path = f"/v1/{path}"
        self.request_type = request
        self.response_type = response
        self.grpc_service = service
        self.items = items  # the value of the ``signal`` attribute on our counters

    def response(self, rejected: int = 0, message: str = "") -> Message:
        """The Export*ServiceResponse, with ``partial_success`` only when something was refused."""
        resp = self.response_type()
        if rejected or message:
            ps = resp.partial_success
            field = {"spans": "rejected_spans", "metric_points": "rejected_data_points",
                     "log_records": "rejected_log_records"}[self.items]
            setattr(ps, field, rejected)
            ps.error_message = message
        return resp


class Refusal(enum.Enum):
    """Why a whole request was refused: the ``reason`` attribute of ``rag.processor.refused``."""

    MALFORMED = "malformed"  # not decodable: HTTP 400 / INVALID_ARGUMENT
    UNSUPPORTED_MEDIA = "unsupported_media_type"  # HTTP 415
    TOO_LARGE = "too_large"  # HTTP 413 / RESOURCE_EXHAUSTED
    UNAUTHENTICATED = "unauthenticated"  # HTTP 401 / UNAUTHENTICATED
    NOT_FOUND = "not_found"  # HTTP 404 / 405
    BACK_PRESSURE = "back_pressure"  # sink full: HTTP 503 / UNAVAILABLE, retry later
    BUSY = "busy"  # too many requests being decoded at once: HTTP 503 / UNAVAILABLE
    MEMORY_LIMIT = "memory_limit"  # too many bytes in flight (memory_limit_mib): HTTP 503 / UNAVAILABLE
    TIMEOUT = "timeout"  # the client took longer than read_timeout to send its body: HTTP 408
    INTERNAL = "internal"  # the sink raised: HTTP 503 / UNAVAILABLE (retryable, data kept by sender)


class BadRequest(ValueError):
    """The request cannot be decoded; the message says why (sent back to the client)."""


@dataclass(frozen=True, slots=True)
class Accepted:
    rejected: int
    message: str


@dataclass(frozen=True, slots=True)
class BackOff:
    refusal: Refusal
    retry_after: float
    message: str


class RateLimitedLog:
    """At most one warning per key per ``interval`` seconds, then a count of what was suppressed."""

    def __init__(self, log: logging.Logger, interval: float = 10.0) -> None:
        self._log = log
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, msg: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self._interval) < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += f" ({suppressed} similar suppressed)"
        self._log.warning(msg, *args, exc_info=exc_info)


def check_bearer(expected: str | None, authorization: str | None) -> bool:
    """True when no token is configured or ``authorization`` is ``Bearer <token>`` (constant time).

    The scheme name is case-insensitive (RFC 7235 section 2.1): ``bearer`` and ``BEARER`` are accepted too."""
    if not expected:
        return True
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def _span_ok(span: Message) -> bool:
    # each field read once: this runs for every span received
    return (
        len(tid := span.trace_id) == 16 and tid != _ZERO_TRACE
        and len(sid := span.span_id) == 8 and sid != _ZERO_SPAN
        and len(span.parent_span_id) in (0, 8)
    )


def _log_ok(record: Message) -> bool:
    return len(record.trace_id) in (0, 16) and len(record.span_id) in (0, 8)


def _points(metric: Message) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def _keep(container: Message, field: str, ok: Callable[[Message], bool]) -> int:
    """Drop the items of ``container.field`` that fail ``ok``; return how many were dropped."""
    items = getattr(container, field)
    if all(map(ok, items)):  # the usual case: nothing to copy
        return 0
    kept = [m for m in items if ok(m)]
    dropped = len(items) - len(kept)
    del items[:]
    items.extend(kept)
    return dropped


def validate(signal: Signal, req: Message) -> tuple[int, int, str]:
    """Remove invalid items in place; return (kept, rejected, reason) item counts."""
    kept = rejected = 0
    if signal is Signal.TRACES:
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                rejected += _keep(ss, "spans", _span_ok)
                kept += len(ss.spans)
        return kept, rejected, "spans need a 16-byte trace_id and an 8-byte span_id, not all zero"
    if signal is Signal.LOGS:
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                rejected += _keep(sl, "log_records", _log_ok)
                kept += len(sl.log_records)
        return kept, rejected, "log records need an empty or 16-byte trace_id and an empty or 8-byte span_id"
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            rejected += sum(_points(m) for m in sm.metrics if not m.name)
            _keep(sm, "metrics", lambda m: bool(m.name))
            kept += sum(_points(m) for m in sm.metrics)
    return kept, rejected, "metrics need a name"


class Ingest:
    """Decode, validate and hand requests to the sink; count and log every outcome.

    ``max_concurrent`` bounds the requests being decoded at once (with ``max_request_bytes``
    this bounds the receiver's memory): a request beyond it is answered "retry later".
    """

    def __init__(self, sink: Sink, meter: Meter, *, max_request_bytes: int, max_concurrent: int = 8,
                 bearer_token: str | None = None, retry_after: float = 1.0,
                 limiter: MemoryLimiter | None = None) -> None:
        self.sink = sink
        self.limiter = limiter
        self.max_request_bytes = max_request_bytes
        self.bearer_token = bearer_token
        self.retry_after = retry_after
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._log = RateLimitedLog(logger)
        self._received = meter.create_counter(
            semconv.METRIC_P_RECEIVED, unit="{item}", description="Spans, metric points and log records accepted.")
        self._refused = meter.create_counter(
            semconv.METRIC_P_REFUSED, unit="{request}", description="Whole requests refused, by reason.")
        self._rejected = meter.create_counter(
            semconv.METRIC_P_REJECTED, unit="{item}",
            description="Invalid items refused inside otherwise accepted requests (partial success).")
        self._offer = {Signal.TRACES: sink.offer_traces, Signal.METRICS: sink.offer_metrics,
                       Signal.LOGS: sink.offer_logs}

    def try_slot(self) -> bool:
        """Take a decode slot without waiting; the caller must :meth:`release_slot` when done."""
        return self._slots.acquire(blocking=False)

    def wait_slot(self, timeout: float) -> bool:
        """Take a decode slot, waiting up to ``timeout`` seconds (a request already read in full)."""
        return self._slots.acquire(timeout=max(timeout, 0.0))

    def release_slot(self) -> None:
        self._slots.release()

    def refuse(self, refusal: Refusal, signal: Signal | None, message: str, peer: str = "") -> None:
        """Count and (rate-limited) log one refused request."""
        self._refused.add(1, {"reason": refusal.value, "signal": signal.items if signal else "unknown"})
        self._log.warning(refusal.value, "rag-otel receiver refused a %s request from %s: %s (%s)",
                          signal.items if signal else "?", peer or "?", message, refusal.value)

    def decode(self, signal: Signal, body: bytes, *, json: bool = False) -> Message:
        """Parse a request body; raise :class:`BadRequest` naming the problem."""
        try:
            if json:
                return otlp_json.parse(body, signal.request_type())
            req = signal.request_type()
            req.ParseFromString(body)
            return req
        except (DecodeError, otlp_json.JsonDecodeError, RecursionError) as e:
            raise BadRequest(f"cannot decode {signal.request_type.__name__}: {e}") from None
        except Exception as e:  # whatever else the parser raises, it is about these bytes
            raise BadRequest(f"cannot decode {signal.request_type.__name__}: {type(e).__name__}: {e}") from None

    def has_room(self, nbytes: int) -> bool:
        """Whether a request of ``nbytes`` fits under the memory limit (always, without a limiter)."""
        return self.limiter is None or self.limiter.admit(nbytes)

    def admit(self, signal: Signal, req: Message, peer: str = "", nbytes: int = 0,
              counted: int = 0) -> Accepted | BackOff:
        """Validate and offer to the sink: what the transport should answer.  ``nbytes``: the encoded
        size (for the memory limit), of which ``counted`` is already held as a body being read."""
        kept, invalid, why = validate(signal, req)
        if self.limiter is not None:
            self.limiter.learn(nbytes, kept)
            if not self.limiter.admit(nbytes, counted):
                message = "memory limit reached, retry later"
                self.refuse(Refusal.MEMORY_LIMIT, signal, message, peer)
                return BackOff(Refusal.MEMORY_LIMIT, self.retry_after, message)
        try:
            admission: Admission = self._offer[signal](req)
        except Exception as e:
            logger.exception("rag-otel receiver: the sink raised on a %s request (answered retry-later)", signal.items)
            self.refuse(Refusal.INTERNAL, signal, f"internal error: {type(e).__name__}", peer)
            return BackOff(Refusal.INTERNAL, self.retry_after, "internal error, retry later")
        if admission.full:
            self.refuse(Refusal.BACK_PRESSURE, signal, admission.message or "sink full", peer)
            return BackOff(Refusal.BACK_PRESSURE, admission.retry_after, admission.message or "queue full, retry later")
        rejected = invalid + admission.rejected
        accepted = max(kept - admission.rejected, 0)
        if accepted:
            self._received.add(accepted, {"signal": signal.items})
        if not rejected:
            return Accepted(0, "")
        self._rejected.add(rejected, {"signal": signal.items})
        message = "; ".join(m for m in (why if invalid else "", admission.message) if m)
        self._log.warning(f"partial:{signal.items}", "rag-otel receiver refused %d of %d %s from %s: %s",
                          rejected, kept + invalid, signal.items, peer or "?", message)
        return Accepted(rejected, message)
