"""A command-line helper: hand-written keyword search over markdown files, plain openai SDK, no server.

The shape of many small internal tools: score each file by the question's words it contains, put the
best files in the system message as numbered sources, and stream the answer to the terminal.  Prints
one JSON line per question (what it retrieved and what it answered) for whoever runs it.

Run: OPENAI_BASE_URL=... python keyword_script.py "question one" "question two"
"""

import json
import os
import re
import sys
from pathlib import Path

import openai

CORPUS = Path(os.environ.get("CORPUS_DIR", Path(__file__).parent / "corpus"))
STOP = {"a", "an", "the", "is", "are", "do", "does", "how", "what", "i", "my", "to", "of", "for", "can", "long",
        "in", "on", "it", "and", "or", "with", "much", "when"}

SYSTEM = """You are Nimbus's support bot. Answer with the help of the sources below and cite them like [1].

Sources:
{sources}"""


def words(text):
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP}


def search(question, files, k=2):
    q = words(question)
    scored = sorted(((len(q & words(text)) / (len(q) or 1), name, text) for name, text in files.items()),
                    reverse=True)
    return [(name, score, text) for score, name, text in scored[:k] if score > 0]


def main(questions):
    files = {p.stem: p.read_text().split("\n", 1)[1].strip() for p in sorted(CORPUS.glob("*.md"))}
    client = openai.OpenAI()
    for question in questions:
        hits = search(question, files)
        sources = "\n".join(f"[{n}] {text}" for n, (_, _, text) in enumerate(hits, 1))
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": SYSTEM.format(sources=sources)},
                      {"role": "user", "content": question}],
            stream=True,
            stream_options={"include_usage": True},
        )
        answer = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        print(json.dumps({"question": question, "answer": answer,
                          "sources": [{"id": name, "score": score, "text": text} for name, score, text in hits]}),
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
