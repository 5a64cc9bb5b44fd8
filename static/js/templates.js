// The template form's live preview: the bubble is redrawn as you type, and one
// example field appears for each variable of the body. Without this file the
// "Preview" button does the same on the server. Text only (textContent), never HTML.
"use strict";
(function () {
  var form = document.querySelector("[data-template-form]");
  if (!form) return;
  var $ = function (id) { return document.getElementById(id); };
  var field = function (name) { var el = form.elements[name]; return el ? el.value : ""; };

  function vars(text) {
    var out = [], re = /\{\{([^{}]*)\}\}/g, m;
    while ((m = re.exec(text)) !== null) if (out.indexOf(m[1]) < 0) out.push(m[1]);
    return out;
  }

  function fill(text, examples) {
    return text.replace(/\{\{([^{}]*)\}\}/g, function (all, name) {
      var v = (examples[name] || "").trim();
      return v ? v : all;
    });
  }

  // One example input per variable of the body, keeping what was typed.
  function syncExamples() {
    var box = form.querySelector("[data-examples]");
    if (!box) return {};
    var wanted = vars(field("body")), examples = {};
    box.querySelectorAll("[data-example-var]").forEach(function (row) {
      var name = row.getAttribute("data-example-var");
      if (wanted.indexOf(name) < 0) row.remove();
    });
    wanted.forEach(function (name) {
      var row = box.querySelector('[data-example-var="' + CSS.escape(name) + '"]');
      if (!row) {
        row = document.createElement("label");
        row.setAttribute("data-example-var", name);
        row.appendChild(document.createTextNode(box.getAttribute("data-label") + " "));
        var code = document.createElement("code");
        code.textContent = "{{" + name + "}}";
        row.appendChild(code);
        var input = document.createElement("input");
        input.type = "text"; input.name = "example_" + name; input.maxLength = 200;
        row.appendChild(input);
        box.appendChild(row);
      }
      examples[name] = row.querySelector("input").value;
    });
    return examples;
  }

  function show(el, text) {
    el.textContent = text;
    el.hidden = text === "";
  }

  function redraw() {
    var examples = syncExamples();
    var format = field("header_format");
    var media = $("pv-media");
    if (["image", "video", "document"].indexOf(format) >= 0) {
      media.textContent = media.getAttribute("data-" + format);
      media.hidden = false;
    } else {
      media.hidden = true;
    }
    var header = "";
    if (format === "text") {
      var ex = {};
      vars(field("header_text")).forEach(function (n) { ex[n] = field("header_example"); });
      header = fill(field("header_text"), ex);
    }
    show($("pv-header"), header);
    $("pv-body").textContent = fill(field("body"), examples);
    show($("pv-footer"), field("footer"));
    var buttons = $("pv-buttons");
    while (buttons.firstChild) buttons.removeChild(buttons.firstChild);
    form.querySelectorAll("[data-button-row]").forEach(function (row) {
      var kind = row.querySelector('[data-pv="button_type"]').value;
      if (!kind || kind === "none") return;
      var b = document.createElement("span");
      b.className = "wa-button wa-" + kind;
      b.textContent = kind === "copy_code" ? buttons.getAttribute("data-copy-code")
        : row.querySelector('[data-pv="button_text"]').value;
      buttons.appendChild(b);
    });
  }

  form.addEventListener("input", redraw);
  form.addEventListener("change", redraw);
  redraw();
})();
