"""rag.feedback log records from emitters other than our SDK: the valid ones are read (by event_name or
the older event.name attribute, int or double score), the invalid ones skipped, other log records ignored."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs

from rag_otel.processor.feedback_events import feedback_records

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def record(attrs: dict, *, event_name: str = "rag.feedback", trace_id: bytes = TRACE) -> LogRecord:
    kvs = []
    for k, v in attrs.items():
        value = (AnyValue(string_value=v) if isinstance(v, str) else AnyValue(int_value=v) if isinstance(v, int)
                 else AnyValue(double_value=v))
        kvs.append(KeyValue(key=k, value=value))
    return LogRecord(event_name=event_name, trace_id=trace_id, time_unix_nano=1_700_000_000_000_000_000,
                     attributes=kvs)


def logs(*records: LogRecord) -> list[ResourceLogs]:
    rl = ResourceLogs()
    rl.scope_logs.add().log_records.extend(records)
    return [rl]


def test_valid_feedback_is_read_and_the_rest_skipped() -> None:
    got = feedback_records(logs(
        record({"rag.feedback.score": 0.5, "user.hash": "ab12"}),
        record({"rag.feedback.score": 1, "event.name": "rag.feedback"}, event_name=""),  # older emitters
        record({"rag.feedback.thumbs": "down", "rag.feedback.comment": "wrong plan"}),
        record({"rag.feedback.score": 1.5}),  # out of range
        record({"rag.feedback.thumbs": "sideways"}),
        record({"rag.feedback.score": 0.5}, trace_id=b""),  # joined to nothing
        record({"rag.feedback.comment": "no score"}),
        record({"rag.feedback.score": 0.5}, event_name="gen_ai.choice"),  # another event
    ))
    assert [(f.trace_id, f.score, f.thumbs, f.comment, f.user_id, f.time) for f in got] == [
        (TRACE.hex(), 0.5, None, None, "ab12", 1_700_000_000.0),
        (TRACE.hex(), 1.0, None, None, None, 1_700_000_000.0),
        (TRACE.hex(), None, "down", "wrong plan", None, 1_700_000_000.0),
    ]
