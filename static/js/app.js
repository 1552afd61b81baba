// Behaviour htmx cannot express declaratively. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  const SENDING = "is-sending";
  const pressed = new WeakMap(); // form → the button that sent it
  const focusedBeforeSending = new WeakMap(); // form → its button that had the focus (disabling drops it)

  // --- Asking first ------------------------------------------------------------------------------------
  // A submit button with data-confirm="<question>" (delete, disable, deactivate, archive) asks it first;
  // Cancel sends nothing. Listens in the capture phase, before the "sending" feedback below and htmx.
  document.addEventListener("submit", function (event) {
    const question = event.submitter && event.submitter.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // --- Feedback while sending -------------------------------------------------------------------------
  // A form being posted says so at once and cannot be sent twice: its submit buttons are disabled, the one
  // pressed shows a spinner and, if it has data-sending-label, that text ("Sending…"). The buttons are
  // disabled on the next tick, once the browser has taken the pressed button's name and value.

  function buttonsOf(form) {
    return Array.from(form.elements).filter(function (element) {
      return element.matches('button:not([type="button"]):not([type="reset"]), input[type="submit"]');
    });
  }

  function showSending(form) {
    if (buttonsOf(form).includes(document.activeElement)) focusedBeforeSending.set(form, document.activeElement);
    buttonsOf(form).forEach(function (button) {
      if (!button.disabled) {
        button.dataset.enabledBeforeSending = "1";
        button.disabled = true;
      }
    });
    // The pressed button, or the one a live-validation swap put in its place (same id, or name and value).
    let submitter = pressed.get(form);
    if (submitter && !submitter.isConnected) {
      submitter = buttonsOf(form).find(function (button) {
        return submitter.id ? button.id === submitter.id : button.name === submitter.name && button.value === submitter.value;
      });
    }
    if (submitter && !submitter.classList.contains(SENDING)) {
      submitter.classList.add(SENDING);
      if (submitter.dataset.sendingLabel) {
        submitter.dataset.labelBeforeSending = submitter.textContent;
        submitter.textContent = submitter.dataset.sendingLabel;
      }
    }
  }

  function markSending(form, submitter) {
    form.classList.add(SENDING);
    form.setAttribute("aria-busy", "true");
    if (submitter) pressed.set(form, submitter);
    setTimeout(function () { showSending(form); }, 0);
  }

  function clearSending(form) {
    form.classList.remove(SENDING);
    form.removeAttribute("aria-busy");
    buttonsOf(form).forEach(function (button) {
      if (button.dataset.enabledBeforeSending) {
        button.disabled = false;
        delete button.dataset.enabledBeforeSending;
      }
      button.classList.remove(SENDING);
      if (button.dataset.labelBeforeSending !== undefined) {
        button.textContent = button.dataset.labelBeforeSending;
        delete button.dataset.labelBeforeSending;
      }
    });
    // The disabled button lost the keyboard focus to the page; give it back, unless the person has moved on.
    const focused = focusedBeforeSending.get(form);
    focusedBeforeSending.delete(form);
    const lost = !document.activeElement || document.activeElement === document.body;
    if (focused && lost && focused.isConnected && !focused.disabled) focused.focus();
  }

  // Plain posts (htmx cancels the submit event of the forms it sends, so those are handled below).
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (event.defaultPrevented || (form.method || "").toLowerCase() !== "post") return;
    if (form.classList.contains(SENDING)) {
      event.preventDefault(); // already on its way: a second press sends nothing
      return;
    }
    markSending(form, event.submitter);
  });

  // While a form is on its way, nothing inside it asks htmx for more (live validation, a chain edit), and
  // whatever a request already under way swaps in keeps the "sending" state.
  document.addEventListener("htmx:beforeRequest", function (event) {
    const inside = event.detail.elt.closest && event.detail.elt.closest("form." + SENDING);
    if (inside) event.preventDefault();
  });
  // A reply to such a request that was already under way (live validation) is dropped rather than swapped:
  // it would put an enabled submit button back for the moment before the swap settles.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const elt = event.detail.elt;
    const form = elt.closest && elt.closest("form." + SENDING);
    if (form && form !== elt) event.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("form." + SENDING).forEach(showSending);
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.defaultPrevented) return;
    const form = event.detail.elt;
    const verb = (event.detail.requestConfig && event.detail.requestConfig.verb) || "";
    if (form instanceof HTMLFormElement && verb.toLowerCase() !== "get") {
      markSending(form, event.detail.requestConfig.triggeringEvent && event.detail.requestConfig.triggeringEvent.submitter);
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.detail.elt;
    if (form instanceof HTMLFormElement && form.isConnected) setTimeout(function () { clearSending(form); }, 0);
  });

  // Back to a page kept in the browser's cache: its forms are not being sent any more.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) document.querySelectorAll("form." + SENDING).forEach(clearSending);
  });

  // --- A request htmx could not complete --------------------------------------------------------------
  // htmx leaves the page as it was when the server answers with an error (4xx/5xx), the connection fails or
  // a request times out; without this the click or the typing would seem to do nothing. A message says so
  // at the top of the window (kept in view while scrolling), until the next request that succeeds or a
  // press on its "Dismiss" button.
  const ERROR_BOX = "request-error";

  function errorBox() {
    let box = document.getElementById(ERROR_BOX);
    if (box) return box;
    box = document.createElement("div");
    box.id = ERROR_BOX;
    box.className = "alert alert-error request-error";
    box.setAttribute("role", "alert");
    const text = document.createElement("span");
    text.className = "request-error-text";
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "linklike";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", hideRequestError);
    box.append(text, " ", dismiss);
    const main = document.getElementById("main");
    if (main) main.before(box); else document.body.prepend(box);
    return box;
  }

  function showRequestError(message) {
    errorBox().querySelector(".request-error-text").textContent = message;
  }

  function hideRequestError() {
    const box = document.getElementById(ERROR_BOX);
    if (box) box.remove();
  }

  document.addEventListener("htmx:responseError", function (event) {
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    showRequestError(status >= 500
      ? "Something went wrong on the server (error " + status + "); this part of the page was not updated. Try again, or reload the page."
      : "The server refused this request (error " + status + "); this part of the page was not updated. Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showRequestError("Could not reach the server: check your connection and try again. This part of the page was not updated.");
  });
  document.addEventListener("htmx:timeout", function () {
    showRequestError("The server took too long to answer; this part of the page was not updated. Try again.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) hideRequestError();
  });

  // --- A filter form follows the URL its results pushed ---------------------------------------------------
  // A <form data-follows-url> of filters whose results carry links of their own (the task list's sortable
  // column headers, its pager): when such a link swaps the results and pushes its URL, the form's fields take
  // that URL's values, so the next filter change keeps the new sort instead of sending the old one back.
  // Checkboxes are left alone (the links carry what the form already had), and so is the field being typed in.
  document.addEventListener("htmx:pushedIntoHistory", function (event) {
    const url = new URL(event.detail.path, window.location.href);
    document.querySelectorAll("form[data-follows-url]").forEach(function (form) {
      if (new URL(form.action, window.location.href).pathname !== url.pathname) return;
      Array.from(form.elements).forEach(function (field) {
        if (!field.name || field === document.activeElement || !url.searchParams.has(field.name)) return;
        if (["checkbox", "radio", "submit", "button", "file"].includes(field.type)) return;
        field.value = url.searchParams.get(field.name);
      });
    });
  });

  // --- A form's values in the page htmx keeps for Back ---------------------------------------------------
  // Before htmx pushes a new URL it keeps the page's HTML for the back button; that HTML has the fields'
  // values as the server sent them, not as typed since. In a <form data-history-keeps-values> (the builder,
  // whose provider tabs push a URL) the current values are written into the HTML first, so Back shows what
  // was typed beside the preview and errors drawn from it. Never a password. (Filter forms use
  // hx-history="false" instead: their fields have changed by the time the old page is kept.)
  document.addEventListener("htmx:beforeHistorySave", function () {
    document.querySelectorAll("form[data-history-keeps-values]").forEach(function (form) {
      Array.from(form.elements).forEach(function (field) {
        if (field instanceof HTMLSelectElement) {
          Array.from(field.options).forEach(function (option) { option.toggleAttribute("selected", option.selected); });
        } else if (field instanceof HTMLTextAreaElement) {
          field.textContent = field.value;
        } else if (field.type === "checkbox" || field.type === "radio") {
          field.toggleAttribute("checked", field.checked);
        } else if (field instanceof HTMLInputElement && field.type !== "password" && field.type !== "file") {
          field.setAttribute("value", field.value);
        }
      });
    });
  });

  // --- Enter in a one-line field -----------------------------------------------------------------------
  // In a form (or a part of one) with data-enter-button="<selector>", Enter presses that button, or does
  // nothing while it is disabled; never the form's first submit button (e.g. the builder's "Add a turn").
  // Without JavaScript the form's hidden default button plays this part.
  // A form whose live validation enables the button may be behind what was typed (Enter pressed before the
  // answer to the last keystroke came back). If it has an element with data-enter-check="<event>", Enter on
  // a disabled button sends that event to it (a validation of the form as it is now) and presses the button
  // once every request of the form has come back, if the button is then enabled.
  const ONE_LINE = ["text", "search", "email", "url", "tel", "number", "password", "date", "datetime-local", "time"];
  const enterAfterCheck = new WeakMap(); // form → the selector of the button Enter presses once checked

  function pressEnterButton(form, selector) {
    const button = document.querySelector(selector);
    if (button && !button.disabled && !form.classList.contains(SENDING)) form.requestSubmit(button);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.isComposing || event.defaultPrevented) return;
    const field = event.target;
    if (!(field instanceof HTMLInputElement) || !field.form || !ONE_LINE.includes(field.type)) return;
    const scope = field.closest("[data-enter-button]") || field.form;
    if (!scope.dataset.enterButton) return;
    event.preventDefault();
    const button = document.querySelector(scope.dataset.enterButton);
    const check = field.form.querySelector("[data-enter-check]");
    if (button && button.disabled && check && window.htmx && !field.form.classList.contains(SENDING)) {
      enterAfterCheck.set(field.form, scope.dataset.enterButton);
      window.htmx.trigger(check, check.dataset.enterCheck);
      return;
    }
    enterAfterCheck.delete(field.form);
    pressEnterButton(field.form, scope.dataset.enterButton);
  });

  // The check's answer has been swapped in (htmx starts a queued request before the next tick).
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.detail.elt.closest && event.detail.elt.closest("form");
    if (!form || !enterAfterCheck.has(form)) return;
    setTimeout(function () {
      if (!enterAfterCheck.has(form) || form.querySelector(".htmx-request")) return;
      const selector = enterAfterCheck.get(form);
      enterAfterCheck.delete(form);
      pressEnterButton(form, selector);
    }, 0);
  });

  // --- Copy buttons ------------------------------------------------------------------------------------
  // <button type="button" data-copy-target="#selector"> copies the text of the element the CSS selector
  // finds. Without the clipboard (plain-http deployments), the text is selected so Ctrl+C copies it.

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy-target]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copyTarget);
    if (!source) return;
    const label = button.textContent;
    function done(copied) {
      if (!copied) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
      button.textContent = copied ? "Copied" : "Selected: press Ctrl+C";
      button.disabled = true;
      setTimeout(function () {
        button.textContent = label;
        button.disabled = false;
      }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(
        function () { done(true); },
        function () { done(false); }
      );
    } else {
      done(false);
    }
  });
})();
