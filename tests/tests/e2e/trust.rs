//! The moment of trust, on both databases: flood limits, number matching,
//! user verification, truthful acr/amr, "This wasn't me" mutes with the
//! operator's webhook, and blocked users. Real server, real devices, a real
//! loopback push service and a real webhook receiver.

use std::time::Duration;

use assent_device::{Answer, DeviceClient};
use assent_server::{
    client_auth::AuthMethod,
    config::Settings,
    keys::TokenAlg,
    storage::{ClientChanges, NumberMatching, UserVerificationPolicy},
};
use assent_shared::{
    error::{DeviceErrorCode, OAuthErrorCode},
    oauth::acr,
    protocol::{DenyReason, UserVerification},
};
use assent_tests::{
    alerts::{first_alert, webhook_receiver},
    client::{create_user_without_device, expect_error},
    device::enroll,
    jwt_payload, on_both_backends,
    push_service::{Behavior, TestPushService},
    request_status, TestClient, TestServer,
};
use axum::Router;
use reqwest::StatusCode;
use serde_json::Value;

/// The product's defaults for everything this file tests (the harness
/// raises the flood limits for the other tests).
fn trust_defaults(s: &mut Settings) {
    let d = Settings::default();
    s.requests_per_client_per_minute = d.requests_per_client_per_minute;
    s.requests_per_user_per_minute = d.requests_per_user_per_minute;
    s.max_pending_per_user = d.max_pending_per_user;
    s.mute_after_denials = d.mute_after_denials;
    s.poll_interval = 1;
}

async fn client(server: &TestServer) -> TestClient {
    TestClient::register(
        server.store(),
        AuthMethod::ClientSecretBasic,
        TokenAlg::ES256,
    )
    .await
}

async fn set_policy(server: &TestServer, client: &TestClient, changes: ClientChanges) {
    server
        .store()
        .update_client(&client.client_id, &changes)
        .await
        .unwrap()
        .unwrap();
    server.assent().clients.evict(&client.client_id);
}

async fn pending_one(device: &DeviceClient) -> assent_device::VerifiedChallenge {
    let mut pending = device.pending().await.unwrap();
    assert_eq!(pending.verified.len(), 1, "one request is pending");
    pending.verified.remove(0)
}

async fn tokens(server: &TestServer, client: &TestClient, auth_req_id: &str) -> (Value, Value) {
    server.advance_clock(Duration::from_millis(1100));
    let response = client.poll(server, auth_req_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    (
        jwt_payload(body["id_token"].as_str().unwrap()),
        jwt_payload(body["access_token"].as_str().unwrap()),
    )
}

on_both_backends! {
    async fn a_flood_is_cut_at_the_limits_without_pushes_and_a_real_request_still_comes_first(backend: Backend) {
        let push = TestPushService::start().await;
        let allowed = push.host_port();
        let server = TestServer::start_with(backend, move |s| {
            trust_defaults(s);
            s.push_allowed_hosts = vec![allowed];
        })
        .await;
        create_user_without_device(server.store(), "victim", None, None).await;
        let attacker = client(&server).await;
        let bank = client(&server).await;
        let phone = enroll(&server, "victim", Some(push.subscribe("phone", Behavior::Accept))).await;

        let (mut accepted, mut refused) = (0, 0);
        for n in 0..30 {
            let response = attacker
                .bc_authorize(&server, &[("scope", "openid"), ("login_hint", "victim"), ("binding_message", &format!("Flood {n}"))])
                .await;
            if response.status() == StatusCode::OK {
                accepted += 1;
                continue;
            }
            refused += 1;
            let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
            let body = expect_error(response, StatusCode::TOO_MANY_REQUESTS, OAuthErrorCode::TooManyRequests).await;
            assert!(body["error_description"].as_str().unwrap().contains("at most 5 requests per minute"), "{body}");
        }
        assert_eq!((accepted, refused), (5, 25));
        let stored = assent_tests::count(server.store(), "SELECT COUNT(*) FROM auth_requests").await;
        assert_eq!(stored, 5, "a refused request leaves no row behind");

        // Another client's request for the same user is within the per-user
        // cap, and the device sees it first.
        let real = bank.start_login(&server, "victim", "openid", "Your bank call", &[]).await;
        let real_id = assent_tests::request_id(server.store(), &real).await;
        let pending = phone.pending().await.unwrap();
        assert_eq!(pending.total, 6);
        assert_eq!(pending.verified[0].claims.request_id, real_id, "newest first");

        let received = push.wait_for(6, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(received.len(), 6);
        assert_eq!(push.received_by("phone").len(), 6, "one push per accepted request, none for refused ones");
    }
}

on_both_backends! {
    async fn number_matching_needs_the_right_code_and_three_wrong_codes_deny(backend: Backend) {
        let server = TestServer::start_with(backend, trust_defaults).await;
        create_user_without_device(server.store(), "alice", None, None).await;
        let app = client(&server).await;
        let phone = enroll(&server, "alice", None).await;

        let ack = app.start(&server, "alice", "openid").await;
        let code = ack["match_code"].as_str().expect("number matching is on by default").to_string();
        assert_eq!(code.len(), 2);
        let challenge = pending_one(&phone).await;
        assert_eq!(challenge.claims.match_code_digits, Some(2));
        assert!(!challenge.jws.contains(&format!("\"match_code\":\"{code}\"")));

        let err = phone.decide(&challenge, &Answer::approve(None)).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::MatchCodeRequired));
        let wrong = if code == "00" { "01" } else { "00" };
        let err = phone.decide(&challenge, &Answer::approve(Some(wrong))).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::WrongMatchCode));
        assert!(err.to_string().contains("2 attempts left"), "{err}");
        let (id_token, access) = {
            phone.decide(&challenge, &Answer::approve(Some(&code))).await.unwrap();
            tokens(&server, &app, ack["auth_req_id"].as_str().unwrap()).await
        };
        assert_eq!(id_token["acr"], acr::PUSH_MATCH);
        assert_eq!(access["acr"], acr::PUSH_MATCH);
        assert_eq!(id_token["amr"], serde_json::json!(["swk"]));

        // Three wrong codes deny the request, with the reason recorded.
        let ack = app.start(&server, "alice", "openid").await;
        let code = ack["match_code"].as_str().unwrap();
        let wrong = if code == "00" { "01" } else { "00" };
        let challenge = pending_one(&phone).await;
        for _ in 0..2 {
            let err = phone.decide(&challenge, &Answer::approve(Some(wrong))).await.unwrap_err();
            assert_eq!(err.code(), Some(DeviceErrorCode::WrongMatchCode));
        }
        let err = phone.decide(&challenge, &Answer::approve(Some(wrong))).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::WrongMatchCode));
        assert!(err.to_string().contains("the request is denied"), "{err}");
        let id = &challenge.claims.request_id;
        assert_eq!(request_status(server.store(), id).await, "denied");
        let stored = server.store().auth_request(id).await.unwrap().unwrap();
        assert_eq!(stored.deny_reason.map(|r| r.as_str()), Some("wrong_match_code"));
        let err = phone.decide(&challenge, &Answer::approve(Some(code))).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::RequestNotPending), "the right code comes too late");
        expect_error(app.poll(&server, ack["auth_req_id"].as_str().unwrap()).await, StatusCode::BAD_REQUEST, OAuthErrorCode::AccessDenied).await;

        // A client that cannot show a code: no code, acr says so.
        set_policy(&server, &app, ClientChanges { number_matching: Some(NumberMatching::Off), ..Default::default() }).await;
        let ack = app.start(&server, "alice", "openid").await;
        assert!(ack.get("match_code").is_none());
        let challenge = pending_one(&phone).await;
        assert_eq!(challenge.claims.match_code_digits, None);
        phone.decide(&challenge, &Answer::approve(None)).await.unwrap();
        let (id_token, _) = tokens(&server, &app, ack["auth_req_id"].as_str().unwrap()).await;
        assert_eq!(id_token["acr"], acr::PUSH);
    }
}

on_both_backends! {
    async fn user_verification_and_acr_values_set_what_an_approval_needs(backend: Backend) {
        let server = TestServer::start_with(backend, trust_defaults).await;
        create_user_without_device(server.store(), "bob", None, None).await;
        let app = client(&server).await;
        let phone = enroll(&server, "bob", None).await;

        // acr_values the server cannot satisfy are refused at once.
        let response = app.bc_authorize(&server, &[("scope", "openid"), ("login_hint", "bob"), ("binding_message", "x"), ("acr_values", "urn:mace:incommon:iap:silver")]).await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        assert!(body["error_description"].as_str().unwrap().contains(acr::PUSH_MATCH_UV));

        // acr_values asks for verification: the challenge says so, and an
        // approval without it is refused.
        app.start_login(&server, "bob", "openid", "Wire", &[("acr_values", acr::PUSH_UV)]).await;
        let challenge = pending_one(&phone).await;
        assert!(challenge.claims.user_verification_required);
        let denied = phone.decide(&challenge, &Answer::deny(None)).await;
        assert!(denied.is_ok(), "denying needs no verification");
        assert_eq!(request_status(server.store(), &challenge.claims.request_id).await, "denied");

        // The client's policy requires it too.
        set_policy(&server, &app, ClientChanges { user_verification: Some(UserVerificationPolicy::Required), ..Default::default() }).await;
        let ack = app.start(&server, "bob", "openid").await;
        let code = ack["match_code"].as_str().unwrap();
        let challenge = pending_one(&phone).await;
        assert!(challenge.claims.user_verification_required);
        let err = phone.decide(&challenge, &Answer::approve(Some(code))).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::UserVerificationRequired));
        phone.decide(&challenge, &Answer::approve(Some(code)).verified_by(&[UserVerification::Pin])).await.unwrap();
        let (id_token, access) = tokens(&server, &app, ack["auth_req_id"].as_str().unwrap()).await;
        assert_eq!(id_token["acr"], acr::PUSH_MATCH_UV);
        assert_eq!(access["acr"], acr::PUSH_MATCH_UV);
        assert_eq!(id_token["amr"], serde_json::json!(["swk", "pin", "mfa"]));
        assert_eq!(access["amr"], serde_json::json!(["swk", "pin", "mfa"]));

        let discovery: Value = server.http.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
        assert_eq!(discovery["acr_values_supported"].as_array().unwrap().len(), acr::SUPPORTED.len());
    }
}

on_both_backends! {
    async fn not_me_mutes_the_user_tells_the_operator_and_lifts_by_unmute_or_in_time(backend: Backend) {
        let (hook, alerts) = webhook_receiver().await;
        let server = TestServer::start_with(backend, move |s| {
            trust_defaults(s);
            s.push_allowed_hosts = vec![hook.to_string()];
            s.alert_webhook_url = Some(format!("http://{hook}/alerts"));
        })
        .await;
        create_user_without_device(server.store(), "carol", None, None).await;
        let app = client(&server).await;
        let phone = enroll(&server, "carol", None).await;

        app.start(&server, "carol", "openid").await;
        let challenge = pending_one(&phone).await;
        let answer = phone.decide(&challenge, &Answer::deny(Some(DenyReason::NotMe))).await.unwrap();
        let muted_until = answer.muted_until.expect("not_me mutes");
        let now = server.assent().clock.now_secs();
        assert!((now + 1190..=now + 1200).contains(&muted_until), "20 minutes");

        let response = app.bc_authorize(&server, &[("scope", "openid"), ("login_hint", "carol"), ("binding_message", "Again")]).await;
        let body = expect_error(response, StatusCode::FORBIDDEN, OAuthErrorCode::AccessDenied).await;
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains("paused until") && description.contains("This wasn't me"), "{description}");
        assert_eq!(phone.pending().await.unwrap().muted_until, Some(muted_until));

        let alert = first_alert(&alerts).await;
        assert_eq!(alert["type"], "user_muted");
        assert_eq!(alert["user"], "carol");
        assert_eq!(alert["reason"], "not_me");

        let report = assent_tests::process::run_cli_json(&server.db.url, &["request", "list", "--not-me", "--json"]).await;
        assert_eq!(report[0]["user"], "carol");

        // The user lifts the mute from their device.
        assert_eq!(phone.unmute().await.unwrap().muted_until, None);
        assert_eq!(phone.pending().await.unwrap().muted_until, None);
        app.start(&server, "carol", "openid").await;

        // Muted again; this time the mute runs out.
        let challenge = pending_one(&phone).await;
        phone.decide(&challenge, &Answer::deny(Some(DenyReason::NotMe))).await.unwrap();
        server.advance_clock(Duration::from_secs(1201));
        app.start(&server, "carol", "openid").await;
    }
}

on_both_backends! {
    async fn three_denials_in_ten_minutes_mute_too(backend: Backend) {
        let server = TestServer::start_with(backend, trust_defaults).await;
        create_user_without_device(server.store(), "dan", None, None).await;
        let app = client(&server).await;
        let phone = enroll(&server, "dan", None).await;
        for n in 0..3 {
            app.start(&server, "dan", "openid").await;
            let challenge = pending_one(&phone).await;
            let answer = phone.decide(&challenge, &Answer::deny(None)).await.unwrap();
            assert_eq!(answer.muted_until.is_some(), n == 2, "denial {n}");
        }
        let response = app.bc_authorize(&server, &[("scope", "openid"), ("login_hint", "dan"), ("binding_message", "x")]).await;
        let body = expect_error(response, StatusCode::FORBIDDEN, OAuthErrorCode::AccessDenied).await;
        assert!(body["error_description"].as_str().unwrap().contains("denied several requests"), "{body}");
    }
}

on_both_backends! {
    async fn blocked_users_and_users_without_devices_get_nothing(backend: Backend) {
        let server = TestServer::start_with(backend, trust_defaults).await;
        create_user_without_device(server.store(), "erin", None, None).await;
        let app = client(&server).await;

        let response = app.bc_authorize(&server, &[("scope", "openid"), ("login_hint", "erin"), ("binding_message", "x")]).await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        assert!(body["error_description"].as_str().unwrap().contains("no enrolled device"), "{body}");

        let phone = enroll(&server, "erin", None).await;
        // Blocked while a request waits: it cannot be approved.
        let ack = app.start(&server, "erin", "openid").await;
        let challenge = pending_one(&phone).await;
        let now = server.assent().clock.now_ms();
        assert!(server.store().set_user_blocked("erin", true, now).await.unwrap());
        let err = phone.decide(&challenge, &Answer::approve(ack["match_code"].as_str())).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::UserBlocked));
        expect_error(app.poll(&server, ack["auth_req_id"].as_str().unwrap()).await, StatusCode::BAD_REQUEST, OAuthErrorCode::AccessDenied).await;

        // Approved, then blocked before the tokens are collected: no tokens.
        assert!(server.store().set_user_blocked("erin", false, now).await.unwrap());
        let ack = app.start(&server, "erin", "openid").await;
        let challenge = pending_one(&phone).await;
        phone.decide(&challenge, &Answer::approve(ack["match_code"].as_str())).await.unwrap();
        assert!(server.store().set_user_blocked("erin", true, now).await.unwrap());
        server.advance_clock(Duration::from_millis(1100));
        expect_error(app.poll(&server, ack["auth_req_id"].as_str().unwrap()).await, StatusCode::BAD_REQUEST, OAuthErrorCode::AccessDenied).await;
        let response = app.bc_authorize(&server, &[("scope", "openid"), ("login_hint", "erin"), ("binding_message", "x")]).await;
        expect_error(response, StatusCode::FORBIDDEN, OAuthErrorCode::AccessDenied).await;
    }
}

/// A 2x2 PNG, encoded by the `png` crate.
fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 2, 2);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&[200, 30, 30, 30, 200, 30, 30, 30, 200, 250, 250, 250])
            .unwrap();
    }
    out
}

on_both_backends! {
    async fn the_operator_sets_website_and_logo_and_the_server_serves_the_logo_itself(backend: Backend) {
        let png = tiny_png();
        let served = png.clone();
        let app = Router::new()
            .route("/logo.png", axum::routing::get(move || async move { ([("content-type", "image/png")], served.clone()) }))
            .route("/page.html", axum::routing::get(|| async { ([("content-type", "image/png")], "<svg onload=alert(1)>") }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let server = TestServer::start_with(backend, trust_defaults).await;
        create_user_without_device(server.store(), "gina", None, None).await;
        let app_client = client(&server).await;
        let phone = enroll(&server, "gina", None).await;
        let update = |args: Vec<String>, allow: bool| {
            let mut cmd = assent_tests::process::server_command(&server.db.url);
            cmd.args(["client", "update", &app_client.client_id]).args(args);
            if allow {
                cmd.env("ASSENT_PUSH_ALLOWED_HOSTS", origin.to_string());
            }
            cmd.output()
        };

        // Loopback is refused unless the operator allows the host; a page
        // that is not an image is refused whatever it claims to be.
        let out = update(vec!["--logo-url".into(), format!("http://{origin}/logo.png")], false).await.unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not allowed"), "{}", String::from_utf8_lossy(&out.stderr));
        let out = update(vec!["--logo-url".into(), format!("http://{origin}/page.html")], true).await.unwrap();
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a PNG, JPEG or WebP"), "{}", String::from_utf8_lossy(&out.stderr));
        let out = update(
            vec!["--logo-url".into(), format!("http://{origin}/logo.png"), "--website".into(), "https://bank.example/help".into(), "--json".into()],
            true,
        )
        .await
        .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let row: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(row["client_uri"], "https://bank.example/help");
        assert_eq!(row["logo"], true);
        server.assent().clients.evict(&app_client.client_id);

        app_client.start(&server, "gina", "openid").await;
        let challenge = pending_one(&phone).await;
        assert_eq!(challenge.claims.client_uri.as_deref(), Some("https://bank.example/help"));
        let logo_uri = challenge.claims.logo_uri.clone().unwrap();
        assert!(logo_uri.starts_with(&format!("{}/clients/", server.issuer().trim_end_matches('/'))), "{logo_uri}");
        let response = server.http.get(&logo_uri).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "image/png");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.bytes().await.unwrap().to_vec(), png);

        let out = update(vec!["--no-logo".into()], false).await.unwrap();
        assert!(out.status.success());
        let gone = server.http.get(&logo_uri).send().await.unwrap();
        expect_error(gone, StatusCode::NOT_FOUND, OAuthErrorCode::NotFound).await;
    }
}
