"""The app-side runtime every span helper and instrumentor shares: providers, instruments,
prices, content policy, and the per-query accumulator that sums cost onto the root span.

``get_runtime()`` always answers: before ``configure()`` it builds one over the global
providers (which may be no-op), so instrumentation never fails because setup was skipped.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span

from rag_otel import __version__, semconv
from rag_otel.config import ModelObservation, load_config
from rag_otel.pricing import PriceTable, load_prices
from rag_otel.sdk import conventions
from rag_otel.sdk.content import ContentPolicy
from rag_otel.sdk.genai_metrics import GenAiMetrics
from rag_otel.sdk.identity import UserHasher

logger = logging.getLogger("rag_otel")
SCOPE = "rag_otel"
F = TypeVar("F", bound=Callable[..., Any])


class Instruments:
    """All metric instruments, created once per meter (creating them per call is the slow path)."""

    def __init__(self, meter: metrics.Meter) -> None:
        # which GenAI metric names (sdk/conventions.py): v1.41 by default, v0.1.0 when opted in, or both
        self.v1_41, v0_1 = conventions.metric_generations()
        self.v0_1: GenAiMetrics | None = GenAiMetrics(meter) if v0_1 else None
        self.operation_duration = meter.create_histogram(
            semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(semconv.TOKEN_BUCKETS),
        )
        self.time_to_first_chunk = meter.create_histogram(
            semconv.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK, unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.query_duration = meter.create_histogram(
            semconv.METRIC_RAG_QUERY_DURATION, unit="s", description="Whole RAG query duration.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.queries = meter.create_counter(
            semconv.METRIC_RAG_QUERIES, unit="{query}", description="RAG queries by status."
        )
        self.cost = meter.create_counter(
            semconv.METRIC_RAG_COST, unit="USD", description="Model cost in US dollars."
        )
        self.retrieved_documents = meter.create_histogram(
            semconv.METRIC_RAG_RETRIEVED_DOCUMENTS, unit="{document}",
            description="Documents returned per retrieval.",
            explicit_bucket_boundaries_advisory=list(semconv.DOCUMENT_COUNT_BUCKETS),
        )
        self.feedback_score = meter.create_histogram(
            semconv.METRIC_RAG_FEEDBACK_SCORE, unit="1", description="User feedback score in [0,1].",
            explicit_bucket_boundaries_advisory=list(semconv.FEEDBACK_BUCKETS),
        )
        self.unknown_models = meter.create_counter(
            semconv.METRIC_RAG_COST_UNKNOWN_MODELS, unit="{model}",
            description="Distinct models seen with no price in pricing.yaml.",
        )
        self.usage_clamped = meter.create_counter(
            semconv.METRIC_RAG_USAGE_CLAMPED, unit="{value}",
            description="Token counts out of range (above int64 or negative) that were clamped.",
        )
        # Observed at collection from a plain locked int: two synchronous up-down measurements per
        # query would cost more than the rest of the root span's metrics.
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.in_flight = meter.create_observable_up_down_counter(
            semconv.METRIC_RAG_QUERIES_IN_FLIGHT, [self._observe_in_flight], unit="{query}",
            description="RAG queries in progress.",
        )

    def query_started(self) -> None:
        with self._in_flight_lock:
            self._in_flight += 1

    def query_finished(self) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1

    def _observe_in_flight(self, _options: metrics.CallbackOptions) -> list[metrics.Observation]:
        return [metrics.Observation(self._in_flight)]


@dataclass
class QueryState:
    """Mutable totals of one RAG query; shared by reference across gather/threads via contextvars."""

    span: Span
    cost: float = 0.0
    cost_known: bool = True
    usage_missing: bool = False  # a model call answered without usage: the cost is incomplete
    input_tokens: int = 0
    output_tokens: int = 0
    documents: int = 0
    features: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_usage(self, cost: float | None, input_tokens: int, output_tokens: int) -> None:
        with self.lock:
            if cost is None:
                self.cost_known = False
            else:
                self.cost += cost
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens


_QUERY_KEY = otel_context.create_key("rag_otel.query")
QUERY_KEY = _QUERY_KEY  # for a hot caller that holds the current context already: ``ctx.get(QUERY_KEY)``


class _CurrentQuery:
    """The enclosing query's :class:`QueryState`, kept *inside the OpenTelemetry context*.

    Why not a bare ContextVar: OTel's threading instrumentation (and any code that carries an
    OTel context to another thread) propagates the OTel context only, so the query totals
    must live there to follow spans into executors.  ``get``/``set``/``reset`` keep the
    ``ContextVar`` call shape the instrumentors use.
    """

    __slots__ = ()

    def get(self, default: QueryState | None = None) -> QueryState | None:
        q = otel_context.get_value(_QUERY_KEY)
        return default if q is None else q  # type: ignore[return-value]


    def set(self, q: QueryState | None) -> object:
        return otel_context.attach(otel_context.set_value(_QUERY_KEY, q))

    def reset(self, token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]

    @staticmethod
    def in_context(q: QueryState | None, ctx: otel_context.Context | None = None) -> otel_context.Context:
        """``ctx`` (default: current) carrying ``q``, to attach together with a span."""
        return otel_context.set_value(_QUERY_KEY, q, ctx)


current_query = _CurrentQuery()


class ModelScope:
    """One open ``generate()``/``embed()``: the model calls of its kind running or done under it.

    Why: an app's ``generate()`` around an auto-instrumented client call is one provider call
    seen twice.  The innermost call saw the provider's real usage, so a wrapper whose child of the
    same kind recorded usage (or is still running when the wrapper ends, e.g. a stream handed
    out of the block) does not count its own usage again.  Children may end in other threads.
    """

    __slots__ = ("_lock", "_running", "_usage_seen")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._usage_seen = False

    def child_started(self) -> None:
        with self._lock:
            self._running += 1

    def child_ended(self, recorded_usage: bool) -> None:
        with self._lock:
            self._running -= 1
            if recorded_usage:
                self._usage_seen = True

    def counted_by_child(self) -> bool:
        """True when a child's usage stands for this span's (read once, when the span ends)."""
        with self._lock:
            return self._usage_seen or self._running > 0


# One key per operation kind: a chat call never stands for an embeddings wrapper, nor the reverse.
_SCOPE_KEYS = {
    semconv.OP_CHAT: otel_context.create_key("rag_otel.model_scope.chat"),
    semconv.OP_EMBEDDINGS: otel_context.create_key("rag_otel.model_scope.embeddings"),
}


def model_scope(operation: str, ctx: otel_context.Context | None = None) -> ModelScope | None:
    """The innermost open ``generate()`` (chat) or ``embed()`` (embeddings) in ``ctx`` (default: current)."""
    key = _SCOPE_KEYS.get(operation)
    if key is None:
        return None
    return (otel_context.get_current() if ctx is None else ctx).get(key)  # type: ignore[return-value]


def in_model_scope(operation: str, scope: ModelScope, ctx: otel_context.Context) -> otel_context.Context:
    """``ctx`` with ``scope`` as the innermost open model span of ``operation``."""
    key = _SCOPE_KEYS.get(operation)
    return ctx if key is None else otel_context.set_value(key, scope, ctx)


@dataclass
class Runtime:
    config: ModelObservation
    tracer: trace.Tracer
    meter: metrics.Meter
    instruments: Instruments
    prices: PriceTable
    content: ContentPolicy
    logger_provider: Any = None  # None: the global one (record_feedback's log records)
    users: UserHasher | None = None
    _unknown_models: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(
        cls,
        config: ModelObservation,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        logger_provider: Any = None,
    ) -> Runtime:
        tracer = trace.get_tracer(SCOPE, __version__, tracer_provider, schema_url=None)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        return cls(
            config=config,
            tracer=tracer,
            meter=meter,
            instruments=Instruments(meter),
            prices=load_prices(config.pricing),
            content=ContentPolicy(config.content),
            logger_provider=logger_provider,
            users=UserHasher(config.telemetry),
        )

    def note_unknown_model(self, model: str) -> bool:
        """Count and warn once per distinct unknown model; True the first time."""
        with self._lock:
            if model in self._unknown_models or len(self._unknown_models) >= 1000:
                return False
            self._unknown_models.add(model)
        self.instruments.unknown_models.add(1, {semconv.GEN_AI_REQUEST_MODEL: model})
        logger.warning(
            "rag-otel: no price for model %r; its cost is not reported (add it under "
            "model_observation.pricing.models)", model,
        )
        return True


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    rt = _runtime
    if rt is None:
        with _runtime_lock:
            if _runtime is None:
                try:
                    cfg = load_config()
                except Exception as e:  # never raise into the host app
                    logger.error("rag-otel: configuration ignored: %s", e)
                    cfg = ModelObservation()
                _runtime = Runtime.create(cfg)
            rt = _runtime
    return rt


def set_runtime(rt: Runtime | None) -> None:
    """Install ``rt`` (``configure()`` and tests); ``None`` resets to lazy defaults."""
    global _runtime
    with _runtime_lock:
        _runtime = rt


_logged: set[str] = set()


def log_once(key: str, msg: str, *args: Any) -> None:
    if key not in _logged:
        _logged.add(key)
        logger.warning(msg, *args, exc_info=sys.exc_info()[0] is not None)


def safe(default: Any = None) -> Callable[[F], F]:
    """Decorator for instrumentation internals: an exception is logged once and swallowed."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except Exception:
                log_once(fn.__qualname__, "rag-otel: instrumentation error in %s (ignored)", fn.__qualname__)
                return default

        return wrapper  # type: ignore[return-value]

    return deco


_CURRENT = object()  # record_model_call's default query: the one current in the context
INT64_MAX = 2**63 - 1  # OTLP carries integers as int64: one bigger value fails its whole export


def clamp_tokens(rt: Runtime, operation: str, counts: dict[str, int | None]) -> bool:
    """Clamp token counts into [0, int64 max] in place, counting and logging each; True if any was.

    Why: a provider (or a bug) reporting 2**70 tokens would make the OTLP encoder reject the span
    batch and the metrics export holding it; a negative count would subtract cost.  The call then
    gets no cost (billing 2**63 tokens would swamp every cost total) and its query's cost is marked
    incomplete, as for an unpriced model."""
    clamped = False
    for key, value in counts.items():
        if value is None or 0 <= value <= INT64_MAX:
            continue
        reason = "negative" if value < 0 else "above_int64_max"
        counts[key] = 0 if value < 0 else INT64_MAX
        clamped = True
        rt.instruments.usage_clamped.add(1, {semconv.GEN_AI_OPERATION_NAME: operation,
                                             semconv.RAG_CLAMP_REASON: reason})
        log_once(f"clamp.{reason}", "rag-otel: a token count out of range was clamped (%s=%s, %s); "
                 "counted in rag.usage.clamped", key, value, reason)
    return clamped


@safe()
def record_model_call(
    span: Span | None,
    *,
    operation: str,
    provider: str | None,
    request_model: str | None,
    response_model: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cached_input_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    duration: float | None = None,
    error_type: str | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    time_to_first_chunk: float | None = None,
    metric_attributes: dict[str, Any] | None = None,
    runtime: Runtime | None = None,
    query: QueryState | object | None = _CURRENT,
    counted: bool = True,
) -> float | None:
    """Attach usage and cost to an LLM/embeddings span, record the GenAI metrics, and add the
    cost to the enclosing ``rag.query``.  Returns the cost in USD, or ``None`` when unknown.

    A hot caller that already knows them may pass ``metric_attributes`` (then provider, response
    model, server and error type are taken from it, not from the keywords), the ``runtime``, and
    the ``query`` to add the cost to (``None``: none), saving the rebuild and context look-ups.

    ``counted=False`` (a wrapper whose child model call of the same kind counted the usage): the
    tokens stay on the span with ``rag.usage.counted_by_child``, but no cost, token or cost metric
    and nothing added to the query; the duration is still recorded."""
    rt = runtime or get_runtime()
    model = response_model or request_model
    clamped = False
    for v in (input_tokens, output_tokens, cached_input_tokens, reasoning_tokens):
        # the hot path pays four comparisons (no call, no dict) unless a count is out of range
        if v is None or 0 <= v <= INT64_MAX:
            continue
        counts = {"input": input_tokens, "output": output_tokens, "cached": cached_input_tokens,
                  "reasoning": reasoning_tokens}
        clamped = clamp_tokens(rt, operation, counts)
        input_tokens, output_tokens = counts["input"], counts["output"]
        cached_input_tokens, reasoning_tokens = counts["cached"], counts["reasoning"]
        break
    if metric_attributes is not None:
        attrs = metric_attributes
    else:
        attrs = {semconv.GEN_AI_OPERATION_NAME: operation}
        if provider:
            attrs[semconv.GEN_AI_PROVIDER_NAME] = provider
        if request_model:
            attrs[semconv.GEN_AI_REQUEST_MODEL] = request_model
        if response_model:
            attrs[semconv.GEN_AI_RESPONSE_MODEL] = response_model
        if server_address:
            attrs[semconv.SERVER_ADDRESS] = server_address
        if server_port:
            attrs[semconv.SERVER_PORT] = server_port
        if error_type:
            attrs[semconv.ERROR_TYPE] = error_type

    cost: float | None = None
    tokens_known = input_tokens is not None or output_tokens is not None
    if tokens_known and counted and not clamped:  # a clamped count is no usage to bill: no cost
        price = rt.prices.lookup(model) or (rt.prices.lookup(request_model) if request_model else None)
        if price is not None:
            cost = price.cost(
                input_tokens=input_tokens or 0,
                output_tokens=output_tokens or 0,
                cached_input_tokens=cached_input_tokens or 0,
                reasoning_tokens=reasoning_tokens or 0,
            )
        elif model:
            rt.note_unknown_model(model)

    if span is not None and span.is_recording():
        span_attrs: dict[str, Any] = {}  # one set_attributes: one span lock, not one per value
        if input_tokens is not None:
            span_attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        if output_tokens is not None:
            span_attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        if cached_input_tokens is not None:
            span_attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached_input_tokens
        if reasoning_tokens is not None:
            span_attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning_tokens
        if clamped:
            span_attrs[semconv.RAG_USAGE_CLAMPED] = True
        if time_to_first_chunk is not None:
            span_attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = time_to_first_chunk
        if response_model:
            span_attrs[semconv.GEN_AI_RESPONSE_MODEL] = response_model
        if cost is not None:
            span_attrs[semconv.GEN_AI_USAGE_COST] = cost
        elif not counted:
            span_attrs[semconv.RAG_USAGE_COUNTED_BY_CHILD] = True
        elif tokens_known and model and not clamped:
            span_attrs[semconv.RAG_COST_UNKNOWN_MODEL] = True
        if span_attrs:
            span.set_attributes(span_attrs)

    ins = rt.instruments
    if ins.v0_1 is not None:
        ins.v0_1.record_model_call(
            operation, attrs, duration=duration, time_to_first_chunk=time_to_first_chunk, input_tokens=input_tokens,
            output_tokens=output_tokens if operation != semconv.OP_EMBEDDINGS else None,
            cached_input_tokens=cached_input_tokens, reasoning_tokens=reasoning_tokens, counted=counted)
    if ins.v1_41:
        if duration is not None:
            ins.operation_duration.record(duration, attrs)
        if time_to_first_chunk is not None:
            ins.time_to_first_chunk.record(time_to_first_chunk, attrs)
        if counted and input_tokens is not None:
            ins.token_usage.record(input_tokens, {**attrs, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT})
        if counted and output_tokens is not None and operation != semconv.OP_EMBEDDINGS:
            ins.token_usage.record(output_tokens, {**attrs, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT})
    if not counted:
        return None
    if cost:
        ins.cost.add(cost, attrs)

    if tokens_known:
        q = current_query.get() if query is _CURRENT else query
        if q is not None:
            q.add_usage(cost, input_tokens or 0, output_tokens or 0)  # type: ignore[union-attr]
    return cost
