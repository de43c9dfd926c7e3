/* Service worker of the phone pages (scope /m/): the pages open with no network.
 *
 * Served by command.views.mobile.service_worker at /m/sw.js, which prepends
 * CITYOPS_SW_VERSION, CITYOPS_SHELL_ASSETS (the pages' CSS and scripts, hashed names in
 * production) and CITYOPS_SHELL_PAGES (/m/ and /m/tasks/).
 *
 * - pages under /m/: network first; a copy of each successful answer is kept, and shown when
 *   the network fails or is slower than PAGE_TIMEOUT_MS (the page then says from when it is);
 * - static files: from the cache, refreshed in the background;
 * - everything else (the API, the task list fragment, sign-in): the network only. Reports
 *   waiting for the network live in the page's outbox (IndexedDB), not here.
 *
 * The cache is the signed-in user's: the page deletes it on sign-out.
 */
/* global CITYOPS_SW_VERSION, CITYOPS_SHELL_ASSETS, CITYOPS_SHELL_PAGES */
"use strict";

const CACHE = `cityops-m-${CITYOPS_SW_VERSION}`;
const SCOPE_PATH = new URL(self.registration.scope).pathname;
const PAGE_TIMEOUT_MS = 6000;
const OFFLINE_PAGE = `<!doctype html><html lang="zh-Hans"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>离线 Offline · CityOps</title>
<body style="font-family: system-ui, sans-serif; padding: 24px; line-height: 1.6">
<h1 style="font-size: 20px">当前离线 · Offline</h1>
<p>此页面尚未保存在本机，请在有网络时打开。<br>This page has not been saved on this phone yet.</p>
<p><a href="${SCOPE_PATH}" style="font-size: 18px">返回上报 · Back to reporting</a></p>
</body></html>`;

/** A copy of a response that remembers when it was stored. */
async function stamped(response) {
  const headers = new Headers(response.headers);
  headers.set("X-Cached-At", new Date().toISOString());
  const body = await response.blob();
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

function keepable(response) {
  return response && response.ok && !response.redirected && response.type === "basic";
}

async function keepPage(url, response) {
  if (!keepable(response)) return;
  const cache = await caches.open(CACHE);
  await cache.put(url, await stamped(response));
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(CITYOPS_SHELL_ASSETS);
      for (const url of CITYOPS_SHELL_PAGES) {
        try {
          const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
          await keepPage(url, response);
        } catch (error) {
          // Offline while installing: the pages are kept the next time they load.
        }
      }
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("cityops-m-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/** A kept page, marked so that the page can say it is not fresh. */
async function fromCache(url) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(url, { ignoreVary: true });
  if (!kept) return null;
  const html = await kept.text();
  const at = kept.headers.get("X-Cached-At") || "";
  const marked = html.replace("<head>", `<head><meta name="m-cached-at" content="${at}">`);
  return new Response(marked, { status: 200, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

function offlinePage() {
  return new Response(OFFLINE_PAGE, {
    status: 503,
    headers: { "Content-Type": "text/html; charset=utf-8" },
  });
}

async function page(event) {
  const url = new URL(event.request.url);
  const key = url.origin + url.pathname + url.search;
  const network = fetch(event.request);
  // Registered first, so the copy is taken before the page reads the body.
  event.waitUntil(
    network.then((response) => keepPage(key, response.clone())).catch(() => undefined),
  );
  let timer;
  const slow = new Promise((resolve) => {
    timer = setTimeout(() => resolve("slow"), PAGE_TIMEOUT_MS);
  });
  try {
    const first = await Promise.race([network, slow]);
    if (first !== "slow") return first;
    const kept = await fromCache(key);
    return kept || (await network);
  } catch (error) {
    return (await fromCache(key)) || offlinePage();
  } finally {
    clearTimeout(timer);
  }
}

async function asset(event) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(event.request);
  const refresh = fetch(event.request)
    .then(async (response) => {
      if (keepable(response)) await cache.put(event.request, response.clone());
      return response;
    })
    .catch(() => null);
  if (kept) {
    event.waitUntil(refresh);
    return kept;
  }
  return (await refresh) || new Response("", { status: 504 });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith(SCOPE_PATH)) {
    event.respondWith(page(event));
  } else if (CITYOPS_SHELL_ASSETS.includes(url.pathname)) {
    event.respondWith(asset(event));
  }
});
