"""Leadership for jobs that must run on one replica at a time (reports, retention, compaction).

A lease is a row in ``rag_otel_leases`` in the fleet's PostgreSQL catalog database: ``(job, holder,
expires_at)``.  Taking and renewing it is one conditional upsert, atomic in PostgreSQL and timed by
the server's clock (replica clocks never compare):

    INSERT ... ON CONFLICT (job) DO UPDATE ... WHERE holder = me OR expires_at < now()

then reading the row back says who holds it.  The holder renews every ``ttl / 3``; a replica that
dies stops renewing and another takes the job within ``ttl + ttl / 3``.  A holder that cannot renew
(catalog away) counts itself leader only until its own last renewal + ``ttl`` minus a margin, so two
replicas never both believe they lead.  A single-node store needs none of this: :class:`SoleLease`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger("rag_otel.store")

TABLE = "rag_otel_leases"
_DDL = (f"CREATE TABLE IF NOT EXISTS {TABLE} (job text PRIMARY KEY, holder text NOT NULL, "
        "expires_at timestamptz NOT NULL, acquired_at timestamptz NOT NULL)")


def holder_id() -> str:
    """This process, readable in the lease table: host, pid and a random tail (pids repeat in containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease(Protocol):
    job: str
    holder: str

    def try_acquire(self) -> bool: ...
    @property
    def held(self) -> bool: ...
    def release(self) -> None: ...


class SoleLease:
    """The only writer of a store file leads every job (what one `rag-otel serve` always did)."""

    def __init__(self, job: str, holder: str | None = None) -> None:
        self.job, self.holder = job, holder or holder_id()

    def try_acquire(self) -> bool:
        return True

    @property
    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def owner(self) -> str | None:
        return self.holder


def _q(s: str) -> str:
    return s.replace("'", "''")


class CatalogLease:
    """One job's lease in the catalog database; ``cursor`` gives a DuckDB cursor with it attached."""

    def __init__(self, cursor: Callable[[], Any], pg_alias: str, job: str, *, ttl: float = 15.0,
                 holder: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0:
            raise ValueError("lease ttl must be > 0")
        self._cursor, self._pg, self.job, self.ttl = cursor, pg_alias, job, ttl
        self.holder = holder or holder_id()
        self._clock = clock
        self._valid_until = float("-inf")  # our own clock: last confirmed renewal + ttl - margin
        self._lock = threading.Lock()
        self._ready = False

    def _exec(self, cur: Any, sql: str) -> None:
        cur.execute(f"CALL postgres_execute('{self._pg}', '{_q(sql)}')")

    def try_acquire(self) -> bool:
        """Take or renew the lease; True when this process holds it now. Errors count as 'not held'."""
        with self._lock:
            started = self._clock()
            cur = self._cursor()
            try:
                if not self._ready:
                    self._exec(cur, _DDL)
                    self._ready = True
                job, me, ttl = _q(self.job), _q(self.holder), f"{self.ttl:.3f}"
                self._exec(cur, f"""
                    INSERT INTO {TABLE} AS l (job, holder, expires_at, acquired_at)
                    VALUES ('{job}', '{me}', now() + interval '{ttl} seconds', now())
                    ON CONFLICT (job) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at,
                        acquired_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquired_at
                                           ELSE EXCLUDED.acquired_at END
                    WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()""")
                held = self.owner(cur) == self.holder
            except Exception as e:
                logger.warning("rag-otel lease %s: cannot reach the catalog (%s); leader only until the lease "
                               "runs out", self.job, str(e).splitlines()[0] if str(e) else type(e).__name__)
                return self.held
            finally:
                cur.close()
            # the server's expiry is at least ttl after `started`; keep a margin for the round trip
            self._valid_until = started + self.ttl * 0.8 if held else float("-inf")
            return held

    def owner(self, cur: Any = None) -> str | None:
        """Who holds the job now per the catalog (None when nobody, or the lease ran out)."""
        own = cur is None
        cur = cur or self._cursor()
        try:
            row = cur.execute(f"SELECT holder FROM postgres_query('{self._pg}', "
                              f"'SELECT holder FROM {TABLE} WHERE job = ''{_q(_q(self.job))}'' "
                              f"AND expires_at >= now()')").fetchone()
            return row[0] if row else None
        finally:
            if own:
                cur.close()

    @property
    def held(self) -> bool:
        return self._clock() < self._valid_until

    def release(self) -> None:
        """Give the job up now (clean shutdown), so the next leader need not wait for the expiry."""
        with self._lock:
            if not self.held:
                return
            self._valid_until = float("-inf")
            cur = self._cursor()
            try:
                self._exec(cur, f"DELETE FROM {TABLE} WHERE job = '{_q(self.job)}' AND holder = '{_q(self.holder)}'")
            except Exception as e:
                logger.warning("rag-otel lease %s: release failed (%s); it expires in %.0fs", self.job, e, self.ttl)
            finally:
                cur.close()


class Leadership:
    """Keeps this replica's leases renewed on one thread; jobs ask :meth:`leads` before running."""

    def __init__(self, leases: dict[str, Any], *, on_change: Callable[[str, bool], None] | None = None) -> None:
        self.leases = leases
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was: dict[str, bool] = dict.fromkeys(leases, False)
        self.interval = min((getattr(le, "ttl", 15.0) for le in leases.values()), default=15.0) / 3

    def leads(self, job: str) -> bool:
        lease = self.leases.get(job)
        return lease is not None and lease.held

    def renew(self) -> None:
        for job, lease in self.leases.items():
            now = lease.try_acquire()
            if now != self._was[job]:
                self._was[job] = now
                logger.info("rag-otel lease %s: %s (%s)", job, "taken" if now else "lost", lease.holder)
                if self.on_change is not None:
                    self.on_change(job, now)

    def start(self) -> Leadership:
        self.renew()
        self._thread = threading.Thread(target=self._loop, name="rag-otel-leases", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew()
            except Exception:
                logger.exception("rag-otel leases: renewal failed; retrying")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        for lease in self.leases.values():
            lease.release()

    def status(self) -> dict[str, Any]:
        return {job: {"leader": lease.held, "holder": lease.holder} for job, lease in self.leases.items()}
