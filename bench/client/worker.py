"""One contender's process: set up the SDK and the contender, then run timed batches on command.

Protocol (JSON lines): the first line out is a hello with the installed versions (or a setup
error). Then each line in, ``{"workload": w, "n": N, "warmup": W, "gc": bool, "detail": bool}``,
answers one line with the process CPU seconds of the N timed calls and the spans they emitted
(with ``detail``, also the metric names and span attribute keys). Stdin closed: exit.
CPU is ``time.process_time()`` (all threads of this process); no SDK thread runs in the
background with this setup, so everything the instrumentation costs lands in the window.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import json
import pstats
import sys
import time
import traceback
from importlib import metadata

PACKAGES = (
    "openai", "opentelemetry-sdk", "opentelemetry-instrumentation", "rag-otel",
    "opentelemetry-instrumentation-genai-openai", "opentelemetry-util-genai",
    "opentelemetry-instrumentation-openai", "opentelemetry-semantic-conventions-ai",
    "openinference-instrumentation-openai", "openinference-instrumentation",
)


def _versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[p] = metadata.version(p)
    return out


def _say(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _count_calls(run, hooks, client, n: int) -> float:  # type: ignore[no-untyped-def]
    """Python + C function calls per workload call, counted by cProfile: a load-independent
    measure of work (the CPU numbers move with the machine's load; this does not)."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        run(hooks, client)
    prof.disable()
    return pstats.Stats(prof).total_calls / n  # type: ignore[attr-defined]


def main() -> None:
    contender, base_url = sys.argv[1], sys.argv[2]
    try:
        import openai

        from client import sdk_setup
        from client.contenders import SETUP
        from client.workloads import WORKLOADS

        sdk = sdk_setup.install()
        hooks = SETUP[contender](sdk)
        client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
        WORKLOADS["chat"](hooks, client)  # one real call proves the setup works end to end
    except Exception as e:
        _say({"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]})
        return
    _say({"ok": True, "versions": _versions(), "python": sys.version.split()[0]})

    for line in sys.stdin:
        cmd = json.loads(line)
        run = WORKLOADS[cmd["workload"]]
        n = int(cmd["n"])
        if cmd.get("count_calls"):
            _say({"ok": True, "calls": _count_calls(run, hooks, client, n)})
            continue
        try:
            for _ in range(int(cmd.get("warmup", 0))):
                run(hooks, client)
            if cmd.get("gc"):
                gc.collect()
            spans_before = sdk.spans.names.copy()
            logs_before = sdk.logs.count
            t0 = time.process_time()
            for _ in range(n):
                run(hooks, client)
            cpu = time.process_time() - t0
        except Exception as e:
            _say({"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]})
            continue
        spans = sdk.spans.names - spans_before
        out = {"ok": True, "cpu": cpu, "n": n, "spans": dict(spans), "logs": sdk.logs.count - logs_before}
        if cmd.get("detail"):  # what was emitted, for the fairness check (collection is outside timing)
            out["metrics"] = sorted(sdk.metric_points())
            out["attribute_keys"] = {k: sorted(v) for k, v in sdk.spans.attribute_keys.items() if k in spans}
        _say(out)


if __name__ == "__main__":
    main()
