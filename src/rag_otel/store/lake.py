"""The fleet store: N processor replicas writing one DuckLake (PostgreSQL catalog + Parquet files).

The same :class:`~rag_otel.store.store.Store` interface and the same DuckDB SQL: the lake is
attached to an in-memory DuckDB and made every cursor's default database, so analytics, the API and
reports run unchanged.  What differs is what many writers need:

- no cross-writer upserts: each batch appends its partial rollup rows (readers sum them), and
  ``report_runs.id`` is made by the writer, since the lake has no sequences or key constraints;
- the schema is the file's migration list with the constraints and sequences taken out
  (:func:`lake_ddl`), so a migration added for the file store applies to the lake as written;
- many replicas may start at once: creating and migrating the schema is retried on a commit conflict;
- a catalog or data path that is away raises errors :meth:`is_transient` recognises, and
  :meth:`recover` re-attaches, so the writer keeps the batch and tries again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import threading
import time
from typing import Any

import duckdb

from rag_otel.config import ModelObservation
from rag_otel.store import extensions
from rag_otel.store.alert_state import CatalogAlertState
from rag_otel.store.lease import CatalogLease
from rag_otel.store.store import Store, StoreError, _check_and_migrate, _sql_str

logger = logging.getLogger("rag_otel.store")

ALIAS = "lake"  # the attached lake's name inside our DuckDB; the default database of every cursor
PG_ALIAS = "rag_otel_catalog"  # the catalog database itself, attached for the lease table

_CONSTRAINTS = [
    (re.compile(r"CREATE SEQUENCE \w+\s*;", re.I), ""),
    (re.compile(r"DEFAULT nextval\('[^']*'\)", re.I), ""),
    (re.compile(r",\s*PRIMARY KEY\s*\([^)]*\)", re.I), ""),
    (re.compile(r"\s+PRIMARY KEY\b", re.I), ""),
]
_TRANSIENT = ("connect", "connection", "could not", "server closed", "timeout", "timed out", "refused",
              "no such file", "i/o", "io error", "permission denied", "terminating", "shutdown", "network",
              "conflict", "broken pipe", "ssl", "catalog", "unreachable", "no route")


def lake_ddl(sql: str) -> str:
    """A migration's DDL as the lake takes it: no sequences, defaults from them, or key constraints."""
    for pattern, repl in _CONSTRAINTS:
        sql = pattern.sub(repl, sql)
    return sql


class _LakeDDL:
    """A connection as migrations see it: statements pass through :func:`lake_ddl`."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        return self._con.execute(lake_ddl(sql), params or [])


def redact(conninfo: str) -> str:
    """The catalog connection string without its password (for logs, /health and errors)."""
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", conninfo, flags=re.I)


class LakeStore(Store):
    """A DuckLake shared by the fleet; see the module docstring for what differs from the file."""

    kind = "ducklake"
    shared = True
    upsert_rollups = False
    # a commit is a catalog transaction (snapshot, file entries, conflict check) that every writer's
    # commits queue behind: gather up to 1000 records per commit (still flushed every flush_interval);
    # bench/README.md, *Fleet store*, has the measurements
    min_batch = 1000

    def __init__(self, con: duckdb.DuckDBPyConnection, url: str, catalog: str, data_path: str | None,
                 config: ModelObservation, read_only: bool) -> None:
        self.catalog = catalog  # the libpq connection string of the PostgreSQL catalog
        self.data_path = data_path
        self._attach_lock = threading.Lock()
        super().__init__(con, redact(url), config, read_only)

    @classmethod
    def open_lake(cls, url: str, *, data_path: str | None = None, read_only: bool = False,
                  config: ModelObservation | None = None, attempts: int = 20) -> LakeStore:
        """Attach ``ducklake:postgres:<conninfo>`` (creating and migrating it when it is new).

        ``data_path`` (a directory, or ``s3://bucket/prefix/``) is required when the lake is created
        and recorded in the catalog; later opens may omit it.
        """
        config = config or ModelObservation()
        if not url.startswith("ducklake:postgres:"):
            raise StoreError(f"{url!r}: a fleet store URL is ducklake:postgres:dbname=... host=... (libpq keywords)")
        catalog = url.removeprefix("ducklake:postgres:").strip()
        con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
        try:
            extensions.load(con, "postgres_scanner", "ducklake")
            # replicas starting together on a new lake race to create DuckLake's catalog tables and then
            # ours: the losers' statements fail on PostgreSQL's or the lake's conflict checks; retry
            for i in range(attempts):
                try:
                    _attach(con, catalog, data_path, read_only)
                    con.execute(f"USE {ALIAS}")
                    _check_and_migrate(_LakeDDL(con), redact(url), read_only)  # type: ignore[arg-type]
                    break
                except duckdb.Error as e:
                    if not _conflict(e) or i == attempts - 1:
                        raise
                    _detach(con)
                    time.sleep(0.05 + 0.1 * i * secrets.randbelow(100) / 100)
        except extensions.ExtensionError as e:
            con.close()
            raise StoreError(str(e)) from None
        except duckdb.Error as e:
            con.close()
            raise StoreError(f"cannot open the fleet store {redact(url)}"
                             f"{f' (data path {data_path})' if data_path else ''}: {str(e).splitlines()[0]}") from None
        except BaseException:
            con.close()
            raise
        return cls(con, url, catalog, data_path, config, read_only)

    # --- backend hooks -----------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._root.cursor()
        cur.execute(f"USE {ALIAS}")  # USE is per connection: each cursor must name the lake its default
        return cur

    def _before_close(self) -> None:
        """Nothing to fold: every commit is already in the catalog and the data path."""

    def _new_run_id(self) -> int:
        # milliseconds since the epoch x 1000 + a random tail: unique across writers, ordered in time,
        # and below 2**53 so the dashboard's JavaScript numbers keep it exact
        return time.time_ns() // 1_000_000 * 1000 + secrets.randbelow(1000)

    def is_transient(self, error: BaseException) -> bool:
        if isinstance(error, (duckdb.IOException, duckdb.ConnectionException, duckdb.TransactionException,
                              duckdb.HTTPException)):
            return True
        if isinstance(error, duckdb.Error):
            text = str(error).lower()
            return any(word in text for word in _TRANSIENT)
        return isinstance(error, OSError)

    def recover(self) -> None:
        """Detach and re-attach the lake (the catalog connection may be dead after a server restart)."""
        with self._attach_lock, self._lock:
            with contextlib.suppress(duckdb.Error):
                self._con.execute("USE memory")
            _detach(self._root)
            _attach(self._root, self.catalog, self.data_path, self.read_only)
            self._con.close()
            self._con = self.cursor()

    def compact(self) -> dict[str, Any]:
        """Merge the small Parquet files per-batch appends leave, expire old snapshots, delete unused files.

        Run by one replica at a time (the maintenance lease): two compactions of one table would
        only conflict and retry, but there is no reason to pay for both.
        """
        out: dict[str, Any] = {}
        with self._lock:
            for name, sql in (
                ("merged", f"CALL ducklake_merge_adjacent_files('{ALIAS}')"),
                ("expired", f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => now() - INTERVAL 1 HOUR)"),
                ("cleaned", f"CALL ducklake_cleanup_old_files('{ALIAS}', older_than => now() - INTERVAL 1 HOUR)"),
            ):
                out[name] = len(self._con.execute(sql).fetchall())
        return out

    def lease(self, job: str, *, ttl: float = 15.0) -> CatalogLease:
        """A lease row in the catalog database (:mod:`rag_otel.store.lease`)."""
        return CatalogLease(self.catalog_cursor, PG_ALIAS, job, ttl=ttl)

    def alert_state(self, job: str, holder: str) -> CatalogAlertState:
        """A table beside the leases in the catalog database, written only by ``job``'s lease holder."""
        return CatalogAlertState(self.catalog_cursor, PG_ALIAS, job=job, holder=holder)

    def catalog_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor that can reach the catalog database (``postgres_execute``/``postgres_query``)."""
        with self._attach_lock:
            return self._root.cursor()


def s3_secret(con: duckdb.DuckDBPyConnection, data_path: str | None, env: dict[str, str] | None = None) -> bool:
    """For a lake in S3 (``s3://`` data path, or AWS credentials in the environment): load ``httpfs``
    from its package and make a DuckDB S3 secret from the standard AWS variables (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for
    S3-compatible stores).  True when it did."""
    env = dict(os.environ) if env is None else env
    if not ((data_path or "").startswith("s3://") or env.get("AWS_ACCESS_KEY_ID")):
        return False
    extensions.load(con, "httpfs")
    opts = ["TYPE s3"]
    for key, var in (("KEY_ID", "AWS_ACCESS_KEY_ID"), ("SECRET", "AWS_SECRET_ACCESS_KEY"),
                     ("SESSION_TOKEN", "AWS_SESSION_TOKEN"), ("REGION", "AWS_REGION")):
        if env.get(var):
            opts.append(f"{key} '{_sql_str(env[var])}'")
    if endpoint := env.get("AWS_ENDPOINT_URL"):  # MinIO, R2, ...: host[:port], path-style URLs
        scheme, _, host = endpoint.partition("://") if "://" in endpoint else ("https", "", endpoint)
        opts += [f"ENDPOINT '{_sql_str(host.rstrip('/'))}'", "URL_STYLE 'path'",
                 f"USE_SSL {'true' if scheme == 'https' else 'false'}"]
    con.execute(f"CREATE OR REPLACE SECRET rag_otel_s3 ({', '.join(opts)})")
    return True


def _conflict(e: duckdb.Error) -> bool:
    """A lost race with another replica creating the same thing (worth a retry), not a real fault."""
    text = str(e).lower()
    return any(w in text for w in ("duplicate key", "already exists", "conflict", "unique constraint",
                                   "could not serialize", "deadlock"))


def _detach(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in ("ROLLBACK", "USE memory", f"DETACH {ALIAS}", f"DETACH {PG_ALIAS}"):
        with contextlib.suppress(duckdb.Error):
            con.execute(stmt)


def _attach(con: duckdb.DuckDBPyConnection, catalog: str, data_path: str | None, read_only: bool) -> None:
    s3_secret(con, data_path)
    opts = []
    if data_path:
        path = data_path if "://" in data_path or data_path.endswith("/") else data_path + "/"
        opts.append(f"DATA_PATH '{_sql_str(path)}'")
    if read_only:
        opts.append("READ_ONLY")
    clause = f" ({', '.join(opts)})" if opts else ""
    con.execute(f"ATTACH 'ducklake:postgres:{_sql_str(catalog)}' AS {ALIAS}{clause}")
    con.execute(f"ATTACH '{_sql_str(catalog)}' AS {PG_ALIAS} (TYPE postgres{', READ_ONLY' if read_only else ''})")

