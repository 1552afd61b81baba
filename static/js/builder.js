// The request builder: only what htmx cannot do. Counters update as the person types (the server's
// live validation still reports the limits). The copy button of the curl command is app.js's.
(function () {
  "use strict";

  function updateCounter(counter) {
    const input = document.getElementById(counter.dataset.counterFor);
    if (!input) return;
    const limit = Number(counter.dataset.limit);
    // As the server counts: a line break once (the value has LF; the form posts CRLF, the server
    // normalises it) and a character outside the BMP (an emoji) once, not as two UTF-16 units.
    const length = Array.from(input.value).length;
    counter.textContent = length + " / " + limit;
    counter.classList.toggle("over-limit", length > limit);
  }

  function updateAllCounters(root) {
    root.querySelectorAll("[data-counter-for]").forEach(updateCounter);
  }

  document.addEventListener("input", function (event) {
    const target = event.target;
    if (!target.id) return;
    document.querySelectorAll('[data-counter-for="' + target.id + '"]').forEach(updateCounter);
  });

  document.addEventListener("DOMContentLoaded", function () { updateAllCounters(document); });
  document.addEventListener("htmx:afterSettle", function (event) { updateAllCounters(event.target); });
})();
