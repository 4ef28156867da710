// zhiku web page, Tune panel: questions from the corpus, a query adapter, the default chosen by evidence.
// Each step is a server job (POST /kbs/{kb}/tune/{step}); the panel follows its phases and shows the
// before/after table the job returns. Uses app.js's helpers (api, getJSON, el, t, enc, notify, state).
"use strict";

Object.assign(I18N.en, {
  tab_tune: "Tune", tune_questions: "1. Questions from the corpus",
  tune_questions_hint: "Offline pseudo-questions (a sentence of a passage, its key terms, article titles), " +
    "split by document into train and validation.",
  tune_sample: "Chunks used (empty: all)", tune_generate: "Generate questions",
  tune_adapter: "2. Query adapter",
  tune_adapter_hint: "Trained on the train questions over a vector method; it becomes the default only if it " +
    "beats the current default on validation by more than noise.",
  tune_base: "Base method", tune_kind: "Adapter", tune_epochs: "Epochs (at most)", tune_train: "Train adapter",
  tune_route: "3. Default by evidence",
  tune_route_hint: "Every built method, hybrid weightings and a query router, scored on the validation questions.",
  tune_choose: "Choose the default", tune_jobs: "Runs", tune_before_after: "Before / after, on validation",
  tune_no_questions: "No questions yet: generate them first.", tune_have_questions: "{0} train and {1} validation questions.",
  tune_no_bases: "no vector method", tune_route_none: "Default: {0} (not chosen by evidence yet).",
  tune_route_state: "Default: {0}. Last choice: {1} — {2}", tune_unbuilt: "not built",
  tune_step_questions: "Questions", tune_step_adapter: "Adapter on {0}", tune_step_route: "Default by evidence",
  tune_phase_generate: "Generating", tune_phase_filter: "Filtering", tune_phase_train: "Training",
  tune_phase_validate: "Validating", tune_phase_search: "Searching", tune_phase_fuse: "Fusing",
  tune_kept: "{0} questions kept (train {1}, validation {2})", tune_made_default: "Default is now {0}",
  tune_kept_default: "Default stays {0}", tune_report: "Report", tune_chart: "Chart", tune_results: "results.json",
  tune_col_method: "Method",
});
Object.assign(I18N.zh, {
  tab_tune: "调优", tune_questions: "1. 从语料生成问题",
  tune_questions_hint: "离线伪问题（段落中的一句、关键词、条文标题），按文档划分为训练集和验证集。",
  tune_sample: "使用的片段数（空：全部）", tune_generate: "生成问题",
  tune_adapter: "2. 查询适配器",
  tune_adapter_hint: "在向量方法上用训练问题训练；只有在验证集上显著优于当前默认方法时才设为默认。",
  tune_base: "基础方法", tune_kind: "适配器", tune_epochs: "最多轮数", tune_train: "训练适配器",
  tune_route: "3. 按证据选择默认方法",
  tune_route_hint: "每个已建索引的方法、混合权重和查询路由，在验证问题上评分。",
  tune_choose: "选择默认方法", tune_jobs: "运行记录", tune_before_after: "调优前后（验证集）",
  tune_no_questions: "还没有问题：请先生成。", tune_have_questions: "训练问题 {0} 个，验证问题 {1} 个。",
  tune_no_bases: "没有向量方法", tune_route_none: "默认方法：{0}（尚未按证据选择）。",
  tune_route_state: "默认方法：{0}。上次选择：{1} — {2}", tune_unbuilt: "未建索引",
  tune_step_questions: "生成问题", tune_step_adapter: "{0} 的适配器", tune_step_route: "按证据选择默认方法",
  tune_phase_generate: "生成中", tune_phase_filter: "过滤中", tune_phase_train: "训练中",
  tune_phase_validate: "验证中", tune_phase_search: "检索中", tune_phase_fuse: "融合中",
  tune_kept: "保留 {0} 个问题（训练 {1}，验证 {2}）", tune_made_default: "默认方法现为 {0}",
  tune_kept_default: "默认方法仍为 {0}", tune_report: "报告", tune_chart: "图表", tune_results: "results.json",
  tune_col_method: "方法",
});

const TUNE_METRICS = ["hit@1", "hit@5", "mrr@10", "ndcg@10", "recall@10"];
const tune = { running: false };

async function loadTune() {
  const kb = state.kb;
  if (!kb) return;
  const s = await getJSON(`/kbs/${enc(kb)}/tune`);
  if (kb !== state.kb) return;
  $("#tune-question-state").textContent = s.questions ?
    t("tune_have_questions", s.questions.train, s.questions.validation) : t("tune_no_questions");
  const bases = s.bases.map((b) => el("option", { value: b.name }, b.built ? b.name : `${b.name} (${t("tune_unbuilt")})`));
  $("#tune-base").replaceChildren(...(bases.length ? bases : [el("option", { value: "" }, t("tune_no_bases"))]));
  $("#tune-route-state").textContent = s.route ?
    t("tune_route_state", s.default_method, s.route.chosen, s.route.why) : t("tune_route_none", s.default_method);
  setTuneButtons(s);
}

function setTuneButtons(s) {
  const ready = !tune.running && s && s.questions;
  $("#tune-questions-run").disabled = tune.running;
  $("#tune-adapter-run").disabled = !ready || !s.bases.length;
  $("#tune-route-run").disabled = !ready;
}

// "tune validate dense" → "Validating dense"; "tune filter (bm25)" → "Filtering (bm25)".
function tunePhase(phase) {
  const name = phase.startsWith("tune ") ? phase.slice(5) : phase;
  const [first, ...rest] = name.split(" ");
  const key = `tune_phase_${first}`;
  const text = t(key);
  if (text !== key) return [text, ...rest].join(" ");
  return name === "queued" || name === "waiting" ? t("waiting") : name;
}

async function runTune(step, body, title) {
  const kb = state.kb;
  const bar = el("progress", { max: "100", value: "0" });
  const label = el("span", { class: "build-label" }, t("waiting"));
  const row = el("div", { class: "build", "data-step": step }, el("div", {}, title), bar, label);
  $("#tune-jobs").prepend(row);
  tune.running = true;
  setTuneButtons(null);
  try {
    const started = await (await api(`/kbs/${enc(kb)}/tune/${step}`, { method: "POST", json: body })).json();
    const job = await pollJob(kb, started, (j) => {
      bar.value = Math.round(100 * (j.progress || 0));
      label.textContent = `${tunePhase(j.phase)} ${j.total ? `${j.done}/${j.total}` : ""}`;
    });
    row.classList.add(job.state);
    if (job.state === "failed") {
      label.textContent = `${t("failed")}: ${job.error ? job.error.message : ""}`;
    } else {
      bar.value = 100;
      label.textContent = `${t("done")}: ${tuneSummary(job.result)}`;
      if (job.result.table) showTuneResult(kb, job.result, title);
    }
  } catch (e) {
    row.classList.add("failed");
    label.textContent = e.message;
  } finally {
    tune.running = false;
    if (kb === state.kb) {
      await loadTune().catch((e) => notify(e.message, "error"));
      if (typeof loadKbInfo === "function") loadKbInfo().catch(() => {});
    }
  }
}

function tuneSummary(r) {
  if (r.step === "questions") return t("tune_kept", r.kept, r.train, r.validation);
  const now = r.default_method;
  const previous = r.step === "route" ? r.previous : r.decision.incumbent;
  return now !== previous ? t("tune_made_default", now) : t("tune_kept_default", now);
}

function fmt(v) { return v === undefined ? "–" : v.toFixed(3); }

function showTuneResult(kb, r, title) {
  const rows = r.table;
  // The row to look at: the tuned method, or the route's best candidate (a fusion is recorded under
  // another name, "tuned-hybrid", than its row's label).
  const tuned = r.step === "adapter" ? r.method : r["best candidate"];
  const best = {};
  for (const key of TUNE_METRICS) best[key] = Math.max(...rows.map((m) => m.metrics[key] ?? -1));
  $("#tune-table thead").replaceChildren(el("tr", {}, el("th", {}, t("tune_col_method")),
    ...TUNE_METRICS.map((key) => el("th", { class: "num" }, key.replace("mrr", "MRR").replace("ndcg", "nDCG")))));
  $("#tune-table tbody").replaceChildren(...rows.map((m) => el("tr", { class: m.method === tuned ? "tuned" : "", "data-method": m.method },
    el("td", {}, m.method),
    ...TUNE_METRICS.map((key) => el("td", { class: `num${m.metrics[key] === best[key] ? " best" : ""}` }, fmt(m.metrics[key]))))));
  const why = r.step === "adapter" ? r.decision.why : r.why;
  const decision = $("#tune-decision");
  decision.textContent = `${tuneSummary(r)}: ${why}`;
  decision.classList.toggle("won", r.step === "adapter" ? r.default_method === tuned : r.chosen !== r.previous);
  $("#tune-result-title").textContent = title;
  const links = [el("a", { href: r.links.report, target: "_blank" }, t("tune_report")),
    el("a", { href: r.links.results, target: "_blank" }, t("tune_results"))];
  if (r.links.chart) links.push(el("a", { href: r.links.chart, target: "_blank" }, t("tune_chart")));
  $("#tune-links").replaceChildren(...links);
  $("#tune-result").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  const show = () => { if ($("#panel-tune").classList.contains("active")) loadTune().catch((e) => notify(e.message, "error")); };
  $("#tab-tune").addEventListener("click", show);
  $("#kb-select").addEventListener("change", () => { $("#tune-result").hidden = true; show(); });
  $("#tune-questions-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const sample = Number($("#tune-sample").value);
    runTune("questions", sample ? { sample } : {}, t("tune_step_questions"));
  });
  $("#tune-adapter-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const base = $("#tune-base").value;
    runTune("adapter", { base, kind: $("#tune-kind").value, epochs: Number($("#tune-epochs").value) || 30 },
      t("tune_step_adapter", base));
  });
  $("#tune-route-run").addEventListener("click", () => runTune("route", {}, t("tune_step_route")));
  // The page opens on the last tab used: once app.js has loaded the knowledge bases, fill this one.
  const ready = new MutationObserver(() => { if (document.body.dataset.ready) { ready.disconnect(); show(); } });
  ready.observe(document.body, { attributes: true, attributeFilter: ["data-ready"] });
});
