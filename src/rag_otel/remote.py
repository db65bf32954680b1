"""The CLI's second path to the data: a running ``rag-otel serve``'s HTTP API.

DuckDB lets one process hold a store file, and ``rag-otel serve`` holds its own. So the commands
that read the store (``rag-otel analytics``, ``rag-otel report``) open it when they can and
otherwise ask the serve that holds it, as ``promtool``/``amtool`` talk to a running server. The
server computes with the same functions (``analytics.analyse``, ``reports.run_report``,
``Store.export_parquet``), so both paths print the same thing and write the same files.

Where the server is: ``--server URL`` (always used when given), else ``$RAG_OTEL_SERVER``, else
``processor.http`` of the config the CLI reads; the bearer token is the variable
``processor.api_token_env`` names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from rag_otel.analytics.period import Period
from rag_otel.config import ModelObservation
from rag_otel.store import Store, StoreLockedError
from rag_otel.store.location import open_store

SERVER_ENV = "RAG_OTEL_SERVER"
# Analyses and report builds take seconds on a big store; a server that does not connect at all is down.
TIMEOUT = httpx.Timeout(600.0, connect=5.0)


class RemoteError(RuntimeError):
    """The server cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class Server:
    url: str
    token: str | None = None
    token_env: str | None = None


def server_url(address: str) -> str:
    """``host:port`` (as ``processor.http`` is written) or a URL -> a base URL; a wildcard host is this host."""
    url = address.strip().rstrip("/")
    if "://" not in url:
        host, _, port = url.rpartition(":")
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]"}.get(host, host)
        url = f"http://{host}:{port}"
    return url


def server_for(cfg: ModelObservation, explicit: str | None = None,
               env: Mapping[str, str] | None = None) -> Server:
    """Where the serve's API is (``explicit``, ``$RAG_OTEL_SERVER``, ``processor.http``) and its token."""
    env = os.environ if env is None else env
    token_env = cfg.processor.api_token_env
    return Server(server_url(explicit or env.get(SERVER_ENV) or cfg.processor.http),
                  (env.get(token_env) or None) if token_env else None, token_env)


class Remote:
    """A running serve's API, answering what the CLI would otherwise compute over the store."""

    def __init__(self, server: Server) -> None:
        self.server = server
        headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
        self._http = httpx.Client(base_url=server.url, headers=headers, timeout=TIMEOUT)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise RemoteError(f"the server at {self.server.url} is not answering ({type(e).__name__}: {e})") from None
        if r.status_code >= 400:
            self._raise_for(r)
        return r

    def _auth_problem(self) -> str:
        s = self.server
        if s.token:
            return f"the server at {s.url} refused the bearer token from ${s.token_env}"
        if s.token_env:
            return f"the server at {s.url} wants a bearer token: ${s.token_env} (processor.api_token_env) is not set"
        return (f"the server at {s.url} wants a bearer token: name the variable that holds it in "
                "processor.api_token_env of the config (--config) and set it")

    def _parse(self, r: httpx.Response, model: Any) -> Any:
        """The answer's JSON, checked against the API's own ``model``: anything else is not a rag-otel serve."""
        try:
            raw = r.json()
            model.model_validate(raw)
        except ValueError as e:  # not JSON, or not the shape (pydantic's ValidationError is a ValueError)
            raise RemoteError(f"the server at {self.server.url} answered {r.request.url.path} with something "
                              f"that is not a rag-otel answer ({str(e).splitlines()[0]})") from None
        return raw

    def check_holds(self, store_path: str) -> None:
        """Refuse a server that is not the one holding ``store_path`` (it would answer about other data)."""
        from rag_otel.web.models import HealthStore

        health = self._parse(self._call("GET", "/health"), HealthStore)
        held = (health.get("store") or {}).get("path")
        if held is None or os.path.realpath(held) != os.path.realpath(store_path):
            raise RemoteError(f"the server at {self.server.url} serves {held or 'no store'}, not {store_path}; "
                              "give the address of the serve that holds it with --server URL")

    # --- what the commands ask --------------------------------------------------------------
    def analysis(self, name: str, period: Period, *, service: str | None = None, model: str | None = None,
                 user_id: str | None = None) -> dict[str, Any]:
        """The analysis' dict exactly as ``analytics.analyse`` returns it (the API's envelope removed)."""
        from rag_otel.web.models import AnalysisAnswer

        p = period.to_dict()  # label, start and end together give the server this very period back
        params = {"period": p["label"], "from": p["start"], "to": p["end"], "service": service, "model": model,
                  "user": user_id}
        r = self._call("GET", f"/api/v1/analytics/{name}", params={k: v for k, v in params.items() if v is not None})
        raw = self._parse(r, AnalysisAnswer)
        return {k: v for k, v in raw.items() if k not in ("analysis", "generated_at")}

    def run_report(self, kind: str, day: date, formats: list[str], send: bool) -> Any:
        """The server builds (and with ``send`` delivers) the report and records the run."""
        from rag_otel.web.models import ReportRunResult, RunReport

        body = RunReport.model_validate({"kind": kind, "date": day, "formats": formats, "send": send})
        r = self._call("POST", "/api/v1/reports/run", json=body.model_dump(mode="json"))
        return ReportRunResult.model_validate(self._parse(r, ReportRunResult))

    def download_report_file(self, run_id: int, name: str, dest: Path) -> Path:
        from rag_otel.reports.deliver import atomic_write

        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, self._call("GET", f"/api/v1/reports/{run_id}/files/{name}").content)
        return dest

    def export_table(self, table: str, dest: Path, period: Period | None) -> Path:
        """Stream one table's Parquet file into ``dest`` (replaced only once complete)."""
        p = period.to_dict() if period else {}
        params = {k: v for k, v in (("from", p.get("start")), ("to", p.get("end"))) if v}
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        try:
            with self._http.stream("GET", f"/api/v1/export/{table}", params=params) as r:
                if r.status_code >= 400:
                    r.read()
                    self._raise_for(r)
                with tmp.open("wb") as f:
                    for chunk in r.iter_bytes():
                        f.write(chunk)
        except httpx.TransportError as e:
            tmp.unlink(missing_ok=True)
            raise RemoteError(f"the server at {self.server.url} is not answering ({type(e).__name__}: {e})") from None
        os.replace(tmp, dest)
        return dest

    def _raise_for(self, r: httpx.Response) -> None:
        if r.status_code == 401:
            raise RemoteError(self._auth_problem())
        try:
            message = r.json().get("message") or r.text
        except ValueError:
            message = r.text[:300]
        raise RemoteError(f"the server at {self.server.url} answered {r.status_code} to {r.request.method} "
                          f"{r.request.url.path}: {message}")


def open_store_or_server(prog: str, cfg: ModelObservation, data_dir: str, server: str | None) -> Store | Remote:
    """The store read-only; with ``--server``, or when a running serve holds the store, that serve's API.

    Says on stderr when it reads through a server. Raises StoreError (no store, not a store) or
    RemoteError (store held and its server not usable), each naming what to do.
    """
    if server:
        remote = Remote(server_for(cfg, server))
        print(f"rag-otel {prog}: reading through {remote.server.url} (--server)", file=sys.stderr)
        return remote
    try:
        return open_store(cfg, read_only=True, data_dir=data_dir)
    except StoreLockedError as locked:
        remote = Remote(server_for(cfg))
        try:
            remote.check_holds(locked.path)
        except RemoteError as e:
            remote.close()
            raise RemoteError(f"{locked}; and {e}. Start that serve's HTTP API, point --server (or "
                              f"${SERVER_ENV}) at it, or stop the process holding the store") from None
        print(f"rag-otel {prog}: store is held by a running serve; reading through {remote.server.url}",
              file=sys.stderr)
        return remote
