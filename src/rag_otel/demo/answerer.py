"""The demo's LLM: an OpenAI-compatible endpoint when configured, else an extractive answerer that says so.

Both stream text chunks.  The OpenAI answerer goes through the real ``openai`` SDK, so rag-otel's
openai auto-instrumentation makes its ``chat {model}`` span; the extractive one is our own code,
so it is wrapped with the span API's ``generate`` exactly as a user would wrap an uninstrumented client.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from rag_otel import current_rag_span, generate
from rag_otel.demo.corpus import Passage
from rag_otel.demo.embedding import words

EXTRACTIVE_MODEL = "rag-otel-extractive"  # a made-up DEMO PRICE in pricing.yaml (it really costs nothing)
EXTRACTIVE_NOTE = (
    "Quoted from the Harbor Sync docs by the built-in extractive answerer, a rule-based stand-in for a language model"
)  # told beside the answer (JSON field, response header), not inside it: the quality scorer judges the answer text,
# and a disclaimer sentence the sources cannot support would mark every verbatim quote down (accuracy ~0.6, not 1.0)
NO_ANSWER = "The documents I found do not answer this question."
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class Answerer(Protocol):
    model: str
    note: str | None  # how the answer was made, when a reader could take it for an LLM's

    def stream(self, question: str, passages: Sequence[Passage], history: Sequence[str]) -> AsyncIterator[str]: ...


class ExtractiveAnswerer:
    """Picks the retrieved sentences that share the most words with the question, and cites them.

    Its "tokens" are whitespace-separated words (it has no tokenizer); they are what its demo price is charged on.
    """

    model = EXTRACTIVE_MODEL
    note = EXTRACTIVE_NOTE

    def __init__(self, max_sentences: int = 2) -> None:
        self.max_sentences = max_sentences

    def answer(self, question: str, passages: Sequence[Passage], history: Sequence[str] = ()) -> str:
        wanted = set(words(" ".join([*history, question])))
        scored: list[tuple[float, int, str, str]] = []
        for rank, p in enumerate(passages):
            for s in _SENTENCE.split(p.text):
                overlap = len(wanted & set(words(s)))
                scored.append((overlap - 0.1 * rank, -len(scored), s, p.id))
        best = sorted(scored, reverse=True)[: self.max_sentences]
        if not best or best[0][0] <= 0:
            return NO_ANSWER
        best.sort(key=lambda t: -t[1])  # keep document order for readability
        return " ".join(f"{s} [{pid}]" for _, _, s, pid in best)

    @generate(EXTRACTIVE_MODEL, provider="rag-otel")
    async def stream(self, question: str, passages: Sequence[Passage],
                     history: Sequence[str] = ()) -> AsyncIterator[str]:
        text = self.answer(question, passages, history)
        for piece in re.findall(r"\S+\s*", text):
            yield piece
        prompt = " ".join([question, *history, *(p.text for p in passages)])
        current_rag_span().set_usage(input_tokens=len(prompt.split()), output_tokens=len(text.split()))


class OpenAIAnswerer:
    """Any OpenAI-compatible chat endpoint (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``OPENAI_MODEL``)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        from openai import AsyncOpenAI

        self.model = env.get("OPENAI_MODEL") or "gpt-4o-mini"
        self.note = None
        self._client = AsyncOpenAI(base_url=env.get("OPENAI_BASE_URL") or None,
                                   api_key=env.get("OPENAI_API_KEY") or "unused", max_retries=0, timeout=30.0)

    async def stream(self, question: str, passages: Sequence[Passage],
                     history: Sequence[str] = ()) -> AsyncIterator[str]:
        context = "\n".join(f"[{p.id}] {p.text}" for p in passages)
        messages = [{"role": "system", "content": "Answer from the context only and cite passage ids in brackets.\n"
                                                  f"Context:\n{context}"}]
        messages += [{"role": "user", "content": h} for h in history]
        messages.append({"role": "user", "content": question})
        response = await self._client.chat.completions.create(model=self.model, messages=messages, stream=True,
                                                              stream_options={"include_usage": True})
        async for chunk in response:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content


def choose_answerer(env: Mapping[str, str] | None = None) -> Answerer:
    """The OpenAI answerer when ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` is set, else the extractive one."""
    env = os.environ if env is None else env
    if env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_KEY"):
        return OpenAIAnswerer(env)
    return ExtractiveAnswerer()
