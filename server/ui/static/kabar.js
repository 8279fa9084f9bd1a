/* Kabar dashboard: a little progressive enhancement. Every page works without it;
 * with it, live regions refresh themselves from the event stream, destructive forms
 * ask first, and secrets can be copied. No inline script: the CSP forbids it. */
(function () {
  "use strict";

  // Forms with data-confirm ask before they submit.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Buttons with data-copy="<id>" copy that field's value.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    field.select();
    var copied = function () { button.textContent = button.getAttribute("data-copied"); };
    if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(copied, function () {});
    else if (document.execCommand("copy")) copied();
  });

  // Print views: a button that prints the page.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });

  // Send box: show only the fields of the chosen kind (text, file, location).
  function showKind() {
    var chosen = document.querySelector("input[name=kind]:checked");
    if (!chosen) return;
    document.querySelectorAll("[data-kind]").forEach(function (element) {
      element.hidden = element.getAttribute("data-kind") !== chosen.getAttribute("data-show");
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.name === "kind") showKind();
  });

  function scrollToEnd(region) {
    if (region.hasAttribute("data-scroll-end")) region.scrollTop = region.scrollHeight;
  }

  // Live regions: <div data-live-src="fragment URL" data-live-events="type,type">.
  // One EventSource per page (the cookie-authenticated /events); each event of a type a
  // region listens to re-fetches that region's fragment (debounced). A region that holds
  // the keyboard focus waits until focus leaves it, so nobody loses their place.
  function startLive() {
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live-src]"));
    var stream = document.body.getAttribute("data-live-stream");
    if (!regions.length || !stream || !window.EventSource) return;
    var types = {};
    regions.forEach(function (region) {
      region.getAttribute("data-live-events").split(",").forEach(function (type) {
        if (type) types[type] = true;
      });
    });
    var params = new URLSearchParams();
    var session = document.body.getAttribute("data-live-session");
    if (session) params.set("session", session);
    params.set("type", Object.keys(types).join(","));
    params.set("after", document.body.getAttribute("data-live-after") || "0");
    var source = new EventSource(stream + "?" + params.toString());

    function refresh(region) {
      if (region.contains(document.activeElement) && document.activeElement !== document.body) {
        region.setAttribute("data-stale", "");
        return;
      }
      region.removeAttribute("data-stale");
      fetch(region.getAttribute("data-live-src"), {
        headers: {"X-Kabar-Fragment": "1"}, credentials: "same-origin"
      }).then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html === null) return;
        region.innerHTML = html;
        scrollToEnd(region);
        document.dispatchEvent(new CustomEvent("kabar:refreshed", {detail: region}));
      }).catch(function () {});
    }

    var timers = new Map();
    function schedule(region) {
      clearTimeout(timers.get(region));
      timers.set(region, setTimeout(function () { refresh(region); }, 250));
    }
    Object.keys(types).forEach(function (type) {
      source.addEventListener(type, function () {
        regions.forEach(function (region) {
          if (region.getAttribute("data-live-events").split(",").indexOf(type) >= 0) {
            schedule(region);
          }
        });
      });
    });
    regions.forEach(function (region) {
      region.addEventListener("focusout", function () {
        if (region.hasAttribute("data-stale")) setTimeout(function () { schedule(region); }, 0);
      });
    });
    document.body.setAttribute("data-live", "connecting");
    source.addEventListener("open", function () { document.body.setAttribute("data-live", "open"); });
    source.addEventListener("error", function () { document.body.setAttribute("data-live", "retrying"); });
  }

  // The chat open on the chat page is being read: when the chat list shows it unread
  // (on opening it, or when a message arrives while it is open), post its "Mark read"
  // form, as WhatsApp does when a chat is on screen. Without JavaScript the button stays.
  var marking = false;
  function markOpenChatRead() {
    var form = document.querySelector("form[data-mark-read]");
    var badge = document.querySelector(".chat-list .current .badge.unread");
    if (!form || !badge || marking) return;
    marking = true;
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                        headers: {"X-Kabar-Fragment": "1"}})
      .then(function (response) { if (response.ok && badge.parentNode) badge.remove(); })
      .catch(function () {})
      .then(function () { marking = false; });
  }
  document.addEventListener("kabar:refreshed", markOpenChatRead);

  document.addEventListener("DOMContentLoaded", function () {
    markOpenChatRead();
    showKind();
    document.querySelectorAll("[data-scroll-end]").forEach(scrollToEnd);
    startLive();
  });
})();
