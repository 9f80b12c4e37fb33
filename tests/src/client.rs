//! A registered OAuth client that talks to a test server over HTTP.

use assent_server::{
    client_auth::AuthMethod,
    clock::now_ms,
    keys::{SigningKey, TokenAlg},
    secrets::{new_secret, random_token, sha256_hex},
    storage::{ClientRow, Store, UserRow},
};
use assent_shared::oauth::{CIBA_GRANT_TYPE, JWT_BEARER_ASSERTION_TYPE, REFRESH_TOKEN_GRANT_TYPE};
use jsonwebtoken::{EncodingKey, Header};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::TestServer;

pub enum Credentials {
    SecretBasic(String),
    SecretPost(String),
    /// PKCS#8 of the client's ES256 key and its `kid`.
    PrivateKeyJwt {
        pkcs8: Vec<u8>,
        kid: String,
    },
}

pub struct TestClient {
    pub client_id: String,
    pub credentials: Credentials,
}

impl TestClient {
    /// Registers a client the way `assent-server client create` does.
    pub async fn register(store: &Store, method: AuthMethod, alg: TokenAlg) -> Self {
        Self::register_with_grants(
            store,
            method,
            alg,
            &[CIBA_GRANT_TYPE, REFRESH_TOKEN_GRANT_TYPE],
        )
        .await
    }

    /// Registers the API `identifier` (if it is not yet) with `scopes`, and
    /// grants this client those scopes of it.
    pub async fn grant_api(&self, store: &Store, identifier: &str, scopes: &[&str]) {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        if store.api(identifier).await.unwrap().is_none() {
            assent_server::apis::create(
                store,
                assent_server::apis::NewApi {
                    identifier: identifier.into(),
                    name: format!("API {identifier}"),
                    scopes: scopes.clone(),
                    mfa_policy: assent_server::storage::MfaPolicy::Off,
                },
            )
            .await
            .unwrap();
        }
        assent_server::apis::grant(store, &self.client_id, identifier, &scopes)
            .await
            .unwrap();
    }

    pub async fn register_with_grants(
        store: &Store,
        method: AuthMethod,
        alg: TokenAlg,
        grants: &[&str],
    ) -> Self {
        let client_id = random_token(16);
        let (credentials, secret_sha256, jwks) = match method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                let secret = new_secret();
                let digest = sha256_hex(&secret);
                let creds = if method == AuthMethod::ClientSecretBasic {
                    Credentials::SecretBasic(secret)
                } else {
                    Credentials::SecretPost(secret)
                };
                (creds, Some(digest), None)
            }
            AuthMethod::PrivateKeyJwt => {
                let (key, pkcs8) = SigningKey::generate(TokenAlg::ES256).unwrap();
                let jwks = json!({ "keys": [key.public_jwk()] }).to_string();
                (
                    Credentials::PrivateKeyJwt {
                        pkcs8,
                        kid: key.kid.clone(),
                    },
                    None,
                    Some(jwks),
                )
            }
        };
        store
            .insert_client(&ClientRow {
                client_id: client_id.clone(),
                name: format!("Test client ({method})"),
                token_endpoint_auth_method: method.as_str().into(),
                secret_sha256,
                jwks,
                id_token_signed_response_alg: alg.as_str().into(),
                grant_types: grants.join(" "),
                created_at: now_ms(),
                number_matching: assent_server::storage::NumberMatching::Required,
                user_verification: assent_server::storage::UserVerificationPolicy::Optional,
                client_uri: None,
                logo_sha256: None,
                redirect_uris: String::new(),
                otp_code_in_response: false,
                mfa_policy: assent_server::storage::MfaPolicy::Off,
            })
            .await
            .unwrap();
        Self {
            client_id,
            credentials,
        }
    }

    /// A `private_key_jwt` assertion for `aud`, with claims overridable by `patch`.
    pub fn assertion_with(&self, aud: &str, patch: impl FnOnce(&mut Value)) -> String {
        let Credentials::PrivateKeyJwt { pkcs8, kid } = &self.credentials else {
            panic!("not a private_key_jwt client");
        };
        let now = now_ms() / 1000;
        let mut claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": aud,
            "iat": now,
            "exp": now + 60,
            "jti": random_token(16),
        });
        patch(&mut claims);
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(pkcs8)).unwrap()
    }

    /// POSTs `params` to `path` with this client's authentication added.
    pub async fn post(&self, server: &TestServer, path: &str, params: &[(&str, &str)]) -> Response {
        let mut form: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut request = server.http.post(server.url(path));
        match &self.credentials {
            Credentials::SecretBasic(secret) => {
                request = request.basic_auth(&self.client_id, Some(secret));
            }
            Credentials::SecretPost(secret) => {
                form.push(("client_id".into(), self.client_id.clone()));
                form.push(("client_secret".into(), secret.clone()));
            }
            Credentials::PrivateKeyJwt { .. } => {
                form.push((
                    "client_assertion_type".into(),
                    JWT_BEARER_ASSERTION_TYPE.into(),
                ));
                form.push((
                    "client_assertion".into(),
                    self.assertion_with(server.issuer(), |_| {}),
                ));
            }
        }
        request.form(&form).send().await.unwrap()
    }

    /// POSTs `body` as JSON to `path`, with this client's authentication
    /// added as Auth0's SDKs add it (in the body, or HTTP Basic).
    pub async fn post_json(&self, server: &TestServer, path: &str, mut body: Value) -> Response {
        let mut request = server.http.post(server.url(path));
        match &self.credentials {
            Credentials::SecretBasic(secret) => {
                request = request.basic_auth(&self.client_id, Some(secret));
            }
            Credentials::SecretPost(secret) => {
                body["client_id"] = json!(self.client_id);
                body["client_secret"] = json!(secret);
            }
            Credentials::PrivateKeyJwt { .. } => {
                body["client_assertion_type"] = json!(JWT_BEARER_ASSERTION_TYPE);
                body["client_assertion"] = json!(self.assertion_with(server.issuer(), |_| {}));
            }
        }
        request.json(&body).send().await.unwrap()
    }

    pub async fn bc_authorize(&self, server: &TestServer, params: &[(&str, &str)]) -> Response {
        self.post(server, "/bc-authorize", params).await
    }

    /// Starts a request with `binding_message` (and any `extra` parameters)
    /// and returns its `auth_req_id`.
    pub async fn start_login(
        &self,
        server: &TestServer,
        login_hint: &str,
        scope: &str,
        binding_message: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let mut params = vec![
            ("scope", scope),
            ("login_hint", login_hint),
            ("binding_message", binding_message),
        ];
        params.extend_from_slice(extra);
        let response = self.bc_authorize(server, &params).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "the answer carries the auth_req_id and match code: never cached"
        );
        let ack: Value = response.json().await.unwrap();
        ack["auth_req_id"].as_str().unwrap().to_string()
    }

    /// Starts a request for `login_hint` and returns its `auth_req_id`.
    pub async fn start(&self, server: &TestServer, login_hint: &str, scope: &str) -> Value {
        let response = self
            .bc_authorize(
                server,
                &[
                    ("scope", scope),
                    ("login_hint", login_hint),
                    ("binding_message", "Order 1234"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn poll(&self, server: &TestServer, auth_req_id: &str) -> Response {
        self.post(
            server,
            "/oauth/token",
            &[
                ("grant_type", CIBA_GRANT_TYPE),
                ("auth_req_id", auth_req_id),
            ],
        )
        .await
    }
}

/// Asserts an OAuth error response with `status` and `error` code (an
/// [`OAuthErrorCode`](assent_shared::error::OAuthErrorCode); the desktop
/// app's tests still pass the code's spelling) and returns its body.
pub async fn expect_error(
    response: Response,
    status: StatusCode,
    error: impl std::fmt::Display,
) -> Value {
    let actual_status = response.status();
    let headers = response.headers().clone();
    let body: Value = response.json().await.expect("error body is JSON");
    let error = error.to_string();
    assert_eq!(
        (actual_status, body["error"].as_str()),
        (status, Some(error.as_str())),
        "unexpected response {body}"
    );
    assert_eq!(
        headers.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
        "error_description outside RFC 6749 charset: {description}"
    );
    body
}

pub async fn create_user(store: &Store, sub: &str, email: Option<&str>, name: Option<&str>) {
    let now = now_ms();
    store
        .insert_user(&UserRow {
            sub: sub.into(),
            email: email.map(str::to_string),
            email_verified: true,
            phone_number: None,
            phone_verified: false,
            name: name.map(str::to_string),
            blocked: false,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    add_stand_in_device(store, sub).await;
}

/// Creates a user with no device at all: `/bc-authorize` refuses them.
pub async fn create_user_without_device(
    store: &Store,
    sub: &str,
    email: Option<&str>,
    name: Option<&str>,
) {
    create_user(store, sub, email, name).await;
    crate::execute(
        store,
        &format!("DELETE FROM devices WHERE id = 'stand-in:{sub}'"),
    )
    .await;
}

/// [`add_stand_in_device`] for a user created by the CLI, on the database
/// at `database_url`.
pub async fn stand_in_device_at(database_url: &str, sub: &str) {
    let store = Store::connect(database_url, 1).await.unwrap();
    add_stand_in_device(&store, sub).await;
    store.close().await;
}

/// `/bc-authorize` asks only users with an active device. Tests that
/// decide through [`crate::decide`] (no device) give their users this
/// stand-in: a device row without push channel whose key nobody holds, so
/// it can neither sign a decision nor receive a push.
async fn add_stand_in_device(store: &Store, sub: &str) {
    let id = format!("stand-in:{sub}");
    let sql = format!(
        "INSERT INTO devices (id, user_sub, name, platform, public_jwk, key_thumbprint, created_at) \
         VALUES ('{id}', '{sub}', 'Stand-in', 'test', '{{}}', '{id}', {})",
        now_ms()
    );
    crate::execute(store, &sql).await;
}
