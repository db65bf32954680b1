"""Who asked: user, session, conversation and product features of the current request.

Values come from explicit API arguments or, for web apps, from configurable request headers
(``telemetry.request_headers``), read by the FastAPI server hook into a context variable that
``rag_query`` consults.  Nothing is ever invented: a missing header means a missing attribute.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from rag_otel import semconv
from rag_otel.config import RequestHeaders, Telemetry

_MAX_VALUE = 256  # a header value longer than this is cut: it is an id, not content


@dataclass(frozen=True, slots=True)
class RequestIdentity:
    user_id: str | None = None
    session_id: str | None = None
    conversation_id: str | None = None
    features: tuple[str, ...] = ()


request_identity: contextvars.ContextVar[RequestIdentity | None] = contextvars.ContextVar(
    "rag_otel_request_identity", default=None
)


def split_features(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"streaming, citations"`` or an iterable -> ``("streaming", "citations")`` (deduplicated)."""
    if not raw:
        return ()
    items = raw.split(",") if isinstance(raw, str) else raw
    out: dict[str, None] = {}
    for item in items:
        s = str(item).strip()
        if s:
            out[s] = None
    return tuple(out)


def identity_from_headers(headers: Iterable[tuple[bytes, bytes]], names: RequestHeaders) -> RequestIdentity | None:
    """Read ASGI ``scope["headers"]`` (lowercase byte pairs) using the configured header names."""
    wanted = {
        names.user_id.lower().encode("latin-1"): "user_id",
        names.session_id.lower().encode("latin-1"): "session_id",
        names.conversation_id.lower().encode("latin-1"): "conversation_id",
        names.features.lower().encode("latin-1"): "features",
    }
    found: dict[str, str] = {}
    for key, value in headers:
        field = wanted.get(key.lower())
        if field is not None and value:
            found[field] = value.decode("latin-1").strip()[:_MAX_VALUE]
    if not found:
        return None
    return RequestIdentity(
        user_id=found.get("user_id") or None,
        session_id=found.get("session_id") or None,
        conversation_id=found.get("conversation_id") or None,
        features=split_features(found.get("features")),
    )


def identity_from_fastapi(names: RequestHeaders) -> RequestIdentity | None:
    """Headers of the request FastAPI's built-in telemetry is handling (FastAPI >= 0.16x exposes it
    as ``fastapi.telemetry.get_telemetry_data()``), for apps traced by FastAPI itself rather than by
    opentelemetry-instrumentation-fastapi.  Costs one dict lookup when FastAPI is not loaded."""
    mod = sys.modules.get("fastapi.telemetry")
    get_data = getattr(mod, "get_telemetry_data", None) if mod is not None else None
    if get_data is None:
        return None
    data = get_data()
    request = getattr(data, "request", None) if data is not None else None
    if request is None:
        return None
    return identity_from_headers(request.scope.get("headers") or (), names)


class UserHasher:
    """``user.hash`` = sha256(salt + user id); the salt comes from ``telemetry.hash_salt_env``.

    Why a salt: a bare sha256 of an e-mail address is reversible by dictionary.  Without the
    salt variable the hash is still stable (so distinct-user counts work) but unsalted, and a
    warning says so once.
    """

    def __init__(self, telemetry: Telemetry) -> None:
        self.enabled = telemetry.hash_user_id
        self._salt_env = telemetry.hash_salt_env
        self._salt: bytes | None = None

    def attribute(self, user_id: str) -> tuple[str, str]:
        """(attribute name, value) to put on the span for this user."""
        if not self.enabled:
            return semconv.USER_ID, user_id
        if self._salt is None:
            salt = os.environ.get(self._salt_env, "")
            if not salt:
                from rag_otel.sdk.runtime import log_once  # here: runtime imports this module

                log_once(
                    "user-salt",
                    "rag-otel: hash_user_id is on but $%s is empty; user.hash is an unsalted sha256", self._salt_env,
                )
            self._salt = salt.encode()
        return semconv.USER_HASH, hashlib.sha256(self._salt + user_id.encode()).hexdigest()
