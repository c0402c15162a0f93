// autolab dashboard: follows /api/stream (server-sent events from the ledger) and renders the
// header, the progress chart, the live training curve, the experiment table and the events;
// #/exp/N shows one experiment. No framework: the state is one object, renders are functions.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
// The failed statuses come from the API (/api/overview's failed_statuses), never a copy here.
const failedStatuses = () => (S.overview && S.overview.failed_statuses) || [];
const COLORS = {
  keep: "#3fb96f", discard: "#8a94a3", crash: "#f2555a", timeout: "#e59a3a",
  invalid: "#d266c0", interrupted: "#d9b44a", running: "#5aa7ff", baseline: "#9aa8ff",
  manual: "#f2a65a", pruned: "#b08ee0",
};
const PALETTE = ["#f2a65a", "#c678dd", "#56d4c8", "#e06c9f", "#d7d35a", "#7aa2ff", "#ff7b72", "#9be07f"];
const MAX_EVENTS = 300;

const S = {
  overview: null,
  experiments: [],
  byNumber: new Map(),
  metrics: new Map(),      // number -> metric rows, as far as received
  events: [],
  seenEvents: new Set(),
  compare: new Set(),      // numbers ticked in the table
  sort: { key: "number", dir: -1 },
  filter: { text: "", status: "" },
  session: null,           // null: follow the latest session
  route: { page: "home" },
  dismissed: Number(localStorage.getItem("autolab.dismissed") || 0),
  source: null,
  detail: null,            // the experiment page's data
  surprisal: null,         // the surprisal panel's last result, kept across re-renders
};

// ---- helpers -------------------------------------------------------------------------------

function url(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) q.set(k, v);
  if (TOKEN) q.set("token", TOKEN);
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}
async function getJSON(path, params) {
  const r = await fetch(url(path, params), { headers: { accept: "application/json" } });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const bpb = (v, d = 4) => (isNum(v) ? v.toFixed(d) : "—");
function signed(v, d = 4) { return isNum(v) ? (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(d) : ""; }
function mem(mb) {
  if (!isNum(mb)) return "";
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${Math.round(mb)} MB`;
}
function dur(s) {
  if (!isNum(s)) return "";
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
const statusPill = (s) => `<span class="status s-${esc(s)}">${esc(s)}</span>`;
const statusGroup = (s) => (failedStatuses().includes(s) ? "failed" : s);
// A baseline's or a re-check's description already says what it is ("baseline (seed 0)",
// "re-check of exp 5 (seed 1005)"): it is dimmed, not prefixed again.
function describe(e) {
  if (e.kind !== "candidate" && e.kind !== "manual") return `<span class="kind">${esc(e.description)}</span>`;
  return esc(e.description);
}
function liveNumber() {
  const running = S.experiments.filter((e) => e.shown_status === "running");
  if (running.length) return running[running.length - 1].number;
  return S.experiments.length ? S.experiments[S.experiments.length - 1].number : null;
}

// ---- plotly --------------------------------------------------------------------------------

const PLOT_CONFIG = { displayModeBar: false, responsive: true };
function baseLayout(extra = {}) {
  const axis = { gridcolor: "#222a35", zerolinecolor: "#2a3340", linecolor: "#2a3340", tickfont: { family: "ui-monospace, Menlo, monospace", size: 11, color: "#8590a0" } };
  return {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "Inter, system-ui, sans-serif", size: 11, color: "#b9c1cc" },
    margin: extra.margin || { l: 56, r: 14, t: 10, b: 40 },
    hoverlabel: { bgcolor: "#1b212a", bordercolor: "#3a4453", font: { family: "ui-monospace, Menlo, monospace", size: 12, color: "#e3e7ee" } },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 11 }, bgcolor: "rgba(0,0,0,0)" },
    xaxis: { ...axis, ...(extra.xaxis || {}) },
    yaxis: { ...axis, ...(extra.yaxis || {}) },
    shapes: extra.shapes || [], annotations: extra.annotations || [],
    showlegend: extra.showlegend ?? true,
    uirevision: extra.uirevision,
  };
}
function plot(el, traces, layout) {
  if (!window.Plotly) { el.innerHTML = `<div class="empty">plotly.js is not available: pip install plotly</div>`; return; }
  Plotly.react(el, traces, layout, PLOT_CONFIG);
}

function renderProgress() {
  const el = $("#progress-chart");
  const exps = S.experiments;
  // Every number here is the API's standing of the row: its score and Δ, never recomputed.
  const scored = exps.filter((e) => isNum(e.score));
  if (!exps.length) { plot(el, [], baseLayout({ annotations: [emptyNote("no experiments yet")] })); return; }
  const pts = (list) => ({
    x: list.map((e) => e.number), y: list.map((e) => e.score),
    customdata: list.map((e) => [e.shown_status, e.description, e.reason || ""]),
  });
  const hover = "<b>#%{x}</b> %{customdata[0]}  %{y:.4f}<br>%{customdata[1]}<extra></extra>";
  const traces = [];
  // A person's `autolab train` runs (researcher "manual") are their own history: own trace,
  // own running best; the session's traces and best line leave them out.
  const isManual = (e) => e.researcher === "manual" && e.session_id == null;
  const discards = scored.filter((e) => !isManual(e) && e.kind !== "baseline" && (e.status === "discard" || e.kind === "recheck"));
  traces.push({ ...pts(discards), name: "discard", mode: "markers", type: "scatter", hovertemplate: hover,
    marker: { color: "rgba(138,148,163,.45)", size: 7, line: { width: 0 } } });
  const baselines = scored.filter((e) => e.kind === "baseline");
  traces.push({ ...pts(baselines), name: "baseline", mode: "markers", type: "scatter", hovertemplate: hover,
    marker: { color: COLORS.baseline, size: 9, symbol: "diamond" } });
  // Confirm runs: the reference (open diamonds) and the best (open circles) re-run after the search.
  const confirms = scored.filter((e) => e.kind === "confirm");
  if (confirms.length) traces.push({ ...pts(confirms), name: "confirm run", mode: "markers", type: "scatter", hovertemplate: hover,
    marker: { size: 8, symbol: confirms.map((e) => (e.confirms === "best" ? "circle-open" : "diamond-open")),
      color: confirms.map((e) => (e.confirms === "best" ? COLORS.keep : COLORS.baseline)), line: { width: 2 } } });
  const kept = scored.filter((e) => e.status === "keep" && e.kind === "candidate");
  // Running best: the API's step lines, one per hardware fingerprint (a branch continued on
  // other hardware starts again from that fingerprint's reference); the keep band below the
  // current one. Each is carried to the last row shown.
  const ref = S.overview && S.overview.reference;
  const lines = (S.overview && S.overview.running_best) || [];
  lines.forEach((line, i) => {
    const x = line.x.slice(), y = line.y;
    if (i === lines.length - 1) x[x.length - 1] = Math.max(x[x.length - 1], exps[exps.length - 1].number + 0.5);
    if (line.current && ref && isNum(ref.band) && ref.band > 0) {
      traces.push({ x, y: y.map((v) => v - ref.band), name: "keep band", mode: "lines", type: "scatter", hoverinfo: "skip",
        line: { color: "rgba(63,185,111,0)", width: 0, shape: "hv" }, showlegend: false });
      traces.push({ x, y, name: `keep band (${ref.band.toFixed(4)})`, mode: "lines", type: "scatter", hoverinfo: "skip",
        fill: "tonexty", fillcolor: "rgba(63,185,111,.10)", line: { color: "rgba(63,185,111,0)", width: 0, shape: "hv" } });
    }
    traces.push({ x, y, name: "running best", legendgroup: "running best", showlegend: i === 0, mode: "lines", type: "scatter",
      hoverinfo: lines.length > 1 ? "text" : "skip", text: x.map(() => line.fingerprint),
      line: { color: COLORS.keep, width: 2, shape: "hv" } });
  });
  traces.push({ ...pts(kept), name: "keep", mode: "markers+text", type: "scatter", hovertemplate: hover,
    text: kept.map((e) => (e.description.length > 28 ? e.description.slice(0, 27) + "…" : e.description)),
    textposition: "top right", textfont: { size: 10, color: COLORS.keep },
    marker: { color: COLORS.keep, size: 10, line: { color: "#0d1014", width: 1.5 } } });
  const manual = scored.filter((e) => isManual(e) && e.kind === "manual");
  if (manual.length) {
    const mx = [], my = [];
    for (const e of exps.filter(isManual)) {
      const best = e.status === "keep" && e.kind === "manual" ? e.score : e.best_before;
      if (isNum(best) && (!my.length || my[my.length - 1] !== best)) { mx.push(e.number); my.push(best); }
    }
    if (mx.length) { mx.push(exps[exps.length - 1].number + 0.5); my.push(my[my.length - 1]); }
    traces.push({ x: mx, y: my, name: "your best", mode: "lines", type: "scatter", hoverinfo: "skip",
      line: { color: COLORS.manual, width: 1.5, dash: "dot", shape: "hv" } });
    traces.push({ ...pts(manual), name: "manual (autolab train)", mode: "markers", type: "scatter", hovertemplate: hover,
      marker: { color: manual.map((e) => (e.status === "keep" ? COLORS.manual : "rgba(242,166,90,.45)")), size: 9, symbol: "square" } });
  }
  // Failures have no score: marked along the top edge, coloured by kind.
  const ys = scored.map((e) => e.score);
  const lo = ys.length ? Math.min(...ys) : 0, hi = ys.length ? Math.max(...ys) : 1;
  const pad = Math.max((hi - lo) * 0.08, Math.abs(hi) * 0.004, 0.002);
  const top = hi + 1.5 * pad;
  const failed = exps.filter((e) => failedStatuses().includes(e.status) || e.shown_status === "interrupted");
  traces.push({ x: failed.map((e) => e.number), y: failed.map(() => top), name: "crash · timeout · invalid",
    mode: "markers", type: "scatter",
    customdata: failed.map((e) => [e.shown_status, e.description, e.reason || ""]),
    hovertemplate: "<b>#%{x}</b> %{customdata[0]}<br>%{customdata[1]}<br><i>%{customdata[2]}</i><extra></extra>",
    marker: { symbol: "x-thin", size: 10, line: { width: 2.5, color: failed.map((e) => COLORS[e.shown_status] || COLORS.crash) } } });
  // Pruned (--prune): stopped early, so no score either; along the top edge, their own mark.
  const pruned = exps.filter((e) => e.status === "pruned");
  if (pruned.length) traces.push({ x: pruned.map((e) => e.number), y: pruned.map(() => top), name: "pruned",
    mode: "markers", type: "scatter", customdata: pruned.map((e) => [e.shown_status, e.description, e.reason || ""]),
    hovertemplate: "<b>#%{x}</b> %{customdata[0]}<br>%{customdata[1]}<br><i>%{customdata[2]}</i><extra></extra>",
    marker: { symbol: "triangle-down-open", size: 9, line: { width: 2 }, color: COLORS.pruned } });
  const shapes = [], annotations = [];
  const base = ref && ref.bpb;
  if (isNum(base)) {
    shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: base, y1: base, line: { color: "#4a5566", width: 1, dash: "dot" } });
    annotations.push({ xref: "paper", x: 1, y: base, xanchor: "right", yanchor: "bottom", text: "reference", showarrow: false, font: { size: 10, color: "#6b7686" } });
  }
  // Each session continued with --resume starts where a dotted line marks it.
  const sessionRows = exps.filter((e) => !isManual(e));
  for (const e of sessionRows) {
    const prev = sessionRows[sessionRows.indexOf(e) - 1];
    if (!prev || prev.session_id === e.session_id) continue;
    shapes.push({ type: "line", yref: "paper", x0: e.number - 0.5, x1: e.number - 0.5, y0: 0, y1: 1, line: { color: "#6b7686", width: 1, dash: "dot" } });
    annotations.push({ yref: "paper", x: e.number - 0.5, y: 0, yanchor: "bottom", xanchor: "left", text: `session ${e.session_id}${e.kind === "confirm" ? " · confirm" : ""}`, showarrow: false, font: { size: 10, color: "#6b7686" } });
  }
  const running = exps.filter((e) => e.shown_status === "running");
  for (const e of running) {
    shapes.push({ type: "line", yref: "paper", x0: e.number, x1: e.number, y0: 0, y1: 1, line: { color: COLORS.running, width: 1.5, dash: "dash" } });
    annotations.push({ yref: "paper", x: e.number, y: 1, yanchor: "bottom", text: `#${e.number} running`, showarrow: false, font: { size: 10, color: COLORS.running } });
  }
  const xmax = exps[exps.length - 1].number;
  plot(el, traces, baseLayout({
    uirevision: "progress", shapes, annotations,
    xaxis: { title: { text: "experiment" }, range: [0.3, xmax + 0.7], dtick: xmax > 30 ? undefined : 1 },
    yaxis: { title: { text: "val_bpb" }, tickformat: ".3f", range: [lo - pad, (failed.length ? top : hi) + pad] },
  }));
}

function emptyNote(text) {
  return { xref: "paper", yref: "paper", x: 0.5, y: 0.5, text, showarrow: false, font: { size: 13, color: "#6b7686" } };
}

// The curves' metric, x axis and smoothing, and their traces: panels.js (curveTraces).

function renderLive() {
  const el = $("#live-chart");
  const live = liveNumber();
  const traces = [];
  let i = 0;
  for (const n of [...S.compare].sort((a, b) => a - b)) {
    if (n === live) continue;
    const rows = S.metrics.get(n);
    if (rows) traces.push(...curveTraces(n, rows, PALETTE[i++ % PALETTE.length], 1.5, curveName(n)));
  }
  const best = S.overview && S.overview.best ? S.overview.best.number : null;
  if (best != null && best !== live && !S.compare.has(best)) {
    const ref = S.metrics.get(best);
    if (ref) traces.push(...curveTraces(best, ref, COLORS.keep, 1.2, curveName(best, "best "), { opacity: 0.55, dash: "dot" }));
    else ensureMetrics(best).then(renderLive).catch(() => {});
  }
  // The other experiments in flight (research --workers N): each its own live curve.
  for (const other of S.experiments.filter((x) => x.shown_status === "running" && x.number !== live)) {
    const otherRows = S.metrics.get(other.number);
    if (otherRows) traces.push(...curveTraces(other.number, otherRows, COLORS.running, 1.5, curveName(other.number) + " (live)", { opacity: 0.7 }));
  }
  const rows = live != null ? S.metrics.get(live) || [] : [];
  if (live != null) traces.push(...curveTraces(live, rows, COLORS.running, 2.5, curveName(live) + (S.byNumber.get(live)?.shown_status === "running" ? " (live)" : "")));
  const e = S.byNumber.get(live);
  const last = rows[rows.length - 1];
  let title = "";
  if (e) {
    title = `#${live} · ${e.shown_status}`;
    if (last && isNum(last.progress)) title += ` · ${Math.round(100 * last.progress)}%`;
    if (last && isNum(last.loss)) title += ` · loss ${last.loss.toFixed(3)}`;
  }
  $("#live-title").textContent = title;
  const note = live == null ? "waiting for the first experiment" : curveNote(live, rows, e && e.shown_status === "running");
  const annotations = note ? [emptyNote(note)] : [];
  const axes = curveAxes();
  plot(el, traces, baseLayout({ ...axes, uirevision: `live-${live}-${axes.uirevision}`, annotations }));
}

// ---- header, banner, events ----------------------------------------------------------------

function renderHeader() {
  const o = S.overview;
  if (!o) return;
  const s = o.session;
  let state = s ? s.state : o.ledger ? "waiting" : "no ledger";
  if (!S.connected) state = "offline";
  const pill = $("#state");
  pill.dataset.state = state;
  pill.querySelector("b").textContent = state;
  pill.title = s && s.reason ? s.reason : state === "no ledger" ? "run `autolab research` in this workspace: the dashboard fills in when it starts" : "";
  $("#where").textContent = s ? `${o.workspace} · ${s.branch}` : o.workspace;
  // Best and Δ as the API's standings give them: Δ = best − reference, negative is better.
  $("#best").textContent = o.best ? bpb(o.best.score) : "—";
  $("#best").title = !o.best ? "" : o.best.is_reference ? "nothing kept yet: the best is the reference" : `#${o.best.number}: ${o.best.description}`;
  const gain = $("#gain");
  const ref = o.reference;
  if (isNum(o.delta) && ref && isNum(ref.bpb)) {
    const pct = (100 * o.delta) / ref.bpb;
    gain.textContent = Math.abs(pct) < 0.05 ? `${signed(o.delta)}` : `${signed(o.delta)} (${signed(pct, 1)}%)`;
    gain.className = "num " + (o.delta < 0 ? "good" : "");
    gain.title = `reference ${bpb(ref.bpb, 6)} ± ${bpb(ref.spread, 6)} (mean of ${ref.runs} baseline runs${ref.fingerprint ? ` on ${ref.fingerprint}` : ""}; keep band ${bpb(ref.band, 4)})`;
  } else { gain.textContent = "—"; gain.className = "num"; }
  // The confirmed gain: the best and the reference re-run side by side, with its 95% interval.
  const cf = o.confirmed, ce = $("#confirmed");
  if (cf && isNum(cf.delta)) {
    ce.textContent = isNum(cf.low) ? `${signed(cf.delta)} [${signed(cf.low)}, ${signed(cf.high)}]` : signed(cf.delta);
    ce.className = "num " + (cf.excludes_zero && cf.high < 0 ? "good" : "");
    ce.title = `mean of ${cf.best_scores.length} runs of #${cf.best_number} − mean of ${cf.reference_scores.length} runs of the reference; `
      + (isNum(cf.low) ? `the 95% interval ${cf.excludes_zero ? "excludes" : "includes"} zero` : "too few runs for an interval")
      + `; in session ${signed(cf.session_delta)}`;
  } else {
    ce.textContent = o.best && !o.best.is_reference ? "not yet" : "—";
    ce.className = "num";
    ce.title = "`autolab confirm` re-runs the reference and the best";
  }
  const c = o.counts || {};
  $("#count").textContent = c.total ? `${c.total}  ·  ${c.kept || 0} kept` : "0";
  $("#count").title = Object.entries(c).map(([k, v]) => `${k}: ${v}`).join("\n");
  const r = o.running;
  let now = "";
  if (r) {
    const flight = o.in_flight && o.in_flight.length ? o.in_flight : [r];
    now = flight.map((f) => {
      let line = `#${f.number} ${f.description}`;
      if (isNum(f.progress)) line += `  ·  ${Math.round(100 * f.progress)}%`;
      if (isNum(f.loss)) line += `  ·  loss ${f.loss.toFixed(3)}`;
      return line;
    }).join("   |   ");
  } else if (s && s.ended) now = `ended ${clock(s.ended)}${s.reason ? ": " + s.reason : ""}`;
  else if (s && state === "killed") now = s.state_reason;
  else if (s) now = state === "running" ? "the researcher is thinking…" : "";
  else now = o.ledger ? "" : "waiting for `autolab research` in this workspace";
  $("#now").textContent = now || "—";
  $("#now").title = now;
  // "Stop" lets the running experiment finish and be recorded; "Stop now" interrupts it, and
  // stays offered while a stop after the experiment is pending.
  const asked = o.stop_requested;  // null | "after" | "now"
  const alive = state === "running" || state === "stopping";
  for (const [id, when] of [["stop", "after"], ["stop-now", "now"]]) {
    const b = $("#" + id);
    const can = alive && !asked || alive && when === "now" && asked === "after";
    b.disabled = !can;
    if (!can) disarm(id);
    if (asked === when && alive) b.textContent = STOPPING[when];
    else if (!b.classList.contains("armed")) b.textContent = STOP_LABEL[when];
  }
  const sel = $("#session");
  sel.hidden = (o.sessions || []).length < 2;
  const want = (o.sessions || []).map((x) => `${x.id}:${x.tag}:${x.state}`).join("|");
  if (sel.dataset.key !== want) {
    sel.dataset.key = want;
    sel.innerHTML = `<option value="">latest session</option>` + (o.sessions || []).slice().reverse()
      .map((x) => `<option value="${x.id}">#${x.id} ${esc(x.tag)} (${esc(x.state)})</option>`).join("");
    sel.value = S.session ?? "";
  }
  renderBanner();
}

function renderBanner() {
  const alerts = (S.overview && S.overview.alerts) || [];
  const a = alerts.filter((x) => x.id > S.dismissed).pop();
  const banner = $("#banner");
  if (!a) { banner.hidden = true; return; }
  const kind = (a.data && a.data.alert) || "alert";
  banner.dataset.kind = kind;
  banner.dataset.id = a.id;
  const icon = kind === "new_best" ? "▲" : "⚠";
  $("#banner-text").textContent = `${icon}  ${clock(a.time)}  ${a.message}${a.number != null ? `  (#${a.number})` : ""}`;
  banner.hidden = false;
}

function addEvents(events) {
  for (const e of events) {
    if (S.seenEvents.has(e.id)) continue;
    S.seenEvents.add(e.id);
    S.events.push(e);
  }
  if (S.events.length > MAX_EVENTS) S.events.splice(0, S.events.length - MAX_EVENTS);
  renderEvents();
}

function renderEvents() {
  const steps = $("#show-steps").checked;
  const list = S.events.filter((e) => steps || e.kind !== "step").slice(-150).reverse();
  $("#events").innerHTML = list.map((e) => `<li class="${e.kind === "step" ? "step" : ""}">
    <time>${clock(e.time)}</time><span class="k k-${esc(e.kind)}">${esc(e.kind.replace("session_", ""))}</span>
    <span class="m">${e.number != null ? `<a href="#/exp/${e.number}">#${e.number}</a> ` : ""}${esc(e.message.replace(/^exp \d+:? ?/, ""))}</span></li>`).join("")
    || `<li><span></span><span></span><span class="muted">no events yet</span></li>`;
}

// ---- experiment table ----------------------------------------------------------------------

const COLUMNS = [
  { key: "cmp", label: "", sortable: false },
  { key: "number", label: "#", cls: "r" },
  { key: "shown_status", label: "status" },
  { key: "description", label: "description" },
  { key: "score", label: "val_bpb", cls: "r" },
  { key: "delta", label: "Δ ref", cls: "r" },
  { key: "peak_memory_mb", label: "memory", cls: "r" },
  { key: "seconds", label: "time", cls: "r" },
  { key: "researcher", label: "researcher" },
  { key: "seed", label: "seed", cls: "r" },
];

function renderTableHead() {
  $("#table thead tr").innerHTML = COLUMNS.map((c) => {
    if (c.sortable === false) return `<th class="cmp" title="tick to overlay training curves">⇄</th>`;
    const sorted = S.sort.key === c.key;
    return `<th class="sortable ${c.cls || ""} ${sorted ? "sorted" : ""} ${sorted && S.sort.dir > 0 ? "asc" : ""}" data-key="${c.key}">${c.label}</th>`;
  }).join("");
}

function visibleRows() {
  const text = S.filter.text.trim().toLowerCase();
  const rows = S.experiments.filter((e) => {
    if (S.filter.status && statusGroup(e.shown_status) !== S.filter.status) return false;
    if (!text) return true;
    if (/^#\d+$/.test(text)) return `#${e.number}` === text;
    return [e.number, e.shown_status, e.description, e.researcher, e.kind, e.reason].join(" ").toLowerCase().includes(text);
  });
  const { key, dir } = S.sort;
  return rows.sort((a, b) => {
    const x = a[key], y = b[key];
    if (x == null && y == null) return b.number - a.number;
    if (x == null) return 1;   // blanks last, whatever the direction
    if (y == null) return -1;
    const c = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return c * dir || b.number - a.number;
  });
}

function renderTable() {
  const rows = visibleRows();
  $("#table tbody").innerHTML = rows.map((e) => {
    const d = e.delta;
    const dcls = isNum(d) ? (d < 0 ? "good" : "muted") : "";
    const cls = [e.is_best ? "best" : "", e.shown_status === "running" ? "live" : ""].join(" ");
    return `<tr data-n="${e.number}" class="${cls}">
      <td class="cmp"><input type="checkbox" data-n="${e.number}" ${S.compare.has(e.number) ? "checked" : ""} title="overlay its curve"></td>
      <td class="r num">${e.number}</td>
      <td>${statusPill(e.shown_status)}${e.is_best ? `<span class="star" title="best">★</span>` : ""}</td>
      <td class="desc" title="${esc(e.reason)}">${describe(e)}</td>
      <td class="r num" title="${isNum(e.score) ? e.score.toFixed(6) : ""}">${isNum(e.score) ? e.score.toFixed(4) : ""}</td>
      <td class="r num ${dcls}">${signed(d)}</td>
      <td class="r num">${mem(e.peak_memory_mb)}</td>
      <td class="r num">${e.shown_status === "running" ? `<span class="spinner"></span>` : dur(e.seconds)}</td>
      <td>${esc(e.researcher)}</td>
      <td class="r num">${e.seed ?? ""}</td></tr>`;
  }).join("");
  const total = S.experiments.length;
  $("#shown").textContent = total ? (rows.length === total ? `${total}` : `${rows.length} of ${total}`) : "";
  const empty = $("#empty");
  empty.hidden = rows.length > 0;
  empty.textContent = total ? "no experiment matches the filter" : (S.overview && !S.overview.ledger
    ? "no ledger yet: start `autolab research` in this workspace; this page fills in by itself"
    : "no experiments yet");
}

const fetching = new Map();   // number -> the metrics request in flight
function ensureMetrics(n) {
  if (S.metrics.has(n) && S.byNumber.get(n)?.shown_status !== "running") return Promise.resolve();
  if (!fetching.has(n)) {
    fetching.set(n, getJSON(`/api/experiments/${n}/metrics`)
      .then((rows) => { S.metrics.set(n, rows); })
      .finally(() => fetching.delete(n)));
  }
  return fetching.get(n);
}

// ---- stream --------------------------------------------------------------------------------

function connect() {
  if (S.source) S.source.close();
  S.source = new EventSource(url("/api/stream", { session: S.session }));
  S.source.onopen = () => { S.connected = true; renderHeader(); };
  S.source.onerror = () => { S.connected = false; renderHeader(); };
  S.source.onmessage = (msg) => apply(JSON.parse(msg.data));
}

function apply(u) {
  S.connected = true;
  if (u.reset) {
    S.events = []; S.seenEvents.clear(); S.metrics.clear();
  }
  if (u.overview) S.overview = u.overview;
  if (u.experiments) {
    S.experiments = u.experiments;
    S.byNumber = new Map(u.experiments.map((e) => [e.number, e]));
  }
  let liveChanged = false;
  for (const [key, slice] of Object.entries(u.metrics || {})) {
    if (!slice) continue;
    const n = Number(key);
    const have = S.metrics.get(n) || [];
    if (slice.start === have.length) S.metrics.set(n, have.concat(slice.rows));
    else if (slice.start === 0) S.metrics.set(n, slice.rows);
    else ensureMetrics(n).then(renderAllCurves);   // a gap: fetch the whole curve
    liveChanged = true;
  }
  if (u.events) addEvents(u.events);
  if (u.overview || u.reset) renderHeader();
  if (u.experiments || u.reset) { renderTable(); renderProgress(); }
  const live = liveNumber();
  if (live != null && !S.metrics.has(live)) ensureMetrics(live).then(renderAllCurves);
  if (liveChanged || u.experiments || u.reset) renderAllCurves();
  if (S.route.page === "exp") refreshDetail(u);
  if (S.route.page === "mattered" && u.experiments) showMattered();
  if (u.problem) console.warn(u.problem);
}

function renderAllCurves() {
  renderLive();
  if (S.route.page === "exp" && S.detail) renderDetailCurve();
}

// ---- experiment page -----------------------------------------------------------------------

function diffHtml(text) {
  return text.split("\n").map((line) => {
    let c = "";
    if (line.startsWith("@@")) c = "hunk";
    else if (/^(diff |index |--- |\+\+\+ )/.test(line)) c = "meta";
    else if (line.startsWith("+")) c = "add";
    else if (line.startsWith("-")) c = "del";
    return `<span class="${c}">${esc(line) || " "}</span>`;
  }).join("");
}

async function showExperiment(n) {
  const page = $("#exp");
  if (!S.detail || S.detail.number !== n) page.innerHTML = `<div class="note"><span class="spinner"></span>loading #${n}…</div>`;
  let d;
  try { d = await getJSON(`/api/experiments/${n}`); } catch (err) {
    page.innerHTML = `<a class="back" href="#/">← all experiments</a><div class="note">no experiment ${n} in this ledger</div>`;
    return;
  }
  if (S.route.page !== "exp" || S.route.number !== n) return;
  S.detail = d;
  await ensureMetrics(n).catch(() => {});
  renderDetail();
}

function renderDetail() {
  const d = S.detail;
  const e = S.byNumber.get(d.number) || d;
  const status = e.shown_status || d.status;
  const gap = isNum(d.val_bpb) && isNum(d.reported_val_bpb) ? d.reported_val_bpb - d.val_bpb : null;
  const flags = Object.entries(d.flags || {}).map(([k, v]) => `<span class="flag">${esc(k)}: ${esc(typeof v === "object" ? JSON.stringify(v) : v)}</span>`).join("");
  const kv = (k, v) => (v === "" || v == null ? "" : `<dt>${k}</dt><dd>${v}</dd>`);
  const kind = d.kind === "recheck" ? `re-check of <a href="#/exp/${d.rechecks}">#${d.rechecks}</a>` : d.kind;
  const page = $("#exp");
  page.innerHTML = `
  <a class="back" href="#/">← all experiments</a>
  <div class="exp-head">
    <h1>#${d.number}</h1>${statusPill(status)}<span class="desc">${esc(d.description)}</span>
    <div class="meta">${kind} · researcher ${esc(d.researcher || "—")} · seed ${d.seed ?? "—"} · commit ${esc((d.commit_sha || "").slice(0, 10))}${d.parent_commit ? ` ← ${esc(d.parent_commit.slice(0, 10))}` : ""} · ${new Date(d.created * 1000).toLocaleString()}</div>
  </div>
  <section class="row halves">
    <div class="card" id="verdict">
      <div class="card-head"><h2>Verdict</h2><span class="hint">the sealed score decides; the reported one is what train.py printed</span></div>
      ${d.reason ? `<div class="reason">${esc(d.reason)}</div>` : ""}
      <dl class="kv">
        <dt>sealed val_bpb</dt><dd class="big">${status === "running" ? `<span class="spinner"></span><span class="muted" style="font-size:14px">training</span>` : bpb(d.val_bpb, 6)}</dd>
        ${kv("reported val_bpb", isNum(d.reported_val_bpb) ? `${bpb(d.reported_val_bpb, 6)}  (${signed(gap, 6)} vs sealed)` : "")}
        ${kv("score", isNum(d.score) && d.score !== d.val_bpb ? `${bpb(d.score, 6)}  (mean over its re-check)` : "")}
        ${kv("Δ vs reference", isNum(d.delta) ? `<span class="${d.delta < 0 ? "good" : ""}">${signed(d.delta, 6)}</span>` : "")}
        ${kv("vs best before it", isNum(d.delta_best_before) ? `<span class="${d.delta_best_before < 0 ? "good" : ""}">${signed(d.delta_best_before, 6)}</span>` : "")}
        ${kv("peak memory", mem(d.peak_memory_mb))}
        ${kv("wall time", dur(d.wall_seconds))}
        ${kv("training time", dur(d.training_seconds))}
        ${kv("steps", d.num_steps ?? "")}
        ${kv("tokens / s", isNum(d.tokens_per_sec) ? Math.round(d.tokens_per_sec).toLocaleString() : "")}
        ${kv("parameters", isNum(d.num_params_M) ? `${d.num_params_M.toFixed(d.num_params_M < 10 ? 2 : 1)} M` : "")}
        ${kv("hardware", esc(d.fingerprint || d.hardware))}
        ${kv("flags", flags)}
      </dl>
    </div>
    <div class="card">
      <div class="card-head"><h2>Training curve</h2><span class="hint" id="detail-curve-title"></span><span class="spacer"></span>${curveControlsHtml()}</div>
      <div id="detail-chart" class="chart"></div>
    </div>
  </section>
  <div class="card" id="diff-card">
    <div class="card-head"><h2>Diff</h2><span class="hint">train.py against its parent${d.parent_commit ? ` ${esc(d.parent_commit.slice(0, 7))}` : ""}</span></div>
    ${d.diff.text ? `<pre class="diff" id="diff">${diffHtml(d.diff.text)}</pre>` : `<div class="note" id="diff">${esc(d.diff.note)}</div>`}
  </div>
  ${paramsCard(d)}
  ${(d.diffs || []).map((x) => `<div class="card manual-diff">
    <div class="card-head"><h2>Diff ${esc(x.label)}</h2><span class="hint"><a href="#/exp/${x.number}">#${x.number}</a> → #${d.number}</span></div>
    ${x.text ? `<pre class="diff">${diffHtml(x.text)}</pre>` : `<div class="note">${esc(x.note)}</div>`}
  </div>`).join("")}
  ${surprisalCard(d, status)}
  <section class="row halves">
    <div class="card">
      <div class="card-head"><h2>Log</h2><span class="hint mono">${esc(d.log_path)}</span></div>
      <pre class="log" id="log">${esc(d.log) || `<span class="muted">no log yet</span>`}</pre>
    </div>
    <div class="card">
      <div class="card-head"><h2>Samples</h2><span class="hint">from the handed-over model</span><span class="spacer"></span>
        <button class="btn" id="sample-btn" ${d.has_model ? "" : "hidden"}>Generate</button></div>
      <div id="samples"><div class="note">${d.has_model ? "text from this experiment's model: loads torch on first use" : status === "running" ? "the model is handed over when training ends" : "this experiment left no model"}</div></div>
    </div>
  </section>`;
  const log = $("#log");
  if (log) log.scrollTop = log.scrollHeight;
  $("#sample-btn").onclick = () => loadSamples(d.number);
  initSurprisal(d);
  initParamsCard();
  renderDetailCurve();
}

function renderDetailCurve() {
  const el = $("#detail-chart");
  if (!el || !S.detail) return;
  const n = S.detail.number;
  const rows = S.metrics.get(n) || [];
  const last = rows[rows.length - 1];
  $("#detail-curve-title").textContent = last ? `step ${last.step}${isNum(last.loss) ? ` · loss ${last.loss.toFixed(4)}` : ""}` : "";
  const note = curveNote(n, rows, S.byNumber.get(n)?.shown_status === "running");
  const axes = curveAxes();
  plot(el, curveTraces(n, rows, COLORS.running, 2.5, curveName(n)), baseLayout({
    ...axes, uirevision: `detail-${n}-${axes.uirevision}`, showlegend: false,
    annotations: note ? [emptyNote(note)] : [],
  }));
}

async function loadSamples(n) {
  const box = $("#samples");
  box.innerHTML = `<div class="note"><span class="spinner"></span>sampling from #${n}…</div>`;
  try {
    const r = await getJSON(`/api/experiments/${n}/samples`);
    if (!S.detail || S.detail.number !== n) return;
    box.innerHTML = r.samples.length
      ? `<ol class="samples">${r.samples.map((t) => `<li>${esc(t)}</li>`).join("")}</ol>`
      : `<div class="note">${esc(r.message)}</div>`;
  } catch (err) {
    box.innerHTML = `<div class="note">sampling failed: ${esc(err.message)}</div>`;
  }
}

// ---- surprisal panel ------------------------------------------------------------------------
// The text's tokens coloured by this model's loss on each, or, compared with another
// experiment, by the difference (green: this one better). The numbers are the same as
// `autolab inspect --text ... --json`; the server scores, the page only draws.

const DIFF_FULL_BITS = 2;   // a difference this large gets the strongest colour (as the CLI)
const FLOW_LINE_CHARS = 12; // shorter lines on average (names, one per line) flow with ⏎ between

function surprisalCard(d, status) {
  const c = d.compare || { choices: [], default: null };
  const options = [`<option value="">none</option>`].concat(c.choices.map((x) =>
    `<option value="${x.number}">#${x.number} ${esc(x.status)}${isNum(x.val_bpb) ? ` ${x.val_bpb.toFixed(4)}` : ""}${x.parent ? " (parent)" : ""} · ${esc(x.description.slice(0, 40))}</option>`)).join("");
  const why = status === "running" ? "the model is handed over when training ends" : "this experiment left no model";
  return `<div class="card" id="surprisal-card">
    <div class="card-head"><h2>Surprisal</h2><span class="hint">loss per token of a text under this model · hover a token for its bits</span><span class="spacer"></span>
      ${d.has_model ? `<label class="hint">compare with <select id="surprisal-compare">${options}</select></label>
      <button class="btn" id="surprisal-btn">Score</button>` : ""}</div>
    ${d.has_model ? `<div class="sp-input"><textarea id="surprisal-text" rows="3" spellcheck="false"
      placeholder="text to score; leave empty for the start of the dev split (held-out text, never the sealed val)"></textarea></div>
    <div id="surprisal-out"></div>` : `<div class="note">${why}</div>`}
  </div>`;
}

function initSurprisal(d) {
  const btn = $("#surprisal-btn");
  if (!btn) return;
  const kept = S.surprisal && S.surprisal.number === d.number ? S.surprisal : null;
  $("#surprisal-compare").value = kept ? kept.compare : String(d.compare?.default ?? "");
  if (kept) { $("#surprisal-text").value = kept.text; renderSurprisal(kept.result); }
  btn.onclick = () => runSurprisal(d.number);
  $("#surprisal-text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) runSurprisal(d.number);
  });
}

async function runSurprisal(n) {
  const out = $("#surprisal-out"), btn = $("#surprisal-btn");
  const text = $("#surprisal-text").value;
  const compare = $("#surprisal-compare").value;
  const body = { compare: compare ? Number(compare) : null };
  if (text) body.text = text;   // empty: the server scores the start of the dev split
  btn.disabled = true;
  out.innerHTML = `<div class="note"><span class="spinner"></span>scoring with #${n}${compare ? ` and #${compare}` : ""}: loads the models on first use…</div>`;
  try {
    const r = await fetch(url(`/api/experiments/${n}/surprisal`), {
      method: "POST", headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({ error: `the server answered ${r.status}` }));
    if (!S.detail || S.detail.number !== n) return;
    if (!r.ok) { out.innerHTML = `<div class="sp-error">${esc(data.error || `the server answered ${r.status}`)}</div>`; return; }
    if (!text) $("#surprisal-text").value = data.text;
    S.surprisal = { number: n, text: data.text, compare, result: data };
    renderSurprisal(data);
  } catch (err) {
    out.innerHTML = `<div class="sp-error">scoring failed: ${esc(err.message)}</div>`;
  } finally {
    btn.disabled = false;
  }
}

function renderSurprisal(r) {
  const compared = Boolean(r.b);
  const mine = compared ? r.b : r;
  const run = (t, role) => `<div class="sp-run" title="${esc(t.run)}"><span class="sp-role">${role}</span><a href="#/exp/${t.number}">#${t.number}</a>
    <span class="num sp-bpb">${t.bpb.toFixed(4)}</span><span class="muted">bpb · ${esc(t.description)}</span></div>`;
  let head = run(mine, compared ? "this" : "on this text");
  let legend = `<span>0 bits</span><span class="sp-scale heat"></span><span>≥ ${r.uniform_bits.toFixed(1)} bits (a uniform guess)</span>`;
  if (compared) {
    const delta = r.b.bpb - r.a.bpb;
    const verdict = delta < 0 ? "better" : delta > 0 ? "worse" : "the same";
    head += run(r.a, "vs") + `<div class="sp-verdict ${delta < 0 ? "good" : delta > 0 ? "bad" : ""}">#${r.b.number} is ${verdict} by ${Math.abs(delta).toFixed(4)} bpb on this text</div>`;
    legend = `<span>#${r.b.number} ${DIFF_FULL_BITS}+ bits better</span><span class="sp-scale diff"></span><span>${DIFF_FULL_BITS}+ bits worse than #${r.a.number}</span>`;
  }
  const scored = mine.scored_tokens;
  const source = r.text_source === "dev" ? "the start of the dev split" : "the text above";
  $("#surprisal-out").innerHTML = `<div class="sp-totals">${head}</div>
    <div class="sp-legend hint">${legend}<span class="spacer"></span>${esc(source)} · ${mine.total_bytes.toLocaleString()} bytes · ${scored.toLocaleString()} tokens · ${r.seconds.toFixed(2)} s</div>
    <div class="sp-tokens" id="surprisal-tokens">${tokenSpans(r, compared)}</div>
    <div class="sp-hover mono" id="surprisal-hover">&nbsp;</div>
    ${compared ? biggestChanges(r) : ""}`;
  const box = $("#surprisal-tokens");
  box.onmouseover = (ev) => {
    const t = ev.target.closest(".tok");
    if (t) $("#surprisal-hover").textContent = t.title;
  };
}

function tokenSpans(r, compared) {
  const lines = r.text.split("\n");
  const flow = lines.length > 3 && r.text.length / lines.length < FLOW_LINE_CHARS;
  return r.tokens.map((t) => {
    const bits = compared ? t.bits_b : t.bits;
    let bg = "", tip = `${JSON.stringify(t.text)}  `;
    if (!isNum(bits)) tip += "not scored: nothing comes before it";
    else if (compared) {
      const d = t.diff_bits;
      bg = diffColor(d);
      tip += `#${r.b.number} ${t.bits_b.toFixed(2)} bits · #${r.a.number} ${t.bits_a.toFixed(2)} bits · ${signed(d, 2)} (${d < 0 ? "better" : d > 0 ? "worse" : "same"})`;
    } else {
      bg = heatColor(bits / r.uniform_bits);
      tip += `${bits.toFixed(2)} bits  (p = ${Math.pow(2, -bits).toPrecision(2)})`;
    }
    return `<span class="tok${/^\s+$/.test(t.text) ? " ws" : ""}" style="background:${bg}" title="${esc(tip)}">${shownToken(t.text, flow)}</span>`;
  }).join("");
}

// Whitespace drawn visibly: a token of only spaces shows ·, a newline ⏎ (then the line break,
// unless short lines flow), a tab ⇥.
function shownToken(text, flow) {
  let s = esc(text).replace(/\t/g, "⇥");
  if (/^[ ⇥\n]+$/.test(s)) s = s.replace(/ /g, "·");
  return s.replace(/\n/g, flow ? "⏎" : "⏎\n");
}

function heatColor(x) {   // green (0 bits) through yellow to red (a uniform guess or worse)
  const v = Math.max(0, Math.min(1, x));
  const hue = 130 * (1 - v);
  return `hsla(${hue.toFixed(0)}, 75%, 50%, ${(0.16 + 0.6 * v).toFixed(3)})`;
}

function diffColor(d) {   // this experiment minus the other: green where it did better
  const v = Math.max(-1, Math.min(1, d / DIFF_FULL_BITS));
  const rgb = v < 0 ? "63,185,111" : "242,85,90";
  return `rgba(${rgb},${(0.85 * Math.abs(v)).toFixed(3)})`;
}

function biggestChanges(r) {
  const scored = r.tokens.map((t, j) => [t.diff_bits, j]).filter(([d]) => isNum(d));
  const context = (j) => r.tokens.slice(Math.max(0, j - 12), j).map((t) => t.label).join("").slice(-24);
  const list = (rows, cls, title) => `<div><h3>${title}</h3><ol>${rows.map(([d, j]) =>
    `<li><span class="muted">${esc(context(j))}</span><b>${esc(r.tokens[j].label)}</b><span class="num ${cls}">${signed(d, 2)}</span></li>`).join("") || `<li class="muted">none</li>`}</ol></div>`;
  const better = scored.filter(([d]) => d < 0).sort((x, y) => x[0] - y[0]).slice(0, 6);
  const worse = scored.filter(([d]) => d > 0).sort((x, y) => y[0] - x[0]).slice(0, 6);
  return `<div class="sp-changes">${list(better, "good", `where #${r.b.number} gained most`)}${list(worse, "bad", `where #${r.b.number} lost most`)}</div>`;
}

function refreshDetail(u) {
  if (!S.detail) return;
  const n = S.detail.number;
  // A verdict or an end for this experiment: its page (log, diff, verdict) is fetched again.
  const mine = (u.events || []).filter((e) => e.number === n);
  if (mine.some((e) => ["verdict", "finished", "evaluation"].includes(e.kind))) {
    showExperiment(n);
    return;
  }
  if (mine.some((e) => e.kind === "step") && Date.now() - (S.logFetched || 0) > 2000) {
    S.logFetched = Date.now();   // the log grows while it trains: its tail, at most every 2 s
    getJSON(`/api/experiments/${n}`).then((d) => {
      const log = $("#log");
      if (!log || !S.detail || S.detail.number !== n) return;
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.textContent = d.log;
      if (atEnd) log.scrollTop = log.scrollHeight;
    }).catch(() => {});
  }
  if (u.experiments) {
    const e = S.byNumber.get(n);
    const pill = document.querySelector(".exp-head .status");
    if (e && pill && pill.textContent !== e.shown_status) pill.outerHTML = statusPill(e.shown_status);
  }
}

// ---- routing and controls ------------------------------------------------------------------

function route() {
  const m = location.hash.match(/^#\/exp\/(\d+)/);
  S.route = m ? { page: "exp", number: Number(m[1]) } : location.hash.startsWith("#/mattered") ? { page: "mattered" } : { page: "home" };
  $("#home").hidden = S.route.page !== "home";
  $("#exp").hidden = S.route.page !== "exp";
  $("#mattered").hidden = S.route.page !== "mattered";
  if (S.route.page === "exp") { window.scrollTo(0, 0); showExperiment(S.route.number); }
  else if (S.route.page === "mattered") { S.detail = null; window.scrollTo(0, 0); showMattered(true); }
  else { S.detail = null; renderProgress(); renderAllCurves(); }
}

const STOP_LABEL = { after: "Stop", now: "Stop now" };
const STOPPING = { after: "Stopping after this experiment…", now: "Stopping now…" };
const armTimers = {};
function disarm(id) {
  $("#" + id).classList.remove("armed");
  clearTimeout(armTimers[id]);
}
// A first click arms the button, a second within 4 s sends the request.
async function onStop(id, when) {
  const b = $("#" + id);
  if (!b.classList.contains("armed")) {
    b.classList.add("armed");
    b.textContent = when === "now" ? "Confirm: interrupt it" : "Confirm stop";
    armTimers[id] = setTimeout(() => { disarm(id); b.textContent = STOP_LABEL[when]; }, 4000);
    return;
  }
  disarm(id);
  b.disabled = true;
  b.textContent = STOPPING[when];
  const r = await fetch(url("/api/stop", { now: when === "now" ? 1 : null }), { method: "POST" });
  if (!r.ok) { b.textContent = "Stop failed"; b.disabled = false; }
}

function init() {
  renderTableHead();
  $("#table thead").addEventListener("click", (ev) => {
    const th = ev.target.closest("th.sortable");
    if (!th) return;
    const key = th.dataset.key;
    S.sort = S.sort.key === key ? { key, dir: -S.sort.dir } : { key, dir: ["number", "seed"].includes(key) ? -1 : 1 };
    renderTableHead(); renderTable();
  });
  $("#table tbody").addEventListener("click", async (ev) => {
    const box = ev.target.closest("input[type=checkbox]");
    if (box) {
      const n = Number(box.dataset.n);
      if (box.checked) { S.compare.add(n); await ensureMetrics(n); } else S.compare.delete(n);
      renderLive();
      return;
    }
    const tr = ev.target.closest("tr[data-n]");
    if (tr && !ev.target.closest("a")) location.hash = `#/exp/${tr.dataset.n}`;
  });
  $("#filter").addEventListener("input", (ev) => { S.filter.text = ev.target.value; renderTable(); });
  $("#status-filter").addEventListener("change", (ev) => { S.filter.status = ev.target.value; renderTable(); });
  $("#show-steps").addEventListener("change", renderEvents);
  $("#curve-controls").innerHTML = curveControlsHtml();
  initCurveControls(renderAllCurves);
  $("#stop").addEventListener("click", () => onStop("stop", "after"));
  $("#stop-now").addEventListener("click", () => onStop("stop-now", "now"));
  $("#banner-close").addEventListener("click", () => {
    S.dismissed = Number($("#banner").dataset.id || 0);
    localStorage.setItem("autolab.dismissed", String(S.dismissed));
    renderBanner();
  });
  $("#session").addEventListener("change", (ev) => {
    S.session = ev.target.value || null;
    S.compare.clear();
    connect();
  });
  window.addEventListener("hashchange", route);
  route();
  connect();
}

init();
