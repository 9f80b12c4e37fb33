//! The server's signing keys: sealed at rest by the key-encryption key,
//! rotated by `assent-server keys rotate` (published before they sign,
//! kept for verification after), and the device challenge key rolled over
//! without enrolling devices again. On SQLite and PostgreSQL.

use std::time::Duration;

use assent_server::{
    client_auth::AuthMethod,
    decision::Decision,
    kek::KeyEncryptionKey,
    keys::{SigningKey, TokenAlg},
    secrets::b64url_decode,
};
use assent_shared::oauth::TokenResponse;
use assent_tests::{
    client::create_user_without_device,
    decide, fetch_text, fetch_text_rows, get_json, jwt_payload, on_both_backends,
    process::{cli_enrollment_link, run_cli_json, run_device, server_command, ServeProcess},
    userinfo, Backend, TestClient, TestDb, TestServer,
};
use serde_json::Value;

/// The `kid` in a JWS header.
fn kid_of(jws: &str) -> String {
    let header = b64url_decode(jws.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn jwks_kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// One approved CIBA cycle; the token response.
async fn tokens(server: &TestServer, client: &TestClient) -> TokenResponse {
    let ack = client.start(server, "alice", "openid").await;
    let auth_req_id = ack["auth_req_id"].as_str().unwrap();
    decide(server.store(), auth_req_id, "alice", Decision::Approve)
        .await
        .unwrap();
    server.advance_clock(Duration::from_secs(2));
    client.poll(server, auth_req_id).await.json().await.unwrap()
}

/// Rebuilds the running server's keys now, as its timer would.
async fn reload_keys(server: &TestServer) {
    server
        .assent()
        .keys
        .refresh(server.store(), &server.assent().clock)
        .await
        .unwrap();
}

/// `serve` on `db` with `env`, expected to refuse to start; its stderr.
async fn serve_refused(db: &TestDb, env: &[(&str, &str)], remove: &[&str]) -> String {
    let mut cmd = server_command(&db.url);
    cmd.arg("serve").env("ASSENT_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the server refuses at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "started although it should not: {stderr}"
    );
    stderr
}

on_both_backends! {
    async fn signing_keys_are_sealed_at_rest_and_open_only_with_their_key_encryption_key(backend: Backend) {
        let db = TestDb::create(backend).await;
        let server = ServeProcess::start(&db.url, &[]).await;
        let http = reqwest::Client::new();
        let jwks_before = jwks_kids(&get_json(&http, &format!("{}/.well-known/jwks.json", server.base_url)).await);
        // ID and access keys, RS256 and ES256 each.
        assert_eq!(jwks_before.len(), 4, "{jwks_before:?}");
        server.terminate().await;

        // No private key is in clear: every row names the key-encryption
        // key that sealed it, and what is stored is no PKCS#8 document.
        let store = assent_server::storage::Store::connect(&db.url, 1).await.unwrap();
        let rows = fetch_text_rows(&store, "SELECT kid, alg, private_key_pkcs8, kek_id FROM signing_keys").await;
        assert_eq!(rows.len(), 6, "ID and access keys (RS256, ES256), device and VAPID keys");
        let kek_id = rows[0][3].clone().expect("sealed");
        for row in &rows {
            assert_eq!(row[3].as_deref(), Some(kek_id.as_str()), "{row:?}");
            let stored = b64url_decode(row[2].as_deref().unwrap()).unwrap();
            let alg: TokenAlg = row[1].as_deref().unwrap().parse().unwrap();
            assert!(SigningKey::from_pkcs8(alg, &stored).is_err(), "{row:?} is stored in clear");
            // No PKCS#8 document at any offset either (a SEQUENCE with a
            // long-form length, then the version INTEGER 0 or 1): one behind
            // a prefix would still be in clear. The first byte alone proves
            // nothing: it is the random nonce's.
            let pkcs8_at = |i: usize| {
                let w = &stored[i..];
                let version_at = match w {
                    [0x30, 0x81, ..] => 3,
                    [0x30, 0x82, ..] => 4,
                    _ => return false,
                };
                w.len() > version_at + 2 && w[version_at..version_at + 2] == [0x02, 0x01] && w[version_at + 2] <= 1
            };
            assert!(!(0..stored.len()).any(pkcs8_at), "{row:?} holds a PKCS#8 document");
        }
        store.close().await;

        if backend == Backend::Sqlite {
            // Generated on first start beside the database, owner-only.
            use std::os::unix::fs::PermissionsExt;
            let path = db.url.trim_start_matches("sqlite://").replace("assent.db", "assent.kek");
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{path}");
        }

        // A lost key file is not replaced by a new key, which would open
        // nothing: the server refuses and says to restore it.
        if backend == Backend::Sqlite {
            let path = db.url.trim_start_matches("sqlite://").replace("assent.db", "assent.kek");
            let aside = format!("{path}.aside");
            std::fs::rename(&path, &aside).unwrap();
            let refused = serve_refused(&db, &[], &[]).await;
            assert!(refused.contains("Restore the file"), "{refused}");
            assert!(!std::path::Path::new(&path).exists(), "no new key was made");
            std::fs::rename(&aside, &path).unwrap();
        }

        // Another key-encryption key opens nothing: the server says which
        // key sealed the keys and how to give it.
        let (_, wrong) = KeyEncryptionKey::generate();
        let refused = serve_refused(&db, &[("ASSENT_KEY_ENCRYPTION_KEY", &wrong)], &["ASSENT_KEY_ENCRYPTION_KEY_FILE"]).await;
        assert!(refused.contains(&kek_id) && refused.contains("ASSENT_KEY_ENCRYPTION_KEY"), "{refused}");
        assert!(!refused.contains(&wrong), "the key itself is never printed: {refused}");
        // A key of the wrong size is refused as such.
        let refused = serve_refused(&db, &[("ASSENT_KEY_ENCRYPTION_KEY", "c2hvcnQ")], &["ASSENT_KEY_ENCRYPTION_KEY_FILE"]).await;
        assert!(refused.contains("32 bytes"), "{refused}");

        // Changing the key-encryption key: the new one in the environment,
        // the old one as the previous; the keys are sealed anew, unchanged.
        let old_file = match backend {
            Backend::Sqlite => db.url.trim_start_matches("sqlite://").replace("assent.db", "assent.kek"),
            Backend::Postgres => assent_tests::db::postgres_kek_file(&db.url).unwrap().display().to_string(),
        };
        let (new, new_text) = KeyEncryptionKey::generate();
        let keys_dir = assent_tests::db::private_tempdir();
        let new_file = keys_dir.path().join("new.kek").display().to_string();
        assent_device::state::write_private(std::path::Path::new(&new_file), new_text.as_bytes()).unwrap();
        let server = ServeProcess::start(&db.url, &[
            ("ASSENT_KEY_ENCRYPTION_KEY_FILE", &new_file),
            ("ASSENT_PREVIOUS_KEY_ENCRYPTION_KEY_FILE", &old_file),
        ]).await;
        server.terminate().await;
        let listed = run_cli_json(&db.url, &["keys", "list", "--json"]).await;
        for key in listed.as_array().unwrap() {
            assert_eq!(key["sealed_by"], new.id(), "{key}");
        }
        // From now on the new key alone opens them, and they are the same keys.
        std::fs::remove_file(&old_file).unwrap();
        let server = ServeProcess::start(&db.url, &[("ASSENT_KEY_ENCRYPTION_KEY_FILE", &new_file)]).await;
        let jwks_after = jwks_kids(&get_json(&http, &format!("{}/.well-known/jwks.json", server.base_url)).await);
        assert_eq!(jwks_after, jwks_before);
        server.terminate().await;
    }
}

on_both_backends! {
    async fn rotated_token_keys_are_published_before_they_sign_and_verify_after(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        assent_tests::client::create_user(server.store(), "alice", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let jwks_url = server.url("/.well-known/jwks.json");
        let first = tokens(&server, &client).await;
        let (old_id_kid, old_access_kid) = (kid_of(&first.id_token), kid_of(&first.access_token));
        assert_ne!(old_id_kid, old_access_kid, "access tokens have a key of their own");

        let made = run_cli_json(&server.db.url, &["keys", "rotate", "--json"]).await;
        let made = made.as_array().unwrap();
        assert_eq!(made.len(), 4, "ID and access keys, RS256 and ES256: {made:?}");
        let new_kid = |purpose: &str| {
            made.iter()
                .find(|k| k["purpose"] == purpose && k["alg"] == "ES256")
                .unwrap()["kid"].as_str().unwrap().to_string()
        };
        let (new_id_kid, new_access_kid) = (new_kid("token"), new_kid("access"));
        // A second rotation while one waits is refused.
        let again = server_command(&server.db.url).args(["keys", "rotate"]).output().await.unwrap();
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already waiting"));

        // Published at once, signing only later.
        reload_keys(&server).await;
        let kids = jwks_kids(&get_json(&server.http, &jwks_url).await);
        for kid in [&old_id_kid, &old_access_kid, &new_id_kid, &new_access_kid] {
            assert!(kids.contains(kid), "{kid} not in {kids:?}");
        }
        let during = tokens(&server, &client).await;
        assert_eq!(kid_of(&during.id_token), old_id_kid);
        let listed = run_cli_json(&server.db.url, &["keys", "list", "--json"]).await;
        let state_of = |kid: &str| listed.as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap()["state"].clone();
        assert_eq!(state_of(&new_id_kid), "upcoming");
        assert_eq!(state_of(&old_id_kid), "signing");

        // After the activation time the new keys sign; the old ones still
        // verify what they signed.
        server.advance_clock(Duration::from_secs(601));
        reload_keys(&server).await;
        let after = tokens(&server, &client).await;
        assert_eq!(kid_of(&after.id_token), new_id_kid);
        assert_eq!(kid_of(&after.access_token), new_access_kid);
        assert_eq!(userinfo(&server.http, &server.url("/userinfo"), &after.access_token).await["sub"], "alice");
        assert_eq!(userinfo(&server.http, &server.url("/userinfo"), &during.access_token).await["sub"], "alice");
        assert_eq!(jwt_payload(&after.id_token)["azp"], client.client_id);
        let kids = jwks_kids(&get_json(&server.http, &jwks_url).await);
        assert!(kids.contains(&old_id_kid) && kids.contains(&new_id_kid), "{kids:?}");

        // Once everything the old keys signed has expired (1 h tokens, plus
        // the JWKS cache), they leave the JWKS; a day later, the database.
        server.advance_clock(Duration::from_secs(3600 + 300));
        reload_keys(&server).await;
        let kids = jwks_kids(&get_json(&server.http, &jwks_url).await);
        assert!(!kids.contains(&old_id_kid) && !kids.contains(&old_access_kid), "{kids:?}");
        assert!(kids.contains(&new_id_kid) && kids.contains(&new_access_kid));
        assert_eq!(kids.len(), 4);
        let count_sql = |kid: &str| format!("SELECT count(*) FROM signing_keys WHERE kid = '{kid}'");
        assert_eq!(assent_tests::count(server.store(), &count_sql(&old_id_kid)).await, 1);
        server.advance_clock(Duration::from_secs(24 * 3600));
        reload_keys(&server).await;
        assert_eq!(assent_tests::count(server.store(), &count_sql(&old_id_kid)).await, 0);
        assert_eq!(assent_tests::count(server.store(), &count_sql(&new_id_kid)).await, 1);
    }
}

on_both_backends! {
    async fn devices_follow_a_rotated_challenge_key_without_enrolling_again(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user_without_device(server.store(), "alice", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let state = tempfile::tempdir().unwrap();
        let state = state.path().join("alice");
        let uri = cli_enrollment_link(&server.db.url, server.issuer(), "alice").await;
        let (ok, _, err) = run_device(&state, &["enroll", &uri]).await;
        assert!(ok, "{err}");
        let account = || -> Value { serde_json::from_slice(&std::fs::read(state.join("account.json")).unwrap()).unwrap() };
        let pinned = account()["server_key"].clone();
        let old_kid = server.assent().keys.get().device_key().kid.clone();

        // The device's proofs are checked against the server's clock, so
        // this test waits for real instead of moving the clock on.
        let made = run_cli_json(&server.db.url, &["keys", "rotate", "--purpose", "device", "--activate-in", "4", "--json"]).await;
        let new_kid = made[0]["kid"].as_str().unwrap().to_string();
        reload_keys(&server).await;
        // Before it activates, the old key signs and the device stays put,
        // although the list already carries the endorsement.
        let before = client.start(&server, "alice", "openid").await;
        let (ok, pending, err) = run_device(&state, &["pending"]).await;
        assert!(ok, "{err}");
        assert_eq!(pending["requests"].as_array().unwrap().len(), 1, "{pending}");
        assert_eq!(account()["server_key"], pinned);
        let signed_by = |auth_req_id: &str| {
            let auth_req_id = auth_req_id.to_string();
            let store = server.store().clone();
            async move {
                let id = assent_tests::request_id(&store, &auth_req_id).await;
                kid_of(&fetch_text(&store, &format!("SELECT challenge_jws FROM auth_requests WHERE id = '{id}'")).await)
            }
        };
        assert_eq!(signed_by(before["auth_req_id"].as_str().unwrap()).await, old_kid);

        // Once it signs, the device checks the request against the key the
        // old one vouched for, pins it, and approves as usual.
        tokio::time::sleep(Duration::from_secs(5)).await;
        reload_keys(&server).await;
        let after = client.start(&server, "alice", "openid").await;
        assert_eq!(signed_by(after["auth_req_id"].as_str().unwrap()).await, new_kid);
        let code = after["match_code"].as_str().unwrap();
        let (ok, decided, err) = run_device(&state, &["approve", "--next", "--code", code]).await;
        assert!(ok, "{err}");
        assert_eq!(decided["status"], "approved", "{decided}");
        assert!(err.contains("new request-signing key"), "{err}");
        let moved = account();
        assert_ne!(moved["server_key"], pinned);
        assert_eq!(moved["previous_server_key"]["key"], pinned);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = client.poll(&server, after["auth_req_id"].as_str().unwrap()).await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);

        // A device pinned to an unrelated key is not led anywhere: it shows
        // nothing the server signs.
        let mut stranger = moved.clone();
        stranger["server_key"] = serde_json::to_value(assent_shared::jose::DeviceKey::generate().public_jwk()).unwrap();
        stranger.as_object_mut().unwrap().remove("previous_server_key");
        std::fs::write(state.join("account.json"), serde_json::to_vec(&stranger).unwrap()).unwrap();
        client.start(&server, "alice", "openid").await;
        let (ok, pending, err) = run_device(&state, &["pending"]).await;
        assert!(ok, "{err}");
        assert_eq!(pending["requests"].as_array().unwrap().len(), 0, "{pending}");
        assert_eq!(pending["rejected"], pending["total"], "{pending}");
    }
}

/// A passwordless login of alice@example.com through the back-end OTP API
/// of the server at `base` (the client's codes come in the answer); the
/// `mfa_token` of its `mfa_required` answer.
async fn mfa_token_of(http: &reqwest::Client, base: &str, client: &(String, String)) -> String {
    let creds = serde_json::json!({ "client_id": client.0, "client_secret": client.1 });
    let with = |extra: Value| {
        let mut body = creds.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let sent: Value = http
        .post(format!("{base}/backend-auth/otp/send"))
        .json(&with(
            serde_json::json!({ "identifier_type": "email", "identifier": "alice@example.com" }),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused: Value = http
        .post(format!("{base}/backend-auth/otp/authenticate"))
        .json(&with(
            serde_json::json!({ "identifier_type": "email", "identifier": "alice@example.com",
                                        "passcode": sent["code"] }),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    refused["mfa_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{refused}"))
        .to_string()
}

/// `/oauth/token` with an MFA grant and `extra`; the status.
async fn mfa_grant(
    http: &reqwest::Client,
    base: &str,
    client: &(String, String),
    extra: Value,
) -> reqwest::StatusCode {
    let mut body = serde_json::json!({ "client_id": client.0, "client_secret": client.1 });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    http.post(format!("{base}/oauth/token"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

on_both_backends! {
    async fn totp_secrets_and_recovery_codes_survive_a_change_of_key_encryption_key(backend: Backend) {
        let db = TestDb::create(backend).await;
        assent_tests::process::run_cli(&db.url, &["user", "create", "--sub", "auth0|alice", "--email", "alice@example.com"]).await;
        let made = run_cli_json(&db.url, &["client", "create", "--json", "--name", "Shop",
            "--auth-method", "client_secret_post", "--otp-code-in-response", "true", "--mfa", "required",
            "--grant-types", "http://auth0.com/oauth/grant-type/passwordless/otp,http://auth0.com/oauth/grant-type/mfa-otp,http://auth0.com/oauth/grant-type/mfa-recovery-code"]).await;
        let client = (made["client_id"].as_str().unwrap().to_string(), made["client_secret"].as_str().unwrap().to_string());
        let http = reqwest::Client::new();
        let server = ServeProcess::start(&db.url, &[]).await;
        let base = server.base_url.clone();
        let token = mfa_token_of(&http, &base, &client).await;
        let enrolled: Value = http.post(format!("{base}/mfa/associate")).bearer_auth(&token)
            .json(&serde_json::json!({ "authenticator_types": ["otp"] }))
            .send().await.unwrap().json().await.unwrap();
        let app = assent_tests::otp::totp(enrolled["secret"].as_str().unwrap());
        let recovery = enrolled["recovery_codes"][0].as_str().unwrap().to_string();
        let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let otp = |token: &str, at: u64| serde_json::json!({
            "grant_type": "http://auth0.com/oauth/grant-type/mfa-otp", "mfa_token": token, "otp": app.generate(at) });
        assert_eq!(mfa_grant(&http, &base, &client, otp(&token, now())).await, reqwest::StatusCode::OK);
        server.terminate().await;

        // The key-encryption key changes (the TOTP secret is sealed anew at
        // start-up, as the signing keys are), then the old one is gone.
        let old_file = match backend {
            Backend::Sqlite => db.url.trim_start_matches("sqlite://").replace("assent.db", "assent.kek"),
            Backend::Postgres => assent_tests::db::postgres_kek_file(&db.url).unwrap().display().to_string(),
        };
        let (_, new_text) = KeyEncryptionKey::generate();
        let keys_dir = assent_tests::db::private_tempdir();
        let new_file = keys_dir.path().join("new.kek").display().to_string();
        assent_device::state::write_private(std::path::Path::new(&new_file), new_text.as_bytes()).unwrap();
        let server = ServeProcess::start(&db.url, &[
            ("ASSENT_KEY_ENCRYPTION_KEY_FILE", &new_file),
            ("ASSENT_PREVIOUS_KEY_ENCRYPTION_KEY_FILE", &old_file),
        ]).await;
        server.terminate().await;
        std::fs::remove_file(&old_file).unwrap();
        let server = ServeProcess::start(&db.url, &[("ASSENT_KEY_ENCRYPTION_KEY_FILE", &new_file)]).await;
        let base = server.base_url.clone();

        // The app's next code, and the recovery code, still complete logins.
        let token = mfa_token_of(&http, &base, &client).await;
        assert_eq!(mfa_grant(&http, &base, &client, otp(&token, now() + 30)).await, reqwest::StatusCode::OK);
        let token = mfa_token_of(&http, &base, &client).await;
        let recover = serde_json::json!({ "grant_type": "http://auth0.com/oauth/grant-type/mfa-recovery-code",
                                          "mfa_token": token, "recovery_code": recovery });
        assert_eq!(mfa_grant(&http, &base, &client, recover).await, reqwest::StatusCode::OK);
        server.terminate().await;
    }
}
