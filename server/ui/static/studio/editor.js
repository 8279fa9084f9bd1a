/* The workflow studio's editor (server/ui/pages/studio.py serves it).
 *
 * The workflow document is the truth: `doc` is the JSON the page was given, and every edit
 * changes only the part of it the person changed, so saving an unchanged graph sends back
 * the very document that was loaded. Node positions live in the document's optional
 * `positions` (written only once a node is moved or added); nodes without one are drawn
 * where the server's layout (server/ui/graph.py) puts them.
 *
 * Problems come from the server (`check`: the API's validation, messages keyed by JSON
 * path) and are shown on the node and the field they belong to. Undo and redo keep whole
 * documents (small). The simulator (simulator.js) tells what a run is doing with
 * `kabar:studio-step` events on document; `window.kabarStudio` hands it the draft.
 */
(function () {
  "use strict";

  const root = document.querySelector("[data-studio]");
  const dataNode = document.getElementById("studio-data");
  if (!root || !dataNode) return;
  const data = JSON.parse(dataNode.textContent);
  const catalogue = data.catalogue;
  const TEXTS = data.texts || {};
  /** The editor's words in the page's language (studio.py TEXTS), with %(name)s filled. */
  const tr = (key, vars = {}) => String(TEXTS[key] || key)
    .replace(/%\((\w+)\)s/g, (_m, name) => String(vars[name] === undefined ? "" : vars[name]));
  const types = Object.fromEntries(catalogue.nodes.map((n) => [n.type, n]));
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const NODE_ID = /^[A-Za-z_][A-Za-z0-9_]*$/;
  const NODE_W = 176;
  const GRID = 10;

  const $ = (selector, within) => (within || root).querySelector(selector);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  };

  const state = {
    doc: data.doc,
    layout: data.layout || {},
    workflow: data.workflow,
    selected: null,
    outputs: {},
    problems: [],
    undo: [],
    redo: [],
    coalesce: null,
    saved: JSON.stringify(data.doc),
    run: { node: null, done: new Set(), status: null },
    checkSeq: 0,
  };

  // --- JSON paths, as nodes/validation.py writes them ----------------------------------

  function jsonPath(parts) {
    let text = "$";
    for (const part of parts) {
      if (typeof part === "number") text += `[${part}]`;
      else if (NODE_ID.test(part)) text += `.${part}`;
      else text += `[${JSON.stringify(part)}]`;
    }
    return text;
  }

  function parsePath(path) {
    const parts = [];
    let i = 1;
    while (i < path.length) {
      if (path[i] === ".") {
        const m = /^\.([A-Za-z_][A-Za-z0-9_]*)/.exec(path.slice(i));
        if (!m) break;
        parts.push(m[1]);
        i += m[0].length;
      } else if (path[i] === "[") {
        const m = /^\[(\d+)\]/.exec(path.slice(i));
        if (m) { parts.push(Number(m[1])); i += m[0].length; continue; }
        const s = /^\[("(?:[^"\\]|\\.)*")\]/.exec(path.slice(i));
        if (!s) break;
        parts.push(JSON.parse(s[1]));
        i += s[0].length;
      } else break;
    }
    return parts;
  }

  // --- the document ------------------------------------------------------------------------

  const nodes = () => (state.doc.nodes && typeof state.doc.nodes === "object" ? state.doc.nodes : {});

  function triggers() {
    if (state.doc.trigger && typeof state.doc.trigger === "object") return [state.doc.trigger];
    return Array.isArray(state.doc.triggers) ? state.doc.triggers : [];
  }

  function triggerBase(index) {
    return "triggers" in state.doc ? ["triggers", index] : ["trigger"];
  }

  function setTriggers(list) {
    if ("triggers" in state.doc && list.length) state.doc.triggers = list;
    else if (list.length === 0) { delete state.doc.trigger; delete state.doc.triggers; }
    else if (list.length === 1) { delete state.doc.triggers; state.doc.trigger = list[0]; }
    else { delete state.doc.trigger; state.doc.triggers = list; }
  }

  function posOf(id) {
    const stored = state.doc.positions && state.doc.positions[id];
    if (stored && typeof stored.x === "number" && typeof stored.y === "number") return stored;
    if (state.layout[id]) return state.layout[id];
    const ids = Object.keys(nodes());
    return { x: 20 + (ids.indexOf(id) % 5) * 220, y: 20 + Math.floor(ids.indexOf(id) / 5) * 130 };
  }

  /** From now on the document says where every node is (so nothing jumps later). */
  function writePositions() {
    const written = state.doc.positions && typeof state.doc.positions === "object" ? state.doc.positions : {};
    const all = {};
    for (const id of Object.keys(nodes())) {
      const p = written[id] || posOf(id);
      all[id] = { x: Math.round(p.x), y: Math.round(p.y) };
    }
    state.doc.positions = all;
  }

  function outputsOf(id) {
    const spec = nodes()[id] || {};
    const known = state.outputs[id] || (types[spec.type] ? types[spec.type].outputs : ["error"]);
    const wired = Object.keys(spec.next && typeof spec.next === "object" ? spec.next : {});
    return [...new Set([...known, ...wired])];
  }

  function uniqueId(base) {
    let stem = String(base).replace(/\W/g, "_");
    if (!/^[A-Za-z_]/.test(stem)) stem = `n_${stem}`;
    if (!(stem in nodes())) return stem;
    let n = 2;
    while (`${stem}_${n}` in nodes()) n += 1;
    return `${stem}_${n}`;
  }

  /** Rename a node keeping its place in `nodes`, and every reference to it. */
  function renameNode(from, to) {
    const renamed = {};
    for (const [id, spec] of Object.entries(nodes())) renamed[id === from ? to : id] = spec;
    state.doc.nodes = renamed;
    for (const spec of Object.values(renamed)) {
      if (spec && spec.next && typeof spec.next === "object") {
        for (const [out, target] of Object.entries(spec.next)) if (target === from) spec.next[out] = to;
      }
    }
    if (state.doc.start === from) state.doc.start = to;
    if (state.doc.positions && state.doc.positions[from]) {
      const moved = {};
      for (const [id, p] of Object.entries(state.doc.positions)) moved[id === from ? to : id] = p;
      state.doc.positions = moved;
    }
    if (state.layout[from]) { state.layout[to] = state.layout[from]; delete state.layout[from]; }
  }

  function deleteNode(id) {
    delete nodes()[id];
    for (const spec of Object.values(nodes())) {
      if (spec && spec.next && typeof spec.next === "object") {
        for (const [out, target] of Object.entries(spec.next)) if (target === id) delete spec.next[out];
        if (Object.keys(spec.next).length === 0) delete spec.next;
      }
    }
    if (state.doc.positions) delete state.doc.positions[id];
    if (state.doc.start === id) state.doc.start = Object.keys(nodes())[0] || "";
  }

  function connect(source, output, target) {
    const spec = nodes()[source];
    if (!spec) return;
    if (target) {
      if (!spec.next || typeof spec.next !== "object") spec.next = {};
      spec.next[output] = target;
    } else if (spec.next) {
      delete spec.next[output];
      if (Object.keys(spec.next).length === 0) delete spec.next;
    }
  }

  // --- changes, undo and redo ------------------------------------------------------------

  /** Apply `fn` to the document; one undo step unless `coalesce` names the same field
   * as the change before (typing in one field is one step). */
  function change(fn, { coalesce = null, form = true } = {}) {
    const before = JSON.stringify(state.doc);
    fn();
    const after = JSON.stringify(state.doc);
    if (before === after) return;
    if (!(coalesce && coalesce === state.coalesce)) {
      state.undo.push({ doc: before, selected: state.selected });
      if (state.undo.length > 200) state.undo.shift();
    }
    state.coalesce = coalesce;
    state.redo = [];
    changed({ form });
  }

  function changed({ form = true } = {}) {
    if (state.selected && !(state.selected in nodes())) state.selected = null;
    renderGraph();
    if (form) renderInspector();
    renderJson();
    renderToolbar();
    scheduleCheck();
  }

  function travel(from, to) {
    const step = from.pop();
    if (!step) return;
    to.push({ doc: JSON.stringify(state.doc), selected: state.selected });
    state.doc = JSON.parse(step.doc);
    state.selected = step.selected;
    state.coalesce = null;
    changed();
  }

  // --- checking against the server -------------------------------------------------------

  let checkTimer = null;
  function scheduleCheck(delay = 250) {
    clearTimeout(checkTimer);
    root.dataset.checking = "true";  // from now: what is shown may be about an older draft
    checkTimer = setTimeout(check, delay);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", body,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
    });
    let answer = {};
    try { answer = await response.json(); } catch (_e) { answer = { message: response.statusText }; }
    return { ok: response.ok, status: response.status, answer };
  }

  async function check() {
    const seq = ++state.checkSeq;
    root.dataset.checking = "true";
    let result;
    try {
      result = await post(data.urls.check, JSON.stringify(state.doc));
    } catch (_e) {
      return;  // offline: the next change checks again
    }
    if (seq !== state.checkSeq) return;  // a newer draft is being checked
    showProblems(result.answer.errors || {});
    state.outputs = result.answer.outputs || {};
    state.arranged = result.answer.layout || {};
    renderGraph();
    renderProblems();
    root.dataset.checking = "false";
    root.dataset.valid = result.ok ? "true" : "false";
  }

  function showProblems(errors) {
    state.problems = [];
    for (const [path, messages] of Object.entries(errors)) {
      for (const message of [].concat(messages)) state.problems.push({ path, parts: parsePath(path), message });
    }
  }

  function problemsOfNode(id) {
    return state.problems.filter((p) => p.parts[0] === "nodes" && p.parts[1] === id);
  }

  // --- the graph ---------------------------------------------------------------------------

  const canvas = $("[data-canvas]");
  const nodesLayer = $("[data-nodes]");
  const edgesLayer = $("[data-edge-paths]");
  const dragLine = $("[data-drag-line]");

  function renderGraph() {
    const focusedId = document.activeElement && document.activeElement.closest
      && document.activeElement.closest("[data-node]") ? document.activeElement.closest("[data-node]").dataset.node : null;
    nodesLayer.replaceChildren();
    let width = 600;
    let height = 400;
    for (const [id, spec] of Object.entries(nodes())) {
      const info = types[spec && spec.type] || null;
      const p = posOf(id);
      const problems = problemsOfNode(id);
      const classes = ["studio-node", `kind-${info ? info.group : "other"}`];
      if (state.doc.start === id) classes.push("is-start");
      if (state.selected === id) classes.push("is-selected");
      if (problems.length) classes.push("has-problem");
      if (state.run.node === id) classes.push("is-current");
      if (state.run.done.has(id)) classes.push("is-done");
      const ports = outputsOf(id).filter((out) => out !== "error" || (spec.next && spec.next.error));
      const box = el("div", {
        class: classes.join(" "), "data-node": id, role: "listitem", tabindex: "0",
        "aria-label": `${id} (${spec && spec.type})${problems.length ? ` — ${tr("problems_n", { n: problems.length })}` : ""}`,
        "aria-current": state.selected === id ? "true" : null,
        "data-run-status": state.run.node === id ? state.run.status : null,
      },
      el("div", { class: "studio-node-head" },
        el("span", { class: "studio-node-id", text: id }),
        el("span", { class: "studio-node-type", text: spec && spec.type }),
        state.doc.start === id ? el("span", { class: "studio-node-start", text: tr("start") }) : null),
      el("ul", { class: "studio-ports" }, ports.map((out) => el("li", {
        class: `studio-port${spec.next && spec.next[out] ? " is-wired" : ""}`, "data-output": out,
        title: spec.next && spec.next[out] ? `${out} → ${spec.next[out]}` : tr("drag_port", { output: out }),
      }, el("span", { text: out }), el("span", { class: "studio-port-dot", "aria-hidden": "true" })))),
      problems.length ? el("p", { class: "studio-node-problem", text: problems[0].message }) : null);
      box.style.left = `${p.x}px`;
      box.style.top = `${p.y}px`;
      nodesLayer.append(box);
      width = Math.max(width, p.x + NODE_W + 160);
      height = Math.max(height, p.y + box.offsetHeight + 120);
    }
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    drawEdges();
    if (focusedId) {
      const again = nodesLayer.querySelector(`[data-node="${CSS.escape(focusedId)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  function boxOf(id) {
    return nodesLayer.querySelector(`[data-node="${CSS.escape(id)}"]`);
  }

  function portPoint(id, output) {
    const box = boxOf(id);
    const port = box && box.querySelector(`[data-output="${CSS.escape(output)}"]`);
    if (!box || !port) return null;
    return { x: box.offsetLeft + box.offsetWidth, y: box.offsetTop + port.offsetTop + port.offsetHeight / 2 };
  }

  function inPoint(id) {
    const box = boxOf(id);
    return box ? { x: box.offsetLeft, y: box.offsetTop + 16 } : null;
  }

  function curve(a, b) {
    const bend = Math.max(40, Math.abs(b.x - a.x) / 2);
    return `M${a.x},${a.y} C${a.x + bend},${a.y} ${b.x - bend},${b.y} ${b.x},${b.y}`;
  }

  function drawEdges() {
    edgesLayer.replaceChildren();
    const ns = "http://www.w3.org/2000/svg";
    for (const [id, spec] of Object.entries(nodes())) {
      if (!spec || !spec.next || typeof spec.next !== "object") continue;
      for (const [out, target] of Object.entries(spec.next)) {
        const a = portPoint(id, out);
        const b = inPoint(target);
        if (!a || !b) continue;
        const path = document.createElementNS(ns, "path");
        path.setAttribute("d", curve(a, b));
        path.setAttribute("class", "studio-edge" + (state.run.done.has(id) && (state.run.done.has(target) || state.run.node === target) ? " is-done" : ""));
        path.setAttribute("marker-end", "url(#studio-arrow)");
        path.dataset.edge = `${id}:${out}:${target}`;
        edgesLayer.append(path);
      }
    }
  }

  // Moving nodes and drawing connections with the pointer.
  let drag = null;

  nodesLayer.addEventListener("pointerdown", (event) => {
    const box = event.target.closest("[data-node]");
    if (!box || event.button !== 0) return;
    const id = box.dataset.node;
    const port = event.target.closest("[data-output]");
    event.preventDefault();
    if (port) {
      drag = { kind: "connect", id, output: port.dataset.output, from: portPoint(id, port.dataset.output) };
    } else {
      const p = posOf(id);
      drag = { kind: "move", id, startX: event.clientX, startY: event.clientY, x: p.x, y: p.y, moved: false, box };
    }
    select(id, { focus: false });
    box.focus({ preventScroll: true });  // so the arrow keys and Delete work after a click
  });

  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    if (drag.kind === "move") {
      const dx = event.clientX - drag.startX;
      const dy = event.clientY - drag.startY;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 3) return;
      drag.moved = true;
      drag.nx = Math.max(0, Math.round((drag.x + dx) / GRID) * GRID);
      drag.ny = Math.max(0, Math.round((drag.y + dy) / GRID) * GRID);
      const box = boxOf(drag.id);
      box.style.left = `${drag.nx}px`;
      box.style.top = `${drag.ny}px`;
      drawEdges();
    } else {
      const rect = canvas.getBoundingClientRect();
      dragLine.setAttribute("d", curve(drag.from, { x: event.clientX - rect.left, y: event.clientY - rect.top }));
    }
  });

  window.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const current = drag;
    drag = null;
    dragLine.setAttribute("d", "");
    if (current.kind === "move") {
      if (current.moved) moveTo(current.id, current.nx, current.ny);
      return;
    }
    const hit = document.elementFromPoint(event.clientX, event.clientY);
    const target = hit && hit.closest && hit.closest("[data-node]");
    const targetId = target ? target.dataset.node : null;
    change(() => connect(current.id, current.output, targetId));
  });

  function moveTo(id, x, y) {
    change(() => {
      writePositions();
      state.doc.positions[id] = { x: Math.max(0, Math.round(x)), y: Math.max(0, Math.round(y)) };
    }, { form: false });
  }

  nodesLayer.addEventListener("focusin", (event) => {
    const box = event.target.closest("[data-node]");
    if (box && state.selected !== box.dataset.node) select(box.dataset.node, { focus: false });
  });

  nodesLayer.addEventListener("keydown", (event) => {
    const box = event.target.closest("[data-node]");
    if (!box) return;
    const id = box.dataset.node;
    const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (steps[event.key] && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      const p = posOf(id);
      const by = event.shiftKey ? 5 * GRID : GRID;
      moveTo(id, p.x + steps[event.key][0] * by, p.y + steps[event.key][1] * by);
    } else if (event.key === "Enter") {
      event.preventDefault();
      const first = $("[data-inspector] input, [data-inspector] select, [data-inspector] textarea");
      if (first) first.focus();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      removeSelected();
    }
  });

  // --- selecting, adding, duplicating, deleting -------------------------------------------

  function select(id, { focus = true } = {}) {
    if (id !== state.selected) inspector.closest(".studio-inspector").scrollTop = 0;
    state.selected = id;
    state.coalesce = null;
    for (const box of nodesLayer.querySelectorAll("[data-node]")) {
      const on = box.dataset.node === id;
      box.classList.toggle("is-selected", on);
      if (on) box.setAttribute("aria-current", "true"); else box.removeAttribute("aria-current");
    }
    renderInspector();
    renderToolbar();
    if (focus && id) {
      const box = boxOf(id);
      if (box) box.focus();
    }
  }

  function freeSpot(near) {
    let x = near ? near.x + NODE_W + 70 : canvas.parentElement.scrollLeft + 20;
    let y = near ? near.y : canvas.parentElement.scrollTop + 20;
    const taken = Object.keys(nodes()).map(posOf);
    while (taken.some((p) => Math.abs(p.x - x) < NODE_W + 10 && Math.abs(p.y - y) < 100)) y += 110;
    return { x: Math.round(x / GRID) * GRID, y: Math.round(y / GRID) * GRID };
  }

  function addNode(type) {
    const id = uniqueId(type);
    const spot = freeSpot(state.selected ? posOf(state.selected) : null);
    change(() => {
      if (!state.doc.nodes || typeof state.doc.nodes !== "object") state.doc.nodes = {};
      writePositions();
      state.doc.nodes[id] = { type };
      state.doc.positions[id] = spot;
      if (!state.doc.start || !(state.doc.start in nodes())) state.doc.start = id;
    });
    select(id);
    status(tr("added", { id, type }));
  }

  function duplicateSelected() {
    const from = state.selected;
    if (!from || !nodes()[from]) return;
    const id = uniqueId(`${from}_copy`);
    const p = posOf(from);
    const spot = freeSpot({ x: p.x - NODE_W - 70 + 30, y: p.y + 30 });
    change(() => {
      writePositions();
      state.doc.nodes[id] = JSON.parse(JSON.stringify(nodes()[from]));
      state.doc.positions[id] = spot;
    });
    select(id);
    status(tr("duplicated", { source: from, id }));
  }

  function removeSelected() {
    const id = state.selected;
    if (!id) return;
    change(() => deleteNode(id));
    select(null, { focus: false });
    nodesLayer.focus();
    status(tr("deleted", { id }));
  }

  /** Lay the graph out as the workflow page draws it (the server's layout of the draft
   * last checked); nodes it could not place keep theirs. */
  function arrange() {
    change(() => {
      writePositions();
      for (const [id, p] of Object.entries(state.arranged || {})) {
        if (id in nodes()) state.doc.positions[id] = { x: Math.round(p.x), y: Math.round(p.y) };
      }
    });
    status(tr("arranged"));
  }

  // --- the palette -------------------------------------------------------------------------

  const palette = $("[data-palette]");
  const search = $("#palette-search");

  function renderPalette() {
    const query = search.value.trim().toLowerCase();
    palette.replaceChildren();
    for (const [group, label] of Object.entries(catalogue.groups)) {
      const items = catalogue.nodes.filter((n) => n.group === group && (!query
        || `${n.type} ${n.type.replace(/_/g, " ")} ${n.summary} ${n.doc}`.toLowerCase().includes(query)));
      if (!items.length) continue;
      palette.append(el("section", { class: "studio-group" },
        el("h3", { text: label }),
        el("ul", { class: "plain" }, items.map((n) => el("li", {},
          el("button", {
            type: "button", class: `studio-palette-item kind-${n.group}`, "data-type": n.type, title: n.doc,
            "aria-label": tr("add_item", { type: n.type, summary: n.summary }), onclick: () => addNode(n.type),
          }, el("strong", { text: n.type }), el("span", { text: n.summary.replace(/`/g, "") })))))));
    }
    if (!palette.children.length) palette.append(el("p", { class: "help", text: tr("no_match") }));
  }

  search.addEventListener("input", renderPalette);
  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const first = palette.querySelector("[data-type]");
    if (first) addNode(first.dataset.type);
  });

  // --- the inspector: forms generated from the schemas -----------------------------------

  const inspector = $("[data-inspector]");
  const inspectorTitle = $("[data-inspector-title]");
  let fieldSeq = 0;

  const DURATION = /(^|_)(seconds|timeout)$/;
  const UNITS = [["seconds", 1], ["minutes", 60], ["hours", 3600], ["days", 86400]];
  const LONG_TEXT = /(^|_)(text|prompt|reprompt|note|body|reason|message|condition|when)$/;

  function plainOf(schema) {
    if (schema && Array.isArray(schema.anyOf)) {
      const plain = schema.anyOf.find((s) => !s.$ref) || {};
      return { plain: { description: schema.description, default: schema.default, ...plain }, templatable: true };
    }
    return { plain: schema || {}, templatable: false };
  }

  function baseType(plain) {
    const kinds = [].concat(plain.type || []).filter((k) => k !== "null");
    return kinds[0] || null;
  }

  function isTemplate(value) {
    return typeof value === "string" && /\{\{|\{%/.test(value);
  }

  function humanSeconds(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "";
    const parts = [];
    let rest = Math.round(seconds);
    for (const [name, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
      if (rest >= size) { parts.push(`${Math.floor(rest / size)} ${name}`); rest %= size; }
    }
    return parts.join(" ") || "0 s";
  }

  /** What a template or expression reads, in words: the preview under a field. */
  function reads(text, expression) {
    if (typeof text !== "string") return [];
    const blocks = [];
    if (expression) blocks.push(text.replace(/^\s*\{\{|\}\}\s*$/g, ""));
    else for (const m of text.matchAll(/\{\{([\s\S]*?)\}\}|\{%([\s\S]*?)%\}/g)) blocks.push(m[1] || m[2] || "");
    const skip = new Set(["and", "or", "not", "in", "is", "if", "else", "elif", "endif", "for", "endfor",
      "true", "false", "none", "True", "False", "None", "loop", "set", "endset", "with", "endwith"]);
    const setBy = {};
    for (const [id, spec] of Object.entries(nodes())) {
      const vars = spec && spec.type === "set" && spec.params && spec.params.variables;
      if (vars && typeof vars === "object") for (const name of Object.keys(vars)) (setBy[name] = setBy[name] || []).push(id);
    }
    const found = new Map();
    for (const block of blocks) {
      const cleaned = block.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, "''").replace(/\|\s*[A-Za-z_]\w*/g, "");
      for (const m of cleaned.matchAll(/(^|[^.\w])([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[[^\]]*\])*)/g)) {
        const name = m[2];
        if (skip.has(name) || found.has(name + m[3])) continue;
        const chain = name + m[3];
        let said;
        if (name === "trigger") said = tr("reads_trigger");
        else if (name === "args") said = tr("reads_args");
        else if (name === "vars") {
          const variable = (/^\.(\w+)/.exec(m[3]) || [])[1];
          said = variable ? `${tr("reads_var", { name: variable })} ${setBy[variable] ? tr("reads_set_by", { ids: setBy[variable].join(", ") }) : tr("reads_set_by_none")}` : tr("reads_vars");
        } else if (name === "now" || name === "timedelta") said = tr("reads_now");
        else if (name === "run") said = tr("reads_run");
        else if (name in nodes()) said = tr("reads_node", { id: name, type: nodes()[name].type });
        else said = null;
        found.set(chain, { chain, said: said || tr("reads_unknown"), unknown: !said });
      }
    }
    return [...found.values()];
  }

  function fieldBox(path, label, input, { help, required, extra } = {}) {
    const id = input.id;
    const wrap = el("div", { class: "field studio-field", "data-path": jsonPath(path) },
      el("label", { for: id }, label),
      required ? el("span", { class: "required", title: tr("required"), "aria-hidden": "true", text: "*" }) : null,
      input, extra || null,
      help ? el("small", { class: "help", id: `${id}-help`, text: help }) : null,
      el("p", { class: "field-problem error-text", "data-field-problem": "", hidden: true }));
    if (help) input.setAttribute("aria-describedby", `${id}-help`);
    if (required) input.setAttribute("aria-required", "true");
    return wrap;
  }

  function nextId() { fieldSeq += 1; return `sf-${fieldSeq}`; }

  /** One input for one value at `path`, built from its JSON Schema. `get` reads the value
   * (undefined: not set), `set(value)` writes it (undefined: remove the key). */
  function schemaField(name, schema, path, get, set, { required = false, expression = false } = {}) {
    const { plain, templatable } = plainOf(schema);
    const kind = baseType(plain);
    const value = get();
    const id = nextId();
    const key = jsonPath(path);
    const help = plain.description || "";
    const defaultText = plain.default !== undefined && plain.default !== null ? tr("default", { value: JSON.stringify(plain.default) }) : "";
    const write = (v, { form = false } = {}) => change(() => set(v), { coalesce: key, form });

    if (Array.isArray(plain.enum) || kind === "boolean") {
      const choices = kind === "boolean" ? [true, false] : plain.enum.filter((v) => v !== null);
      const select = el("select", { id, name });
      if (!required || value === undefined) select.append(el("option", { value: "", text: defaultText || "—" }));
      for (const choice of choices) select.append(el("option", { value: JSON.stringify(choice), text: String(choice) }));
      if (value !== undefined && !choices.some((c) => c === value)) {
        select.append(el("option", { value: JSON.stringify(value), text: String(value) }));
      }
      select.value = value === undefined ? "" : JSON.stringify(value);
      select.addEventListener("change", () => write(select.value === "" ? undefined : JSON.parse(select.value)));
      return fieldBox(path, name, select, { help, required });
    }

    if ((kind === "integer" || kind === "number") && DURATION.test(name)) {
      const amount = el("input", { id, name, type: "text", inputmode: "decimal", autocomplete: "off", placeholder: defaultText.replace(/^— /, "") });
      const unit = el("select", { "aria-label": tr("unit", { name }) }, UNITS.map(([label, size]) => el("option", { value: String(size), text: tr(label) })));
      const shown = el("output", { class: "studio-duration", for: id });
      let size = 1;
      if (typeof value === "number" && value > 0) for (const [, s] of UNITS) if (value % s === 0) size = s;
      unit.value = String(size);
      amount.value = value === undefined ? "" : (typeof value === "number" ? String(value / size) : String(value));
      const refresh = () => { const v = get(); shown.textContent = typeof v === "number" ? `= ${v} s (${humanSeconds(v)})` : ""; };
      const update = () => {
        const text = amount.value.trim();
        const number = Number(text);
        let v;
        if (text === "") v = undefined;
        else if (isFinite(number)) v = Math.round(number * Number(unit.value) * 1000) / 1000;
        else v = text;
        write(v);
        refresh();
      };
      amount.addEventListener("input", update);
      unit.addEventListener("change", update);
      refresh();
      return fieldBox(path, name, amount, { help, required, extra: el("span", { class: "studio-duration-row" }, unit, shown) });
    }

    if (kind === "integer" || kind === "number") {
      const input = el("input", { id, name, type: "text", inputmode: "decimal", autocomplete: "off", placeholder: defaultText.replace(/^— /, "") });
      input.value = value === undefined || value === null ? "" : String(value);
      input.addEventListener("input", () => {
        const text = input.value.trim();
        const number = Number(text);
        write(text === "" ? undefined : (isFinite(number) && !isTemplate(text) ? number : text));
      });
      return fieldBox(path, name, input, { help, required });
    }

    if (kind === "string" || (!kind && expression)) {
      const long = LONG_TEXT.test(name) || (plain.maxLength || 0) > 256;
      const input = long ? el("textarea", { id, name, rows: "2", spellcheck: "false" })
        : el("input", { id, name, type: "text", autocomplete: "off", spellcheck: "false", placeholder: defaultText.replace(/^— /, "") });
      input.value = value === undefined || value === null ? "" : String(value);
      const preview = el("ul", { class: "studio-reads plain", "aria-live": "polite" });
      const refresh = () => renderReads(preview, input.value, expression);
      input.addEventListener("input", () => {
        write(input.value === "" && !required ? undefined : input.value);
        refresh();
      });
      refresh();
      return fieldBox(path, name, input, { help, required, extra: preview });
    }

    if (kind === "array" && plain.items && (plain.items.type === "string" || (plain.items.anyOf && baseType(plainOf(plain.items).plain) === "string"))
        && !Array.isArray(plainOf(plain.items).plain.enum)) {
      const input = el("input", { id, name, type: "text", autocomplete: "off", spellcheck: "false" });
      input.value = Array.isArray(value) ? value.join(", ") : (value === undefined ? "" : String(value));
      input.addEventListener("input", () => {
        const text = input.value.trim();
        write(text === "" ? undefined : (isTemplate(text) ? text : text.split(",").map((s) => s.trim()).filter(Boolean)));
      });
      return fieldBox(path, tr("comma", { name }), input, { help, required });
    }

    // Anything else (objects, lists of objects, free values): its JSON.
    const area = el("textarea", { id, name, rows: "3", class: "code", spellcheck: "false" });
    area.value = value === undefined ? "" : JSON.stringify(value, null, 1).replace(/\n\s*/g, " ");
    const preview = el("ul", { class: "studio-reads plain", "aria-live": "polite" });
    const local = el("p", { class: "error-text", role: "alert" });
    const refresh = () => renderReads(preview, area.value, expression);
    area.addEventListener("input", () => {
      const text = area.value.trim();
      if (text === "") { local.textContent = ""; write(undefined); refresh(); return; }
      try {
        const parsed = JSON.parse(text);
        local.textContent = "";
        write(parsed);
      } catch (error) {
        local.textContent = tr("json_not_yet", { error: error.message });
      }
      refresh();
    });
    refresh();
    return fieldBox(path, tr("as_json", { name }), area, { help, required, extra: el("div", {}, local, preview) });
  }

  function renderReads(list, text, expression) {
    list.replaceChildren(...reads(text, expression).map((r) => el("li", { class: r.unknown ? "is-unknown" : "" },
      el("code", { text: r.chain }), ` — ${r.said}`)));
    if (list.children.length) list.prepend(el("li", { class: "studio-reads-title", text: tr("reads") }));
  }

  function objectAt(parent, key) {
    if (!parent[key] || typeof parent[key] !== "object" || Array.isArray(parent[key])) parent[key] = {};
    return parent[key];
  }

  function paramFields(id, spec) {
    const info = types[spec.type];
    if (!info) return el("p", { class: "help", text: tr("unknown_type") });
    const schema = info.params;
    const required = new Set(schema.required || []);
    const props = schema.properties || {};
    const box = el("fieldset", { class: "studio-params" }, el("legend", { text: tr("parameters") }));
    if (!Object.keys(props).length) box.append(el("p", { class: "help", text: tr("no_params") }));
    for (const [name, prop] of Object.entries(props)) {
      box.append(schemaField(name, prop, ["nodes", id, "params", name],
        () => (spec.params && typeof spec.params === "object" ? spec.params[name] : undefined),
        (v) => {
          const target = nodes()[id];
          if (v === undefined) { if (target.params) delete target.params[name]; } else objectAt(target, "params")[name] = v;
        },
        { required: required.has(name), expression: info.expressions.includes(name) }));
    }
    return box;
  }

  function nextFields(id, spec) {
    const box = el("fieldset", { class: "studio-next" }, el("legend", { text: tr("connections") }));
    const others = Object.keys(nodes());
    for (const out of outputsOf(id)) {
      const fid = nextId();
      const select = el("select", { id: fid },
        el("option", { value: "", text: tr("nowhere") }),
        others.map((other) => el("option", { value: other, text: other })));
      const current = spec.next && typeof spec.next === "object" ? spec.next[out] : undefined;
      if (current && !others.includes(current)) select.append(el("option", { value: current, text: tr("missing", { id: current }) }));
      select.value = current || "";
      select.addEventListener("change", () => change(() => connect(id, out, select.value || null), { form: false }));
      box.append(fieldBox(["nodes", id, "next", out], tr("goes_to", { output: out }), select));
    }
    return box;
  }

  function nodeForm(id) {
    const spec = nodes()[id];
    const info = types[spec.type];
    inspectorTitle.textContent = tr("node_title", { id });
    const idInput = el("input", { id: nextId(), type: "text", autocomplete: "off", spellcheck: "false", value: id });
    const idProblem = el("p", { class: "error-text", role: "alert" });
    const rename = () => {
      const to = idInput.value.trim();
      if (to === id) { idProblem.textContent = ""; return; }
      if (!NODE_ID.test(to)) { idProblem.textContent = tr("id_rule"); return; }
      if (to in nodes()) { idProblem.textContent = tr("id_taken", { id: to }); return; }
      idProblem.textContent = "";
      change(() => renameNode(id, to));
      select(to, { focus: false });
      const again = inspector.querySelector("input");
      if (again) again.focus();
    };
    idInput.addEventListener("change", rename);
    idInput.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); rename(); } });
    const description = el("input", { id: nextId(), type: "text", autocomplete: "off" });
    description.value = typeof spec.description === "string" ? spec.description : "";
    description.addEventListener("input", () => change(() => {
      if (description.value === "") delete nodes()[id].description; else nodes()[id].description = description.value;
    }, { coalesce: jsonPath(["nodes", id, "description"]), form: false }));
    const retry = el("details", { class: "studio-retry" }, el("summary", { text: tr("retry") }),
      ["max", "backoff_seconds"].map((name) => schemaField(name, {
        type: "number", description: name === "max" ? tr("retry_max") : tr("retry_backoff"),
      }, ["nodes", id, "retry", name], () => (spec.retry ? spec.retry[name] : undefined), (v) => {
        const target = nodes()[id];
        if (v === undefined) { if (target.retry) { delete target.retry[name]; if (!Object.keys(target.retry).length) delete target.retry; } } else objectAt(target, "retry")[name] = v;
      })));
    if (spec.retry) retry.open = true;
    return el("div", {},
      el("p", { class: "studio-about" }, el("strong", { text: spec.type }), info ? ` — ${info.summary}` : ""),
      info && info.doc !== info.summary ? el("details", { class: "studio-doc" }, el("summary", { text: tr("about_node") }), el("pre", { text: info.doc })) : null,
      fieldBox(["nodes", id], tr("id"), idInput, { help: tr("id_help", { id }), extra: idProblem }),
      fieldBox(["nodes", id, "description"], tr("description"), description),
      state.doc.start === id ? el("p", { class: "help", text: tr("starts_here") })
        : el("button", { type: "button", onclick: () => change(() => { state.doc.start = id; }) }, tr("start_here")),
      paramFields(id, spec), nextFields(id, spec), retry,
      el("div", { class: "actions" },
        el("button", { type: "button", onclick: duplicateSelected }, tr("duplicate")),
        el("button", { type: "button", class: "danger", onclick: removeSelected }, tr("delete"))));
  }

  function triggerFields(index, trigger) {
    const base = triggerBase(index);
    const schema = catalogue.triggers[trigger.type] || { properties: {} };
    const box = el("fieldset", { class: "studio-trigger", "data-path": jsonPath(base) },
      el("legend", { text: tr("trigger_n", { n: index + 1 }) }),
      el("p", { class: "field-problem error-text", "data-field-problem": "", hidden: true }));
    const kind = el("select", { id: nextId() }, Object.keys(catalogue.triggers).map((t) => el("option", { value: t, text: t })));
    if (!(trigger.type in catalogue.triggers)) kind.append(el("option", { value: String(trigger.type), text: String(trigger.type) }));
    kind.value = String(trigger.type);
    kind.addEventListener("change", () => change(() => {
      const list = triggers().slice();
      list[index] = { type: kind.value };
      setTriggers(list);
    }));
    box.append(fieldBox([...base, "type"], tr("trigger_type", { n: index + 1 }), kind));
    const required = new Set(schema.required || []);
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      if (name === "type") continue;
      box.append(schemaField(name, prop, [...base, name], () => trigger[name], (v) => {
        const target = triggers()[index];
        if (v === undefined) delete target[name]; else target[name] = v;
      }, { required: required.has(name) }));
    }
    box.append(el("button", { type: "button", class: "small danger", onclick: () => change(() => {
      const list = triggers().slice();
      list.splice(index, 1);
      setTriggers(list);
    }) }, tr("remove_trigger", { n: index + 1 })));
    return box;
  }

  function workflowForm() {
    inspectorTitle.textContent = tr("settings");
    const text = (label, key, { required = false, number = false, help = "" } = {}) => {
      const input = el("input", { id: nextId(), type: "text", autocomplete: "off", inputmode: number ? "numeric" : null });
      const value = state.doc[key];
      input.value = value === undefined || value === null ? "" : String(value);
      input.addEventListener("input", () => change(() => {
        const raw = input.value.trim();
        if (raw === "" && !required) delete state.doc[key];
        else state.doc[key] = number && /^\d+$/.test(raw) ? Number(raw) : (number ? raw : input.value);
      }, { coalesce: `$.${key}`, form: false }));
      return fieldBox([key], label, input, { required, help });
    };
    const start = el("select", { id: nextId() }, el("option", { value: "", text: "—" }),
      Object.keys(nodes()).map((id) => el("option", { value: id, text: id })));
    start.value = state.doc.start in nodes() ? state.doc.start : "";
    start.addEventListener("change", () => change(() => { state.doc.start = start.value; }, { form: false }));
    return el("div", {},
      text(tr("name"), "name", { required: true, help: tr("name_help") }),
      text(tr("description"), "description"),
      text(tr("version"), "version", { number: true, help: tr("version_help") }),
      fieldBox(["start"], tr("start_node"), start, { required: true }),
      el("section", { class: "studio-triggers", "data-path": "$.triggers" },
        el("h3", { text: tr("triggers") }),
        triggers().length ? null : el("p", { class: "help", text: tr("no_triggers") }),
        triggers().map((trigger, index) => triggerFields(index, trigger)),
        el("button", { type: "button", onclick: () => change(() => setTriggers([...triggers(), { type: "message" }])) }, tr("add_trigger"))));
  }

  function renderInspector() {
    fieldSeq = 0;
    const form = state.selected && nodes()[state.selected] ? nodeForm(state.selected) : workflowForm();
    inspector.replaceChildren(form);
    renderProblems();
  }

  // --- problems, the JSON panel, the toolbar ------------------------------------------

  const problemList = $("[data-problems]");

  function renderProblems() {
    $("[data-problem-count]").textContent = String(state.problems.length);
    problemList.replaceChildren(...state.problems.map((p) => el("li", {},
      el("button", { type: "button", class: "link", onclick: () => reveal(p) }, el("code", { text: p.path })),
      ` ${p.message}`)));
    // On the fields: the field whose path is the longest prefix of the problem's.
    const fields = [...inspector.querySelectorAll("[data-path]")];
    for (const field of fields) {
      const slot = field.querySelector(":scope > [data-field-problem]");
      if (slot) { slot.hidden = true; slot.textContent = ""; }
      field.classList.remove("has-problem");
    }
    for (const problem of state.problems) {
      let best = null;
      for (const field of fields) {
        const at = field.dataset.path;
        if ((problem.path === at || problem.path.startsWith(`${at}.`) || problem.path.startsWith(`${at}[`))
            && (!best || at.length > best.dataset.path.length) && field.querySelector(":scope > [data-field-problem]")) best = field;
      }
      if (!best) continue;
      const slot = best.querySelector(":scope > [data-field-problem]");
      slot.hidden = false;
      slot.textContent = slot.textContent ? `${slot.textContent} ${problem.message}` : problem.message;
      best.classList.add("has-problem");
      const input = best.querySelector("input, select, textarea");
      if (input) input.setAttribute("aria-invalid", "true");
    }
    for (const field of fields) {
      if (!field.classList.contains("has-problem")) {
        const input = field.querySelector("input, select, textarea");
        if (input) input.removeAttribute("aria-invalid");
      }
    }
  }

  function reveal(problem) {
    const node = problem.parts[0] === "nodes" && typeof problem.parts[1] === "string" && problem.parts[1] in nodes() ? problem.parts[1] : null;
    select(node, { focus: !node ? false : true });
    const field = [...inspector.querySelectorAll(".has-problem")].find(Boolean);
    if (field) { const input = field.querySelector("input, select, textarea"); if (input) input.focus(); }
  }

  const jsonArea = $("[data-json]");
  const jsonError = $("[data-json-error]");

  function renderJson() {
    if (document.activeElement === jsonArea) return;
    jsonArea.value = JSON.stringify(state.doc, null, 2);
    jsonError.textContent = "";
  }

  let jsonTimer = null;
  /** Take the panel's text as the document; false while it is not a JSON object. */
  function applyJson() {
    clearTimeout(jsonTimer);
    jsonTimer = null;
    let parsed;
    try { parsed = JSON.parse(jsonArea.value); } catch (error) {
      jsonError.textContent = tr("json_invalid", { error: error.message });
      return false;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      jsonError.textContent = tr("json_object");
      return false;
    }
    jsonError.textContent = "";
    change(() => { state.doc = parsed; }, { coalesce: "$json" });
    return true;
  }
  jsonArea.addEventListener("input", () => {
    clearTimeout(jsonTimer);
    jsonTimer = setTimeout(applyJson, 300);
  });
  jsonArea.addEventListener("blur", () => {
    if (jsonTimer) applyJson();
    state.coalesce = null;
  });

  function renderToolbar() {
    $('[data-act="undo"]').disabled = !state.undo.length;
    $('[data-act="redo"]').disabled = !state.redo.length;
    $('[data-act="duplicate"]').disabled = !state.selected;
    $('[data-act="delete"]').disabled = !state.selected;
    root.dataset.dirty = JSON.stringify(state.doc) === state.saved ? "false" : "true";
  }

  const statusLine = $("[data-studio-status]");
  function status(text, kind) {
    statusLine.textContent = text;
    statusLine.dataset.kind = kind || "";
  }

  async function save() {
    if (jsonTimer && !applyJson()) {
      status(tr("not_saved_json"), "error");
      return null;
    }
    clearTimeout(checkTimer);
    state.checkSeq += 1;  // a check under way is older than this save's answer
    status(tr("saving"));
    const body = JSON.stringify(state.doc);
    let result;
    try {
      result = await post(data.urls.save, body);
    } catch (_e) {
      status(tr("not_saved_offline"), "error");
      scheduleCheck();
      return null;
    }
    if (!result.ok) {
      showProblems(result.answer.errors || {});
      root.dataset.checking = "false";
      root.dataset.valid = "false";
      renderGraph();
      renderProblems();
      status(tr("not_saved", { message: result.answer.message || result.status }), "error");
      return null;
    }
    const saved = result.answer;
    const unchanged = body === state.saved && state.workflow === saved.name;
    state.saved = body;
    if (state.workflow !== saved.name) {
      state.workflow = saved.name;
      history.replaceState(null, "", saved.studio);
      const title = document.querySelector("[data-studio-title]");
      if (title) title.textContent = saved.name;
    }
    root.dataset.savedVersion = String(saved.version);
    status(tr(saved.created ? "created" : unchanged ? "unchanged" : "saved", saved)
      + (saved.hook_token ? ` ${tr("hook_token", { token: saved.hook_token })}` : ""), "ok");
    state.problems = [];
    renderToolbar();
    scheduleCheck(0);
    return saved;
  }

  // --- the toolbar and the keyboard ---------------------------------------------------------

  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-act]");
    if (!button) return;
    const act = button.dataset.act;
    if (act === "undo") travel(state.undo, state.redo);
    else if (act === "redo") travel(state.redo, state.undo);
    else if (act === "duplicate") duplicateSelected();
    else if (act === "delete") removeSelected();
    else if (act === "settings") select(null, { focus: false });
    else if (act === "arrange") arrange();
    else if (act === "save") save();
  });

  inspector.addEventListener("focusout", () => { state.coalesce = null; });

  document.addEventListener("keydown", (event) => {
    const mod = event.ctrlKey || event.metaKey;
    const typing = event.target.closest && event.target.closest("input, textarea, select");
    const key = event.key.toLowerCase();
    if (mod && key === "s") { event.preventDefault(); save(); return; }
    if (typing) return;  // the field's own undo and keys
    if (mod && key === "z" && !event.shiftKey) { event.preventDefault(); travel(state.undo, state.redo); }
    else if (mod && (key === "y" || (key === "z" && event.shiftKey))) { event.preventDefault(); travel(state.redo, state.undo); }
    else if (mod && key === "d" && state.selected) { event.preventDefault(); duplicateSelected(); }
    else if (key === "escape" && state.selected) { select(null, { focus: false }); }
  });

  canvas.addEventListener("click", (event) => {
    if (!event.target.closest("[data-node]") && !drag) select(null, { focus: false });
  });

  // --- what the simulator says runs, and what it may ask -------------------------------

  document.addEventListener("kabar:studio-step", (event) => {
    const detail = event.detail || {};
    const done = new Set();
    for (const step of detail.steps || []) {
      const id = typeof step === "string" ? step : step && step.node;
      if (id) done.add(id);
    }
    const current = detail.status === "done" ? null : (detail.node || null);
    if (current) done.delete(current);
    state.run = { node: current, done, status: detail.status || null };
    renderGraph();
  });

  window.kabarStudio = {
    document: () => JSON.parse(JSON.stringify(state.doc)),
    get workflow() { return state.workflow; },
    /** Save the draft as the Save button does; resolves to the saved workflow or null. */
    save: () => save(),
  };

  root.hidden = false;
  renderPalette();
  renderGraph();
  renderInspector();
  renderJson();
  renderToolbar();
  check();
}());
