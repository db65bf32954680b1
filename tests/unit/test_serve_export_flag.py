"""``--export URL#signals``: which signals a downstream endpoint takes."""

from __future__ import annotations

import argparse

import pytest

from rag_otel.config import ConfigError, Endpoint, ModelObservation, load_config
from rag_otel.processor.serve_cmd import apply_flags


def test_plain_url_takes_every_signal() -> None:
    assert Endpoint.from_flag("http://collector:4318").signals == ["traces", "metrics", "logs"]


def test_suffix_selects_signals() -> None:
    e = Endpoint.from_flag("grpc://jaeger:4317#traces")
    assert (e.url, e.signals) == ("grpc://jaeger:4317", ["traces"])
    assert Endpoint.from_flag("http://prom:4318#metrics,logs").signals == ["metrics", "logs"]


@pytest.mark.parametrize("flag", ["grpc://j:4317#spans", "grpc://j:4317#", "grpc://j:4317#traces,bogus"])
def test_bad_suffix_is_a_clear_error(flag: str) -> None:
    with pytest.raises(ConfigError, match="traces, metrics, logs"):
        Endpoint.from_flag(flag)


def test_serve_flags_build_the_endpoints() -> None:
    args = argparse.Namespace(export=["grpc://jaeger:4317#traces", "http://c:4318"], otlp_grpc=None,
                              otlp_http=None, http=None, data_dir=None)
    exports = apply_flags(ModelObservation(), args).processor.exports
    assert [(e.url, e.signals) for e in exports] == [("grpc://jaeger:4317", ["traces"]),
                                                     ("http://c:4318", ["traces", "metrics", "logs"])]


def test_config_file_signals(tmp_path) -> None:
    f = tmp_path / "rag-otel.yaml"
    f.write_text("model_observation:\n  processor:\n    exports:\n"
                 "      - {url: 'grpc://jaeger:4317', signals: [traces]}\n      - {url: 'http://c:4318'}\n")
    exports = load_config(str(f)).processor.exports
    assert exports[0].signals == ["traces"] and exports[1].signals == ["traces", "metrics", "logs"]
    f.write_text("model_observation:\n  processor:\n    exports:\n      - {url: 'grpc://j:4317', signals: [spans]}\n")
    with pytest.raises(ConfigError):
        load_config(str(f))
