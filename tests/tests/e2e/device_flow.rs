//! The device protocol end to end with the real binaries: the operator's
//! `assent-server enroll ticket`, the headless `assent-device`, and an OAuth
//! client polling over HTTP, on SQLite and PostgreSQL.

use std::time::Duration;

use assent_server::{client_auth::AuthMethod, keys::TokenAlg};
use assent_shared::{
    error::{DeviceErrorCode, OAuthErrorCode},
    oauth::TokenResponse,
};
use assent_tests::{
    client::{create_user_without_device, expect_error},
    jwt_payload, on_both_backends,
    process::{cli_enrollment_link, run_cli, run_cli_json, run_device},
    TestClient, TestServer,
};
use reqwest::StatusCode;
use serde_json::Value;

on_both_backends! {
    async fn enroll_approve_and_deny_with_assent_device(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user_without_device(server.store(), "auth0|alice", Some("alice@example.com"), Some("Alice")).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let state = tempfile::tempdir().unwrap();
        let state = state.path().join("alice-laptop");

        let uri = cli_enrollment_link(&server.db.url, server.issuer(), "auth0|alice").await;
        assert!(uri.starts_with("assent://enroll?v=1&server="));
        let (ok, enrolled, err) = run_device(&state, &["enroll", &uri, "--name", "Alice's laptop"]).await;
        assert!(ok, "{err}");
        assert_eq!(enrolled["user"], "auth0|alice");
        let device_id = enrolled["device_id"].as_str().unwrap().to_string();

        // Approve.
        let ack = client
            .bc_authorize(&server, &[
                ("scope", "openid email"),
                ("login_hint", "alice@example.com"),
                ("binding_message", "Transfer 250 EUR #4711"),
            ])
            .await
            .json::<Value>()
            .await
            .unwrap();
        let auth_req_id = ack["auth_req_id"].as_str().unwrap();
        let (ok, pending, err) = run_device(&state, &["pending"]).await;
        assert!(ok, "{err}");
        let requests = pending["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0]["binding_message"], "Transfer 250 EUR #4711");
        assert_eq!(requests[0]["client_name"], "Test client (client_secret_basic)");
        assert_eq!(requests[0]["requester"]["ip"], "127.0.0.1");
        assert_eq!(pending["rejected"], 0);

        expect_error(client.poll(&server, auth_req_id).await, StatusCode::BAD_REQUEST, OAuthErrorCode::AuthorizationPending).await;
        let (ok, decided, err) = run_device(&state, &["approve", "--next", "--code", ack["match_code"].as_str().unwrap()]).await;
        assert!(ok, "{err}");
        assert_eq!(decided["status"], "approved");
        server.advance_clock(Duration::from_millis(1100));
        let response = client.poll(&server, auth_req_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: TokenResponse = response.json().await.unwrap();
        assert_eq!(jwt_payload(&tokens.id_token)["sub"], "auth0|alice");
        assert_eq!(jwt_payload(&tokens.access_token)["sub"], "auth0|alice");

        // Deny, and "this wasn't me".
        for (args, reason) in [(vec!["deny", "--next"], None), (vec!["deny", "--next", "--reason", "not-me"], Some("not_me"))] {
            let ack = client.start(&server, "auth0|alice", "openid").await;
            let auth_req_id = ack["auth_req_id"].as_str().unwrap();
            let (ok, decided, err) = run_device(&state, &args).await;
            assert!(ok, "{err}");
            assert_eq!(decided["status"], "denied");
            expect_error(client.poll(&server, auth_req_id).await, StatusCode::BAD_REQUEST, OAuthErrorCode::AccessDenied).await;
            let id = assent_tests::request_id(server.store(), auth_req_id).await;
            let stored = server.store().auth_request(&id).await.unwrap().unwrap();
            assert_eq!(stored.deny_reason.map(|r| r.as_str()), reason);
        }

        // Operators see the "this wasn't me" report, and which device made it.
        let reports: Value = run_cli_json(&server.db.url, &["request", "list", "--not-me", "--json"]).await;
        let reports = reports.as_array().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0]["deny_reason"], "not_me");
        assert_eq!(reports[0]["status"], "denied");
        assert_eq!(reports[0]["decided_by_device"], device_id.as_str());
        let all: Value = run_cli_json(&server.db.url, &["request", "list", "--user", "auth0|alice", "--json"]).await;
        assert_eq!(all.as_array().unwrap().len(), 3);

        // Nothing left to answer.
        let (ok, _, err) = run_device(&state, &["approve", "--next"]).await;
        assert!(!ok);
        assert!(err.contains("no such pending request"), "{err}");

        // Operators see the device; unenrolling revokes it.
        let list: Value = run_cli_json(&server.db.url, &["device", "list", "--user", "auth0|alice", "--json"]).await;
        assert_eq!(list[0]["device_id"], device_id.as_str());
        assert_eq!(list[0]["name"], "Alice's laptop");
        let (ok, _, err) = run_device(&state, &["unenroll"]).await;
        assert!(ok, "{err}");
        let list: Value = run_cli_json(&server.db.url, &["device", "list", "--json"]).await;
        assert_eq!(list[0]["revoke_reason"], "unenrolled");
        let (ok, _, err) = run_device(&state, &["pending"]).await;
        assert!(!ok && err.contains("enroll first"), "{err}");
    }
}

on_both_backends! {
    async fn key_rotation_keeps_the_device_working_and_retires_the_old_key(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user_without_device(server.store(), "bob", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretPost, TokenAlg::ES256).await;
        let state = tempfile::tempdir().unwrap();
        let state = state.path().join("bob");
        let uri = cli_enrollment_link(&server.db.url, server.issuer(), "bob").await;
        assert!(run_device(&state, &["enroll", &uri]).await.0);
        let old_key = std::fs::read_to_string(state.join("device-key.json")).unwrap();

        let (ok, rotated, err) = run_device(&state, &["rotate-key"]).await;
        assert!(ok, "{err}");
        let new_key = std::fs::read_to_string(state.join("device-key.json")).unwrap();
        assert_ne!(old_key, new_key);
        let list: Value = run_cli_json(&server.db.url, &["device", "list", "--json"]).await;
        assert_eq!(list[0]["key_thumbprint"], rotated["key_thumbprint"]);

        let ack = client.start(&server, "bob", "openid").await;
        assert!(run_device(&state, &["approve", "--next", "--code", ack["match_code"].as_str().unwrap()]).await.0);
        server.advance_clock(Duration::from_millis(1100));
        assert_eq!(client.poll(&server, ack["auth_req_id"].as_str().unwrap()).await.status(), StatusCode::OK);

        // The old key can no longer act for the device.
        std::fs::write(state.join("device-key.json"), old_key).unwrap();
        let (ok, _, err) = run_device(&state, &["pending"]).await;
        assert!(!ok);
        assert!(err.contains(DeviceErrorCode::InvalidProof.as_str()), "{err}");
    }
}

#[tokio::test]
async fn enrollment_qr_codes_decode_to_the_link() {
    let server = TestServer::start(assent_tests::Backend::Sqlite).await;
    create_user_without_device(server.store(), "frank", Some("frank@example.com"), None).await;
    let dir = tempfile::tempdir().unwrap();
    for file in ["ticket.png", "ticket.svg"] {
        let path = dir.path().join(file);
        let out: Value = run_cli_json(
            &server.db.url,
            &[
                "--issuer",
                server.issuer(),
                "enroll",
                "ticket",
                "--user",
                "frank",
                "--qr",
                path.to_str().unwrap(),
                "--json",
            ],
        )
        .await;
        let uri = out["enrollment_uri"].as_str().unwrap();
        if file.ends_with(".png") {
            // Decode with an independent QR reader.
            let decoder =
                png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
            let mut reader = decoder.read_info().unwrap();
            let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut pixels).unwrap();
            let (w, h) = (info.width as usize, info.height as usize);
            let mut image =
                rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
            let grids = image.detect_grids();
            assert_eq!(grids.len(), 1);
            let (_, content) = grids[0].decode().unwrap();
            assert_eq!(content, uri);
        } else {
            let svg = std::fs::read_to_string(&path).unwrap();
            assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
        }
    }
    // The terminal rendering prints a QR code above the link.
    let text = run_cli(
        &server.db.url,
        &[
            "--issuer",
            server.issuer(),
            "enroll",
            "ticket",
            "--user",
            "frank",
        ],
    )
    .await;
    assert!(text.contains('█') || text.contains('▀') || text.contains('▄'));
    assert!(text.contains("assent://enroll?v=1"));
    assert!(text.contains("single use"));
}

on_both_backends! {
    async fn operator_api_push_channel_and_revocation(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user_without_device(server.store(), "gina", None, None).await;
        let url = server.url("/admin/v1/enrollment-tickets");
        let token: Value = run_cli_json(&server.db.url, &["admin", "token", "create", "--name", "helpdesk", "--json"]).await;
        let token = token["token"].as_str().unwrap().to_string();
        let listed = run_cli(&server.db.url, &["admin", "token", "list", "--json"]).await;
        assert!(listed.contains("helpdesk") && !listed.contains(&token), "tokens are never listed");

        // Without, or with a wrong, admin token: 401.
        let r = server.http.post(&url).json(&serde_json::json!({"user": "gina"})).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidToken).await;
        let r = server.http.post(&url).bearer_auth("assent_admin_wrong").json(&serde_json::json!({"user": "gina"})).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidToken).await;
        let r = server.http.post(&url).bearer_auth(&token).json(&serde_json::json!({"user": "nobody"})).send().await.unwrap();
        expect_error(r, StatusCode::NOT_FOUND, OAuthErrorCode::UnknownUser).await;
        let r = server.http.post(&url).bearer_auth(&token).json(&serde_json::json!({"user": "gina", "ttl": 5})).send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;

        // A token may do only what its scopes say, and only until it expires.
        let reader: Value = run_cli_json(&server.db.url, &["admin", "token", "create", "--name", "dashboard", "--scope", "read", "--json"]).await;
        let r = server.http.post(&url).bearer_auth(reader["token"].as_str().unwrap()).json(&serde_json::json!({"user": "gina"})).send().await.unwrap();
        let refused = expect_error(r, StatusCode::FORBIDDEN, OAuthErrorCode::InsufficientScope).await;
        assert!(refused["error_description"].as_str().unwrap().contains("scopes"));
        let short: Value = run_cli_json(&server.db.url, &["admin", "token", "create", "--name", "one-off", "--scope", "admin", "--expires-in", "3", "--json"]).await;
        let r = server.http.post(&url).bearer_auth(short["token"].as_str().unwrap()).json(&serde_json::json!({"user": "gina"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "admin covers enroll");
        // Waited for real: the device's proofs below are checked against the server's clock.
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let r = server.http.post(&url).bearer_auth(short["token"].as_str().unwrap()).json(&serde_json::json!({"user": "gina"})).send().await.unwrap();
        let expired = expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidToken).await;
        assert!(expired["error_description"].as_str().unwrap().contains("expired"));
        let listed: Value = run_cli_json(&server.db.url, &["admin", "token", "list", "--json"]).await;
        let helpdesk = listed.as_array().unwrap().iter().find(|t| t["name"] == "helpdesk").unwrap();
        assert_eq!(helpdesk["scopes"], serde_json::json!(["enroll"]), "enroll by default");
        assert!(helpdesk["expires_at"].is_string(), "an expiry by default");

        let r = server.http.post(&url).bearer_auth(&token).json(&serde_json::json!({"user": "gina", "ttl": 120})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let ticket: Value = r.json().await.unwrap();
        assert!(ticket["qr_svg"].as_str().unwrap().contains("<svg"));
        let uri = ticket["enrollment_uri"].as_str().unwrap();

        // Enroll with a Web Push subscription, then change it.
        let dir = tempfile::tempdir().unwrap();
        let subscription = dir.path().join("subscription.json");
        std::fs::write(&subscription, r#"{"endpoint":"https://push.example/send/abc","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM","auth":"tBHItJI5svbpez7KI4CCXg"}}"#).unwrap();
        let state = dir.path().join("gina");
        let (ok, enrolled, err) = run_device(&state, &["enroll", uri, "--push-subscription", subscription.to_str().unwrap()]).await;
        assert!(ok, "{err}");
        let device_id = enrolled["device_id"].as_str().unwrap().to_string();
        let device = server.store().device(&device_id).await.unwrap().unwrap();
        assert!(device.push_channel.unwrap().contains("push.example"));
        let (ok, _, err) = run_device(&state, &["push-channel", "--remove"]).await;
        assert!(ok, "{err}");
        assert!(server.store().device(&device_id).await.unwrap().unwrap().push_channel.is_none());
        let (ok, _, err) = run_device(&state, &["push-channel", "--push-subscription", subscription.to_str().unwrap()]).await;
        assert!(ok, "{err}");
        assert!(server.store().device(&device_id).await.unwrap().unwrap().push_channel.is_some());

        // The operator revokes the device: it can do nothing more.
        run_cli(&server.db.url, &["device", "revoke", &device_id]).await;
        let (ok, _, err) = run_device(&state, &["pending"]).await;
        assert!(!ok && err.contains(DeviceErrorCode::DeviceRevoked.as_str()), "{err}");
        let list: Value = run_cli_json(&server.db.url, &["device", "list", "--json"]).await;
        assert_eq!(list[0]["revoke_reason"], "revoked by operator");
    }
}
