//! Every error the OAuth endpoints answer, with its exact `error` code and HTTP status,
//! and proof that a refused request left nothing behind.

use assent_server::{
    client_auth::AuthMethod,
    decision::{self, Decision, DecisionError},
    keys::TokenAlg,
    storage::RequestStatus,
};
use assent_shared::{
    error::OAuthErrorCode,
    oauth::{CIBA_GRANT_TYPE, JWT_BEARER_ASSERTION_TYPE},
};
use assent_tests::{
    client::{create_user, expect_error},
    on_both_backends, TestClient, TestServer,
};
use reqwest::StatusCode;
use serde_json::Value;

/// Form parameters, expected status, expected `error`.
type Case = (
    Vec<(&'static str, &'static str)>,
    StatusCode,
    OAuthErrorCode,
);

const OK: [(&str, &str); 3] = [
    ("scope", "openid"),
    ("login_hint", "alice"),
    ("binding_message", "Order 1234"),
];

/// `OK` with `name` replaced (or removed when `value` is None).
fn with(name: &'static str, value: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut p: Vec<_> = OK.iter().copied().filter(|(k, _)| *k != name).collect();
    if let Some(v) = value {
        p.push((name, v));
    }
    p
}

async fn count_requests(server: &TestServer) -> i64 {
    assent_tests::count(server.store(), "SELECT COUNT(*) FROM auth_requests").await
}

on_both_backends! {
    async fn bc_authorize_errors(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "alice", Some("alice@example.com"), None).await;
        create_user(server.store(), "mallory", None, None).await;
        server.store().set_user_blocked("mallory", true, 0).await.unwrap();
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let refresh_only = TestClient::register_with_grants(
            server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256, &["refresh_token"],
        ).await;
        let issuer = server.issuer().to_string();
        let foreign_iss = r#"{"format":"iss_sub","iss":"https://tenant.auth0.com/","sub":"alice"}"#;
        let ours = format!(r#"{{"format":"iss_sub","iss":"{issuer}/","sub":"nobody"}}"#);
        let ours: &'static str = Box::leak(ours.into_boxed_str());

        let cases: Vec<Case> = vec![
            (with("scope", None), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            (with("scope", Some("profile email")), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidScope),
            (with("scope", Some("openid bad\"scope")), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidScope),
            (with("login_hint", None), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([with("login_hint", Some("alice")), vec![("id_token_hint", "x.y.z")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            (with("login_hint", Some(foreign_iss)), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            (with("login_hint", Some(r#"{"format":"iss_sub""#)), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([with("login_hint", None), vec![("login_hint_token", "eyJ.x.y")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([with("login_hint", None), vec![("id_token_hint", "not-a-jwt")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            (with("login_hint", Some("nobody")), StatusCode::BAD_REQUEST, OAuthErrorCode::UnknownUserId),
            (with("login_hint", Some("nobody@example.com")), StatusCode::BAD_REQUEST, OAuthErrorCode::UnknownUserId),
            (with("login_hint", Some(ours)), StatusCode::BAD_REQUEST, OAuthErrorCode::UnknownUserId),
            (with("login_hint", Some("mallory")), StatusCode::FORBIDDEN, OAuthErrorCode::AccessDenied),
            (with("binding_message", None), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            (with("binding_message", Some("semi;colon")), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidBindingMessage),
            (with("binding_message", Some("x".repeat(65).leak())), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidBindingMessage),
            ([OK.to_vec(), vec![("requested_expiry", "0")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([OK.to_vec(), vec![("requested_expiry", "301")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([OK.to_vec(), vec![("requested_expiry", "ten")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([OK.to_vec(), vec![("authorization_details", "{\"type\":\"x\"}")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([OK.to_vec(), vec![("authorization_details", "[{\"kind\":\"x\"}]")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([OK.to_vec(), vec![("authorization_details", "[nope")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([OK.to_vec(), vec![("audience", "https://a"), ("resource", "https://b")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([OK.to_vec(), vec![("request", "eyJ.x.y")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
            ([OK.to_vec(), vec![("scope", "openid")]].concat(), StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest),
        ];
        for (params, status, error) in &cases {
            let response = client.bc_authorize(&server, params).await;
            let body = expect_error(response, *status, error).await;
            assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{params:?}");
        }
        let response = refresh_only.bc_authorize(&server, &OK).await;
        expect_error(response, StatusCode::BAD_REQUEST, OAuthErrorCode::UnauthorizedClient).await;
        assert_eq!(count_requests(&server).await, 0, "refused requests left no state");

        // The accepted variants do store a request.
        client.grant_api(server.store(), "https://api.example", &[]).await;
        let ok = client
            .bc_authorize(&server, &[OK.to_vec(), vec![("requested_expiry", "60"), ("audience", "https://api.example"),
                ("authorization_details", r#"[{"type":"payment","amount":"12.50"}]"#), ("acr_values", "urn:a urn:assent:acr:push")]].concat())
            .await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.json::<Value>().await.unwrap()["expires_in"], 60);
        assert_eq!(count_requests(&server).await, 1);
    }
}

on_both_backends! {
    async fn client_authentication_errors(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "alice", None, None).await;
        let basic = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let jwt = TestClient::register(server.store(), AuthMethod::PrivateKeyJwt, TokenAlg::ES256).await;
        let url = server.url("/bc-authorize");
        let http = &server.http;

        // No authentication at all.
        let r = http.post(&url).form(&OK).send().await.unwrap();
        assert!(r.headers().get("www-authenticate").is_some());
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient).await;

        // Wrong secret over Basic: 401 with a Basic challenge.
        let r = http.post(&url).basic_auth(&basic.client_id, Some("wrong")).form(&OK).send().await.unwrap();
        assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient).await;

        // Unknown client.
        let r = http.post(&url).basic_auth("nobody", Some("x")).form(&OK).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient).await;

        // A Basic client using client_secret_post.
        let secret = match &basic.credentials {
            assent_tests::client::Credentials::SecretBasic(s) => s.clone(),
            _ => unreachable!(),
        };
        let params = [OK.to_vec(), vec![("client_id", basic.client_id.as_str()), ("client_secret", secret.as_str())]].concat();
        let r = http.post(&url).form(&params).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient).await;

        // Two methods at once.
        let r = http.post(&url).basic_auth(&basic.client_id, Some(&secret)).form(&params).send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;

        // private_key_jwt: the endpoint URL is an accepted audience...
        let assertion = jwt.assertion_with(&url, |_| {});
        fn form(a: &str) -> Vec<(&str, &str)> {
            [OK.to_vec(), vec![("client_assertion_type", JWT_BEARER_ASSERTION_TYPE), ("client_assertion", a)]].concat()
        }
        let r = http.post(&url).form(&form(&assertion)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // ...but its jti is single use.
        let r = http.post(&url).form(&form(&assertion)).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient).await;

        let bad_assertions = [
            jwt.assertion_with("https://someone-else.example", |_| {}),
            jwt.assertion_with(server.issuer(), |c| { c.as_object_mut().unwrap().remove("exp"); }),
            jwt.assertion_with(server.issuer(), |c| { c.as_object_mut().unwrap().remove("jti"); }),
            jwt.assertion_with(server.issuer(), |c| c["exp"] = Value::from(1_000_000_000)),
            jwt.assertion_with(server.issuer(), |c| c["exp"] = Value::from(assent_server::clock::now_ms() / 1000 + 7200)),
            jwt.assertion_with(server.issuer(), |c| c["iss"] = Value::from("someone")),
            // Signed by another client's key.
            TestClient::register(server.store(), AuthMethod::PrivateKeyJwt, TokenAlg::ES256)
                .await
                .assertion_with(server.issuer(), |c| { c["iss"] = jwt.client_id.clone().into(); c["sub"] = jwt.client_id.clone().into(); }),
        ];
        for assertion in &bad_assertions {
            let r = http.post(&url).form(&form(assertion)).send().await.unwrap();
            expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient).await;
        }
        // alg "none" is never accepted.
        let none = {
            let good = jwt.assertion_with(server.issuer(), |_| {});
            let payload = good.split('.').nth(1).unwrap().to_string();
            format!("{}.{}.", assent_server::secrets::b64url(br#"{"alg":"none","typ":"JWT"}"#), payload)
        };
        let r = http.post(&url).form(&form(&none)).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient).await;
        assert_eq!(count_requests(&server).await, 1, "only the one valid request was stored");
    }
}

on_both_backends! {
    async fn token_endpoint_errors(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user(server.store(), "alice", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let other = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let refresh_only = TestClient::register_with_grants(
            server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256, &["refresh_token"],
        ).await;
        let ack = client.start(&server, "alice", "openid").await;
        let id = ack["auth_req_id"].as_str().unwrap();

        expect_error(client.poll(&server, "unknown").await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant).await;
        expect_error(other.poll(&server, id).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant).await;
        expect_error(refresh_only.poll(&server, id).await, StatusCode::BAD_REQUEST, OAuthErrorCode::UnauthorizedClient).await;
        expect_error(
            client.post(&server, "/oauth/token", &[("grant_type", "password")]).await,
            StatusCode::BAD_REQUEST, OAuthErrorCode::UnsupportedGrantType,
        ).await;
        expect_error(
            client.post(&server, "/oauth/token", &[("auth_req_id", id)]).await,
            StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest,
        ).await;
        expect_error(
            client.post(&server, "/oauth/token", &[("grant_type", CIBA_GRANT_TYPE)]).await,
            StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest,
        ).await;
        expect_error(
            client.post(&server, "/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", "nope")]).await,
            StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant,
        ).await;
        // The other client's poll did not disturb the request: the owner's
        // first poll is still a plain authorization_pending.
        expect_error(client.poll(&server, id).await, StatusCode::BAD_REQUEST, OAuthErrorCode::AuthorizationPending).await;

        let request_id = assent_tests::request_id(server.store(), id).await;
        decision::decide(server.store(), &server.assent().clock, &request_id, "alice", Decision::Approve).await.unwrap();
        server.advance_clock(std::time::Duration::from_millis(1100));
        assert_eq!(client.poll(&server, id).await.status(), StatusCode::OK);
        // After the token was issued: single use.
        expect_error(client.poll(&server, id).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant).await;
        let late = decision::decide(server.store(), &server.assent().clock, &request_id, "alice", Decision::Approve).await;
        assert!(matches!(late, Err(DecisionError::AlreadyDecided(s)) if s == RequestStatus::Issued));
    }
}

on_both_backends! {
    async fn input_discipline(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "alice", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretPost, TokenAlg::ES256).await;
        let http = &server.http;
        let url = server.url("/bc-authorize");

        // Repeated parameter.
        let r = http.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("scope=openid&scope=openid&login_hint=alice&binding_message=x")
            .send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // Wrong content type.
        let r = http.post(&url).header("content-type", "text/plain").body("scope=openid").send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // JSON is read like a form: a repeated key is refused the same way.
        let r = http.post(&url)
            .header("content-type", "application/json")
            .body(r#"{"scope":"openid","scope":"openid","login_hint":"alice","binding_message":"x"}"#)
            .send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // Oversized body.
        let r = http.post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("scope={}", "a".repeat(100 * 1024)))
            .send().await.unwrap();
        expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, OAuthErrorCode::InvalidRequest).await;
        // Oversized parameter.
        let long = "o".repeat(2000);
        let r = client.bc_authorize(&server, &[("scope", long.as_str()), ("login_hint", "alice"), ("binding_message", "x")]).await;
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // Unknown path and wrong method.
        let r = http.get(server.url("/no/such/path")).send().await.unwrap();
        expect_error(r, StatusCode::NOT_FOUND, OAuthErrorCode::NotFound).await;
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.headers().get("allow").map(|v| v.to_str().unwrap()), Some("POST"));
        expect_error(r, StatusCode::METHOD_NOT_ALLOWED, OAuthErrorCode::MethodNotAllowed).await;
        let r = http.delete(server.url("/oauth/token")).send().await.unwrap();
        expect_error(r, StatusCode::METHOD_NOT_ALLOWED, OAuthErrorCode::MethodNotAllowed).await;
        assert_eq!(count_requests(&server).await, 0);
    }
}

on_both_backends! {
    async fn userinfo_errors(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user(server.store(), "alice", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let http = &server.http;
        let url = server.url("/userinfo");

        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"assent\"");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

        let r = http.get(&url).bearer_auth("not.a.token").send().await.unwrap();
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains(&format!("error=\"{}\"", OAuthErrorCode::InvalidToken)));
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidToken).await;

        // A real token without openid (issued through the domain with a
        // custom scope only) is refused with insufficient_scope.
        let grant = assent_server::tokens::Grant {
            user_sub: "alice", client_id: &client.client_id, scope: "read:balance",
            audience: None, authorization_details: None, acr: None, amr: None, auth_time: 0, auth_req_id: None,
            nonce: None, id_token_claims: None,
        };
        let minted = assent_server::tokens::mint(
            &server.assent().keys.get(), &server.assent().endpoints, TokenAlg::RS256,
            assent_server::tokens::Lifetimes { access_token: 60, id_token: 60 }, &grant,
            assent_server::clock::now_ms() / 1000,
        );
        let r = http.get(&url).bearer_auth(&minted.access_token).send().await.unwrap();
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains(OAuthErrorCode::InsufficientScope.as_str()));
        expect_error(r, StatusCode::FORBIDDEN, OAuthErrorCode::InsufficientScope).await;

        // The ID token is not an access token.
        let ack = client.start(&server, "alice", "openid").await;
        let id = ack["auth_req_id"].as_str().unwrap();
        let request_id = assent_tests::request_id(server.store(), id).await;
        decision::decide(server.store(), &server.assent().clock, &request_id, "alice", Decision::Approve).await.unwrap();
        let tokens: assent_shared::oauth::TokenResponse = client.poll(&server, id).await.json().await.unwrap();
        let r = http.get(&url).bearer_auth(&tokens.id_token).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidToken).await;
        // Token in both header and body.
        let r = http.post(&url).bearer_auth(&tokens.access_token)
            .form(&[("access_token", tokens.access_token.as_str())]).send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // A deleted user's token stops working.
        server.store().delete_user("alice").await.unwrap();
        let r = http.get(&url).bearer_auth(&tokens.access_token).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidToken).await;
    }
}

on_both_backends! {
    async fn nul_characters_are_refused_as_invalid_request_before_storage(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "alice", Some("alice@example.com"), None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let nul_sub = format!(r#"{{"format":"iss_sub","iss":"{}/","sub":"al\u0000ice"}}"#, server.issuer());
        let nul_sub: &'static str = Box::leak(nul_sub.into_boxed_str());
        let cases: Vec<Vec<(&str, &str)>> = vec![
            with("login_hint", Some("al\0ice")),
            with("binding_message", Some("Order\0 1234")),
            with("scope", Some("openid\0")),
            // Only a JSON escape on the wire: the NUL appears once parsed.
            with("login_hint", Some(nul_sub)),
            with("audience", Some("https://api.example\0")),
        ];
        for params in cases {
            let body = expect_error(
                client.bc_authorize(&server, &params).await,
                StatusCode::BAD_REQUEST,
                OAuthErrorCode::InvalidRequest,
            )
            .await;
            assert!(body["error_description"].as_str().unwrap().contains("NUL"), "{params:?}: {body}");
        }
        expect_error(client.poll(&server, "abc\0def").await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // Before any client authentication: a NUL in the Basic credentials.
        let response = reqwest::Client::new()
            .post(server.url("/oauth/token"))
            .basic_auth("cli\0ent", Some("secret"))
            .form(&[("grant_type", CIBA_GRANT_TYPE), ("auth_req_id", "x")])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
        let body: Value = response.json().await.unwrap();
        assert_ne!(body["error"], "server_error", "{body}");
        assert_eq!(count_requests(&server).await, 0, "nothing was stored");
    }
}

on_both_backends! {
    /// A wrong method for an existing client answers exactly as an unknown
    /// client does: the answers do not tell which client ids exist.
    async fn wrong_method_and_unknown_client_get_the_same_answer(backend: Backend) {
        let server = TestServer::start(backend).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let assent_tests::client::Credentials::SecretBasic(secret) = &client.credentials else {
            unreachable!()
        };
        let post = |client_id: String, secret: String| {
            let server = &server;
            async move {
                let response = server
                    .http
                    .post(server.url("/oauth/token"))
                    .form(&[
                        ("grant_type", CIBA_GRANT_TYPE),
                        ("auth_req_id", "x"),
                        ("client_id", client_id.as_str()),
                        ("client_secret", secret.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.json::<Value>().await.unwrap())
            }
        };
        // The right secret, but by POST for a client registered for Basic.
        let wrong_method = post(client.client_id.clone(), secret.clone()).await;
        let unknown = post("no-such-client".into(), secret.clone()).await;
        assert_eq!(wrong_method.0, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong_method, unknown);
        assert_eq!(wrong_method.1["error"], "invalid_client");
    }
}

on_both_backends! {
    /// Repeated failed client authentications from one address are refused
    /// with 429 for the rest of the minute, counted in the database; known
    /// and unknown client ids alike (no enumeration), other addresses and
    /// other clients untouched.
    async fn repeated_failed_client_authentications_are_throttled(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "alice", None, None).await;
        let victim = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let bystander = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let assent_tests::client::Credentials::SecretBasic(secret) = &victim.credentials else { unreachable!() };
        let url = server.url("/oauth/token");
        let attempt = |id: String, secret: String| {
            let http = server.http.clone();
            let url = url.clone();
            async move {
                http.post(&url)
                    .basic_auth(id, Some(secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
                    .send()
                    .await
                    .unwrap()
            }
        };
        for id in [victim.client_id.clone(), "no-such-client".to_string()] {
            for _ in 0..10 {
                expect_error(attempt(id.clone(), "wrong".into()).await, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient).await;
            }
            let r = attempt(id.clone(), "wrong".into()).await;
            let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry_after), "{retry_after}");
            expect_error(r, StatusCode::TOO_MANY_REQUESTS, OAuthErrorCode::TooManyRequests).await;
        }
        // Now even the right secret waits: nothing is checked while throttled.
        expect_error(attempt(victim.client_id.clone(), secret.clone()).await, StatusCode::TOO_MANY_REQUESTS, OAuthErrorCode::TooManyRequests).await;
        // Other clients are not affected, nor is /bc-authorize for them.
        let ok = bystander.start(&server, "alice", "openid").await;
        assert!(ok["auth_req_id"].is_string());
        // The count is in the database, for every process to see.
        assert_eq!(assent_tests::count(server.store(), "SELECT count(*) FROM client_auth_failures").await, 2);
        assert_eq!(assent_tests::count(server.store(), "SELECT max(failures) FROM client_auth_failures").await, 11);
        // The next minute, the right secret passes again.
        server.advance_clock(std::time::Duration::from_secs(61));
        let r = attempt(victim.client_id.clone(), secret.clone()).await;
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant).await;
    }
}

on_both_backends! {
    /// The rest of the inputs that reach storage, each with a NUL: JSON and
    /// JWS members (device enrollment, decisions, client assertions, the
    /// operator API), a refresh's scope, and a header value. Every one is a
    /// 4xx naming the problem, never a 500, and nothing is stored.
    async fn nul_characters_in_signed_and_json_inputs_are_refused(backend: Backend) {
        use assent_shared::{jose::DeviceKey, protocol::{path, typ}};
        let server = TestServer::start(backend).await;
        create_user(server.store(), "alice", Some("alice@example.com"), None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::RS256).await;
        let jwt = TestClient::register(server.store(), AuthMethod::PrivateKeyJwt, TokenAlg::ES256).await;
        let no_500 = |status: StatusCode, body: &Value, what: &str| {
            assert!(status.is_client_error(), "{what}: {status} {body}");
            assert_ne!(body["error"], "server_error", "{what}: {body}");
        };

        // JSON inside a form parameter, and a refresh's scope.
        let details = r#"[{"type":"payment_initiation","creditorName":"Mu\u0000ller"}]"#;
        let r = client.bc_authorize(&server, &[OK.to_vec(), vec![("authorization_details", details)]].concat()).await;
        let body = expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        assert!(body["error_description"].as_str().unwrap().contains("NUL"), "{body}");
        let r = client.post(&server, "/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("scope", "openid\0")]).await;
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // client_secret_post's client_id, before any authentication.
        let r = server.http.post(server.url("/oauth/token"))
            .form(&[("grant_type", CIBA_GRANT_TYPE), ("auth_req_id", "x"), ("client_id", "a\0b"), ("client_secret", "s")])
            .send().await.unwrap();
        expect_error(r, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest).await;
        // A client assertion whose jti (stored, single use) holds a NUL.
        let assertion = jwt.assertion_with(&server.url("/bc-authorize"), |c| c["jti"] = "j\u{0}ti".into());
        let r = server.http.post(server.url("/bc-authorize"))
            .form(&[OK.to_vec(), vec![("client_id", jwt.client_id.as_str()), ("client_assertion_type", JWT_BEARER_ASSERTION_TYPE), ("client_assertion", assertion.as_str())]].concat())
            .send().await.unwrap();
        let (status, body) = (r.status(), r.json::<Value>().await.unwrap());
        no_500(status, &body, "assertion jti");
        // A header value: HTTP itself forbids NUL there; the answer is still a 400.
        let mut raw = tokio::net::TcpStream::connect(server.server.addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut raw, b"POST /bc-authorize HTTP/1.1\r\nHost: x\r\nUser-Agent: a\0b\r\nContent-Length: 0\r\n\r\n").await.unwrap();
        let mut answer = vec![0u8; 64];
        let n = tokio::io::AsyncReadExt::read(&mut raw, &mut answer).await.unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 400"), "{}", String::from_utf8_lossy(&answer[..n]));

        // The operator API's JSON body.
        let admin: Value = assent_tests::process::run_cli_json(&server.db.url, &["admin", "token", "create", "--name", "t", "--json"]).await;
        let r = server.http.post(server.url("/admin/v1/enrollment-tickets"))
            .bearer_auth(admin["token"].as_str().unwrap())
            .json(&serde_json::json!({"user": "ali\u{0}ce"})).send().await.unwrap();
        let (status, body) = (r.status(), r.json::<Value>().await.unwrap());
        no_500(status, &body, "admin user");

        // Device enrollment claims: the device's name, platform, ticket, jti.
        let link = assent_shared::protocol::EnrollmentUri::parse(&assent_tests::enrollment_link(&server, "alice").await).unwrap();
        let url = format!("{}{}", link.server, path::ENROLL);
        for (member, value) in [("name", "Pho\u{0}ne"), ("platform", "and\u{0}roid"), ("ticket", "t\u{0}"), ("jti", "j\u{0}")] {
            let key = DeviceKey::generate();
            let mut claims = serde_json::json!({
                "htm": "POST", "htu": url, "iat": assent_server::clock::now_ms() / 1000,
                "jti": uuid::Uuid::new_v4().simple().to_string(),
                "ticket": link.ticket, "pin": link.pin, "name": "Phone", "platform": "android",
            });
            claims[member] = value.into();
            let r = server.http.post(&url).header("content-type", "application/jose")
                .body(key.sign(typ::ENROLL, None, true, &claims)).send().await.unwrap();
            let (status, body) = (r.status(), r.json::<Value>().await.unwrap());
            no_500(status, &body, member);
            // The ticket is looked up by its digest: with a NUL it is simply unknown.
            let expected = if member == "ticket" { "invalid_ticket" } else { "invalid_request" };
            assert_eq!(body["error"], expected, "{member}: {body}");
        }
        // The ticket is still good: nothing was half-stored.
        let phone = assent_device::DeviceClient::enroll(&link, "Phone", "android", None).await.unwrap();

        // A decision whose nonce and request id hold a NUL.
        let ack = client.start(&server, "alice", "openid").await;
        let challenge = phone.pending().await.unwrap().verified.remove(0);
        let decision_url = format!("{}{}", link.server, path::decision(&challenge.claims.request_id));
        let claims = serde_json::json!({
            "htm": "POST", "htu": decision_url, "iat": assent_server::clock::now_ms() / 1000,
            "jti": "j\u{0}ti", "exp": assent_server::clock::now_ms() / 1000 + 30,
            "request_id": challenge.claims.request_id, "nonce": "n\u{0}", "decision": "approve",
            "challenge_hash": challenge.hash(), "match_code": ack["match_code"],
        });
        let signed = phone.key().sign(typ::DECISION, Some(&phone.account.device_id), false, &claims);
        let r = server.http.post(&decision_url).header("content-type", "application/jose").body(signed).send().await.unwrap();
        let (status, body) = (r.status(), r.json::<Value>().await.unwrap());
        no_500(status, &body, "decision");
        assert_eq!(count_requests(&server).await, 1, "only the one good request");
        assert_eq!(
            assent_tests::fetch_text(server.store(), "SELECT status FROM auth_requests").await,
            "pending",
            "the refused decision changed nothing"
        );
    }
}
