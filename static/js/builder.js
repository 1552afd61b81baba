// The request builder: only what htmx cannot do. Counters update as the person types (the server's
// live validation still reports the limits); the checks' answers update the submit button in place. The
// copy button of the curl command is app.js's.
(function () {
  "use strict";

  function updateCounter(counter) {
    const input = document.getElementById(counter.dataset.counterFor);
    if (!input) return;
    const limit = Number(counter.dataset.limit);
    // As the server counts: a line break once (the value has LF; the form posts CRLF, the server
    // normalises it), a character outside the BMP (an emoji) once, not as two UTF-16 units, and not the
    // spaces and line breaks around the text, which are not sent.
    const length = Array.from(input.value.trim()).length;
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

  // Back to the builder (after a submit, say) or a reload: the browser puts back what was typed after the
  // page's own validation has run on the empty form, so the errors, the preview and the submit button would
  // describe an empty request. Validate again, and recount, once the fields hold what the person sees.
  window.addEventListener("pageshow", function (event) {
    const navigation = performance.getEntriesByType("navigation")[0];
    if (!event.persisted && (!navigation || navigation.type === "navigate")) return;
    updateAllCounters(document);
    const revalidate = document.querySelector("#builder-form .revalidate");
    if (revalidate && window.htmx) window.htmx.trigger(revalidate, "revalidate");
  });
  document.addEventListener("htmx:afterSettle", function (event) { updateAllCounters(event.target); });

  // A check's answer carries the submit button as the server draws it now. The button on the page takes its
  // state (disabled or not, what describes it, its label with the charge) and stays: a replaced button
  // loses a press under way (mousedown on the old one, mouseup after the answer), and nothing is submitted.
  // The reasons beside it (role="status") stay too: a live region replaced at each check is a new region, and
  // what a screen reader announces of it depends on the reader; kept, it announces the reasons when they change.
  const keptInPlace = {
    "submit-reason": function (reasons, drawn) {
      reasons.hidden = drawn.hidden;
      if (reasons.innerHTML !== drawn.innerHTML) reasons.innerHTML = drawn.innerHTML;
    },
    "submit-button": function (button, drawn) {
      const description = drawn.getAttribute("aria-describedby");
      if (description) button.setAttribute("aria-describedby", description);
      else button.removeAttribute("aria-describedby");
      if (button.classList.contains("is-sending")) {
        // Pressed and being sent (app.js): it stays disabled and says "Sending…"; the state drawn now is what
        // it gets back if the page stays (an error shown beside the form).
        if (drawn.disabled) delete button.dataset.enabledBeforeSending;
        else button.dataset.enabledBeforeSending = "1";
        button.dataset.labelBeforeSending = drawn.textContent;
        return;
      }
      button.disabled = drawn.disabled;
      if (button.textContent !== drawn.textContent) button.textContent = drawn.textContent;
    },
  };
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    const element = event.detail.target;
    const update = Object.hasOwn(keptInPlace, element.id) ? keptInPlace[element.id] : null;
    const drawn = update && event.detail.fragment.querySelector("#" + element.id);
    if (!drawn) return;
    event.detail.shouldSwap = false;
    update(element, drawn);
  });
})();
