"""Alert rules over query records and system samples: evaluation, notifiers, Prometheus export.

The engine and the catalogue are plain Python (no servers); notifiers need the processor extra.
"""

from rag_otel.alerts.engine import AlertEngine, AlertStatus
from rag_otel.alerts.metrics import METRICS, compute, summarize
from rag_otel.alerts.rules import CompiledRule, compile_rules

__all__ = ["METRICS", "AlertEngine", "AlertStatus", "CompiledRule", "compile_rules", "compute", "summarize"]
