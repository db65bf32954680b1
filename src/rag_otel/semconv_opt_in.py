"""``OTEL_SEMCONV_STABILITY_OPT_IN`` read once per question, for the SDK and the processor alike.

The GenAI transition values: ``gen_ai_latest_experimental`` (the newest names only) and
``gen_ai_latest_experimental/dup`` (the newest names and the v1.41 ones they replaced).  What each
means for span attributes and for metrics is in ``sdk/conventions.py`` and docs/sdk.md.
"""

from __future__ import annotations

import os

from rag_otel import semconv


def opt_in_values() -> set[str]:
    """The values of ``OTEL_SEMCONV_STABILITY_OPT_IN`` (a comma list, as the spec defines it)."""
    return {v.strip().lower() for v in os.environ.get(semconv.ENV_SEMCONV_STABILITY_OPT_IN, "").split(",")}


def metric_generations() -> tuple[bool, bool]:
    """Which GenAI metric names to emit: ``(v1.41 names, v0.1.0 names)``.

    Unlike the span attributes, rag-otel's metrics did ship under their v1.41 names (dashboards,
    alert rules and the Grafana boards query them), so the spec's transition guidance applies as
    written: the v1.41 names stay the default, ``gen_ai_latest_experimental`` switches to the v0.1.0
    names only, and ``gen_ai_latest_experimental/dup`` emits both (to move dashboards over)."""
    values = opt_in_values()
    if semconv.OPT_IN_GEN_AI_DUP in values:
        return True, True
    if semconv.OPT_IN_GEN_AI_LATEST in values:
        return False, True
    return True, False
