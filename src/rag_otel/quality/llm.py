"""LLM-as-judge scorer: an OpenAI-compatible chat endpoint rates the axes it is given, in one call.

It is the most capable backend and the most expensive, so it is fenced in: a deterministic sample
of queries (``llm.sample_rate``), an hourly call budget, a daily cost budget (prices from
pricing.yaml) and a hard timeout. Whenever the judge is not asked or does not answer in time or in
shape, the scorer falls back to lexical for those axes and the reason is recorded, so scoring
never waits on, nor fails because of, the judge.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from rag_otel.config import LlmJudge
from rag_otel.pricing import PriceTable, load_prices
from rag_otel.quality.base import Axis, Judged, Judgement, NotJudged, Query, clamp

logger = logging.getLogger(__name__)

_MAX_CHARS = 6000  # per text in the prompt: bounds cost; the judge sees the start of long sources
_MAX_PARALLEL = 4  # judge calls in flight; beyond that a query is scored lexically, not queued
_JSON = re.compile(r"\{.*\}", re.DOTALL)

AXIS_QUESTIONS = {
    "accuracy": "Are the answer's claims supported by the sources?",
    "completeness": "Does the answer address every part of the question?",
    "relevance": "Does the answer address the question that was asked?",
    "consistency": "Is the answer free of contradictions with the sources and with itself "
    "(numbers, dates, names, negation)?",
}
SYSTEM_PROMPT = (
    "You grade answers of a retrieval-augmented assistant. For each requested criterion give a score "
    "from 0 (fails completely) to 1 (fully meets it) and a one-sentence explanation. Reply with JSON only: "
    '{"<criterion>": {"score": <0..1>, "explanation": "<why>"}, ...}'
)


def build_prompt(query: Query, axes: Sequence[Axis]) -> str:
    sources = "\n---\n".join(s[:_MAX_CHARS] for s in query.sources) or "(none)"
    criteria = "\n".join(f"- {a}: {AXIS_QUESTIONS[a]}" for a in axes)
    return (
        f"Question:\n{query.question[:_MAX_CHARS]}\n\nAnswer:\n{query.answer[:_MAX_CHARS]}\n\n"
        f"Sources:\n{sources}\n\nCriteria:\n{criteria}"
    )


def parse_reply(text: str, axes: Sequence[Axis]) -> dict[Axis, Judged]:
    """The judge's JSON (tolerating prose or code fences around it); ValueError when unusable.

    The judge's own words are evidence, not explanation: they retell the question, answer and sources."""
    m = _JSON.search(text or "")
    if not m:
        raise ValueError("no JSON object in the judge's reply")
    data = json.loads(m.group())
    out: dict[Axis, Judged] = {}
    for axis in axes:
        item = data.get(axis)
        if isinstance(item, dict):
            score, why = item.get("score"), str(item.get("explanation", ""))
        else:
            score, why = item, ""
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            raise ValueError(f"no score in [0, 1] for {axis}")
        out[axis] = (clamp(float(score)), "judged by the LLM", why)
    return out


def _is_timeout(e: BaseException) -> bool:
    """The openai SDK's request timeout (``APITimeoutError``), or any other timeout raised by the call."""
    import openai

    return isinstance(e, (openai.APITimeoutError, TimeoutError))


def sampled(query: Query, rate: float) -> bool:
    """Deterministic: the same question and answer are always (or never) sent to the judge."""
    if rate >= 1:
        return True
    h = hashlib.blake2b(f"{query.question}\x00{query.answer}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < rate


class LlmBackend:
    """Judges axes with one chat completion per query, within sample rate, budgets and timeout."""

    def __init__(
        self,
        cfg: LlmJudge,
        prices: PriceTable | None = None,
        clock: Callable[[], float] = time.monotonic,
        client: Any = None,
    ) -> None:
        self.cfg = cfg
        self.evaluator = f"llm/{cfg.model}"
        self.prices = prices or load_prices()
        self.clock = clock
        self.stats: Counter[str] = Counter()  # calls, ok, failed, timeout, not_sampled, over_budget
        self.cost_usd = 0.0
        self.last_error: str | None = None
        self._client = client if client is not None else self._make_client()
        self._calls: deque[float] = deque()
        self._costs: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=_MAX_PARALLEL, thread_name_prefix="rag-otel-judge")
        self._in_flight = threading.BoundedSemaphore(_MAX_PARALLEL)

    def _make_client(self) -> Any:
        """Built up front: importing the SDK takes a second, which must not eat the first timeout."""
        import openai

        return openai.OpenAI(
            base_url=self.cfg.base_url,
            api_key=os.environ.get(self.cfg.api_key_env) or "unset",
            timeout=self.cfg.timeout,
            max_retries=0,
        )

    def _admit(self) -> str | None:
        """None when a call may go out now (and count it), else the reason it may not."""
        now = self.clock()
        with self._lock:
            while self._calls and self._calls[0] <= now - 3600:
                self._calls.popleft()
            while self._costs and self._costs[0][0] <= now - 86400:
                self._costs.popleft()
            if len(self._calls) >= self.cfg.max_calls_per_hour:
                return "hourly call budget reached"
            if sum(c for _, c in self._costs) >= self.cfg.max_cost_per_day:
                return "daily cost budget reached"
            self._calls.append(now)
            return None

    def _record(self, kind: str, error: str | None = None, cost: float = 0.0) -> None:
        with self._lock:
            self.stats[kind] += 1
            if error:
                self.last_error = error
            if cost:
                self.cost_usd += cost
                self._costs.append((self.clock(), cost))

    def _call(self, prompt: str) -> tuple[str, float]:
        resp = self._client.chat.completions.create(
            model=self.cfg.model,
            messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            temperature=0,
        )
        usage = getattr(resp, "usage", None)
        cost = 0.0
        if usage is not None:
            cost = self.prices.cost(
                self.cfg.model,
                input_tokens=usage.prompt_tokens or 0,
                output_tokens=usage.completion_tokens or 0,
            ) or 0.0
        return resp.choices[0].message.content or "", cost

    def score(self, query: Query, axes: Sequence[Axis]) -> dict[Axis, Judgement]:
        def skip(kind: str, reason: str) -> dict[Axis, Judgement]:
            self._record(kind, reason if kind in ("failed", "timeout") else None)
            return {a: NotJudged(reason) for a in axes}

        if not sampled(query, self.cfg.sample_rate):
            return skip("not_sampled", "not sampled")
        return self.judge(query, axes)

    def judge(self, query: Query, axes: Sequence[Axis]) -> dict[Axis, Judgement]:
        """``score`` without the sample: the cascade asks for the queries it escalates (budgets still apply)."""
        def skip(kind: str, reason: str) -> dict[Axis, Judgement]:
            self._record(kind, reason if kind in ("failed", "timeout") else None)
            return {a: NotJudged(reason) for a in axes}

        if not self._in_flight.acquire(blocking=False):
            return skip("busy", "judge busy")
        reason = self._admit()
        if reason:
            self._in_flight.release()
            return skip("over_budget", reason)
        self._record("calls")
        fut = self._pool.submit(self._call, build_prompt(query, axes))
        fut.add_done_callback(lambda _f: self._in_flight.release())
        try:
            text, cost = fut.result(timeout=self.cfg.timeout)
        except FutureTimeout:
            return skip("timeout", f"timed out after {self.cfg.timeout:g}s")
        except Exception as e:
            if _is_timeout(e):  # the client's own timer (the same length) can ring first: the same timeout
                return skip("timeout", f"timed out after {self.cfg.timeout:g}s")
            return skip("failed", f"failed: {type(e).__name__}: {str(e)[:120]}")
        try:
            out = parse_reply(text, axes)
        except ValueError as e:
            self._record("failed", f"unusable reply: {e}", cost)
            return {a: NotJudged(f"unusable reply: {e}") for a in axes}
        self._record("ok", cost=cost)
        return dict(out)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
