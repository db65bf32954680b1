"""The ``rag-otel`` command. Each subcommand lives beside the code it drives and registers itself."""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, ...) each exposing ``register(subparsers)``; imported lazily so `rag-otel instrument`
# never pays for the processor's heavy imports.
_COMMANDS: dict[str, str] = {
    "instrument": "rag_otel.sdk.instrument_cmd",
    "serve": "rag_otel.processor.serve_cmd",
    "alerts": "rag_otel.alerts.cli",
    "report": "rag_otel.reports.cli",
    "analytics": "rag_otel.analytics.cli",
    "demo": "rag_otel.demo.cli",
}


DESCRIPTION = ("Observe RAG assistants with OpenTelemetry: instrument an app, run the quality and alert "
               "processor with its dashboard, and read analytics and reports.")
EPILOG = "Run `rag-otel COMMAND --help` for a command's options. Quick start: `rag-otel demo`."


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from rag_otel import __version__

    parser = argparse.ArgumentParser(prog="rag-otel", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"rag-otel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in _COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            missing = sub.add_parser(name, help=f"(unavailable: {e})")
            missing.set_defaults(func=lambda _a, e=e: _unavailable(e))
            continue
        mod.register(sub)
    return parser


def _unavailable(err: ImportError) -> int:
    print(f"rag-otel: this command needs an extra that is not installed: {err}", file=sys.stderr)
    print("install it with: pip install 'rag-otel[processor]'", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = argv[0] if argv and argv[0] in _COMMANDS else None  # --help/--version: every command is listed
    args = build_parser(only).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
