"""Helpers for the receiver/exporter tests: a started receiver, metric readings, workloads, certs.

Everything here is real: the receiver binds 127.0.0.1 port 0 and serves over sockets; the
metric values come from a real OpenTelemetry SDK MeterProvider with an in-memory reader.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from rag_otel.processor.receiver import OtlpReceiver, ReceiverConfig
from rag_otel.processor.sink import Sink


class Metrics:
    """A MeterProvider whose instruments tests can read back."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.meter = self.provider.get_meter("test")

    def value(self, name: str, **attrs: str) -> float:
        """Sum of the data points of ``name`` whose attributes include ``attrs`` (0 if none)."""
        data = self.reader.get_metrics_data()
        total = 0.0
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != name:
                        continue
                    for dp in m.data.data_points:
                        if all(dp.attributes.get(k) == v for k, v in attrs.items()):
                            total += dp.value
        return total


@contextmanager
def running_receiver(sink: Sink, metrics: Metrics | None = None, **config: object) -> Iterator[OtlpReceiver]:
    """A receiver on free 127.0.0.1 ports (gRPC and HTTP), stopped on exit."""
    config.setdefault("grpc_endpoint", "127.0.0.1:0")
    config.setdefault("http_endpoint", "127.0.0.1:0")
    receiver = OtlpReceiver(ReceiverConfig(**config), sink, (metrics or Metrics()).meter)  # type: ignore[arg-type]
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop(1.0)


def free_port() -> int:
    """A port nobody listens on right now (for a 'dead downstream' that comes back later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resource_spans(n_spans: int, *, service: str = "rag-app", tag: str = "") -> ResourceSpans:
    """One ResourceSpans with ``n_spans`` valid spans named ``{tag}{i}``."""
    rs = ResourceSpans()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    ss = rs.scope_spans.add()
    ss.scope.name = "test"
    trace_id = os.urandom(16)
    for i in range(n_spans):
        span = ss.spans.add()
        span.trace_id, span.span_id, span.name = trace_id, os.urandom(8), f"{tag}{i}"
        span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_001_000_000_000
    return rs


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1/localhost (cert_file, key_file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file
