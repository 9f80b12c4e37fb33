// The window of Assent Authenticator. Everything it shows comes from the
// Rust side (already verified and put into words there); this file only
// places text (always as textContent, never as HTML) and forwards clicks.
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (id) => document.getElementById(id);

const state = {
  view: "inbox",
  status: {
    accounts: [],
    key_warning: null,
    load_errors: [],
    pin_set: false,
    pin_paused_until: null,
    needs_unlock: false,
    code_accounts: 0,
    codes_waiting: [],
  },
  inbox: { requests: [], hidden_bad_signatures: 0, resolved: [] },
  current: null, // the request on screen: {account_id, request_id}
  currentView: null, // its RequestView
  offeredLink: null,
  offeredCodes: false, // the offered link is a sign-in code link (otpauth://)
  codes: [], // CodeViews, with their current codes
  loadingCodes: false,
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
  for (const name of ["inbox", "request", "codes", "history", "accounts"]) {
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
  if (view === "codes") loadCodes();
  renderUnlock();
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
          "aria-label": `${r.headline}. ${r.context}, for ${r.account_label}. ${remaining(r.expires_at)}. Open to answer.`,
        },
        [
          el("span", { class: "binding", text: r.headline }),
          el("span", { class: "expires", "data-expires": r.expires_at, text: remaining(r.expires_at) }),
          el("span", { class: "meta", text: `${r.context} · ${r.account_label} · ${when(r.created_at)}` }),
        ],
      );
      button.addEventListener("click", () => openRequest(r.account_id, r.request_id));
      return el(
        "li",
        { class: "request-item", "data-request-id": r.request_id, "data-account-id": r.account_id, "data-purpose": r.purpose },
        [button],
      );
    }),
  );
  const anyAccount = state.status.accounts.length > 0 || state.status.code_accounts > 0;
  const noAccounts = !anyAccount && state.status.load_errors.length === 0;
  $("inbox-empty").hidden = requests.length > 0 || !anyAccount;
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
  $("request-card").dataset.purpose = r.purpose;
  $("request-intro").textContent = r.intro;
  const logo = $("request-logo");
  logo.hidden = !r.logo;
  if (r.logo) logo.src = r.logo;
  else logo.removeAttribute("src");
  const website = $("request-website");
  website.hidden = !r.website_host;
  website.textContent = r.website_host ? `Website: ${r.website_host}` : "";
  $("request-binding").textContent = r.question;
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
    notice(`${words[choice]}: \u201c${state.currentView.headline}\u201d.`);
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

// The PIN form, above the requests and the codes, while some account's key
// or some code account's secret is not open.
function renderUnlock() {
  const waiting = state.status.accounts.filter((a) => a.connection === "locked" || a.connection === "key_unavailable");
  const codes = state.status.codes_waiting;
  const panel = $("unlock-panel");
  panel.hidden = (waiting.length === 0 && codes.length === 0) || !["inbox", "codes"].includes(state.view);
  if (panel.hidden) return;
  const parts = [];
  if (waiting.length) parts.push(`the key${waiting.length === 1 ? "" : "s"} of ${waiting.map((a) => a.label).join(", ")}`);
  if (codes.length) parts.push(`the sign-in codes of ${codes.join(", ")}`);
  const what = parts.join(" and ");
  let text;
  if (state.status.needs_unlock) {
    text = `Enter your app PIN to open ${what}.`;
    if (waiting.length) text += ` Until then no requests arrive for ${waiting.length === 1 ? "that account" : "those accounts"}.`;
  } else {
    text = `The system credential store did not give ${what}. Unlock your keyring, then try again with your PIN.`;
  }
  $("unlock-text").textContent = text;
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
    if (state.view === "codes") await loadCodes();
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

// ---- sign-in codes (TOTP) ------------------------------------------------

// The codes come from the app (the secrets never reach this window); each
// says until when it is valid, and the list ticks down on its own and asks
// for the next codes when one runs out. Nothing here is a live region: a
// screen reader is not told every second.

const RING = 2 * Math.PI * 15; // circumference of the countdown ring (r = 15)

async function loadCodes() {
  if (state.loadingCodes) return;
  state.loadingCodes = true;
  let fresh = null;
  try {
    fresh = await call("codes");
  } catch (e) {
    notice(errorText(e), "error");
  } finally {
    state.loadingCodes = false;
  }
  if (!fresh) return;
  // The next codes of the same accounts: only the numbers change, in place,
  // so the focus (on a Copy button, say) stays where it is.
  const shape = (list) => list.map((c) => `${c.id}:${Boolean(c.code)}:${c.label}`).join("|");
  const same = shape(fresh) === shape(state.codes) && $("code-list").children.length === fresh.length;
  state.codes = fresh;
  if (same) updateCodes();
  else renderCodes();
}

function updateCodes() {
  for (const c of state.codes) {
    const shown = document.querySelector(`.code-item[data-code-id="${c.id}"] .code`);
    if (!shown || !c.code) continue;
    shown.dataset.code = c.code;
    shown.textContent = c.code_grouped;
  }
  tickCodes();
}

function secondsLeft(c) {
  return Math.max(0, c.valid_until - nowSecs());
}

function ring() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 36 36");
  svg.setAttribute("width", "40");
  svg.setAttribute("height", "40");
  svg.setAttribute("aria-hidden", "true");
  for (const name of ["ring-track", "ring-left"]) {
    const circle = document.createElementNS(ns, "circle");
    circle.setAttribute("cx", "18");
    circle.setAttribute("cy", "18");
    circle.setAttribute("r", "15");
    circle.setAttribute("class", name);
    svg.append(circle);
  }
  return svg;
}

function renderCodes() {
  const list = $("code-list");
  // A focused button inside the list gets the focus back after the redraw.
  const active = document.activeElement;
  const activeItem = active && list.contains(active) ? active.closest(".code-item") : null;
  const refocus = activeItem ? [activeItem.dataset.codeId, active.classList.contains("copy-code") ? "copy-code" : "remove-code"] : null;
  list.replaceChildren(
    ...state.codes.map((c) => {
      const who = el("div", { class: "code-who" }, [
        el("span", { class: "code-issuer", text: c.issuer || c.account_name }),
        c.issuer ? el("span", { class: "code-account", text: c.account_name }) : null,
      ]);
      const item = el("li", { class: "code-item", "data-code-id": c.id }, [who]);
      const actions = el("div", { class: "code-actions" });
      if (c.code) {
        const timer = el("div", { class: "code-timer" }, [ring(), el("span", { class: "code-seconds", "aria-hidden": "true" })]);
        item.append(
          el("p", { class: "code-value" }, [
            el("span", { class: "code", "data-code": c.code, text: c.code_grouped }),
            el("span", { class: "visually-hidden code-left" }),
          ]),
          timer,
        );
        const copy = el("button", {
          type: "button",
          class: "secondary copy-code",
          text: "Copy",
          "aria-label": `Copy the code for ${c.label}`,
        });
        copy.addEventListener("click", () => copyCode(c.id));
        actions.append(copy);
      } else {
        item.classList.add("closed");
        item.classList.toggle("locked", c.code_state === "locked");
        item.append(el("p", { class: "code-problem", text: c.problem || "The secret of this account is not open." }));
      }
      const remove = el("button", { type: "button", class: "secondary remove-code", text: "Remove", "aria-label": `Remove ${c.label}` });
      remove.addEventListener("click", () => removeCode(c));
      actions.append(remove);
      item.append(actions);
      return item;
    }),
  );
  $("codes-empty").hidden = state.codes.length > 0;
  $("add-code").hidden = state.codes.length === 0;
  if (refocus) {
    const again = list.querySelector(`.code-item[data-code-id="${refocus[0]}"] .${refocus[1]}`);
    if (again) again.focus();
  }
  tickCodes();
}

// Once a second while the list shows: the seconds left and the ring; the
// next codes are fetched as soon as one runs out.
function tickCodes() {
  if (state.view !== "codes") return;
  let stale = false;
  for (const c of state.codes) {
    if (!c.code) continue;
    const item = document.querySelector(`.code-item[data-code-id="${c.id}"]`);
    if (!item) continue;
    const left = secondsLeft(c);
    if (left === 0) stale = true;
    item.querySelector(".code-seconds").textContent = String(left);
    item.querySelector(".code-left").textContent = `, ${left} second${left === 1 ? "" : "s"} left`;
    const fraction = c.period ? left / c.period : 0;
    item.querySelector(".ring-left").style.strokeDashoffset = String(RING * (1 - fraction));
    item.classList.toggle("ending", left <= 5);
  }
  if (stale) loadCodes();
}

async function copyCode(id) {
  let c = state.codes.find((x) => x.id === id);
  if (c && c.code && secondsLeft(c) === 0) {
    await loadCodes();
    c = state.codes.find((x) => x.id === id);
  }
  if (!c || !c.code) return;
  try {
    await writeClipboard(c.code);
    notice(`Copied the code for ${c.label}.`);
  } catch {
    notice("The code could not be copied: select it and copy it by hand.", "error");
  }
}

async function writeClipboard(text) {
  if (navigator.clipboard && navigator.clipboard.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // Not allowed here: the selection way below.
    }
  }
  const field = el("textarea", { class: "visually-hidden", value: text, readOnly: true });
  document.body.append(field);
  field.select();
  const done = document.execCommand("copy");
  field.remove();
  if (!done) throw new Error("copy refused");
}

async function removeCode(c) {
  const site = c.issuer || "that website";
  const answer = await ask({
    title: `Remove ${c.label}?`,
    body:
      `This app will no longer show sign-in codes for ${c.label}, and they cannot be brought back here. ` +
      `Before you remove it, make sure you can sign in to ${site} another way (another authenticator or a recovery code), ` +
      "or turn off two-step verification there first.",
    ok: "Remove",
    danger: true,
  });
  if (answer !== "ok") return;
  try {
    await call("remove_code", { id: c.id });
    notice(`Removed ${c.label}.`);
  } catch (e) {
    notice(errorText(e), "error");
  }
  await loadStatus();
  await loadCodes();
  $("main").focus({ preventScroll: true });
}

function goAddCode() {
  show("accounts");
  $("link-input").focus();
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
  const codes = preview.link_type === "totp";
  state.offeredCodes = codes;
  show("accounts");
  $("add-step-link").hidden = true;
  $("add-step-confirm").hidden = false;
  $("device-name-field").hidden = codes;
  if (codes) {
    const from = preview.issuer ? ` from ${preview.issuer}` : "";
    $("confirm-text").textContent =
      `Add sign-in codes for ${preview.account}${from}? ` +
      `Only continue if ${preview.issuer || "the website"} showed you this link or QR code.`;
  } else {
    const who = preview.account ? `${preview.account} on ${hostOf(preview.server)}` : `an account on ${hostOf(preview.server)}`;
    $("confirm-text").textContent = `Add ${who}? Only continue if you asked for this link.`;
    if (!$("device-name").value) $("device-name").value = await call("suggested_device_name");
  }
  const newPin = !state.status.pin_set;
  $("enroll-pin").value = "";
  $("enroll-pin-confirm").value = "";
  $("enroll-pin-confirm-field").hidden = !newPin;
  $("enroll-pin-label").textContent = newPin ? "Choose an app PIN (6 to 12 digits)" : "Your app PIN";
  $("enroll-pin-hint").textContent = !newPin
    ? "The PIN you chose for this app."
    : codes
      ? "Adding an account or approving a sign-in on this device will ask for it."
      : "Approving a sign-in on this device will ask for it, so only you can approve.";
  $("enroll-pin").focus();
}

function resetEnrollment() {
  state.offeredLink = null;
  state.offeredCodes = false;
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
    if (state.offeredCodes) {
      const added = await call("add_code", { link: state.offeredLink, pin });
      resetEnrollment();
      notice(`Added ${added.label}. Its sign-in codes are shown here.`);
      await loadStatus();
      show("codes");
      return;
    }
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
  $("add-code").addEventListener("click", goAddCode);
  $("go-add-code").addEventListener("click", goAddCode);
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
    if (state.view === "codes") loadCodes();
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

  setInterval(() => {
    tickCountdown();
    tickCodes();
  }, 1000);
}

async function start() {
  wire();
  try {
    await loadStatus();
    await loadInbox();
    // Someone with sign-in codes only starts where they are.
    if (state.status.accounts.length === 0 && state.status.code_accounts > 0 && state.view === "inbox") show("codes");
  } catch (e) {
    notice(errorText(e), "error");
  }
  const link = await call("take_offered_link");
  if (link) offerLink(link);
  refreshNow(true);
}

start();
