"""Auto-instrumentation of the ``openai`` Python SDK (1.x to 3.x): chat completions and
embeddings, sync and async, streamed or not, as GenAI ``CLIENT`` spans with usage and cost.

Patching is by dotted path with wrapt, undone by ``uninstrument()``.  Every line of ours in a
wrapper is guarded: the SDK's result and exceptions reach the caller unchanged, and a bug here is
logged once and swallowed.  When another instrumentation (the official GenAI one, OpenLLMetry,
OpenInference, OpenLIT, Langfuse) already wraps the same methods, our spans step aside so no call
is counted twice.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import ipaddress
import logging
from collections.abc import Collection, Iterator
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from wrapt import wrap_function_wrapper

from rag_otel import semconv
from rag_otel.sdk.instrumentors import _openai_responses as responses_api
from rag_otel.sdk.instrumentors._openai_raw import AsyncRawResponse, RawResponse, raw_mode, read_body
from rag_otel.sdk.instrumentors._openai_stream import AsyncChatStream, ChatStream, StreamState
from rag_otel.sdk.runtime import (
    QUERY_KEY,
    Runtime,
    current_query,
    get_runtime,
    log_once,
    model_scope,
    record_model_call,
)

# The unguarded body of ``record_model_call``: ``_Call._record`` guards it itself (one call less per call).
_record_model_call = record_model_call.__wrapped__

logger = logging.getLogger("rag_otel")

_CHAT_MODULE = "openai.resources.chat.completions"
_EMBEDDINGS_MODULE = "openai.resources.embeddings"
_BETA_CHAT_MODULE = "openai.resources.beta.chat.completions"
_RESPONSES_MODULE = "openai.resources.responses.responses"
_RESPONSES = "responses"  # a chat span made from the Responses API (operation stays "chat")
# (module, class, method, operation, is async). ``parse`` posts by itself (it does not call
# ``create``) in openai 1.x-3.x, so it is wrapped on its own; ``stream()`` calls ``create``.
_TARGETS = (
    (_CHAT_MODULE, "Completions", "create", semconv.OP_CHAT, False),
    (_CHAT_MODULE, "AsyncCompletions", "create", semconv.OP_CHAT, True),
    (_CHAT_MODULE, "Completions", "parse", semconv.OP_CHAT, False),
    (_CHAT_MODULE, "AsyncCompletions", "parse", semconv.OP_CHAT, True),
    # openai 1.x before beta.chat became chat: its own parse, posting by itself (absent later: skipped)
    (_BETA_CHAT_MODULE, "Completions", "parse", semconv.OP_CHAT, False),
    (_BETA_CHAT_MODULE, "AsyncCompletions", "parse", semconv.OP_CHAT, True),
    (_RESPONSES_MODULE, "Responses", "create", _RESPONSES, False),
    (_RESPONSES_MODULE, "AsyncResponses", "create", _RESPONSES, True),
    (_RESPONSES_MODULE, "Responses", "parse", _RESPONSES, False),  # posts by itself, like chat's parse
    (_RESPONSES_MODULE, "AsyncResponses", "parse", _RESPONSES, True),
    (_EMBEDDINGS_MODULE, "Embeddings", "create", semconv.OP_EMBEDDINGS, False),
    (_EMBEDDINGS_MODULE, "AsyncEmbeddings", "create", semconv.OP_EMBEDDINGS, True),
)

# Hosts of OpenAI-compatible APIs -> gen_ai.provider.name well-known values.
_KNOWN_HOSTS = {
    "api.openai.com": semconv.PROVIDER_OPENAI,
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.anthropic.com": "anthropic",
    "api.cohere.ai": "cohere",
    "api.cohere.com": "cohere",
    "generativelanguage.googleapis.com": "gcp.gemini",
}
_LOCAL_PROVIDER = "openai_compatible"  # loopback or a bare IP: the host names no provider

# Module prefixes of other instrumentations that wrap the same openai methods -> a readable name.
_PEERS = (
    ("opentelemetry.instrumentation.genai.openai", "opentelemetry-instrumentation-genai-openai"),
    ("opentelemetry.instrumentation.openai_v2", "opentelemetry-instrumentation-openai-v2"),
    ("opentelemetry.instrumentation.openai", "opentelemetry-instrumentation-openai (OpenLLMetry)"),
    ("openinference.instrumentation.openai", "openinference-instrumentation-openai"),
    ("openlit", "openlit"),
    ("langfuse", "langfuse"),
)
_OURS = __name__


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """``OpenAIInstrumentor().instrument()``; optional ``provider_name=`` forces the provider.

    Spans and metrics go through rag-otel's runtime (``configure()`` installs it over the same
    providers it passes here), like every rag-otel instrumentor, so tests and apps that swap the
    runtime see one consistent set of providers.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.0",)

    def _instrument(self, **kwargs: Any) -> None:
        forced = kwargs.get("provider_name")
        for module, cls_name, method, operation, is_async in _TARGETS:
            factory = _async_wrapper if is_async else _sync_wrapper
            try:
                wrap_function_wrapper(module, f"{cls_name}.{method}", factory(operation, method, forced))
            except (ImportError, AttributeError) as e:  # an openai without it (old parse): skip, say so
                logger.debug("rag-otel: cannot instrument %s.%s.%s: %s", module, cls_name, method, e)

    def _uninstrument(self, **kwargs: Any) -> None:
        for module, cls_name, method, _, _ in _TARGETS:
            try:
                owner = getattr(importlib.import_module(module), cls_name, None)
            except ImportError:  # the beta module of openai 1.x only, responses before openai 1.66
                continue
            if owner is not None:
                _unwrap_ours(owner, method)


def _unwrap_ours(owner: type, name: str) -> None:
    """Remove only our wrapper, even when another tool wrapped on top of it later."""
    parent: Any = None
    obj = owner.__dict__.get(name)
    while obj is not None and getattr(obj, "_self_wrapper", None) is not None:
        if _wrapper_module(obj) == _OURS:
            if parent is None:
                setattr(owner, name, obj.__wrapped__)
            else:
                parent.__wrapped__ = obj.__wrapped__
            return
        parent, obj = obj, obj.__wrapped__


# --- what we know before the call ---------------------------------------------------------------
class _Call:
    """One in-flight model call: its span, start time and the attributes its metrics share."""

    __slots__ = ("capture", "ended", "metric_attrs", "operation", "query", "raw", "request_model", "responses",
                 "runtime", "scope", "span", "start", "usage_recorded")

    def __init__(self, runtime: Runtime, span: Span, operation: str, request_model: str | None,
                 metric_attrs: dict[str, Any], capture: bool, raw: str | None = None,
                 ctx: otel_context.Context | None = None) -> None:
        self.runtime = runtime
        self.span = span
        self.operation = operation
        self.request_model = request_model
        self.metric_attrs = metric_attrs  # operation, provider, request model, server: built once at start
        self.capture = capture
        self.raw = raw  # with_raw_response ("true") / with_streaming_response ("stream") / None
        self.responses = False  # the Responses API, not chat completions
        self.ended = False
        if ctx is None:
            ctx = otel_context.get_current()
        self.query = ctx.get(QUERY_KEY)  # a stream may be read elsewhere: its cost stays with this query
        # an app's generate()/embed() around this call: told when it ends, so its usage is not counted twice
        self.scope = model_scope(operation, ctx)
        if self.scope is not None:
            self.scope.child_started()
        self.usage_recorded = False
        self.start = perf_counter()

    def record(self, *, response_model: str | None = None, usage: Any = None,
               error: BaseException | None = None, first_chunk_at: float | None = None) -> None:
        """Usage, cost and metrics via ``record_model_call``, then end the span (always, once)."""
        if self.ended:
            return
        try:
            self._record(response_model, usage, error, first_chunk_at)
        except Exception:
            log_once("openai.record", "rag-otel: cannot record an openai call (span ended without it)")
        finally:
            self.close()

    def close(self) -> None:
        """End the span if nothing else did; the last word on every path, never raises."""
        if not self.ended:
            self.ended = True
            try:
                self.span.end()
            except Exception:
                log_once("openai.end", "rag-otel: cannot end an openai span (ignored)")
            if self.scope is not None:
                self.scope.child_ended(self.usage_recorded)

    def _record(self, response_model: str | None, usage: Any, error: BaseException | None,
                first_chunk_at: float | None) -> None:
        now = perf_counter()
        input_tokens = output_tokens = cached = reasoning = None
        if usage is not None:  # (``type(v) is int`` first: the usual case pays no call to _int)
            input_tokens = getattr(usage, "prompt_tokens", None)
            if input_tokens is not None and type(input_tokens) is not int:
                input_tokens = _int(input_tokens)
            output_tokens = getattr(usage, "completion_tokens", None)
            if output_tokens is not None and type(output_tokens) is not int:
                output_tokens = _int(output_tokens)
            details = getattr(usage, "prompt_tokens_details", None)
            if details is not None:
                cached = _int(getattr(details, "cached_tokens", None))
            details = getattr(usage, "completion_tokens_details", None)
            if details is not None:
                reasoning = _int(getattr(details, "reasoning_tokens", None))
        err_type = _error_type(error) if error is not None else None
        attrs = self.metric_attrs
        if response_model:
            attrs[semconv.GEN_AI_RESPONSE_MODEL] = response_model
        if err_type:
            attrs[semconv.ERROR_TYPE] = err_type
        # the cost sums onto the caller's query, wherever the call (or its stream) ends
        try:
            _record_model_call(
                self.span,
                operation=self.operation,
                provider=None,
                request_model=self.request_model,
                response_model=response_model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached,
                reasoning_tokens=reasoning,
                duration=now - self.start,
                time_to_first_chunk=None if first_chunk_at is None else first_chunk_at - self.start,
                metric_attributes=attrs,
                runtime=self.runtime,
                query=self.query,
            )
        except Exception:  # as record_model_call's own guard: the rest of the span still gets written
            log_once("record_model_call", "rag-otel: instrumentation error in %s (ignored)", "record_model_call")
        self.usage_recorded = input_tokens is not None or output_tokens is not None
        # an answer (or part of one) came back, so tokens were billed, but we were not told how many
        if not self.usage_recorded and (error is None or first_chunk_at is not None):
            self._usage_missing()
        if error is not None and self.span.is_recording():
            self.span.set_attribute(semconv.ERROR_TYPE, err_type or "_OTHER")
            self.span.set_status(Status(StatusCode.ERROR, str(error)[:256]))
            self.span.record_exception(error)

    def _usage_missing(self) -> None:
        if self.span.is_recording():
            self.span.set_attribute(semconv.RAG_USAGE_MISSING, True)
        q = self.query
        if q is not None:
            q.usage_missing = True


def _int(v: Any) -> int | None:
    """``v`` when it is an int (not a bool), else None; the exact-type test answers the usual case."""
    if type(v) is int:
        return v
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _num(v: Any) -> float | int | None:
    """``v`` when it is an int or float (not a bool), else None."""
    t = type(v)
    if t is int or t is float:
        return v
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _error_type(e: BaseException) -> str:
    """The HTTP status for API status errors (``"429"``), else the exception's class name."""
    status = getattr(e, "status_code", None)
    return str(status) if isinstance(status, int) else type(e).__qualname__


@functools.lru_cache(maxsize=256)
def provider_for_host(host: str, azure: bool = False) -> str:
    """``gen_ai.provider.name`` from the base URL's host (see docs/openai.md for the rules)."""
    host = host.lower().rstrip(".")
    if azure or host.endswith(".openai.azure.com"):
        return semconv.PROVIDER_AZURE_OPENAI
    if host in _KNOWN_HOSTS:
        return _KNOWN_HOSTS[host]
    if host.endswith((".services.ai.azure.com", ".models.ai.azure.com", ".inference.ai.azure.com")):
        return "azure.ai.inference"
    if not host or host == "localhost" or host.endswith(".localhost"):
        return _LOCAL_PROVIDER
    try:
        ipaddress.ip_address(host.strip("[]"))
        return _LOCAL_PROVIDER
    except ValueError:
        pass
    labels = [label for label in host.split(".") if label]
    if len(labels) == 1:
        return labels[0]  # a bare service name, e.g. "vllm" or "ollama" in a compose network
    # The registrable name: "api.together.xyz" -> "together"; "x.example.co.uk" -> "example".
    if len(labels) > 2 and labels[-2] in ("co", "com", "net", "org", "ac", "gov"):
        return labels[-3]
    return labels[-2]


def _endpoint(instance: Any, forced: str | None) -> tuple[str, str | None, int | None]:
    """(provider, server.address, server.port) of the resource's client."""
    client = getattr(instance, "_client", None)
    # ``_base_url`` first: openai 3's ``base_url`` property costs ~10 µs (an import per access).
    url = getattr(client, "_base_url", None) or getattr(client, "base_url", None)
    host = getattr(url, "host", None) or None
    port = getattr(url, "port", None)
    if port is None and host:
        port = 443 if getattr(url, "scheme", "https") == "https" else 80
    if forced:
        return forced, host, port
    azure = type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI")
    return provider_for_host(host or "", azure), host, port


# --- duplicate detection -------------------------------------------------------------------------
def _wrapper_module(proxy: Any) -> str:
    wrapper = proxy._self_wrapper
    if isinstance(wrapper, functools.partial):
        wrapper = wrapper.func
    return getattr(wrapper, "__module__", None) or type(wrapper).__module__


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


_peer_classes: dict[str, list[type]] = {}


def _peer_active(prefix: str) -> bool:
    """False when the peer's ``BaseInstrumentor`` says it was uninstrumented: its wrapper may stay
    in the chain (another tool's ``unwrap`` took ours instead), passing calls through."""
    instrumentors = _peer_classes.get(prefix)
    if not instrumentors:  # found once, a class stays: only a miss walks the subclass tree again
        instrumentors = [c for c in _subclasses(BaseInstrumentor) if _in_package(c.__module__, prefix)]
        _peer_classes[prefix] = instrumentors
    if not instrumentors:
        return True  # not a BaseInstrumentor (e.g. a plain wrapt patch): trust the wrapper
    return any(getattr(c, "_instance", None) is not None and c._instance.is_instrumented_by_opentelemetry
               for c in instrumentors)


def _static_attr(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


def _peers_in_chain(obj: Any) -> tuple[tuple[str, str], ...]:
    """Every (prefix, name) of a known peer wrapping ``obj``, outermost first, active or not."""
    found = []
    while obj is not None and getattr(obj, "_self_wrapper", None) is not None:
        module = _wrapper_module(obj)
        found.extend(peer for peer in _PEERS if _in_package(module, peer[0]))
        obj = obj.__wrapped__
    return tuple(found)


def _peer_in_chain(obj: Any) -> str | None:
    """The first active peer wrapping ``obj``, else None."""
    return next((name for prefix, name in _peers_in_chain(obj) if _peer_active(prefix)), None)


# (resource class, method, client class) -> (method attribute, request attribute, peers in their chains).
# Instrumenting or uninstrumenting replaces those class attributes, so a changed identity means a
# new walk; whether a found peer is still active is asked on every call (it can change in place).
_peer_cache: dict[tuple[type, str, type], tuple[Any, Any, tuple[tuple[str, str], ...]]] = {}


def peer_instrumentation(instance: Any, method: str = "create") -> str | None:
    """The other instrumentation already wrapping this resource's ``method`` or its client's
    ``request`` (where OpenInference hooks in), else None."""
    cls = type(instance)
    client_cls = type(getattr(instance, "_client", None))
    target = _static_attr(cls, method)
    request = _static_attr(client_cls, "request")
    key = (cls, method, client_cls)
    cached = _peer_cache.get(key)
    if cached is None or cached[0] is not target or cached[1] is not request:
        cached = (target, request, _peers_in_chain(target) + _peers_in_chain(request))
        _peer_cache[key] = cached
    for prefix, name in cached[2]:
        if _peer_active(prefix):
            return name
    return None


_announced: set[str] = set()


def _step_aside(peer: str) -> None:
    """Mark the enclosing query and say once why this call has no rag-otel LLM span."""
    if peer not in _announced:
        _announced.add(peer)
        logger.warning(
            "rag-otel: openai is already instrumented by %s; rag-otel emits no openai spans, "
            "token or cost metrics of its own so nothing is counted twice", peer,
        )
    q = current_query.get()
    if q is not None and q.span.is_recording():
        q.span.set_attribute(semconv.RAG_INSTRUMENTATION_SKIPPED, f"openai:{peer}")


# --- span start ----------------------------------------------------------------------------------
def _begin(forced: str | None, operation: str, method: str, instance: Any,
           kwargs: dict[str, Any]) -> tuple[_Call, object] | None:
    """Start the span and make it current; None means "just call through"."""
    responses = operation == _RESPONSES
    if responses:
        operation = semconv.OP_CHAT
    try:
        peer = peer_instrumentation(instance, method)
        if peer is not None:
            _step_aside(peer)
            return None
        rt = get_runtime()
        ctx = otel_context.get_current()  # read once: parent, query and scope all come from it
        provider, address, port = _endpoint(instance, forced)
        model = kwargs.get("model")
        model = model if isinstance(model, str) else None
        metric_attrs: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: operation,
            semconv.GEN_AI_PROVIDER_NAME: provider,
        }
        if model:
            metric_attrs[semconv.GEN_AI_REQUEST_MODEL] = model
        if address:
            metric_attrs[semconv.SERVER_ADDRESS] = address
            if port:
                metric_attrs[semconv.SERVER_PORT] = port
        attrs = dict(metric_attrs)
        if responses:
            responses_api.request_attrs(kwargs, attrs, _num)
        elif operation == semconv.OP_CHAT:
            _chat_request_attrs(kwargs, attrs)
        else:
            _embeddings_request_attrs(kwargs, attrs)
        capture = operation == semconv.OP_CHAT and rt.content.enabled
        raw = None if kwargs.get("extra_headers") is None else raw_mode(kwargs)
        span = rt.tracer.start_span(f"{operation} {model}" if model else operation, ctx, SpanKind.CLIENT, attrs)
    except Exception:
        log_once("openai.begin", "rag-otel: cannot start an openai span (call goes on uninstrumented)")
        return None
    call = _Call(rt, span, operation, model, metric_attrs, capture, raw, ctx)
    call.responses = responses
    try:
        if capture and span.is_recording():
            messages = responses_api.input_messages(kwargs) if responses else kwargs.get("messages")
            _capture_input(span, messages, rt)
    except Exception:
        log_once("openai.capture_input", "rag-otel: cannot capture openai input messages (skipped)")
    try:
        return call, otel_context.attach(trace.set_span_in_context(span, ctx))
    except Exception:
        log_once("openai.attach", "rag-otel: cannot make the openai span current (call goes on uninstrumented)")
        call.close()
        return None


# (request keyword, attribute) of the numeric chat parameters, in the order they are written (for
# max_tokens and max_completion_tokens both given, the latter wins); built once, not per call.
_CHAT_NUMBERS = (
    ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
    ("max_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
    ("max_completion_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
)
# as the official openai instrumentation records them (after gen_ai.request.stream)
_CHAT_PENALTIES = (
    ("frequency_penalty", semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", semconv.GEN_AI_REQUEST_PRESENCE_PENALTY),
)


def _chat_request_attrs(kwargs: dict[str, Any], attrs: dict[str, Any]) -> None:
    # (an int or float as given, the usual case, needs no call to _num; an absent key no call at all)
    get = kwargs.get
    for key, name in _CHAT_NUMBERS:
        if (v := get(key)) is not None and ((t := type(v)) is int or t is float or (v := _num(v)) is not None):
            attrs[name] = v
    attrs[semconv.GEN_AI_REQUEST_STREAM] = get("stream") is True
    for key, name in _CHAT_PENALTIES:
        if (v := get(key)) is not None and ((t := type(v)) is int or t is float or (v := _num(v)) is not None):
            attrs[name] = v
    # seed as given, stop as a list, n only when != 1
    if (seed := get("seed")) is not None and (seed := _int(seed)) is not None:
        attrs[semconv.GEN_AI_REQUEST_SEED] = seed
    if (n := get("n")) is not None and (n := _int(n)) is not None and n != 1:
        attrs[semconv.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = get("stop")
    if stop is None:
        pass
    elif isinstance(stop, str):
        attrs[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, (list, tuple)) and stop and all(isinstance(x, str) for x in stop):
        attrs[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    fmt = get("response_format")
    if fmt is None:
        pass
    elif isinstance(fmt, type) or (isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")):
        attrs[semconv.GEN_AI_OUTPUT_TYPE] = "json"
    elif isinstance(fmt, dict) and fmt.get("type") == "text":
        attrs[semconv.GEN_AI_OUTPUT_TYPE] = "text"


def _embeddings_request_attrs(kwargs: dict[str, Any], attrs: dict[str, Any]) -> None:
    fmt = kwargs.get("encoding_format")
    if isinstance(fmt, str):
        attrs[semconv.GEN_AI_REQUEST_ENCODING_FORMATS] = [fmt]
    dims = kwargs.get("dimensions")
    if dims is not None:  # (most calls pass none: no _int call then)
        dims = _int(dims)
        if dims is not None:
            attrs[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dims


# --- content (only when capture is on) -------------------------------------------------------------
def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _capture_input(span: Span, messages: Any, rt: Runtime | None = None) -> None:
    """``gen_ai.system_instructions`` and ``gen_ai.input.messages`` in the spec's JSON shape."""
    if not isinstance(messages, (list, tuple)):
        return
    policy = (rt or get_runtime()).content
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        m = m if isinstance(m, dict) else getattr(m, "model_dump", dict)()
        role = m.get("role")
        if role in ("system", "developer"):
            system.append({"type": "text", "content": _text_of(m.get("content"))})
            continue
        parts: list[dict[str, Any]] = []
        if m.get("content"):
            if role == "tool":
                parts.append({"type": "tool_call_response", "id": m.get("tool_call_id"),
                              "response": _text_of(m.get("content"))})
            else:
                parts.append({"type": "text", "content": _text_of(m.get("content"))})
        for call in m.get("tool_calls") or ():
            fn = call.get("function") or {}
            parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name"),
                          "arguments": fn.get("arguments")})
        out.append({"role": role, "parts": parts})
    if system:
        policy.set(span, semconv.GEN_AI_SYSTEM_INSTRUCTIONS, system)
    policy.set(span, semconv.GEN_AI_INPUT_MESSAGES, out)


def _capture_output(call: _Call, outputs: list[tuple[str, str | None, list[dict[str, Any]]]]) -> None:
    """``gen_ai.output.messages``: one assistant message per choice (text, tool calls, reason)."""
    msgs = [{"role": "assistant", "parts": ([{"type": "text", "content": text}] if text else []) + calls,
             "finish_reason": reason or ""} for text, reason, calls in outputs]
    call.runtime.content.set(call.span, semconv.GEN_AI_OUTPUT_MESSAGES, msgs)


def _tool_call_parts(message: Any) -> list[dict[str, Any]]:
    parts = []
    for call in getattr(message, "tool_calls", None) or ():
        fn = getattr(call, "function", None)
        parts.append({"type": "tool_call", "id": getattr(call, "id", None), "name": getattr(fn, "name", None),
                      "arguments": getattr(fn, "arguments", None)})
    return parts


# --- span end ------------------------------------------------------------------------------------
def _model_of(result: Any) -> str | None:
    model = getattr(result, "model", None)
    return model if isinstance(model, str) and model else None


def _finish_chat(call: _Call, result: Any) -> None:
    try:
        _chat_response_attrs(call, result)
    except Exception:
        log_once("openai.chat_response", "rag-otel: cannot read an openai chat response (usage still recorded)")
    call.record(response_model=_model_of(result), usage=getattr(result, "usage", None))


def _chat_response_attrs(call: _Call, result: Any) -> None:
    span = call.span
    if span.is_recording():
        attrs: dict[str, Any] = {}
        if rid := getattr(result, "id", None):
            attrs[semconv.GEN_AI_RESPONSE_ID] = rid
        choices = getattr(result, "choices", None) or ()
        reasons = [c.finish_reason for c in choices if getattr(c, "finish_reason", None)]
        if reasons:
            attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
        span.set_attributes(attrs)
        if call.capture:
            _capture_output(call, [(_text_of(getattr(c.message, "content", None)), c.finish_reason,
                                    _tool_call_parts(c.message)) for c in choices])


def _finish_stream(call: _Call) -> Any:
    """The ``on_end`` of a streamed chat call."""

    def on_end(state: StreamState, error: BaseException | None) -> None:
        try:
            _stream_response_attrs(call, state)
        except Exception:
            log_once("openai.stream_response", "rag-otel: cannot read an openai stream's end (usage still recorded)")
        call.record(response_model=state.response_model, usage=state.usage, error=error,
                    first_chunk_at=state.first_at)

    return on_end


def _stream_response_attrs(call: _Call, state: StreamState) -> None:
    span = call.span
    if span.is_recording():
        attrs: dict[str, Any] = {}
        if state.response_id:
            attrs[semconv.GEN_AI_RESPONSE_ID] = state.response_id
        if state.finish_reasons:
            attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = [
                state.finish_reasons[i] for i in sorted(state.finish_reasons)
            ]
        span.set_attributes(attrs)
        if call.capture and state.texts:
            _capture_output(call, [("".join(state.texts[i]), state.finish_reasons.get(i), [])
                                   for i in sorted(state.texts)])


def _finish_responses(call: _Call, result: Any) -> None:
    try:
        span = call.span
        if span.is_recording():
            reason = responses_api.finish_reason(result)
            attrs: dict[str, Any] = {}
            if rid := getattr(result, "id", None):
                attrs[semconv.GEN_AI_RESPONSE_ID] = rid
            if reason:
                attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = [reason]
            span.set_attributes(attrs)
            if call.capture:
                _capture_output(call, [(responses_api.output_text(result), reason, [])])
    except Exception:
        log_once("openai.responses", "rag-otel: cannot read an openai Responses result (usage still recorded)")
    call.record(response_model=_model_of(result), usage=responses_api.usage(getattr(result, "usage", None)))


def _after_raw(call: _Call, result: Any) -> Any:
    """A raw response: record from what ``parse()`` gives, now or when the caller parses."""
    try:
        if call.raw == "true" and not getattr(result, "_stream", False):  # body read: record now
            try:
                parsed = result.parse()
            except Exception:  # the caller's own parse() raises the same; usage still comes from the body
                _record_body(call, read_body(result.http_response))
            else:
                _after_parsed(call, parsed)
            return result

        def on_parsed(value: Any) -> Any:
            return _after_parsed(call, value)

        def on_close(body: Any) -> None:
            _record_body(call, body)

        if inspect.iscoroutinefunction(getattr(result, "parse", None)):
            return AsyncRawResponse(result, on_parsed, on_close)
        return RawResponse(result, on_parsed, on_close)
    except Exception:
        log_once("openai.after_raw", "rag-otel: cannot follow a raw openai response (ignored)")
        call.close()
        return result


def _record_body(call: _Call, body: Any) -> None:
    """End the call from a JSON body (None: unread or unreadable, so the usage is missing)."""
    if body is None:
        call.record()
    else:
        _after_parsed(call, body)


def _after_parsed(call: _Call, result: Any) -> Any:
    """End the span for a parsed result, or wrap a stream so it ends later; never raises."""
    try:
        if call.operation == semconv.OP_EMBEDDINGS:  # (inline: the embeddings path is the shortest)
            model = getattr(result, "model", None)
            call.record(response_model=model if isinstance(model, str) and model else None,
                        usage=getattr(result, "usage", None))
            return result
        state_cls = responses_api.ResponsesStreamState if call.responses else StreamState
        if hasattr(result, "__next__") and hasattr(result, "response"):
            return ChatStream(result, state_cls(_finish_stream(call), call.capture))
        if hasattr(result, "__anext__") and hasattr(result, "response"):
            return AsyncChatStream(result, state_cls(_finish_stream(call), call.capture))
        if call.responses:
            _finish_responses(call, result)
        else:
            _finish_chat(call, result)
    except Exception:
        log_once("openai.after", "rag-otel: cannot record an openai response (ignored)")
        call.close()
    return result


def _failed(call: _Call, error: BaseException) -> None:
    call.record(error=error)  # never raises


# --- the wrappers --------------------------------------------------------------------------------
def _sync_wrapper(operation: str, method: str, forced: str | None) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        started = _begin(forced, operation, method, instance, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        call, token = started
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as e:
            _failed(call, e)
            raise
        finally:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:
                log_once("openai.detach", "rag-otel: context detach failed (ignored)")
        if call.raw is not None and hasattr(result, "http_response"):
            return _after_raw(call, result)
        return _after_parsed(call, result)

    return wrapper


def _async_wrapper(operation: str, method: str, forced: str | None) -> Any:
    async def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        started = _begin(forced, operation, method, instance, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        call, token = started
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as e:
            _failed(call, e)
            raise
        finally:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:
                log_once("openai.detach", "rag-otel: context detach failed (ignored)")
        if call.raw is not None and hasattr(result, "http_response"):
            return _after_raw(call, result)
        return _after_parsed(call, result)

    return wrapper
