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
use fantoccini::{key::Key, Client, Locator};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The app PIN chosen at the first enrollment.
const PIN: &str = "402913";

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
    choose_first_pin(c).await;
}

/// On the confirmation step of the first enrollment: choose the app PIN
/// (typed twice; the first field has the focus) and add the account with Enter.
async fn choose_first_pin(c: &Client) {
    wait_text(c, "#enroll-pin-label", "Choose an app PIN").await;
    let focused = c.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("enroll-pin")
    );
    focused.send_keys(PIN).await.unwrap();
    find(c, "#enroll-pin-confirm")
        .await
        .send_keys(&format!("{PIN}{}", char::from(Key::Enter)))
        .await
        .unwrap();
    wait_text(c, "#notice", "Added alice@example.com").await;
    visible(c, "#view-inbox").await;
}

/// A request started for Alice: its `auth_req_id`, request id and the
/// number-matching code the client shows.
struct Started {
    auth_req_id: String,
    id: String,
    code: String,
}

async fn start_request(
    server: &TestServer,
    client: &TestClient,
    binding: &str,
    extra: &[(&str, &str)],
) -> Started {
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
    Started {
        id: request_id(server.store(), &auth_req_id).await,
        code: ack["match_code"].as_str().unwrap().to_string(),
        auth_req_id,
    }
}

/// Approves the open request from the keyboard: the number field has the
/// focus; Approve stays disabled until the number has its digits and the
/// PIN is typed; Enter sends.
async fn approve_by_typing(c: &Client, code: &str) {
    let approve = find(c, "#approve").await;
    assert!(
        !approve.is_enabled().await.unwrap(),
        "Approve waits for the number and the PIN"
    );
    let focused = c.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("match-code")
    );
    focused.send_keys(code).await.unwrap();
    // All digits typed: the focus moved on to the PIN.
    let focused = c.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("pin"));
    assert!(
        !approve.is_enabled().await.unwrap(),
        "still waits for the PIN"
    );
    focused.send_keys(PIN).await.unwrap();
    assert!(approve.is_enabled().await.unwrap());
    focused
        .send_keys(&char::from(Key::Enter).to_string())
        .await
        .unwrap();
    wait_text(c, "#notice", "Approved").await;
}

/// A code that is not `code`.
fn wrong(code: &str) -> String {
    let (head, last) = code.split_at(code.len() - 1);
    let last = (last.as_bytes()[0] - b'0' + 1) % 10;
    format!("{head}{last}")
}

/// Whether a `<details>` shows nothing but its summary (closed). Its
/// content may keep a box in WebKitGTK, so WebDriver's "displayed" cannot
/// tell; the height of the whole can.
async fn only_summary_shows(c: &Client, details: &str) -> bool {
    c.execute(
        "const d = document.querySelector(arguments[0]); \
         return !d.open && d.getBoundingClientRect().height <= d.querySelector('summary').getBoundingClientRect().height + 1;",
        vec![json!(details)],
    )
    .await
    .unwrap()
        == json!(true)
}

/// Whether the element's box lies wholly inside the window, unscrolled.
async fn in_view_without_scrolling(c: &Client, selector: &str) -> bool {
    c.execute(
        "window.scrollTo(0, 0); const r = document.querySelector(arguments[0]).getBoundingClientRect(); \
         return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;",
        vec![json!(selector)],
    )
    .await
    .unwrap()
        == json!(true)
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
    let desktop = Desktop::start(None, &[("LANG", "en_US.UTF-8")]);
    let c = desktop.launch_app().await;

    enroll_by_pasting(&c, &link).await;
    // No credential store in this session: the key is in a file, and the app says so.
    wait_text(&c, "#key-warning", "kept in a file").await;

    // Three requests arrive live (no refresh clicked).
    let transfer = "Invoice 2026-117 #4711";
    let details = r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"4200.00"},"creditorName":"Müller GmbH","creditorAccount":{"iban":"DE89370400440532013000"},"remittanceInformationUnstructured":"Invoice 2026-117"}]"#;
    let payment = start_request(
        &server,
        &client,
        transfer,
        &[("authorization_details", details)],
    )
    .await;
    let deny = start_request(&server, &client, "Sign in to the support portal", &[]).await;
    let not_me = start_request(&server, &client, "Reset the password of alice", &[]).await;
    for started in [&payment, &deny, &not_me] {
        visible(
            &c,
            &format!(".request-item[data-request-id='{}']", started.id),
        )
        .await;
    }
    wait_text(&c, "#inbox-count", "3").await;
    screenshot(&c, "inbox.png").await;

    // The payment: who asks, what is asked in one sentence next to the
    // message, and the answer, all without scrolling at the window's size.
    open(&c, &payment.id, transfer).await;
    wait_text(&c, "#request-countdown", "Expires in").await;
    wait_text(
        &c,
        "#request-key-lines",
        "Pay \u{20ac}4,200.00 to Müller GmbH",
    )
    .await;
    wait_text(&c, "#request-details", "DE89 3704 0044 0532 0130 00").await;
    wait_text(&c, "#match-label", "Type the 2-digit number").await;
    for selector in ["#request-key-lines", "#match-code", "#approve"] {
        assert!(
            in_view_without_scrolling(&c, selector).await,
            "{selector} is below the fold"
        );
    }
    // The requesting server's address is a technical detail, folded away.
    assert!(
        only_summary_shows(&c, "#technical").await,
        "the IP address waits behind Technical details"
    );
    click(&c, "#technical summary").await;
    wait_text(&c, "#request-ip", "127.0.0.1").await;
    click(&c, "#technical summary").await;
    screenshot(&c, "request.png").await;

    // A wrong number is refused by the server, said in words, and counted.
    find(&c, "#match-code")
        .await
        .send_keys(&wrong(&payment.code))
        .await
        .unwrap();
    find(&c, "#pin").await.send_keys(PIN).await.unwrap();
    click(&c, "#approve").await;
    wait_text(&c, "#approve-error", "That is not the number").await;
    assert_eq!(
        count(
            server.store(),
            "SELECT COUNT(*) FROM auth_requests WHERE match_failures = 1"
        )
        .await,
        1
    );
    // The screen stays, the number field is selected for typing again (the
    // PIN stays typed).
    let focused = c.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("match-code")
    );
    focused.send_keys(&payment.code).await.unwrap();
    click(&c, "#approve").await;
    wait_text(&c, "#notice", "Approved").await;
    let tokens = client.poll(&server, &payment.auth_req_id).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    let id_token = assent_tests::jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["acr"], "urn:assent:acr:push:match:uv");
    assert!(
        id_token["amr"].as_array().unwrap().contains(&json!("pin")),
        "{id_token}"
    );

    // Deny needs neither number nor PIN.
    open(&c, &deny.id, "Sign in to the support portal").await;
    click(&c, "#deny").await;
    wait_text(&c, "#notice", "Denied").await;
    expect_error(
        client.poll(&server, &deny.auth_req_id).await,
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::AccessDenied,
    )
    .await;

    // This wasn't me: new requests pause, the app says so and what to do.
    open(&c, &not_me.id, "Reset the password of alice").await;
    click(&c, "#not-me").await;
    wait_text(&c, "#notice", "not you").await;
    expect_error(
        client.poll(&server, &not_me.auth_req_id).await,
        StatusCode::BAD_REQUEST,
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
    wait_text(&c, "#banners", "are paused until").await;
    let refused = client
        .bc_authorize(
            &server,
            &[
                ("scope", "openid"),
                ("login_hint", "alice@example.com"),
                ("binding_message", "Muted"),
            ],
        )
        .await;
    expect_error(refused, StatusCode::FORBIDDEN, OAuthErrorCode::AccessDenied).await;
    screenshot(&c, "muted.png").await;
    // Resume sends the signed unmute.
    click(&c, "#banners .banner button").await;
    wait_text(&c, "#notice", "arrive again").await;
    assert!(
        c.find(Locator::Css("[id^='muted-']")).await.is_err(),
        "the banner is gone"
    );

    // A burst goes with one "Deny all", in the app's own dialog.
    let burst: Vec<Started> = {
        let mut burst = Vec::new();
        for i in 1..=3 {
            burst.push(start_request(&server, &client, &format!("Sign-in attempt {i}"), &[]).await);
        }
        burst
    };
    wait_text(&c, "#inbox-count", "3").await;
    click(&c, "#deny-all").await;
    wait_text(&c, "#confirm-title", "Deny all 3 requests?").await;
    click(&c, "#confirm-ok").await;
    wait_text(&c, "#notice", "Denied 3 requests").await;
    for started in &burst {
        expect_error(
            client.poll(&server, &started.auth_req_id).await,
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::AccessDenied,
        )
        .await;
    }

    // A challenge whose signature is wrong never reaches the screen.
    let forged = start_request(&server, &client, "Transfer 5 EUR", &[]).await;
    tamper_challenge(server.store(), &forged.id, "Transfer 9,999 EUR").await;
    click(&c, "#refresh").await;
    wait_text(&c, "#bad-signature-warning", "did not check out").await;
    let page = c.source().await.unwrap();
    assert!(
        !page.contains("9,999"),
        "the forged message is nowhere on the page"
    );
    assert!(
        c.find(Locator::Css(&format!("[data-request-id='{}']", forged.id)))
            .await
            .is_err(),
        "the forged request is not listed"
    );

    // Another device enrolled for Alice: the app says so at once, and the
    // history keeps it.
    let other = assent_tests::device::enroll(&server, ALICE, None).await;
    wait_text(&c, "#notice", "\"test device\" (test)").await;

    // History, newest first.
    click(&c, "#nav-history").await;
    wait_text(&c, "#history-rows", transfer).await;
    wait_text(&c, "#history-rows", "Device added").await;
    let rows = c.find_all(Locator::Css("#history-rows tr")).await.unwrap();
    assert_eq!(rows.len(), 7);
    let newest = rows[0].text().await.unwrap();
    assert!(
        newest.contains("New device: test device (test)") && newest.contains("Device added"),
        "{newest}"
    );
    assert!(rows[4].text().await.unwrap().contains("Denied: not me"));
    assert!(rows[6].text().await.unwrap().contains("Approved"));
    screenshot(&c, "history.png").await;

    // Removing the account asks in the app's own dialog.
    click(&c, "#nav-accounts").await;
    click(&c, ".account-item button").await;
    wait_text(&c, "#confirm-title", "Remove alice@example.com?").await;
    click(&c, "#confirm-ok").await;
    wait_text(&c, "#notice", "Removed alice@example.com").await;
    // The app's device is gone from the server; the other one stays.
    other.unenroll().await.unwrap();
    assert_eq!(
        count(
            server.store(),
            "SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL AND id NOT LIKE 'stand-in:%'"
        )
        .await,
        0
    );

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
    screenshot(&c, "pin.png").await;
    choose_first_pin(&c).await;
    let started = start_request(&server, &client, "Sign in to Payroll on a new laptop", &[]).await;
    open(&c, &started.id, "Sign in to Payroll on a new laptop").await;
    screenshot(&c, "request-dark.png").await;
    approve_by_typing(&c, &started.code).await;
    assert_eq!(
        client.poll(&server, &started.auth_req_id).await.status(),
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
    choose_first_pin(&c).await;

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
    for file in ["device-key.json", "device-key.enc.json"] {
        assert!(
            !account_dirs[0].path().join(file).exists(),
            "no key on disk"
        );
    }

    // The key from the store signs: an approval goes through.
    let started = start_request(&server, &client, "Approve with the stored key", &[]).await;
    click(&c, "#nav-inbox").await;
    open(&c, &started.id, "Approve with the stored key").await;
    approve_by_typing(&c, &started.code).await;
    assert_eq!(
        client.poll(&server, &started.auth_req_id).await.status(),
        StatusCode::OK
    );
    c.close().await.unwrap();
}
