"""The four workloads, each one "call" of what an app does; the same code for every contender."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.contenders import Hooks

CHAT_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"
QUESTION = "How do I rotate the API keys of a production deployment without downtime for users?"
MESSAGES = [
    {"role": "system", "content": "You answer from the provided context only, citing document ids."},
    {"role": "user", "content": QUESTION},
]
# A tiny fixed corpus: retrieval's own work is the same for every contender; its span is the point.
CORPUS = [(f"doc-{i:03d}", ((i * 37) % 101) / 101) for i in range(20)]
TOP_K = 4
STREAM_KW = {"stream": True, "stream_options": {"include_usage": True}}


def chat(h: Hooks, client: Any) -> int:
    r = h.chat(client, model=CHAT_MODEL, messages=MESSAGES, temperature=0.2)
    return len(r.choices[0].message.content)


def stream(h: Hooks, client: Any) -> int:
    n = 0
    for chunk in h.stream(client, model=CHAT_MODEL, messages=MESSAGES, temperature=0.2, **STREAM_KW):
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
    return n


def embeddings(h: Hooks, client: Any) -> int:
    r = h.embed(client, model=EMBED_MODEL, input=QUESTION)
    return len(r.data[0].embedding)


def rag(h: Hooks, client: Any) -> int:
    """root( embeddings -> retrieval -> chat ): the whole query an assistant answers."""
    with h.root(QUESTION):
        vec = h.embed(client, model=EMBED_MODEL, input=QUESTION).data[0].embedding
        with h.retrieve("faiss", TOP_K) as r:
            bias = vec[0]
            docs = sorted(((d, s + bias) for d, s in CORPUS), key=lambda x: -x[1])[:TOP_K]
            r.documents(docs)
        context = "\n".join(d for d, _ in docs)
        messages = [MESSAGES[0], {"role": "user", "content": f"{context}\n\n{QUESTION}"}]
        resp = h.chat(client, model=CHAT_MODEL, messages=messages, temperature=0.2)
    return len(resp.choices[0].message.content)


WORKLOADS: dict[str, Callable[[Hooks, Any], int]] = {
    "chat": chat, "stream": stream, "embeddings": embeddings, "rag": rag,
}
