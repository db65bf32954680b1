"""Analytics over the store: each function takes ``(store, period, **filters)`` and returns plain,
JSON-serialisable dicts (shapes in each docstring).  ``ANALYTICS`` is the registry the CLI, the
reports and the HTTP API iterate; ``run`` calls one by name.

    from rag_otel.store import Store
    from rag_otel.analytics import ANALYTICS, parse_period
    with Store.open("./rag-otel-data", read_only=True) as store:
        perf = ANALYTICS["performance"](store, parse_period("7d"), service="rag-app")

Common keyword filters: ``service``, ``model`` (all functions); ``user_id`` (``user_behavior``);
``source="auto" | "raw" | "rollup"`` (``performance``, ``model_usage_and_cost``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rag_otel.analytics.cost import model_usage_and_cost
from rag_otel.analytics.performance import performance, quality
from rag_otel.analytics.period import Period, parse_period, to_utc
from rag_otel.analytics.system import system_usage
from rag_otel.analytics.usage import feature_usage, query_patterns, user_behavior

Analysis = Callable[..., dict[str, Any]]

ANALYTICS: dict[str, Analysis] = {
    "performance": performance,
    "quality": quality,
    "query_patterns": query_patterns,
    "feature_usage": feature_usage,
    "user_behavior": user_behavior,
    "system_usage": system_usage,
    "model_usage_and_cost": model_usage_and_cost,
}


def run(name: str, store: Any, period: Period, **filters: Any) -> dict[str, Any]:
    """Call the analysis ``name``; unknown names raise KeyError listing the known ones."""
    try:
        fn = ANALYTICS[name]
    except KeyError:
        raise KeyError(f"unknown analysis {name!r}; choose one of {', '.join(ANALYTICS)}") from None
    return fn(store, period, **{k: v for k, v in filters.items() if v is not None})


def analyse(name: str, store: Any, period: Period, *, service: str | None = None, model: str | None = None,
            user_id: str | None = None) -> dict[str, Any]:
    """``run`` with the filters the CLI and the HTTP API both offer: one rule for both, so a CLI reading
    through a running serve prints what it prints over the store (``user_id`` narrows only user_behavior)."""
    return run(name, store, period, service=service, model=model,
               user_id=user_id if name == "user_behavior" else None)


__all__ = [
    "ANALYTICS", "Period", "analyse", "feature_usage", "model_usage_and_cost", "parse_period", "performance", "quality",
    "query_patterns", "run", "system_usage", "to_utc", "user_behavior",
]
