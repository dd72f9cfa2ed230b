// The experiments list: re-drawn by the server when an experiment appears or changes status
// (the controller may stop one at any time), checked against GET /api/experiments.

import { every, getJSON, localTimes } from "./live.js";

export function start() {
  const holder = document.getElementById("experiment-list");
  const params = new URLSearchParams(holder.dataset.query || "");
  const filters = new URLSearchParams();
  for (const key of ["endpoint", "status"]) if (params.get(key)) filters.set(key, params.get(key));
  const query = filters.toString() ? `?${filters}` : "";
  every(5, async () => {
    const data = await getJSON(`/api/experiments${query}`);
    const revision = (data.experiments || []).map((e) => `${e.id}:${e.status}`).sort().join(",");
    if (revision === holder.dataset.revision) return;
    const sep = query ? "&" : "?";
    const response = await fetch(`/ui/experiments${query}${sep}fragment=list`,
      { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    holder.innerHTML = await response.text();
    holder.dataset.revision = revision;
    localTimes(holder);
  });
}
