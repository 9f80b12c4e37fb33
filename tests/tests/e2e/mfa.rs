//! Auth0's MFA API over real HTTP: a client whose policy requires a second
//! factor gets `mfa_required` from a first-factor login (the back-end OTP
//! API, which hands its test client the code), associates a TOTP
//! authenticator, and completes with the `mfa-otp` grant using codes the
//! test computes from the secret (RFC 6238); the recovery code; and what
//! must not work: a spent, expired or foreign `mfa_token`, a replayed TOTP
//! code, a reused recovery code, and guessing past the lockout.

use std::time::Duration;

use assent_server::{
    client_auth::AuthMethod,
    keys::TokenAlg,
    mfa::{MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT},
    storage::{ClientChanges, MfaPolicy},
};
use assent_shared::oauth::{PASSWORDLESS_OTP_GRANT_TYPE, REFRESH_TOKEN_GRANT_TYPE};
use assent_tests::{
    client::{create_user, expect_error},
    jwt_payload, on_both_backends, TestClient, TestServer,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use totp_rs::{Algorithm, TOTP};

const EMAIL: &str = "alice@example.com";

async fn mfa_client(server: &TestServer, policy: MfaPolicy) -> TestClient {
    let client = TestClient::register_with_grants(
        server.store(),
        AuthMethod::ClientSecretPost,
        TokenAlg::RS256,
        &[
            PASSWORDLESS_OTP_GRANT_TYPE,
            REFRESH_TOKEN_GRANT_TYPE,
            MFA_OTP_GRANT,
            MFA_RECOVERY_CODE_GRANT,
        ],
    )
    .await;
    assent_server::clients::update(
        server.store(),
        &client.client_id,
        ClientChanges {
            otp_code_in_response: Some(true),
            mfa_policy: Some(policy),
            ..ClientChanges::default()
        },
        Some(&server.assent().clients),
    )
    .await
    .unwrap();
    client
}

/// A first-factor login of Alice through the back-end OTP API: its answer.
async fn first_factor(server: &TestServer, client: &TestClient) -> reqwest::Response {
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
    let code = sent["code"].as_str().unwrap();
    client
        .post_json(
            server,
            "/backend-auth/otp/authenticate",
            json!({ "identifier_type": "email", "identifier": EMAIL, "passcode": code }),
        )
        .await
}

/// The `mfa_token` of an `mfa_required` answer (403, Auth0's shape).
async fn mfa_token(server: &TestServer, client: &TestClient) -> String {
    let body = expect_error(
        first_factor(server, client).await,
        StatusCode::FORBIDDEN,
        "mfa_required",
    )
    .await;
    assert_eq!(
        body["error_description"],
        "Multifactor authentication required"
    );
    body["mfa_token"]
        .as_str()
        .expect("an mfa_token")
        .to_string()
}

fn totp(secret_base32: &str) -> TOTP {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_base32.as_bytes())
        .unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, secret).unwrap()
}

/// The code at the server's present moment (its clock may have been moved).
fn code_now(server: &TestServer, totp: &TOTP) -> String {
    totp.generate(server.assent().clock.now_secs() as u64)
}

async fn otp_grant(
    server: &TestServer,
    client: &TestClient,
    token: &str,
    otp: &str,
) -> reqwest::Response {
    client
        .post_json(
            server,
            "/oauth/token",
            json!({ "grant_type": MFA_OTP_GRANT, "mfa_token": token, "otp": otp }),
        )
        .await
}

async fn associate(server: &TestServer, client: &TestClient, token: &str) -> Value {
    let Credentials(id, secret) = credentials(client);
    let response = server
        .http
        .post(server.url("/mfa/associate"))
        .bearer_auth(token)
        .json(&json!({ "client_id": id, "client_secret": secret, "authenticator_types": ["otp"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

struct Credentials(String, String);

fn credentials(client: &TestClient) -> Credentials {
    match &client.credentials {
        assent_tests::client::Credentials::SecretPost(s)
        | assent_tests::client::Credentials::SecretBasic(s) => {
            Credentials(client.client_id.clone(), s.clone())
        }
        assent_tests::client::Credentials::PrivateKeyJwt { .. } => unreachable!(),
    }
}

async fn authenticators(server: &TestServer, token: &str) -> Value {
    let response = server
        .http
        .get(server.url("/mfa/authenticators"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

on_both_backends! {
    async fn a_required_second_factor_is_enrolled_and_used(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "auth0|alice", Some(EMAIL), Some("Alice")).await;
        let client = mfa_client(&server, MfaPolicy::Required).await;

        // The first factor alone gets no tokens.
        let token = mfa_token(&server, &client).await;
        assert_eq!(authenticators(&server, &token).await, json!([]));
        let enrolled = associate(&server, &client, &token).await;
        assert_eq!(enrolled["authenticator_type"], "otp");
        let barcode = enrolled["barcode_uri"].as_str().unwrap();
        assert!(barcode.starts_with("otpauth://totp/"), "{barcode}");
        assert!(barcode.contains("algorithm=SHA1") && barcode.contains("digits=6") && barcode.contains("period=30"));
        let recovery = enrolled["recovery_codes"][0].as_str().expect("a recovery code, once").to_string();
        let totp = totp(enrolled["secret"].as_str().unwrap());
        let listed = authenticators(&server, &token).await;
        assert_eq!(listed[0]["authenticator_type"], "otp");
        assert_eq!(listed[0]["active"], false, "until a first code confirms it");
        assert_eq!(listed[1]["authenticator_type"], "recovery-code");

        // A challenge for it says: ask for a code.
        let challenge = client
            .post_json(&server, "/mfa/challenge", json!({ "mfa_token": token, "challenge_type": "otp" }))
            .await;
        assert_eq!(challenge.status(), StatusCode::OK);
        assert_eq!(challenge.json::<Value>().await.unwrap(), json!({ "challenge_type": "otp" }));

        let code = code_now(&server, &totp);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        expect_error(otp_grant(&server, &client, &token, wrong).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let response = otp_grant(&server, &client, &token, &code).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        let id = jwt_payload(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["sub"], "auth0|alice");
        assert_eq!(id["amr"], json!(["otp", "mfa"]));
        assert!(tokens["refresh_token"].is_string());
        // The mfa_token is spent.
        expect_error(otp_grant(&server, &client, &token, &code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

        // The next login: the same code (same time step) is refused; the
        // next step's code works.
        let token = mfa_token(&server, &client).await;
        assert_eq!(authenticators(&server, &token).await[0]["active"], true);
        expect_error(otp_grant(&server, &client, &token, &code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        server.advance_clock(Duration::from_secs(30));
        let code = code_now(&server, &totp);
        assert_eq!(otp_grant(&server, &client, &token, &code).await.status(), StatusCode::OK);

        // The recovery code: once, and a new one comes with the tokens.
        let token = mfa_token(&server, &client).await;
        let recover = |code: String, token: String| {
            client.post_json(
                &server,
                "/oauth/token",
                json!({ "grant_type": MFA_RECOVERY_CODE_GRANT, "mfa_token": token, "recovery_code": code }),
            )
        };
        let response = recover(recovery.to_lowercase(), token.clone()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        assert!(answer["access_token"].is_string());
        let renewed = answer["recovery_code"].as_str().unwrap().to_string();
        assert_ne!(renewed, recovery);
        let token = mfa_token(&server, &client).await;
        expect_error(recover(recovery.clone(), token.clone()).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(recover(renewed, token).await.status(), StatusCode::OK);
    }
}

on_both_backends! {
    async fn mfa_tokens_are_bound_and_short_lived_and_guessing_locks(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "auth0|alice", Some(EMAIL), None).await;
        let client = mfa_client(&server, MfaPolicy::Required).await;
        let other = mfa_client(&server, MfaPolicy::Off).await;
        let token = mfa_token(&server, &client).await;
        let totp = totp(associate(&server, &client, &token).await["secret"].as_str().unwrap());

        // Another client cannot use it.
        let code = code_now(&server, &totp);
        expect_error(otp_grant(&server, &other, &token, &code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        // Ten minutes, then it is gone.
        server.advance_clock(Duration::from_secs(601));
        let code = code_now(&server, &totp);
        expect_error(otp_grant(&server, &client, &token, &code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let listed = server.http.get(server.url("/mfa/authenticators")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(listed.status(), StatusCode::UNAUTHORIZED);

        // Five wrong codes lock the second factor; the right one is refused
        // then too, for this login and the next.
        let token = mfa_token(&server, &client).await;
        for _ in 0..4 {
            expect_error(otp_grant(&server, &client, &token, "000001").await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        }
        let locked = otp_grant(&server, &client, &token, "000001").await;
        assert!(locked.headers().contains_key("retry-after"));
        expect_error(locked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
        let code = code_now(&server, &totp);
        expect_error(otp_grant(&server, &client, &token, &code).await, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
        server.advance_clock(Duration::from_secs(15 * 60));
        let token = mfa_token(&server, &client).await;
        let code = code_now(&server, &totp);
        assert_eq!(otp_grant(&server, &client, &token, &code).await.status(), StatusCode::OK);

        // Deleting the authenticator: the user has no factor left (and no
        // recovery code).
        let token = mfa_token(&server, &client).await;
        let id = authenticators(&server, &token).await[0]["id"].as_str().unwrap().to_string();
        let deleted = server
            .http
            .delete(server.url(&format!("/mfa/authenticators/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        assert_eq!(authenticators(&server, &token).await, json!([]));
        // Ids no authenticator can have: a JSON refusal, never a 500.
        for (path, status, code) in [
            ("/mfa/authenticators/a%00b", StatusCode::BAD_REQUEST, "invalid_request"),
            ("/mfa/authenticators/%FF", StatusCode::NOT_FOUND, "not_found"),
            (&format!("/mfa/authenticators/{id}"), StatusCode::NOT_FOUND, "not_found"),
        ] {
            let response = server.http.delete(server.url(path)).bearer_auth(&token).send().await.unwrap();
            expect_error(response, status, code).await;
        }
    }
}

on_both_backends! {
    async fn if_enrolled_asks_only_users_with_a_factor(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "auth0|alice", Some(EMAIL), None).await;
        let client = mfa_client(&server, MfaPolicy::IfEnrolled).await;
        // No factor: tokens at once.
        assert_eq!(first_factor(&server, &client).await.status(), StatusCode::OK);
        // With one (enrolled under a required policy's login), it is asked for.
        let strict = mfa_client(&server, MfaPolicy::Required).await;
        let token = mfa_token(&server, &strict).await;
        let totp = totp(associate(&server, &strict, &token).await["secret"].as_str().unwrap());
        let code = code_now(&server, &totp);
        assert_eq!(otp_grant(&server, &strict, &token, &code).await.status(), StatusCode::OK);
        mfa_token(&server, &client).await;
    }
}
