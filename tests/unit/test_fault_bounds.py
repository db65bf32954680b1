"""Pure parts of holding under faults (issue 13): value bounds, the memory limiter, URL redaction for /health."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from rag_otel.processor.health_view import redact_url
from rag_otel.processor.memory_limit import MemoryLimiter
from rag_otel.processor.normalize import ModelUsage
from rag_otel.records import QueryRecord
from rag_otel.value_limits import MAX_TOKENS, bound_values


def test_out_of_range_numbers_are_rejected_and_the_rest_kept() -> None:
    rec = QueryRecord("t" * 32, "s" * 16, 1.0, 2.0, input_tokens=2**63 - 1, output_tokens=35, cost_usd=math.inf,
                      reasoning_tokens=-1, time_to_first_chunk=float("nan"))
    usage = [ModelUsage("m", "chat", 2**70, 35, 0.01), ModelUsage("m", "chat", 10, 5, -3.0)]
    rejected = {r.field for r in bound_values(rec, usage)}
    assert rejected == {"record.input_tokens", "record.reasoning_tokens", "record.cost_usd",
                        "record.time_to_first_chunk", "usage.input_tokens", "usage.cost_usd"}
    assert (rec.input_tokens, rec.output_tokens, rec.reasoning_tokens, rec.cost_usd) == (0, 35, 0, None)
    assert rec.time_to_first_chunk is None
    assert (usage[0].input_tokens, usage[0].cost_usd, usage[1].input_tokens, usage[1].cost_usd) == (0, 0.01, 10, None)
    ok = QueryRecord("t" * 32, "s" * 16, 1.0, 2.0, input_tokens=MAX_TOKENS, cost_usd=0.5)
    assert bound_values(ok, []) == [] and ok.input_tokens == MAX_TOKENS


@pytest.mark.parametrize("tokens", [0, 7, MAX_TOKENS, MAX_TOKENS + 1, -1, True, 7.0, None, "7"])
@pytest.mark.parametrize("cost", [None, 0.0, 0, 0.5, 10**6, 10.0**6 + 1, -0.5, math.nan, math.inf, float("-inf")])
def test_a_value_is_kept_or_rejected_by_its_range_whatever_its_type(tokens: object, cost: object) -> None:
    """Counts and amounts are judged by value: bools, floats as counts, NaN, infinities, strings, float
    subclasses, on the record and on each call's usage alike."""
    class Cost(float):  # a float subclass (numpy's float64 is one) is judged as a float
        pass

    for c in (cost, Cost(cost) if isinstance(cost, float) else cost):
        rec = QueryRecord("t" * 32, "s" * 16, 0.0, 1.0, input_tokens=tokens, cost_usd=c,  # type: ignore[arg-type]
                          time_to_first_chunk=c)  # type: ignore[arg-type]
        usage = [ModelUsage("m", "chat", input_tokens=tokens, output_tokens=3, cost_usd=c)]  # type: ignore[arg-type]
        rejected = {r.field for r in bound_values(rec, usage)}
        want = set()
        if not (isinstance(tokens, int) and 0 <= tokens <= MAX_TOKENS):
            want |= {"record.input_tokens", "usage.input_tokens"}
        if c is not None and not (isinstance(c, (int, float)) and math.isfinite(c) and 0 <= c <= 10**6):
            want |= {"record.cost_usd", "usage.cost_usd"}
        if c is not None and not (isinstance(c, (int, float)) and math.isfinite(c) and 0 <= c <= 7 * 24 * 3600):
            want.add("record.time_to_first_chunk")
        assert rejected == want


def test_the_memory_limiter_sums_stages_and_refuses_above_the_soft_limit() -> None:
    lim = MemoryLimiter(soft_bytes=1000, hard_bytes=2000)
    items, queued = [0], [0]
    lim.watch_items(lambda: items[0])
    lim.watch_bytes(lambda: queued[0])
    assert lim.admit(5000)  # nothing held: one request always fits (it is bounded by max_request_bytes)
    for _ in range(30):
        lim.learn(1000, 10)  # 100 bytes per item, learned within a few requests
    items[0], queued[0] = 5, 300
    assert lim.in_flight() == 800
    assert lim.admit(200) and not lim.admit(201)
    lim.reading(150)
    assert lim.in_flight() == 950 and lim.admit(200, counted=150) and not lim.over_hard()
    lim.reading(1051)
    assert lim.over_hard()  # 2001 held


def test_health_urls_keep_where_and_lose_credentials() -> None:
    assert redact_url("http://collector:4318") == "http://collector:4318"
    assert redact_url("https://u:p@apm.example/otlp?api_key=k&x=1") == "https://***@apm.example/otlp?api_key=***&x=***"
    assert redact_url("grpcs://tok@[::1]:4317") == "grpcs://***@[::1]:4317"
    assert redact_url("http://host:99999") == "***"  # unreadable: show nothing of it


def test_the_soft_limit_is_the_limit_less_the_spike() -> None:
    from rag_otel.config import ProcessorSettings

    assert ProcessorSettings(memory_limit_mib=100).memory_soft_limit_bytes == 80 << 20  # spike 20% by default
    assert ProcessorSettings(memory_limit_mib=100, memory_spike_limit_mib=10).memory_soft_limit_bytes == 90 << 20
    with pytest.raises(ValidationError, match="memory_spike_limit_mib must be below memory_limit_mib"):
        ProcessorSettings(memory_limit_mib=100, memory_spike_limit_mib=100)
