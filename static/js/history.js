// Task history: only what htmx cannot do declaratively. No inline scripts: the CSP forbids them.

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
