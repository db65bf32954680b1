"""Host resources from the system samples apps send, and whether latency follows them."""

from __future__ import annotations

from typing import Any

from rag_otel.analytics._common import r, where
from rag_otel.analytics.period import Period
from rag_otel.store.store import Store

RESOURCES = ("cpu_percent", "memory_percent", "disk_percent", "network_bytes_per_s")
BOTTLENECK_BUCKET_S = 300  # latency and resources are averaged per 5 minutes before correlating
BOTTLENECK_MIN_CORR = 0.5
BOTTLENECK_MIN_BUCKETS = 12


def system_usage(store: Store, period: Period, *, service: str | None = None, model: str | None = None,
                 host: str | None = None) -> dict[str, Any]:
    """Resource percentiles, peak hours and latency bottlenecks.

    Returns ``{period, samples, hosts [..], metrics {resource: {avg, p50, p95, p99, max}}, peak_hours
    [{hour, avg_cpu_percent, avg_memory_percent, samples}] (top 3 by CPU, UTC), bottlenecks [{resource,
    correlation, slope_s_per_unit, buckets, bottleneck, note}]}``.  A resource is a bottleneck when query
    latency and the resource, averaged per 5 minutes, correlate by Pearson r >= 0.5 over at least 12
    buckets; with fewer buckets ``correlation`` and ``slope_s_per_unit`` are None and ``note`` says why
    (r over two points is always +-1); ``model`` filters the latency side only.
    """
    w, p = where(period, service=service, host=host)
    n, hosts = store.sql(f"SELECT count(*), list(DISTINCT host ORDER BY host) FILTER (WHERE host IS NOT NULL) "
                         f"FROM system_samples {w}", p)[0]
    stats = store.sql(f"""SELECT name, avg(v), quantile_cont(v, [0.5, 0.95, 0.99]), max(v) FROM
        (UNPIVOT (SELECT {', '.join(RESOURCES)} FROM system_samples {w}) ON {', '.join(RESOURCES)}
         INTO NAME name VALUE v) GROUP BY 1""", p)
    metrics = {res: {"avg": None, "p50": None, "p95": None, "p99": None, "max": None} for res in RESOURCES}
    for name, avg, q, mx in stats:
        metrics[name] = {"avg": r(avg), "p50": r(q[0]), "p95": r(q[1]), "p99": r(q[2]), "max": r(mx)}
    peaks = store.sql(f"""SELECT hour(ts), avg(cpu_percent), avg(memory_percent), count(*) FROM system_samples {w}
        GROUP BY 1 HAVING avg(cpu_percent) IS NOT NULL ORDER BY 2 DESC, 1 LIMIT 3""", p)
    qw, qp = where(period, service=service, model=model)
    b = f"time_bucket(INTERVAL {BOTTLENECK_BUCKET_S} SECOND, ts)"
    corr_cols = ", ".join(f"corr(lat, {x}), regr_slope(lat, {x}), count({x})" for x in RESOURCES)
    corr = store.sql(f"""WITH lat AS (SELECT {b} AS b, avg(duration_s) AS lat FROM queries {qw} GROUP BY 1),
        sys AS (SELECT {b} AS b, {', '.join(f'avg({x}) AS {x}' for x in RESOURCES)} FROM system_samples {w}
                GROUP BY 1)
        SELECT {corr_cols} FROM lat JOIN sys USING (b)""", [*qp, *p])[0]
    bottlenecks = []
    for i, res in enumerate(RESOURCES):
        c, slope, buckets = corr[3 * i: 3 * i + 3]
        c = None if c is None or c != c else c
        enough = buckets >= BOTTLENECK_MIN_BUCKETS  # r over a few buckets is noise (2 points always give +-1)
        bottlenecks.append({"resource": res, "correlation": r(c, 4) if enough else None,
                            "slope_s_per_unit": r(slope) if enough else None, "buckets": buckets,
                            "note": None if enough else f"needs {BOTTLENECK_MIN_BUCKETS} buckets",
                            "bottleneck": bool(c is not None and c >= BOTTLENECK_MIN_CORR
                                               and buckets >= BOTTLENECK_MIN_BUCKETS)})
    bottlenecks.sort(key=lambda x: -(x["correlation"] or -2))
    return {"period": period.to_dict(), "samples": n, "hosts": hosts or [], "metrics": metrics,
            "peak_hours": [{"hour": h, "avg_cpu_percent": r(c), "avg_memory_percent": r(m), "samples": k}
                           for h, c, m, k in peaks],
            "bottlenecks": bottlenecks}
