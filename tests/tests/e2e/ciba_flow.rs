//! The CIBA poll flow over real HTTP against a server in this process, on
//! SQLite and PostgreSQL: every client authentication method, approval and
//! denial through the domain function, tokens checked against the JWKS.

use std::time::Duration;

use assent_server::{
    client_auth::AuthMethod,
    decision::{self, Decision, DecisionError},
    keys::TokenAlg,
    storage::{DenialReason, RequestStatus},
};
use assent_shared::{
    error::OAuthErrorCode,
    oauth::{TokenResponse, AUTH_REQ_ID_CLAIM, REFRESH_TOKEN_GRANT_TYPE},
};
use assent_tests::{
    client::{create_user, expect_error},
    on_both_backends, TestClient, TestServer,
};
use jsonwebtoken::{jwk::JwkSet, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

async fn approve(server: &TestServer, auth_req_id: &str, sub: &str) {
    assent_tests::decide(server.store(), auth_req_id, sub, Decision::Approve)
        .await
        .expect("approval succeeds");
}

/// Verifies `token` against the server's published JWKS, fetched over HTTP.
async fn verify_with_jwks(server: &TestServer, token: &str, aud: &str) -> Value {
    let jwks: JwkSet = serde_json::from_value(
        assent_tests::get_json(&server.http, &server.url("/.well-known/jwks.json")).await,
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid in JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[server.issuer()]);
    validation.set_audience(&[aud]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("token verifies against the JWKS")
        .claims
}

on_both_backends! {
    async fn full_flow_with_every_client_authentication_method(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user(server.store(), "auth0|alice", Some("Alice@Example.com"), Some("Alice")).await;
        for (method, alg) in [
            (AuthMethod::ClientSecretBasic, TokenAlg::RS256),
            (AuthMethod::ClientSecretPost, TokenAlg::ES256),
            (AuthMethod::PrivateKeyJwt, TokenAlg::ES256),
        ] {
            let client = TestClient::register(server.store(), method, alg).await;
            let hint = format!(
                r#"{{"format":"iss_sub","iss":"{}/","sub":"auth0|alice"}}"#,
                server.issuer()
            );
            let ack = client.start(&server, &hint, "openid profile email offline_access").await;
            assert_eq!(ack["expires_in"], 300);
            assert_eq!(ack["interval"], 1);
            let auth_req_id = ack["auth_req_id"].as_str().unwrap();
            assert!(auth_req_id.len() >= 22);

            let pending = client.poll(&server, auth_req_id).await;
            expect_error(pending, StatusCode::BAD_REQUEST, OAuthErrorCode::AuthorizationPending).await;

            approve(&server, auth_req_id, "auth0|alice").await;
            server.advance_clock(Duration::from_millis(1100));

            let response = client.poll(&server, auth_req_id).await;
            assert_eq!(response.status(), StatusCode::OK, "{method}");
            assert_eq!(response.headers()["cache-control"], "no-store");
            let tokens: TokenResponse = response.json().await.unwrap();
            assert_eq!(tokens.token_type, "Bearer");
            assert_eq!(tokens.scope, "openid profile email offline_access");
            assert!(tokens.refresh_token.is_some());

            let id = verify_with_jwks(&server, &tokens.id_token, &client.client_id).await;
            assert_eq!(jsonwebtoken::decode_header(&tokens.id_token).unwrap().alg, alg.jwt_algorithm());
            assert_eq!(id["sub"], "auth0|alice");
            assert_eq!(id[AUTH_REQ_ID_CLAIM], auth_req_id);
            assert!(id["auth_time"].is_i64());
            assert!(id["at_hash"].is_string());

            let userinfo_url = server.url("/userinfo");
            let access = verify_with_jwks(&server, &tokens.access_token, &userinfo_url).await;
            let access_header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
            assert_eq!(access_header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(access["client_id"], client.client_id.as_str());
            assert_eq!(access["scope"], "openid profile email offline_access");
            assert!(access["jti"].is_string());

            let info = assent_tests::userinfo(&server.http, &userinfo_url, &tokens.access_token).await;
            assert_eq!(info["sub"], "auth0|alice");
            assert_eq!(info["name"], "Alice");
            assert_eq!(info["email"], "Alice@Example.com");
            assert_eq!(info["email_verified"], true);

            // The same auth_req_id is single use.
            let replay = client.poll(&server, auth_req_id).await;
            expect_error(replay, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant).await;
        }
    }
}

on_both_backends! {
    async fn userinfo_releases_claims_by_scope_and_accepts_post(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user(server.store(), "bob", Some("bob@example.com"), Some("Bob")).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let ack = client.start(&server, "bob@EXAMPLE.com", "openid").await;
        let id = ack["auth_req_id"].as_str().unwrap();
        approve(&server, id, "bob").await;
        let tokens: TokenResponse = client.poll(&server, id).await.json().await.unwrap();
        assert!(tokens.refresh_token.is_none(), "no offline_access, no refresh token");
        let info: Value = server
            .http
            .post(server.url("/userinfo"))
            .form(&[("access_token", tokens.access_token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info, serde_json::json!({"sub": "bob"}));
    }
}

on_both_backends! {
    async fn denial_and_not_me_give_access_denied(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "carol", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretPost, TokenAlg::ES256).await;
        for decision in [Decision::Deny, Decision::NotMe] {
            let ack = client.start(&server, "carol", "openid").await;
            let auth_req_id = ack["auth_req_id"].as_str().unwrap();
            let request_id = assent_tests::request_id(server.store(), auth_req_id).await;
            decision::decide(server.store(), &server.assent().clock, &request_id, "carol", decision).await.unwrap();
            let stored = server.store().auth_request(&request_id).await.unwrap().unwrap();
            assert_eq!(stored.status, RequestStatus::Denied);
            assert_eq!(stored.deny_reason, DenialReason::of(decision));
            let response = client.poll(&server, auth_req_id).await;
            // 400 at the token endpoint (RFC 6749 5.2, CIBA Core 11).
            expect_error(response, StatusCode::BAD_REQUEST, OAuthErrorCode::AccessDenied).await;
            // A later approval cannot overturn the denial.
            let late = decision::decide(server.store(), &server.assent().clock, &request_id, "carol", Decision::Approve).await;
            assert!(matches!(late, Err(DecisionError::AlreadyDecided(s)) if s == RequestStatus::Denied));
        }
    }
}

on_both_backends! {
    async fn decisions_are_checked_against_user_state_and_expiry(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "dave", None, None).await;
        create_user(server.store(), "erin", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let ack = client
            .bc_authorize(&server, &[
                ("scope", "openid"),
                ("login_hint", "dave"),
                ("binding_message", "Wire 500"),
                ("requested_expiry", "1"),
            ])
            .await
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(ack["expires_in"], 1);
        let auth_req_id = ack["auth_req_id"].as_str().unwrap();
        let request_id = assent_tests::request_id(server.store(), auth_req_id).await;

        let wrong_user = decision::decide(server.store(), &server.assent().clock, &request_id, "erin", Decision::Approve).await;
        assert!(matches!(wrong_user, Err(DecisionError::WrongUser)));
        let unknown = decision::decide(server.store(), &server.assent().clock, "no-such-request", "dave", Decision::Approve).await;
        assert!(matches!(unknown, Err(DecisionError::NotFound)));

        server.advance_clock(Duration::from_millis(1100));
        let late = decision::decide(server.store(), &server.assent().clock, &request_id, "dave", Decision::Approve).await;
        assert!(matches!(late, Err(DecisionError::Expired)));
        let response = client.poll(&server, auth_req_id).await;
        expect_error(response, StatusCode::BAD_REQUEST, OAuthErrorCode::ExpiredToken).await;
        let stored = server.store().auth_request(&request_id).await.unwrap().unwrap();
        assert_eq!(stored.status, RequestStatus::Pending, "nothing changed the expired request");
    }
}

on_both_backends! {
    async fn slow_down_is_never_first_and_grows_by_five_seconds(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "frank", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let ack = client.start(&server, "frank", "openid").await;
        let id = ack["auth_req_id"].as_str().unwrap();
        assert_eq!(ack["interval"], 5);

        expect_error(client.poll(&server, id).await, StatusCode::BAD_REQUEST, OAuthErrorCode::AuthorizationPending).await;
        for expected in [10, 15, 20] {
            let response = client.poll(&server, id).await;
            assert_eq!(response.headers()["retry-after"], expected.to_string().as_str());
            let body = expect_error(response, StatusCode::BAD_REQUEST, OAuthErrorCode::SlowDown).await;
            assert!(body["error_description"].as_str().unwrap().contains(&expected.to_string()));
        }
    }
}

on_both_backends! {
    async fn id_token_hint_identifies_the_user_even_when_expired(backend: Backend) {
        let server = TestServer::start_with(backend, |s| {
            s.poll_interval = 1;
            s.id_token_ttl = 1;
        })
        .await;
        create_user(server.store(), "grace", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let other = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let ack = client.start(&server, "grace", "openid").await;
        let id = ack["auth_req_id"].as_str().unwrap();
        approve(&server, id, "grace").await;
        let tokens: TokenResponse = client.poll(&server, id).await.json().await.unwrap();
        server.advance_clock(Duration::from_millis(2100)); // the ID token is now expired

        let params = |hint: &str| {
            vec![
                ("scope".to_string(), "openid".to_string()),
                ("id_token_hint".to_string(), hint.to_string()),
                ("binding_message".to_string(), "Again".to_string()),
            ]
        };
        let p = params(&tokens.id_token);
        let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let response = client.bc_authorize(&server, &p).await;
        assert_eq!(response.status(), StatusCode::OK);
        let second: Value = response.json().await.unwrap();
        let request_id = assent_tests::request_id(server.store(), second["auth_req_id"].as_str().unwrap()).await;
        assert_eq!(server.store().auth_request(&request_id).await.unwrap().unwrap().user_sub, "grace");

        // Another client cannot use it.
        let response = other.bc_authorize(&server, &p).await;
        expect_error(response, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // A tampered token is refused.
        let mut tampered = tokens.id_token.clone();
        tampered.pop();
        tampered.push(if tokens.id_token.ends_with('A') { 'B' } else { 'A' });
        let p2 = params(&tampered);
        let p2: Vec<(&str, &str)> = p2.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        expect_error(client.bc_authorize(&server, &p2).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
    }
}

on_both_backends! {
    async fn refresh_tokens_rotate_and_reuse_revokes_the_family(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user(server.store(), "heidi", Some("heidi@example.com"), None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretPost, TokenAlg::ES256).await;
        let ack = client.start(&server, "heidi", "openid email offline_access").await;
        let id = ack["auth_req_id"].as_str().unwrap();
        approve(&server, id, "heidi").await;
        let first: TokenResponse = client.poll(&server, id).await.json().await.unwrap();
        let rt1 = first.refresh_token.unwrap();

        // Narrowing the scope applies to the new access token only.
        let response = client
            .post(&server, "/oauth/token", &[("grant_type", REFRESH_TOKEN_GRANT_TYPE), ("refresh_token", &rt1), ("scope", "openid")])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let second: TokenResponse = response.json().await.unwrap();
        assert_eq!(second.scope, "openid");
        let rt2 = second.refresh_token.unwrap();
        assert_ne!(rt1, rt2);

        let widened = client
            .post(&server, "/oauth/token", &[("grant_type", REFRESH_TOKEN_GRANT_TYPE), ("refresh_token", &rt2), ("scope", "openid profile")])
            .await;
        expect_error(widened, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidScope).await;

        // The refused request did not spend rt2.
        let third = client
            .post(&server, "/oauth/token", &[("grant_type", REFRESH_TOKEN_GRANT_TYPE), ("refresh_token", &rt2)])
            .await;
        assert_eq!(third.status(), StatusCode::OK);
        let third: TokenResponse = third.json().await.unwrap();
        assert_eq!(third.scope, "openid email offline_access", "the grant keeps its scope");
        let rt3 = third.refresh_token.unwrap();

        // Reusing rt1 (already rotated) revokes the whole family, rt3 included.
        let reuse = client
            .post(&server, "/oauth/token", &[("grant_type", REFRESH_TOKEN_GRANT_TYPE), ("refresh_token", &rt1)])
            .await;
        expect_error(reuse, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant).await;
        let after = client
            .post(&server, "/oauth/token", &[("grant_type", REFRESH_TOKEN_GRANT_TYPE), ("refresh_token", &rt3)])
            .await;
        expect_error(after, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant).await;
    }
}

on_both_backends! {
    async fn audience_authorization_details_and_acr_reach_the_tokens(backend: Backend) {
        let server = TestServer::start(backend).await;
        assent_tests::client::create_user_without_device(server.store(), "ivan", None, None).await;
        let phone = assent_tests::device::enroll(&server, "ivan", None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        client.grant_api(server.store(), "https://api.bank.example", &["read:balance"]).await;
        let details = r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"123.50"},"creditorName":"Merchant A"}]"#;
        let response = client
            .bc_authorize(&server, &[
                ("scope", "openid read:balance"),
                ("login_hint", "ivan"),
                ("binding_message", "Pay 123,50 EUR #A7"),
                ("resource", "https://api.bank.example"),
                ("authorization_details", details),
                ("acr_values", "urn:assent:acr:push urn:other"),
            ])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let ack: Value = response.json().await.unwrap();
        let id = ack["auth_req_id"].as_str().unwrap();
        // acr_values asks for push at least; the client needs the code, so
        // the approval reaches push with number matching, and says so.
        let challenge = phone.pending().await.unwrap().verified.remove(0);
        phone.decide(&challenge, &assent_device::Answer::approve(ack["match_code"].as_str())).await.unwrap();
        server.advance_clock(Duration::from_millis(1100));
        let tokens: TokenResponse = client.poll(&server, id).await.json().await.unwrap();
        assert_eq!(tokens.scope, "openid read:balance");

        let access = verify_with_jwks(&server, &tokens.access_token, "https://api.bank.example").await;
        assert_eq!(access["aud"], serde_json::json!(["https://api.bank.example", server.url("/userinfo")]));
        assert_eq!(access["authorization_details"], serde_json::from_str::<Value>(details).unwrap());
        assert_eq!(access["acr"], "urn:assent:acr:push:match");
        assert_eq!(access["amr"], serde_json::json!(["swk"]));
        let id_token = verify_with_jwks(&server, &tokens.id_token, &client.client_id).await;
        assert_eq!(id_token["acr"], "urn:assent:acr:push:match");
        assert_eq!(id_token["amr"], serde_json::json!(["swk"]));
    }
}

on_both_backends! {
    /// Every token the server mints is accepted by its own endpoints: the
    /// largest inputs `/bc-authorize` takes (8 KiB of `authorization_details`,
    /// 1 KiB of scope) give an access token `/userinfo` still reads.
    async fn the_largest_access_token_is_accepted_by_userinfo(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user(server.store(), "auth0|alice", Some("alice@example.com"), Some("Alice")).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        // One entry whose text fills the limit exactly; escapes would grow it.
        let frame = r#"[{"type":"payment_initiation","note":""}]"#;
        let details = format!(
            r#"[{{"type":"payment_initiation","note":"{}"}}]"#,
            "x".repeat(8 * 1024 - frame.len())
        );
        assert_eq!(details.len(), 8 * 1024);
        let mut scope = String::from("openid profile email");
        let mut api_scopes = Vec::new();
        let mut i = 0;
        while scope.len() + 12 <= 1024 {
            api_scopes.push(format!("read:api{i:03}"));
            scope.push_str(&format!(" read:api{i:03}"));
            i += 1;
        }
        let api_scopes: Vec<&str> = api_scopes.iter().map(String::as_str).collect();
        client.grant_api(server.store(), "https://api.example", &api_scopes).await;
        let response = client
            .bc_authorize(
                &server,
                &[
                    ("scope", scope.as_str()),
                    ("login_hint", "auth0|alice"),
                    ("binding_message", "Largest token"),
                    ("audience", "https://api.example"),
                    ("authorization_details", details.as_str()),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let ack: Value = response.json().await.unwrap();
        let auth_req_id = ack["auth_req_id"].as_str().unwrap();
        approve(&server, auth_req_id, "auth0|alice").await;
        server.advance_clock(Duration::from_millis(1100));
        let response = client.poll(&server, auth_req_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        let access_token = tokens["access_token"].as_str().unwrap();
        assert!(access_token.len() > 8 * 1024, "a large token: {} bytes", access_token.len());
        let info = assent_tests::userinfo(&server.http, &server.url("/userinfo"), access_token).await;
        assert_eq!(info["sub"], "auth0|alice", "{info}");
    }
}

/// The requester IP shown to the user is the rightmost address the trusted
/// proxies did not write: an entry the caller put in `X-Forwarded-For`
/// itself is never shown.
#[tokio::test]
async fn x_forwarded_for_is_read_from_the_right_behind_trusted_proxies_only() {
    use assent_tests::Backend;
    let cases: [(Vec<ipnet::IpNet>, &str); 2] = [
        (vec![], "127.0.0.1"),
        (vec!["127.0.0.0/8".parse().unwrap()], "198.51.100.7"),
    ];
    for (proxies, expected) in cases {
        let server = TestServer::start_with(Backend::Sqlite, |s| s.trusted_proxies = proxies).await;
        create_user(server.store(), "auth0|alice", None, None).await;
        let client = TestClient::register(
            server.store(),
            AuthMethod::ClientSecretBasic,
            TokenAlg::RS256,
        )
        .await;
        let assent_tests::client::Credentials::SecretBasic(secret) = &client.credentials else {
            unreachable!("a client_secret_basic client")
        };
        let response = server
            .http
            .post(server.url("/bc-authorize"))
            .basic_auth(&client.client_id, Some(secret))
            .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
            .form(&[
                ("scope", "openid"),
                ("login_hint", "auth0|alice"),
                ("binding_message", "Forwarded"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let sql = format!("SELECT COUNT(*) FROM auth_requests WHERE requester_ip = '{expected}'");
        assert_eq!(
            assent_tests::count(server.store(), &sql).await,
            1,
            "{expected}"
        );
    }
}
