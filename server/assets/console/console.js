// The Assent console's one script: progressive enhancement only. Every
// page works without it (forms post, waiting pages reload themselves).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A login link: the token is in the fragment, which no request carries;
  // it goes to the server by POST and leaves the address bar at once.
  const linkForm = document.getElementById("link-form");
  if (linkForm && location.hash.length > 1) {
    const token = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, "", location.pathname);
    linkForm.elements.token.value = token;
    linkForm.submit();
  }

  // A page that waits for a device reloads itself (the server looks again).
  const reload = document.querySelector("[data-reload]");
  if (reload) setTimeout(() => location.reload(), Number(reload.dataset.reload) || 2000);

  // Destructive actions ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // A verification's live status, from the server's event stream.
  const live = document.querySelector("[data-events]");
  if (live && window.EventSource) {
    const status = live.querySelector("[data-testid=status]");
    if (status && !["approved", "denied", "not_me", "expired"].includes(status.dataset.status)) {
      const source = new EventSource(live.dataset.events);
      source.addEventListener("status", (event) => {
        const data = JSON.parse(event.data);
        status.textContent = data.text;
        status.dataset.status = data.status;
        status.className = "status " + data.status;
        if (data.final) source.close();
      });
    }
  }
});
