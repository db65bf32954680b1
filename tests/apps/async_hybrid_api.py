"""An async FastAPI assistant: conversation memory, query rewriting, hybrid search and a reranker.

The shape of the "advanced RAG" write-ups: an ``AsyncOpenAI`` client; the conversation kept per
session and sent as chat history; the follow-up rewritten into a standalone search query by the
model; keyword scores (a small BM25) fused with FAISS vector hits by reciprocal rank fusion; the
fused candidates reranked by term overlap with the query; the best two pasted as labelled sources
in the system message.  It knows nothing of rag-otel.
"""

import math
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import faiss
import numpy as np
from fastapi import FastAPI, Header
from openai import AsyncOpenAI
from pydantic import BaseModel

CORPUS = Path(os.environ.get("CORPUS_DIR", Path(__file__).parent / "corpus"))
MODEL = "gpt-4o-mini"
EMBED = "text-embedding-3-small"

client = AsyncOpenAI(max_retries=0)
docs = [(p.stem, p.read_text().split("\n", 1)[1].strip()) for p in sorted(CORPUS.glob("*.md"))]
history: dict[str, list[dict]] = defaultdict(list)
index: faiss.IndexFlatIP | None = None
app = FastAPI(title="Nimbus assistant")


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def bm25(query: str, k1: float = 1.5, b: float = 0.75) -> list[int]:
    bodies = [tokens(t) for _, t in docs]
    avg = sum(map(len, bodies)) / len(bodies)
    df = Counter(w for body in bodies for w in set(body))
    scores = []
    for i, body in enumerate(bodies):
        tf = Counter(body)
        s = sum(math.log(1 + (len(bodies) - df[w] + 0.5) / (df[w] + 0.5)) * tf[w] * (k1 + 1)
                / (tf[w] + k1 * (1 - b + b * len(body) / avg)) for w in set(tokens(query)) if w in tf)
        scores.append((s, i))
    return [i for s, i in sorted(scores, reverse=True) if s > 0][:4]


async def embed(texts: list[str]) -> np.ndarray:
    resp = await client.embeddings.create(model=EMBED, input=texts)
    return np.array([d.embedding for d in resp.data], dtype="float32")


@app.on_event("startup")
async def build_index() -> None:
    global index
    vectors = await embed([t for _, t in docs])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)


def rerank(query: str, candidates: list[int], top_n: int = 2) -> list[int]:
    q = set(tokens(query))
    return sorted(candidates, key=lambda i: -len(q & set(tokens(docs[i][1]))))[:top_n]


class Message(BaseModel):
    message: str


REWRITE = ("Rewrite the user's last message as a standalone search query, using the conversation for context. "
           "Reply with the query only.")


@app.post("/chat")
async def chat(body: Message, x_session_id: str = Header("anonymous")) -> dict:
    turns = history[x_session_id]
    query = body.message
    if turns:
        rewrite = await client.chat.completions.create(
            model=MODEL, temperature=0,
            messages=[{"role": "system", "content": REWRITE}, *turns, {"role": "user", "content": body.message}])
        query = rewrite.choices[0].message.content.strip()
    _, vec_ids = index.search(await embed([query]), 4)
    fused: dict[int, float] = defaultdict(float)
    for ranking in (bm25(query), [int(i) for i in vec_ids[0] if i >= 0]):
        for rank, i in enumerate(ranking):
            fused[i] += 1 / (60 + rank)
    best = rerank(query, sorted(fused, key=lambda i: -fused[i]))
    sources = "\n".join(f"[{docs[i][0]}] {docs[i][1]}" for i in best)
    completion = await client.chat.completions.create(
        model=MODEL, temperature=0,
        messages=[{"role": "system", "content": f"You answer questions about Nimbus products. Cite the sources "
                                                f"by their name in brackets.\n\nSources:\n{sources}"},
                  *turns, {"role": "user", "content": body.message}])
    answer = completion.choices[0].message.content
    turns += [{"role": "user", "content": body.message}, {"role": "assistant", "content": answer}]
    return {"answer": answer, "query": query, "sources": [{"id": docs[i][0], "text": docs[i][1]} for i in best]}
