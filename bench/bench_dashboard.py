"""Dashboard push: CPU share of the processor while 100 WebSocket clients get the live snapshot at 1 Hz.

Run: ``.venv/bin/python bench/bench_dashboard.py [--clients 100] [--seconds 10] [--rounds 3] [--records 20000]``

The system under test is a real ``rag-otel serve`` subprocess (its store pre-filled with
``--records`` query records spread over the last hour, so every snapshot reads real rows).  Its
CPU share is ``process CPU seconds / wall seconds`` from psutil, measured in alternating windows
of the same run: idle (no viewer) and pushing (``--clients`` viewers connected, 1 Hz).  The
clients run in this process (asyncio, the ``websockets`` library) and also report how many
frames each received and how far apart the first and last client got the same tick.
Medians over rounds are printed, with the difference and ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import websockets
import yaml

from rag_otel.config import ModelObservation
from rag_otel.records import AxisScore, QualityResult, QueryRecord
from rag_otel.semconv import QUALITY_AXES
from rag_otel.store import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill(data_dir: Path, n: int) -> None:
    rnd = random.Random(5)
    now = time.time()
    recs = []
    for i in range(n):
        t = now - rnd.random() * 3500
        overall = rnd.random()
        q = QualityResult(axes={a: AxisScore(rnd.random()) for a in QUALITY_AXES}, overall=overall,
                          evaluator="lexical/1", grade="good" if overall > 0.7 else "fair")
        recs.append(QueryRecord(
            trace_id=f"{rnd.getrandbits(128):032x}", root_span_id=f"{i + 1:016x}", start_time=t,
            end_time=t + rnd.lognormvariate(0, 0.5), service="rag-app", user_id=f"u{rnd.randrange(200)}",
            session_id=f"s{rnd.randrange(400)}", models=[rnd.choice(["gpt-4o", "gpt-4o-mini"])],
            input_tokens=rnd.randint(200, 1200), output_tokens=rnd.randint(20, 400), cost_usd=0.001,
            status="error" if rnd.random() < 0.03 else "ok", quality=q, query_text="How do I reset my password?"))
    with Store.open(data_dir) as store:
        for i in range(0, n, 5000):
            store.write_records(recs[i:i + 5000])


def start_server(data_dir: Path, clients: int) -> tuple[subprocess.Popen[bytes], str]:
    cfg = ModelObservation()
    cfg.dashboards.real_time.update_interval = 1.0
    cfg.dashboards.real_time.max_subscribers = clients
    cfg_path = data_dir / "rag-otel.yaml"
    cfg_path.write_text(yaml.safe_dump({"model_observation": cfg.model_dump(mode="json", by_alias=True,
                                                                            exclude_none=True)}))
    http = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_otel.cli", "serve", "--config", str(cfg_path), "--data-dir", str(data_dir),
         "--http", http, "--otlp-grpc", f"127.0.0.1:{free_port()}", "--otlp-http", f"127.0.0.1:{free_port()}",
         "--log-level", "WARNING"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{http}/health", timeout=1).status_code == 200:
                return proc, http
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit(f"rag-otel serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
    raise SystemExit("rag-otel serve did not become healthy")


def cpu_share(p: psutil.Process, seconds: float) -> float:
    c0, w0 = sum(p.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)
    return (sum(p.cpu_times()[:2]) - c0) / (time.monotonic() - w0)


async def viewers(http: str, n: int, seconds: float, p: psutil.Process) -> dict[str, float]:
    """Connect n clients, wait for everyone's first frame, then measure CPU share over ``seconds``."""
    arrivals: dict[float, list[float]] = {}
    counts = [0] * n
    measuring = asyncio.Event()
    stop = asyncio.Event()

    async def client(i: int, ready: asyncio.Event) -> None:
        async with websockets.connect(f"ws://{http}/api/v1/live", max_size=2**22) as ws:
            while not stop.is_set():
                try:
                    text = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    continue
                ready.set()
                if measuring.is_set():
                    counts[i] += 1
                    arrivals.setdefault(json.loads(text)["time"], []).append(time.monotonic())

    readies = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(client(i, readies[i])) for i in range(n)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=30)
    measuring.set()
    share = await asyncio.to_thread(cpu_share, p, seconds)
    measuring.clear()
    stop.set()
    await asyncio.gather(*tasks)
    spreads = [max(v) - min(v) for v in arrivals.values() if len(v) == n]
    return {"share": share, "frames_per_client_s": statistics.median(counts) / seconds,
            "spread_ms": 1000 * statistics.median(spreads) if spreads else float("nan"),
            "ticks_complete": len(spreads)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 clients, 1 round of 2 s")
    a = ap.parse_args()
    if a.quick:
        a.clients, a.seconds, a.rounds, a.records = 10, 2.0, 1, 2_000
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        fill(data, a.records)
        proc, http = start_server(data, a.clients)
        try:
            p = psutil.Process(proc.pid)
            time.sleep(2)  # let start-up work (report catch-up, first metric collection) settle
            idle, push = [], []
            for r in range(a.rounds):
                idle.append(cpu_share(p, a.seconds))
                push.append(asyncio.run(viewers(http, a.clients, a.seconds, p)))
                print(f"round {r + 1}: idle {idle[-1]:.3f}  push {push[-1]['share']:.3f}  "
                      f"frames/client/s {push[-1]['frames_per_client_s']:.2f}  "
                      f"tick spread {push[-1]['spread_ms']:.1f} ms", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    mi, mp = statistics.median(idle), statistics.median(p["share"] for p in push)
    print(f"\nrag-otel serve, {a.records} records in the last hour, {a.clients} WebSocket clients at 1 Hz, "
          f"{a.rounds} rounds x {a.seconds:.0f} s, {os.cpu_count()} CPUs")
    print(f"CPU share idle (median):    {mi:.3f} cores")
    print(f"CPU share pushing (median): {mp:.3f} cores  (+{mp - mi:.3f}, x{mp / mi if mi else float('inf'):.1f})")
    print(f"frames per client per s:    {statistics.median(p['frames_per_client_s'] for p in push):.2f}")
    print(f"first-to-last client spread of one tick (median): "
          f"{statistics.median(p['spread_ms'] for p in push):.1f} ms")


if __name__ == "__main__":
    main()
