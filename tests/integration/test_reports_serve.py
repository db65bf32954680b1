"""Scheduled reports inside a real ``rag-otel serve`` (ProcessorService, real clock): started with
the service, the report missed while it was down runs when it comes back, and a second restart
does not run it again (the run is persisted in the store's report_runs)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from rag_otel.config import ModelObservation, load_config
from rag_otel.processor.service import ProcessorService
from rag_otel.reports import last_occurrence
from rag_otel.store import Store

SEED = Path(__file__).resolve().parents[1] / "data" / "model_observation_config.yaml"


def config(tmp_path: Path) -> ModelObservation:
    """The seed config as-is (recipients, no SMTP server: files are written, the email error recorded)."""
    cfg = load_config(SEED, env={})
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp_path / "data")
    p.shutdown_grace = 5.0
    cfg.reporting.formats = ["json", "markdown"]
    return cfg


def scheduled(data_dir: str) -> list[tuple[str, str, str]]:
    with Store.open(data_dir, read_only=True) as store:
        return [tuple(r) for r in store.sql("""SELECT kind, strftime(period_start, '%Y-%m-%d'), status
            FROM report_runs WHERE json_extract_string(outputs, '$.trigger') = 'schedule' ORDER BY id""")]


def wait_runs(svc: ProcessorService, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc.store.sql("SELECT count(*) FROM report_runs")[0][0] >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} report runs after {timeout}s")


def test_serve_catches_up_the_missed_reports_once(tmp_path: Path):
    cfg = config(tmp_path)
    rep = cfg.reporting
    # a store that already ran scheduled reports long ago: the service was down since
    with Store.open(cfg.processor.data_dir, config=cfg) as store:
        for kind in ("daily", "weekly"):
            store.write_report_run(kind, datetime(2026, 1, 5), datetime(2026, 1, 6), status="ok",
                                   outputs={"trigger": "schedule"}, ran_at=datetime(2026, 1, 6, 9))
    now = time.time()
    expect = [(kind, last_occurrence(kind, s, rep.timezone, now)[1].isoformat())
              for kind, s in (("daily", rep.daily_report), ("weekly", rep.weekly_report))]

    svc = ProcessorService(cfg, metrics_interval=5).start()
    try:
        assert svc.reports is not None
        wait_runs(svc, 4)
    finally:
        svc.stop()
    assert scheduled(cfg.processor.data_dir)[2:] == [(k, d, "partial") for k, d in expect]
    out = Path(cfg.processor.data_dir) / "reports"
    for kind, day in expect:
        assert (out / f"{kind}-{day}.json").exists() and (out / f"{kind}-{day}.md").exists()

    svc = ProcessorService(cfg, metrics_interval=5).start()  # restart: nothing is due twice
    try:
        deadline = time.monotonic() + 30
        while svc.reports.last_tick is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert svc.reports.last_tick is not None  # it looked, and found nothing due
        assert svc.store.sql("SELECT count(*) FROM report_runs")[0][0] == 4
    finally:
        svc.stop()
    assert len(scheduled(cfg.processor.data_dir)) == 4
