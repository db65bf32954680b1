"""Optional bearer-token auth for the API and the live feed.

The token comes from the environment variable ``processor.api_token_env`` names, so it never sits in
the config file.  ``/health``, ``/metrics``, the dashboard page and its static files stay open:
they carry no data (the page asks for the token and sends it with every API call).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from fastapi import HTTPException, Request, WebSocket

from rag_otel.config import ConfigError


def resolve_token(env_name: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The configured token, None when auth is off; a named but unset variable is a config error."""
    if not env_name:
        return None
    token = (env if env is not None else os.environ).get(env_name)
    if not token:
        raise ConfigError(f"processor.api_token_env names {env_name}, which is not set (or empty)")
    return token


def _matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries ``Authorization: Bearer <token>``."""
    expected = request.app.state.api_token
    if expected is not None and not _matches(expected, _bearer(request.headers.get("authorization"))):
        raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})


def websocket_allowed(ws: WebSocket) -> bool:
    """Browsers cannot set headers on a WebSocket, so the token may also come as ``?token=``."""
    expected = ws.app.state.api_token
    if expected is None:
        return True
    return _matches(expected, _bearer(ws.headers.get("authorization")) or ws.query_params.get("token"))
