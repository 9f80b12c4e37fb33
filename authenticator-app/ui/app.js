// The window of Assent Authenticator. Everything it shows comes from the
// Rust side (already verified and put into words there); this file only
// places text (always as textContent, never as HTML) and forwards clicks.
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (id) => document.getElementById(id);

const state = {
  view: "inbox",
  status: { accounts: [], key_warning: null, load_errors: [] },
  inbox: { requests: [], hidden_bad_signatures: 0 },
  current: null, // the request on screen: {account_id, request_id}
  currentView: null, // its RequestView
  offeredLink: null,
  busy: false,
};

// ---- small helpers ------------------------------------------------------

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function nowSecs() {
  return Math.floor(Date.now() / 1000);
}

function remaining(expiresAt) {
  const left = Math.max(0, expiresAt - nowSecs());
  if (left === 0) return "Expired";
  const minutes = Math.floor(left / 60);
  const seconds = left % 60;
  const text = minutes > 0 ? `${minutes} min ${String(seconds).padStart(2, "0")} s` : `${seconds} s`;
  return `Expires in ${text}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
function when(secs) {
  return dateTime.format(new Date(secs * 1000));
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function notice(message, kind = "ok") {
  const box = $("notice");
  box.textContent = message;
  box.className = kind === "error" ? "notice error" : "notice";
  box.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => (box.hidden = true), kind === "error" ? 12000 : 6000);
}

function errorText(e) {
  if (e && typeof e === "object" && e.message) return e.message;
  return String(e);
}

async function call(cmd, args) {
  return invoke(cmd, args);
}

// ---- views ---------------------------------------------------------------

function show(view) {
  state.view = view;
  for (const name of ["inbox", "request", "history", "accounts"]) {
    $(`view-${name}`).hidden = name !== view;
  }
  for (const button of document.querySelectorAll("nav .nav")) {
    const active = button.dataset.view === view || (view === "request" && button.dataset.view === "inbox");
    if (active) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  if (view !== "request") state.current = null;
  if (view === "history") loadHistory();
  if (view === "accounts") renderAccounts();
  $("main").focus({ preventScroll: true });
}

function renderBanners() {
  const box = $("banners");
  box.replaceChildren();
  const { key_warning, load_errors, accounts } = state.status;
  if (key_warning) box.append(el("p", { class: "banner", id: "key-warning", text: key_warning }));
  for (const error of load_errors) {
    box.append(el("p", { class: "banner error", text: `An account could not be opened: ${error}` }));
  }
  const hidden = state.inbox.hidden_bad_signatures;
  if (hidden > 0) {
    box.append(
      el("p", {
        class: "banner error",
        id: "bad-signature-warning",
        text:
          `${hidden === 1 ? "A request was" : `${hidden} requests were`} hidden because ` +
          "the server's signature on it did not check out. It may have been tampered with on the way; " +
          "tell your administrator.",
      }),
    );
  }
  for (const account of accounts) {
    if (account.connection === "revoked") {
      box.append(el("p", { class: "banner error", text: `${account.label}: ${account.problem || "this device was removed on the server."}` }));
    } else if (account.connection === "offline" && account.problem) {
      box.append(el("p", { class: "banner", text: `${account.label}: ${account.problem}` }));
    }
  }
}

function renderInbox() {
  const list = $("request-list");
  const requests = state.inbox.requests.filter((r) => r.expires_at > nowSecs());
  list.replaceChildren(
    ...requests.map((r) => {
      const button = el(
        "button",
        {
          type: "button",
          "aria-label": `${r.binding_message}. ${r.client_name}, for ${r.account_label}. ${remaining(r.expires_at)}. Open to answer.`,
        },
        [
          el("span", { class: "binding", text: r.binding_message }),
          el("span", { class: "expires", "data-expires": r.expires_at, text: remaining(r.expires_at) }),
          el("span", { class: "meta", text: `${r.client_name} · ${r.account_label} · ${when(r.created_at)}` }),
        ],
      );
      button.addEventListener("click", () => openRequest(r.account_id, r.request_id));
      return el("li", { class: "request-item", "data-request-id": r.request_id, "data-account-id": r.account_id }, [button]);
    }),
  );
  const noAccounts = state.status.accounts.length === 0;
  $("inbox-empty").hidden = requests.length > 0 || noAccounts;
  $("inbox-no-accounts").hidden = !noAccounts;
  $("inbox-subtitle").textContent =
    requests.length === 0
      ? ""
      : `${requests.length} request${requests.length === 1 ? "" : "s"} waiting. Only approve what you started yourself.`;
  const count = $("inbox-count");
  count.hidden = requests.length === 0;
  count.textContent = String(requests.length);
  document.title = requests.length ? `(${requests.length}) Assent Authenticator` : "Assent Authenticator";
}

function renderRequest(r) {
  state.currentView = r;
  $("request-intro").textContent = `${r.client_name} asks to sign in as ${r.account_label}`;
  $("request-binding").textContent = r.binding_message;
  const scopes = $("request-scopes");
  scopes.replaceChildren(...r.scopes.map((s) => el("li", { text: s.description, title: s.scope })));
  const audience = $("request-audience");
  audience.hidden = !r.audience;
  audience.textContent = r.audience ? `For use with: ${r.audience}` : "";
  const details = $("request-details");
  details.replaceChildren(
    ...r.authorization_details.map((table) =>
      el("table", { class: "details" }, [
        el("caption", { text: table.title }),
        el(
          "tbody",
          {},
          table.rows.map(([label, value]) =>
            el("tr", {}, [el("th", { scope: "row", text: label }), el("td", { text: value })]),
          ),
        ),
      ]),
    ),
  );
  $("request-client").textContent = `${r.client_name} (${r.client_id})`;
  $("request-account").textContent = `${r.account_label} on ${hostOf(r.server)}`;
  $("request-ip").textContent = r.requester_ip || "Not given";
  $("request-ua").textContent = r.requester_user_agent || "Not given";
  $("request-time").textContent = when(r.created_at);
  setDecisionEnabled(true);
  tickCountdown();
}

function setDecisionEnabled(enabled) {
  for (const id of ["approve", "deny", "not-me"]) $(id).disabled = !enabled;
}

function tickCountdown() {
  for (const node of document.querySelectorAll("[data-expires]")) {
    node.textContent = remaining(Number(node.dataset.expires));
  }
  const r = state.currentView;
  if (state.view === "request" && r) {
    const left = r.expires_at - nowSecs();
    const countdown = $("request-countdown");
    countdown.textContent = remaining(r.expires_at);
    countdown.classList.toggle("urgent", left <= 30);
    if (left <= 0 && !state.busy) {
      setDecisionEnabled(false);
      countdown.textContent = "This request has expired. If you still want to sign in, start again.";
    }
  }
  // Drop expired requests from the list as they run out.
  if (state.inbox.requests.some((r) => r.expires_at <= nowSecs())) renderInbox();
}

async function openRequest(accountId, requestId) {
  try {
    const r = await call("request", { accountId, requestId });
    state.current = { account_id: accountId, request_id: requestId };
    $("notice").hidden = true; // it was about something else
    renderRequest(r);
    show("request");
    tickCountdown();
    $("request-binding").setAttribute("tabindex", "-1");
    $("request-binding").focus();
  } catch (e) {
    notice(errorText(e), "error");
    show("inbox");
  }
}

async function decide(choice) {
  if (!state.current || state.busy) return;
  const { account_id, request_id } = state.current;
  const words = { approved: "Approved", denied: "Denied", not_me: "Denied and reported as not you" };
  state.busy = true;
  setDecisionEnabled(false);
  try {
    await call("decide", { accountId: account_id, requestId: request_id, choice });
    notice(`${words[choice]}: \u201c${state.currentView.binding_message}\u201d.`);
    show("inbox");
  } catch (e) {
    notice(errorText(e), "error");
    if (["already_answered", "expired", "gone", "unknown_account", "revoked"].includes(e && e.kind)) {
      show("inbox");
    } else {
      setDecisionEnabled(true);
    }
  } finally {
    state.busy = false;
    await loadInbox();
  }
}

// ---- data ----------------------------------------------------------------

async function loadStatus() {
  state.status = await call("status");
  renderBanners();
  if (state.view === "accounts") renderAccounts();
}

async function loadInbox() {
  state.inbox = await call("inbox");
  renderInbox();
  renderBanners();
  // A request on screen that is gone (answered elsewhere, withdrawn) leaves.
  if (state.view === "request" && state.current && !state.busy) {
    const still = state.inbox.requests.some(
      (r) => r.account_id === state.current.account_id && r.request_id === state.current.request_id,
    );
    if (!still) {
      notice("This request was answered on another device, withdrawn, or it expired.", "error");
      show("inbox");
    }
  }
}

let lastRefresh = 0;
async function refreshNow(force) {
  if (!force && Date.now() - lastRefresh < 2000) return;
  lastRefresh = Date.now();
  const button = $("refresh");
  button.classList.add("spinning");
  try {
    state.inbox = await call("refresh");
    await loadStatus();
    renderInbox();
    renderBanners();
  } catch (e) {
    notice(errorText(e), "error");
  } finally {
    button.classList.remove("spinning");
  }
}

async function loadHistory() {
  let entries = [];
  try {
    entries = await call("history", { accountId: null });
  } catch (e) {
    notice(errorText(e), "error");
  }
  const labels = Object.fromEntries(state.status.accounts.map((a) => [a.id, a.label]));
  const words = { approved: "Approved", denied: "Denied", not_me: "Denied: not me" };
  $("history-rows").replaceChildren(
    ...entries.map((h) =>
      el("tr", { "data-request-id": h.request_id }, [
        el("td", { text: when(h.decided_at) }),
        el("td", { text: labels[h.account_id] || "Removed account" }),
        el("td", { text: h.client_name }),
        el("td", { text: h.binding_message }),
        el("td", { class: `choice-${h.choice}`, text: words[h.choice] || h.choice }),
      ]),
    ),
  );
  $("history-table").hidden = entries.length === 0;
  $("history-empty").hidden = entries.length > 0;
}

function renderAccounts() {
  const states = { live: "Live", connecting: "Connecting", offline: "Offline", revoked: "Removed on server" };
  $("account-list").replaceChildren(
    ...state.status.accounts.map((a) => {
      const remove = el("button", { type: "button", class: "secondary", text: "Remove", "aria-label": `Remove ${a.label}` });
      remove.addEventListener("click", () => removeAccount(a));
      return el("li", { class: "account-item", "data-account-id": a.id }, [
        el("span", { class: "name" }, [
          document.createTextNode(a.label),
          el("span", { class: `pill ${a.connection}`, text: states[a.connection] || a.connection }),
        ]),
        el("span", { class: "meta", text: `${hostOf(a.server)} · this device: ${a.device_name}` }),
        el("span", {
          class: "meta",
          text:
            a.key_location === "credential_store"
              ? "Key kept in the system credential store"
              : "Key kept in a private file (no credential store available)",
        }),
        el("span", { class: "actions" }, [remove]),
      ]);
    }),
  );
}

async function removeAccount(account) {
  const question =
    `Remove ${account.label} on ${hostOf(account.server)}?\n\n` +
    "This device will no longer be able to approve sign-ins for it. You will need a new enrollment link to add it again.";
  if (!window.confirm(question)) return;
  try {
    await call("unenroll", { accountId: account.id, evenIfUnreachable: false });
  } catch (e) {
    if (e && e.kind === "unreachable") {
      const anyway = window.confirm(
        `${errorText(e)}\n\nRemove it from this device anyway? The server will still list the device until an administrator removes it.`,
      );
      if (!anyway) return;
      try {
        await call("unenroll", { accountId: account.id, evenIfUnreachable: true });
      } catch (e2) {
        notice(errorText(e2), "error");
        return;
      }
    } else {
      notice(errorText(e), "error");
      return;
    }
  }
  notice(`Removed ${account.label}.`);
  await loadStatus();
  await loadInbox();
}

// ---- enrollment ----------------------------------------------------------

async function offerLink(link) {
  try {
    const preview = await call("preview_link", { link });
    confirmEnrollment(preview);
  } catch (e) {
    notice(errorText(e), "error");
  }
}

async function confirmEnrollment(preview) {
  state.offeredLink = preview.link;
  show("accounts");
  $("add-step-link").hidden = true;
  $("add-step-confirm").hidden = false;
  const who = preview.account ? `${preview.account} on ${hostOf(preview.server)}` : `an account on ${hostOf(preview.server)}`;
  $("confirm-text").textContent = `Add ${who}? Only continue if you asked for this link.`;
  if (!$("device-name").value) $("device-name").value = await call("suggested_device_name");
  $("enroll-confirm").focus();
}

function resetEnrollment() {
  state.offeredLink = null;
  $("add-step-link").hidden = false;
  $("add-step-confirm").hidden = true;
  $("link-input").value = "";
  $("qr-file").value = "";
}

async function enrollConfirmed() {
  if (!state.offeredLink) return;
  const button = $("enroll-confirm");
  button.disabled = true;
  button.textContent = "Adding\u2026";
  try {
    const account = await call("enroll", { link: state.offeredLink, deviceName: $("device-name").value });
    resetEnrollment();
    notice(`Added ${account.label}. Requests for it will appear here.`);
    await loadStatus();
    show("inbox");
    await loadInbox();
  } catch (e) {
    notice(errorText(e), "error");
  } finally {
    button.disabled = false;
    button.textContent = "Add account";
  }
}

async function readQrFile(file) {
  if (!file) return;
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const preview = await call("read_qr_image", { image: Array.from(bytes) });
    confirmEnrollment(preview);
  } catch (e) {
    notice(errorText(e), "error");
    $("qr-file").value = "";
  }
}

// ---- wiring --------------------------------------------------------------

function wire() {
  for (const button of document.querySelectorAll("nav .nav")) {
    button.addEventListener("click", () => show(button.dataset.view));
  }
  $("refresh").addEventListener("click", () => refreshNow(true));
  $("quit").addEventListener("click", () => call("quit"));
  $("go-add-account").addEventListener("click", () => {
    show("accounts");
    $("link-input").focus();
  });
  $("request-back").addEventListener("click", () => show("inbox"));
  $("approve").addEventListener("click", () => decide("approved"));
  $("deny").addEventListener("click", () => decide("denied"));
  $("not-me").addEventListener("click", () => decide("not_me"));
  $("link-continue").addEventListener("click", () => offerLink($("link-input").value));
  $("link-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      offerLink($("link-input").value);
    }
  });
  $("qr-file").addEventListener("change", (event) => readQrFile(event.target.files[0]));
  $("enroll-confirm").addEventListener("click", enrollConfirmed);
  $("enroll-cancel").addEventListener("click", resetEnrollment);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.view === "request") show("inbox");
  });

  // Fetch again whenever the window comes back into view.
  window.addEventListener("focus", () => refreshNow(false));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshNow(false);
  });

  listen("inbox-changed", () => {
    loadInbox().catch(() => {});
    loadStatus().catch(() => {});
  });
  listen("open-request", (event) => {
    const { account_id, request_id } = event.payload || {};
    if (account_id && request_id) openRequest(account_id, request_id);
  });
  listen("link-offered", async () => {
    const link = await call("take_offered_link");
    if (link) offerLink(link);
  });

  setInterval(tickCountdown, 1000);
}

async function start() {
  wire();
  try {
    await loadStatus();
    await loadInbox();
  } catch (e) {
    notice(errorText(e), "error");
  }
  const link = await call("take_offered_link");
  if (link) offerLink(link);
  refreshNow(true);
}

start();
