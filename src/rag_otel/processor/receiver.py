"""The OTLP receiver: config, factory and lifecycle of the gRPC and HTTP fronts.

Collector style: :class:`ReceiverConfig` says what to listen on, :func:`create_receiver`
builds it from the processor settings (file + flags), :class:`OtlpReceiver` starts and stops
both fronts, which share one :class:`~rag_otel.processor.ingest.Ingest` (decode, validate,
count, hand to the :class:`~rag_otel.processor.sink.Sink`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.metrics import Meter

from rag_otel.config import ConfigError, ProcessorSettings
from rag_otel.processor.ingest import Ingest
from rag_otel.processor.memory_limit import MemoryLimiter
from rag_otel.processor.otlp_grpc import OtlpGrpcServer
from rag_otel.processor.otlp_http import HttpServer, OtlpHttpApp
from rag_otel.processor.sink import Sink


def parse_hostport(value: str) -> tuple[str, int]:
    """``"127.0.0.1:4317"``, ``"[::1]:4317"`` or ``":4317"`` (all interfaces) -> (host, port)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{value!r} is not HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass(frozen=True)
class ReceiverConfig:
    """Where and how to listen.  ``None`` for an endpoint switches that front off."""

    grpc_endpoint: str | None = "127.0.0.1:4317"
    http_endpoint: str | None = "127.0.0.1:4318"
    max_request_bytes: int = 16 * 1024 * 1024
    max_concurrent_requests: int = 8
    max_receiving_requests: int | None = None  # gRPC messages read at once (default 4 x max_concurrent_requests)
    bearer_token: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    retry_after: float = 1.0
    read_header_timeout: float = 10.0
    read_timeout: float = 30.0
    idle_timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: ProcessorSettings, env: Mapping[str, str] | None = None) -> ReceiverConfig:
        """Read ``model_observation.processor``; the bearer token comes from the env var it names."""
        env = os.environ if env is None else env
        token = None
        if settings.bearer_token_env:
            token = env.get(settings.bearer_token_env)
            if not token:
                raise ConfigError(f"processor.bearer_token_env names {settings.bearer_token_env}, which is not set")
        for endpoint in (settings.otlp_grpc, settings.otlp_http):
            parse_hostport(endpoint)
        tls = settings.tls
        return cls(
            grpc_endpoint=settings.otlp_grpc,
            http_endpoint=settings.otlp_http,
            max_request_bytes=settings.max_request_bytes,
            max_concurrent_requests=settings.max_concurrent_requests,
            max_receiving_requests=settings.max_receiving_requests,
            bearer_token=token,
            tls_cert_file=tls.cert_file if tls else None,
            tls_key_file=tls.key_file if tls else None,
            read_header_timeout=settings.read_header_timeout,
            read_timeout=settings.read_timeout,
            idle_timeout=settings.idle_timeout,
        )


class OtlpReceiver:
    """OTLP/gRPC + OTLP/HTTP (protobuf and JSON) receivers feeding one sink."""

    def __init__(self, config: ReceiverConfig, sink: Sink, meter: Meter, limiter: MemoryLimiter | None = None) -> None:
        self.config = config
        self.ingest = Ingest(sink, meter, max_request_bytes=config.max_request_bytes,
                             max_concurrent=config.max_concurrent_requests,
                             bearer_token=config.bearer_token, retry_after=config.retry_after, limiter=limiter)
        self._grpc: OtlpGrpcServer | None = None
        self._http: HttpServer | None = None

    @property
    def grpc_address(self) -> str | None:
        """``host:port`` actually bound (after :meth:`start`)."""
        return f"{self._grpc.host}:{self._grpc.port}" if self._grpc else None

    @property
    def http_address(self) -> str | None:
        return f"{self._http.host}:{self._http.port}" if self._http else None

    def start(self) -> None:
        """Bind and serve; raises ``OSError`` naming the address when a port is taken."""
        c = self.config
        try:
            if c.grpc_endpoint:
                host, port = parse_hostport(c.grpc_endpoint)
                self._grpc = OtlpGrpcServer(self.ingest, host, port, max_workers=c.max_concurrent_requests,
                                            read_timeout=c.read_timeout, receive_slots=c.max_receiving_requests,
                                            certfile=c.tls_cert_file, keyfile=c.tls_key_file)
                self._grpc.start()
            if c.http_endpoint:
                host, port = parse_hostport(c.http_endpoint)
                self._http = HttpServer(OtlpHttpApp(self.ingest, c.read_timeout), host, port,
                                        certfile=c.tls_cert_file, keyfile=c.tls_key_file,
                                        read_header_timeout=c.read_header_timeout, idle_timeout=c.idle_timeout)
                self._http.start()
        except BaseException:
            self.stop(0)
            raise

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let requests in progress finish within ``grace`` seconds."""
        if self._grpc:
            self._grpc.stop(grace)
        if self._http:
            self._http.stop(grace)

    def __enter__(self) -> OtlpReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_receiver(settings: ProcessorSettings, sink: Sink, meter: Meter,
                    env: Mapping[str, str] | None = None, limiter: MemoryLimiter | None = None) -> OtlpReceiver:
    """Factory: the receiver the processor settings describe (not yet started)."""
    return OtlpReceiver(ReceiverConfig.from_settings(settings, env), sink, meter, limiter)
