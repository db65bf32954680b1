"""Run one report end to end: build, write files, deliver, record the run in the store.

The one entry point the CLI, the scheduler and the web API's "run now" share, so a report made
by hand and one made on schedule are the same files and the same ``report_runs`` row.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

from rag_otel.config import ModelObservation
from rag_otel.reports.builder import Progress, build_report
from rag_otel.reports.deliver import default_out_dir, deliver, write_report
from rag_otel.reports.period import report_period
from rag_otel.reports.render import parse_formats
from rag_otel.store.store import Store, utc

logger = logging.getLogger("rag_otel.reports")

Trigger = Literal["manual", "schedule", "api"]


def run_report(store: Store, kind: str, first_day: str | date, config: ModelObservation | None = None, *,
               out: str | os.PathLike[str] | None = None, formats: Sequence[str] | str | None = None,
               send: bool = False, trigger: Trigger = "manual", env: dict[str, str] | None = None,
               progress: Progress | None = None, now: float | None = None) -> dict[str, Any]:
    """Build and write the report (and deliver it when ``send``); returns the run as a dict.

    The run is recorded in ``report_runs`` when the store is writable: ``status`` is ``ok``,
    ``partial`` (files written, a delivery channel failed) or ``failed`` (nothing usable; the
    exception is re-raised after recording).  ``out`` defaults to ``reporting.out_dir`` or
    ``<data_dir>/reports``; ``formats`` to ``reporting.formats``.
    """
    config = config or store.config
    rp = report_period(kind, first_day, config.reporting.timezone)
    fmts = parse_formats(formats, config.reporting.formats)
    target = Path(out) if out is not None else default_out_dir(config.reporting, config.processor.data_dir)
    ran_at = time.time() if now is None else now
    try:
        sched = config.reporting.daily_report if rp.kind == "daily" else config.reporting.weekly_report
        charts = any(f != "json" for f in fmts) or (send and bool(sched.recipients))  # JSON alone needs none
        report = build_report(store, kind, rp.first_day, config, charts=charts, progress=progress, now=ran_at)
        files = write_report(report, target, fmts)
    except Exception as e:
        _record(store, rp, "failed", {"trigger": trigger, "name": rp.label}, f"{type(e).__name__}: {e}", ran_at)
        raise
    deliveries = deliver(report, config.reporting, files, env=env) if send else {}
    status = "ok" if all(v == "ok" for v in deliveries.values()) else "partial"
    outputs = {"trigger": trigger, "name": report.name, "files": [str(p.resolve()) for p in files],
               "deliveries": deliveries, "summary": report.sections["summary"],
               "recommendations": len(report.sections["recommendations"])}
    errors = "; ".join(f"{k}: {v}" for k, v in deliveries.items() if v != "ok") or None
    run_id = _record(store, rp, status, outputs, errors, ran_at)
    period = report.to_dict()["period"]
    return {"id": run_id, "kind": report.kind, "name": report.name, "status": status,
            "period_start": period["start"], "period_end": period["end"],
            **{k: outputs[k] for k in ("trigger", "files", "deliveries", "summary")}}


def _record(store: Store, rp: Any, status: str, outputs: dict[str, Any], error: str | None,
            ran_at: float) -> int | None:
    if store.read_only:
        return None
    try:
        return store.write_report_run(rp.kind, rp.start, rp.end, status=status, outputs=outputs, error=error,
                                      ran_at=utc(ran_at))
    except Exception:  # the report exists even if its bookkeeping failed; say so, do not lose it
        logger.exception("rag-otel report %s: could not record the run in the store", rp.label)
        return None


def list_reports(store: Store, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
    """Recorded runs, newest first (``outputs`` holds files, deliveries and the summary)."""
    return store.report_runs(limit, kind=kind)


def report_files(store: Store, run_id: int) -> list[Path] | None:
    """The files a recorded run wrote (None for an unknown run); some may have been removed since."""
    rows = store.dicts("SELECT outputs FROM report_runs WHERE id = ?", [int(run_id)])
    if not rows:
        return None
    import json

    return [Path(f) for f in json.loads(rows[0]["outputs"] or "{}").get("files", [])]


def report_file(store: Store, run_id: int, name: str) -> Path | None:
    """The file named ``name`` (a base name, e.g. ``daily-2026-11-18-cost.png``) that run ``run_id`` wrote,
    if it still exists: only recorded files are served, so a name can never reach elsewhere on disk."""
    for p in report_files(store, run_id) or ():
        if p.name == name and p.is_file():
            return p
    return None


def get_report(store: Store, run_id: int, fmt: str = "json") -> Path | None:
    """The file of format ``fmt`` (json/markdown/html) a recorded run wrote, if it still exists."""
    ext = {"json": ".json", "markdown": ".md", "html": ".html"}.get(fmt)
    if ext is None:
        raise ValueError(f"unknown report format {fmt!r}: use json, markdown or html")
    for p in report_files(store, run_id) or ():
        if p.suffix == ext and p.exists():
            return p
    return None
