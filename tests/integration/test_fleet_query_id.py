"""The fleet store takes schema v5 as the file does: a v4 DuckLake (PostgreSQL catalog, real server started
here) upgrades in place, its rows keep their trace id as query id, and a trace's several questions are
stored and read back each by its own query id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_otel.records import Feedback
from rag_otel.store import store as store_module
from rag_otel.store.lake import LakeStore
from rag_otel.store.schema import SCHEMA_VERSION
from tests.support.postgres import Postgres
from tests.support.store_data import text_config
from tests.unit.test_store_query_id import BATCH, T, unit, write_v4_rows


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with Postgres() as server:
        yield server


def test_a_v4_lake_upgrades_and_keeps_one_record_per_question(pg: Postgres, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"ducklake:postgres:{pg.createdb('upgrade')}"
    now = time.time() - 60
    with monkeypatch.context() as m:
        m.setattr(store_module, "SCHEMA_VERSION", 4)
        with LakeStore.open_lake(url, data_path=str(tmp_path)) as old:
            assert old.schema_version == 4
            write_v4_rows(old, now)
    with LakeStore.open_lake(url, config=text_config()) as lake:
        assert lake.schema_version == SCHEMA_VERSION == 5
        detail = lake.query_detail(T)
        assert detail is not None and detail["query_id"] == T and [f["comment"] for f in detail["feedback"]] == [
            "great"]
        lake.write_records([unit(6, "How do I descale my kettle?", now + 1), unit(7, "Is limescale covered?", now + 2)])
        lake.write_feedback(Feedback(BATCH, now + 3, thumbs="down", query_id=f"{BATCH}-{7:016x}"))
        two = lake.query_detail(f"{BATCH}-{7:016x}")
        assert two["query_text"] == "Is limescale covered?" and [f["thumbs"] for f in two["feedback"]] == ["down"]
        assert lake.query_detail(f"{BATCH}-{6:016x}")["feedback"] == []
        assert lake.count("queries") == 3
