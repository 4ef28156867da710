// zhiku web page: chat with a knowledge base, manage it, compare retrieval methods.
// Plain JavaScript over the same HTTP API as every other client; no build step.
"use strict";

// ---------------------------------------------------------------------------------------------
// Language: I18N (i18n.js) holds the strings; the browser's language decides unless the user toggles it.

let lang = localStorage.getItem("zhiku.lang") ||
  ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

function t(key, ...args) {
  const text = (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
  return text.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)]));
}

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  $("#lang-button").textContent = lang === "zh" ? "English" : "中文";
  fillMethodSelect();
}

// ---------------------------------------------------------------------------------------------
// Helpers

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function notify(message, kind = "info") {
  const box = $("#notice");
  box.textContent = message;
  box.className = `notice ${kind}`;
  box.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 9000 : 4000);
}

const state = { kb: null, kbInfo: null, methods: [] };

function authHeaders(extra = {}) {
  const key = localStorage.getItem("zhiku.key");
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const opts = { ...options, headers: authHeaders(options.headers || {}) };
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers["Content-Type"] = "application/json";
    delete opts.json;
  }
  const res = await fetch(path, opts);
  if (!res.ok) throw await errorOf(res);
  return res;
}

async function errorOf(res) {
  let code = "error", message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch (_) { /* not JSON */ }
  if (res.status === 401) message = `${t("need_key")} (${message})`;
  return new ApiError(res.status, code, message);
}

async function getJSON(path) { return (await api(path)).json(); }

function enc(s) { return encodeURIComponent(s); }

// "Title › heading path", without repeating the title when the heading path starts with it,
// then the page ("p. 3", "slide 2") when the source has pages.
function place(title, heading, location) {
  const where = !heading ? title : heading.startsWith(title) ? heading : `${title} › ${heading}`;
  return location ? `${where} · ${location}` : where;
}

// Server-sent events over fetch (EventSource cannot POST or send an Authorization header).
async function* readEvents(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Knowledge bases

async function loadKbs(select) {
  const kbs = await getJSON("/kbs");
  const picker = $("#kb-select");
  picker.replaceChildren(...kbs.map((k) => el("option", { value: k.name }, k.name)));
  const wanted = select || state.kb || localStorage.getItem("zhiku.kb");
  const names = kbs.map((k) => k.name);
  state.kb = names.includes(wanted) ? wanted : (names[0] || null);
  if (state.kb) picker.value = state.kb;
  if (!state.kb) {
    state.kbInfo = null;
    state.methods = [];
    fillMethodSelect();
    renderKbInfo();
    notify(t("no_kb"));
    return;
  }
  localStorage.setItem("zhiku.kb", state.kb);
  await loadKbInfo();
}

async function loadKbInfo() {
  if (!state.kb) return;
  state.kbInfo = await getJSON(`/kbs/${enc(state.kb)}`);
  state.methods = state.kbInfo.methods.map((m) => ({ name: m.name, built: m.built }));
  fillMethodSelect();
  renderKbInfo();
  await loadDocuments();
}

function fillMethodSelect() {
  const select = $("#chat-method");
  if (!select) return;
  const current = select.value;
  select.replaceChildren(el("option", { value: "" }, t("default_method")),
    ...state.methods.map((m) => el("option", { value: m.name }, m.name + (m.built ? "" : ` (${t("not_built")})`))));
  select.value = [...select.options].some((o) => o.value === current) ? current : "";
  const boxes = $("#lab-methods");
  const checked = new Set([...boxes.querySelectorAll("input:checked")].map((i) => i.value));
  boxes.replaceChildren(...state.methods.map((m) => el("label", { class: m.built ? "" : "muted" },
    el("input", { type: "checkbox", value: m.name, ...(checked.size ? (checked.has(m.name) ? { checked: "" } : {}) :
      (m.built ? { checked: "" } : {})) }), ` ${m.name}`)));
}

function renderKbInfo() {
  const info = state.kbInfo;
  $("#upload-kb").textContent = state.kb ? `→ ${state.kb}` : "";
  $("#kb-summary").textContent = info ? t("summary", info.documents, info.chunks) : "";
  $("#methods").replaceChildren(...(info ? info.methods.map((m) => el("span",
    { class: `method ${m.built ? (m.fresh ? "fresh" : "stale") : "off"}`, title: m.reason || "" },
    `${m.name}${m.built ? "" : " · " + t("not_built")}`)) : []));
  $("#delete-kb").hidden = !info;
}

async function loadDocuments() {
  const docs = await getJSON(`/kbs/${enc(state.kb)}/documents`);
  const body = $("#doc-table tbody");
  body.replaceChildren(...docs.map((d) => el("tr", { "data-doc": d.id },
    el("td", {}, el("a", { href: `#doc/${enc(state.kb)}/${d.id}`, onclick: (e) => { e.preventDefault(); openDocument(state.kb, d.id); } }, d.name)),
    el("td", {}, d.title), el("td", {}, d.format), el("td", { class: "num" }, d.chunks), el("td", { class: "num" }, d.chars),
    el("td", {}, el("button", { class: "danger small", onclick: () => deleteDocument(d) }, t("delete"))))));
  $("#docs-empty").hidden = docs.length > 0;
}

async function deleteDocument(doc) {
  if (!confirm(t("confirm_delete_doc", doc.name))) return;
  try {
    await api(`/kbs/${enc(state.kb)}/documents/${doc.id}`, { method: "DELETE" });
    notify(t("deleted", doc.name));
    await loadKbInfo();
  } catch (e) { notify(e.message, "error"); }
}

async function createKb(event) {
  event.preventDefault();
  const name = $("#create-name").value.trim();
  let settings = {};
  const raw = $("#create-settings").value.trim();
  if (raw) {
    try { settings = JSON.parse(raw); } catch (_) { notify(t("bad_settings"), "error"); return; }
  }
  const language = $("#create-language").value;
  if (language !== "auto") settings = { ...settings, language };
  try {
    await api("/kbs", { method: "POST", json: { name, settings } });
    notify(t("created", name));
    $("#create-name").value = "";
    await loadKbs(name);
  } catch (e) { notify(e.message, "error"); }
}

async function deleteKb() {
  if (!state.kb || !confirm(t("confirm_delete_kb", state.kb))) return;
  try {
    await api(`/kbs/${enc(state.kb)}`, { method: "DELETE" });
    notify(t("deleted", state.kb));
    state.kb = null;
    localStorage.removeItem("zhiku.kb");
    await loadKbs();
  } catch (e) { notify(e.message, "error"); }
}

// ---------------------------------------------------------------------------------------------
// Uploads: XHR for the transfer's progress, then the ingest job's progress by polling.

function uploadFiles(files) {
  if (!state.kb || !files.length) return;
  const kb = state.kb;
  const bar = el("progress", { max: "100", value: "0" });
  const label = el("span", { class: "upload-label" }, `${t("uploading")} ${files.length}…`);
  const row = el("div", { class: "upload" }, el("div", { class: "upload-files" }, [...files].map((f) => f.name).join(", ")), bar, label);
  $("#uploads").prepend(row);
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/kbs/${enc(kb)}/documents`);
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      bar.value = Math.round((100 * e.loaded) / e.total);
      label.textContent = `${t("uploading")} ${bar.value}%`;
    }
  };
  xhr.onerror = () => { row.classList.add("failed"); label.textContent = `${t("failed")}: network error`; };
  xhr.onload = () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status >= 400 || !body) {
      row.classList.add("failed");
      const message = body && body.error ? body.error.message : `${xhr.status} ${xhr.statusText}`;
      label.textContent = `${t("failed")}: ${xhr.status === 401 ? t("need_key") + " " : ""}${message}`;
      return;
    }
    followJob(kb, body, bar, label, row);
  };
  xhr.send(form);
}

async function followJob(kb, job, bar, label, row) {
  for (;;) {
    showJob(job, bar, label);
    if (job.state === "done" || job.state === "failed") break;
    await new Promise((r) => setTimeout(r, 300));
    try { job = await getJSON(`/kbs/${enc(kb)}/jobs/${job.id}`); } catch (e) { label.textContent = e.message; return; }
  }
  row.classList.add(job.state);
  if (kb === state.kb) await loadKbInfo();
}

function showJob(job, bar, label) {
  const pct = job.total ? Math.round((100 * job.done) / job.total) : 0;
  if (job.state === "done" || job.state === "failed") {
    bar.value = 100;
    const r = job.result || {};
    const parts = [];
    if (r.added && r.added.length) parts.push(`${r.added.length} ${t("added")}`);
    if (r.updated && r.updated.length) parts.push(`${r.updated.length} ${t("updated")}`);
    if (r.unchanged && r.unchanged.length) parts.push(`${r.unchanged.length} ${t("unchanged")}`);
    const failures = (r.failed || []).map((f) => f.error);
    if (job.error && !failures.length) failures.push(job.error.message);
    label.textContent = `${job.state === "done" ? t("done") : t("failed")}: ${parts.join(", ")}` +
      (failures.length ? ` — ${failures.join("; ")}` : "");
    return;
  }
  bar.value = pct;
  const phase = job.phase.startsWith("build") ? `${t("building")} ${job.phase.slice(6)}` :
    job.phase === "ingest" ? t("ingesting") : t("waiting");
  label.textContent = `${phase} ${job.done}/${job.total}`;
}

function setupDropzone() {
  const zone = $("#dropzone");
  const input = $("#file-input");
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  input.addEventListener("change", () => { uploadFiles([...input.files]); input.value = ""; });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => uploadFiles([...(e.dataTransfer ? e.dataTransfer.files : [])]));
}

// ---------------------------------------------------------------------------------------------
// Chat

function citationLink(kb, c) {
  return el("a", {
    class: "cite", href: `#doc/${enc(kb)}/${c.doc_id}/${c.start}-${c.end}`, "data-n": c.n, title: c.title,
    onclick: (e) => { e.preventDefault(); openDocument(kb, c.doc_id, c.start, c.end); },
  }, `[${c.n}]`);
}

// The answer's text with every valid [n] turned into a link to its passage.
function renderAnswer(target, text, citations, kb) {
  const byN = new Map(citations.map((c) => [c.n, c]));
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d{1,3})\]/g)) {
    nodes.push(text.slice(last, m.index));
    const c = byN.get(Number(m[1]));
    nodes.push(c ? citationLink(kb, c) : m[0]);
    last = m.index + m[0].length;
  }
  nodes.push(text.slice(last));
  target.replaceChildren(...nodes);
}

async function ask(event) {
  event.preventDefault();
  const input = $("#chat-input");
  const question = input.value.trim();
  if (!question || !state.kb) { if (!state.kb) notify(t("no_kb"), "error"); return; }
  const kb = state.kb;
  $("#chat-empty").hidden = true;
  const log = $("#chat-log");
  log.append(el("div", { class: "msg user" }, question));
  const text = el("div", { class: "text" }, t("thinking"));
  const sources = el("ol", { class: "sources" });
  const msg = el("div", { class: "msg bot streaming" }, text, sources);
  log.append(msg);
  msg.scrollIntoView({ block: "end" });
  input.value = "";
  $("#chat-send").disabled = true;
  const body = { question, k: Number($("#chat-k").value) || 5, stream: true };
  if ($("#chat-method").value) body.method = $("#chat-method").value;
  let streamed = "";
  try {
    const res = await api(`/kbs/${enc(kb)}/ask`, { method: "POST", json: body });
    for await (const { event: name, data } of readEvents(res)) {
      if (name === "token") {
        streamed += data.text;
        text.textContent = streamed;
      } else if (name === "done") {
        renderAnswer(text, data.answer, data.citations, kb);
        if (data.citations.length) {
          sources.before(el("div", { class: "sources-title" }, t("sources")));
          sources.replaceChildren(...data.citations.map((c) => el("li", {},
            citationLink(kb, c), " ", place(c.title, c.heading, c.location))));
        }
      } else if (name === "error") {
        throw new ApiError(500, data.error.code, data.error.message);
      }
      msg.scrollIntoView({ block: "end" });
    }
  } catch (e) {
    msg.classList.add("error");
    text.textContent = e.message;
  } finally {
    msg.classList.remove("streaming");
    $("#chat-send").disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Document viewer

async function openDocument(kb, docId, start, end) {
  const query = start !== undefined ? `?highlight=${start}-${end}&chunks=false` : "?chunks=false";
  try {
    const doc = await getJSON(`/kbs/${enc(kb)}/documents/${docId}${query}`);
    $("#viewer-title").textContent = doc.title;
    $("#viewer-path").textContent = doc.name;
    const box = $("#viewer-text");
    if (doc.highlight) {
      const mark = el("mark", { id: "viewer-mark" }, doc.text.slice(doc.highlight.start, doc.highlight.end));
      box.replaceChildren(doc.text.slice(0, doc.highlight.start), mark, doc.text.slice(doc.highlight.end));
      showViewer();
      mark.scrollIntoView({ block: "center" });
    } else {
      box.replaceChildren(doc.text);
      showViewer();
      box.scrollTop = 0;
    }
    history.replaceState(null, "", `#doc/${enc(kb)}/${docId}` + (start !== undefined ? `/${start}-${end}` : ""));
  } catch (e) { notify(e.message, "error"); }
}

function showViewer() {
  $("#viewer").hidden = false;
  document.body.classList.add("viewer-open");
}

function closeViewer() {
  $("#viewer").hidden = true;
  document.body.classList.remove("viewer-open");
  history.replaceState(null, "", location.pathname);
}

// ---------------------------------------------------------------------------------------------
// Retrieval lab: one query, the chosen methods side by side.

async function compare(event) {
  event.preventDefault();
  const query = $("#lab-query").value.trim();
  const methods = [...$("#lab-methods").querySelectorAll("input:checked")].map((i) => i.value);
  if (!query || !state.kb || !methods.length) return;
  const kb = state.kb;
  const k = Number($("#lab-k").value) || 5;
  const results = $("#lab-results");
  results.style.setProperty("--columns", methods.length);
  const columns = methods.map((m) => {
    const list = el("ol", { class: "hits" }, el("li", { class: "muted" }, t("thinking")));
    const col = el("div", { class: "lab-column", "data-method": m }, el("h3", {}, m), list);
    return { m, col, list };
  });
  results.replaceChildren(...columns.map((c) => c.col));
  await Promise.all(columns.map(async ({ m, list }) => {
    try {
      const res = await (await api(`/kbs/${enc(kb)}/search`, { method: "POST", json: { query, k, method: m } })).json();
      if (!res.hits.length) { list.replaceChildren(el("li", { class: "muted" }, t("no_hits"))); return; }
      list.replaceChildren(...res.hits.map((h) => el("li", { class: "hit" },
        el("div", { class: "hit-head" },
          el("a", { href: `#doc/${enc(kb)}/${h.doc_id}/${h.start}-${h.end}`, onclick: (e) => { e.preventDefault(); openDocument(kb, h.doc_id, h.start, h.end); } },
            place(h.title, h.heading, h.location)),
          el("span", { class: "score", title: t("score") + (h.distance !== undefined ? ` (distance ${h.distance.toFixed(4)})` : "") },
            h.score.toFixed(4))),
        el("div", { class: "snippet" }, h.text.length > 220 ? h.text.slice(0, 220) + "…" : h.text))));
    } catch (e) {
      list.replaceChildren(el("li", { class: "error" }, e.message));
    }
  }));
}

// ---------------------------------------------------------------------------------------------
// Wiring

function showTab(name) {
  document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".panel").forEach((p) => p.classList.toggle("active", p.id === `panel-${name}`));
  localStorage.setItem("zhiku.tab", name);
}

function openFromHash() {
  const m = location.hash.match(/^#doc\/([^/]+)\/([0-9a-f]+)(?:\/(\d+)-(\d+))?$/);
  if (m) openDocument(decodeURIComponent(m[1]), m[2], m[3] !== undefined ? Number(m[3]) : undefined, m[4] !== undefined ? Number(m[4]) : undefined);
}

async function start() {
  applyLanguage();
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  showTab(localStorage.getItem("zhiku.tab") || "chat");
  $("#lang-button").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("zhiku.lang", lang);
    applyLanguage();
    renderKbInfo();
    if (state.kb) loadDocuments().catch(() => {});
  });
  $("#key-button").addEventListener("click", async () => {
    const key = prompt(t("key_prompt"), localStorage.getItem("zhiku.key") || "");
    if (key === null) return;
    if (key.trim()) localStorage.setItem("zhiku.key", key.trim()); else localStorage.removeItem("zhiku.key");
    await loadKbs().catch((e) => notify(e.message, "error"));
  });
  $("#kb-select").addEventListener("change", async (e) => {
    state.kb = e.target.value;
    localStorage.setItem("zhiku.kb", state.kb);
    await loadKbInfo().catch((err) => notify(err.message, "error"));
  });
  $("#chat-form").addEventListener("submit", ask);
  $("#chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("#chat-form").requestSubmit(); }
  });
  $("#create-form").addEventListener("submit", createKb);
  $("#delete-kb").addEventListener("click", deleteKb);
  $("#lab-form").addEventListener("submit", compare);
  $("#viewer-close").addEventListener("click", closeViewer);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("#viewer").hidden) closeViewer(); });
  setupDropzone();
  window.addEventListener("hashchange", openFromHash);
  try {
    await loadKbs();
  } catch (e) {
    notify(e.message, "error");
  }
  openFromHash();
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", start);
