"""The report's four charts as PNG bytes, drawn with matplotlib's Agg canvas.

``Figure`` objects without pyplot: no global state, safe from the scheduler thread, no display.
Fonts are matplotlib's bundled DejaVu Sans and PNG metadata carries no version or date, so the
same report draws byte-identical images.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rag_otel.reports.builder import Report

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_STYLE = {"font.family": "DejaVu Sans", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
CHART_TITLES = {
    "performance": "Latency over time",
    "quality": "Quality score distribution",
    "usage": "Queries by hour and weekday (UTC)",
    "cost": "Cost per model",
}


def _png(draw: Callable[[Figure], None], size: tuple[float, float] = (7.0, 3.2), left: float = 0.1) -> bytes:
    import matplotlib  # imported on first draw: the CLI and the scheduler start without paying for it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=size, dpi=100)
        FigureCanvasAgg(fig)
        # fixed margins: tight_layout measures every label by drawing the figure once more (~2x the cost)
        fig.subplots_adjust(left=left, right=0.9, bottom=0.16, top=0.9)
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _empty(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this period", ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def performance_trend(timeline: list[dict[str, Any]], unit_label: str) -> bytes:
    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.set_title(CHART_TITLES["performance"])
        if not timeline:
            return _empty(ax, "queries")
        x = list(range(len(timeline)))
        labels = [t["bucket"][11:16] if unit_label == "hour" else t["bucket"][5:10] for t in timeline]
        for key, name, color in (("p50_latency_s", "p50", "#2b7bb9"), ("p95_latency_s", "p95", "#d9534f")):
            ax.plot(x, [t[key] if t[key] is not None else float("nan") for t in timeline], marker=".", label=name,
                    color=color)
        ax.set_ylabel("seconds")
        ax.set_ylim(bottom=0)
        step = max(1, -(-len(x) // 8))  # at most 8 labels: "HH:MM" labels overlap past that
        ax.set_xticks(x[::step], labels[::step], rotation=0)
        ax2 = ax.twinx()
        ax2.bar(x, [t["count"] for t in timeline], color="#999", alpha=0.25, label="queries")
        ax2.set_ylabel("queries")
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.legend(loc="upper left", frameon=False)
    return _png(draw)


def quality_histogram(histogram: list[int]) -> bytes:
    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.set_title(CHART_TITLES["quality"])
        if not sum(histogram):
            return _empty(ax, "scored queries")
        ax.bar([i / 10 for i in range(10)], histogram, width=0.1, align="edge", color="#5cb85c", edgecolor="white")
        ax.set_xlim(0, 1)
        ax.set_xlabel("overall quality score")
        ax.set_ylabel("queries")
    return _png(draw)


def usage_heatmap(grid: list[list[int]]) -> bytes:
    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.set_title(CHART_TITLES["usage"])
        im = ax.imshow(grid, aspect="auto", cmap="Blues", interpolation="nearest")
        ax.set_yticks(range(7), WEEKDAYS)
        ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
        ax.set_xlabel("hour")
        fig.colorbar(im, ax=ax, label="queries")
    return _png(draw)


def cost_per_model(by_model: list[dict[str, Any]]) -> bytes:
    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.set_title(CHART_TITLES["cost"])
        rows = [m for m in by_model if m["cost_usd"]]
        if not rows:
            return _empty(ax, "priced queries")
        rows = rows[:12][::-1]
        ax.barh([m["model"] for m in rows], [m["cost_usd"] for m in rows], color="#f0ad4e")
        for i, m in enumerate(rows):
            ax.text(m["cost_usd"], i, f" ${m['cost_usd']:.2f}", va="center")
        ax.set_xlabel("USD")
        ax.margins(x=0.15)
    return _png(draw, left=0.24)


def render_charts(report: Report) -> dict[str, bytes]:
    """name -> PNG for the report's four charts (names are stable: file names and cid ids use them)."""
    s = report.sections
    perf = s["performance"]
    unit = "hour" if perf.get("bucket_s", 86400) < 86400 else "day"  # labels: time of day, or the date
    return {
        "performance": performance_trend(perf["timeline"], unit),
        "quality": quality_histogram(s["quality"]["overall"]["histogram"]),
        "usage": usage_heatmap(s["usage"]["temporal"]["heatmap"]),
        "cost": cost_per_model(s["cost"]["by_model"]),
    }
