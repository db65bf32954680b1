"""``rag-otel serve`` as an object: start every part in dependency order, stop them in reverse.

Start: derived metrics (the meter everything counts on) -> exporter -> scorer, alert engine and
notifiers -> pipeline -> OTLP receiver -> HTTP app.  Stop (SIGTERM/SIGINT or :meth:`stop`):
receiver first (no new data; senders retry elsewhere), then the pipeline flushes in-flight
traces unscored, the final metric collection goes out, and the exporter drains its queues, all
within ``processor.shutdown_grace``.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rag_otel import __version__
from rag_otel.config import ModelObservation
from rag_otel.processor.derived_metrics import DerivedMetrics
from rag_otel.processor.exporter import OtlpFanOut, create_exporter
from rag_otel.processor.health_view import redact_url
from rag_otel.processor.memory_limit import MemoryLimiter
from rag_otel.processor.pipeline import Pipeline, Scorer, raise_gc_thresholds
from rag_otel.processor.receiver import OtlpReceiver, create_receiver, parse_hostport

logger = logging.getLogger("rag_otel.processor")
FLEET_JOBS = ("reports", "maintenance", "alerts")  # run by one replica at a time on a shared store (docs/deploy.md)


def _build_scorer(cfg: ModelObservation) -> Scorer | None:
    try:
        from rag_otel.quality import build_scorer  # type: ignore[attr-defined]
    except ImportError:
        logger.warning("rag-otel serve: no quality scorer available; queries are exported unscored")
        return None
    return build_scorer(cfg.quality_assessment)


class ProcessorService:
    """Every part of the processor, wired; see the module docstring for the order."""

    def __init__(self, config: ModelObservation, *, metrics_interval: float = 10.0,
                 env: dict[str, str] | None = None) -> None:
        self.config = config
        self.metrics_interval = metrics_interval
        self.env = env
        self.metrics: DerivedMetrics
        self.exporter: OtlpFanOut
        self.pipeline: Pipeline
        self.receiver: OtlpReceiver
        self.alerts: Any = None
        self.dispatcher: Any = None
        self.store: Any = None  # rag_otel.store.Store in --data-dir (None when DuckDB is not installed)
        self.store_writer: Any = None
        self.reports: Any = None  # rag_otel.reports.ReportScheduler (needs the store)
        self.leadership: Any = None  # rag_otel.store.lease.Leadership: which fleet-wide jobs this replica leads
        self.maintenance: Any = None  # rag_otel.store.maintenance.Maintenance (shared stores only)
        self.http_address: str | None = None
        self.started_at = 0.0
        self._http_server: Any = None
        self._http_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._stop_requested = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ProcessorService:
        cfg = self.config
        p = cfg.processor
        Path(p.data_dir).mkdir(parents=True, exist_ok=True)
        self._open_store()
        self.metrics = DerivedMetrics(self._forward_metrics, export_interval=self.metrics_interval,
                                      cardinality_limit=p.metric_cardinality_limit)
        self.exporter = create_exporter(p, self.metrics.meter)
        self.exporter.start()
        self.alerts = self._build_alerts()
        self.pipeline = Pipeline(cfg, self.exporter, scorer=_build_scorer(cfg), alerts=self.alerts,
                                 metrics=self.metrics)
        self.limiter = MemoryLimiter(p.memory_soft_limit_bytes, p.memory_limit_mib << 20)
        self.limiter.watch_items(lambda: self.pipeline.items_in_flight)
        self.limiter.watch_bytes(lambda: self.exporter.queued_bytes)
        if self.store_writer is not None:
            self.store_writer.attach(self.pipeline)
            self.pipeline.admission_checks.append(self.store_writer.backlog_full)
            self.metrics.store_gauges(lambda: self.store_writer.buffered,
                                      lambda: 0 if self.store_writer.stats.unavailable else 1,
                                      lambda: [({"job": j}, 1.0 if s["leader"] else 0.0)
                                               for j, s in self.leadership.status().items()])
        self.metrics.health_gauges(lambda: self.pipeline.queue_depth, lambda: self.pipeline.in_flight_traces)
        self.metrics.fault_counters(lambda: self.pipeline.stats, self.limiter.in_flight)
        if self.alerts is not None:
            self.metrics.alerts_gauge(self._firing)
        raise_gc_thresholds()  # this process exists to run the pipeline (see pipeline.GC_THRESHOLDS)
        self.pipeline.start()
        self.receiver = create_receiver(p, self.pipeline, self.metrics.meter, self.env, self.limiter)
        try:
            self.receiver.start()
            self._start_http(p.http)
            self._start_reports()
        except BaseException:
            self.stop()
            raise
        self.started_at = time.time()
        logger.info(
            "rag-otel serve %s listening: OTLP gRPC %s, OTLP HTTP %s, HTTP http://%s (health, metrics); "
            "exporting to %s",
            __version__, self.receiver.grpc_address, self.receiver.http_address, self.http_address,
            ", ".join(e.url for e in p.exports) or "nowhere (no --export)",
        )
        return self

    def _forward_metrics(self, request: Any) -> None:
        self.exporter.export_metrics(request.resource_metrics)

    def _build_alerts(self) -> Any:
        try:
            from rag_otel.alerts.fleet import JOB, AlertEngines
            from rag_otel.alerts.notifiers import Dispatcher, build_notifiers
        except ImportError as e:
            logger.warning("rag-otel serve: alerting unavailable (%s)", e)
            return None
        ext = f"http://{self.config.processor.http}"
        self.dispatcher = Dispatcher(build_notifiers(self.config.alerting, external_url=ext, env=self.env),
                                     meter=self.metrics.meter)
        on_event = self.store_writer.on_alert if self.store_writer is not None else None
        # fleet-scope rules are judged over the store by the holder of the "alerts" lease (docs/alerts.md)
        holder = self.leadership.leases[JOB].holder if self.leadership is not None else ""
        return AlertEngines.from_config(self.config, store=self.store, holder=holder,
                                        leads=lambda: self.leadership is not None and self.leadership.leads(JOB),
                                        notify=self.dispatcher.submit, on_event=on_event,
                                        dispatcher=self.dispatcher)

    def _open_store(self) -> None:
        """The analytics store (``processor.store``: the file in --data-dir by default) and its writer
        thread; a foreign or corrupt file, or an unreachable fleet store, stops startup.  On a shared
        store, retention and compaction go to whichever replica holds the ``maintenance`` lease."""
        try:
            from rag_otel.store import StoreWriter, open_store
            from rag_otel.store.lease import Leadership
            from rag_otel.store.maintenance import Maintenance
        except ImportError as e:
            logger.warning("rag-otel serve: analytics store unavailable (%s); records are not stored", e)
            return
        p = self.config.processor
        self.store = open_store(self.config)  # StoreError (a RuntimeError): `serve` prints it and exits 1
        shared = self.store.shared
        self.store_writer = StoreWriter(self.store, max_queue=p.store_buffer,
                                        retention_every=None if shared else 3600.0).start()
        self.leadership = Leadership({job: self.store.lease(job, ttl=p.lease_ttl) for job in FLEET_JOBS},
                                     on_change=self._lead_changed)
        if shared:
            self.leadership.start()
            self.maintenance = Maintenance(self.store, lambda: self.leadership.leads("maintenance")).start()

    def _lead_changed(self, job: str, leads: bool) -> None:
        if job == "reports" and leads and self.reports is not None:
            self.reports.wake()

    def _start_reports(self) -> None:
        """Scheduled daily/weekly reports over the store; a bad reporting config stops startup."""
        if self.store is None:
            return
        from rag_otel.reports.schedule import ReportScheduler

        leads = (lambda: self.leadership.leads("reports")) if self.store.shared else None
        self.reports = ReportScheduler(self.store, self.config, env=self.env, leads=leads).start()

    def _firing(self) -> list[tuple[dict[str, str], float]]:
        """Firing alerts for the gauge: a fleet-wide alert only from the replica leading it, so a sum over
        the fleet's replicas counts it once."""
        fleet = getattr(self.alerts, "fleet", None)
        shown = self.alerts.replica.active() + (fleet.active() if fleet is not None and fleet.leads() else []) \
            if hasattr(self.alerts, "replica") else self.alerts.active()
        return [({"rule": s.rule, "severity": s.severity}, 1.0) for s in shown if s.state == "firing"]

    def _start_http(self, address: str) -> None:
        import uvicorn

        from rag_otel.web.app import create_app

        host, port = parse_hostport(address)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise OSError(f"rag-otel serve: cannot listen on {address} (--http): {e.strerror}") from None
        bound = sock.getsockname()
        self.http_address = f"{host}:{bound[1]}"
        if not self.config.dashboards.public_url and port == 0:
            # reports built by this serve link their queries to the port it really got
            shown = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
            shown = f"[{shown}]" if ":" in shown else shown
            self.config.dashboards.public_url = f"http://{shown}:{bound[1]}"
        config = uvicorn.Config(create_app(self), log_level="warning", access_log=False, lifespan="off")
        self._http_server = uvicorn.Server(config)
        self._http_thread = threading.Thread(target=self._http_server.run, kwargs={"sockets": [sock]},
                                             name="rag-otel-http", daemon=True)
        self._http_thread.start()
        deadline = time.monotonic() + 10
        while not self._http_server.started and self._http_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._http_server.started:
            raise RuntimeError(f"rag-otel serve: the HTTP app on {self.http_address} did not start")

    def stop(self) -> bool:
        """Stop within ``processor.shutdown_grace``; True when everything accepted was exported.

        What could not be is counted (``rag.processor.export.dropped{reason}``) and the last log line
        says how many items of each signal, never "everything flushed" when something was not."""
        with self._stop_lock:
            if self._stopped.is_set():
                return True
            grace = self.config.processor.shutdown_grace
            deadline = time.monotonic() + grace
            left = lambda: max(0.0, deadline - time.monotonic())  # noqa: E731
            exporter: OtlpFanOut | None = getattr(self, "exporter", None)
            dropped_before = exporter.dropped() if exporter is not None else Counter()
            if exporter is not None:
                exporter.drain_until(deadline)  # from now on a full queue waits for room instead of dropping
            left_behind = 0
            if getattr(self, "receiver", None) is not None:
                self.receiver.stop(min(1.0, left()))
            if self.reports is not None:
                self.reports.stop(min(5.0, left()))
            if getattr(self, "pipeline", None) is not None and not self.pipeline.shutdown(left()):
                left_behind = self.pipeline.items_in_flight
            if getattr(self, "metrics", None) is not None:
                self.metrics.shutdown(min(2.0, left()))
            store_ok = True
            if self.maintenance is not None:
                self.maintenance.stop(min(5.0, left()))
            if self.store_writer is not None:
                store_ok = self.store_writer.stop(max(left(), 2.0))  # local disk: worth a moment past the grace
            if self.leadership is not None:
                self.leadership.stop()  # after the last write: hand the jobs over at once
            if self.store is not None:
                self.store.close()
            if self.dispatcher is not None:
                self.dispatcher.close(min(2.0, left()))
            if exporter is not None:
                exporter.shutdown(left())
            if self._http_server is not None:
                self._http_server.should_exit = True
                if self._http_thread is not None:
                    self._http_thread.join(2.0)
            self._stopped.set()
            lost = (exporter.dropped() if exporter is not None else Counter()) - dropped_before
            return self._report_stop(lost, left_behind, store_ok)

    def _report_stop(self, lost: Counter[tuple[str, str]], left_behind: int, store_ok: bool) -> bool:
        """The last log line: what was not exported, by signal and reason (or that nothing was lost)."""
        parts = [f"{n} {signal} ({reason})" for (signal, reason), n in sorted(lost.items()) if n]
        if left_behind:
            parts.append(f"{left_behind} items still in the pipeline (grace period ran out)")
        if not store_ok:
            parts.append("store writes still queued")
        if parts:
            logger.warning("rag-otel serve stopped with losses (counted in rag.processor.export.dropped): %s",
                           ", ".join(parts))
            return False
        logger.info("rag-otel serve stopped: everything accepted was exported")
        return True

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to stop (signal-safe: only sets an event)."""
        self._stop_requested.set()

    def serve_forever(self) -> bool:
        """Run until SIGTERM/SIGINT, then stop cleanly; returns what :meth:`stop` returned."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _s, _f: self.request_stop())
        while not self._stop_requested.wait(0.5):
            pass
        logger.info("rag-otel serve: stopping (grace %.1fs)", self.config.processor.shutdown_grace)
        return self.stop()

    # --- status ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        st = self.pipeline.stats
        exports = self.exporter.status() if getattr(self, "exporter", None) is not None else []
        # every downstream failing: the processor still takes data, but nothing of it arrives anywhere
        all_failing = bool(exports) and all(e["state"] == "failing" for e in exports)
        return {
            "status": "stopping" if self._stop_requested.is_set() else "degraded" if all_failing else "ok",
            "export_status": exports,
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
            "listeners": {"otlp_grpc": self.receiver.grpc_address, "otlp_http": self.receiver.http_address,
                          "http": self.http_address},
            "exports": [redact_url(e.url) for e in self.config.processor.exports],
            "pipeline": {
                "queue_depth": self.pipeline.queue_depth,
                "traces_in_flight": self.pipeline.in_flight_traces,
                "records": st.records,
                "scored": st.scored,
                "unscored_flushes": st.unscored_flushes,
                "passed_through": st.passed_through, "ingestion": st.ingestion,
                "stage_errors": st.stage_errors,
                "failed_traces": st.failed_traces,
                "rejected_values": st.rejected_values,
                "bytes_in_flight": self.limiter.in_flight(),
            },
            "scorer": self.pipeline.scorer is not None,
            "store": None if self.store_writer is None else self._store_health(),
            "alert_rules": len(self.alerts.rules) if self.alerts is not None else 0,
        }

    def _store_health(self) -> dict[str, Any]:
        w = self.store_writer.stats
        return {
            "path": self.store.path, "backend": self.store.kind, "shared": self.store.shared,
            "status": "unreachable" if w.unavailable else "ok",
            "written": w.written, "dropped": w.dropped, "failed_batches": w.failed_batches,
            "dead_lettered": w.dead_lettered,
            "buffered": self.store_writer.buffered, "buffer_bound": self.config.processor.store_buffer,
            "retries": w.retries, "last_error": w.last_error,
            "leader": {job: s["leader"] for job, s in self.leadership.status().items()},
        }

    def __enter__(self) -> ProcessorService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
