//! Registered APIs and client grants: a client gets access tokens only for
//! the APIs and scopes it was granted, an access token's `aud` is never a
//! client id, and access tokens are signed with keys of their own, so none
//! passes for an ID token (RFC 9068 4, RFC 8725 2.8). On both databases.

use std::time::Duration;

use assent_server::{client_auth::AuthMethod, decision::Decision, keys::TokenAlg};
use assent_shared::{error::OAuthErrorCode, oauth::REFRESH_TOKEN_GRANT_TYPE};
use assent_tests::{
    client::{create_user, expect_error},
    count, decide, get_json, jwt_payload, on_both_backends,
    process::{run_cli, run_cli_json, server_command},
    TestClient, TestServer,
};
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

const BANK: &str = "https://api.bank.example";

/// Verifies `token` with the server's JWKS as a relying party would, for
/// `audience`; the error when it does not pass.
fn validate(jwks: &JwkSet, token: &str, issuer: &str, audience: &str) -> Result<Value, String> {
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let jwk = jwks
        .find(header.kid.as_deref().unwrap_or_default())
        .ok_or("unknown kid")?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// `/bc-authorize` for alice with `scope` and, if given, `audience`.
async fn ask(
    server: &TestServer,
    client: &TestClient,
    scope: &str,
    audience: Option<String>,
) -> reqwest::Response {
    let mut params = vec![
        ("scope", scope),
        ("login_hint", "alice"),
        ("binding_message", "Balance check"),
    ];
    if let Some(audience) = &audience {
        params.push(("audience", audience.as_str()));
    }
    client.bc_authorize(server, &params).await
}

on_both_backends! {
    async fn clients_get_tokens_only_for_the_apis_and_scopes_they_were_granted(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        let url = server.db.url.clone();
        create_user(server.store(), "alice", None, None).await;
        let a = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let b = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let requests = || count(server.store(), "SELECT count(*) FROM auth_requests");
        let created = run_cli_json(&url, &["api", "create", "--identifier", BANK, "--name", "Bank API",
            "--scope", "read:balance write:payments", "--scope", "read:balance", "--json"]).await;
        assert_eq!(created["scopes"], serde_json::json!(["read:balance", "write:payments"]));
        // An identifier is an absolute URI: never a client id.
        for bad in [b.client_id.as_str(), "api bank", "openid"] {
            let out = server_command(&url).args(["api", "create", "--identifier", bad, "--name", "X"]).output().await.unwrap();
            assert!(!out.status.success());
            assert!(String::from_utf8_lossy(&out.stderr).contains("absolute URI"), "{bad}");
        }

        // Nothing granted yet: the API, another client's id, and a custom
        // scope without an audience are all refused, and nothing is stored.
        expect_error(ask(&server, &a, "openid", Some(BANK.into())).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidTarget).await;
        expect_error(ask(&server, &a, "openid", Some(b.client_id.clone())).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidTarget).await;
        expect_error(ask(&server, &a, "openid", Some("https://unknown.example".into())).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidTarget).await;
        expect_error(ask(&server, &a, "openid read:balance", None).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidScope).await;
        assert_eq!(requests().await, 0);

        // Granted read:balance only.
        run_cli(&url, &["api", "grant", BANK, "--client", &a.client_id, "--scope", "read:balance"]).await;
        let out = server_command(&url).args(["api", "grant", BANK, "--client", &a.client_id, "--scope", "transfer:all"]).output().await.unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("defines no scope"));
        expect_error(ask(&server, &a, "openid write:payments", Some(BANK.into())).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidScope).await;
        expect_error(ask(&server, &b, "openid read:balance", Some(BANK.into())).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidTarget).await;
        assert_eq!(requests().await, 0);
        let listed = run_cli_json(&url, &["api", "list", "--json"]).await;
        assert_eq!(listed[0]["grants"][0]["client_id"], a.client_id.as_str());
        assert_eq!(listed[0]["grants"][0]["scopes"], serde_json::json!(["read:balance"]));

        let response = ask(&server, &a, "openid offline_access read:balance", Some(BANK.into())).await;
        assert_eq!(response.status(), StatusCode::OK);
        let ack: Value = response.json().await.unwrap();
        let auth_req_id = ack["auth_req_id"].as_str().unwrap();
        decide(server.store(), auth_req_id, "alice", Decision::Approve).await.unwrap();
        server.advance_clock(Duration::from_millis(1100));
        let tokens: Value = a.poll(&server, auth_req_id).await.json().await.unwrap();
        let (access, id) = (tokens["access_token"].as_str().unwrap(), tokens["id_token"].as_str().unwrap());
        assert_eq!(tokens["scope"], "openid offline_access read:balance");

        let claims = jwt_payload(access);
        assert_eq!(claims["aud"], serde_json::json!([BANK, server.url("/userinfo")]));
        assert_eq!(jwt_payload(id)["azp"], a.client_id.as_str());
        let (access_header, id_header) = (decode_header(access).unwrap(), decode_header(id).unwrap());
        assert_eq!(access_header.typ.as_deref(), Some("at+jwt"));
        assert_ne!(access_header.kid, id_header.kid, "access tokens have a key of their own");

        // The resource server accepts it; no client takes it for an ID token.
        let jwks: JwkSet = serde_json::from_value(get_json(&server.http, &server.url("/.well-known/jwks.json")).await).unwrap();
        let issuer = server.issuer().to_string();
        assert_eq!(validate(&jwks, access, &issuer, BANK).unwrap()["sub"], "alice");
        assert!(validate(&jwks, access, &issuer, &a.client_id).is_err());
        assert!(validate(&jwks, access, &issuer, &b.client_id).is_err());
        assert_eq!(validate(&jwks, id, &issuer, &a.client_id).unwrap()["sub"], "alice");
        // /userinfo takes the access token and refuses the ID token.
        let r = server.http.get(server.url("/userinfo")).bearer_auth(id).send().await.unwrap();
        expect_error(r, StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidToken).await;

        // Taking the API away: refreshing for it and asking again both stop.
        run_cli(&url, &["api", "revoke", BANK, "--client", &a.client_id]).await;
        let refresh = a.post(&server, "/oauth/token", &[
            ("grant_type", REFRESH_TOKEN_GRANT_TYPE),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ]).await;
        expect_error(refresh, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant).await;
        expect_error(ask(&server, &a, "openid read:balance", Some(BANK.into())).await, StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidTarget).await;

        // Deleting the API deletes its grants.
        run_cli(&url, &["api", "grant", BANK, "--client", &b.client_id]).await;
        run_cli(&url, &["api", "delete", BANK]).await;
        assert_eq!(count(server.store(), "SELECT count(*) FROM client_grants").await, 0);
        assert_eq!(run_cli_json(&url, &["api", "list", "--json"]).await, serde_json::json!([]));
    }
}
