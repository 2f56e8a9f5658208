// runner ui: the live parts of the pages. Everything a job wrote is set as text (textContent), never
// as HTML; charts draw on canvases (Chart.js, vendored).
"use strict";

const POLL_MS = 2000;
const RUNS_POLL_MS = 5000;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "-" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

// --- the runs page ----------------------------------------------------------------------------

function renderRuns(runs) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren();
  if (runs.length === 0) {
    const row = body.insertRow();
    row.className = "empty";
    const td = cell(row, "No runs match.");
    td.colSpan = 8;
    return;
  }
  for (const run of runs) {
    const row = body.insertRow();
    row.dataset.run = run.id;
    const link = document.createElement("a");
    link.href = `/runs/${encodeURIComponent(run.id)}`;
    link.textContent = run.id;
    cell(row, "").appendChild(link);
    cell(row, run.job);
    const state = document.createElement("span");
    state.className = `state state-${run.state}`;
    state.textContent = run.state;
    cell(row, "").appendChild(state);
    cell(row, run.backend);
    cell(row, run.created);
    cell(row, run.duration);
    cell(row, run.attempts);
    cell(row, run.message, "message");
  }
}

function runsPage() {
  const params = new URLSearchParams({ job: document.body.dataset.job || "", state: document.body.dataset.state || "" });
  setInterval(async () => {
    try {
      renderRuns((await getJSON(`/api/runs?${params}`)).runs);
    } catch (error) {
      console.warn(error);
    }
  }, RUNS_POLL_MS);
}

// --- one run's page ---------------------------------------------------------------------------

const charts = new Map();

function chart(container, key, title, yLabel) {
  if (charts.has(key)) return charts.get(key);
  const box = document.createElement("figure");
  box.className = "chart";
  box.dataset.chart = key;
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  const canvas = document.createElement("canvas");
  box.append(caption, canvas);
  container.appendChild(box);
  const made = new Chart(canvas, {
    type: "line",
    data: { labels: [], datasets: [] },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      spanGaps: true,
      elements: { point: { radius: 2 } },
      scales: { y: { title: { display: Boolean(yLabel), text: yLabel || "" } } },
    },
  });
  charts.set(key, made);
  return made;
}

function setSeries(target, labels, series) {
  target.data.labels = labels;
  const names = Object.keys(series);
  target.data.datasets = names.map((name, index) => {
    const existing = target.data.datasets.find((dataset) => dataset.label === name);
    const color = COLORS[index % COLORS.length];
    const dataset = existing || { label: name, borderColor: color, backgroundColor: color, borderWidth: 2 };
    dataset.data = series[name];
    return dataset;
  });
  target.update("none");
}

// loss and val_loss in one chart, accuracy and val_accuracy in another
function groups(metrics) {
  const grouped = {};
  for (const [name, values] of Object.entries(metrics)) {
    const base = name.startsWith("val_") ? name.slice(4) : name;
    (grouped[base] = grouped[base] || {})[name] = values;
  }
  return grouped;
}

function renderTraining(training) {
  const section = document.getElementById("training");
  const container = document.getElementById("training-charts");
  section.dataset.epochs = String(training.epochs.length);
  section.dataset.steps = String(training.steps.length);
  const any = training.epochs.length > 0 || training.steps.length > 0;
  document.getElementById("no-training").hidden = any;
  const planned = training.planned ? ` of ${training.planned}` : "";
  document.getElementById("progress").textContent = training.epochs.length ? `epoch ${training.epochs.length}${planned}` : "";
  const latest = Object.entries(training.latest).map(([name, value]) => `${name} ${value == null ? "-" : Number(value).toPrecision(4)}`);
  document.getElementById("latest").textContent = latest.length ? `latest: ${latest.join("  ")}` : "";
  if (training.epochs.length) {
    for (const [base, series] of Object.entries(groups(training.metrics))) {
      setSeries(chart(container, `epoch:${base}`, `${base} by epoch`), training.epochs, series);
    }
  }
  if (training.steps.length) {
    for (const [base, series] of Object.entries(groups(training.batchMetrics))) {
      setSeries(chart(container, `batch:${base}`, `${base} by batch`), training.steps, series);
    }
  }
}

function timeLabels(times) {
  return times.map((time) => (time ? time.slice(11, 19) : ""));
}

function renderSystem(system) {
  const section = document.getElementById("system");
  const container = document.getElementById("system-charts");
  section.dataset.samples = String(system.times.length);
  document.getElementById("no-system").hidden = system.times.length > 0;
  if (!system.times.length) return;
  const labels = timeLabels(system.times);
  setSeries(chart(container, "cpu", "CPU (% of one core)", "%"), labels, { cpu: system.cpu });
  setSeries(chart(container, "memory", "Memory (MiB)", "MiB"), labels, { memory: system.memory });
  const gpus = Object.entries(system.gpus);
  if (gpus.length) {
    const utilization = Object.fromEntries(gpus.map(([name, gpu]) => [name, gpu.utilization]));
    const memory = Object.fromEntries(gpus.map(([name, gpu]) => [name, gpu.memory]));
    setSeries(chart(container, "gpu", "GPU utilisation (%)", "%"), labels, utilization);
    setSeries(chart(container, "gpu-memory", "GPU memory (MiB)", "MiB"), labels, memory);
  }
}

function renderLog(log) {
  const pre = document.getElementById("log");
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
  pre.textContent = log.text;
  document.getElementById("log-cut").textContent = log.cut ? "(its end)" : "";
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function renderRun(run) {
  const state = document.getElementById("state");
  state.textContent = run.state;
  state.className = `state state-${run.state}`;
  document.getElementById("finished").textContent = run.finished || "-";
  document.getElementById("message").textContent = run.message || "-";
  document.body.dataset.final = run.final ? "true" : "false";
}

async function renderArtifacts(runId) {
  const note = document.getElementById("artifacts-note");
  let listing;
  try {
    listing = await getJSON(`/api/runs/${encodeURIComponent(runId)}/artifacts`);
  } catch (error) {
    note.textContent = "This run has no complete artifacts in the store.";
    return;
  }
  const table = document.getElementById("artifacts");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const file of listing.files) {
    const row = body.insertRow();
    row.dataset.path = file.path;
    const link = document.createElement("a");
    link.href = file.url;
    link.textContent = file.path;
    link.setAttribute("download", "");
    cell(row, "").appendChild(link);
    cell(row, file.sizeText).title = `${file.size} bytes`;
    cell(row, file.sha256, "checksum");
  }
  const refused = listing.refused.map((item) => `${item.path} (${item.reason})`);
  note.textContent = `${listing.files.length} files` + (refused.length ? `; refused: ${refused.join(", ")}` : "");
  table.hidden = false;
}

function runPage() {
  const runId = document.body.dataset.run;
  const base = `/api/runs/${encodeURIComponent(runId)}`;
  let stopped = false;
  async function poll() {
    try {
      const [run, log, metrics] = await Promise.all([getJSON(base), getJSON(`${base}/log`), getJSON(`${base}/metrics`)]);
      renderRun(run);
      renderLog(log);
      renderTraining(metrics.training);
      renderSystem(metrics.system);
      if (run.final) {
        stopped = true;
        await renderArtifacts(runId);
      }
    } catch (error) {
      console.warn(error);
    }
    if (!stopped) setTimeout(poll, POLL_MS);
  }
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "runs") runsPage();
  if (document.body.dataset.page === "run") runPage();
});
