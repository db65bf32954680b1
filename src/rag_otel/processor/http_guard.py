"""Connection-level guards for the OTLP/HTTP front, on top of uvicorn's own HTTP protocol.

uvicorn bounds the time between requests on a kept-alive connection (``timeout_keep_alive``, our
``idle_timeout``) but not the time a client may take to send its request headers: a connection that
sends half a request line and stalls is kept forever.  The Collector's ``confighttp`` has
``read_header_timeout`` for this; :func:`guarded_protocol` adds it to whichever protocol uvicorn picked
(httptools or h11), timing every request from its first byte (or from connect) to its complete headers.

It also answers a request uvicorn cannot parse (a malformed ``Content-Length``, a broken request line)
with an OTLP ``Status`` body, as every other refusal of this receiver, instead of uvicorn's text/plain,
and counts it as a refusal (logged rate limited, instead of uvicorn's one warning per request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from google.rpc import code_pb2, status_pb2

_INVALID = "Invalid HTTP request received."


class ThrottleInvalidRequests(logging.Filter):
    """A filter for uvicorn's error logger that drops its per-request "Invalid HTTP request" warning: the
    guarded protocol reports each such request as a refusal instead, which is counted and logged rate
    limited (a fuzzer or port scanner cannot flood the log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _INVALID


def install_log_throttle() -> None:
    """Add the throttle to uvicorn's error logger once per process."""
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, ThrottleInvalidRequests) for f in log.filters):
        log.addFilter(ThrottleInvalidRequests())


def _status_response(status: int, reason: str, code: int, message: str) -> bytes:
    body = status_pb2.Status(code=code, message=message).SerializeToString()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-protobuf\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("latin-1") + body


def guarded_protocol(base: type[asyncio.Protocol], read_header_timeout: float,
                     on_refused: Callable[[str, str], None]) -> type[asyncio.Protocol]:
    """``base`` (a uvicorn HTTP protocol class) with a header timeout and OTLP-shaped 400s.

    ``on_refused(reason, message)`` is called for each connection closed this way (for the refusal counter)."""

    class Guarded(base):  # type: ignore[misc, valid-type]
        _header_timer: asyncio.TimerHandle | None = None
        _cycle_at_arm: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the first bytes of a next request on a kept-alive connection
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._cycle_at_arm = self.cycle
            self._header_timer = self.loop.call_later(read_header_timeout, self._header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.cycle is not self._cycle_at_arm or self.transport.is_closing():
                return  # the headers came in time (a new request started)
            message = f"request headers not received within {read_header_timeout:g}s"
            on_refused("timeout", message)
            self.transport.write(_status_response(408, "Request Timeout", code_pb2.DEADLINE_EXCEEDED, message))
            self.transport.close()

        def send_400_response(self, msg: str) -> None:
            self._disarm()
            message = "malformed HTTP request: check Content-Length, Transfer-Encoding and the request line"
            on_refused("malformed", message)
            self.transport.write(_status_response(400, "Bad Request", code_pb2.INVALID_ARGUMENT, message))
            self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded
