"""Send one serialized OTLP request to one endpoint and classify the answer.

The retry policy lives in the exporter; a transport only says: delivered (with how many items
the receiver refused as invalid), retry (maybe with the delay the server asked for), or give up.
Retryable answers are exactly the OTLP spec's: HTTP 429/502/503/504 and connection failures;
gRPC CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS, and
RESOURCE_EXHAUSTED only when the server sent RetryInfo.
"""

from __future__ import annotations

import email.utils
import gzip
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import grpc
import urllib3
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from rag_otel.config import ConfigError, Endpoint
from rag_otel.processor.ingest import Signal

_HTTP_RETRYABLE = frozenset({429, 502, 503, 504})
_GRPC_RETRYABLE = frozenset({
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
})


@dataclass(frozen=True, slots=True)
class Outcome:
    """``ok``: delivered, except ``rejected`` items.  Else ``retryable`` (after ``retry_after`` if the
    server said) or permanent; ``reason`` is for the log."""

    ok: bool
    retryable: bool = False
    retry_after: float | None = None
    rejected: int = 0
    reason: str = ""


DELIVERED = Outcome(ok=True)


class Transport(Protocol):
    def send(self, signal: Signal, body: bytes, timeout: float) -> Outcome: ...

    def close(self) -> None: ...


def _rejected(signal: Signal, body: bytes) -> tuple[int, str]:
    resp = signal.response_type()
    try:
        resp.ParseFromString(body)
    except DecodeError:
        return 0, ""
    if not resp.HasField("partial_success"):
        return 0, ""
    ps = resp.partial_success
    field = next(f.name for f in ps.DESCRIPTOR.fields if f.name.startswith("rejected_"))
    return int(getattr(ps, field)), ps.error_message


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class HttpTransport:
    """OTLP/HTTP protobuf: ``POST {base}/v1/{signal}`` over one urllib3 pool.

    urllib3 rather than httpx here: a fraction of the CPU per request (about 0.6 ms vs 1.1 ms
    measured for a 20 kB POST), and the export worker is single-threaded per endpoint anyway.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.base = endpoint.url.rstrip("/")
        self.gzip = endpoint.compression == "gzip"
        self._headers = {"content-type": "application/x-protobuf", **endpoint.headers}
        if self.gzip:
            self._headers["content-encoding"] = "gzip"
        self._pool = urllib3.PoolManager(num_pools=1, maxsize=1, retries=False)

    def send(self, signal: Signal, body: bytes, timeout: float) -> Outcome:
        if self.gzip:
            body = gzip.compress(body, compresslevel=1)  # fastest level: telemetry still shrinks ~5-10x
        try:
            resp = self._pool.request("POST", self.base + signal.http_path, body=body, headers=self._headers,
                                      timeout=urllib3.Timeout(total=timeout), redirect=False)
        except urllib3.exceptions.HTTPError as e:  # connection refused/reset, timeouts: worth retrying
            return Outcome(ok=False, retryable=True, reason=f"{type(e).__name__}: {e}")
        if 200 <= resp.status < 300:
            rejected, message = _rejected(signal, resp.data)
            return Outcome(ok=True, rejected=rejected, reason=message) if rejected else DELIVERED
        reason = f"HTTP {resp.status}"
        if resp.status in _HTTP_RETRYABLE:
            return Outcome(ok=False, retryable=True, retry_after=_parse_retry_after(resp.headers.get("retry-after")),
                           reason=reason)
        return Outcome(ok=False, reason=f"{reason}: {resp.data[:200]!r}")

    def close(self) -> None:
        self._pool.clear()


def _retry_info(err: grpc.RpcError) -> float | None:
    metadata = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
    info = error_details_pb2.RetryInfo()
    try:
        if raw := metadata.get("google.rpc.retryinfo-bin"):
            info.ParseFromString(raw)
            return info.retry_delay.ToNanoseconds() / 1e9
        if raw := metadata.get("grpc-status-details-bin"):
            status = status_pb2.Status.FromString(raw)
            for detail in status.details:
                if detail.Unpack(info):
                    return info.retry_delay.ToNanoseconds() / 1e9
    except DecodeError:
        pass
    return None


class GrpcTransport:
    """OTLP/gRPC on one channel; requests are sent as already-serialized bytes."""

    def __init__(self, endpoint: Endpoint, secure: bool) -> None:
        target = urlsplit(endpoint.url).netloc
        # reconnect soon after a downstream comes back (grpc's default first wait is 1 s, growing)
        options = [("grpc.max_send_message_length", -1), ("grpc.initial_reconnect_backoff_ms", 200),
                   ("grpc.min_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 5000)]
        if secure:
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._metadata = tuple((k.lower(), v) for k, v in endpoint.headers.items())
        self._compression = grpc.Compression.Gzip if endpoint.compression == "gzip" else grpc.Compression.NoCompression
        self._calls = {s: self._channel.unary_unary(f"/{s.grpc_service}/Export") for s in Signal}

    def send(self, signal: Signal, body: bytes, timeout: float) -> Outcome:
        try:
            answer = self._calls[signal](body, timeout=timeout, metadata=self._metadata,
                                         compression=self._compression, wait_for_ready=False)
        except grpc.RpcError as e:
            code = e.code()  # type: ignore[attr-defined]
            reason = f"gRPC {code.name}: {e.details()}"  # type: ignore[attr-defined]
            delay = _retry_info(e)
            retryable = code in _GRPC_RETRYABLE or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None)
            return Outcome(ok=False, retryable=retryable, retry_after=delay, reason=reason)
        rejected, message = _rejected(signal, answer)
        return Outcome(ok=True, rejected=rejected, reason=message) if rejected else DELIVERED

    def close(self) -> None:
        self._channel.close()


def transport_for(endpoint: Endpoint) -> Transport:
    """``http(s)://`` = OTLP/HTTP protobuf, ``grpc://`` / ``grpcs://`` = OTLP/gRPC (plain / TLS)."""
    scheme = urlsplit(endpoint.url).scheme.lower()
    if scheme in ("http", "https"):
        return HttpTransport(endpoint)
    if scheme in ("grpc", "grpcs"):
        return GrpcTransport(endpoint, secure=scheme == "grpcs")
    raise ConfigError(f"export endpoint {endpoint.url!r}: use http(s)://host:4318 or grpc(s)://host:4317")
