// zhiku web page, Evaluate panel (issue 29): run `zhiku eval` on the knowledge base with a QA file
// (POST /kbs/{kb}/eval, a server job followed at /kbs/{kb}/jobs/{id}), see its table and chart, and
// compare past runs side by side (GET /kbs/{kb}/evals). Uses app.js's helpers (api, getJSON, el, t, …).
"use strict";

Object.assign(I18N.en, {
  tab_eval: "Evaluate", eval_run: "Run an evaluation",
  eval_hint: "A QA file (JSON Lines, one {\"question\", \"evidence\"} a line, or SQuAD JSON): every method is " +
    "scored on the same questions. `zhiku tune questions` writes one from the corpus (tune/questions.validation.jsonl).",
  eval_file: "Questions file", eval_methods: "Methods (empty: every built method)", eval_start: "Evaluate",
  eval_runs: "Runs", eval_compare: "Compare the checked runs", eval_none: "No evaluation yet.",
  eval_result: "Result", eval_col_run: "Run", eval_col_method: "Method", eval_phase: "Evaluating",
  eval_need_file: "Choose a questions file first.", eval_chart: "Chart", eval_report: "Report",
});
Object.assign(I18N.zh, {
  tab_eval: "评测", eval_run: "运行评测",
  eval_hint: "问答文件（JSON Lines，每行一个 {\"question\", \"evidence\"}，或 SQuAD JSON）：每个方法在同一批问题上评分。" +
    "`zhiku tune questions` 可从语料生成一个（tune/questions.validation.jsonl）。",
  eval_file: "问题文件", eval_methods: "方法（空：所有已建索引的方法）", eval_start: "评测",
  eval_runs: "运行记录", eval_compare: "对比勾选的运行", eval_none: "还没有评测。",
  eval_result: "结果", eval_col_run: "运行", eval_col_method: "方法", eval_phase: "评测中",
  eval_need_file: "请先选择问题文件。", eval_chart: "图表", eval_report: "报告",
});

const EVAL_METRICS = ["hit@1", "hit@5", "mrr@10", "ndcg@10", "recall@10"];

function evalTable(rows) {
  // rows: [{run, method, metrics}] — the best value of each column marked
  const best = {};
  for (const key of EVAL_METRICS) best[key] = Math.max(...rows.map((r) => r.metrics[key] ?? -1));
  const head = el("tr", {}, el("th", {}, t("eval_col_run")), el("th", {}, t("eval_col_method")),
    ...EVAL_METRICS.map((key) => el("th", { class: "num" }, key.replace("mrr", "MRR").replace("ndcg", "nDCG"))));
  const body = rows.map((r) => el("tr", { "data-method": r.method },
    el("td", {}, r.run), el("td", {}, r.method),
    ...EVAL_METRICS.map((key) => el("td", { class: `num${r.metrics[key] === best[key] ? " best" : ""}` },
      r.metrics[key] === undefined ? "–" : r.metrics[key].toFixed(3)))));
  $("#eval-table thead").replaceChildren(head);
  $("#eval-table tbody").replaceChildren(...body);
  $("#eval-result").hidden = false;
}

async function loadEvals() {
  const kb = state.kb;
  if (!kb) return;
  const runs = await getJSON(`/kbs/${enc(kb)}/evals`);
  if (kb !== state.kb) return;
  $("#eval-runs").replaceChildren(...(runs.length ? runs.map((r) => el("li", {},
    el("label", {}, el("input", { type: "checkbox", value: r.id }), ` ${r.dataset} · ${r.methods.join(", ")} `),
    el("a", { href: r.report, target: "_blank" }, t("eval_report")))) : [el("li", { class: "muted" }, t("eval_none"))]));
}

async function compareEvals() {
  const kb = state.kb;
  const ids = [...$("#eval-runs").querySelectorAll("input:checked")].map((i) => i.value);
  const rows = [];
  for (const id of ids) {
    const r = await getJSON(`/kbs/${enc(kb)}/evals/${enc(id)}`);
    for (const m of r.methods || []) rows.push({ run: `${r.dataset} (${id})`, method: m.method, metrics: m.metrics || {} });
  }
  if (rows.length) { $("#eval-chart").hidden = true; evalTable(rows); }
}

async function runEval(event) {
  event.preventDefault();
  const kb = state.kb;
  const file = $("#eval-file").files[0];
  if (!kb) return;
  if (!file) { notify(t("eval_need_file"), "error"); return; }
  const form = new FormData();
  form.append("file", file, file.name);
  const methods = $("#eval-methods").value.trim();
  if (methods) form.append("methods", methods);
  const bar = el("progress", { max: "100", value: "0" });
  const label = el("span", { class: "build-label" }, t("waiting"));
  const row = el("div", { class: "build" }, el("div", {}, file.name), bar, label);
  $("#eval-jobs").prepend(row);
  $("#eval-start").disabled = true;
  try {
    const started = await (await api(`/kbs/${enc(kb)}/eval`, { method: "POST", body: form })).json();
    const job = await pollJob(kb, started, (j) => {
      bar.value = Math.round(100 * (j.progress || 0));
      label.textContent = `${t("eval_phase")} ${j.total ? `${j.done}/${j.total}` : ""}`;
    });
    row.classList.add(job.state);
    if (job.state === "failed") {
      label.textContent = `${t("failed")}: ${job.error ? job.error.message : ""}`;
      return;
    }
    bar.value = 100;
    label.textContent = t("done");
    const r = job.result;
    evalTable(r.methods.map((m) => ({ run: r.dataset, method: m.method, metrics: m.metrics })));
    const chart = $("#eval-chart");
    chart.hidden = !r.chart;
    if (r.chart) {
      // the chart is behind the API key like every KB route: fetched, then shown from memory
      const blob = await (await api(r.chart)).blob();
      chart.src = URL.createObjectURL(blob);
    }
    await loadEvals();
  } catch (e) {
    row.classList.add("failed");
    label.textContent = e.message;
  } finally {
    $("#eval-start").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const show = () => { if ($("#panel-eval").classList.contains("active")) loadEvals().catch((e) => notify(e.message, "error")); };
  $("#tab-eval").addEventListener("click", show);
  $("#kb-select").addEventListener("change", () => { $("#eval-result").hidden = true; show(); });
  $("#eval-form").addEventListener("submit", runEval);
  $("#eval-compare").addEventListener("click", () => compareEvals().catch((e) => notify(e.message, "error")));
  const ready = new MutationObserver(() => { if (document.body.dataset.ready) { ready.disconnect(); show(); } });
  ready.observe(document.body, { attributes: true, attributeFilter: ["data-ready"] });
});
