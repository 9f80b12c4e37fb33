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
//!
//! The operator's management pages: a client registered (its secret shown
//! once, and working), a user added, a device enrolled from the QR code
//! the page shows (read by an independent decoder) and revoked, requests
//! appearing and changing without a reload, the audit log naming the
//! operator, keys, admin tokens and settings, the dashboard's charts.

use std::{path::Path, time::Duration};

use assent_tests::{
    browser::Phone as Browser,
    client::{create_user, Credentials, TestClient},
    count,
    process::{run_cli, run_device},
    Backend, TestServer,
};
use base64::{engine::general_purpose::STANDARD, Engine};
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

/// An attribute of the first element `selector` finds.
async fn attribute(browser: &mut Browser, selector: &str, name: &str) -> Option<String> {
    browser
        .cmd(json!({"cmd": "attribute", "selector": selector, "name": name}))
        .await
        .as_str()
        .map(str::to_string)
}

/// How many of the elements `selector` finds are shown.
async fn shown(browser: &mut Browser, selector: &str) -> i64 {
    browser
        .cmd(json!({"cmd": "count", "selector": format!("{selector}:visible")}))
        .await
        .as_i64()
        .unwrap()
}

/// The text of the QR code the image `[data-testid=testid]` shows (a PNG
/// data URI), read by an independent decoder.
async fn qr_text(browser: &mut Browser, testid: &str) -> String {
    let src = attribute(browser, &format!("img[data-testid={testid}]"), "src")
        .await
        .unwrap();
    let png_base64 = src
        .strip_prefix("data:image/png;base64,")
        .unwrap_or_else(|| panic!("a PNG data URI: {src}"));
    let bytes = STANDARD.decode(png_base64).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

/// The operator's management pages, as Olga (an operator; an admin for
/// the admins' pages).
async fn management_pages(server: &TestServer, operator: &mut Browser, screenshots: bool) {
    // A client: registered, its secret shown once, then never again.
    operator.open(&at(server, "/console/clients")).await;
    operator.wait_text("h1", "Clients").await;
    accessible(operator, "the clients page").await;
    operator.fill("client-name", "Shop").await;
    operator.click("create-client").await;
    let secret = operator.text("[data-testid=client-secret]").await;
    let client_id = operator.text("[data-testid=client-id]").await;
    let warning = operator.text("[data-testid=secret-warning]").await;
    assert!(warning.contains("not shown again"), "{warning}");
    accessible(operator, "a registered client").await;
    operator.click("client-page").await;
    operator.wait_text("h1", "Shop").await;
    let page = operator.text("main").await;
    assert!(page.contains(&client_id), "{page}");
    assert!(!page.contains(&secret), "the secret is shown once: {page}");
    accessible(operator, "a client's page").await;
    operator.fill("client-name", "Shop (test)").await;
    operator.click("save-client").await;
    operator.wait_text("[data-testid=notice]", "Saved").await;
    operator.wait_text("h1", "Shop (test)").await;
    // The list narrows as one types, and sorts by a click on a heading.
    operator.open(&at(server, "/console/clients")).await;
    assert_eq!(shown(operator, "#clients-table tbody tr").await, 2);
    operator.fill("filter", "shop").await;
    assert_eq!(shown(operator, "#clients-table tbody tr").await, 1);
    operator.fill("filter", "").await;
    assert_eq!(shown(operator, "#clients-table tbody tr").await, 2);
    let first = operator.text("#clients-table tbody tr").await;
    assert!(first.contains("Assent console"), "by name: {first}");
    operator
        .cmd(json!({"cmd": "click_text", "text": "Name"}))
        .await;
    assert_eq!(
        attribute(operator, "#clients-table th:first-child", "aria-sort")
            .await
            .as_deref(),
        Some("descending")
    );
    let first = operator.text("#clients-table tbody tr").await;
    assert!(first.contains("Shop (test)"), "{first}");

    // A user, added on the page.
    operator.open(&at(server, "/console/users")).await;
    accessible(operator, "the users page").await;
    operator.fill("user-sub", "bob").await;
    operator.fill("user-email", "bob@example.com").await;
    operator.fill("user-name", "Bob").await;
    operator.click("create-user").await;
    operator.wait_text("[data-testid=notice]", "Created").await;
    operator.wait_text("h1", "bob").await;
    operator.text("[data-testid=no-devices]").await;
    accessible(operator, "a user's page").await;
    // Refused in words, the form kept: the id is taken.
    operator.open(&at(server, "/console/users")).await;
    operator.fill("user-sub", "bob").await;
    operator.fill("user-name", "Another Bob").await;
    operator.click("create-user").await;
    operator
        .wait_text("[data-testid=problem]", "already exists")
        .await;
    assert_eq!(
        attribute(operator, "[data-testid=user-name]", "value")
            .await
            .as_deref(),
        Some("Another Bob")
    );
    // An id with a slash and a space has a page of its own.
    operator.fill("user-sub", "carol/ops team").await;
    operator.click("create-user").await;
    operator.wait_text("h1", "carol/ops team").await;
    let url = operator.url().await;
    assert!(
        url.ends_with("/console/users/carol%2Fops%20team?done=created"),
        "{url}"
    );
    // A change needs the session's CSRF token.
    let forged = operator
        .cmd(
            json!({"cmd": "post", "url": at(server, "/console/users"), "form": {"sub": "mallory"}}),
        )
        .await;
    assert_eq!(forged["status"], 403, "{forged}");
    operator.open(&at(server, "/console/users")).await;
    operator
        .wait_text("[data-testid=users-table]", "bob@example.com")
        .await;
    let listed = operator.text("[data-testid=users-table]").await;
    assert!(
        !listed.contains("mallory") && listed.contains("carol/ops team"),
        "{listed}"
    );
    if screenshots {
        operator.screenshot("console-users.png").await;
    }

    // A device for Bob: the ticket's QR code says what its link says, and
    // the real device enrolls with it (once).
    operator.open(&at(server, "/console/users/bob")).await;
    operator.click("enroll").await;
    let link = operator.text("[data-testid=ticket-link]").await;
    assert!(link.contains("enroll"), "{link}");
    assert_eq!(qr_text(operator, "ticket-qr").await, link);
    let web_codes = operator
        .cmd(json!({"cmd": "count", "selector": "[data-testid=web-ticket-qr]"}))
        .await;
    if web_codes == 1 {
        let web_link = operator.text("[data-testid=web-ticket-link]").await;
        assert_eq!(qr_text(operator, "web-ticket-qr").await, web_link);
    }
    let note = operator.text("[data-testid=ticket-note]").await;
    assert!(note.contains("once"), "{note}");
    accessible(operator, "an enrollment ticket").await;
    let bob = Device {
        state: tempfile::tempdir().unwrap(),
    };
    let (ok, _, stderr) = run_device(bob.path(), &["enroll", &link]).await;
    assert!(ok, "assent-device enroll: {stderr}");
    let again = tempfile::tempdir().unwrap();
    assert!(
        !run_device(again.path(), &["enroll", &link]).await.0,
        "once"
    );
    operator.click("back-to-user").await;
    let device = operator.text("[data-testid=device]").await;
    assert!(device.contains("active"), "{device}");

    // Requests appear and change on the page as they happen: the client's
    // secret works, Bob's device approves.
    let shop = TestClient {
        client_id: client_id.clone(),
        credentials: Credentials::SecretBasic(secret.clone()),
    };
    operator.open(&at(server, "/console/requests")).await;
    operator
        .wait_text("[data-testid=live-status]", "Live:")
        .await;
    accessible(operator, "the requests page").await;
    let url = operator.url().await;
    let response = shop
        .bc_authorize(
            server,
            &[
                ("scope", "openid"),
                ("login_hint", "bob"),
                ("binding_message", "Order 77"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "the secret shown works");
    let ack: Value = response.json().await.unwrap();
    let row = "[data-testid=requests] tr:has-text(\"Order 77\")";
    operator.wait_text(row, "pending").await;
    bob.approve(ack["match_code"].as_str().unwrap()).await;
    operator.wait_text(row, "approved").await;
    assert_eq!(operator.url().await, url, "no reload");
    // Only "this wasn't me": the report, highlighted.
    operator.click("filter-not-me").await;
    operator.click("filter").await;
    operator.wait_text("h2", "Matching requests").await;
    let reports = operator.text("[data-testid=requests] tbody").await;
    assert!(
        reports.contains("#4712") && !reports.contains("Order 77"),
        "{reports}"
    );
    assert_eq!(shown(operator, "[data-testid=not-me]").await, 1);

    // Revoked (the page asks first; the person says yes).
    operator.open(&at(server, "/console/users/bob")).await;
    operator.click("revoke").await;
    operator.wait_text("[data-testid=notice]", "revoked").await;
    let state = operator.text("[data-testid=device-state]").await;
    assert!(state.starts_with("revoked"), "{state}");
    assert_eq!(
        count(
            server.store(),
            "SELECT COUNT(*) FROM devices WHERE user_sub = 'bob' AND revoked_at IS NULL"
        )
        .await,
        0
    );

    // The audit log names Olga for every change.
    operator.open(&at(server, "/console/audit")).await;
    accessible(operator, "the audit log").await;
    for action in [
        "client.create",
        "client.update",
        "user.create",
        "enrollment_ticket.create",
        "device.revoke",
    ] {
        let entry = operator
            .text(&format!("[data-testid=audit] tr:has-text(\"{action}\")"))
            .await;
        assert!(entry.contains("console:olga"), "{entry}");
    }
    operator.fill("filter-action", "device.").await;
    operator.click("filter").await;
    operator.wait_text("h2", "device.").await;
    let log = operator.text("[data-testid=audit]").await;
    assert!(
        log.contains("device.revoke") && !log.contains("client.create"),
        "{log}"
    );

    // Keys: an operator reads them; rotating and admin tokens are an admin's.
    operator.open(&at(server, "/console/keys")).await;
    operator.wait_text("[data-testid=keys]", "signing").await;
    accessible(operator, "the keys page").await;
    operator.text("[data-testid=rotate-admins-only]").await;
    operator.open(&at(server, "/console/admin-tokens")).await;
    operator.wait_text("h1", "Not for your role").await;

    // Settings: the agents' message.
    operator.open(&at(server, "/console/settings")).await;
    accessible(operator, "the settings page").await;
    operator
        .fill("binding-template", "Verification by {agent}, case {ticket}")
        .await;
    operator.click("save-settings").await;
    operator.wait_text("[data-testid=notice]", "Saved").await;
    operator
        .wait_text(
            "[data-testid=template-example]",
            "Verification by Amir, case 4711",
        )
        .await;

    // As an admin: keys rotated, an admin token issued (shown once, and
    // working) and deleted.
    run_cli(&server.db.url, &["user", "role", "set", "olga", "admin"]).await;
    operator.open(&at(server, "/console/keys")).await;
    operator.click("rotate").await;
    operator.wait_text("[data-testid=notice]", "New keys").await;
    operator.wait_text("[data-testid=keys]", "upcoming").await;
    operator.open(&at(server, "/console/admin-tokens")).await;
    accessible(operator, "the admin tokens page").await;
    operator.fill("admin-token-name", "Help desk").await;
    operator.click("scope-read").await;
    operator.click("create-admin-token").await;
    let token = operator.text("[data-testid=admin-token]").await;
    assert!(token.starts_with("assent_admin_"), "{token}");
    accessible(operator, "an issued admin token").await;
    let users = server
        .http
        .get(server.url("/admin/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    operator.open(&at(server, "/console/admin-tokens")).await;
    operator.click("delete-admin-token").await;
    operator.wait_text("[data-testid=notice]", "Deleted").await;
    assert_eq!(shown(operator, "[data-testid=admin-token-row]").await, 0);
    // Carol becomes an admin: from then on, only admins change her account.
    operator
        .open(&at(server, "/console/users/carol%2Fops%20team"))
        .await;
    operator
        .cmd(json!({"cmd": "select", "testid": "user-role", "value": "admin"}))
        .await;
    operator.click("save-role").await;
    operator.wait_text("[data-testid=notice]", "role").await;
    run_cli(&server.db.url, &["user", "role", "set", "olga", "operator"]).await;
    operator
        .open(&at(server, "/console/users/carol%2Fops%20team"))
        .await;
    operator
        .wait_text("main", "only an admin can change it")
        .await;
    assert_eq!(shown(operator, "[data-testid=enroll]").await, 0);
    assert_eq!(shown(operator, "[data-testid=delete-user]").await, 0);

    // The dashboard counts the day's decisions per hour.
    operator.open(&at(server, "/console/")).await;
    let total = |key: &str| format!("[data-testid=chart-{key}]");
    for (key, expected) in [
        ("approvals", "4"),
        ("denials", "0"),
        ("not-me", "1"),
        ("push-failures", "0"),
    ] {
        assert_eq!(
            attribute(operator, &total(key), "data-total")
                .await
                .as_deref(),
            Some(expected),
            "{key}"
        );
    }
    // Deleted (the page asks first), with everything issued to it.
    operator
        .open(&at(server, &format!("/console/clients/{client_id}")))
        .await;
    operator.click("delete-client").await;
    operator.wait_text("[data-testid=notice]", "Deleted").await;
    let clients = operator.text("#clients-table").await;
    assert!(!clients.contains("Shop"), "{clients}");
    // The dashboard at a tablet's width too.
    operator.open(&at(server, "/console/")).await;
    operator
        .cmd(json!({"cmd": "viewport", "width": 768, "height": 1024}))
        .await;
    accessible(operator, "the dashboard at a tablet's width").await;
    operator
        .cmd(json!({"cmd": "viewport", "width": 1280, "height": 800}))
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
    agent.open(&at(&server, "/console/users")).await;
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

    management_pages(&server, &mut operator, screenshots).await;

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
