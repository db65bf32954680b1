"""NLI backend: a cross-encoder / sequence-classification model the user has judges accuracy and consistency
sentence by sentence (extra ``embeddings``, which brings transformers and torch).

Any model that reads (premise, hypothesis) and says entailment / contradiction (/ neutral) works: an NLI model
(``cross-encoder/nli-deberta-v3-xsmall``, ``MoritzLaurer/DeBERTa-v3-base-mnli-fever-anli``), a fact checker with
two labels (MiniCheck's ``lytang/MiniCheck-Flan-T5``-style classifiers with supported / unsupported, HHEM with
``trust_remote_code``), or a one-logit consistency score. ``nli.model`` is a local directory (no network), or a
model id where the host may download it. Labels are read from the model's own ``id2label`` by name, never by
position (models order them differently); a two-label model named only ``LABEL_0/LABEL_1`` is read as
0 = not supported, 1 = supported, as fact checkers ship them; ``nli.entailment_label`` overrides.

Per answer sentence, the premise is each chunk of the sources (sentences packed up to ``max_length`` tokens);
the sentence's entailment is its best chunk's, its contradiction the highest any chunk gives. accuracy = mean
entailment over the answer's sentences; consistency = 1 - the highest contradiction. Where the model cannot tell
(the deciding probability is within ``min_confidence`` of a coin toss) the axis abstains with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

from rag_otel.config import NliJudge
from rag_otel.quality.base import Abstain, Axis, Judgement, NotJudged, Query, short
from rag_otel.quality.text import ENGLISH, sentences

_ENTAIL = ("entail", "support", "consistent", "factual", "true", "faithful")
_CONTRA = ("contradict", "contradiction", "refute")
_NEGATED = ("not_", "not ", "non_", "non-", "un", "in", "hallucinat", "false")


class NliUnavailable(RuntimeError):
    """transformers/torch are missing, or the model cannot be loaded."""


def check_available() -> None:
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
        raise NliUnavailable("the nli backend needs transformers and torch: pip install 'rag-otel[embeddings]'")


def label_roles(id2label: dict[int, str], num_labels: int, entailment_label: str | None = None) -> dict[str, int]:
    """Which output index means entailment (and contradiction, where the model has one), by label name."""
    if num_labels == 1:
        return {}  # one logit: sigmoid = P(consistent)
    names = {int(i): str(n).lower().strip() for i, n in id2label.items()}
    roles: dict[str, int] = {}
    for i, n in names.items():
        if entailment_label and n == entailment_label.lower():
            roles["entailment"] = i
        elif n.startswith(_CONTRA):
            roles["contradiction"] = i
        elif any(k in n for k in _ENTAIL) and not n.startswith(_NEGATED) and "entailment" not in roles:
            roles["entailment"] = i
    if "entailment" not in roles:
        if num_labels == 2 and set(names.values()) <= {"label_0", "label_1"}:
            roles["entailment"] = 1  # fact checkers' convention: 1 = supported
        else:
            raise NliUnavailable(f"cannot tell which of the model's labels {sorted(names.values())} means "
                                 "entailment; set quality_assessment.nli.entailment_label")
    return roles


class NliBackend:
    """Sentence-level entailment and contradiction from a sequence-classification model (lazy, CPU)."""

    def __init__(self, cfg: NliJudge) -> None:
        self.cfg = cfg
        self.evaluator = f"nli/{os.path.basename(cfg.model.rstrip('/')) or cfg.model}"
        self._model: Any = None
        self._tokenizer: Any = None
        self._roles: dict[str, int] = {}
        self._error: NliUnavailable | None = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        check_available()
        if os.path.isdir(self.cfg.model):  # a local model never touches the network
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.set_num_threads(self.cfg.threads)
        kw = {"trust_remote_code": self.cfg.trust_remote_code}
        self._tokenizer = AutoTokenizer.from_pretrained(self.cfg.model, **kw)
        self._model = AutoModelForSequenceClassification.from_pretrained(self.cfg.model, **kw).eval()
        conf = self._model.config
        self._roles = label_roles(conf.id2label, conf.num_labels, self.cfg.entailment_label)

    def _ensure(self) -> None:
        if self._model is not None:
            return
        if self._error is not None:  # do not retry a failed load on every query
            raise self._error
        try:
            self._load()
        except Exception as e:
            self._error = e if isinstance(e, NliUnavailable) else NliUnavailable(f"{type(e).__name__}: {e}")
            raise self._error from e

    def probabilities(self, pairs: list[tuple[str, str]]) -> list[tuple[float, float]]:
        """(P(entailment), P(contradiction)) per (premise, hypothesis) pair."""
        import torch

        out: list[tuple[float, float]] = []
        with self._lock:  # one forward pass at a time: torch already uses its threads
            self._ensure()
            for k in range(0, len(pairs), self.cfg.batch_size):
                batch = pairs[k : k + self.cfg.batch_size]
                enc = self._tokenizer([p for p, _ in batch], [h for _, h in batch], padding=True,
                                      truncation="only_first", max_length=self.cfg.max_length, return_tensors="pt")
                with torch.inference_mode():
                    logits = self._model(**enc).logits.float()
                if logits.shape[-1] == 1:
                    p = torch.sigmoid(logits[:, 0]).tolist()
                    out += [(x, 0.0) for x in p]
                    continue
                probs = torch.softmax(logits, dim=-1)
                e = probs[:, self._roles["entailment"]].tolist()
                c = probs[:, self._roles["contradiction"]].tolist() if "contradiction" in self._roles \
                    else [0.0] * len(e)
                out += list(zip(e, c, strict=True))
        return out

    def _chunks(self, query: Query) -> list[str]:
        """The sources as premises: sentences packed into chunks of about ``max_length`` tokens (4 chars each)."""
        budget = self.cfg.max_length * 3  # characters; leaves room for the hypothesis
        chunks: list[str] = []
        cur = ""
        for s in (s for src in query.sources for s in sentences(src)):
            if cur and len(cur) + len(s) + 1 > budget:
                chunks.append(cur)
                cur = ""
            cur = f"{cur} {s}" if cur else s
        if cur:
            chunks.append(cur)
        return chunks[: self.cfg.max_chunks]

    def score(self, query: Query, axes: Sequence[Axis]) -> dict[Axis, Judgement]:
        out: dict[Axis, Judgement] = {}
        wanted = [a for a in axes if a in ("accuracy", "consistency")]
        for a in axes:
            if a not in wanted:
                out[a] = NotJudged("the nli backend judges accuracy and consistency only")
        if not wanted:
            return out
        if not query.sources:
            out.update({a: None if a == "accuracy" else NotJudged("no sources to compare with") for a in wanted})
            return out
        if query.language != ENGLISH and not self.cfg.multilingual:
            return out | {a: NotJudged("the text is not English (set nli.multilingual for a multilingual model)")
                          for a in wanted}
        hyps = [t for t, _ in query.answer_sentences][: self.cfg.max_sentences]
        chunks = self._chunks(query)
        probs = self.probabilities([(c, h) for h in hyps for c in chunks])
        n = len(chunks)
        entail = [max(p[0] for p in probs[i * n : (i + 1) * n]) for i in range(len(hyps))]
        contra = [max(p[1] for p in probs[i * n : (i + 1) * n]) for i in range(len(hyps))]
        margin = self.cfg.min_confidence
        for axis in wanted:
            if axis == "accuracy":
                weakest = min(range(len(hyps)), key=entail.__getitem__)
                score = sum(entail) / len(entail)
                if margin and abs(score - 0.5) < margin:
                    out[axis] = Abstain(f"the model cannot tell: entailment {score:.2f}, within {margin:g} of 0.5")
                    continue
                out[axis] = (score, f"{sum(e >= 0.5 for e in entail)} of {len(hyps)} answer sentence(s) entailed by "
                             f"the sources (mean entailment {score:.2f})",
                             f"least entailed: \"{short(hyps[weakest], 60)}\"")
            else:
                if "contradiction" not in self._roles:  # a fact checker: not supported is not contradicted
                    out[axis] = NotJudged("the model has no contradiction label")
                    continue
                worst = max(range(len(hyps)), key=contra.__getitem__)
                if margin and abs(contra[worst] - 0.5) < margin:
                    out[axis] = Abstain(f"the model cannot tell: contradiction {contra[worst]:.2f}, within "
                                        f"{margin:g} of 0.5")
                    continue
                n_contra = sum(c >= 0.5 for c in contra)
                out[axis] = (1.0 - contra[worst], f"{n_contra} of {len(hyps)} answer sentence(s) contradicted by "
                             f"the sources (highest contradiction {contra[worst]:.2f})",
                             f"most contradicted: \"{short(hyps[worst], 60)}\"" if n_contra else "")
        return out

