// The web page: a chat, and one form per task built from its declaration (GET /v1/tasks), whose result is drawn
// for a person from the result's shape, or from the task's optional display hint ("beside", "span").
// Plain browser JavaScript: no build step, nothing fetched from elsewhere.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);

// An element: el("div", {class: "x", text: "hi"}, child, ...); other attributes are set as they are.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const words = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isScalar = (v) => v === null || ["string", "number", "boolean"].includes(typeof v);
const fixed = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(v < 0.001 && v > 0 ? 4 : 3));

// -- talking to the server -------------------------------------------------------------------------------------

const state = {model: null, defaults: {}, tasks: [], starting: false};
const keyBox = $("#key");
keyBox.value = sessionStorage.getItem("nlpsuite-key") || "";
$("#key-form").addEventListener("submit", (event) => { event.preventDefault(); keyBox.dispatchEvent(new Event("change")); });
keyBox.addEventListener("change", () => {
  sessionStorage.setItem("nlpsuite-key", keyBox.value);
  if (!state.model) start();
});

function headers() {
  const out = {"Content-Type": "application/json"};
  if (keyBox.value) out.Authorization = "Bearer " + keyBox.value;
  return out;
}

async function call(path, body, signal) {
  const init = body === undefined ? {headers: headers()} : {method: "POST", headers: headers(), body: JSON.stringify(body)};
  const response = await fetch(path, {...init, signal});
  if (response.ok) return response;
  let message = response.status + " " + response.statusText;
  try { message = (await response.json()).error.message; } catch (e) { /* not JSON: the status says it */ }
  if (response.status === 401) askForKey();
  const error = new Error(message);
  error.status = response.status;
  throw error;
}

function askForKey() {
  const box = $("#key-box");
  box.open = true;
  box.classList.add("needed");
  $("#key-help").textContent = "This server needs its API key: enter it here.";
  keyBox.focus();
}

// Server-sent events: each JSON payload goes to onData until "[DONE]"; comment lines (keep-alives) are skipped.
async function readEvents(response, onData) {
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, cut).split("\n").filter((l) => l.startsWith("data: "));
      buffer = buffer.slice(cut + 2);
      if (!lines.length) continue;
      const data = lines.map((l) => l.slice(6)).join("\n");
      if (data === "[DONE]") return;
      const parsed = JSON.parse(data);
      if (parsed.error) throw new Error(parsed.error.message);
      onData(parsed);
    }
  }
}

// -- form fields from a declaration ----------------------------------------------------------------------------

function fieldId(form, name) { return form + "-" + name; }

function control(spec, id, kind) {
  if (spec.type === "object") {  // JSON, such as a JSON Schema
    return el("textarea", {id, name: spec.name, rows: 5, required: spec.required, "data-type": "object", spellcheck: "false"});
  }
  if (kind === "lines") return el("textarea", {id, name: spec.name, rows: spec.first ? 3 : 4, required: spec.first && !spec.optional, "data-type": "lines"});
  if (kind === "text") return el("textarea", {id, name: spec.name, rows: spec.first ? 3 : 6, required: spec.first && !spec.optional});
  if (spec.type === "boolean") {
    return el("input", {id, name: spec.name, type: "checkbox", checked: !!spec.default, "data-type": "boolean"});
  }
  if (spec.choices && spec.choices.length) {
    const select = el("select", {id, name: spec.name, required: spec.required, "data-type": spec.type});
    if (!spec.required) select.append(el("option", {value: "", text: spec.default === null ? "—" : "Default (" + spec.default + ")"}));
    for (const c of spec.choices) select.append(el("option", {value: c, text: String(c)}));
    return select;
  }
  const number = spec.type === "integer" || spec.type === "number";
  const input = el("input", {id, name: spec.name, type: number ? "number" : "text", required: spec.required,
                             "data-type": spec.type || "string", autocomplete: "off", spellcheck: number ? null : "false"});
  if (spec.type === "number") input.step = "any";
  if (isNumber(spec.min)) input.min = spec.min;
  if (isNumber(spec.max)) input.max = spec.max;
  // Left empty, an option takes its default; a decoding setting whose default is the model's shows that value.
  const shown = spec.default ?? state.defaults[spec.name];
  if (shown !== null && shown !== undefined) input.placeholder = Array.isArray(shown) ? shown.join(", ") : String(shown);
  return input;
}

// One labelled field: kind "text" (a text box), "lines" (one item a line) or "option" (by the option's type).
function field(formId, spec, kind) {
  const id = fieldId(formId, spec.name), box = el("div", {class: "field"});
  if (spec.type === "array" && spec.separator === null) kind = "lines";  // a list given one value a line
  const input = control(spec, id, kind);
  let help = spec.help || "";
  if (kind === "lines") help = (help ? help.replace(/\.?$/, ". ") : "") + "One a line.";
  if (kind === "option" && spec.type === "array" && !/comma/i.test(help)) help = (help ? help.replace(/\.?$/, " ") : "") + "(separate them with commas)";
  if (help.replace(/\.$/, "").toLowerCase() === "the " + (spec.label || spec.name).toLowerCase()) help = "";  // "The question" says nothing more
  const optional = (kind !== "option" && spec.optional) ? el("span", {class: "optional", text: " (optional)"}) : null;
  if (spec.type === "boolean" && kind === "option") {
    box.classList.add("check");
    box.append(el("label", {for: id}, input, spec.label || words(spec.name)));
  } else {
    box.append(el("label", {for: id}, spec.label || words(spec.name), optional), input);
  }
  if (help) box.append(el("p", {class: "help", text: help}));
  return box;
}

function valueOf(input) {
  const type = input.dataset.type;
  if (type === "boolean") return input.checked;
  if (input.value.trim() === "") return undefined;
  if (type === "integer") return parseInt(input.value, 10);
  if (type === "number") return parseFloat(input.value);
  if (type === "array") return input.value.split(",").map((s) => s.trim()).filter(Boolean);
  if (type === "lines") return input.value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (type === "object") {
    try { return JSON.parse(input.value); } catch (e) { throw new Error(input.labels[0].textContent + " is not valid JSON: " + e.message); }
  }
  return input.value;
}

// The request body: every field given; a switch only when it differs from its default.
function bodyOf(form, options) {
  const body = {};
  for (const input of form.querySelectorAll("[name]")) {
    const value = valueOf(input), spec = options.find((o) => o.name === input.name);
    if (value === undefined) continue;
    if (input.dataset.type === "boolean" && value === !!(spec && spec.default)) continue;
    body[input.name] = value;
  }
  return body;
}

// Options after the first two (and not required) fold into "More settings" when there are more than three.
function optionFields(formId, options) {
  const main = [], more = [];
  options.forEach((spec, i) => (options.length <= 3 || i < 2 || spec.required ? main : more).push(field(formId, spec, "option")));
  const out = [el("div", {class: "grid"}, ...main)];
  if (more.length) out.push(el("details", {class: "more"}, el("summary", {text: "More settings"}), el("div", {class: "grid"}, ...more)));
  return out;
}

// -- drawing a result ------------------------------------------------------------------------------------------

// A map of names to probabilities (a label task's scores): every value a number from 0 to 1.
const isProbabilities = (v) => isObject(v) && Object.keys(v).length > 0 && Object.values(v).every((x) => isNumber(x) && x >= 0 && x <= 1);
// A list of records (search hits, reranked documents, cited sources).
const isRecords = (v) => Array.isArray(v) && v.length > 0 && v.every(isObject);
// A number shown as a bar: a score or probability from 0 to 1.
const isScore = (name, v) => isNumber(v) && v >= 0 && v <= 1 && /score|prob|confidence/i.test(name);

function bar(name, value, chosen) {
  const fill = el("span");
  fill.style.width = Math.round(value * 1000) / 10 + "%";
  return el("div", {class: "bar-row" + (chosen ? " chosen" : ""), "data-name": name},
    el("span", {class: "name", text: name}), el("div", {class: "bar", role: "meter", "aria-valuemin": 0, "aria-valuemax": 1,
      "aria-valuenow": value, "aria-label": name}, fill), el("span", {class: "num", text: value > 0 && value < 0.001 ? "<0.001" : value.toFixed(3)}));
}

function bars(probabilities, chosen) {
  const sorted = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  return el("div", {class: "bars labels"}, ...sorted.map(([name, p]) => bar(name, p, name === chosen)));
}

// The text a record stands for: its "text", a nested record's text, else its longest string.
function recordText(record) {
  if (typeof record.text === "string") return ["text", record.text];
  for (const [k, v] of Object.entries(record)) if (isObject(v) && typeof v.text === "string") return [k, v.text];
  const strings = Object.entries(record).filter(([, v]) => typeof v === "string").sort((a, b) => b[1].length - a[1].length);
  return strings.length ? strings[0] : [null, null];
}

function records(list, marks = {}) {
  return el("ol", {class: "rows"}, ...list.map((record, i) => {
    const [textKey, text] = recordText(record);
    const head = el("div", {class: "head"}, el("span", {class: "rank", text: (record.id ?? i + 1) + "."}));
    const scores = [], chips = [];
    for (const [k, v] of Object.entries(record)) {
      if (k === textKey || k === "id") continue;
      if (isScore(k, v)) scores.push(bar(words(k), v));
      else if (typeof v === "string" && !head.querySelector(".title")) head.append(el("span", {class: "title", text: v}));
      else if (isScalar(v) && v !== null) chips.push(chip(k, v));
      else if (isObject(v)) for (const [kk, vv] of Object.entries(v)) if (kk !== "text" && isScalar(vv)) chips.push(chip(kk, vv));
    }
    // A long text shows its first lines until clicked; a cited one shows around what it was cited for.
    const body = text === null ? null : el("div", {class: marks[i] ? "body" : "body clamped", title: marks[i] ? null : "Click for the whole text"},
                                           ...(marks[i] ? marked(text, ...marks[i]) : [text]));
    if (body && !marks[i]) body.addEventListener("click", () => body.classList.toggle("clamped"));
    return el("li", {class: marks[i] ? "cited" : null}, head, body, ...scores, chips.length ? el("div", {class: "chips"}, ...chips) : null);
  }));
}

function chip(name, value) {
  const shown = typeof value === "boolean" ? (value ? "yes" : "no") : isNumber(value) ? fixed(value) : String(value);
  return el("span", {}, el("b", {text: words(name) + ": "}), shown);
}

function table(object) {
  return el("table", {class: "fields"}, el("tbody", {}, ...Object.entries(object).map(([k, v]) =>
    el("tr", {}, el("th", {scope: "row", text: words(k)}), el("td", {}, cell(v))))));
}

function cell(value) {
  if (value === null || value === undefined) return el("span", {class: "optional", text: "—"});
  if (Array.isArray(value) && value.every(isScalar)) return value.map(String).join(", ");
  if (isObject(value) && Object.values(value).every(isScalar)) return table(value);
  if (isRecords(value)) return records(value);
  return typeof value === "string" ? value : isNumber(value) ? fixed(value) : JSON.stringify(value);
}

// The main value of a result, drawn by its shape.
function shape(value) {
  if (typeof value === "string") return el("div", {class: "output-text", text: value});
  if (isProbabilities(value)) return bars(value, null);
  if (isRecords(value)) return records(value);
  if (isObject(value)) return table(value);
  if (Array.isArray(value)) return el("ul", {class: "notes"}, ...value.map((v) => el("li", {text: isScalar(v) ? String(v) : JSON.stringify(v)})));
  if (value === null) return el("p", {class: "answer none", text: "Nothing came back."});
  return el("div", {class: "output-text", text: isNumber(value) ? fixed(value) : String(value)});
}

// The declared output fields not drawn yet (anything else a result holds is in its raw JSON): long text and
// records as sections, lists as notes, the rest as small facts.
function others(result, used, declared) {
  const out = [], chips = [];
  for (const name of declared) {
    const value = result[name];
    if (used.has(name) || value === null || value === undefined) continue;
    if (isRecords(value)) out.push(section(words(name), records(value)));
    else if (isProbabilities(value)) out.push(section(words(name), bars(value, null)));
    else if (typeof value === "string" && (value.length > 60 || value.includes("\n"))) out.push(section(words(name), shape(value)));
    else if (Array.isArray(value) && value.length) out.push(section(words(name), shape(value)));
    else if (isScore(name, value)) out.push(bar(words(name), value));
    else if (isScalar(value)) chips.push(chip(name, value));
    else if (isObject(value) && Object.values(value).every(isScalar)) for (const [k, v] of Object.entries(value)) chips.push(chip(k, v));
    else if (isObject(value)) out.push(section(words(name), table(value)));
  }
  if (chips.length) out.push(el("div", {class: "chips"}, ...chips));
  return out;
}

function section(title, ...content) {
  return el("div", {class: "section"}, el("p", {class: "caption", text: title}), ...content);
}

// text with [start, end) marked; a long text is cut to the neighbourhood of the mark.
function marked(text, start, end, around = 400) {
  const from = Math.max(0, start - around), to = Math.min(text.length, end + around);
  return [from > 0 ? "…" : "", text.slice(from, start), el("mark", {text: text.slice(start, end)}), text.slice(end, to), to < text.length ? "…" : ""];
}

// display "span": the answer, marked where it stands in the text it came from, and the sources cited.
function span(task, result, sent, used) {
  for (const k of ["answer", "score", "start", "end", "passage", "source", "sources"]) used.add(k);
  const out = [];
  if (result.answer === null || result.answer === undefined) {
    const p = isNumber(result.score) ? " (probability of no answer: " + fixed(result.score) + ")" : "";
    out.push(el("p", {class: "answer none", text: "No answer: the text does not say" + p + "."}));
  } else {
    out.push(el("p", {class: "answer", text: result.answer}));
    if (isNumber(result.score)) out.push(bar("Confidence", result.score, true));
  }
  const sources = isRecords(result.sources) ? result.sources : null;
  const offsets = isNumber(result.start) && isNumber(result.end) && result.end > result.start;
  const last = task.inputs[task.inputs.length - 1].name;
  if (offsets && !result.passage && typeof sent[last] === "string") {
    out.push(section("In the text", el("div", {class: "context"}, ...marked(sent[last], result.start, result.end))));
  } else if (!sources && typeof sent[last] === "string") {
    out.push(section("The text", el("div", {class: "context", text: sent[last]})));
  }
  if (sources) {
    const at = sources.findIndex((s) => s.id === result.passage);
    const marks = offsets && at >= 0 ? {[at]: [result.start, result.end]} : {};
    out.push(section("Sources", records(sources, marks)));
  }
  return out;
}

// A task's result for a person, from its declared output fields (all its fields where it declares none).
function render(task, result, sent) {
  const used = new Set(), out = [];
  if (!isObject(result)) return [shape(result)];
  const declared = task.output.length ? task.output.filter((k) => k in result) : Object.keys(result);
  if (task.display === "span") out.push(...span(task, result, sent, used));
  if (task.value && task.value in result && !used.has(task.value)) {
    used.add(task.value);
    out.push(task.display === "beside" ? beside(task, result[task.value], sent) : shape(result[task.value]));
  }
  // Probabilities: bars, the chosen one (a text field naming it) marked; that field and its score say no more.
  for (const name of declared) {
    const value = result[name];
    if (used.has(name) || !isProbabilities(value)) continue;
    used.add(name);
    const chosenKey = declared.find((k) => !used.has(k) && typeof result[k] === "string" && result[k] in value);
    const chosen = chosenKey && result[chosenKey];
    if (chosenKey) {
      used.add(chosenKey);
      out.push(el("p", {class: "answer", text: chosen}));
      for (const k of declared) if (!used.has(k) && isNumber(result[k]) && Math.abs(result[k] - value[chosen]) < 1e-3) used.add(k);
    }
    out.push(bars(value, chosen));
  }
  out.push(...others(result, used, declared));
  return out;
}

// display "beside": the result's text beside the first input, its source.
function beside(task, value, sent) {
  const source = task.inputs[0];
  if (typeof value !== "string" || typeof sent[source.name] !== "string") return shape(value);
  return el("div", {class: "beside"},
    el("div", {}, el("p", {class: "caption", text: source.label || words(source.name)}), el("div", {class: "output-text source", text: sent[source.name]})),
    el("div", {}, el("p", {class: "caption", text: words(task.value)}), el("div", {class: "output-text", text: value})));
}

// -- the task panels -------------------------------------------------------------------------------------------

function taskPanel(task) {
  const formId = "task-" + task.name;
  const form = el("form", {id: formId, class: "task", novalidate: null});
  // A list of documents is one text too: the server reads it one a line, or as JSONL or a JSON list.
  task.inputs.forEach((spec, i) => form.append(field(formId, {...spec, first: i === 0}, "text")));
  form.append(...optionFields(formId, task.options.filter((o) => o.type !== "path")));  // the server takes no paths
  const run = el("button", {class: "primary", type: "submit", text: "Run"});
  const result = el("div", {class: "result", "aria-live": "polite"}), raw = el("pre");
  const rawBox = el("details", {class: "raw", hidden: true}, el("summary", {text: "Raw JSON"}), raw);
  form.append(el("div", {class: "actions"}, run), result, rawBox);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    run.disabled = true;
    result.className = "result busy";
    result.replaceChildren("Working…");
    rawBox.hidden = true;
    try {
      const sent = bodyOf(form, task.options);
      const path = "/v1/tasks/" + encodeURIComponent(task.name) + (task.stream ? "?stream=true" : "");
      const response = await call(path, sent);
      let answer;
      if (task.stream) {
        const live = el("div", {class: "output-text"});
        let text = "";
        result.replaceChildren(live);
        await readEvents(response, (data) => {
          if ("result" in data) answer = data.result;
          else { text += data.delta; live.textContent = text; }
        });
      } else {
        answer = await response.json();
      }
      result.className = "result";
      result.replaceChildren(...render(task, answer, sent));
      raw.textContent = JSON.stringify(answer, null, 2);
      rawBox.hidden = false;
      result.classList.add("done");
    } catch (e) {
      result.className = "result error done";
      result.replaceChildren(el("p", {text: e.message}));
    } finally {
      run.disabled = false;
    }
  });
  return el("section", {id: "panel-" + task.name, class: "panel", role: "tabpanel", "aria-labelledby": "tab-" + task.name, hidden: true},
    el("h2", {text: words(task.name)}), el("p", {class: "about", text: task.description}), form);
}

function addTab(name) {
  const tab = el("button", {type: "button", role: "tab", id: "tab-" + name, "data-tab": name, "aria-controls": "panel-" + name,
                            "aria-selected": "false", text: words(name)});
  $("#tabs").append(tab);
}

function show(name) {
  if (!document.getElementById("panel-" + name)) name = "chat";
  for (const tab of document.querySelectorAll("#tabs [role=tab]")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== "panel-" + name;
}

$("#tabs").addEventListener("click", (event) => {
  const tab = event.target.closest("[role=tab]");
  if (!tab) return;
  history.replaceState(null, "", "#" + tab.dataset.tab);
  show(tab.dataset.tab);
});
window.addEventListener("hashchange", () => show(location.hash.slice(1)));

// -- the chat: OpenAI's chat route, with the conversation task's declared settings --------------------------------

const chat = {messages: [], controller: null, options: []};

function chatSettings(task) {
  // Settings left as the model would have them: its generation defaults, greedy when it ships none (as the CLI).
  chat.options = task ? task.options.map((o) => (o.name in state.defaults ? {...o, default: state.defaults[o.name]} : o)) : [];
  $("#chat-options").replaceChildren(el("div", {class: "grid"}, ...chat.options.map((o) => field("chat", o, "option"))));
  for (const o of chat.options) {
    const input = document.getElementById(fieldId("chat", o.name));
    if (o.type !== "boolean" && o.default !== null && !Array.isArray(o.default)) input.value = o.default;
  }
}

function bubble(role, text) {
  const log = $("#log"), empty = $(".empty", log);
  if (empty) empty.remove();
  const body = el("div", {class: "text", text});
  const node = el("div", {class: "msg " + role}, el("div", {class: "role", text: role === "user" ? "You" : role === "assistant" ? "Assistant" : "Error"}), body);
  log.append(node);
  log.scrollTop = log.scrollHeight;
  return node;
}

function busy(on) {
  $("#send").hidden = on;
  $("#stop").hidden = !on;
  $("#message").disabled = on;
}

$("#chat").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = $("#message"), content = box.value.trim();
  if (!content || !state.model || chat.controller) return;
  box.value = "";
  chat.messages.push({role: "user", content});
  bubble("user", content);
  const reply = bubble("assistant", ""), text = $(".text", reply);
  const system = $("#system").value.trim();
  const settings = bodyOf($("#chat-options"), chat.options);
  const body = {model: state.model, stream: true, ...settings,
                messages: [...(system ? [{role: "system", content: system}] : []), ...chat.messages]};
  chat.controller = new AbortController();
  busy(true);
  let shown = "", finish = null;
  try {
    const response = await call("/v1/chat/completions", body, chat.controller.signal);
    await readEvents(response, (chunk) => {
      for (const choice of chunk.choices) {
        if (choice.delta && choice.delta.content) { shown += choice.delta.content; text.textContent = shown; $("#log").scrollTop = 1e9; }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    });
    chat.messages.push({role: "assistant", content: shown});
    reply.classList.add("done");
    if (finish === "length") reply.append(el("p", {class: "note", text: "Cut at the length limit (Max tokens in Settings)."}));
  } catch (e) {
    if (e.name === "AbortError") {
      // Stopped: the conversation keeps the reply as far as it was shown; with nothing shown, the question goes too.
      if (shown) chat.messages.push({role: "assistant", content: shown});
      else chat.messages.pop();
      reply.classList.add("stopped");
      reply.append(el("p", {class: "note", text: shown ? "Stopped." : "Stopped before it began: the question is forgotten."}));
    } else {
      chat.messages.pop();
      reply.className = "msg error";
      $(".role", reply).textContent = "Error";
      text.textContent = e.message;
    }
  } finally {
    chat.controller = null;
    busy(false);
    box.focus();
  }
});

$("#message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("#chat").requestSubmit();
  }
});
$("#stop").addEventListener("click", () => chat.controller && chat.controller.abort());
$("#clear").addEventListener("click", () => {
  if (chat.controller) chat.controller.abort();
  chat.messages = [];
  $("#log").replaceChildren(el("p", {class: "empty", text: "No messages yet."}));
});

// -- start -----------------------------------------------------------------------------------------------------

async function start() {
  const status = $("#status");
  if (state.starting) return;
  state.starting = true;
  try {
    let models;
    try {
      models = await (await call("/v1/models")).json();
    } catch (e) {
      if (e.status === 503) { status.textContent = "The model is loading…"; setTimeout(start, 1000); return; }
      throw e;
    }
    const entry = models.data[0];
    state.defaults = entry.sampling_defaults || {};
    state.tasks = (await (await call("/v1/tasks")).json()).data;
    $("#model").textContent = entry.id;
    $("#key-box").classList.remove("needed");
    $("#key-box").open = false;
    // A task whose input is a conversation is the Chat tab (its options are the chat's settings).
    chatSettings(state.tasks.find((t) => t.inputs[0].messages));
    const panels = $("#task-panels");
    panels.replaceChildren();
    for (const task of state.tasks.filter((t) => !t.inputs[0].messages)) {
      addTab(task.name);
      panels.append(taskPanel(task));
    }
    state.model = entry.id;
    show(location.hash.slice(1));
    document.body.dataset.ready = "true";
  } catch (e) {
    status.className = "status error";
    status.textContent = e.status === 401 ? "This server needs its API key (top right)." : "error: " + e.message;
  } finally {
    state.starting = false;
  }
}
start();
