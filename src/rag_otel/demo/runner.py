"""``rag-otel demo``: the processor in this process, the demo app as a child process, traffic, a report.

The app runs in its own process because that is how users run it: ``rag_otel.configure()`` owns that
process's global OpenTelemetry providers and exports over OTLP to the processor, exactly as in
production; the processor (and its dashboard) stays free of the app's instrumentation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from rag_otel.config import ModelObservation, load_config, parse_duration
from rag_otel.demo.traffic import TrafficGenerator

APP_START_TIMEOUT = 240.0  # loading MiniLM (torch) on a busy 2-core machine can take a minute


@dataclass
class DemoOptions:
    queries: int | None = None
    duration: float | None = None
    rate: float = 4.0
    workers: int = 4
    seed: int = 7
    embedding: str = "auto"
    config: str | None = None
    data_dir: str | None = None
    http: str | None = None
    otlp_grpc: str | None = None
    otlp_http: str | None = None
    app_port: int = 0


def demo_config(opts: DemoOptions) -> ModelObservation:
    """The bundled demo-config.yaml (or ``--config``), with the command's address and data-dir flags applied."""
    if opts.config:
        cfg = load_config(opts.config)
    else:
        with resources.as_file(resources.files("rag_otel.demo") / "demo-config.yaml") as path:
            cfg = load_config(path)
    p = cfg.processor
    for attr in ("http", "otlp_grpc", "otlp_http", "data_dir"):
        if getattr(opts, attr):
            setattr(p, attr, getattr(opts, attr))
    return cfg


def _console() -> Console:
    """A terminal gets rich's live view; a pipe or file gets long unwrapped lines (paths and URLs stay whole)."""
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 200), soft_wrap=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Demo:
    def __init__(self, opts: DemoOptions, console: Console | None = None) -> None:
        self.opts = opts
        self.console = console or _console()
        self.cfg = demo_config(opts)
        self.service: Any = None
        self.app: subprocess.Popen[bytes] | None = None
        self.app_url = ""
        self.seen_alerts = 0
        self.fired: set[str] = set()
        self.resolved: set[str] = set()
        self.interrupted = False

    # --- parts ---------------------------------------------------------------------------------
    def start_processor(self) -> None:
        from rag_otel.processor.service import ProcessorService

        self.service = ProcessorService(self.cfg, metrics_interval=5.0).start()

    def start_app(self) -> None:
        port = self.opts.app_port or free_port()
        self.app_url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        env.update({
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{self.service.receiver.grpc_address}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_SERVICE_NAME": env.get("OTEL_SERVICE_NAME", "rag-demo-app"),
            "OTEL_BSP_SCHEDULE_DELAY": "300",  # the demo wants spans at the processor quickly
            "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        })
        cmd = [sys.executable, "-m", "rag_otel.cli", "demo", "--serve-app", "--host", "127.0.0.1",
               "--port", str(port), "--embedding", self.opts.embedding]
        self.app = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + APP_START_TIMEOUT
        with self.console.status("starting the demo app (loading the corpus and the embedding model)..."):
            while time.monotonic() < deadline:
                if self.app.poll() is not None:
                    raise RuntimeError(f"the demo app exited with code {self.app.returncode} while starting")
                try:
                    info = httpx.get(f"{self.app_url}/health", timeout=1.0).json()
                    self.app_info = info
                    return
                except (httpx.HTTPError, ValueError):
                    time.sleep(0.3)
        raise RuntimeError(f"the demo app did not answer on {self.app_url}/health within {APP_START_TIMEOUT:.0f}s")

    def stop_app(self) -> None:
        """SIGTERM: uvicorn finishes, then the app's OTel providers flush at exit."""
        if self.app is None or self.app.poll() is not None:
            return
        self.app.send_signal(signal.SIGTERM)
        try:
            self.app.wait(15)
        except subprocess.TimeoutExpired:
            self.app.kill()
            self.app.wait(5)

    # --- what the user sees ----------------------------------------------------------------------
    def print_where(self) -> None:
        http = f"http://{self.service.http_address}"
        t = Table(title="rag-otel demo is running", show_header=False, title_justify="left")
        t.add_row("Dashboard", f"{http}/")
        t.add_row("REST API", f"{http}/api/v1/analytics  {http}/api/v1/alerts/active  {http}/api/v1/queries  "
                              f"{http}/openapi.json")
        t.add_row("Metrics", f"{http}/metrics")
        t.add_row("Health", f"{http}/health")
        t.add_row("Demo app", f"{self.app_url}/ask  (model {self.app_info['model']}, "
                              f"embedding {self.app_info['embedding']}, {self.app_info['passages']} passages)")
        t.add_row("OTLP in", f"grpc {self.service.receiver.grpc_address}, http {self.service.receiver.http_address}")
        t.add_row("Data", str(Path(self.cfg.processor.data_dir).resolve()))
        self.console.print(t)
        if self.app_info["model"] == "rag-otel-extractive":
            self.console.print("[yellow]No OPENAI_BASE_URL/OPENAI_API_KEY: answers come from the built-in "
                               "extractive answerer (no LLM); they say so. Its costs use a made-up DEMO PRICE "
                               "($0.15 / $0.60 per 1M input / output words, like gpt-4o-mini) so the cost views "
                               "have numbers.[/]")
        self.console.print("Press Ctrl-C to stop." if not self.opts.queries and not self.opts.duration
                           else "Runs until the queries are sent (Ctrl-C stops earlier).")

    def watch_alerts(self) -> None:
        """Print every alert state change once (firing / resolved) as it happens."""
        history = self.service.alerts.history() if self.service.alerts is not None else []
        for ev in history[self.seen_alerts:]:
            if ev.state == "firing":
                self.fired.add(ev.rule)
                self.console.print(f"[bold red]ALERT FIRING[/] {ev.rule} ({ev.severity}): {ev.message}")
            elif ev.state == "resolved" and ev.rule in self.fired:
                self.resolved.add(ev.rule)
                self.console.print(f"[bold green]ALERT RESOLVED[/] {ev.rule}: {ev.message}")
        self.seen_alerts = len(history)

    def status_table(self, traffic: TrafficGenerator, started: float) -> Table:
        s, st = traffic.stats, self.service.pipeline.stats
        active = [f"{a.rule}: {a.state}" for a in self.service.alerts.active()] if self.service.alerts else []
        t = Table(show_header=False, title="traffic and processor", title_justify="left")
        total = f"/{traffic.total}" if traffic.total else ""
        t.add_row("elapsed", f"{time.monotonic() - started:.0f}s")
        t.add_row("queries", f"{s.sent}{total} sent, {s.ok} ok, {s.failed} failed, p50 {s.p50() * 1000:.0f} ms")
        t.add_row("shapes", ", ".join(f"{k} {v}" for k, v in sorted(s.by_kind.items())))
        t.add_row("feedback", f"{s.feedback} sent" + (f", {s.feedback_failed} refused" if s.feedback_failed else ""))
        t.add_row("processor", f"{st.records} queries assembled, {st.scored} scored")
        t.add_row("alerts", ", ".join(active) or "none active")
        return t

    # --- the run ------------------------------------------------------------------------------
    async def drive(self) -> None:
        feedback = f"http://{self.service.http_address}/api/v1/feedback"
        traffic = TrafficGenerator(self.app_url, feedback, total=self.opts.queries, rate=self.opts.rate,
                                   workers=self.opts.workers, seed=self.opts.seed)
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            self.interrupted = True
            traffic.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt)
        started = time.monotonic()
        deadline = started + self.opts.duration if self.opts.duration else None
        task = asyncio.create_task(traffic.run(deadline))
        last_line = 0.0
        with Live(self.status_table(traffic, started), console=self.console, refresh_per_second=2,
                  transient=False) as live:
            while not task.done():
                await asyncio.sleep(0.5)
                self.watch_alerts()
                live.update(self.status_table(traffic, started))
                if not self.console.is_terminal and time.monotonic() - last_line >= 5:
                    last_line = time.monotonic()
                    s = traffic.stats
                    self.console.print(f"progress: {s.sent} sent, {s.ok} ok, {s.failed} failed, "
                                       f"{self.service.pipeline.stats.records} assembled")
            await task
            if not self.interrupted:
                await self._await_resolution(live, traffic, started)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    async def _await_resolution(self, live: Live, traffic: TrafficGenerator, started: float) -> None:
        """Give a firing alert time to resolve (its window empties of slow queries) so the demo shows both."""
        windows = [parse_duration(r.window) for r in self.cfg.performance_monitoring.alert_rules]
        deadline = time.monotonic() + (max(windows, default=0) + self.cfg.processor.trace_wait + 10)
        while time.monotonic() < deadline and not self.interrupted:
            self.watch_alerts()
            live.update(self.status_table(traffic, started))
            firing = [a for a in self.service.alerts.active() if a.state in ("firing", "pending")] \
                if self.service.alerts else []
            if not firing:
                return
            await asyncio.sleep(0.5)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until the processor has assembled everything the app sent and the store has written it."""
        deadline = time.monotonic() + timeout
        time.sleep(self.cfg.processor.trace_wait + 0.5)
        while time.monotonic() < deadline:
            if self.service.pipeline.queue_depth == 0 and self.service.pipeline.in_flight_traces == 0:
                break
            time.sleep(0.2)
        if self.service.store_writer is not None:
            self.service.store_writer.flush(max(1.0, deadline - time.monotonic()))

    def write_report(self) -> list[str]:
        from rag_otel.reports.run import run_report

        if self.service.store is None:
            self.console.print("[yellow]no analytics store (DuckDB not installed): no report[/]")
            return []
        today = datetime.now(ZoneInfo(self.cfg.reporting.timezone)).date()
        run = run_report(self.service.store, "daily", today, self.cfg, trigger="manual")
        return run["files"]

    def run(self) -> int:
        try:
            self.start_processor()
            self.start_app()
            self.print_where()
            asyncio.run(self.drive())
            self.watch_alerts()
            self.console.print("\nstopping the demo app...")
            self.stop_app()
            self.wait_idle()
            self.watch_alerts()
            files = self.write_report()
            for f in files:
                self.console.print(f"daily report: {f}")
        except RuntimeError as e:
            self.console.print(f"[red]rag-otel demo: {e}[/]")
            return 1
        finally:
            self.stop_app()
            if self.service is not None:
                self.service.stop()
        self.console.print(f"alerts fired: {', '.join(sorted(self.fired)) or 'none'}; "
                           f"resolved: {', '.join(sorted(self.resolved)) or 'none'}")
        self.console.print("demo finished.")
        return 0


def run_demo(opts: DemoOptions) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return Demo(opts).run()
