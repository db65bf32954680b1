"""Proxies over the openai SDK's raw responses (``with_raw_response``, ``with_streaming_response``).

Through those prefixes ``create``/``parse`` return the HTTP response, not the completion: the
answer and its usage sit behind ``parse()`` (or in the body the caller reads some other way).
LangChain's ``ChatOpenAI`` calls ``with_raw_response.create`` for every non-streamed answer, so
without this the span would have no usage, no response model and no output.

- ``with_raw_response``, not streamed: the body is already read, so the call is recorded at once
  from ``parse()`` (the SDK caches it: the caller's own ``parse()`` costs nothing more).
- Otherwise (a stream, or ``with_streaming_response`` whose body is read only on demand), a proxy
  records when the caller parses (wrapping a parsed stream like a plain one), and at ``close()``
  (the ``with`` block's end) or garbage collection records whatever the body gave: usage from a
  body the caller read with ``json()``/``text()``/``read()``, else the call is marked as having no
  usage (``rag.usage.missing``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import wrapt

from rag_otel.sdk.runtime import log_once

RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # the openai SDK's marker (openai._constants)

# on_parsed(parsed) -> what the caller gets (the same object, or a stream proxy); never raises.
OnParsed = Callable[[Any], Any]
# on_close(body) -> None: the call ends with this JSON body (a namespace), or None when unread.
OnClose = Callable[[Any], None]


def raw_mode(kwargs: dict[str, Any]) -> str | None:
    """``"true"`` (with_raw_response), ``"stream"`` (with_streaming_response) or None."""
    headers = kwargs.get("extra_headers")
    if not isinstance(headers, dict):
        return None
    mode = headers.get(RAW_RESPONSE_HEADER)
    return mode if isinstance(mode, str) else None


def read_body(http_response: Any) -> Any:
    """The JSON body as attribute-access namespaces, or None when unread, a stream or not JSON."""
    try:
        content = http_response.content  # raises when the body was never read
        data = json.loads(content)
    except Exception:
        return None
    return _namespace(data) if isinstance(data, dict) else None


def _namespace(v: Any) -> Any:
    if isinstance(v, dict):
        return SimpleNamespace(**{str(k): _namespace(x) for k, x in v.items()})
    if isinstance(v, list):
        return [_namespace(x) for x in v]
    return v


class _Hooks:
    """What a raw-response proxy shares between its sync and async flavours."""

    __slots__ = ("done", "on_close", "on_parsed", "result")

    def __init__(self, on_parsed: OnParsed, on_close: OnClose) -> None:
        self.on_parsed = on_parsed
        self.on_close = on_close
        self.result: Any = None  # what the first parse() gave the caller (our stream proxy, say)
        self.done = False

    def parsed(self, value: Any) -> Any:
        if self.result is None:
            self.done = True
            self.result = self.on_parsed(value)
        return self.result

    def closed(self, http_response: Any, explicit: bool = True) -> None:
        """The response is closed (``explicit``) or collected: end the call if nothing else did.
        A collected response leaves a stream parsed from it alone: the caller may still read it."""
        if self.done:
            state = getattr(self.result, "_self_state", None) if explicit else None
            if state is not None:  # the response closed under a parsed stream: the stream ends too
                state.end(None)
            return
        self.done = True
        try:
            body = read_body(http_response)
        except Exception:
            log_once("openai.raw.body", "rag-otel: cannot read a raw openai response body (ignored)")
            body = None
        self.on_close(body)


class RawResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    """A ``LegacyAPIResponse`` or ``APIResponse`` whose ``parse()`` and ``close()`` end the span."""

    def __init__(self, response: Any, on_parsed: OnParsed, on_close: OnClose) -> None:
        super().__init__(response)
        self._self_hooks = _Hooks(on_parsed, on_close)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        value = self.__wrapped__.parse(*args, **kwargs)
        if args or kwargs.get("to") is not None:
            return value  # parsed into the caller's own type: the span ends at close() from the body
        return self._self_hooks.parsed(value)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_hooks.closed(self.__wrapped__.http_response)

    def __enter__(self) -> RawResponse:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(BaseException):  # at interpreter exit even logging may be gone
            self._self_hooks.closed(self.__wrapped__.http_response, explicit=False)


class AsyncRawResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    """An ``AsyncAPIResponse`` (``with_streaming_response`` on the async client)."""

    def __init__(self, response: Any, on_parsed: OnParsed, on_close: OnClose) -> None:
        super().__init__(response)
        self._self_hooks = _Hooks(on_parsed, on_close)

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        value = await self.__wrapped__.parse(*args, **kwargs)
        if args or kwargs.get("to") is not None:
            return value
        return self._self_hooks.parsed(value)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_hooks.closed(self.__wrapped__.http_response)

    async def __aenter__(self) -> AsyncRawResponse:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __del__(self) -> None:
        with contextlib.suppress(BaseException):
            self._self_hooks.closed(self.__wrapped__.http_response, explicit=False)
