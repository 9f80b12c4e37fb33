// The window of Assent Authenticator. Everything it shows comes from the
// Rust side (already verified and put into words there); this file only
// places text (always as textContent, never as HTML) and forwards clicks.
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (id) => document.getElementById(id);

const state = {
  view: "inbox",
  status: { accounts: [], key_warning: null, load_errors: [], pin_set: false, pin_paused_until: null, needs_unlock: false },
  inbox: { requests: [], hidden_bad_signatures: 0, resolved: [] },
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

// The app's own confirmation dialog (never the webview's window.confirm).
// Resolves to "ok", "extra" (the optional second, dangerous choice) or "cancel".
function ask({ title, body, ok, extra = null, danger = false }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-body").textContent = body;
  const okButton = $("confirm-ok");
  okButton.textContent = ok;
  okButton.className = danger ? "danger" : "primary";
  $("confirm-extra").hidden = !extra;
  $("confirm-extra").textContent = extra || "";
  dialog.returnValue = "cancel";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue || "cancel"), { once: true });
    dialog.showModal();
    $("confirm-cancel").focus();
  });
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

function banner(text, { error = false, id = null, action = null } = {}) {
  const node = el("div", { class: error ? "banner error" : "banner" }, [el("p", { text })]);
  if (id) node.id = id;
  if (action) {
    const button = el("button", { type: "button", class: "secondary small-button", text: action.label });
    button.addEventListener("click", action.run);
    node.append(button);
  }
  return node;
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

function renderBanners() {
  const box = $("banners");
  box.replaceChildren();
  const { key_warning, load_errors, accounts } = state.status;
  if (key_warning) box.append(banner(key_warning, { id: "key-warning" }));
  for (const error of load_errors) {
    box.append(banner(`An account could not be opened: ${error}`, { error: true }));
  }
  const hidden = state.inbox.hidden_bad_signatures;
  if (hidden > 0) {
    box.append(
      banner(
        `${hidden === 1 ? "A request was" : `${hidden} requests were`} hidden because ` +
          "the server's signature on it did not check out. It may have been tampered with on the way; " +
          "tell your administrator.",
        { error: true, id: "bad-signature-warning" },
      ),
    );
  }
  for (const account of accounts) {
    if (account.connection === "revoked") {
      box.append(banner(`${account.label}: ${account.problem || "this device was removed on the server."}`, { error: true }));
    } else if (account.connection === "offline") {
      box.append(
        banner(
          `${account.label}: offline. ${account.problem || `Cannot reach ${hostOf(account.server)}.`} ` +
            "The app keeps trying; requests appear as soon as the connection is back.",
          { id: `offline-${account.id}` },
        ),
      );
    } else if (account.connection === "key_unavailable") {
      box.append(banner(`${account.label}: ${account.problem}`, { error: true }));
    }
    if (account.muted_until) {
      box.append(
        banner(
          `Sign-in requests for ${account.label} are paused until ${timeOfDay.format(new Date(account.muted_until * 1000))}, ` +
            "because you said a request wasn\u2019t you (or denied several in a row). Your administrator has been told. " +
            "If you did not start those requests, someone may know your password: change it. " +
            "If you want to sign in yourself now, resume requests.",
          {
            id: `muted-${account.id}`,
            action: { label: "Resume requests", run: () => resume(account) },
          },
        ),
      );
    }
  }
}

async function resume(account) {
  try {
    await call("unmute", { accountId: account.id });
    notice(`Requests for ${account.label} arrive again.`);
  } catch (e) {
    notice(errorText(e), "error");
  }
  await loadStatus();
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
  const noAccounts = state.status.accounts.length === 0 && state.status.load_errors.length === 0;
  $("inbox-empty").hidden = requests.length > 0 || state.status.accounts.length === 0;
  $("inbox-no-accounts").hidden = !noAccounts;
  $("deny-all").hidden = requests.length < 2;
  renderUnlock();
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
  const logo = $("request-logo");
  logo.hidden = !r.logo;
  if (r.logo) logo.src = r.logo;
  else logo.removeAttribute("src");
  const website = $("request-website");
  website.hidden = !r.website_host;
  website.textContent = r.website_host ? `Website: ${r.website_host}` : "";
  $("request-binding").textContent = r.binding_message;
  $("request-key-lines").replaceChildren(...r.key_lines.map((line) => el("li", { text: line })));
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
  $("request-client").textContent = r.client_name;
  $("request-client-id").textContent = r.client_id;
  $("request-account").textContent = `${r.account_label} on ${hostOf(r.server)}`;
  $("request-ip").textContent = r.requester_ip || "Not given";
  $("request-ua").textContent = r.requester_user_agent || "Not given";
  $("request-id").textContent = r.request_id;
  $("request-time").textContent = when(r.created_at);
  $("technical").open = false;

  const digits = r.match_code_digits;
  $("match-field").hidden = !digits;
  $("match-code").value = "";
  if (digits) {
    $("match-code").maxLength = digits;
    $("match-label").textContent = `Type the ${digits}-digit number ${r.client_name} shows you`;
  }
  const newPin = !state.status.pin_set;
  $("pin").value = "";
  $("pin-confirm").value = "";
  $("pin-confirm-field").hidden = !newPin;
  $("pin-label").textContent = newPin ? "Choose an app PIN (6 to 12 digits)" : "Your app PIN";
  $("pin-hint").textContent = newPin
    ? "Approvals on this device ask for it, so only you can approve."
    : "Approving asks for your PIN, so only you can approve. Denying does not.";
  setApproveError("");
  setDecisionEnabled(true);
  tickCountdown();
}

function setApproveError(message) {
  $("approve-error").textContent = message;
}

// Approve is enabled once the number (when asked) has all its digits and a
// PIN is typed; the checks themselves happen in the app and on the server.
function updateApproveButton() {
  const r = state.currentView;
  if (!r || state.busy) return;
  const digits = r.match_code_digits;
  const code = $("match-code").value.trim();
  const codeOk = !digits || (code.length === digits && /^[0-9]+$/.test(code));
  const pin = $("pin").value;
  const pinOk = pin.length >= 6 && (state.status.pin_set || $("pin-confirm").value.length >= 6);
  const expired = r.expires_at <= nowSecs();
  $("approve").disabled = !(codeOk && pinOk) || expired;
}

function setDecisionEnabled(enabled) {
  for (const id of ["deny", "not-me"]) $(id).disabled = !enabled;
  if (enabled) updateApproveButton();
  else $("approve").disabled = true;
}

function focusFirstField() {
  const r = state.currentView;
  if (r && r.match_code_digits) $("match-code").focus();
  else $("pin").focus();
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
      countdown.textContent = "Expired";
      setApproveError("This request has expired. If you still want to sign in, start again.");
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
    focusFirstField();
  } catch (e) {
    notice(errorText(e), "error");
    show("inbox");
  }
}

async function decide(choice) {
  if (!state.current || state.busy) return;
  const { account_id, request_id } = state.current;
  const words = { approved: "Approved", denied: "Denied", not_me: "Denied and reported as not you" };
  const approving = choice === "approved";
  let matchCode = null;
  let pin = null;
  if (approving) {
    matchCode = state.currentView.match_code_digits ? $("match-code").value.trim() : null;
    pin = $("pin").value;
    if (!state.status.pin_set) {
      if (pin !== $("pin-confirm").value) {
        setApproveError("The two PINs are not the same. Type them again.");
        $("pin-confirm").value = "";
        $("pin-confirm").focus();
        return;
      }
      try {
        await call("set_pin", { pin });
        state.status.pin_set = true;
      } catch (e) {
        setApproveError(errorText(e));
        $("pin").focus();
        return;
      }
    }
  }
  state.busy = true;
  setDecisionEnabled(false);
  setApproveError("");
  try {
    await call("decide", { accountId: account_id, requestId: request_id, choice, matchCode, pin });
    notice(`${words[choice]}: \u201c${state.currentView.binding_message}\u201d.`);
    show("inbox");
  } catch (e) {
    if (["already_answered", "expired", "gone", "unknown_account", "revoked", "denied_after_wrong_codes"].includes(e && e.kind)) {
      notice(errorText(e), "error");
      show("inbox");
    } else {
      // Stays on the request: say what to fix next to the fields.
      setApproveError(errorText(e));
      state.busy = false;
      setDecisionEnabled(true);
      if (["wrong_match_code", "match_code_needed"].includes(e && e.kind)) {
        $("match-code").select();
        $("match-code").focus();
      } else if (["wrong_pin", "pin_paused", "pin_needed", "pin_unacceptable"].includes(e && e.kind)) {
        $("pin").value = "";
        $("pin").focus();
      }
    }
  } finally {
    state.busy = false;
    await loadStatus();
    await loadInbox();
  }
}

async function denyAll() {
  const count = state.inbox.requests.filter((r) => r.expires_at > nowSecs()).length;
  if (count === 0) return;
  const answer = await ask({
    title: `Deny all ${count} requests?`,
    body:
      "Every request waiting here is denied. If you did not start them, deny and report them: " +
      "new requests are paused for a while and your administrator is told.",
    ok: "Deny all",
    extra: "Deny all and report: not me",
  });
  if (answer === "cancel") return;
  try {
    const done = await call("deny_all", { choice: answer === "extra" ? "not_me" : "denied" });
    let text = `Denied ${done.denied} request${done.denied === 1 ? "" : "s"}.`;
    if (done.failed.length) text += ` ${done.failed.length} could not be denied: ${done.failed[0]}`;
    notice(text, done.failed.length ? "error" : "ok");
  } catch (e) {
    notice(errorText(e), "error");
  }
  await loadStatus();
  await loadInbox();
}

function renderUnlock() {
  const waiting = state.status.accounts.filter((a) => a.connection === "locked" || a.connection === "key_unavailable");
  const panel = $("unlock-panel");
  panel.hidden = waiting.length === 0;
  if (waiting.length === 0) return;
  const names = waiting.map((a) => a.label).join(", ");
  $("unlock-text").textContent = state.status.needs_unlock
    ? `Enter your app PIN to open the key${waiting.length === 1 ? "" : "s"} of ${names}. Until then no requests arrive for ${waiting.length === 1 ? "it" : "them"}.`
    : `The keys of ${names} could not be read from the system credential store. Unlock your keyring, then try again with your PIN.`;
  $("unlock-button").textContent = state.status.needs_unlock ? "Unlock" : "Try again";
}

async function unlock() {
  const pin = $("unlock-pin").value;
  $("unlock-error").textContent = "";
  if (!pin) {
    $("unlock-error").textContent = "Enter your app PIN.";
    $("unlock-pin").focus();
    return;
  }
  $("unlock-button").disabled = true;
  try {
    state.status = await call("unlock", { pin });
    $("unlock-pin").value = "";
    renderBanners();
    renderInbox();
  } catch (e) {
    $("unlock-error").textContent = errorText(e);
    $("unlock-pin").value = "";
    $("unlock-pin").focus();
  } finally {
    $("unlock-button").disabled = false;
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
      const resolved = state.inbox.resolved.find(
        (r) => r.account_id === state.current.account_id && r.request_id === state.current.request_id,
      );
      const outcome = resolved && resolved.outcome;
      notice(
        outcome === "approved"
          ? "This request was approved on another device."
          : outcome === "denied"
            ? "This request was denied on another device."
            : "This request was answered on another device, withdrawn, or it expired.",
        "error",
      );
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
  const words = { approved: "Approved", denied: "Denied", not_me: "Denied: not me", cancelled: "Cancelled" };
  $("history-rows").replaceChildren(
    ...entries.map((h) =>
      el("tr", { "data-request-id": h.request_id }, [
        el("td", { text: when(h.decided_at) }),
        el("td", { text: labels[h.account_id] || "Removed account" }),
        el("td", { text: h.client_name }),
        el("td", { text: h.binding_message }),
        h.enrolled_device
          ? el("td", { class: "choice-enrolled", text: "Device added" })
          : el("td", { class: `choice-${h.choice}`, text: words[h.choice] || h.choice }),
      ]),
    ),
  );
  $("history-table").hidden = entries.length === 0;
  $("history-empty").hidden = entries.length > 0;
}

function renderAccounts() {
  const states = {
    live: "Live",
    connecting: "Connecting",
    offline: "Offline",
    revoked: "Removed on server",
    locked: "Locked: needs your PIN",
    key_unavailable: "Key not available",
  };
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
              : a.key_location === "encrypted_file"
                ? "Key kept in a private file, encrypted under your app PIN (no credential store available)"
                : "Key kept in a private file (no credential store available); your PIN encrypts it at the next unlock",
        }),
        el("span", { class: "actions" }, [remove]),
      ]);
    }),
  );
}

async function removeAccount(account) {
  const answer = await ask({
    title: `Remove ${account.label}?`,
    body:
      `${account.label} on ${hostOf(account.server)} is removed from this device, which will no longer be able ` +
      "to approve sign-ins for it. You will need a new enrollment link to add it again.",
    ok: "Remove",
    danger: true,
  });
  if (answer !== "ok") return;
  try {
    await call("unenroll", { accountId: account.id, evenIfUnreachable: false });
  } catch (e) {
    if (e && e.kind === "unreachable") {
      const anyway = await ask({
        title: "Remove it from this device only?",
        body: `${errorText(e)} The server will still list this device until an administrator removes it.`,
        ok: "Remove from this device",
        danger: true,
      });
      if (anyway !== "ok") return;
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
  const newPin = !state.status.pin_set;
  $("enroll-pin").value = "";
  $("enroll-pin-confirm").value = "";
  $("enroll-pin-confirm-field").hidden = !newPin;
  $("enroll-pin-label").textContent = newPin ? "Choose an app PIN (6 to 12 digits)" : "Your app PIN";
  $("enroll-pin-hint").textContent = newPin
    ? "Approving a sign-in on this device will ask for it, so only you can approve."
    : "The PIN you chose for this app.";
  $("enroll-pin").focus();
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
  const pin = $("enroll-pin").value;
  if (!state.status.pin_set && pin !== $("enroll-pin-confirm").value) {
    notice("The two PINs are not the same. Type them again.", "error");
    $("enroll-pin-confirm").value = "";
    $("enroll-pin-confirm").focus();
    return;
  }
  const button = $("enroll-confirm");
  button.disabled = true;
  button.textContent = "Adding\u2026";
  try {
    const account = await call("enroll", { link: state.offeredLink, deviceName: $("device-name").value, pin });
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
  $("approve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!$("approve").disabled) decide("approved");
  });
  for (const id of ["match-code", "pin", "pin-confirm"]) {
    $(id).addEventListener("input", () => {
      setApproveError("");
      updateApproveButton();
    });
  }
  // Digits only in the number field; with all of them typed, on to the PIN.
  $("match-code").addEventListener("input", () => {
    const field = $("match-code");
    const clean = field.value.replace(/[^0-9]/g, "");
    if (clean !== field.value) field.value = clean;
    const digits = state.currentView && state.currentView.match_code_digits;
    if (digits && clean.length === digits) $("pin").focus();
    updateApproveButton();
  });
  $("deny-all").addEventListener("click", denyAll);
  $("unlock-panel").addEventListener("submit", (event) => {
    event.preventDefault();
    unlock();
  });
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
  for (const id of ["enroll-pin", "enroll-pin-confirm"]) {
    $(id).addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        enrollConfirmed();
      }
    });
  }
  $("enroll-cancel").addEventListener("click", resetEnrollment);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.view === "request" && !$("confirm-dialog").open) show("inbox");
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
  listen("device-enrolled", (event) => {
    const { account_label, device_name, platform } = event.payload || {};
    notice(
      `A new device, "${device_name}" (${platform}), can now approve sign-ins for ${account_label}. ` +
        "If you did not add it, tell your administrator now.",
      "error",
    );
    if (state.view === "history") loadHistory();
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
