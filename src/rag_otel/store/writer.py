"""Batched writes off the receive path: hooks enqueue, one thread writes.

The processor's hooks only put items on a bounded queue (never blocking: a full queue drops the
item and counts it), so a slow disk cannot stall OTLP intake.  The writer thread flushes every
``batch_size`` query records (at least the store's ``min_batch``) or every ``flush_interval``
seconds, whichever comes first, one transaction per flush (up to ``backlog_factor`` x
``batch_size`` when a backlog is already queued), and applies retention hourly (unless
``retention_every`` is None: a fleet store's retention is the maintenance leader's job).

A store that is *away* (the fleet store's catalog or data path unreachable: an error the store
calls transient) loses nothing: the writer keeps the batch and retries it with backoff, while new
items wait in the bounded queue; :meth:`backlog_full` tells the pipeline to refuse intake with
back-pressure before that queue could overflow, so senders retry instead of data being dropped.

One bad item must not cost its batch: a write that fails is split in halves and retried, down to
single items, so only the item that cannot be written is set aside: counted (``dead_lettered``),
logged, and appended as a JSON line to ``dead-letter.jsonl`` beside the store file, where an
operator can read it (and, once the cause is fixed, replay it).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_otel.records import AlertEvent, Feedback, IngestionRecord, QueryRecord, SystemSample
from rag_otel.store.store import Store
from rag_otel.value_limits import bound_values

logger = logging.getLogger("rag_otel.store")
_STOP = object()


@dataclass
class WriterStats:
    written: int = 0
    system_written: int = 0
    alerts_written: int = 0
    dropped: int = 0
    failed_batches: int = 0
    dead_lettered: int = 0  # items no write could take: set aside in the dead-letter file
    flushes: int = 0
    retries: int = 0  # writes retried because the store was away
    unavailable: bool = False  # the last write attempt found the store away
    last_error: str | None = None


class StoreWriter:
    """Subscribe with :meth:`attach` (pipeline hooks) and :attr:`on_alert` (alert engine hook)."""

    def __init__(self, store: Store, *, batch_size: int | None = None, flush_interval: float = 0.5,
                 max_queue: int = 100_000, retention_every: float | None = 3600.0, backlog_factor: int = 10,
                 high_water: float = 0.8, max_backoff: float = 5.0) -> None:
        self.store = store
        # a store whose commit has a high fixed cost (the lake: a catalog transaction) names the fewest
        # records worth one commit; flush_interval still bounds how long a record waits for it
        self.batch_size = batch_size or max(store.config.metrics_collection.batch_size, store.min_batch)
        self.backlog_factor = max(1, backlog_factor)
        self.flush_interval = flush_interval
        self.retention_every = retention_every
        self.stats = WriterStats()
        self._q: queue.Queue[Any] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._flushed = threading.Condition()
        self._enqueued = 0
        self._done = 0
        self._warned = False
        self.high_water = max(1, int(max_queue * high_water))
        self.max_backoff = max_backoff
        self._holding = 0  # items of the batch being written (or retried)
        self._stopping = threading.Event()

    # --- hooks (called on processor threads: never block, never raise) ------------------------
    def on_record(self, record: QueryRecord) -> None:
        self._put(record)

    def on_system(self, sample: SystemSample) -> None:
        self._put(sample)

    def on_ingestion(self, item: IngestionRecord) -> None:
        self._put(item)

    def on_alert(self, event: AlertEvent) -> None:
        self._put(event)

    def on_feedback(self, item: Feedback) -> None:
        self._put(item)

    @property
    def buffered(self) -> int:
        """Items accepted and not yet in the store (queued + the batch in hand)."""
        return self._q.qsize() + self._holding

    def backlog_full(self) -> str | None:
        """Why intake should back off now (the buffer nears its bound), or None."""
        n = self.buffered
        if n >= self.high_water:
            why = "store unreachable" if self.stats.unavailable else "store behind"
            return f"{why}: {n} writes buffered (bound {self._q.maxsize})"
        return None

    def attach(self, pipeline: Any) -> StoreWriter:
        pipeline.on_record.append(self.on_record)
        pipeline.on_system.append(self.on_system)
        if hasattr(pipeline, "on_ingestion"):
            pipeline.on_ingestion.append(self.on_ingestion)
        if hasattr(pipeline, "on_feedback"):
            pipeline.on_feedback.append(self.on_feedback)
        return self

    def _put(self, item: Any) -> None:
        try:
            self._q.put_nowait(item)
            with self._flushed:
                self._enqueued += 1
        except queue.Full:
            self.stats.dropped += 1
            if not self._warned:
                self._warned = True
                logger.warning("rag-otel store: write queue full (%d); dropping items until it drains",
                               self._q.maxsize)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> StoreWriter:
        self._thread = threading.Thread(target=self._run, name="rag-otel-store-writer", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything enqueued so far is written (or failed); True if it was in time."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            target = self._enqueued
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._flushed.wait(left)
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Write what is queued, then stop the thread; True when all of it was written in time."""
        if self._thread is None:
            return True
        self._stopping.set()
        try:
            self._q.put(_STOP, timeout=max(0.0, timeout))
        except queue.Full:
            return False
        self._thread.join(timeout)
        ok = not self._thread.is_alive()
        self._thread = None
        return ok

    # --- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        last_retention = float("-inf")  # apply retention once at start, then every retention_every
        stopping = False
        while not stopping:
            batch: dict[type, list[Any]] = {QueryRecord: [], SystemSample: [], AlertEvent: [], Feedback: [],
                                            IngestionRecord: []}
            n = 0
            deadline = time.monotonic() + self.flush_interval
            while len(batch[QueryRecord]) < self.batch_size:
                try:
                    item = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.setdefault(type(item), []).append(item)
                n += 1
            # A backlog (the disk is slower than intake) is drained in bigger transactions: each one
            # costs about the same fixed amount, so throughput rises while latency stays bounded.
            while not stopping and len(batch[QueryRecord]) < self.batch_size * self.backlog_factor:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.setdefault(type(item), []).append(item)
                n += 1
            if n:
                self._holding = n
                self._write(batch)
                self._holding = 0
                with self._flushed:
                    self._done += n
                    self._flushed.notify_all()
            if self.retention_every is not None and time.monotonic() - last_retention >= self.retention_every:
                last_retention = time.monotonic()
                self._guard(self.store.apply_retention, "retention")

    def _write(self, batch: dict[type, list[Any]]) -> None:
        writes: list[tuple[Callable[[Any], int], list[Any], str]] = [
            (self.store.write_records, self._set_aside_out_of_range(batch[QueryRecord]), "written"),
            (self.store.write_system, batch[SystemSample], "system_written"),
            (self.store.write_alerts, batch[AlertEvent], "alerts_written"),
            (self.store.write_feedbacks, batch[Feedback], ""),
            (self.store.write_ingestion, batch[IngestionRecord], ""),
        ]
        for fn, items, counter in writes:
            if items:
                written = self._write_split(fn, items)
                if counter:
                    setattr(self.stats, counter, getattr(self.stats, counter) + written)
        self.stats.flushes += 1

    def _set_aside_out_of_range(self, records: list[QueryRecord]) -> list[QueryRecord]:
        """Records with numbers no real query has (the pipeline rejects them at normalization; this guards
        every other way in): such a record could be stored alone and then overflow its rollup bucket for
        every later batch, so it is set aside before any write."""
        kept = []
        for r in records:
            if bad := bound_values(copy.copy(r)):
                self._dead_letter("write_records", r, ValueError(
                    "out-of-range values: " + ", ".join(f"{b.field}={b.value!r}" for b in bad)))
            else:
                kept.append(r)
        return kept

    def _write_split(self, fn: Callable[[Any], Any], items: list[Any]) -> int:
        """Write ``items`` (one transaction); on failure, halves are retried on their own, so a poison
        item is isolated in about 2·log2(n) extra transactions and only it is set aside.  Returns how
        many were written."""
        try:
            self._until_reachable(fn, items)
            return len(items)
        except Exception as e:
            if self.store.is_transient(e):  # still away at stop: halves would only wait again
                self._failed(fn.__name__, e)
                return 0
            self.stats.failed_batches += 1
            if len(items) == 1:
                self._dead_letter(fn.__name__, items[0], e)
                return 0
            logger.warning("rag-otel store: %s of %d items failed (%s: %s); retrying in halves",
                           fn.__name__, len(items), type(e).__name__, e)
        mid = len(items) // 2
        return self._write_split(fn, items[:mid]) + self._write_split(fn, items[mid:])

    @property
    def dead_letter_path(self) -> Path:
        path = getattr(self.store, "path", None)
        return (Path(path).parent if path else Path(".")) / "dead-letter.jsonl"

    def _dead_letter(self, what: str, item: Any, error: Exception) -> None:
        self.stats.dead_lettered += 1
        logger.error("rag-otel store: %s cannot write one %s (%s: %s); it is set aside in %s",
                     what, type(item).__name__, type(error).__name__, error, self.dead_letter_path)
        try:
            entry = {"at": time.time(), "write": what, "type": type(item).__name__,
                     "error": f"{type(error).__name__}: {error}",
                     "item": dataclasses.asdict(item) if dataclasses.is_dataclass(item) else repr(item)}
            with self.dead_letter_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, default=repr) + "\n")
        except Exception:
            logger.exception("rag-otel store: could not append to %s", self.dead_letter_path)

    def _guard(self, fn: Callable[..., Any], what: str, *args: Any) -> bool:
        try:
            self._until_reachable(fn, *args)
            return True
        except Exception as e:
            return self._failed(what, e)

    def _until_reachable(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn``; while the store is away (an error it calls transient) wait with backoff, reconnect
        and call again, so nothing is lost while it is gone.  Other errors (and a store still away at
        stop, once the backoff is at its cap) are raised to the caller."""
        backoff = 0.1
        while True:
            try:
                fn(*args)
            except Exception as e:
                if not self.store.is_transient(e) or (self._stopping.is_set() and backoff >= self.max_backoff):
                    raise
                self._away(e)
                time.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)
                try:
                    self.store.recover()
                except Exception as again:  # still away: try once more after the next backoff
                    logger.debug("rag-otel store: reconnect failed: %s", again)
                continue
            if self.stats.unavailable:
                logger.warning("rag-otel store: reachable again; %d buffered writes are going in", self.buffered)
                self.stats.unavailable = False
            return

    def _away(self, e: Exception) -> None:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if not self.stats.unavailable:
            logger.warning("rag-otel store: unreachable (%s); holding writes (%d buffered) and retrying",
                           message, self.buffered)
        self.stats.unavailable, self.stats.last_error = True, message
        self.stats.retries += 1

    def _failed(self, what: str, e: Exception) -> bool:
        self.stats.failed_batches += 1
        self.stats.last_error = str(e).splitlines()[0] if str(e) else type(e).__name__
        logger.error("rag-otel store: %s failed; this batch is lost, the store is intact", what, exc_info=e)
        return False
