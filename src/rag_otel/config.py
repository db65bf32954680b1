"""Typed configuration: one YAML file (``model_observation:``), overridable by ``OTEL_*`` env vars.

The seed ``model_observation`` YAML loads as-is.  Every section is a pydantic model with
``extra="forbid"``, so a typo fails loudly with the dotted path of the bad key and the reason,
instead of being silently ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rag_otel import semconv

CONFIG_ENV = "RAG_OTEL_CONFIG"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ConfigError(ValueError):
    """The configuration is invalid; the message names each bad key and why."""


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``"5m"``, ``"7d"``, ``"250ms"`` or a bare number of seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 1h, 7d")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


Duration = Annotated[str | float, Field(description="seconds, or a string like 30s, 5m, 1h, 7d")]


class _Model(BaseModel):
    # protected_namespaces=(): ``model_observation`` is the seed's key; pydantic < 2.10 warned at
    # every import that it "conflicts with the protected namespace model_"
    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())


class MetricsCollection(_Model):
    interval: float = Field(1.0, gt=0, description="seconds between metric collections")
    batch_size: int = Field(100, ge=1)
    retention_days: int = Field(30, ge=1, description="raw rows are kept this long")


class LatencyThresholds(_Model):
    excellent: float = Field(1.0, gt=0)
    good: float = Field(2.0, gt=0)
    acceptable: float = Field(5.0, gt=0)
    poor: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _ascending(self) -> LatencyThresholds:
        if not (self.excellent <= self.good <= self.acceptable <= self.poor):
            raise ValueError("thresholds must ascend: excellent <= good <= acceptable <= poor")
        return self

    def category(self, seconds: float) -> str:
        """excellent/good/acceptable/poor; anything above ``acceptable`` is poor."""
        if seconds <= self.excellent:
            return "excellent"
        if seconds <= self.good:
            return "good"
        if seconds <= self.acceptable:
            return "acceptable"
        return "poor"


class Baseline(_Model):
    """Compare a metric against its own past instead of a fixed number.

    ``factor`` scales the baseline: ``operator: lt, baseline: {window: 7d, factor: 0.8}`` fires
    when the value is 20% below its 7-day value; ``{window: 1d, offset: 1d, factor: 2}`` with
    ``gt`` fires when it doubled against the previous day.
    """

    window: Duration = "7d"
    offset: Duration = 0
    factor: float = Field(1.0, gt=0)
    min_samples: int = Field(10, ge=1)

    @field_validator("window", "offset")
    @classmethod
    def _dur(cls, v: str | float) -> str | float:
        parse_duration(v)
        return v


class AlertRule(_Model):
    name: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    operator: Literal["gt", "lt", "eq", "gte", "lte"]
    threshold: float | None = None
    baseline: Baseline | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str | None = None
    for_: Duration = Field(0, alias="for")
    window: Duration = "5m"
    filters: dict[str, str] = Field(default_factory=dict, description="e.g. {service: api, model: gpt-4o}")
    labels: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    scope: Literal["replica", "fleet"] | None = Field(
        None, description="replica: each processor judges its own traffic in memory; fleet: one processor (the "
        "'alerts' lease holder) judges every replica's records in the store. Default: fleet when the store is "
        "shared (processor.store is a lake), else replica (docs/alerts.md)")

    @field_validator("for_", "window")
    @classmethod
    def _dur(cls, v: str | float) -> str | float:
        parse_duration(v)
        return v

    @model_validator(mode="after")
    def _threshold_or_baseline(self) -> AlertRule:
        if (self.threshold is None) == (self.baseline is None):
            raise ValueError(f"rule {self.name!r} needs exactly one of threshold or baseline")
        return self


class PerformanceMonitoring(_Model):
    latency_thresholds: LatencyThresholds = Field(default_factory=LatencyThresholds)
    alert_rules: list[AlertRule] = Field(default_factory=list)

    @field_validator("alert_rules")
    @classmethod
    def _unique(cls, rules: list[AlertRule]) -> list[AlertRule]:
        names = [r.name for r in rules]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate rule names: {sorted(dup)}")
        return rules


Axis = Literal["accuracy", "completeness", "relevance", "consistency"]
Backend = Literal["lexical", "embedding", "llm", "nli"]


class LlmJudge(_Model):
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    model: str = "gpt-4o-mini"
    timeout: float = Field(10.0, gt=0)
    sample_rate: float = Field(0.1, ge=0, le=1)
    max_calls_per_hour: int = Field(600, ge=0)
    max_cost_per_day: float = Field(5.0, ge=0, description="USD")


class NliJudge(_Model):
    """The nli backend: a sequence-classification (NLI / fact-checking) model the user has (docs/quality.md)."""

    model: str = Field("", description="a local model directory, or a model id where the host may download it")
    entailment_label: str | None = Field(None, description="the model's label meaning entailment, if not named so")
    trust_remote_code: bool = False
    max_length: int = Field(512, ge=16, le=8192, description="tokens per (sources chunk, answer sentence) pair")
    max_sentences: int = Field(16, ge=1, description="answer sentences judged per query")
    max_chunks: int = Field(8, ge=1, description="source chunks each answer sentence is compared with")
    batch_size: int = Field(16, ge=1)
    threads: int = Field(1, ge=1, description="torch threads (the processor's other stages need the rest)")
    min_confidence: float = Field(0.1, ge=0, lt=0.5,
                                  description="abstain when the deciding probability is this close to 0.5")
    multilingual: bool = Field(False, description="the model reads other languages than English")


class Cascade(_Model):
    """Send only the uncertain or low-scored queries to the LLM judge (docs/quality.md, "Cascade")."""

    enabled: bool = False
    below: float = Field(0.5, ge=0, le=1, description="escalate an axis scoring below this, or abstaining")
    axes: list[Axis] = Field(default_factory=lambda: ["accuracy", "consistency"],
                             description="the axes watched: the truth axes by default (docs/quality.md)")


class QualityAssessment(_Model):
    metrics: list[Axis] = Field(default_factory=lambda: list(semconv.QUALITY_AXES))
    weights: dict[Axis, float] = Field(
        default_factory=lambda: {"accuracy": 0.3, "completeness": 0.25, "relevance": 0.25, "consistency": 0.2}
    )
    backends: dict[Axis, Backend] = Field(default_factory=dict, description="per axis; default lexical")
    sample_rate: float = Field(1.0, ge=0, le=1)
    embedding_model: str = "all-MiniLM-L6-v2"
    llm: LlmJudge = Field(default_factory=LlmJudge)
    nli: NliJudge = Field(default_factory=NliJudge)
    cascade: Cascade = Field(default_factory=Cascade)
    non_english: Literal["not_judged", "approximate"] = Field(
        "not_judged",
        description="text not in English: lexical and embedding leave out what their English rules cannot judge "
        "(not_judged), or lexical scores other Latin-script languages by the English rules (approximate)",
    )
    grade_thresholds: dict[Literal["good", "fair"], float] = Field(
        default_factory=lambda: {"good": 0.7, "fair": 0.4}
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, w: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in w.values()):
            raise ValueError("weights must be >= 0")
        if w and sum(w.values()) <= 0:
            raise ValueError("weights must not all be zero")
        return w


class ScheduledReport(_Model):
    enabled: bool = True
    time: str = "09:00"
    day: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] | None = None
    recipients: list[str] = Field(default_factory=list)

    @field_validator("time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"{v!r} is not a 24-hour time HH:MM")
        return v


class SmtpSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field("rag-otel@localhost", alias="from")
    username: str | None = None
    password_env: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0


class Reporting(_Model):
    daily_report: ScheduledReport = Field(default_factory=ScheduledReport)
    weekly_report: ScheduledReport = Field(default_factory=lambda: ScheduledReport(day="monday"))
    timezone: str = "UTC"
    formats: list[Literal["json", "markdown", "html", "png"]] = Field(default_factory=lambda: ["html", "json"])
    out_dir: str | None = None
    smtp: SmtpSettings | None = None
    webhook_url: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name like UTC or Europe/Paris)") from None
        return v


class RealTimeDashboard(_Model):
    enabled: bool = True
    update_interval: float = Field(1.0, gt=0)
    max_subscribers: int = Field(100, ge=1)


class HistoricalDashboard(_Model):
    enabled: bool = True
    retention_days: int = Field(90, ge=1)
    aggregation_levels: list[Literal["hourly", "daily", "weekly"]] = Field(
        default_factory=lambda: ["hourly", "daily", "weekly"]
    )


class Dashboards(_Model):
    real_time: RealTimeDashboard = Field(default_factory=RealTimeDashboard)
    historical: HistoricalDashboard = Field(default_factory=HistoricalDashboard)
    jaeger_ui_url: str | None = None
    # Where people open this processor's dashboard (a DNS name, a proxy); reports link their queries there.
    # Unset: the address `rag-otel serve` listens on (its bound port when processor.http asks for port 0).
    public_url: str | None = None


CaptureMode = Literal["none", "scoring_only", "full"]


class Content(_Model):
    """What content (query, answer, documents, messages) may leave the app, and in what shape."""

    # scoring_only by default: the four quality scores need the question, answer and sources, and
    # under scoring_only they go only to the processor, which scores and then strips them before it
    # stores or exports anything (README "Privacy by default" says why and when to choose none)
    capture: CaptureMode = "scoring_only"
    redact: bool = True
    redact_patterns: list[str] = Field(default_factory=list, description="extra regexes to mask")
    max_chars: int = Field(16_384, ge=64, description="per attribute, after redaction")

    @field_validator("redact_patterns")
    @classmethod
    def _compiles(cls, pats: list[str]) -> list[str]:
        for p in pats:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"redact pattern {p!r} does not compile: {e}") from e
        return pats


class RequestHeaders(_Model):
    user_id: str = "x-user-id"
    session_id: str = "x-session-id"
    conversation_id: str = "x-conversation-id"
    features: str = "x-rag-features"


class Telemetry(_Model):
    """App-side SDK settings; the standard ``OTEL_*`` variables override these."""

    service_name: str = "rag-app"
    service_version: str | None = None
    endpoint: str | None = None
    protocol: Literal["grpc", "http/protobuf"] = "grpc"
    headers: dict[str, str] = Field(default_factory=dict)
    traces_exporter: str = "otlp"
    metrics_exporter: str = "otlp"
    logs_exporter: str = "otlp"
    hash_user_id: bool = False
    hash_salt_env: str = "RAG_OTEL_USER_SALT"
    request_headers: RequestHeaders = Field(default_factory=RequestHeaders)
    system_metrics: bool = True
    shutdown_timeout: float | None = Field(
        None, ge=0, description="s the app may spend exporting at exit (default OTEL_EXPORTER_OTLP_TIMEOUT, 10)"
    )
    # The FastAPI instrumentation's own option: its per-message "http send"/"http receive" spans,
    # one per chunk of a streamed answer (hundreds per query), are left out unless removed from this list.
    fastapi_exclude_spans: list[Literal["receive", "send"]] = Field(
        default_factory=lambda: ["receive", "send"],
        description="ASGI message spans the FastAPI instrumentation leaves out ([] keeps them all)",
    )
    instrument: list[str] = Field(
        default_factory=lambda: ["openai", "faiss", "chromadb", "langchain", "llama_index", "fastapi"]
    )


class ModelPrice(_Model):
    """USD per 1M tokens."""

    input: float = Field(ge=0)
    output: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0)
    reasoning: float | None = Field(None, ge=0)
    provider: str | None = None
    aliases: list[str] = Field(default_factory=list)


class Pricing(_Model):
    file: str | None = Field(None, description="replaces the bundled pricing.yaml")
    models: dict[str, ModelPrice] = Field(default_factory=dict, description="added or overriding prices")


SignalName = Literal["traces", "metrics", "logs"]
ALL_SIGNALS: tuple[SignalName, ...] = ("traces", "metrics", "logs")


class Endpoint(_Model):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = 10.0
    compression: Literal["gzip", "none"] = "gzip"
    signals: list[SignalName] = Field(default_factory=lambda: list(ALL_SIGNALS), min_length=1,
                                      description="what this endpoint takes (Jaeger takes only traces)")

    @classmethod
    def from_flag(cls, flag: str) -> Endpoint:
        """``URL[#signal[,signal...]]`` as ``--export`` takes it, e.g. ``grpc://jaeger:4317#traces``."""
        url, sep, suffix = flag.partition("#")
        if not sep:
            return cls(url=url)
        names = [s.strip() for s in suffix.replace("+", ",").split(",") if s.strip()]
        bad = [s for s in names if s not in ALL_SIGNALS]
        if bad or not names:
            raise ConfigError(f"--export {flag!r}: after '#' give signals from {', '.join(ALL_SIGNALS)} "
                              f"separated by ',' (got {suffix!r})")
        return cls(url=url, signals=list(dict.fromkeys(names)))


class Tls(_Model):
    cert_file: str
    key_file: str


class ProcessorSettings(_Model):
    otlp_grpc: str = "127.0.0.1:4317"
    otlp_http: str = "127.0.0.1:4318"
    http: str = "127.0.0.1:8686"
    exports: list[Endpoint] = Field(default_factory=list)
    data_dir: str = "./rag-otel-data"
    store: str | None = Field(None, description="the analytics store: duckdb:///path/file.duckdb (default: the "
                              "file in data_dir) or ducklake:postgres:dbname=... host=... port=... user=... (the "
                              "fleet store shared by every replica; docs/deploy.md)")
    store_data_path: str | None = Field(None, description="fleet store: where the lake's Parquet files live (a "
                                        "shared directory, or s3://bucket/prefix/); needed when the lake is created")
    store_buffer: int = Field(100_000, ge=100, description="store writes held while the store is unreachable; "
                              "beyond it OTLP intake answers retry-later (nothing accepted is dropped)")
    lease_ttl: float = Field(15.0, gt=0, description="fleet store: seconds a job's leader holds its lease without "
                             "renewing; a dead leader's jobs move to another replica within about 1.3x this")
    bearer_token_env: str | None = None
    api_token_env: str | None = Field(None, description="env var holding the bearer token the HTTP API and "
                                      "dashboard data require (health and /metrics stay open)")
    tls: Tls | None = None
    max_request_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_concurrent_requests: int = Field(8, ge=1, description="OTLP requests decoded at once (memory bound)")
    max_queue_items: int = Field(100_000, ge=1)
    max_in_flight_traces: int = Field(10_000, ge=1)
    trace_wait: float = Field(2.0, ge=0, description="seconds after the root ends")
    trace_timeout: float = Field(30.0, gt=0, description="a trace with no root is flushed then")
    shutdown_grace: float = Field(10.0, ge=0)
    export_batch_size: int = Field(512, ge=1)
    export_queue_size: int = Field(10_000, ge=1)
    keep_content: bool = Field(False, description="export captured content even when scoring_only")
    evaluation_events: Literal["span", "log", "both"] = Field(
        "span", description="gen_ai.evaluation.result as events on the root span (what Jaeger shows), as "
        "log records tied to the root span (the Logs API form OpenTelemetry now recommends), or both")
    # --- holding under faults (docs/processor.md, "Reliability"): the Collector's names where it has one ---
    read_header_timeout: float = Field(10.0, gt=0, description="seconds an OTLP/HTTP client may take to send "
                                       "its request headers (confighttp read_header_timeout)")
    read_timeout: float = Field(30.0, gt=0, description="seconds an OTLP/HTTP client may take to send a whole "
                                "request body (confighttp read_timeout)")
    idle_timeout: float = Field(60.0, gt=0, description="seconds a keep-alive connection may sit idle "
                                "(confighttp idle_timeout)")
    max_receiving_requests: int | None = Field(None, ge=1, description="OTLP/gRPC messages read at once, each "
                                               "within read_timeout (default 4 x max_concurrent_requests)")
    memory_limit_mib: int = Field(512, ge=16, description="hard bound on telemetry held in flight (encoded bytes "
                                  "received, not yet exported); export queues never hold more")
    memory_spike_limit_mib: int | None = Field(None, ge=0, description="headroom below the limit: intake answers "
                                               "503 / UNAVAILABLE above limit - spike (default 20% of the limit)")
    export_block_timeout: float = Field(30.0, ge=0, description="seconds a full export queue holds the pipeline "
                                        "back (back-pressure to senders) before it drops its oldest items")
    metric_cardinality_limit: int = Field(2000, ge=2, description="attribute sets per derived metric; beyond it "
                                          "values fold into one otel.metric.overflow=true series")

    @model_validator(mode="after")
    def _spike_below_limit(self) -> ProcessorSettings:
        if self.memory_spike_limit_mib is not None and self.memory_spike_limit_mib >= self.memory_limit_mib:
            raise ValueError("memory_spike_limit_mib must be below memory_limit_mib (intake stops at limit - spike)")
        return self

    @property
    def memory_soft_limit_bytes(self) -> int:
        """Above this many bytes in flight, intake is refused with a retry delay (memory_limiter's soft limit)."""
        limit = self.memory_limit_mib << 20
        spike = limit // 5 if self.memory_spike_limit_mib is None else self.memory_spike_limit_mib << 20
        return limit - spike

    @field_validator("store")
    @classmethod
    def _store_url(cls, url: str | None) -> str | None:
        if url and not url.startswith(("duckdb://", "ducklake:postgres:")):
            raise ValueError("expected duckdb:///path/to/file.duckdb or ducklake:postgres:dbname=... host=... "
                             "port=... user=...")
        return url or None


class Notifier(_Model):
    type: Literal["log", "webhook", "alertmanager", "email"]
    url: str | None = None
    format: Literal["json", "slack"] = "json"
    smtp_host: str | None = None
    smtp_port: int = 25
    sender: str | None = Field(None, alias="from")
    to: list[str] = Field(default_factory=list)
    username: str | None = None
    password_env: str | None = None
    starttls: bool = False
    timeout: float = 5.0
    max_retries: int = Field(3, ge=0)

    @model_validator(mode="after")
    def _needs(self) -> Notifier:
        if self.type in ("webhook", "alertmanager") and not self.url:
            raise ValueError(f"a {self.type} notifier needs url")
        if self.type == "email" and not (self.smtp_host and self.to):
            raise ValueError("an email notifier needs smtp_host and to")
        return self


class Alerting(_Model):
    evaluation_interval: float = Field(5.0, gt=0)
    repeat_interval: Duration = "4h"
    notifiers: list[Notifier] = Field(default_factory=lambda: [Notifier(type="log")])


_DEFAULT_CATEGORY_RULES: dict[str, list[str]] = {
    "chit-chat": [r"^\s*(hi|hello|hey|thanks|thank you|good (morning|afternoon|evening)|how are you)\b"],
    "troubleshooting": [r"\b(error|errors|fails?|failing|failed|not working|doesn'?t work|broken|crash\w*|"
                        r"exception|troubleshoot\w*|fix|timeout|stuck)\b"],
    "comparison": [r"\b(vs\.?|versus|compare[sd]?|comparison|difference between|better than|which is better)\b"],
    "how-to": [r"^\s*how (do|can|should|would) (i|we|you)\b", r"\bhow to\b",
               r"\b(steps to|set ?up|configure|install)\b"],
    "definition": [r"^\s*what('s| is| are) (a |an )?[\w-]+( [\w-]+){0,2}\s*\??$",
                   r"\b(define|definition of|meaning of)\b", r"\bwhat does .* mean\b"],
    "factual": [r"^\s*(who|when|where|which|what|how (many|much|long|old))\b", r"\?\s*$"],
}


class Analytics(_Model):
    """Store-side analytics settings: query categories (rule-based) and session boundaries.

    ``categories`` maps a category to regexes tried on the lower-cased query text, in order; the
    first category with a matching pattern wins, and a query matching none is ``other``.
    """

    categories: dict[str, list[str]] = Field(default_factory=lambda: dict(_DEFAULT_CATEGORY_RULES))
    session_gap: Duration = Field("30m", description="inactivity that ends a session")

    @field_validator("categories")
    @classmethod
    def _compiles(cls, rules: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, pats in rules.items():
            for p in pats:
                try:
                    re.compile(p)
                except re.error as e:
                    raise ValueError(f"category {name!r} pattern {p!r} does not compile: {e}") from e
        return rules

    @field_validator("session_gap")
    @classmethod
    def _dur(cls, v: str | float) -> str | float:
        if parse_duration(v) <= 0:
            raise ValueError("session_gap must be > 0")
        return v


class ModelObservation(_Model):
    metrics_collection: MetricsCollection = Field(default_factory=MetricsCollection)
    performance_monitoring: PerformanceMonitoring = Field(default_factory=PerformanceMonitoring)
    quality_assessment: QualityAssessment = Field(default_factory=QualityAssessment)
    reporting: Reporting = Field(default_factory=Reporting)
    dashboards: Dashboards = Field(default_factory=Dashboards)
    content: Content = Field(default_factory=Content)
    telemetry: Telemetry = Field(default_factory=Telemetry)
    pricing: Pricing = Field(default_factory=Pricing)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    alerting: Alerting = Field(default_factory=Alerting)
    analytics: Analytics = Field(default_factory=Analytics)


class RagOtelConfig(_Model):
    model_observation: ModelObservation = Field(default_factory=ModelObservation)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling and indentation)"
        lines.append(f"  {loc or '<root>'}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> ModelObservation:
    """Validate already-parsed YAML data; raise :class:`ConfigError` naming each bad key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {source}: the top level must be a mapping")
    if "model_observation" not in data:
        raise ConfigError(f"invalid configuration in {source}: the top-level key must be model_observation")
    try:
        return RagOtelConfig.model_validate(data).model_observation
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source)) from None


def load_config(path: str | os.PathLike[str] | None = None, *, env: dict[str, str] | None = None) -> ModelObservation:
    """Load the YAML file (``path``, else ``$RAG_OTEL_CONFIG``, else defaults) and apply env overrides."""
    env = dict(os.environ) if env is None else env
    path = path or env.get(CONFIG_ENV)
    if path:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read configuration {p}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            line = p.read_bytes()[:e.start].count(b"\n") + 1
            raise ConfigError(f"configuration {p} is not UTF-8 text (byte 0x{e.object[e.start]:02x} on line {line}): "
                              "save it as UTF-8") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"configuration {p} is not valid YAML: {e}") from None
        cfg = parse_config(data, str(p))
    else:
        cfg = ModelObservation()
    return apply_env(cfg, env)


def _parse_headers(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def apply_env(cfg: ModelObservation, env: dict[str, str]) -> ModelObservation:
    """Standard ``OTEL_*`` variables win over the file, as users of any OTel SDK expect."""
    t = cfg.telemetry
    if v := env.get("OTEL_SERVICE_NAME"):
        t.service_name = v
    if v := env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        t.endpoint = v
    if v := env.get("OTEL_EXPORTER_OTLP_PROTOCOL"):
        if v not in ("grpc", "http/protobuf"):
            raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={v!r}: use grpc or http/protobuf")
        t.protocol = v  # type: ignore[assignment]
    if v := env.get("OTEL_EXPORTER_OTLP_HEADERS"):
        t.headers.update(_parse_headers(v))
    for key, attr in (
        ("OTEL_TRACES_EXPORTER", "traces_exporter"),
        ("OTEL_METRICS_EXPORTER", "metrics_exporter"),
        ("OTEL_LOGS_EXPORTER", "logs_exporter"),
    ):
        if v := env.get(key):
            setattr(t, attr, v)
    if v := env.get(semconv.ENV_CAPTURE_MESSAGE_CONTENT):
        cfg.content.capture = capture_from_env(v, cfg.content.capture)
    return cfg


def capture_from_env(value: str, current: CaptureMode) -> CaptureMode:
    """Map the GenAI capture variable onto our modes (true/SPAN_ONLY/... = full, false = none)."""
    v = value.strip().lower()
    if v in ("none", "scoring_only", "full"):
        return v  # type: ignore[return-value]
    if v in ("true", "1", "yes", "span_only", "event_only", "span_and_event"):
        return "full"
    if v in ("false", "0", "no", "no_content"):
        return "none"
    return current
