// The tether web console: explores the root object of the server that
// served this page, over Cap'n Web (the capnweb package, served beside
// this file, no CDN). Members come from `__inspect__()`, which every
// tether object answers.
import { newWebSocketRpcSession } from "./capnweb.js";

const $ = (id) => document.getElementById(id);
const url = new URL("capnweb", location.href);
url.protocol = location.protocol === "https:" ? "wss:" : "ws:";

const root = newWebSocketRpcSession(url.href);
root.onRpcBroken((err) => setStatus("closed", `disconnected: ${err.message}`));

let current = root;        // the object explored now
let currentName = "root";

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function show(value) {
  return JSON.stringify(value, (key, v) =>
    typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? `bytes(${v.length})` : v);
}

function isObject(value) {
  // A stub is a callable proxy; plain results are data.
  return typeof value === "function";
}

function logLine(cls, text) {
  const item = document.createElement("li");
  item.className = cls;
  item.textContent = text;
  $("log").append(item);
  return item;
}

async function explore(target, name) {
  current = target;
  currentName = name;
  $("path").textContent = name;
  $("back").hidden = target === root;
  const [repr, members] = await Promise.all([target.__repr__(), target.__inspect__()]);
  $("repr").textContent = repr;
  const rows = members.map((m) => {
    const row = document.createElement("tr");
    for (const text of [m.name, m.kind, m.signature, m.doc]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    row.cells[0].innerHTML = `<code></code>`;
    row.cells[0].firstChild.textContent = m.name;
    // A method's row fills the call form; an attribute's reads it.
    row.onclick = m.kind === "method"
      ? () => { $("method").value = m.name; $("args").focus(); }
      : () => read(m.name);
    row.title = m.kind === "method" ? "click to call" : "click to read";
    return row;
  });
  $("members").tBodies[0].replaceChildren(...rows);
  $("method-names").replaceChildren(...members
    .filter((m) => m.kind === "method")
    .map((m) => Object.assign(document.createElement("option"), { value: m.name })));
}

async function showResult(result, what) {
  if (isObject(result)) {
    const line = logLine("result", `${await result.__repr__()}`);
    const follow = Object.assign(document.createElement("button"),
      { className: "follow", textContent: "explore" });
    follow.onclick = () => explore(result, what);
    line.append(follow);
  } else {
    logLine("result", show(result));
  }
}

async function read(name) {
  logLine("call", `> ${currentName}.${name}`);
  try {
    await showResult(await current[name], `${currentName}.${name}`);
  } catch (err) {
    logLine("error", `${err.type ?? err.name}: ${err.message}`);
  }
}

async function call(event) {
  event.preventDefault();
  const method = $("method").value.trim();
  let args;
  try {
    args = JSON.parse($("args").value || "[]");
    if (!Array.isArray(args)) throw new Error("the arguments must be a JSON array");
  } catch (err) {
    logLine("error", `bad arguments: ${err.message}`);
    return;
  }
  const shown = `${currentName}.${method}(${args.map((a) => a === "$callback" ? "callback" : show(a)).join(", ")})`;
  const values = args.map((a) => a === "$callback"
    ? (...got) => { logLine("callback", `callback(${got.map(show).join(", ")})`); }
    : a);
  logLine("call", `> ${shown}`);
  try {
    await showResult(await current[method](...values), `${currentName}.${method}(…)`);
  } catch (err) {
    logLine("error", `${err.type ?? err.name}: ${err.message}`);
  }
}

$("call-form").addEventListener("submit", call);
$("back").addEventListener("click", () => explore(root, "root"));
try {
  await explore(root, "root");
  setStatus("open", `connected to ${url.host}`);
} catch (err) {
  setStatus("closed", `cannot explore the root: ${err.message}`);
}
