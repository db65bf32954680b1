"""OTLP/JSON <-> protobuf.

OTLP/JSON is the proto3 JSON mapping with one difference protobuf's ``json_format`` does not
know: trace and span ids are lowercase hex strings, not base64.  We convert the id fields at
their known places before parsing, and ignore unknown fields as the OTLP spec requires.
A malformed id becomes an empty id, so the validator refuses that one span or log record
(``partial_success``) instead of the whole request.
"""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


class JsonDecodeError(ValueError):
    """The body is not OTLP/JSON for the expected request type."""


def _hex_ids_to_base64(obj: dict[str, Any]) -> None:
    for key in _ID_KEYS:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError:
                obj[key] = ""  # refused later as an invalid id, with the rest of the batch kept


def _each(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _fix_ids(doc: dict[str, Any]) -> None:
    for rs in _each(doc, "resourceSpans"):
        for ss in _each(rs, "scopeSpans"):
            for span in _each(ss, "spans"):
                _hex_ids_to_base64(span)
                for link in _each(span, "links"):
                    _hex_ids_to_base64(link)
    for rl in _each(doc, "resourceLogs"):
        for sl in _each(rl, "scopeLogs"):
            for record in _each(sl, "logRecords"):
                _hex_ids_to_base64(record)
    for rm in _each(doc, "resourceMetrics"):
        for sm in _each(rm, "scopeMetrics"):
            for metric in _each(sm, "metrics"):
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                    for point in _each(metric.get(kind) or {}, "dataPoints"):
                        for exemplar in _each(point, "exemplars"):
                            _hex_ids_to_base64(exemplar)


def parse(body: bytes, message: M) -> M:
    """Fill ``message`` from an OTLP/JSON body; raise :class:`JsonDecodeError` with the reason."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise JsonDecodeError(f"body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise JsonDecodeError("OTLP/JSON body must be a JSON object")
    _fix_ids(doc)
    try:
        return json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as e:
        raise JsonDecodeError(f"not a valid {message.DESCRIPTOR.name}: {e}") from None


def dumps(message: Message) -> bytes:
    """OTLP/JSON for our responses (which carry no ids): the plain proto3 JSON mapping."""
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()
