/* ragline web page: API key, upload with job progress, streamed answers with citations,
 * the documents list. Plain JS, no dependencies. Every piece of data goes into the page
 * through textContent or attributes, never innerHTML. */
"use strict";

(function () {
  const KEY_STORAGE = "ragline.apiKey";
  const JOB_POLL_MS = 500;

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("data-") || name.startsWith("aria-") || name === "role"
               || name === "href" || name === "type" || name === "title")
        node.setAttribute(name, value === true ? "" : String(value));
      else node[name] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };

  /* ---------- API key and HTTP ---------- */

  let apiKey = "";
  try { apiKey = sessionStorage.getItem(KEY_STORAGE) || ""; } catch (_) { apiKey = ""; }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function authMessage(status) {
    if (status === 401) {
      return apiKey
        ? "The API key was not accepted (401 Unauthorized). Enter a valid key at the top "
          + "of the page and press Save."
        : "This server needs an API key (401 Unauthorized). Enter it at the top of the page "
          + "and press Save.";
    }
    if (status === 403) {
      return "This key may read but not change the index (403 Forbidden). Use a key with "
        + "write access to upload or delete documents.";
    }
    return "";
  }

  function showAuth(status) {
    const box = $("auth-message");
    const text = authMessage(status);
    box.textContent = text;
    box.hidden = !text;
    box.dataset.status = text ? String(status) : "";
  }

  function clearAuth() {
    showAuth(0);
  }

  async function errorText(resp) {
    let text = "";
    try {
      const body = await resp.clone().json();
      if (body && typeof body.error === "string") text = body.error;
      else if (body && typeof body.detail === "string") text = body.detail;
    } catch (_) {
      try { text = (await resp.text()).slice(0, 300); } catch (__) { text = ""; }
    }
    return text || `${resp.status} ${resp.statusText || "error"}`;
  }

  /* fetch with the key; throws ApiError on a non-2xx answer (after showing 401/403). */
  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    if (apiKey) headers.set("Authorization", `Bearer ${apiKey}`);
    let resp;
    try {
      resp = await fetch(path, { ...options, headers });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError(0, "The server could not be reached.");
    }
    if (resp.status === 401 || resp.status === 403) {
      showAuth(resp.status);
      throw new ApiError(resp.status, authMessage(resp.status));
    }
    if (!resp.ok) throw new ApiError(resp.status, await errorText(resp));
    // the key works: a 401 banner is stale (a 403 one stays: a read says nothing of writes)
    if ($("auth-message").dataset.status === "401") clearAuth();
    return resp;
  }

  async function apiJson(path, options) {
    const resp = await api(path, options);
    return resp.status === 204 ? null : resp.json();
  }

  function setStatus(id, text, kind) {
    const node = $(id);
    node.textContent = text || "";
    node.dataset.kind = kind || "";
  }

  function initKey() {
    const input = $("api-key");
    input.value = apiKey;
    setStatus("key-status", apiKey ? "Key saved for this browser tab." : "No key saved yet.",
      apiKey ? "ok" : "");
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      apiKey = input.value.trim();
      try {
        if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
        else sessionStorage.removeItem(KEY_STORAGE);
      } catch (_) { /* storage blocked: the key lives in memory only */ }
      clearAuth();
      setStatus("key-status", apiKey ? "Key saved for this browser tab." : "Key cleared.",
        apiKey ? "ok" : "");
      loadDocuments();
    });
  }

  /* ---------- health ---------- */

  async function loadHealth() {
    try {
      const resp = await fetch("healthz");
      if (!resp.ok) throw new Error(String(resp.status));
      const h = await resp.json();
      const docs = Number(h.documents) || 0;
      const chunks = Number(h.chunks) || 0;
      $("health").textContent = `${docs} document${docs === 1 ? "" : "s"} · `
        + `${chunks} chunk${chunks === 1 ? "" : "s"}`;
      $("health").dataset.kind = "ok";
    } catch (_) {
      $("health").textContent = "Server not reachable";
      $("health").dataset.kind = "error";
    }
  }

  /* ---------- passages (citation dialog) ---------- */

  let dialogOpener = null;

  function fillPassage(p) {
    $("passage-source").textContent = p.source || "—";
    $("passage-page").textContent = p.page === null || p.page === undefined || p.page === ""
      ? "—" : String(p.page);
    $("passage-heading").textContent = p.heading || "—";
    $("passage-text").textContent = reflow(p.text);
  }

  async function openPassage(chunkId, label, fallback) {
    const dialog = $("passage-dialog");
    dialogOpener = document.activeElement;
    $("passage-n").textContent = label || "";
    fillPassage(fallback || {});
    dialog.dataset.chunkId = chunkId || "";
    dialog.dataset.state = "loading";
    setStatus("passage-status", "Loading the passage…", "");
    if (!dialog.open) dialog.showModal();
    $("passage-close").focus();
    try {
      const p = await apiJson(`v1/chunks/${encodeURIComponent(chunkId)}`);
      if (dialog.dataset.chunkId !== (chunkId || "")) return; // another one was opened
      fillPassage(p);
      setStatus("passage-status", "", "");
      dialog.dataset.state = "loaded";
    } catch (err) {
      if (dialog.dataset.chunkId !== (chunkId || "")) return;
      setStatus("passage-status", `Could not load the full passage: ${err.message}`, "error");
      dialog.dataset.state = "error";
    }
  }

  function initDialogs() {
    const dialog = $("passage-dialog");
    $("passage-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close(); // a click on the backdrop
    });
    dialog.addEventListener("close", () => {
      dialog.dataset.state = "closed";
      if (dialogOpener && document.contains(dialogOpener)) dialogOpener.focus();
      dialogOpener = null;
    });
  }

  /* ---------- asking, with the answer streamed ---------- */

  let askController = null;
  let citationsByN = new Map();

  /* Server-sent events from a fetch() body: yields {event, data} per message. */
  async function* readSse(resp) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const parse = (block) => {
      let event = "message";
      const data = [];
      for (const raw of block.split("\n")) {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      return data.length ? { event, data: data.join("\n") } : null;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const msg = parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (msg) yield msg;
      }
    }
    buffer += decoder.decode();
    const last = parse(buffer.replace(/\r\n/g, "\n"));
    if (last) yield last;
  }

  // "/srv/index/uploads/ab12/notes.md" -> "notes.md" (the full source is in the dialog)
  function shortSource(source) {
    const text = String(source || "");
    const cut = Math.max(text.lastIndexOf("/"), text.lastIndexOf("\\"));
    return cut >= 0 && cut < text.length - 1 ? text.slice(cut + 1) : text;
  }

  /* Passages keep their source's hard line breaks; join the lines of a paragraph for
   * reading, but keep blank lines and lines that start a list item, heading, quote or table. */
  function reflow(text) {
    return String(text || "").replace(/([^\n])\n(?![\n\s\-*+#>|]|\d+[.)]\s)/g, "$1 ");
  }

  function citationLabel(c) {
    const parts = [shortSource(c.source) || c.chunk_id || "passage"];
    if (c.page !== null && c.page !== undefined && c.page !== "") parts.push(`p. ${c.page}`);
    return parts.join(", ");
  }

  /* The final answer, with [n] markers as links that open citation n. */
  function renderAnswer(text) {
    const box = $("answer");
    box.textContent = "";
    const pattern = /\[(\d+)\]/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      const n = Number(match[1]);
      const c = citationsByN.get(n);
      if (!c) continue;
      if (match.index > last) box.append(text.slice(last, match.index));
      const link = el("a", {
        href: `#citation-${n}`, class: "cite-ref", "data-testid": `answer-cite-${n}`,
        "data-n": n, title: citationLabel(c), "aria-label": `Source ${n}: ${citationLabel(c)}`,
        text: `[${n}]`,
      });
      link.addEventListener("click", (event) => {
        event.preventDefault();
        openPassage(c.chunk_id, `[${n}]`, c);
      });
      box.append(link);
      last = match.index + match[0].length;
    }
    if (last < text.length) box.append(text.slice(last));
  }

  function renderCitations(citations) {
    const list = $("citations");
    list.textContent = "";
    for (const c of citations) {
      const n = Number(c.n);
      const button = el("button", {
        type: "button", class: "cite-button", id: `citation-${n}`,
        "data-testid": `citation-${n}`, "data-n": n, "data-chunk-id": c.chunk_id,
      }, el("span", { class: "cite-n", text: `[${n}]` }), " ",
      el("span", { class: "cite-source", text: citationLabel(c) }));
      button.addEventListener("click", () => openPassage(c.chunk_id, `[${n}]`, c));
      const item = el("li", { class: "citation", "data-n": n }, button);
      if (c.supported === false) {
        item.append(el("span", {
          class: "badge badge-warn", text: "not confirmed by the passage",
          title: "The cited passage does not clearly support this statement",
        }));
      }
      if (c.text) {
        const snippet = c.text.length > 220 ? `${c.text.slice(0, 220).trimEnd()}…` : c.text;
        item.append(el("p", { class: "cite-snippet", text: snippet }));
      }
      list.append(item);
    }
    $("citations-block").hidden = citations.length === 0;
  }

  function renderRetrieved(hits) {
    const list = $("retrieved");
    list.textContent = "";
    for (const h of hits) {
      const label = citationLabel(h);
      const button = el("button", {
        type: "button", class: "link-button", "data-chunk-id": h.chunk_id, text: label,
      });
      button.addEventListener("click", () => openPassage(h.chunk_id, `#${h.rank}`, h));
      const score = typeof h.score === "number" ? ` · score ${h.score.toFixed(3)}` : "";
      list.append(el("li", {}, button, el("span", { class: "meta", text: score })));
    }
    $("retrieved-count").textContent = String(hits.length);
    $("retrieved-block").hidden = hits.length === 0;
  }

  function resetAnswer() {
    citationsByN = new Map();
    $("answer").textContent = "";
    $("answer").dataset.state = "streaming";
    $("answer").setAttribute("aria-busy", "true");
    $("abstained").hidden = true;
    $("abstained").textContent = "";
    $("citations").textContent = "";
    $("citations-block").hidden = true;
    $("retrieved").textContent = "";
    $("retrieved-block").hidden = true;
    $("answer-meta").textContent = "";
    $("answer-block").hidden = false;
  }

  function finishAnswer(state) {
    $("answer").dataset.state = state;
    $("answer").setAttribute("aria-busy", "false");
    $("ask-button").disabled = false;
    $("stop-button").hidden = true;
    askController = null;
  }

  function showDone(result) {
    const citations = Array.isArray(result.citations) ? result.citations : [];
    citationsByN = new Map(citations.map((c) => [Number(c.n), c]));
    renderAnswer(typeof result.answer === "string" ? result.answer : $("answer").textContent);
    renderCitations(citations);
    renderRetrieved(Array.isArray(result.retrieved) ? result.retrieved : []);
    if (result.abstained) {
      const reasons = {
        retrieval: "no passage in the index was close enough to the question.",
        model: "the model found no answer in the passages it was given.",
      };
      $("abstained").textContent = `Not answered: ${reasons[result.abstain_reason]
        || "the documents do not seem to cover this."}`;
      $("abstained").hidden = false;
    }
    const meta = [];
    if (result.model) meta.push(`model ${result.model}`);
    const total = result.timings && (result.timings.total_ms ?? result.timings.total);
    if (typeof total === "number") {
      meta.push(total >= 1000 ? `${(total / 1000).toFixed(1)} s` : `${Math.round(total)} ms`);
    }
    $("answer-meta").textContent = meta.join(" · ");
    setStatus("ask-status", "", "");
    finishAnswer("done");
  }

  async function ask(question) {
    if (askController) askController.abort();
    const controller = new AbortController();
    askController = controller;
    resetAnswer();
    $("ask-button").disabled = true;
    $("stop-button").hidden = false;
    setStatus("ask-status", "Searching and writing…", "");
    const answerBox = $("answer");
    let gotDone = false;
    try {
      const resp = await api("v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ question }),
        signal: controller.signal,
      });
      for await (const msg of readSse(resp)) {
        let data;
        try { data = JSON.parse(msg.data); } catch (_) { data = { text: msg.data }; }
        if (msg.event === "token") {
          answerBox.append(document.createTextNode(data.text || ""));
          setStatus("ask-status", "Writing…", "");
        } else if (msg.event === "done") {
          gotDone = true;
          showDone(data);
        } else if (msg.event === "error") {
          throw new ApiError(500, data.error || "The answer failed.");
        }
      }
      if (!gotDone) throw new ApiError(0, "The answer stream ended early.");
    } catch (err) {
      if (err && err.name === "AbortError") {
        setStatus("ask-status", "Stopped.", "");
        if (askController === controller) finishAnswer("stopped");
        return;
      }
      setStatus("ask-status", err.message || String(err), "error");
      if (askController === controller || askController === null) finishAnswer("error");
    }
  }

  function initAsk() {
    const form = $("ask-form");
    const input = $("question");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const q = input.value.trim();
      if (!q) {
        setStatus("ask-status", "Type a question first.", "error");
        input.focus();
        return;
      }
      ask(q);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    $("stop-button").addEventListener("click", () => {
      if (askController) askController.abort();
    });
  }

  /* ---------- uploads and jobs ---------- */

  let pendingFiles = [];

  function showSelected() {
    const list = $("selected-files");
    list.textContent = "";
    for (const f of pendingFiles) {
      list.append(el("li", { text: `${f.name} (${formatBytes(f.size)})` }));
    }
    $("upload-button").disabled = pendingFiles.length === 0;
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function parseMeta(text) {
    const fields = [];
    for (const raw of text.split(/\n/)) {
      const line = raw.trim();
      if (!line) continue;
      if (!/^[^=\s][^=]*=/.test(line)) {
        throw new Error(`Metadata lines look like key=value: "${line}"`);
      }
      fields.push(line);
    }
    return fields;
  }

  function renderJob(job) {
    const box = $("job");
    box.hidden = false;
    // the upload answers the file names, the job their count
    const total = Array.isArray(job.files) ? job.files.length : Number(job.files) || 0;
    const done = Math.min(Number(job.done) || 0, total || Infinity);
    box.dataset.status = job.status || "";
    const labels = {
      queued: "Waiting to start…", running: "Adding documents…",
      done: "Upload finished", failed: "Upload failed",
    };
    $("job-label").textContent = labels[job.status] || String(job.status || "");
    $("job-count").textContent = `${done} / ${total} file${total === 1 ? "" : "s"}`;
    const bar = $("job-progress");
    bar.max = Math.max(total, 1);
    bar.value = job.status === "done" ? bar.max : done;
    const failed = Array.isArray(job.failed) ? job.failed : [];
    if (job.status === "done" || job.status === "failed") {
      const parts = [
        `${job.added || 0} added`, `${job.updated || 0} updated`,
        `${job.unchanged || 0} unchanged`, `${failed.length} failed`,
      ];
      const embedded = Number(job.chunks_embedded);
      if (Number.isFinite(embedded)) {
        parts.push(`${embedded} chunk${embedded === 1 ? "" : "s"} embedded`);
      }
      $("job-summary").textContent = parts.join(" · ")
        + (job.error ? ` — ${job.error}` : "");
    } else {
      $("job-summary").textContent = "";
    }
    const list = $("job-failures");
    list.textContent = "";
    for (const item of failed) {
      const [name, reason] = Array.isArray(item) ? item : [item && item.name, item && item.reason];
      list.append(el("li", {}, el("strong", { text: name || "file" }), `: ${reason || "failed"}`));
    }
  }

  async function pollJob(id) {
    for (;;) {
      let job;
      try {
        job = await apiJson(`v1/jobs/${encodeURIComponent(id)}`);
      } catch (err) {
        setStatus("upload-status", `Lost track of the upload: ${err.message}`, "error");
        $("job").dataset.status = "unknown";
        return;
      }
      renderJob(job);
      if (job.status === "done" || job.status === "failed") {
        setStatus("upload-status", job.status === "done" ? "Done." : "The upload failed.",
          job.status === "done" ? "ok" : "error");
        await Promise.all([loadDocuments(), loadHealth()]);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
    }
  }

  async function upload() {
    if (!pendingFiles.length) {
      setStatus("upload-status", "Choose or drop at least one file.", "error");
      return;
    }
    let meta;
    try {
      meta = parseMeta($("meta-input").value);
    } catch (err) {
      setStatus("upload-status", err.message, "error");
      $("meta-input").focus();
      return;
    }
    const form = new FormData();
    for (const f of pendingFiles) form.append("files", f, f.name);
    for (const m of meta) form.append("meta", m);
    $("upload-button").disabled = true;
    setStatus("upload-status", "Uploading…", "");
    $("job").hidden = true;
    $("job").dataset.status = "";
    try {
      const res = await apiJson("v1/documents", { method: "POST", body: form });
      pendingFiles = [];
      $("file-input").value = "";
      showSelected();
      setStatus("upload-status", "Uploaded; adding to the index…", "");
      renderJob({ status: "queued", files: res.files, done: 0 });
      $("job").dataset.job = String(res.job);
      await pollJob(res.job);
    } catch (err) {
      setStatus("upload-status", err.message, "error");
      $("upload-button").disabled = pendingFiles.length === 0;
    }
  }

  function initUpload() {
    const input = $("file-input");
    const zone = $("drop-zone");
    input.addEventListener("change", () => {
      pendingFiles = Array.from(input.files || []);
      showSelected();
      setStatus("upload-status", "", "");
    });
    $("upload-form").addEventListener("submit", (event) => {
      event.preventDefault();
      upload();
    });
    const over = (event) => {
      if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("dragging");
    };
    zone.addEventListener("dragenter", over);
    zone.addEventListener("dragover", over);
    zone.addEventListener("dragleave", (event) => {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
    });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      const files = Array.from((event.dataTransfer && event.dataTransfer.files) || []);
      if (!files.length) return;
      pendingFiles = pendingFiles.concat(files);
      showSelected();
      setStatus("upload-status", "", "");
    });
    // a file dropped next to the zone must not make the browser navigate away
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
  }

  /* ---------- documents list ---------- */

  function confirmDelete(name) {
    const dialog = $("confirm-dialog");
    $("confirm-text").textContent = `“${name}” and its passages will be removed from the index.`;
    const opener = document.activeElement;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        resolve(dialog.returnValue === "delete");
        if (opener && document.contains(opener)) opener.focus();
      }, { once: true });
      dialog.returnValue = "cancel";
      dialog.showModal();
      $("confirm-cancel").focus();
    });
  }

  // what ingest records by itself; the list shows the title and only the metadata people set
  const BUILTIN_META = new Set(["source", "type", "title", "size", "modified", "pages"]);

  function metaText(meta) {
    if (!meta || typeof meta !== "object") return "";
    return Object.entries(meta).filter(([k]) => !BUILTIN_META.has(k))
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(", ");
  }

  function renderDocuments(docs) {
    const list = $("documents");
    list.textContent = "";
    for (const d of docs) {
      const name = d.name || d.path || String(d.id);
      const del = el("button", {
        type: "button", class: "danger-quiet", "data-testid": "delete-document",
        "data-id": d.id, "aria-label": `Delete ${name}`, text: "Delete",
      });
      del.addEventListener("click", async () => {
        if (!(await confirmDelete(name))) return;
        del.disabled = true;
        setStatus("docs-status", `Deleting ${name}…`, "");
        try {
          await api(`v1/documents/${encodeURIComponent(d.id)}`, { method: "DELETE" });
          setStatus("docs-status", `Deleted ${name}.`, "ok");
          await Promise.all([loadDocuments(true), loadHealth()]);
        } catch (err) {
          setStatus("docs-status", `Could not delete ${name}: ${err.message}`, "error");
          del.disabled = false;
        }
      });
      const chunks = Number(d.chunks) || 0;
      const details = [];
      const title = d.meta && typeof d.meta.title === "string" ? d.meta.title.trim() : "";
      if (title && title !== name) details.push(title);
      details.push(`${chunks} passage${chunks === 1 ? "" : "s"}`);
      const m = metaText(d.meta);
      if (m) details.push(m);
      const info = el("div", { class: "doc-info" },
        el("span", { class: "doc-name", text: name, title: d.path || name }),
        el("span", { class: "meta", text: details.join(" · ") }));
      list.append(el("li", {
        class: "document", "data-testid": "document", "data-id": d.id, "data-name": name,
      }, info, del));
    }
    if (!docs.length) {
      list.append(el("li", { class: "empty", "data-testid": "documents-empty",
        text: "No documents yet. Upload some above." }));
    }
    list.dataset.count = String(docs.length);
  }

  let docsLoad = 0;
  // without a key too: a server run with --public-read lets anyone read
  async function loadDocuments(keepStatus) {
    const ticket = ++docsLoad;
    if (!keepStatus) setStatus("docs-status", "Loading…", "");
    try {
      const res = await apiJson("v1/documents");
      if (ticket !== docsLoad) return;
      renderDocuments(Array.isArray(res.documents) ? res.documents : []);
      if (!keepStatus) setStatus("docs-status", "", "");
    } catch (err) {
      if (ticket !== docsLoad) return;
      if (err.status === 401 && !apiKey) {
        $("documents").textContent = "";
        $("documents").dataset.count = "";
        setStatus("docs-status", "Enter your API key to see the documents.", "");
      } else {
        setStatus("docs-status", err.message, "error");
      }
    }
  }

  /* ---------- start ---------- */

  function start() {
    initKey();
    initDialogs();
    initAsk();
    initUpload();
    $("refresh-docs").addEventListener("click", () => {
      loadDocuments();
      loadHealth();
    });
    loadHealth();
    loadDocuments();
    document.body.dataset.ready = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
