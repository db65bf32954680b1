"""The same alert rules as a Prometheus rule file, for fleets where Prometheus evaluates them.

Each catalogue metric maps to PromQL over the metrics the processor serves at ``/metrics`` (and
the system metrics apps send through the Collector).  Baselines become the same expression over
the baseline window with ``offset``; filters become label matchers.  Where Prometheus cannot
express a rule the way the engine does, the rule is still exported and a warning says how it differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from rag_otel import semconv_opt_in
from rag_otel.alerts.rules import SYMBOLS, CompiledRule

# Prometheus names, as the processor's Prometheus reader (OTel Python exporter) writes them.
QUERIES = "rag_processor_queries_total"
DURATION = "rag_processor_query_duration_seconds"
QUALITY = "rag_processor_quality_score"
TOKENS = "rag_processor_tokens_total"
INPUT_TOKENS = "rag_processor_input_tokens_total"  # these two instead under gen_ai_latest_experimental
OUTPUT_TOKENS = "rag_processor_output_tokens_total"
COST = "rag_processor_cost_USD_total"
ACTIVE_USERS = "rag_processor_active_users"
# What apps send (cpu and memory from opentelemetry-instrumentation-system-metrics with a ``state``
# attribute, the data disk and the 0-100 health score from rag_otel.sdk.system_metrics).  Gauges of
# unit "1": the OTel Python Prometheus exporter names them as they are, the Collector's prometheus
# exporters append _ratio, so these are name regexes that match either.
CPU = "system_cpu_utilization(_ratio)?"
MEMORY = "system_memory_utilization(_ratio)?"
FILESYSTEM = "system_filesystem_utilization(_ratio)?"
HEALTH = "rag_system_health_score(_ratio)?"
POOR_BELOW = "0.4"  # the quality histogram bucket at the default "fair" grade threshold

# Rule filter -> Prometheus label.  System metrics arrive with service.name as ``job``.
QUERY_LABELS = {"service": "service", "model": "model", "status": "status", "latency_category": "latency_category"}
SYSTEM_LABELS = {"service": "job", "host": "host_name"}

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def promql_duration(seconds: float) -> str:
    """``300`` -> ``5m``; the largest unit that divides evenly, as Prometheus writes them."""
    if seconds <= 0:
        return "0s"
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    for unit, size in _UNITS:
        if int(seconds) % size == 0:
            return f"{int(seconds) // size}{unit}"
    return f"{int(seconds)}s"


@dataclass
class Q:
    """How one metric reads in PromQL: ``expr(sel)`` for the value, ``samples(sel)`` for min_samples."""

    expr: Callable[[Callable[..., str]], str]
    samples: Callable[[Callable[..., str]], str]
    system: bool = False
    note: str = ""
    labels_ok: set[str] = field(default_factory=lambda: set(QUERY_LABELS))


def _rate(sel: Callable[..., str], name: str, **m: str) -> str:
    return f"sum(rate({sel(name, **m)}))"


def _increase(sel: Callable[..., str], name: str, **m: str) -> str:
    return f"sum(increase({sel(name, **m)}))"


def _tokens(sel: Callable[..., str]) -> str:
    """The token total in the names the processor serves: OTEL_SEMCONV_STABILITY_OPT_IN of the process
    writing the rules, which must be the processor's (docs/alerts.md)."""
    v1_41, _ = semconv_opt_in.metric_generations()
    if v1_41:
        return _increase(sel, TOKENS)
    return f"(({_increase(sel, INPUT_TOKENS)} or vector(0)) + ({_increase(sel, OUTPUT_TOKENS)} or vector(0)))"


def _quantile(q: float) -> Q:
    return Q(lambda s: f"histogram_quantile({q}, sum by (le) (rate({s(DURATION + '_bucket')})))",
             lambda s: _increase(s, DURATION + "_count"))


def _quality(axis: str) -> Q:
    return Q(lambda s: f"{_rate(s, QUALITY + '_sum', axis=axis)} / {_rate(s, QUALITY + '_count', axis=axis)}",
             lambda s: _increase(s, QUALITY + "_count", axis=axis))


def _system(name: str, expr: str, **state: str) -> Q:
    return Q(lambda s: expr.format(sel=s(name, **state)), lambda s: f"sum(count_over_time({s(name, **state)}))",
             system=True, labels_ok=set(SYSTEM_LABELS))


PROMQL: dict[str, Q] = {
    "average_response_time": Q(lambda s: f"{_rate(s, DURATION + '_sum')} / {_rate(s, DURATION + '_count')}",
                               lambda s: _increase(s, DURATION + "_count")),
    "p50_response_time": _quantile(0.5),
    "p95_response_time": _quantile(0.95),
    "p99_response_time": _quantile(0.99),
    "error_rate": Q(lambda s: f"({_rate(s, QUERIES, status='error')} or vector(0)) / {_rate(s, QUERIES)}",
                    lambda s: _increase(s, QUERIES)),
    "success_rate": Q(lambda s: f"({_rate(s, QUERIES, status='ok')} or vector(0)) / {_rate(s, QUERIES)}",
                      lambda s: _increase(s, QUERIES)),
    "queries_per_minute": Q(lambda s: f"{_rate(s, QUERIES)} * 60", lambda s: _increase(s, QUERIES)),
    "quality_overall": _quality("overall"),
    "quality_accuracy": _quality("accuracy"),
    "quality_completeness": _quality("completeness"),
    "quality_relevance": _quality("relevance"),
    "quality_consistency": _quality("consistency"),
    "poor_quality_rate": Q(
        lambda s: (f"{_rate(s, QUALITY + '_bucket', axis='overall', le=POOR_BELOW)} / "
                   f"{_rate(s, QUALITY + '_count', axis='overall')}"),
        lambda s: _increase(s, QUALITY + "_count", axis="overall"),
        note=f"poor = overall score <= {POOR_BELOW} (histogram bucket), the default fair threshold"),
    "unscored_rate": Q(
        lambda s: f"1 - ({_rate(s, QUALITY + '_count', axis='overall')} or vector(0)) / {_rate(s, QUERIES)}",
        lambda s: _increase(s, QUERIES)),
    "cost_total": Q(lambda s: _increase(s, COST), lambda s: _increase(s, QUERIES)),
    "cost_per_query": Q(lambda s: f"{_increase(s, COST)} / {_increase(s, QUERIES)}",
                        lambda s: _increase(s, QUERIES),
                        note="divides by all queries (the engine divides by queries with a known cost)"),
    "tokens_total": Q(_tokens, lambda s: _increase(s, QUERIES)),
    "active_users": Q(lambda s: f"max(max_over_time({s(ACTIVE_USERS)}))",
                      lambda s: f"sum(count_over_time({s(ACTIVE_USERS)}))", labels_ok={"service"},
                      note="the processor's gauge counts distinct users per service over its own 5m window; "
                           "without a service filter this is the busiest service's count"),
    "cpu_percent": _system(CPU, "100 * (1 - avg(avg_over_time({sel})))", state="idle"),
    "memory_percent": _system(MEMORY, "100 * avg(avg_over_time({sel}))", state="used"),
    "disk_percent": _system(FILESYSTEM, "100 * max(avg_over_time({sel}))", system_filesystem_state="used"),
    "health_score": _system(HEALTH, "avg(avg_over_time({sel}))"),
}
_TOTALS = {"cost_total", "tokens_total"}


def _selector(filters: dict[str, str], window: float, offset: float, labels: dict[str, str]) -> Callable[..., str]:
    def sel(name: str, **extra: str) -> str:
        matchers = {labels[k]: v for k, v in filters.items() if k in labels}
        matchers.update(extra)
        parts = [f'{k}="{_escape(v)}"' for k, v in sorted(matchers.items())]
        if "(" in name:  # a name regex (see CPU above)
            parts.insert(0, f'__name__=~"{name}"')
            name = ""
        inner = ",".join(parts)
        text = f"{name}{{{inner}}}[{promql_duration(window)}]" if inner else f"{name}[{promql_duration(window)}]"
        return f"{text} offset {promql_duration(offset)}" if offset > 0 else text
    return sel


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


def rule_expr(r: CompiledRule) -> tuple[str, list[str]]:
    """The PromQL condition of one rule, and warnings where it differs from the engine's."""
    q = PROMQL[r.metric.name]
    labels = SYSTEM_LABELS if q.system else QUERY_LABELS
    warnings = [f"{r.name}: {q.note}"] if q.note else []
    dropped = sorted(k for k in r.rule.filters if k not in q.labels_ok)
    if dropped:
        warnings.append(f"{r.name}: filter {', '.join(dropped)} has no Prometheus label for {r.metric.name}; ignored")
    kept = {k: v for k, v in r.rule.filters.items() if k in q.labels_ok}  # an ignored filter is not in the PromQL
    current = q.expr(_selector(kept, r.window, 0, labels))
    op = SYMBOLS[r.rule.operator]
    if r.baseline is None:
        return f"({current}) {op} {r.rule.threshold:g}", warnings
    b = r.baseline
    base_sel = _selector(kept, b.window, b.offset, labels)
    base = q.expr(base_sel)
    factor = b.factor * (r.window / b.window if r.metric.name in _TOTALS else 1.0)
    samples = q.samples(base_sel)
    return f"({current}) {op} {factor:.10g} * ({base}) and on() ({samples}) >= {b.min_samples}", warnings


_PLACEHOLDER = re.compile(r"\{(value|threshold|metric|rule)(?::([^}]*))?\}")


def _template(text: str, r: CompiledRule) -> str:
    """The rule message with {value} as Prometheus' live value; the other placeholders filled now."""

    def fill(m: re.Match[str]) -> str:
        key, spec = m.group(1), m.group(2)
        if key == "value":
            return f'{{{{ $value | printf "%{spec or ".4g"}" }}}}'
        if key == "threshold":
            t = r.rule.threshold
            return "its baseline" if t is None else format(t, spec or "g")
        return r.metric.name if key == "metric" else r.name

    try:
        return _PLACEHOLDER.sub(fill, text)
    except ValueError:  # a format spec Python rejects: keep the text as written
        return text


def to_prometheus(rules: Sequence[CompiledRule], *, group: str = "rag-otel", interval: float | None = None
                  ) -> tuple[dict[str, Any], list[str]]:
    """A Prometheus rule file (as data) for the compiled rules, and the warnings to show."""
    out: list[dict[str, Any]] = []
    warnings: list[str] = []
    for r in rules:
        expr, w = rule_expr(r)
        warnings += w
        what = (f"{r.metric.name} {SYMBOLS[r.rule.operator]} "
                + (f"{r.rule.threshold:g}" if r.baseline is None else
                   f"{r.baseline.factor:g} x its value over {promql_duration(r.baseline.window)}"
                   + (f" {promql_duration(r.baseline.offset)} ago" if r.baseline.offset else ""))
                + f" over {promql_duration(r.window)}")
        item: dict[str, Any] = {"alert": r.name, "expr": expr}
        if r.hold > 0:
            item["for"] = promql_duration(r.hold)
        item["labels"] = {"severity": r.severity, **r.rule.labels}
        item["annotations"] = {
            "summary": _template(r.rule.message, r) if r.rule.message else f"{r.name}: {what}",
            "description": f"{what} (now {{{{ $value | printf \"%.4g\" }}}})",
        }
        out.append(item)
    grp: dict[str, Any] = {"name": group}
    if interval:
        grp["interval"] = promql_duration(interval)
    grp["rules"] = out
    return {"groups": [grp]}, warnings


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=1000, allow_unicode=True)
