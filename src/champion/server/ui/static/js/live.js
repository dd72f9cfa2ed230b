// Fetching the JSON API with the session cookie, refreshing a page's figures, DOM helpers.

import { when } from "./format.js";

const status = () => document.getElementById("live-status");

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET ``url`` from the JSON API; a 401 (session over) goes back to the sign-in page. */
export async function getJSON(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { accept: "application/json" },
    cache: "no-store",
  });
  if (response.status === 401) {
    const here = location.pathname + location.search;
    location.assign(`/ui/login?next=${encodeURIComponent(here)}`);
    throw new ApiError(401, "signed out");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

/** Run ``refresh`` now and then every ``seconds`` while the page is visible, and show how
 *  it went. A slow refresh waits longer for the next (four times its own duration), so an
 *  open tab never keeps the server busy computing a large report. */
export function every(seconds, refresh) {
  let timer = null;
  let running = false;
  let last = 0;
  const tick = async () => {
    if (running) return;
    running = true;
    clearTimeout(timer);
    const started = performance.now();
    try {
      await refresh();
      const el = status();
      if (el) {
        el.classList.remove("stale");
        el.textContent = `updated ${new Date().toLocaleTimeString()}`;
      }
    } catch (err) {
      const el = status();
      if (el && !(err instanceof ApiError && err.status === 401)) {
        el.classList.add("stale");
        el.textContent = `update failed: ${err.message}`;
      }
    } finally {
      running = false;
      last = performance.now() - started;
      timer = setTimeout(() => { if (!document.hidden) tick(); }, Math.max(seconds * 1000, 4 * last));
    }
  };
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  return tick();
}

/** Run ``fn`` over ``items`` with at most ``limit`` at a time. */
export async function pool(items, limit, fn) {
  let next = 0;
  let failed = null;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try { await fn(item); } catch (err) { failed = failed || err; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed;
}

/** A DOM element: ``el("td", {class: "num"}, "12")``. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Times in the reader's own time zone (the server writes them in UTC). */
export function localTimes(root = document) {
  for (const t of root.querySelectorAll("time[data-ts]")) {
    const ts = Number(t.dataset.ts);
    if (Number.isFinite(ts) && ts > 0) {
      t.title = t.textContent;
      t.textContent = when(ts);
    }
  }
}
