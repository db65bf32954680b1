"""Measure what the official OTel zero-code path gives for the test apps, beside rag-otel's records.

Not a test (it needs a second virtualenv): the same apps run unmodified under
``opentelemetry-instrument`` from a venv holding only opentelemetry-distro, the OTLP exporter and the
official instrumentations (opentelemetry-instrumentation-genai-openai, -fastapi), with message content
capture on, exporting to a real OTLP receiver; each field of a query is then looked for in the spans
it received.  The rag-otel column is what tests/apps/test_apps.py asserts.  Prints a markdown table.

    python -m venv /tmp/official && /tmp/official/bin/pip install opentelemetry-distro \\
        opentelemetry-exporter-otlp-proto-http opentelemetry-instrumentation-genai-openai \\
        opentelemetry-instrumentation-fastapi faiss-cpu numpy fastapi uvicorn openai
    .venv/bin/python -m tests.apps.compare_official /tmp/official
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.apps.harness import CORPUS, HERE
from tests.support.fake_openai import FakeOpenAI, answer_for, count_tokens, prompt_tokens_for
from tests.support.otlp_io import free_port
from tests.support.otlp_sink import OtlpSink

FIELDS = ("records = questions", "question", "answer", "source ids + scores", "source text", "model (requested)",
          "tokens", "cost", "quality scores", "user / session")


def env(venv: Path, fake: FakeOpenAI, sink: OtlpSink, service: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "RAG_OTEL_"))}
    e.update(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="sk-test", OTEL_SERVICE_NAME=service,
             OTEL_EXPORTER_OTLP_ENDPOINT=sink.http_endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
             OTEL_TRACES_EXPORTER="otlp", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
             OTEL_BSP_SCHEDULE_DELAY="100", OTEL_PYTHON_DISTRO="distro", OTEL_PYTHON_CONFIGURATOR="configurator",
             # the official path's best: content on, newest GenAI conventions
             OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
             OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
             OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST="x-user-id,x-session-id",
             PATH=f"{venv / 'bin'}{os.pathsep}{e.get('PATH', '')}", PYTHONPATH=str(HERE), CORPUS_DIR=str(CORPUS))
    return e


def run_web(venv: Path, e: dict[str, str], module: str, calls: list[tuple[str, dict, dict]]) -> list[Any]:
    port = free_port()
    proc = subprocess.Popen([str(venv / "bin" / "opentelemetry-instrument"), str(venv / "bin" / "python"), "-m",
                             "uvicorn", f"{module}:app", "--port", str(port), "--log-level", "warning"],
                            cwd=HERE, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{url}/docs", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        return [httpx.post(f"{url}{path}", json=body, headers=hdr, timeout=60).json() for path, body, hdr in calls]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def texts(v: Any) -> list[str]:
    """Every string inside an attribute value (JSON messages included)."""
    if isinstance(v, str):
        try:
            return [*texts(json.loads(v)), v] if v[:1] in "[{" else [v]
        except ValueError:
            return [v]
    if isinstance(v, dict):
        return [t for x in v.values() for t in texts(x)]
    if isinstance(v, list):
        return [t for x in v for t in texts(x)]
    return []


def measure(spans: list[Any], questions: list[str], answers: list[str], requests: list[dict]) -> dict[str, str]:
    traces: dict[str, list[Any]] = {}
    for s in spans:
        traces.setdefault(s.trace_id, []).append(s)
    chats = [t for t in traces.values() if any(x.attributes.get("gen_ai.operation.name") == "chat" for x in t)]
    every = [t for x in spans for v in x.attributes.values() for t in texts(v)]
    billed = sum(prompt_tokens_for(r["body"]["messages"]) if "messages" in r["body"] else
                 sum(count_tokens(t) for t in ([r["body"]["input"]] if isinstance(r["body"]["input"], str)
                                              else r["body"]["input"])) for r in requests)
    got_tokens = sum(int(x.attributes.get("gen_ai.usage.input_tokens", 0)) for x in spans)
    models = {x.attributes.get("gen_ai.request.model") for x in spans if x.attributes.get("gen_ai.request.model")}
    return {
        "records = questions": f"{len(traces)} traces ({len(chats)} with a chat call) for {len(questions)} questions",
        "question": "exact" if all(q in every for q in questions) else "whole prompt only",
        "answer": "yes" if all(a in every for a in answers) else "no",
        "source ids + scores": "yes" if any("gen_ai.retrieval.documents" in x.attributes for x in spans) else "no",
        "source text": "in the prompt only" if any(c[:30] in t for c in _corpus() for t in every) else "no",
        "model (requested)": ", ".join(sorted(models)) or "no",
        "tokens": "yes" if got_tokens >= billed else f"{got_tokens} of {billed}",
        "cost": "yes" if any("gen_ai.usage.cost" in x.attributes for x in spans) else "no",
        "quality scores": "no",
        "user / session": "user.id, session.id" if any("user.id" in x.attributes for x in spans) else
        "raw request headers (opt-in variable)" if any(any("x_user_id" in k for k in x.attributes) for x in spans)
        else "no",
    }


def _corpus() -> list[str]:
    return [p.read_text().split("\n", 1)[1].strip() for p in sorted(CORPUS.glob("*.md"))]


def main(venv: Path) -> None:
    rows = {}
    hdr = {"x-user-id": "u1", "x-session-id": "s1"}
    with FakeOpenAI(snapshots={"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}) as fake, OtlpSink(grpc=False) as sink:
        apps = [
            ("openai + FAISS, FastAPI", "openai_faiss_api", "/ask", "question",
             ["How long do I have to return an opened item?", "Is limescale damage covered by the warranty?"]),
            ("async, history, rewriting, hybrid, reranker", "async_hybrid_api", "/chat", "message",
             ["Can I return an opened kettle?", "Is there a fee for that?"]),
        ]
        frameworks = [
            ("LangChain LCEL + LangServe (invoke)", "langchain_chat_server", "/chat/invoke", None,
             ["How do I descale my kettle?", "What does gold status give me?"]),
            ("LlamaIndex query engine, Chroma", "llamaindex_chroma_api", "/query", "question",
             ["What does the warranty cover?", "How do I descale the kettle?"]),
        ]
        for name, module, path, key, questions in apps + frameworks:
            sink.clear()
            mark = len(fake.requests)
            bodies = [{"input": {"question": q}} if key is None else {key: q} for q in questions]
            e = env(venv, fake, sink, module)
            e["OPENAI_API_BASE"] = fake.base_url  # LlamaIndex's name for it
            e["ANONYMIZED_TELEMETRY"] = "False"
            try:
                out = run_web(venv, e, module, [(path, b, hdr) for b in bodies])
            except Exception as exc:  # a framework not installed in the official venv: say so in the table
                rows[name] = dict.fromkeys(FIELDS, f"not run ({type(exc).__name__})")
                continue
            time.sleep(2)
            answers = [o["output"] if key is None else o["answer"] for o in out]
            rows[name] = measure(sink.spans(), questions, answers, list(fake.requests)[mark:])
        sink.clear()
        mark = len(fake.requests)
        qs = ["How do I reset my password?", "How much does express shipping cost?"]
        p = subprocess.run([str(venv / "bin" / "opentelemetry-instrument"), str(venv / "bin" / "python"),
                            "keyword_script.py", *qs], cwd=HERE, env=env(venv, fake, sink, "script"),
                           capture_output=True, text=True, timeout=120)
        answers = [json.loads(x)["answer"] for x in p.stdout.splitlines() if x.startswith("{")]
        time.sleep(2)
        rows["keyword search script, streamed"] = measure(sink.spans(), qs, answers, list(fake.requests)[mark:])
        assert answer_for  # the fake's answers are what the apps returned
    print("| field | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))
    for f in FIELDS:
        print(f"| {f} | " + " | ".join(r[f] for r in rows.values()) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
