//! The admin API (`/admin/v1`) against a real server on both databases:
//! everything the CLI does, with admin tokens and their scopes, the same
//! JSON shapes as the CLI's `--json`, refusals in words, and every change
//! in the audit log under the token's name.

use std::time::Duration;

use assent_shared::{error::OAuthErrorCode, protocol::EnrollmentUri};
use assent_tests::{
    client::{expect_error, TestClient},
    process::run_cli_json,
    Backend, TestServer,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The server and an admin token with `scopes`, made with the CLI.
async fn token(server: &TestServer, name: &str, scopes: &[&str]) -> String {
    let mut args = vec!["admin", "token", "create", "--name", name, "--json"];
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    let made = run_cli_json(&server.db.url, &args).await;
    made["token"].as_str().unwrap().to_string()
}

struct Admin<'a> {
    server: &'a TestServer,
    token: String,
}

impl Admin<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .server
            .http
            .request(method, self.server.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// The call's JSON answer, which must have `status`.
    async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let response = self.call(method.clone(), path, body).await;
        let got = response.status();
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{method} {path}"
        );
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }
}

fn encoded(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn everything_the_cli_does(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin {
        server: &server,
        token: token(&server, "provisioning", &["admin"]).await,
    };
    let reader = Admin {
        server: &server,
        token: token(&server, "dashboard", &["read"]).await,
    };

    // No token, an unknown one, one whose scopes do not allow the change.
    let bare = server
        .http
        .get(server.url("/admin/v1/clients"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Bearer realm=\"assent\""
    );
    let unknown = Admin {
        server: &server,
        token: "assent_admin_not-a-token".into(),
    };
    expect_error(
        unknown.call(Method::GET, "/admin/v1/users", None).await,
        StatusCode::UNAUTHORIZED,
        OAuthErrorCode::InvalidToken,
    )
    .await;
    expect_error(
        reader
            .call(
                Method::POST,
                "/admin/v1/clients",
                Some(json!({"name": "X"})),
            )
            .await,
        StatusCode::FORBIDDEN,
        OAuthErrorCode::InsufficientScope,
    )
    .await;

    // Clients: the secret once, the same shape as the CLI's, refusals in words.
    let created = admin
        .ok(
            Method::POST,
            "/admin/v1/clients",
            Some(json!({"name": "Call center", "number_matching": "off",
                        "client_uri": "https://bank.example"})),
            StatusCode::CREATED,
        )
        .await;
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(created["number_matching"], "off");
    let client_path = format!("/admin/v1/clients/{client_id}");
    let read = reader
        .ok(Method::GET, &client_path, None, StatusCode::OK)
        .await;
    assert!(read.get("client_secret").is_none());
    let by_cli = run_cli_json(&server.db.url, &["client", "list", "--json"]).await;
    assert_eq!(by_cli[0], read, "the CLI and the API show a client alike");
    // The secret works: the client is authenticated, the user unknown.
    let client = TestClient {
        client_id: client_id.clone(),
        credentials: assent_tests::client::Credentials::SecretBasic(secret),
    };
    let unknown_user = client
        .bc_authorize(
            &server,
            &[
                ("scope", "openid"),
                ("login_hint", "nobody"),
                ("binding_message", "Hello"),
            ],
        )
        .await;
    expect_error(
        unknown_user,
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::UnknownUserId,
    )
    .await;
    let updated = admin
        .ok(
            Method::PATCH,
            &client_path,
            Some(json!({"number_matching": "required", "client_uri": null})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(updated["number_matching"], "required");
    assert_eq!(updated["client_uri"], Value::Null);
    let refused = expect_error(
        admin
            .call(
                Method::PATCH,
                &client_path,
                Some(json!({"number_matching": "maybe"})),
            )
            .await,
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::InvalidRequest,
    )
    .await;
    assert!(refused["error_description"]
        .as_str()
        .unwrap()
        .starts_with("number_matching"));
    expect_error(
        admin
            .call(Method::PATCH, &client_path, Some(json!({"colour": "blue"})))
            .await,
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::InvalidRequest,
    )
    .await;
    let not_json = server
        .http
        .post(server.url("/admin/v1/clients"))
        .bearer_auth(&admin.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=X")
        .send()
        .await
        .unwrap();
    expect_error(
        not_json,
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::InvalidRequest,
    )
    .await;

    // Users, with console roles and blocking.
    let user = admin
        .ok(
            Method::POST,
            "/admin/v1/users",
            Some(
                json!({"sub": "auth0|hugo", "email": "hugo@example.com", "name": "Hugo",
                        "role": "agent"}),
            ),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(user["role"], "agent");
    expect_error(
        admin
            .call(
                Method::POST,
                "/admin/v1/users",
                Some(json!({"sub": "auth0|other", "email": "HUGO@example.com"})),
            )
            .await,
        StatusCode::CONFLICT,
        OAuthErrorCode::Conflict,
    )
    .await;
    let user_path = format!("/admin/v1/users/{}", encoded("auth0|hugo"));
    let patched = admin
        .ok(
            Method::PATCH,
            &user_path,
            Some(json!({"phone_number": "+14155550123", "blocked": true, "role": null})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(patched["phone_number"], "+14155550123");
    assert_eq!(patched["blocked"], true);
    assert_eq!(patched["role"], Value::Null);
    let listed = reader
        .ok(Method::GET, "/admin/v1/users", None, StatusCode::OK)
        .await;
    assert_eq!(listed["users"][0], patched);
    let by_cli = run_cli_json(&server.db.url, &["user", "list", "--json"]).await;
    assert_eq!(by_cli[0], patched, "the CLI and the API show a user alike");
    admin
        .ok(
            Method::PATCH,
            &user_path,
            Some(json!({"blocked": false})),
            StatusCode::OK,
        )
        .await;

    // Enrollment: the ticket's QR code (PNG) decodes to its link; the
    // device it enrolls is listed, then revoked.
    let ticket = admin
        .ok(
            Method::POST,
            "/admin/v1/enrollment-tickets",
            Some(json!({"user": "auth0|hugo"})),
            StatusCode::CREATED,
        )
        .await;
    let link = ticket["enrollment_uri"].as_str().unwrap();
    assert_eq!(decode_qr(ticket["qr_png"].as_str().unwrap()), link);
    assert!(ticket["qr_svg"].as_str().unwrap().contains("<svg"));
    let device = assent_device::DeviceClient::enroll(
        &EnrollmentUri::parse(link).unwrap(),
        "Hugo's laptop",
        "linux",
        None,
    )
    .await
    .unwrap();
    let devices = reader
        .ok(
            Method::GET,
            &format!("/admin/v1/devices?user={}", encoded("auth0|hugo")),
            None,
            StatusCode::OK,
        )
        .await;
    let devices = devices["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["name"], "Hugo's laptop");
    let device_id = devices[0]["device_id"].as_str().unwrap().to_string();
    assert_eq!(device_id, device.account.device_id);

    // The live feed: a request started now arrives as an event.
    let feed = server
        .http
        .get(server.url("/admin/v1/requests/feed"))
        .bearer_auth(&reader.token)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    assert_eq!(feed.headers()["content-type"], "text/event-stream");
    let mut feed = feed;
    let started = client
        .bc_authorize(
            &server,
            &[
                ("scope", "openid"),
                ("login_hint", "hugo@example.com"),
                ("binding_message", "Call 4711"),
            ],
        )
        .await;
    assert_eq!(started.status(), StatusCode::OK);
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !seen.contains("Call 4711") {
            let chunk = feed.chunk().await.unwrap().expect("the feed stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no request on the feed: {seen:?}"));
    let data = seen
        .lines()
        .find_map(|l| l.strip_prefix("data: ").filter(|d| d.contains("Call 4711")))
        .unwrap();
    let event: Value = serde_json::from_str(data).unwrap();
    assert_eq!(event["user"], "auth0|hugo");
    assert_eq!(event["status"], "pending");
    let requests = reader
        .ok(
            Method::GET,
            &format!("/admin/v1/requests?user={}&limit=5", encoded("auth0|hugo")),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(requests["requests"][0], event);
    expect_error(
        reader
            .call(Method::GET, "/admin/v1/requests?limit=0", None)
            .await,
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::InvalidRequest,
    )
    .await;

    let revoke = format!("/admin/v1/devices/{device_id}/revoke");
    admin
        .ok(Method::POST, &revoke, None, StatusCode::NO_CONTENT)
        .await;
    expect_error(
        admin.call(Method::POST, &revoke, None).await,
        StatusCode::NOT_FOUND,
        OAuthErrorCode::NotFound,
    )
    .await;

    // APIs and grants.
    let api = admin
        .ok(
            Method::POST,
            "/admin/v1/apis",
            Some(
                json!({"identifier": "https://api.bank.example", "name": "Payments",
                        "scopes": ["pay", "read:balance"]}),
            ),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(api["scopes"], json!(["pay", "read:balance"]));
    let api_path = format!("/admin/v1/apis/{}", encoded("https://api.bank.example"));
    let grant = admin
        .ok(
            Method::PUT,
            &format!("{api_path}/grants/{client_id}"),
            Some(json!({"scopes": ["pay"]})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(grant["scopes"], json!(["pay"]));
    let updated = admin
        .ok(
            Method::PATCH,
            &api_path,
            Some(json!({"mfa": "required"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(updated["mfa"], "required");
    assert_eq!(updated["grants"][0]["client_id"], client_id.as_str());
    expect_error(
        admin
            .call(
                Method::PUT,
                &format!("{api_path}/grants/{client_id}"),
                Some(json!({"scopes": ["steal"]})),
            )
            .await,
        StatusCode::BAD_REQUEST,
        OAuthErrorCode::InvalidRequest,
    )
    .await;
    admin
        .ok(
            Method::DELETE,
            &format!("{api_path}/grants/{client_id}"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    admin
        .ok(Method::DELETE, &api_path, None, StatusCode::NO_CONTENT)
        .await;

    // Keys: listed with what each does; a rotation waits, a second one is
    // refused until the first signs.
    let keys = reader
        .ok(Method::GET, "/admin/v1/keys", None, StatusCode::OK)
        .await;
    assert!(keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["purpose"] == "token" && k["state"] == "signing"));
    let rotated = admin
        .ok(
            Method::POST,
            "/admin/v1/keys/rotate",
            Some(json!({"purposes": ["access"], "activate_in": 600})),
            StatusCode::CREATED,
        )
        .await;
    assert!(!rotated["keys"].as_array().unwrap().is_empty());
    expect_error(
        admin
            .call(
                Method::POST,
                "/admin/v1/keys/rotate",
                Some(json!({"purposes": ["access"]})),
            )
            .await,
        StatusCode::CONFLICT,
        OAuthErrorCode::Conflict,
    )
    .await;

    // Admin tokens: the value once, never listed.
    let made = admin
        .ok(
            Method::POST,
            "/admin/v1/admin-tokens",
            Some(json!({"name": "helpdesk", "scopes": ["enroll"], "expires_in": 3600})),
            StatusCode::CREATED,
        )
        .await;
    let value = made["token"].as_str().unwrap();
    assert!(value.starts_with("assent_admin_"));
    let listed = admin
        .ok(Method::GET, "/admin/v1/admin-tokens", None, StatusCode::OK)
        .await;
    assert!(!listed.to_string().contains(value));
    admin
        .ok(
            Method::DELETE,
            &format!("/admin/v1/admin-tokens/{}", made["id"].as_str().unwrap()),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;

    // Deleting: the user and the client are gone.
    admin
        .ok(Method::DELETE, &user_path, None, StatusCode::NO_CONTENT)
        .await;
    expect_error(
        admin.call(Method::GET, &user_path, None).await,
        StatusCode::NOT_FOUND,
        OAuthErrorCode::UnknownUser,
    )
    .await;
    admin
        .ok(Method::DELETE, &client_path, None, StatusCode::NO_CONTENT)
        .await;
    expect_error(
        admin.call(Method::GET, &client_path, None).await,
        StatusCode::NOT_FOUND,
        OAuthErrorCode::NotFound,
    )
    .await;

    // The audit log names the token for every change, newest first.
    let log = reader
        .ok(
            Method::GET,
            "/admin/v1/audit?limit=100",
            None,
            StatusCode::OK,
        )
        .await;
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .filter(|e| {
            e["actor"]
                .as_str()
                .unwrap()
                .starts_with("admin-token:provisioning")
        })
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "client.delete",
            "user.delete",
            "admin_token.delete",
            "admin_token.create",
            "key.rotate", // one access key per algorithm: RS256 and ES256
            "key.rotate",
            "api.delete",
            "api.revoke",
            "api.update",
            "api.grant",
            "api.create",
            "device.revoke",
            "enrollment_ticket.create",
            "user.unblock",
            "user.block",
            "user.role",
            "user.update",
            "user.role",
            "user.create",
            "client.update",
            "client.create",
        ]
    );
    assert!(entries
        .iter()
        .all(|e| e["source"] == "127.0.0.1" || e["source"] == "cli"));
    let by_prefix = reader
        .ok(
            Method::GET,
            "/admin/v1/audit?action=user.",
            None,
            StatusCode::OK,
        )
        .await;
    assert!(by_prefix["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["action"].as_str().unwrap().starts_with("user.")));
    // No personal data in the log: the phone number and address are not there.
    assert!(!log.to_string().contains("4155550123"));
    assert!(!log.to_string().contains("hugo@example.com"));
}

/// The text of the QR code in a base64 PNG, read by an independent decoder.
fn decode_qr(png_base64: &str) -> String {
    let bytes = STANDARD.decode(png_base64).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_does_what_the_cli_does_on_sqlite() {
    everything_the_cli_does(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_does_what_the_cli_does_on_postgres() {
    everything_the_cli_does(Backend::Postgres).await;
}
