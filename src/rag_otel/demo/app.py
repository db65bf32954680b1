"""The demo RAG app: FastAPI, FAISS over the built-in corpus, and an answerer; instrumented like a user would.

``POST /ask`` answers a question (JSON, or streamed text with ``"stream": true``).  Who asks comes
from the ``x-user-id`` / ``x-session-id`` / ``x-rag-features`` headers, which rag-otel reads by
itself.  ``simulate`` lets the traffic generator inject a slow upstream or a failing LLM call;
both are labelled as injected on the span (``rag.demo.injected``) so nobody mistakes them for real faults.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry import trace
from pydantic import BaseModel, Field

from rag_otel import current_rag_query, embed, rag_query, retrieve
from rag_otel.demo.answerer import Answerer, choose_answerer
from rag_otel.demo.corpus import Passage, load_passages
from rag_otel.demo.embedding import Embedder, load_embedder

SERVICE_NAME = "rag-demo-app"
DATA_SOURCE = "harbor-docs"
_CITATION = re.compile(r"\[([a-z][a-z\-]*#\d+)\]")


class Simulate(BaseModel):
    delay_s: float = Field(0.0, ge=0, le=30, description="an injected slow upstream, in seconds")
    fail: bool = Field(False, description="make the LLM call fail (an injected upstream error)")


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    stream: bool = False
    top_k: int = Field(4, ge=1, le=10)
    history: list[str] = Field(default_factory=list, max_length=10, description="earlier questions (follow-ups)")
    simulate: Simulate = Field(default_factory=Simulate)


class InjectedFailure(RuntimeError):
    """The failure ``simulate.fail`` asked for (what an LLM provider's 5xx looks like to the app)."""


@dataclass
class Knowledge:
    """Passages, their embedding and the FAISS index over them."""

    passages: list[Passage]
    embedder: Embedder
    index: object = field(repr=False)

    @classmethod
    def build(cls, embedding: str = "auto") -> Knowledge:
        import faiss

        from rag_otel.sdk.instrumentors.faiss import name_index

        passages = load_passages()
        texts = [f"{p.title}. {p.text}" for p in passages]
        embedder = load_embedder(embedding, texts)
        index = name_index(faiss.IndexFlatIP(embedder.dimensions), DATA_SOURCE)
        index.add(embedder.embed(texts))
        return cls(passages, embedder, index)

    def search(self, question: str, top_k: int) -> list[Passage]:
        with embed(self.embedder.name, provider="local"):
            vector = self.embedder.embed([question])
        with retrieve(DATA_SOURCE, top_k=top_k) as r:
            scores, ids = self.index.search(vector, top_k)  # faiss auto-instrumented: a child span
            hits = [(self.passages[i], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
            r.set_documents([{"id": p.id, "score": round(s, 4), "text": p.text} for p, s in hits])
        return [p for p, _ in hits]


def create_app(knowledge: Knowledge, answerer: Answerer) -> FastAPI:
    app = FastAPI(title="rag-otel demo app (Harbor Sync assistant)", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": answerer.model, "embedding": knowledge.embedder.name,
                "passages": len(knowledge.passages)}

    @app.post("/ask")
    async def ask(body: AskIn):
        ids: list[str] = []
        run = _run(knowledge, answerer, body, ids)
        try:
            first = await anext(run, "")  # an early failure is a 502, not a broken stream
            trace_id = ids[0]
            if not body.stream:
                text = first + "".join([c async for c in run])
                return {"answer": text, "sources": cited(text), "model": answerer.model, "trace_id": trace_id,
                        **({"note": answerer.note} if answerer.note else {})}
        except Exception as e:
            return JSONResponse({"error": f"{type(e).__name__}: {e}", "trace_id": ids[0] if ids else None},
                                status_code=502)
        return StreamingResponse(_prepend(first, run), media_type="text/plain; charset=utf-8",
                                 headers={"x-trace-id": trace_id, "x-model": answerer.model,
                                          **({"x-answer-note": answerer.note} if answerer.note else {})})

    return app


@rag_query(features=["citations"])
async def _run(knowledge: Knowledge, answerer: Answerer, body: AskIn, ids: list[str]) -> AsyncIterator[str]:
    """One query: puts its trace id in ``ids`` at once, then yields the answer's chunks (the span ends with the
    stream). The id is not yielded: to the SDK every item of a ``rag_query`` stream is answer text, and a failed
    stream's items are its partial answer (the id was once scored as the answer of every injected failure)."""
    query = current_rag_query()
    query.set_query(body.question)
    query.add_features(*(["streaming"] if body.stream else []), *(["follow-up"] if body.history else []))
    if body.simulate.delay_s or body.simulate.fail:
        query.set_attribute("rag.demo.injected", "failure" if body.simulate.fail else "slow")
    ids.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))
    passages = knowledge.search(body.question, body.top_k)
    await asyncio.sleep(body.simulate.delay_s)
    if body.simulate.fail:
        raise InjectedFailure("simulated LLM upstream error (injected by the demo traffic)")
    parts: list[str] = []
    async for chunk in answerer.stream(body.question, passages, body.history):
        parts.append(chunk)
        yield chunk
    query.set_answer("".join(parts))


def cited(answer: str) -> list[str]:
    """The passage ids the answer cites, from its ``[topic#n]`` markers, in order, once each."""
    return list(dict.fromkeys(_CITATION.findall(answer)))


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def serve_app(host: str, port: int, *, embedding: str = "auto", env: Mapping[str, str] | None = None,
              ready: object = None) -> None:
    """``rag-otel demo --serve-app``: configure rag-otel from the environment, build the app, run uvicorn."""
    import uvicorn

    import rag_otel

    env = os.environ if env is None else env
    capture = None if env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") else "scoring_only"
    rag_otel.configure(service_name=env.get("OTEL_SERVICE_NAME") or SERVICE_NAME, capture=capture, strict=False)
    app = create_app(Knowledge.build(embedding), choose_answerer(env))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
