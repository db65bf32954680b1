"""``rag-otel analytics <name> --period 7d`` (rich tables or ``--json``) and ``rag-otel analytics export``."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

from rag_otel.analytics import ANALYTICS, analyse, parse_period
from rag_otel.store.location import add_store_flags, apply_store_flags


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("analytics", help="analytics over the store (tables or JSON), Parquet export",
                              description="Analyse the processor's store over a period and print tables "
                                          "(or JSON with --json); `export` writes its raw tables as Parquet. "
                                          "Reads through a running `rag-otel serve` when it holds the store.",
                              epilog="examples: rag-otel analytics performance --period 24h; rag-otel analytics "
                                     "all --period 7d --json; rag-otel analytics export --out ./parquet")
    p.add_argument("name", choices=[*ANALYTICS, "all", "export"],
                   help="an analysis, 'all' of them, or 'export' (raw tables to Parquet)")
    p.add_argument("--period", default=None, help="1h, 24h, 7d, 30d... ending now or at --to (default 24h)")
    p.add_argument("--from", dest="start", default=None, help="start (ISO date/time, UTC)")
    p.add_argument("--to", dest="end", default=None, help="end (ISO date/time, UTC; default now)")
    p.add_argument("--data-dir", default=None, help="the processor's data directory (default from config)")
    add_store_flags(p)
    p.add_argument("--config", default=None, help="rag-otel.yaml (default $RAG_OTEL_CONFIG)")
    p.add_argument("--service", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--user", dest="user_id", default=None, help="user_behavior: one user in detail")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--format", default="parquet", choices=["parquet"], help="export: file format")
    p.add_argument("--out", default=None, help="export: output directory")
    p.add_argument("--server", default=None, metavar="URL",
                   help="read through this running `rag-otel serve` (default: only when it holds the store, at "
                        "$RAG_OTEL_SERVER or processor.http)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from rag_otel.config import ConfigError, load_config
    from rag_otel.remote import RemoteError, open_store_or_server
    from rag_otel.store import StoreError

    try:
        cfg = apply_store_flags(load_config(args.config), args)
        period = parse_period(args.period, start=args.start, end=args.end) if (
            args.name != "export" or args.period or args.start) else None
    except (ConfigError, ValueError) as e:
        print(f"rag-otel analytics: {e}", file=sys.stderr)
        return 2
    if args.name == "export" and not args.out:
        print("rag-otel analytics export: --out DIR is required", file=sys.stderr)
        return 2
    try:
        source = open_store_or_server("analytics", cfg, args.data_dir or cfg.processor.data_dir, args.server)
        with source:
            if args.name == "export":
                return _export(source, args, period)
            names = list(ANALYTICS) if args.name == "all" else [args.name]
            results = _compute(source, names, period, args)
    except (StoreError, RemoteError) as e:
        print(f"rag-otel analytics: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results if args.name == "all" else results[args.name], indent=2))
    else:
        _print_tables(results)
    return 0


def _compute(source: Any, names: list[str], period: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Each analysis over the store, or asked of the serve that holds it (the same function computes it)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from rag_otel.remote import Remote

    one = source.analysis if isinstance(source, Remote) else partial(analyse, store=source)

    results: dict[str, Any] = {}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True, disable=args.json and not sys.stderr.isatty()) as bar:
        task = bar.add_task("analysing", total=len(names))
        for name in names:
            bar.update(task, description=f"analysing {name}")
            results[name] = one(name, period=period, service=args.service, model=args.model, user_id=args.user_id)
            bar.advance(task)
    return results


def _export(source: Any, args: argparse.Namespace, period: Any) -> int:
    """Each table to ``--out``: written by the store, or by the serve that holds it and downloaded."""
    from rich.console import Console
    from rich.progress import Progress

    from rag_otel.remote import Remote
    from rag_otel.store import TABLES

    written = []
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("exporting", total=len(TABLES))
        for t in TABLES:
            if isinstance(source, Remote):
                written.append(source.export_table(t, Path(args.out) / f"{t}.parquet", period))
            else:
                written += source.export_parquet(args.out, tables=[t], start=period.start if period else None,
                                                 end=period.end if period else None)
            bar.advance(task)
    for path in written:
        print(path)
    return 0


def _print_tables(results: dict[str, Any]) -> None:
    """Scalars as one key/value table; each list of rows and each dict of dicts as its own table."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for name, result in results.items():
        period = result.get("period", {})
        scalars = Table(title=f"{name}  {period.get('start', '')} .. {period.get('end', '')}", show_header=False)
        nested: list[tuple[str, Any]] = []
        for key, value in _flatten(result):
            if key == "period":
                continue
            if isinstance(value, list) and value and isinstance(value[0], dict):
                nested.append((key, value))
            elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
                nested.append((key, [{"": k, **v} for k, v in value.items()]))
            else:
                scalars.add_row(key, _cell(value))
        console.print(scalars)
        for key, rows in nested:
            cols = list(dict.fromkeys(c for row in rows for c in row))
            cells = [{c: _cell(row.get(c)) for c in cols} for row in rows[:25]]
            parts = column_groups(cols, cells, console.width)
            for i, group in enumerate(parts):
                more = f" ({i + 1}/{len(parts)})" if len(parts) > 1 else ""
                t = Table(title=f"{name}: {key}{more}")
                for c in group:
                    t.add_column(c, overflow="fold")
                for row in cells:
                    t.add_row(*(row[c] for c in group))
                if len(rows) > 25:
                    t.caption = f"{len(rows) - 25} more rows (use --json)"
                console.print(t)


def column_groups(cols: list[str], cells: list[dict[str, str]], width: int) -> list[list[str]]:
    """Columns split into tables that each fit ``width`` (80 when piped), each repeating the first
    column so a row can still be told apart: squeezing 10 columns into 80 wraps every number."""
    need = {c: max([len(c), *(len(r[c]) for r in cells)]) + 3 for c in cols}  # cell padding and border
    groups: list[list[str]] = []
    for c in cols[1:] or cols:
        if groups and sum(need[x] for x in groups[-1]) + need[c] + 1 <= width:
            groups[-1].append(c)
        else:
            groups.append([cols[0], c] if c != cols[0] else [c])
    return groups or [cols]


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not all(isinstance(x, dict) for x in v.values()):
            out += _flatten(v, f"{key}.")
        else:
            out.append((key, v))
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)[:80]
    return str(v)
