//! The desktop app end to end: the real `assent-authenticator` binary under
//! Xvfb, driven through WebDriver (`tauri-driver` + WebKitWebDriver), against
//! a real Assent server, with a real OAuth client polling for tokens.
//!
//! Needs Xvfb, `tauri-driver`, `WebKitWebDriver`, dbus and gnome-keyring; `./scripts/test`
//! installs them. Screenshots go to `target/screenshots/`; with
//! `ASSENT_UPDATE_SCREENSHOTS=1` they also replace those in `docs/screenshots/`.

use assent_shared::error::OAuthErrorCode;
use assent_tests::{
    client::expect_error,
    count,
    desktop::{click, find, screenshot, visible, wait_text, Desktop, SecretService},
    enrollment_link, request_id, server_with_alice, tamper_challenge, TestClient, TestServer,
    ALICE,
};
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::json;

/// Alice, a client and an enrollment link for her.
async fn server_with_alice_and_link() -> (TestServer, TestClient, String) {
    let (server, client) = server_with_alice().await;
    let link = enrollment_link(&server, ALICE).await;
    (server, client, link)
}

/// Pastes the link on the Accounts screen and confirms.
async fn enroll_by_pasting(c: &Client, link: &str) {
    visible(c, "#inbox-no-accounts").await;
    click(c, "#nav-accounts").await;
    find(c, "#link-input").await.send_keys(link).await.unwrap();
    click(c, "#link-continue").await;
    wait_text(c, "#confirm-text", "alice@example.com").await;
    click(c, "#enroll-confirm").await;
    wait_text(c, "#notice", "Added alice@example.com").await;
    visible(c, "#view-inbox").await;
}

/// Starts a request for Alice; returns its `auth_req_id` and request id.
async fn start_request(
    server: &TestServer,
    client: &TestClient,
    binding: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let auth_req_id = client
        .start_login(
            server,
            "alice@example.com",
            "openid email profile",
            binding,
            extra,
        )
        .await;
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
    let (server, client, link) = server_with_alice_and_link().await;
    // No session bus, so no credential store.
    let desktop = Desktop::start(None, &[]);
    let c = desktop.launch_app().await;

    enroll_by_pasting(&c, &link).await;
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
    wait_text(&c, "#request-countdown", "Expires in").await;
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
        OAuthErrorCode::AccessDenied,
    )
    .await;

    // This wasn't me.
    open(&c, &not_me_id, "Reset the password of alice").await;
    click(&c, "#not-me").await;
    wait_text(&c, "#notice", "not you").await;
    expect_error(
        client.poll(&server, &not_me_auth).await,
        StatusCode::FORBIDDEN,
        OAuthErrorCode::AccessDenied,
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

    // "This wasn't me" paused new requests for Alice; lift the pause as her
    // device's signed unmute would (the app's own Resume button comes with
    // its mute banner).
    assert!(server
        .store()
        .unmute_user(assent_tests::ALICE, server.assent().clock.now_ms())
        .await
        .unwrap());

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qr_image_enrolls_and_the_window_follows_a_dark_system_theme() {
    let (server, client, link) = server_with_alice_and_link().await;
    // GTK's dark variant is what a dark desktop sets; WebKitGTK reports it
    // to the page as prefers-color-scheme: dark.
    let desktop = Desktop::start(None, &[("GTK_THEME", "Adwaita:dark")]);
    let c = desktop.launch_app().await;
    visible(&c, "#inbox-no-accounts").await;
    let background = c
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        background,
        json!("rgb(15, 17, 21)"),
        "the dark palette applies"
    );

    // Enroll from an image of the QR code, chosen with the file picker.
    let qr = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(qr.path(), assent_server::qr::png(&link).unwrap()).unwrap();
    click(&c, "#nav-accounts").await;
    find(&c, "#qr-file")
        .await
        .send_keys(&qr.path().display().to_string())
        .await
        .unwrap();
    wait_text(&c, "#confirm-text", "alice@example.com").await;
    click(&c, "#enroll-confirm").await;
    wait_text(&c, "#notice", "Added alice@example.com").await;
    let (auth_req_id, id) =
        start_request(&server, &client, "Sign in to Payroll on a new laptop", &[]).await;
    open(&c, &id, "Sign in to Payroll on a new laptop").await;
    screenshot(&c, "request-dark.png").await;
    click(&c, "#approve").await;
    wait_text(&c, "#notice", "Approved").await;
    assert_eq!(
        client.poll(&server, &auth_req_id).await.status(),
        StatusCode::OK
    );
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opened_assent_link_enrolls_with_the_key_in_the_credential_store() {
    let (server, client, link) = server_with_alice_and_link().await;
    let session = SecretService::start();
    let desktop = Desktop::start(Some(&session), &[]);
    let c = desktop.launch_app().await;
    visible(&c, "#inbox-no-accounts").await;

    // The desktop opens the link with the app: the second instance hands it
    // to the running one (single-instance over D-Bus) and exits.
    let status = desktop.open_with_app(&link).await;
    assert!(status.success(), "{status}");
    wait_text(&c, "#confirm-text", "Add alice@example.com on").await;
    click(&c, "#enroll-confirm").await;
    wait_text(&c, "#notice", "Added alice@example.com").await;

    click(&c, "#nav-accounts").await;
    wait_text(
        &c,
        ".account-item",
        "Key kept in the system credential store",
    )
    .await;
    assert!(
        c.find(Locator::Css("#key-warning")).await.is_err(),
        "no file warning"
    );
    let accounts = desktop.app_data().join("accounts");
    let account_dirs: Vec<_> = std::fs::read_dir(&accounts).unwrap().flatten().collect();
    assert_eq!(account_dirs.len(), 1);
    assert!(account_dirs[0].path().join("account.json").exists());
    assert!(
        !account_dirs[0].path().join("device-key.json").exists(),
        "no key on disk"
    );

    // The key from the store signs: an approval goes through.
    let (auth_req_id, id) =
        start_request(&server, &client, "Approve with the stored key", &[]).await;
    click(&c, "#nav-inbox").await;
    open(&c, &id, "Approve with the stored key").await;
    click(&c, "#approve").await;
    wait_text(&c, "#notice", "Approved").await;
    assert_eq!(
        client.poll(&server, &auth_req_id).await.status(),
        StatusCode::OK
    );
    c.close().await.unwrap();
}
