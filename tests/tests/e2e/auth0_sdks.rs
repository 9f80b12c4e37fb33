//! Auth0's own SDKs, unmodified, as clients of Assent: auth0-python 6.8.0
//! and npm auth0 6.4.0's AuthenticationClient, each call a child process
//! (tests/src/sdk.rs), against a server in this process behind a TLS proxy
//! (both SDKs speak only https, and the Node SDK checks ID tokens against
//! `https://{domain}/`), on SQLite and PostgreSQL. What the SDKs send is
//! what Auth0's customers' code sends: the secret in the body, JSON bodies
//! at /oauth/token from auth0-python and at /oauth/revoke from both.
//!
//! The user's decision goes through the domain function, the way a
//! device's signed decision ends: an enrolled device (assent-device) trusts
//! only the public web roots, so it cannot reach a server whose https
//! certificate comes from the tests' throwaway CA. The device's side of the
//! flow is device_flow's.

use std::time::Duration;

use assent_server::{
    decision::Decision,
    messaging::{self, EmailMessage, OutgoingMessage, SmsMessage},
};
use assent_shared::oauth::AUTH_REQ_ID_CLAIM;
use assent_tests::{
    client::create_user,
    on_both_backends,
    sdk::{Auth0Sdk, DeliveryServer, SdkKind, SdkServer},
};
use jsonwebtoken::{jwk::JwkSet, DecodingKey, Validation};
use serde_json::Value;

const ALICE: &str = "auth0|alice";
const SCOPE: &str = "openid profile email offline_access";

/// An [`SdkServer`] with [`ALICE`] (alice@example.com) and her stand-in
/// device (`/bc-authorize` asks only users with one).
async fn server_with_alice(backend: assent_tests::Backend) -> SdkServer {
    let env = SdkServer::start(backend).await;
    create_user(
        env.server.store(),
        ALICE,
        Some("alice@example.com"),
        Some("Alice"),
    )
    .await;
    env
}

/// The iss_sub login hint Auth0 documents for auth0-python's
/// `back_channel_login` (the Node SDK builds the same one itself).
fn login_hint(env: &SdkServer, sub: &str) -> String {
    serde_json::json!({"format": "iss_sub", "iss": env.issuer(), "sub": sub}).to_string()
}

/// Checks `id_token` against the server's JWKS (fetched directly) as
/// issued for the SDK client by the issuer behind the proxy; its claims.
async fn verify_id_token(env: &SdkServer, id_token: &str) -> Value {
    let jwks: JwkSet = serde_json::from_value(
        assent_tests::get_json(&env.server.http, &env.server.url("/.well-known/jwks.json")).await,
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "the SDK client's ID tokens are RS256"
    );
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid in JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[env.issuer()]);
    validation.set_audience(&[&env.client.client_id]);
    jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the ID token verifies against the JWKS")
        .claims
}

/// Checks a token response for `auth_req_id` (ALICE, [`SCOPE`]).
async fn check_ciba_tokens(env: &SdkServer, tokens: &Value, auth_req_id: &str) {
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["scope"], SCOPE);
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    assert!(tokens["access_token"].is_string());
    assert!(tokens["refresh_token"].is_string(), "offline_access asked");
    let id = verify_id_token(env, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["iss"], env.issuer().as_str(), "Auth0's spelling, with /");
    assert_eq!(id["sub"], ALICE);
    assert_eq!(id["aud"], env.client.client_id.as_str());
    assert_eq!(id["azp"], env.client.client_id.as_str());
    assert_eq!(id[AUTH_REQ_ID_CLAIM], auth_req_id);
    assert!(id["auth_time"].is_i64() && id["at_hash"].is_string());
    // The access token is good for UserInfo.
    let info = assent_tests::userinfo(
        &env.server.http,
        &env.server.url("/userinfo"),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(info["sub"], ALICE);
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["name"], "Alice");
}

/// Approves or denies as ALICE, then lets the poll interval (1 s) pass.
async fn decide(env: &SdkServer, auth_req_id: &str, decision: Decision) {
    assent_tests::decide(env.server.store(), auth_req_id, ALICE, decision)
        .await
        .expect("the decision is taken");
    env.server.advance_clock(Duration::from_millis(1100));
}

/// `bc-authorize` through `sdk` (Python passes the login hint, Node the
/// user id); checks the acknowledgement and returns the auth_req_id.
async fn bc_authorize(env: &SdkServer, sdk: &Auth0Sdk) -> String {
    let hint = login_hint(env, ALICE);
    let who = match sdk.kind {
        SdkKind::Python => ["--login-hint", hint.as_str()],
        SdkKind::Node | SdkKind::NodeAuthJs => ["--user-id", ALICE],
    };
    let mut args = vec!["bc-authorize"];
    args.extend(who);
    args.extend(["--scope", SCOPE, "--binding-message", "Order 1234"]);
    let ack = sdk.ok(&args).await;
    assert_eq!(ack["expires_in"], 300, "{ack}");
    assert_eq!(ack["interval"], 1);
    ack["auth_req_id"].as_str().unwrap().to_string()
}

/// The whole CIBA flow through `sdk`: pending first, then tokens after
/// approval, or access_denied after denial.
async fn ciba_flow(env: &SdkServer, sdk: &Auth0Sdk, decision: Decision) -> Value {
    let auth_req_id = bc_authorize(env, sdk).await;
    let poll = ["ciba-token", "--auth-req-id", auth_req_id.as_str()];
    sdk.err(&poll, 400, "authorization_pending").await;
    decide(env, &auth_req_id, decision).await;
    match decision {
        Decision::Approve => {
            let tokens = sdk.ok(&poll).await;
            check_ciba_tokens(env, &tokens, &auth_req_id).await;
            // Single use, as at Auth0.
            env.server.advance_clock(Duration::from_millis(1100));
            sdk.err(&poll, 400, "invalid_grant").await;
            tokens
        }
        _ => sdk.err(&poll, 400, "access_denied").await,
    }
}

on_both_backends! {
    async fn python_ciba_approval_gives_tokens(backend: Backend) {
        let env = server_with_alice(backend).await;
        ciba_flow(&env, &env.python(), Decision::Approve).await;
    }
}

on_both_backends! {
    async fn python_ciba_denial_gives_access_denied(backend: Backend) {
        let env = server_with_alice(backend).await;
        let denied = ciba_flow(&env, &env.python(), Decision::Deny).await;
        assert!(denied["error_description"].is_string(), "{denied}");
    }
}

on_both_backends! {
    async fn node_ciba_approval_gives_tokens_the_sdk_validates(backend: Backend) {
        let env = server_with_alice(backend).await;
        let node = env.node();
        let tokens = ciba_flow(&env, &node, Decision::Approve).await;
        // backchannelGrant hands the ID token over unchecked; the SDK's
        // grants check theirs (RS256 against https://{domain}/ and its
        // JWKS): the refresh grant puts this server's through that check.
        let refreshed = node
            .ok(&["refresh", "--refresh-token", tokens["refresh_token"].as_str().unwrap()])
            .await;
        let id = verify_id_token(&env, refreshed["id_token"].as_str().unwrap()).await;
        assert_eq!(id["sub"], ALICE);
    }
}

on_both_backends! {
    async fn node_ciba_denial_gives_access_denied(backend: Backend) {
        let env = server_with_alice(backend).await;
        let denied = ciba_flow(&env, &env.node(), Decision::Deny).await;
        assert!(denied["error_description"].is_string(), "{denied}");
    }
}

/// Refreshes through `sdk`, revokes the rotated refresh token through it,
/// then checks that the token no longer refreshes and that revoking a token
/// never issued succeeds too.
async fn refresh_then_revoke(env: &SdkServer, sdk: &Auth0Sdk) {
    // The first tokens come through the harness' own client (form bodies,
    // straight to the server): this is about the SDKs' refresh and
    // revocation.
    let auth_req_id = env
        .client
        .start_login(&env.server, ALICE, SCOPE, "Order 1234", &[])
        .await;
    decide(env, &auth_req_id, Decision::Approve).await;
    let first: Value = env
        .client
        .poll(&env.server, &auth_req_id)
        .await
        .json()
        .await
        .unwrap();
    let first_refresh = first["refresh_token"].as_str().expect("a refresh token");

    let refreshed = sdk.ok(&["refresh", "--refresh-token", first_refresh]).await;
    assert_eq!(refreshed["scope"], SCOPE, "{}: {refreshed}", sdk.name());
    let refresh = refreshed["refresh_token"]
        .as_str()
        .expect("a rotated refresh token");
    assert_ne!(refresh, first_refresh, "rotated");
    let id = verify_id_token(env, refreshed["id_token"].as_str().unwrap()).await;
    assert_eq!(id["sub"], ALICE);

    // Auth0 answers a revocation with 200 and an empty body.
    let revoked = sdk.ok(&["revoke", "--token", refresh]).await;
    match sdk.kind {
        SdkKind::Python => assert_eq!(revoked, "", "no body"),
        SdkKind::Node | SdkKind::NodeAuthJs => assert_eq!(revoked["status"], 200),
    }
    sdk.err(
        &["refresh", "--refresh-token", refresh],
        400,
        "invalid_grant",
    )
    .await;

    // A token the server never issued is "revoked" all the same: the answer
    // tells nobody which tokens exist (RFC 7009 2.2).
    let unknown = assent_server::secrets::new_secret();
    sdk.ok(&["revoke", "--token", &unknown]).await;
}

on_both_backends! {
    async fn python_refresh_then_revoke(backend: Backend) {
        let env = server_with_alice(backend).await;
        refresh_then_revoke(&env, &env.python()).await;
    }
}

on_both_backends! {
    async fn node_refresh_then_revoke(backend: Backend) {
        let env = server_with_alice(backend).await;
        refresh_then_revoke(&env, &env.node()).await;
    }
}

/// The receivers the passwordless tests read codes and links from, checked
/// with real clients (Python's smtplib speaking SMTP to aiosmtpd, reqwest
/// posting to the SMS webhook, the SMS provider failing for a while), then
/// with the server's own dispatcher, sending through the settings
/// [`DeliveryServer`] makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_delivery_receivers_take_real_smtp_and_webhook_posts() {
    let env = DeliveryServer::start_with(
        assent_tests::Backend::Sqlite,
        &[assent_shared::oauth::CIBA_GRANT_TYPE],
        |_, _, _| {},
    )
    .await;

    let send = format!(
        r#"
import smtplib
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "Assent <login@assent.test>"
m["To"] = "alice@example.com"
m["Subject"] = "Your code: 123456"
m.set_content("Your code is 123456.")
m.add_alternative("<p>Your code is <b>123456</b>.</p>", subtype="html")
with smtplib.SMTP("127.0.0.1", {port}) as smtp:
    smtp.send_message(m, from_addr="bounces@assent.test")
"#,
        port = env.smtp.port()
    );
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let sent = tokio::process::Command::new(python)
        .args(["-c", &send])
        .output()
        .await
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let mail = env.smtp.next_message(Duration::from_secs(10)).await;
    assert_eq!(mail.envelope_from, "bounces@assent.test");
    assert_eq!(mail.envelope_to, ["alice@example.com"]);
    assert_eq!(
        mail.from_header.as_deref(),
        Some("Assent <login@assent.test>")
    );
    assert_eq!(mail.subject.as_deref(), Some("Your code: 123456"));
    assert_eq!(
        mail.text_body.as_deref().map(str::trim),
        Some("Your code is 123456.")
    );
    assert!(mail.html_body.unwrap().contains("<b>123456</b>"));
    assert!(String::from_utf8_lossy(&mail.raw).starts_with("From: Assent"));
    assert_eq!(env.smtp.count(), 1);

    let http = reqwest::Client::new();
    let post = || {
        http.post(env.sms.url())
            .header("authorization", "Bearer provider-key")
            .json(&serde_json::json!({"to": "+15550100", "body": "Your code is 123456", "sender_id": "Assent"}))
            .send()
    };
    env.sms.fail_next(2);
    for _ in 0..2 {
        assert_eq!(post().await.unwrap().status(), 503);
    }
    assert_eq!(post().await.unwrap().status(), 200);
    assert_eq!(env.sms.attempts(), 3);
    let sms = env.sms.next_sms(Duration::from_secs(10)).await;
    assert_eq!(
        (sms.to.as_str(), sms.body.as_str()),
        ("+15550100", "Your code is 123456")
    );
    assert_eq!(sms.sender_id.as_deref(), Some("Assent"));
    assert_eq!(sms.headers["authorization"], "Bearer provider-key");
    let form = http
        .post(env.sms.url())
        .form(&[("to", "+15550100")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        form.status(),
        400,
        "a provider's JSON webhook takes JSON only"
    );
    assert_eq!(env.sms.errors().len(), 1);

    // The server's dispatcher reaches both, as the passwordless connections will.
    let assent = env.sdk.server.assent();
    let expires = assent.clock.now_ms() + 300_000;
    let email = OutgoingMessage::Email(EmailMessage {
        to: "bob@example.com".into(),
        subject: "Sign in".into(),
        html: "<p>Your code is <b>654321</b></p>".into(),
        text: "Your code is 654321".into(),
        sender_name: None,
        inline_images: Vec::new(),
    });
    messaging::queue(assent, &email, expires).await.unwrap();
    let mail = env.smtp.next_message(Duration::from_secs(30)).await;
    assert_eq!(mail.envelope_to, ["bob@example.com"]);
    assert_eq!(mail.from_header.as_deref(), Some(DeliveryServer::MAIL_FROM));
    assert_eq!(mail.subject.as_deref(), Some("Sign in"));
    assert!(mail.text_body.unwrap().contains("654321"));
    let text = OutgoingMessage::Sms(SmsMessage {
        to: "+15550199".into(),
        body: "Your code is 654321".into(),
        sender_id: None,
    });
    messaging::queue(assent, &text, expires).await.unwrap();
    let sms = env.sms.next_sms(Duration::from_secs(30)).await;
    assert_eq!(
        (sms.to.as_str(), sms.body.as_str()),
        ("+15550199", "Your code is 654321")
    );
    assert_eq!(
        sms.headers["authorization"],
        format!("Bearer {}", DeliveryServer::SMS_TOKEN).as_str()
    );
}

/// The proxy is real TLS under its own CA: a client that trusts only the
/// public roots is refused, one that trusts the CA gets the server's
/// discovery document, naming the issuer behind the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tls_proxy_serves_the_server_under_its_own_ca() {
    let env = SdkServer::start(assent_tests::Backend::Sqlite).await;
    let url = format!("{}.well-known/openid-configuration", env.issuer());
    let untrusting = reqwest::Client::new().get(&url).send().await;
    assert!(untrusting.is_err(), "a client without the CA is refused");
    let ca = std::fs::read(env.proxy.ca_pem_path()).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let discovery: Value = trusting
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], env.issuer().as_str());
    assert_eq!(
        discovery["token_endpoint"],
        format!("{}oauth/token", env.issuer()).as_str()
    );
}
