// rag-otel dashboard: live panels over a WebSocket, a historical view over the analytics API.
// Plain JS, no dependencies: the page must work offline from the processor alone.
"use strict";

const TOKEN_KEY = "rag-otel-token";
const $ = (id) => document.getElementById(id);
const fmt = {
  n: (x) => (x == null ? "–" : Number(x).toLocaleString("en-US")),
  s: (x) => (x == null ? "–" : x < 1 ? `${Math.round(1000 * x)} ms` : `${Number(x).toFixed(2)} s`),
  pct: (x) => (x == null ? "–" : `${(100 * x).toFixed(1)}%`),
  q: (x) => (x == null ? "–" : Number(x).toFixed(2)),
  usd: (x) => (x == null ? "–" : x > 0 && x < 1e-5 ? "< $0.00001"  // never "$2.4e-7"
    : `$${Number(x) >= 1 ? Number(x).toFixed(2) : Number(x).toPrecision(2)}`),
  dur: (s) => (s == null ? "–" : s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`),
  time: (iso) => (iso ? new Date(iso).toLocaleTimeString() : "–"),
};

// --- token (only when the processor sets processor.api_token_env) --------------------------
function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
  return localStorage.getItem(TOKEN_KEY);
}
function askToken() {
  $("token-form").hidden = false;
  $("token-input").focus();
}
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
  $("token-form").hidden = true;
  live.reconnectNow();
  if (!$("view-history").hidden) history_.load();
});

async function api(path, body) {  // GET, or POST with a JSON body
  const t = token(), headers = t ? { Authorization: `Bearer ${t}` } : {};
  const init = body === undefined ? { headers } : { method: "POST", body: JSON.stringify(body), headers: { ...headers, "Content-Type": "application/json" } };
  const res = await fetch(path, init);
  const answer = await res.json().catch(() => ({ message: res.statusText }));
  if (res.status === 401) askToken();
  if (!res.ok) throw new Error(answer.message || `HTTP ${res.status}`);
  return answer;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "–" : String(c)));
  return e;
}
function bars(container, items) {  // items: [{label, value, display, max}]
  container.replaceChildren(...items.map((it) => {
    const w = it.max ? Math.max(0, Math.min(1, it.value / it.max)) * 100 : 0;
    const track = el("span"); track.append(el("i", { style: `width:${w.toFixed(1)}%` }));
    return el("div", { class: "bar" }, el("span", {}, it.label), track, el("b", {}, it.display));
  }));
}
const NO_MODEL = "(no model)";  // a query that failed before any model call: the same words everywhere
function queryLink(traceId, text) {  // every list that shows a query opens it in the query view
  return el("a", { href: `#/query/${traceId}`, class: "qlink", "data-trace": traceId }, text);
}
function setConn(cls, text) { const c = $("conn"); c.className = `conn ${cls}`; c.textContent = text; }

// --- live -----------------------------------------------------------------------------------
function render(s) {
  const h = s.health || {};
  $("scope").textContent = s.scope ? s.scope.label : "";
  $("health-status").textContent = h.status || "–";
  $("health-uptime").textContent = fmt.dur(h.uptime_s);
  $("health-queue").textContent = `${fmt.n(h.queue_depth)} / ${fmt.n(h.traces_in_flight)}`;
  const sys = s.system;
  $("health-system").textContent = sys ? `${fmt.n(sys.cpu_percent?.toFixed(0))}% / ${fmt.n(sys.memory_percent?.toFixed(0))}% / ${fmt.n(sys.disk_percent?.toFixed(0))}%` : "no samples";
  $("health-score").textContent = sys && sys.health_score != null ? fmt.n(Math.round(sys.health_score)) : "–";
  $("health-note").textContent = sys ? `latest sample from ${sys.host || "the app"} at ${fmt.time(sys.ts)} (CPU averaged over the app's `
    + `collection interval); score = 100 − (0.3 CPU% + 0.4 memory% + 0.3 disk%)` : "no system samples in the last 5 minutes";

  const p = s.performance || {};
  $("perf-queries").textContent = fmt.n(p.queries);
  $("perf-success").textContent = fmt.pct(p.success_rate);
  $("perf-latency").textContent = `${fmt.s(p.p50_latency_s)} / ${fmt.s(p.p95_latency_s)}`;
  $("perf-ttfc").textContent = fmt.s(p.avg_ttfc_s);
  spark($("spark"), s.timeline || []);

  const q = s.quality || {};
  $("quality-overall").textContent = fmt.q(q.avg_overall);
  $("quality-scored").textContent = fmt.n(q.scored);
  bars($("quality-axes"), Object.entries(q.axes || {}).map(([k, v]) => ({ label: k, value: v || 0, max: 1, display: fmt.q(v) })));

  const u = s.usage || {};
  $("usage-people").textContent = `${fmt.n(u.users)} / ${fmt.n(u.sessions)}`;
  $("usage-tokens").textContent = `${fmt.n(u.input_tokens)} / ${fmt.n(u.output_tokens)}`;
  $("usage-cost").textContent = fmt.usd(u.cost_usd);
  const top = Math.max(1, ...(u.models || []).map((m) => m.queries));
  bars($("usage-models"), (u.models || []).map((m) => ({ label: m.model || NO_MODEL, value: m.queries, max: top, display: fmt.n(m.queries) })));

  renderAlerts(s.alerts || []);

  const rows = s.recent || [];
  $("recent-rows").replaceChildren(...(rows.length ? rows.map((r) => el("tr", {},
    el("td", {}, queryLink(r.query_id || r.trace_id, fmt.time(r.ts))), el("td", {}, r.user_id), el("td", {}, r.model || NO_MODEL), el("td", {}, r.category),
    el("td", {}, fmt.s(r.duration_s)), el("td", { class: `st-${r.status}` }, r.status), el("td", {}, fmt.q(r.q_overall)),
    el("td", { class: "text" }, r.query_text || ""),
    el("td", {}, r.trace_url ? el("a", { href: r.trace_url, target: "_blank", rel: "noopener" }, "trace") : r.trace_id.slice(0, 8))))
    : [el("tr", {}, el("td", { colspan: 9, class: "muted" }, "no queries yet"))]));
}

// Acknowledge / silence: POST to the alerts API; the answer (and the next live frame) shows the new state.
function alertState(a) {
  const notes = [];
  if (a.acknowledged) notes.push("acknowledged");
  if (a.silenced_until && a.silenced_until * 1000 > Date.now()) notes.push(`silenced until ${new Date(a.silenced_until * 1000).toLocaleTimeString()}`);
  return notes.length ? ` (${notes.join(", ")})` : "";
}
const silenceChoice = {};
function renderAlerts(alerts) {
  if (document.activeElement && $("alerts-list").contains(document.activeElement)) return;  // do not yank a focused control
  $("alerts-list").replaceChildren(...(alerts.length ? alerts.map((a) => {
    const id = encodeURIComponent(a.fingerprint), label = `${a.rule}`;
    const ack = el("button", { type: "button", "aria-label": `Acknowledge ${label}`, disabled: a.state !== "firing" || a.acknowledged ? "" : null }, "Acknowledge");
    ack.addEventListener("click", () => alertAction(`/api/v1/alerts/${id}/acknowledge`, {}, label, "acknowledged"));
    const dur = el("select", { "aria-label": `Silence ${label} for` },
      ...["1h", "4h", "24h"].map((d) => el("option", { value: d }, d)), el("option", { value: "0" }, "lift"));
    dur.value = silenceChoice[a.fingerprint] || "1h";  // live frames re-render the list: keep the user's pick
    dur.addEventListener("change", () => { silenceChoice[a.fingerprint] = dur.value; });
    const sil = el("button", { type: "button", "aria-label": `Silence ${label}` }, "Silence");
    sil.addEventListener("click", () => alertAction(`/api/v1/alerts/${id}/silence`, { duration: dur.value }, label,
      dur.value === "0" ? "silence lifted" : `silenced for ${dur.value}`));
    return el("li", { class: `sev-${a.severity}`, "data-fingerprint": a.fingerprint },
      el("b", {}, `${a.state.toUpperCase()} ${a.rule}`), " ", a.message || "",
      el("span", { class: "alert-state" }, alertState(a)),
      a.last_trace_id ? el("span", {}, " ", queryLink(a.last_trace_id, "latest query")) : "",
      el("span", { class: "alert-actions" }, ack, dur, sil));
  }) : [el("li", { class: "muted" }, "none active")]));
}
async function alertAction(path, body, label, done) {
  try {
    await api(path, body);
    $("alerts-msg").textContent = `${label}: ${done}`;
    $("alerts-msg").className = "ok-msg";
  } catch (e) {
    $("alerts-msg").textContent = `${label}: ${e.message}`;
    $("alerts-msg").className = "error";
  }
  if (document.activeElement) document.activeElement.blur();
  renderAlerts((await api("/api/v1/snapshot").catch(() => ({}))).alerts || []);
}

function spark(canvas, values) {  // queries per minute, oldest first
  const ctx = canvas.getContext("2d"), w = canvas.width, hgt = canvas.height;
  ctx.clearRect(0, 0, w, hgt);
  if (!values.length) return;
  const max = Math.max(1, ...values), step = w / Math.max(1, values.length - 1);
  ctx.strokeStyle = "#2f6fde"; ctx.lineWidth = 2; ctx.beginPath();
  values.forEach((v, i) => { const x = i * step, y = hgt - 4 - (v / max) * (hgt - 8); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
  ctx.stroke();
}

const live = {
  ws: null, delay: 500, timer: null,
  connect() {
    const t = token();
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/live${t ? `?token=${encodeURIComponent(t)}` : ""}`;
    setConn("connecting", "connecting…");
    const ws = (this.ws = new WebSocket(url));
    ws.onopen = () => setConn("live", "live");
    ws.onmessage = (ev) => {
      this.delay = 500;  // a good frame resets the backoff
      const s = JSON.parse(ev.data);
      setConn("live", `live · ${s.viewers} viewer${s.viewers === 1 ? "" : "s"}`);
      render(s);
    };
    ws.onclose = (ev) => this.closed(ev);
  },
  closed(ev) {
    this.ws = null;
    let wait = this.delay;
    if (ev.code === 1013) { setConn("refused", `refused: ${ev.reason}`); wait = Math.max(wait, 3000); }
    else if (ev.code === 1008) {  // policy: a token is needed, or the live feed is off
      setConn("error", ev.reason || "not authorized");
      if (/token/.test(ev.reason)) askToken();
      return;
    }
    else setConn("error", `disconnected; retrying in ${(wait / 1000).toFixed(1)} s`);
    this.delay = Math.min(this.delay * 2, 15000);
    this.timer = setTimeout(() => this.connect(), wait * (0.8 + 0.4 * Math.random()));
  },
  reconnectNow() { clearTimeout(this.timer); if (this.ws) this.ws.close(); else this.connect(); },
};

// --- history --------------------------------------------------------------------------------
function dl(target, pairs) { target.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])); }
const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}
function barChart(svg, labels, values, fmtv) {
  const W = 400, H = 180, pad = 28, n = values.length;
  svg.replaceChildren();
  if (!n) { svg.append(svgEl("text", { x: 10, y: 20 }, "no data")); return; }
  const max = Math.max(1e-12, ...values), bw = (W - pad) / n;
  values.forEach((v, i) => {
    const h = (v / max) * (H - 2 * pad);
    const w = Math.max(1, Math.min(bw - 4, 60));  // one or two bars stay bars, not slabs
    svg.append(svgEl("rect", { x: pad + i * bw + (bw - w) / 2, y: H - pad - h, width: w, height: h, fill: "#2f6fde" }));
    svg.append(svgEl("text", { x: pad + i * bw + bw / 2, y: H - pad + 14, "text-anchor": "middle" }, labels[i]));
    svg.append(svgEl("text", { x: pad + i * bw + bw / 2, y: H - pad - h - 3, "text-anchor": "middle" }, fmtv(v)));
  });
}
function bucketLabel(s) {
  return s == null ? "" : s < 3600 ? `${s / 60} min` : s < 86400 ? `${s / 3600} h` : s < 604800 ? `${s / 86400} day` : "week";
}
function lineChart(svg, points, bucketS) {  // [{bucket, count, p95_latency_s}], bucketS seconds each
  const W = 800, H = 220, pad = 34;
  svg.replaceChildren(svgEl("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, class: "axis" }));
  if (!points.length) { svg.append(svgEl("text", { x: pad, y: 30 }, "no data in this range")); return; }
  const ts = points.map((p) => Date.parse(p.bucket)), t0 = ts[0], span = ts[ts.length - 1] - t0;
  const xs = (i) => pad + (span > 0 ? (ts[i] - t0) / span : 0.5) * (W - 2 * pad);  // by time: gaps stay gaps
  const series = [["count", "#2f6fde", "queries"], ["p95_latency_s", "#c8372d", "p95 latency (s)"]];
  series.forEach(([key, color, label], si) => {
    const max = Math.max(1e-9, ...points.map((p) => p[key] || 0));
    const d = points.map((p, i) => `${i ? "L" : "M"}${xs(i).toFixed(1)},${(H - pad - ((p[key] || 0) / max) * (H - 2 * pad)).toFixed(1)}`).join("");
    svg.append(svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 2 }));
    points.forEach((p, i) => svg.append(svgEl("circle", {  // one marker per bucket with data: a lone bucket is still seen
      cx: xs(i).toFixed(1), cy: (H - pad - ((p[key] || 0) / max) * (H - 2 * pad)).toFixed(1), r: points.length < 40 ? 3 : 1.6,
      fill: color, class: `pt pt-${key === "count" ? "count" : "p95"}`, "data-bucket": p.bucket })));
    svg.append(svgEl("text", { x: pad + si * 160, y: 16, fill: color }, `— ${label} (max ${max.toFixed(key === "count" ? 0 : 2)})`));
  });
  svg.append(svgEl("text", { x: pad, y: H - 10 }, new Date(points[0].bucket).toLocaleString()));
  svg.append(svgEl("text", { x: W - pad, y: H - 10, "text-anchor": "end" }, new Date(points[points.length - 1].bucket).toLocaleString()));
  svg.append(svgEl("text", { x: W / 2, y: H - 10, "text-anchor": "middle", class: "bucket-note" },
    `${points.length} buckets of ${bucketLabel(bucketS)} with data`));
}

function table(target, rows, cells, empty) {  // rows -> <tr> of cells(row); a single muted row when empty
  const n = target.closest("table").querySelectorAll("thead th").length;
  target.replaceChildren(...(rows.length ? rows.map((r) => el("tr", {}, ...cells(r).map((c) => el("td", {}, c))))
    : [el("tr", {}, el("td", { colspan: n, class: "muted" }, empty))]));
}
function renderModels(models) {
  table($("hist-models"), models, (m) => [m.model, fmt.n(m.queries), fmt.pct(m.share), fmt.s(m.avg_latency_s),
    fmt.pct(m.success_rate), fmt.q(m.avg_quality), fmt.usd(m.avg_cost_per_query), fmt.usd(m.cost_usd)], "no queries in this range");
}
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
function heatmap(svg, grid) {  // grid[weekday 0=Mon][hour 0..23], UTC
  const left = 34, top = 16, cw = 30, ch = 20;
  const max = Math.max(0, ...grid.flat());
  svg.replaceChildren();
  for (let h = 0; h < 24; h += 3) svg.append(svgEl("text", { x: left + h * cw + cw / 2, y: 11, "text-anchor": "middle" }, `${h}h`));
  grid.forEach((row, d) => {
    svg.append(svgEl("text", { x: 0, y: top + d * ch + 14 }, WEEKDAYS[d]));
    row.forEach((n, h) => {
      const a = max ? n / max : 0;  // white to the accent blue; count in the tooltip
      const cell = svgEl("rect", { x: left + h * cw, y: top + d * ch, width: cw - 2, height: ch - 2, rx: 2,
        fill: n ? `rgba(47,111,222,${(0.12 + 0.88 * a).toFixed(3)})` : "#eef0f3", "data-count": n });
      cell.append(svgEl("title", {}, `${WEEKDAYS[d]} ${h}:00 UTC: ${n} queries`));
      svg.append(cell);
    });
  });
}
function renderUsage(u, f) {
  const e = u.engagement || {}, peak = u.temporal?.peak;
  dl($("hist-engagement"), [["Queries / users", `${fmt.n(u.total)} / ${fmt.n(u.unique_users)}`],
    ["Sessions", fmt.n(e.sessions)], ["Queries per session", fmt.q(e.avg_queries_per_session)],
    ["Session duration", fmt.dur(e.avg_session_duration_s)], ["Returning users", fmt.n(e.returning_users)],
    ["Average daily users", fmt.q(e.avg_dau)],
    ["Busiest hour", peak && peak.count ? `${WEEKDAYS[peak.weekday]} ${peak.hour}:00 UTC (${fmt.n(peak.count)})` : "–"]]);
  heatmap($("hist-heatmap"), u.temporal?.heatmap || Array.from({ length: 7 }, () => Array(24).fill(0)));
  const cats = u.categories || [], topc = Math.max(1, ...cats.map((c) => c.count));
  bars($("hist-categories"), cats.map((c) => ({ label: c.category, value: c.count, max: topc, display: fmt.n(c.count) })));
  if (!cats.length) $("hist-categories").replaceChildren(el("p", { class: "muted" }, "no categorized queries"));
  table($("hist-topics"), u.topics || [], (t) => [t.topic, fmt.n(t.count),
    (t.examples || []).length ? t.examples.join(" · ") : u.examples_note ? "(not kept)" : "–"], "no topics in this range");
  $("hist-topics-note").textContent = u.examples_note || "";
  table($("hist-features"), f.features || [], (x) => [x.feature, fmt.pct(x.query_share), fmt.pct(x.user_share),
    fmt.s(x.p95_latency_s), fmt.q(x.avg_quality)], "no rag.features tags in this range");
}
const RESOURCE = { cpu_percent: "CPU %", memory_percent: "memory %", disk_percent: "disk %", network_bytes_per_s: "network B/s" };
function renderSystem(sy) {
  table($("hist-resources"), Object.entries(sy.metrics || {}), ([k, m]) => [RESOURCE[k] || k, fmt.q(m.p50), fmt.q(m.p95), fmt.q(m.p99), fmt.q(m.max)], "no samples");
  $("hist-system-note").textContent = `${fmt.n(sy.samples)} samples from ${(sy.hosts || []).join(", ") || "no hosts"}`;
  table($("hist-peaks"), sy.peak_hours || [], (p) => [`${p.hour}:00 UTC`, fmt.q(p.avg_cpu_percent), fmt.q(p.avg_memory_percent), fmt.n(p.samples)], "no samples");
  table($("hist-bottlenecks"), sy.bottlenecks || [], (b) => [RESOURCE[b.resource] || b.resource,
    b.correlation == null ? "–" : b.correlation.toFixed(2), fmt.n(b.buckets),
    b.note ? `not enough data (${b.note})` : b.bottleneck ? "yes" : "no"], "not enough data");
}

const history_ = {
  query: "period=7d",
  seq: 0,  // the latest load: an older one that answers later (a slow 7d after a quick 1h) is dropped
  async load() {
    const mine = ++this.seq;
    $("history-error").hidden = true;
    try {
      const names = ["performance", "quality", "model_usage_and_cost", "query_patterns", "feature_usage", "system_usage"];
      const [perf, qual, cost, usage, features, system] = await Promise.all(names.map((n) => api(`/api/v1/analytics/${n}?${this.query}`)));
      if (mine !== this.seq) return;
      const when = (iso) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      $("range-label").textContent = `${when(perf.period.start)} → ${when(perf.period.end)} (${perf.source})`;
      dl($("hist-perf"), [["Queries", fmt.n(perf.total)], ["Success rate", fmt.pct(perf.success_rate)],
        ["p50 / p95 / p99", `${fmt.s(perf.p50_latency_s)} / ${fmt.s(perf.p95_latency_s)} / ${fmt.s(perf.p99_latency_s)}`]]);
      const quality = [["Average overall", fmt.q(qual.overall?.avg)], ["Scored", `${fmt.n(qual.scored)} of ${fmt.n(qual.queries)}`]];
      if (qual.unscored_no_content) quality.push(["Unscored: no content", `${fmt.n(qual.unscored_no_content)}: ${qual.scoring_hint}`]);
      dl($("hist-quality"), quality);
      const costRows = [["Total", fmt.usd(cost.total_cost_usd)], ["Unpriced queries", fmt.n(cost.unpriced_queries)]];
      if (cost.cost_incomplete_queries) costRows.push(["Cost incomplete", `${fmt.n(cost.cost_incomplete_queries)} queries: a model call without usage or price, so the total is a lower bound`]);
      const ing = cost.ingestion || {};
      if (ing.traces) costRows.push(["Ingestion", `${fmt.n(ing.traces)} traces (index builds, uploads; not queries): ${fmt.n((ing.input_tokens || 0) + (ing.output_tokens || 0))} tokens, ${fmt.usd(ing.cost_usd)}`]);
      dl($("hist-cost"), costRows);
      lineChart($("hist-timeline"), perf.timeline || [], perf.bucket_s);
      const hist = qual.overall?.histogram || [];
      barChart($("hist-quality-chart"), hist.map((_, i) => (i / 10).toFixed(1)), hist, (v) => (v ? v : ""));
      const models = cost.models || [];
      barChart($("hist-cost-chart"), models.map((m) => m.model), models.map((m) => m.cost_usd || 0), fmt.usd);
      renderModels(models);
      const tbody = $("hist-worst"), worst = qual.worst || [];
      tbody.replaceChildren(...(worst.length ? worst.map((w) => el("tr", {},
        el("td", {}, queryLink(w.query_id || w.trace_id, new Date(w.ts).toLocaleString())), el("td", {}, fmt.q(w.q_overall)),
        el("td", {}, w.model || NO_MODEL), el("td", {}, w.category), el("td", { class: "text" }, w.query_text || "(not captured)")))
        : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no scored queries in this range"))]));
      renderUsage(usage, features);
      renderSystem(system);
    } catch (e) {
      if (mine !== this.seq) return;
      $("history-error").textContent = `Could not load analytics: ${e.message}`;
      $("history-error").hidden = false;
    }
  },
};
document.querySelectorAll("#range button[data-period]").forEach((b) => b.addEventListener("click", () => {
  document.querySelectorAll("#range button[data-period]").forEach((x) => x.classList.toggle("active", x === b));
  history_.query = `period=${b.dataset.period}`;
  history_.load();
}));
$("range").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = $("range-from").value, t = $("range-to").value;
  if (!f) { $("history-error").textContent = "Pick a start time (and optionally an end)."; $("history-error").hidden = false; return; }
  document.querySelectorAll("#range button[data-period]").forEach((x) => x.classList.remove("active"));
  const iso = (v) => new Date(v).toISOString();
  history_.query = `from=${encodeURIComponent(iso(f))}${t ? `&to=${encodeURIComponent(iso(t))}` : ""}`;
  history_.load();
});

// --- the query view: one query by trace id (#/query/<trace id>) -------------------------------
const ROLE = { llm: "model call", embedding: "embeddings", retrieval: "retrieval", rerank: "rerank", other: "" };
function depthOf(spans) {  // indentation of each span under its parent, for the waterfall
  const byId = Object.fromEntries(spans.map((s) => [s.id, s])), depth = {};
  const d = (s, seen = 0) => (depth[s.id] ??= s.parent && byId[s.parent] && seen < 50 ? d(byId[s.parent], seen + 1) + 1 : 0);
  spans.forEach((s) => d(s));
  return depth;
}
function waterfall(spans, totalMs) {
  const depth = depthOf(spans), end = Math.max(totalMs || 0, ...spans.map((s) => s.start_ms + s.duration_ms), 1e-3);
  const t0 = Math.min(0, ...spans.map((s) => s.start_ms));
  return spans.map((s) => {
    const left = ((s.start_ms - t0) / (end - t0)) * 100, width = (s.duration_ms / (end - t0)) * 100;
    const bar = el("i", { class: `wf-bar role-${s.role}${s.status === "error" ? " st-error" : ""}`,
      style: `left:${left.toFixed(2)}%;width:${Math.max(0.2, width).toFixed(2)}%`,
      title: `${s.name}: starts at ${fmt.s(s.start_ms / 1000)}, takes ${fmt.s(s.duration_ms / 1000)}` });
    const track = el("span", { class: "wf-track" }); track.append(bar);
    return el("div", { class: "wf-row", "data-role": s.role },
      el("span", { class: "wf-name", style: `padding-left:${(depth[s.id] || 0) * 1.1}rem`, title: s.name },
        s.name, ROLE[s.role] ? el("small", { class: "muted" }, ` ${ROLE[s.role]}`) : ""),
      track, el("span", { class: "wf-dur" }, fmt.s(s.duration_ms / 1000)));
  });
}
function rowsOrEmpty(target, rows, empty) {
  const n = target.closest("table").querySelectorAll("thead th").length;
  target.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: n, class: "muted" }, empty))]));
}
const queryView = {
  async show(traceId) {
    $("query-error").hidden = true;
    $("query-id").textContent = traceId;
    let q;
    try { q = await api(`/api/v1/queries/${encodeURIComponent(traceId)}`); } catch (e) {
      $("query-error").textContent = `Could not open query ${traceId}: ${e.message}`;
      $("query-error").hidden = false;
      for (const id of ["query-text", "waterfall", "query-facts"]) $(id).replaceChildren();
      return;
    }
    $("query-text").textContent = q.query_text || "(query text not kept: the processor keeps it only with content.capture: full)";
    const facts = [["Time", new Date(q.ts).toLocaleString()], ["Service", q.service], ["User", q.user_id], ["Session", q.session_id],
      ["Model", q.model || NO_MODEL], ["Status", q.status === "error" ? `error: ${q.error_type || "unknown"}` : q.status],
      ["Latency", fmt.s(q.duration_s)], ["Latency category", q.latency_category], ["Time to first chunk", fmt.s(q.ttfc_s)],
      ["Tokens in / out", `${fmt.n(q.input_tokens)} / ${fmt.n(q.output_tokens)}`], ["Cost", fmt.usd(q.cost_usd)],
      ["Quality", q.q_overall == null ? (q.q_status || "–") : `${fmt.q(q.q_overall)} (${q.q_grade || "–"})`],
      ["Category / topic", `${q.category || "–"} / ${q.topic || "–"}`], ["Documents", fmt.n(q.documents)]];
    $("query-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    if (q.trace_url) $("query-facts").append(el("dt", {}, "Trace"), el("dd", {}, el("a", { href: q.trace_url, target: "_blank", rel: "noopener" }, "open in Jaeger")));
    const spans = q.spans || [];
    $("waterfall-note").textContent = spans.length ? `${spans.length} spans, ${fmt.s(q.duration_s)} end to end`
      : (q.details_stored ? "no spans kept" : "stored before this processor kept span details");
    $("waterfall").replaceChildren(...waterfall(spans, 1000 * q.duration_s));
    const calls = spans.filter((s) => s.role === "llm" || s.role === "embedding");
    rowsOrEmpty($("query-calls"), calls.map((c) => el("tr", {}, el("td", {}, c.name), el("td", {}, c.model || "–"),
      el("td", {}, fmt.n(c.input_tokens)), el("td", {}, fmt.n(c.output_tokens)),
      el("td", {}, c.counted === false ? "(counted below)" : fmt.usd(c.cost_usd)), el("td", {}, fmt.s(c.duration_ms / 1000)))),
      "no model calls");
    rowsOrEmpty($("query-sources"), (q.sources || []).map((s, i) => el("tr", {}, el("td", {}, i + 1), el("td", {}, s.id), el("td", {}, fmt.q(s.score)))),
      "no sources retrieved");
    const ql = q.quality || {}, axes = Object.entries(ql.axes || {});
    $("quality-note").textContent = ql.status ? `${ql.status}${ql.evaluator ? ` by ${ql.evaluator}` : ""}` : "";
    const noEvidence = "not kept (content capture is not full)";
    rowsOrEmpty($("query-axes"), axes.map(([name, a]) => el("tr", { "data-axis": name }, el("td", {}, name), el("td", {}, fmt.q(a.score)),
      el("td", {}, a.label || "–"), el("td", { class: "why" }, a.explanation || "–"), el("td", { class: "why" }, a.evidence || (ql.evidence_kept ? "–" : noEvidence)))),
      { no_content: "not scored: the app sent no question and answer to score", skipped: "not scored (sampled out, or the trace was incomplete)",
        error: "scoring failed", unsupported_language: "not scored: no scorer for this language" }[ql.status] || "not scored");
    const fb = q.feedback || [];
    $("query-feedback").replaceChildren(...(fb.length ? fb.map((f) => el("li", {},
      `${new Date(f.ts).toLocaleString()}: ${f.thumbs ? `thumbs ${f.thumbs}` : ""}${f.score != null ? ` score ${fmt.q(f.score)}` : ""}`,
      f.comment ? ` "${f.comment}"` : "", f.user_id ? ` (${f.user_id})` : "")) : [el("li", { class: "muted" }, "no feedback")]));
    const names = q.alerts || [], events = q.alert_events || [];
    $("query-alerts").replaceChildren(...(names.length ? names.map((n) => el("li", {}, el("b", {}, n), " ",
      events.filter((e) => e.rule === n).map((e) => `${e.state} ${new Date(e.ts).toLocaleTimeString()}${e.message ? `: ${e.message}` : ""}`).join("; ")))
      : [el("li", { class: "muted" }, "none firing when this query ran")]));
  },
};
$("open-trace").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("open-trace-id").value.trim().toLowerCase().replace(/^0x/, "");
  if (id) location.hash = `#/query/${id}`;
});

function showView(view) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === view));
  for (const v of ["live", "history", "query"]) $(`view-${v}`).hidden = v !== view;
}
function route() {  // #/query/<id> opens a query; #/history the history tab; anything else the live view
  const m = location.hash.match(/^#\/query\/([0-9a-fA-Fx]+(?:-[0-9a-fA-F]{16})?)/);  // a trace id, or <trace id>-<span id>
  if (m) { showView("query"); queryView.show(m[1]); return; }
  if (location.hash === "#/history") { showView("history"); history_.load(); return; }
  showView("live");
}
document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
  const v = tab.dataset.view;
  if (v === "query") { showView("query"); if (!/^#\/query\//.test(location.hash)) $("open-trace-id").focus(); return; }
  location.hash = v === "history" ? "#/history" : "#/";
}));
window.addEventListener("hashchange", route);

token();  // takes a #token= hand-over before the router reads the hash
route();
live.connect();
