"""Bounds on the numbers a trace may bring in: absurd values are set aside before they reach metrics or the store.

OTLP carries any int64 or double, so a buggy or hostile sender can say a call used 2^63-1 tokens.
Python would add that up happily; the store's BIGINT rollups would overflow and lose the whole write batch,
and every per-model metric would be ruined for good (counters never go down).  So a value outside what a
real model call can be is *rejected*, not clamped (a clamped value is still a made-up number in every sum):
the token count becomes 0 and the cost unknown, the record keeps everything else, and the reason is
returned for the caller to count and log.

The bounds are generous on purpose: a million-token context window is 10^6, so 10^9 tokens per record
leaves a thousandfold margin, and a million records at the bound still sum far below 2^63.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rag_otel.records import QueryRecord

MAX_TOKENS = 10**9  # per record, and per model call
MAX_COST_USD = 10**6  # per record, and per model call
MAX_SECONDS = 7 * 24 * 3600.0  # time to first chunk; a query's duration comes from span timestamps


@dataclass(frozen=True, slots=True)
class Rejected:
    """One value set aside: which field, and what it was (for the log)."""

    field: str
    value: object


def _count_ok(n: object) -> bool:
    return isinstance(n, int) and 0 <= n <= MAX_TOKENS


def _amount_ok(x: object, bound: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and 0 <= x <= bound


def bound_values(record: QueryRecord, usage: Sequence[object] = ()) -> list[Rejected]:
    """Reject out-of-range numbers of ``record`` and its per-call ``usage`` in place; return what was rejected.

    ``usage`` items are :class:`~rag_otel.processor.normalize.ModelUsage` (``input_tokens``,
    ``output_tokens``, ``cost_usd``), the values the per-model metrics count."""
    out: list[Rejected] = []
    for name in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"):
        v = getattr(record, name)
        if not _count_ok(v):
            out.append(Rejected(f"record.{name}", v))
            setattr(record, name, 0)
    if record.cost_usd is not None and not _amount_ok(record.cost_usd, MAX_COST_USD):
        out.append(Rejected("record.cost_usd", record.cost_usd))
        record.cost_usd = None
    ttfc = record.time_to_first_chunk
    if ttfc is not None and not _amount_ok(ttfc, MAX_SECONDS):
        out.append(Rejected("record.time_to_first_chunk", ttfc))
        record.time_to_first_chunk = None
    for u in usage:
        for name in ("input_tokens", "output_tokens"):
            v = getattr(u, name)
            if not _count_ok(v):
                out.append(Rejected(f"usage.{name}", v))
                setattr(u, name, 0)
        cost = getattr(u, "cost_usd", None)
        if cost is not None and not _amount_ok(cost, MAX_COST_USD):
            out.append(Rejected("usage.cost_usd", cost))
            u.cost_usd = None  # type: ignore[attr-defined]
    return out
