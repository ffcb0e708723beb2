// The node's service worker: the pages a signed-in user opened are kept on the device, so the
// plan's forms still open when the node cannot be reached. Pages come from the node whenever it
// answers (network first); the kept copy is used only when it does not. Writes are never handled
// here: the page's script (offline.js) keeps a form that could not be sent and sends it later.
'use strict';
const CACHE = 'syncnode-pages-v1';
const SHELL = ['/offline', '/static/site.css', '/static/offline.js', '/static/icon.svg', '/manifest.webmanifest'];
// Never kept: the sync API, metrics, health (the page's reachability probe), downloads, login.
const PASS = [/^\/v1\//, /^\/file\//, /^\/metrics$/, /^\/health$/, /^\/export\//, /^\/login$/, /^\/sw\.js$/];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()));
});

// offline.js asks for the user's pages to be forgotten at logout.
// The page is told when it is done (a port, when it gave one).
self.addEventListener('message', (event) => {
  if (event.data !== 'forget') return;
  event.waitUntil(
    caches.delete(CACHE)
      .then(() => caches.open(CACHE))
      .then((c) => c.addAll(SHELL))
      .catch(() => {})
      .then(() => event.ports[0] && event.ports[0].postMessage('forgotten')));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || PASS.some((p) => p.test(url.pathname))) return;
  event.respondWith(fromNode(request, url));
});

// A node that does not answer within this long is treated as unreachable when a kept copy exists.
const PATIENCE_MS = 8000;

async function fromNode(request, url) {
  const key = url.pathname + url.search;
  const kept = await caches.match(key);
  try {
    const fetched = fetch(request);
    fetched.catch(() => {}); // answered by the kept copy when slow; its later failure is no news
    const response = kept
      ? await Promise.race([fetched, new Promise((_, fail) => setTimeout(() => fail(new Error('slow')), PATIENCE_MS))])
      : await fetched;
    // A page answered for this user (not a redirect to the login page) is kept under its address.
    if (response.ok && !response.redirected) {
      const copy = response.clone();
      await caches.open(CACHE).then((cache) => cache.put(key, copy));
    }
    return response;
  } catch (unreachable) {
    if (kept) return kept;
    if (request.mode === 'navigate') {
      const page = await caches.match('/offline');
      if (page) return page;
    }
    throw unreachable;
  }
}
