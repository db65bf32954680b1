"""The ``gen_ai.retrieval.documents`` JSON every retrieval instrumentor emits (pure function)."""

from __future__ import annotations

import json

from rag_otel.config import Content
from rag_otel.sdk.content import ContentPolicy
from rag_otel.sdk.instrumentors._retrieval import Found, Hit, as_float, documents_json, source_name


def test_ids_and_scores_always_content_only_when_captured() -> None:
    hits = [Hit(7, 0.5, "mail jo@example.com"), Hit(None, None, "x"), Hit("b", 1.0, query=1)]
    off, cut = documents_json(hits, ContentPolicy(Content(capture="none")))
    assert json.loads(off) == [{"id": "7", "score": 0.5}, {"id": None}, {"id": "b", "score": 1.0, "query": 1}]
    assert cut is False
    on, _ = documents_json(hits, ContentPolicy(Content(capture="full")))
    assert json.loads(on)[0]["content"] == "mail [REDACTED:email]"


def test_content_shares_the_size_cap_across_documents() -> None:
    policy = ContentPolicy(Content(capture="full", max_chars=256))
    hits = [Hit(i, None, "y" * 200) for i in range(4)]
    text, cut = documents_json(hits, policy)
    assert cut is True
    assert [len(d["content"]) for d in json.loads(text)] == [64] * 4  # 256 chars shared by 4


def test_scores_that_are_not_finite_numbers_are_dropped() -> None:
    values = (1, "0.25", float("nan"), float("inf"), None, "x")
    assert [as_float(v) for v in values] == [1.0, 0.25, None, None, None, None]


def test_source_name_prefers_configuration() -> None:
    assert source_name(None, object(), "Default") == "Default"
    assert source_name("kb", object(), "Default") == "kb"
    assert source_name(lambda o: type(o).__name__, 3, "Default") == "int"
    assert Found.single([Hit(1)], total=9).counts == [9]
