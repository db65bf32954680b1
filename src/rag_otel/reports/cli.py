"""``rag-otel report daily|weekly``: build a report from a data directory's store and write it."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rag_otel.store.location import add_store_flags, apply_store_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="build a daily or weekly report (JSON, Markdown, HTML, PNG charts)")
    sub = p.add_subparsers(dest="report_kind", required=True)
    for kind, flag, default_help in (
        ("daily", "--date", "the day (YYYY-MM-DD, in reporting.timezone; default: yesterday)"),
        ("weekly", "--week-start", "the week's first day (YYYY-MM-DD; default: the 7 days before today)"),
    ):
        k = sub.add_parser(kind, help=f"the {kind} report")
        k.add_argument(flag, dest="first_day", help=default_help)
        k.add_argument("--format", action="append", dest="formats", metavar="FMT",
                       help="json, markdown, html or png; repeatable or a comma list (default: reporting.formats)")
        k.add_argument("--out", help="directory (default: reporting.out_dir or <data-dir>/reports), or a file "
                                     "when one text format is asked for")
        k.add_argument("--data-dir", help="the rag-otel serve data directory (default: processor.data_dir)")
        add_store_flags(k)
        k.add_argument("--config", help="rag-otel YAML (default: $RAG_OTEL_CONFIG, else built-in defaults)")
        k.add_argument("--send", action="store_true", help="also deliver it as configured (email, webhook)")
        k.add_argument("--no-progress", action="store_true", help="no progress bar")
        k.add_argument("--server", metavar="URL",
                       help="have this running `rag-otel serve` build it and download the files (default: only "
                            "when it holds the store, at $RAG_OTEL_SERVER or processor.http)")
        k.set_defaults(func=_run, kind=kind)


def _default_day(kind: str, tz: str) -> date:
    from rag_otel.reports.period import zone

    today = datetime.now(timezone.utc).astimezone(zone(tz)).date()
    return today - timedelta(days=1 if kind == "daily" else 7)


def _run(args: argparse.Namespace) -> int:
    from rag_otel.config import ConfigError, load_config

    try:
        cfg = apply_store_flags(load_config(args.config), args)
        if args.data_dir:
            cfg.processor.data_dir = args.data_dir
        from rag_otel.reports.period import parse_day
        from rag_otel.reports.render import parse_formats

        day = parse_day(args.first_day) if args.first_day else _default_day(args.kind, cfg.reporting.timezone)
        formats = parse_formats(args.formats, cfg.reporting.formats)
    except (ConfigError, ValueError) as e:
        print(f"rag-otel report: {e}", file=sys.stderr)
        return 2
    from rag_otel.remote import Remote, RemoteError, open_store_or_server
    from rag_otel.reports.run import run_report
    from rag_otel.store import StoreError

    try:
        with open_store_or_server("report", cfg, cfg.processor.data_dir, args.server) as source:
            if isinstance(source, Remote):
                result = _through_server(source, args, day, formats, cfg)
            else:
                result = _with_progress(args, lambda step: run_report(
                    source, args.kind, day, cfg, out=args.out, formats=formats, send=args.send, progress=step))
    except (StoreError, RemoteError, OSError, ValueError) as e:
        print(f"rag-otel report: {e}", file=sys.stderr)
        return 1
    for f in result["files"]:
        print(f)
    print(covered(args.kind, day, cfg.reporting.timezone, (result.get("summary") or {}).get("queries")),
          file=sys.stderr)
    failed = {k: v for k, v in result["deliveries"].items() if v != "ok"}
    for k, v in result["deliveries"].items():
        print(f"{k}: {v}", file=sys.stderr)
    return 1 if failed else 0


def covered(kind: str, day: date, tz: str, queries: int | None) -> str:
    """Which days the report covers (and, when it found nothing, how to ask for the days with data)."""
    from rag_otel.reports.period import report_period

    rp = report_period(kind, day, tz)
    last = rp.first_day + timedelta(days=rp.days - 1)
    days = rp.first_day.isoformat() if rp.days == 1 else f"{rp.first_day.isoformat()} to {last.isoformat()}"
    line = f"{kind} report covers {days} ({tz})" + ("" if queries is None else f": {queries} queries")
    if queries == 0:
        flag = "--date" if kind == "daily" else "--week-start"
        line += (f"; no queries in those days (the default is the full {'day' if kind == 'daily' else '7 days'} "
                 f"before today, so today's queries are not in it: pass {flag} to choose the first day)")
    return line


def _with_progress(args: argparse.Namespace, work: Any) -> dict[str, Any]:
    """Run ``work(step)`` under a rich progress bar on a terminal (stderr), silently otherwise."""
    from rag_otel.reports.builder import STEPS

    if args.no_progress or not sys.stderr.isatty():
        return work(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{args.kind} report", total=len(STEPS) + 1)

        def step(name: str) -> None:
            bar.update(task, advance=1, description=f"{args.kind} report: {name}")

        result = work(step)
        bar.update(task, completed=len(STEPS) + 1)
    return result


def _through_server(remote: Any, args: argparse.Namespace, day: date, formats: list[str], cfg: Any) -> dict[str, Any]:
    """The serve that holds the store builds the report (and delivers it with ``--send``); its files are
    then downloaded to where ``--out`` (or the default folder) says, placed as a local run places them."""
    from rag_otel.reports.deliver import default_out_dir, out_layout

    folder, text_file = out_layout(args.out or default_out_dir(cfg.reporting, cfg.processor.data_dir), formats)
    run = remote.run_report(args.kind, day, formats, args.send)
    if run.id is None:
        raise ValueError(f"the server at {remote.server.url} built the report but did not record it, so its files "
                         "cannot be fetched")
    files = []
    for name in (Path(f).name for f in run.files):
        dest = folder / name if text_file is None or name.endswith(".png") else text_file
        files.append(str(remote.download_report_file(run.id, name, dest).resolve()))
    return {"files": files, "deliveries": run.deliveries}
