// The dashboard's script: what every page shares, then the page's own part.

import { localTimes } from "./live.js";

/** Forms that change something ask first, in a dialog (the server asks too, without it). */
function confirmations() {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  let pending = null;
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("form.action[data-confirm]")) return;
    if (form.dataset.confirmed === "yes") return;
    event.preventDefault();
    const question = form.dataset.confirm.replace(/\{(\w+)\}/g, (_, name) => {
      const field = form.elements.namedItem(name);
      if (!field) return "";
      if (field instanceof HTMLSelectElement) {
        const option = field.selectedOptions[0];
        return option ? option.dataset.label || option.textContent.trim() : field.value;
      }
      return field.value;
    });
    const reason = form.elements.namedItem("reason");
    const text = document.getElementById("confirm-text");
    text.textContent = question + (reason && reason.value ? ` Reason: “${reason.value}”.` : "");
    pending = form;
    dialog.returnValue = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    const form = pending;
    pending = null;
    if (!form || dialog.returnValue !== "ok") return;
    const yes = document.createElement("input");
    yes.type = "hidden";
    yes.name = "confirmed";
    yes.value = "yes";
    form.append(yes);
    form.dataset.confirmed = "yes";
    form.submit();
  });
}

localTimes();
confirmations();

const page = document.body.dataset.page;
const modules = {
  deployments: "./deployments.js",
  deployment: "./deployment.js",
  experiment: "./experiment.js",
  experiments: "./experiments.js",
};
if (modules[page]) {
  import(modules[page]).then((m) => m.start()).catch((err) => {
    const status = document.getElementById("live-status");
    if (status) { status.classList.add("stale"); status.textContent = `the page script failed: ${err.message}`; }
    throw err;
  });
}
