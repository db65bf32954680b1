"""An offline evaluation run: the team's RAG pipeline answers a list of questions inside one span of its own.

The shape of many eval and backfill scripts: the app already uses the OpenTelemetry API for its own
``eval-run`` span (so the run shows as one trace), builds a numpy index of the corpus with OpenAI
embeddings first, then for each question embeds it, takes the two nearest documents, pastes them under
"Context:" and asks.  Prints one JSON line per question.  It knows nothing of rag-otel.

Run: OPENAI_BASE_URL=... python eval_loop_script.py "question one" "question two"
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import openai
from opentelemetry import trace

CORPUS = Path(os.environ.get("CORPUS_DIR", Path(__file__).parent / "corpus"))
EMBED = "text-embedding-3-small"
tracer = trace.get_tracer("eval-run")


def embed(client, texts):
    resp = client.embeddings.create(model=EMBED, input=texts)
    vecs = np.array([d.embedding for d in resp.data])
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def main(questions):
    docs = {p.stem: p.read_text().split("\n", 1)[1].strip() for p in sorted(CORPUS.glob("*.md"))}
    names = list(docs)
    client = openai.OpenAI()
    index = embed(client, [docs[n] for n in names])
    with tracer.start_as_current_span("eval-run"):
        for question in questions:
            sims = index @ embed(client, [question])[0]
            best = [names[i] for i in np.argsort(-sims)[:2]]
            context = "\n\n".join(docs[n] for n in best)
            resp = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "system", "content": "Answer using only the context. Be brief."},
                          {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"}],
            )
            print(json.dumps({"question": question, "answer": resp.choices[0].message.content,
                              "sources": [{"id": n, "score": float(sims[names.index(n)]), "text": docs[n]}
                                          for n in best]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
