//! Passwordless login over real HTTP, without a mail server: the back-end
//! one-time login API of a client allowed to read its codes
//! (`otp_code_in_response`, no channel configured, so the back end delivers
//! them) drives the code rules. What a code may not do: be guessed (attempts
//! counted, the code voided, the user paused), outlive its time, be used
//! twice, by another client, or for another transaction. Also JSON bodies
//! and revocation. Delivery by e-mail and SMS, and Auth0's SDKs, are in
//! `passwordless_delivery` and `auth0_sdks`.

use assent_server::{
    client_auth::AuthMethod,
    keys::TokenAlg,
    storage::{ClientChanges, UserChanges},
};
use assent_shared::oauth::{
    CIBA_GRANT_TYPE, PASSWORDLESS_OTP_GRANT_TYPE, REFRESH_TOKEN_GRANT_TYPE,
};
use assent_tests::{
    client::{create_user, expect_error},
    jwt_payload, on_both_backends, Backend, TestClient, TestServer,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ALICE_EMAIL: &str = "alice@example.com";

/// A client of the back-end API that may read the codes it has sent.
async fn backend_client(server: &TestServer, method: AuthMethod) -> TestClient {
    let client = TestClient::register_with_grants(
        server.store(),
        method,
        TokenAlg::RS256,
        &[
            PASSWORDLESS_OTP_GRANT_TYPE,
            REFRESH_TOKEN_GRANT_TYPE,
            CIBA_GRANT_TYPE,
        ],
    )
    .await;
    assent_server::clients::update(
        server.store(),
        &client.client_id,
        ClientChanges {
            otp_code_in_response: Some(true),
            redirect_uris: Some("https://app.example.com/callback".into()),
            ..ClientChanges::default()
        },
        Some(&server.assent().clients),
    )
    .await
    .unwrap();
    client
}

async fn server_with_alice(backend: Backend) -> TestServer {
    let server = TestServer::start(backend).await;
    create_user(
        server.store(),
        "auth0|alice",
        Some(ALICE_EMAIL),
        Some("Alice"),
    )
    .await;
    assent_server::users::update(
        server.store(),
        "auth0|alice",
        UserChanges {
            phone_number: Some(Some("+14155552671".into())),
            ..UserChanges::default()
        },
    )
    .await
    .unwrap();
    server
}

/// Sends an OTP and returns the code the answer carries.
async fn send_otp(server: &TestServer, client: &TestClient, extra: Value) -> String {
    let mut body = json!({
        "channel": "email",
        "identifier_type": "email",
        "identifier": ALICE_EMAIL,
    });
    merge(&mut body, extra);
    let response = client
        .post_json(server, "/backend-auth/otp/send", body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["message"], "OTP sent");
    answer["code"]
        .as_str()
        .expect("code in the answer")
        .to_string()
}

async fn authenticate(
    server: &TestServer,
    client: &TestClient,
    passcode: &str,
    extra: Value,
) -> reqwest::Response {
    let mut body = json!({
        "passcode": passcode,
        "identifier_type": "email",
        "identifier": ALICE_EMAIL,
    });
    merge(&mut body, extra);
    client
        .post_json(server, "/backend-auth/otp/authenticate", body)
        .await
}

fn merge(body: &mut Value, extra: Value) {
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
}

on_both_backends! {
    async fn a_passcode_logs_in_once_with_a_session(backend: Backend) {
        let server = server_with_alice(backend).await;
        let client = backend_client(&server, AuthMethod::ClientSecretPost).await;
        let code = send_otp(&server, &client, json!({})).await;
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));

        let response = authenticate(
            &server,
            &client,
            &code,
            json!({ "claims": { "id_token": { "email": null, "name": null, "roles": null } } }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let tokens: Value = response.json().await.unwrap();
        let session = tokens["session_id"].as_str().unwrap().to_string();
        assert!(session.len() >= 43, "a session id is a secret: {session}");
        assert!(tokens["refresh_token"].is_string());
        let id = jwt_payload(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["sub"], "auth0|alice");
        assert_eq!(id["email"], ALICE_EMAIL, "asked for with claims");
        assert_eq!(id["name"], "Alice");
        assert!(id.get("roles").is_none());
        assert_eq!(id["amr"], json!(["otp"]));

        // Used: the same code again is wrong.
        let again = authenticate(&server, &client, &code, json!({})).await;
        expect_error(again, StatusCode::BAD_REQUEST, "invalid_grant").await;

        // A second login continues the session; an unknown one is refused
        // before the code is spent.
        let code = send_otp(&server, &client, json!({})).await;
        let bad = authenticate(&server, &client, &code, json!({ "session_id": "nope" })).await;
        expect_error(bad, StatusCode::BAD_REQUEST, "invalid_request").await;
        let good = authenticate(&server, &client, &code, json!({ "session_id": session })).await;
        assert_eq!(good.status(), StatusCode::OK);
        let tokens: Value = good.json().await.unwrap();
        assert_eq!(tokens["session_id"], session.as_str());
    }
}

on_both_backends! {
    async fn wrong_codes_void_the_code_and_then_pause_the_user(backend: Backend) {
        let server = server_with_alice(backend).await;
        let client = backend_client(&server, AuthMethod::ClientSecretBasic).await;
        let code = send_otp(&server, &client, json!({})).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..2 {
            let body = expect_error(
                authenticate(&server, &client, wrong, json!({})).await,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
            )
            .await;
            assert_eq!(body["error_description"], "Wrong email or verification code.");
        }
        // The third wrong try (max_attempts = 3) voids the code, and says so…
        let body = expect_error(
            authenticate(&server, &client, wrong, json!({})).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert!(
            body["error_description"].as_str().unwrap().contains("maximum number of attempts"),
            "{body}"
        );
        // …and the right code no longer works.
        expect_error(
            authenticate(&server, &client, &code, json!({})).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;

        // Across codes, ten wrong tries per user pause verification (429
        // too_many_attempts with Retry-After), even with the right code.
        for _ in 0..2 {
            let _ = send_otp(&server, &client, json!({})).await;
            for _ in 0..3 {
                let _ = authenticate(&server, &client, wrong, json!({})).await;
            }
        }
        let code = send_otp(&server, &client, json!({})).await;
        let _ = authenticate(&server, &client, wrong, json!({})).await;
        let paused = authenticate(&server, &client, &code, json!({})).await;
        let retry_after: u64 = paused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&retry_after), "{retry_after}");
        expect_error(paused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
        // The window ends: the code (still live) works again.
        server.advance_clock(std::time::Duration::from_secs(15 * 60));
        // …but it expired meanwhile (5 minutes): the answer says so.
        let body = expect_error(
            authenticate(&server, &client, &code, json!({})).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert!(body["error_description"].as_str().unwrap().contains("expired"), "{body}");
        let code = send_otp(&server, &client, json!({})).await;
        assert_eq!(authenticate(&server, &client, &code, json!({})).await.status(), StatusCode::OK);
    }
}

on_both_backends! {
    async fn codes_belong_to_one_client_one_api_and_one_transaction(backend: Backend) {
        let server = server_with_alice(backend).await;
        let client = backend_client(&server, AuthMethod::ClientSecretPost).await;
        let other = backend_client(&server, AuthMethod::ClientSecretPost).await;

        // Another client cannot redeem it (and its own live code is not touched).
        let code = send_otp(&server, &client, json!({})).await;
        expect_error(
            authenticate(&server, &other, &code, json!({})).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        // Nor can Auth0's OTP grant (codes of this API are for this API).
        let grant = client
            .post_json(
                &server,
                "/oauth/token",
                json!({ "grant_type": PASSWORDLESS_OTP_GRANT_TYPE, "realm": "email",
                        "username": ALICE_EMAIL, "otp": code, "scope": "openid" }),
            )
            .await;
        expect_error(grant, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(authenticate(&server, &client, &code, json!({})).await.status(), StatusCode::OK);

        // A code bound to a transaction is refused for another one, and
        // without one; the SMS names the transaction.
        let approval = json!({ "transaction_id": "tx-1", "sum": "200" });
        let response = client
            .post_json(
                &server,
                "/backend-auth/otp/send",
                json!({ "channel": "sms", "identifier_type": "phone_number",
                        "identifier": "+1 415 555 2671", "approval_data": approval }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["approval_data"], approval, "echoed, as the seed shows");
        let code = answer["code"].as_str().unwrap().to_string();
        let by_phone = |extra: Value| {
            let mut body = json!({ "passcode": code, "identifier_type": "phone_number",
                                   "identifier": "+14155552671" });
            merge(&mut body, extra);
            client.post_json(&server, "/backend-auth/otp/authenticate", body)
        };
        let body = expect_error(
            by_phone(json!({ "approval_data": { "transaction_id": "tx-2", "sum": "200" } })).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert!(body["error_description"].as_str().unwrap().contains("another transaction"));
        expect_error(
            by_phone(json!({ "approval_data": { "transaction_id": "tx-1", "sum": "2000" } })).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        let ok = by_phone(json!({ "approval_data": approval })).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let tokens: Value = ok.json().await.unwrap();
        assert_eq!(jwt_payload(tokens["id_token"].as_str().unwrap())["amr"], json!(["otp", "sms"]));
    }
}

on_both_backends! {
    async fn sends_are_limited_per_address_without_telling_who_exists(backend: Backend) {
        let server = server_with_alice(backend).await;
        let client = backend_client(&server, AuthMethod::ClientSecretPost).await;
        for _ in 0..5 {
            send_otp(&server, &client, json!({})).await;
        }
        let response = client
            .post_json(
                &server,
                "/backend-auth/otp/send",
                json!({ "identifier_type": "email", "identifier": "ALICE@example.com" }),
            )
            .await;
        assert!(response.headers().contains_key("retry-after"));
        expect_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;

        // An unknown address gets the same answer as a user's (and nothing
        // is stored for it).
        let response = client
            .post_json(
                &server,
                "/backend-auth/otp/send",
                json!({ "identifier_type": "email", "identifier": "nobody@example.com" }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["message"], "OTP sent");
        assert!(answer["code"].is_string());
        // Guessing answers as for a user: wrong, wrong, then "maximum number
        // of attempts" (a decoy code counts the tries).
        let guess = |passcode: &'static str| {
            client.post_json(
                &server,
                "/backend-auth/otp/authenticate",
                json!({ "passcode": passcode, "identifier_type": "email",
                        "identifier": "nobody@example.com" }),
            )
        };
        for expected in [
            "Wrong email or verification code.",
            "Wrong email or verification code.",
            "You've reached the maximum number of attempts. Please try to login again.",
        ] {
            let body = expect_error(guess("000000").await, StatusCode::BAD_REQUEST, "invalid_grant").await;
            assert_eq!(body["error_description"], expected);
        }

        // Sending a user's code to another address needs the operator's
        // permission (the client below has none).
        let plain = TestClient::register_with_grants(
            server.store(),
            AuthMethod::ClientSecretPost,
            TokenAlg::RS256,
            &[PASSWORDLESS_OTP_GRANT_TYPE],
        )
        .await;
        let response = plain
            .post_json(
                &server,
                "/backend-auth/otp/send",
                json!({ "identifier_type": "email", "identifier": "bob@example.com",
                        "custom_email": "attacker@evil.example" }),
            )
            .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(body["error_description"].as_str().unwrap().contains("permission"), "{body}");
    }
}

on_both_backends! {
    async fn json_bodies_are_strict_and_the_same_as_forms(backend: Backend) {
        let server = server_with_alice(backend).await;
        let client = backend_client(&server, AuthMethod::ClientSecretBasic).await;
        let raw = |body: &'static str| {
            let Credentials(id, secret) = credentials(&client);
            server
                .http
                .post(server.url("/backend-auth/otp/send"))
                .basic_auth(id, Some(secret))
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        for (body, needle) in [
            (r#"{"identifier_type":"email","identifier":"a@example.com","identifier":"b@example.com"}"#, "repeated"),
            (r#"{"identifier_type":"email","identifier":{"value":"a@example.com"}}"#, "must be a string"),
            (r#"{"identifier_type":"email","identifier":"a@example.com","approval_data":{"transaction_id":"t","sum":200}}"#, "approval_data"),
            (r#"{"identifier_type":"email","identifier":"a@example.com","email_content":{"primaryColor":"red"}}"#, "email_content"),
            (r##"{"identifier_type":"email","identifier":"a@example.com","email_content":{"colour":"#fff"}}"##, "email_content"),
            (r#"["identifier_type"]"#, "JSON object"),
            (r#"{"identifier_type":"email""#, "not valid JSON"),
        ] {
            let body = expect_error(raw(body).await.unwrap(), StatusCode::BAD_REQUEST, "invalid_request").await;
            assert!(
                body["error_description"].as_str().unwrap().contains(needle),
                "{needle}: {body}"
            );
        }
        // Another media type.
        let Credentials(id, secret) = credentials(&client);
        let response = server
            .http
            .post(server.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .header("content-type", "text/plain")
            .body("grant_type=refresh_token")
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        // The magic link API: an unregistered redirect URI.
        let response = client
            .post_json(
                &server,
                "/backend-auth/magic-link/send",
                json!({ "email": ALICE_EMAIL, "redirect_uri": "https://evil.example/cb" }),
            )
            .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(body["error_description"].as_str().unwrap().contains("not registered"));
        // org_id is refused rather than ignored.
        let response = authenticate(&server, &client, "123456", json!({ "org_id": "org_1" })).await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

struct Credentials(String, String);

fn credentials(client: &TestClient) -> Credentials {
    match &client.credentials {
        assent_tests::client::Credentials::SecretBasic(secret)
        | assent_tests::client::Credentials::SecretPost(secret) => {
            Credentials(client.client_id.clone(), secret.clone())
        }
        assent_tests::client::Credentials::PrivateKeyJwt { .. } => panic!("a secret client"),
    }
}

on_both_backends! {
    async fn revocation_ends_the_refresh_token_family_and_tells_no_one_anything(backend: Backend) {
        let server = server_with_alice(backend).await;
        let client = backend_client(&server, AuthMethod::ClientSecretPost).await;
        let other = backend_client(&server, AuthMethod::ClientSecretPost).await;
        let code = send_otp(&server, &client, json!({})).await;
        let tokens: Value = authenticate(&server, &client, &code, json!({})).await.json().await.unwrap();
        let first = tokens["refresh_token"].as_str().unwrap().to_string();
        // Rotate once: the family now has two tokens.
        let refreshed: Value = client
            .post_json(&server, "/oauth/token", json!({ "grant_type": "refresh_token", "refresh_token": first }))
            .await
            .json()
            .await
            .unwrap();
        let second = refreshed["refresh_token"].as_str().unwrap().to_string();

        // Another client's revocation of it: 200, and nothing happens.
        let response = other.post_json(&server, "/oauth/revoke", json!({ "token": second })).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "");
        // Unknown tokens: 200 too.
        for token in ["nope", &"x".repeat(300)] {
            let response = client.post_json(&server, "/oauth/revoke", json!({ "token": token })).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        // An access token cannot be revoked, and the answer says so.
        let response = client
            .post(&server, "/oauth/revoke", &[("token", tokens["access_token"].as_str().unwrap())])
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, "unsupported_token_type").await;
        let response = client.post(&server, "/oauth/revoke", &[]).await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;

        // The holder revokes (form-encoded this time): the whole family ends.
        let response = client.post(&server, "/oauth/revoke", &[("token", &second), ("token_type_hint", "refresh_token")]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = client
            .post(&server, "/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", &second)])
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;

        let discovery: Value = server
            .http
            .get(server.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(discovery["revocation_endpoint"], server.url("/oauth/revoke"));
    }
}

on_both_backends! {
    /// `/bc-authorize` and `/oauth/token` take JSON too, with client
    /// authentication by `client_assertion` in the body, numbers where a
    /// form would carry digits and `authorization_details` as a structure.
    async fn ciba_takes_json_with_a_client_assertion(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "ivan", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::PrivateKeyJwt, TokenAlg::ES256).await;
        let response = client
            .post_json(
                &server,
                "/bc-authorize",
                json!({
                    "scope": "openid",
                    "login_hint": "ivan",
                    "binding_message": "Order 77",
                    "requested_expiry": 120,
                    "authorization_details": [{ "type": "payment_initiation", "amount": 12.5 }],
                }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let ack: Value = response.json().await.unwrap();
        assert_eq!(ack["expires_in"], 120);
        let id = ack["auth_req_id"].as_str().unwrap();
        let poll = client
            .post_json(&server, "/oauth/token", json!({ "grant_type": CIBA_GRANT_TYPE, "auth_req_id": id }))
            .await;
        expect_error(poll, StatusCode::BAD_REQUEST, "authorization_pending").await;
        // The same validation as a form: a structure where text belongs.
        let response = client
            .post_json(
                &server,
                "/bc-authorize",
                json!({ "scope": "openid", "login_hint": { "sub": "ivan" }, "binding_message": "x" }),
            )
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}
