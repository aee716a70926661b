// The console's only script: SLA clocks count down on the page, and the language choice applies at once.
// Pages work without it; it only keeps the figures current between loads.
"use strict";

function tick() {
  const now = Date.now();
  for (const clock of document.querySelectorAll("[data-due]")) {
    const seconds = Math.round((Date.parse(clock.dataset.due) - now) / 1000);
    const span = Math.abs(seconds);
    const hours = Math.floor(span / 3600);
    const minutes = Math.floor((span % 3600) / 60);
    const text = (hours ? hours + "h " : "") + minutes + "m";
    clock.querySelector(".countdown").textContent =
      seconds >= 0 ? text + " " + clock.dataset.left : text + " " + clock.dataset.over;
    if (seconds < 0) {
      clock.classList.add("breached");
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 30000);
  for (const select of document.querySelectorAll("[data-submit-on-change]")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
