"""Support assistant: plain openai SDK + FAISS behind FastAPI, passages pasted into the prompt.

Written the way the common "question answering using embeddings" examples are: embed the docs at
start-up, keep the vectors in a flat FAISS index, embed the question, take the top hits, paste them
into one user message under "Context:" and ask the chat model.  It knows nothing of rag-otel.

Run: OPENAI_BASE_URL=... uvicorn openai_faiss_api:app
"""

import os
from pathlib import Path

import faiss
import numpy as np
from fastapi import FastAPI
from openai import OpenAI
from pydantic import BaseModel

CORPUS = Path(os.environ.get("CORPUS_DIR", Path(__file__).parent / "corpus"))
EMBED_MODEL = "text-embedding-3-small"
CHAT_MODEL = "gpt-4o-mini"
TOP_K = 3

client = OpenAI(max_retries=0)
docs: list[dict] = []


def embed(texts: list[str]) -> np.ndarray:
    resp = client.embeddings.create(model=EMBED_MODEL, input=texts)
    return np.array([d.embedding for d in resp.data], dtype="float32")


def load_corpus() -> faiss.IndexFlatIP:
    for path in sorted(CORPUS.glob("*.md")):
        docs.append({"id": path.stem, "text": path.read_text().split("\n", 1)[1].strip()})
    vectors = embed([d["text"] for d in docs])
    idx = faiss.IndexFlatIP(vectors.shape[1])
    idx.add(vectors)
    return idx


index = load_corpus()
app = FastAPI(title="Nimbus support")


class Ask(BaseModel):
    question: str


class Doc(BaseModel):
    id: str
    text: str


PROMPT = """Answer the question using only the context below. If the answer is not in the context, say you don't know.

Context:
{context}

Question: {question}
Answer:"""


@app.post("/ask")
def ask(body: Ask) -> dict:
    scores, ids = index.search(embed([body.question]), TOP_K)
    hits = [(docs[i], float(s)) for i, s in zip(ids[0], scores[0], strict=False) if i >= 0]
    context = "\n\n".join(d["text"] for d, _ in hits)
    completion = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {"role": "system", "content": "You are a helpful support assistant for Nimbus kitchen appliances."},
            {"role": "user", "content": PROMPT.format(context=context, question=body.question)},
        ],
        temperature=0,
    )
    return {"answer": completion.choices[0].message.content,
            "sources": [{"id": str(i), "doc": d["id"], "score": s, "text": d["text"]}
                        for i, (d, s) in zip(ids[0], hits, strict=False)]}


@app.post("/documents")
def add_document(doc: Doc) -> dict:
    docs.append({"id": doc.id, "text": doc.text})
    index.add(embed([doc.text]))
    return {"indexed": len(docs)}


@app.get("/health")
def health() -> dict:
    return {"status": "ok", "documents": len(docs)}
