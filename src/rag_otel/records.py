"""Plain data shared by the processor, quality, alerts, store, analytics and reports.

One normalized ``QueryRecord`` per question (usually one per RAG trace; see query_split) is the unit
everything downstream works on, so scoring, alerting and analytics are pure functions over plain data,
testable without servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

QueryStatus = Literal["ok", "error"]
# unsupported_language: the text is not English and no backend configured for it could judge any axis
QualityStatus = Literal["scored", "no_content", "unsupported_language", "skipped", "error", "pending"]
# What serve's log, `rag-otel analytics` and the dashboard say when queries arrived without text (no_content)
NO_CONTENT_HINT = ("the app sent no question/answer text (content.capture: none), so these queries are not scored; "
                   "to score them set content.capture: scoring_only in the app (the default: the processor strips "
                   "the text after scoring) or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true")


@dataclass(slots=True)
class Source:
    """One retrieved document: id and score always, content only when captured."""

    id: str
    score: float | None = None
    content: str | None = None


@dataclass(slots=True)
class SpanSummary:
    """One span of a query's trace, compact: what the query view's waterfall and model-call table show.

    No attribute values beyond these (no content): it is kept in the store as long as the query row.
    """

    span_id: bytes | str  # 8 bytes as received (hex in the store)
    parent_id: bytes | str | None
    name: str
    role: str  # llm | embedding | retrieval | rerank | other
    start: float  # unix seconds
    end: float
    status: str = "ok"  # ok | error
    model: str | None = None  # model calls only
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    counted: bool = True  # False: a wrapper around a call below it (its tokens are not counted twice)


@dataclass(slots=True)
class AxisScore:
    score: float  # [0, 1]
    explanation: str = ""
    label: str = ""  # good | fair | poor
    evaluator: str = ""  # backend/version that scored this axis, e.g. "lexical/1"
    evidence: str = ""  # what the explanation rests on, quoted from the content: exported only where content may go


@dataclass(slots=True)
class QualityResult:
    axes: dict[str, AxisScore]
    overall: float | None
    evaluator: str  # backend(s) and version, e.g. "lexical/1"
    status: QualityStatus = "scored"
    grade: str | None = None  # good | fair | poor
    duration_s: float = 0.0
    not_judged: dict[str, str] = field(default_factory=dict)  # axis -> why its backend abstained (cannot tell)
    escalated: tuple[str, ...] = ()  # axes the cascade sent to the LLM judge


@dataclass(slots=True)
class QueryRecord:
    """What one RAG query was, as read from its trace."""

    trace_id: str  # 32 hex chars
    root_span_id: str  # 16 hex chars
    start_time: float  # unix seconds
    end_time: float
    service: str = "unknown"
    user_id: str | None = None
    session_id: str | None = None
    conversation_id: str | None = None
    query_text: str | None = None  # only when captured
    answer_text: str | None = None  # only when captured
    sources: list[Source] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # as requested: one name per model (filters, rules)
    response_models: list[str] = field(default_factory=list)  # as the provider answered (dated snapshots)
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None  # None: at least one model had no price
    cost_complete: bool = True  # False: a model call had no usage or no price, so cost_usd misses it
    status: QueryStatus = "ok"
    error_type: str | None = None
    features: list[str] = field(default_factory=list)
    category: str | None = None
    topic: str | None = None
    time_to_first_chunk: float | None = None
    span_count: int = 0
    instrumentation: str = "rag_otel"  # rag_otel | genai | openinference | openllmetry
    latency_category: str | None = None
    quality: QualityResult | None = None
    alerts: list[str] = field(default_factory=list)
    complete: bool = True  # False: flushed at timeout/overflow/shutdown without its root
    spans: list[SpanSummary] = field(default_factory=list)  # the trace's spans, for the query view
    # what names this record: the trace id when the trace is one question (old links keep working), else
    # "<trace id>-<the unit's root span id>" (a LangServe /batch call: one trace, several questions)
    query_id: str = ""

    def __post_init__(self) -> None:
        if not self.query_id:
            self.query_id = self.trace_id

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_time - self.start_time)

    @property
    def model(self) -> str | None:
        """The generating model (the last one used), for per-model breakdowns."""
        return self.models[-1] if self.models else None


@dataclass(slots=True)
class IngestionRecord:
    """A trace that was not a question (an index build, a document upload): its model work and cost,
    counted apart from the queries."""

    trace_id: str
    start_time: float
    end_time: float
    service: str = "unknown"
    models: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    cost_complete: bool = True
    span_count: int = 0


@dataclass(slots=True)
class SystemSample:
    """One reading of a host's resources, from the system metrics apps send."""

    time: float
    service: str
    host: str | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    network_bytes_per_s: float | None = None
    process_rss_bytes: float | None = None
    health_score: float | None = None


@dataclass(slots=True)
class Feedback:
    trace_id: str
    time: float
    score: float | None = None  # [0, 1]
    thumbs: Literal["up", "down"] | None = None
    comment: str | None = None
    user_id: str | None = None
    query_id: str | None = None  # one question of several in the trace ("<trace id>-<span id>"); None: the trace


AlertState = Literal["pending", "firing", "resolved"]


@dataclass(slots=True)
class AlertEvent:
    """A change of an alert's state, as notifiers and the store see it."""

    rule: str
    state: AlertState
    severity: str
    value: float | None
    threshold: float | None
    labels: dict[str, str]
    started_at: float
    at: float
    message: str = ""
    fingerprint: str = ""
