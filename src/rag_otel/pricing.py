"""Model prices from the bundled, versioned ``pricing.yaml`` plus the user's overrides.

Costs are computed locally and never guessed: an unknown model yields ``None`` (and the caller
marks the span ``rag.cost.unknown_model``), not a made-up number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from rag_otel.config import ConfigError, ModelPrice, Pricing

_PER_TOKEN = 1e-6
# Dated snapshots: -2024-08-06, -20241022, -0613 (four digits, OpenAI's old style).
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")
_PROVIDER_PREFIX = re.compile(r"^(?:[a-z0-9_.-]+/)+")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token (already divided by 1M), so cost is a dot product."""

    model: str
    input: float
    output: float
    cached_input: float
    reasoning: float
    provider: str | None = None

    def cost(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_input_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> float:
        """USD for one call. Cached tokens are part of input, reasoning tokens part of output
        (as OpenAI and Anthropic count them), each billed at its own rate."""
        # min(max(cached, 0), max(input, 0)), and the same for reasoning, written as comparisons:
        # this runs on every model call, and four builtin calls cost more than the arithmetic
        inp = input_tokens if input_tokens > 0 else 0
        cached = cached_input_tokens if cached_input_tokens > 0 else 0
        cached = cached if cached < inp else inp
        out = output_tokens if output_tokens > 0 else 0
        reasoning = reasoning_tokens if reasoning_tokens > 0 else 0
        reasoning = reasoning if reasoning < out else out
        return (
            (input_tokens - cached) * self.input
            + cached * self.cached_input
            + (output_tokens - reasoning) * self.output
            + reasoning * self.reasoning
        )


def normalize_model(name: str) -> str:
    """``openai/GPT-4o-2024-08-06`` -> ``gpt-4o``: lowercase, no provider prefix, no date."""
    n = _PROVIDER_PREFIX.sub("", name.strip().lower())
    return _DATE_SUFFIX.sub("", n)


class PriceTable:
    """Lookup by exact name, then without the date suffix, then by alias."""

    def __init__(self, models: Mapping[str, ModelPrice], version: str = "custom") -> None:
        self.version = version
        self._prices: dict[str, Price] = {}
        self._aliases: dict[str, str] = {}
        for name, mp in models.items():
            key = name.lower()
            self._prices[key] = Price(
                model=key,
                input=mp.input * _PER_TOKEN,
                output=mp.output * _PER_TOKEN,
                cached_input=(mp.input if mp.cached_input is None else mp.cached_input) * _PER_TOKEN,
                reasoning=(mp.output if mp.reasoning is None else mp.reasoning) * _PER_TOKEN,
                provider=mp.provider,
            )
            for alias in mp.aliases:
                self._aliases[alias.lower()] = key
        self._cache: dict[str, Price | None] = {}

    def __len__(self) -> int:
        return len(self._prices)

    def lookup(self, model: str | None) -> Price | None:
        """The price for ``model``, or ``None`` when it is unknown."""
        if not model:
            return None
        try:
            return self._cache[model]
        except KeyError:
            pass
        found = None
        lowered = _PROVIDER_PREFIX.sub("", model.strip().lower())
        for candidate in (lowered, normalize_model(model)):
            key = candidate if candidate in self._prices else self._aliases.get(candidate)
            if key is not None:
                found = self._prices[key]
                break
        if len(self._cache) < 4096:  # bounded: model names come from the wire
            self._cache[model] = found
        return found

    def cost(self, model: str | None, **tokens: int) -> float | None:
        price = self.lookup(model)
        return None if price is None else price.cost(**tokens)


def _read_table(text: str, source: str) -> tuple[str, dict[str, ModelPrice]]:
    try:
        data = yaml.safe_load(text) or {}
        models = {str(k): ModelPrice.model_validate(v) for k, v in (data.get("models") or {}).items()}
    except Exception as e:  # yaml or validation: say which file
        raise ConfigError(f"price table {source} is invalid: {e}") from None
    return str(data.get("version", "unknown")), models


@lru_cache(maxsize=1)
def _bundled() -> tuple[str, dict[str, ModelPrice]]:
    text = resources.files("rag_otel").joinpath("pricing.yaml").read_text(encoding="utf-8")
    return _read_table(text, "rag_otel/pricing.yaml")


def load_prices(pricing: Pricing | None = None) -> PriceTable:
    """The bundled table (or ``pricing.file``) with ``pricing.models`` laid over it."""
    if pricing is not None and pricing.file:
        path = Path(pricing.file)
        try:
            version, models = _read_table(path.read_text(encoding="utf-8"), str(path))
        except OSError as e:
            raise ConfigError(f"cannot read price table {path}: {e.strerror}") from None
    else:
        version, models = _bundled()
        models = dict(models)
    if pricing is not None and pricing.models:
        models.update({k: v for k, v in pricing.models.items()})
        version = f"{version}+user"
    return PriceTable(models, version)
