"""Where the CLI finds a running serve: ``--server``, then ``$RAG_OTEL_SERVER``, then ``processor.http``."""

from __future__ import annotations

import pytest

from rag_otel.config import ModelObservation
from rag_otel.remote import Server, server_for, server_url


@pytest.mark.parametrize(("address", "url"), [
    ("127.0.0.1:8686", "http://127.0.0.1:8686"),
    ("0.0.0.0:8686", "http://127.0.0.1:8686"),  # a wildcard listen address is reached on this host
    (":9000", "http://127.0.0.1:9000"),
    ("[::]:8686", "http://[::1]:8686"),
    ("rag-otel.internal:8686", "http://rag-otel.internal:8686"),
    ("https://obs.example.org/rag/", "https://obs.example.org/rag"),
])
def test_server_url(address: str, url: str) -> None:
    assert server_url(address) == url


def test_explicit_beats_env_beats_config_and_the_token_comes_from_the_named_variable() -> None:
    cfg = ModelObservation()
    cfg.processor.http = "0.0.0.0:7000"
    assert server_for(cfg, env={}) == Server("http://127.0.0.1:7000")
    env = {"RAG_OTEL_SERVER": "obs.internal:8686"}
    assert server_for(cfg, env=env).url == "http://obs.internal:8686"
    assert server_for(cfg, "http://other:1", env=env).url == "http://other:1"
    cfg.processor.api_token_env = "MY_TOKEN"
    assert server_for(cfg, env={"MY_TOKEN": "t0k"}) == Server("http://127.0.0.1:7000", "t0k", "MY_TOKEN")
    assert server_for(cfg, env={}).token is None  # unset: the server's 401 then names the variable
