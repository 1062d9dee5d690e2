// cachekit console: keyboard labelling on the review page. Plain script, no build step.
// Labels go to POST review/label with the page's CSRF token; without script the
// forms under each item do the same.
"use strict";

(function () {
  if (document.body.dataset.page !== "review") return;
  const base = document.body.dataset.base || "";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const items = Array.from(document.querySelectorAll("#queue .item"));
  let current = 0;

  function focus(i) {
    if (!items.length) return;
    current = Math.max(0, Math.min(items.length - 1, i));
    items.forEach((el, j) => el.classList.toggle("current", j === current));
    items[current].focus({ preventScroll: false });
    items[current].scrollIntoView({ block: "nearest" });
  }

  async function label(value) {
    const item = items[current];
    if (!item) return;
    const state = item.querySelector(".label-state");
    state.textContent = "saving…";
    try {
      const response = await fetch(base + "/review/label", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ id: item.dataset.id, label: value }),
      });
      const reply = await response.json();
      if (!response.ok || !reply.ok) throw new Error(reply.error || response.statusText);
      item.classList.remove("label-same", "label-different");
      item.classList.add("labelled", "label-" + reply.label);
      state.textContent = reply.label;
      focus(current + 1);
    } catch (err) {
      state.textContent = "not saved: " + err.message;
      item.classList.add("failed");
    }
  }

  items.forEach((el, i) => el.addEventListener("click", () => focus(i)));
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const readOnly = !document.querySelector(".label-form");
    switch (event.key) {
      case "j": case "ArrowDown": focus(current + 1); break;
      case "k": case "ArrowUp": focus(current - 1); break;
      case "s": case "1": if (!readOnly) label("same"); break;
      case "d": case "2": if (!readOnly) label("different"); break;
      default: return;
    }
    event.preventDefault();
  });
  focus(0);
})();
