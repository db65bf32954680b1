"""A nightly job that answers a queue of questions with the team's RAG helper, which marks each question
with rag-otel's span API (``with rag_query(question)``); the job wraps the whole run in one span of its own.

The helper pastes the best matching documents (by shared words) into the system message as numbered
sources and asks.  Prints one JSON line per question.

Run: OPENAI_BASE_URL=... python decorated_job_script.py "question one" "question two"
"""

import json
import os
import re
import sys
from pathlib import Path

import openai
from opentelemetry import trace

from rag_otel import rag_query

CORPUS = Path(os.environ.get("CORPUS_DIR", Path(__file__).parent / "corpus"))
tracer = trace.get_tracer("nightly-job")


def words(text):
    return set(re.findall(r"[a-z]{4,}", text.lower()))


def answer(client, docs, question):
    with rag_query(question) as q:
        best = sorted(docs, key=lambda d: (-len(words(question) & words(docs[d])), d))[:2]
        sources = "\n".join(f"[{n}] {docs[d]}" for n, d in enumerate(best, 1))
        resp = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": f"Answer from the sources and cite them.\n\nSources:\n{sources}"},
                      {"role": "user", "content": question}],
        )
        text = resp.choices[0].message.content
        q.set_answer(text)
        return text, best


def main(questions):
    docs = {p.stem: p.read_text().split("\n", 1)[1].strip() for p in sorted(CORPUS.glob("*.md"))}
    client = openai.OpenAI()
    with tracer.start_as_current_span("nightly-job"):
        for question in questions:
            text, best = answer(client, docs, question)
            print(json.dumps({"question": question, "answer": text, "sources": [docs[d] for d in best]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
