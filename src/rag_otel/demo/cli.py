"""``rag-otel demo``: the whole system on this machine (or, with ``--serve-app``, only the demo app)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the processor, an instrumented demo RAG app and traffic on this machine",
        description="Start the processor (dashboard, API, /metrics, alerts, store), a demo RAG app instrumented "
                    "with rag-otel and a traffic generator; runs until Ctrl-C, --duration or --queries, then "
                    "writes a daily report.  See docs/demo.md.")
    p.add_argument("--queries", type=int, metavar="N", help="stop after N queries (default: until Ctrl-C)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop sending traffic after SECONDS")
    p.add_argument("--rate", type=float, default=4.0, help="queries per second (default 4)")
    p.add_argument("--workers", type=int, default=4, help="concurrent simulated clients (default 4)")
    p.add_argument("--seed", type=int, default=7, help="traffic random seed (same seed, same traffic)")
    p.add_argument("--embedding", choices=["auto", "minilm", "hashing"], default="auto",
                   help="retriever embedding: MiniLM when installed (auto), or the numpy hashing embedding")
    p.add_argument("--config", metavar="FILE", help="rag-otel YAML instead of the bundled demo-config.yaml")
    p.add_argument("--data-dir", metavar="DIR", help="where the store and reports go (default ./rag-otel-demo-data)")
    p.add_argument("--http", metavar="HOST:PORT", help="dashboard/API/metrics address (default: a free port)")
    p.add_argument("--otlp-grpc", metavar="HOST:PORT", help="OTLP/gRPC receiver (default: a free port)")
    p.add_argument("--otlp-http", metavar="HOST:PORT", help="OTLP/HTTP receiver (default: a free port)")
    p.add_argument("--app-port", type=int, default=0, help="demo app port (default: a free port)")
    p.add_argument("--serve-app", action="store_true",
                   help="run only the instrumented demo app (exports to $OTEL_EXPORTER_OTLP_ENDPOINT)")
    p.add_argument("--host", default="127.0.0.1", help="--serve-app: listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="--serve-app: listen port (default 8000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.serve_app:
        from rag_otel.demo.app import serve_app

        serve_app(args.host, args.port, embedding=args.embedding)
        return 0
    for name in ("queries", "duration", "rate", "workers"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            print(f"rag-otel demo: --{name} must be > 0", file=sys.stderr)
            return 2
    from rag_otel.config import ConfigError
    from rag_otel.demo.runner import DemoOptions, run_demo

    opts = DemoOptions(queries=args.queries, duration=args.duration, rate=args.rate, workers=args.workers,
                       seed=args.seed, embedding=args.embedding, config=args.config, data_dir=args.data_dir,
                       http=args.http, otlp_grpc=args.otlp_grpc, otlp_http=args.otlp_http, app_port=args.app_port)
    try:
        return run_demo(opts)
    except (ConfigError, OSError) as e:
        print(f"rag-otel demo: {e}", file=sys.stderr)
        return 2
