/* The report page's service worker (served as /report-sw.js, scope /report): keeps a copy of the page and its
 * scripts and styles, so the page opens — and its queued reports stay visible and are sent later — on a phone
 * without signal. Network first (a fresh page whenever the server answers), the copy only when it does not.
 * API calls are never touched: the outgoing queue (queue.js) decides what to retry. */

const CACHE = 'gridlink-report-v1';
const SHELL = [
  '/report', '/static/common/common.css', '/static/common/i18n.js', '/static/common/api.js',
  '/static/common/shell.js', '/static/report/report.css', '/static/report/report.js',
  '/static/report/queue.js', '/static/report/strings.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  const page = url.pathname === '/report';
  if (!page && !SHELL.includes(url.pathname)) return;
  event.respondWith(fetch(event.request).then((reply) => {
    if (reply.ok) {
      const copy = reply.clone();
      caches.open(CACHE).then((cache) => cache.put(page ? '/report' : url.pathname, copy));
    }
    return reply;
  }).catch(() => caches.match(page ? '/report' : url.pathname).then((hit) => hit || Response.error())));
});
