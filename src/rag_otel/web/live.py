"""``/api/v1/live``: the dashboard's WebSocket feed.

One broadcaster task per app computes the snapshot once per tick (in a worker thread: DuckDB
blocks) and sends the same JSON text to every subscriber, so the cost of a tick does not grow with
the number of dashboards open.  The task runs only while someone listens.  Past
``max_subscribers`` the next client is accepted and closed at once with code 1013 ("try again
later") and a reason the page shows; a client too slow to take a tick within the interval is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from rag_otel.web.auth import websocket_allowed

logger = logging.getLogger("rag_otel.web")

router = APIRouter()

TRY_AGAIN_LATER = 1013
POLICY_VIOLATION = 1008


class LiveHub:
    """Subscribers, the broadcaster task and the last snapshot text."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], interval: float, max_subscribers: int,
                 enabled: bool = True) -> None:
        self.snapshot = snapshot
        self.enabled = enabled
        self.interval = interval
        self.max_subscribers = max_subscribers
        self.clients: set[WebSocket] = set()
        self.ticks = 0
        self.last_text: str | None = None
        self.last_at = 0.0
        self._slots = 0
        self._task: asyncio.Task[None] | None = None
        self._dropped: dict[WebSocket, asyncio.Event] = {}  # set when the broadcast gives up on a client
        self._closing: set[asyncio.Task[None]] = set()  # closes of dropped clients, kept referenced

    async def serve(self, ws: WebSocket) -> None:
        if not websocket_allowed(ws):
            await ws.accept()
            await ws.close(POLICY_VIOLATION, "missing or wrong token (add ?token=...)")
            return
        if not self.enabled:
            await ws.accept()
            await ws.close(POLICY_VIOLATION, "the live dashboard is off (dashboards.real_time.enabled: false)")
            return
        if self._slots >= self.max_subscribers:
            await ws.accept()
            await ws.close(TRY_AGAIN_LATER, f"dashboard full: {self.max_subscribers} live viewers already "
                                            "connected (dashboards.real_time.max_subscribers); retrying")
            return
        self._slots += 1  # taken before the first await, so concurrent connects cannot overshoot
        try:
            await ws.accept()
            self.clients.add(ws)
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._broadcast(), name="rag-otel-live")
            elif self.last_text is not None:
                await ws.send_text(self.last_text)  # something to show before the next tick
            dropped = self._dropped[ws] = asyncio.Event()
            leaving = asyncio.ensure_future(self._until_disconnect(ws))
            drop = asyncio.ensure_future(dropped.wait())
            # A client that stops reading may never send a close either: its drop must free the slot too.
            await asyncio.wait({leaving, drop}, return_when=asyncio.FIRST_COMPLETED)
            for t in (leaving, drop):
                t.cancel()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.clients.discard(ws)
            self._dropped.pop(ws, None)
            self._slots -= 1

    @staticmethod
    async def _until_disconnect(ws: WebSocket) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass  # the client sends nothing we need (text or bytes); this only notices it leaving

    async def _broadcast(self) -> None:
        while self.clients:
            started = time.monotonic()
            try:
                data = await asyncio.to_thread(self.snapshot)
                data["interval_s"] = self.interval
                data["viewers"] = len(self.clients)
                self.last_text = json.dumps(data, separators=(",", ":"), default=str)
                self.last_at = time.time()
                self.ticks += 1
                await asyncio.gather(*(self._send(ws, self.last_text) for ws in list(self.clients)))
            except Exception:
                logger.exception("rag-otel live dashboard: snapshot failed; retrying next tick")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _send(self, ws: WebSocket, text: str) -> None:
        try:
            await asyncio.wait_for(ws.send_text(text), timeout=max(self.interval, 1.0))
        except Exception:
            self.clients.discard(ws)
            if (dropped := self._dropped.get(ws)) is not None:
                dropped.set()
            # Not awaited here: closing a client that does not read blocks on the same full buffers, and the
            # broadcast must not wait for it.
            task = asyncio.create_task(self._close_slow(ws))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_slow(ws: WebSocket) -> None:
        with contextlib.suppress(Exception):
            await ws.close(TRY_AGAIN_LATER, "too slow to keep up with the live feed")


@router.websocket("/api/v1/live")
async def live(ws: WebSocket) -> None:
    """Snapshots every ``dashboards.real_time.update_interval`` seconds (JSON text frames)."""
    await ws.app.state.live.serve(ws)
