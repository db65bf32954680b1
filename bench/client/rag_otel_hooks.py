"""The rag-otel contender: ``configure()`` adding to the benchmark's providers (no exporters of its
own, no system metrics, so only per-call work is measured), the openai auto-instrumentor, and the
span API for the root and retrieval spans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import rag_otel
from client.contenders import Plain
from client.sdk_setup import Sdk


class _Docs:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def documents(self, docs: list[tuple[str, float]]) -> None:
        self.handle.set_documents(ids=[d for d, _ in docs], scores=[s for _, s in docs])


class RagOtelHooks(Plain):
    """openai calls go straight to the (auto-instrumented) client, as in the other contenders."""

    def root(self, question: str) -> Any:
        return rag_otel.rag_query(question)

    @contextmanager
    def retrieve(self, data_source: str, top_k: int) -> Iterator[_Docs]:
        with rag_otel.retrieve(data_source, top_k=top_k) as h:
            yield _Docs(h)


def setup(sdk: Sdk) -> RagOtelHooks:
    rag_otel.configure(
        service_name="bench-client", traces_exporter="none", metrics_exporter="none", logs_exporter="none",
        instrument=["openai"], system_metrics=False, capture="none",
    )
    return RagOtelHooks()
