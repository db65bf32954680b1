"""The GenAI v0.1.0 metrics (open-telemetry/semantic-conventions-genai): one family per operation.

v1.41 had one duration histogram for every operation and one token histogram split by
``gen_ai.token.type``.  v0.1.0 gives inference, embeddings and retrieval their own instruments, and
splits inference tokens into counters (the totals dashboards sum: input, output, cache-read input,
reasoning output) plus per-operation histograms (the distribution), with no ``gen_ai.token.type``.
Emitted only when ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for them (:func:`conventions.metric_generations`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics

from rag_otel import semconv

INFERENCE_OPERATIONS = frozenset((semconv.OP_CHAT, semconv.OP_TEXT_COMPLETION))


class GenAiMetrics:
    """The v0.1.0 instruments, created once per meter."""

    def __init__(self, meter: metrics.Meter) -> None:
        durations = list(semconv.DURATION_BUCKETS)
        tokens = list(semconv.TOKEN_BUCKETS)

        def histogram(name: str, unit: str, description: str, bounds: list[float]) -> metrics.Histogram:
            return meter.create_histogram(name, unit=unit, description=description,
                                          explicit_bucket_boundaries_advisory=bounds)

        def counter(name: str, description: str) -> metrics.Counter:
            return meter.create_counter(name, unit="{token}", description=description)

        self.inference_duration = histogram(semconv.METRIC_GEN_AI_INFERENCE_DURATION, "s",
                                            "GenAI client inference operation duration.", durations)
        self.time_to_first_chunk = histogram(semconv.METRIC_GEN_AI_INFERENCE_TIME_TO_FIRST_CHUNK, "s",
                                             "Time to receive the first chunk of a streamed response.", durations)
        self.input_tokens = counter(semconv.METRIC_GEN_AI_INFERENCE_INPUT_TOKENS, "Input tokens used.")
        self.output_tokens = counter(semconv.METRIC_GEN_AI_INFERENCE_OUTPUT_TOKENS, "Output tokens used.")
        self.cache_read_tokens = counter(semconv.METRIC_GEN_AI_INFERENCE_CACHE_READ_TOKENS,
                                         "Input tokens served from a provider-managed cache.")
        self.reasoning_tokens = counter(semconv.METRIC_GEN_AI_INFERENCE_REASONING_TOKENS,
                                        "Output tokens used for reasoning.")
        self.operation_input_tokens = histogram(semconv.METRIC_GEN_AI_INFERENCE_OP_INPUT_TOKENS, "{token}",
                                                "Input tokens per inference operation.", tokens)
        self.operation_output_tokens = histogram(semconv.METRIC_GEN_AI_INFERENCE_OP_OUTPUT_TOKENS, "{token}",
                                                 "Output tokens per inference operation.", tokens)
        self.embeddings_duration = histogram(semconv.METRIC_GEN_AI_EMBEDDINGS_DURATION, "s",
                                             "GenAI client embeddings operation duration.", durations)
        self.embeddings_input_tokens = histogram(semconv.METRIC_GEN_AI_EMBEDDINGS_OP_INPUT_TOKENS, "{token}",
                                                 "Input tokens per embeddings operation.", tokens)
        self.retrieval_duration = histogram(semconv.METRIC_GEN_AI_RETRIEVAL_DURATION, "s",
                                            "GenAI retrieval operation duration.", durations)
        # v0.1.0 keeps gen_ai.client.operation.duration for the operations with no family of their own
        self.other_duration = histogram(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, "s",
                                        "GenAI operation duration.", durations)

    def record_model_call(self, operation: str, attrs: Mapping[str, Any], *, duration: float | None,
                          time_to_first_chunk: float | None, input_tokens: int | None, output_tokens: int | None,
                          cached_input_tokens: int | None, reasoning_tokens: int | None, counted: bool) -> None:
        """One chat/text_completion/embeddings call.  ``counted=False``: its tokens were counted by a
        model call under it (see ``record_model_call`` in runtime.py), only its duration is recorded."""
        if operation in INFERENCE_OPERATIONS:
            if duration is not None:
                self.inference_duration.record(duration, attrs)
            if time_to_first_chunk is not None:
                self.time_to_first_chunk.record(time_to_first_chunk, attrs)
            if not counted:
                return
            if input_tokens is not None:
                self.input_tokens.add(input_tokens, attrs)
                self.operation_input_tokens.record(input_tokens, attrs)
            if output_tokens is not None:
                self.output_tokens.add(output_tokens, attrs)
                self.operation_output_tokens.record(output_tokens, attrs)
            if cached_input_tokens:  # only when reported (a zero says nothing a dashboard can use)
                self.cache_read_tokens.add(cached_input_tokens, attrs)
            if reasoning_tokens:
                self.reasoning_tokens.add(reasoning_tokens, attrs)
        elif operation == semconv.OP_EMBEDDINGS:
            if duration is not None:
                self.embeddings_duration.record(duration, attrs)
            if counted and input_tokens is not None:
                self.embeddings_input_tokens.record(input_tokens, attrs)
        elif duration is not None:
            self.other_duration.record(duration, attrs)

    def record_retrieval(self, seconds: float, *, provider: Any = None, data_source: Any = None,
                         error_type: str | None = None) -> None:
        """One retrieval (a span API ``retrieve()`` or an auto-instrumented vector store call)."""
        attrs: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_RETRIEVAL}
        if provider:
            attrs[semconv.GEN_AI_PROVIDER_NAME] = str(provider)
        if data_source:
            attrs[semconv.GEN_AI_DATA_SOURCE_ID] = str(data_source)
        if error_type:
            attrs[semconv.ERROR_TYPE] = error_type
        self.retrieval_duration.record(seconds, attrs)
