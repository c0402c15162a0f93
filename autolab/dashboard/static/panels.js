// autolab dashboard panels a W&B user reaches for: the curve controls (metric, x axis,
// smoothing) and the traces they draw, the experiment page's params table, and the
// what-mattered page (#/mattered). Loaded before app.js; app.js's helpers (S, $, esc, isNum,
// plot, baseLayout, emptyNote, getJSON, COLORS) are used only inside functions, once it ran.
// Every number drawn here comes from the API; the score is the standings' (never recomputed).
"use strict";

// ---- curves: metric, x axis, smoothing -----------------------------------------------------

// The metric keys are the ledger's (track.ledger.METRIC_KEYS); only their labels live here.
const CURVE_METRICS = {
  loss: { label: "train loss", fmt: ".4f" },
  dev_loss: { label: "dev loss", fmt: ".4f" },
  lr: { label: "learning rate", fmt: ".3e" },
  tokens_per_sec: { label: "tokens / s", fmt: ",.0f" },
  memory_mb: { label: "peak memory (MB)", fmt: ",.0f" },
};
const CURVE_X = { step: "step", training_seconds: "training seconds", tokens: "tokens" };
const CURVES = {
  metric: pick(localStorage.getItem("autolab.metric"), CURVE_METRICS, "loss"),
  x: pick(localStorage.getItem("autolab.x"), CURVE_X, "step"),
  smoothing: Math.min(0.99, Math.max(0, Number(localStorage.getItem("autolab.smoothing")) || 0)),
};
function pick(value, allowed, fallback) { return value in allowed ? value : fallback; }

// The controls, drawn in each curve card's head; every copy edits the one CURVES.
function curveControlsHtml() {
  const opts = (all, chosen) => Object.entries(all).map(([k, v]) =>
    `<option value="${k}" ${k === chosen ? "selected" : ""}>${typeof v === "string" ? v : v.label}</option>`).join("");
  return `<span class="curve-controls">
    <select data-curve="metric" title="metric">${opts(CURVE_METRICS, CURVES.metric)}</select>
    <label class="hint">x <select data-curve="x" title="x axis">${opts(CURVE_X, CURVES.x)}</select></label>
    <label class="hint" title="exponential moving average, debiased as TensorBoard's: 0 = raw">smoothing
      <input type="range" data-curve="smoothing" min="0" max="0.99" step="0.01" value="${CURVES.smoothing}">
      <span class="num smoothing-value">${CURVES.smoothing.toFixed(2)}</span></label>
  </span>`;
}

function initCurveControls(onChange) {
  document.addEventListener("input", (ev) => {
    const which = ev.target.dataset && ev.target.dataset.curve;
    if (!which) return;
    CURVES[which] = which === "smoothing" ? Number(ev.target.value) : ev.target.value;
    localStorage.setItem(`autolab.${which}`, String(CURVES[which]));
    for (const el of document.querySelectorAll(`[data-curve="${which}"]`)) if (el !== ev.target) el.value = CURVES[which];
    for (const el of document.querySelectorAll(".smoothing-value")) el.textContent = CURVES.smoothing.toFixed(2);
    onChange();
  });
}

// Exponential moving average with TensorBoard's debiasing: early points are not dragged
// towards zero. Gaps (null) are skipped, not averaged in.
function smooth(ys, weight) {
  if (!weight) return ys;
  let last = 0, debias = 0;
  return ys.map((y) => {
    if (!isNum(y)) return y;
    last = last * weight + (1 - weight) * y;
    debias = debias * weight + (1 - weight);
    return last / debias;
  });
}

const shortText = (s, n) => (s.length > n ? s.slice(0, n - 1) + "…" : s);
// "#4 lr ×2, depth 6": a legend entry names the experiment by its description too.
function curveName(number, prefix = "") {
  const e = S.byNumber.get(number);
  return `${prefix}#${number}${e && e.description ? " " + shortText(e.description, 34) : ""}`;
}

// One experiment's curve of the chosen metric: the smoothed line, and the raw one faint
// beneath it when smoothing is on. Rows without the metric (dev loss is measured on few
// steps) are left out rather than drawn as gaps.
function curveTraces(number, rows, color, width, name, style = {}) {
  const m = CURVES.metric, x = CURVES.x, meta = CURVE_METRICS[m];
  const pts = rows.filter((r) => isNum(r[m]) && isNum(r[x]));
  const xs = pts.map((r) => r[x]), ys = pts.map((r) => r[m]);
  const e = S.byNumber.get(number);
  // The description goes in as data, never into the template, where %{…} would be read.
  const desc = esc(e ? e.description : "");
  const sparse = pts.length <= 12;
  const mode = sparse ? "lines+markers" : "lines";
  const hover = `<b>#${number}</b> %{customdata[1]}<br>${CURVE_X[x]} %{x:,}<br>${meta.label} %{y:${meta.fmt}}`;
  const line = { color, width, dash: style.dash };
  const traces = [];
  const smoothed = smooth(ys, CURVES.smoothing);
  if (CURVES.smoothing > 0) {
    traces.push({ x: xs, y: ys, type: "scatter", mode, hoverinfo: "skip", showlegend: false,
      line: { ...line, width: Math.max(1, width - 1) }, marker: { size: 3, color }, opacity: 0.25 * (style.opacity ?? 1) });
  }
  traces.push({ x: xs, y: smoothed, name, type: "scatter", mode, line, opacity: style.opacity,
    marker: { size: width > 2 ? 5 : 4, color }, customdata: ys.map((y) => [y, desc]),
    hovertemplate: hover + (CURVES.smoothing > 0 ? ` (raw %{customdata[0]:${meta.fmt}})` : "") + "<extra></extra>",
    meta: { number } });
  return traces;
}

function curveAxes() {
  const m = CURVES.metric;
  return {
    xaxis: { title: { text: CURVE_X[CURVES.x] } },
    yaxis: { title: { text: CURVE_METRICS[m].label + (CURVES.smoothing > 0 ? ` (smoothed ${CURVES.smoothing.toFixed(2)})` : "") },
      exponentformat: m === "lr" ? "e" : "SI" },
    uirevision: `${m}-${CURVES.x}`,
  };
}

// What a chart with no line of the chosen metric says instead.
function curveNote(number, rows, running) {
  if (!rows.length) return running ? `#${number}: waiting for metrics` : `#${number}: no metrics recorded`;
  if (!rows.some((r) => isNum(r[CURVES.metric]) && isNum(r[CURVES.x]))) {
    if (CURVES.metric === "dev_loss") return `#${number}: no dev loss yet (measured at ¼, ½, ¾ of the budget and the end, when train.py calls run.watch)`;
    return `#${number}: no ${CURVE_METRICS[CURVES.metric].label} against ${CURVE_X[CURVES.x]} recorded`;
  }
  return "";
}

// ---- the experiment page's params table ----------------------------------------------------

function paramsCard(d) {
  const rows = d.params_table || [];
  if (!rows.length) return "";
  const changed = rows.filter((r) => r.changed).length;
  const parent = d.parent_number != null ? `<a href="#/exp/${d.parent_number}">#${d.parent_number}</a>`
    : d.parent_commit ? `commit ${esc(d.parent_commit.slice(0, 7))}` : "";
  const hint = d.kind === "baseline" ? "train.py's constants at this commit (a baseline run: no parent)"
    : `train.py's constants · ${changed} changed from its parent ${parent}`;
  const cell = (v) => (v == null ? `<span class="muted">—</span>` : esc(v));
  return `<div class="card" id="params-card">
    <div class="card-head"><h2>Params</h2><span class="hint">${hint}</span><span class="spacer"></span>
      ${changed ? `<label class="hint"><input type="checkbox" id="params-changed-only"> changed only</label>` : ""}</div>
    <div class="table-wrap"><table class="params" id="params-table">
      <thead><tr><th>constant</th><th>value</th>${d.kind === "baseline" ? "" : `<th>parent${d.parent_number != null ? ` #${d.parent_number}` : ""}</th>`}<th>comment</th></tr></thead>
      <tbody>${rows.map((r) => `<tr class="${r.changed ? "changed" : ""}">
        <td class="mono">${esc(r.name)}</td><td class="mono">${cell(r.value)}</td>
        ${d.kind === "baseline" ? "" : `<td class="mono ${r.changed ? "was" : "muted"}">${cell(r.parent)}</td>`}
        <td class="muted">${esc(r.comment)}</td></tr>`).join("")}</tbody>
    </table></div>
  </div>`;
}

function initParamsCard() {
  const box = $("#params-changed-only");
  if (box) box.onchange = () => $("#params-table").classList.toggle("changed-only", box.checked);
}

// ---- what mattered (#/mattered) --------------------------------------------------------------

const MATTERED = { data: null, fetched: 0, pending: null };

async function showMattered(force = false) {
  const page = $("#mattered");
  if (!MATTERED.data) page.innerHTML = `<div class="note"><span class="spinner"></span>reading the experiments' constants…</div>`;
  if (!force && Date.now() - MATTERED.fetched < 5000 && MATTERED.data) { renderMattered(); return; }
  if (MATTERED.pending) return MATTERED.pending;
  MATTERED.pending = getJSON("/api/mattered", { session: S.session })
    .then((m) => { MATTERED.data = m; MATTERED.fetched = Date.now(); if (S.route.page === "mattered") renderMattered(); })
    .catch((err) => { page.innerHTML = `<div class="note">what mattered could not be read: ${esc(err.message)}</div>`; })
    .finally(() => { MATTERED.pending = null; });
  return MATTERED.pending;
}

function renderMattered() {
  const m = MATTERED.data;
  const page = $("#mattered");
  const consts = m.constants;
  const head = `<a class="back" href="#/">← all experiments</a>
    <div class="exp-head"><h1>What mattered</h1><span class="desc">the score (sealed val_bpb, lower is better) against each constant that varied</span>
      <div class="meta">${m.trials.length} scored experiment${m.trials.length === 1 ? "" : "s"} · re-checks folded into the candidate they re-ran · constants read from train.py at each commit</div></div>`;
  const importance = `<div class="card" id="importance-card">
      <div class="card-head"><h2>Importance</h2><span class="hint" title="${esc(m.method)}">PED-ANOVA: which constants tell the best tenth from the rest</span></div>
      ${m.importance ? `<div id="importance-chart" class="chart short"></div><div class="note">${esc(m.note)}</div>` : `<div class="note" id="importance-note">${esc(m.note)}</div>`}
    </div>`;
  if (!consts.length) {
    page.innerHTML = head + importance;
    return;
  }
  page.innerHTML = head + `<section class="row halves">${importance}
    <div class="card"><div class="card-head"><h2>Parallel coordinates</h2><span class="hint">one line per experiment, coloured by its score (bright: lower) · hover a line</span></div>
      <div id="parcoords-chart" class="chart"></div></div></section>
    <div class="card"><div class="card-head"><h2>Score against each constant</h2><span class="hint">hover a point for its experiment · click to open it</span></div>
      <div class="scatter-grid">${consts.map((c, i) => `<div class="param-scatter"><div class="scatter-title mono">${esc(c.name)}</div><div id="scatter-${i}" class="chart small"></div></div>`).join("")}</div></div>`;
  if (m.importance) renderImportance(m);
  renderParcoords(m);
  consts.forEach((c, i) => renderScatter(m, c, $(`#scatter-${i}`)));
}

function renderImportance(m) {
  const rows = m.importance.slice().reverse();   // plotly draws bottom-up: the largest on top
  plot($("#importance-chart"), [{ type: "bar", orientation: "h", x: rows.map((r) => r.importance), y: rows.map((r) => r.name),
    marker: { color: COLORS.running }, hovertemplate: "%{y}: %{x:.3f}<extra></extra>" }], baseLayout({
    showlegend: false, margin: { l: 130, r: 14, t: 6, b: 34 },
    xaxis: { title: { text: "importance" }, range: [0, 1] }, yaxis: { automargin: true },
  }));
}

// A categorical (or log-scaled) constant is drawn by position, labelled by value.
function axisOf(c) {
  if (!c.numeric) return { values: (v) => c.values.indexOf(v), tickvals: c.values.map((_, i) => i), ticktext: c.values.map(String) };
  if (c.log) {
    const ticks = c.values.length <= 8 ? c.values : c.values.filter((_, i) => i % Math.ceil(c.values.length / 8) === 0);
    return { values: (v) => Math.log10(v), tickvals: ticks.map((v) => Math.log10(v)), ticktext: ticks.map((v) => String(v)) };
  }
  return { values: (v) => v };
}

// Parallel coordinates as plain lines: plotly's parcoords trace needs WebGL code generation
// that the page's Content-Security-Policy (no 'unsafe-eval') rightly refuses. Each axis is
// scaled to [0, 1]; each experiment is one line, coloured by its score (bright = lower).
const SCORE_COLORS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function scoreColor(t) {   // t: 0 for the best score, 1 for the worst
  const u = Math.max(0, Math.min(1, 1 - t)) * (SCORE_COLORS.length - 1);
  const i = Math.min(SCORE_COLORS.length - 2, Math.floor(u)), f = u - i;
  const [a, b] = [SCORE_COLORS[i], SCORE_COLORS[i + 1]];
  return `rgb(${a.map((v, k) => Math.round(v + f * (b[k] - v))).join(",")})`;
}

function renderParcoords(m) {
  const trials = m.trials.filter((t) => m.constants.every((c) => c.name in t.params));
  const axes = m.constants.map((c) => {
    const a = axisOf(c);
    const raw = trials.map((t) => a.values(t.params[c.name]));
    const span = a.tickvals || raw;
    const lo = Math.min(...span), hi = Math.max(...span);
    const norm = (v) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
    const ticks = a.tickvals ? a.tickvals.map((v, i) => [norm(v), a.ticktext[i]]) : [[0, String(lo)], [1, String(hi)]];
    return { name: c.name, ys: raw.map(norm), ticks };
  });
  const scores = trials.map((t) => t.score);
  const lo = Math.min(...scores), hi = Math.max(...scores);
  const snorm = (v) => (hi > lo ? (v - lo) / (hi - lo) : 0.5);
  axes.push({ name: "val_bpb", ys: scores.map(snorm), ticks: [[0, lo.toFixed(4)], [1, hi.toFixed(4)]] });
  const xs = axes.map((_, i) => i);
  const order = trials.map((_, j) => j).sort((a, b) => scores[b] - scores[a]);   // the best on top
  const traces = order.map((j) => ({
    type: "scatter", mode: "lines+markers", x: xs, y: axes.map((ax) => ax.ys[j]), showlegend: false,
    line: { color: scoreColor(snorm(scores[j])), width: 2 }, marker: { size: 5, color: scoreColor(snorm(scores[j])) },
    customdata: axes.map(() => [trials[j].number, esc(trials[j].description), scores[j]]),
    hovertemplate: "<b>#%{customdata[0]}</b> %{customdata[1]}<br>val_bpb %{customdata[2]:.4f}<extra></extra>",
    meta: { number: trials[j].number },
  }));
  const shapes = xs.map((x) => ({ type: "line", x0: x, x1: x, y0: 0, y1: 1, line: { color: "#4a5566", width: 1 } }));
  const annotations = axes.flatMap((ax, i) => ax.ticks.map(([y, text]) => ({
    x: i, y, text: esc(text), showarrow: false, xanchor: "right", xshift: -4, font: { size: 10, color: "#8590a0" } })));
  plot($("#parcoords-chart"), traces, baseLayout({
    showlegend: false, shapes, annotations, margin: { l: 60, r: 20, t: 30, b: 10 },
    xaxis: { tickvals: xs, ticktext: axes.map((ax) => ax.name), side: "top", range: [-0.45, xs.length - 0.7], showgrid: false, zeroline: false },
    yaxis: { visible: false, range: [-0.06, 1.06] },
  }));
}

function renderScatter(m, c, el) {
  const trials = m.trials.filter((t) => c.name in t.params);
  const groups = [
    ["keep", trials.filter((t) => t.kind === "candidate" && t.status === "keep"), COLORS.keep, "circle", 8],
    ["discard", trials.filter((t) => t.kind === "candidate" && t.status !== "keep"), "rgba(138,148,163,.7)", "circle", 7],
    ["baseline", trials.filter((t) => t.kind === "baseline"), COLORS.baseline, "diamond", 9],
  ];
  const traces = groups.filter(([, list]) => list.length).map(([name, list, color, symbol, size]) => ({
    type: "scatter", mode: "markers", name, y: list.map((t) => t.score),
    x: list.map((t) => (c.numeric ? t.params[c.name] : String(t.params[c.name]))),
    customdata: list.map((t) => [t.number, esc(t.description)]),
    hovertemplate: `<b>#%{customdata[0]}</b> %{customdata[1]}<br>${esc(c.name)} = %{x}<br>val_bpb %{y:.4f}<extra>${name}</extra>`,
    marker: { color, symbol, size, line: { color: "#0d1014", width: 1 } },
  }));
  const ref = S.overview && S.overview.reference;
  const shapes = ref && isNum(ref.bpb) ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: ref.bpb, y1: ref.bpb, line: { color: "#4a5566", width: 1, dash: "dot" } }] : [];
  const xaxis = c.numeric ? { type: c.log ? "log" : "linear", title: { text: c.name } } : { type: "category", categoryarray: c.values.map(String), title: { text: c.name } };
  plot(el, traces, baseLayout({ showlegend: false, shapes, xaxis, yaxis: { title: { text: "val_bpb" }, tickformat: ".3f" }, uirevision: `scatter-${c.name}` }));
  if (!el.on) return;   // no plotly: plot() said so
  el.removeAllListeners("plotly_click");
  el.on("plotly_click", (ev) => {
    const p = ev.points && ev.points[0];
    if (p && p.customdata) location.hash = `#/exp/${p.customdata[0]}`;
  });
}
