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

const state = { kb: null, kbInfo: null, methods: [], conversation: null };

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
  await Promise.all([loadDocuments(), loadConversations(), loadSettings()]);
}

function fillMethodSelect() {
  const select = $("#chat-method");
  if (!select) return;
  const current = select.value;
  select.replaceChildren(el("option", { value: "" }, t("default_method")),
    ...state.methods.map((m) => el("option", { value: m.name }, m.name + (m.built ? "" : ` (${t("not_built")})`))));
  select.value = [...select.options].some((o) => o.value === current) ? current : "";
  // The lab offers only methods that can run; the others say so, with a button that builds them.
  const boxes = $("#lab-methods");
  const checked = new Set([...boxes.querySelectorAll("input:checked")].map((i) => i.value));
  const built = state.methods.filter((m) => m.built);
  boxes.replaceChildren(...built.map((m) => el("label", {},
    el("input", { type: "checkbox", value: m.name, ...(checked.size && !checked.has(m.name) ? {} : { checked: "" }) }),
    ` ${m.name}`)));
  $("#lab-unbuilt").replaceChildren(...state.methods.filter((m) => !m.built).map((m) => el("span",
    { class: "unbuilt", "data-method": m.name }, `${m.name} — ${t("not_built")} `,
    el("button", { class: "small", onclick: () => buildMethod(m.name) }, t("build")))));
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

// The documents table: one page at a time, searched by file name or title on the server.
const DOC_PAGE = 50;
const docView = { offset: 0, q: "", total: 0 };

async function loadDocuments() {
  const kb = state.kb;
  const params = new URLSearchParams({ offset: docView.offset, limit: DOC_PAGE });
  if (docView.q) params.set("q", docView.q);
  const res = await api(`/kbs/${enc(kb)}/documents?${params}`);
  const docs = await res.json();
  if (kb !== state.kb) return;
  docView.total = Number(res.headers.get("X-Total-Count") || docs.length);
  const body = $("#doc-table tbody");
  body.replaceChildren(...docs.map((d) => el("tr", { "data-doc": d.id },
    el("td", {}, el("a", { href: `#doc/${enc(kb)}/${d.id}`, onclick: (e) => { e.preventDefault(); openDocument(kb, d.id); } }, d.name)),
    el("td", {}, d.title), el("td", {}, d.format), el("td", { class: "num" }, d.chunks), el("td", { class: "num" }, d.chars),
    el("td", {}, el("button", { class: "danger small", onclick: () => deleteDocument(d) }, t("delete"))))));
  $("#docs-empty").hidden = docs.length > 0;
  $("#doc-range").textContent = docView.total ? t("range", docView.offset + 1, docView.offset + docs.length, docView.total) : "";
  $("#doc-prev").disabled = docView.offset === 0;
  $("#doc-next").disabled = docView.offset + docs.length >= docView.total;
  $("#doc-delete-matching").hidden = !docView.q || !docView.total;
}

// A delete answers 200 once done, or 202 with its job when it queued behind a running ingest:
// follow the job, so "deleted" is said (and the list reloaded) when it is true.
async function deleteDone(kb, res) {
  if (res.status !== 202) return;
  const job = await pollJob(kb, await res.json(), () => {});
  if (job.state === "failed") throw new Error(job.error ? job.error.message : t("failed"));
}

async function deleteDocument(doc) {
  if (!confirm(t("confirm_delete_doc", doc.name))) return;
  try {
    await deleteDone(state.kb, await api(`/kbs/${enc(state.kb)}/documents/${doc.id}`, { method: "DELETE" }));
    notify(t("deleted", doc.name));
    await loadKbInfo();
  } catch (e) { notify(e.message, "error"); }
}

// Delete by title or file name: everything the search matches, after a confirmation that lists it.
async function deleteMatching() {
  const kb = state.kb;
  try {
    const matches = await getJSON(`/kbs/${enc(kb)}/documents?q=${enc(docView.q)}`);
    if (!matches.length) return;
    const shown = matches.slice(0, 20).map((d) => `• ${d.name} — ${d.title}`).join("\n") +
      (matches.length > 20 ? `\n… (+${matches.length - 20})` : "");
    if (!confirm(`${t("confirm_delete_matching", matches.length, docView.q)}\n\n${shown}`)) return;
    await deleteDone(kb, await api(`/kbs/${enc(kb)}/documents/delete`, { method: "POST", json: { ids: matches.map((d) => d.id) } }));
    notify(t("deleted_n", matches.length));
    docView.offset = 0;
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

// The formats the server's loaders read (GET /formats): the picker's filter, and files of any other
// type are refused by name before anything is sent.
let formats = [];

async function loadFormats() {
  const res = await fetch("/formats");
  formats = (await res.json()).extensions;
  $("#file-input").accept = formats.join(",");
  $("#upload-types").textContent = formats.map((x) => x.slice(1)).join(", ");
}

function uploadFiles(files) {
  if (!state.kb || !files.length) return;
  if (formats.length) {
    const ext = (name) => (name.match(/\.[^./]+$/) || [""])[0].toLowerCase();
    const refused = files.filter((f) => !formats.includes(ext(f.name)));
    if (refused.length) notify(`${t("refused")}: ${refused.map((f) => f.name).join(", ")} — ${t("unsupported_type")}`, "error");
    files = files.filter((f) => formats.includes(ext(f.name)));
    if (!files.length) return;
  }
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
    if (body.refused && body.refused.length) row.dataset.refused = body.refused.map((f) => f.file).join(",");
    followJob(kb, body, bar, label, row);
  };
  xhr.send(form);
}

// Follows a server job (GET /kbs/{kb}/jobs/{id}) until it ends: onTick sees every state read, the
// last one is returned. Uploads, evaluations and tune steps all wait this way.
async function pollJob(kb, job, onTick) {
  for (;;) {
    onTick(job);
    if (job.state === "done" || job.state === "failed") return job;
    await new Promise((r) => setTimeout(r, 300));
    job = await getJSON(`/kbs/${enc(kb)}/jobs/${job.id}`);
  }
}

async function followJob(kb, job, bar, label, row) {
  try { job = await pollJob(kb, job, (j) => showJob(j, bar, label)); } catch (e) { label.textContent = e.message; return; }
  row.classList.add(job.state);
  if (kb === state.kb) await loadKbInfo();
}

// A job's progress: one bar that only moves forward (job.progress), and the current phase with its own
// counts ("Indexing dense 120/2032"); a finished job is at 100%.
function phaseName(phase) {
  return phase.startsWith("build") ? `${t("building")} ${phase.slice(6)}` :
    phase === "ingest" ? t("ingesting") : t("waiting");
}

function showJob(job, bar, label) {
  if (job.state === "done" || job.state === "failed") {
    bar.value = 100;
    const r = job.result || {};
    const parts = [];
    if (r.added && r.added.length) parts.push(`${r.added.length} ${t("added")}`);
    if (r.updated && r.updated.length) parts.push(`${r.updated.length} ${t("updated")}`);
    if (r.unchanged && r.unchanged.length) parts.push(`${r.unchanged.length} ${t("unchanged")}`);
    if (r.rechunked !== undefined) parts.push(`${r.rechunked} ${t("rechunked")}`);
    if (r.built && Object.keys(r.built).length && !parts.length) parts.push(`${t("built")} ${Object.keys(r.built).join(", ")}`);
    const failures = (r.failed || []).map((f) => f.error);
    if (job.error && !failures.length) failures.push(job.error.message);
    const refused = (r.refused || job.refused || []).map((f) => f.error);
    label.textContent = `${job.state === "done" ? t("done") : t("failed")}: ${parts.join(", ")}` +
      (failures.length ? ` — ${failures.join("; ")}` : "") +
      (refused.length ? ` — ${t("refused")}: ${refused.join("; ")}` : "");
    return;
  }
  bar.value = Math.round(100 * (job.progress || 0));
  label.textContent = `${phaseName(job.phase)} ${job.done}/${job.total}`;
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
    onclick: (e) => { e.preventDefault(); openDocument(kb, c.doc_id, c.start, c.end, c.spans); },
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

function sourceList(kb, citations, withQuotes) {
  return citations.map((c) => el("li", {}, citationLink(kb, c), " ", place(c.title, c.heading),
    withQuotes ? el("span", { class: "quote" }, c.quote.length > 300 ? c.quote.slice(0, 300) + "…" : c.quote) : ""));
}

// One finished turn: the answer with [n] links and its sources; when the LLM failed, the operator's
// reason and the retrieved passages themselves.
function renderTurn(msg, text, kb, turn) {
  msg.querySelectorAll(".sources-title, .llm-error, .parts-badge").forEach((n) => n.remove());
  const sources = msg.querySelector(".sources");
  // A fusion whose part is still building (or disabled) answered with the rest: a badge says which.
  if (turn.notes && turn.notes.length && turn.parts_used) {
    text.before(el("div", { class: "parts-badge", title: turn.notes.join("\n") }, t("parts_used", turn.parts_used.join(" + "))));
  }
  if (turn.llm_error) {
    text.before(el("div", { class: "llm-error" }, turn.llm_error));
    text.textContent = t("passages_instead");
  } else {
    renderAnswer(text, turn.answer, turn.citations, kb);
  }
  if (turn.citations.length) {
    sources.before(el("div", { class: "sources-title" }, turn.llm_error ? t("passages") : t("sources"),
      turn.reranker ? el("span", { class: "reranked-inline" }, ` · ${t("reranked_by", turn.reranker)}`) : ""));
    sources.replaceChildren(...sourceList(kb, turn.citations, Boolean(turn.llm_error)));
  }
}

function turnMessages(kb, turn) {
  const text = el("div", { class: "text" });
  const msg = el("div", { class: "msg bot" }, text, el("ol", { class: "sources" }));
  renderTurn(msg, text, kb, turn);
  const out = [el("div", { class: "msg user" }, turn.question)];
  if (turn.query && turn.query !== turn.question) out.push(el("div", { class: "query-note" }, t("searched_for", turn.query)));
  out.push(msg);
  return out;
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
  let streamed = "";
  try {
    // Every question belongs to a conversation, stored by the server: the follow-ups are asked with
    // its history (rewritten to stand alone when an LLM answers), and it survives a reload or restart.
    if (!state.conversation) {
      const c = await (await api(`/kbs/${enc(kb)}/conversations`, { method: "POST", json: {} })).json();
      setConversation(kb, c.id);
    }
    const body = { question, k: Number($("#chat-k").value) || 5, stream: true, conversation: state.conversation };
    if ($("#chat-method").value) body.method = $("#chat-method").value;
    const res = await api(`/kbs/${enc(kb)}/ask`, { method: "POST", json: body });
    for await (const { event: name, data } of readEvents(res)) {
      if (name === "query") {
        msg.before(el("div", { class: "query-note" }, t("searched_for", data.query)));
      } else if (name === "token") {
        streamed += data.text;
        text.textContent = streamed;
      } else if (name === "done") {
        renderTurn(msg, text, kb, data);
        if (data.conversation) await loadConversations();
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
// Conversations: listed per knowledge base; the open one is remembered per KB in localStorage.

function setConversation(kb, id) {
  state.conversation = id;
  if (id) localStorage.setItem(`zhiku.conv.${kb}`, id); else localStorage.removeItem(`zhiku.conv.${kb}`);
}

async function loadConversations() {
  const kb = state.kb;
  const list = await getJSON(`/kbs/${enc(kb)}/conversations`);
  if (kb !== state.kb) return;
  const wanted = state.conversation || localStorage.getItem(`zhiku.conv.${kb}`);
  if (!list.some((c) => c.id === wanted)) setConversation(kb, null);
  else if (wanted !== state.conversation) { setConversation(kb, wanted); await openConversation(wanted); }
  $("#conv-list").replaceChildren(...list.map((c) => el("li", { class: c.id === state.conversation ? "active" : "", "data-id": c.id },
    el("a", { href: "#", title: c.title, onclick: (e) => { e.preventDefault(); openConversation(c.id); } },
      c.title || t("untitled")))));
  const current = list.find((c) => c.id === state.conversation);
  $("#conv-head").hidden = !current;
  if (current) {
    $("#conv-title").textContent = current.title || t("untitled");
    $("#conv-export").href = `/kbs/${enc(kb)}/conversations/${current.id}/export`;
  }
}

async function openConversation(id) {
  const kb = state.kb;
  try {
    const c = await getJSON(`/kbs/${enc(kb)}/conversations/${id}`);
    setConversation(kb, id);
    const empty = $("#chat-empty");
    empty.hidden = c.turns.length > 0;
    $("#chat-log").replaceChildren(empty, ...c.turns.flatMap((turn) => turnMessages(kb, turn)));
    await loadConversations();
  } catch (e) { notify(e.message, "error"); }
}

function clearChat() {
  state.conversation = null;
  const empty = $("#chat-empty");
  empty.hidden = false;
  $("#chat-log").replaceChildren(empty);
}

function newConversation() {
  if (state.kb) setConversation(state.kb, null);
  clearChat();
  if (state.kb) loadConversations().catch((e) => notify(e.message, "error"));
  $("#chat-input").focus();
}

async function renameConversation() {
  if (!state.conversation) return;
  const title = prompt(t("rename_prompt"), $("#conv-title").textContent);
  if (!title || !title.trim()) return;
  try {
    await api(`/kbs/${enc(state.kb)}/conversations/${state.conversation}`, { method: "PATCH", json: { title: title.trim() } });
    await loadConversations();
  } catch (e) { notify(e.message, "error"); }
}

async function deleteConversation() {
  if (!state.conversation || !confirm(t("confirm_delete_conv", $("#conv-title").textContent))) return;
  try {
    await api(`/kbs/${enc(state.kb)}/conversations/${state.conversation}`, { method: "DELETE" });
    newConversation();
  } catch (e) { notify(e.message, "error"); }
}

// ---------------------------------------------------------------------------------------------
// Settings: the KB's generator, default method, chunking; methods and their builds.

async function loadSettings() {
  const kb = state.kb;
  const s = await getJSON(`/kbs/${enc(kb)}/settings`);
  if (kb !== state.kb) return;
  state.settings = s;
  const g = s.settings.generator;
  $("#gen-kind").value = g.kind;
  $("#gen-model").value = g.model || "";
  $("#gen-base-url").value = g.base_url || "";
  $("#gen-key-env").value = g.api_key_env || "";
  $("#gen-key-state").textContent = `${t("key_state")}: ${g.key}`;
  showLlmFields();
  $("#set-default").replaceChildren(el("option", { value: "" }, `${t("automatic")} (${s.default_method})`),
    ...s.methods.map((m) => el("option", { value: m.name }, m.name)));
  $("#set-default").value = s.default_method_setting || "";
  $("#rechunk-note").hidden = !s.chunking_stale;
  $("#rechunk-reason").textContent = s.chunking_stale ? `${t("chunks_stale")}: ${s.chunking_stale}. ` : "";
  $("#chunk-size").value = s.settings.chunking.size;
  $("#chunk-overlap").value = s.settings.chunking.overlap;
  loadRerank(s);
  $("#method-table tbody").replaceChildren(...s.methods.map((m) => el("tr", { "data-method": m.name },
    el("td", {}, m.name), el("td", {}, m.kind),
    el("td", { class: m.built ? (m.fresh ? "ok" : "stale") : "muted" },
      m.built ? (m.fresh ? t("fresh") : t("stale")) : t("not_built")),
    el("td", {}, el("button", { class: "small", onclick: () => buildMethod(m.name, m.built) },
      m.built ? t("rebuild") : t("build"))))));
}

// How a hit's place changed in the rerank stage: moved from the first stage's rank, or beyond the
// depth the reranker judged (its score is then the method's own, on another scale).
function rerankLabel(h) {
  if (h.reranked === false) return `${t("not_reranked")} · `;
  return h.reranked && h.first_rank !== h.rank ? `${t("was_n", h.first_rank)} · ` : "";
}

// The reranker ([rerank]): one form for every kind, fields shown for the chosen one.
const RERANK_LABELS = { none: "rr_none", "cross-encoder": "rr_cross_encoder", remote: "rr_remote", llm: "rr_llm" };

function loadRerank(s) {
  const r = s.rerank;
  $("#rr-kind").replaceChildren(...s.rerank_kinds.map((k) =>
    el("option", { value: k }, RERANK_LABELS[k] ? t(RERANK_LABELS[k]) : k)));
  $("#rr-kind").value = r.kind;
  $("#rr-model-dir").value = r.kind === "cross-encoder" ? r.model : "";
  $("#rr-model").value = r.kind === "remote" ? r.model : "";
  $("#rr-base-url").value = r.base_url || "";
  $("#rr-api").value = r.api || "cohere";
  $("#rr-key-env").value = r.api_key_env || "";
  $("#rr-key-state").textContent = r.api_key_env ? `${t("key_state")}: ${r.key}` : "";
  $("#rr-mode").value = r.mode || "pointwise";
  $("#rr-top-n").value = r.top_n;
  $("#rr-threshold").value = r.threshold ?? "";
  showRerankFields();
}

function showRerankFields() {
  const kind = $("#rr-kind").value;
  document.querySelectorAll("#rerank-form .rr-field").forEach((n) => {
    n.hidden = !n.dataset.kinds.split(" ").includes(kind);
  });
}

async function saveRerank(event) {
  event.preventDefault();
  const kind = $("#rr-kind").value;
  const threshold = $("#rr-threshold").value.trim();
  const rerank = { kind, top_n: Number($("#rr-top-n").value) || null, threshold: threshold === "" ? null : Number(threshold) };
  if (kind === "cross-encoder") rerank.model = $("#rr-model-dir").value.trim();
  if (kind === "remote") Object.assign(rerank, { base_url: $("#rr-base-url").value.trim(), api: $("#rr-api").value,
    model: $("#rr-model").value.trim(), api_key_env: $("#rr-key-env").value.trim() || null });
  if (kind === "llm") rerank.mode = $("#rr-mode").value;
  try {
    const res = await (await api(`/kbs/${enc(state.kb)}/settings`, { method: "PUT", json: { rerank } })).json();
    state.settings = res;
    loadRerank(res);
    notify(t("saved"));
  } catch (e) { notify(e.message, "error"); }
}

function showLlmFields() {
  const llm = $("#gen-kind").value !== "extractive";
  document.querySelectorAll("#gen-form .llm-only").forEach((n) => { n.hidden = !llm; });
}

async function saveSettings(event) {
  event.preventDefault();
  const kind = $("#gen-kind").value;
  const generator = kind === "extractive" ? { kind } : {
    kind, model: $("#gen-model").value.trim(), base_url: $("#gen-base-url").value.trim(),
    api_key_env: $("#gen-key-env").value.trim() || null,
  };
  const body = { generator, default_method: $("#set-default").value,
    chunking: { ...state.settings.settings.chunking, size: Number($("#chunk-size").value),
      overlap: Number($("#chunk-overlap").value) } };
  try {
    await api(`/kbs/${enc(state.kb)}/settings`, { method: "PUT", json: body });
    notify(t("saved"));
    await loadKbInfo();
  } catch (e) { notify(e.message, "error"); }
}

async function rechunkKb() {
  const kb = state.kb;
  const bar = el("progress", { max: "100", value: "0" });
  const label = el("span", { class: "build-label" }, t("waiting"));
  const row = el("div", { class: "build", "data-method": "rechunk" }, el("div", {}, t("rechunk")), bar, label);
  $("#builds").prepend(row);
  try {
    const job = await (await api(`/kbs/${enc(kb)}/rechunk`, { method: "POST" })).json();
    await followJob(kb, job, bar, label, row);
  } catch (e) { row.classList.add("failed"); label.textContent = e.message; }
}

async function buildMethod(name, force = false) {
  const kb = state.kb;
  const bar = el("progress", { max: "100", value: "0" });
  const label = el("span", { class: "build-label" }, t("waiting"));
  const row = el("div", { class: "build", "data-method": name }, el("div", {}, `${t("build")} ${name}`), bar, label);
  $("#builds").prepend(row);
  showTab("settings");
  try {
    const job = await (await api(`/kbs/${enc(kb)}/methods/${enc(name)}/build${force ? "?force=true" : ""}`, { method: "POST" })).json();
    await followJob(kb, job, bar, label, row);
  } catch (e) { row.classList.add("failed"); label.textContent = e.message; }
}

// ---------------------------------------------------------------------------------------------
// Document viewer

// The highlighted passage's text, with the sentences the answer quotes (``spans``: document offsets)
// marked inside it, so the reader sees at once which sentence the answer came from.
function passageWithQuotes(text, start, end, spans) {
  const inside = (spans || []).map(([s, e]) => [Math.max(s, start), Math.min(e, end)])
    .filter(([s, e]) => s < e).sort((a, b) => a[0] - b[0]);
  const nodes = [];
  let at = start;
  for (const [s, e] of inside) {
    if (s < at) continue;  // overlapping spans: the first one is marked
    nodes.push(text.slice(at, s), el("mark", { class: "quoted" }, text.slice(s, e)));
    at = e;
  }
  nodes.push(text.slice(at, end));
  return nodes;
}

async function openDocument(kb, docId, start, end, spans) {
  const query = start !== undefined ? `?highlight=${start}-${end}&chunks=false` : "?chunks=false";
  try {
    const doc = await getJSON(`/kbs/${enc(kb)}/documents/${docId}${query}`);
    viewer.kb = kb;
    viewer.doc = docId;
    showChunks(false);
    $("#viewer-chunks").textContent = `${t("show_chunks")} (${doc.chunk_count ?? ""})`.replace(" ()", "");
    $("#viewer-title").textContent = doc.title;
    $("#viewer-path").textContent = doc.name;
    const box = $("#viewer-text");
    if (doc.highlight) {
      const { start: hs, end: he } = doc.highlight;
      const mark = el("mark", { id: "viewer-mark" }, ...passageWithQuotes(doc.text, hs, he, spans));
      box.replaceChildren(doc.text.slice(0, hs), mark, doc.text.slice(he));
      showViewer();
      (mark.querySelector(".quoted") || mark).scrollIntoView({ block: "center" });
    } else {
      box.replaceChildren(doc.text);
      showViewer();
      box.scrollTop = 0;
    }
    history.replaceState(null, "", `#doc/${enc(kb)}/${docId}` + (start !== undefined ? `/${start}-${end}` : ""));
  } catch (e) { notify(e.message, "error"); }
}

// The viewer shows the document's text, or (toggled) its chunks as indexed: order, heading, offsets.
const viewer = { kb: null, doc: null };

function showChunks(on) {
  $("#viewer-text").hidden = on;
  $("#viewer-chunk-list").hidden = !on;
  $("#viewer-chunks").classList.toggle("active", on);
}

async function toggleChunks() {
  if (!$("#viewer-chunk-list").hidden) { showChunks(false); return; }
  try {
    const doc = await getJSON(`/kbs/${enc(viewer.kb)}/documents/${viewer.doc}?chunks=true`);
    $("#viewer-chunk-list").replaceChildren(...doc.chunks.map((c) => el("li", { "data-ord": c.ord },
      el("span", { class: "chunk-head" }, `${c.heading || doc.title} · ${c.start}–${c.end} · ${c.text.length} ${t("chars")}`),
      c.text)));
    showChunks(true);
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
      list.parentNode.querySelector(".reranked-note")?.remove();
      list.parentNode.querySelector(".parts-badge")?.remove();
      if (res.notes && res.notes.length) list.before(el("p", { class: "parts-badge", title: res.notes.join("\n") }, t("parts_used", (res.parts_used || []).join(" + "))));
      if (res.reranker) list.before(el("p", { class: "reranked-note" }, t("reranked_by", res.reranker)));
      if (!res.hits.length) { list.replaceChildren(el("li", { class: "muted" }, t("no_hits"))); return; }
      list.replaceChildren(...res.hits.map((h) => el("li", { class: "hit", "data-first-rank": h.first_rank },
        el("div", { class: "hit-head" },
          el("a", { href: `#doc/${enc(kb)}/${h.doc_id}/${h.start}-${h.end}`, onclick: (e) => { e.preventDefault(); openDocument(kb, h.doc_id, h.start, h.end); } },
            place(h.title, h.heading, h.location)),
          el("span", { class: "score", title: t("score") + (h.distance !== undefined ? ` (distance ${h.distance.toFixed(4)})` : "") +
            (h.reranked ? ` — ${t("was_rank", h.first_rank)}` : "") },
            rerankLabel(h), h.score.toFixed(4))),
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
    clearChat();
    Object.assign(docView, { offset: 0, q: "" });
    $("#doc-search").value = "";
    localStorage.setItem("zhiku.kb", state.kb);
    await loadKbInfo().catch((err) => notify(err.message, "error"));
  });
  $("#chat-form").addEventListener("submit", ask);
  $("#conv-new").addEventListener("click", newConversation);
  $("#conv-rename").addEventListener("click", renameConversation);
  $("#conv-delete").addEventListener("click", deleteConversation);
  $("#gen-form").addEventListener("submit", saveSettings);
  $("#rerank-form").addEventListener("submit", saveRerank);
  $("#rr-kind").addEventListener("change", showRerankFields);
  $("#gen-kind").addEventListener("change", showLlmFields);
  $("#rechunk").addEventListener("click", rechunkKb);
  $("#chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("#chat-form").requestSubmit(); }
  });
  $("#create-form").addEventListener("submit", createKb);
  $("#delete-kb").addEventListener("click", deleteKb);
  $("#lab-form").addEventListener("submit", compare);
  $("#viewer-close").addEventListener("click", closeViewer);
  $("#viewer-chunks").addEventListener("click", toggleChunks);
  let searchTimer = null;
  $("#doc-search").addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      docView.q = e.target.value.trim();
      docView.offset = 0;
      loadDocuments().catch((err) => notify(err.message, "error"));
    }, 250);
  });
  $("#doc-prev").addEventListener("click", () => { docView.offset = Math.max(0, docView.offset - DOC_PAGE); loadDocuments(); });
  $("#doc-next").addEventListener("click", () => { docView.offset += DOC_PAGE; loadDocuments(); });
  $("#doc-delete-matching").addEventListener("click", deleteMatching);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("#viewer").hidden) closeViewer(); });
  setupDropzone();
  loadFormats().catch(() => {});
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
