"""`rag-otel analytics`: JSON and tables over a store file, Parquet export, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from rag_otel.cli import main
from rag_otel.store import FILENAME, TABLES, Store
from tests.support.store_data import fill, generate, text_config

RANGE = ["--from", "2026-11-15", "--to", "2026-11-20"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    with Store.open(d, config=text_config()) as store:
        fill(store, generate(days=3, per_day=40))
    return d


def test_json_output_is_the_function_result(data_dir, capsys):
    assert main(["analytics", "performance", "--data-dir", str(data_dir), *RANGE, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"] == 120 and out["period"]["start"] == "2026-11-15T00:00:00Z"
    assert main(["analytics", "user_behavior", "--data-dir", str(data_dir), *RANGE, "--user", "user-01",
                 "--json"]) == 0
    users = json.loads(capsys.readouterr().out)["users"]
    assert [u["user_id"] for u in users] == ["user-01"]


def test_tables_for_all_analyses(data_dir, capsys):
    assert main(["analytics", "all", "--data-dir", str(data_dir), *RANGE]) == 0
    out = capsys.readouterr().out
    for title in ("performance", "quality: axes", "query_patterns: topics", "model_usage_and_cost: models",
                  "system_usage: bottlenecks", "p95_latency_s"):
        assert title in out


def test_export_writes_parquet(data_dir, tmp_path, capsys):
    assert main(["analytics", "export", "--data-dir", str(data_dir), "--out", str(tmp_path)]) == 0
    files = capsys.readouterr().out.split()
    assert sorted(Path(f).stem for f in files) == sorted(TABLES)  # every table, query_details too
    con = duckdb.connect()
    assert con.execute("SELECT count(*) FROM read_parquet(?)", [str(tmp_path / "queries.parquet")]).fetchone()[0] == 120


def test_errors_are_clear(tmp_path, capsys):
    (tmp_path / FILENAME).write_bytes(b"not a database at all" * 100)
    assert main(["analytics", "quality", "--data-dir", str(tmp_path)]) == 1
    assert "not a rag-otel store" in capsys.readouterr().err
    assert main(["analytics", "quality", "--data-dir", str(tmp_path / "missing")]) == 1
    assert "no rag-otel store" in capsys.readouterr().err
    assert main(["analytics", "quality", "--period", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err
    assert main(["analytics", "export", "--data-dir", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err
