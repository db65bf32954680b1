"""Every attribute, metric, event and span name rag-otel emits or reads: the one place for them.

OpenTelemetry GenAI semantic conventions come first: the standalone GenAI release
(open-telemetry/semantic-conventions-genai v0.1.0) where it renamed something, v1.41.1 otherwise;
what the spec lacks lives under the project namespace ``rag.`` plus ``gen_ai.usage.cost`` (USD),
the name OpenLIT and Langfuse already read.  Deprecated and third-party names (OpenInference,
OpenLLMetry) are listed so the processor can *read* spans from the instrumentation users already
run; we never emit them.
"""

from __future__ import annotations

from typing import Final

SEMCONV_VERSION: Final = "1.41.1"
GENAI_SEMCONV_VERSION: Final = "0.1.0"  # open-telemetry/semantic-conventions-genai
# Transition switch (comma list): "gen_ai_latest_experimental" = the newest names only (our default);
# "gen_ai_latest_experimental/dup" = the newest names and the v1.41 ones they replaced (see docs/sdk.md).
ENV_SEMCONV_STABILITY_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
OPT_IN_GEN_AI_LATEST: Final = "gen_ai_latest_experimental"
OPT_IN_GEN_AI_DUP: Final = "gen_ai_latest_experimental/dup"

# --- GenAI: operations and span names ------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_RETRIEVAL: Final = "retrieval"
OP_RERANK: Final = "rerank"  # not a GenAI operation: INTERNAL span with rag.rerank.* attributes

GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_SYSTEM_DEPRECATED: Final = "gen_ai.system"  # read only

GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"  # sampling top-k; on retrieval spans up to v1.41 (read; dup mode)
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"  # set only when != 1
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"

GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_USAGE_PROMPT_TOKENS_DEPRECATED: Final = "gen_ai.usage.prompt_tokens"  # read only
GEN_AI_USAGE_COMPLETION_TOKENS_DEPRECATED: Final = "gen_ai.usage.completion_tokens"  # read only
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"  # USD, not in the spec (OpenLIT/Langfuse name)

GEN_AI_DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
GEN_AI_RETRIEVAL_TOP_K: Final = "gen_ai.retrieval.top_k"  # GenAI v0.1.0: replaces gen_ai.request.top_k on retrievals
GEN_AI_RETRIEVAL_QUERY_TEXT: Final = "gen_ai.retrieval.query.text"  # opt-in content
GEN_AI_RETRIEVAL_DOCUMENTS: Final = "gen_ai.retrieval.documents"  # JSON [{id, score, ...}]

GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"  # opt-in content
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"  # opt-in content
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"  # opt-in content
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# Evaluation results: one event per axis, parented to the evaluated span.
GEN_AI_EVALUATION_RESULT_EVENT: Final = "gen_ai.evaluation.result"
PROCESSOR_SCOPE: Final = "rag_otel.processor"  # instrumentation scope of what the processor makes (metrics, log events)
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"

# Content capture switch the GenAI instrumentations honour.
ENV_CAPTURE_MESSAGE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

# --- General semconv ------------------------------------------------------------------------
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
USER_ID: Final = "user.id"
USER_HASH: Final = "user.hash"
SESSION_ID: Final = "session.id"
SERVICE_NAME: Final = "service.name"

# --- Providers (gen_ai.provider.name well-known values) -------------------------------------
PROVIDER_OPENAI: Final = "openai"
PROVIDER_AZURE_OPENAI: Final = "azure.ai.openai"

# --- rag.* : what the spec lacks -------------------------------------------------------------
SPAN_RAG_QUERY: Final = "rag.query"
RAG_QUERY_TEXT: Final = "rag.query.text"  # opt-in content
RAG_ANSWER_TEXT: Final = "rag.answer.text"  # opt-in content
RAG_QUERY_CATEGORY: Final = "rag.query.category"
RAG_QUERY_TOPIC: Final = "rag.query.topic"
RAG_FEATURES: Final = "rag.features"
RAG_DOCUMENTS_COUNT: Final = "rag.documents.count"
RAG_CONTENT_CAPTURE: Final = "rag.content.capture"  # none | scoring_only | full, set on root
RAG_CONTENT_TRUNCATED: Final = "rag.content.truncated"
RAG_COST_UNKNOWN_MODEL: Final = "rag.cost.unknown_model"
# On a chat/embeddings span whose tokens and cost are counted by a model call of the same kind under it
RAG_USAGE_COUNTED_BY_CHILD: Final = "rag.usage.counted_by_child"
# On a chat/embeddings span whose reported token counts were out of range and clamped (OTLP ints are int64)
RAG_USAGE_CLAMPED: Final = "rag.usage.clamped"
RAG_CLAMP_REASON: Final = "rag.clamp.reason"  # above_int64_max | negative
# true on a chat/embeddings span whose call got a (possibly partial) answer but no usage (a stream without
# stream_options.include_usage, a raw response never read...), and on its rag.query root: its cost is incomplete
RAG_USAGE_MISSING: Final = "rag.usage.missing"
RAG_RERANK_MODEL: Final = "rag.rerank.model"
RAG_RERANK_TOP_N: Final = "rag.rerank.top_n"
RAG_RERANK_INPUT_COUNT: Final = "rag.rerank.input_count"
RAG_RERANK_DOCUMENTS: Final = "rag.rerank.documents"
RAG_INSTRUMENTATION_SKIPPED: Final = "rag.instrumentation.skipped"

RAG_QUALITY_PREFIX: Final = "rag.quality."
RAG_QUALITY_ACCURACY: Final = "rag.quality.accuracy"
RAG_QUALITY_COMPLETENESS: Final = "rag.quality.completeness"
RAG_QUALITY_RELEVANCE: Final = "rag.quality.relevance"
RAG_QUALITY_CONSISTENCY: Final = "rag.quality.consistency"
RAG_QUALITY_OVERALL: Final = "rag.quality.overall"
RAG_QUALITY_GRADE: Final = "rag.quality.grade"  # good | fair | poor
RAG_QUALITY_EVALUATOR: Final = "rag.quality.evaluator"
RAG_QUALITY_STATUS: Final = "rag.quality.status"  # scored | no_content | unsupported_language | skipped | error
RAG_QUALITY_NOT_JUDGED: Final = "rag.quality.not_judged"  # string[]: axes whose backend abstained (cannot tell)
RAG_QUALITY_ESCALATED: Final = "rag.quality.escalated"  # string[]: axes the cascade sent to the LLM judge
EVALUATION_LABEL_NOT_JUDGED: Final = "not_judged"  # gen_ai.evaluation.score.label of an abstaining axis
RAG_LATENCY_CATEGORY: Final = "rag.latency.category"
RAG_ALERT_FIRED: Final = "rag.alert.fired"
RAG_ALERT_NAMES: Final = "rag.alert.names"

QUALITY_AXES: Final = ("accuracy", "completeness", "relevance", "consistency")

# Feedback event (exported as a log record tied to the query's trace).
RAG_FEEDBACK_EVENT: Final = "rag.feedback"
RAG_FEEDBACK_SCORE: Final = "rag.feedback.score"
RAG_FEEDBACK_THUMBS: Final = "rag.feedback.thumbs"
RAG_FEEDBACK_COMMENT: Final = "rag.feedback.comment"

# --- Metrics ---------------------------------------------------------------------------------
METRIC_GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
# GenAI v0.1.0 metrics (emitted under OTEL_SEMCONV_STABILITY_OPT_IN, see sdk/conventions.py): one family per
# operation.  Inference (chat, text_completion): client-inference.md; the token histogram split into counters
# (totals, what dashboards sum) and per-operation histograms, without gen_ai.token.type.
METRIC_GEN_AI_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"  # s, DURATION_BUCKETS
METRIC_GEN_AI_INFERENCE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"  # s
METRIC_GEN_AI_INFERENCE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"  # counter {token}
METRIC_GEN_AI_INFERENCE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"  # counter
METRIC_GEN_AI_INFERENCE_CACHE_READ_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"  # counter
METRIC_GEN_AI_INFERENCE_REASONING_TOKENS: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"  # counter
METRIC_GEN_AI_INFERENCE_OP_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"  # hist TOKEN_BUCKETS
METRIC_GEN_AI_INFERENCE_OP_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"  # hist
# Embeddings: client-embeddings.md (input tokens only)
METRIC_GEN_AI_EMBEDDINGS_DURATION: Final = "gen_ai.client.embeddings.duration"  # s, DURATION_BUCKETS
METRIC_GEN_AI_EMBEDDINGS_OP_INPUT_TOKENS: Final = "gen_ai.client.embeddings.operation.input_tokens"  # hist
# Retrieval: retrieval.md (v1.41 had no retrieval metric)
METRIC_GEN_AI_RETRIEVAL_DURATION: Final = "gen_ai.retrieval.duration"  # s, DURATION_BUCKETS
METRIC_RAG_QUERY_DURATION: Final = "rag.query.duration"
METRIC_RAG_QUERIES: Final = "rag.queries"
METRIC_RAG_COST: Final = "rag.cost"
METRIC_RAG_RETRIEVED_DOCUMENTS: Final = "rag.retrieval.documents"
METRIC_RAG_FEEDBACK_SCORE: Final = "rag.feedback.score"
METRIC_RAG_COST_UNKNOWN_MODELS: Final = "rag.cost.unknown_models"
METRIC_RAG_USAGE_CLAMPED: Final = "rag.usage.clamped"  # token counts clamped, by rag.clamp.reason
METRIC_RAG_QUERIES_IN_FLIGHT: Final = "rag.queries.in_flight"
METRIC_PROCESS_RSS: Final = "rag.process.memory.rss"
METRIC_PROCESS_CPU: Final = "rag.process.cpu.utilization"
METRIC_PROCESS_CONNECTIONS: Final = "rag.process.open_connections"
METRIC_EVENT_LOOP_LAG: Final = "rag.event_loop.lag"
METRIC_HEALTH_SCORE: Final = "rag.system.health.score"
METRIC_HEALTH_STATUS: Final = "rag.system.health.status"
RAG_QUERY_STATUS: Final = "rag.query.status"  # ok | error (metric attribute)
RAG_HEALTH_STATE: Final = "rag.health.state"  # healthy | warning | critical

# Spec-recommended explicit bucket boundaries.
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
DOCUMENT_COUNT_BUCKETS: Final = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 100)
FEEDBACK_BUCKETS: Final = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

# --- Names we read from other instrumentations ----------------------------------------------
# OpenInference
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_INPUT_VALUE: Final = "input.value"
OI_OUTPUT_VALUE: Final = "output.value"
OI_LLM_MODEL_NAME: Final = "llm.model_name"
OI_LLM_PROVIDER: Final = "llm.provider"
OI_LLM_SYSTEM: Final = "llm.system"
OI_LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
OI_LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
OI_LLM_TOKEN_COUNT_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
OI_LLM_TOKEN_COUNT_REASONING: Final = "llm.token_count.completion_details.reasoning"
OI_LLM_COST_TOTAL: Final = "llm.cost.total"
OI_RETRIEVAL_DOCUMENTS_PREFIX: Final = "retrieval.documents."
OI_EMBEDDING_MODEL_NAME: Final = "embedding.model_name"
OI_USER_ID: Final = "user.id"
OI_SESSION_ID: Final = "session.id"
# OpenLLMetry (traceloop)
TL_SPAN_KIND: Final = "traceloop.span.kind"
TL_ENTITY_INPUT: Final = "traceloop.entity.input"
TL_ENTITY_OUTPUT: Final = "traceloop.entity.output"
TL_PROMPT_PREFIX: Final = "gen_ai.prompt."
TL_COMPLETION_PREFIX: Final = "gen_ai.completion."
TL_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
TL_ASSOCIATION_PREFIX: Final = "traceloop.association.properties."

# --- Metrics derived by the processor (OTel names; Prometheus names in comments) ---------------
# The processor's MeterProvider exports these downstream over OTLP and at /metrics; the alert
# rules' Prometheus export (alerts/prometheus_rules.py) queries them by their Prometheus names.
METRIC_P_QUERIES: Final = "rag.processor.queries"  # rag_processor_queries_total{service,model,status,latency_category}
METRIC_P_QUERY_DURATION: Final = "rag.processor.query.duration"  # rag_processor_query_duration_seconds_*
METRIC_P_QUALITY_SCORE: Final = "rag.processor.quality.score"  # rag_processor_quality_score_*{axis,model,service}
METRIC_P_TOKENS: Final = "rag.processor.tokens"  # rag_processor_tokens_total{model,service,gen_ai_token_type}
# Under the GenAI v0.1.0 opt-in (which dropped gen_ai.token.type), one counter per kind instead:
METRIC_P_INPUT_TOKENS: Final = "rag.processor.input_tokens"  # rag_processor_input_tokens_total{model,service}
METRIC_P_OUTPUT_TOKENS: Final = "rag.processor.output_tokens"  # rag_processor_output_tokens_total{model,service}
METRIC_P_COST: Final = "rag.processor.cost"  # rag_processor_cost_USD_total{model,service} (unit USD kept verbatim)
METRIC_P_LATENCY: Final = "rag.processor.query.latency"  # gauge, rag_processor_query_latency_seconds{quantile}
METRIC_P_ERROR_RATE: Final = "rag.processor.error_rate"  # gauge over the last 5m
METRIC_P_QUERIES_PER_MINUTE: Final = "rag.processor.queries_per_minute"  # gauge
METRIC_P_ACTIVE_USERS: Final = "rag.processor.active_users"  # gauge, distinct users in the last 5m
METRIC_P_RECEIVED: Final = "rag.processor.received"  # counter {signal: spans|metric_points|log_records}
METRIC_P_REFUSED: Final = "rag.processor.refused"  # counter {reason}
METRIC_P_EXPORTED: Final = "rag.processor.exported"  # counter {endpoint, signal}
METRIC_P_EXPORT_RETRIED: Final = "rag.processor.export.retried"
METRIC_P_EXPORT_DROPPED: Final = "rag.processor.export.dropped"
METRIC_P_QUEUE_DEPTH: Final = "rag.processor.queue.depth"
METRIC_P_TRACES_IN_FLIGHT: Final = "rag.processor.traces.in_flight"
METRIC_P_SCORING_DURATION: Final = "rag.processor.scoring.duration"  # histogram s {backend}
METRIC_P_LATE_SPANS: Final = "rag.processor.late_spans"  # counter: spans of traces already flushed, sent as-is
METRIC_P_ALERTS_FIRING: Final = "rag.processor.alerts.firing"  # gauge {rule, severity}
METRIC_P_ALERT_NOTIFICATIONS: Final = "rag.processor.alerts.notifications"  # counter {notifier, outcome}
METRIC_P_REJECTED: Final = "rag.processor.rejected"  # counter {signal}: invalid items refused in accepted requests
# holding under faults (docs/processor.md, "Reliability")
METRIC_P_TRACES_FAILED: Final = "rag.processor.traces.failed"  # counter: a stage raised; exported stripped
METRIC_P_VALUES_REJECTED: Final = "rag.processor.values.rejected"  # counter: absurd tokens/cost set aside
METRIC_P_METRIC_OVERFLOW: Final = "rag.processor.metric.overflow"  # counter {metric}: folded into overflow set
METRIC_P_BYTES_IN_FLIGHT: Final = "rag.processor.memory.in_flight"  # gauge By: held for the memory limit
OTEL_METRIC_OVERFLOW: Final = "otel.metric.overflow"  # the SDK spec's overflow attribute (cardinality limit)

# --- Read by the processor's normalizer and content stripper (issue 3) -----------------------
# OpenInference span kinds and message/document sub-keys
OI_KIND_LLM: Final = "LLM"
OI_KIND_EMBEDDING: Final = "EMBEDDING"
OI_KIND_RETRIEVER: Final = "RETRIEVER"
OI_KIND_RERANKER: Final = "RERANKER"
OI_LLM_INPUT_MESSAGES_PREFIX: Final = "llm.input_messages."  # .N.message.role / .content (content)
OI_LLM_OUTPUT_MESSAGES_PREFIX: Final = "llm.output_messages."  # content
OI_LLM_PROMPTS: Final = "llm.prompts"  # content
OI_EMBEDDING_EMBEDDINGS_PREFIX: Final = "embedding.embeddings."  # .N.embedding.text (content)
OI_RERANKER_INPUT_DOCUMENTS_PREFIX: Final = "reranker.input_documents."  # content
OI_RERANKER_OUTPUT_DOCUMENTS_PREFIX: Final = "reranker.output_documents."  # content
OI_RERANKER_QUERY: Final = "reranker.query"  # content
OI_DOCUMENT_ID_SUFFIX: Final = ".document.id"
OI_DOCUMENT_SCORE_SUFFIX: Final = ".document.score"
OI_DOCUMENT_CONTENT_SUFFIX: Final = ".document.content"
OI_DOCUMENT_METADATA_SUFFIX: Final = ".document.metadata"  # content: loaders put text and paths there
OI_PROMPT_TEMPLATE_VARIABLES: Final = "llm.prompt_template.variables"  # content: the filled-in context/question
# more attributes that carry captured content (stripped under scoring_only)
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_PROMPT_DEPRECATED: Final = "gen_ai.prompt"  # single-attribute forms of older instrumentations
GEN_AI_COMPLETION_DEPRECATED: Final = "gen_ai.completion"
OI_MESSAGE_ROLE_SUFFIX: Final = ".message.role"
OI_MESSAGE_CONTENT_SUFFIX: Final = ".message.content"
# OpenLLMetry
TL_LLM_REQUEST_TYPE: Final = "llm.request.type"  # chat | completion | embedding | rerank
TL_ROLE_SUFFIX: Final = ".role"
TL_CONTENT_SUFFIX: Final = ".content"
TL_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read_input_tokens"
# Deprecated GenAI content events (span events), stripped with the rest of the content
GEN_AI_CONTENT_PROMPT_EVENT: Final = "gen_ai.content.prompt"
GEN_AI_CONTENT_COMPLETION_EVENT: Final = "gen_ai.content.completion"
GEN_AI_CONTENT_EVENTS: Final = (
    "gen_ai.content.prompt", "gen_ai.content.completion", "gen_ai.client.inference.operation.details",
    "gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message", "gen_ai.tool.message",
    "gen_ai.choice",
)
OI_PROMPT_TEMPLATE_TEMPLATE: Final = "llm.prompt_template.template"  # content: the app's prompt template text
OI_TOOL_PARAMETERS: Final = "tool.parameters"  # content: a tool call's arguments (OpenInference TOOL spans)
EVENT_NAME: Final = "event.name"  # a log record's event name as an attribute (older SDKs), beside LogRecord.event_name

# System metrics apps send (ours and opentelemetry-instrumentation-system-metrics'); utilizations in [0,1]
SYS_CPU_UTILIZATION: Final = "system.cpu.utilization"  # {cpu, system.cpu.state|state}
SYS_MEMORY_UTILIZATION: Final = "system.memory.utilization"  # {system.memory.state|state}
SYS_FILESYSTEM_UTILIZATION: Final = "system.filesystem.utilization"  # {system.filesystem.state|state}
SYS_DISK_UTILIZATION: Final = "system.disk.utilization"
SYS_STATE_KEYS: Final = ("system.cpu.state", "system.memory.state", "system.filesystem.state", "state")
HOST_NAME: Final = "host.name"

# --- Retrieval auto-instrumentors (sdk/instrumentors/{faiss,chroma,langchain,llama_index}.py) ---
# Which way a retrieval's scores point: chroma and faiss L2 return distances, faiss IP similarities.
RAG_RETRIEVAL_SCORE_KIND: Final = "rag.retrieval.score_kind"
SCORE_KIND_SIMILARITY: Final = "similarity"  # higher is better
SCORE_KIND_DISTANCE: Final = "distance"  # lower is better
RAG_RETRIEVAL_QUERY_COUNT: Final = "rag.retrieval.query_count"  # rows of a batch search (set when > 1)
RAG_RETRIEVAL_DOCUMENTS_OMITTED: Final = "rag.retrieval.documents_omitted"  # entries cut by the cap
RAG_QUERY_ENGINE: Final = "rag.query_engine"  # class of the LlamaIndex query engine a span stands for
SPAN_QUERY_ENGINE: Final = "query_engine"  # INTERNAL span "query_engine {class}" under a user's rag.query
PROVIDER_FAISS: Final = "faiss"
PROVIDER_CHROMA: Final = "chroma"
PROVIDER_LANGCHAIN: Final = "langchain"
PROVIDER_LLAMA_INDEX: Final = "llama_index"
METRIC_P_PIPELINE_QUEUE_DEPTH: Final = "rag.processor.pipeline.queue.depth"  # gauge, items received not yet assembled
METRIC_P_STORE_BUFFERED: Final = "rag.processor.store.buffered"  # gauge {item}: accepted, not yet in the store
METRIC_P_STORE_UP: Final = "rag.processor.store.up"  # gauge: 1 while the store takes writes, 0 while unreachable
METRIC_P_LEADER: Final = "rag.processor.leader"  # gauge {job}: 1 on the replica leading a fleet-wide job
# The nodes a LlamaIndex query engine answered from (after postprocessors), JSON like gen_ai.retrieval.documents
RAG_SOURCE_DOCUMENTS: Final = "rag.source_documents"
# --- SDK resource and system gauges (sdk/setup.py, sdk/system_metrics.py) ---
SERVICE_VERSION: Final = "service.version"
TELEMETRY_DISTRO_NAME: Final = "telemetry.distro.name"
TELEMETRY_DISTRO_VERSION: Final = "telemetry.distro.version"
SYS_FILESYSTEM_STATE: Final = "system.filesystem.state"
SYS_FILESYSTEM_MOUNTPOINT: Final = "system.filesystem.mountpoint"

# OpenLLMetry 0.5x-0.6x: a task's (chain step's) input and output, the managed prompt's template
TL_TASK_INPUT: Final = "gen_ai.task.input"  # content
TL_TASK_OUTPUT: Final = "gen_ai.task.output"  # content
TL_PROMPT_TEMPLATE: Final = "traceloop.prompt.template"  # content
TL_PROMPT_TEMPLATE_VARIABLES: Final = "traceloop.prompt.template_variables"  # content
TL_COMPLETION_CHUNK_EVENTS: Final = ("gen_ai.content.completion.chunk", "llm.content.completion.chunk")  # span events

# --- Content: every attribute, prefix and event that carries captured text (the one list the processor
# strips under scoring_only; docs/processor.md "Content").  Document lists (JSON) keep ids and scores.
CONTENT_ATTRIBUTES: Final = frozenset((
    RAG_QUERY_TEXT, RAG_ANSWER_TEXT, GEN_AI_INPUT_MESSAGES, GEN_AI_OUTPUT_MESSAGES, GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_RETRIEVAL_QUERY_TEXT, GEN_AI_TOOL_CALL_ARGUMENTS, GEN_AI_TOOL_CALL_RESULT, GEN_AI_PROMPT_DEPRECATED,
    GEN_AI_COMPLETION_DEPRECATED,
    OI_INPUT_VALUE, OI_OUTPUT_VALUE, OI_LLM_PROMPTS, OI_RERANKER_QUERY, OI_PROMPT_TEMPLATE_VARIABLES,
    OI_PROMPT_TEMPLATE_TEMPLATE, OI_TOOL_PARAMETERS,
    TL_ENTITY_INPUT, TL_ENTITY_OUTPUT, TL_TASK_INPUT, TL_TASK_OUTPUT, TL_PROMPT_TEMPLATE, TL_PROMPT_TEMPLATE_VARIABLES,
))
CONTENT_ATTRIBUTE_PREFIXES: Final = (
    OI_LLM_INPUT_MESSAGES_PREFIX, OI_LLM_OUTPUT_MESSAGES_PREFIX, TL_PROMPT_PREFIX, TL_COMPLETION_PREFIX,
    OI_EMBEDDING_EMBEDDINGS_PREFIX, OI_RERANKER_INPUT_DOCUMENTS_PREFIX, OI_RERANKER_OUTPUT_DOCUMENTS_PREFIX,
)
# retrieval.documents.N.document.{content,metadata}: OpenInference's flattened documents
CONTENT_DOCUMENT_SUFFIXES: Final = (OI_DOCUMENT_CONTENT_SUFFIX, OI_DOCUMENT_METADATA_SUFFIX)
CONTENT_DOCUMENT_JSON: Final = frozenset((GEN_AI_RETRIEVAL_DOCUMENTS, RAG_RERANK_DOCUMENTS, RAG_SOURCE_DOCUMENTS))
CONTENT_DOCUMENT_FIELDS: Final = ("content", "text", "page_content", "metadata")  # dropped from those JSON lists
