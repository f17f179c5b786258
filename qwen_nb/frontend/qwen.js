// qwen_nb's front end (an anywidget ES module; no build step, nothing fetched).
// The kernel sends HTML that qwen_nb.render made safe, and thinking as plain text; this
// file only places them: sealed answer blocks are appended once, the open tail replaced.
// State lives per model (not per view), so a view created late or twice shows it all.
// The kernel's one "core" model loads this module once and publishes it for the
// handles (handle.js) that each live reply and panel use.

// Keyed by the model's uid: anywidget hands initialize() and each render() a different
// proxy of the same model.
const STATES = new Map();
let groups = 0;

function stateOf(model) {
  const uid = model.get("uid");
  let state = STATES.get(uid);
  if (!state) {
    state = {reply: newReply(), turns: [], listeners: new Set()};
    STATES.set(uid, state);
  }
  return state;
}

function newReply() {
  return {blocks: [], tail: "", thinking: [], label: "Thinking", details: "", tab: "answer",
    status: "Waiting for the model · 0 s", error: ""};
}

// One message may carry any of these keys; only what changed is sent.
function applyReply(reply, msg) {
  if (msg.seal) reply.blocks.push(...msg.seal);
  if (msg.tail !== undefined) reply.tail = msg.tail;
  if (msg.overlay) {  // parts by image: a picture comes once, its layer of marks each time
    reply.overlay = reply.overlay || {};
    for (const part of msg.overlay) {
      reply.overlay[part.image] = {...reply.overlay[part.image], ...part};
    }
    reply.overlays = (reply.overlays || 0) + 1;
  }
  if (msg.think) reply.thinking.push(msg.think);
  for (const key of ["label", "details", "tab", "status", "error"]) {
    if (msg[key] !== undefined) reply[key] = msg[key];
  }
  if (msg.answer !== undefined) {  // the exact final answer, rendered whole
    reply.blocks = [msg.answer];
    reply.tail = "";
    reply.resets = (reply.resets || 0) + 1;
  }
}

function onMessage(model, msg) {
  const state = stateOf(model);
  if (model.get("kind") === "chat") applyTurn(state, msg);
  else applyReply(state.reply, msg);
  for (const listener of state.listeners) listener(msg);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Parsed in an inert <template>: nothing in the HTML runs or loads while it is parsed.
function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (error) {
    const area = element("textarea");
    area.value = text;
    area.style.cssText = "position:fixed;opacity:0;top:0;left:0";
    document.body.appendChild(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

function copyButton(title, text) {
  const button = element("button", "qwen-nb-copy", "Copy");
  button.type = "button";
  button.title = title;
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    const ok = await copyText(text());
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return button;
}

// The text a person sees (line breaks kept), without the Copy buttons' own labels.
function visibleText(node) {
  node.classList.add("qwen-nb-copying");
  const text = node.innerText;
  node.classList.remove("qwen-nb-copying");
  return text.trim();
}

// A Copy button on every code block under `root` that has none yet.
function addCodeCopy(root) {
  for (const pre of root.querySelectorAll("pre:not(.qwen-nb-trace)")) {
    const box = pre.closest(".qwen-nb-code") || pre;
    if (box.querySelector(":scope > .qwen-nb-copy")) continue;
    box.classList.add("qwen-nb-copyable");
    const code = pre.querySelector("code") || pre;
    box.appendChild(copyButton("Copy this code", () => code.textContent));
  }
}

// The Answer / Thinking / Details tabs, the DOM of the static output (radio inputs with
// their labels, then the panels), so qwen_nb.render's stylesheet gives both one look.
function buildTabs(root) {
  const group = `qwen-nb-live-${++groups}`;
  const tabs = {};
  const keys = [["answer", "Answer"], ["thinking", "Thinking"], ["details", "Details"]];
  for (const [key, title] of keys) {
    const input = element("input", "qwen-nb-tab");
    input.type = "radio";
    input.name = group;
    input.id = `${group}-${key}`;
    const label = element("label", "", title);
    label.htmlFor = input.id;
    root.append(input, label);
    tabs[key] = {input, label};
  }
  for (const [key] of keys) {
    tabs[key].panel = element("div", `qwen-nb-panel qwen-nb-${key}`);
    root.append(tabs[key].panel);
  }
  tabs.answer.input.checked = true;
  return tabs;
}

// The grounding overlay the kernel drew: each picture with a transparent layer of its marks
// laid over it, the layer replaced as more boxes complete. Only data: images are shown,
// whatever sent them; texts are set as text.
function isDataImage(src) {
  return typeof src === "string" && src.startsWith("data:image/");
}

function setImage(img, src) {
  if (isDataImage(src) && img.getAttribute("src") !== src) img.src = src;
  img.hidden = !isDataImage(img.getAttribute("src"));
}

function paintOverlay(box, figures, parts) {
  for (const key of Object.keys(parts).sort((a, b) => a - b)) {
    const part = parts[key];
    let figure = figures.get(key);
    if (!figure) {
      figure = {box: element("figure", "qwen-nb-overlay"), stack: element("div",
        "qwen-nb-overlay-stack"), base: element("img", "qwen-nb-overlay-base"),
      layer: element("img", "qwen-nb-overlay-layer"), caption: element("figcaption")};
      figure.layer.alt = "";
      figure.stack.append(figure.base, figure.layer);
      figure.box.append(figure.stack, figure.caption);
      figures.set(key, figure);
      box.append(figure.box);
    }
    setImage(figure.base, part.base);
    setImage(figure.layer, part.layer);
    if (part.width) {
      figure.base.width = part.width;
      figure.base.height = part.height;
    }
    figure.base.alt = part.alt || "";
    figure.caption.textContent = part.note || part.caption || "";
  }
}

// Draws one reply into `root`, appending only what it has not drawn yet.
function replyPainter(root, reply, {tools: withTools = true} = {}) {
  root.classList.add("qwen-nb", "qwen-nb-live");
  const tabs = buildTabs(root);
  const blocks = element("div", "qwen-nb-blocks");
  const tail = element("div", "qwen-nb-tail");
  const overlay = element("div", "qwen-nb-live-overlay");
  tabs.answer.panel.append(overlay, blocks, tail);
  const trace = element("pre", "qwen-nb-trace");
  tabs.thinking.panel.append(trace);
  const status = element("div", "qwen-nb-status");
  const error = element("div", "qwen-nb-notice");
  const tools = element("div", "qwen-nb-tools");
  tools.append(copyButton("Copy the whole answer", () => visibleText(tabs.answer.panel)));
  root.append(status, error, tools);
  const figures = new Map();
  const drawn = {blocks: 0, tail: null, overlays: 0, thinking: 0, tab: null, resets: 0};
  return () => {
    if (drawn.resets !== (reply.resets || 0)) {
      drawn.resets = reply.resets;
      drawn.blocks = 0;
      blocks.replaceChildren();
    }
    for (; drawn.blocks < reply.blocks.length; drawn.blocks++) {
      const block = element("div", "qwen-nb-block");
      block.append(fragment(reply.blocks[drawn.blocks]));
      addCodeCopy(block);
      blocks.append(block);
    }
    if (reply.overlay && drawn.overlays !== reply.overlays) {
      drawn.overlays = reply.overlays;
      paintOverlay(overlay, figures, reply.overlay);
    }
    if (drawn.tail !== reply.tail) {
      drawn.tail = reply.tail;
      tail.replaceChildren(fragment(reply.tail));
      addCodeCopy(tail);
    }
    for (; drawn.thinking < reply.thinking.length; drawn.thinking++) {
      trace.append(document.createTextNode(reply.thinking[drawn.thinking]));
    }
    if (tabs.thinking.label.textContent !== reply.label) {
      tabs.thinking.label.textContent = reply.label;
    }
    if (reply.details && tabs.details.panel.dataset.html !== reply.details) {
      tabs.details.panel.dataset.html = reply.details;
      tabs.details.panel.replaceChildren(fragment(reply.details));
    }
    if (drawn.tab !== reply.tab) {
      drawn.tab = reply.tab;
      tabs[reply.tab].input.checked = true;
    }
    status.textContent = reply.status;
    status.hidden = !reply.status;
    error.textContent = reply.error ? `⚠ ${reply.error}` : "";
    error.hidden = !reply.error;
    tools.hidden = !withTools || !(reply.blocks.length || reply.tail);
  };
}

function publish(version) {
  const loaded = (globalThis.__qwenNbFrontEnd ??= {});
  const api = {initialize, render};
  if (loaded[version] && loaded[version].resolve) loaded[version].resolve(api);
  else if (!loaded[version]) loaded[version] = Promise.resolve(api);
}

function initialize({model}) {
  if (model.get("kind") === "core") return publish(model.get("version"));
  const handler = (msg) => onMessage(model, msg);
  model.on("msg:custom", handler);
  return () => {
    model.off("msg:custom", handler);
    STATES.delete(model.get("uid"));
  };
}

function render({model, el}) {
  if (model.get("kind") === "core") return () => {};
  const state = stateOf(model);
  if (model.get("kind") === "chat") return renderChat(model, el, state);
  const root = element("div");
  el.append(root);
  const paint = replyPainter(root, state.reply);
  paint();
  state.listeners.add(paint);
  return () => {
    state.listeners.delete(paint);
    root.remove();
  };
}

// -- the chat panel ------------------------------------------------------------------
// Turns arrive as messages {turn: id, open | final | drop | <reply keys>}; the panel's
// settings, attachments, notice and status are synced traits; actions go back to the
// kernel as {action: ...} messages (the kernel is free while a reply streams).

function applyTurn(state, msg) {
  if (msg.box !== undefined) { state.box = msg.box; return; }
  if (msg.reset) { state.turns = []; return; }
  if (msg.sync) { state.turns = []; for (const m of msg.sync) applyTurn(state, m); return; }
  let turn = state.turns.find((t) => t.id === msg.turn);
  if (msg.open) {
    turn = {id: msg.turn, ...msg.open, reply: newReply(), done: false};
    turn.reply.status = "";
    state.turns.push(turn);
    return;
  }
  if (!turn) return;
  if (msg.drop) { state.turns = state.turns.filter((t) => t !== turn); return; }
  applyReply(turn.reply, msg);
  if (msg.done) turn.done = true;
}

// The code of a turn's answer, as the cell to insert: every block, one after another.
function answerCode(panel) {
  return [...panel.querySelectorAll("pre:not(.qwen-nb-trace) code, pre:not(.qwen-nb-trace)")]
    .filter((node) => node.tagName === "CODE" || !node.querySelector("code"))
    .map((node) => node.textContent.replace(/\n$/, "")).join("\n\n");
}

// A new code cell below the panel's own cell, through the notebook's model (JupyterLab and
// Notebook 7: the widget manager knows its notebook); elsewhere the code is copied.
function insertCell(model, code) {
  const notebook = model.widget_manager && model.widget_manager.context &&
    model.widget_manager.context.model;
  const shared = notebook && notebook.sharedModel;
  if (!shared || !shared.insertCell) return false;
  const id = model.get("widget_id");
  const holds = (cell) => cell.cell_type === "code" && (cell.getOutputs ? cell.getOutputs() : [])
    .some((out) => ((out.data || {})["application/vnd.jupyter.widget-view+json"] || {})
      .model_id === id);
  const index = shared.cells.findIndex(holds);
  shared.insertCell(index < 0 ? shared.cells.length : index + 1,
    {cell_type: "code", source: code, metadata: {}});
  return true;
}

function actionButton(label, title, onClick, className = "") {
  const button = element("button", `qwen-nb-action ${className}`.trim(), label);
  button.type = "button";
  button.title = title;
  button.addEventListener("click", onClick);
  return button;
}

function turnView(model, turn, isLast, say) {
  const box = element("div", "qwen-nb-turn");
  const you = element("div", "qwen-nb-you");
  const who = element("div", "qwen-nb-who", "You");
  if (turn.images) who.append(` · ${turn.images} image${turn.images === 1 ? "" : "s"}`);
  you.append(who, element("div", "qwen-nb-prompt-text", turn.prompt));
  if (turn.thumbs && turn.thumbs.length) {
    const strip = element("div", "qwen-nb-thumbs");
    for (const src of turn.thumbs) {
      if (!src.startsWith("data:image/")) continue;  // only thumbnails made by the kernel
      const img = element("img", "qwen-nb-thumb");
      img.src = src;
      img.alt = "image sent";
      strip.append(img);
    }
    you.append(strip);
  }
  const reply = element("div");
  const paint = replyPainter(reply, turn.reply, {tools: false});
  const actions = element("div", "qwen-nb-actions");
  const answerPanel = () => reply.querySelector(".qwen-nb-answer");
  actions.append(copyButton("Copy this answer", () => visibleText(answerPanel())));
  actions.append(actionButton("Insert code as cell", "A new cell below with this answer's code",
    () => {
      const code = answerCode(answerPanel());
      if (!code) return say("This answer has no code block.");
      if (insertCell(model, code)) return say("Inserted the code as a new cell below.");
      copyText(code).then(() => say("Copied the code: paste it into a new cell."));
    }, "qwen-nb-insert"));
  if (isLast) {
    actions.append(actionButton("Regenerate", "Ask again for this prompt",
      () => model.send({action: "regenerate"}), "qwen-nb-regenerate"));
    actions.append(actionButton("Edit", "Put this prompt back in the box to change and resend",
      () => say(null, turn.prompt), "qwen-nb-edit"));
  }
  box.append(you, reply, actions);
  return {box, paint: () => { paint(); actions.hidden = !turn.done; }};
}

// A <select> of [label, value] pairs.
function choice(pairs) {
  const select = element("select");
  for (const [label, value] of pairs) {
    const option = element("option", "", label);
    option.value = value;
    select.append(option);
  }
  return select;
}

function field(label, input) {
  const row = element("label", "qwen-nb-field");
  row.append(element("span", "", label), input);
  return row;
}

function renderChat(model, el, state) {
  const root = element("div", "qwen-nb-chat");
  const head = element("div", "qwen-nb-head");
  const transcript = element("div", "qwen-nb-transcript-live");
  const compose = element("div", "qwen-nb-compose");
  const attachments = element("div", "qwen-nb-attachments");
  const prompt = element("textarea", "qwen-nb-prompt");
  prompt.rows = 3;
  prompt.placeholder = "Ask about the images... (Ctrl+Enter or Shift+Enter sends)";
  prompt.value = model.get("prompt");
  let editing = false;
  const notice = element("div", "qwen-nb-notice");
  const status = element("div", "qwen-nb-status");
  const say = (text, promptText) => {
    if (promptText !== undefined && promptText !== null) {
      prompt.value = promptText;
      editing = true;
      syncPrompt();
      prompt.focus();
      notice.textContent = "Editing the last prompt: Send replaces that turn.";
    } else {
      notice.textContent = text || "";
    }
  };
  // The draft goes to the kernel when the box loses the focus and with Send (not per
  // keystroke: a queued update must never bring back a sent text); the kernel puts a
  // prompt back in the box with a {box: text} message (a reply that failed).
  if (state.box !== undefined) prompt.value = state.box;
  const syncPrompt = () => {
    state.box = prompt.value;
    if (model.get("prompt") !== prompt.value) {
      model.set("prompt", prompt.value);
      model.save_changes();
    }
  };
  prompt.addEventListener("change", syncPrompt);
  const send = actionButton("Send", "Send (Ctrl+Enter)", () => {
    const text = prompt.value;
    prompt.value = "";
    state.box = "";
    model.send({action: "send", prompt: text, edit: editing});
    editing = false;
  }, "qwen-nb-send");
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey || event.shiftKey)) {
      event.preventDefault();
      event.stopPropagation();
      if (!send.disabled) send.click();
    }
  });
  const stop = actionButton("Stop", "Stop the reply (the partial text stays)",
    () => model.send({action: "stop"}), "qwen-nb-stop");
  const fresh = actionButton("New chat", "Forget this conversation and start over",
    () => model.send({action: "new_chat"}), "qwen-nb-new");
  const upload = element("input", "qwen-nb-upload");
  upload.type = "file";
  upload.accept = "image/*,video/*,.mkv,.webm,.avi";
  upload.multiple = true;
  upload.title = "Upload images or videos";
  upload.addEventListener("change", async () => {
    const files = [...upload.files];
    const buffers = await Promise.all(files.map((f) => f.arrayBuffer()));
    model.send({action: "upload", names: files.map((f) => f.name)}, undefined, buffers);
    upload.value = "";
  });
  const picker = element("select", "qwen-nb-picker");
  picker.title = "An image variable of the notebook";
  const add = actionButton("Add", "Attach the selected image variable",
    () => model.send({action: "add_variable", name: picker.value}));
  const refresh = actionButton("↻", "Look for image variables again",
    () => model.send({action: "refresh_variables"}));
  const tools = element("div", "qwen-nb-row");
  tools.append(upload, picker, add, refresh, element("span", "qwen-nb-grow"), send, stop, fresh);
  compose.append(attachments, prompt, tools, notice, status);

  const settings = element("details", "qwen-nb-settings");
  settings.append(element("summary", "", "Settings"));
  const inputs = {};
  const providerSelect = choice(model.get("providers"));
  inputs.provider = providerSelect;
  const answerAs = choice(model.get("answer_as"));
  inputs.answer_as = answerAs;
  for (const [key, label, hint] of [["model", "Model", "provider default"],
    ["base_url", "Base URL", "provider default"], ["temperature", "Temperature", "0 to 2"],
    ["max_tokens", "Max tokens", "provider default"],
    ["thinking_budget", "Thinking budget", "none"],
    ["ground", "Locate", "e.g. cat, red car (boxes drawn)"],
    ["system", "System prompt", "none"]]) {
    const input = element("input");
    input.placeholder = hint;
    inputs[key] = input;
  }
  const resend = element("input");
  resend.type = "checkbox";
  inputs.resend_images = resend;
  const key = element("input", "qwen-nb-key");
  key.type = "password";
  key.placeholder = "paste, then Enter (kept in kernel memory only)";
  key.autocomplete = "off";
  const keyStatus = element("span", "qwen-nb-key-status");
  const setKey = () => {
    if (key.value.trim()) model.send({action: "set_key", key: key.value.trim()});
    key.value = "";
  };
  key.addEventListener("keydown", (event) => { if (event.key === "Enter") setKey(); });
  key.addEventListener("change", setKey);
  const forget = actionButton("Forget key", "Use the environment's key again",
    () => model.send({action: "forget_key"}));
  const grid = element("div", "qwen-nb-grid");
  grid.append(field("Provider", providerSelect), field("Model", inputs.model),
    field("Base URL", inputs.base_url), field("Temperature", inputs.temperature),
    field("Max tokens", inputs.max_tokens), field("Thinking budget", inputs.thinking_budget),
    field("Locate", inputs.ground), field("Answer as", answerAs),
    field("System prompt", inputs.system),
    field("Resend earlier images", resend), field("API key", key));
  const keyRow = element("div", "qwen-nb-row");
  keyRow.append(keyStatus, forget);
  settings.append(grid, keyRow);
  for (const [name, input] of Object.entries(inputs)) {
    input.addEventListener("change", () => {
      const value = input.type === "checkbox" ? input.checked : input.value;
      model.set("settings", {...model.get("settings"), [name]: value});
      model.save_changes();
    });
  }
  root.append(head, transcript, compose, settings);
  el.append(root);

  const views = new Map();
  let lastCount = -1;
  let box = state.box;
  const paintTurns = () => {
    if (state.box !== box) {
      box = state.box;
      prompt.value = box;
    }
    const last = state.turns[state.turns.length - 1];
    for (const [id, view] of views) {
      if (!state.turns.some((t) => t.id === id) || (view.isLast !== (last && last.id === id))) {
        view.box.remove();
        views.delete(id);
      }
    }
    const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 60;
    for (const turn of state.turns) {
      let view = views.get(turn.id);
      if (!view) {
        view = {...turnView(model, turn, turn === last, say), isLast: turn === last};
        views.set(turn.id, view);
      }
      if (view.box.parentNode !== transcript || transcript.lastChild !== view.box) {
        transcript.append(view.box);
      }
      view.paint();
    }
    if (nearBottom || state.turns.length !== lastCount) transcript.scrollTop = transcript.scrollHeight;
    lastCount = state.turns.length;
  };
  const paintPanel = () => {
    const values = model.get("settings");
    for (const [name, input] of Object.entries(inputs)) {
      if (document.activeElement === input) continue;
      if (input.type === "checkbox") input.checked = !!values[name];
      else input.value = values[name] == null ? "" : String(values[name]);
    }
    head.textContent = `Qwen chat · ${model.get("model_label")}`;
    const busy = model.get("busy");
    send.disabled = busy;
    stop.disabled = !busy;
    notice.textContent = model.get("notice");
    status.textContent = model.get("status");
    keyStatus.textContent = model.get("key_status");
    if (model.get("notice_key")) {
      settings.open = true;
      key.focus();
    }
    const names = model.get("variables");
    const chosen = picker.value;
    picker.replaceChildren(...names.map((name) => {
      const option = element("option", "", name);
      option.value = name;
      return option;
    }));
    if (names.includes(chosen)) picker.value = chosen;
    picker.disabled = add.disabled = !names.length;
    attachments.replaceChildren(...model.get("attachments").map((item, index) => {
      const chip = element("span", "qwen-nb-chip");
      if (item.src && item.src.startsWith("data:image/")) {
        const img = element("img", "qwen-nb-thumb");
        img.src = item.src;
        img.alt = item.label;
        chip.append(img);
      }
      chip.append(element("small", "", item.label), actionButton("×", `Remove ${item.label}`,
        () => model.send({action: "remove_attachment", index})));
      return chip;
    }));
  };
  const events = ["settings", "busy", "notice", "notice_key", "status", "key_status",
    "variables", "attachments", "model_label"].map((name) => `change:${name}`);
  for (const name of events) model.on(name, paintPanel);
  paintPanel();
  paintTurns();
  state.listeners.add(paintTurns);
  if (!state.turns.length && model.get("turns") > 0) model.send({action: "sync"});
  return () => {
    state.listeners.delete(paintTurns);
    for (const name of events) model.off(name, paintPanel);
    root.remove();
  };
}

export default {initialize, render};
