"""A RAG app set up the way each third-party instrumentation family's README shows, content capture on.

    python family_app.py FAMILY SHAPE QUESTION...

FAMILY: ``official`` (opentelemetry-instrumentation-genai-openai, GenAI v0.1.0 names, content on spans
and in events), ``official-events`` (the same package's default conventions: content only in log-record
events), ``openinference`` (openinference-instrumentation-openai / -langchain / -llama-index),
``openllmetry`` (traceloop's opentelemetry-instrumentation-openai / -langchain / -llamaindex).
SHAPE: ``openai`` (the openai SDK, retrieved passages pasted into the prompt), ``langchain`` (an LCEL
chain over an in-memory vector store), ``llama_index`` (a query engine over an in-memory index).

The OTel SDK exports traces, logs and metrics with the OTLP/HTTP exporters to OTEL_EXPORTER_OTLP_ENDPOINT
(``rag-otel serve`` in the tests); the OpenAI clients reach OPENAI_BASE_URL (the fake server).  rag-otel
is not imported: this is an app that already has its own instrumentation.  Prints one JSON line per answer.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

CORPUS = Path(os.environ.get("CORPUS_DIR", Path(__file__).parent / "corpus"))
DOCS = {p.stem: p.read_text().split("\n", 1)[1].strip() for p in sorted(CORPUS.glob("*.md"))}
TEMPLATE = ("You are the support assistant of a kitchen appliance shop. Answer the customer's question using "
            "only the context below. If the context does not say, answer that you do not know.\n\n"
            "Context:\n{context}\n\nQuestion: {question}\nAnswer:")
CHAT, EMBED = "gpt-4o-mini", "text-embedding-3-small"


def setup_otel() -> tuple[TracerProvider, LoggerProvider, MeterProvider]:
    resource = Resource.create()  # service.name from OTEL_SERVICE_NAME
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tp)
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    _logs.set_logger_provider(lp)
    mp = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
    metrics.set_meter_provider(mp)
    return tp, lp, mp


def instrument(family: str, shape: str) -> None:
    if family in ("official", "official-events"):
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument()  # LangChain's ChatOpenAI/OpenAIEmbeddings call the openai SDK under it
    elif family == "openinference":
        if shape == "langchain":
            from openinference.instrumentation.langchain import LangChainInstrumentor as Instrumentor
        elif shape == "llama_index":
            from openinference.instrumentation.llama_index import LlamaIndexInstrumentor as Instrumentor
        else:
            from openinference.instrumentation.openai import OpenAIInstrumentor as Instrumentor
        Instrumentor().instrument()
    elif family == "openllmetry":  # the openai instrumentor always, as Traceloop.init() does: LlamaIndex's
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # has no LLM span of its own

        OpenAIInstrumentor().instrument()
        if shape == "langchain":
            from opentelemetry.instrumentation.langchain import LangchainInstrumentor

            LangchainInstrumentor().instrument()
        elif shape == "llama_index":
            from opentelemetry.instrumentation.llamaindex import LlamaIndexInstrumentor

            LlamaIndexInstrumentor().instrument()
    else:
        raise SystemExit(f"unknown family {family!r}")


def run_openai(questions: list[str]) -> list[str]:
    """Embed the question, pick the two closest passages, paste them into the prompt, ask."""
    import numpy as np
    import openai

    client = openai.OpenAI()
    ids = list(DOCS)
    doc_vecs = np.array([d.embedding for d in client.embeddings.create(model=EMBED, input=list(DOCS.values())).data])
    answers = []
    for i, q in enumerate(questions):
        qv = np.array(client.embeddings.create(model=EMBED, input=q).data[0].embedding)
        best = [ids[j] for j in np.argsort(-(doc_vecs @ qv))[:2]]
        context = "\n\n".join(f"[{d}] {DOCS[d]}" for d in best)
        messages = [{"role": "user", "content": TEMPLATE.format(context=context, question=q)}]
        if i % 2:  # every other question streamed, as chat UIs do
            stream = client.chat.completions.create(model=CHAT, messages=messages, stream=True,
                                                    stream_options={"include_usage": True})
            answers.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        else:
            answers.append(client.chat.completions.create(model=CHAT, messages=messages).choices[0].message.content)
    return answers


def run_langchain(questions: list[str]) -> list[str]:
    from langchain_core.documents import Document
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    docs = [Document(page_content=t, metadata={"source": f"{d}.md"}, id=d) for d, t in DOCS.items()]
    store = InMemoryVectorStore.from_documents(docs, OpenAIEmbeddings(model=EMBED, check_embedding_ctx_length=False))
    retriever = store.as_retriever(search_kwargs={"k": 2})
    chain = ({"context": retriever | (lambda ds: "\n\n".join(d.page_content for d in ds)),
              "question": RunnablePassthrough()}
             | ChatPromptTemplate.from_template(TEMPLATE) | ChatOpenAI(model=CHAT, temperature=0) | StrOutputParser())
    return [chain.invoke(q) for q in questions]


def run_llama_index(questions: list[str]) -> list[str]:
    from llama_index.core import Document, PromptTemplate, Settings, VectorStoreIndex
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai import OpenAI

    Settings.llm = OpenAI(model=CHAT, temperature=0)
    Settings.embed_model = OpenAIEmbedding(model=EMBED)
    index = VectorStoreIndex.from_documents([Document(text=t, doc_id=d) for d, t in DOCS.items()])
    qa = PromptTemplate(TEMPLATE.replace("{context}", "{context_str}").replace("{question}", "{query_str}"))
    engine = index.as_query_engine(similarity_top_k=2, text_qa_template=qa)
    return [str(engine.query(q)) for q in questions]


def main() -> None:
    family, shape, *questions = sys.argv[1:]
    providers = setup_otel()
    instrument(family, shape)
    run = {"openai": run_openai, "langchain": run_langchain, "llama_index": run_llama_index}[shape]
    for q, a in zip(questions, run(questions), strict=True):
        print(json.dumps({"question": q, "answer": a}))
    for p in providers:  # flush every signal before exiting
        p.shutdown()


if __name__ == "__main__":
    main()
