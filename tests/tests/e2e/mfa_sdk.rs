//! Auth0's MFA API driven by Auth0's own SDK, unmodified:
//! `@auth0/auth0-auth-js` (its AuthClient is the Auth0 SDK with the MFA
//! API; auth0-python 6.8.0 and npm auth0 6.4.0 have none), each call a
//! child process (tests/src/sdk.rs), against a server behind a TLS proxy,
//! with the real `assent-device` binary as the user's phone (it trusts the
//! proxy's throwaway CA through `ASSENT_CA_FILE`). The first factor is
//! the SDK's passwordless e-mail login, its code read from a real SMTP
//! server's mailbox.
//!
//! One user's story: a TOTP app as the first factor (the secret from the
//! SDK, codes computed here), a token of the MFA API from a login that
//! passed MFA, which enrolls an Assent device, push approvals on that
//! device, the recovery code, and removing a factor.

use std::time::Duration;

use assent_server::{
    mfa::{MFA_OOB_GRANT, MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT},
    storage::{ClientChanges, MfaPolicy, NumberMatching},
};
use assent_shared::oauth::{PASSWORDLESS_OTP_GRANT_TYPE, REFRESH_TOKEN_GRANT_TYPE};
use assent_tests::{
    client::create_user_without_device,
    jwt_payload, on_both_backends,
    otp::{six_digits, totp},
    process::run_device_with_env,
    sdk::{Auth0Sdk, DeliveryServer},
};
use serde_json::{json, Value};
use totp_rs::TOTP;

const ALICE: &str = "auth0|alice";
const ALICE_EMAIL: &str = "alice@example.com";
const WAIT: Duration = Duration::from_secs(30);

async fn mfa_server(backend: assent_tests::Backend) -> DeliveryServer {
    let env = DeliveryServer::start_with(
        backend,
        &[
            PASSWORDLESS_OTP_GRANT_TYPE,
            REFRESH_TOKEN_GRANT_TYPE,
            MFA_OTP_GRANT,
            MFA_OOB_GRANT,
            MFA_RECOVERY_CODE_GRANT,
        ],
        // Alice signs in eight times in a few seconds.
        |s, _, _| s.passwordless.sends_per_recipient = 20,
    )
    .await;
    let server = &env.sdk.server;
    assent_server::clients::update(
        server.store(),
        &env.sdk.client.client_id,
        ClientChanges {
            mfa_policy: Some(MfaPolicy::Required),
            // Auth0's SDK does not pass the challenge's match_code on (its
            // ChallengeResponse has no such field): an application built
            // on it cannot show one, so its client does without.
            number_matching: Some(NumberMatching::Off),
            ..ClientChanges::default()
        },
        Some(&server.assent().clients),
    )
    .await
    .unwrap();
    create_user_without_device(server.store(), ALICE, Some(ALICE_EMAIL), Some("Alice")).await;
    env
}

/// A passwordless e-mail login through the SDK; the `mfa_token` of its
/// `mfa_required` answer.
async fn first_factor(env: &DeliveryServer, sdk: &Auth0Sdk, extra: &[&str]) -> String {
    sdk.ok(&["send-email-code", "--email", ALICE_EMAIL]).await;
    let mail = env.smtp.next_message(WAIT).await;
    let code = six_digits(mail.text_body.as_deref().expect("a text part"));
    let mut args = vec!["login-email", "--email", ALICE_EMAIL, "--code", &code];
    args.extend(extra);
    let refused = sdk.err(&args, 403, "mfa_required").await;
    refused["mfa_token"]
        .as_str()
        .expect("the SDK hands over the mfa_token")
        .to_string()
}

/// The ID token's `amr` of an SDK token response.
fn amr(tokens: &Value) -> Value {
    jwt_payload(tokens["idToken"].as_str().expect("an ID token"))["amr"].clone()
}

on_both_backends! {
    async fn auth0s_sdk_enrolls_and_uses_totp_push_and_recovery_codes(backend: Backend) {
        let env = mfa_server(backend).await;
        let server = &env.sdk.server;
        let sdk = env.sdk.auth_js();
        let otp_now = |totp: &TOTP| totp.generate(server.assent().clock.now_secs() as u64);

        // First factor only: enroll a TOTP app with the mfa_token.
        let token = first_factor(&env, &sdk, &["--scope", "openid profile email"]).await;
        assert_eq!(sdk.ok(&["mfa-list", "--mfa-token", &token]).await, json!([]));
        let enrolled = sdk.ok(&["mfa-enroll", "--mfa-token", &token, "--authenticator-type", "otp"]).await;
        assert_eq!(enrolled["authenticatorType"], "otp");
        assert!(enrolled["barcodeUri"].as_str().unwrap().starts_with("otpauth://totp/"));
        let recovery = enrolled["recoveryCodes"][0].as_str().expect("a recovery code").to_string();
        let app = totp(enrolled["secret"].as_str().unwrap());
        let tokens = sdk.ok(&["mfa-verify", "--mfa-token", &token, "--factor", "otp", "--otp", &otp_now(&app)]).await;
        assert_eq!(amr(&tokens), json!(["otp", "mfa"]));
        assert_eq!(jwt_payload(tokens["idToken"].as_str().unwrap())["sub"], ALICE);

        // A login for the MFA API itself, completed with the next code.
        let mfa_api = format!("{}mfa/", env.sdk.issuer());
        let token = first_factor(
            &env,
            &sdk,
            &["--audience", &mfa_api, "--scope", "openid enroll read:authenticators remove:authenticators"],
        )
        .await;
        let challenge = sdk.ok(&["mfa-challenge", "--mfa-token", &token, "--challenge-type", "otp"]).await;
        assert_eq!(challenge["challengeType"], "otp");
        // (The next step's code: the step of the first one is spent, and
        // the server takes one step of drift. The server's clock is not
        // moved: the device's signed decisions carry the real time.)
        let next = app.generate(server.assent().clock.now_secs() as u64 + 30);
        let tokens = sdk.ok(&["mfa-verify", "--mfa-token", &token, "--factor", "otp", "--otp", &next]).await;
        let access_token = tokens["accessToken"].as_str().unwrap().to_string();
        assert!(jwt_payload(&access_token)["aud"].as_array().unwrap().contains(&json!(mfa_api)));

        // Its access token enrolls a phone running Assent (the mfa_token
        // alone may not, now that Alice has a factor).
        let refused = sdk
            .err(&["mfa-enroll", "--mfa-token", &first_factor(&env, &sdk, &[]).await,
                   "--authenticator-type", "oob", "--oob-channel", "auth0"], 403, "access_denied")
            .await;
        assert!(refused["error_description"].as_str().unwrap().starts_with("User is already enrolled"));
        let enrolled = sdk
            .ok(&["mfa-enroll", "--mfa-token", &access_token, "--authenticator-type", "oob", "--oob-channel", "auth0"])
            .await;
        assert_eq!(enrolled["oobChannel"], "auth0");
        let link = enrolled["barcodeUri"].as_str().unwrap();
        assert!(link.starts_with("assent://enroll?"), "{link}");
        let phone = tempfile::tempdir().unwrap();
        let ca = [("ASSENT_CA_FILE", env.sdk.proxy.ca_pem_path())];
        let (ok, out, err) = run_device_with_env(phone.path(), &["enroll", link, "--name", "Alice's phone"], &ca).await;
        assert!(ok, "{out} {err}");

        // Every later login: a push to the phone, approved there.
        let token = first_factor(&env, &sdk, &["--scope", "openid profile email offline_access"]).await;
        let listed = sdk.ok(&["mfa-list", "--mfa-token", &token]).await;
        let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert!(ids[0].starts_with("push|") && ids[1].starts_with("totp|") && ids[2].starts_with("recovery-code|"), "{listed}");
        let challenge = sdk.ok(&["mfa-challenge", "--mfa-token", &token, "--challenge-type", "oob"]).await;
        assert_eq!(challenge["challengeType"], "oob");
        let oob_code = challenge["oobCode"].as_str().unwrap().to_string();
        let verify = ["mfa-verify", "--mfa-token", &token, "--factor", "oob", "--oob-code", &oob_code];
        sdk.err(&verify, 400, "authorization_pending").await;
        let (ok, out, err) = run_device_with_env(phone.path(), &["pending"], &ca).await;
        assert!(ok, "{out} {err}");
        assert!(out.to_string().contains("Sign in to"), "{out}");
        let (ok, out, err) = run_device_with_env(phone.path(), &["approve", "--next"], &ca).await;
        assert!(ok, "{out} {err}");
        server.advance_clock(Duration::from_secs(2));
        let tokens = sdk.ok(&verify).await;
        let methods = amr(&tokens);
        assert!(methods.as_array().unwrap().contains(&json!("mfa")) && methods.as_array().unwrap().contains(&json!("oob")), "{methods}");
        assert!(tokens["refreshToken"].is_string());
        // Once.
        sdk.err(&verify, 400, "invalid_grant").await;

        // A denied push.
        let token = first_factor(&env, &sdk, &[]).await;
        let challenge = sdk.ok(&["mfa-challenge", "--mfa-token", &token, "--challenge-type", "oob"]).await;
        let (ok, out, err) = run_device_with_env(phone.path(), &["deny", "--next"], &ca).await;
        assert!(ok, "{out} {err}");
        server.advance_clock(Duration::from_secs(2));
        let denied = sdk
            .err(&["mfa-verify", "--mfa-token", &token, "--factor", "oob", "--oob-code",
                   challenge["oobCode"].as_str().unwrap()], 400, "invalid_grant")
            .await;
        assert_eq!(denied["error_description"], "MFA Authorization rejected.");

        // The recovery code: once, and the answer brings the next one.
        let token = first_factor(&env, &sdk, &[]).await;
        let tokens = sdk.ok(&["mfa-verify", "--mfa-token", &token, "--factor", "recovery-code", "--recovery-code", &recovery]).await;
        assert_eq!(amr(&tokens), json!(["otp", "mfa", "recovery-code"]));
        let renewed = tokens["recoveryCode"].as_str().expect("a new recovery code");
        assert_ne!(renewed, recovery);
        let token = first_factor(&env, &sdk, &[]).await;
        sdk.err(&["mfa-verify", "--mfa-token", &token, "--factor", "recovery-code", "--recovery-code", &recovery], 400, "invalid_grant").await;

        // Removing the TOTP app: not with the mfa_token, with the MFA API's token.
        let totp_id = ids[1].to_string();
        sdk.err(&["mfa-delete", "--mfa-token", &token, "--authenticator-id", &totp_id], 403, "insufficient_scope").await;
        sdk.ok(&["mfa-delete", "--mfa-token", &access_token, "--authenticator-id", &totp_id]).await;
        let listed = sdk.ok(&["mfa-list", "--mfa-token", &token]).await;
        assert!(listed.as_array().unwrap().iter().all(|a| a["id"] != totp_id.as_str()), "{listed}");
    }
}
