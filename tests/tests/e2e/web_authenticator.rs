//! The web authenticator (the installable web app at `/authenticator/`)
//! end to end: Debian's Chromium, headless and phone-sized, with a virtual
//! platform authenticator (user verification on), against a real server
//! whose issuer is `http://localhost:PORT`, a real OAuth client polling
//! for tokens, and the project's loopback push service.
//!
//! Enrollment from the https link (ticket in the fragment) registers a
//! passkey; each decision is a WebAuthn assertion over the canonical
//! decision (docs/protocol.md, section 5), and the tokens say so. Forged,
//! mismatched and replayed assertions are refused and lose nothing.
//!
//! Needs Chromium and playwright-core; `./scripts/setup` installs them.
//! Screenshots go to `target/screenshots/`; with
//! `ASSENT_UPDATE_SCREENSHOTS=1` they also replace those in
//! `docs/screenshots/`.

use std::time::Duration;

use assent_shared::{error::OAuthErrorCode, protocol::PushSubscription};
use assent_tests::{
    alice_and_client,
    browser::Phone,
    client::expect_error,
    fetch_text, jwt_payload,
    push_service::{Behavior, TestPushService},
    request_id, Backend, TestClient, TestServer, ALICE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A server on `http://localhost:PORT` with Alice and a client that
/// requires number matching, and Alice's phone enrolled through the web
/// app: its passkey made by the virtual authenticator.
struct Setup {
    server: TestServer,
    client: TestClient,
    phone: Phone,
    push: TestPushService,
}

async fn enrolled_phone(backend: Backend, screenshots: bool) -> Setup {
    let push = TestPushService::start().await;
    let allowed = push.host_port();
    let server = TestServer::start_on_localhost(backend, |s| {
        s.poll_interval = 1;
        s.push_allowed_hosts = vec![allowed];
    })
    .await;
    let client = alice_and_client(&server).await;
    let ticket = assent_server::device::create_enrollment_ticket(server.assent(), ALICE, 600)
        .await
        .unwrap();
    let link = ticket
        .web_enrollment_uri
        .expect("a localhost issuer has passkeys");
    assert!(
        link.starts_with(&format!(
            "{}/authenticator/enroll#v=1&ticket=",
            server.issuer()
        )),
        "{link}"
    );

    let mut phone = Phone::start();
    phone.open(&link).await;
    phone.wait_text("#view-enroll", "alice@example.com").await;
    // The ticket left the address bar (and the history) at once.
    let shown = phone.url().await;
    assert!(!shown.contains('#') && !shown.contains("ticket"), "{shown}");
    phone.fill("device-name", "Alice's phone").await;
    if screenshots {
        phone.screenshot("web-enroll.png").await;
    }
    phone.click("enroll").await;
    phone.wait_visible("#view-inbox").await;

    // The server holds a device of platform web with a passkey whose id is
    // the virtual authenticator's credential, created with user
    // verification (webauthn-rs refuses it otherwise).
    let credentials = phone.cmd(json!({"cmd": "credentials"})).await;
    let credential = &credentials[0];
    assert_eq!(credentials.as_array().unwrap().len(), 1);
    assert_eq!(credential["rp_id"], "localhost");
    assert_eq!(credential["resident"], true, "residentKey preferred");
    let stored = fetch_text(
        server.store(),
        "SELECT platform || ' ' || name || ' ' || passkey_credential_id FROM devices \
         WHERE passkey_credential_id IS NOT NULL",
    )
    .await;
    assert_eq!(
        stored,
        format!(
            "web Alice's phone {}",
            credential["credential_id"].as_str().unwrap()
        )
    );
    Setup {
        server,
        client,
        phone,
        push,
    }
}

struct Started {
    auth_req_id: String,
    id: String,
    code: String,
}

async fn start_request(server: &TestServer, client: &TestClient, binding: &str) -> Started {
    let params = [
        ("scope", "openid email"),
        ("login_hint", "alice@example.com"),
        ("binding_message", binding),
    ];
    let response = client.bc_authorize(server, &params).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ack: Value = response.json().await.unwrap();
    let auth_req_id = ack["auth_req_id"].as_str().unwrap().to_string();
    Started {
        id: request_id(server.store(), &auth_req_id).await,
        code: ack["match_code"]
            .as_str()
            .expect("number matching is on")
            .to_string(),
        auth_req_id,
    }
}

/// Goes to the inbox, waits for the request to appear there (the event
/// stream brings it) and opens it.
async fn open_request(phone: &mut Phone, id: &str) {
    phone
        .cmd(json!({"cmd": "tap", "selector": "button.nav[data-view=inbox]"}))
        .await;
    let item = format!("[data-testid=request-item][data-request-id=\"{id}\"]");
    phone.wait_visible(&item).await;
    phone
        .cmd(json!({"cmd": "tap", "selector": format!("{item} button")}))
        .await;
    phone.wait_visible("[data-testid=approve]").await;
}

async fn token_poll(
    server: &TestServer,
    client: &TestClient,
    auth_req_id: &str,
) -> reqwest::Response {
    // The poll interval is 1 s; the decision has been recorded already.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.poll(server, auth_req_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enroll_by_link_then_approve_deny_and_not_me_with_the_passkey() {
    let Setup {
        server,
        client,
        mut phone,
        push,
    } = enrolled_phone(Backend::Sqlite, true).await;

    // Approve: the request comes in live, the code is typed, the passkey
    // signs; the client's poll gets tokens that say how.
    let first = start_request(&server, &client, "Transfer 250 EUR #4711").await;
    let item = format!(
        "[data-testid=request-item][data-request-id=\"{}\"]",
        first.id
    );
    phone.wait_text(&item, "Transfer 250 EUR #4711").await;
    // Headless Chromium has no push service, which the app says; "Not now"
    // puts that away, and the welcome notice fades by itself.
    phone.wait_text("#push-panel", "could not be set up").await;
    phone
        .cmd(json!({"cmd": "tap", "selector": "#push-dismiss"}))
        .await;
    phone
        .cmd(json!({"cmd": "wait_hidden", "selector": "#notice"}))
        .await;
    phone.screenshot("web-inbox.png").await;
    open_request(&mut phone, &first.id).await;
    phone.fill("match-code", &first.code).await;
    phone.screenshot("web-request.png").await;
    phone
        .cmd(json!({"cmd": "color_scheme", "scheme": "dark"}))
        .await;
    phone.screenshot("web-request-dark.png").await;
    phone
        .cmd(json!({"cmd": "color_scheme", "scheme": "light"}))
        .await;
    phone.click("approve").await;
    phone.wait_text("[data-testid=outcome]", "Approved").await;
    phone.screenshot("web-approved.png").await;
    let response = token_poll(&server, &client, &first.auth_req_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let id_token = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["amr"], json!(["hwk", "user", "mfa"]));
    assert_eq!(id_token["acr"], "urn:assent:acr:push:match:uv");
    let access = jwt_payload(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["amr"], json!(["hwk", "user", "mfa"]));
    // The virtual authenticator counts; the server kept its count.
    let credentials = phone.cmd(json!({"cmd": "credentials"})).await;
    let counted = fetch_text(
        server.store(),
        "SELECT CAST(passkey_sign_count AS TEXT) FROM devices WHERE passkey IS NOT NULL",
    )
    .await;
    assert_eq!(counted, credentials[0]["sign_count"].to_string());

    // Told in time: the phone registers a push channel (here the project's
    // loopback push service: headless Chromium reaches no real one) through
    // the signed push-channel message; the server's Web Push reaches it,
    // and that message, delivered to the app's service worker, shows a
    // notification naming the client.
    let subscription: PushSubscription = push.subscribe("phone", Behavior::Accept);
    let registered = phone
        .evaluate(
            "const account = await AssentProtocol.loadAccount(); \
             return await AssentProtocol.setPushChannel(account, arg);",
            serde_json::to_value(&subscription).unwrap(),
        )
        .await;
    assert_eq!(registered["status"], 200, "{registered}");
    let pushed = start_request(&server, &client, "Sign in to the payroll").await;
    let received = push.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(received[0].payload["request_id"], pushed.id.as_str());
    phone
        .cmd(json!({"cmd": "deliver_push", "data": received[0].payload.to_string()}))
        .await;
    let client_name = fetch_text(
        server.store(),
        &format!(
            "SELECT name FROM clients WHERE client_id = '{}'",
            client.client_id
        ),
    )
    .await;
    // The service worker fetches the verified pending list before it shows
    // anything: on a loaded CI machine that can take seconds.
    let mut shown = Value::Null;
    for _ in 0..300 {
        shown = phone.cmd(json!({"cmd": "notifications"})).await;
        if shown.as_array().is_some_and(|n| !n.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notification = &shown[0];
    assert_eq!(
        notification["title"],
        format!("Sign-in request from {client_name}"),
        "{shown}"
    );
    assert_eq!(notification["body"], "Sign in to the payroll");
    assert_eq!(notification["tag"], pushed.id.as_str());

    // Deny.
    open_request(&mut phone, &pushed.id).await;
    phone.click("deny").await;
    phone.wait_text("[data-testid=outcome]", "Denied").await;
    let poll = token_poll(&server, &client, &pushed.auth_req_id).await;
    expect_error(poll, StatusCode::BAD_REQUEST, OAuthErrorCode::AccessDenied).await;

    // "This wasn't me".
    let third = start_request(&server, &client, "Change the phone number").await;
    open_request(&mut phone, &third.id).await;
    phone.click("not-me").await;
    phone.wait_text("[data-testid=outcome]", "not you").await;
    let poll = token_poll(&server, &client, &third.auth_req_id).await;
    expect_error(poll, StatusCode::BAD_REQUEST, OAuthErrorCode::AccessDenied).await;
    let reasons = fetch_text(
        server.store(),
        &format!(
            "SELECT deny_reason FROM auth_requests WHERE id = '{}'",
            third.id
        ),
    )
    .await;
    assert_eq!(reasons, "not_me");
    phone.close().await;
}

/// The claims of a decision on `id` made by the app's own code (its device
/// key signs later), with `verdict` and the code.
const CLAIMS: &str = "\
    const account = await AssentProtocol.loadAccount(); \
    const pending = await AssentProtocol.fetchPending(account); \
    const request = pending.requests.find((r) => r.request_id === arg.id); \
    if (!request) throw new Error('request not pending: ' + arg.id); \
    return AssentProtocol.decisionClaims(account, request, arg.verdict, \
      {matchCode: arg.code, denyReason: arg.reason});";

/// Signs `claims` with the device key and sends them; the server's answer.
const SEND: &str = "\
    const account = await AssentProtocol.loadAccount(); \
    const jws = await AssentProtocol.signDecision(account, arg); \
    return await AssentProtocol.sendDecision(account, arg.request_id, jws);";

async fn claims(phone: &mut Phone, id: &str, verdict: &str, code: Option<&str>) -> Value {
    phone
        .evaluate(CLAIMS, json!({"id": id, "verdict": verdict, "code": code}))
        .await
}

async fn send(phone: &mut Phone, claims: &Value) -> (u64, Value) {
    let answer = phone.evaluate(SEND, claims.clone()).await;
    (answer["status"].as_u64().unwrap(), answer["body"].clone())
}

/// The real passkey's assertion over `claims` (the virtual authenticator
/// verifies the user).
async fn assertion(phone: &mut Phone, claims: &Value) -> Value {
    phone
        .evaluate(
            "const account = await AssentProtocol.loadAccount(); \
             return await AssentProtocol.passkeyAssertion(account, arg);",
            claims.clone(),
        )
        .await
}

fn refused(answer: &(u64, Value), status: u64, error: &str, words: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], error, "{}", answer.1);
    let description = answer.1["error_description"].as_str().unwrap();
    assert!(description.contains(words), "{description}");
}

async fn passkey_refusals(backend: Backend) {
    let Setup {
        server,
        client,
        mut phone,
        push: _push,
    } = enrolled_phone(backend, false).await;
    let target = start_request(&server, &client, "Pay 90 EUR").await;
    let other = start_request(&server, &client, "Pay 10 EUR").await;
    let approve = claims(&mut phone, &target.id, "approve", Some(&target.code)).await;
    let stored_count = || async {
        fetch_text(
            server.store(),
            "SELECT CAST(passkey_sign_count AS TEXT) FROM devices WHERE passkey IS NOT NULL",
        )
        .await
        .parse::<u32>()
        .unwrap()
    };

    // Without the passkey: the device key alone does not decide.
    let answer = send(&mut phone, &approve).await;
    refused(&answer, 400, "passkey_required", "passkey");

    // The passkey's real assertion of another decision (a denial), sent
    // with the approval.
    let deny = claims(&mut phone, &target.id, "deny", None).await;
    let mut mismatched = approve.clone();
    mismatched["passkey"] = assertion(&mut phone, &deny).await;
    let answer = send(&mut phone, &mismatched).await;
    refused(&answer, 401, "invalid_passkey", "another decision");

    // Made with the credential's own private key, outside the browser:
    // without user verification (flag UP only)...
    let next = stored_count().await + 100;
    let forge = |flags: u8, origin: String, count: u32| {
        json!({"cmd": "forge_assertion", "claims": approve, "origin": origin,
               "flags": flags, "sign_count": count})
    };
    let origin = server.issuer().to_string();
    let mut forged = approve.clone();
    forged["passkey"] = phone.cmd(forge(0x01, origin.clone(), next)).await;
    let answer = send(&mut phone, &forged).await;
    refused(&answer, 401, "invalid_passkey", "user verification");

    // ... for another origin (a phishing page that relays the challenge) ...
    forged["passkey"] = phone
        .cmd(forge(0x05, "https://assent.example.evil".into(), next))
        .await;
    let answer = send(&mut phone, &forged).await;
    refused(&answer, 401, "invalid_passkey", "origin");

    // ... inside a frame of another site (the issuer's page framed) ...
    forged["passkey"] = phone
        .cmd(
            json!({"cmd": "forge_assertion", "claims": approve, "origin": origin,
                    "flags": 0x05, "sign_count": next, "cross_origin": true}),
        )
        .await;
    let answer = send(&mut phone, &forged).await;
    refused(&answer, 401, "invalid_passkey", "frame");

    // ... and, with everything right, the control: the same forgery with
    // user verification and the issuer's origin is accepted, so the
    // refusals above are the checks they name.
    let forged_count = stored_count().await;
    forged["passkey"] = phone
        .cmd(forge(0x05, origin.clone(), forged_count + 1))
        .await;

    // A replay: a real assertion made for the target, kept; the user then
    // approves the other request, which moves the counter on; the kept
    // assertion comes too late.
    let mut kept = approve.clone();
    kept["passkey"] = assertion(&mut phone, &approve).await;
    let other_claims = claims(&mut phone, &other.id, "approve", Some(&other.code)).await;
    let mut other_decision = other_claims.clone();
    other_decision["passkey"] = assertion(&mut phone, &other_claims).await;
    let answer = send(&mut phone, &other_decision).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    // Sent again (its answer lost, say): told it is decided, as any
    // resent decision is, not that the passkey was replayed.
    let answer = send(&mut phone, &other_decision).await;
    refused(&answer, 409, "request_not_pending", "already been approved");
    let answer = send(&mut phone, &kept).await;
    refused(&answer, 401, "invalid_passkey", "counter");
    // The forgery's counter is stale by now too.
    let answer = send(&mut phone, &forged).await;
    refused(&answer, 401, "invalid_passkey", "counter");

    // Nothing was lost: the target is still pending, and a fresh forgery
    // with a higher count, UV and the right origin decides it (the checks
    // refused what they name, not everything).
    assert_eq!(
        fetch_text(
            server.store(),
            &format!(
                "SELECT status FROM auth_requests WHERE id = '{}'",
                target.id
            )
        )
        .await,
        "pending"
    );
    let fresh = claims(&mut phone, &target.id, "approve", Some(&target.code)).await;
    let mut accepted = fresh.clone();
    accepted["passkey"] = phone
        .cmd(
            json!({"cmd": "forge_assertion", "claims": fresh, "origin": origin,
                    "flags": 0x05, "sign_count": stored_count().await + 1}),
        )
        .await;
    let answer = send(&mut phone, &accepted).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let response = token_poll(&server, &client, &target.auth_req_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    phone.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_mismatched_and_replayed_assertions_are_refused_sqlite() {
    passkey_refusals(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_mismatched_and_replayed_assertions_are_refused_postgres() {
    passkey_refusals(Backend::Postgres).await;
}

/// The app's enrollment with its own check bypassed: a passkey made without
/// user verification (and without the credProtect extension, which asks
/// for it); the refusal's fields.
const ENROLL_WITHOUT_USER_VERIFICATION: &str = "\
    const publicKey = await AssentProtocol.passkeyRegistration(arg.ticket); \
    publicKey.authenticatorSelection.userVerification = 'discouraged'; \
    delete publicKey.extensions; \
    try { \
      await AssentProtocol.enroll(arg, 'No screen lock', {publicKey}); \
      return {enrolled: true}; \
    } catch (e) { \
      return {name: e.name, message: String(e.message), status: e.status, error: e.error, \
              description: e.error_description}; \
    }";

/// A phone that cannot verify its user (no fingerprint, face or screen
/// lock), given the link by pasting it: the app says why and does not enroll; a passkey made without
/// user verification anyway (the app's own check bypassed) is refused by
/// the server, and the ticket stays unused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_phone_that_cannot_verify_its_user_is_told_so_and_refused() {
    let server = TestServer::start_on_localhost(Backend::Sqlite, |_| {}).await;
    alice_and_client(&server).await;
    let ticket = assent_server::device::create_enrollment_ticket(server.assent(), ALICE, 600)
        .await
        .unwrap();
    let link = ticket.web_enrollment_uri.unwrap();
    let fragment: std::collections::HashMap<String, String> =
        form_urlencoded::parse(link.split_once('#').unwrap().1.as_bytes())
            .into_owned()
            .collect();

    // The link pasted into the app (as on an iPhone, into the Home Screen
    // app, whose storage is not Safari's) opens the enrollment as a scan does.
    let mut phone = Phone::start();
    phone
        .cmd(json!({"cmd": "open", "url": format!("{}/authenticator/", server.issuer()), "user_verification": false}))
        .await;
    phone
        .fill(
            "paste-link",
            "https://elsewhere.example/authenticator/enroll#v=1&ticket=x",
        )
        .await;
    phone.click("paste-continue").await;
    phone
        .wait_text("#paste-error", "not an enrollment link")
        .await;
    phone.fill("paste-link", &link).await;
    phone.click("paste-continue").await;
    phone
        .wait_text("#view-enroll", "cannot keep a passkey")
        .await;

    let answer = phone
        .evaluate(
            ENROLL_WITHOUT_USER_VERIFICATION,
            json!({"ticket": fragment["ticket"], "pin": fragment["pin"]}),
        )
        .await;
    assert_eq!(answer["status"], 400, "{answer}");
    assert_eq!(answer["error"], "passkey_refused", "{answer}");
    assert!(
        answer["description"]
            .as_str()
            .unwrap()
            .contains("did not verify the user"),
        "{answer}"
    );
    let unused = fetch_text(
        server.store(),
        "SELECT CAST(COUNT(*) AS TEXT) FROM enrollment_tickets WHERE used_at IS NULL",
    )
    .await;
    assert_eq!(unused, "1");
    phone.close().await;
}
