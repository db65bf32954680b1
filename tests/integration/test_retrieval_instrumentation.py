"""Retrieval auto-instrumentation against the real libraries: a real FAISS index of random vectors,
a real Chroma (in-process, and a real ``chroma run`` server over a socket for the async client),
a real LangChain in-memory vector store and a real LlamaIndex vector index.

Spans and metrics come out through the OTel SDK's in-memory exporter and reader; every id and
score asserted is compared with what the library itself returned.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from rag_otel import semconv
from rag_otel.config import Content, ModelObservation
from rag_otel.sdk.instrumentors import _retrieval
from rag_otel.sdk.instrumentors import faiss as faiss_mod
from rag_otel.sdk.instrumentors.chroma import ChromaInstrumentor
from rag_otel.sdk.instrumentors.faiss import FaissInstrumentor, name_index
from rag_otel.sdk.instrumentors.langchain import LangChainInstrumentor
from rag_otel.sdk.instrumentors.llama_index import LlamaIndexInstrumentor
from rag_otel.sdk.spans import rag_query
from rag_otel.sdk.testing import Captured, capture

DIM = 16


class Telemetry:
    """What the tests read: the SDK's in-memory capture plus retrieval-specific views."""

    def __init__(self, captured: Captured) -> None:
        self.captured = captured

    def finished(self) -> list[ReadableSpan]:
        return self.captured.spans()

    def retrievals(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.attributes.get(semconv.GEN_AI_OPERATION_NAME) == "retrieval"]

    def histogram_points(self) -> list[HistogramDataPoint]:
        return self.captured.metric_points(semconv.METRIC_RAG_RETRIEVED_DOCUMENTS)


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    with capture(ModelObservation(content=Content(capture="none"))) as captured:
        yield Telemetry(captured)


@pytest.fixture
def tel_full() -> Iterator[Telemetry]:
    with capture(ModelObservation(content=Content(capture="full"))) as captured:
        yield Telemetry(captured)


def root_documents(tel: Telemetry) -> int:
    """``rag.documents.count`` the SDK's ``rag_query`` summed from its retrievals."""
    return only(tel.finished(), semconv.SPAN_RAG_QUERY).attributes[semconv.RAG_DOCUMENTS_COUNT]


@contextmanager
def instrumented(instrumentor: Any, **kwargs: Any) -> Iterator[Any]:
    instrumentor.instrument(**kwargs)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def docs_of(span: ReadableSpan) -> list[dict[str, Any]]:
    return json.loads(span.attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS])


def assert_child_of(span: ReadableSpan, root: ReadableSpan) -> None:
    assert span.parent is not None
    assert span.parent.span_id == root.context.span_id
    assert span.context.trace_id == root.context.trace_id


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


# --- FAISS -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(7).random((200, DIM), dtype=np.float32)


def _ivf(xb: np.ndarray) -> Any:
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(DIM), DIM, 4)
    index.train(xb)
    index.nprobe = 4
    return index


FAISS_INDEXES = {
    "IndexFlatL2": (lambda xb: faiss.IndexFlatL2(DIM), semconv.SCORE_KIND_DISTANCE),
    "IndexFlatIP": (lambda xb: faiss.IndexFlatIP(DIM), semconv.SCORE_KIND_SIMILARITY),
    "IndexIVFFlat": (_ivf, semconv.SCORE_KIND_DISTANCE),
    "IndexIDMap": (lambda xb: faiss.IndexIDMap(faiss.IndexFlatIP(DIM)), semconv.SCORE_KIND_SIMILARITY),
    "IndexHNSWFlat": (lambda xb: faiss.IndexHNSWFlat(DIM, 8), semconv.SCORE_KIND_DISTANCE),
}


@pytest.mark.parametrize("kind", list(FAISS_INDEXES))
def test_faiss_search_is_a_retrieval_span_under_the_query(tel: Telemetry, vectors: np.ndarray, kind: str) -> None:
    make, score_kind = FAISS_INDEXES[kind]
    index = make(vectors)
    if kind == "IndexIDMap":
        index.add_with_ids(vectors, np.arange(1000, 1000 + len(vectors)))
    else:
        index.add(vectors)
    with instrumented(FaissInstrumentor()), rag_query("question"):
        distances, labels = index.search(vectors[5:6], 4)

    root = only(tel.finished(), semconv.SPAN_RAG_QUERY)
    span = only(tel.retrievals(), f"retrieval {kind}")
    assert span.kind is SpanKind.CLIENT
    assert_child_of(span, root)
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "faiss"
    assert attrs[semconv.GEN_AI_DATA_SOURCE_ID] == kind
    assert attrs[semconv.GEN_AI_RETRIEVAL_TOP_K] == 4
    assert attrs[semconv.RAG_RETRIEVAL_SCORE_KIND] == score_kind
    assert attrs[semconv.RAG_DOCUMENTS_COUNT] == 4
    assert semconv.RAG_RETRIEVAL_QUERY_COUNT not in attrs
    docs = docs_of(span)
    assert [d["id"] for d in docs] == [str(i) for i in labels[0]]
    assert [d["score"] for d in docs] == [float(x) for x in distances[0]]
    assert root_documents(tel) == 4
    points = tel.histogram_points()
    assert [(p.count, p.sum) for p in points] == [(1, 4)]
    assert dict(points[0].attributes)[semconv.GEN_AI_DATA_SOURCE_ID] == kind


def test_faiss_batch_caps_recorded_ids_but_counts_every_row(tel: Telemetry, vectors: np.ndarray) -> None:
    index = faiss.IndexFlatL2(DIM)
    index.add(vectors)
    with instrumented(FaissInstrumentor(), max_documents=5):
        distances, labels = index.search(vectors[:3], 4)

    span = only(tel.retrievals(), "retrieval IndexFlatL2")
    attrs = span.attributes
    assert attrs[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 3
    assert attrs[semconv.RAG_DOCUMENTS_COUNT] == 12
    assert attrs[semconv.RAG_RETRIEVAL_DOCUMENTS_OMITTED] == 7
    expected = [
        {"id": str(labels[r, c]), "score": float(distances[r, c]), "query": r} for r in range(3) for c in range(4)
    ][:5]
    assert docs_of(span) == expected
    assert [(p.count, p.sum) for p in tel.histogram_points()] == [(1, 12)]  # one point per call


def test_faiss_missing_results_are_not_reported_as_documents(tel: Telemetry, vectors: np.ndarray) -> None:
    index = faiss.IndexFlatL2(DIM)
    index.add(vectors[:2])
    with instrumented(FaissInstrumentor()):
        _, labels = index.search(vectors[:1], 5)
    assert (labels[0] == -1).sum() == 3  # faiss pads with -1
    span = only(tel.retrievals(), "retrieval IndexFlatL2")
    assert span.attributes[semconv.RAG_DOCUMENTS_COUNT] == 2
    assert [d["id"] for d in docs_of(span)] == [str(i) for i in labels[0][:2]]


def test_faiss_data_source_names(tel: Telemetry, vectors: np.ndarray) -> None:
    named = name_index(faiss.IndexFlatIP(DIM), "faq")
    other = faiss.IndexFlatL2(DIM)
    for index in (named, other):
        index.add(vectors)
    with instrumented(FaissInstrumentor(), data_source_id=lambda ix: f"kb-{ix.d}"):
        named.search(vectors[:1], 1)
        other.search(vectors[:1], 1)
    assert sorted(s.name for s in tel.retrievals()) == ["retrieval faq", f"retrieval kb-{DIM}"]


def test_faiss_error_passes_through_and_marks_the_span(tel: Telemetry, vectors: np.ndarray) -> None:
    index = faiss.IndexFlatL2(DIM)
    index.add(vectors)
    with instrumented(FaissInstrumentor()), pytest.raises(AssertionError):
        index.search(np.zeros((1, DIM + 1), dtype=np.float32), 3)  # faiss asserts the dimension
    span = only(tel.retrievals(), "retrieval IndexFlatL2")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "AssertionError"
    assert semconv.GEN_AI_RETRIEVAL_DOCUMENTS not in span.attributes


def test_faiss_uninstrument_restores_the_original_search(tel: Telemetry, vectors: np.ndarray) -> None:
    original = faiss.IndexFlat.__dict__["search"]
    with instrumented(FaissInstrumentor()):
        assert faiss.IndexFlat.__dict__["search"] is not original
    assert faiss.IndexFlat.__dict__["search"] is original
    index = faiss.IndexFlatL2(DIM)
    index.add(vectors)
    index.search(vectors[:1], 2)
    assert tel.retrievals() == []


def test_instrumentation_errors_never_change_the_result(
    tel: Telemetry, vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection (no real part fails on demand): our result-reading and our span-opening code
    raise; faiss's own answer must come back identical and the host sees no exception."""
    index = faiss.IndexFlatL2(DIM)
    index.add(vectors)
    expected = index.search(vectors[:2], 3)

    def boom(*_: Any) -> Any:
        raise RuntimeError("broken instrumentation")

    with instrumented(FaissInstrumentor()), caplog.at_level(logging.WARNING, logger="rag_otel"):
        monkeypatch.setattr(faiss_mod, "_collect", boom)
        after_collect_error = index.search(vectors[:2], 3)
        monkeypatch.setattr(_retrieval, "get_runtime", boom)
        after_open_error = index.search(vectors[:2], 3)
    for got in (after_collect_error, after_open_error):
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    spans = tel.retrievals()
    assert len(spans) == 1 and spans[0].end_time is not None  # the span still ended, without documents
    assert semconv.GEN_AI_RETRIEVAL_DOCUMENTS not in spans[0].attributes
    assert "instrumentation error" in caplog.text


def test_faiss_binary_index_reports_hamming_distances(tel: Telemetry) -> None:
    codes = np.random.default_rng(3).integers(0, 256, size=(50, 8), dtype=np.uint8)
    index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    with instrumented(FaissInstrumentor()):
        distances, labels = index.search(codes[:1], 3)
    span = only(tel.retrievals(), "retrieval IndexBinaryFlat")
    assert span.attributes[semconv.RAG_RETRIEVAL_SCORE_KIND] == semconv.SCORE_KIND_DISTANCE
    assert docs_of(span) == [{"id": str(i), "score": int(d)} for i, d in zip(labels[0], distances[0], strict=True)]


def test_faiss_without_configuration_or_when_suppressed(vectors: np.ndarray) -> None:
    """Before ``configure()`` the runtime sits on the global (no-op) providers: searches still work;
    inside ``suppress_instrumentation()`` no span is made at all."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    index = faiss.IndexFlatL2(DIM)
    index.add(vectors)
    expected = index.search(vectors[:1], 3)[1]
    with instrumented(FaissInstrumentor()):
        np.testing.assert_array_equal(index.search(vectors[:1], 3)[1], expected)
        with capture() as captured, suppress_instrumentation():
            np.testing.assert_array_equal(index.search(vectors[:1], 3)[1], expected)
        assert captured.spans() == []


_LAZY_APP = """
import json, sys
from rag_otel.sdk.instrumentors.faiss import FaissInstrumentor
from rag_otel.sdk.testing import capture

cancelled = FaissInstrumentor()
cancelled.instrument()
cancelled.uninstrument()          # before faiss is imported: the pending patch must never run
FaissInstrumentor().instrument()  # again: exactly one wrapper once faiss arrives
imported_early = "faiss" in sys.modules
import faiss, numpy as np
index = faiss.IndexFlatL2(4)
index.add(np.eye(4, dtype=np.float32))
with capture() as t:
    index.search(np.eye(4, dtype=np.float32)[:1], 2)
print(json.dumps({"imported_early": imported_early, "spans": [s.name for s in t.spans()]}))
"""


def test_instrument_before_the_app_imports_faiss() -> None:
    """``instrument()`` does not import the library (configure() stays fast when it is installed
    but unused); the patch lands when the app imports it, once, even after a cancelled cycle."""
    out = subprocess.run([sys.executable, "-c", _LAZY_APP], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "imported_early": False, "spans": ["retrieval IndexFlatL2"],
    }


# --- Chroma ----------------------------------------------------------------------------------

def _letters_embedding() -> Any:
    """A tiny deterministic embedding (letter counts): Chroma's default one downloads a model."""
    from chromadb.api.types import EmbeddingFunction

    class Letters(EmbeddingFunction):
        def __init__(self) -> None:
            pass

        def __call__(self, input: Any) -> Any:
            return [np.array([t.count(c) for c in "abcdefghijklmnop"], dtype=np.float32) for t in input]

        @staticmethod
        def name() -> str:
            return "letters"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> Any:
            return Letters()

    return Letters()


CORPUS = {
    "a": "apple banana apple",
    "b": "hedge ledge fence",
    "c": "bake a cake, mail me at jo@example.com",
    "d": "open pool loop",
}


@pytest.fixture(scope="module")
def chroma_client() -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.EphemeralClient(Settings(anonymized_telemetry=False))


def _collection(client: Any) -> Any:
    col = client.create_collection(f"kb-{uuid.uuid4().hex[:8]}", embedding_function=_letters_embedding())
    col.add(ids=list(CORPUS), documents=list(CORPUS.values()))
    return col


def test_chroma_query_records_ids_and_distances_without_content(tel: Telemetry, chroma_client: Any) -> None:
    col = _collection(chroma_client)
    with instrumented(ChromaInstrumentor()), rag_query("question"):
        result = col.query(query_texts=["apple cake"], n_results=3)

    root = only(tel.finished(), semconv.SPAN_RAG_QUERY)
    span = only(tel.retrievals(), f"retrieval {col.name}")
    assert span.kind is SpanKind.CLIENT
    assert_child_of(span, root)
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "chroma"
    assert attrs[semconv.GEN_AI_DATA_SOURCE_ID] == col.name
    assert attrs[semconv.GEN_AI_RETRIEVAL_TOP_K] == 3
    assert attrs[semconv.RAG_RETRIEVAL_SCORE_KIND] == semconv.SCORE_KIND_DISTANCE
    expected = zip(result["ids"][0], result["distances"][0], strict=True)
    assert docs_of(span) == [{"id": i, "score": d} for i, d in expected]
    assert semconv.GEN_AI_RETRIEVAL_QUERY_TEXT not in attrs  # capture is off by default
    assert root_documents(tel) == 3


def test_chroma_captures_redacted_content_when_opted_in(tel_full: Telemetry, chroma_client: Any) -> None:
    col = _collection(chroma_client)
    with instrumented(ChromaInstrumentor()):
        result = col.query(query_texts=["cake for jo@example.com"], n_results=len(CORPUS))
    span = only(tel_full.retrievals(), f"retrieval {col.name}")
    assert span.attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] == "cake for [REDACTED:email]"
    docs = docs_of(span)
    assert [d["id"] for d in docs] == result["ids"][0]
    redacted = [t.replace("jo@example.com", "[REDACTED:email]") for t in result["documents"][0]]
    assert [d["content"] for d in docs] == redacted
    assert "bake a cake, mail me at [REDACTED:email]" in [d["content"] for d in docs]


def test_chroma_batch_query(tel: Telemetry, chroma_client: Any) -> None:
    col = _collection(chroma_client)
    with instrumented(ChromaInstrumentor()):
        result = col.query(query_texts=["apple", "pool"], n_results=2)
    span = only(tel.retrievals(), f"retrieval {col.name}")
    assert span.attributes[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 2
    assert span.attributes[semconv.RAG_DOCUMENTS_COUNT] == 4
    assert [(d["query"], d["id"]) for d in docs_of(span)] == [
        (row, i) for row, ids in enumerate(result["ids"]) for i in ids
    ]
    assert [(p.count, p.sum) for p in tel.histogram_points()] == [(1, 4)]


def test_chroma_error_passes_through(tel: Telemetry, chroma_client: Any) -> None:
    col = _collection(chroma_client)
    with instrumented(ChromaInstrumentor()), pytest.raises(Exception) as caught:
        col.query(query_embeddings=[[1.0, 2.0]], n_results=1)  # wrong dimension
    span = only(tel.retrievals(), f"retrieval {col.name}")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE].endswith(type(caught.value).__qualname__)


def test_chroma_uninstrument_restores_query(tel: Telemetry, chroma_client: Any) -> None:
    from chromadb.api.models.Collection import Collection

    original = Collection.__dict__["query"]
    with instrumented(ChromaInstrumentor()):
        assert Collection.__dict__["query"] is not original
    assert Collection.__dict__["query"] is original
    _collection(chroma_client).query(query_texts=["apple"], n_results=1)
    assert tel.retrievals() == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real ``chroma run`` server on a free loopback port, stopped by its pid."""
    port = _free_port()
    path = tmp_path_factory.mktemp("chroma")
    cli = Path(sys.executable).with_name("chroma")
    log = open(path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(cli), "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chroma server did not start: {(path / 'server.log').read_text()}") from None
                time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


async def test_chroma_async_client_over_a_real_server(tel: Telemetry, chroma_server: tuple[str, int]) -> None:
    import chromadb
    from chromadb.config import Settings

    host, port = chroma_server
    client = await chromadb.AsyncHttpClient(host=host, port=port, settings=Settings(anonymized_telemetry=False))
    col = await client.create_collection(f"remote-{uuid.uuid4().hex[:8]}", embedding_function=_letters_embedding())
    await col.add(ids=list(CORPUS), documents=list(CORPUS.values()))
    with instrumented(ChromaInstrumentor()), rag_query("question"):
        result = await col.query(query_texts=["hedge"], n_results=2)

    root = only(tel.finished(), semconv.SPAN_RAG_QUERY)
    span = only(tel.retrievals(), f"retrieval {col.name}")
    assert_child_of(span, root)
    assert [d["id"] for d in docs_of(span)] == result["ids"][0] == ["b", result["ids"][0][1]]
    assert [d["score"] for d in docs_of(span)] == result["distances"][0]


# --- LangChain -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lc_store() -> Any:
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=DIM))
    store.add_documents([Document(id=k, page_content=v, metadata={"source": f"{k}.txt"}) for k, v in CORPUS.items()])
    return store


async def test_langchain_retriever_sync_and_async(tel: Telemetry, lc_store: Any) -> None:
    retriever = lc_store.as_retriever(search_kwargs={"k": 2})
    with instrumented(LangChainInstrumentor()), rag_query("question"):
        got_sync = retriever.invoke("apple")
        got_async = await retriever.ainvoke("pool")

    root = only(tel.finished(), semconv.SPAN_RAG_QUERY)
    spans = tel.retrievals()
    assert [s.name for s in spans] == ["retrieval InMemoryVectorStore"] * 2
    for span, got in zip(spans, (got_sync, got_async), strict=True):
        assert span.kind is SpanKind.CLIENT
        assert_child_of(span, root)
        assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "langchain"
        assert span.attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] == 2
        assert docs_of(span) == [{"id": d.id} for d in got]  # plain similarity search carries no score
    assert root_documents(tel) == 4


async def test_langchain_scores_from_metadata_and_retriever_name(tel_full: Telemetry, lc_store: Any) -> None:
    from langchain_core.retrievers import BaseRetriever

    class Scored(BaseRetriever):
        """The documented LangChain way to expose scores: put them in each Document's metadata."""

        store: Any
        k: int = 3

        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            pairs = self.store.similarity_search_with_score(query, k=self.k)
            return [d.model_copy(update={"id": None, "metadata": {**d.metadata, "score": s}}) for d, s in pairs]

    retriever = Scored(store=lc_store, name="faq")
    with instrumented(LangChainInstrumentor()):
        got = retriever.invoke("bake a cake")
    span = only(tel_full.retrievals(), "retrieval faq")
    assert span.attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] == 3
    assert span.attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] == "bake a cake"
    # no Document.id here: the id falls back to metadata["source"]
    assert docs_of(span) == [
        {"id": d.metadata["source"], "score": d.metadata["score"], "content": d.page_content.replace(
            "jo@example.com", "[REDACTED:email]")}
        for d in got
    ]


def test_nested_retrievals_are_counted_once_in_the_query(tel: Telemetry, lc_store: Any, vectors: np.ndarray) -> None:
    """A retriever that calls another (ensemble, multi-query) and the SDK's own ``retrieve()`` around
    a library search: every retrieval gets its span, the query's total counts the outer one."""
    from langchain_core.retrievers import BaseRetriever

    from rag_otel.sdk.spans import retrieve

    class Fused(BaseRetriever):
        inner: Any

        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            return self.inner.invoke(query)[:1]

    index = faiss.IndexFlatL2(DIM)
    index.add(vectors)
    with instrumented(LangChainInstrumentor()), instrumented(FaissInstrumentor()), rag_query("question"):
        Fused(inner=lc_store.as_retriever(search_kwargs={"k": 3})).invoke("apple")  # 1 outer doc, 3 inner
        with retrieve("kb") as r:
            _, labels = index.search(vectors[:1], 2)
            r.set_documents(ids=labels[0].tolist())

    spans = tel.finished()
    outer, inner = only(spans, "retrieval Fused"), only(spans, "retrieval InMemoryVectorStore")
    assert_child_of(inner, outer)
    assert_child_of(only(spans, "retrieval IndexFlatL2"), only(spans, "retrieval kb"))
    assert (outer.attributes[semconv.RAG_DOCUMENTS_COUNT], inner.attributes[semconv.RAG_DOCUMENTS_COUNT]) == (1, 3)
    assert root_documents(tel) == 1 + 2


async def test_langchain_error_passes_through(tel: Telemetry) -> None:
    from langchain_core.retrievers import BaseRetriever

    class Down(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Any]:
            raise ConnectionError("vector store down")

    retriever = Down()
    with instrumented(LangChainInstrumentor()):
        with pytest.raises(ConnectionError, match="vector store down"):
            retriever.invoke("q")
        with pytest.raises(ConnectionError, match="vector store down"):
            await retriever.ainvoke("q")
    spans = tel.retrievals()
    assert [s.name for s in spans] == ["retrieval Down"] * 2
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "ConnectionError"


def test_langchain_uninstrument_restores_invoke(tel: Telemetry, lc_store: Any) -> None:
    from langchain_core.retrievers import BaseRetriever

    original = BaseRetriever.__dict__["invoke"]
    with instrumented(LangChainInstrumentor()):
        assert BaseRetriever.__dict__["invoke"] is not original
    assert BaseRetriever.__dict__["invoke"] is original
    lc_store.as_retriever().invoke("apple")
    assert tel.retrievals() == []


# --- LlamaIndex ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def llama() -> Any:
    """A real VectorStoreIndex over LlamaIndex's own MockEmbedding; answers come from its MockLLM."""
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding

    docs = [Document(text=text, id_=key) for key, text in CORPUS.items()]
    return VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=DIM))


def _engine(index: Any, **kwargs: Any) -> Any:
    from llama_index.core.llms import MockLLM

    return index.as_query_engine(llm=MockLLM(max_tokens=6), similarity_top_k=2, **kwargs)


async def test_llama_index_retriever_sync_and_async(tel: Telemetry, llama: Any) -> None:
    retriever = llama.as_retriever(similarity_top_k=3)
    with instrumented(LlamaIndexInstrumentor()), rag_query("question"):
        got_sync = retriever.retrieve("apple")
        got_async = await retriever.aretrieve("pool")

    root = only(tel.finished(), semconv.SPAN_RAG_QUERY)
    spans = tel.retrievals()
    assert [s.name for s in spans] == ["retrieval SimpleVectorStore"] * 2
    for span, got in zip(spans, (got_sync, got_async), strict=True):
        assert span.kind is SpanKind.CLIENT
        assert_child_of(span, root)
        assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "llama_index"
        assert span.attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] == 3
        assert docs_of(span) == [{"id": n.node.node_id, "score": n.score} for n in got]
        assert semconv.GEN_AI_RETRIEVAL_QUERY_TEXT not in span.attributes
    assert root_documents(tel) == 6


def test_llama_index_query_engine_is_the_root_query_when_none_is_active(tel_full: Telemetry, llama: Any) -> None:
    engine = _engine(llama)
    with instrumented(LlamaIndexInstrumentor()):
        response = engine.query("what about apples?")

    spans = tel_full.finished()
    root = only(spans, semconv.SPAN_RAG_QUERY)
    assert root.parent is None
    attrs = root.attributes
    assert attrs[semconv.RAG_QUERY_ENGINE] == "RetrieverQueryEngine"
    assert attrs[semconv.RAG_QUERY_TEXT] == "what about apples?"
    assert attrs[semconv.RAG_ANSWER_TEXT] == str(response)
    assert attrs[semconv.RAG_DOCUMENTS_COUNT] == 2
    sources = json.loads(attrs[semconv.RAG_SOURCE_DOCUMENTS])
    assert [(d["id"], d["score"], d["content"]) for d in sources] == [
        (n.node.node_id, n.score, n.node.get_content().replace("jo@example.com", "[REDACTED:email]"))
        for n in response.source_nodes
    ]
    retrieval = only(spans, "retrieval SimpleVectorStore")
    assert_child_of(retrieval, root)
    assert retrieval.attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] == "what about apples?"
    [queries] = tel_full.captured.metric_points(semconv.METRIC_RAG_QUERIES)  # the root counts as one query
    assert queries.value == 1 and dict(queries.attributes) == {semconv.RAG_QUERY_STATUS: "ok"}


async def test_llama_index_query_engine_inside_a_user_query_is_an_internal_span(tel: Telemetry, llama: Any) -> None:
    engine = _engine(llama)
    with instrumented(LlamaIndexInstrumentor()), rag_query("outer question"):
        response = await engine.aquery("what about pools?")

    spans = tel.finished()
    root = only(spans, semconv.SPAN_RAG_QUERY)  # still exactly one root
    nested = only(spans, "query_engine RetrieverQueryEngine")
    assert nested.kind is SpanKind.INTERNAL
    assert_child_of(nested, root)
    assert_child_of(only(spans, "retrieval SimpleVectorStore"), nested)
    assert [d["id"] for d in json.loads(nested.attributes[semconv.RAG_SOURCE_DOCUMENTS])] == [
        n.node.node_id for n in response.source_nodes
    ]
    for span in (root, nested):  # capture is off: no question, no answer, no document text
        assert semconv.RAG_ANSWER_TEXT not in span.attributes
        assert semconv.RAG_QUERY_TEXT not in span.attributes
    assert all("content" not in d for d in json.loads(nested.attributes[semconv.RAG_SOURCE_DOCUMENTS]))


def test_llama_index_errors_pass_through(tel: Telemetry) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.retrievers import BaseRetriever

    class Down(BaseRetriever):
        def _retrieve(self, query_bundle: Any) -> list[Any]:
            raise TimeoutError("index offline")

    engine = RetrieverQueryEngine.from_args(retriever=Down(), llm=MockLLM())
    with instrumented(LlamaIndexInstrumentor()), pytest.raises(TimeoutError, match="index offline"):
        engine.query("anything")
    spans = tel.finished()
    for span in (only(spans, semconv.SPAN_RAG_QUERY), only(spans, "retrieval Down")):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "TimeoutError"


def test_llama_index_instrumentation_errors_never_change_the_answer(
    tel_full: Telemetry, llama: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection (nothing real fails on demand): reading nodes raises inside our code; the
    engine's answer and sources are the same as without instrumentation, and the spans still end."""
    from rag_otel.sdk.instrumentors import llama_index as llama_mod

    expected = _engine(llama).query("apple")

    def boom(*_: Any) -> Any:
        raise RuntimeError("broken instrumentation")

    monkeypatch.setattr(llama_mod, "_hits", boom)
    with instrumented(LlamaIndexInstrumentor()):
        got = _engine(llama).query("apple")
    assert str(got) == str(expected)
    assert [n.node.node_id for n in got.source_nodes] == [n.node.node_id for n in expected.source_nodes]
    root = only(tel_full.finished(), semconv.SPAN_RAG_QUERY)
    assert root.status.status_code is not StatusCode.ERROR
    assert root.attributes[semconv.RAG_ANSWER_TEXT] == str(got)  # recorded before the failing step
    assert semconv.RAG_SOURCE_DOCUMENTS not in root.attributes
    assert only(tel_full.finished(), "retrieval SimpleVectorStore").end_time is not None


def test_llama_index_uninstrument_restores(tel: Telemetry, llama: Any) -> None:
    from llama_index.core.base.base_query_engine import BaseQueryEngine
    from llama_index.core.base.base_retriever import BaseRetriever

    originals = (BaseRetriever.__dict__["retrieve"], BaseQueryEngine.__dict__["query"])
    with instrumented(LlamaIndexInstrumentor()):
        assert BaseRetriever.__dict__["retrieve"] is not originals[0]
    assert (BaseRetriever.__dict__["retrieve"], BaseQueryEngine.__dict__["query"]) == originals
    _engine(llama).query("apple")
    assert tel.finished() == []
