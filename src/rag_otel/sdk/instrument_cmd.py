"""``rag-otel instrument [options] python app.py ...``: run an unmodified app fully instrumented.

This is ``opentelemetry-instrument`` with our distro and configurator selected and a few
rag-otel options turned into environment variables; the run itself (sitecustomize on
PYTHONPATH, then exec of the command) is opentelemetry-instrumentation's own code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Any

from rag_otel.sdk.distro import ENTRY_POINT_NAME

_OPTION_ENV = {
    "service_name": "OTEL_SERVICE_NAME",
    "endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "protocol": "OTEL_EXPORTER_OTLP_PROTOCOL",
    "traces_exporter": "OTEL_TRACES_EXPORTER",
    "metrics_exporter": "OTEL_METRICS_EXPORTER",
    "logs_exporter": "OTEL_LOGS_EXPORTER",
    "capture": "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "config": "RAG_OTEL_CONFIG",
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "instrument",
        help="run a Python app with rag-otel auto-instrumentation (zero code changes)",
        description="Run a Python program with rag-otel's OpenTelemetry auto-instrumentation: no code changes. "
                    "The options become the standard OTEL_* variables for the run.",
        epilog="example: rag-otel instrument --service-name support-bot --capture scoring_only python app.py",
    )
    p.add_argument("--config", help="rag-otel YAML file (else $RAG_OTEL_CONFIG)")
    p.add_argument("--service-name", help="service.name (else $OTEL_SERVICE_NAME)")
    p.add_argument("--endpoint", help="OTLP endpoint, e.g. http://127.0.0.1:4317")
    p.add_argument("--protocol", choices=["grpc", "http/protobuf"])
    p.add_argument("--traces-exporter", help="otlp, console or none")
    p.add_argument("--metrics-exporter", help="otlp, console or none")
    p.add_argument("--logs-exporter", help="otlp, console or none")
    p.add_argument("--capture", choices=["none", "scoring_only", "full"], help="content capture mode")
    p.add_argument("command", help="the program to run, e.g. python")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for attr, env in _OPTION_ENV.items():
        value = getattr(args, attr, None)
        if value is not None:
            os.environ[env] = os.path.abspath(value) if attr == "config" else value
    os.environ["OTEL_PYTHON_DISTRO"] = ENTRY_POINT_NAME
    os.environ["OTEL_PYTHON_CONFIGURATOR"] = ENTRY_POINT_NAME
    if shutil.which(args.command) is None:
        print(f"rag-otel instrument: command not found: {args.command}", file=sys.stderr)
        return 127
    from opentelemetry.instrumentation.auto_instrumentation import run as otel_run

    # opentelemetry-instrument parses sys.argv itself; hand it only the command line to run.
    sys.argv = ["opentelemetry-instrument", args.command, *args.args]
    otel_run()  # execs the command: does not return
    return 0
