// The campaign page's live counts: every few seconds the progress JSON redraws the
// bar, the funnel and the counts by state. Without this file the page shows the
// counts as they were when it loaded (a reload brings them up to date).
"use strict";
(function () {
  var box = document.querySelector("[data-progress]");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-progress");
  var shownState = box.getAttribute("data-state");
  var note = box.querySelector("[data-live-note]");
  var busy = false;

  function set(selector, value) {
    document.querySelectorAll(selector).forEach(function (el) { el.textContent = String(value); });
  }

  function draw(p) {
    // A new state (finished, paused by Meta...) changes the buttons: load the page again.
    if (p.state !== shownState) { window.location.reload(); return; }
    var bar = document.getElementById("progress-bar");
    if (bar) { bar.max = Math.max(p.planned, 1); bar.value = p.handled; bar.textContent = p.percent + "%"; }
    ["handled", "planned", "sent", "percent"].forEach(function (k) { set('[data-live="' + k + '"]', p[k]); });
    Object.keys(p.funnel).forEach(function (k) {
      set('[data-funnel="' + k + '"]', p.funnel[k]);
      var m = box.querySelector('[data-meter="' + k + '"]');
      if (m) { m.max = Math.max(p.planned, 1); m.value = p.funnel[k]; }
    });
    Object.keys(p.counts).forEach(function (k) {
      set('[data-count="' + k + '"]', p.counts[k]);
      var chip = box.querySelector('[data-count="' + k + '"]');
      if (chip && chip.parentNode.classList) chip.parentNode.classList.toggle("zero", p.counts[k] === 0);
    });
    if (note) note.hidden = false;
  }

  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) { if (p) draw(p); })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  window.setInterval(poll, 2500);
})();
