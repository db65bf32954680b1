"""Config rules checked and compiled once: metric and filters resolved, durations in seconds, labels fixed.

Every problem is reported at load time with the rule's name, so a typo in a metric never turns
into an alert that silently never fires.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rag_otel.alerts.metrics import METRICS, QUERY_FILTERS, SYSTEM_FILTERS, Metric
from rag_otel.alerts.windows import RAW_LIMIT
from rag_otel.config import AlertRule, ConfigError, parse_duration


def _eq(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt, "lt": operator.lt, "gte": operator.ge, "lte": operator.le, "eq": _eq,
}
SYMBOLS = {"gt": ">", "lt": "<", "gte": ">=", "lte": "<=", "eq": "=="}


@dataclass(frozen=True, slots=True)
class BaselineSpec:
    window: float
    offset: float
    factor: float
    min_samples: int


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: AlertRule
    metric: Metric
    filters: tuple[tuple[str, str], ...]
    window: float
    hold: float  # the rule's ``for``
    baseline: BaselineSpec | None
    labels: dict[str, str] = field(hash=False)
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def severity(self) -> str:
        return self.rule.severity

    def holds(self, value: float, threshold: float) -> bool:
        return OPERATORS[self.rule.operator](value, threshold)


def fingerprint(labels: dict[str, str]) -> str:
    """Stable id of one alert (rule + labels): the de-duplication key notifiers and the API share."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def compile_rule(rule: AlertRule) -> CompiledRule:
    """Resolve one rule; raise ConfigError naming the rule and what is wrong with it."""
    metric = METRICS.get(rule.metric)
    if metric is None:
        raise ConfigError(
            f"alert rule {rule.name!r}: unknown metric {rule.metric!r}; known metrics: {', '.join(METRICS)}"
        )
    allowed = SYSTEM_FILTERS if metric.kind == "system" else QUERY_FILTERS
    bad = sorted(set(rule.filters) - set(allowed))
    if bad:
        raise ConfigError(
            f"alert rule {rule.name!r}: filter {', '.join(bad)} does not apply to {metric.kind} metric "
            f"{metric.name!r}; use one of: {', '.join(allowed)}"
        )
    window = parse_duration(rule.window)
    if window <= 0:
        raise ConfigError(f"alert rule {rule.name!r}: window must be positive")
    if metric.name == "active_users" and window > RAW_LIMIT:
        raise ConfigError(
            f"alert rule {rule.name!r}: active_users supports windows up to {RAW_LIMIT / 60:g}m "
            "(distinct users are counted exactly; use a baseline for longer comparisons)"
        )
    baseline = None
    if rule.baseline is not None:
        b = rule.baseline
        baseline = BaselineSpec(parse_duration(b.window), parse_duration(b.offset), b.factor, b.min_samples)
        if baseline.window <= 0:
            raise ConfigError(f"alert rule {rule.name!r}: baseline window must be positive")
    labels = {"alertname": rule.name, "severity": rule.severity, **dict(rule.filters), **rule.labels}
    return CompiledRule(
        rule=rule, metric=metric, filters=tuple(sorted(rule.filters.items())), window=window,
        hold=parse_duration(rule.for_), baseline=baseline, labels=labels, fingerprint=fingerprint(labels),
    )


def compile_rules(rules: Iterable[AlertRule]) -> list[CompiledRule]:
    """The enabled rules, compiled; all problems are reported together in one ConfigError."""
    out: list[CompiledRule] = []
    errors: list[str] = []
    for rule in rules:
        if not rule.enabled:
            continue
        try:
            out.append(compile_rule(rule))
        except ConfigError as e:
            errors.append(str(e))
    if errors:
        raise ConfigError("invalid alert rules:\n  " + "\n  ".join(errors))
    return out
