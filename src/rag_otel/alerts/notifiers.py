"""Where alerts go: log, webhook (JSON or Slack body), Prometheus Alertmanager (API v2), email (SMTP).

Delivery runs off the evaluation path: each notifier has its own worker thread and bounded
queue, so a slow or dead endpoint delays nobody else.  A failed delivery is retried with
exponential backoff, then logged and counted; evaluation never waits for it and never sees it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import smtplib
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from rag_otel import semconv
from rag_otel.config import Alerting, ConfigError
from rag_otel.config import Notifier as NotifierConfig
from rag_otel.records import AlertEvent

logger = logging.getLogger("rag_otel.alerts")


def iso(t: float) -> str:
    """RFC 3339 UTC, as Alertmanager and most webhook consumers parse it."""
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def event_dict(e: AlertEvent) -> dict[str, Any]:
    return {
        "rule": e.rule, "state": e.state, "severity": e.severity, "value": e.value, "threshold": e.threshold,
        "labels": e.labels, "message": e.message, "fingerprint": e.fingerprint,
        "started_at": iso(e.started_at), "at": iso(e.at),
    }


def headline(e: AlertEvent) -> str:
    return f"[{e.state.upper()}] {e.rule} ({e.severity}): {e.message}"


class Notifier(Protocol):
    name: str
    max_retries: int

    def send(self, events: list[AlertEvent]) -> None:
        """Deliver or raise; the dispatcher retries."""

    def due(self, now: float) -> list[AlertEvent]:
        """Events to send again without a new evaluation (Alertmanager's keep-alive); usually none."""


class _LazyClient:
    """An httpx client made on first use (building its TLS context takes a while), closed with the notifier."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def get(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class LogNotifier:
    max_retries = 0

    def __init__(self, log: logging.Logger = logger) -> None:
        self.name = "log"
        self._log = log

    def send(self, events: list[AlertEvent]) -> None:
        for e in events:
            level = logging.INFO if e.state == "resolved" else logging.WARNING
            self._log.log(level, "alert %s", headline(e), extra={"alert": event_dict(e)})

    def due(self, now: float) -> list[AlertEvent]:
        return []


class WebhookNotifier:
    """POSTs a JSON body; ``format="slack"`` sends what a Slack incoming webhook expects instead."""

    def __init__(self, url: str, *, format: str = "json", timeout: float = 5.0, max_retries: int = 3) -> None:
        self.name = f"webhook:{url}"
        self.url = url
        self.format = format
        self.max_retries = max_retries
        self._http = _LazyClient(timeout)

    def body(self, events: list[AlertEvent]) -> dict[str, Any]:
        if self.format == "slack":
            return slack_body(events)
        status = "firing" if any(e.state == "firing" for e in events) else "resolved"
        return {"version": "1", "source": "rag-otel", "status": status, "alerts": [event_dict(e) for e in events]}

    def send(self, events: list[AlertEvent]) -> None:
        self._http.get().post(self.url, json=self.body(events)).raise_for_status()

    def close(self) -> None:
        self._http.close()

    def due(self, now: float) -> list[AlertEvent]:
        return []


_SLACK_COLORS = {"resolved": "#2eb886", "critical": "#d00000", "warning": "#daa038", "info": "#439fe0"}


def slack_body(events: list[AlertEvent]) -> dict[str, Any]:
    """Slack's incoming-webhook message: a ``text`` fallback plus one coloured attachment per alert."""
    attachments = []
    for e in events:
        color = _SLACK_COLORS["resolved"] if e.state == "resolved" else _SLACK_COLORS.get(e.severity, "#daa038")
        fields = [{"title": "value", "value": f"{e.value:.4g}" if e.value is not None else "n/a", "short": True},
                  {"title": "threshold", "value": f"{e.threshold:.4g}" if e.threshold is not None else "n/a",
                   "short": True}]
        fields += [{"title": k, "value": v, "short": True} for k, v in e.labels.items() if k != "alertname"]
        attachments.append({
            "color": color, "title": f"[{e.state.upper()}] {e.rule}", "text": e.message, "fields": fields,
            "ts": int(e.at),
        })
    return {"text": "\n".join(headline(e) for e in events), "attachments": attachments}


class AlertmanagerNotifier:
    """Prometheus Alertmanager API v2, sent the way Prometheus sends.

    A firing alert carries ``endsAt`` a few resend periods ahead and is re-posted every
    ``resend_interval``, so Alertmanager resolves it by itself if rag-otel dies; a resolved
    alert is posted once with ``endsAt`` set to when it resolved.
    """

    def __init__(
        self, url: str, *, external_url: str = "http://127.0.0.1:8686", timeout: float = 5.0,
        max_retries: int = 3, resend_interval: float = 60.0,
    ) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts"
        self.name = f"alertmanager:{base}"
        self.external_url = external_url.rstrip("/")
        self.max_retries = max_retries
        self.resend_interval = resend_interval
        self._http = _LazyClient(timeout)
        self._firing: dict[str, AlertEvent] = {}
        self._last_post = 0.0

    def payload(self, e: AlertEvent, now: float) -> dict[str, Any]:
        ends = e.at if e.state == "resolved" else now + 4 * self.resend_interval
        annotations = {"summary": f"{e.rule}: {e.message}", "description": e.message}
        if e.value is not None:
            annotations["value"] = f"{e.value:.6g}"
        if e.threshold is not None:
            annotations["threshold"] = f"{e.threshold:.6g}"
        return {
            "labels": {k: str(v) for k, v in e.labels.items()},
            "annotations": annotations,
            "startsAt": iso(e.started_at),
            "endsAt": iso(ends),
            "generatorURL": f"{self.external_url}/api/alerts?fingerprint={e.fingerprint}",
        }

    def send(self, events: list[AlertEvent]) -> None:
        now = time.time()
        self._http.get().post(self.url, json=[self.payload(e, now) for e in events]).raise_for_status()
        self._last_post = now
        for e in events:
            if e.state == "resolved":
                self._firing.pop(e.fingerprint, None)
            else:
                self._firing[e.fingerprint] = e

    def adopt(self, events: list[AlertEvent]) -> None:
        """Keep re-posting alerts another process fired (a fleet alert whose leader changed), from now:
        without this Alertmanager would resolve them by themselves four resend periods later."""
        for e in events:
            self._firing[e.fingerprint] = e
        self._last_post = 0.0

    def forget(self, fingerprints: list[str]) -> None:
        """Stop re-posting these alerts (another replica leads them now and will resolve them)."""
        for fp in fingerprints:
            self._firing.pop(fp, None)

    def due(self, now: float) -> list[AlertEvent]:
        if self._firing and now - self._last_post >= self.resend_interval:
            return list(self._firing.values())
        return []

    def close(self) -> None:
        self._http.close()


class EmailNotifier:
    """One plain-text email per batch over SMTP (optional STARTTLS and login)."""

    def __init__(
        self, host: str, port: int, sender: str, to: Sequence[str], *, username: str | None = None,
        password: str | None = None, starttls: bool = False, timeout: float = 10.0, max_retries: int = 3,
    ) -> None:
        self.name = f"email:{host}:{port}"
        self.host, self.port, self.sender, self.to = host, port, sender, list(to)
        self.username, self.password, self.starttls, self.timeout = username, password, starttls, timeout
        self.max_retries = max_retries

    def message(self, events: list[AlertEvent]) -> EmailMessage:
        msg = EmailMessage()
        first = events[0]
        more = f" (+{len(events) - 1} more)" if len(events) > 1 else ""
        msg["Subject"] = f"[rag-otel] {first.state.upper()}: {first.rule} ({first.severity}){more}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        lines = []
        for e in events:
            lines += [headline(e), f"  since {iso(e.started_at)}, at {iso(e.at)}",
                      f"  value {e.value}, threshold {e.threshold}", f"  labels {e.labels}", ""]
        msg.set_content("\n".join(lines))
        return msg

    def send(self, events: list[AlertEvent]) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(self.message(events))

    def due(self, now: float) -> list[AlertEvent]:
        return []


def build_notifiers(
    alerting: Alerting, *, external_url: str = "http://127.0.0.1:8686", env: dict[str, str] | None = None
) -> list[Notifier]:
    """The configured notifiers; a missing password variable is a ConfigError now, not a failure at 3am."""
    env = dict(os.environ) if env is None else env
    out: list[Notifier] = []
    for i, n in enumerate(alerting.notifiers):
        out.append(_build(n, i, external_url, env))
    return out


def _build(n: NotifierConfig, i: int, external_url: str, env: dict[str, str]) -> Notifier:
    if n.type == "log":
        return LogNotifier()
    if n.type == "webhook":
        assert n.url
        return WebhookNotifier(n.url, format=n.format, timeout=n.timeout, max_retries=n.max_retries)
    if n.type == "alertmanager":
        assert n.url
        return AlertmanagerNotifier(n.url, external_url=external_url, timeout=n.timeout, max_retries=n.max_retries)
    password = None
    if n.password_env:
        password = env.get(n.password_env)
        if password is None:
            raise ConfigError(f"alerting.notifiers.{i}: environment variable {n.password_env} is not set")
    assert n.smtp_host
    return EmailNotifier(
        n.smtp_host, n.smtp_port, n.sender or "rag-otel@localhost", n.to, username=n.username,
        password=password, starttls=n.starttls, timeout=n.timeout, max_retries=n.max_retries,
    )


Counter = Callable[[str, str], None]  # (notifier name, outcome)


class _Worker(threading.Thread):
    def __init__(self, notifier: Notifier, d: Dispatcher, queue_size: int) -> None:
        super().__init__(name=f"rag-otel-alerts-{notifier.name}", daemon=True)
        self.notifier = notifier
        self.d = d
        self.q: queue.Queue[list[AlertEvent] | None] = queue.Queue(maxsize=queue_size)

    def run(self) -> None:
        while True:
            try:
                batch = self.q.get(timeout=self.d.tick)
            except queue.Empty:
                if self.d.stopping.is_set():
                    return
                try:
                    batch = self.notifier.due(time.time())
                except Exception:
                    logger.exception("alerts: %s could not list alerts to resend", self.notifier.name)
                    batch = []
                if not batch:
                    continue
            if batch is None:
                return
            self.deliver(batch)

    def deliver(self, batch: list[AlertEvent]) -> None:
        n = self.notifier
        delay = self.d.backoff
        for attempt in range(n.max_retries + 1):
            try:
                n.send(batch)
                self.d.count(n.name, "sent")
                return
            except Exception as e:
                if attempt == n.max_retries:
                    self.d.count(n.name, "failed")
                    logger.error("alerts: %s failed %d time(s), giving up on %d alert(s): %s",
                                 n.name, attempt + 1, len(batch), e)
                    return
                self.d.count(n.name, "retried")
                logger.warning("alerts: %s failed (%s); retry %d in %.2fs", n.name, e, attempt + 1, delay)
                if self.d.stopping.wait(delay) and self.d.abandon.is_set():
                    self.d.count(n.name, "failed")
                    return
                delay = min(delay * 2, self.d.max_backoff)


class Dispatcher:
    """Fans notifications out to the notifiers without blocking the caller.

    ``submit`` is the engine's ``notify`` hook.  Outcomes (sent, retried, failed, dropped) are
    counted per notifier in ``stats`` and, given a meter, as ``rag.processor.alerts.notifications``.
    """

    def __init__(
        self, notifiers: Sequence[Notifier], *, queue_size: int = 1000, backoff: float = 0.5,
        max_backoff: float = 30.0, tick: float = 1.0, meter: Any = None,
    ) -> None:
        self.backoff, self.max_backoff, self.tick = backoff, max_backoff, tick
        self.stopping = threading.Event()
        self.abandon = threading.Event()
        self.stats: dict[str, dict[str, int]] = {}
        self._stats_lock = threading.Lock()
        self._counter = None
        if meter is not None:
            self._counter = meter.create_counter(
                semconv.METRIC_P_ALERT_NOTIFICATIONS, unit="{notification}",
                description="Alert notifications by notifier and outcome (sent, retried, failed, dropped).",
            )
        self._workers = [_Worker(n, self, queue_size) for n in notifiers]
        for w in self._workers:
            w.start()

    def count(self, notifier: str, outcome: str) -> None:
        with self._stats_lock:
            s = self.stats.setdefault(notifier, {"sent": 0, "retried": 0, "failed": 0, "dropped": 0})
            s[outcome] += 1
        if self._counter is not None:
            self._counter.add(1, {"notifier": notifier, "outcome": outcome})

    def submit(self, events: list[AlertEvent]) -> None:
        """Queue events for every notifier; when a queue is full the batch is dropped and counted."""
        batch = [e for e in events if e.state != "pending"]
        if not batch:
            return
        for w in self._workers:
            try:
                w.q.put_nowait(list(batch))
            except queue.Full:
                self.count(w.notifier.name, "dropped")
                logger.error("alerts: %s queue is full; dropped %d alert(s)", w.notifier.name, len(batch))

    def adopt(self, events: list[AlertEvent]) -> None:
        """Firing alerts this process now leads but did not notify: only notifiers that keep re-sending
        what fires (Alertmanager) take them; nobody is notified again."""
        for w in self._workers:
            if hasattr(w.notifier, "adopt"):
                w.notifier.adopt(events)

    def forget(self, fingerprints: list[str]) -> None:
        """Alerts this process no longer leads: stop re-sending them."""
        for w in self._workers:
            if hasattr(w.notifier, "forget"):
                w.notifier.forget(fingerprints)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued within ``timeout``, then give up retries and stop the workers."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for w in self._workers:
            with contextlib.suppress(queue.Full):
                w.q.put(None, timeout=max(0.0, deadline - time.monotonic()))
        for w in self._workers:
            w.join(max(0.0, deadline - time.monotonic()))
        self.abandon.set()
        for w in self._workers:
            w.join(0.5)
            close = getattr(w.notifier, "close", None)
            if close is not None and not w.is_alive():
                close()
