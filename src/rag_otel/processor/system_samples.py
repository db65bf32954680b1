"""System metrics apps send -> :class:`~rag_otel.records.SystemSample` for the alert engine.

Reads our SDK's names and what ``opentelemetry-instrumentation-system-metrics`` emits
(utilizations in [0,1], split by a state attribute and per CPU / device), reports percentages.
The request itself is not touched: it is exported unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from rag_otel import semconv as sc
from rag_otel.health import health_score
from rag_otel.records import SystemSample

_WANTED = frozenset((
    sc.SYS_CPU_UTILIZATION, sc.SYS_MEMORY_UTILIZATION, sc.SYS_FILESYSTEM_UTILIZATION, sc.SYS_DISK_UTILIZATION,
    sc.METRIC_HEALTH_SCORE, sc.METRIC_PROCESS_RSS,
))
_IDLE_STATES = frozenset(("idle",))
_USED_STATES = frozenset(("used",))


def _num(point: Any) -> float:
    return point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)


def _state(point: Any) -> str | None:
    for kv in point.attributes:
        if kv.key in sc.SYS_STATE_KEYS:
            return kv.value.string_value
    return None


def _points(metric: Any) -> list[Any]:
    kind = metric.WhichOneof("data")
    return list(getattr(metric, kind).data_points) if kind in ("gauge", "sum") else []


def _cpu_percent(points: list[Any]) -> float | None:
    """100 x (1 - mean idle share) when split by state, else the mean utilization."""
    idle = [_num(p) for p in points if _state(p) in _IDLE_STATES]
    if idle:
        return max(0.0, min(100.0, 100.0 * (1.0 - sum(idle) / len(idle))))
    plain = [_num(p) for p in points if _state(p) is None]
    return 100.0 * sum(plain) / len(plain) if plain else None


def _used_percent(points: list[Any], worst: bool = False) -> float | None:
    used = [_num(p) for p in points if _state(p) in _USED_STATES or _state(p) is None]
    if not used:
        return None
    return 100.0 * (max(used) if worst else sum(used) / len(used))


def system_samples(request: ExportMetricsServiceRequest) -> list[SystemSample]:
    """One sample per resource (service + host) that carried any system metric."""
    out: list[SystemSample] = []
    for rm in request.resource_metrics:
        found: dict[str, list[Any]] = defaultdict(list)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name in _WANTED:
                    found[m.name].extend(_points(m))
        if not found:
            continue
        res = {kv.key: kv.value.string_value for kv in rm.resource.attributes}
        times = [p.time_unix_nano for pts in found.values() for p in pts if p.time_unix_nano]
        health = found.get(sc.METRIC_HEALTH_SCORE)
        rss = found.get(sc.METRIC_PROCESS_RSS)
        disk = found.get(sc.SYS_FILESYSTEM_UTILIZATION) or found.get(sc.SYS_DISK_UTILIZATION) or []
        cpu = _cpu_percent(found.get(sc.SYS_CPU_UTILIZATION, []))
        mem = _used_percent(found.get(sc.SYS_MEMORY_UTILIZATION, []))
        disk_pct = _used_percent(disk, worst=True)
        # The score shown beside CPU/memory/disk is computed from those same numbers: the app's own
        # gauge reads psutil at another moment (and memory another way), so it could contradict them.
        score = (health_score(cpu, mem, disk_pct) if None not in (cpu, mem, disk_pct)
                 else _num(health[-1]) if health else None)
        out.append(SystemSample(
            time=max(times) * 1e-9 if times else 0.0,
            service=res.get(sc.SERVICE_NAME) or "unknown",
            host=res.get(sc.HOST_NAME) or None,
            cpu_percent=cpu, memory_percent=mem, disk_percent=disk_pct,
            process_rss_bytes=_num(rss[-1]) if rss else None,
            health_score=score,
        ))
    return out
