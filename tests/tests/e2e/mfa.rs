//! Auth0's MFA API over real HTTP: a client whose policy requires a second
//! factor gets `mfa_required` from a first-factor login (the back-end OTP
//! API, which hands its test client the code), associates a TOTP
//! authenticator, and completes with the `mfa-otp` grant using codes the
//! test computes from the secret (RFC 6238); the recovery code; Assent push
//! as the Guardian factor (a device enrolled through `/mfa/associate`, then
//! challenged, approving and denying with signed decisions); codes by SMS;
//! the MFA API's own access token; and what must not work: a spent,
//! expired or foreign `mfa_token`, a replayed TOTP code, a reused recovery
//! code, another user's `oob_code`, guessing past the lockout, 50
//! concurrent polls of one approval, and an `mfa_token` that tries to add
//! or remove a factor of a user who has one.

use std::time::Duration;

use assent_device::{Answer, DeviceClient};
use assent_server::{
    client_auth::AuthMethod,
    keys::TokenAlg,
    mfa::{MFA_OOB_GRANT, MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT},
    storage::{ClientChanges, MfaPolicy},
};
use assent_shared::{
    oauth::{CIBA_GRANT_TYPE, PASSWORDLESS_OTP_GRANT_TYPE, REFRESH_TOKEN_GRANT_TYPE},
    protocol::{EnrollmentUri, RequestPurpose},
};
use assent_tests::{
    client::{create_user_without_device, expect_error},
    jwt_payload, on_both_backends,
    otp::{six_digits, totp},
    sms_receiver::SmsReceiver,
    TestClient, TestServer,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use totp_rs::TOTP;

const EMAIL: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const API: &str = "https://api.example.com";

async fn mfa_client(server: &TestServer, policy: MfaPolicy) -> TestClient {
    let client = TestClient::register_with_grants(
        server.store(),
        AuthMethod::ClientSecretPost,
        TokenAlg::RS256,
        &[
            PASSWORDLESS_OTP_GRANT_TYPE,
            REFRESH_TOKEN_GRANT_TYPE,
            CIBA_GRANT_TYPE,
            MFA_OTP_GRANT,
            MFA_OOB_GRANT,
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

/// `POST /mfa/associate` with the `mfa_token` (or access token) as Bearer
/// and the client's credentials in the body.
async fn associate_response(
    server: &TestServer,
    client: &TestClient,
    token: &str,
    mut body: Value,
) -> reqwest::Response {
    let Credentials(id, secret) = credentials(client);
    body["client_id"] = json!(id);
    body["client_secret"] = json!(secret);
    server
        .http
        .post(server.url("/mfa/associate"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Associates a TOTP authenticator; the answer.
async fn associate(server: &TestServer, client: &TestClient, token: &str) -> Value {
    let response = associate_response(
        server,
        client,
        token,
        json!({ "authenticator_types": ["otp"] }),
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
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
        create_user_without_device(server.store(), "auth0|alice", Some(EMAIL), Some("Alice")).await;
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

        assert!(enrolled["barcode_svg"].as_str().unwrap().starts_with("<?xml"));
        assert_eq!(listed[0]["id"], enrolled["id"]);
        // An authenticator waiting for its first code is not challenged:
        // the answer of /mfa/associate stands for the challenge.
        let challenge = |token: String| {
            client.post_json(&server, "/mfa/challenge", json!({ "mfa_token": token, "challenge_type": "otp" }))
        };
        expect_error(challenge(token.clone()).await, StatusCode::BAD_REQUEST, "invalid_request").await;

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
        // A challenge for it now says: ask for a code.
        let answer = challenge(token.clone()).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.json::<Value>().await.unwrap(), json!({ "challenge_type": "otp" }));
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
        let (hook, alerts) = assent_tests::alerts::webhook_receiver().await;
        let server = TestServer::start_with(backend, move |s| {
            s.push_allowed_hosts = vec![hook.to_string()];
            s.alert_webhook_url = Some(format!("http://{hook}/alerts"));
        })
        .await;
        create_user_without_device(server.store(), "auth0|alice", Some(EMAIL), None).await;
        let client = mfa_client(&server, MfaPolicy::Required).await;
        let other = mfa_client(&server, MfaPolicy::Off).await;
        let token = mfa_token(&server, &client).await;
        let totp = totp(associate(&server, &client, &token).await["secret"].as_str().unwrap());
        assert_eq!(otp_grant(&server, &client, &token, &code_now(&server, &totp)).await.status(), StatusCode::OK);
        let token = mfa_token(&server, &client).await;
        server.advance_clock(Duration::from_secs(30));

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
        // The operator is told.
        let alert = assent_tests::alerts::first_alert(&alerts).await;
        assert_eq!(alert["type"], "mfa_locked_out");
        assert_eq!(alert["user"], "auth0|alice");
        assert_eq!(alerts.lock().unwrap().len(), 1, "once per lockout");
        server.advance_clock(Duration::from_secs(15 * 60));
        let token = mfa_token(&server, &client).await;
        let code = code_now(&server, &totp);
        assert_eq!(otp_grant(&server, &client, &token, &code).await.status(), StatusCode::OK);

        // The mfa_token (the first factor alone) may not remove a factor,
        // nor add another one now that the user has one.
        let token = mfa_token(&server, &client).await;
        let id = authenticators(&server, &token).await[0]["id"].as_str().unwrap().to_string();
        let deleted = server
            .http
            .delete(server.url(&format!("/mfa/authenticators/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        expect_error(deleted, StatusCode::FORBIDDEN, "insufficient_scope").await;
        let more = associate_response(&server, &client, &token, json!({ "authenticator_types": ["otp"] })).await;
        expect_error(more, StatusCode::FORBIDDEN, "access_denied").await;
        // Client credentials, when given (here as Basic, the token in the
        // body), must hold.
        let basic = server
            .http
            .post(server.url("/mfa/associate"))
            .basic_auth(&client.client_id, Some("not-the-secret"))
            .json(&json!({ "mfa_token": token, "authenticator_types": ["otp"] }))
            .send()
            .await
            .unwrap();
        expect_error(basic, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

on_both_backends! {
    async fn if_enrolled_asks_only_users_with_a_factor(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user_without_device(server.store(), "auth0|alice", Some(EMAIL), None).await;
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

        // An enrolled Assent device is a factor too.
        create_user_without_device(server.store(), "auth0|bob", Some("bob@example.com"), None).await;
        // (The client may ask for tokens of this API; its policy is off.)
        let relaxed = mfa_client(&server, MfaPolicy::Off).await;
        for c in [&client, &relaxed] {
            c.grant_api(server.store(), "https://api.example.com", &[]).await;
        }
        assert_eq!(backend_login(&server, &client, BOB, Some(API)).await.status(), StatusCode::OK);
        assent_tests::device::enroll(&server, "auth0|bob", None).await;
        expect_error(backend_login(&server, &client, BOB, Some(API)).await, StatusCode::FORBIDDEN, "mfa_required").await;
        // An API's policy counts as much as the client's: the stricter wins.
        assert_eq!(backend_login(&server, &relaxed, BOB, Some(API)).await.status(), StatusCode::OK);
        assent_server::apis::set_mfa_policy(server.store(), "https://api.example.com", MfaPolicy::IfEnrolled)
            .await
            .unwrap();
        expect_error(backend_login(&server, &relaxed, BOB, Some(API)).await, StatusCode::FORBIDDEN, "mfa_required").await;
    }
}

/// A first-factor login through the back-end OTP API (optionally for an
/// API): its answer.
async fn backend_login(
    server: &TestServer,
    client: &TestClient,
    email: &str,
    audience: Option<&str>,
) -> reqwest::Response {
    let sent: Value = client
        .post_json(
            server,
            "/backend-auth/otp/send",
            json!({ "identifier_type": "email", "identifier": email }),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut body =
        json!({ "identifier_type": "email", "identifier": email, "passcode": sent["code"] });
    if let Some(audience) = audience {
        body["audience"] = json!(audience);
    }
    client
        .post_json(server, "/backend-auth/otp/authenticate", body)
        .await
}

async fn oob_grant(
    server: &TestServer,
    client: &TestClient,
    token: &str,
    oob_code: &str,
    binding_code: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({ "grant_type": MFA_OOB_GRANT, "mfa_token": token, "oob_code": oob_code });
    if let Some(code) = binding_code {
        body["binding_code"] = json!(code);
    }
    client.post_json(server, "/oauth/token", body).await
}

/// The device's one pending request (verified against the pinned key).
async fn the_pending_request(device: &DeviceClient) -> assent_device::VerifiedChallenge {
    let mut pending = device.pending().await.unwrap();
    assert!(pending.rejected.is_empty(), "{:?}", pending.rejected);
    assert_eq!(pending.verified.len(), 1, "one request waits");
    pending.verified.remove(0)
}

on_both_backends! {
    async fn assent_push_is_the_guardian_factor(backend: Backend) {
        // By default an mfa_token (a password-only login) may not add a
        // device, which would also approve back-channel logins.
        let strict = TestServer::start(backend).await;
        create_user_without_device(strict.store(), "auth0|alice", Some(EMAIL), None).await;
        let client = mfa_client(&strict, MfaPolicy::Required).await;
        let token = mfa_token(&strict, &client).await;
        let refused = associate_response(&strict, &client, &token,
            json!({ "authenticator_types": ["oob"], "oob_channels": ["auth0"] })).await;
        expect_error(refused, StatusCode::FORBIDDEN, "access_denied").await;

        let server = TestServer::start_with(backend, |s| s.mfa_self_enroll_devices = true).await;
        create_user_without_device(server.store(), "auth0|alice", Some(EMAIL), Some("Alice")).await;
        let client = mfa_client(&server, MfaPolicy::Required).await;

        // Enrolling a device through the MFA API: the answer carries the
        // enrollment link (and its QR code) and an oob_code to poll.
        let token = mfa_token(&server, &client).await;
        let response = associate_response(&server, &client, &token,
            json!({ "authenticator_types": ["oob"], "oob_channels": ["auth0"] })).await;
        assert_eq!(response.status(), StatusCode::OK);
        let enrolled: Value = response.json().await.unwrap();
        assert_eq!(enrolled["authenticator_type"], "oob");
        assert_eq!(enrolled["oob_channel"], "auth0");
        assert!(enrolled["barcode_svg"].as_str().unwrap().contains("<svg"));
        assert!(enrolled["recovery_codes"][0].is_string());
        let oob_code = enrolled["oob_code"].as_str().unwrap().to_string();
        let pending = oob_grant(&server, &client, &token, &oob_code, None).await;
        expect_error(pending, StatusCode::BAD_REQUEST, "authorization_pending").await;
        let slow = oob_grant(&server, &client, &token, &oob_code, None).await;
        assert!(slow.headers().contains_key("retry-after"));
        expect_error(slow, StatusCode::BAD_REQUEST, "slow_down").await;
        let link = EnrollmentUri::parse(enrolled["barcode_uri"].as_str().unwrap()).unwrap();
        let device = DeviceClient::enroll(&link, "Alice's phone", "test", None).await.unwrap();
        server.advance_clock(Duration::from_secs(11));
        let response = oob_grant(&server, &client, &token, &oob_code, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        let id = jwt_payload(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["amr"], json!(["otp", "mfa", "swk", "oob"]));
        expect_error(oob_grant(&server, &client, &token, &oob_code, None).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let listed = authenticators(&server, &mfa_token(&server, &client).await).await;
        assert_eq!(listed[0]["id"], format!("push|{}", device.account.device_id));
        assert_eq!(listed[0]["oob_channel"], "auth0");
        assert_eq!(listed[0]["name"], "Alice's phone");

        // A push: the device is shown the second step of a sign-in, with
        // number matching (the default policy): the challenge's answer
        // carries the code the user types on the device.
        let token = mfa_token(&server, &client).await;
        let challenge = |token: String| {
            client.post_json(&server, "/mfa/challenge", json!({ "mfa_token": token, "challenge_type": "oob" }))
        };
        let answer: Value = challenge(token.clone()).await.json().await.unwrap();
        assert_eq!(answer["challenge_type"], "oob");
        assert!(answer.get("binding_method").is_none(), "nothing to type: {answer}");
        let oob_code = answer["oob_code"].as_str().unwrap().to_string();
        expect_error(oob_grant(&server, &client, &token, &oob_code, None).await, StatusCode::BAD_REQUEST, "authorization_pending").await;
        let request = the_pending_request(&device).await;
        assert_eq!(request.claims.purpose, RequestPurpose::Mfa);
        assert_eq!(request.claims.client_id, client.client_id);
        assert!(request.claims.binding_message.starts_with("Sign in to "), "{}", request.claims.binding_message);
        // Not a CIBA request: its oob_code is no auth_req_id.
        expect_error(client.poll(&server, &oob_code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        // Nor is it anyone else's: Bob's login cannot collect it.
        create_user_without_device(server.store(), "auth0|bob", Some("bob@example.com"), None).await;
        let code = answer["match_code"].as_str().expect("a match code").to_string();
        assert_eq!(request.claims.match_code_digits, Some(code.len() as u8));
        let wrong = if code.starts_with('0') { "1" } else { "0" }.repeat(code.len());
        assert!(device.decide(&request, &Answer::approve(Some(&wrong))).await.is_err());
        device.decide(&request, &Answer::approve(Some(&code))).await.unwrap();
        server.advance_clock(Duration::from_secs(6));
        let refused = backend_login(&server, &client, "bob@example.com", None).await;
        let bobs_token = expect_error(refused, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"]
            .as_str().unwrap().to_string();
        expect_error(oob_grant(&server, &client, &bobs_token, &oob_code, None).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

        // Fifty polls at once of the approved push: one gets the tokens.
        let Credentials(id, secret) = credentials(&client);
        let body = json!({ "grant_type": MFA_OOB_GRANT, "mfa_token": token, "oob_code": oob_code,
                           "client_id": id, "client_secret": secret });
        let polls: Vec<_> = (0..50)
            .map(|_| {
                let (http, url, body) = (server.http.clone(), server.url("/oauth/token"), body.clone());
                tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap() })
            })
            .collect();
        let mut issued = 0;
        for poll in polls {
            let response = poll.await.unwrap();
            match response.status() {
                StatusCode::OK => {
                    issued += 1;
                    let tokens: Value = response.json().await.unwrap();
                    let amr = jwt_payload(tokens["id_token"].as_str().unwrap())["amr"].clone();
                    assert!(amr.as_array().unwrap().contains(&json!("mfa")), "{amr}");
                    assert!(amr.as_array().unwrap().contains(&json!("oob")), "{amr}");
                }
                _ => {
                    expect_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
                }
            }
        }
        assert_eq!(issued, 1, "exactly one token response");

        // Denied on the device: Auth0's answer.
        let token = mfa_token(&server, &client).await;
        let answer: Value = challenge(token.clone()).await.json().await.unwrap();
        let oob_code = answer["oob_code"].as_str().unwrap().to_string();
        device.decide(&the_pending_request(&device).await, &Answer::deny(None)).await.unwrap();
        let body = expect_error(oob_grant(&server, &client, &token, &oob_code, None).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(body["error_description"], "MFA Authorization rejected.");

        // The mfa_token may not remove the device.
        let token = mfa_token(&server, &client).await;
        let id = format!("push|{}", device.account.device_id);
        let deleted = server.http.delete(server.url(&format!("/mfa/authenticators/{id}")))
            .bearer_auth(&token).send().await.unwrap();
        expect_error(deleted, StatusCode::FORBIDDEN, "insufficient_scope").await;
    }
}

on_both_backends! {
    async fn codes_by_sms_and_the_mfa_apis_own_token(backend: Backend) {
        let sms = SmsReceiver::start().await;
        let server = TestServer::start_with(backend, |s| {
            s.sms_provider = Some(assent_server::config::SmsProvider::Webhook);
            s.sms_url = Some(sms.url());
            s.sms_allowed_hosts = vec![sms.host_port()];
        })
        .await;
        create_user_without_device(server.store(), "auth0|alice", Some(EMAIL), None).await;
        assent_server::users::update(
            server.store(),
            "auth0|alice",
            assent_server::storage::UserChanges {
                phone_number: Some(Some("+14155552671".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        // Its policy is off: only the MFA API's own audience asks for MFA.
        let client = mfa_client(&server, MfaPolicy::Off).await;
        let mfa_api = server.url("/mfa/");
        // A login by a texted code (passwordless), for the MFA API.
        let login = || async {
            let started = client.post_json(&server, "/passwordless/start",
                json!({ "connection": "sms", "phone_number": "+14155552671", "send": "code" })).await;
            assert_eq!(started.status(), StatusCode::OK);
            let code = six_digits(&sms.next_sms(Duration::from_secs(30)).await.body);
            client.post_json(&server, "/oauth/token", json!({
                "grant_type": PASSWORDLESS_OTP_GRANT_TYPE, "realm": "sms", "username": "+14155552671",
                "otp": code, "audience": mfa_api,
                "scope": "openid enroll read:authenticators remove:authenticators offline_access" })).await
        };
        let token = expect_error(login().await, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"]
            .as_str().unwrap().to_string();

        // Enrolling a phone: a code by SMS, typed in as the binding_code.
        let response = associate_response(&server, &client, &token, json!({
            "authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+14155550100" })).await;
        assert_eq!(response.status(), StatusCode::OK);
        let enrolled: Value = response.json().await.unwrap();
        assert_eq!(enrolled["binding_method"], "prompt");
        assert_eq!(enrolled["oob_channel"], "sms");
        let texted = sms.next_sms(Duration::from_secs(30)).await;
        assert_eq!(texted.to, "+14155550100");
        let code = six_digits(&texted.body);
        let oob_code = enrolled["oob_code"].as_str().unwrap();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let body = expect_error(oob_grant(&server, &client, &token, oob_code, Some(wrong)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(body["error_description"], "Invalid binding_code.");
        expect_error(oob_grant(&server, &client, &token, oob_code, None).await, StatusCode::BAD_REQUEST, "invalid_request").await;
        let response = oob_grant(&server, &client, &token, oob_code, Some(&code)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        assert!(tokens.get("refresh_token").is_none(), "the MFA API's tokens are not refreshed");
        let access = jwt_payload(tokens["access_token"].as_str().unwrap());
        assert!(access["aud"].as_array().unwrap().contains(&json!(mfa_api)), "{access}");
        assert_eq!(access["scope"], "openid enroll read:authenticators remove:authenticators");
        assert_eq!(access["amr"], json!(["otp", "sms", "mfa", "oob"]));
        assert_eq!(tokens["expires_in"], 600, "the MFA API's tokens are short");
        let access_token = tokens["access_token"].as_str().unwrap().to_string();

        // The next login: a challenge texts a fresh code.
        let token = expect_error(login().await, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"]
            .as_str().unwrap().to_string();
        let answer: Value = client.post_json(&server, "/mfa/challenge",
            json!({ "mfa_token": token, "challenge_type": "oob" })).await.json().await.unwrap();
        assert_eq!(answer["binding_method"], "prompt", "{answer}");
        let code = six_digits(&sms.next_sms(Duration::from_secs(30)).await.body);
        let oob_code = answer["oob_code"].as_str().unwrap();
        assert_eq!(oob_grant(&server, &client, &token, oob_code, Some(&code)).await.status(), StatusCode::OK);
        // Spent.
        expect_error(oob_grant(&server, &client, &token, oob_code, Some(&code)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

        // The MFA API's access token adds and removes factors.
        let token = expect_error(login().await, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"]
            .as_str().unwrap().to_string();
        expect_error(
            associate_response(&server, &client, &token, json!({ "authenticator_types": ["otp"] })).await,
            StatusCode::FORBIDDEN, "access_denied").await;
        let added = associate(&server, &client, &access_token).await;
        assert_eq!(added["authenticator_type"], "otp");
        assert!(added.get("recovery_codes").is_none(), "only with the first factor");
        // A second phone, enrolled with the access token (no login to
        // complete), is confirmed by its first challenge, named.
        let response = associate_response(&server, &client, &access_token, json!({
            "authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+14155550199" })).await;
        assert_eq!(response.status(), StatusCode::OK);
        let second: Value = response.json().await.unwrap();
        sms.next_sms(Duration::from_secs(30)).await;
        let answer: Value = client.post_json(&server, "/mfa/challenge", json!({
            "mfa_token": token, "challenge_type": "oob", "authenticator_id": second["id"] })).await.json().await.unwrap();
        let texted = sms.next_sms(Duration::from_secs(30)).await;
        assert_eq!(texted.to, "+14155550199");
        let response = oob_grant(&server, &client, &token, answer["oob_code"].as_str().unwrap(), Some(&six_digits(&texted.body))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let token = expect_error(login().await, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"]
            .as_str().unwrap().to_string();
        let listed = authenticators(&server, &token).await;
        let confirmed = listed.as_array().unwrap().iter().find(|a| a["id"] == second["id"]).unwrap();
        assert_eq!(confirmed["active"], true, "{listed}");
        let listed = authenticators(&server, &access_token).await;
        let sms_id = listed.as_array().unwrap().iter()
            .find(|a| a["oob_channel"] == "sms").unwrap()["id"].as_str().unwrap().to_string();
        assert_eq!(listed.as_array().unwrap().iter().find(|a| a["oob_channel"] == "sms").unwrap()["name"], "+1415…00");
        let deleted = server.http.delete(server.url(&format!("/mfa/authenticators/{sms_id}")))
            .bearer_auth(&access_token).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        let listed = authenticators(&server, &token).await;
        assert!(listed.as_array().unwrap().iter().all(|a| a["id"] != sms_id.as_str()), "{listed}");
        // Ids no authenticator can have: a JSON refusal, never a 500.
        for (path, status, code) in [
            ("/mfa/authenticators/a%00b", StatusCode::BAD_REQUEST, "invalid_request"),
            ("/mfa/authenticators/%FF", StatusCode::NOT_FOUND, "not_found"),
            (&format!("/mfa/authenticators/{sms_id}"), StatusCode::NOT_FOUND, "not_found"),
            ("/mfa/authenticators/push|nope", StatusCode::NOT_FOUND, "not_found"),
        ] {
            let response = server.http.delete(server.url(path)).bearer_auth(&access_token).send().await.unwrap();
            expect_error(response, status, code).await;
        }
        // Another API's token, or none of the MFA scopes: refused.
        assert_eq!(server.http.get(server.url("/mfa/authenticators")).bearer_auth("a.b.c").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
}

on_both_backends! {
    async fn assent_device_holds_totp_accounts(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user_without_device(server.store(), "auth0|alice", Some(EMAIL), None).await;
        let client = mfa_client(&server, MfaPolicy::Required).await;
        let token = mfa_token(&server, &client).await;
        let enrolled = associate(&server, &client, &token).await;
        let state = tempfile::tempdir().unwrap();
        let device = |args: &'static [&'static str]| assent_tests::process::run_device(state.path(), args);
        let link = enrolled["barcode_uri"].as_str().unwrap().to_string();
        let (ok, added, err) = assent_tests::process::run_device(state.path(), &["totp", "add", &link]).await;
        assert!(ok, "{err}");
        let host = reqwest::Url::parse(&server.url("/")).unwrap().host_str().unwrap().to_string();
        assert_eq!(added["issuer"], host.as_str());
        assert_eq!(added["account"], EMAIL);
        // Kept owner-only: the link holds the secret.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.path().join("totp.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (ok, _, err) = assent_tests::process::run_device(state.path(), &["totp", "add", &link]).await;
        assert!(!ok && err.contains("already"), "{err}");

        let (ok, listed, err) = device(&["totp", "list"]).await;
        assert!(ok, "{err}");
        let left = listed[0]["seconds_left"].as_u64().unwrap();
        assert!((1..=30).contains(&left), "{listed}");
        // The device's code is the server's (its clock is the real one here).
        let (ok, code, err) = device(&["totp", "code"]).await;
        assert!(ok, "{err}");
        let expected = totp(enrolled["secret"].as_str().unwrap());
        let now = server.assent().clock.now_secs() as u64;
        let code = code["code"].as_str().unwrap().to_string();
        assert!([now - 1, now].iter().any(|t| expected.generate(*t) == code), "{code}");
        assert_eq!(otp_grant(&server, &client, &token, &code).await.status(), StatusCode::OK);

        let (ok, _, err) = device(&["totp", "remove", EMAIL]).await;
        assert!(ok, "{err}");
        let (ok, listed, _) = device(&["totp", "list"]).await;
        assert!(ok);
        assert_eq!(listed, json!([]));
        let (ok, _, err) = device(&["totp", "add", "otpauth://totp/x?secret=ABC"]).await;
        assert!(!ok && err.contains("secret"), "{err}");
    }
}

on_both_backends! {
    async fn a_first_enrollment_belongs_to_the_login_that_started_it(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user_without_device(server.store(), "auth0|alice", Some(EMAIL), None).await;
        let client = mfa_client(&server, MfaPolicy::Required).await;
        // Someone with Alice's first factor plants a TOTP app...
        let theirs = mfa_token(&server, &client).await;
        let planted = totp(associate(&server, &client, &theirs).await["secret"].as_str().unwrap());
        // ...which Alice's own login cannot be completed with,
        let mine = mfa_token(&server, &client).await;
        let code = code_now(&server, &planted);
        expect_error(otp_grant(&server, &client, &mine, &code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        // and which her own first enrollment replaces.
        let own = associate(&server, &client, &mine).await;
        let app = totp(own["secret"].as_str().unwrap());
        assert_eq!(otp_grant(&server, &client, &mine, &code_now(&server, &app)).await.status(), StatusCode::OK);
        let listed = authenticators(&server, &mfa_token(&server, &client).await).await;
        let totps: Vec<&Value> = listed.as_array().unwrap().iter().filter(|a| a["authenticator_type"] == "otp").collect();
        assert_eq!(totps.len(), 1, "{listed}");
        assert_eq!(totps[0]["id"], own["id"]);
        // The planted app's code completes nothing, now or later.
        server.advance_clock(Duration::from_secs(30));
        let later = mfa_token(&server, &client).await;
        expect_error(otp_grant(&server, &client, &later, &code_now(&server, &planted)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        // The planter's own token: the planted factor is gone.
        expect_error(otp_grant(&server, &client, &theirs, &code_now(&server, &planted)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

on_both_backends! {
    async fn guesses_in_parallel_do_not_outrun_the_lockout(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user_without_device(server.store(), "auth0|alice", Some(EMAIL), None).await;
        let client = mfa_client(&server, MfaPolicy::Required).await;
        let token = mfa_token(&server, &client).await;
        let app = totp(associate(&server, &client, &token).await["secret"].as_str().unwrap());
        assert_eq!(otp_grant(&server, &client, &token, &code_now(&server, &app)).await.status(), StatusCode::OK);
        let token = mfa_token(&server, &client).await;
        let Credentials(id, secret) = credentials(&client);
        let right = code_now(&server, &app);
        let guesses: Vec<_> = (0..40)
            .map(|i| {
                let guess = format!("{:06}", 100_000 + i);
                let guess = if guess == right { "999999".to_string() } else { guess };
                let body = json!({ "grant_type": MFA_OTP_GRANT, "mfa_token": token, "otp": guess,
                                   "client_id": id, "client_secret": secret });
                let (http, url) = (server.http.clone(), server.url("/oauth/token"));
                tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status() })
            })
            .collect();
        let mut checked = 0;
        for guess in guesses {
            match guess.await.unwrap() {
                StatusCode::BAD_REQUEST => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("unexpected {other}"),
            }
        }
        assert!(checked <= 5, "{checked} guesses were checked; the limit is 5 per 15 minutes");
        expect_error(otp_grant(&server, &client, &token, &right).await, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    }
}
