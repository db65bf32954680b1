"""Render a report as JSON, Markdown or one self-contained HTML file.

Markdown and HTML share one layout (:func:`layout`: headings with paragraphs, tables, lists and
images), so both say the same thing; only the image source differs: a PNG file beside the
Markdown, a ``data:`` URI in the HTML file (opens offline), a ``cid:`` reference in email.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rag_otel.reports.builder import Report
from rag_otel.reports.charts import CHART_TITLES, WEEKDAYS

Format = Literal["json", "markdown", "html"]
FORMATS: tuple[str, ...] = ("json", "markdown", "html", "png")
EXTENSIONS = {"json": "json", "markdown": "md", "html": "html"}
ImageSrc = Callable[[str, bytes], str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Image:
    chart: str


@dataclass
class Link:
    """A table cell that links somewhere (a query in the dashboard); plain text where links cannot go."""

    text: str
    url: str | None

    def __str__(self) -> str:
        return self.text


Block = str | Table | list[str] | Image


def _f(x: Any, nd: int = 3, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        if x.is_integer() and abs(x) < 1e15:  # a count that went through a float: 559, not 559.0000
            return f"{int(x)}{unit}"
        return f"{x:.{nd}f}{unit}"
    return f"{x}{unit}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def _usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:.4f}"


def _grade_row(name: str, v: dict[str, Any]) -> list[Any]:
    return [name, _f(v["avg"]), v["labels"]["good"], v["labels"]["fair"], v["labels"]["poor"], v["n"]]


def layout(report: Report) -> list[tuple[str, list[Block]]]:
    """(heading, blocks) in reading order."""
    s = report.sections
    sm, perf, q, u, c, al, tr = (s[k] for k in ("summary", "performance", "quality", "usage", "cost", "alerts",
                                                "trends"))
    out: list[tuple[str, list[Block]]] = []
    out.append(("Summary", [Table(["metric", "value"], [
        ["queries", sm["queries"]], ["unique users", sm["unique_users"]], ["sessions", sm["sessions"]],
        ["success rate", _pct(sm["success_rate"])], ["average latency", _f(sm["avg_latency_s"], 2, " s")],
        ["p95 latency", _f(sm["p95_latency_s"], 2, " s")], ["average quality", _f(sm["avg_quality"])],
        ["scored queries", sm["scored_queries"]], ["cost", _usd(sm["cost_usd"])], ["alerts fired", sm["alerts_fired"]],
    ])]))
    recs = [f"**{r['severity']}**: {r['message']}" for r in s["recommendations"]]
    out.append(("Recommendations", [recs or "Nothing stands out: no rule found a problem in this period."]))
    cats = perf["latency_categories"]
    out.append(("Performance", [
        Table(["queries", "errors", "success", "avg", "p50", "p95", "p99", "max"], [[
            perf["total"], perf["errors"], _pct(perf["success_rate"]),
            *(_f(perf[f"{k}_latency_s"], 2, " s") for k in ("avg", "p50", "p95", "p99", "max"))]]),
        Table(["latency category", "queries", "share"],
              [[k, v, _pct(v / perf["total"]) if perf["total"] else "n/a"] for k, v in cats.items()]),
        Table(["model", "queries", "errors", "avg", "p95"],
              [[m["model"], m["count"], m["errors"], _f(m["avg_latency_s"], 2, " s"), _f(m["p95_latency_s"], 2, " s")]
               for m in perf["by_model"]]),
        Table(["error type", "queries"], [[e["error_type"], e["count"]] for e in perf["error_types"]])
        if perf["error_types"] else "No errors.",
        Image("performance"),
    ]))
    ov = q["overall"]
    out.append(("Quality", [
        f"{q['scored']} of {q['queries']} queries scored; average overall quality {_f(ov['avg'])} "
        f"(p10 {_f(ov.get('p10'))}, median {_f(ov.get('p50'))}, p90 {_f(ov.get('p90'))}).",
        Table(["score", "avg", "good", "fair", "poor", "n"],
              [_grade_row("overall", ov), *(_grade_row(a, v) for a, v in q["axes"].items())]),
        Table(["model", "scored", "avg quality"], [[m["model"], m["n"], _f(m["avg_overall"])] for m in q["by_model"]]),
        Table(["worst", "score", "model", "category", "query"],
              [[Link(w["trace_id"][:16], w.get("query_url")), _f(w["q_overall"]), w["model"] or "", w["category"] or "",
                (w["query_text"] or "(not captured)")[:80]] for w in q["worst"]]) if q["worst"] else "",
        Image("quality"),
    ]))
    peak = u["temporal"]["peak"]
    eng = u["engagement"]
    out.append(("Usage", [
        f"{u['total']} queries from {u['unique_users']} users in {eng['sessions']} sessions "
        f"({_f(eng['avg_queries_per_session'], 2)} queries per session); busiest hour: "
        f"{WEEKDAYS[peak['weekday']]} {peak['hour']:02d}:00 UTC ({peak['count']} queries).",
        Table(["category", "queries", "share"],
              [[x["category"], x["count"], _pct(x["share"])] for x in u["categories"]]),
        Table(["topic", "queries"], [[x["topic"], x["count"]] for x in u["topics"]]),
        Table(["feature", "queries", "share", "users", "avg quality"],
              [[x["feature"], x["queries"], _pct(x["query_share"]), x["users"], _f(x["avg_quality"])]
               for x in u["features"]]) if u["features"] else "",
        Image("usage"),
    ]))
    out.append(("Cost", [
        f"Total {_usd(c['total_usd'])}" + (f"; {c['unpriced_queries']} queries without a price." if
                                          c["unpriced_queries"] else ".")
        + (f" {c['cost_incomplete_queries']} queries had a model call without usage: their cost is a lower bound."
           if c.get("cost_incomplete_queries") else "")
        + (f" Ingestion (index builds, uploads, not counted as queries): {c['ingestion']['traces']} traces, "
           f"{c['ingestion']['input_tokens']} tokens, {_usd(c['ingestion']['cost_usd'])}."
           if c.get("ingestion", {}).get("traces") else ""),
        Table(["model", "queries", "input tokens", "output tokens", "cost", "share", "per query"],
              [[m["model"], m["queries"], m["input_tokens"], m["output_tokens"], _usd(m["cost_usd"]),
                _pct(m["cost_share"]), _usd(m["avg_cost_per_query"])] for m in c["by_model"]]),
        Image("cost"),
    ]))
    out.append(("Alerts", [
        Table(["rule", "severity", "fired", "worst value", "threshold"],
              [[a["rule"], a["severity"], a["fired"], _f(a["max_value"]), _f(a["threshold"])] for a in al["by_rule"]])
        if al["by_rule"] else "No alert fired.",
        Table(["time (UTC)", "rule", "state", "message"],
              [[e["ts"][:19].replace("T", " "), e["rule"], e["state"], e["message"]] for e in al["events"]])
        if al["events"] else "",
    ]))
    label = "week over week" if report.kind == "weekly" else "day over day"
    out.append((f"Trends ({label}, against {tr['compared_with']})", [Table(
        ["metric", "this period", "previous", "change", "change %"],
        [[k, _f(d["current"], 4), _f(d["previous"], 4), _f(d["change"], 4), _f(d["change_pct"], 1, "%")]
         for k, d in tr["deltas"].items()])]))
    return out


# --- Markdown ----------------------------------------------------------------------------------
def _md_cell(x: Any) -> str:
    if isinstance(x, Link) and x.url:
        return f"[{_md_cell(x.text)}]({x.url})"
    return str(x).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report, image_src: ImageSrc | None = None, *, images: bool = True) -> str:
    """Markdown linking the PNG files beside it (``images=False``: no image lines, e.g. an email's text part)."""
    src = image_src or (lambda name, _png: f"{report.name}-{name}.png")
    lines = [f"# {report.title}", "", f"Generated {report.generated_at}.", ""]
    for heading, blocks in layout(report):
        lines += [f"## {heading}", ""]
        for b in blocks:
            if isinstance(b, Table):
                lines.append("| " + " | ".join(b.headers) + " |")
                lines.append("|" + "|".join("---" for _ in b.headers) + "|")
                lines += ["| " + " | ".join(_md_cell(x) for x in row) + " |" for row in b.rows]
            elif isinstance(b, list):
                lines += [f"- {x}" for x in b]
            elif isinstance(b, Image):
                if images and b.chart in report.charts:
                    lines.append(f"![{CHART_TITLES[b.chart]}]({src(b.chart, report.charts[b.chart])})")
                else:
                    continue
            elif b:
                lines.append(b)
            else:
                continue
            lines.append("")
    return "\n".join(lines)


# --- HTML --------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2em auto;max-width:60em;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f5f5f5}td:not(:first-child){font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:.6em 0}.meta{color:#666}li{margin:.3em 0}
"""


def data_uri(_name: str, png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _inline_md(text: str) -> str:
    """Escape, then turn the one Markdown mark the layout uses (**bold**) into HTML."""
    parts = html.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def _html_cell(x: Any) -> str:
    if isinstance(x, Link) and x.url:
        return f'<a href="{html.escape(x.url)}">{html.escape(x.text)}</a>'
    return html.escape(str(x))


def to_html(report: Report, image_src: ImageSrc = data_uri) -> str:
    """One file: inline CSS, images from ``image_src`` (data URIs by default); no script, no network."""
    e = html.escape
    body = [f"<h1>{e(report.title)}</h1>", f'<p class="meta">Generated {e(report.generated_at)}.</p>']
    for heading, blocks in layout(report):
        body.append(f"<h2>{e(heading)}</h2>")
        for b in blocks:
            if isinstance(b, Table):
                head = "".join(f"<th>{e(h)}</th>" for h in b.headers)
                rows = "".join("<tr>" + "".join(f"<td>{_html_cell(x)}</td>" for x in row) + "</tr>" for row in b.rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif isinstance(b, list):
                body.append("<ul>" + "".join(f"<li>{_inline_md(x)}</li>" for x in b) + "</ul>")
            elif isinstance(b, Image):
                if b.chart in report.charts:
                    body.append(f'<img id="chart-{b.chart}" alt="{e(CHART_TITLES[b.chart])}" '
                                f'src="{image_src(b.chart, report.charts[b.chart])}">')
            elif b:
                body.append(f"<p>{e(b)}</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{e(report.title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def render(report: Report, fmt: str) -> str:
    """``json`` | ``markdown`` | ``html`` text (PNG charts are ``report.charts``, written by ``write_report``)."""
    if fmt == "json":
        return to_json(report)
    if fmt == "markdown":
        return to_markdown(report)
    if fmt == "html":
        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r}: use one of json, markdown, html (png charts are files)")


def parse_formats(values: list[str] | str | None, default: list[str] | None = None) -> list[str]:
    """``["json,html", "png"]`` -> ``["json", "html", "png"]``; ``md`` is accepted for markdown."""
    if values is None:
        return list(default or ["html", "json"])
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        for f in (x.strip().lower() for x in v.split(",")):
            f = {"md": "markdown"}.get(f, f)
            if f not in FORMATS:
                raise ValueError(f"unknown report format {f!r}: use json, markdown, html or png")
            if f not in out:
                out.append(f)
    if not out:
        raise ValueError("no report format given")
    return out
