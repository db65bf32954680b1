"""Content captured only for scoring never leaves the processor, whichever attribute carries it.

The apps run unmodified with ``scoring_only`` capture into a real ``rag-otel serve`` whose downstream
is a real OTLP receiver; every byte it received (every trace, metric and log request, re-encoded as
the protobuf it arrived as) is searched for the questions, the answers and the documents' text,
while the processor's own records show it did read them (scored, sources with text counted).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.apps.harness import Stack, corpus, web_app
from tests.support.fake_openai import FakeOpenAI, answer_for
from tests.support.otlp_io import free_port
from tests.support.otlp_sink import OtlpSink
from tests.support.serve_process import ServeProcess


@pytest.fixture(scope="module")
def stripping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, OtlpSink]]:
    tmp = tmp_path_factory.mktemp("strip")
    config = tmp / "rag-otel.yaml"
    config.write_text(yaml.safe_dump({"model_observation": {
        # the processor's own setting would keep content: the apps' scoring_only must still win, on their
        # resource when no rag.query span carries it
        "content": {"capture": "full"},
        "processor": {"http": f"127.0.0.1:{free_port()}", "data_dir": str(tmp / "data"), "trace_wait": 0.3,
                      "shutdown_grace": 5},
        "reporting": {"daily_report": {"enabled": False}, "weekly_report": {"enabled": False, "day": "monday"}},
    }}))
    with OtlpSink(grpc=False) as sink, FakeOpenAI() as fake:
        serve = ServeProcess(config, "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
                             "--export", f"{sink.http_endpoint}").start()
        try:
            yield Stack(fake, serve, capture="scoring_only"), sink
        finally:
            serve.stop()


def exported_bytes(sink: OtlpSink) -> bytes:
    return b"".join(r.SerializeToString() for reqs in sink.requests.values() for r in reqs)


def test_no_question_answer_or_document_text_reaches_downstream(stripping: tuple[Stack, OtlpSink]) -> None:
    stack, sink = stripping
    # ours for openai, FAISS and FastAPI with no rag.query root; LlamaIndex's query engine root with
    # rag.source_documents and its Chroma retrieval (the script and LangChain apps add no other attribute)
    questions = ["How long do I have to return an opened item?", "What does the warranty cover?"]
    with web_app(stack, "openai_faiss_api", "strip-faiss") as url:
        httpx.post(f"{url}/ask", json={"question": questions[0]}, timeout=30)
    with web_app(stack, "llamaindex_chroma_api", "strip-llamaindex") as url:
        httpx.post(f"{url}/query", json={"question": questions[1]}, timeout=60)
    recs = stack.records("strip-faiss", 1) + stack.records("strip-llamaindex", 1)
    assert [r["q_status"] for r in recs] == ["scored"] * 2  # the processor did read the content
    assert all(r["documents"] >= 1 for r in recs)
    wire = exported_bytes(sink)
    assert b"chat gpt-4o-mini" in wire and b"rag.source_documents" in wire  # the spans did go downstream
    secrets = [*questions, *corpus().values(),
               *(answer_for(r["body"]["messages"]) for r in stack.chat_requests())]
    for text in secrets:
        for i in range(0, max(1, len(text) - 30), 30):  # any 30-character piece of it
            piece = text[i:i + 30].encode()
            assert piece not in wire, f"{piece!r} left the processor"
