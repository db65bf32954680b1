"""Demo traffic: varied users, sessions, topics and features over real HTTP, with a slow burst and failures.

The schedule is a pure function of the query's index (:func:`plan`), so a run with ``--queries N``
always has its slow burst at the same place and always makes the demo latency alert fire, then
resolve once fast queries push the slow ones out of the alert's window.  Randomness (which user,
which question, streaming or not) comes from a seeded generator: two runs send the same traffic.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

QUESTIONS: dict[str, list[tuple[str, str]]] = {  # topic -> (question, follow-up)
    "getting-started": [
        ("How do I install the Harbor Sync desktop client on Linux?", "How much disk space does it need?"),
        ("What is a dock in Harbor Sync?", "Can a dock be shared?"),
        ("What does a red anchor icon mean?", "And a blue anchor?"),
        ("How does selective sync work?", "When do cloud-only files download?"),
        ("Can we sign in with single sign-on?", "Which plan is needed for that?"),
        ("What are the system requirements for the desktop client?", "Which Android version is needed?"),
    ],
    "billing": [
        ("How much does the Schooner plan cost?", "How much storage does it include?"),
        ("How do refunds work for annual plans?", "How long until the refund arrives?"),
        ("What happens when I downgrade my plan?", "What if my data is larger than the new plan?"),
        ("Which payment methods do you accept?", "When are invoices due?"),
        ("Is there a student discount?", "What about nonprofits?"),
        ("What happens when a dock reaches the storage limit?", "How do I free space?"),
    ],
    "sharing": [
        ("How do I share a dock with my team?", "What can viewers do?"),
        ("Can share links have a password?", "Can links expire?"),
        ("What is a conflict copy?", "How do I merge them?"),
        ("How long is version history kept?", "How do I restore an older version?"),
        ("What is the largest file I can sync?", "Do big uploads resume after a disconnect?"),
    ],
    "security": [
        ("How are my files encrypted?", "What is an end-to-end encrypted dock?"),
        ("How do I turn on two-factor authentication?", "Can admins require it?"),
        ("What if I lose my recovery key?", "Can support reset it?"),
        ("Where is Fleet data stored?", "Can we move regions later?"),
        ("How do I wipe a lost laptop?", "What happens on the device?"),
        ("Does Harbor Sync protect against ransomware?", "Can I roll a dock back?"),
    ],
    "troubleshooting": [
        ("Sync is stuck on a blue anchor, what should I do?", "What usually causes that?"),
        ("What does error HS-101 mean?", "What if we use single sign-on?"),
        ("I get error HS-204, how do I fix it?", "Can cloud only help?"),
        ("Error HS-307 on Windows, why?", "How do I enable long paths?"),
        ("Why are uploads so slow?", "Can a VPN slow them down?"),
        ("How do I send logs to support?", "Do logs include my files?"),
    ],
}
OFF_TOPIC = ["hello!", "What is the weather in Lisbon tomorrow?", "thanks, that helped"]
USERS = [f"user-{n}" for n in ("ana", "bo", "chen", "dara", "eli", "fatma", "gus", "hana", "ivo", "jun", "kai", "lea")]


@dataclass(frozen=True)
class Shape:
    """What kind of query index ``i`` is: ``normal``, ``slow`` (the burst), ``sluggish`` or ``failing``."""

    kind: str
    delay_s: float = 0.0


def plan(i: int, cycle: int, slow_delay: float = 3.0) -> Shape:
    """The schedule: queries ``[0.35·cycle, 0.35·cycle + burst)`` of each cycle are a slow burst.

    ``burst`` is max(8, cycle/8) queries: enough to put the demo rule's p95 over 10 s above 2 s for
    several evaluations.  Outside it, 1 query in 23 fails and 1 in 17 is sluggish (1.2 s: a poor
    latency category, but under the alert threshold, so it never fires the alert alone).
    """
    j = i % cycle
    start = int(0.35 * cycle)
    if start <= j < start + max(8, cycle // 8):
        return Shape("slow", slow_delay)
    if j % 23 == 11:
        return Shape("failing")
    if j % 17 == 5:
        return Shape("sluggish", 1.2)
    return Shape("normal")


@dataclass
class TrafficStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    feedback: int = 0
    feedback_failed: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    last_error: str = ""

    def p50(self) -> float:
        xs = sorted(self.latencies[-200:])
        return xs[len(xs) // 2] if xs else 0.0


@dataclass
class _User:
    name: str
    session: str = ""
    left_in_session: int = 0
    last: tuple[str, str] | None = None  # (question, follow-up) of the previous query


class TrafficGenerator:
    """Sends queries to the demo app's ``POST /ask`` and feedback to the processor's API.

    ``feedback_url`` is the processor's ``/api/v1/feedback``; when it is None, no feedback is sent.
    """

    def __init__(self, app_url: str, feedback_url: str | None, *, total: int | None = None, rate: float = 4.0,
                 workers: int = 4, cycle: int = 120, seed: int = 7, slow_delay: float = 3.0) -> None:
        if rate <= 0 or workers < 1:
            raise ValueError("rate must be > 0 and workers >= 1")
        self.app_url = app_url.rstrip("/")
        self.feedback_url = feedback_url
        self.total = total
        self.rate = rate
        self.workers = workers
        self.cycle = min(cycle, total) if total else cycle
        self.slow_delay = slow_delay
        self.stats = TrafficStats()
        self._rng = random.Random(seed)
        self._users = [_User(u) for u in USERS]
        self._next = 0
        self._next_at = 0.0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, deadline: float | None = None) -> TrafficStats:
        """Until ``total`` queries were sent, ``deadline`` (monotonic) passed, or :meth:`stop`."""
        self._next_at = time.monotonic()
        async with httpx.AsyncClient(timeout=30.0) as client:
            await asyncio.gather(*(self._worker(client, deadline) for _ in range(self.workers)))
        return self.stats

    async def _worker(self, client: httpx.AsyncClient, deadline: float | None) -> None:
        while not self._stop.is_set():
            i = self._next
            if self.total is not None and i >= self.total:
                return
            self._next += 1
            # One start slot every 1/rate s; slots missed while all workers were busy (the slow burst)
            # are skipped, not caught up, so a burst is never followed by a flood.
            at = max(self._next_at, time.monotonic())
            self._next_at = at + 1.0 / self.rate
            if deadline is not None and at >= deadline:
                return
            try:
                await asyncio.wait_for(self._stop.wait(), max(0.0, at - time.monotonic()))
                return
            except TimeoutError:
                pass
            await self._one(client, i)

    def _request(self, i: int) -> tuple[_User, dict[str, Any], dict[str, str]]:
        rng = self._rng
        user = rng.choice(self._users)
        if user.left_in_session <= 0:
            user.session = f"s-{user.name[5:]}-{i:05d}"
            user.left_in_session = rng.randint(2, 6)
            user.last = None
        user.left_in_session -= 1
        history: list[str] = []
        if user.last is not None and rng.random() < 0.35:
            question, history = user.last[1], [user.last[0]]
            user.last = None
        elif rng.random() < 0.04:
            question = rng.choice(OFF_TOPIC)
        else:
            topic = rng.choice(sorted(QUESTIONS))
            user.last = rng.choice(QUESTIONS[topic])
            question = user.last[0]
        shape = plan(i, self.cycle, self.slow_delay)
        body = {"question": question, "stream": rng.random() < 0.4, "history": history,
                "simulate": {"delay_s": shape.delay_s, "fail": shape.kind == "failing"}}
        headers = {"x-user-id": user.name, "x-session-id": user.session}
        self.stats.by_kind[shape.kind] += 1
        return user, body, headers

    async def _one(self, client: httpx.AsyncClient, i: int) -> None:
        user, body, headers = self._request(i)
        t0 = time.monotonic()
        self.stats.sent += 1
        try:
            r = await client.post(f"{self.app_url}/ask", json=body, headers=headers)
            trace_id = r.headers.get("x-trace-id") or _json(r).get("trace_id")
            answer = r.text if body["stream"] else _json(r).get("answer", "")
        except httpx.HTTPError as e:
            self.stats.failed += 1
            self.stats.last_error = f"{type(e).__name__}: {e}"
            return
        self.stats.latencies.append(time.monotonic() - t0)
        if r.status_code != 200:
            self.stats.failed += 1
            self.stats.last_error = _json(r).get("error", f"HTTP {r.status_code}")
            return
        self.stats.ok += 1
        if trace_id and self.feedback_url and self._rng.random() < 0.3:
            await self._feedback(client, user.name, trace_id, answer)

    async def _feedback(self, client: httpx.AsyncClient, user: str, trace_id: str, answer: str) -> None:
        """Users like answers that cite something and dislike "does not answer" ones (plus some noise)."""
        helpful = "[" in answer and self._rng.random() < 0.85
        item = {"trace_id": trace_id, "user_id": user, "thumbs": "up" if helpful else "down",
                "score": round(self._rng.uniform(0.7, 1.0) if helpful else self._rng.uniform(0.0, 0.4), 2)}
        if not helpful and self._rng.random() < 0.5:
            item["comment"] = "did not answer my question"
        try:
            r = await client.post(self.feedback_url, json=item)
            ok = r.status_code == 201
        except httpx.HTTPError:
            ok = False
        self.stats.feedback += ok
        self.stats.feedback_failed += not ok


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
