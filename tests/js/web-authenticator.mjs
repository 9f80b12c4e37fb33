// Drives the web authenticator (served by assent-server at /authenticator/)
// in Debian's Chromium through playwright-core (pinned in package.json),
// headless, phone-sized, with a virtual platform authenticator (Chrome
// DevTools Protocol WebAuthn domain: internal transport, resident keys,
// user verification) standing in for the phone's fingerprint sensor.
//
//   node web-authenticator.mjs
//
// Reads one JSON command per line on stdin and answers each with one JSON
// line on stdout: {"ok":true,"result":...} or {"ok":false,"error":"..."}.
// The test (tests/tests/e2e/web_authenticator.rs) plays the server's other
// side: clients, the loopback push service, the database.
//
// Commands ({"cmd": NAME, ...}):
//   open {url, user_verification} new phone-sized page at url with its own
//                                 virtual authenticator (user verification
//                                 unless false: a phone without screen lock)
//   url                           the page's address
//   click {testid}                click [data-testid=testid]
//   tap {selector}                tap (touch) the CSS selector
//   fill {testid, value}          type into [data-testid=testid]
//   wait_visible {selector}       wait until the CSS selector is visible
//   wait_hidden {selector}        wait until it is hidden or gone
//   text {selector}               its text, once visible
//   wait_text {selector, text}    wait until its text contains text
//   color_scheme {scheme}         "light" or "dark", as the phone's setting
//   screenshot {path}             PNG of the page
//   evaluate {script, arg}        runs `async (arg) => { <script> }` in the page
//   credentials                   the virtual authenticator's credentials
//   user_verified {value}         whether the authenticator verifies the user
//   forge_assertion {claims, origin, flags, sign_count, cross_origin}
//                                 an assertion over the canonical decision of
//                                 claims, made here with the credential's own
//                                 private key: what an attacker holding the
//                                 key but bypassing the browser could send
//   deliver_push {data}           delivers a push message to the app's service
//                                 worker (headless Chromium reaches no push
//                                 service; the DevTools protocol stands in)
//   notifications                 the service worker's shown notifications
//   close
import { createHash, createPrivateKey, sign } from "node:crypto";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.ASSENT_CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 30_000;

let browser, context, page, cdp, authenticatorId;
const registrations = new Map(); // scopeURL -> registrationId

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
const sha256 = (data) => createHash("sha256").update(data).digest();

// docs/protocol.md, section 5, written out again here on purpose: the test
// checks the document, not the app's copy of it.
function canonicalDecision(c) {
  return [
    "assent-decision-v1",
    c.request_id,
    c.decision,
    c.deny_reason ?? "",
    c.challenge_hash,
    c.nonce,
    c.match_code ?? "",
  ].join("\n");
}

async function open({ url, user_verification = true }) {
  if (!browser) {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      colorScheme: "light",
      locale: "en-US",
      timezoneId: "UTC",
    });
    context.setDefaultTimeout(TIMEOUT);
    await context.grantPermissions(["notifications"], { origin: new URL(url).origin });
  }
  page = await context.newPage();
  page.on("console", (m) => process.stderr.write(`[page ${m.type()}] ${m.text()}\n`));
  page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.stack || e}\n`));
  cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  ({ authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: user_verification,
      isUserVerified: user_verification,
      automaticPresenceSimulation: true,
    },
  }));
  cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations: list }) => {
    for (const r of list) {
      if (r.isDeleted) registrations.delete(r.scopeURL);
      else registrations.set(r.scopeURL, r.registrationId);
    }
  });
  await cdp.send("ServiceWorker.enable");
  await page.goto(url);
  return null;
}

const byTestId = (id) => page.locator(`[data-testid="${id}"]`).first();

async function credentials() {
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  return credentials.map((c) => ({
    credential_id: Buffer.from(c.credentialId, "base64").toString("base64url"),
    rp_id: c.rpId,
    sign_count: c.signCount,
    resident: c.isResidentCredential,
    private_key: c.privateKey,
  }));
}

async function forgeAssertion({ claims, origin, flags, sign_count, cross_origin = false }) {
  const [credential] = await credentials();
  const authenticatorData = Buffer.alloc(37);
  sha256(credential.rp_id).copy(authenticatorData, 0);
  authenticatorData[32] = flags;
  authenticatorData.writeUInt32BE(sign_count, 33);
  const clientDataJSON = Buffer.from(
    JSON.stringify({
      type: "webauthn.get",
      challenge: b64url(sha256(canonicalDecision(claims))),
      origin,
      crossOrigin: cross_origin,
    }),
  );
  const key = createPrivateKey({
    key: Buffer.from(credential.private_key, "base64"),
    format: "der",
    type: "pkcs8",
  });
  const signature = sign("sha256", Buffer.concat([authenticatorData, sha256(clientDataJSON)]), key);
  return {
    id: credential.credential_id,
    rawId: credential.credential_id,
    type: "public-key",
    response: {
      authenticatorData: b64url(authenticatorData),
      clientDataJSON: b64url(clientDataJSON),
      signature: b64url(signature),
      userHandle: null,
    },
    clientExtensionResults: {},
  };
}

async function deliverPush({ data }) {
  const origin = new URL(page.url()).origin;
  const deadline = Date.now() + TIMEOUT;
  let registrationId;
  while (!(registrationId = [...registrations].find(([scope]) => scope.startsWith(origin))?.[1])) {
    if (Date.now() > deadline) throw new Error("no service worker registration for " + origin);
    await new Promise((r) => setTimeout(r, 100));
  }
  await cdp.send("ServiceWorker.deliverPushMessage", { origin, registrationId, data });
  return registrationId;
}

const commands = {
  open,
  url: async () => page.url(),
  click: async ({ testid }) => (await byTestId(testid).click(), null),
  tap: async ({ selector }) => (await page.locator(selector).first().tap(), null),
  fill: async ({ testid, value }) => (await byTestId(testid).fill(value), null),
  wait_visible: async ({ selector }) =>
    (await page.locator(selector).first().waitFor({ state: "visible" }), null),
  wait_hidden: async ({ selector }) =>
    (await page.locator(selector).first().waitFor({ state: "hidden" }), null),
  text: async ({ selector }) => {
    const element = page.locator(selector).first();
    await element.waitFor({ state: "visible" });
    return element.innerText();
  },
  wait_text: async ({ selector, text }) => {
    const element = page.locator(selector).filter({ hasText: text }).first();
    await element.waitFor({ state: "visible" });
    return element.innerText();
  },
  color_scheme: async ({ scheme }) => (await page.emulateMedia({ colorScheme: scheme }), null),
  screenshot: async ({ path }) => (await page.screenshot({ path, animations: "disabled" }), null),
  // The script is the test's own code, run in the page beside the app's
  // (through the DevTools protocol, so the page's CSP, which allows no
  // eval, still holds for the app), using window.AssentProtocol.
  evaluate: async ({ script, arg }) =>
    page.evaluate(`(async (arg) => { ${script} })(${JSON.stringify(arg ?? null)})`),
  credentials,
  user_verified: async ({ value }) =>
    (await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: value }), null),
  forge_assertion: forgeAssertion,
  deliver_push: deliverPush,
  notifications: async () =>
    page.evaluate(async () => {
      const registration = await navigator.serviceWorker.ready;
      const shown = await registration.getNotifications();
      return shown.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
    }),
  close: async () => {
    await browser?.close();
    browser = undefined;
    return null;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const { cmd, ...args } = JSON.parse(line);
    const run = commands[cmd];
    if (!run) throw new Error(`unknown command ${cmd}`);
    answer = { ok: true, result: (await run(args)) ?? null };
  } catch (e) {
    answer = { ok: false, error: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser?.close();
