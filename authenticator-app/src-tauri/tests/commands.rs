//! The app's commands through Tauri's IPC layer on the mock runtime (no
//! display), against a real Assent server on a fresh SQLite database: the
//! same calls the window makes, with the same argument names.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use assent_authenticator::{keys::KeyStoreChoice, Authenticator, Settings, UiEvent};
use assent_shared::error::OAuthErrorCode;
use assent_tests::{
    client::expect_error, count, enrollment_link, request_id, server_with_alice, tamper_challenge,
    TestClient, TestServer, ALICE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tauri::{
    ipc::{CallbackFn, InvokeBody},
    test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY},
    webview::InvokeRequest,
    App, WebviewWindow, WebviewWindowBuilder,
};

struct TestApp {
    _app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    events: Arc<Mutex<Vec<UiEvent>>>,
    authenticator: Authenticator,
    data_dir: tempfile::TempDir,
}

impl TestApp {
    fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap())
    }

    /// An app whose accounts live in `data_dir` (keys in files: tests must
    /// not write into the credential store of whoever runs them).
    fn start_in(data_dir: tempfile::TempDir) -> Self {
        let authenticator = Authenticator::new(Settings {
            data_dir: data_dir.path().to_path_buf(),
            key_store: KeyStoreChoice::File,
            device_name: "Test laptop".into(),
        });
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        authenticator.set_sink(Arc::new(move |event| sink.lock().unwrap().push(event)));
        let app = assent_authenticator::with_commands(mock_builder())
            .manage(authenticator.clone())
            .build(mock_context(noop_assets()))
            .unwrap();
        let window = WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        Self {
            _app: app,
            window,
            events,
            authenticator,
            data_dir,
        }
    }

    /// Calls a command as the window does; `Err` holds the command's error JSON.
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        // The command runs on Tauri's runtime; this thread only waits.
        tokio::task::block_in_place(|| get_ipc_response(&self.window, request))
            .map(|body| body.deserialize::<Value>().unwrap())
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    fn err(&self, cmd: &str, args: Value) -> Value {
        match self.invoke(cmd, args) {
            Ok(v) => panic!("{cmd} should have failed, answered {v}"),
            Err(e) => e,
        }
    }

    /// Waits (without calling refresh) until the inbox satisfies `check`.
    async fn wait_for_inbox(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let inbox = self.ok("inbox", json!({}));
            if check(&inbox) {
                return inbox;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; inbox: {inbox}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn announced(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                UiEvent::NewRequest { request_id, .. } => Some(request_id.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The app PIN the tests choose at first enrollment.
const PIN: &str = "402913";

/// Starts a request for Alice; returns its `auth_req_id`.
async fn start_request(
    server: &TestServer,
    client: &TestClient,
    binding: &str,
    extra: &[(&str, &str)],
) -> String {
    start_request_with_code(server, client, binding, extra)
        .await
        .0
}

/// Starts a request for Alice; returns its `auth_req_id` and the
/// number-matching code the client would show.
async fn start_request_with_code(
    server: &TestServer,
    client: &TestClient,
    binding: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let mut params = vec![
        ("scope", "openid email"),
        ("login_hint", "alice@example.com"),
        ("binding_message", binding),
    ];
    params.extend_from_slice(extra);
    let response = client.bc_authorize(server, &params).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ack: Value = response.json().await.unwrap();
    (
        ack["auth_req_id"].as_str().unwrap().to_string(),
        ack["match_code"].as_str().unwrap().to_string(),
    )
}

fn enroll(app: &TestApp, link: &str) -> String {
    let preview = app.ok("preview_link", json!({ "link": link }));
    assert_eq!(preview["account"], "alice@example.com");
    let account = app.ok(
        "enroll",
        json!({ "link": link, "deviceName": "", "pin": PIN }),
    );
    assert_eq!(account["label"], "alice@example.com");
    assert_eq!(account["user"], ALICE);
    assert_eq!(account["device_name"], "Test laptop");
    assert_eq!(account["key_location"], "encrypted_file");
    account["id"].as_str().unwrap().to_string()
}

/// A wrong code: the one shown, with its last digit changed.
fn wrong(code: &str) -> String {
    let (head, last) = code.split_at(code.len() - 1);
    let last = (last.as_bytes()[0] - b'0' + 1) % 10;
    format!("{head}{last}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_then_approve_deny_and_not_me_from_the_live_inbox() {
    let (server, client) = server_with_alice().await;
    let app = TestApp::start();
    let account_id = enroll(&app, &enrollment_link(&server, ALICE).await);

    let status = app.ok("status", json!({}));
    assert_eq!(status["accounts"].as_array().unwrap().len(), 1);
    assert!(status["key_warning"].as_str().unwrap().contains("file"));
    assert_eq!(status["pin_set"], true, "the first enrollment set the PIN");

    let details = r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"250.00"},"creditorName":"Merchant A"}]"#;
    let (approve_id, code) = start_request_with_code(
        &server,
        &client,
        "Transfer 250 EUR #4711",
        &[("authorization_details", details)],
    )
    .await;

    // The event stream brings it in: no refresh is called.
    let inbox = app
        .wait_for_inbox("the request", |i| {
            i["requests"].as_array().unwrap().len() == 1
        })
        .await;
    let listed = &inbox["requests"][0];
    assert_eq!(listed["binding_message"], "Transfer 250 EUR #4711");
    let request_id = listed["request_id"].as_str().unwrap().to_string();
    assert_eq!(request_id, request_id_of(&server, &approve_id).await);
    assert!(
        app.announced().contains(&request_id),
        "a notification is due"
    );

    let view = app.ok(
        "request",
        json!({ "accountId": account_id, "requestId": request_id }),
    );
    assert_eq!(view["client_name"], "Test client (client_secret_basic)");
    assert_eq!(view["account_label"], "alice@example.com");
    assert_eq!(view["requester_ip"], "127.0.0.1");
    assert_eq!(view["scopes"][1]["description"], "See your e-mail address");
    assert_eq!(view["match_code_digits"], 2);
    assert_eq!(view["authorization_details"][0]["title"], "Payment");
    assert!(
        view["key_lines"][0]
            .as_str()
            .unwrap()
            .ends_with(" to Merchant A"),
        "{view}"
    );

    // Approving needs the PIN and the number the client shows, each refused
    // in words until right; the server counts the wrong number.
    let approve = |code: Option<&str>, pin: Option<&str>| {
        json!({ "accountId": account_id, "requestId": request_id, "choice": "approved",
                "matchCode": code, "pin": pin })
    };
    assert_eq!(
        app.err("decide", approve(Some(&code), None))["kind"],
        "pin_needed"
    );
    assert_eq!(
        app.err("decide", approve(None, Some(PIN)))["kind"],
        "match_code_needed"
    );
    let wrong_pin = app.err("decide", approve(Some(&code), Some("999999")));
    assert_eq!(wrong_pin["kind"], "wrong_pin");
    assert!(
        wrong_pin["message"]
            .as_str()
            .unwrap()
            .contains("4 more wrong PINs"),
        "{wrong_pin}"
    );
    let wrong_code = app.err("decide", approve(Some(&wrong(&code)), Some(PIN)));
    assert_eq!(wrong_code["kind"], "wrong_match_code");
    assert!(
        wrong_code["message"]
            .as_str()
            .unwrap()
            .contains("Test client"),
        "{wrong_code}"
    );
    assert_eq!(
        count(
            server.store(),
            "SELECT COUNT(*) FROM auth_requests WHERE match_failures = 1"
        )
        .await,
        1
    );
    let decided = app.ok("decide", approve(Some(&code), Some(PIN)));
    assert_eq!(decided["status"], "approved");
    let tokens = client.poll(&server, &approve_id).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    let claims = assent_tests::jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "urn:assent:acr:push:match:uv", "{claims}");
    assert!(
        claims["amr"].as_array().unwrap().contains(&json!("pin")),
        "{claims}"
    );
    assert_eq!(app.ok("inbox", json!({}))["requests"], json!([]));

    // Deny, then "This wasn't me".
    for (binding, choice) in [("Deny me", "denied"), ("Not me", "not_me")] {
        let auth_req_id = start_request(&server, &client, binding, &[]).await;
        let inbox = app
            .wait_for_inbox(binding, |i| i["requests"].as_array().unwrap().len() == 1)
            .await;
        let request_id = inbox["requests"][0]["request_id"]
            .as_str()
            .unwrap()
            .to_string();
        let decided = app.ok(
            "decide",
            json!({ "accountId": account_id, "requestId": request_id, "choice": choice }),
        );
        assert_eq!(decided["status"], "denied");
        expect_error(
            client.poll(&server, &auth_req_id).await,
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::AccessDenied,
        )
        .await;
    }
    assert_eq!(
        count(
            server.store(),
            "SELECT COUNT(*) FROM auth_requests WHERE deny_reason = 'not_me'"
        )
        .await,
        1
    );

    // "This wasn't me" paused new requests: the app knows until when, and
    // its signed unmute lets them in again.
    app.ok("refresh", json!({}));
    let status = app.ok("status", json!({}));
    assert!(
        status["accounts"][0]["muted_until"].as_i64().is_some(),
        "{status}"
    );
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
    app.ok("unmute", json!({ "accountId": account_id }));
    assert_eq!(
        app.ok("status", json!({}))["accounts"][0]["muted_until"],
        Value::Null
    );

    // A burst of requests goes with one "Deny all".
    for i in 0..3 {
        start_request(&server, &client, &format!("Burst {i}"), &[]).await;
    }
    app.wait_for_inbox("the burst", |i| {
        i["requests"].as_array().unwrap().len() == 3
    })
    .await;
    let done = app.ok("deny_all", json!({ "choice": "denied" }));
    assert_eq!(done, json!({ "denied": 3, "failed": [] }));
    assert_eq!(app.ok("inbox", json!({}))["requests"], json!([]));
    assert_eq!(
        count(
            server.store(),
            "SELECT COUNT(*) FROM auth_requests WHERE binding_message LIKE 'Burst %' AND status = 'denied'"
        )
        .await,
        3
    );

    let history = app.ok("history", json!({ "accountId": null }));
    let choices: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["choice"].as_str().unwrap())
        .collect();
    assert_eq!(choices[3..], ["not_me", "denied", "approved"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let history = app
            .data_dir
            .path()
            .join("accounts")
            .join(&account_id)
            .join("history.json");
        let mode = std::fs::metadata(history).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the history is the user's alone");
    }
    assert_eq!(history[5]["binding_message"], "Transfer 250 EUR #4711");

    // A second decision on an answered request is refused in words.
    let again = app.err("decide", approve(Some(&code), Some(PIN)));
    assert_eq!(again["kind"], "gone");
}

async fn request_id_of(server: &TestServer, auth_req_id: &str) -> String {
    request_id(server.store(), auth_req_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_with_a_wrong_signature_never_reaches_the_inbox() {
    let (server, client) = server_with_alice().await;
    // Forged before the app is enrolled, so the app never saw the genuine
    // challenge: requests made before enrollment are pending for the user too.
    let forged = start_request(&server, &client, "Transfer 10 EUR", &[]).await;
    let forged_id = request_id_of(&server, &forged).await;
    tamper_challenge(server.store(), &forged_id, "Transfer 10,000 EUR").await;
    let app = TestApp::start();
    let account_id = enroll(&app, &enrollment_link(&server, ALICE).await);
    let genuine = start_request(&server, &client, "Genuine request", &[]).await;
    let genuine_id = request_id_of(&server, &genuine).await;

    let inbox = app.ok("refresh", json!({}));
    let requests = inbox["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{inbox}");
    assert_eq!(requests[0]["request_id"], genuine_id.as_str());
    assert_eq!(inbox["hidden_bad_signatures"], 1);
    assert!(
        !app.announced().contains(&forged_id),
        "no notification for it either"
    );

    // Not by id either: the window cannot open it, nor answer it.
    let err = app.err(
        "request",
        json!({ "accountId": account_id, "requestId": forged_id }),
    );
    assert_eq!(err["kind"], "gone");
    let err = app.err(
        "decide",
        json!({ "accountId": account_id, "requestId": forged_id, "choice": "approved" }),
    );
    assert_eq!(err["kind"], "gone");
    expect_error(
        client.poll(&server, &forged).await,
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::AuthorizationPending,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_from_a_qr_code_image() {
    let (server, _client) = server_with_alice().await;
    let app = TestApp::start();
    let link = enrollment_link(&server, ALICE).await;
    let png = assent_server::qr::png(&link).unwrap();

    let preview = app.ok("read_qr_image", json!({ "image": png }));
    assert_eq!(preview["link"], link.as_str());
    let account = app.ok(
        "enroll",
        json!({ "link": preview["link"], "deviceName": "Desk PC", "pin": PIN }),
    );
    assert_eq!(account["device_name"], "Desk PC");

    let not_an_image = app.err("read_qr_image", json!({ "image": b"hello".to_vec() }));
    assert_eq!(not_an_image["kind"], "no_qr");
    let other_qr = assent_server::qr::png("https://example.com/not-enrollment").unwrap();
    let err = app.err("read_qr_image", json!({ "image": other_qr }));
    assert_eq!(err["kind"], "no_qr");
    assert!(
        err["message"].as_str().unwrap().contains("enrollment link"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_errors_are_worded_for_people() {
    let (server, _client) = server_with_alice().await;
    let app = TestApp::start();

    let err = app.err("preview_link", json!({ "link": "https://example.com" }));
    assert_eq!(err["kind"], "invalid_link");

    let link = enrollment_link(&server, ALICE).await;
    enroll(&app, &link);
    // The same link again: refused locally (already added)...
    let err = app.err(
        "enroll",
        json!({ "link": link, "deviceName": "", "pin": PIN }),
    );
    assert_eq!(err["kind"], "duplicate");
    // ...and by the server from a second app (the ticket is single-use).
    let other = TestApp::start();
    // A first PIN that is too easy is refused before anything else happens.
    let err = other.err(
        "enroll",
        json!({ "link": link, "deviceName": "", "pin": "123456" }),
    );
    assert_eq!(err["kind"], "pin_unacceptable");
    assert!(
        err["message"].as_str().unwrap().contains("consecutive"),
        "{err}"
    );
    let err = other.err(
        "enroll",
        json!({ "link": link, "deviceName": "", "pin": PIN }),
    );
    assert_eq!(err["kind"], "invalid_link");
    assert!(
        err["message"].as_str().unwrap().contains("already used"),
        "{err}"
    );

    // A server that does not answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = link.replace(
        &urlencode(server.issuer().trim_end_matches('/')),
        &urlencode(&format!("http://127.0.0.1:{port}")),
    );
    let err = other.err(
        "enroll",
        json!({ "link": dead, "deviceName": "", "pin": PIN }),
    );
    assert_eq!(err["kind"], "unreachable");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_answered_elsewhere_leave_the_inbox() {
    let (server, client) = server_with_alice().await;
    let app = TestApp::start();
    enroll(&app, &enrollment_link(&server, ALICE).await);
    let auth_req_id = start_request(&server, &client, "Answered elsewhere", &[]).await;
    app.wait_for_inbox("the request", |i| {
        i["requests"].as_array().unwrap().len() == 1
    })
    .await;
    assent_tests::decide(
        server.store(),
        &auth_req_id,
        ALICE,
        assent_server::decision::Decision::Approve,
    )
    .await
    .unwrap();
    let inbox = app
        .wait_for_inbox("the request to leave", |i| {
            i["requests"].as_array().unwrap().is_empty()
        })
        .await;
    // ...and the app can say what became of it.
    assert_eq!(inbox["resolved"][0]["outcome"], "approved", "{inbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_survive_a_restart_and_unenroll_removes_device_and_key() {
    let (server, client) = server_with_alice().await;
    let app = TestApp::start();
    let account_id = enroll(&app, &enrollment_link(&server, ALICE).await);
    #[cfg(unix)]
    {
        // Everything the app keeps is its user's alone.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let account_dir = app.data_dir.path().join("accounts").join(&account_id);
        assert_eq!(mode(&account_dir), 0o700);
        assert_eq!(mode(&app.data_dir.path().join("accounts")), 0o700);
        for file in ["account.json", "device-key.enc.json"] {
            assert_eq!(mode(&account_dir.join(file)), 0o600, "{file}");
        }
        assert_eq!(mode(&app.data_dir.path().join("pin.json")), 0o600);
    }
    let data_dir = {
        let TestApp {
            authenticator,
            data_dir,
            ..
        } = app;
        authenticator.stop();
        data_dir
    };

    // The key is in a file encrypted under the PIN: after a restart the
    // account is listed, locked, until the PIN opens it.
    let app = TestApp::start_in(data_dir);
    let status = app.ok("status", json!({}));
    assert_eq!(status["accounts"][0]["id"], account_id.as_str());
    assert_eq!(status["accounts"][0]["connection"], "locked");
    assert_eq!(status["needs_unlock"], true);
    assert_eq!(
        app.err("unlock", json!({ "pin": "999999" }))["kind"],
        "wrong_pin"
    );
    let status = app.ok("unlock", json!({ "pin": PIN }));
    assert_eq!(status["needs_unlock"], false, "{status}");
    assert_ne!(status["accounts"][0]["connection"], "locked");
    start_request(&server, &client, "After restart", &[]).await;
    let inbox = app.ok("refresh", json!({}));
    assert_eq!(inbox["requests"][0]["binding_message"], "After restart");

    app.ok(
        "unenroll",
        json!({ "accountId": account_id, "evenIfUnreachable": false }),
    );
    assert_eq!(app.ok("status", json!({}))["accounts"], json!([]));
    assert_eq!(app.ok("inbox", json!({}))["requests"], json!([]));
    assert!(!app
        .data_dir
        .path()
        .join("accounts")
        .join(&account_id)
        .exists());
    assert_eq!(
        count(
            server.store(),
            "SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL AND id NOT LIKE 'stand-in:%'"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_on_the_server_clears_its_requests_and_says_so() {
    let (server, client) = server_with_alice().await;
    let app = TestApp::start();
    let account_id = enroll(&app, &enrollment_link(&server, ALICE).await);
    let auth_req_id = start_request(&server, &client, "Before the revocation", &[]).await;
    app.wait_for_inbox("the request", |i| {
        i["requests"].as_array().unwrap().len() == 1
    })
    .await;

    let device = server
        .store()
        .devices(Some(ALICE))
        .await
        .unwrap()
        .into_iter()
        .find(|d| !d.id.starts_with("stand-in:") && d.revoked_at.is_none())
        .expect("the app's device");
    let now = server.assent().clock.now_ms();
    assert!(server
        .store()
        .revoke_device(&device.id, "lost laptop", now)
        .await
        .unwrap());

    // The event stream says so at once: the request leaves, the account stays
    // listed, revoked, with words for what to do.
    app.wait_for_inbox("the request to leave", |i| {
        i["requests"].as_array().unwrap().is_empty()
    })
    .await;
    let status = app.ok("status", json!({}));
    let account = &status["accounts"][0];
    assert_eq!(account["id"], account_id.as_str());
    assert_eq!(account["connection"], "revoked", "{status}");
    assert!(
        account["problem"]
            .as_str()
            .unwrap()
            .contains("removed this device"),
        "{status}"
    );
    // The request cannot be answered from here any more.
    let err = app.err(
        "decide",
        json!({ "accountId": account_id, "requestId": request_id_of(&server, &auth_req_id).await,
                "choice": "denied" }),
    );
    assert_eq!(err["kind"], "gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_codes_are_added_shown_and_removed() {
    let app = TestApp::start();
    let link = "otpauth://totp/ACME:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME";
    // The enrollment screen's preview tells a code link from an enrollment link.
    let preview = app.ok("preview_link", json!({ "link": link }));
    assert_eq!(preview["link_type"], "totp");
    assert_eq!(preview["issuer"], "ACME");
    assert_eq!(preview["account"], "alice@example.com");
    assert_eq!(preview["server"], Value::Null);
    // So does a QR image of it.
    let png = assent_server::qr::png(link).unwrap();
    let from_image = app.ok("read_qr_image", json!({ "image": png }));
    assert_eq!(from_image["link_type"], "totp");
    assert_eq!(from_image["link"], link);
    let hotp = app.err(
        "preview_link",
        json!({ "link": "otpauth://hotp/x?secret=GEZDGNBVGY3TQOJQ" }),
    );
    assert_eq!(hotp["kind"], "invalid_link");

    let added = app.ok("add_code", json!({ "link": link, "pin": PIN }));
    assert_eq!(added["label"], "ACME (alice@example.com)");
    assert_eq!(added["secret_location"], "encrypted_file");
    let codes = app.ok("codes", json!({}));
    assert_eq!(codes.as_array().unwrap().len(), 1);
    let code = codes[0]["code"].as_str().unwrap();
    assert_eq!(code.len(), 6);
    assert_eq!(
        codes[0]["code_grouped"],
        format!("{} {}", &code[..3], &code[3..])
    );
    assert_eq!(codes[0]["period"], 30);
    assert_eq!(codes[0]["code_state"], "ready");
    let status = app.ok("status", json!({}));
    assert_eq!(status["code_accounts"], 1);
    assert_eq!(
        status["pin_set"], true,
        "the first account added sets the PIN"
    );
    assert!(status["key_warning"]
        .as_str()
        .unwrap()
        .contains("code secret"));

    let again = app.err("add_code", json!({ "link": link, "pin": PIN }));
    assert_eq!(again["kind"], "duplicate");
    app.ok("remove_code", json!({ "id": added["id"] }));
    assert_eq!(app.ok("codes", json!({})), json!([]));
    assert_eq!(app.ok("status", json!({}))["code_accounts"], 0);
}
