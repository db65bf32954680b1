"""OTLP/HTTP front: a tiny ASGI app served by uvicorn on its own thread.

A raw ASGI callable rather than a framework, because the body must be read as a stream:
the declared size is checked before anything is read, the read stops at the limit, and gzip
is inflated with a cap on the *output*, so neither a 50 MB body nor a gzip bomb costs more
than ``max_request_bytes`` of memory.  Status codes follow the OTLP spec: 400 bad data (not
retried), 503 + Retry-After when we are full (retried by every OTLP exporter), 413/415/401
for what the sender must fix.

Slow or stalled clients cost no capacity: a decode slot (``max_concurrent_requests``) is taken only
once a whole body is in, for the decode itself, so a connection that stalls mid-body holds nothing
but its bytes so far (counted by the memory limiter) until ``read_timeout`` closes it with 408;
headers have ``read_header_timeout`` (see :mod:`rag_otel.processor.http_guard`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
import time
import zlib
from typing import Any

import uvicorn
from google.rpc import code_pb2, status_pb2
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from rag_otel.processor import otlp_json
from rag_otel.processor.http_guard import guarded_protocol, install_log_throttle
from rag_otel.processor.ingest import Accepted, BackOff, BadRequest, Ingest, Refusal, Signal, check_bearer

logger = logging.getLogger("rag_otel.processor.receiver")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_BY_PATH = {s.http_path: s for s in Signal}
_STATUS = {  # refusal -> (HTTP status, google.rpc code)
    Refusal.MALFORMED: (400, code_pb2.INVALID_ARGUMENT),
    Refusal.UNSUPPORTED_MEDIA: (415, code_pb2.INVALID_ARGUMENT),
    Refusal.TOO_LARGE: (413, code_pb2.RESOURCE_EXHAUSTED),
    Refusal.UNAUTHENTICATED: (401, code_pb2.UNAUTHENTICATED),
    Refusal.NOT_FOUND: (404, code_pb2.NOT_FOUND),
    Refusal.BACK_PRESSURE: (503, code_pb2.UNAVAILABLE),
    Refusal.BUSY: (503, code_pb2.UNAVAILABLE),
    Refusal.MEMORY_LIMIT: (503, code_pb2.UNAVAILABLE),
    Refusal.TIMEOUT: (408, code_pb2.DEADLINE_EXCEEDED),
    Refusal.INTERNAL: (503, code_pb2.UNAVAILABLE),
}


class _TooLarge(Exception):
    pass


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Inflate a gzip body, never producing more than ``limit`` bytes (a gzip bomb stops there)."""
    out: list[bytes] = []
    produced = 0
    while data:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(data, limit - produced + 1)
        except zlib.error as e:
            raise BadRequest(f"invalid gzip body: {e}") from None
        produced += len(chunk)
        if produced > limit or d.unconsumed_tail:
            raise _TooLarge(f"decompressed body exceeds {limit} bytes")
        if not d.eof:
            raise BadRequest("truncated gzip body")
        out.append(chunk)
        data = d.unused_data  # a further gzip member, if any
    return b"".join(out)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


class OtlpHttpApp:
    """ASGI app for ``POST /v1/{traces,metrics,logs}`` (protobuf or JSON, optionally gzip)."""

    def __init__(self, ingest: Ingest, read_timeout: float = 30.0) -> None:
        self.ingest = ingest
        self.read_timeout = read_timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else ""
        signal = _BY_PATH.get(scope["path"].rstrip("/"))
        ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        as_json = ctype == JSON
        if signal is None or scope["method"] != "POST":
            self.ingest.refuse(Refusal.NOT_FOUND, signal, f"{scope['method']} {scope['path']}", peer)
            status = 405 if signal else 404
            await _respond(send, status, _status_body(code_pb2.NOT_FOUND, "POST to /v1/traces, /v1/metrics or "
                                                      "/v1/logs", as_json), as_json)
            return
        refusal, message = self._check_headers(scope, ctype)
        if refusal is not None:
            await self._refuse(send, refusal, signal, message, peer, as_json)
            return
        await self._export(scope, receive, send, signal, as_json, peer)

    def _check_headers(self, scope: dict[str, Any], ctype: str) -> tuple[Refusal | None, str]:
        if not check_bearer(self.ingest.bearer_token, _header(scope, b"authorization")):
            return Refusal.UNAUTHENTICATED, "missing or wrong bearer token"
        if ctype not in (PROTOBUF, JSON):
            return Refusal.UNSUPPORTED_MEDIA, f"content-type {ctype or '(none)'!r}: use {PROTOBUF} or {JSON}"
        encoding = (_header(scope, b"content-encoding") or "identity").strip().lower()
        if encoding not in ("gzip", "identity", ""):
            return Refusal.UNSUPPORTED_MEDIA, f"content-encoding {encoding!r}: use gzip or none"
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                return Refusal.MALFORMED, "invalid content-length"
            if int(length) > self.ingest.max_request_bytes:
                return Refusal.TOO_LARGE, f"body of {length} bytes exceeds {self.ingest.max_request_bytes}"
            if not self.ingest.has_room(int(length)):
                return Refusal.MEMORY_LIMIT, "memory limit reached, retry later"
        return None, ""

    async def _export(self, scope: dict[str, Any], receive: Any, send: Any, signal: Signal, as_json: bool,
                      peer: str) -> None:
        limit = self.ingest.max_request_bytes
        limiter = self.ingest.limiter
        chunks: list[bytes] = []
        size = 0
        deadline = asyncio.get_running_loop().time() + self.read_timeout
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        msg = await receive()
                except TimeoutError:
                    await self._refuse(send, Refusal.TIMEOUT, signal, f"body not received within "
                                       f"{self.read_timeout:g}s ({size} bytes came)", peer, as_json, close=True)
                    return
                if msg["type"] == "http.disconnect":
                    return
                chunk = msg.get("body", b"")
                size += len(chunk)
                if limiter is not None:
                    limiter.reading(len(chunk))
                if size > limit:
                    await self._refuse(send, Refusal.TOO_LARGE, signal, f"body exceeds {limit} bytes", peer, as_json)
                    return
                if limiter is not None and limiter.over_hard():
                    await self._refuse(send, Refusal.MEMORY_LIMIT, signal, "memory limit reached, retry later", peer,
                                       as_json, close=True)
                    return
                chunks.append(chunk)
                if not msg.get("more_body", False):
                    break
            body = b"".join(chunks)
            del chunks
            gzipped = (_header(scope, b"content-encoding") or "").strip().lower() == "gzip"
            if not self.ingest.try_slot():  # a slot only now: waiting for a slow client holds none
                await self._refuse(send, Refusal.BUSY, signal, "too many requests in progress", peer, as_json)
                return
            try:
                # off the event loop: a 16 MB decode must not stall quick answers (refusals, 503s) to others
                result = await asyncio.to_thread(self._decode_and_admit, signal, body, gzipped, as_json, peer)
            except _TooLarge as e:
                await self._refuse(send, Refusal.TOO_LARGE, signal, str(e), peer, as_json)
                return
            except BadRequest as e:
                await self._refuse(send, Refusal.MALFORMED, signal, str(e), peer, as_json)
                return
            finally:
                self.ingest.release_slot()
        finally:
            if limiter is not None:
                limiter.reading(-size)
        if isinstance(result, Accepted):
            resp = signal.response(result.rejected, result.message)
            await _respond(send, 200, otlp_json.dumps(resp) if as_json else resp.SerializeToString(), as_json)
            return
        status, code = _STATUS[result.refusal]
        await _respond(send, status, _status_body(code, result.message, as_json), as_json, result.retry_after)

    def _decode_and_admit(self, signal: Signal, body: bytes, gzipped: bool, as_json: bool,
                          peer: str) -> Accepted | BackOff:
        wire_size = len(body)  # already counted by the limiter as a body being read
        if gzipped:
            body = gunzip_capped(body, self.ingest.max_request_bytes)
        return self.ingest.admit(signal, self.ingest.decode(signal, body, json=as_json), peer, nbytes=len(body),
                                 counted=wire_size)

    async def _refuse(self, send: Any, refusal: Refusal, signal: Signal, message: str, peer: str,
                      as_json: bool, close: bool = False) -> None:
        self.ingest.refuse(refusal, signal, message, peer)
        status, code = _STATUS[refusal]
        retry = self.ingest.retry_after if status == 503 else None
        await _respond(send, status, _status_body(code, message, as_json), as_json, retry, close)


def _status_body(code: int, message: str, as_json: bool) -> bytes:
    status = status_pb2.Status(code=code, message=message)
    return otlp_json.dumps(status) if as_json else status.SerializeToString()


async def _respond(send: Any, status: int, body: bytes, as_json: bool, retry_after: float | None = None,
                   close: bool = False) -> None:
    headers = [(b"content-type", (JSON if as_json else PROTOBUF).encode()),
               (b"content-length", str(len(body)).encode())]
    if close:  # the rest of the body is not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HttpServer:
    """uvicorn on a background thread, bound to a socket we create (so port 0 works)."""

    def __init__(self, app: OtlpHttpApp, host: str, port: int, *, certfile: str | None = None,
                 keyfile: str | None = None, read_header_timeout: float = 10.0, idle_timeout: float = 60.0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as e:
            self._sock.close()
            raise OSError(e.errno, f"cannot bind OTLP/HTTP to {host}:{port}: {e.strerror}") from None
        self.host, self.port = host, self._sock.getsockname()[1]
        ingest = app.ingest
        protocol = guarded_protocol(AutoHTTPProtocol, read_header_timeout,
                                    lambda reason, message: ingest.refuse(Refusal(reason), None, message))
        install_log_throttle()
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, http=protocol,
                                ssl_certfile=certfile, ssl_keyfile=keyfile, timeout_graceful_shutdown=5,
                                timeout_keep_alive=max(1, round(idle_timeout)))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"otlp-http-{self.port}", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"OTLP/HTTP server on {self.host}:{self.port} did not start")
            time.sleep(0.01)

    def stop(self, grace: float = 5.0) -> None:
        self._server.config.timeout_graceful_shutdown = max(grace, 0.1)
        self._server.should_exit = True
        self._thread.join(grace + 2.0)
        self._sock.close()
