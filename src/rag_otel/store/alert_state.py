"""Where fleet-wide alerts keep their state, so a new leader carries on where the old one stopped.

The state of one alert (pending since, firing since, last notified, acknowledged...) is a row keyed by
its fingerprint.  The leader of the ``alerts`` job reads the rows before each evaluation and writes
them back before it hands notifications on, so after a failover the next leader neither notifies a
firing alert again nor forgets to send its resolve.  Silences are set by people through any replica
and never overwritten by the leader.

- :class:`CatalogAlertState`: a table in the fleet's PostgreSQL catalog database, beside the leases
  (small rows updated in place, which a lake's append-only Parquet files are not made for).  The
  leader's write is fenced by its lease in the same statement: a replica whose lease ran out cannot
  overwrite its successor's state.
- :class:`MemoryAlertState`: the single-node processor leads for good; its state lives in memory,
  as the replica-scope engine's does.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from rag_otel.store.lease import TABLE as LEASES

logger = logging.getLogger("rag_otel.store")

TABLE = "rag_otel_alert_state"
_DDL = (f"CREATE TABLE IF NOT EXISTS {TABLE} (fingerprint text PRIMARY KEY, rule text NOT NULL, "
        "doc text NOT NULL, silenced_until double precision, updated_at timestamptz NOT NULL DEFAULT now())")


class MemoryAlertState:
    """The one processor's alert state (a file store has one writer, which always leads)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {fp: dict(doc) for fp, doc in self._rows.items()}

    def save(self, docs: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            for fp, doc in docs.items():
                row = self._rows.setdefault(fp, {})
                row.update({k: v for k, v in doc.items() if k != "silenced_until"})

    def update(self, fingerprint: str, rule: str, **fields: Any) -> None:
        with self._lock:
            self._rows.setdefault(fingerprint, {"rule": rule}).update(fields)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class CatalogAlertState:
    """The alert state table in the catalog database; ``cursor`` gives a DuckDB cursor with it attached."""

    def __init__(self, cursor: Callable[[], Any], pg_alias: str, *, job: str, holder: str) -> None:
        self._cursor, self._pg, self.job, self.holder = cursor, pg_alias, job, holder
        self._ready = False

    def _exec(self, cur: Any, sql: str | None) -> None:
        """Run ``sql`` in the catalog database (creating the table on first use)."""
        if not self._ready:
            cur.execute(f"CALL postgres_execute('{self._pg}', {_lit(_DDL)})")
            self._ready = True
        if sql is not None:
            cur.execute(f"CALL postgres_execute('{self._pg}', {_lit(sql)})")

    def load(self) -> dict[str, dict[str, Any]]:
        cur = self._cursor()
        try:
            self._exec(cur, None)
            rows = cur.execute(f"SELECT fingerprint, doc, silenced_until FROM postgres_query('{self._pg}', "
                               f"{_lit(f'SELECT fingerprint, doc, silenced_until FROM {TABLE}')})").fetchall()
        finally:
            cur.close()
        out = {}
        for fp, doc, silenced in rows:
            d = json.loads(doc)
            d["silenced_until"] = silenced
            out[fp] = d
        return out

    def save(self, docs: dict[str, dict[str, Any]]) -> None:
        """Write the leader's view of each alert, only while this replica holds the ``alerts`` lease."""
        if not docs:
            return
        values = ", ".join(
            f"({_lit(fp)}, {_lit(str(d.get('rule', '')))}, "
            f"{_lit(json.dumps({k: v for k, v in d.items() if k != 'silenced_until'}))})"
            for fp, d in docs.items())
        sql = (f"INSERT INTO {TABLE} (fingerprint, rule, doc) SELECT * FROM (VALUES {values}) v "
               f"WHERE EXISTS (SELECT 1 FROM {LEASES} WHERE job = {_lit(self.job)} "
               f"AND holder = {_lit(self.holder)} AND expires_at >= now()) "
               "ON CONFLICT (fingerprint) DO UPDATE SET rule = EXCLUDED.rule, doc = EXCLUDED.doc, updated_at = now()")
        cur = self._cursor()
        try:
            self._exec(cur, sql)
        finally:
            cur.close()

    def update(self, fingerprint: str, rule: str, **fields: Any) -> None:
        """What people change through any replica: ``acknowledged`` (in the doc) and ``silenced_until``."""
        sets, until = [], "NULL"
        if "silenced_until" in fields:
            value = fields.pop("silenced_until")
            until = "NULL" if value is None else repr(float(value))
            sets.append(f"silenced_until = {until}")
        if fields:
            sets.append(f"doc = ({TABLE}.doc::jsonb || {_lit(json.dumps(fields))}::jsonb)::text")
        if not sets:
            return
        doc = _lit(json.dumps({"rule": rule, **fields}))
        sql = (f"INSERT INTO {TABLE} (fingerprint, rule, doc, silenced_until) "
               f"VALUES ({_lit(fingerprint)}, {_lit(rule)}, {doc}, {until}) "
               f"ON CONFLICT (fingerprint) DO UPDATE SET {', '.join(sets)}")
        cur = self._cursor()
        try:
            self._exec(cur, sql)
        finally:
            cur.close()
