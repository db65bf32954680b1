"""``rag-otel alerts``: check the rules, list the metrics they can name, export them for Prometheus."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from rag_otel.alerts.metrics import METRICS
from rag_otel.alerts.prometheus_rules import dump, promql_duration, to_prometheus
from rag_otel.alerts.rules import SYMBOLS, CompiledRule, compile_rule, compile_rules
from rag_otel.config import CONFIG_ENV, AlertRule, ConfigError, ModelObservation, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("alerts", help="check alert rules and export them as Prometheus rules")
    sub = p.add_subparsers(dest="alerts_command", required=True)

    exp = sub.add_parser("export-prometheus", help="write the alert rules as a Prometheus rule file")
    exp.add_argument("--config", help="rag-otel YAML (default: $RAG_OTEL_CONFIG, else built-in defaults)")
    exp.add_argument("--out", help="file to write (default: standard output)")
    exp.add_argument("--group", default="rag-otel", help="rule group name (default: rag-otel)")
    exp.set_defaults(func=_export)

    val = sub.add_parser("validate", help="check the alert rules and print what each one watches")
    val.add_argument("--config", help="rag-otel YAML (default: $RAG_OTEL_CONFIG, else built-in defaults)")
    val.set_defaults(func=_validate)

    met = sub.add_parser("metrics", help="list the metrics a rule can name")
    met.set_defaults(func=_metrics)


def _load(path: str | None) -> tuple[ModelObservation, list[CompiledRule]]:
    try:
        cfg = load_config(path)
    except ConfigError as e:
        raise ConfigError(str(e) + _rule_problems(path or os.environ.get(CONFIG_ENV))) from None
    return cfg, compile_rules(cfg.performance_monitoring.alert_rules)


def _rule_problems(path: str | None) -> str:
    """What compiling each rule that passed the schema would say, so one run reports every problem
    (the schema's errors stop the load before any rule is compiled)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else None
        raw = data["model_observation"]["performance_monitoring"]["alert_rules"]
    except Exception:  # unreadable, not YAML, or no rules: the load's own error says it all
        return ""
    problems = []
    for item in raw if isinstance(raw, list) else []:
        try:
            rule = AlertRule.model_validate(item)
        except ValidationError:
            continue  # already in the load's error
        if rule.enabled:
            try:
                compile_rule(rule)
            except ConfigError as e:
                problems.append(str(e))
    return "".join(f"\n  {p}" for p in problems)


def _export(args: argparse.Namespace) -> int:
    try:
        cfg, rules = _load(args.config)
    except ConfigError as e:
        print(f"rag-otel alerts: {e}", file=sys.stderr)
        return 2
    data, warnings = to_prometheus(rules, group=args.group, interval=cfg.alerting.evaluation_interval)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    text = dump(data)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as e:
            print(f"rag-otel alerts: cannot write {args.out}: {e.strerror}", file=sys.stderr)
            return 1
        print(f"wrote {len(rules)} rule(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def describe(r: CompiledRule) -> str:
    """One line a person can check a rule against."""
    sym = SYMBOLS[r.rule.operator]
    if r.baseline is None:
        cond = f"{sym} {r.rule.threshold:g}"
    else:
        b = r.baseline
        ago = f", {promql_duration(b.offset)} ago" if b.offset else ""
        cond = f"{sym} {b.factor:g} x baseline ({promql_duration(b.window)}{ago}, >= {b.min_samples} samples)"
    where = " where " + ", ".join(f"{k}={v}" for k, v in r.filters) if r.filters else ""
    hold = f" for {promql_duration(r.hold)}" if r.hold else ""
    return f"{r.name} [{r.severity}]: {r.metric.name} over {promql_duration(r.window)}{where} {cond}{hold}"


def _validate(args: argparse.Namespace) -> int:
    from rag_otel.alerts import store_windows
    from rag_otel.alerts.fleet import split_rules
    from rag_otel.store.location import is_fleet

    try:
        cfg, rules = _load(args.config)
        _, fleet = split_rules([r.rule for r in rules], shared=is_fleet(cfg.processor.store))
        fleet_names = {r.name for r in fleet}
        problems = []
        for r in rules:
            if r.name in fleet_names:
                try:
                    store_windows.check(r)
                except ConfigError as e:
                    problems.append(str(e))
        if problems:
            raise ConfigError("invalid alert rules:\n  " + "\n  ".join(problems))
    except ConfigError as e:
        print(f"rag-otel alerts: {e}", file=sys.stderr)
        return 2
    for r in rules:
        print(f"{describe(r)} ({'fleet-wide, over the store' if r.name in fleet_names else 'per replica'})")
    print(f"{len(rules)} rule(s) OK")
    return 0


def _metrics(_args: argparse.Namespace) -> int:
    for m in METRICS.values():
        print(f"{m.name:<24} {m.kind:<7} {m.unit:<8} {m.description}")
    return 0
