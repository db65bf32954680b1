"""The openai Responses API (``client.responses.create``) as a ``chat {model}`` span.

Same span, usage, cost and content as a chat completion; what differs is read here: the request
(``input`` as a string or messages, ``instructions``, ``max_output_tokens``), the usage names
(``input_tokens``/``output_tokens`` and their details), the finish reason (the response's
``status``) and the stream, which is typed events rather than chunks: the text from
``response.output_text.delta``, everything else from ``response.completed``.
"""

from __future__ import annotations

from time import perf_counter
from types import SimpleNamespace
from typing import Any

from rag_otel import semconv
from rag_otel.sdk.instrumentors._openai_stream import StreamState
from rag_otel.sdk.runtime import log_once

# response.status / incomplete_details.reason -> the finish reasons chat reports
_FINISH = {"completed": "stop", "max_output_tokens": "length", "content_filter": "content_filter"}
_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


def request_attrs(kwargs: dict[str, Any], attrs: dict[str, Any], num: Any) -> None:
    for key, name in (
        ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
        ("max_output_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
    ):
        v = num(kwargs.get(key))
        if v is not None:
            attrs[name] = v
    attrs[semconv.GEN_AI_REQUEST_STREAM] = kwargs.get("stream") is True


def input_messages(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """``instructions`` and ``input`` as chat-style messages, for the shared content capture."""
    given = kwargs.get("input")
    messages: list[dict[str, Any]] = []
    if isinstance(kwargs.get("instructions"), str):
        messages.append({"role": "system", "content": kwargs["instructions"]})
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, (list, tuple)):
        for m in given:
            if isinstance(m, dict) and "role" in m:
                content = m.get("content")
                if isinstance(content, list):  # input_text / output_text parts
                    content = [{"text": p.get("text", "")} for p in content if isinstance(p, dict)]
                messages.append({"role": m["role"], "content": content})
    return messages


def usage(u: Any) -> Any:
    """The Responses usage under the chat names ``_Call.record`` reads."""
    if u is None:
        return None
    inp, out = getattr(u, "input_tokens_details", None), getattr(u, "output_tokens_details", None)
    return SimpleNamespace(
        prompt_tokens=getattr(u, "input_tokens", None), completion_tokens=getattr(u, "output_tokens", None),
        prompt_tokens_details=SimpleNamespace(cached_tokens=getattr(inp, "cached_tokens", None)),
        completion_tokens_details=SimpleNamespace(reasoning_tokens=getattr(out, "reasoning_tokens", None)))


def finish_reason(response: Any) -> str | None:
    status = getattr(response, "status", None)
    details = getattr(response, "incomplete_details", None)
    reason = getattr(details, "reason", None) if details is not None else None
    return _FINISH.get(reason or status or "", reason or status)


def output_text(response: Any) -> str:
    """The ``output_text`` parts of the message items (the SDK's property, for a JSON body too)."""
    texts = []
    for item in getattr(response, "output", None) or ():
        if getattr(item, "type", None) == "message":
            texts.extend(getattr(p, "text", "") or "" for p in getattr(item, "content", None) or ()
                         if getattr(p, "type", None) == "output_text")
    return "".join(texts)


class ResponsesStreamState(StreamState):
    """A streamed response's events; one span per stream, ended by the shared stream proxies."""

    __slots__ = ()

    def on_chunk(self, event: Any) -> None:
        try:
            kind = event.type
            if kind == "response.output_text.delta":  # the first chunk of the answer, for time-to-first-chunk
                if self.first_at is None:
                    self.first_at = perf_counter()
                if self.capture:
                    self.texts.setdefault(0, []).append(event.delta)
            elif kind == "response.created" or kind in _FINAL_EVENTS:
                response = event.response
                self.response_id = response.id or self.response_id
                self.response_model = response.model or self.response_model
                if kind in _FINAL_EVENTS:
                    self.usage = usage(response.usage)
                    reason = finish_reason(response)
                    if reason:
                        self.finish_reasons[0] = reason
        except Exception:
            log_once("openai.responses.event", "rag-otel: cannot read an openai Responses stream event (ignored)")
