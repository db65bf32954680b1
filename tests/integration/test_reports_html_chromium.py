"""The HTML report opens offline in a real browser with its charts: headless Chromium (Debian's
``chromium``) loads the file with every host unresolvable and a dead proxy, and a probe script the
test appends (the report itself has none) writes what the page loaded into the DOM for --dump-dom."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rag_otel.reports import build_report, write_report
from rag_otel.store import Store
from tests.support.store_data import fill, generate, text_config

PROBE = """<script>
window.addEventListener('load', () => {
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    images: [...document.images].map(i => ({id: i.id, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})),
    resources: performance.getEntriesByType('resource').map(e => e.name),
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
  });
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is missing: apt-get install chromium (.ci/run does)")
    return exe


def test_html_report_opens_offline_with_decoded_charts(tmp_path: Path):
    ds = generate(seed=9, days=2, per_day=80, end=datetime(2026, 11, 19, tzinfo=timezone.utc))
    with Store.open(":memory:", config=text_config()) as store:
        fill(store, ds)
        report = build_report(store, "daily", "2026-11-18")
    [page] = write_report(report, tmp_path / "out", ["html"])
    html = page.read_text(encoding="utf-8")
    # nothing to fetch, nothing to run; the only links are anchors to the dashboard's query view
    assert not re.search(r"<script|https?://", re.sub(r'<a href="[^"]*#/query/[0-9a-f]{32}"', "", html))
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--proxy-server=127.0.0.1:9", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    m = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"chromium printed no probe result (rc={proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert [i["id"] for i in result["images"]] == ["chart-performance", "chart-quality", "chart-usage", "chart-cost"]
    for img in result["images"]:
        assert img["complete"] and img["w"] == 700 and img["h"] == 320, img  # decoded at the PNG's size
    assert result["resources"] == []  # not one request left the page
    assert result["headings"][:3] == ["Summary", "Recommendations", "Performance"]
