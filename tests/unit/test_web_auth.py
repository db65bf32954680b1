"""Token resolution and Jaeger links: the small pure pieces of the web app."""

from __future__ import annotations

import pytest

from rag_otel.config import ConfigError
from rag_otel.web.auth import resolve_token
from rag_otel.web.deps import trace_url


def test_no_variable_named_means_auth_off() -> None:
    assert resolve_token(None, {"X": "y"}) is None


def test_the_named_variable_holds_the_token() -> None:
    assert resolve_token("API_TOKEN", {"API_TOKEN": "abc"}) == "abc"


@pytest.mark.parametrize("env", [{}, {"API_TOKEN": ""}])
def test_a_named_variable_that_is_unset_or_empty_is_a_config_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="API_TOKEN"):
        resolve_token("API_TOKEN", env)


def test_trace_links_only_with_a_jaeger_address() -> None:
    tid = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_url("http://jaeger:16686/", tid) == f"http://jaeger:16686/trace/{tid}"
    assert trace_url("http://jaeger:16686", tid) == f"http://jaeger:16686/trace/{tid}"
    assert trace_url(None, tid) is None
    assert trace_url("http://jaeger:16686", None) is None
