"""StoreWriter: hooks never block, batches flush by size or by time, stop writes what is queued,
one bad item loses only its own batch."""

from __future__ import annotations

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
