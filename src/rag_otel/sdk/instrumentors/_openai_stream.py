"""Thin proxies over openai's ``Stream``/``AsyncStream`` that end the chat span exactly once.

The span ends when the stream is consumed, closed, left by ``with``, garbage-collected or fails.
Per chunk we keep only what the span needs (first-chunk time, response id/model, finish reasons,
usage from the last chunk, and text only when content capture is on): no events, no histogram
and no model dump per chunk, so iterating stays within a few microseconds of the bare SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from time import perf_counter
from typing import Any

import wrapt

from rag_otel.sdk.runtime import log_once


class StreamState:
    """What one streamed chat call accumulates; ``on_end`` runs once with it."""

    __slots__ = ("capture", "ended", "finish_reasons", "first_at", "on_end", "response_id", "response_model",
                 "texts", "usage")

    def __init__(self, on_end: Callable[[StreamState, BaseException | None], None], capture: bool) -> None:
        self.on_end = on_end
        self.capture = capture
        self.ended = False
        self.first_at: float | None = None
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reasons: dict[int, str] = {}
        self.texts: dict[int, list[str]] = {}
        self.usage: Any = None

    def on_chunk(self, chunk: Any) -> None:
        """The per-chunk hot path: a few attribute reads, no allocation in the common case."""
        try:
            if self.first_at is None:
                self.first_at = perf_counter()
            if self.response_model is None:
                self.response_id = chunk.id or None
                self.response_model = chunk.model or None
            for choice in chunk.choices:
                reason = choice.finish_reason
                if reason is not None:
                    self.finish_reasons[choice.index] = reason
                if self.capture:
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        self.texts.setdefault(choice.index, []).append(text)
            usage = chunk.usage
            if usage is not None:
                self.usage = usage
        except Exception:
            log_once("openai.stream.chunk", "rag-otel: cannot read an openai stream chunk (ignored)")

    def end(self, error: BaseException | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            self.on_end(self, error)
        except Exception:
            log_once("openai.stream.end", "rag-otel: cannot end an openai stream span (ignored)")


class ChatStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """Behaves as the wrapped ``openai.Stream``: iteration, ``with``, ``close()``, attributes."""

    def __init__(self, stream: Any, state: StreamState) -> None:
        super().__init__(stream)
        self._self_state = state

    def __iter__(self) -> Iterator[Any]:
        """``for`` loops take this generator: cheaper per chunk than ``__next__`` on a proxy."""
        state = self._self_state
        on_chunk = state.on_chunk
        try:
            for chunk in self.__wrapped__:
                on_chunk(chunk)
                yield chunk
        except GeneratorExit:  # the loop was left early and the generator closed: not an error
            state.end(None)
            raise
        except BaseException as e:
            state.end(e)
            raise
        state.end(None)

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_state.end(None)
            raise
        except BaseException as e:
            self._self_state.end(e)
            raise
        self._self_state.on_chunk(chunk)
        return chunk

    def __enter__(self) -> ChatStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_state.end(None)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.end(None)

    def __del__(self) -> None:
        try:
            state = self._self_state
            state.end(None)
        except BaseException:  # at interpreter exit even logging may be gone
            pass


class AsyncChatStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """Behaves as the wrapped ``openai.AsyncStream``: ``async for``, ``async with``, ``close()``."""

    def __init__(self, stream: Any, state: StreamState) -> None:
        super().__init__(stream)
        self._self_state = state

    async def __aiter__(self) -> AsyncIterator[Any]:
        """``async for`` takes this async generator (see ``ChatStream.__iter__``)."""
        state = self._self_state
        on_chunk = state.on_chunk
        try:
            async for chunk in self.__wrapped__:
                on_chunk(chunk)
                yield chunk
        except GeneratorExit:
            state.end(None)
            raise
        except BaseException as e:
            state.end(e)
            raise
        state.end(None)

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_state.end(None)
            raise
        except BaseException as e:
            self._self_state.end(e)
            raise
        self._self_state.on_chunk(chunk)
        return chunk

    async def __aenter__(self) -> AsyncChatStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_state.end(None)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_state.end(None)

    async def aclose(self) -> None:
        """``aclose()`` where the SDK has it (openai 3), else the same as ``close()``."""
        try:
            inner = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
            await inner()
        finally:
            self._self_state.end(None)

    def __del__(self) -> None:
        try:
            state = self._self_state
            state.end(None)
        except BaseException:  # at interpreter exit even logging may be gone
            pass
