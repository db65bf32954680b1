"""Which GenAI semantic-convention names the SDK emits: the transition switch, read once.

The GenAI conventions left open-telemetry/semantic-conventions after v1.41 and released v0.1.0 on
their own; where that release renamed an attribute we emit, we emit the new name.  Their
transition guidance asks instrumentations that emitted v1.36 or older names to keep them by
default; rag-otel never did (it started on v1.41), so the newest names are our default, and
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental/dup`` adds the v1.41 names beside
them for dashboards still reading those.  The processor reads both, whatever the app sends.
Metrics differ (see :func:`metric_generations`): their v1.41 names stay the default.
"""

from __future__ import annotations

import functools

from rag_otel import semconv, semconv_opt_in


@functools.lru_cache(maxsize=1)
def duplicate_old_names() -> bool:
    """True under ``gen_ai_latest_experimental/dup``."""
    return semconv.OPT_IN_GEN_AI_DUP in semconv_opt_in.opt_in_values()


@functools.lru_cache(maxsize=1)
def metric_generations() -> tuple[bool, bool]:
    """``(v1.41 metric names, v0.1.0 metric names)``, read once (see ``rag_otel.semconv_opt_in``)."""
    return semconv_opt_in.metric_generations()


def retrieval_top_k(top_k: int, attrs: dict[str, object]) -> None:
    """``gen_ai.retrieval.top_k`` (v0.1.0), plus v1.41's ``gen_ai.request.top_k`` in dup mode."""
    attrs[semconv.GEN_AI_RETRIEVAL_TOP_K] = int(top_k)
    if duplicate_old_names():
        attrs[semconv.GEN_AI_REQUEST_TOP_K] = int(top_k)
