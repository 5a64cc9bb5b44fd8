// The bot editor's small helpers: character counters (a button title 20, a list row
// title 24 when more than three choices, a description 72), showing only the fields a
// step's type or an action's kind uses, and reading a chosen JSON file into the import
// box. The server checks everything again; without this file every field shows.
"use strict";
(function () {
  function counter(input, max) {
    var out = input.parentNode.querySelector(".counter");
    if (!out) {
      out = document.createElement("span");
      out.className = "counter";
      out.setAttribute("aria-live", "polite");
      input.insertAdjacentElement("afterend", out);
    }
    var n = Array.from(input.value).length;
    out.textContent = n + "/" + max;
    out.classList.toggle("over", n > max);
  }

  function titleMax(box) {
    var rows = 0;
    box.querySelectorAll(".choice-row").forEach(function (row) {
      var filled = Array.from(row.querySelectorAll("input")).slice(0, 2).some(function (i) { return i.value.trim() !== ""; });
      if (filled) rows += 1;
    });
    return rows > 3 ? 24 : 20;
  }

  function refresh(scope) {
    scope.querySelectorAll("[data-max]").forEach(function (i) { counter(i, parseInt(i.getAttribute("data-max"), 10)); });
    scope.querySelectorAll("[data-choices]").forEach(function (box) {
      var max = titleMax(box);
      box.querySelectorAll("[data-title]").forEach(function (i) { counter(i, max); });
    });
  }

  document.addEventListener("input", function (e) {
    var box = e.target.closest("[data-choices]");
    refresh(box || e.target.parentNode);
  });

  // A step shows the fields of its type.
  function showStep(step) {
    var sel = step.querySelector("[data-step-type]");
    if (!sel) return;
    step.querySelectorAll("[data-for]").forEach(function (part) {
      part.hidden = part.getAttribute("data-for").split(" ").indexOf(sel.value) < 0;
    });
    var choices = step.querySelector("[data-for~='menu'] [data-choices]");
    if (choices) choices.hidden = sel.value !== "menu";
  }

  // An action shows the reply editor or the flow picker by the chosen kind.
  function showAction(form) {
    var chosen = form.querySelector("input[type=radio][name$='_do']:checked");
    form.querySelectorAll("[data-when]").forEach(function (part) {
      part.hidden = !chosen || part.getAttribute("data-when") !== chosen.value;
    });
  }

  document.addEventListener("change", function (e) {
    var step = e.target.closest("[data-step]");
    if (step && e.target.matches("[data-step-type]")) showStep(step);
    var form = e.target.closest("[data-action-form]");
    if (form && e.target.matches("input[type=radio]")) showAction(form);
    if (e.target.matches("[data-load-into]") && e.target.files && e.target.files[0]) {
      var into = document.getElementById(e.target.getAttribute("data-load-into"));
      e.target.files[0].text().then(function (t) { if (into) into.value = t; });
    }
  });

  document.querySelectorAll("[data-step]").forEach(showStep);
  document.querySelectorAll("[data-action-form]").forEach(showAction);
  refresh(document);
})();
