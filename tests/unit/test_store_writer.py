"""StoreWriter: hooks never block, batches flush by size or by time, stop writes what is queued,
one bad item loses only its own batch."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from rag_otel.records import Feedback
from rag_otel.store import Store, StoreWriter
from tests.support.store_data import generate


def wait_count(store: Store, table: str, n: int, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while store.count(table) < n:
        assert time.monotonic() - t0 < timeout, f"{table}: {store.count(table)} < {n}"
        time.sleep(0.02)
    return time.monotonic() - t0


def test_full_batches_go_out_without_waiting_for_the_interval(tmp_path):
    ds = generate(days=1, per_day=100)
    with Store.open(tmp_path) as store:
        w = StoreWriter(store, batch_size=50, flush_interval=30, backlog_factor=1).start()
        for r in ds.records:
            w.on_record(r)
        assert wait_count(store, "queries", 100) < 5
        w.stop(5)  # first: the writer counts a batch just after its commit, which the row count can see sooner
        assert w.stats.written == 100 and w.stats.flushes == 2


def test_a_backlog_is_written_in_bigger_transactions(tmp_path):
    ds = generate(days=1, per_day=500)
    with Store.open(tmp_path) as store:
        w = StoreWriter(store, batch_size=50, flush_interval=30, backlog_factor=4)
        for r in ds.records:
            w.on_record(r)  # queued before the thread runs: a backlog of 500
        w.start()
        assert w.flush(30)  # done counts after a flush's stats: the rows alone can be visible a moment earlier
        assert store.count("queries") == 500
        assert w.stats.flushes == 3  # 200 + 200 + 100, not ten batches of 50
        w.stop(5)


def test_a_partial_batch_goes_out_after_the_interval_and_all_kinds_are_written(tmp_path):
    ds = generate(days=1, per_day=7)
    with Store.open(tmp_path) as store:
        w = StoreWriter(store, batch_size=100, flush_interval=0.2).start()
        for r in ds.records:
            w.on_record(r)
        w.on_system(ds.system[0])
        w.on_alert(ds.alerts[0])
        w.on_feedback(Feedback(ds.records[0].trace_id, ds.records[0].end_time, thumbs="up"))
        assert w.flush(5)
        assert [store.count(t) for t in ("queries", "system_samples", "alerts", "feedback")] == [7, 1, 1, 1]
        w.stop(5)


def test_stop_writes_what_is_queued(tmp_path):
    ds = generate(days=1, per_day=10)
    with Store.open(tmp_path) as store:
        w = StoreWriter(store, batch_size=100, flush_interval=60).start()
        for r in ds.records:
            w.on_record(r)
        assert w.stop(5)
        assert store.count("queries") == 10


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    ds = generate(days=1, per_day=8)
    with Store.open(tmp_path) as store:
        w = StoreWriter(store, max_queue=5)  # not started: nothing drains
        t0 = time.monotonic()
        for r in ds.records:
            w.on_record(r)
        assert time.monotonic() - t0 < 0.5 and w.stats.dropped == 3
        w.start()
        assert w.stop(5) and store.count("queries") == 5


def test_a_bad_item_loses_only_its_own_write(tmp_path):
    ds = generate(days=1, per_day=3)
    with Store.open(tmp_path) as store:
        w = StoreWriter(store, batch_size=100, flush_interval=0.1).start()
        w.on_feedback(Feedback("t", 1.0, score=7.0))  # out of range: refused by the store
        for r in ds.records:
            w.on_record(r)
        assert w.flush(5)
        assert store.count("queries") == 3 and store.count("feedback") == 0 and w.stats.failed_batches == 1
        w.on_record(generate(seed=99, days=1, per_day=1).records[0])  # the thread lives on
        assert w.flush(5) and store.count("queries") == 4
        w.stop(5)


def test_retention_runs_when_the_writer_starts(tmp_path):
    old = generate(days=1, per_day=5, end=datetime.now(timezone.utc) - timedelta(days=400)).records
    with Store.open(tmp_path) as store:
        store.write_records(old)
        w = StoreWriter(store).start()
        wait_for = time.monotonic() + 5
        while store.count("queries") and time.monotonic() < wait_for:
            time.sleep(0.02)
        assert store.count("queries") == 0 and store.count("rollups") == 0
        w.stop(5)


def test_a_poison_record_is_split_out_and_set_aside_while_its_batch_is_stored(tmp_path):
    """input_tokens = 2^63-1 overflows the batch's rollup upsert (the issue lost all 100 records): the writer
    sets it aside before writing (stored alone, it would overflow its rollup bucket for every later batch),
    stores the 99 others, and keeps the poison in the dead-letter file, counted."""
    records = generate(days=1, per_day=100).records
    poison = records[37]
    poison.input_tokens = 2**63 - 1
    with Store.open(tmp_path) as store:
        w = StoreWriter(store, batch_size=100, flush_interval=0.1).start()
        for r in records:
            w.on_record(r)
        assert w.flush(10)
        ids = {row[0] for row in store.sql("SELECT trace_id FROM queries")}
        stats = w.stats
        w.stop(5)
    assert len(ids) == 99 and poison.trace_id not in ids
    assert stats.written == 99 and stats.dead_lettered == 1 and stats.failed_batches == 0
    (line,) = (tmp_path / "dead-letter.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry["type"] == "QueryRecord" and entry["item"]["trace_id"] == poison.trace_id
    assert "out-of-range values: record.input_tokens" in entry["error"]
    assert entry["item"]["input_tokens"] == 2**63 - 1 and entry["write"] == "write_records" and entry["error"]


def test_a_failed_batch_is_split_and_only_the_item_the_store_refuses_is_set_aside(tmp_path):
    good = [Feedback(f"t{i}", 1.0, score=i / 10) for i in range(10)]
    bad = Feedback("t-bad", 1.0, score=7.0)  # out of range: the store refuses it, and with it the transaction
    with Store.open(tmp_path) as store:
        w = StoreWriter(store, batch_size=100, flush_interval=0.1).start()
        for f in [*good[:6], bad, *good[6:]]:
            w.on_feedback(f)
        assert w.flush(5)
        stored = {row[0] for row in store.sql("SELECT trace_id FROM feedback")}
        stats = w.stats
        w.stop(5)
    assert stored == {f.trace_id for f in good}
    assert stats.dead_lettered == 1 and stats.failed_batches >= 2  # 11, then halves, down to the one
    (line,) = (tmp_path / "dead-letter.jsonl").read_text().splitlines()
    assert json.loads(line)["item"]["trace_id"] == "t-bad"
