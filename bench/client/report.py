"""Numbers out of raw batches: paired differences, medians, spread, and the README section."""

from __future__ import annotations

import random
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTION = "## Client overhead (issue 2)"
US = 1e6


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    """(p25, median, p75); with fewer than 4 values p25/p75 are min/max."""
    xs = sorted(xs)
    if len(xs) < 4:
        return xs[0], statistics.median(xs), xs[-1]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


@dataclass
class Cell:
    """One contender x workload: added CPU per call (µs), median and quartiles over repeats."""

    median: float
    p25: float
    p75: float
    baseline: float  # the no-instrumentation contender's own CPU per call, median (µs)


def baseline(per_call: dict[str, dict[str, list[float]]], contender: str, workload: str) -> list[float]:
    """Per round, what ``contender`` is compared with: the mean of the two baseline processes
    (``none`` and the A/A ``none-aa``, which averages out part of one process's layout luck), or
    for the A/A control itself the other baseline (so its row is the raw A/A difference)."""
    if contender == "none-aa" or "none-aa" not in per_call:
        return per_call["none"][workload]
    return [(a + b) / 2 for a, b in zip(per_call["none"][workload], per_call["none-aa"][workload], strict=False)]


def added_per_call(per_call: dict[str, dict[str, list[float]]], contender: str, workload: str) -> Cell:
    """Paired within each round (same moment, same machine load): contender minus baseline."""
    base = baseline(per_call, contender, workload)
    mine = per_call[contender][workload]
    diffs = [(m - b) * US for m, b in zip(mine, base, strict=False)]
    p25, med, p75 = quartiles(diffs)
    return Cell(med, p25, p75, statistics.median(base) * US)


def per_chunk_rounds(per_call: dict[str, dict[str, list[float]]], contender: str, chunks: int) -> list[float]:
    """µs per streamed chunk, per round: (added CPU of a streamed chat - added CPU of a plain chat) / chunks."""
    base_s, base_c = baseline(per_call, contender, "stream"), baseline(per_call, contender, "chat")
    mine_s, mine_c = per_call[contender]["stream"], per_call[contender]["chat"]
    return [((s - bs) - (c - bc)) * US / chunks for s, bs, c, bc in zip(mine_s, base_s, mine_c, base_c, strict=False)]


def per_chunk(per_call: dict[str, dict[str, list[float]]], contender: str, chunks: int) -> tuple[float, float, float]:
    """Quartiles over rounds of ``per_chunk_rounds``."""
    return quartiles(per_chunk_rounds(per_call, contender, chunks))


def paired(per_call: dict[str, dict[str, list[float]]], a: str, b: str | None, workload: str,
           weight: float = 1.0) -> list[float]:
    """Per round, µs: ``a`` minus ``weight`` times ``b``, each as added CPU over the round's baseline
    (``b`` None: ``a``'s added CPU alone). The same-round pairing cancels the load both saw."""
    base = baseline(per_call, a, workload)
    da = [(m - x) * US for m, x in zip(per_call[a][workload], base, strict=False)]
    if b is None:
        return da
    bb = baseline(per_call, b, workload)
    db = [(m - x) * US for m, x in zip(per_call[b][workload], bb, strict=False)]
    return [x - weight * y for x, y in zip(da, db, strict=False)]


def median_ci(xs: list[float], block: int, n: int = 2000, seed: int = 20261206) -> tuple[float, float, float]:
    """(2.5%, median, 97.5%): the median over rounds and its 95% bootstrap interval, resampling whole
    blocks of ``block`` consecutive rounds (one set of worker processes), so a process's lasting
    bias is inside the interval rather than mistaken for a difference between contenders."""
    blocks = [xs[i:i + max(1, block)] for i in range(0, len(xs), max(1, block))]
    rng = random.Random(seed)
    meds = sorted(statistics.median([x for _ in blocks for x in rng.choice(blocks)]) for _ in range(n))
    return meds[int(0.025 * n)], statistics.median(xs), meds[int(0.975 * n) - 1]


def fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """The README section: method, table, goals, versions, failures."""
    cells, chunks, meta = results["cells"], results["per_chunk"], results["meta"]
    workloads = meta["workloads"]
    lines = [
        SECTION,
        "",
        f"Run: {meta['date']} · `{meta['command']}` · {meta['repeats']} interleaved rounds · "
        f"calls per contender per round {meta['calls']} · "
        + (f"fresh worker processes every {meta['restart_every']} rounds ({meta.get('processes_per_contender')} "
           "per contender) · " if meta.get("restart_every") else "")
        + f"{meta['wall_s']:.0f} s wall.",
        f"Machine: {meta['machine']}.",
        "",
        "Client CPU **added per call** (µs, median over rounds of contender − baseline measured in the same "
        "round, the baseline being the mean of the two no-instrumentation processes; p25–p75 in brackets), "
        "its ratio to the hand-made floor, and µs per streamed chunk "
        f"(= (stream − chat) / {meta['chunks']}).",
        "",
        "| contender | " + " | ".join(workloads) + " | × hand-made (" + " / ".join(workloads) + ") | µs/chunk |",
        "|---|" + "---:|" * len(workloads) + "---:|---:|",
    ]
    base = cells.get("none", {})
    if base:
        lines.append("| *baseline: CPU per call (none)* | " + " | ".join(fmt(base[w]["baseline"]) for w in workloads)
                     + " | | |")
    hm = cells.get("handmade", {})
    for name, row in cells.items():
        if name == "none":
            continue
        vals = " | ".join(f"{fmt(row[w]['median'])} [{fmt(row[w]['p25'])}–{fmt(row[w]['p75'])}]" for w in workloads)
        ratios = " / ".join(
            f"{row[w]['median'] / hm[w]['median']:.2f}" if hm and hm[w]["median"] > 0 else "–" for w in workloads
        )
        ch = chunks.get(name)
        chs = f"{fmt(ch[1])} [{fmt(ch[0])}–{fmt(ch[2])}]" if ch else "–"
        lines.append(f"| {results['titles'][name]} | {vals} | {ratios} | {chs} |")
    for name, err in results["failed"].items():
        first = err.strip().splitlines()[-1] if err.strip() else "?"
        lines.append(f"| {results['titles'][name]} | failed: `{first[:160]}` |" + " |" * len(workloads) + " |")
    aa = cells.get("none-aa")
    if aa:
        floor = {w: abs(aa[w]["median"]) + (aa[w]["p75"] - aa[w]["p25"]) / 2 for w in workloads}
        block = meta.get("restart_every") or 1
        aa_ci = {w: median_ci(paired(results["per_call_raw_s"], "none-aa", None, w), block) for w in workloads}
        lines += ["", "Noise floor of this run (A/A control, |median| + half its IQR): "
                  + ", ".join(f"{w} {fmt(v)} µs" for w, v in floor.items())
                  + "; the A/A median's 95% interval (rounds resampled per set of processes): "
                  + ", ".join(f"{w} {fmt(lo)}…{fmt(hi)} µs" for w, (lo, _, hi) in aa_ci.items())
                  + ". Two identical processes should differ by 0: the interval's width is how small a "
                  "difference this run can resolve, and its median is bias the pairing did not remove. The "
                  "goal lines below judge each CPU goal by the 95% interval of its own paired difference, "
                  "widened on both sides by that bias (|A/A median|): met or MISSED only when the whole "
                  "widened interval is on one side of the goal. The function-call counts do not depend on load."]
    lines += function_calls_table(results.get("function_calls") or {}, results["titles"], workloads, meta["chunks"])
    lines += ["", "Goals (rag-otel):", ""]
    lines += [f"- {g}" for g in results["goals"]]
    lines += ["", "Versions:", ""]
    for name, v in results["versions"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {x}" for k, x in sorted(v.items())))
    if results["failed"]:
        lines += ["", "Failures (verbatim, last lines):", ""]
        for name, err in results["failed"].items():
            lines += [f"- {name}:", "", "```", err.strip()[-1200:], "```", ""]
    lines += ["", results["method"].strip(), ""]
    return "\n".join(lines)


def function_calls_table(fc: dict[str, dict[str, float]], titles: dict[str, str], workloads: list[str],
                         chunks: int) -> list[str]:
    """Function calls added per call (cProfile's count): deterministic, so it does not move with the
    machine's load the way CPU time does; it ranks the work each contender adds."""
    if "none" not in fc:
        return []
    base, hm = fc["none"], fc.get("handmade")
    lines = [
        "",
        "Function calls **added per call** (Python and C calls counted by cProfile over 20 calls, minus the "
        "baseline's; load-independent), ratio to hand-made, and calls per streamed chunk:",
        "",
        "| contender | " + " | ".join(workloads) + " | × hand-made | calls/chunk |",
        "|---|" + "---:|" * len(workloads) + "---:|---:|",
    ]
    for name, row in fc.items():
        if name in ("none", "none-aa"):
            continue
        added = {w: row[w] - base[w] for w in workloads}
        ratios = " / ".join(f"{added[w] / (hm[w] - base[w]):.2f}" if hm and hm[w] > base[w] else "–"
                            for w in workloads)
        per_chunk = (added["stream"] - added["chat"]) / chunks if "stream" in added and "chat" in added else None
        lines.append(f"| {titles[name]} | " + " | ".join(f"{added[w]:.0f}" for w in workloads)
                     + f" | {ratios} | {'–' if per_chunk is None else f'{per_chunk:.1f}'} |")
    return lines


def write_section(readme: Path, section: str) -> None:
    """Replace our section (up to the next ``## `` heading) or append it; other sections untouched."""
    text = readme.read_text() if readme.exists() else "# Benchmarks\n\nOne section per benchmark.\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip() + "\n\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    readme.write_text(text.rstrip() + "\n")
