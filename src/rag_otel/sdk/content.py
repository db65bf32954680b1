"""Content policy: what prompts, answers and documents may leave the process, redacted and capped.

Nothing is captured unless the user opts in (``content.capture`` or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).  When it is, every string passes the
redaction step and a size cap before it becomes an attribute.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rag_otel import semconv
from rag_otel.config import Content
from rag_otel.sdk.secret_patterns import SECRET_PATTERNS

_BUILTIN_PATTERNS = SECRET_PATTERNS  # documented in rag_otel.sdk.secret_patterns


# Characters scanned past the cap: a secret shorter than half of it that crosses the cut is
# redacted whole (API keys, tokens, cards, e-mails are far shorter; a JWT may not be).
_CAP_MARGIN = 1024


def _luhn_ok(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


def _sub_group(m: re.Match[str], replacement: str) -> str:
    """``m``'s text with its first group replaced (the whole match when the group did not take part)."""
    start, end = m.span(1)
    if start < 0:
        return replacement
    return m.group()[: start - m.start()] + replacement + m.group()[end - m.start():]


class ContentPolicy:
    """Decides whether content is captured and turns it into safe attribute values."""

    def __init__(self, content: Content) -> None:
        self.capture = content.capture
        self.max_chars = content.max_chars
        self._redact = content.redact
        pats = [(label, re.compile(p), anchors) for label, p, anchors in _BUILTIN_PATTERNS]
        pats += [("custom", re.compile(p), ()) for p in content.redact_patterns]
        self._patterns = pats

    @property
    def enabled(self) -> bool:
        """True when any content may be recorded (for scoring or for export)."""
        return self.capture != "none"

    def redact(self, text: str) -> str:
        if not self._redact or not text:
            return text
        lowered = text.lower()
        for label, pat, anchors in self._patterns:
            if anchors and not any(a in lowered for a in anchors):
                continue  # cannot match: skip the regex pass
            if label == "card":
                text = pat.sub(
                    lambda m: "[REDACTED:card]" if _luhn_ok(re.sub(r"\D", "", m.group())) else m.group(),
                    text,
                )
            elif pat.groups and label != "custom":  # only the secret: "https://user:[REDACTED:password]@host"
                text = pat.sub(lambda m, label=label: _sub_group(m, f"[REDACTED:{label}]"), text)
            else:
                text = pat.sub(f"[REDACTED:{label}]", text)
        return text

    def clean(self, text: Any) -> tuple[str, bool]:
        """Redacted and capped text, and whether it was truncated.

        Cap first, then redact: only the head that can be kept is scanned (a 5 MB answer costs what
        its first ``max_chars`` do).  The head is scanned ``_CAP_MARGIN`` characters past the cap,
        so a secret crossing the cut is matched whole and masked before the cut, never kept half;
        when masking shrinks the head so that unscanned text would move inside the cap, the head
        grows and is scanned again."""
        s = text if isinstance(text, str) else json.dumps(text, default=str, ensure_ascii=False)
        limit = self.max_chars
        if not self._redact:
            return (s[:limit], True) if len(s) > limit else (s, False)
        window = limit + _CAP_MARGIN
        while True:
            head = s[:window]
            out = self.redact(head)
            if len(head) == len(s) or len(out) >= limit + _CAP_MARGIN // 2:
                break
            window += limit + _CAP_MARGIN - len(out)
        if len(out) > limit:
            return out[:limit], True
        return out, False

    def set(self, span: Any, key: str, value: Any) -> None:
        """Set a content attribute on ``span`` only when capture is on (redacted, capped)."""
        if not self.enabled or value is None:
            return
        s, truncated = self.clean(value)
        span.set_attribute(key, s)
        if truncated:
            span.set_attribute(semconv.RAG_CONTENT_TRUNCATED, True)
