"""Retention and compaction of a shared store, run by the one replica holding the ``maintenance`` lease.

A single-node store keeps doing both in its writer thread (it is the only writer).  In a fleet, N
replicas deleting the same old rows or merging the same small files would only conflict and retry;
so one does it, and if it dies another takes the lease and carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("rag_otel.store")


class Maintenance:
    """Every ``every`` seconds, while ``leads()``: retention, then compaction. :meth:`run_once` is the logic."""

    def __init__(self, store: Any, leads: Callable[[], bool], *, every: float = 3600.0,
                 check_interval: float = 5.0) -> None:
        self.store, self.leads, self.every, self.check_interval = store, leads, every, check_interval
        self.last: dict[str, Any] | None = None  # what the last run did (health, tests)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> dict[str, Any]:
        out = {"retention": self.store.apply_retention(), "compaction": self.store.compact()}
        self.last = out
        logger.info("rag-otel store maintenance (leader): %s", out)
        return out

    def start(self) -> Maintenance:
        self._thread = threading.Thread(target=self._loop, name="rag-otel-maintenance", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        next_run = 0.0  # as soon as this replica leads, then every `every` seconds while it does
        while not self._stop.wait(self.check_interval):
            if time.monotonic() < next_run or not self.leads():
                continue
            try:
                self.run_once()
            except Exception:
                logger.exception("rag-otel store maintenance failed; trying again next time")
            next_run = time.monotonic() + self.every

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
