// Assent Authenticator for the web: the page. It speaks the device protocol
// through AssentProtocol (protocol.js) and only places text here (always as
// textContent, never as HTML). No inline styles: classes and `hidden` only.
"use strict";

(function () {
  const P = window.AssentProtocol;
  const $ = (id) => document.getElementById(id);
  const VIEWS = ["welcome", "enroll", "inbox", "request", "history", "accounts", "revoked"];
  const SECOND_STEP = "Second step of your sign-in";
  const PASSKEY_PROMPT = "Confirm with your fingerprint, face or screen lock";

  const state = {
    view: null,
    account: null,
    storageProblem: null,
    link: null, // the enrollment link's values, in memory only
    registration: null, // {at, promise} of the prefetched passkey options
    supported: null,
    enrolling: false,
    pending: { requests: [], total: 0, muted_until: null, dropped: 0 },
    fetched: false,
    offline: null, // why the last fetch failed, in words
    resolved: new Map(), // request_id -> outcome, from `resolved` events
    current: null, // the request on screen (verified claims)
    final: false, // the request screen shows a final outcome
    busy: false,
    events: null,
    lastEventId: null,
    connection: "closed",
    pollTimer: null,
    pushProblem: null,
  };

  // ---- small helpers ------------------------------------------------------

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
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

  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const timeOfDay = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
  function when(secs) {
    return dateTime.format(new Date(secs * 1000));
  }

  function hostOf(url) {
    try {
      return new URL(url).host;
    } catch {
      return String(url || "");
    }
  }

  function serverHost() {
    return hostOf(state.account ? state.account.server : P.serverUrl());
  }

  function accountLabel(account = state.account) {
    return (account && (account.account || account.user)) || "your account";
  }

  function clientOf(r) {
    return r.client_name && r.client_name.trim() ? r.client_name : r.client_id;
  }

  function notice(message, kind = "ok") {
    const box = $("notice");
    box.textContent = message;
    box.className = kind === "error" ? "notice error" : "notice";
    box.hidden = false;
    clearTimeout(notice.timer);
    notice.timer = setTimeout(() => (box.hidden = true), kind === "error" ? 12000 : 6000);
  }

  // The app's own confirmation dialog. Resolves to "ok" or "cancel".
  function ask({ title, body, ok, danger = false }) {
    const dialog = $("confirm-dialog");
    $("confirm-title").textContent = title;
    $("confirm-body").textContent = body;
    const okButton = $("confirm-ok");
    okButton.textContent = ok;
    okButton.className = danger ? "danger" : "primary";
    dialog.returnValue = "cancel";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue || "cancel"), { once: true });
      if (typeof dialog.showModal === "function") {
        dialog.showModal();
        $("confirm-cancel").focus();
      } else {
        resolve(window.confirm(`${title}\n\n${body}`) ? "ok" : "cancel");
      }
    });
  }

  function isRevoked(e) {
    return e && (e.error === "device_revoked" || e.error === "unknown_device");
  }

  function isIos() {
    const ua = navigator.userAgent || "";
    return /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
  }

  function isStandalone() {
    return (window.matchMedia && window.matchMedia("(display-mode: standalone)").matches) || navigator.standalone === true;
  }

  /** "Chrome on Android", "Safari on iPhone", … (at most 64 characters). */
  function defaultDeviceName() {
    const ua = navigator.userAgent || "";
    let browser = "Web browser";
    if (/EdgA?\/|EdgiOS\/|Edg\//.test(ua)) browser = "Edge";
    else if (/SamsungBrowser\//.test(ua)) browser = "Samsung Internet";
    else if (/OPR\/|OPT\/|Opera/.test(ua)) browser = "Opera";
    else if (/Firefox\/|FxiOS\//.test(ua)) browser = "Firefox";
    else if (/CriOS\/|Chrome\/|Chromium\//.test(ua)) browser = "Chrome";
    else if (/Safari\//.test(ua)) browser = "Safari";
    let os = "";
    if (/iPhone|iPod/.test(ua)) os = "iPhone";
    else if (/iPad/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) os = "iPad";
    else if (/Android/.test(ua)) os = "Android";
    else if (/CrOS/.test(ua)) os = "ChromeOS";
    else if (/Windows/.test(ua)) os = "Windows";
    else if (/Macintosh|Mac OS X/.test(ua)) os = "Mac";
    else if (/Linux/.test(ua)) os = "Linux";
    return (os ? `${browser} on ${os}` : browser).slice(0, 64);
  }

  // ---- navigation -----------------------------------------------------------

  function navigate(hash, { replace = false } = {}) {
    const url = new URL("./", location.href);
    url.hash = hash ? hash.replace(/^#?/, "#") : "";
    if (url.href !== location.href) {
      if (replace) history.replaceState(null, "", url.href);
      else history.pushState(null, "", url.href);
    }
    route();
  }

  function route() {
    if (!state.account) {
      if (state.view !== "enroll" || !state.link) show("welcome");
      return;
    }
    if (state.account.revoked) {
      renderRevoked();
      show("revoked");
      return;
    }
    let hash = location.hash.slice(1);
    try {
      hash = decodeURIComponent(hash);
    } catch {
      // left as it is
    }
    if (hash.startsWith("request/")) {
      const id = hash.slice("request/".length);
      if (state.view === "request" && state.current && state.current.request_id === id) return;
      openRequest(id);
    } else if (hash === "history") show("history");
    else if (hash === "accounts") show("accounts");
    else if (state.view === "enroll" && state.link && !location.hash) show("enroll", { focus: false });
    else show("inbox");
  }

  function show(view, { focus = true } = {}) {
    const changed = state.view !== view;
    state.view = view;
    for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
    const enrolled = Boolean(state.account && !state.account.revoked);
    $("nav").hidden = !enrolled;
    $("refresh").hidden = !enrolled;
    for (const button of document.querySelectorAll("nav .nav")) {
      const active = button.dataset.view === view || (view === "request" && button.dataset.view === "inbox");
      if (active) button.setAttribute("aria-current", "page");
      else button.removeAttribute("aria-current");
    }
    if (view !== "request") {
      state.current = null;
      state.final = false;
    }
    if (view === "history") renderHistory();
    if (view === "accounts") {
      placePush("accounts");
      renderAccounts();
    }
    if (view === "inbox") {
      if (offerPush()) placePush("inbox");
      else $("push-parking").append($("push-panel"));
      renderInbox();
    }
    renderBanners();
    updateTitle();
    if (focus && changed) focusHeading(view);
  }

  function focusHeading(view) {
    const heading = view === "request" ? $("request-binding") : document.querySelector(`#view-${view} h1`);
    window.scrollTo(0, 0);
    if (heading) heading.focus({ preventScroll: true });
  }

  function updateTitle() {
    const count = liveRequests().length;
    document.title = count ? `(${count}) Assent Authenticator` : "Assent Authenticator";
  }

  // ---- banners ---------------------------------------------------------------

  function banner(text, { error = false, action = null } = {}) {
    const node = el("div", { class: error ? "banner error" : "banner" }, [el("p", { text })]);
    if (action) {
      const button = el("button", { type: "button", class: "secondary small-button", text: action.label });
      button.addEventListener("click", action.run);
      node.append(button);
    }
    return node;
  }

  function renderBanners() {
    const box = $("banners");
    const items = [];
    if (state.storageProblem) items.push(banner(state.storageProblem, { error: true }));
    const enrolled = state.account && !state.account.revoked;
    if (enrolled && ["inbox", "request", "accounts"].includes(state.view)) {
      if (state.offline) {
        items.push(
          banner(
            `Offline. ${state.offline} The app keeps trying; requests appear as soon as the connection is back.`,
          ),
        );
      }
      const hidden = state.pending.dropped;
      if (hidden > 0) {
        items.push(
          banner(
            `${hidden === 1 ? "A request was" : `${hidden} requests were`} hidden because ` +
              "the server's signature on it did not check out. It may have been tampered with on the way; " +
              "tell your administrator.",
            { error: true },
          ),
        );
      }
      const muted = state.pending.muted_until;
      if (muted && muted > nowSecs()) {
        items.push(
          banner(
            `Sign-in requests for ${accountLabel()} are paused until ${timeOfDay.format(new Date(muted * 1000))}, ` +
              "because you said a request wasn\u2019t you (or denied several in a row). Your administrator has been told. " +
              "If you did not start those requests, someone may know your password: change it. " +
              "If you want to sign in yourself now, resume requests.",
            { action: { label: "Resume requests", run: resume } },
          ),
        );
      }
    }
    box.replaceChildren(...items);
  }

  async function resume() {
    if (!state.account) return;
    const answer = await P.unmute(state.account);
    if (answer.status === 200) {
      state.pending.muted_until = null;
      notice(`Requests for ${accountLabel()} arrive again.`);
    } else {
      notice(refusalText(answer.body), "error");
    }
    renderBanners();
    refresh();
  }

  // ---- requests in words -------------------------------------------------------

  function describeScope(scope) {
    const words = {
      openid: "Confirm that it is you",
      profile: "See your name and profile details",
      email: "See your e-mail address",
      phone: "See your phone number",
      address: "See your postal address",
      offline_access: "Stay signed in (keep access after this session)",
    };
    return { scope, description: words[scope] || `Permission \u201c${scope}\u201d` };
  }

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

  /** `payment_initiation` → `Payment initiation`, `creditorName` → `Creditor name`. */
  function humanize(key) {
    let words = "";
    let previousLower = false;
    for (const c of String(key)) {
      if (c === "_" || c === "-") {
        words += " ";
        previousLower = false;
      } else if (/\p{Lu}/u.test(c) && previousLower) {
        words += " " + c.toLowerCase();
        previousLower = false;
      } else {
        previousLower = /\p{Ll}|[0-9]/u.test(c);
        words += c;
      }
    }
    return words ? words[0].toUpperCase() + words.slice(1) : words;
  }

  function plain(value) {
    if (typeof value === "string") return value;
    if (value === null) return "\u2014";
    if (value === true) return "yes";
    if (value === false) return "no";
    return JSON.stringify(value);
  }

  function flatten(label, value, rows) {
    if (isObject(value) && Object.keys(value).length) {
      for (const [key, inner] of Object.entries(value)) flatten(`${label} \u203a ${humanize(key)}`, inner, rows);
    } else if (Array.isArray(value) && value.every((v) => !isObject(v) && !Array.isArray(v))) {
      rows.push([label, value.map(plain).join(", ")]);
    } else if (Array.isArray(value)) {
      value.forEach((inner, i) => flatten(`${label} ${i + 1}`, inner, rows));
    } else {
      rows.push([label, plain(value)]);
    }
  }

  function remainingRows(fields, shown, rows) {
    for (const [key, value] of Object.entries(fields)) {
      if (key !== "type" && !shown.includes(key)) flatten(humanize(key), value, rows);
    }
  }

  function genericTable(entry) {
    const title = isObject(entry) && typeof entry.type === "string" ? humanize(entry.type) : "Details";
    const rows = [];
    if (isObject(entry)) remainingRows(entry, [], rows);
    else flatten("Value", entry, rows);
    return { title, summary: null, rows };
  }

  /** An exact amount in the user's locale, or null when it cannot be read with confidence. */
  function money(amount, currency) {
    if (typeof currency !== "string" || !/^[A-Za-z]{3}$/.test(currency.trim())) return null;
    const code = currency.trim().toUpperCase();
    let text;
    if (typeof amount === "string") text = amount.trim();
    else if (typeof amount === "number" && Number.isFinite(amount) && amount >= 0) text = String(amount);
    else return null;
    if (!/^[0-9]{1,30}(\.[0-9]+)?$/.test(text)) return null;
    let format;
    try {
      format = new Intl.NumberFormat(undefined, { style: "currency", currency: code });
    } catch {
      return null;
    }
    const fraction = text.split(".")[1] || "";
    if (fraction.length > format.resolvedOptions().maximumFractionDigits) return null;
    return format.format(text); // a string keeps the decimal exact where supported
  }

  function groupIban(iban) {
    return iban.replace(/\s+/g, "").replace(/(.{4})(?=.)/g, "$1 ");
  }

  function accountInWords(account) {
    if (!isObject(account) || Object.keys(account).length !== 1) return null;
    const [kind, value] = Object.entries(account)[0];
    if (typeof value !== "string") return null;
    if (kind === "iban") return groupIban(value);
    if (["bban", "pan", "maskedPan", "msisdn"].includes(kind)) return value;
    return null;
  }

  function payment(fields) {
    const amount = fields.instructedAmount;
    if (!isObject(amount) || Object.keys(amount).length !== 2) return null;
    const written = money(amount.amount, amount.currency);
    if (!written) return null;
    let creditor = null;
    if ("creditorName" in fields) {
      if (typeof fields.creditorName === "string" && fields.creditorName.trim()) creditor = fields.creditorName.trim();
      else return null;
    }
    const rows = [["Amount", written]];
    const shown = ["instructedAmount"];
    if (creditor) {
      rows.push(["To", creditor]);
      shown.push("creditorName");
    }
    for (const [key, label] of [
      ["creditorAccount", "To account"],
      ["debtorAccount", "From account"],
    ]) {
      const words = key in fields ? accountInWords(fields[key]) : null;
      if (words) {
        rows.push([label, words]);
        shown.push(key);
      }
    }
    if (typeof fields.remittanceInformationUnstructured === "string") {
      rows.push(["Reference", fields.remittanceInformationUnstructured]);
      shown.push("remittanceInformationUnstructured");
    }
    remainingRows(fields, shown, rows);
    return { title: "Payment", summary: creditor ? `Pay ${written} to ${creditor}` : `Pay ${written}`, rows };
  }

  function wordsList(items) {
    if (items.length <= 1) return items.join("");
    return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
  }

  function accountAccess(fields) {
    const actionWords = {
      list_accounts: "your account list",
      read_balances: "balances",
      read_transactions: "transactions",
      read_account_details: "your account details",
      read_accounts: "your account details",
    };
    const what = [];
    const accounts = [];
    const shown = [];
    if ("actions" in fields) {
      if (!Array.isArray(fields.actions)) return null;
      for (const action of fields.actions) {
        if (typeof action !== "string") return null;
        what.push(actionWords[action] || humanize(action).toLowerCase());
      }
      shown.push("actions");
    }
    if ("access" in fields) {
      if (!isObject(fields.access)) return null;
      const kinds = { accounts: "your account details", balances: "balances", transactions: "transactions" };
      for (const [kind, value] of Object.entries(fields.access)) {
        if (!kinds[kind] || !Array.isArray(value)) return null;
        what.push(kinds[kind]);
        for (const account of value) {
          const named = accountInWords(account);
          if (!named) return null;
          if (!accounts.includes(named)) accounts.push(named);
        }
      }
      shown.push("access");
    }
    if (!what.length) return null;
    const unique = what.filter((w, i) => what.indexOf(w) === i);
    const list = wordsList(unique);
    const rows = [["Access", list[0].toUpperCase() + list.slice(1)]];
    if (accounts.length) rows.push(["Accounts", accounts.join(", ")]);
    if (Array.isArray(fields.locations) && fields.locations.every((l) => typeof l === "string")) {
      rows.push(["At", fields.locations.map(hostOf).join(", ")]);
      shown.push("locations");
    }
    remainingRows(fields, shown, rows);
    return {
      title: "Account access",
      summary: accounts.length ? `Read ${list} of ${accounts.join(", ")}` : `Read ${list}`,
      rows,
    };
  }

  function detailTables(details) {
    if (details === undefined || details === null) return [];
    const entries = Array.isArray(details) ? details : [details];
    return entries.map((entry) => {
      let rendered = null;
      if (isObject(entry) && entry.type === "payment_initiation") rendered = payment(entry);
      else if (isObject(entry) && entry.type === "account_information") rendered = accountAccess(entry);
      return rendered || genericTable(entry);
    });
  }

  /** What the request screen and the inbox show for a verified challenge. */
  function requestView(r) {
    const label = accountLabel();
    const client = clientOf(r);
    const tables = detailTables(r.authorization_details);
    const keyLines = tables.filter((t) => t.summary).map((t) => t.summary);
    const view = { client, tables, keyLines, scopes: (r.scope || []).map(describeScope) };
    if (r.purpose === "mfa") {
      const usual = [r.client_name, client].some((name) => r.binding_message === `Sign in to ${name}`);
      if (!usual && r.binding_message) keyLines.unshift(r.binding_message);
      view.headline = `Sign-in to ${client}`;
      view.question = `Is this you signing in to ${client}?`;
      view.intro = `${SECOND_STEP} as ${label}`;
      view.context = SECOND_STEP;
    } else {
      view.headline = r.binding_message || `Sign-in request from ${client}`;
      view.question = view.headline;
      view.intro = `${client} asks to sign in as ${label}`;
      view.context = client;
    }
    return view;
  }

  function logoOf(r) {
    const server = state.account && state.account.server;
    return server && typeof r.logo_uri === "string" && r.logo_uri.startsWith(server + "/") ? r.logo_uri : null;
  }

  // ---- inbox ---------------------------------------------------------------------

  function liveRequests() {
    const now = nowSecs();
    return state.pending.requests.filter((r) => r.exp > now);
  }

  function renderInbox() {
    const requests = liveRequests();
    const list = $("request-list");
    list.replaceChildren(
      ...requests.map((r) => {
        const v = requestView(r);
        const children = [];
        const logo = logoOf(r);
        if (logo) {
          const img = el("img", { class: "item-logo", alt: "", width: 36, height: 36, src: logo });
          img.addEventListener("error", () => (img.hidden = true));
          children.push(img);
        }
        children.push(
          el("span", { class: "binding", text: v.headline }),
          el("span", { class: "expires", "data-expires": r.exp, text: remaining(r.exp) }),
          el("span", { class: "meta", text: `${v.context} \u00b7 ${when(r.iat)}` }),
        );
        const button = el(
          "button",
          {
            type: "button",
            "aria-label": `${v.headline}. ${v.context}, for ${accountLabel()}. ${remaining(r.exp)}. Open to answer.`,
          },
          children,
        );
        button.addEventListener("click", () => navigate(`#request/${encodeURIComponent(r.request_id)}`));
        return el(
          "li",
          {
            class: "request-item",
            "data-testid": "request-item",
            "data-request-id": r.request_id,
            "data-purpose": r.purpose === "mfa" ? "mfa" : "backchannel",
          },
          [button],
        );
      }),
    );
    const enrolled = state.account && !state.account.revoked;
    $("inbox-empty").hidden = requests.length > 0 || !enrolled || !state.fetched;
    $("inbox-subtitle").textContent =
      requests.length === 0
        ? state.fetched || state.offline
          ? ""
          : "Checking for requests\u2026"
        : `${requests.length} request${requests.length === 1 ? "" : "s"} waiting. Only approve what you started yourself.`;
    const count = $("inbox-count");
    count.textContent = String(requests.length);
    count.hidden = requests.length === 0;
    updateTitle();
    if (navigator.setAppBadge) {
      (requests.length ? navigator.setAppBadge(requests.length) : navigator.clearAppBadge()).catch(() => {});
    }
  }

  // ---- request screen ---------------------------------------------------------------

  function renderRequest(r) {
    const v = requestView(r);
    $("request-card").dataset.purpose = r.purpose === "mfa" ? "mfa" : "backchannel";
    $("request-intro").textContent = v.intro;
    const logo = $("request-logo");
    const logoUrl = logoOf(r);
    logo.hidden = !logoUrl;
    if (logoUrl) logo.src = logoUrl;
    else logo.removeAttribute("src");
    const website = $("request-website");
    const site = r.client_uri ? hostOf(r.client_uri) : "";
    website.hidden = !site;
    website.textContent = site ? `Website: ${site}` : "";
    $("request-binding").textContent = v.question;
    $("request-key-lines").replaceChildren(...v.keyLines.map((line) => el("li", { text: line })));
    $("request-scopes").replaceChildren(...v.scopes.map((s) => el("li", { text: s.description, title: s.scope })));
    const audience = $("request-audience");
    const audiences = Array.isArray(r.audience) ? r.audience.join(", ") : r.audience;
    audience.hidden = !audiences;
    audience.textContent = audiences ? `For use with: ${audiences}` : "";
    $("request-details").replaceChildren(
      ...v.tables.map((table) =>
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
    $("request-client").textContent = v.client;
    $("request-client-id").textContent = r.client_id;
    $("request-account").textContent = `${accountLabel()} on ${serverHost()}`;
    const requester = r.requester || {};
    $("request-ip").textContent = requester.ip || "Not given";
    $("request-ua").textContent = requester.user_agent || "Not given";
    $("request-id").textContent = r.request_id;
    $("request-time").textContent = when(r.iat);
    $("technical").open = false;

    const digits = r.match_code_digits;
    const field = $("match-code");
    $("match-field").hidden = !digits;
    field.value = "";
    if (digits) {
      field.maxLength = digits;
      field.pattern = `[0-9]{${digits}}`;
      field.required = true;
      $("match-label").textContent = `Enter the number shown by ${v.client}`;
    } else {
      field.removeAttribute("pattern");
      field.removeAttribute("maxlength");
      field.required = false;
    }
    $("decision-bar").hidden = false;
    $("outcome-actions").hidden = true;
    $("passkey-status").hidden = true;
    setOutcome("");
    state.final = false;
    setDecisionEnabled(true);
    tickCountdown();
  }

  function setDecisionEnabled(enabled) {
    for (const id of ["approve", "deny", "not-me", "match-code"]) $(id).disabled = !enabled;
  }

  /** Shows a message in the outcome box; a final one ends the request screen's choices. */
  function setOutcome(text, kind = "info", final = false) {
    const box = $("outcome");
    box.textContent = text;
    box.className = `outcome ${kind}`;
    box.hidden = !text;
    if (final) {
      state.final = true;
      $("decision-bar").hidden = true;
      $("match-field").hidden = true;
      $("passkey-status").hidden = true;
      $("outcome-actions").hidden = false;
      box.focus();
    }
  }

  function tickCountdown() {
    for (const node of document.querySelectorAll("[data-expires]")) {
      const expires = Number(node.dataset.expires);
      node.textContent = remaining(expires);
      node.classList.toggle("urgent", expires - nowSecs() <= 30);
    }
    const r = state.current;
    if (state.view === "request" && r) {
      const left = r.exp - nowSecs();
      const countdown = $("request-countdown");
      countdown.textContent = state.final ? "" : remaining(r.exp);
      countdown.classList.toggle("urgent", left <= 30);
      if (left <= 0 && !state.busy && !state.final) {
        setOutcome("This request has expired. If you still want to sign in, start again.", "error", true);
      }
    }
    if (state.pending.requests.some((r) => r.exp <= nowSecs()) && liveRequests().length !== $("request-list").children.length) {
      renderInbox();
    }
  }

  async function openRequest(id) {
    let r = state.pending.requests.find((x) => x.request_id === id);
    if (!r) {
      await refresh();
      r = state.pending.requests.find((x) => x.request_id === id);
    }
    if (!state.account || state.account.revoked) return;
    if (!r || r.exp <= nowSecs()) {
      notice("This request is no longer waiting: it was answered on another device, withdrawn, or it expired.", "error");
      navigate("", { replace: true });
      return;
    }
    state.current = r;
    $("notice").hidden = true;
    renderRequest(r);
    state.view = null; // so that show() moves the focus even from another request
    show("request");
    state.current = r;
  }

  /** After a fetch: a request on screen that left the list was answered elsewhere. */
  function checkCurrent() {
    const r = state.current;
    if (state.view !== "request" || !r || state.busy || state.final) return;
    if (state.pending.requests.some((x) => x.request_id === r.request_id)) return;
    const outcome = state.resolved.get(r.request_id);
    setOutcome(
      outcome === "approved"
        ? "This request was approved on another device."
        : outcome === "denied"
          ? "This request was denied on another device."
          : "This request is no longer waiting: it was answered on another device, withdrawn, or it expired.",
      "error",
      true,
    );
  }

  // ---- deciding --------------------------------------------------------------------

  function passkeyProblem(e) {
    const name = e && e.name;
    if (name === "NotAllowedError") {
      return "The check with your fingerprint, face or screen lock was cancelled or timed out. Nothing was sent: try again.";
    }
    if (name === "AbortError") return "The check with your fingerprint, face or screen lock was interrupted. Nothing was sent: try again.";
    if (name === "InvalidStateError" || name === "NotFoundError") {
      return "This phone no longer has the passkey it enrolled with (it may have been deleted in the phone's settings). Remove this phone and enroll it again with a new link.";
    }
    if (name === "SecurityError") {
      return `The browser refused to use the passkey at this address (${location.host}). Open the app at ${serverHost()}.`;
    }
    return `Your answer could not be prepared (${(e && e.message) || e}). Nothing was sent.`;
  }

  function refusalText(body) {
    const b = body || {};
    const host = serverHost();
    switch (b.error) {
      case "network":
        return `Cannot reach ${host}. Check your network connection and try again.`;
      case "server_error":
        return `${host} had a problem and could not take your answer. Try again in a moment.`;
      case "device_revoked":
      case "unknown_device":
        return `${host} no longer knows this phone: it was removed. Enroll it again with a new link.`;
      case "user_blocked":
        return `${host} has blocked this account, so approvals from it do not count. Ask your administrator.`;
      case "invalid_proof":
        return `${host} did not accept this phone's signature (${b.error_description}). Check that the phone's date and time are set automatically, then try again.`;
      default:
        return `${host} refused: ${b.error_description || b.error || "no reason given"}.`;
    }
  }

  async function answer(kind) {
    const r = state.current;
    if (!r || state.busy || state.final || !state.account) return;
    const client = clientOf(r);
    let matchCode;
    if (kind === "approve" && r.match_code_digits) {
      const code = $("match-code").value.trim();
      if (!new RegExp(`^[0-9]{${r.match_code_digits}}$`).test(code)) {
        setOutcome(`Enter the ${r.match_code_digits}-digit number shown by ${client}, then approve.`, "error");
        $("match-code").focus();
        return;
      }
      matchCode = code;
    }
    if (r.exp <= nowSecs()) {
      setOutcome("This request has expired. If you still want to sign in, start again.", "error", true);
      return;
    }
    state.busy = true;
    setDecisionEnabled(false);
    setOutcome("");
    const prompt = $("passkey-status");
    prompt.textContent = PASSKEY_PROMPT;
    prompt.hidden = false;
    let result;
    try {
      result = await P.decide(state.account, r, kind === "approve" ? "approve" : "deny", {
        denyReason: kind === "not_me" ? "not_me" : undefined,
        matchCode,
      });
    } catch (e) {
      state.busy = false;
      prompt.hidden = true;
      setDecisionEnabled(true);
      setOutcome(passkeyProblem(e), "error");
      return;
    }
    prompt.hidden = true;
    try {
      await decided(r, kind, result);
    } finally {
      state.busy = false;
    }
  }

  async function record(r, outcome) {
    try {
      await P.addHistory({
        time: nowSecs(),
        client_name: clientOf(r),
        binding_message: r.binding_message,
        outcome,
        request_id: r.request_id,
        purpose: r.purpose === "mfa" ? "mfa" : "backchannel",
      });
    } catch {
      // history is a convenience
    }
  }

  function dropRequest(id) {
    state.pending.requests = state.pending.requests.filter((x) => x.request_id !== id);
    renderInbox();
  }

  async function decided(r, kind, result) {
    const client = clientOf(r);
    const headline = requestView(r).headline;
    const body = result.body || {};
    if (result.status === 200) {
      const outcome = kind === "not_me" ? "not_me" : body.status === "approved" ? "approved" : "denied";
      const words = { approved: "Approved", denied: "Denied", not_me: "Denied and reported as not you" };
      let text = `${words[outcome]}: \u201c${headline}\u201d.`;
      if (Number.isSafeInteger(body.muted_until)) {
        state.pending.muted_until = body.muted_until;
        text +=
          ` New sign-in requests are paused until ${timeOfDay.format(new Date(body.muted_until * 1000))}` +
          " and your administrator has been told.";
      }
      await record(r, outcome);
      dropRequest(r.request_id);
      setOutcome(text, outcome === "approved" ? "ok" : "info", true);
      renderBanners();
      refresh();
      return;
    }
    const description = body.error_description || "";
    switch (body.error) {
      case "wrong_match_code": {
        if (/denied/i.test(description)) {
          await record(r, "denied");
          dropRequest(r.request_id);
          setOutcome(
            "That was the third wrong number, so the request was denied. If you were signing in, start again and type the number shown on that screen.",
            "error",
            true,
          );
          return;
        }
        const left = /(\d+) attempts? left/.exec(description);
        const tries = left ? `${left[1]} attempt${left[1] === "1" ? "" : "s"} left` : "after three wrong numbers the request is denied";
        setDecisionEnabled(true);
        setOutcome(`That is not the number ${client} shows. Check it and type it again: ${tries}.`, "error");
        $("match-code").select();
        $("match-code").focus();
        return;
      }
      case "match_code_required":
        setDecisionEnabled(true);
        setOutcome(`Enter the number shown by ${client}, then approve.`, "error");
        if (!$("match-field").hidden) $("match-code").focus();
        return;
      case "request_not_pending":
        dropRequest(r.request_id);
        setOutcome("This request was already answered, perhaps on another device.", "error", true);
        return;
      case "request_expired":
        dropRequest(r.request_id);
        setOutcome("This request has expired. If you still want to sign in, start again.", "error", true);
        return;
      case "unknown_request":
        dropRequest(r.request_id);
        setOutcome("This request is no longer waiting: it was answered on another device, withdrawn, or it expired.", "error", true);
        return;
      case "challenge_mismatch":
        setOutcome(
          "The server holds a different version of this request than the one shown, so your answer was refused. Nothing was decided; tell your administrator.",
          "error",
          true,
        );
        refresh();
        return;
      case "invalid_passkey":
        setDecisionEnabled(true);
        setOutcome(
          `${serverHost()} did not accept this phone's passkey (${description}). Nothing was decided: try again. If it keeps happening, remove this phone and enroll it again.`,
          "error",
        );
        return;
      case "passkey_required":
        setOutcome(
          `${serverHost()} expects this phone's passkey with every answer and did not get it. Nothing was decided. Remove this phone and enroll it again.`,
          "error",
          true,
        );
        return;
      case "user_verification_required":
        setDecisionEnabled(true);
        setOutcome(`${client} asks that you confirm it is you, and the server did not see that. Try again.`, "error");
        return;
      case "device_revoked":
      case "unknown_device":
        setOutcome(refusalText(body), "error", true);
        markRevoked();
        return;
      case "user_blocked":
        setOutcome(refusalText(body), "error", true);
        return;
      default:
        setDecisionEnabled(true);
        setOutcome(refusalText(result.status === 0 ? { error: "network" } : body), "error");
    }
  }

  // ---- fetching and live updates ----------------------------------------------------------

  let refreshing = null;
  let refreshAgain = false;

  function refresh() {
    if (!state.account || state.account.revoked) return Promise.resolve();
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    const account = state.account;
    const button = $("refresh");
    button.classList.add("spinning");
    refreshing = (async () => {
      try {
        const pending = await P.fetchPending(account);
        if (state.account !== account) return;
        state.pending = pending;
        state.fetched = true;
        state.offline = null;
      } catch (e) {
        if (state.account !== account) return;
        if (isRevoked(e)) {
          markRevoked();
          return;
        }
        state.offline =
          e && e.error === "network"
            ? `Cannot reach ${serverHost()}.`
            : `${serverHost()} did not give the requests: ${(e && (e.error_description || e.message)) || e}.`;
      } finally {
        button.classList.remove("spinning");
      }
      renderInbox();
      renderBanners();
      checkCurrent();
    })().finally(() => {
      refreshing = null;
      if (refreshAgain) {
        refreshAgain = false;
        refresh();
      }
    });
    return refreshing;
  }

  let lastFocusRefresh = 0;
  function refreshSoon() {
    if (Date.now() - lastFocusRefresh < 2000) return;
    lastFocusRefresh = Date.now();
    refresh();
  }

  let eventTimer = null;
  function onEvent(event) {
    const data = event.data && typeof event.data === "object" ? event.data : {};
    switch (event.event) {
      case "request":
      case "resync":
        clearTimeout(eventTimer);
        eventTimer = setTimeout(refresh, 150);
        break;
      case "resolved":
        if (data.request_id && data.outcome) state.resolved.set(data.request_id, data.outcome);
        clearTimeout(eventTimer);
        eventTimer = setTimeout(refresh, 150);
        break;
      case "enrolled": {
        const device = data.device || {};
        const name = device.name || "a new device";
        notice(
          `A new device, \u201c${name}\u201d${device.platform ? ` (${device.platform})` : ""}, can now approve sign-ins for ${accountLabel()}. ` +
            "If you did not add it, tell your administrator now.",
          "error",
        );
        P.addHistory({
          time: nowSecs(),
          client_name: name,
          binding_message: device.platform || "",
          outcome: "device_added",
          request_id: data.request_id || "",
        })
          .then(() => state.view === "history" && renderHistory())
          .catch(() => {});
        break;
      }
      case "revoked":
        markRevoked();
        break;
      default:
        break;
    }
  }

  function startLive() {
    if (!state.account || state.account.revoked || document.hidden) return;
    if (!state.events) {
      state.events = P.openEvents(state.account, onEvent, {
        lastEventId: state.lastEventId,
        onState: (s) => {
          state.connection = s;
          if (state.view === "accounts") renderConnection();
        },
      });
    }
    schedulePoll();
  }

  function stopLive() {
    if (state.events) {
      state.lastEventId = state.events.lastEventId;
      state.events.close();
      state.events = null;
    }
    clearTimeout(state.pollTimer);
  }

  function schedulePoll() {
    clearTimeout(state.pollTimer);
    if (!state.account || state.account.revoked || document.hidden) return;
    const policy = state.account.policy || {};
    const base = (Number.isSafeInteger(policy.poll_interval_secs) && policy.poll_interval_secs > 0 ? policy.poll_interval_secs : 30) * 1000;
    state.pollTimer = setTimeout(() => refresh().finally(schedulePoll), base * (0.8 + Math.random() * 0.4));
  }

  async function markRevoked() {
    stopLive();
    if (!state.account || state.account.revoked) return;
    state.account.revoked = true;
    state.pending = { requests: [], total: 0, muted_until: null, dropped: 0 };
    renderInbox();
    try {
      await P.saveAccount(state.account);
    } catch {
      // shown anyway
    }
    if (state.view === "request" && state.final) {
      // the outcome stays readable; the next navigation shows the revoked screen
      $("nav").hidden = true;
      return;
    }
    navigate("", { replace: true });
  }

  function renderRevoked() {
    $("revoked-text").textContent =
      `${serverHost()} no longer accepts this phone for ${accountLabel()}: an administrator removed it, ` +
      "or it was removed from another place. It can no longer approve sign-ins.";
  }

  // ---- history ----------------------------------------------------------------------

  async function renderHistory() {
    let entries = [];
    try {
      entries = await P.listHistory();
    } catch {
      entries = [];
    }
    const words = { approved: "Approved", denied: "Denied", not_me: "Denied: not me", device_added: "Device added" };
    $("history-list").replaceChildren(
      ...entries.map((h) =>
        el("li", { class: "history-item", "data-request-id": h.request_id || "" }, [
          el("span", {
            class: "what",
            text: h.outcome === "device_added" ? `New device: ${h.client_name}` : h.binding_message || h.client_name,
          }),
          el("span", {
            class: "meta",
            text:
              h.outcome === "device_added"
                ? `${h.binding_message ? `${h.binding_message} \u00b7 ` : ""}${when(h.time)}`
                : `${h.client_name} \u00b7 ${when(h.time)}`,
          }),
          el("span", { class: `choice pill ${h.outcome}`, text: words[h.outcome] || h.outcome }),
        ]),
      ),
    );
    $("history-list").hidden = entries.length === 0;
    $("history-empty").hidden = entries.length > 0;
  }

  // ---- accounts and notifications ----------------------------------------------------

  function renderConnection() {
    const pill = $("account-connection");
    const words = { live: "Live", connecting: "Connecting", offline: "Offline", closed: "Not connected" };
    const s = state.account && state.account.revoked ? "revoked" : state.connection;
    pill.className = `pill ${s}`;
    pill.textContent = s === "revoked" ? "Removed on server" : words[s] || s;
  }

  function renderAccounts() {
    const a = state.account;
    if (!a) return;
    $("account-label").textContent = accountLabel(a);
    $("account-server").textContent = a.server;
    $("account-device-name").textContent = a.name;
    $("account-device-id").textContent = a.device_id;
    renderConnection();
    renderPush();
  }

  function placePush(where) {
    $(`push-slot-${where}`).append($("push-panel"));
    $("push-dismiss").hidden = where !== "inbox";
    renderPush();
  }

  /** The inbox offers notifications until they are on or the offer is put aside. */
  function offerPush() {
    return Boolean(state.account && !state.account.revoked && !pushOn() && !state.account.push_offer_dismissed);
  }

  async function dismissPush() {
    if (!state.account) return;
    state.account.push_offer_dismissed = true;
    $("push-parking").append($("push-panel"));
    $("inbox-title").focus();
    try {
      await P.saveAccount(state.account);
    } catch {
      // asked again next time
    }
  }

  function pushSupport() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }

  function pushUnavailableText() {
    if (isIos() && !isStandalone()) {
      return (
        "On iPhone and iPad, notifications work only for apps on the Home Screen: tap Share, then \u201cAdd to Home Screen\u201d, " +
        "open Assent from the Home Screen and turn notifications on there (iOS 16.4 or later). " +
        "Until then the app checks for requests whenever it is open."
      );
    }
    return "This browser cannot show notifications for this app. The app checks for requests whenever it is open.";
  }

  function pushOn() {
    return Boolean(state.account && state.account.push && "Notification" in window && Notification.permission === "granted");
  }

  function renderPush() {
    const on = pushOn();
    $("push-state").textContent = on
      ? "Notifications are on: a new request shows on this phone even when the app is closed."
      : "Notifications are off. The app checks for requests whenever it is open.";
    let help = state.pushProblem;
    if (!help && !on) {
      if (!pushSupport()) help = pushUnavailableText();
      else if (Notification.permission === "denied") {
        help = "Notifications are blocked for this site. Allow them in the browser's site settings, then tap \u201cTurn on notifications\u201d again.";
      }
    }
    $("push-help").textContent = help || "";
    $("push-help").hidden = !help;
    $("notifications").hidden = on;
    $("account-push").textContent = on ? "On" : "Off";
  }

  function pushFailureText(e) {
    if (e instanceof P.AssentError && e.status) return refusalText({ error: e.error, error_description: e.error_description });
    let text = `Notifications could not be set up in this browser (${(e && e.message) || e}).`;
    if (isIos() && !isStandalone()) text += " " + pushUnavailableText();
    else text += " The app checks for requests whenever it is open.";
    return text;
  }

  async function turnOnNotifications() {
    if (!state.account) return;
    state.pushProblem = null;
    if (!pushSupport()) {
      state.pushProblem = pushUnavailableText();
      renderPush();
      return;
    }
    const button = $("notifications");
    button.disabled = true;
    try {
      let permission = Notification.permission;
      if (permission !== "granted") permission = await Notification.requestPermission();
      if (permission !== "granted") {
        state.pushProblem =
          permission === "denied"
            ? "Notifications are blocked for this site. Allow them in the browser's site settings, then tap \u201cTurn on notifications\u201d again. Meanwhile the app checks for requests whenever it is open."
            : "Notifications were not allowed. Tap \u201cTurn on notifications\u201d again to allow them; meanwhile the app checks for requests whenever it is open.";
        return;
      }
      await P.subscribePush(state.account);
      notice("Notifications are on.");
    } catch (e) {
      if (isRevoked(e)) markRevoked();
      state.pushProblem = pushFailureText(e);
    } finally {
      button.disabled = false;
      renderPush();
    }
  }

  async function removePhone() {
    const a = state.account;
    if (!a) return;
    const answer = await ask({
      title: "Remove this phone?",
      body:
        `${accountLabel(a)} on ${hostOf(a.server)} is removed from this phone, which will no longer be able to approve ` +
        "sign-ins for it. You will need a new enrollment link to add it again. The passkey it made stays in your " +
        "phone's passkeys; you may delete it there.",
      ok: "Remove",
      danger: true,
    });
    if (answer !== "ok") return;
    const result = await P.unenroll(a);
    const gone = result.body && isRevoked(result.body);
    if (result.status !== 200 && !gone) {
      if (result.status === 0) {
        const anyway = await ask({
          title: "Remove it from this phone only?",
          body: `Cannot reach ${hostOf(a.server)}. The server will still list this phone until an administrator removes it.`,
          ok: "Remove from this phone",
          danger: true,
        });
        if (anyway !== "ok") return;
        await P.forgetAccount().catch(() => {});
      } else {
        notice(refusalText(result.body), "error");
        return;
      }
    }
    stopLive();
    state.account = null;
    state.pending = { requests: [], total: 0, muted_until: null, dropped: 0 };
    renderInbox();
    notice(`This phone was removed from ${accountLabel(a)}.`);
    navigate("", { replace: true });
  }

  async function forgetRevoked() {
    await P.forgetAccount().catch(() => {});
    try {
      const registration = await navigator.serviceWorker.getRegistration("./");
      const subscription = registration && registration.pushManager && (await registration.pushManager.getSubscription());
      if (subscription) await subscription.unsubscribe();
    } catch {
      // nothing to drop
    }
    state.account = null;
    navigate("", { replace: true });
  }

  // ---- enrollment ----------------------------------------------------------------------

  /** The values of /authenticator/enroll#v=1&ticket=…, read once and dropped from the address bar. */
  function takeEnrollmentLink() {
    if (!/\/enroll\/?$/.test(location.pathname)) return null;
    const params = new URLSearchParams(location.hash.slice(1));
    history.replaceState(null, "", location.pathname);
    const link = {
      v: params.get("v") || "",
      ticket: params.get("ticket") || "",
      pin: params.get("pin") || "",
      account: params.get("account") || "",
    };
    link.complete = Boolean(link.ticket && link.pin);
    return link;
  }

  async function passkeySupport() {
    if (!window.isSecureContext) {
      return "This page is not on a secure (https) connection, so the browser offers no passkeys here.";
    }
    const PKC = window.PublicKeyCredential;
    if (!PKC || !navigator.credentials) {
      return "This browser cannot keep a passkey unlocked with your fingerprint, face or screen lock.";
    }
    try {
      const available =
        typeof PKC.isUserVerifyingPlatformAuthenticatorAvailable === "function" &&
        (await PKC.isUserVerifyingPlatformAuthenticatorAvailable());
      if (!available) {
        return "This browser cannot keep a passkey unlocked with your fingerprint, face or screen lock on this device (or no screen lock is set).";
      }
    } catch {
      return "This browser cannot keep a passkey unlocked with your fingerprint, face or screen lock.";
    }
    return null;
  }

  function enrollmentProblem(e) {
    const host = hostOf(P.serverUrl());
    const name = e && e.name;
    if (name === "NotAllowedError") return "The passkey was not made: the request was cancelled or timed out. Try again.";
    if (name === "InvalidStateError") {
      return "This phone already keeps a passkey for this account from an earlier enrollment. Delete it in your phone's passwords and passkeys settings, then try again.";
    }
    if (name === "SecurityError") {
      return `The browser refused to make a passkey for ${host}: passkeys need https (or http://localhost) and a host name, not an IP address. Ask your administrator.`;
    }
    if (name === "NotSupportedError") return "This browser cannot make the kind of passkey the server asks for. Try Chrome on Android or Safari on iPhone.";
    if (name === "AbortError") return "Making the passkey was interrupted. Try again.";
    const code = e && e.error;
    const description = (e && e.error_description) || "";
    switch (code) {
      case "invalid_ticket":
        return "The server does not recognise this enrollment link. Ask for a new one.";
      case "ticket_used":
        return "This enrollment link was already used. Each link works once: ask for a new one.";
      case "ticket_expired":
        return "This enrollment link has expired. Ask for a new one.";
      case "pin_mismatch":
        return `${host} did not prove it is the server named in the enrollment link. This phone was not enrolled: ask your administrator for a new link.`;
      case "passkey_refused":
        return `${host} did not accept the passkey this phone made (${description}). Passkeys must be unlocked with your fingerprint, face or screen lock. Try again, or ask for a new link.`;
      case "key_in_use":
        return "This passkey or key is already enrolled for another device. Try again; if it happens again, ask for a new link.";
      case "network":
        return `Cannot reach ${host}. Check your network connection and try again.`;
      case "invalid_request":
        if (/host name/i.test(description)) {
          return `${host} cannot use passkeys: its address has no host name. Ask your administrator to give the server a name (https://assent.example, or http://localhost for trials).`;
        }
        return `${host} refused: ${description}.`;
      case "protocol":
        return `${host} gave an answer the app does not understand (${description}).`;
      default:
        if (e instanceof P.AssentError) return `${host} refused: ${description || code}.`;
        return `This phone could not be enrolled (${(e && e.message) || e}).`;
    }
  }

  function prefetchRegistration() {
    const link = state.link;
    const entry = { at: Date.now(), promise: P.passkeyRegistration(link.ticket) };
    entry.promise.catch((e) => {
      if (state.registration !== entry) return;
      state.registration = null;
      // Said at once; the button stays, and asks the server again when tapped.
      if (["invalid_ticket", "ticket_used", "ticket_expired", "invalid_request"].includes(e && e.error)) {
        $("enroll-error").textContent = enrollmentProblem(e);
      }
    });
    state.registration = entry;
  }

  async function showEnrollment(link) {
    state.link = link;
    $("enroll-account").textContent = link.account || "Your account";
    $("enroll-server").textContent = hostOf(P.serverUrl());
    $("enroll-intro").textContent =
      "Only continue if you asked for this link: the phone enrolled here can approve sign-ins as you.";
    $("device-name").value = defaultDeviceName();
    $("enroll-error").textContent = "";
    $("enroll-status").hidden = true;
    const replaces = $("enroll-replaces");
    const old = state.account && !state.account.revoked ? state.account : null;
    replaces.hidden = !old;
    replaces.textContent = old
      ? `This phone is enrolled for ${accountLabel(old)} on ${hostOf(old.server)} already. Enrolling it again replaces that enrollment.`
      : "";
    state.view = null;
    show("enroll");
    if (link.v !== "1") {
      $("enroll-error").textContent =
        "This enrollment link is for another version of Assent Authenticator. Ask your administrator for a new link.";
      return;
    }
    const problem = state.storageProblem || (await passkeySupport());
    state.supported = !problem;
    if (problem) {
      $("enroll-unsupported-text").textContent = state.storageProblem || `${problem} This phone cannot be enrolled here.`;
      $("enroll-unsupported-advice").hidden = Boolean(state.storageProblem);
      $("enroll-unsupported").hidden = false;
      $("enroll-form").hidden = true;
      return;
    }
    $("enroll-unsupported").hidden = true;
    $("enroll-form").hidden = false;
    $("enroll").disabled = false;
    $("enroll-ios").hidden = !(isAppleMobile() && !isStandalone());
    prefetchRegistration();
  }

  /** iPhone or iPad (iPadOS reports itself as a Mac with touch). */
  function isAppleMobile() {
    return /iPhone|iPad|iPod/.test(navigator.userAgent) || (/Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1);
  }

  /** Opened from the Home Screen (an installed app), not in a browser tab. */
  function isStandalone() {
    return navigator.standalone === true || window.matchMedia("(display-mode: standalone)").matches;
  }

  /** The enrollment link again (the address bar no longer holds it), to paste into the Home Screen app. */
  async function copyEnrollmentLink() {
    const link = state.link;
    if (!link) return;
    const fragment = new URLSearchParams({ v: link.v, ticket: link.ticket, pin: link.pin });
    if (link.account) fragment.set("account", link.account);
    const text = `${P.serverUrl()}/authenticator/enroll#${fragment.toString()}`;
    try {
      await navigator.clipboard.writeText(text);
      notice("Link copied. Open Assent from your Home Screen and paste it there.");
    } catch {
      notice("The link could not be copied here. Scan the QR code again from the Home Screen app.", "error");
    }
  }

  /** A pasted enrollment link of this server: opened as if scanned. */
  function pastedLink(event) {
    event.preventDefault();
    const error = $("paste-error");
    error.textContent = "";
    let url;
    try {
      url = new URL($("paste-link").value.trim(), location.href);
    } catch {
      url = null;
    }
    const ours =
      url &&
      url.origin === location.origin &&
      url.pathname === new URL("enroll", location.href).pathname &&
      new URLSearchParams(url.hash.slice(1)).get("ticket");
    if (!ours) {
      error.textContent = `This is not an enrollment link of ${hostOf(P.serverUrl())}. Links look like ${P.serverUrl()}/authenticator/enroll#v=1&ticket=…`;
      return;
    }
    const samePage = url.pathname === location.pathname;
    location.assign(url.href);
    // Only the fragment differs: the page would not load again by itself.
    if (samePage) location.reload();
  }

  async function enrollSubmitted(event) {
    event.preventDefault();
    if (state.enrolling || !state.link || !state.supported) return;
    const errorBox = $("enroll-error");
    const name = P.cleanName($("device-name").value);
    if (!name) {
      errorBox.textContent = "Give this phone a name, so you and your administrator can tell it apart.";
      $("device-name").focus();
      return;
    }
    const old = state.account && !state.account.revoked ? state.account : null;
    if (old) {
      const choice = await ask({
        title: "Replace the enrollment on this phone?",
        body:
          `This phone is enrolled for ${accountLabel(old)} on ${hostOf(old.server)}. Enrolling it for ` +
          `${state.link.account || "this account"} removes that enrollment: this phone will no longer approve sign-ins for it.`,
        ok: "Enroll and replace",
        danger: true,
      });
      if (choice !== "ok") return;
    }
    state.enrolling = true;
    const button = $("enroll");
    button.disabled = true;
    errorBox.textContent = "";
    const status = $("enroll-status");
    status.textContent = PASSKEY_PROMPT;
    status.hidden = false;
    let prepared = null;
    const entry = state.registration;
    if (entry && Date.now() - entry.at < 240000) {
      try {
        prepared = { publicKey: await entry.promise };
      } catch {
        prepared = null;
      }
    }
    try {
      const account = await P.enroll(state.link, name, prepared || undefined);
      state.link = null;
      state.registration = null;
      if (old && old.device_id !== account.device_id) P.unenroll(old).catch(() => {});
      stopLive();
      state.account = account;
      state.pending = { requests: [], total: 0, muted_until: null, dropped: 0 };
      state.fetched = false;
      state.pushProblem = null;
      enrolled(account);
    } catch (e) {
      errorBox.textContent = enrollmentProblem(e);
      if (e && e.status) state.registration = null; // the server refused: ask afresh next time
      button.disabled = false;
    } finally {
      state.enrolling = false;
      status.hidden = true;
    }
  }

  function enrolled(account) {
    notice(
      `This phone is enrolled. Requests for ${accountLabel(account)} on ${hostOf(account.server)} now come here; ` +
        "approving or denying asks for your fingerprint, face or screen lock.",
    );
    state.view = null;
    navigate("", { replace: true });
    startLive();
    refresh();
    // Allowed before (another account, say): set the channel up without asking.
    if (pushSupport() && Notification.permission === "granted") {
      P.subscribePush(account)
        .catch((e) => {
          state.pushProblem = pushFailureText(e);
        })
        .finally(renderPush);
    }
  }

  // ---- service worker ------------------------------------------------------------------------

  function registerWorker() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.register("sw.js", { scope: "./" }).catch(() => {});
    navigator.serviceWorker.addEventListener("message", (event) => {
      const data = event.data || {};
      if (data.refresh) refresh();
      if ("open" in data && state.account && !state.account.revoked) {
        navigate(data.open ? `#request/${encodeURIComponent(data.open)}` : "");
      }
    });
  }

  // ---- wiring ----------------------------------------------------------------------------------

  function wire() {
    for (const button of document.querySelectorAll("nav .nav")) {
      button.addEventListener("click", () => navigate(button.dataset.view === "inbox" ? "" : `#${button.dataset.view}`));
    }
    $("refresh").addEventListener("click", () => refresh());
    $("paste-form").addEventListener("submit", pastedLink);
    $("enroll-copy").addEventListener("click", copyEnrollmentLink);
    $("request-back").addEventListener("click", () => navigate(""));
    $("outcome-back").addEventListener("click", () => navigate(""));
    $("approve-form").addEventListener("submit", (event) => {
      event.preventDefault();
      answer("approve");
    });
    $("deny").addEventListener("click", () => answer("deny"));
    $("not-me").addEventListener("click", () => answer("not_me"));
    $("match-code").addEventListener("input", () => {
      const field = $("match-code");
      const clean = field.value.replace(/[^0-9]/g, "");
      if (clean !== field.value) field.value = clean;
      if (!state.final && $("outcome").classList.contains("error")) setOutcome("");
    });
    $("enroll-form").addEventListener("submit", enrollSubmitted);
    $("notifications").addEventListener("click", turnOnNotifications);
    $("push-dismiss").addEventListener("click", dismissPush);
    $("remove-phone").addEventListener("click", removePhone);
    $("revoked-forget").addEventListener("click", forgetRevoked);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.view === "request" && !$("confirm-dialog").open && !state.busy) navigate("");
    });
    window.addEventListener("popstate", route);
    window.addEventListener("focus", refreshSoon);
    window.addEventListener("online", refreshSoon);
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) stopLive();
      else {
        startLive();
        refreshSoon();
      }
    });
    setInterval(tickCountdown, 1000);
  }

  async function start() {
    wire();
    registerWorker();
    const link = takeEnrollmentLink();
    try {
      state.account = await P.loadAccount();
    } catch (e) {
      state.account = null;
      state.storageProblem =
        "This browser does not let the app keep its data here (private browsing, or storage turned off), " +
        "so this phone cannot be enrolled in it.";
    }
    if (link && link.complete) {
      showEnrollment(link);
    } else {
      if (link && !state.account) {
        $("welcome-error").textContent =
          "This enrollment link is incomplete, or it was opened in this tab already. Scan the QR code again.";
      }
      if (link) history.replaceState(null, "", new URL("./", location.href).href);
      route();
    }
    if (state.account && !state.account.revoked) {
      startLive();
      refresh();
    }
  }

  start();
})();
