// omicsd web console: plain JavaScript over the daemon's JSON API (docs/api.md). Pages are built with
// DOM calls (never HTML strings from data), routed by the URL hash: #/runs, #/runs/<id>, #/queue,
// #/stores. The bearer token is entered once and kept in sessionStorage (this tab only).
"use strict";

const TOKEN_KEY = "omicsd.token";
const RUN_STATES = ["QUEUED", "RUNNING", "COMPLETE", "FAILED", "CANCELED"];
const TERMINAL = new Set(["COMPLETE", "FAILED", "CANCELED"]);
const WORKFLOWS = ["germline", "align", "call", "tes"];
const SVG_NS = "http://www.w3.org/2000/svg";

let pollTimer = null;  // the current page's refresh timer
let pageSerial = 0;    // bumped on every navigation: late answers of an old page are dropped
let routed = false;    // a page has been shown (the first one keeps the browser's focus)

// ---- DOM helpers -----------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// Replaces a node's children (arrays flattened, null/false skipped, as el() does).
function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter(c => c !== null && c !== undefined && c !== false));
  return node;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function stateBadge(state) {
  return el("span", {class: "state state-" + state, "data-state": state}, state || "-");
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return "-";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 120) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  return m < 120 ? m + " min " + Math.round(s - m * 60) + " s" : (m / 60).toFixed(1) + " h";
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function table(headers, rows, caption) {
  const head = el("tr", {}, headers.map(h => el("th", {scope: "col", class: h.cls || null}, h.label || h)));
  const wrap = el("div", {class: "table-wrap"},
    el("table", {}, caption ? el("caption", {class: "sr-only"}, caption) : null,
       el("thead", {}, head), el("tbody", {}, rows)));
  return wrap;
}

function field(label, input) {
  const id = input.id || ("f-" + Math.random().toString(36).slice(2));
  input.id = id;
  return el("div", {class: "field"}, el("label", {for: id}, label), input);
}

function select(name, options, value) {
  return el("select", {name}, options.map(([v, label]) => el("option", {value: v, selected: v === value}, label)));
}

function showMessage(text) {
  const m = document.getElementById("message");
  m.textContent = text || "";
  m.hidden = !text;
}

// ---- API -------------------------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  const init = {method, headers, cache: "no-store"};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch (e) { j = null; }
  if (!r.ok) {
    let msg = j && j.error && j.error.message ? j.error.message : (text || r.statusText);
    if (r.status === 401) msg = "The API needs a token: enter one above (" + msg + ")";
    throw new ApiError(r.status, "HTTP " + r.status + ": " + msg);
  }
  return j;
}

// Fetches a run output with the token and hands it to the browser as a download.
async function download(path, filename) {
  try {
    const r = await fetch(path, {headers: token() ? {"Authorization": "Bearer " + token()} : {}});
    if (!r.ok) throw new ApiError(r.status, "HTTP " + r.status + " for " + path);
    const url = URL.createObjectURL(await r.blob());
    const a = el("a", {href: url, download: filename});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) {
    showMessage(e.message);
  }
}

// ---- routing ---------------------------------------------------------------------------------------

function parseHash() {
  const h = location.hash.startsWith("#/") ? location.hash.slice(2) : "runs";
  const [path, query] = h.split("?");
  return {parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query || "")};
}

function schedule(fn, ms) {
  clearTimeout(pollTimer);
  const serial = pageSerial;
  pollTimer = setTimeout(() => { if (serial === pageSerial) fn(); }, ms);
}

function route() {
  if (location.hash && !location.hash.startsWith("#/")) return;
  clearTimeout(pollTimer);
  pageSerial++;
  showMessage("");
  const {parts, query} = parseHash();
  const section = parts[0] || "runs";
  for (const a of document.querySelectorAll("[data-nav]"))
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  const main = document.getElementById("main");
  main.replaceChildren();
  // After a navigation, keyboard and screen reader users start at the new page's content.
  if (routed) main.focus({preventScroll: true});
  routed = true;
  if (section === "runs" && parts[1]) runPage(main, parts[1]);
  else if (section === "queue") queuePage(main);
  else if (section === "stores") storesPage(main, query);
  else runsPage(main, query);
}

// Runs a page's loader, showing an API failure in the message area instead of the page.
async function guarded(serial, fn) {
  try {
    await fn();
  } catch (e) {
    if (serial === pageSerial) showMessage(e.message);
  }
}

// ---- runs list -------------------------------------------------------------------------------------

function runsPage(main, query) {
  const serial = pageSerial;
  const state = query.get("state") || "", workflow = query.get("workflow") || "";
  const sample = query.get("sample") || "", tag = query.get("tag") || "";
  const pageToken = query.get("page") || "";
  const stateSel = select("state", [["", "any"], ...RUN_STATES.map(s => [s, s])], state);
  const wfSel = select("workflow", [["", "any"], ...WORKFLOWS.map(w => [w, w])], workflow);
  const sampleIn = el("input", {name: "sample", value: sample, type: "search", placeholder: "e.g. NA12878"});
  const tagIn = el("input", {name: "tag", value: tag, type: "search", placeholder: "key or key:value"});
  const live = el("input", {type: "checkbox", id: "runs-live", checked: true});
  const form = el("form", {class: "filters", "aria-label": "Filter runs", onsubmit: ev => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of [["state", stateSel.value], ["workflow", wfSel.value], ["sample", sampleIn.value.trim()],
                          ["tag", tagIn.value.trim()]]) if (v) q.set(k, v);
    location.hash = "#/runs" + (q.toString() ? "?" + q : "");
  }},
    field("State", stateSel), field("Workflow", wfSel), field("Sample", sampleIn), field("Tag", tagIn),
    el("button", {type: "submit", class: "primary"}, "Apply"),
    el("div", {class: "field inline"}, live, el("label", {for: "runs-live"}, "Live")));
  const summary = el("p", {class: "muted", role: "status", id: "runs-summary"});
  const holder = el("div", {id: "runs-table"});
  const pager = el("div", {class: "pager"});
  main.append(el("h1", {}, "Runs"), form, summary, holder, pager);

  const matches = r => (!sample || (r.sample || "").toLowerCase().includes(sample.toLowerCase())) &&
                       (!tag || runTags(r).some(t => t.includes(tag)));
  async function load() {
    // state and workflow are filtered by the API; sample and tag here, following pages until a page
    // of matches is filled (the API pages in submission order).
    // At most 10 API pages (2,000 runs) per load, so a rare sample does not read the whole table each
    // refresh: "Next page" goes on from where the scan stopped.
    const want = 50, maxPages = 10;
    let tokenNow = pageToken, rows = [], next = null, scanned = 0, pages = 0;
    do {
      const q = new URLSearchParams({page_size: sample || tag ? "200" : String(want)});
      if (state) q.set("state", state);
      if (workflow) q.set("workflow", workflow);
      if (tokenNow) q.set("page_token", tokenNow);
      const page = await api("GET", "/v1/runs?" + q);
      for (const r of page.runs) {
        scanned++;
        if (rows.length < want && matches(r)) { rows.push(r); next = r.id; }
      }
      tokenNow = page.next_page_token;
      if (rows.length < want) next = tokenNow;
      pages++;
    } while (tokenNow && rows.length < want && pages < maxPages);
    if (!sample && !tag) next = tokenNow;  // the API's own page boundary
    if (serial !== pageSerial) return;
    fill(holder, rows.length ? runsTable(rows) : el("p", {}, "No runs match."));
    summary.textContent = rows.length + " run(s) shown" + (sample || tag ? " (" + scanned + " scanned" + (rows.length < want && next ? "; the next page scans on" : "") + ")" : "") +
      "; updated " + new Date().toLocaleTimeString();
    fill(pager,
      pageToken ? el("button", {type: "button", onclick: () => history.back()}, "Previous page") : null,
      next ? el("button", {type: "button", onclick: () => {
        const q = new URLSearchParams(query);
        q.set("page", next);
        location.hash = "#/runs?" + q;
      }}, "Next page") : null);
    if (live.checked) schedule(() => guarded(serial, load), 3000);
  }
  live.addEventListener("change", () => { if (live.checked) guarded(serial, load); else clearTimeout(pollTimer); });
  guarded(serial, load);
}

// A run's tags: WES tags as given with the run (provenance keeps the request), and its group.
function runTags(r) {
  const out = ["group:" + (r.group || "default")];
  const tags = r.provenance && r.provenance.wes_request && r.provenance.wes_request.tags;
  if (tags && typeof tags === "object") for (const [k, v] of Object.entries(tags)) out.push(k + ":" + v);
  return out;
}

function runsTable(runs) {
  return table(
    ["Run", "Sample", "Workflow", "State", "Tasks", {label: "Group", cls: "hide-narrow"},
     {label: "Created", cls: "hide-narrow"}, {label: "Updated", cls: "hide-narrow"}],
    runs.map(r => {
      const done = (r.tasks || []).filter(t => t.state === "COMPLETE").length;
      return el("tr", {"data-run": r.id},
        el("td", {}, el("a", {href: "#/runs/" + encodeURIComponent(r.id), class: "mono"}, r.id)),
        el("td", {}, r.sample || "-"), el("td", {}, r.workflow), el("td", {}, stateBadge(r.state)),
        el("td", {class: "num"}, done + "/" + (r.tasks || []).length),
        el("td", {class: "hide-narrow"}, r.group || "default"),
        el("td", {class: "hide-narrow"}, fmtTime(r.created_at)),
        el("td", {class: "hide-narrow"}, fmtTime(r.updated_at)));
    }), "Runs");
}

// ---- one run ---------------------------------------------------------------------------------------

function taskProvenance(run, name) {
  const p = run.provenance || {};
  const t = (p.tasks && p.tasks[name]) || {};
  return {
    backend: t.backend || (p.backend && p.backend[name]) || null,
    device: t.device || (p.device && p.device[name]) || null,
  };
}

function timeline(run) {
  const stages = run.stages || [];
  const now = Date.now();
  const t0 = Math.min(...stages.map(s => s.queued_at).filter(x => x), run.created_at);
  const ends = stages.map(s => s.finished_at || (s.started_at ? now : s.queued_at));
  const t1 = Math.max(t0 + 1, ...ends);
  // Drawn at the width it is shown at, so its text stays legible on a phone.
  const W = Math.max(320, Math.min(1400, document.getElementById("main").clientWidth - 40));
  const left = W < 600 ? 70 : 120, right = 20, rowH = 26, top = 24;
  const H = top + rowH * Math.max(stages.length, 1) + 10;
  const x = t => left + (W - left - right) * (t - t0) / (t1 - t0);
  const g = svg("svg", {class: "timeline", viewBox: `0 0 ${W} ${H}`, role: "img", "data-plot": "timeline",
                        "aria-label": "Timeline of the run's tasks: waiting in grey, running in colour"});
  g.append(svg("title", {}, "Task timeline"));
  const ticks = W < 600 ? 2 : 4;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + (t1 - t0) * i / ticks, xx = x(t);
    g.append(svg("line", {class: "grid", x1: xx, x2: xx, y1: top - 6, y2: H - 6}),
             svg("text", {x: xx, y: 14, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle"},
                 "+" + fmtDuration(Math.round(t - t0))));
  }
  stages.forEach((s, i) => {
    const y = top + i * rowH;
    g.append(svg("text", {x: 4, y: y + 16}, s.name));
    if (s.started_at) {
      g.append(svg("rect", {class: "wait", x: x(s.queued_at), y: y + 4, height: 16,
                            width: Math.max(1, x(s.started_at) - x(s.queued_at))},
                   svg("title", {}, s.name + " waited " + fmtDuration(s.wait_ms))));
      const end = s.finished_at || now;
      g.append(svg("rect", {class: "bar-" + s.state, x: x(s.started_at), y: y + 4, height: 16,
                            width: Math.max(2, x(end) - x(s.started_at)), "data-stage": s.name},
                   svg("title", {}, s.name + " " + s.state + ", ran " + fmtDuration(end - s.started_at))));
    } else {
      g.append(svg("text", {x: left, y: y + 16, class: "muted"}, s.state === "QUEUED" ? "waiting" : s.state.toLowerCase()));
    }
  });
  return g;
}

function runPage(main, id) {
  const serial = pageSerial;
  const head = el("div", {});
  const body = el("div", {});
  main.append(el("p", {}, el("a", {href: "#/runs"}, "\u2190 All runs")), head, body);

  async function act(what) {
    try {
      await api("POST", "/v1/runs/" + encodeURIComponent(id) + "/" + what);
      showMessage("");
    } catch (e) {
      showMessage(e.message + (e.status === 403 ? " (this token lacks the scope)" : ""));
    }
    guarded(serial, load);
  }

  async function load() {
    const [run, logs] = await Promise.all([
      api("GET", "/v1/runs/" + encodeURIComponent(id)),
      api("GET", "/v1/runs/" + encodeURIComponent(id) + "/logs")]);
    if (serial !== pageSerial) return;
    document.title = "Run " + run.id + " \u2013 omicsd console";
    const cancellable = run.state === "QUEUED" || run.state === "RUNNING";
    const resumable = run.state === "FAILED" || run.state === "CANCELED";
    const cacheHits = (run.tasks || []).filter(t => t.cache_hit).length;
    fill(head,
      el("h1", {}, "Run ", el("span", {class: "mono"}, run.id), " ", stateBadge(run.state)),
      el("div", {class: "row"},
        el("button", {type: "button", class: "danger", id: "run-cancel", disabled: !cancellable,
                      onclick: () => act("cancel")}, "Cancel run"),
        el("button", {type: "button", id: "run-resume", disabled: !resumable, onclick: () => act("resume")},
           "Resume run"),
        run.outputs && run.outputs.report ? el("button", {type: "button", id: "run-report",
          onclick: () => download(outputUrl(run, "report"), (run.sample || run.id) + ".report.html")},
          "Download HTML report") : null),
      el("dl", {class: "facts"},
        fact("Sample", run.sample || "-"), fact("Workflow", run.workflow), fact("Group", run.group),
        fact("Priority", run.priority), fact("Deadline", run.deadline ? fmtTime(run.deadline) : "-"),
        fact("Created", fmtTime(run.created_at)), fact("Started", fmtTime(run.started_at)),
        fact("Updated", fmtTime(run.updated_at)),
        fact("Cache hits", cacheHits + " of " + (run.tasks || []).length + " task(s)" +
             (run.cache === false ? " (cache off)" : "")),
        run.at_risk_at ? fact("At risk since", fmtTime(run.at_risk_at)) : null,
        run.failure_reason ? fact("Failure", el("span", {class: "error"}, run.failure_reason)) : null));

    const logByTask = {};
    for (const t of (logs && logs.tasks) || []) logByTask[t.name] = t;
    fill(body,
      el("h2", {}, "Timeline"), timeline(run),
      el("h2", {}, "Tasks"),
      table(["Task", "State", "Attempts", "Worker", "Backend", "Device", "Queued", "Started", "Finished",
             {label: "Ran", cls: "num"}, "Cache"],
        (run.tasks || []).map(t => {
          const p = taskProvenance(run, t.name);
          const st = (run.stages || []).find(s => s.name === t.name) || {};
          return el("tr", {"data-task": t.name},
            el("td", {}, t.name, t.kind !== t.name ? el("span", {class: "muted"}, " (" + t.kind + ")") : null),
            el("td", {}, stateBadge(t.state)), el("td", {class: "num"}, t.attempts + "/" + t.max_attempts),
            el("td", {class: "mono"}, t.worker_id || "-"), el("td", {}, p.backend || "-"),
            el("td", {}, p.device === null ? "-" : typeof p.device === "object" ? JSON.stringify(p.device) : p.device),
            el("td", {}, fmtTime(t.queued_at)), el("td", {}, fmtTime(t.started_at)),
            el("td", {}, fmtTime(t.finished_at)), el("td", {class: "num"}, fmtDuration(st.duration_ms)),
            el("td", {}, t.cache_hit ? "hit" : "-"));
        }), "Tasks"),
      el("h2", {}, "Logs"),
      (run.tasks || []).map(t => {
        const l = logByTask[t.name] || t;
        return el("details", {class: "task-log"},
          el("summary", {}, t.name + ": " + t.state + (l.last_error ? " \u2013 " + l.last_error.slice(0, 120) : "")),
          el("pre", {}, JSON.stringify(l, null, 2)));
      }),
      el("h2", {}, "Outputs"),
      Object.keys(run.outputs || {}).length ?
        table(["Output", {label: "Size", cls: "num"}, "Digest", "Download"],
          Object.entries(run.outputs).map(([name, o]) => el("tr", {"data-output": name},
            el("td", {}, name), el("td", {class: "num"}, fmtBytes(o.size)), el("td", {class: "mono"}, o.digest),
            el("td", {}, el("button", {type: "button", "aria-label": "Download " + name,
              onclick: () => download(outputUrl(run, name), outputName(run, name))}, "Download")))), "Outputs") :
        el("p", {class: "muted"}, "No outputs yet."),
      el("h2", {}, "Webhook deliveries"),
      (run.callbacks || []).length ?
        table(["Event", "Type", "Run state", "Delivery", "Attempts", "Created", "Delivered", "Last error"],
          run.callbacks.map(c => el("tr", {},
            el("td", {class: "mono"}, c.id), el("td", {}, c.type), el("td", {}, stateBadge(c.state)),
            el("td", {}, stateBadge(c.status)), el("td", {class: "num"}, c.attempts), el("td", {}, fmtTime(c.created_at)),
            el("td", {}, fmtTime(c.delivered_at)), el("td", {}, c.last_error || "-"))), "Webhook deliveries") :
        el("p", {class: "muted"}, run.callback_url ? "No events yet." : "No callback URL."),
      el("h2", {}, "Inputs and parameters"),
      el("pre", {}, JSON.stringify({inputs: run.inputs, parameters: run.parameters}, null, 2)),
      el("h2", {}, "Provenance"),
      el("details", {}, el("summary", {}, "Provenance (JSON)"), el("pre", {}, JSON.stringify(run.provenance, null, 2))));
    if (!TERMINAL.has(run.state)) schedule(() => guarded(serial, load), 2000);
  }
  guarded(serial, load);
}

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value === null || value === undefined ? "-" : value)];
}

function outputUrl(run, name) {
  return "/v1/runs/" + encodeURIComponent(run.id) + "/outputs/" + encodeURIComponent(name);
}

function outputName(run, name) {
  const base = (run.sample || run.id).replace(/[^A-Za-z0-9._-]/g, "_");
  const ext = {bam: ".bam", bai: ".bam.bai", vcf: ".vcf.gz", tbi: ".vcf.gz.tbi", qc: ".qc.json",
               report: ".report.html", flagstat: ".flagstat.txt", bcftools_stats: ".bcftools_stats.txt"}[name];
  return base + (ext || "." + name);
}

// ---- queue and workers -----------------------------------------------------------------------------

// Prometheus text -> [{name, labels, value}] (the daemon's own /metrics; no other format is read).
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    out.push({name: m[1], labels, value: Number(m[4])});
  }
  return out;
}

function queuePage(main) {
  const serial = pageSerial;
  const body = el("div", {});
  main.append(el("h1", {}, "Queue and workers"), el("p", {class: "muted", role: "status", id: "queue-updated"}), body);
  async function load() {
    const r = await fetch("/metrics", {headers: token() ? {"Authorization": "Bearer " + token()} : {}, cache: "no-store"});
    if (!r.ok) throw new ApiError(r.status, "HTTP " + r.status + " for /metrics" +
                                  (r.status === 403 ? ": this token lacks the metrics scope" : ""));
    const metrics = parseMetrics(await r.text());
    const active = [];
    for (const state of ["RUNNING", "QUEUED"]) {
      const page = await api("GET", "/v1/runs?state=" + state + "&page_size=200");
      active.push(...page.runs);
    }
    if (serial !== pageSerial) return;
    const pick = name => metrics.filter(m => m.name === name);
    const byState = {};
    for (const m of pick("omicsd_runs")) byState[m.labels.state] = m.value;
    const depth = (pick("omicsd_queue_depth")[0] || {}).value;
    const leases = [];
    const queued = [];
    for (const run of active) for (const t of run.tasks || []) {
      if (t.state === "RUNNING") leases.push([run, t]);
      if (t.state === "QUEUED") queued.push([run, t]);
    }
    const workers = {};
    for (const m of pick("omicsd_worker_last_heartbeat_seconds")) workers[m.labels.worker] = {beat: m.value * 1000, gpus: {}};
    for (const [metric, key] of [["omicsd_worker_gpu_utilization_ratio", "util"], ["omicsd_worker_gpu_memory_used_bytes", "used"],
                                 ["omicsd_worker_gpu_memory_total_bytes", "total"]])
      for (const m of pick(metric)) {
        const w = workers[m.labels.worker] = workers[m.labels.worker] || {beat: null, gpus: {}};
        const g = w.gpus[m.labels.gpu] = w.gpus[m.labels.gpu] || {name: m.labels.name};
        g[key] = m.value;
      }
    for (const [, t] of leases) if (t.worker_id && !workers[t.worker_id]) workers[t.worker_id] = {beat: null, gpus: {}};
    const gpuRows = [];
    for (const [w, info] of Object.entries(workers))
      for (const [idx, g] of Object.entries(info.gpus))
        gpuRows.push(el("tr", {}, el("td", {class: "mono"}, w), el("td", {}, idx + " " + (g.name || "")),
          el("td", {}, el("meter", {class: "meter", min: 0, max: 1, value: g.util || 0,
                                    "aria-label": "GPU " + idx + " of " + w + " utilisation"}),
             Math.round((g.util || 0) * 100) + "%"),
          el("td", {class: "num"}, fmtBytes(g.used) + " / " + fmtBytes(g.total))));
    fill(body,
      el("h2", {}, "Depth by state"),
      el("div", {class: "cards"},
        el("div", {class: "card", "data-metric": "queue_depth"}, el("div", {class: "muted"}, "Tasks queued"),
           el("div", {class: "big"}, depth === undefined ? "-" : depth)),
        RUN_STATES.map(s => el("div", {class: "card", "data-metric": "runs-" + s}, el("div", {}, stateBadge(s), " runs"),
                               el("div", {class: "big"}, byState[s] === undefined ? 0 : byState[s])))),
      el("p", {class: "muted"}, "Run counts are refreshed by the daemon at most every few seconds."),
      el("h2", {}, "Leases (" + leases.length + ")"),
      leases.length ? table(["Task", "Run", "Worker", "Attempt", "Leased", "Running for"],
        leases.map(([run, t]) => el("tr", {},
          el("td", {}, t.name), el("td", {}, el("a", {href: "#/runs/" + encodeURIComponent(run.id), class: "mono"}, run.id)),
          el("td", {class: "mono"}, t.worker_id || "-"), el("td", {class: "num"}, t.attempts + "/" + t.max_attempts),
          el("td", {}, fmtTime(t.started_at)), el("td", {class: "num"}, fmtDuration(t.started_at ? Date.now() - t.started_at : null)))),
        "Leases") : el("p", {class: "muted"}, "No task is leased."),
      el("h2", {}, "Waiting tasks (" + queued.length + ")"),
      queued.length ? table(["Task", "Run", "Sample", "Priority", "Queued for"],
        queued.slice(0, 100).map(([run, t]) => el("tr", {},
          el("td", {}, t.name), el("td", {}, el("a", {href: "#/runs/" + encodeURIComponent(run.id), class: "mono"}, run.id)),
          el("td", {}, run.sample || "-"), el("td", {class: "num"}, run.priority),
          el("td", {class: "num"}, fmtDuration(Date.now() - t.queued_at)))), "Waiting tasks") :
        el("p", {class: "muted"}, "No task is waiting."),
      el("h2", {}, "Workers"),
      Object.keys(workers).length ? table(["Worker", "Last heartbeat", "Tasks leased"],
        Object.entries(workers).map(([w, info]) => el("tr", {"data-worker": w},
          el("td", {class: "mono"}, w),
          el("td", {}, info.beat ? fmtTime(Math.round(info.beat)) + " (" + fmtDuration(Math.max(0, Date.now() - Math.round(info.beat))) + " ago)" :
                                   "none reported (in-process workers send none)"),
          el("td", {class: "num"}, leases.filter(([, t]) => t.worker_id === w).length))), "Workers") :
        el("p", {class: "muted"}, "No worker has reported yet (remote workers appear with their first heartbeat)."),
      el("h2", {}, "GPU utilisation"),
      gpuRows.length ? table(["Worker", "GPU", "Utilisation", {label: "Memory", cls: "num"}], gpuRows, "GPUs") :
        el("p", {class: "muted"}, "No GPU telemetry (workers send it with their heartbeats when they have an NVIDIA GPU)."));
    document.getElementById("queue-updated").textContent = "Updated " + new Date().toLocaleTimeString();
    schedule(() => guarded(serial, load), 3000);
  }
  guarded(serial, load);
}

// ---- stores ----------------------------------------------------------------------------------------

function storesPage(main) {
  const serial = pageSerial;
  const refs = el("div", {}), readsets = el("div", {}), results = el("div", {id: "variant-results", "aria-live": "polite"});
  const cohortOut = el("div", {id: "cohort-results", "aria-live": "polite"});

  const kind = select("kind", [["variant", "Variant (chrom:pos:ref:alt)"], ["region", "Region (chrom:start-end)"]], "variant");
  kind.id = "variant-kind";
  const q = el("input", {id: "variant-query", name: "q", type: "search", required: true, placeholder: "chr22:10510:A:G or chr22:1-50000"});
  const sampleIn = el("input", {id: "variant-sample", name: "sample", type: "search", placeholder: "optional, regions only"});
  const searchForm = el("form", {class: "filters", "aria-label": "Variant search", onsubmit: ev => {
    ev.preventDefault();
    guarded(serial, () => variantSearch(kind.value, q.value.trim(), sampleIn.value.trim(), results));
  }}, field("Search by", kind), field("Variant or region", q), field("Sample", sampleIn),
     el("button", {type: "submit", class: "primary", id: "variant-search"}, "Search"));

  const rules = el("div", {});
  const addRule = focus => {
    const n = rules.children.length + 1;
    const input = el("input", {type: "text", name: "variant", required: true, placeholder: "chr22:10510:A:G",
                               "aria-label": "Variant " + n + " (chrom:pos:ref:alt)"});
    const row = el("div", {class: "rule-row"}, input,
      el("button", {type: "button", "aria-label": "Remove variant " + n, onclick: () => row.remove()}, "Remove"));
    rules.append(row);
    if (focus) input.focus();
  };
  const match = select("match", [["any", "any of the variants"], ["all", "all of the variants"]], "any");
  const zyg = select("zygosity", [["any", "any"], ["het", "heterozygous"], ["hom_alt", "homozygous alt"]], "any");
  const minGq = el("input", {type: "number", name: "min_gq", min: 0, max: 99999, placeholder: "none"});
  const tags = el("input", {type: "text", name: "tags", placeholder: "cohort:A,sex:F"});
  const cohortForm = el("form", {"aria-label": "Cohort rule", onsubmit: ev => {
    ev.preventDefault();
    const rule = {variants: [...rules.querySelectorAll("input")].map(i => i.value.trim()).filter(Boolean),
                  match: match.value, zygosity: zyg.value};
    if (minGq.value !== "") rule.min_gq = Number(minGq.value);
    if (tags.value.trim()) {
      rule.tags = {};
      for (const kv of tags.value.split(",")) {
        const [k, ...v] = kv.split(":");
        if (k.trim()) rule.tags[k.trim()] = v.join(":").trim();
      }
    }
    guarded(serial, () => cohortQuery(rule, cohortOut));
  }},
    el("fieldset", {}, el("legend", {}, "Samples carrying"), field("Match", match), rules,
       el("button", {type: "button", onclick: () => addRule(true)}, "Add variant")),
    el("div", {class: "filters"}, field("Zygosity", zyg), field("Minimum GQ", minGq), field("Sample tags", tags),
       el("button", {type: "submit", class: "primary", id: "cohort-run"}, "Count samples")));

  main.append(el("h1", {}, "Stores"),
    el("div", {class: "split"},
      el("section", {"aria-labelledby": "h-variants"}, el("h2", {id: "h-variants"}, "Variant search"), searchForm, results),
      el("section", {"aria-labelledby": "h-cohort"}, el("h2", {id: "h-cohort"}, "Cohort rule"), cohortForm, cohortOut)),
    el("section", {"aria-labelledby": "h-refs"}, el("h2", {id: "h-refs"}, "References"), refs),
    el("section", {"aria-labelledby": "h-readsets"}, el("h2", {id: "h-readsets"}, "Read sets"), readsets));
  addRule(false);

  guarded(serial, async () => {
    const [r, s] = await Promise.all([api("GET", "/v1/references?page_size=200"), api("GET", "/v1/readsets?page_size=200")]);
    if (serial !== pageSerial) return;
    fill(refs, r.references.length ? table(["Reference", "Name", "State", {label: "Sequences", cls: "num"},
        {label: "Length", cls: "num"}, {label: "Stored", cls: "num"}, "MD5", "Created"],
      r.references.map(x => el("tr", {}, el("td", {class: "mono"}, x.id), el("td", {}, x.name), el("td", {}, stateBadge(x.state),
          x.failure_reason ? el("div", {class: "error"}, x.failure_reason) : null),
        el("td", {class: "num"}, x.num_sequences ?? "-"), el("td", {class: "num"}, x.total_length ?? "-"),
        el("td", {class: "num"}, fmtBytes(x.size)), el("td", {class: "mono"}, x.md5 || "-"), el("td", {}, fmtTime(x.created_at)))),
      "References") : el("p", {class: "muted"}, "No references stored."),
      r.next_page_token ? el("p", {class: "muted"}, "The 200 newest are shown.") : null);
    fill(readsets, s.readsets.length ? table(["Read set", "Sample", "Import", "Format", {label: "Reads", cls: "num"},
        {label: "Source", cls: "num"}, {label: "CRAM", cls: "num"}, {label: "Compression", cls: "num"}, "Tags"],
      s.readsets.map(x => el("tr", {}, el("td", {class: "mono"}, x.id), el("td", {}, x.sample_id),
        el("td", {}, stateBadge(x.state), x.failure_reason ? el("div", {class: "error"}, x.failure_reason) : null),
        el("td", {}, (x.source_format || "-") + (x.paired ? " (paired)" : "")), el("td", {class: "num"}, x.read_count ?? "-"),
        el("td", {class: "num"}, fmtBytes(x.source_bytes)), el("td", {class: "num"}, fmtBytes(x.cram_bytes)),
        el("td", {class: "num"}, x.compression_ratio ? x.compression_ratio.toFixed(2) + "x" : "-"),
        el("td", {}, Object.entries(x.tags || {}).map(([k, v]) => k + ":" + v).join(", ") || "-"))),
      "Read sets") : el("p", {class: "muted"}, "No read sets stored."),
      s.next_page_token ? el("p", {class: "muted"}, "The 200 oldest are shown.") : null);
  });
}

function variantRow(v) {
  return el("tr", {"data-sample": v.sample_id},
    el("td", {class: "mono"}, [v.chrom, v.pos, v.ref, v.alt].filter(x => x !== undefined).join(":")),
    el("td", {}, v.sample_id), el("td", {}, v.subject_id || "-"), el("td", {class: "mono"}, v.gt), el("td", {}, v.zygosity),
    el("td", {class: "num"}, v.gq ?? "-"), el("td", {class: "num"}, v.dp ?? "-"));
}

async function variantSearch(kind, q, sample, out) {
  fill(out, el("p", {class: "muted"}, "Searching\u2026"));
  const params = new URLSearchParams({page_size: "200"});
  params.set(kind, q);
  if (kind === "region" && sample) params.set("sample", sample);
  const r = await api("GET", "/v1/variants?" + params);
  const head = ["Variant", "Sample", "Subject", "GT", "Zygosity", {label: "GQ", cls: "num"}, {label: "DP", cls: "num"}];
  if (kind === "variant") {
    const c = r.counts || {};
    fill(out,
      el("p", {role: "status"}, r.site_known ? r.carriers.length + " carrier(s)" : "Site not in the store",
         "; AC " + (c.ac ?? 0) + ", AN " + (c.an ?? 0) + ", AF " + (c.af !== undefined ? Number(c.af).toFixed(4) : "0")),
      r.carriers.length ? table(head, r.carriers.map(x => variantRow(Object.assign({}, r.variant, x))), "Carriers") : null,
      r.next_page_token ? el("p", {class: "muted"}, "More carriers than shown (first 200).") : null);
  } else {
    fill(out,
      el("p", {role: "status"}, r.genotypes.length + " genotype(s) in " + r.region.chrom + ":" + r.region.start + "-" + r.region.end +
         (r.next_page_token ? " (first 200 shown)" : "")),
      r.genotypes.length ? table(head, r.genotypes.map(variantRow), "Genotypes") : null);
  }
}

async function cohortQuery(rule, out) {
  fill(out, el("p", {class: "muted"}, "Counting\u2026"));
  rule.page_size = 200;
  const r = await api("POST", "/v1/cohorts/query", rule);
  fill(out,
    el("p", {role: "status", id: "cohort-count"}, r.n_matching + " of " + r.n_cohort + " sample(s) match"),
    table(["Variant", {label: "AC", cls: "num"}, {label: "AN", cls: "num"}, {label: "AF", cls: "num"},
           {label: "Het", cls: "num"}, {label: "Hom alt", cls: "num"}],
      (r.counts || []).map(c => el("tr", {}, el("td", {class: "mono"}, [c.chrom, c.pos, c.ref, c.alt].join(":")),
        el("td", {class: "num"}, c.ac), el("td", {class: "num"}, c.an), el("td", {class: "num"}, Number(c.af).toFixed(4)),
        el("td", {class: "num"}, c.n_het), el("td", {class: "num"}, c.n_hom_alt))), "Counts per variant"),
    r.samples.length ? table(["Sample", "Subject", "Matched"], r.samples.map(s => el("tr", {},
      el("td", {}, s.sample_id), el("td", {}, s.subject_id || "-"),
      el("td", {class: "mono"}, s.matched.map(m => [m.chrom, m.pos, m.ref, m.alt].join(":") + " " + m.gt).join(", ")))),
      "Matching samples") : null);
}

// ---- start -----------------------------------------------------------------------------------------

function showTokenState() {
  document.getElementById("token-state").textContent = token() ? "token set for this tab" : "no token";
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    showTokenState();
    route();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
    route();
  });
  showTokenState();
  window.addEventListener("hashchange", route);
  route();
});
