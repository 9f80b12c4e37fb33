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

  // Tables sort by a click on a column's heading (the server's order
  // without a script): a button in each heading, aria-sort on the column.
  for (const table of document.querySelectorAll("table[data-sortable]")) {
    const headings = Array.from(table.tHead.rows[0].cells);
    headings.forEach((th, column) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.append(...th.childNodes);
      th.append(button);
      button.addEventListener("click", () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        for (const other of headings) other.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        sortRows(table.tBodies[0], column, ascending);
      });
    });
  }

  // A filter box narrows its table as one types (without a script, the
  // form asks the server).
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const table = document.getElementById(input.dataset.filter);
    const status = input.closest("section")?.querySelector("[data-filter-status]");
    if (!table) continue;
    const apply = () => {
      const words = input.value.trim().toLowerCase();
      const rows = Array.from(table.tBodies[0].rows);
      let shown = 0;
      for (const row of rows) {
        row.hidden = words !== "" && !row.textContent.toLowerCase().includes(words);
        if (!row.hidden) shown += 1;
      }
      if (status) status.textContent = `${shown} of ${rows.length} shown.`;
    };
    input.addEventListener("input", apply);
  }

  // Requests appear and change as they happen, from the server's stream.
  const feed = document.querySelector("[data-feed]");
  if (feed && window.EventSource) {
    const body = feed.querySelector("table tbody");
    const status = feed.querySelector("[data-live-status]");
    const limit = Number(feed.dataset.limit) || 100;
    const source = new EventSource(feed.dataset.feed);
    source.addEventListener("open", () => {
      status.textContent = "Live: new and decided requests appear here as they happen.";
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        status.textContent = "Live updates stopped. Reload the page to see newer requests.";
      }
    });
    source.addEventListener("request", (event) => {
      const request = JSON.parse(event.data);
      showRequest(body, request, limit);
      status.textContent = `Live. ${request.user}: \u201c${request.message}\u201d ${request.status_text}.`;
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

/** What a cell sorts by: its time, its number, or its text. */
function sortKey(cell) {
  const time = cell?.querySelector("time[datetime]");
  if (time) return Date.parse(time.dateTime);
  const text = (cell?.textContent || "").trim();
  const number = Number(text);
  return text !== "" && !Number.isNaN(number) ? number : text.toLowerCase();
}

function sortRows(body, column, ascending) {
  const rows = Array.from(body.rows).map((row) => [sortKey(row.cells[column]), row]);
  rows.sort(([a], [b]) => {
    const order = typeof a === "number" && typeof b === "number"
      ? a - b
      : String(a).localeCompare(String(b), undefined, { numeric: true });
    return ascending ? order : -order;
  });
  body.append(...rows.map(([, row]) => row));
}

/** A request's row, built from the stream's cells (as text, never HTML). */
function requestRow(r) {
  const row = document.createElement("tr");
  row.dataset.request = r.id;
  row.dataset.created = String(r.created);
  if (r.not_me) {
    row.className = "not-me";
    row.dataset.testid = "not-me";
  }
  // "2026-12-07 18:43:00 UTC": the date and the time each kept whole.
  const time = (iso, text) => {
    const t = document.createElement("time");
    t.dateTime = iso;
    const [date, ...clock] = text.split(" ");
    for (const part of [date, clock.join(" ")]) {
      const span = document.createElement("span");
      span.className = "nw";
      span.textContent = part;
      if (t.childNodes.length) t.append(" ");
      t.append(span);
    }
    return t;
  };
  const link = (href, text) => {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  };
  const badge = document.createElement("span");
  badge.className = `badge ${r.status}`;
  badge.textContent = r.status_text;
  const cells = [
    time(r.created_iso, r.created_text),
    link(r.user_href, r.user),
    link(r.client_href, r.client),
    r.message,
    badge,
    r.decided_iso ? time(r.decided_iso, r.decided_text) : "",
  ];
  for (const content of cells) {
    const cell = document.createElement("td");
    cell.append(content);
    row.append(cell);
  }
  row.classList.add("fresh");
  return row;
}

/** Puts a request in its place, newest first, replacing its old row. */
function showRequest(body, r, limit) {
  const row = requestRow(r);
  body.querySelector("tr.empty")?.remove();
  const old = Array.from(body.rows).find((tr) => tr.dataset.request === r.id);
  if (old) {
    old.replaceWith(row);
    return;
  }
  const later = Array.from(body.rows).find((tr) => Number(tr.dataset.created) < r.created);
  body.insertBefore(row, later || null);
  while (body.rows.length > limit) body.rows[body.rows.length - 1].remove();
}
