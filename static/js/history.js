// Task history: only what htmx cannot do declaratively. No inline scripts: the CSP forbids them.

// Copy buttons: <button class="copy" data-copy-target="#selector"> copies that element's text.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copyTarget);
  if (!source) return;
  const text = source.textContent;
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      copied = true;
    }
  } catch (error) {
    copied = false;
  }
  if (!copied) {
    // Fallback for plain-http deployments: select the text so Ctrl+C works.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  const label = button.textContent;
  button.textContent = copied ? "Copied" : "Selected: press Ctrl+C";
  button.disabled = true;
  setTimeout(() => {
    button.textContent = label;
    button.disabled = false;
  }, 1500);
});

// Domain frequency bars: width from data-n, set through the CSSOM (allowed by the CSP, unlike style="").
function sizeBars(root) {
  const bars = root.querySelectorAll(".domains .bar[data-n]");
  let max = 0;
  bars.forEach((bar) => { max = Math.max(max, Number(bar.dataset.n) || 0); });
  bars.forEach((bar) => {
    const share = max ? (Number(bar.dataset.n) || 0) / max : 0;
    bar.style.setProperty("--share", share.toFixed(3));
  });
}
document.addEventListener("DOMContentLoaded", () => sizeBars(document));
document.addEventListener("htmx:afterSwap", (event) => sizeBars(event.target));
