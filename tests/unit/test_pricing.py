"""Costs come from the local price table and are never guessed."""

import pytest

from rag_otel.config import ModelPrice, Pricing
from rag_otel.pricing import load_prices, normalize_model


def test_dated_snapshots_and_prefixes_match_their_family():
    t = load_prices()
    assert t.lookup("gpt-4o-2024-08-06").model == "gpt-4o"
    assert t.lookup("openai/GPT-4o-mini-2024-07-18").model == "gpt-4o-mini"
    assert t.lookup("claude-3-5-sonnet-20241022").model == "claude-3-5-sonnet"
    assert t.lookup("gpt-35-turbo").model == "gpt-3.5-turbo"  # Azure alias
    assert normalize_model("o3-mini-2025-01-31") == "o3-mini"


def test_no_loose_fallback_to_a_different_model():
    t = load_prices()
    assert t.lookup("gpt-4o-mini-realtime-preview") is None
    assert t.lookup("my-finetune") is None
    assert t.cost("my-finetune", input_tokens=10) is None


def test_cost_bills_cached_and_reasoning_tokens_at_their_rates():
    t = load_prices()
    # gpt-4o: input 2.50, cached 1.25, output 10.00 per 1M
    cost = t.cost("gpt-4o", input_tokens=1000, cached_input_tokens=400, output_tokens=200)
    assert cost == pytest.approx((600 * 2.5 + 400 * 1.25 + 200 * 10.0) / 1e6)


def test_user_prices_override_and_add():
    t = load_prices(Pricing(models={"gpt-4o": ModelPrice(input=1, output=2),
                                    "in-house-llm": ModelPrice(input=0.5, output=0.5, reasoning=3)}))
    assert t.cost("gpt-4o", input_tokens=1_000_000) == pytest.approx(1.0)
    assert t.cost("in-house-llm", output_tokens=100, reasoning_tokens=100) == pytest.approx(3e-4)
    assert t.version.endswith("+user")


@pytest.mark.parametrize(("inp", "cached", "out", "reasoning", "billed"), [
    # (input, cached, output, reasoning) -> tokens billed at (input, cached, output, reasoning) rates
    (1000, 1500, 200, 0, (0, 1000, 200, 0)),  # more cached than input: all input billed as cached
    (1000, -5, 200, 0, (1000, 0, 200, 0)),  # a negative detail count bills nothing at its rate
    (100, 0, 50, 80, (100, 0, 0, 50)),  # more reasoning than output: all output billed as reasoning
    (-10, 5, 50, -1, (-10, 0, 50, 0)),  # a negative total leaves its detail at zero (clamping is upstream)
    (0, 0, 0, 0, (0, 0, 0, 0)),
])
def test_cost_caps_cached_and_reasoning_at_their_totals(inp, cached, out, reasoning, billed):
    """Details never bill more tokens than their total, nor a negative number."""
    p = load_prices(Pricing(models={"m": ModelPrice(input=1, cached_input=10, output=100, reasoning=1000)})).lookup("m")
    expected = (billed[0] * 1 + billed[1] * 10 + billed[2] * 100 + billed[3] * 1000) / 1e6
    assert p.cost(input_tokens=inp, cached_input_tokens=cached, output_tokens=out,
                  reasoning_tokens=reasoning) == pytest.approx(expected)
