"""``rag-otel serve``: run the processor until SIGTERM/SIGINT.  Flags override the config file."""

from __future__ import annotations

import argparse
import logging
import sys

from rag_otel.config import ConfigError, Endpoint, ModelObservation, load_config
from rag_otel.store.location import add_store_flags, apply_store_flags


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="run the quality/alert processor (OTLP in, enriched OTLP out)",
        description="Receive OTLP from apps or a Collector, score RAG answers, derive metrics, evaluate "
                    "alerts and export downstream. Flags override model_observation.processor in the file.",
    )
    p.add_argument("--config", metavar="FILE", help="rag-otel YAML (default: $RAG_OTEL_CONFIG, else built-in defaults)")
    p.add_argument("--otlp-grpc", metavar="HOST:PORT", help="OTLP/gRPC listen address (default 127.0.0.1:4317)")
    p.add_argument("--otlp-http", metavar="HOST:PORT", help="OTLP/HTTP listen address (default 127.0.0.1:4318)")
    p.add_argument("--http", metavar="HOST:PORT", help="health, /metrics and API address (default 127.0.0.1:8686)")
    p.add_argument("--export", metavar="URL", action="append", default=[],
                   help="downstream OTLP endpoint, repeatable: http://host:4318 (OTLP/HTTP) or grpc://host:4317; "
                        "a suffix picks the signals it takes, e.g. grpc://jaeger:4317#traces or "
                        "http://host:4318#metrics,logs (default: traces, metrics and logs)")
    p.add_argument("--data-dir", metavar="DIR", help="where the processor keeps its data")
    add_store_flags(p)
    p.add_argument("--metrics-interval", metavar="SECONDS", type=float, default=10.0,
                   help="how often derived metrics are exported downstream (default 10)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=run)


def apply_flags(cfg: ModelObservation, args: argparse.Namespace) -> ModelObservation:
    """Flags win over the file; ``--export`` replaces the file's exports when given."""
    p = cfg.processor
    for flag, attr in (("otlp_grpc", "otlp_grpc"), ("otlp_http", "otlp_http"), ("http", "http"),
                       ("data_dir", "data_dir")):
        value = getattr(args, flag, None)
        if value:
            setattr(p, attr, value)
    if args.export:
        p.exports = [Endpoint.from_flag(u) for u in args.export]
    return apply_store_flags(cfg, args)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = apply_flags(load_config(args.config), args)
    except ConfigError as e:
        print(f"rag-otel serve: {e}", file=sys.stderr)
        return 2
    if args.metrics_interval <= 0:
        print("rag-otel serve: --metrics-interval must be > 0", file=sys.stderr)
        return 2
    from rag_otel.processor.service import ProcessorService

    service = ProcessorService(cfg, metrics_interval=args.metrics_interval)
    try:
        service.start()
    except ConfigError as e:  # e.g. an alert rule naming an unknown metric: a config problem, like the file's
        print(f"rag-otel serve: {e}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as e:
        print(f"rag-otel serve: {e}", file=sys.stderr)
        return 1
    print(f"rag-otel serve: dashboard http://{service.http_address}/ (API docs /docs); OTLP in on "
          f"{service.receiver.grpc_address} (gRPC) and {service.receiver.http_address} (HTTP); Ctrl-C stops",
          file=sys.stderr, flush=True)
    service.serve_forever()
    return 0
