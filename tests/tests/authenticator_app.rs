//! The desktop app end to end: the real `assent-authenticator` binary under
//! Xvfb, driven through WebDriver (`tauri-driver` + WebKitWebDriver), against
//! a real Assent server, with a real OAuth client polling for tokens.
//!
//! Needs `xvfb-run`, `tauri-driver` and `WebKitWebDriver`; `./scripts/test`
//! installs them. Screenshots go to `target/screenshots/`; with
//! `ASSENT_UPDATE_SCREENSHOTS=1` they also replace those in `docs/screenshots/`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use assent_server::{client_auth::AuthMethod, keys::TokenAlg};
use assent_tests::db::Backend;
use assent_tests::{
    client::{create_user, expect_error},
    count,
    process::authenticator_binary,
    request_id, tamper_challenge, TestClient, TestServer,
};
use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const ALICE: &str = "auth0|alice";
const WAIT: Duration = Duration::from_secs(20);

/// `tauri-driver` on a private X display (Xvfb), with a private HOME and no
/// session bus, so the app touches nothing of the person running the tests.
struct Desktop {
    driver: Child,
    port: u16,
    _home: tempfile::TempDir,
}

fn need(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: ./scripts/test installs what the desktop tests need \
         (xvfb, webkit2gtk-driver, tauri-driver)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Desktop {
    async fn start() -> Self {
        for tool in ["xvfb-run", "tauri-driver", "WebKitWebDriver"] {
            need(tool);
        }
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let native_port = free_port();
        let mut command = Command::new("xvfb-run");
        command
            .args(["-a", "-s", "-screen 0 1280x900x24", "tauri-driver"])
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("ASSENT_AUTHENTICATOR_EXIT_ON_CLOSE", "1")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("ASSENT_AUTHENTICATOR_DATA_DIR")
            .env_remove("ASSENT_AUTHENTICATOR_KEY_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group: Drop ends xvfb-run, Xvfb, the driver and the app together.
            .process_group(0);
        let driver = command.spawn().expect("start xvfb-run tauri-driver");
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "tauri-driver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            driver,
            port,
            _home: home,
        }
    }

    async fn launch_app(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert(
            "tauri:options".into(),
            json!({ "application": authenticator_binary() }),
        );
        // WebDriver talks plain HTTP on loopback; rustls needs a provider chosen all the same.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session with the app")
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-s", "TERM", "--", &format!("-{pid}")])
                .status();
        }
    }
}

async fn css(c: &Client, selector: &str) -> Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
}

/// Waits until `selector` is present and displayed.
async fn visible(c: &Client, selector: &str) -> Element {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(element) = c.find(Locator::Css(selector)).await {
            if element.is_displayed().await.unwrap_or(false) {
                return element;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{selector} never became visible"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_text(c: &Client, selector: &str, contains: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(element) = c.find(Locator::Css(selector)).await {
            last = element.text().await.unwrap_or_default();
            if last.contains(contains) && element.is_displayed().await.unwrap_or(false) {
                return last;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{selector} never said {contains:?} (last: {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(c: &Client, selector: &str) {
    visible(c, selector)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = root.join("target/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(name), &png).unwrap();
    if std::env::var_os("ASSENT_UPDATE_SCREENSHOTS").is_some() {
        let docs: PathBuf = root.join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), &png).unwrap();
    }
}

async fn start_request(
    server: &TestServer,
    client: &TestClient,
    binding: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let mut params = vec![
        ("scope", "openid email profile"),
        ("login_hint", "alice@example.com"),
        ("binding_message", binding),
    ];
    params.extend_from_slice(extra);
    let response = client.bc_authorize(server, &params).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ack: Value = response.json().await.unwrap();
    let auth_req_id = ack["auth_req_id"].as_str().unwrap().to_string();
    let id = request_id(server.store(), &auth_req_id).await;
    (auth_req_id, id)
}

/// Opens the request from the inbox and checks the screen shows it exactly.
async fn open(c: &Client, request_id: &str, binding: &str) {
    click(
        c,
        &format!(".request-item[data-request-id='{request_id}'] button"),
    )
    .await;
    visible(c, "#view-request").await;
    let shown = visible(c, "#request-binding").await.text().await.unwrap();
    assert_eq!(shown, binding);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_approve_deny_and_not_me_in_the_desktop_app() {
    let server = TestServer::start_with(Backend::Sqlite, |s| s.poll_interval = 1).await;
    create_user(
        server.store(),
        ALICE,
        Some("alice@example.com"),
        Some("Alice"),
    )
    .await;
    let client = TestClient::register(
        server.store(),
        AuthMethod::ClientSecretBasic,
        TokenAlg::ES256,
    )
    .await;
    let link = assent_server::device::create_enrollment_ticket(server.assent(), ALICE, 600)
        .await
        .unwrap()
        .enrollment_uri;

    let desktop = Desktop::start().await;
    let c = desktop.launch_app().await;

    // Enroll by pasting the link.
    visible(&c, "#inbox-no-accounts").await;
    click(&c, "#nav-accounts").await;
    css(&c, "#link-input").await.send_keys(&link).await.unwrap();
    click(&c, "#link-continue").await;
    wait_text(&c, "#confirm-text", "alice@example.com").await;
    click(&c, "#enroll-confirm").await;
    wait_text(&c, "#notice", "Added alice@example.com").await;
    visible(&c, "#view-inbox").await;
    // No credential store in this session: the key is in a file, and the app says so.
    wait_text(&c, "#key-warning", "kept in a file").await;

    // Three requests arrive live (no refresh clicked).
    let transfer = "Transfer 250.00 EUR to ACME Ltd #4711";
    let details = r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"250.00"},"creditorName":"ACME Ltd","creditorAccount":{"iban":"DE02100100109307118603"}}]"#;
    let (approve_auth, approve_id) = start_request(
        &server,
        &client,
        transfer,
        &[("authorization_details", details)],
    )
    .await;
    let (deny_auth, deny_id) =
        start_request(&server, &client, "Sign in to the support portal", &[]).await;
    let (not_me_auth, not_me_id) =
        start_request(&server, &client, "Reset the password of alice", &[]).await;
    for id in [&approve_id, &deny_id, &not_me_id] {
        visible(&c, &format!(".request-item[data-request-id='{id}']")).await;
    }
    wait_text(&c, "#inbox-count", "3").await;
    screenshot(&c, "inbox.png").await;

    // Approve.
    open(&c, &approve_id, transfer).await;
    wait_text(&c, "#request-details", "DE02100100109307118603").await;
    wait_text(&c, "#request-ip", "127.0.0.1").await;
    screenshot(&c, "request.png").await;
    click(&c, "#approve").await;
    wait_text(&c, "#notice", "Approved").await;
    let tokens = client.poll(&server, &approve_auth).await;
    assert_eq!(tokens.status(), StatusCode::OK);

    // Deny.
    open(&c, &deny_id, "Sign in to the support portal").await;
    click(&c, "#deny").await;
    wait_text(&c, "#notice", "Denied").await;
    expect_error(
        client.poll(&server, &deny_auth).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    )
    .await;

    // This wasn't me.
    open(&c, &not_me_id, "Reset the password of alice").await;
    click(&c, "#not-me").await;
    wait_text(&c, "#notice", "not you").await;
    expect_error(
        client.poll(&server, &not_me_auth).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    )
    .await;
    assert_eq!(
        count(
            server.store(),
            "SELECT COUNT(*) FROM auth_requests WHERE deny_reason = 'not_me'"
        )
        .await,
        1
    );

    // A challenge whose signature is wrong never reaches the screen.
    let (_, forged_id) = start_request(&server, &client, "Transfer 5 EUR", &[]).await;
    tamper_challenge(server.store(), &forged_id, "Transfer 9,999 EUR").await;
    click(&c, "#refresh").await;
    wait_text(&c, "#bad-signature-warning", "did not check out").await;
    let page = c.source().await.unwrap();
    assert!(
        !page.contains("9,999"),
        "the forged message is nowhere on the page"
    );
    assert!(
        c.find(Locator::Css(&format!("[data-request-id='{forged_id}']")))
            .await
            .is_err(),
        "the forged request is not listed"
    );

    // History, newest first.
    click(&c, "#nav-history").await;
    wait_text(&c, "#history-rows", transfer).await;
    let rows = c.find_all(Locator::Css("#history-rows tr")).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].text().await.unwrap().contains("Denied: not me"));
    assert!(rows[2].text().await.unwrap().contains("Approved"));
    screenshot(&c, "history.png").await;

    c.close().await.unwrap();
    drop(desktop);
}
