"""A deterministic store of realistic shape: several days, users, models, topics, failures, feedback.

``generate(seed)`` returns plain records (QueryRecord, SystemSample, Feedback, AlertEvent) so tests
can compute expectations with plain Python over the same records they wrote to the store.
Shared by the store, analytics, reports and web tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone

from rag_otel.config import ModelObservation
from rag_otel.records import AlertEvent, AxisScore, Feedback, QualityResult, QueryRecord, Source, SystemSample
from rag_otel.semconv import QUALITY_AXES

# (category, topic, templates): the texts make the config's default rules and the topic
# extractor give exactly this category and topic.
QUESTIONS: list[tuple[str, str, list[str]]] = [
    ("how-to", "reset password", ["How do I reset password for my account?", "how do i reset password quickly"]),
    ("troubleshooting", "login error", ["Login error 500 when signing in", "login error after update"]),
    ("definition", "vector database", ["What is a vector database?", "What is vector database indexing?"]),
    ("comparison", "faiss chroma", ["Compare faiss and chroma", "faiss vs chroma for search"]),
    ("factual", "invoice due", ["When is the invoice due?", "When is the invoice due for March?"]),
    ("chit-chat", "good morning", ["Hello there, good morning!", "hi good morning team"]),
]
MODELS = {"gpt-4o": 10.0, "gpt-4o-mini": 0.6}  # USD per 1M output tokens, roughly
FEATURES = ["hybrid_search", "rerank", "streaming"]


@dataclass
class Dataset:
    records: list[QueryRecord] = field(default_factory=list)
    system: list[SystemSample] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0


def generate(seed: int = 7, *, days: int = 5, users: int = 12, per_day: int = 120,
             end: datetime = datetime(2026, 11, 20, tzinfo=timezone.utc), capture_text: float = 0.85) -> Dataset:
    """``days * per_day`` queries ending at ``end``; text captured for ``capture_text`` of them."""
    rng = random.Random(seed)
    end_ts = end.timestamp()
    start_ts = end_ts - days * 86400
    ds = Dataset(start=start_ts, end=end_ts)
    user_ids = [f"user-{i:02d}" for i in range(users)]
    n = days * per_day
    times = sorted(start_ts + rng.random() * (end_ts - start_ts - 60) for _ in range(n))
    for t in times:
        user = user_ids[int(rng.random() ** 1.6 * users)]  # a few heavy users
        category, _topic, templates = QUESTIONS[rng.randrange(len(QUESTIONS))]
        text = rng.choice(templates) if rng.random() < capture_text else None
        model = "gpt-4o" if rng.random() < 0.35 else "gpt-4o-mini"
        base = 2.2 if model == "gpt-4o" else 1.0
        latency = round(base * rng.lognormvariate(0, 0.45), 4)
        fail = rng.random() < 0.05
        in_tok, out_tok = rng.randint(200, 1200), rng.randint(20, 400)
        cost = round((in_tok * MODELS[model] / 4 + out_tok * MODELS[model]) / 1e6, 8)
        feats = sorted(f for f in FEATURES if rng.random() < {"hybrid_search": 0.5, "rerank": 0.3, "streaming": 0.6}[f])
        quality = None
        if not fail and text is not None:
            axes = {a: AxisScore(round(min(1.0, max(0.0, rng.gauss(0.72 if model == "gpt-4o" else 0.7, 0.12))), 4))
                    for a in QUALITY_AXES}
            overall = round(sum(s.score for s in axes.values()) / len(axes), 4)
            grade = "good" if overall >= 0.7 else "fair" if overall >= 0.4 else "poor"
            quality = QualityResult(axes=axes, overall=overall, evaluator="lexical/1", grade=grade)
        rec = QueryRecord(
            trace_id=f"{rng.getrandbits(128):032x}", root_span_id=f"{rng.getrandbits(64):016x}",
            start_time=round(t, 3), end_time=round(t + latency, 3), service=rng.choice(["rag-app", "rag-app", "faq"]),
            user_id=user, session_id=f"s-{user}-{int(t // 3600)}", query_text=text,
            answer_text="An answer." if text else None,
            sources=[Source(f"doc-{k}", 0.9 - k / 10) for k in range(rng.randint(0, 4))],
            models=[model], provider="openai", input_tokens=in_tok, output_tokens=out_tok,
            cost_usd=cost if rng.random() > 0.02 else None, status="error" if fail else "ok",
            error_type="TimeoutError" if fail else None, features=feats,
            time_to_first_chunk=round(latency * 0.3, 4) if "streaming" in feats else None,
            latency_category=("excellent" if latency <= 1 else "good" if latency <= 2 else
                              "acceptable" if latency <= 5 else "poor"),
            quality=quality, span_count=4,
        )
        if text is None and rng.random() < 0.5:
            rec.category = category  # app-set rag.query.category without captured text
        ds.records.append(rec)
        if rng.random() < 0.15:
            thumbs = "up" if rng.random() < 0.7 else "down"
            ds.feedback.append(Feedback(rec.trace_id, t + latency + 5, score=1.0 if thumbs == "up" else 0.0,
                                        thumbs=thumbs, user_id=user))
    for k in range(int((end_ts - start_ts) // 300)):  # a sample every 5 minutes
        t = start_ts + k * 300
        hour = int(t // 3600) % 24
        busy = 1.0 if 9 <= hour <= 17 else 0.4
        ds.system.append(SystemSample(time=t, service="rag-app", host="host-1",
                                      cpu_percent=round(min(100.0, 25 * busy + rng.random() * 30), 3),
                                      memory_percent=round(40 + rng.random() * 20, 3),
                                      disk_percent=round(55 + k * 0.001, 3),
                                      network_bytes_per_s=round(1e5 * busy + rng.random() * 5e4, 1)))
    ds.alerts.append(AlertEvent("high_latency", "firing", "warning", 6.2, 5.0, {"service": "rag-app"},
                                start_ts + 3600, start_ts + 3700, "p95 latency 6.2s > 5s", "fp-1"))
    ds.alerts.append(AlertEvent("high_latency", "resolved", "warning", 3.0, 5.0, {"service": "rag-app"},
                                start_ts + 3600, start_ts + 7200, "resolved", "fp-1"))
    return ds


def text_config() -> ModelObservation:
    """Defaults plus ``content.capture: full``, so the store keeps query text (it drops it otherwise)."""
    cfg = ModelObservation()
    cfg.content.capture = "full"
    return cfg


def fill(store: object, ds: Dataset, batch: int = 200) -> None:
    """Write a dataset through the store's public write API, in batches like the writer does."""
    for i in range(0, len(ds.records), batch):
        store.write_records(ds.records[i:i + batch])  # type: ignore[attr-defined]
    store.write_system(ds.system)  # type: ignore[attr-defined]
    store.write_feedbacks(ds.feedback)  # type: ignore[attr-defined]
    store.write_alerts(ds.alerts)  # type: ignore[attr-defined]
