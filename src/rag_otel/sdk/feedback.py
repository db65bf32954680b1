"""User feedback (thumbs, score, comment) tied to the query's trace.

Exported as a ``rag.feedback`` log-record event carrying the query's trace id (so the processor
and any backend can join it to the trace) and recorded in the feedback-score histogram.
Feedback usually arrives in a later request than the answer, so the target can be a trace id
(hex string or int) the app kept, a span or handle, or nothing (the current span).
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from rag_otel import __version__, semconv
from rag_otel.sdk.runtime import SCOPE, get_runtime

logger = logging.getLogger("rag_otel")
_THUMBS = {True: "up", False: "down", "up": "up", "down": "down", -1: "down"}  # 1 == True


def _target_context(target: Any) -> Any:
    """An OTel context whose current span carries the target's trace (and span, if known)."""
    if target is None:
        return None  # the current context
    if isinstance(target, str):
        trace_id = int(target.removeprefix("0x"), 16)
        if not 0 < trace_id < 2**128:
            raise ValueError("trace id must be 32 hex digits and not all zero")
        sc = SpanContext(trace_id, 0, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return trace.set_span_in_context(NonRecordingSpan(sc))
    if isinstance(target, int):
        return _target_context(f"{target:032x}")
    span = getattr(target, "span", target)  # a RagSpan handle or an OTel span
    if not hasattr(span, "get_span_context"):
        raise TypeError(f"feedback target must be a trace id, a span or None, not {type(target).__name__}")
    return trace.set_span_in_context(span)


def record_feedback(
    target: Any = None,
    *,
    score: float | None = None,
    thumbs: bool | str | int | None = None,
    comment: str | None = None,
    user_id: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> bool:
    """Record one piece of feedback; returns False (and logs why) when the input is invalid.

    ``score`` is in [0, 1]; ``thumbs`` up/down (True/False, "up"/"down", 1/-1) implies a score
    of 1 or 0 when no score is given.  The comment is redacted and size-capped like content.
    Never raises into the app: bad input is logged as an error and nothing is recorded.
    """
    try:
        thumb = None if thumbs is None else _THUMBS.get(thumbs if not isinstance(thumbs, str) else thumbs.lower())
        if thumbs is not None and thumb is None:
            raise ValueError(f"thumbs must be up/down, True/False or 1/-1, not {thumbs!r}")
        if score is None and thumb is not None:
            score = 1.0 if thumb == "up" else 0.0
        if score is None:
            raise ValueError("feedback needs a score or thumbs")
        score = float(score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be within [0, 1], not {score}")
        ctx = _target_context(target)
    except (TypeError, ValueError) as e:
        logger.error("rag-otel: feedback not recorded: %s", e)
        return False
    try:
        rt = get_runtime()
        attrs: dict[str, Any] = {semconv.RAG_FEEDBACK_SCORE: score}
        if thumb is not None:
            attrs[semconv.RAG_FEEDBACK_THUMBS] = thumb
        if comment:
            attrs[semconv.RAG_FEEDBACK_COMMENT] = rt.content.clean(comment)[0]
        if user_id:
            key, value = rt.users.attribute(str(user_id)) if rt.users else (semconv.USER_ID, str(user_id))
            attrs[key] = value
        if attributes:
            attrs.update(attributes)
        _logs.get_logger(SCOPE, __version__, logger_provider=rt.logger_provider).emit(
            context=ctx, event_name=semconv.RAG_FEEDBACK_EVENT, body=thumb or score, attributes=attrs,
        )
        metric_attrs = {semconv.RAG_FEEDBACK_THUMBS: thumb} if thumb else None
        rt.instruments.feedback_score.record(score, metric_attrs)
        return True
    except Exception:
        logger.warning("rag-otel: feedback could not be exported (ignored)", exc_info=True)
        return False
