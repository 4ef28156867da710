// zhiku web page: every string of the interface, in English and Chinese (data, kept together).
// app.js picks the language from the browser unless the user toggles it.
"use strict";

const I18N = {
  en: {
    tab_chat: "Chat", tab_manage: "Manage", tab_lab: "Retrieval lab", knowledge_base: "Knowledge base",
    api_key: "API key", chat_empty: "Ask a question about the documents in this knowledge base. Answers cite " +
      "their sources as [1], [2]… — click one to read the passage.",
    chat_placeholder: "Ask a question…", method: "Method", send: "Send", default_method: "default",
    create_kb: "Create a knowledge base", name: "Name", language: "Language", lang_auto: "detect",
    lang_mixed: "mixed", advanced: "Advanced settings (JSON, as in zhiku.toml)", create: "Create",
    upload: "Add documents", drop_here: "Drop files here, or click to choose them", types: "txt, md, html, pdf, docx",
    documents: "Documents", doc_name: "Name", doc_title: "Title", doc_format: "Format", doc_chunks: "Chunks",
    doc_chars: "Characters", no_docs: "No documents yet.", delete_kb: "Delete this knowledge base",
    lab_placeholder: "One query, every method…", compare: "Compare", sources: "Sources", delete: "Delete",
    no_kb: "No knowledge base yet: create one under Manage.", uploading: "Uploading", waiting: "Waiting",
    ingesting: "Reading files", building: "Indexing", done: "Done", failed: "Failed",
    added: "added", updated: "updated", unchanged: "unchanged", no_hits: "No hits.", thinking: "Searching…",
    confirm_delete_doc: "Delete “{0}” from the knowledge base?", confirm_delete_kb: "Delete the knowledge base “{0}” and all its documents?",
    created: "Created knowledge base “{0}”.", deleted: "Deleted “{0}”.", key_prompt: "API key of this server (empty to forget it):",
    summary: "{0} documents, {1} chunks", not_built: "not built", score: "score", bad_settings: "The settings are not valid JSON.",
    need_key: "This server needs an API key: click “API key” at the top.",
  },
  zh: {
    tab_chat: "问答", tab_manage: "管理", tab_lab: "检索实验室", knowledge_base: "知识库",
    api_key: "API 密钥", chat_empty: "就这个知识库里的文档提问。答案用 [1]、[2]… 标注出处，点击即可查看原文段落。",
    chat_placeholder: "输入问题…", method: "检索方法", send: "发送", default_method: "默认",
    create_kb: "新建知识库", name: "名称", language: "语言", lang_auto: "自动识别", lang_mixed: "中英混合",
    advanced: "高级设置（JSON，与 zhiku.toml 相同）", create: "创建",
    upload: "添加文档", drop_here: "把文件拖到这里，或点击选择文件", types: "txt、md、html、pdf、docx",
    documents: "文档", doc_name: "文件名", doc_title: "标题", doc_format: "格式", doc_chunks: "分块",
    doc_chars: "字数", no_docs: "还没有文档。", delete_kb: "删除这个知识库",
    lab_placeholder: "输入一个查询，对比各种检索方法…", compare: "对比", sources: "来源", delete: "删除",
    no_kb: "还没有知识库：请在“管理”中新建。", uploading: "上传中", waiting: "排队中",
    ingesting: "读取文件", building: "建索引", done: "完成", failed: "失败",
    added: "新增", updated: "更新", unchanged: "未变", no_hits: "没有结果。", thinking: "检索中…",
    confirm_delete_doc: "从知识库删除“{0}”？", confirm_delete_kb: "删除知识库“{0}”及其全部文档？",
    created: "已创建知识库“{0}”。", deleted: "已删除“{0}”。", key_prompt: "本服务器的 API 密钥（留空则清除）：",
    summary: "{0} 篇文档，{1} 个分块", not_built: "未建索引", score: "得分", bad_settings: "设置不是有效的 JSON。",
    need_key: "此服务器需要 API 密钥：请点击页面顶部的“API 密钥”。",
  },
};
