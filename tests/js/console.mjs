// Drives the Assent consoles (/console/...) in Debian's Chromium through
// playwright-core, headless, at a laptop's size: one browser context (one
// person, with their own cookies) per process.
//
//   node console.mjs
//
// Reads one JSON command per line on stdin and answers each with one JSON
// line on stdout: {"ok":true,"result":...} or {"ok":false,"error":"..."}.
// The tests (tests/tests/e2e/consoles.rs) play everyone else: the devices
// that approve, the database.
//
// Commands ({"cmd": NAME, ...}):
//   open {url}                  go to url (the browser starts on first use)
//   url                         the page's address
//   click {testid}              click [data-testid=testid]
//   click_text {text}           click the link or button with this text
//   fill {testid, value}        type into [data-testid=testid]
//   select {testid, value}      choose the option of [data-testid=testid] with this value
//   wait_text {selector, text}  wait until the selector's text contains text
//   text {selector}             its text, once visible
//   wait_visible {selector}     wait until the selector is visible
//   count {selector}            how many elements match (":visible" for shown ones)
//   attribute {selector, name}  an attribute of the first match
//   cookies                     the context's cookies (name, httpOnly, sameSite, secure)
//   viewport {width, height}    resize (a tablet's width)
//   color_scheme {scheme}       "light" or "dark"
//   screenshot {path}           PNG of the page
//   axe                         axe-core's violations on the page (id, impact, nodes)
//   post {url, form}            a form POST from the page (fetch, same origin
//                               unless the url says otherwise)
//   close
//
// Confirmation dialogs (a form's data-confirm) are accepted.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.ASSENT_CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 30_000;
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

let browser, context, page;

async function open({ url }) {
  if (!browser) {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      colorScheme: "light",
      locale: "en-US",
      timezoneId: "UTC",
    });
    context.setDefaultTimeout(TIMEOUT);
    page = await context.newPage();
    page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.stack || e}\n`));
    page.on("console", (m) => process.stderr.write(`[page ${m.type()}] ${m.text()}\n`));
    // Destructive actions ask first (form[data-confirm]): the person says yes.
    page.on("dialog", (d) => d.accept());
  }
  const response = await page.goto(url);
  return response ? response.status() : null;
}

const byTestId = (testid) => page.locator(`[data-testid="${testid}"]`).first();

const commands = {
  open,
  url: async () => page.url(),
  click: async ({ testid }) => (await byTestId(testid).click(), null),
  click_text: async ({ text }) =>
    (await page.getByRole("link", { name: text }).or(page.getByRole("button", { name: text })).first().click(), null),
  fill: async ({ testid, value }) => (await byTestId(testid).fill(value), null),
  select: async ({ testid, value }) => (await byTestId(testid).selectOption(value), null),
  wait_text: async ({ selector, text }) => {
    const element = page.locator(selector).filter({ hasText: text }).first();
    await element.waitFor({ state: "visible" });
    return element.innerText();
  },
  wait_visible: async ({ selector }) =>
    (await page.locator(selector).first().waitFor({ state: "visible" }), null),
  text: async ({ selector }) => {
    const element = page.locator(selector).first();
    await element.waitFor({ state: "visible" });
    return element.innerText();
  },
  count: async ({ selector }) => page.locator(selector).count(),
  attribute: async ({ selector, name }) => page.locator(selector).first().getAttribute(name),
  cookies: async () =>
    (await context.cookies()).map((c) => ({
      name: c.name,
      httpOnly: c.httpOnly,
      sameSite: c.sameSite,
      secure: c.secure,
      path: c.path,
    })),
  viewport: async ({ width, height }) => (await page.setViewportSize({ width, height }), null),
  color_scheme: async ({ scheme }) => (await page.emulateMedia({ colorScheme: scheme }), null),
  screenshot: async ({ path }) =>
    (await page.screenshot({ path, fullPage: true, animations: "disabled" }), null),
  axe: async () => {
    // Injected through the DevTools protocol, so the page's CSP (no eval,
    // no inline script) still holds for the page's own code.
    await page.evaluate(AXE);
    const results = await page.evaluate(() =>
      window.axe.run(document, { resultTypes: ["violations"] }),
    );
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
    }));
  },
  post: async ({ url, form }) =>
    page.evaluate(
      async ({ url, form }) => {
        const response = await fetch(url, {
          method: "POST",
          body: new URLSearchParams(form),
          redirect: "manual",
          credentials: "same-origin",
        });
        return { status: response.status, type: response.type };
      },
      { url, form },
    ),
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
    const command = JSON.parse(line);
    const run = commands[command.cmd];
    if (!run) throw new Error(`unknown command ${command.cmd}`);
    answer = { ok: true, result: (await run(command)) ?? null };
  } catch (e) {
    answer = { ok: false, error: String(e && e.stack ? e.stack : e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser?.close();
