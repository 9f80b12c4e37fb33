//! The acceptance flow with a real third-party OpenID client: npm's
//! `oauth4webapi` (CIBA poll, UserInfo) and `jose` (ID token signature
//! against the JWKS), against `assent-server serve` as a child process.

use std::{path::PathBuf, process::Stdio};

use assent_server::{
    clock::Clock,
    decision::{self, Decision},
    storage::Store,
};
use assent_tests::{
    on_both_backends,
    process::{run_cli, run_cli_json, ServeProcess},
    TestDb,
};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::Command,
};

fn js_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        dir.join("node_modules/oauth4webapi").exists(),
        "npm packages missing: run `npm ci` in {} (the test script does)",
        dir.display()
    );
    dir
}

async fn node(args: &[&str]) -> Command {
    let mut cmd = Command::new("node");
    cmd.current_dir(js_dir())
        .arg("ciba-client.mjs")
        .args(args)
        .kill_on_drop(true);
    cmd
}

async fn create_client(url: &str, args: &[&str]) -> Value {
    let mut full = vec!["client", "create", "--json"];
    full.extend_from_slice(args);
    run_cli_json(url, &full).await
}

on_both_backends! {
    async fn oauth4webapi_completes_the_flow_with_all_client_authentication_methods(backend: Backend) {
        let db = TestDb::create(backend).await;
        let url = db.url.as_str();
        run_cli(url, &["user", "create", "--sub", "auth0|alice", "--email", "alice@example.com", "--email-verified", "--json"]).await;
        assent_tests::client::stand_in_device_at(url, "auth0|alice").await;

        let keys: Value = serde_json::from_slice(&node(&["keygen"]).await.output().await.unwrap().stdout).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let jwks_path = dir.path().join("jwks.json");
        std::fs::write(&jwks_path, json!({"keys": [keys["public"]]}).to_string()).unwrap();

        let basic = create_client(url, &["--name", "Basic"]).await;
        let post = create_client(url, &["--name", "Post", "--auth-method", "client_secret_post", "--id-token-signed-response-alg", "ES256"]).await;
        let jwt = create_client(url, &["--name", "Jwt", "--auth-method", "private_key_jwt", "--jwks", jwks_path.to_str().unwrap(), "--id-token-signed-response-alg", "ES256"]).await;
        let clients = json!([
            {"method": "client_secret_basic", "client_id": basic["client_id"], "client_secret": basic["client_secret"], "alg": "RS256"},
            {"method": "client_secret_post", "client_id": post["client_id"], "client_secret": post["client_secret"], "alg": "ES256"},
            {"method": "private_key_jwt", "client_id": jwt["client_id"], "private_jwk": keys["private"], "alg": "ES256"},
        ]);

        let server = ServeProcess::start(url, &[("ASSENT_POLL_INTERVAL", "1")]).await;
        let mut driver = node(&["flow"]).await;
        driver
            .env("ASSENT_ISSUER", &server.base_url)
            .env("ASSENT_CLIENTS", clients.to_string())
            .env("ASSENT_LOGIN_HINT", format!(r#"{{"format":"iss_sub","iss":"{}/","sub":"auth0|alice"}}"#, server.base_url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = driver.spawn().expect("node is installed");
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let store = Store::connect(url, 1).await.unwrap();
        let mut done = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        while let Some(line) = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("the oauth4webapi driver stalled")
            .unwrap()
        {
            let event: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("unexpected output {line}"));
            match event["event"].as_str() {
                Some("pending") => {
                    let id = decision::request_id_for_auth_req_id(&store, event["auth_req_id"].as_str().unwrap())
                        .await.unwrap().expect("the request is stored");
                    decision::decide(&store, &Clock::default(), &id, "auth0|alice", Decision::Approve).await.unwrap();
                    stdin.write_all(b"approved\n").await.unwrap();
                }
                Some("done") => done.push(event),
                _ => panic!("unexpected event {event}"),
            }
        }
        let output = child.wait_with_output().await.unwrap();
        assert!(output.status.success(), "oauth4webapi flow failed: {}", String::from_utf8_lossy(&output.stderr));
        let methods: Vec<_> = done.iter().map(|e| e["method"].as_str().unwrap()).collect();
        assert_eq!(methods, ["client_secret_basic", "client_secret_post", "private_key_jwt"]);
        for (event, alg) in done.iter().zip(["RS256", "ES256", "ES256"]) {
            assert_eq!(event["sub"], "auth0|alice");
            assert_eq!(event["email"], "alice@example.com");
            assert_eq!(event["alg"], alg);
        }
        assert!(server.terminate().await.success());
    }
}
