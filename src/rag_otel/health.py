"""The system health score: one formula for the SDK's gauge, the processor's samples and the dashboard.

``100 - (0.3 cpu% + 0.4 memory% + 0.3 disk%)``, clamped to [0, 100]; healthy >= 80, warning >= 60,
else critical.
"""

from __future__ import annotations

HEALTHY, WARNING, CRITICAL = "healthy", "warning", "critical"
FORMULA = "100 - (0.3 CPU% + 0.4 memory% + 0.3 disk%)"


def health_score(cpu_percent: float, memory_percent: float, disk_percent: float) -> float:
    """The seed's formula, clamped to [0, 100]."""
    score = 100.0 - (0.3 * cpu_percent + 0.4 * memory_percent + 0.3 * disk_percent)
    return max(0.0, min(100.0, score))


def health_state(score: float) -> str:
    return HEALTHY if score >= 80 else WARNING if score >= 60 else CRITICAL
