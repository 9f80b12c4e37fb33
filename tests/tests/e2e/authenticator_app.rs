//! The desktop app end to end: the real `assent-authenticator` binary under
//! Xvfb, driven through WebDriver (`tauri-driver` + WebKitWebDriver), against
//! a real Assent server, with a real OAuth client polling for tokens.
//!
//! The MFA API's side: a push that is the second step of Alice's own
//! sign-in reads as such and completes her login with the `mfa-oob` grant;
//! a TOTP authenticator associated through the MFA API is added from its
//! `otpauth://` link, and the code the app shows completes a login with the
//! `mfa-otp` grant.
//!
//! Needs Xvfb, `tauri-driver`, `WebKitWebDriver`, dbus and gnome-keyring; `./scripts/test`
//! installs them. Screenshots go to `target/screenshots/`; with
//! `ASSENT_UPDATE_SCREENSHOTS=1` they also replace those in `docs/screenshots/`.

use assent_server::{
    client_auth::AuthMethod,
    keys::TokenAlg,
    mfa::{MFA_OOB_GRANT, MFA_OTP_GRANT},
    storage::{ClientChanges, MfaPolicy},
};
use assent_shared::{error::OAuthErrorCode, oauth::PASSWORDLESS_OTP_GRANT_TYPE};
use assent_tests::{
    client::{create_user_without_device, expect_error},
    count,
    desktop::{click, find, screenshot, visible, wait_text, Desktop, SecretService},
    enrollment_link, jwt_payload, request_id, server_with_alice, tamper_challenge, Backend,
    TestClient, TestServer, ALICE,
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

// ---- The MFA API: push as the second step, and sign-in codes -------------

const EMAIL: &str = "alice@example.com";

/// A server with Alice (no device yet) and "Payroll", a client that
/// requires a second factor and hands its test the first factor's code.
async fn server_with_mfa_client() -> (TestServer, TestClient) {
    let server = TestServer::start_with(Backend::Sqlite, |s| s.poll_interval = 1).await;
    create_user_without_device(server.store(), ALICE, Some(EMAIL), Some("Alice")).await;
    let client = TestClient::register_with_grants(
        server.store(),
        AuthMethod::ClientSecretPost,
        TokenAlg::RS256,
        &[PASSWORDLESS_OTP_GRANT_TYPE, MFA_OTP_GRANT, MFA_OOB_GRANT],
    )
    .await;
    assent_server::clients::update(
        server.store(),
        &client.client_id,
        ClientChanges {
            name: Some("Payroll".into()),
            otp_code_in_response: Some(true),
            mfa_policy: Some(MfaPolicy::Required),
            ..ClientChanges::default()
        },
        Some(&server.assent().clients),
    )
    .await
    .unwrap();
    (server, client)
}

/// Alice's first factor (a code through the back-end OTP API): the
/// `mfa_token` of the `mfa_required` answer.
async fn mfa_token(server: &TestServer, client: &TestClient) -> String {
    let sent: Value = client
        .post_json(
            server,
            "/backend-auth/otp/send",
            json!({ "identifier_type": "email", "identifier": EMAIL }),
        )
        .await
        .json()
        .await
        .unwrap();
    let answer = client
        .post_json(
            server,
            "/backend-auth/otp/authenticate",
            json!({ "identifier_type": "email", "identifier": EMAIL, "passcode": sent["code"] }),
        )
        .await;
    let body = expect_error(answer, StatusCode::FORBIDDEN, "mfa_required").await;
    body["mfa_token"]
        .as_str()
        .expect("an mfa_token")
        .to_string()
}

/// `POST /mfa/challenge` for a push: its `oob_code` and the `match_code`
/// Payroll shows.
async fn push_challenge(server: &TestServer, client: &TestClient, token: &str) -> (String, String) {
    let answer = client
        .post_json(
            server,
            "/mfa/challenge",
            json!({ "mfa_token": token, "challenge_type": "oob" }),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.unwrap();
    (
        answer["oob_code"].as_str().unwrap().to_string(),
        answer["match_code"]
            .as_str()
            .expect("number matching")
            .to_string(),
    )
}

async fn oob_grant(
    server: &TestServer,
    client: &TestClient,
    token: &str,
    oob_code: &str,
) -> reqwest::Response {
    client
        .post_json(
            server,
            "/oauth/token",
            json!({ "grant_type": MFA_OOB_GRANT, "mfa_token": token, "oob_code": oob_code }),
        )
        .await
}

/// The app started on a private desktop whose Secret Service is `session`,
/// keeping its data in `data` (so a second start finds the same accounts),
/// in the dark theme or not.
async fn launch(session: &SecretService, data: &std::path::Path, dark: bool) -> (Desktop, Client) {
    let data = data.display().to_string();
    let mut env = vec![
        ("ASSENT_AUTHENTICATOR_DATA_DIR", data.as_str()),
        ("LANG", "en_US.UTF-8"),
    ];
    if dark {
        env.push(("GTK_THEME", "Adwaita:dark"));
    }
    let desktop = Desktop::start(Some(session), &env);
    let c = desktop.launch_app().await;
    (desktop, c)
}

/// Waits for the MFA push in the inbox: it reads as Alice's own sign-in.
async fn wait_the_second_step(c: &Client) {
    let item = ".request-item[data-purpose='mfa']";
    wait_text(c, item, "Sign-in to Payroll").await;
    wait_text(c, item, "Second step of your sign-in").await;
}

/// Opens the one MFA push in the inbox and checks it reads as Alice's own
/// sign-in to Payroll.
async fn open_the_second_step(c: &Client) {
    wait_the_second_step(c).await;
    click(c, ".request-item[data-purpose='mfa'] button").await;
    visible(c, "#view-request").await;
    let question = visible(c, "#request-binding").await.text().await.unwrap();
    assert_eq!(question, "Is this you signing in to Payroll?");
    wait_text(
        c,
        "#request-intro",
        "Second step of your sign-in as alice@example.com",
    )
    .await;
    // Everything else as for any request: the number, the PIN, the answers.
    wait_text(
        c,
        "#match-label",
        "Type the 2-digit number Payroll shows you",
    )
    .await;
    for selector in ["#pin", "#approve", "#deny", "#not-me"] {
        visible(c, selector).await;
    }
    wait_text(c, "#request-countdown", "Expires in").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mfa_push_reads_as_the_second_step_of_your_own_sign_in() {
    let (server, client) = server_with_mfa_client().await;
    let link = enrollment_link(&server, ALICE).await;
    let session = SecretService::start();
    let data = tempfile::tempdir().unwrap();

    let (desktop, c) = launch(&session, data.path(), false).await;
    enroll_by_pasting(&c, &link).await;

    // Alice signs in to Payroll; her first factor asks for the second, a
    // push to the app.
    let token = mfa_token(&server, &client).await;
    let (oob_code, code) = push_challenge(&server, &client, &token).await;
    expect_error(
        oob_grant(&server, &client, &token, &oob_code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;
    wait_the_second_step(&c).await;
    screenshot(&c, "mfa-inbox.png").await;
    open_the_second_step(&c).await;
    screenshot(&c, "mfa-request.png").await;
    approve_by_typing(&c, &code).await;
    wait_text(&c, "#notice", "Sign-in to Payroll").await;
    let response = oob_grant(&server, &client, &token, &oob_code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let id_token = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["sub"], ALICE);
    let amr = id_token["amr"].as_array().unwrap();
    for method in ["mfa", "oob", "pin"] {
        assert!(amr.contains(&json!(method)), "{id_token}");
    }
    c.close().await.unwrap();
    drop(desktop);

    // The app again, in the dark theme: the key comes from the credential
    // store, the next push arrives, and Alice denies it.
    let (_desktop, c) = launch(&session, data.path(), true).await;
    let token = mfa_token(&server, &client).await;
    let (oob_code, _) = push_challenge(&server, &client, &token).await;
    open_the_second_step(&c).await;
    screenshot(&c, "mfa-request-dark.png").await;
    click(&c, "#deny").await;
    wait_text(&c, "#notice", "Denied").await;
    let refused = expect_error(
        oob_grant(&server, &client, &token, &oob_code).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(refused["error_description"], "MFA Authorization rejected.");
    c.close().await.unwrap();
}

/// The codes of `secret` (base32) one step either side of now: the app's
/// code may have been read just before or after a step boundary.
fn codes_around_now(secret: &str) -> Vec<String> {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        secret,
        None,
        String::new(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    [now - 30, now, now + 30]
        .into_iter()
        .map(|t| totp.generate(t))
        .collect()
}

/// Every file under `dir`, as text.
fn files_under(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text.push_str(&files_under(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    text
}

/// Waits until the code of `item` has at least 10 seconds left.
async fn fresh_code(c: &Client, item: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(25);
    loop {
        let left = find(c, &format!("{item} .code-seconds"))
            .await
            .text()
            .await
            .unwrap();
        if left.parse::<u64>().is_ok_and(|left| left >= 10) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the countdown is stuck at {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Pastes a link on the Accounts screen and continues.
async fn paste_link(c: &Client, link: &str) {
    click(c, "#nav-accounts").await;
    let input = find(c, "#link-input").await;
    input.clear().await.unwrap();
    input.send_keys(link).await.unwrap();
    click(c, "#link-continue").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_codes_from_an_otpauth_link_complete_a_login() {
    let (server, client) = server_with_mfa_client().await;
    // Alice's first login asks for a second factor: she associates TOTP.
    let token = mfa_token(&server, &client).await;
    let credentials = match &client.credentials {
        assent_tests::client::Credentials::SecretPost(secret) => secret.clone(),
        _ => unreachable!(),
    };
    let enrolled: Value = server
        .http
        .post(server.url("/mfa/associate"))
        .bearer_auth(&token)
        .json(&json!({
            "authenticator_types": ["otp"],
            "client_id": client.client_id,
            "client_secret": credentials,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let barcode_uri = enrolled["barcode_uri"].as_str().unwrap().to_string();
    let secret = enrolled["secret"].as_str().unwrap().to_string();

    let session = SecretService::start();
    let data = tempfile::tempdir().unwrap();
    let (desktop, c) = launch(&session, data.path(), false).await;
    visible(&c, "#inbox-no-accounts").await;

    // The enrollment screen tells a code link from an enrollment link and
    // asks to confirm the issuer and account; no device name is asked.
    paste_link(&c, &barcode_uri).await;
    wait_text(
        &c,
        "#confirm-text",
        "Add sign-in codes for alice@example.com from 127.0.0.1?",
    )
    .await;
    assert!(!find(&c, "#device-name").await.is_displayed().await.unwrap());
    // The first account added: the app PIN is chosen (twice), Enter adds.
    wait_text(&c, "#enroll-pin-label", "Choose an app PIN").await;
    find(&c, "#enroll-pin").await.send_keys(PIN).await.unwrap();
    find(&c, "#enroll-pin-confirm")
        .await
        .send_keys(&format!("{PIN}{}", char::from(Key::Enter)))
        .await
        .unwrap();
    wait_text(&c, "#notice", "Added 127.0.0.1 (alice@example.com)").await;
    visible(&c, "#view-codes").await;

    // A second one, a website's, for the list to show more than one.
    paste_link(
        &c,
        "otpauth://totp/ACME%20Corp:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ACME%20Corp",
    )
    .await;
    wait_text(&c, "#confirm-text", "from ACME Corp?").await;
    wait_text(&c, "#enroll-pin-label", "Your app PIN").await;
    find(&c, "#enroll-pin")
        .await
        .send_keys(&format!("{PIN}{}", char::from(Key::Enter)))
        .await
        .unwrap();
    wait_text(&c, "#notice", "Added ACME Corp (alice@example.com)").await;
    let items = c.find_all(Locator::Css(".code-item")).await.unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].text().await.unwrap().contains("127.0.0.1"));

    // The code shown is the one the secret gives now, grouped for reading
    // (read with time to spare, so the login below uses it in its step).
    let first = ".code-item:first-child";
    fresh_code(&c, first).await;
    let shown = find(&c, &format!("{first} .code")).await;
    let code = shown.attr("data-code").await.unwrap().unwrap();
    assert!(codes_around_now(&secret).contains(&code), "{code}");
    let grouped = shown.text().await.unwrap();
    assert_eq!(grouped, format!("{} {}", &code[..3], &code[3..]));
    // The countdown ticks (and is no live region: a screen reader is not
    // told every second).
    let seconds: u64 = find(&c, &format!("{first} .code-seconds"))
        .await
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&seconds), "{seconds}");
    let live = c
        .execute(
            "const l = document.querySelector('#code-list'); \
             return l.closest('[aria-live]') !== null || l.querySelector('[aria-live]') !== null;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(live, json!(false));
    screenshot(&c, "codes.png").await;

    // Copy, from the keyboard.
    c.execute(
        "document.querySelector(arguments[0]).focus()",
        vec![json!(format!("{first} .copy-code"))],
    )
    .await
    .unwrap();
    c.active_element()
        .await
        .unwrap()
        .send_keys(&char::from(Key::Enter).to_string())
        .await
        .unwrap();
    wait_text(&c, "#notice", "Copied the code for 127.0.0.1").await;

    // The code completes the login (its current one, read again now).
    let code = find(&c, &format!("{first} .code"))
        .await
        .attr("data-code")
        .await
        .unwrap()
        .unwrap();
    assert!(codes_around_now(&secret).contains(&code), "{code}");
    let response = client
        .post_json(
            &server,
            "/oauth/token",
            json!({ "grant_type": MFA_OTP_GRANT, "mfa_token": token, "otp": code }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let id_token = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["amr"], json!(["otp", "mfa"]));

    // The secrets went to the credential store: no file of the app holds them.
    let on_disk = files_under(data.path());
    assert!(!on_disk.contains(&secret), "the secret is in no file");
    assert!(!on_disk.contains("JBSWY3DPEHPK3PXP"));
    c.close().await.unwrap();
    drop(desktop);

    // Started again (dark theme), with codes only: the app opens on them,
    // read back from the credential store without the PIN.
    let (_desktop, c) = launch(&session, data.path(), true).await;
    visible(&c, "#view-codes").await;
    fresh_code(&c, ".code-item:first-child").await;
    let code = find(&c, ".code-item:first-child .code")
        .await
        .attr("data-code")
        .await
        .unwrap()
        .unwrap();
    assert!(codes_around_now(&secret).contains(&code), "{code}");
    screenshot(&c, "codes-dark.png").await;
    // In the narrowest window the list reflows: nothing scrolls sideways.
    c.set_window_size(400, 700).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while c
        .execute("return window.innerWidth > 420", vec![])
        .await
        .unwrap()
        == json!(true)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the window did not narrow"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(0), "nothing wider than the window");
    visible(&c, ".code-item:first-child .copy-code").await;
    c.set_window_size(1000, 720).await.unwrap();

    // Removing asks first, in the app's own dialog.
    click(&c, ".code-item:last-child .remove-code").await;
    wait_text(
        &c,
        "#confirm-title",
        "Remove ACME Corp (alice@example.com)?",
    )
    .await;
    click(&c, "#confirm-cancel").await;
    assert_eq!(
        c.find_all(Locator::Css(".code-item")).await.unwrap().len(),
        2
    );
    click(&c, ".code-item:last-child .remove-code").await;
    click(&c, "#confirm-ok").await;
    wait_text(&c, "#notice", "Removed ACME Corp (alice@example.com)").await;
    let items = c.find_all(Locator::Css(".code-item")).await.unwrap();
    assert_eq!(items.len(), 1);
    c.close().await.unwrap();
}
