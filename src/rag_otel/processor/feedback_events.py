"""Feedback the SDK's ``record_feedback`` sends as ``rag.feedback`` log records, read into the store.

Without this, feedback recorded in the app reached the downstream backends but never the
processor's own analytics (satisfaction, feedback counts), which only saw ``POST /api/v1/feedback``.
A record is joined to its query by the log record's trace id: feedback on a trace that holds
several questions names the trace, not one of them (the API takes a query id for that).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs

from rag_otel import semconv as sc
from rag_otel.records import Feedback

logger = logging.getLogger(__name__)

_USER_KEYS = (sc.USER_ID, sc.USER_HASH)


def feedback_records(resource_logs: Iterable[ResourceLogs]) -> list[Feedback]:
    """Every valid ``rag.feedback`` event among the log records; invalid ones are skipped with a log line
    (the SDK refuses bad input itself, so these come from hand-made emitters)."""
    out: list[Feedback] = []
    for rl in resource_logs:
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                if lr.event_name != sc.RAG_FEEDBACK_EVENT and not any(
                        kv.key == "event.name" and kv.value.string_value == sc.RAG_FEEDBACK_EVENT
                        for kv in lr.attributes):
                    continue
                attrs = {kv.key: kv.value for kv in lr.attributes}
                score = _number(attrs[sc.RAG_FEEDBACK_SCORE]) if sc.RAG_FEEDBACK_SCORE in attrs else None
                thumbs = attrs[sc.RAG_FEEDBACK_THUMBS].string_value if sc.RAG_FEEDBACK_THUMBS in attrs else None
                if len(lr.trace_id) != 16 or not any(lr.trace_id) or (score is None and thumbs is None) \
                        or (score is not None and not 0.0 <= score <= 1.0) or thumbs not in (None, "up", "down"):
                    logger.warning("rag-otel processor: a rag.feedback record without a trace id, or with a score "
                                   "outside [0, 1] or thumbs other than up/down, was not stored")
                    continue
                user = next((attrs[k].string_value for k in _USER_KEYS if k in attrs), None)
                comment = attrs[sc.RAG_FEEDBACK_COMMENT].string_value if sc.RAG_FEEDBACK_COMMENT in attrs else None
                at = lr.time_unix_nano or lr.observed_time_unix_nano
                out.append(Feedback(trace_id=lr.trace_id.hex(), time=at / 1e9 if at else time.time(), score=score,
                                    thumbs=thumbs, comment=comment or None, user_id=user))
    return out


def _number(value: Any) -> float | None:
    kind = value.WhichOneof("value")
    return float(getattr(value, kind)) if kind in ("double_value", "int_value") else None
