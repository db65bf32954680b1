"""record_feedback: a rag.feedback log-record event joined to the query's trace, plus the histogram."""

from __future__ import annotations

import logging

import pytest

from rag_otel import rag_query, record_feedback, semconv
from rag_otel.sdk.testing import Captured, capture


@pytest.fixture
def t() -> Captured:
    with capture() as c:
        yield c


def test_feedback_on_a_handle_is_tied_to_the_query_trace(t: Captured) -> None:
    with rag_query() as q:
        pass
    assert record_feedback(q, score=0.8, comment="great, mail me at bob@example.com", user_id="u1") is True
    (rec,) = t.logs()
    ctx = q.span.get_span_context()
    assert rec.event_name == semconv.RAG_FEEDBACK_EVENT
    assert rec.trace_id == ctx.trace_id and rec.span_id == ctx.span_id
    assert rec.attributes[semconv.RAG_FEEDBACK_SCORE] == 0.8
    assert rec.attributes[semconv.RAG_FEEDBACK_COMMENT] == "great, mail me at [REDACTED:email]"
    assert rec.attributes[semconv.USER_ID] == "u1"
    (point,) = t.metric_points(semconv.METRIC_RAG_FEEDBACK_SCORE)
    assert point.count == 1 and point.sum == pytest.approx(0.8)


def test_feedback_by_trace_id_from_a_later_request(t: Captured) -> None:
    with rag_query() as q:
        pass
    trace_hex = f"{q.span.get_span_context().trace_id:032x}"  # what an app sends to its client
    assert record_feedback(trace_hex, thumbs="down") is True
    (rec,) = t.logs()
    assert rec.trace_id == q.span.get_span_context().trace_id
    assert rec.attributes[semconv.RAG_FEEDBACK_THUMBS] == "down"
    assert rec.attributes[semconv.RAG_FEEDBACK_SCORE] == 0.0  # thumbs down implies 0


def test_feedback_inside_the_query_uses_the_current_span(t: Captured) -> None:
    with rag_query() as q:
        assert record_feedback(thumbs=True)
    (rec,) = t.logs()
    assert rec.trace_id == q.span.get_span_context().trace_id
    assert rec.attributes[semconv.RAG_FEEDBACK_SCORE] == 1.0


@pytest.mark.parametrize(
    ("target", "kwargs", "why"),
    [
        (None, {"score": 1.5}, "within [0, 1]"),
        (None, {}, "needs a score or thumbs"),
        (None, {"thumbs": "sideways"}, "thumbs must be"),
        ("not-hex", {"score": 0.5}, "invalid literal"),
        ("0" * 32, {"score": 0.5}, "not all zero"),
        (object(), {"score": 0.5}, "feedback target"),
    ],
)
def test_bad_feedback_is_refused_with_a_clear_error_and_never_raises(
    t: Captured, caplog: pytest.LogCaptureFixture, target: object, kwargs: dict, why: str,
) -> None:
    caplog.set_level(logging.ERROR, logger="rag_otel")
    assert record_feedback(target, **kwargs) is False
    assert t.logs() == [] and t.metric_points(semconv.METRIC_RAG_FEEDBACK_SCORE) == []
    assert any(why in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
