"""The span API: ``rag_query``, ``retrieve``, ``rerank``, ``embed``, ``generate``.

Each is both a decorator (sync, async, generator and async-generator functions) and a context
manager (``with`` / ``async with``) yielding a :class:`RagSpan` handle to attach documents,
usage, model and answer.  Inside a decorated function the handle is ``current_rag_span()``.

Why hand-written wrappers (and not ``tracer.start_as_current_span``): a streamed answer must
keep its span open until the stream is consumed, closed or fails, and the OTel context must be
attached only while the generator body runs (never across a ``yield``, or the caller would
inherit our span).  The hot path stays cheap: attribute dicts are built once per operation,
content is serialized only when capture is on, and every internal step is guarded so that the
host's result or exception passes through unchanged.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from rag_otel import semconv
from rag_otel.sdk import conventions
from rag_otel.sdk.identity import identity_from_fastapi, request_identity, split_features
from rag_otel.sdk.runtime import (
    ModelScope,
    QueryState,
    Runtime,
    current_query,
    get_runtime,
    in_model_scope,
    log_once,
    model_scope,
    record_model_call,
    safe,
)

__all__ = [
    "RagSpan", "current_rag_query", "current_rag_span", "embed", "generate", "rag_query", "rerank", "retrieve",
]

_HANDLE_KEY = otel_context.create_key("rag_otel.span")
_QUERY_HANDLE_KEY = otel_context.create_key("rag_otel.query_handle")

QUERY, RETRIEVAL, RERANK, EMBEDDINGS, CHAT = "query", "retrieval", "rerank", "embeddings", "chat"
MAX_DOCUMENTS = 100  # entries kept in the documents JSON (the count stays exact), as the retrieval instrumentors
_STATUS_OK = {semconv.RAG_QUERY_STATUS: "ok"}
_STATUS_ERROR = {semconv.RAG_QUERY_STATUS: "error"}


def error_type(exc: BaseException) -> str:
    return type(exc).__qualname__


# --- documents ---------------------------------------------------------------------------------
def _doc_fields(doc: Any) -> tuple[Any, Any, Any]:
    """(id, score, content) from a dict, a ``(doc, score)`` pair, a LangChain/LlamaIndex-like
    object or a bare string; whatever is missing is None (never invented)."""
    if isinstance(doc, tuple) and len(doc) == 2 and isinstance(doc[1], (int, float)) and not isinstance(doc[1], bool):
        i, _, c = _doc_fields(doc[0])
        return i, doc[1], c
    if isinstance(doc, str):
        return None, None, doc
    if isinstance(doc, dict):
        get = doc.get
        meta = get("metadata") if isinstance(get("metadata"), dict) else {}
        ident = get("id", get("doc_id", meta.get("id")))
        return ident, get("score"), get("content", get("text", get("page_content")))
    node = getattr(doc, "node", None)  # LlamaIndex NodeWithScore
    if node is not None:
        return getattr(node, "node_id", None), getattr(doc, "score", None), getattr(node, "text", None)
    meta = getattr(doc, "metadata", None)
    ident = getattr(doc, "id", None)
    if ident is None and isinstance(meta, dict):
        ident = meta.get("id")
    content = getattr(doc, "page_content", None)
    if content is None:
        content = getattr(doc, "text", getattr(doc, "content", None))
    return ident, getattr(doc, "score", None), content


_INFINITIES = (float("inf"), float("-inf"))  # built once: _score runs for every document


def _score(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in _INFINITIES else None


def documents_json(rt: Runtime, docs: Sequence[tuple[Any, Any, Any]], span: Span) -> str:
    """``[{"id", "score", "content"?}]``; content only when captured, sharing the size cap."""
    policy = rt.content
    capture = policy.enabled
    budget = max(64, policy.max_chars // max(1, len(docs))) if capture else 0
    out: list[dict[str, Any]] = []
    truncated = False
    for ident, score, content in docs:
        entry: dict[str, Any] = {"id": None if ident is None else str(ident)}
        s = _score(score)
        if s is not None:
            entry["score"] = s
        if capture and content is not None:
            text, cut = policy.clean(content)
            if cut or len(text) > budget:
                truncated = True
            entry["content"] = text[:budget]
        out.append(entry)
    if truncated:
        span.set_attribute(semconv.RAG_CONTENT_TRUNCATED, True)
    return json.dumps(out, ensure_ascii=False, default=str)


def _as_messages(messages: Any, role: str | None = None) -> Any:
    """OpenAI-style ``[{"role", "content"}]`` or a string -> the GenAI semconv message shape."""
    if isinstance(messages, str):
        return [{"role": role or "user", "parts": [{"type": "text", "content": messages}]}]
    out = []
    for m in messages:
        if isinstance(m, dict) and isinstance(m.get("content"), str) and "parts" not in m:
            out.append({"role": m.get("role", "user"), "parts": [{"type": "text", "content": m["content"]}]})
        else:
            out.append(m)
    return out


# --- the handle ----------------------------------------------------------------------------------
class RagSpan:
    """Handle to one operation's span; every setter is safe to call whatever the span kind."""

    __slots__ = (
        "_answer", "_chunks", "_ctx", "_docs_total", "_ended", "_first_chunk", "_owned", "_parent_scope", "_q",
        "_rt", "_scope", "_start", "_usage", "finish_reasons", "kind", "provider", "request_model", "response_id",
        "response_model", "span",
    )

    def __init__(self, rt: Runtime, kind: str, span: Span, owned: bool) -> None:
        self._rt = rt
        self.kind = kind
        self.span = span
        self._owned = owned
        self._start = time.perf_counter()
        self._q: QueryState | None = None
        self._ctx: otel_context.Context | None = None
        self._ended = False
        self._answer: str | None = None
        self._chunks: list[str] | None = None
        self._first_chunk: float | None = None
        self._usage: dict[str, int] | None = None
        self._docs_total: int | None = None
        self._scope: ModelScope | None = None  # generate()/embed(): the same-kind calls under this one
        self._parent_scope: ModelScope | None = None  # the enclosing generate()/embed() of the same kind
        self.provider: str | None = None
        self.request_model: str | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] | None = None

    # -- setters users call ----------------------------------------------------------------
    @safe()
    def set_attribute(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)

    @safe()
    def set_query(self, text: str) -> None:
        """The user's question (content: only when capture is on)."""
        key = semconv.GEN_AI_RETRIEVAL_QUERY_TEXT if self.kind == RETRIEVAL else semconv.RAG_QUERY_TEXT
        self._rt.content.set(self.span, key, text)

    @safe()
    def set_answer(self, text: Any) -> None:
        """The final answer (content: only when capture is on)."""
        self._answer = text if isinstance(text, str) else str(text)
        if not self._rt.content.enabled:
            return
        if self.kind == CHAT:
            msg = [{"role": "assistant", "parts": [{"type": "text", "content": self._answer}]}]
            self._rt.content.set(self.span, semconv.GEN_AI_OUTPUT_MESSAGES, msg)
        else:
            self._rt.content.set(self.span, semconv.RAG_ANSWER_TEXT, self._answer)

    @safe()
    def set_messages(self, messages: Any, system_instructions: Any = None) -> None:
        """Input messages of a generation (content: only when capture is on)."""
        if not self._rt.content.enabled:
            return
        self._rt.content.set(self.span, semconv.GEN_AI_INPUT_MESSAGES, _as_messages(messages))
        if system_instructions is not None:
            self._rt.content.set(self.span, semconv.GEN_AI_SYSTEM_INSTRUCTIONS, system_instructions)

    @safe()
    def set_documents(
        self,
        documents: Iterable[Any] | None = None,
        *,
        ids: Sequence[Any] | None = None,
        scores: Sequence[Any] | None = None,
        contents: Sequence[Any] | None = None,
    ) -> None:
        """Documents found (retrieve) or kept (rerank): objects/dicts/``(doc, score)`` pairs, or
        parallel ``ids``/``scores``/``contents``.  Ids and scores are always recorded, content
        only when captured."""
        if documents is not None:
            docs = [_doc_fields(d) for d in documents]
        else:
            n = max(len(ids or ()), len(scores or ()), len(contents or ()))
            docs = [
                (ids[i] if ids and i < len(ids) else None,
                 scores[i] if scores and i < len(scores) else None,
                 contents[i] if contents and i < len(contents) else None)
                for i in range(n)
            ]
        self._docs_total = len(docs)
        span = self.span
        if not span.is_recording():
            return
        key = semconv.RAG_RERANK_DOCUMENTS if self.kind == RERANK else semconv.GEN_AI_RETRIEVAL_DOCUMENTS
        span.set_attribute(key, documents_json(self._rt, docs[:MAX_DOCUMENTS], span))
        span.set_attribute(semconv.RAG_DOCUMENTS_COUNT, len(docs))
        if len(docs) > MAX_DOCUMENTS:
            span.set_attribute(semconv.RAG_RETRIEVAL_DOCUMENTS_OMITTED, len(docs) - MAX_DOCUMENTS)

    @safe()
    def set_usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        """Token usage; cost is computed from pricing.yaml when the span ends."""
        u = self._usage if self._usage is not None else {}
        for k, v in (
            ("input_tokens", input_tokens), ("output_tokens", output_tokens),
            ("cached_input_tokens", cached_input_tokens), ("reasoning_tokens", reasoning_tokens),
        ):
            if v is not None:
                u[k] = int(v)
        self._usage = u

    @safe()
    def set_model(
        self, model: str | None = None, *, response_model: str | None = None, provider: str | None = None,
    ) -> None:
        """Request model (renames ``chat``/``embeddings`` spans), response model, provider."""
        if model and model != self.request_model:
            self.request_model = model
            self.span.set_attribute(semconv.GEN_AI_REQUEST_MODEL, model)
            if self.kind in (CHAT, EMBEDDINGS):
                self.span.update_name(f"{self.kind} {model}")
            elif self.kind == RERANK:
                self.span.set_attribute(semconv.RAG_RERANK_MODEL, model)
        if response_model:
            self.response_model = response_model
        if provider:
            self.provider = provider
            self.span.set_attribute(semconv.GEN_AI_PROVIDER_NAME, provider)

    @safe()
    def set_response(self, *, response_id: str | None = None, finish_reasons: Sequence[str] | None = None) -> None:
        if response_id:
            self.response_id = response_id
            self.span.set_attribute(semconv.GEN_AI_RESPONSE_ID, response_id)
        if finish_reasons:
            self.finish_reasons = list(finish_reasons)
            self.span.set_attribute(semconv.GEN_AI_RESPONSE_FINISH_REASONS, self.finish_reasons)

    @safe()
    def add_features(self, *features: str) -> None:
        """Tag the enclosing query with product features (``rag.features``)."""
        q = self._q if self._q is not None else current_query.get()
        if q is not None:
            with q.lock:
                for f in split_features(features):
                    if f not in q.features:
                        q.features.append(f)

    @safe()
    def set_user(self, user_id: str | None = None, session_id: str | None = None,
                 conversation_id: str | None = None) -> None:
        _set_people(self._rt, self.span, user_id, session_id, conversation_id)

    # -- lifecycle (internal) ----------------------------------------------------------------
    def _attach(self) -> object:
        return otel_context.attach(self._ctx) if self._ctx is not None else None

    @staticmethod
    def _detach(token: object) -> None:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def _chunk(self, item: Any) -> None:
        """Called for every streamed item: kept cheap (one branch when not capturing)."""
        if self._first_chunk is None:
            self._first_chunk = time.perf_counter() - self._start
        if self._chunks is not None and isinstance(item, str):
            self._chunks.append(item)

    def _result(self, value: Any) -> None:
        """What a decorated function returned: an answer (query/chat) or documents (retrieve/rerank)."""
        try:
            if self.kind in (RETRIEVAL, RERANK):
                if self._docs_total is None and isinstance(value, (list, tuple)):
                    self.set_documents(value)
            elif (self.kind in (QUERY, CHAT) and self._answer is None and isinstance(value, str)
                  and self._rt.content.enabled):
                self.set_answer(value)
        except Exception:
            log_once("spans._result", "rag-otel: could not read the result of a decorated function (ignored)")

    def _end(self, exc: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            self._finish(exc)
        except Exception:
            log_once("spans._end", "rag-otel: error while ending a span (ignored)")
            if self._owned:
                self.span.end()
        if self._parent_scope is not None:  # on every path: a child left running would mute its parent's usage
            self._parent_scope.child_ended(self._usage_known())

    def _finish(self, exc: BaseException | None) -> None:
        span, kind = self.span, self.kind
        failed = exc is not None and not isinstance(exc, GeneratorExit)
        err = error_type(exc) if failed else None  # type: ignore[arg-type]
        if failed and span.is_recording():
            span.set_attribute(semconv.ERROR_TYPE, err)  # type: ignore[arg-type]
            span.set_status(Status(StatusCode.ERROR, f"{err}: {exc}"[:512]))
            span.record_exception(exc)  # type: ignore[arg-type]
        if self._chunks is not None and self._answer is None and self._chunks:
            self.set_answer("".join(self._chunks))
        duration = time.perf_counter() - self._start
        if kind in (CHAT, EMBEDDINGS):
            self._record_model(duration, err)
        elif kind in (RETRIEVAL, RERANK):
            self._record_documents()
            if kind == RETRIEVAL and (v0_1 := self._rt.instruments.v0_1) is not None:
                a = getattr(span, "attributes", None) or {}  # what retrieve() set (a recording SDK span)
                v0_1.record_retrieval(duration, provider=a.get(semconv.GEN_AI_PROVIDER_NAME),
                                      data_source=a.get(semconv.GEN_AI_DATA_SOURCE_ID), error_type=err)
        elif kind == QUERY:
            self._finish_query(duration, failed)
        if self._owned:
            span.end()

    def _usage_known(self) -> bool:
        """Tokens were recorded here or, for a wrapper, by a model call of the same kind under it."""
        u = self._usage
        if u and ("input_tokens" in u or "output_tokens" in u):
            return True
        return self._scope is not None and self._scope.counted_by_child()

    def _record_model(self, duration: float, err: str | None) -> None:
        u = self._usage or {}
        if self._first_chunk is not None and self.kind == CHAT:
            self.span.set_attribute(semconv.GEN_AI_REQUEST_STREAM, True)
        scope = self._scope
        counted = scope is None or not scope.counted_by_child()
        record_model_call(
            self.span, operation=self.kind, provider=self.provider, request_model=self.request_model,
            response_model=self.response_model, duration=duration, error_type=err,
            time_to_first_chunk=self._first_chunk if self.kind == CHAT else None, query=self._q,
            counted=counted, **u,
        )

    def _record_documents(self) -> None:
        n = self._docs_total
        if n is None or self.kind != RETRIEVAL:
            return
        self._rt.instruments.retrieved_documents.record(n, {semconv.GEN_AI_OPERATION_NAME: semconv.OP_RETRIEVAL})
        q = self._q
        if q is not None:
            with q.lock:
                q.documents += n

    def _finish_query(self, duration: float, failed: bool) -> None:
        q, span, ins = self._q, self.span, self._rt.instruments
        if q is not None and span.is_recording():
            if q.cost:
                span.set_attribute(semconv.GEN_AI_USAGE_COST, q.cost)
            if not q.cost_known:
                span.set_attribute(semconv.RAG_COST_UNKNOWN_MODEL, True)
            if q.usage_missing:
                span.set_attribute(semconv.RAG_USAGE_MISSING, True)
            if q.documents:
                span.set_attribute(semconv.RAG_DOCUMENTS_COUNT, q.documents)
            if q.features:
                span.set_attribute(semconv.RAG_FEATURES, list(q.features))
        status = _STATUS_ERROR if failed else _STATUS_OK
        ins.query_duration.record(duration, status)
        ins.queries.add(1, status)
        ins.query_finished()


def _set_people(rt: Runtime, span: Span, user_id: str | None, session_id: str | None,
                conversation_id: str | None) -> None:
    if user_id:
        key, value = rt.users.attribute(str(user_id)) if rt.users else (semconv.USER_ID, str(user_id))
        span.set_attribute(key, value)
    if session_id:
        span.set_attribute(semconv.SESSION_ID, str(session_id))
    if conversation_id:
        span.set_attribute(semconv.GEN_AI_CONVERSATION_ID, str(conversation_id))


# --- operations: decorator + context manager --------------------------------------------------
class _Operation:
    """One configured operation; ``with`` it, or decorate a function with it."""

    __slots__ = ("_attrs", "_handle", "_kind", "_name", "_query_args", "_span_kind", "_token", "_user_span")

    def __init__(self, kind: str, name: str, span_kind: SpanKind, attrs: dict[str, Any],
                 query_args: dict[str, Any] | None = None, user_span: Span | None = None) -> None:
        self._kind = kind
        self._name = name
        self._span_kind = span_kind
        self._attrs = attrs
        self._query_args = query_args
        self._user_span = user_span
        self._handle: RagSpan | None = None
        self._token: object = None

    # -- opening ---------------------------------------------------------------------------
    def _open(self) -> RagSpan:
        rt = get_runtime()
        try:
            return self._open_in(rt)
        except Exception:
            log_once("spans._open", "rag-otel: could not start a %s span (ignored)", self._kind)
            return RagSpan(rt, self._kind, INVALID_SPAN, owned=False)

    def _open_in(self, rt: Runtime) -> RagSpan:
        parent = otel_context.get_current()
        if self._user_span is not None:
            span, owned = self._user_span, False
            for k, v in self._attrs.items():
                span.set_attribute(k, v)
        else:
            span = rt.tracer.start_span(self._name, parent, self._span_kind, self._attrs)
            owned = True
        h = RagSpan(rt, self._kind, span, owned)
        a = self._attrs
        if self._kind in (CHAT, EMBEDDINGS):
            h.request_model = a.get(semconv.GEN_AI_REQUEST_MODEL)
            h.provider = a.get(semconv.GEN_AI_PROVIDER_NAME)
        if rt.content.enabled:
            h._chunks = [] if self._kind in (QUERY, CHAT) else None
        ctx = trace.set_span_in_context(span, parent)
        if self._kind == QUERY:
            h._q = QueryState(span)
            ctx = otel_context.set_value(_QUERY_HANDLE_KEY, h, current_query.in_context(h._q, ctx))
            try:  # the span has started: a failure here must not leave it open
                self._open_query(rt, h)
            except Exception:
                log_once("spans._open_query", "rag-otel: could not annotate a query span (ignored)")
        else:
            h._q = current_query.get()
        if self._kind in (CHAT, EMBEDDINGS):
            h._scope = ModelScope()
            ctx = in_model_scope(self._kind, h._scope, ctx)
        h._ctx = otel_context.set_value(_HANDLE_KEY, h, ctx)
        parent_scope = model_scope(self._kind, parent)  # None but for chat/embeddings
        if parent_scope is not None:  # last: once started, _end must run to end it
            parent_scope.child_started()
            h._parent_scope = parent_scope
        return h

    def _open_query(self, rt: Runtime, h: RagSpan) -> None:
        rt.instruments.query_started()  # first: _finish_query always counts the end
        args = self._query_args or {}
        span = h.span
        ident = request_identity.get()
        if ident is None:
            ident = identity_from_fastapi(rt.config.telemetry.request_headers)
        if span.is_recording():
            span.set_attribute(semconv.RAG_CONTENT_CAPTURE, rt.content.capture)
            _set_people(
                rt, span,
                args.get("user_id") or (ident.user_id if ident else None),
                args.get("session_id") or (ident.session_id if ident else None),
                args.get("conversation_id") or (ident.conversation_id if ident else None),
            )
            if args.get("query") is not None:
                rt.content.set(span, semconv.RAG_QUERY_TEXT, args["query"])
        feats = args.get("features") or ()
        if ident and ident.features:
            feats = split_features((*feats, *ident.features))
        if feats:
            h._q.features.extend(feats)  # type: ignore[union-attr]
        if _loop_probe_hook is not None:
            _loop_probe_hook()

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> RagSpan:
        h = self._handle = self._open()
        self._token = h._attach()
        return h

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        h, self._handle = self._handle, None
        if h is None:
            return
        RagSpan._detach(self._token)
        h._end(exc)

    async def __aenter__(self) -> RagSpan:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator -------------------------------------------------------------------------
    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        op = self
        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
                h = op._open()
                tok = h._attach()
                try:
                    agen = fn(*args, **kwargs)
                finally:
                    RagSpan._detach(tok)
                sent: Any = None
                thrown: BaseException | None = None
                while True:
                    tok = h._attach()
                    try:
                        item = await (agen.athrow(thrown) if thrown is not None else agen.asend(sent))
                    except StopAsyncIteration:
                        h._end(None)
                        return
                    except BaseException as e:
                        h._end(e)
                        raise
                    finally:
                        RagSpan._detach(tok)
                    h._chunk(item)
                    sent, thrown = None, None
                    try:
                        sent = yield item
                    except GeneratorExit:
                        tok = h._attach()
                        try:
                            await agen.aclose()
                        finally:
                            RagSpan._detach(tok)
                            h._end(None)
                        raise
                    except BaseException as e:
                        thrown = e

            return agen_wrapper

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                h = op._open()
                tok = h._attach()
                try:
                    gen = fn(*args, **kwargs)
                finally:
                    RagSpan._detach(tok)
                sent: Any = None
                thrown: BaseException | None = None
                while True:
                    tok = h._attach()
                    try:
                        item = gen.throw(thrown) if thrown is not None else gen.send(sent)
                    except StopIteration as stop:
                        h._end(None)
                        return stop.value
                    except BaseException as e:
                        h._end(e)
                        raise
                    finally:
                        RagSpan._detach(tok)
                    h._chunk(item)
                    sent, thrown = None, None
                    try:
                        sent = yield item
                    except GeneratorExit:
                        tok = h._attach()
                        try:
                            gen.close()
                        finally:
                            RagSpan._detach(tok)
                            h._end(None)
                        raise
                    except BaseException as e:
                        thrown = e

            return gen_wrapper

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                h = op._open()
                tok = h._attach()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as e:
                    h._end(e)
                    raise
                finally:
                    RagSpan._detach(tok)
                h._result(result)
                h._end(None)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            h = op._open()
            tok = h._attach()
            try:
                result = fn(*args, **kwargs)
            except BaseException as e:
                h._end(e)
                raise
            finally:
                RagSpan._detach(tok)
            h._result(result)
            h._end(None)
            return result

        return wrapper


# Set by system_metrics when the event-loop probe is on: starts it on the first async query.
_loop_probe_hook: Callable[[], None] | None = None


def _decorate_or_configure(fn: Any, make: Callable[[], _Operation]) -> Any:
    return make()(fn) if callable(fn) else make()


def rag_query(
    query: Any = None,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    features: Iterable[str] | None = None,
    span: Span | None = None,
    name: str = semconv.SPAN_RAG_QUERY,
) -> Any:
    """The root ``rag.query`` span (or, with ``span=``, the caller's own span made the root).

    ``@rag_query``, ``@rag_query(features=[...])`` or ``with rag_query("question", user_id=...) as q``.
    User, session and conversation fall back to the request headers read by the FastAPI hook.
    """
    def make() -> _Operation:
        args = {"user_id": user_id, "session_id": session_id, "conversation_id": conversation_id,
                "features": split_features(features), "query": None if callable(query) else query}
        return _Operation(QUERY, name, SpanKind.INTERNAL, {}, args, span)

    return _decorate_or_configure(query, make)


def retrieve(data_source: Any = "vector_store", *, top_k: int | None = None, provider: str | None = None) -> Any:
    """A ``retrieval {data_source}`` CLIENT span; a decorated function's returned list is read as
    its documents (ids, scores, and content when captured)."""
    def make() -> _Operation:
        source = "vector_store" if callable(data_source) else str(data_source)
        attrs: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_RETRIEVAL,
                                 semconv.GEN_AI_DATA_SOURCE_ID: source}
        if top_k is not None:
            conventions.retrieval_top_k(top_k, attrs)
        if provider:
            attrs[semconv.GEN_AI_PROVIDER_NAME] = provider
        return _Operation(RETRIEVAL, f"{semconv.OP_RETRIEVAL} {source}", SpanKind.CLIENT, attrs)

    return _decorate_or_configure(data_source, make)


def rerank(model: Any = None, *, top_n: int | None = None, input_count: int | None = None) -> Any:
    """An INTERNAL ``rerank`` span (the GenAI spec has no reranker span) with ``rag.rerank.*``."""
    def make() -> _Operation:
        attrs: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_RERANK}
        if model and not callable(model):
            attrs[semconv.RAG_RERANK_MODEL] = str(model)
        if top_n is not None:
            attrs[semconv.RAG_RERANK_TOP_N] = top_n
        if input_count is not None:
            attrs[semconv.RAG_RERANK_INPUT_COUNT] = input_count
        return _Operation(RERANK, semconv.OP_RERANK, SpanKind.INTERNAL, attrs)

    return _decorate_or_configure(model, make)


def _model_op(kind: str, model: Any, provider: str | None, extra: dict[str, Any] | None = None) -> _Operation:
    m = None if callable(model) else model
    attrs: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: kind}
    if m:
        attrs[semconv.GEN_AI_REQUEST_MODEL] = str(m)
    if provider:
        attrs[semconv.GEN_AI_PROVIDER_NAME] = provider
    if extra:
        attrs.update(extra)
    return _Operation(kind, f"{kind} {m}" if m else kind, SpanKind.CLIENT, attrs)


def embed(model: Any = None, *, provider: str | None = None) -> Any:
    """An ``embeddings {model}`` CLIENT span; ``set_usage(input_tokens=...)`` prices it."""
    return _decorate_or_configure(model, lambda: _model_op(EMBEDDINGS, model, provider))


def generate(model: Any = None, *, provider: str | None = None, stream: bool | None = None) -> Any:
    """A ``chat {model}`` CLIENT span; decorating a generator streams (time to first chunk,
    span ends when the stream is consumed, closed or fails)."""
    extra = {semconv.GEN_AI_REQUEST_STREAM: stream} if stream is not None else None
    return _decorate_or_configure(model, lambda: _model_op(CHAT, model, provider, extra))


def current_rag_span() -> RagSpan | None:
    """The innermost rag-otel operation's handle (inside a decorated function or ``with`` block)."""
    return otel_context.get_value(_HANDLE_KEY)  # type: ignore[return-value]


def current_rag_query() -> RagSpan | None:
    """The enclosing ``rag_query`` handle, wherever in its tree (threads and tasks included) the caller is."""
    return otel_context.get_value(_QUERY_HANDLE_KEY)  # type: ignore[return-value]
