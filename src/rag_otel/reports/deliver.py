"""Where a report goes: files in a folder, an email with the charts inline, a webhook.

Each channel raises on failure; :func:`deliver` runs every configured channel, so one dead
endpoint does not stop the others, and returns what happened to each.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from rag_otel.config import ConfigError, Reporting, SmtpSettings
from rag_otel.reports.builder import Report
from rag_otel.reports.render import EXTENSIONS, parse_formats, render, to_html, to_markdown

logger = logging.getLogger("rag_otel.reports")


def default_out_dir(reporting: Reporting, data_dir: str | os.PathLike[str]) -> Path:
    """``reporting.out_dir``, else ``<data_dir>/reports``."""
    return Path(reporting.out_dir) if reporting.out_dir else Path(data_dir) / "reports"


def write_report(report: Report, out: str | os.PathLike[str], formats: Sequence[str] | str) -> list[Path]:
    """Write ``formats`` into directory ``out`` as ``<name>.<ext>`` (charts as ``<name>-<chart>.png``).

    ``out`` may also be a file path (it has a suffix and is not an existing directory) when one
    text format is asked for: that file is written, and PNG charts go beside it.
    """
    fmts = parse_formats(list(formats) if not isinstance(formats, str) else formats)
    folder, file_target = out_layout(out, fmts)
    folder.mkdir(parents=True, exist_ok=True)
    texts = [f for f in fmts if f != "png"]
    written: list[Path] = []
    charts_needed = "png" in fmts or "markdown" in fmts  # the Markdown links the PNG files
    if charts_needed:
        for name, png in report.charts.items():
            p = folder / f"{report.name}-{name}.png"
            atomic_write(p, png)
            written.append(p)
    for f in texts:
        p = file_target or folder / f"{report.name}.{EXTENSIONS[f]}"
        atomic_write(p, render(report, f).encode("utf-8"))
        written.append(p)
    return written


def out_layout(out: str | os.PathLike[str], formats: Sequence[str]) -> tuple[Path, Path | None]:
    """``(folder, file)``: where ``--out`` puts a report's files; ``file`` is set when ``out`` names the one
    text file (it has a suffix and is not an existing directory), charts then go beside it.  Shared by
    the local writer and the CLI's download from a running serve, so both place files alike."""
    target = Path(out)
    texts = [f for f in formats if f != "png"]
    if target.suffix != "" and not target.is_dir():
        if len(texts) > 1:
            raise ValueError(f"--out {target} is a file but {len(texts)} formats were asked for; give a directory")
        return target.parent, target
    return target, None


def atomic_write(path: Path, data: bytes) -> None:
    """Readers (the web API, a mail client opening a link) never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- email -------------------------------------------------------------------------------------
def email_message(report: Report, sender: str, recipients: Sequence[str],
                  attachments: Sequence[Path] = ()) -> EmailMessage:
    """multipart/mixed: alternative(text, related(html + charts as ``cid:`` images)) + attachments."""
    msg = EmailMessage()
    msg["Subject"] = report.title
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    # short ids (no header folding), unique per message so mail clients never mix two reports' images
    token = secrets.token_hex(6)
    cids = {name: f"<{name}.{report.name}.{token}@rag-otel>" for name in report.charts}
    msg.set_content(to_markdown(report, images=False))
    msg.add_alternative(to_html(report, image_src=lambda name, _png: "cid:" + cids[name][1:-1]), subtype="html")
    html_part = msg.get_payload()[-1]
    for name, png in report.charts.items():
        html_part.add_related(png, maintype="image", subtype="png", cid=cids[name],
                              filename=f"{report.name}-{name}.png", disposition="inline")
    for path in attachments:
        data = path.read_bytes()
        if path.suffix == ".png":
            msg.add_attachment(data, maintype="image", subtype="png", filename=path.name)
        else:
            maintype, subtype = {".json": ("application", "json"), ".html": ("text", "html"),
                                 ".md": ("text", "markdown")}.get(path.suffix, ("application", "octet-stream"))
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
    return msg


def send_email(report: Report, smtp: SmtpSettings, recipients: Sequence[str], *, attachments: Sequence[Path] = (),
               env: dict[str, str] | None = None) -> None:
    env = dict(os.environ) if env is None else env
    password = None
    if smtp.password_env:
        password = env.get(smtp.password_env)
        if password is None:
            raise ConfigError(f"reporting.smtp.password_env: environment variable {smtp.password_env} is not set")
    msg = email_message(report, smtp.sender, recipients, attachments)
    cls = smtplib.SMTP_SSL if smtp.ssl else smtplib.SMTP
    with cls(smtp.host, smtp.port, timeout=smtp.timeout) as conn:
        if smtp.starttls and not smtp.ssl:
            conn.starttls()
        if smtp.username:
            conn.login(smtp.username, password or "")
        conn.send_message(msg)


# --- webhook -----------------------------------------------------------------------------------
def webhook_payload(report: Report, files: Sequence[Path]) -> dict[str, Any]:
    """A summary a chat bot or pipeline can act on, plus where the full report is."""
    d = report.to_dict()
    return {"kind": report.kind, "name": report.name, "title": report.title, "period": d["period"],
            "generated_at": report.generated_at, "summary": d["summary"],
            "recommendations": [{"severity": r["severity"], "rule": r["rule"], "message": r["message"]}
                                for r in d["recommendations"]],
            "files": [str(p.resolve()) for p in files]}


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 10.0) -> None:
    resp = httpx.post(url, content=json.dumps(payload), headers={"content-type": "application/json"},
                      timeout=timeout)
    resp.raise_for_status()


# --- all channels --------------------------------------------------------------------------------
def deliver(report: Report, reporting: Reporting, files: Sequence[Path], *,
            env: dict[str, str] | None = None) -> dict[str, str]:
    """Email (when ``smtp`` and this kind's recipients are set) and webhook (when ``webhook_url`` is set).

    Returns ``{channel: "ok" | "error: ..."}``; never raises for a channel's failure.
    """
    results: dict[str, str] = {}
    sched = reporting.daily_report if report.kind == "daily" else reporting.weekly_report
    if sched.recipients:
        try:
            if reporting.smtp is None:
                raise ConfigError("recipients are set but reporting.smtp is not configured")
            attach = [p for p in files if p.suffix in (".json", ".html")]
            send_email(report, reporting.smtp, sched.recipients, attachments=attach, env=env)
            results["email"] = "ok"
        except Exception as e:  # reported per channel, the others still run
            logger.error("rag-otel report %s: email to %s failed: %s", report.name, sched.recipients, e)
            results["email"] = f"error: {e}"
    if reporting.webhook_url:
        try:
            post_webhook(reporting.webhook_url, webhook_payload(report, files))
            results["webhook"] = "ok"
        except Exception as e:
            logger.error("rag-otel report %s: webhook %s failed: %s", report.name, reporting.webhook_url, e)
            results["webhook"] = f"error: {e}"
    return results
