"""The processor's Sink: receive -> assemble -> normalize -> score -> enrich -> alert -> export.

Wiring, not logic: each stage lives in its own module.  What this module owns is *where* work
happens.  ``offer_*`` (called on the receiver's threads) only counts and enqueues, answering
``full`` when the bounded queue is full, so back-pressure reaches the sender instead of our
memory.  One worker thread owns trace assembly; whole traces go, about a request's worth per job, to a
scoring pool that normalizes, scores (sampled), enriches, feeds the alert engine and the derived
metrics, and exports.  With only the lexical scorer the pool has one thread: every stage is pure
Python holding the GIL, and a second thread measured no gain (bench/README.md); a model backend
(embedding, LLM judge) waits outside the GIL, so it gets two.  A pending-batch semaphore bounds that pool,
so a slow scorer slows the worker, fills the queue and turns into back-pressure rather than unbounded memory.
"""

from __future__ import annotations

import gc
import logging
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from rag_otel import __version__
from rag_otel import semconv as sc
from rag_otel.config import ModelObservation
from rag_otel.pricing import PriceTable, load_prices
from rag_otel.processor import enrich
from rag_otel.processor.assembly import Origin, Trace, TraceAssembler
from rag_otel.processor.feedback_events import feedback_records
from rag_otel.processor.ingest import RateLimitedLog
from rag_otel.processor.normalize import ModelUsage, Normalized, normalize_units
from rag_otel.processor.sink import ACCEPTED, Admission
from rag_otel.processor.system_samples import system_samples
from rag_otel.records import (
    NO_CONTENT_HINT,
    AlertEvent,
    Feedback,
    IngestionRecord,
    QualityResult,
    QueryRecord,
    SystemSample,
)
from rag_otel.value_limits import bound_values

logger = logging.getLogger("rag_otel.processor")

_STOP = object()
CHUNK_SPANS = 300  # spans per pool job (at least): bigger amortizes handing over and export, smaller cuts delay
# Every trace allocates a few hundred container objects (records, sources, span infos, scorer state), so
# CPython's default young-generation threshold (700) runs a collection every few traces and the older
# generations, which hold the scorer's word memos, get walked often: raising the thresholds measured
# +9-22% spans per CPU-second end to end (bench/README.md); gc.freeze() measured nothing.
GC_THRESHOLDS = (50_000, 50, 100)


def default_scoring_threads(config: ModelObservation) -> int:
    """1 when every scored axis is lexical (GIL-bound: a second thread buys nothing), else 2 (a model
    backend waits on I/O or native code, and another thread can work meanwhile)."""
    qa = config.quality_assessment
    return 1 if all(qa.backends.get(axis, "lexical") == "lexical" for axis in qa.metrics) else 2


def raise_gc_thresholds() -> None:
    """Raise CPython's collection thresholds to at least :data:`GC_THRESHOLDS` (never lowers one).

    Process-wide, so the process owner calls it (``ProcessorService.start``), not the pipeline: a
    host that embeds a ``Pipeline`` keeps its own GC settings."""
    gc.set_threshold(*(max(now, want) for now, want in zip(gc.get_threshold(), GC_THRESHOLDS, strict=False)))


class Downstream(Protocol):
    """Where processed data goes (the OTLP exporter fan-out); never blocks, never raises."""

    def export_spans(self, resource_spans: Iterable[ResourceSpans]) -> Any: ...

    def export_metrics(self, resource_metrics: Iterable[ResourceMetrics]) -> Any: ...

    def export_logs(self, resource_logs: Iterable[ResourceLogs]) -> Any: ...


class Scorer(Protocol):
    def score(self, question: str, answer: str, sources: Sequence[str]) -> QualityResult: ...


class AlertEngineLike(Protocol):
    def observe(self, record: QueryRecord) -> Any: ...

    def observe_system(self, sample: SystemSample) -> Any: ...

    def evaluate(self, now: float) -> list[AlertEvent]: ...

    def firing_names_for(self, record: QueryRecord) -> list[str]: ...


class QueryMetrics(Protocol):
    def record_queries(self, batch: Sequence[tuple[QueryRecord, Sequence[ModelUsage]]]) -> None: ...

    def record_scoring(self, seconds: float, evaluator: str) -> None: ...

    def record_late_spans(self, n: int) -> None: ...


@dataclass
class PipelineStats:
    """Counters read by /health and the derived health metrics."""

    queued_items: int = 0
    traces_received: int = 0
    records: int = 0
    scored: int = 0
    unscored_flushes: int = 0  # traces flushed at timeout/overflow/shutdown
    no_content: int = 0  # queries that arrived without question or answer text: not scored
    passed_through: int = 0  # traces with no RAG span
    ingestion: int = 0  # traces that were not questions (index builds, uploads): counted apart, no record
    late_spans: int = 0  # spans of a trace already flushed: exported as received, no second record
    export_errors: int = 0
    stage_errors: int = 0
    failed_traces: int = 0  # a stage raised: exported unscored and stripped (fail closed)
    dropped_spans: int = 0  # spans of a failed trace whose content could not even be stripped
    rejected_values: int = 0  # absurd values set aside at normalization (see value_limits)


def _count_spans(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def _count_points(req: ExportMetricsServiceRequest) -> int:
    n = 0
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                n += len(getattr(m, kind).data_points) if kind else 0
    return n


def _count_logs(req: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


def resource_spans(spans: Iterable[tuple[Origin, Span]]) -> list[ResourceSpans]:
    """Spans regrouped under their resource and scope (one ResourceSpans per received resource).

    A received ResourceSpans whose spans are all here goes out as the message itself (the spans
    were edited in place): copying spans one by one costs more than the whole encoding."""
    by_origin: dict[int, tuple[Origin, list[Span]]] = {}
    for origin, span in spans:
        entry = by_origin.get(id(origin))
        if entry is None:
            by_origin[id(origin)] = (origin, [span])
        else:
            entry[1].append(span)
    by_source: dict[int, list[tuple[Origin, list[Span]]]] = {}
    for origin, group in by_origin.values():
        by_source.setdefault(id(origin.source) if origin.source is not None else id(origin), []).append(
            (origin, group))
    out: dict[int, ResourceSpans] = {}
    for entries in by_source.values():
        first = entries[0][0]
        if first.source is not None and len(entries) == first.source_scope_count and all(
                len(group) == origin.scope_span_count for origin, group in entries):
            out[id(first.source)] = first.source
        else:
            _copy_spans(entries, out)
    return list(out.values())


def resource_logs(records: Iterable[tuple[Origin, list[LogRecord]]]) -> list[ResourceLogs]:
    """Log records the processor made, under the resource of the span each is about, in the processor's scope."""
    out: dict[int, ResourceLogs] = {}
    for origin, recs in records:
        rl = out.get(id(origin.resource))
        if rl is None:
            rl = out[id(origin.resource)] = ResourceLogs(schema_url=origin.resource_schema_url)
            rl.resource.CopyFrom(origin.resource)
            scope = rl.scope_logs.add().scope
            scope.name, scope.version = sc.PROCESSOR_SCOPE, __version__
        rl.scope_logs[0].log_records.extend(recs)
    return list(out.values())


def _copy_spans(entries: list[tuple[Origin, list[Span]]], out: dict[int, ResourceSpans]) -> None:
    """Copy ``entries`` into new ResourceSpans in ``out`` (one per received resource)."""
    for origin, group in entries:
        rs = out.get(id(origin.resource))
        if rs is None:
            rs = out[id(origin.resource)] = ResourceSpans(schema_url=origin.resource_schema_url)
            rs.resource.CopyFrom(origin.resource)
        ss = rs.scope_spans.add(schema_url=origin.scope_schema_url)
        ss.scope.CopyFrom(origin.scope)
        ss.spans.extend(group)


class Pipeline:
    """Implements the receiver's Sink; owns the queue, the assembly worker and the scoring pool."""

    def __init__(
        self,
        config: ModelObservation,
        downstream: Downstream,
        *,
        scorer: Scorer | None = None,
        alerts: AlertEngineLike | None = None,
        metrics: QueryMetrics | None = None,
        prices: PriceTable | None = None,
        scoring_threads: int | None = None,  # default: see default_scoring_threads()
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        p = config.processor
        self.config = config
        self.downstream = downstream
        self.scorer = scorer
        self.alerts = alerts
        self.metrics = metrics
        self.prices = prices or load_prices(config.pricing)
        self.assembler = TraceAssembler(p.trace_wait, p.trace_timeout, p.max_in_flight_traces, clock)
        self.max_queue_items = p.max_queue_items
        # callables answering why intake should back off now (e.g. the store writer's buffer is full), or None
        self.admission_checks: list[Callable[[], str | None]] = []
        self.stats = PipelineStats()
        self.on_record: list[Callable[[QueryRecord], None]] = []
        self.on_system: list[Callable[[SystemSample], None]] = []
        self.on_ingestion: list[Callable[[IngestionRecord], None]] = []
        self.on_feedback: list[Callable[[Feedback], None]] = []  # the SDK's rag.feedback log records
        self.on_alert: list[Callable[[list[AlertEvent]], None]] = []
        self._clock = clock
        self._rng = rng
        scoring_threads = scoring_threads or default_scoring_threads(config)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(scoring_threads, thread_name_prefix="rag-otel-score")
        self._pending = threading.BoundedSemaphore(scoring_threads * 2)
        self._worker: threading.Thread | None = None
        self._evaluator: threading.Thread | None = None
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._jobs = 0
        self._job_spans = 0  # spans handed to the pool, not yet exported
        self._log = RateLimitedLog(logger)

    # --- Sink (receiver threads) -------------------------------------------------------------
    def _offer(self, kind: str, request: Any, items: int) -> Admission:
        with self._lock:
            if self._stopping.is_set():
                return Admission.back_off(1.0, "processor shutting down")
            queued = self.stats.queued_items
            # an empty queue takes any one request (max_request_bytes bounds it), else a request
            # bigger than the whole queue would be refused forever
            if queued and queued + items > self.max_queue_items:
                return Admission.back_off(1.0, "processor queue full")
            for check in self.admission_checks:
                if why := check():
                    return Admission.back_off(1.0, why)
            self.stats.queued_items += items
        self._queue.put((kind, request, items))
        return ACCEPTED

    def offer_traces(self, request: ExportTraceServiceRequest) -> Admission:
        return self._offer("traces", request, _count_spans(request))

    def offer_metrics(self, request: ExportMetricsServiceRequest) -> Admission:
        return self._offer("metrics", request, _count_points(request))

    def offer_logs(self, request: ExportLogsServiceRequest) -> Admission:
        return self._offer("logs", request, _count_logs(request))

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Pipeline:
        self._worker = threading.Thread(target=self._run, name="rag-otel-assembly", daemon=True)
        self._worker.start()
        if self.alerts is not None:
            self._evaluator = threading.Thread(target=self._evaluate_loop, name="rag-otel-alerts", daemon=True)
            self._evaluator.start()
        return self

    def shutdown(self, grace: float) -> bool:
        """Refuse new data, flush in-flight traces unscored, wait for exports; True if all done in time."""
        deadline = time.monotonic() + grace
        with self._lock:
            self._stopping.set()
        self._queue.put(_STOP)
        if self._worker is not None:
            self._worker.join(max(0.0, deadline - time.monotonic()))
        done = self.wait_idle(max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=False)
        if self._evaluator is not None:
            self._evaluator.join(1.0)
        return done and not (self._worker and self._worker.is_alive())

    def wait_idle(self, timeout: float) -> bool:
        """Until nothing is queued or being finished (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._jobs or self.stats.queued_items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    @property
    def queue_depth(self) -> int:
        return self.stats.queued_items

    @property
    def items_in_flight(self) -> int:
        """Items accepted and not yet handed to the exporter: queued, being assembled, being scored."""
        return self.stats.queued_items + self.assembler.span_count + self._job_spans

    @property
    def in_flight_traces(self) -> int:
        return len(self.assembler)

    # --- the assembly worker -----------------------------------------------------------------
    def _run(self) -> None:
        asm = self.assembler
        while True:
            nxt = asm.next_deadline()
            timeout = 0.5 if nxt is None else min(0.5, max(0.0, nxt - self._clock()))
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                item = None
            if item is _STOP:
                self._submit(asm.drain())
                return
            items = 0
            try:
                ready: list[Trace] = []
                if item is not None:
                    kind, request, items = item
                    if kind == "traces":
                        self.stats.traces_received += 1
                        ready = asm.add_request(request.resource_spans)
                    elif kind == "metrics":
                        self._pass_metrics(request)
                    else:
                        self._pass_logs(request)
                ready.extend(asm.expire())
                self._submit(ready)
            except Exception:  # the worker must outlive any bad request
                self.stats.stage_errors += 1
                logger.exception("rag-otel processor: could not take a request")
            finally:
                if items:  # only now: until its traces are handed on, the request still counts as queued
                    with self._idle:
                        self.stats.queued_items -= items
                        self._idle.notify_all()

    def _submit(self, traces: list[Trace]) -> None:
        """Hand whole traces to the pool in jobs of about ``CHUNK_SPANS`` spans, cut only where the
        received request changes: a request whose traces all go in one job is exported as the
        message it came in (see :func:`resource_spans`), and each job is exported when done."""
        start = 0
        spans = 0
        for i, trace in enumerate(traces):
            spans += len(trace.spans)
            nxt = traces[i + 1] if i + 1 < len(traces) else None
            if nxt is None or (spans >= CHUNK_SPANS and _source(nxt) is not _source(trace)):
                self._submit_job(traces[start:i + 1])
                start, spans = i + 1, 0

    def _submit_job(self, chunk: list[Trace]) -> None:
        self._pending.acquire()  # bounded: a slow scorer pushes back onto the queue
        spans = sum(len(t.spans) for t in chunk)
        with self._lock:
            self._jobs += 1
            self._job_spans += spans
        try:
            self._pool.submit(self._finish, chunk)
        except RuntimeError:  # pool already shut down: finish here, nothing is lost
            self._finish(chunk)

    # --- per batch of whole traces (pool threads) ---------------------------------------------
    def _finish(self, traces: list[Trace]) -> None:
        out: list[tuple[Origin, Span]] = []
        done: list[tuple[QueryRecord, Sequence[ModelUsage]]] = []
        logs: list[tuple[Origin, list[LogRecord]]] = []
        try:
            late = 0
            for trace in traces:
                if trace.reason == "late":
                    late += self._pass_late(trace)
                    out.extend(trace.spans)
                    continue
                try:
                    done.extend(self._process(trace, logs))
                except Exception:
                    self.stats.stage_errors += 1
                    self.stats.failed_traces += 1
                    self._log.warning("failed", "rag-otel processor: a trace failed normalization or enrichment "
                                      "(%s); it is exported unscored, content stripped",
                                      sys.exc_info()[1].__class__.__name__, exc_info=True)
                    if not self._fail_closed(trace):
                        continue  # content that cannot be removed does not leave: the spans are dropped
                out.extend(trace.spans)
            self._export(self.downstream.export_spans, resource_spans(out))
            if logs:
                self._export(self.downstream.export_logs, resource_logs(logs))
            if late and self.metrics is not None:
                try:
                    self.metrics.record_late_spans(late)
                except Exception:
                    logger.exception("rag-otel processor: recording derived metrics failed")
            if done and self.metrics is not None:
                try:
                    self.metrics.record_queries(done)
                except Exception:
                    logger.exception("rag-otel processor: recording derived metrics failed")
            for rec, _ in done:
                for hook in self.on_record:
                    _call_hook(hook, rec)
        finally:
            self._pending.release()
            with self._idle:
                self._jobs -= 1
                self._job_spans -= sum(len(t.spans) for t in traces)
                self._idle.notify_all()

    def _process(self, trace: Trace, logs: list[tuple[Origin, list[LogRecord]]]
                 ) -> list[tuple[QueryRecord, Sequence[ModelUsage]]]:
        """One trace's records (one per question it holds); the trace is enriched in place, and its evaluation
        log records (when the config asks for them) are appended to ``logs``."""
        units = normalize_units(trace, self.prices)
        cfg = self.config
        if not units:  # no RAG span, yet a span may still carry content (an app's own chain, a tool call...)
            self.stats.passed_through += 1
            if enrich.should_strip(None, cfg.content.capture, cfg.processor.keep_content):
                enrich.strip_content(span for _, span in trace.spans)
            return []
        norm = units[0]
        if norm.ingestion is not None:  # an index build or an upload: its cost counts, it is no query
            self.stats.ingestion += 1
            if enrich.should_strip(None, cfg.content.capture, cfg.processor.keep_content):
                enrich.strip_content(norm.indexes)
            for hook in self.on_ingestion:
                _call_hook(hook, norm.ingestion)
            return []
        # stripping goes before any enrichment: the indexes are positions as received
        strips = [enrich.should_strip(n.capture, cfg.content.capture, cfg.processor.keep_content) for n in units]
        for n, strip in zip(units, strips, strict=True):
            if strip:
                enrich.strip_content(n.indexes)
        return [self._finish_unit(trace, n, strip, logs) for n, strip in zip(units, strips, strict=True)]

    def _finish_unit(self, trace: Trace, norm: Normalized, strip: bool, logs: list[tuple[Origin, list[LogRecord]]]
                     ) -> tuple[QueryRecord, Sequence[ModelUsage]]:
        """Score, alert on and enrich one question's record (its root span gets the results)."""
        cfg = self.config
        rec = norm.record
        if rejected := bound_values(rec, norm.usage):
            self.stats.rejected_values += len(rejected)
            self._log.warning("values", "rag-otel processor: trace %s: rejected out-of-range values (%s); the "
                              "record keeps the rest", rec.trace_id,
                              ", ".join(f"{r.field}={r.value!r:.40}" for r in rejected))
        rec.latency_category = cfg.performance_monitoring.latency_thresholds.category(rec.duration_s)
        rec.quality = self._score(trace, rec)
        if self.alerts is not None:
            self.alerts.observe(rec)
            rec.alerts = list(self.alerts.firing_names_for(rec))
        events = cfg.processor.evaluation_events
        enrich.enrich_root(
            norm.root, rec, rec.quality, cost_missing=not norm.root_is_call and _root_cost_wrong(norm.root_keys),
            grade_thresholds=cfg.quality_assessment.grade_thresholds, present=norm.root_keys, with_evidence=not strip,
            span_events=events != "log",
        )
        if events != "span" and (records := enrich.evaluation_log_records(
                norm.root, rec.quality, time.time_ns(), with_evidence=not strip)):
            logs.append((norm.root_origin, records))
        self.stats.records += 1
        return rec, norm.usage

    def _fail_closed(self, trace: Trace) -> bool:
        """A trace that failed a stage loses its content anyway (unless the processor keeps content):
        whatever broke may have been the very attribute that said how content was captured.  False when
        even stripping failed: the caller then drops the spans rather than export content."""
        if self.config.processor.keep_content:
            return True
        try:
            enrich.strip_content(span for _, span in trace.spans)
            return True
        except Exception:
            self.stats.dropped_spans += len(trace.spans)
            logger.exception("rag-otel processor: could not strip a failed trace; its %d spans are dropped",
                             len(trace.spans))
            return False

    def _pass_late(self, trace: Trace) -> int:
        """A straggler of a trace already flushed: no second record, nothing enriched.  Its content
        is still stripped unless the processor keeps content (it can no longer be scored anyway, and
        the root that said how it was captured is gone)."""
        self.stats.late_spans += len(trace.spans)
        if not self.config.processor.keep_content:
            try:
                enrich.strip_content(span for _, span in trace.spans)
            except Exception:
                self.stats.stage_errors += 1
                logger.exception("rag-otel processor: stripping a late span failed")
        return len(trace.spans)

    def _note_no_content(self) -> None:
        """Say, at the 1st, 10th, 100th... such query, how many went unscored and how to score them."""
        n = self.stats.no_content = self.stats.no_content + 1
        if n == 10 ** (len(str(n)) - 1):
            logger.warning("rag-otel processor: %d quer%s arrived without question/answer text, unscored so far: %s",
                           n, "y" if n == 1 else "ies", NO_CONTENT_HINT)

    def _score(self, trace: Trace, rec: QueryRecord) -> QualityResult:
        if not trace.complete:
            self.stats.unscored_flushes += 1
            return QualityResult(axes={}, overall=None, evaluator="", status="skipped")
        if not rec.query_text or not rec.answer_text:
            self._note_no_content()
            return QualityResult(axes={}, overall=None, evaluator="", status="no_content")
        if self.scorer is None or self._rng() >= self.config.quality_assessment.sample_rate:
            return QualityResult(axes={}, overall=None, evaluator="", status="skipped")
        t0 = time.perf_counter()
        try:
            result = self.scorer.score(rec.query_text, rec.answer_text, [s.content for s in rec.sources if s.content])
        except Exception as e:
            logger.warning("rag-otel processor: scoring failed (%s); the query is marked quality error", e)
            return QualityResult(axes={}, overall=None, evaluator="", status="error")
        took = time.perf_counter() - t0
        result.duration_s = result.duration_s or took
        self.stats.scored += 1
        if self.metrics is not None:
            self.metrics.record_scoring(took, result.evaluator)
        return result

    # --- metrics and logs --------------------------------------------------------------------
    def _pass_metrics(self, request: ExportMetricsServiceRequest) -> None:
        samples = system_samples(request) if (self.alerts is not None or self.on_system) else []
        self._export(self.downstream.export_metrics, request.resource_metrics)  # unchanged
        for sample in samples:
            if self.alerts is not None:
                self.alerts.observe_system(sample)
            for hook in self.on_system:
                _call_hook(hook, sample)

    def _pass_logs(self, request: ExportLogsServiceRequest) -> None:
        """Apps' log records go downstream with the content stripped as from spans: the GenAI
        instrumentations put prompts and answers in events (log records) too.  A log record arrives
        apart from its trace, so its resource's ``rag.content.capture`` (if any) and the processor's
        own setting decide."""
        cfg = self.config
        if self.on_feedback:
            for item in feedback_records(request.resource_logs):
                for hook in self.on_feedback:
                    _call_hook(hook, item)
        if not cfg.processor.keep_content:
            for rl in request.resource_logs:
                capture = next((kv.value.string_value for kv in rl.resource.attributes
                                if kv.key == sc.RAG_CONTENT_CAPTURE), None)
                if enrich.should_strip(capture, cfg.content.capture, False):
                    enrich.strip_logs(rl.scope_logs)
        self._export(self.downstream.export_logs, request.resource_logs)

    def _export(self, send: Callable[[Any], Any], request: Any) -> None:
        try:
            send(request)
        except Exception:
            self.stats.export_errors += 1
            logger.exception("rag-otel processor: handing a request to the exporter failed")

    # --- alerts ------------------------------------------------------------------------------
    def evaluate_alerts(self, now: float | None = None) -> list[AlertEvent]:
        """One evaluation of every rule (the periodic loop calls this; tests may too)."""
        if self.alerts is None:
            return []
        events = self.alerts.evaluate(time.time() if now is None else now)
        if events:
            for hook in self.on_alert:
                _call_hook(hook, events)
        return events

    def _evaluate_loop(self) -> None:
        interval = self.config.alerting.evaluation_interval
        while not self._stopping.wait(interval):
            try:
                self.evaluate_alerts()
            except Exception:
                logger.exception("rag-otel processor: alert evaluation failed; retrying next interval")


def _source(trace: Trace) -> object:
    """The received message a trace's last span came from (job boundaries follow requests)."""
    return trace.spans[-1][0].source if trace.spans else None


def _root_cost_wrong(root_keys: frozenset[str]) -> bool:
    """The root needs the record's cost: it has none, or the app's sum missed a peer's calls."""
    return sc.GEN_AI_USAGE_COST not in root_keys or sc.RAG_INSTRUMENTATION_SKIPPED in root_keys


def _call_hook(hook: Callable[[Any], Any], arg: Any) -> None:
    try:
        hook(arg)
    except Exception:
        logger.exception("rag-otel processor: a subscriber hook failed (ignored)")

