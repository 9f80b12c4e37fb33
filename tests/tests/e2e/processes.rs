//! `assent-server` as operators run it: separate processes, the CLI, signals.

use std::time::Duration;

use assent_server::{
    clock::Clock,
    decision::{self, Decision},
    storage::Store,
};
use assent_shared::{
    error::OAuthErrorCode,
    oauth::{BackchannelAuthenticationResponse, TokenResponse},
};
use assent_tests::{
    get_json,
    process::{run_cli, run_cli_json, send_sigterm, server_command, CliClient, ServeProcess},
    userinfo, Backend, TestDb,
};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_serve_processes_on_one_postgres_database_behave_as_one_server() {
    let db = TestDb::create(Backend::Postgres).await;
    run_cli(&db.url, &["user", "create", "--sub", "alice", "--json"]).await;
    assent_tests::client::stand_in_device_at(&db.url, "alice").await;
    let client = CliClient::create(&db.url, "Call center", &[]).await;
    let env = [
        ("ASSENT_ISSUER", "http://assent.test"),
        ("ASSENT_POLL_INTERVAL", "1"),
    ];
    // Both start at once on an empty key table: exactly one key per algorithm must win.
    let (a, b) = tokio::join!(
        ServeProcess::start(&db.url, &env),
        ServeProcess::start(&db.url, &env)
    );
    let http = reqwest::Client::new();
    let jwks = |p: &ServeProcess| {
        http.get(format!("{}/.well-known/jwks.json", p.base_url))
            .send()
    };
    let (ja, jb) = (
        jwks(&a).await.unwrap().text().await.unwrap(),
        jwks(&b).await.unwrap().text().await.unwrap(),
    );
    assert_eq!(ja, jb, "both processes publish the same keys");

    let ack: BackchannelAuthenticationResponse = client
        .bc_authorize(&a.base_url, "alice", "Across processes")
        .await
        .json()
        .await
        .unwrap();
    let first: Value = client
        .poll(&b.base_url, &ack.auth_req_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["error"],
        OAuthErrorCode::AuthorizationPending.as_str(),
        "B sees the request A created"
    );
    let second: Value = client
        .poll(&a.base_url, &ack.auth_req_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["error"],
        OAuthErrorCode::SlowDown.as_str(),
        "A sees the poll B recorded"
    );

    let store = Store::connect(&db.url, 1).await.unwrap();
    let request_id = assent_tests::request_id(&store, &ack.auth_req_id).await;
    decision::decide(
        &store,
        &Clock::default(),
        &request_id,
        "alice",
        Decision::Approve,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = client.poll(&b.base_url, &ack.auth_req_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: TokenResponse = response.json().await.unwrap();
    let replay = client.poll(&a.base_url, &ack.auth_req_id).await;
    assert_eq!(
        replay.status(),
        StatusCode::BAD_REQUEST,
        "A knows B already issued the tokens"
    );

    // A token issued by B is accepted by A.
    let info = userinfo(
        &http,
        &format!("{}/userinfo", a.base_url),
        &tokens.access_token,
    )
    .await;
    assert_eq!(info["sub"], "alice");
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());
}

/// The server keeps authenticated clients in memory; a client deleted by
/// another process (the CLI) must nevertheless be refused at once, on both
/// endpoints that use the cache, and nothing may be stored for it.
#[tokio::test]
async fn a_client_deleted_by_the_cli_is_refused_at_once_by_a_running_server() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::create(backend).await;
        run_cli(&db.url, &["user", "create", "--sub", "alice", "--json"]).await;
        assent_tests::client::stand_in_device_at(&db.url, "alice").await;
        let client = CliClient::create(&db.url, "Call center", &[]).await;
        let server = ServeProcess::start(&db.url, &[("ASSENT_ISSUER", "http://assent.test")]).await;
        let start = || client.bc_authorize(&server.base_url, "alice", "Cached");
        // Twice each, so that the second calls are answered from the cache.
        let _ = start().await;
        let ack: BackchannelAuthenticationResponse = start().await.json().await.unwrap();
        for _ in 0..2 {
            let pending: Value = client
                .poll(&server.base_url, &ack.auth_req_id)
                .await
                .json()
                .await
                .unwrap();
            assert!(
                pending["error"] == OAuthErrorCode::AuthorizationPending.as_str()
                    || pending["error"] == OAuthErrorCode::SlowDown.as_str(),
                "{backend}: {pending}"
            );
        }
        let store = Store::connect(&db.url, 1).await.unwrap();
        let before = store.recent_requests(None, false, 100).await.unwrap().len();
        assert_eq!(before, 2, "{backend}");

        run_cli(&db.url, &["client", "delete", &client.client_id]).await;
        let refused = start().await;
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "{backend}: bc-authorize"
        );
        assert!(
            refused.headers().contains_key("www-authenticate"),
            "{backend}: Basic challenge"
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            body["error"],
            OAuthErrorCode::InvalidClient.as_str(),
            "{backend}: {body}"
        );
        let refused = client.poll(&server.base_url, &ack.auth_req_id).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "{backend}: token"
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            body["error"],
            OAuthErrorCode::InvalidClient.as_str(),
            "{backend}: {body}"
        );
        assert_eq!(
            store.recent_requests(None, false, 100).await.unwrap().len(),
            0,
            "{backend}: the deleted client's requests are gone and no new one was stored"
        );
        store.close().await;
        assert!(server.terminate().await.success());
    }
}

#[tokio::test]
async fn the_default_run_command_serves_discovery_on_port_8080_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = server_command("");
    cmd.current_dir(dir.path())
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let http = reqwest::Client::new();
    let mut meta = None;
    for _ in 0..100 {
        if let Ok(r) = http
            .get("http://127.0.0.1:8080/.well-known/openid-configuration")
            .send()
            .await
        {
            meta = Some(r.json::<Value>().await.unwrap());
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "assent-server exited: is port 8080 in use?"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let meta = meta.expect("discovery answered on 127.0.0.1:8080");
    assert_eq!(meta["issuer"], "http://127.0.0.1:8080");
    // In a directory of its own, beside its key-encryption key, all owner-only.
    let data = dir.path().join("assent-data");
    assert!(
        data.join("assent.db").exists(),
        "the SQLite database was created"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(data.clone()), 0o700);
        assert_eq!(mode(data.join("assent.db")), 0o600);
        assert_eq!(mode(data.join("assent.kek")), 0o600);
    }
    send_sigterm(child.id().unwrap());
    assert!(child.wait().await.unwrap().success());
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let db = TestDb::create(Backend::Sqlite).await;
    let server = ServeProcess::start(&db.url, &[]).await;
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let body = "scope=openid&login_hint=alice&binding_message=late";
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /bc-authorize HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    send_sigterm(server.child.id().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the old one is served to the end.
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "listener closed after SIGTERM"
    );
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains(OAuthErrorCode::InvalidClient.as_str()));
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn operator_cli_is_scriptable_with_json() {
    let db = TestDb::create(Backend::Sqlite).await;
    let url = db.url.as_str();
    let dir = tempfile::tempdir().unwrap();

    let created: Value = run_cli_json(
        url,
        &[
            "user",
            "create",
            "--sub",
            "auth0|42",
            "--email",
            "Ann@Example.com",
            "--name",
            "Ann",
            "--json",
        ],
    )
    .await;
    assert_eq!(created["sub"], "auth0|42");
    assert_eq!(created["email"], "Ann@Example.com");
    let users: Value = run_cli_json(url, &["user", "list", "--json"]).await;
    assert_eq!(users.as_array().unwrap().len(), 1);
    run_cli(url, &["user", "block", "auth0|42"]).await;
    let users: Value = run_cli_json(url, &["user", "list", "--json"]).await;
    assert_eq!(users[0]["blocked"], true);

    let post: Value = run_cli_json(
        url,
        &[
            "client",
            "create",
            "--name",
            "Post",
            "--auth-method",
            "client_secret_post",
            "--id-token-signed-response-alg",
            "ES256",
            "--json",
        ],
    )
    .await;
    assert_eq!(post["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(post["id_token_signed_response_alg"], "ES256");
    assert!(post["client_secret"].as_str().unwrap().len() >= 43);

    let (key, _) =
        assent_server::keys::SigningKey::generate(assent_server::keys::TokenAlg::ES256).unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(
        &jwks_path,
        serde_json::json!({"keys": [key.public_jwk()]}).to_string(),
    )
    .unwrap();
    let jwt: Value = run_cli_json(
        url,
        &[
            "client",
            "create",
            "--name",
            "Jwt",
            "--auth-method",
            "private_key_jwt",
            "--jwks",
            jwks_path.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert!(
        jwt.get("client_secret").is_none(),
        "no secret for private_key_jwt"
    );

    let clients: Value = run_cli_json(url, &["client", "list", "--json"]).await;
    assert_eq!(clients.as_array().unwrap().len(), 2);
    assert!(
        !clients
            .to_string()
            .contains(post["client_secret"].as_str().unwrap()),
        "secrets are never listed"
    );
    run_cli(
        url,
        &["client", "delete", post["client_id"].as_str().unwrap()],
    )
    .await;
    let clients: Value = run_cli_json(url, &["client", "list", "--json"]).await;
    assert_eq!(clients.as_array().unwrap().len(), 1);
    run_cli(url, &["user", "delete", "auth0|42"]).await;

    // Refusals exit non-zero with a message.
    let private = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}]});
    std::fs::write(&jwks_path, private.to_string()).unwrap();
    for args in [
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "private_key_jwt",
        ],
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "private_key_jwt",
            "--jwks",
            jwks_path.to_str().unwrap(),
        ],
        vec![
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "nonsense",
        ],
        vec!["user", "delete", "nobody"],
        vec!["client", "delete", "nobody"],
    ] {
        let out = server_command(url).args(&args).output().await.unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
    run_cli(url, &["user", "create", "--sub", "dup"]).await;
    let out = server_command(url)
        .args(["user", "create", "--sub", "dup"])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[tokio::test]
async fn configuration_file_environment_and_flags_stack() {
    let db = TestDb::create(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("assent.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\npoll_interval = 7\nissuer = \"http://from-file.test\"\n",
            db.url
        ),
    )
    .unwrap();
    let server = ServeProcess::start(
        "",
        &[
            ("ASSENT_CONFIG", config.to_str().unwrap()),
            ("ASSENT_ISSUER", "http://from-env.test"),
        ],
    )
    .await;
    let meta = get_json(
        &reqwest::Client::new(),
        &format!("{}/.well-known/openid-configuration", server.base_url),
    )
    .await;
    assert_eq!(
        meta["issuer"], "http://from-env.test",
        "environment beats file"
    );
    assert!(server.terminate().await.success());
    assert!(db.url.starts_with("sqlite://"));
    // The database from the file was used (migrated and keyed).
    let store = Store::connect(&db.url, 1).await.unwrap();
    assert_eq!(
        store.signing_keys().await.unwrap().len(),
        6,
        "two ID-token keys, two access-token keys, the device challenge key and the VAPID key"
    );
}

/// Sockets that connect and say nothing neither starve the server nor stay:
/// at the cap new connections wait, the header-read timeout closes the
/// silent ones, and `/healthz` answers again.
#[tokio::test]
async fn silent_connections_are_closed_and_the_cap_is_held() {
    let db = TestDb::create(Backend::Sqlite).await;
    let server = ServeProcess::start(
        &db.url,
        &[
            ("ASSENT_MAX_CONNECTIONS", "20"),
            ("ASSENT_HEADER_READ_TIMEOUT", "1"),
        ],
    )
    .await;
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Every slot is taken: a health check waits in the backlog until the
    // silent ones are closed after a second.
    let started = std::time::Instant::now();
    let health = reqwest::Client::new()
        .get(format!("{}/healthz", server.base_url))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("healthz answers once slots free");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it had to wait for a slot"
    );
    for mut socket in silent {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the silent connection was closed"
        );
    }
}

/// 1,100 silent sockets under the default limits: the server raised its
/// open-file limit and keeps answering (the trial saw `/healthz` time out).
#[tokio::test]
async fn eleven_hundred_silent_sockets_do_not_stop_healthz() {
    // This test process needs the descriptors too.
    let _ = rlimit::increase_nofile_limit(4096);
    let db = TestDb::create(Backend::Sqlite).await;
    let server = ServeProcess::start(&db.url, &[]).await;
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let mut silent = Vec::new();
    for _ in 0..1100 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let started = std::time::Instant::now();
    let health = reqwest::Client::new()
        .get(format!("{}/healthz", server.base_url))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("healthz answers beside 1,100 silent sockets");
    assert_eq!(health.status(), StatusCode::OK);
    eprintln!(
        "healthz beside 1,100 silent sockets: {:?}",
        started.elapsed()
    );
    drop(silent);
}
