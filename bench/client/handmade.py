"""The honest floor: the spans and metrics rag-otel emits, written by hand against the bare OTel SDK.

No rag_otel import: names come from ``src/rag_otel/semconv.py`` loaded as a plain file (the one
place for names, so both contenders emit the same ones) and prices from ``pricing.yaml``. Written
the way a careful engineer would by hand: instruments created once, no generic machinery.
"""

from __future__ import annotations

import contextvars
import importlib.util
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

_SRC = Path(__file__).resolve().parents[2] / "src" / "rag_otel"


def _load_semconv() -> Any:
    spec = importlib.util.spec_from_file_location("bench_semconv", _SRC / "semconv.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sc = _load_semconv()


def _load_prices() -> dict[str, tuple[float, float, float, float]]:
    """model -> USD per token (input, cached input, output, reasoning), from the bundled table."""
    table = yaml.safe_load((_SRC / "pricing.yaml").read_text())["models"]
    out = {}
    for name, p in table.items():
        inp, outp = float(p.get("input", 0)) * 1e-6, float(p.get("output", 0)) * 1e-6
        out[name] = (inp, float(p.get("cached_input", p.get("input", 0))) * 1e-6, outp,
                     float(p.get("reasoning", p.get("output", 0))) * 1e-6)
    return out


PRICES = _load_prices()


@dataclass
class _Query:
    cost: float = 0.0
    documents: int = 0


_current: contextvars.ContextVar[_Query | None] = contextvars.ContextVar("handmade_query", default=None)


class _Retrieval:
    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.docs: list[tuple[str, float]] = []

    def documents(self, docs: list[tuple[str, float]]) -> None:
        self.docs = docs


class HandMade:
    """Hooks (root, retrieve, chat, stream, embed) producing rag-otel's spans and metrics by hand."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("handmade")
        meter = metrics.get_meter("handmade")
        d, t = list(sc.DURATION_BUCKETS), list(sc.TOKEN_BUCKETS)
        self.duration = meter.create_histogram(sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, unit="s",
                                               explicit_bucket_boundaries_advisory=d)
        self.tokens = meter.create_histogram(sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}",
                                             explicit_bucket_boundaries_advisory=t)
        self.ttfc = meter.create_histogram(sc.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK, unit="s",
                                           explicit_bucket_boundaries_advisory=d)
        self.query_duration = meter.create_histogram(sc.METRIC_RAG_QUERY_DURATION, unit="s",
                                                     explicit_bucket_boundaries_advisory=d)
        self.queries = meter.create_counter(sc.METRIC_RAG_QUERIES, unit="{query}")
        self.cost = meter.create_counter(sc.METRIC_RAG_COST, unit="USD")
        self.in_flight = meter.create_up_down_counter(sc.METRIC_RAG_QUERIES_IN_FLIGHT, unit="{query}")
        self.retrieved = meter.create_histogram(
            sc.METRIC_RAG_RETRIEVED_DOCUMENTS, unit="{document}",
            explicit_bucket_boundaries_advisory=list(sc.DOCUMENT_COUNT_BUCKETS))

    # --- root and retrieval ------------------------------------------------------------------
    @contextmanager
    def root(self, question: str) -> Iterator[None]:
        q = _Query()
        token = _current.set(q)
        start = time.perf_counter()
        self.in_flight.add(1)
        status = "ok"
        with self.tracer.start_as_current_span(sc.SPAN_RAG_QUERY, kind=SpanKind.INTERNAL,
                                               attributes={sc.RAG_CONTENT_CAPTURE: "none"}) as span:
            try:
                yield
            except BaseException as e:
                status = "error"
                span.set_attribute(sc.ERROR_TYPE, type(e).__qualname__)
                raise
            finally:
                _current.reset(token)
                if q.cost:
                    span.set_attribute(sc.GEN_AI_USAGE_COST, q.cost)
                if q.documents:
                    span.set_attribute(sc.RAG_DOCUMENTS_COUNT, q.documents)
                attrs = {sc.RAG_QUERY_STATUS: status}
                self.query_duration.record(time.perf_counter() - start, attrs)
                self.queries.add(1, attrs)
                self.in_flight.add(-1)

    @contextmanager
    def retrieve(self, data_source: str, top_k: int) -> Iterator[_Retrieval]:
        with self.tracer.start_as_current_span(
            f"{sc.OP_RETRIEVAL} {data_source}", kind=SpanKind.CLIENT,
            attributes={sc.GEN_AI_OPERATION_NAME: sc.OP_RETRIEVAL, sc.GEN_AI_DATA_SOURCE_ID: data_source,
                        sc.GEN_AI_REQUEST_TOP_K: top_k},
        ) as span:
            r = _Retrieval(span)
            yield r
            span.set_attribute(sc.RAG_DOCUMENTS_COUNT, len(r.docs))
            span.set_attribute(sc.GEN_AI_RETRIEVAL_DOCUMENTS,
                               json.dumps([{"id": i, "score": s} for i, s in r.docs]))
            self.retrieved.record(len(r.docs), {sc.GEN_AI_OPERATION_NAME: sc.OP_RETRIEVAL})
            q = _current.get()
            if q is not None:
                q.documents += len(r.docs)

    # --- model calls -------------------------------------------------------------------------
    def _start(self, op: str, client: Any, kw: dict[str, Any]) -> tuple[trace.Span, dict[str, Any]]:
        model = kw.get("model", "")
        url = urlsplit(str(client.base_url))
        attrs = {sc.GEN_AI_OPERATION_NAME: op, sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
                 sc.GEN_AI_REQUEST_MODEL: model, sc.SERVER_ADDRESS: url.hostname, sc.SERVER_PORT: url.port}
        span_attrs = dict(attrs)
        if op == sc.OP_CHAT:
            span_attrs[sc.GEN_AI_REQUEST_STREAM] = bool(kw.get("stream"))
            if "temperature" in kw:
                span_attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = kw["temperature"]
            if "max_tokens" in kw:
                span_attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = kw["max_tokens"]
        span = self.tracer.start_span(f"{op} {model}", kind=SpanKind.CLIENT, attributes=span_attrs)
        return span, attrs

    def _finish(self, span: trace.Span, attrs: dict[str, Any], start: float, *, response_model: str | None,
                response_id: str | None, finish_reasons: list[str] | None, usage: Any,
                ttfc: float | None = None) -> None:
        """Usage, cost, metrics and the root's totals; then end the span."""
        if response_model:
            span.set_attribute(sc.GEN_AI_RESPONSE_MODEL, response_model)
            attrs = {**attrs, sc.GEN_AI_RESPONSE_MODEL: response_model}
        if response_id:
            span.set_attribute(sc.GEN_AI_RESPONSE_ID, response_id)
        if finish_reasons:
            span.set_attribute(sc.GEN_AI_RESPONSE_FINISH_REASONS, finish_reasons)
        chat = attrs[sc.GEN_AI_OPERATION_NAME] == sc.OP_CHAT
        cost = None
        if usage is not None:
            inp = usage.prompt_tokens or 0
            out = getattr(usage, "completion_tokens", 0) or 0
            pd = getattr(usage, "prompt_tokens_details", None)
            cd = getattr(usage, "completion_tokens_details", None)
            cached = (pd.cached_tokens or 0) if pd is not None else 0
            reasoning = (cd.reasoning_tokens or 0) if cd is not None else 0
            span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, inp)
            if chat:
                span.set_attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, out)
                span.set_attribute(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cached)
                span.set_attribute(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning)
            price = PRICES.get(response_model or attrs[sc.GEN_AI_REQUEST_MODEL])
            if price is not None:
                cost = ((inp - cached) * price[0] + cached * price[1]
                        + (out - reasoning) * price[2] + reasoning * price[3])
                span.set_attribute(sc.GEN_AI_USAGE_COST, cost)
                self.cost.add(cost, attrs)
            self.tokens.record(inp, {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT})
            if chat:
                self.tokens.record(out, {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT})
            q = _current.get()
            if q is not None:
                q.cost += cost or 0.0
        if ttfc is not None:
            span.set_attribute(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, ttfc)
            self.ttfc.record(ttfc, attrs)
        self.duration.record(time.perf_counter() - start, attrs)
        span.end()

    def _fail(self, span: trace.Span, attrs: dict[str, Any], start: float, e: BaseException) -> None:
        err = type(e).__qualname__
        span.set_attribute(sc.ERROR_TYPE, err)
        span.set_status(Status(StatusCode.ERROR, str(e)))
        self.duration.record(time.perf_counter() - start, {**attrs, sc.ERROR_TYPE: err})
        span.end()

    def chat(self, client: Any, **kw: Any) -> Any:
        span, attrs = self._start(sc.OP_CHAT, client, kw)
        start = time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False):
                resp = client.chat.completions.create(**kw)
        except BaseException as e:
            self._fail(span, attrs, start, e)
            raise
        self._finish(span, attrs, start, response_model=resp.model, response_id=resp.id,
                     finish_reasons=[c.finish_reason for c in resp.choices], usage=resp.usage)
        return resp

    def embed(self, client: Any, **kw: Any) -> Any:
        span, attrs = self._start(sc.OP_EMBEDDINGS, client, kw)
        start = time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False):
                resp = client.embeddings.create(**kw)
        except BaseException as e:
            self._fail(span, attrs, start, e)
            raise
        self._finish(span, attrs, start, response_model=resp.model, response_id=None, finish_reasons=None,
                     usage=resp.usage)
        return resp

    def stream(self, client: Any, **kw: Any) -> Iterator[Any]:
        """A generator over the chunks: per chunk only a few attribute reads (the per-chunk floor)."""
        span, attrs = self._start(sc.OP_CHAT, client, kw)
        start = time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False):
                stream = client.chat.completions.create(**kw)
        except BaseException as e:
            self._fail(span, attrs, start, e)
            raise
        ttfc = model = rid = usage = None
        finish: list[str] = []
        try:
            for chunk in stream:
                if ttfc is None:
                    ttfc = time.perf_counter() - start
                    model, rid = chunk.model, chunk.id
                for c in chunk.choices:
                    if c.finish_reason:
                        finish.append(c.finish_reason)
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        except BaseException as e:
            self._fail(span, attrs, start, e)
            raise
        self._finish(span, attrs, start, response_model=model, response_id=rid, finish_reasons=finish,
                     usage=usage, ttfc=ttfc)
