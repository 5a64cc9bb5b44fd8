// Small progressive enhancements; every page works without this file.
"use strict";

document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("[data-copy]");
  if (!btn) return;
  var el = document.getElementById(btn.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) return;
  navigator.clipboard.writeText(el.innerText.trim()).then(function () {
    var old = btn.textContent;
    btn.textContent = "✓";
    setTimeout(function () { btn.textContent = old; }, 1500);
  });
});

document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    ev.preventDefault();
  }
});

// Close the user menu when clicking elsewhere.
document.addEventListener("click", function (ev) {
  document.querySelectorAll("details.usermenu[open]").forEach(function (d) {
    if (!d.contains(ev.target)) d.removeAttribute("open");
  });
});

// ---- Inbox: live updates, reply-to, canned responses, window countdown, templates ----
(function () {
  var list = document.querySelector("[data-live-list]");
  var thread = document.querySelector("[data-live-thread]");

  function fetchInto(el, url, after) {
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { el.innerHTML = html; if (after) after(); } })
      .catch(function () {});
  }

  function nearBottom() {
    return thread.scrollTop + thread.clientHeight >= thread.scrollHeight - 120;
  }
  function toBottom() { thread.scrollTop = thread.scrollHeight; }

  function refreshList() {
    if (!list) return;
    fetchInto(list, list.getAttribute("data-live-list"), function () {
      var counts = list.querySelector("[data-tab-counts]");
      if (!counts) return;
      ["mine", "unassigned"].forEach(function (k) {
        var badge = document.querySelector('[data-count="' + k + '"]');
        if (badge) badge.textContent = counts.getAttribute("data-" + k) || "";
      });
    });
  }

  function refreshThread() {
    if (!thread) return;
    var stick = nearBottom();
    fetchInto(thread, thread.getAttribute("data-live-thread"), function () {
      if (stick) toBottom();
    });
  }

  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = 880; g.gain.value = 0.08;
      o.connect(g); g.connect(ctx.destination);
      o.start(); o.stop(ctx.currentTime + 0.15);
    } catch (e) {}
  }

  // A notification and a short sound for a customer's message to me or to nobody.
  function notify(u) {
    if (u.kind !== "inbound" || !u.for_me) return;
    if (thread && String(u.conversation) === thread.getAttribute("data-conversation") && !document.hidden) return;
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var n = new Notification(document.body.getAttribute("data-notify-title") || "WhatsApp", { tag: "wc-" + u.conversation });
    n.onclick = function () { window.focus(); location.href = "/inbox/" + u.conversation; };
    beep();
  }

  if ((list || thread) && "EventSource" in window) {
    var timer = null, pendingList = false, pendingThread = false;
    var es = new EventSource("/inbox/events");
    es.addEventListener("update", function (ev) {
      var u;
      try { u = JSON.parse(ev.data); } catch (e) { return; }
      if (list) pendingList = true;
      if (thread && String(u.conversation) === thread.getAttribute("data-conversation")) pendingThread = true;
      try { notify(u); } catch (e) {}
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (pendingList) refreshList();
        if (pendingThread) refreshThread();
        pendingList = pendingThread = false;
      }, 150);
    });
    es.addEventListener("resync", function () { refreshList(); refreshThread(); });
  }

  // Notifications: ask only when the agent clicks.
  var enable = document.querySelector("[data-notify-enable]");
  if (enable && "Notification" in window && Notification.permission === "default") {
    enable.hidden = false;
    enable.addEventListener("click", function () {
      Notification.requestPermission().then(function () { enable.hidden = true; });
    });
  }

  if (thread && !location.hash.match(/^#m\d+$/)) toBottom();

  // Reply to a specific message without reloading.
  document.addEventListener("click", function (ev) {
    var link = ev.target.closest("[data-reply]");
    var cancel = ev.target.closest("[data-reply-cancel]");
    var banner = document.querySelector("[data-replying]");
    if (!banner || (!link && !cancel)) return;
    ev.preventDefault();
    var id = link ? link.getAttribute("data-reply") : "";
    document.querySelectorAll("[data-reply-input]").forEach(function (i) { i.value = id; });
    banner.hidden = !link;
    var q = banner.querySelector("[data-replying-text]");
    if (q) q.textContent = link ? (link.getAttribute("data-reply-text") || "").slice(0, 140) : "";
    var input = document.querySelector("[data-composer]");
    if (input && link) input.focus();
  });

  // Canned responses: "/shortcut" in the reply box suggests, Tab or a click inserts.
  var box = document.querySelector("[data-composer]");
  var suggest = document.querySelector("[data-canned-suggest]");
  var canned = Array.prototype.slice.call(document.querySelectorAll("[data-canned]"));
  // A "/shortcut" typed alone is replaced by its text; otherwise the text goes in at the
  // cursor, keeping the draft around it.
  function insert(text) {
    if (/^\/\S*$/.test(box.value)) {
      box.value = text;
    } else {
      var start = box.selectionStart, end = box.selectionEnd, v = box.value;
      box.value = v.slice(0, start) + text + v.slice(end);
      box.selectionStart = box.selectionEnd = start + text.length;
    }
    if (suggest) suggest.hidden = true;
    box.focus();
  }
  if (box && suggest && canned.length) {
    box.addEventListener("input", function () {
      var v = box.value;
      suggest.innerHTML = "";
      if (v.charAt(0) !== "/" || /\s/.test(v)) { suggest.hidden = true; return; }
      var matches = canned.filter(function (b) { return b.getAttribute("data-shortcut").indexOf(v.slice(1).toLowerCase()) === 0; });
      matches.slice(0, 6).forEach(function (b) {
        var opt = document.createElement("button");
        opt.type = "button"; opt.className = "secondary small";
        opt.textContent = "/" + b.getAttribute("data-shortcut");
        opt.title = b.getAttribute("data-canned");
        opt.addEventListener("click", function () { insert(b.getAttribute("data-canned")); });
        suggest.appendChild(opt);
      });
      suggest.hidden = matches.length === 0;
    });
    box.addEventListener("keydown", function (ev) {
      if (ev.key !== "Tab" || suggest.hidden) return;
      var first = suggest.querySelector("button");
      if (first) { ev.preventDefault(); first.click(); }
    });
  }
  canned.forEach(function (b) {
    b.addEventListener("click", function () { if (box) insert(b.getAttribute("data-canned")); });
  });
  // Ctrl/Cmd+Enter sends.
  if (box) box.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); box.form.requestSubmit(); }
  });

  // The 24-hour window counts down; when it closes the page shows the template form.
  var win = document.querySelector("[data-deadline]");
  if (win) {
    var deadline = parseInt(win.getAttribute("data-deadline"), 10);
    var fmt = win.getAttribute("data-format") || "{h} h {m} min";
    setInterval(function () {
      var left = deadline - Math.floor(Date.now() / 1000);
      if (left <= 0) { location.reload(); return; }
      win.textContent = fmt.replace("{h}", Math.floor(left / 3600)).replace("{m}", Math.floor((left % 3600) / 60));
    }, 30000);
  }

  // Templates: choosing one shows its fields; the preview follows the typing.
  var tselect = document.querySelector("[data-template-select]");
  if (tselect) tselect.addEventListener("change", function () {
    var f = tselect.form, a = document.createElement("input");
    a.type = "hidden"; a.name = "action"; a.value = "choose";
    f.appendChild(a); f.submit();
  });
  var preview = document.querySelector("[data-template-preview]");
  if (preview) {
    var params = document.querySelectorAll("[data-param]");
    var render = function () {
      var text = preview.getAttribute("data-body");
      params.forEach(function (p) {
        var n = p.getAttribute("data-param");
        text = text.split("{{" + n + "}}").join(p.value || "{{" + n + "}}");
      });
      preview.textContent = text;
    };
    params.forEach(function (p) { p.addEventListener("input", render); });
  }
})();

// Counters for limited fields: "n of max characters", marked when over (the server
// refuses and names the limit; nothing is cut silently). The wording comes from the
// page (data-counter-text on <body>: "{n} of {max} characters").
(function () {
  var text = document.body.getAttribute("data-counter-text") || "{n} / {max}";
  Array.prototype.forEach.call(document.querySelectorAll("[data-counter-for]"), function (out) {
    var field = document.getElementById(out.getAttribute("data-counter-for"));
    if (!field) return;
    var max = parseInt(field.getAttribute("data-limit"), 10);
    function show() {
      var n = Array.from(field.value).length;
      out.hidden = n < max * 0.8;
      out.textContent = text.replace("{n}", n.toLocaleString()).replace("{max}", max.toLocaleString());
      out.classList.toggle("over", n > max);
      field.setAttribute("aria-invalid", n > max ? "true" : "false");
    }
    field.addEventListener("input", show);
    show();
  });
})();

// ---- Contact import: the progress bar follows the run, then the report appears ----
(function () {
  var box = document.querySelector("[data-import-progress]");
  if (!box) return;
  var bar = box.querySelector("progress");
  var done = box.querySelector("[data-progress-done]");
  var total = box.querySelector("[data-progress-total]");
  function poll() {
    fetch(box.getAttribute("data-import-progress"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) { setTimeout(poll, 5000); return; }
        bar.max = p.total; bar.value = p.processed;
        done.textContent = p.processed; total.textContent = p.total;
        if (p.state === "done" || p.state === "failed") { window.location.reload(); return; }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
