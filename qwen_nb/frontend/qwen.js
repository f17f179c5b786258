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
  if (msg.think) reply.thinking.push(msg.think);
  for (const key of ["label", "details", "tab", "status", "error"]) {
    if (msg[key] !== undefined) reply[key] = msg[key];
  }
}

function onMessage(model, msg) {
  const state = stateOf(model);
  if (msg.turn === undefined) {
    applyReply(state.reply, msg);
  } else {
    applyTurn(state, msg);
  }
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

// The Answer / Thinking / Details tabs, the DOM of the static output (radio inputs,
// labels, panels), so qwen_nb.render's stylesheet gives both one look.
function buildTabs(root) {
  const group = `qwen-nb-live-${++groups}`;
  const tabs = {};
  for (const [key, title] of [["answer", "Answer"], ["thinking", "Thinking"],
    ["details", "Details"]]) {
    const input = element("input", "qwen-nb-tab");
    input.type = "radio";
    input.name = group;
    input.id = `${group}-${key}`;
    const label = element("label", "", title);
    label.htmlFor = input.id;
    const panel = element("div", `qwen-nb-panel qwen-nb-${key}`);
    root.append(input, label, panel);
    tabs[key] = {input, label, panel};
  }
  tabs.answer.input.checked = true;
  return tabs;
}

// Draws one reply into `root`, appending only what it has not drawn yet.
function replyPainter(root, reply) {
  root.classList.add("qwen-nb", "qwen-nb-live");
  const tabs = buildTabs(root);
  const blocks = element("div", "qwen-nb-blocks");
  const tail = element("div", "qwen-nb-tail");
  tabs.answer.panel.append(blocks, tail);
  const trace = element("pre", "qwen-nb-trace");
  tabs.thinking.panel.append(trace);
  const status = element("div", "qwen-nb-status");
  const error = element("div", "qwen-nb-warning");
  const tools = element("div", "qwen-nb-tools");
  tools.append(copyButton("Copy the whole answer", () => visibleText(tabs.answer.panel)));
  root.append(status, error, tools);
  const drawn = {blocks: 0, tail: null, thinking: 0, tab: null};
  return () => {
    for (; drawn.blocks < reply.blocks.length; drawn.blocks++) {
      const block = element("div", "qwen-nb-block");
      block.append(fragment(reply.blocks[drawn.blocks]));
      addCodeCopy(block);
      blocks.append(block);
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
    tools.hidden = !(reply.blocks.length || reply.tail);
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

function applyTurn(state, msg) {
}

function renderChat(model, el, state) {
  return () => {};
}

export default {initialize, render};
