"""Downstream OTLP fan-out: one bounded queue and one worker thread per endpoint.

The pipeline calls ``export_*`` with protobuf ``Resource{Spans,Metrics,Logs}``; that never
blocks and never raises.  Each resource is serialized once and the same bytes are queued for
every endpoint, so N endpoints cost N queues, not N encodings.  A worker batches up to
``batch_size`` items (spans, data points, log records) or ``max_delay`` seconds, sends,
and retries retryable failures with exponential backoff and jitter, honouring the delay the
server asked for (Retry-After / RetryInfo).

Each signal has its own bound per endpoint (``queue_size`` items, and ``max_queue_bytes`` of
encoded data across them), so a burst of metrics never pushes spans out, nor the reverse.  When a
queue is full, ``put`` first waits up to ``block_timeout`` seconds for room: in the processor that
stalls the pipeline, which fills its own queue and turns into HTTP 503 / gRPC UNAVAILABLE for the
senders, so a slow downstream costs retries upstream rather than data.  Only a queue still full
after that (a downstream down for longer than the senders can be held back) drops its *oldest*
items (decision: fresher telemetry matters more to alerts and dashboards, and the bound holds
either way), counted in ``rag.processor.export.dropped{reason=queue_full}`` and logged.  A dead
endpoint thus slows the others for at most ``block_timeout`` per batch.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from rag_otel import semconv
from rag_otel.config import Endpoint, ProcessorSettings
from rag_otel.processor.export_transport import Transport, transport_for
from rag_otel.processor.ingest import RateLimitedLog, Signal

logger = logging.getLogger("rag_otel.processor.exporter")
_CONFIG_NAME = {Signal.TRACES: "traces", Signal.METRICS: "metrics", Signal.LOGS: "logs"}  # Endpoint.signals


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def frame(resource: Message) -> bytes:
    """``resource`` as field 1 of an Export*ServiceRequest (the wire form of one list element).

    All three Export*ServiceRequests are ``repeated Resource* = 1``, and protobuf messages
    concatenate, so a request is just the concatenation of its framed resources: we encode each
    resource once, whatever the number of endpoints and however it is batched.
    """
    body = resource.SerializeToString()
    return b"\x0a" + _varint(len(body)) + body


def count_items(signal: Signal, resource: Message) -> int:
    """Spans, metric data points or log records in one Resource* message."""
    if signal is Signal.TRACES:
        return sum(len(ss.spans) for ss in resource.scope_spans)
    if signal is Signal.LOGS:
        return sum(len(sl.log_records) for sl in resource.scope_logs)
    total = 0
    for sm in resource.scope_metrics:
        for m in sm.metrics:
            kind = m.WhichOneof("data")
            total += len(getattr(m, kind).data_points) if kind else 0
    return total


@dataclass(frozen=True)
class RetryPolicy:
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_elapsed: float = 300.0  # give a batch up (counted as dropped) after this long
    jitter: float = 0.2

    def backoff(self, attempt: int, server_asked: float | None) -> float:
        if server_asked is not None:
            return min(server_asked, self.max_backoff)
        base = min(self.initial_backoff * 2**attempt, self.max_backoff)
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(slots=True)
class _Entry:
    framed: bytes
    items: int
    queued_at: float


class _Counters:
    def __init__(self, meter: Meter) -> None:
        self.exported = meter.create_counter(
            semconv.METRIC_P_EXPORTED, unit="{item}", description="Items delivered downstream, per endpoint.")
        self.retried = meter.create_counter(
            semconv.METRIC_P_EXPORT_RETRIED, unit="{item}", description="Items in export attempts that are retried.")
        self.dropped = meter.create_counter(
            semconv.METRIC_P_EXPORT_DROPPED, unit="{item}", description="Items given up, by reason.")


class EndpointQueue:
    """One endpoint: a bounded queue of framed resources per signal, drained by one worker thread."""

    def __init__(self, endpoint: Endpoint, transport: Transport, counters: _Counters, *, queue_size: int,
                 batch_size: int, max_delay: float, retry: RetryPolicy, max_queue_bytes: int | None = None,
                 block_timeout: float = 0.0) -> None:
        self.endpoint = endpoint
        self.name = endpoint.url
        self._transport = transport
        self._c = counters
        self.queue_size = queue_size  # items, per signal
        self.max_queue_bytes = max_queue_bytes  # encoded bytes, all signals together
        self.block_timeout = block_timeout
        self.dropped: Counter[tuple[str, str]] = Counter()  # (signal items, reason) -> items, since start
        self._bytes = 0
        self.batch_size = batch_size
        self.max_delay = max_delay
        self._retry = retry
        self._queues: dict[Signal, deque[_Entry]] = {s: deque() for s in Signal}
        self._items = {s: 0 for s in Signal}
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._draining_until = 0.0  # set on shutdown: put() waits for room until then, sends at once
        self._cond = threading.Condition()
        self._flushing = 0
        self._stopping = False
        self._deadline = float("inf")
        self._wake = threading.Event()  # interrupts a backoff wait on shutdown
        self._lost_at_shutdown = 0
        self._log = RateLimitedLog(logger)
        self._thread = threading.Thread(target=self._run, name=f"otlp-export {self.name}", daemon=True)
        # /health reads these: since when the last attempts failed (None: the last one went through)
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self.last_ok: float | None = None

    def status(self) -> dict[str, object]:
        """``ok`` (the last attempt went through), ``failing`` (it did not) or ``idle`` (nothing sent yet)."""
        state = "failing" if self.failing_since is not None else "ok" if self.last_ok is not None else "idle"
        return {"state": state, "failing_since": self.failing_since, "last_ok": self.last_ok,
                "last_error": self.last_error if state == "failing" else None}

    @property
    def depth(self) -> int:
        """Items waiting (queued plus the batch being sent)."""
        return sum(self._items.values()) + self._in_flight

    @property
    def queued_bytes(self) -> int:
        """Encoded bytes waiting (queued plus the batch being sent)."""
        return self._bytes

    def start(self) -> None:
        self._thread.start()

    def _full(self, signal: Signal) -> bool:
        if self._items[signal] > self.queue_size:
            return True
        return self.max_queue_bytes is not None and self._bytes > self.max_queue_bytes

    def put(self, signal: Signal, entries: Sequence[_Entry], block_timeout: float | None = None) -> None:
        """Queue ``entries``; when that overfills ``signal``'s queue, wait up to ``block_timeout`` (default: the
        queue's own) for the worker to make room, then drop the oldest of the same signal."""
        dropped = 0
        wait = self.block_timeout if block_timeout is None else block_timeout
        with self._cond:
            q = self._queues[signal]
            for e in entries:
                q.append(e)
                self._items[signal] += e.items
                self._bytes += len(e.framed)
            self._cond.notify_all()  # the worker, and any flush() waiting on the same condition
            if self._draining_until:  # shutting down: wait for room as long as the grace period lasts
                wait = max(wait, self._draining_until - time.monotonic())
            if self._full(signal) and wait > 0:
                deadline = min(time.monotonic() + wait, self._deadline)
                self._cond.wait_for(lambda: not self._full(signal), max(deadline - time.monotonic(), 0))
            while self._full(signal):
                if len(q) <= 1:
                    break  # one resource larger than the whole queue: keep it rather than starve
                gone = q.popleft()
                self._items[signal] -= gone.items
                self._bytes -= len(gone.framed)
                dropped += gone.items
                self._drop(signal, gone.items, "queue_full")
        if dropped:
            self._log.warning("full", "rag-otel export queue for %s is full (%d items, %s bytes): dropped the %d "
                              "oldest %s", self.name, self.queue_size, self.max_queue_bytes or "unbounded", dropped,
                              signal.items)

    def _ready(self, now: float) -> bool:
        if self._stopping or self._flushing or self._draining_until:
            return sum(self._items.values()) > 0
        for q, n in ((self._queues[s], self._items[s]) for s in Signal):
            if q and (n >= self.batch_size or now - q[0].queued_at >= self.max_delay):
                return True
        return False

    def _take(self) -> tuple[Signal, list[bytes], int]:
        signal = min((s for s in Signal if self._queues[s]), key=lambda s: self._queues[s][0].queued_at)
        q = self._queues[signal]
        parts: list[bytes] = []
        n = 0
        while q and (not parts or n + q[0].items <= self.batch_size):
            e = q.popleft()
            parts.append(e.framed)
            n += e.items
        self._items[signal] -= n
        self._in_flight = n
        self._in_flight_bytes = sum(map(len, parts))
        return signal, parts, n

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ready(time.monotonic()):
                    if self._stopping:
                        return
                    heads = [q[0].queued_at for q in self._queues.values() if q]
                    timeout = max(min(heads) + self.max_delay - time.monotonic(), 0.001) if heads else None
                    self._cond.wait(timeout)
                signal, parts, n = self._take()
            try:
                self._send(signal, b"".join(parts), n)
            except Exception:  # never let one bad batch kill the worker
                logger.exception("rag-otel exporter: unexpected error sending to %s", self.name)
                self._drop(signal, n, "error")
            with self._cond:
                self._in_flight = 0
                self._bytes -= self._in_flight_bytes
                self._in_flight_bytes = 0
                self._cond.notify_all()

    def _drop(self, signal: Signal, n: int, reason: str) -> None:
        if reason == "shutdown":
            self._lost_at_shutdown += n
        self.dropped[(signal.items, reason)] += n
        self._c.dropped.add(n, {"endpoint": self.name, "signal": signal.items, "reason": reason})

    def _send(self, signal: Signal, body: bytes, n: int) -> None:
        attrs = {"endpoint": self.name, "signal": signal.items}
        give_up = time.monotonic() + self._retry.max_elapsed
        attempt = 0
        while True:
            remaining = min(give_up, self._deadline) - time.monotonic()
            if remaining <= 0:
                self._drop(signal, n, "shutdown" if self._deadline <= give_up else "retries_exhausted")
                self._log.warning("gaveup", "rag-otel exporter gave up %d %s for %s", n, signal.items, self.name)
                return
            outcome = self._transport.send(signal, body, min(self.endpoint.timeout, remaining))
            if outcome.ok:
                self.failing_since, self.last_ok = None, time.time()
            elif self.failing_since is None:
                self.failing_since = time.time()
            if not outcome.ok:
                self.last_error = str(outcome.reason)
            if outcome.ok:
                self._c.exported.add(n - outcome.rejected, attrs)
                if outcome.rejected:
                    self._drop(signal, outcome.rejected, "rejected_downstream")
                    self._log.warning("partial", "%s refused %d %s: %s", self.name, outcome.rejected,
                                      signal.items, outcome.reason)
                return
            if not outcome.retryable:
                self._drop(signal, n, "rejected_downstream")
                self._log.warning("permanent", "rag-otel exporter: %s refused %d %s for good: %s",
                                  self.name, n, signal.items, outcome.reason)
                return
            delay = self._retry.backoff(attempt, outcome.retry_after)
            attempt += 1
            if time.monotonic() + delay >= min(give_up, self._deadline):
                self._drop(signal, n, "shutdown" if self._deadline <= give_up else "retries_exhausted")
                self._log.warning("gaveup", "rag-otel exporter gave up %d %s for %s after %d attempts: %s",
                                  n, signal.items, self.name, attempt, outcome.reason)
                return
            self._c.retried.add(n, attrs)
            self._log.warning("retry", "rag-otel exporter: %s failed (%s); retrying %d %s in %.2fs",
                              self.name, outcome.reason, n, signal.items, delay)
            self._wake.wait(delay)

    def flush(self, timeout: float) -> bool:
        """Send everything queued now, not after ``max_delay``; True when the queue emptied in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self.depth == 0, max(deadline - time.monotonic(), 0))
            finally:
                self._flushing -= 1

    def drain_until(self, deadline: float) -> None:
        """The processor is stopping: send without waiting for ``max_delay``, and let ``put`` wait for
        room until ``deadline`` rather than drop (what the pipeline flushes must all fit through)."""
        with self._cond:
            self._draining_until = deadline
            self._cond.notify_all()

    def begin_shutdown(self, deadline: float) -> None:
        with self._cond:
            self._stopping = True
            self._deadline = deadline
            self._cond.notify_all()

    def finish_shutdown(self) -> bool:
        """Join the worker (it stops by the deadline); count what is still queued as dropped."""
        if self._thread.ident is not None:  # started
            self._thread.join(max(self._deadline - time.monotonic(), 0))
            self._wake.set()  # cut a backoff wait short: the grace period is over
            self._thread.join(1.0)
        with self._cond:
            for s in Signal:
                if self._items[s]:
                    self._drop(s, self._items[s], "shutdown")
                    self._queues[s].clear()
                    self._items[s] = 0
            self._bytes = 0
        self._transport.close()
        return self._lost_at_shutdown == 0 and not self._thread.is_alive()


class OtlpFanOut:
    """Export the pipeline's output to every configured endpoint; see the module docstring."""

    def __init__(self, endpoints: Iterable[Endpoint], meter: Meter, *, queue_size: int = 10_000,
                 batch_size: int = 512, max_delay: float = 0.2, retry: RetryPolicy | None = None,
                 max_queue_bytes: int | None = None, block_timeout: float = 0.0) -> None:
        counters = _Counters(meter)
        self.queues = [
            EndpointQueue(e, transport_for(e), counters, queue_size=queue_size, batch_size=batch_size,
                          max_delay=max_delay, retry=retry or RetryPolicy(), max_queue_bytes=max_queue_bytes,
                          block_timeout=block_timeout)
            for e in endpoints
        ]
        meter.create_observable_gauge(semconv.METRIC_P_QUEUE_DEPTH, callbacks=[self._observe_depth], unit="{item}",
                                      description="Items waiting in each export queue.")
        self._started = False

    @property
    def queued_bytes(self) -> int:
        """Encoded bytes waiting in the fullest endpoint queue (the queues share the same bytes objects)."""
        return max((q.queued_bytes for q in self.queues), default=0)

    def dropped(self) -> Counter[tuple[str, str]]:
        """Items given up so far, by (signal, reason), over every endpoint."""
        total: Counter[tuple[str, str]] = Counter()
        for q in self.queues:
            total.update(q.dropped)
        return total

    def _observe_depth(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(q.depth, {"endpoint": q.name}) for q in self.queues]

    def start(self) -> None:
        for q in self.queues:
            q.start()
        self._started = True

    def status(self) -> list[dict[str, object]]:
        """Each endpoint's export state, in the configured order."""
        return [q.status() for q in self.queues]

    def _put(self, signal: Signal, resources: Iterable[Message]) -> None:
        if not any(_CONFIG_NAME[signal] in q.endpoint.signals for q in self.queues):
            return  # no endpoint takes this signal: do not even encode it
        try:
            now = time.monotonic()
            entries = [_Entry(frame(r), count_items(signal, r), now) for r in resources]
            entries = [e for e in entries if e.items]
            if entries:
                for q in self.queues:
                    if _CONFIG_NAME[signal] in q.endpoint.signals:  # e.g. Jaeger takes only traces
                        q.put(signal, entries)
        except Exception:  # the pipeline must never fail because of export
            logger.exception("rag-otel exporter: could not queue %s", signal.items)

    def export_spans(self, resource_spans: Iterable[ResourceSpans]) -> None:
        self._put(Signal.TRACES, resource_spans)

    def export_metrics(self, resource_metrics: Iterable[ResourceMetrics]) -> None:
        self._put(Signal.METRICS, resource_metrics)

    def export_logs(self, resource_logs: Iterable[ResourceLogs]) -> None:
        self._put(Signal.LOGS, resource_logs)

    def flush(self, timeout: float = 10.0) -> bool:
        """Send what is queued now on every endpoint (in parallel); True if all emptied in time."""
        deadline = time.monotonic() + timeout
        return all([q.flush(max(deadline - time.monotonic(), 0)) for q in self.queues])

    def drain_until(self, deadline: float) -> None:
        """See :meth:`EndpointQueue.drain_until`; called when the processor starts to stop."""
        for q in self.queues:
            q.drain_until(deadline)

    def shutdown(self, grace_seconds: float = 10.0) -> bool:
        """Flush every queue within ``grace_seconds`` (all endpoints at once), then stop.

        Returns True when everything was delivered; what could not be sent in time is counted
        as dropped with ``reason=shutdown``.
        """
        deadline = time.monotonic() + grace_seconds
        for q in self.queues:
            q.begin_shutdown(deadline)
        return all([q.finish_shutdown() for q in self.queues])


def create_exporter(settings: ProcessorSettings, meter: Meter) -> OtlpFanOut:
    """Factory: the fan-out the processor settings describe (not yet started)."""
    return OtlpFanOut(settings.exports, meter, queue_size=settings.export_queue_size,
                      batch_size=settings.export_batch_size, max_queue_bytes=settings.memory_limit_mib << 20,
                      block_timeout=settings.export_block_timeout)
