/* The studio's simulator pane (templates/ui/studio/_simulator.html).
 *
 * It shows the state the server renders (GET .../simulator/state: the conversation and
 * the newest run as HTML, the run as JSON), refreshed when the event stream (/events,
 * the simulator's session only) says a message or a run moved, and after each action.
 * Its forms work without this script too (they post and come back); with it they post
 * in the background. Each refresh tells the graph where the run is:
 *
 *   document.dispatchEvent(new CustomEvent("kabar:studio-step", {detail: {run, node,
 *     status: "running"|"waiting"|"done"|"failed", steps}}))
 *
 * The studio's editor highlights that node. On a page without the editor
 * (window.kabarStudio absent), the server-drawn graph on the page is marked instead.
 * No inline script: the CSP forbids it. */
(function () {
  "use strict";

  var TYPES = ["message.received", "message.sent", "message.status", "workflow.completed",
               "workflow.failed"];

  function start(pane) {
    var stateUrl = pane.getAttribute("data-state-url");
    var streamUrl = pane.getAttribute("data-stream");
    var csrf = pane.getAttribute("data-csrf");
    var messages = pane.querySelector("[data-sim-messages]");
    var runBox = pane.querySelector("[data-sim-run]");
    var status = pane.querySelector("[data-sim-status]");
    var hookAnswer = pane.querySelector("[data-sim-hook-answer]");
    var source = null, sourceSession = null, timer = null, lastSent = null, loading = false;
    var again = false;

    function say(text, isError) {
      status.textContent = text || "";
      status.classList.toggle("error-text", !!isError);
    }

    function apply(state) {
      messages.innerHTML = state.html.messages;
      messages.scrollTop = messages.scrollHeight;
      // A step someone opened stays open across refreshes.
      var open = Array.prototype.map.call(runBox.querySelectorAll("li[data-step] details[open]"),
        function (details) { return details.parentNode.getAttribute("data-step"); });
      runBox.innerHTML = state.html.run;
      open.forEach(function (step) {
        var details = runBox.querySelector('li[data-step="' + step + '"] details');
        if (details) details.open = true;
      });
      pane.setAttribute("data-ready", state.ready ? "yes" : "no");
      pane.setAttribute("data-run-status", state.run ? state.run.status : "");
      if (state.session) listen(state.session.id);
      saved = canonical(state.doc);
      checkUnsaved();
      tellGraph(state.run);
      tick();
    }

    // The simulator runs the saved version: say so while the editor's draft differs.
    var saved = null;
    var unsaved = pane.querySelector("[data-sim-unsaved]");
    function checkUnsaved() {
      var studio = window.kabarStudio;
      if (!unsaved || !studio || typeof studio.document !== "function" || saved === null) return;
      var draft;
      try { draft = canonical(studio.document()); } catch (error) { return; }
      unsaved.hidden = draft === saved;
    }
    setInterval(checkUnsaved, 1500);

    function tellGraph(run) {
      var detail = run ? {run: run.id, node: run.node, status: run.status, steps: run.steps}
                       : {run: null, node: null, status: "done", steps: []};
      var key = JSON.stringify([detail.run, detail.node, detail.status, detail.steps.length]);
      if (key === lastSent) return;
      lastSent = key;
      document.dispatchEvent(new CustomEvent("kabar:studio-step", {detail: detail}));
    }

    function refresh() {
      if (loading) { again = true; return; }
      loading = true;
      fetch(stateUrl, {headers: {"X-Kabar-Fragment": "1"}, credentials: "same-origin"})
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.json() : null;
        })
        .then(function (state) { if (state) apply(state); })
        .catch(function () {})
        .then(function () {
          loading = false;
          if (again) { again = false; refresh(); }
        });
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 150);
    }

    // The event stream of the simulator's session only (made on first use).
    function listen(sessionId) {
      if (!window.EventSource || !streamUrl || sessionId === sourceSession) return;
      if (source) source.close();
      sourceSession = sessionId;
      var params = new URLSearchParams({session: sessionId, type: TYPES.join(",")});
      source = new EventSource(streamUrl + "?" + params.toString());
      TYPES.forEach(function (type) { source.addEventListener(type, schedule); });
      source.addEventListener("open", function () { pane.setAttribute("data-live", "open"); });
    }
    window.addEventListener("pagehide", function () { if (source) source.close(); });

    // The wait's countdown, from its "until" (the server's time, in UTC).
    var ticking = null;
    function tick() {
      clearInterval(ticking);
      var span = pane.querySelector("[data-sim-countdown]");
      if (!span || !span.getAttribute("data-until")) return;
      var until = Date.parse(span.getAttribute("data-until"));
      function show() {
        var left = Math.max(0, Math.round((until - Date.now()) / 1000));
        var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
        span.textContent = "(" + (h ? h + ":" : "") + (h && m < 10 ? "0" : "") + m + ":" +
                           (s < 10 ? "0" : "") + s + ")";
      }
      show();
      ticking = setInterval(show, 1000);
    }

    pane.addEventListener("submit", function (event) {
      var form = event.target.closest("form[data-sim-action]");
      if (!form) return;
      event.preventDefault();
      var body = new FormData(form);
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      say(pane.getAttribute("data-ready") === "yes" ? "" : "…");
      fetch(form.action, {method: "POST", body: body, credentials: "same-origin",
                          headers: {"X-Kabar-Fragment": "1", "X-CSRFToken": csrf}})
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          if (!response.ok) {
            return response.text().then(function (text) { say(text, true); return null; });
          }
          return response.json();
        })
        .then(function (state) {
          if (!state) return;
          say("");
          var text = form.querySelector("input[name=text]");
          if (text) { text.value = ""; text.focus(); }
          if (state.hook && hookAnswer) showHook(state.hook);
          else if (hookAnswer && form.hasAttribute("data-sim-reset")) hookAnswer.textContent = "";
          apply(state);
        })
        .catch(function () { say(pane.getAttribute("data-offline") || "offline", true); })
        .then(function () { if (button) button.disabled = false; });
    });

    function showHook(answer) {
      hookAnswer.textContent = "";
      var head = document.createElement("p");
      head.setAttribute("data-hook-status", answer.status);
      head.textContent = "HTTP " + answer.status + " · " + answer.content_type;
      var pre = document.createElement("pre");
      pre.className = "code";
      pre.textContent = answer.body;
      hookAnswer.appendChild(head);
      hookAnswer.appendChild(pre);
    }

    refresh();
  }

  // JSON with keys sorted, to compare two documents whatever their key order.
  function canonical(value) {
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (value && typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (key) {
        return JSON.stringify(key) + ":" + canonical(value[key]);
      }).join(",") + "}";
    }
    return JSON.stringify(value === undefined ? null : value);
  }

  // Without the studio's editor, mark the server-drawn graph on this page.
  document.addEventListener("kabar:studio-step", function (event) {
    if (window.kabarStudio) return;  // the editor highlights its own graph
    var graph = document.querySelector("svg.graph");
    if (!graph) return;
    var detail = event.detail;
    var visited = {};
    (detail.steps || []).forEach(function (step) { visited[step.node] = true; });
    graph.querySelectorAll("[data-node]").forEach(function (node) {
      var id = node.getAttribute("data-node");
      node.classList.toggle("visited", !!visited[id]);
      node.classList.toggle("at-waiting", detail.status === "waiting" && detail.node === id);
      node.classList.toggle("at-failed", detail.status === "failed" && detail.node === id);
      node.classList.toggle("at-running", detail.status === "running" && detail.node === id);
      if (detail.node === id) node.setAttribute("data-current", detail.status);
      else node.removeAttribute("data-current");
    });
  });

  function boot() {
    var pane = document.querySelector("#simulator[data-state-url]");
    if (pane && !pane.hasAttribute("data-started")) {
      pane.setAttribute("data-started", "");
      start(pane);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
