"""OTLP/gRPC front: grpcio server with the three OTLP ``Export`` services.

The handlers receive the raw request bytes (no deserializer registered), so a malformed
protobuf is ours to answer: INVALID_ARGUMENT as the OTLP spec names it, rather than grpcio's
generic INTERNAL.  Size (compressed and decompressed) is capped by grpc core itself through
``grpc.max_receive_message_length``.  Back-pressure is UNAVAILABLE with a RetryInfo detail, in
both places exporters look for it: the standard ``grpc-status-details-bin`` (Collector, Go)
and ``google.rpc.retryinfo-bin`` (the Python SDK).

Slow or stalled senders.  Each ``Export`` is registered as *stream-unary* (on the wire a unary call
is the same: one message, then half-close), so the handler, not grpc core, decides when the message
is read: within ``read_timeout`` seconds, else the RPC is cancelled and counted as a timeout.  Each
RPC being read holds one of ``receive_slots`` handler threads (4 x ``max_concurrent_requests`` by
default); decoding takes one of the ``max_concurrent_requests`` decode slots.  A stream that stalls
mid-message thus holds a thread for at most ``read_timeout`` and never a decode slot: stalled streams
stop nothing until there are more of them than receive slots, and then only until they are cut off.
Memory: an RPC no thread has taken yet is not read, and with BDP probing off its HTTP/2 stream window
stays at 64 KiB, so the sender is flow-controlled (and retries on its deadline) instead of landing its
message here (measured with 24 concurrent 7 MB senders: see test_receiver_bad_input).
"""


from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from rag_otel.processor.ingest import Accepted, BadRequest, Ingest, Refusal, Signal, check_bearer

_MAX_WAITING = 256


def _abort_retry_later(context: grpc.ServicerContext, message: str, retry_after: float) -> NoReturn:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(retry_after * 1e9))
    info = error_details_pb2.RetryInfo(retry_delay=delay)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])
    context.set_trailing_metadata((
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
    ))
    context.abort(grpc.StatusCode.UNAVAILABLE, message)


@dataclass(eq=False)
class _Watch:
    deadline: float
    action: Callable[[], object]
    fired: bool = False
    done: bool = False


class _Watchdog:
    """One thread that runs ``action`` for each watch whose deadline passes before :meth:`done`: a read
    timeout per RPC without a timer thread per RPC (a thread start costs more than a small request)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float, action: Callable[[], object]) -> _Watch:
        w = _Watch(time.monotonic() + seconds, action)
        with self._cond:
            heapq.heappush(self._heap, (w.deadline, next(self._seq), w))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="otlp-grpc-read-timeout", daemon=True)
                self._thread.start()
            if self._heap[0][2] is w:  # the earliest now: the thread must wake sooner than it planned
                self._cond.notify()
        return w

    def done(self, w: _Watch) -> None:
        with self._cond:
            w.done = True  # left in the heap; skipped when its deadline comes

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, w = heapq.heappop(self._heap)
                if w.done:
                    continue
                w.fired = True
            with contextlib.suppress(Exception):  # a cancel on a finished RPC: nothing to do
                w.action()


class OtlpGrpcServer:
    """The gRPC server; ``port`` is the bound port (pass 0 to get a free one)."""

    def __init__(self, ingest: Ingest, host: str, port: int, *, max_workers: int = 8,
                 certfile: str | None = None, keyfile: str | None = None, read_timeout: float = 30.0,
                 receive_slots: int | None = None) -> None:
        self.ingest = ingest
        self.read_timeout = read_timeout
        self.receive_slots = receive_slots or 4 * max_workers
        self._watchdog = _Watchdog()
        limit = ingest.max_request_bytes
        # One handler thread per receive slot: grpcio reads an RPC's message only once a thread took the
        # RPC (see the module docstring).  Beyond ``_MAX_WAITING`` RPCs grpcio answers RESOURCE_EXHAUSTED.
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.receive_slots, thread_name_prefix="otlp-grpc"),
            options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0),
                     ("grpc.http2.bdp_probe", 0)],
            maximum_concurrent_rpcs=_MAX_WAITING,
        )
        self._server.add_generic_rpc_handlers([
            grpc.method_handlers_generic_handler(
                s.grpc_service, {"Export": grpc.stream_unary_rpc_method_handler(self._handler(s))})
            for s in Signal
        ])
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if certfile and keyfile:
                with open(keyfile, "rb") as k, open(certfile, "rb") as c:
                    creds = grpc.ssl_server_credentials([(k.read(), c.read())])
                self.port = self._server.add_secure_port(address, creds)
            else:
                self.port = self._server.add_insecure_port(address)
        except RuntimeError:  # grpcio's way of saying the bind failed
            self.port = 0
        if not self.port:
            raise OSError(f"cannot bind OTLP/gRPC to {address} (address in use or not local)")
        self.host = host

    def _read(self, requests: Iterator[bytes], context: grpc.ServicerContext, signal: Signal, peer: str) -> bytes:
        """The request message, read within ``read_timeout`` (else the RPC is cancelled)."""
        ingest = self.ingest
        watch = self._watchdog.watch(self.read_timeout, context.cancel)  # cancelling wakes the read below
        try:
            body = next(requests, None)
        except grpc.RpcError:
            body = None
        finally:
            self._watchdog.done(watch)
        if watch.fired:
            message = f"request message not received within {self.read_timeout:g}s"
            ingest.refuse(Refusal.TIMEOUT, signal, message, peer)
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, message)
        if body is None:
            ingest.refuse(Refusal.MALFORMED, signal, "no request message", peer)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
        return body

    def _handler(self, signal: Signal) -> Callable[[Iterator[bytes], grpc.ServicerContext], bytes]:
        ingest = self.ingest

        def export(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
            peer = context.peer()
            if ingest.bearer_token:
                auth = dict(context.invocation_metadata()).get("authorization")
                if not check_bearer(ingest.bearer_token, auth if isinstance(auth, str) else None):
                    ingest.refuse(Refusal.UNAUTHENTICATED, signal, "missing or wrong bearer token", peer)
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
            if not ingest.has_room(0):  # refused before the message is read: it stays with the sender
                ingest.refuse(Refusal.MEMORY_LIMIT, signal, "memory limit reached", peer)
                _abort_retry_later(context, "memory limit reached, retry later", ingest.retry_after)
            body = self._read(requests, context, signal, peer)
            if not ingest.wait_slot(min(context.time_remaining() or 1.0, 1.0)):
                ingest.refuse(Refusal.BUSY, signal, "too many requests in progress", peer)
                _abort_retry_later(context, "too many requests in progress", ingest.retry_after)
            try:
                try:
                    result = ingest.admit(signal, ingest.decode(signal, body), peer, nbytes=len(body))
                except BadRequest as e:
                    ingest.refuse(Refusal.MALFORMED, signal, str(e), peer)
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
                if isinstance(result, Accepted):
                    return signal.response(result.rejected, result.message).SerializeToString()
                _abort_retry_later(context, result.message, result.retry_after)
            finally:
                ingest.release_slot()

        return export

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 5.0) -> None:
        self._server.stop(grace).wait(grace + 2.0)

