// The service worker of Assent Authenticator (scope {server}/authenticator/).
// It keeps the app shell for offline starts (network first: the server sends
// `Cache-Control: no-cache`, so an upgraded server's app shows at once),
// never touches /device/ or any other path, and turns Web Push wake-ups into
// notifications from the verified pending list (a push payload is never shown
// as is: docs/protocol.md, section 2).
"use strict";

importScripts("protocol.js");

const CACHE = "assent-authenticator-v1";
const SHELL = [
  "index.html",
  "style.css",
  "protocol.js",
  "app.js",
  "manifest.webmanifest",
  "icon-192.png",
  "icon-512.png",
  "icon-maskable-512.png",
  "apple-touch-icon.png",
];
const BASE = new URL("./", self.location.href); // {server}/authenticator/
// Paths under BASE that serve index.html.
const PAGES = ["", "index.html", "enroll"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // One file that fails does not keep the worker from installing.
      await Promise.all(
        SHELL.map((file) => cache.add(new Request(new URL(file, BASE).href, { cache: "reload" })).catch(() => {})),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(names.filter((name) => name.startsWith("assent-authenticator-") && name !== CACHE).map((name) => caches.delete(name)));
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== BASE.origin || !url.pathname.startsWith(BASE.pathname)) return; // /device/ and the rest: untouched
  const file = url.pathname.slice(BASE.pathname.length);
  if (request.mode === "navigate") {
    if (PAGES.includes(file)) event.respondWith(networkFirst(request, "index.html"));
    return;
  }
  if (SHELL.includes(file)) event.respondWith(networkFirst(request, file));
});

async function networkFirst(request, file) {
  const key = new URL(file, BASE).href;
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic" && !response.redirected) {
      const copy = response.clone();
      caches
        .open(CACHE)
        .then((cache) => cache.put(key, copy))
        .catch(() => {});
    }
    return response;
  } catch (e) {
    const cached = await caches.match(key, { cacheName: CACHE });
    if (cached) return cached;
    throw e;
  }
}

// ---- Web Push ---------------------------------------------------------------------

const ICON = new URL("icon-192.png", BASE).href;

async function tellClients(message) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) client.postMessage(message);
}

async function notifyFromPush(payload) {
  await tellClients({ refresh: true }).catch(() => {});
  if (payload && payload.event === "enrolled") {
    await self.registration.showNotification("A new device was added to your account", {
      body: "If you did not add it, tell your administrator now.",
      tag: `enrolled-${payload.device_id || ""}`,
      icon: ICON,
      data: { request_id: null },
    });
    return;
  }
  const account = await AssentProtocol.loadAccount();
  if (!account || account.revoked) throw new Error("no account");
  const pending = await AssentProtocol.fetchPending(account);
  const wanted = payload && typeof payload.request_id === "string" ? payload.request_id : null;
  const request = (wanted && pending.requests.find((r) => r.request_id === wanted)) || pending.requests[0];
  if (!request) throw new Error("nothing pending");
  const client = request.client_name && request.client_name.trim() ? request.client_name : request.client_id;
  await self.registration.showNotification("Sign-in request from " + client, {
    body: request.binding_message,
    tag: request.request_id,
    data: { request_id: request.request_id },
    requireInteraction: true,
    icon: ICON,
  });
}

self.addEventListener("push", (event) => {
  let payload = null;
  try {
    payload = event.data ? event.data.json() : null;
  } catch {
    payload = null;
  }
  event.waitUntil(
    notifyFromPush(payload).catch(() =>
      // Browsers want a visible notification for every push.
      self.registration.showNotification("Sign-in request", {
        body: "Open Assent Authenticator to see it.",
        tag: payload && typeof payload.request_id === "string" ? payload.request_id : "assent-request",
        data: { request_id: payload && typeof payload.request_id === "string" ? payload.request_id : null },
        icon: ICON,
      }),
    ),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const id = (event.notification.data && event.notification.data.request_id) || null;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const client = windows.find((c) => c.url.startsWith(BASE.href));
      if (client) {
        try {
          await client.focus();
        } catch {
          // focusing is not always allowed; the message still goes
        }
        client.postMessage({ open: id });
        return;
      }
      await self.clients.openWindow(id ? "./#request/" + encodeURIComponent(id) : "./");
    })(),
  );
});

// The browser replaced the subscription (keys rotated, expired): register the new one.
self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil(
    (async () => {
      const account = await AssentProtocol.loadAccount();
      if (!account || account.revoked) return;
      await AssentProtocol.subscribePush(account);
    })().catch(() => {}),
  );
});
