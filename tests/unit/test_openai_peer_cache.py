"""``peer_instrumentation`` caches its wrapper-chain walk per class: a peer that wraps (or stops
wrapping) ``create`` or the client's ``request`` after a first call must still be seen at once."""

from __future__ import annotations

from typing import Any

import pytest
import wrapt

from rag_otel.sdk.instrumentors.openai import peer_instrumentation


def _wrapper_from(module: str) -> Any:
    """A real wrapt wrapper function whose ``__module__`` claims to come from ``module``."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    wrapper.__module__ = module
    return wrapper


class _Client:
    def request(self) -> str:
        return "ok"


class _Resource:
    def __init__(self) -> None:
        self._client = _Client()

    def create(self) -> str:
        return "ok"


@pytest.fixture
def classes() -> Any:
    """Fresh subclasses per test, so patching them leaves the module's classes alone."""
    client_cls = type("Client", (_Client,), {})
    resource_cls = type("Resource", (_Resource,), {})
    instance = resource_cls()
    instance._client = client_cls()
    return resource_cls, client_cls, instance


def test_a_peer_wrapping_create_after_a_first_call_is_seen(classes):
    resource_cls, _, instance = classes
    assert peer_instrumentation(instance) is None  # walked and cached: no peer
    resource_cls.create = wrapt.FunctionWrapper(_Resource.create, _wrapper_from("openlit.instrumentation.openai"))
    assert peer_instrumentation(instance) == "openlit"
    resource_cls.create = _Resource.create  # the peer uninstruments
    assert peer_instrumentation(instance) is None


def test_a_peer_wrapping_the_clients_request_is_seen_and_forgotten(classes):
    _, client_cls, instance = classes
    assert peer_instrumentation(instance) is None
    # openlit is not installed, so whether it is "active" cannot depend on what other tests did
    # to a real peer's instrumentor (OpenInference's is instrumented and removed elsewhere).
    client_cls.request = wrapt.FunctionWrapper(_Client.request, _wrapper_from("openlit.instrumentation.openai"))
    assert peer_instrumentation(instance) == "openlit"
    del client_cls.request  # back to the inherited, unwrapped method
    assert peer_instrumentation(instance) is None


def test_our_own_wrapper_is_not_a_peer(classes):
    resource_cls, _, instance = classes
    resource_cls.create = wrapt.FunctionWrapper(_Resource.create, _wrapper_from("rag_otel.sdk.instrumentors.openai"))
    assert peer_instrumentation(instance) is None
