//! The consoles in a real browser (Debian's Chromium, laptop-sized, driven
//! by `tests/js/console.mjs`) against a real server on both databases,
//! with real devices (`assent-device`) approving.
//!
//! The first operator signs in with a login link from the command line;
//! people sign in by approving on their device, typing the code the page
//! shows; an agent verifies a caller and watches the answer arrive without
//! a reload; "this wasn't me" is highlighted in the operator's dashboard.
//! Sessions: cookie flags, CSRF, idle expiry, sign-out ends the session on
//! the server, no page without one, roles keep people to their pages. axe
//! finds no serious or critical accessibility problem on any page.

use std::{path::Path, time::Duration};

use assent_tests::{
    browser::Phone as Browser,
    client::create_user,
    count,
    process::{run_cli, run_device},
    Backend, TestServer,
};
use serde_json::{json, Value};

/// A person's device: `assent-device` with its own state, enrolled for `sub`.
struct Device {
    state: tempfile::TempDir,
}

impl Device {
    async fn enroll(server: &TestServer, sub: &str) -> Self {
        let state = tempfile::tempdir().unwrap();
        let link = assent_tests::enrollment_link(server, sub).await;
        let (ok, _, stderr) = run_device(state.path(), &["enroll", &link]).await;
        assert!(ok, "assent-device enroll: {stderr}");
        Self { state }
    }

    fn path(&self) -> &Path {
        self.state.path()
    }

    async fn approve(&self, code: &str) {
        let (ok, _, stderr) = run_device(self.path(), &["approve", "--next", "--code", code]).await;
        assert!(ok, "assent-device approve: {stderr}");
    }

    async fn deny_not_me(&self) {
        let (ok, _, stderr) =
            run_device(self.path(), &["deny", "--next", "--reason", "not-me"]).await;
        assert!(ok, "assent-device deny: {stderr}");
    }
}

async fn user_with_role(
    server: &TestServer,
    sub: &str,
    email: &str,
    name: &str,
    role: Option<&str>,
) {
    create_user(server.store(), sub, Some(email), Some(name)).await;
    if let Some(role) = role {
        run_cli(&server.db.url, &["user", "role", "set", sub, role]).await;
    }
}

/// `path` on the server's issuer (`http://localhost:PORT`): the console's
/// origin, which its CSP and form checks hold to.
fn at(server: &TestServer, path: &str) -> String {
    format!("{}{path}", server.issuer())
}

/// No serious or critical accessibility violation on the current page.
async fn accessible(browser: &mut Browser, page: &str) {
    let violations = browser.cmd(json!({"cmd": "axe"})).await;
    let bad: Vec<&Value> = violations
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
        .collect();
    assert!(bad.is_empty(), "axe on {page}: {bad:#?}");
}

/// Signs `name` in through the device: the page shows the code, the device
/// types it, the page moves on by itself.
async fn sign_in(browser: &mut Browser, server: &TestServer, name: &str, device: &Device) {
    browser.open(&at(server, "/console/sign-in")).await;
    browser.fill("name", name).await;
    browser.click("sign-in").await;
    let code = browser.text("[data-testid=match-code]").await;
    assert_eq!(code.len(), 2, "a two-digit code: {code:?}");
    accessible(browser, "the waiting page").await;
    device.approve(&code).await;
    browser
        .wait_text(
            "[data-testid=signed-in-as]",
            name.split('@').next().unwrap(),
        )
        .await;
}

async fn consoles(backend: Backend, screenshots: bool) {
    let server = TestServer::start_on_localhost(backend, |s| s.poll_interval = 1).await;
    user_with_role(
        &server,
        "olga",
        "olga@example.com",
        "Olga",
        Some("operator"),
    )
    .await;
    user_with_role(&server, "amir", "amir@example.com", "Amir", Some("agent")).await;
    user_with_role(&server, "alice", "alice@example.com", "Alice", None).await;

    // The first operator has no device yet: a login link, used once.
    let printed = run_cli(
        &server.db.url,
        &[
            "--issuer",
            server.issuer(),
            "console",
            "login-link",
            "--user",
            "olga",
        ],
    )
    .await;
    let link = printed.lines().next().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{}/console/link#", server.issuer())),
        "{printed}"
    );
    let mut operator = Browser::laptop();
    operator.open(&link).await;
    operator.wait_text("h1", "Dashboard").await;
    assert!(!operator.url().await.contains('#'));
    // Used: a second browser cannot use it again.
    let mut other = Browser::laptop();
    other.open(&link).await;
    other.wait_text("h1", "Link not valid").await;
    other.close().await;

    // The cookie: HttpOnly, SameSite=Strict (not Secure: the issuer is http).
    let cookies = operator.cmd(json!({"cmd": "cookies"})).await;
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "assent-console")
        .unwrap_or_else(|| panic!("{cookies}"));
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(session["path"], "/");

    // Changes need the CSRF token: a form without it is refused.
    let forged = operator
        .cmd(json!({"cmd": "post", "url": at(&server, "/console/sign-out"), "form": {}}))
        .await;
    assert_eq!(forged["status"], 403, "{forged}");
    assert_eq!(
        count(server.store(), "SELECT COUNT(*) FROM console_sessions").await,
        1
    );

    // Olga enrolls her device, signs out (the session ends on the server),
    // and signs in again the Assent way.
    let olga_device = Device::enroll(&server, "olga").await;
    operator.click("sign-out").await;
    operator.wait_text("h1", "Sign in").await;
    assert_eq!(
        count(server.store(), "SELECT COUNT(*) FROM console_sessions").await,
        0
    );
    operator.open(&at(&server, "/console/")).await;
    operator.wait_text("h1", "Sign in").await;
    accessible(&mut operator, "the sign-in page").await;
    sign_in(&mut operator, &server, "olga@example.com", &olga_device).await;
    operator.wait_text("h1", "Dashboard").await;

    // A user without a console role is refused before any device is asked.
    let mut stranger = Browser::laptop();
    stranger.open(&at(&server, "/console/sign-in")).await;
    stranger.fill("name", "alice@example.com").await;
    stranger.click("sign-in").await;
    stranger
        .wait_text("[data-testid=problem]", "no console access")
        .await;
    stranger.close().await;

    // The agent verifies a caller end to end.
    let alice_device = Device::enroll(&server, "alice").await;
    let amir_device = Device::enroll(&server, "amir").await;
    let mut agent = Browser::laptop();
    sign_in(&mut agent, &server, "amir@example.com", &amir_device).await;
    agent.wait_text("h1", "Verify a caller").await;
    accessible(&mut agent, "the agent console").await;
    // The operator's pages are not an agent's.
    agent.open(&at(&server, "/console/")).await;
    agent.wait_text("h1", "Not for your role").await;
    agent.open(&at(&server, "/console/verify")).await;
    agent.fill("caller", "alice@example.com").await;
    agent.fill("ticket", "4711").await;
    agent.click("send").await;
    let code = agent.text("[data-testid=match-code]").await;
    agent.wait_text("[data-testid=status]", "Waiting").await;
    accessible(&mut agent, "a verification").await;
    let url_before = agent.url().await;
    alice_device.approve(&code).await;
    agent
        .wait_text("[data-testid=status]", "Verified: alice approved")
        .await;
    assert_eq!(agent.url().await, url_before, "no reload");
    if screenshots {
        agent.screenshot("console-verify.png").await;
    }
    let pending = run_device(alice_device.path(), &["pending"]).await;
    assert!(pending.0);

    // A second verification: the caller's device says "this wasn't me".
    agent.open(&at(&server, "/console/verify")).await;
    agent.fill("caller", "alice").await;
    agent.fill("ticket", "4712").await;
    agent.click("send").await;
    agent.text("[data-testid=match-code]").await;
    alice_device.deny_not_me().await;
    agent
        .wait_text("[data-testid=status]", "This wasn't me")
        .await;
    agent.open(&at(&server, "/console/verify")).await;
    let recent = agent.text("[data-testid=recent]").await;
    assert!(
        recent.contains("approved") && recent.contains("not_me"),
        "{recent}"
    );

    // The operator's dashboard highlights the report.
    operator.open(&at(&server, "/console/")).await;
    let flagged = operator.text("[data-testid=not-me]").await;
    assert!(flagged.contains("Call with Amir #4712"), "{flagged}");
    accessible(&mut operator, "the dashboard").await;
    if screenshots {
        operator.screenshot("console-dashboard.png").await;
    }

    // The audit log has the console's doings under the people's names.
    let log = run_cli(&server.db.url, &["audit", "list", "--action", "console."]).await;
    assert!(
        log.contains("console:amir") && log.contains("console.verify"),
        "{log}"
    );
    assert!(
        log.contains("console:olga") && log.contains("console.sign_out"),
        "{log}"
    );

    // Idle for longer than the idle timeout: the session is over.
    server.advance_clock(Duration::from_secs(31 * 60));
    operator.open(&at(&server, "/console/")).await;
    operator.wait_text("h1", "Sign in").await;

    operator.close().await;
    agent.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consoles_on_sqlite() {
    consoles(Backend::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consoles_on_postgres() {
    consoles(Backend::Postgres, false).await;
}
