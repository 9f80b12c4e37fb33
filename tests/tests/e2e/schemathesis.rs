//! Schemathesis (PyPI `schemathesis`, pinned in tests/schemathesis/
//! requirements.txt and installed into tests/.venv by `scripts/setup`) runs
//! against a real `serve` process with real credentials and finds no
//! response that the served `/openapi.json` does not describe: no 500, no
//! undocumented status, media type or header, no body outside its schema, no
//! schema-invalid request accepted and no schema-valid one refused where the
//! document can promise acceptance. What it is told, and why:
//! tests/schemathesis/schemathesis.toml and docs/openapi.md.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use assent_tests::{
    process::{cli_enrollment_link, run_cli, run_cli_json, run_device, CliClient, ServeProcess},
    Backend, TestDb,
};
use serde_json::Value;

/// Test cases per operation and the seed: the same run every time.
const MAX_EXAMPLES: &str = "50";
const SEED: &str = "20261207";
const METRICS_TOKEN: &str = "schemathesis-metrics-token";

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/.venv/bin/schemathesis`, or `ASSENT_SCHEMATHESIS`.
fn schemathesis_binary() -> PathBuf {
    let bin = std::env::var_os("ASSENT_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tests_dir().join(".venv/bin/schemathesis"));
    assert!(
        bin.exists(),
        "{} is missing: ./scripts/setup installs it (the version in tests/schemathesis/requirements.txt)",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_the_openapi_document_does_not_describe() {
    let schemathesis = schemathesis_binary();
    let db = TestDb::create(Backend::Sqlite).await;
    let server = ServeProcess::start(
        &db.url,
        &[
            ("ASSENT_METRICS_TOKEN", METRICS_TOKEN),
            ("ASSENT_POLL_INTERVAL", "1"),
        ],
    )
    .await;
    let base = server.base_url.clone();

    // The user of the document's examples, with a real device; a client
    // with a secret; an operator token that may do everything.
    run_cli(
        &db.url,
        &[
            "user",
            "create",
            "--sub",
            "auth0|alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice",
        ],
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let link = cli_enrollment_link(&db.url, &base, "auth0|alice").await;
    let (ok, _, stderr) = run_device(state.path(), &["enroll", &link]).await;
    assert!(ok, "assent-device enroll: {stderr}");
    let client = CliClient::create(&db.url, "Schemathesis", &[]).await;
    let admin = run_cli_json(
        &db.url,
        &[
            "admin",
            "token",
            "create",
            "--name",
            "schemathesis",
            "--scope",
            "admin",
            "--json",
        ],
    )
    .await;
    let admin_token = admin["token"].as_str().unwrap().to_string();
    let access_token = access_token(&base, &client, state.path()).await;
    let mfa_token = mfa_token(&db.url, &base).await;

    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(tests_dir().join("schemathesis/schemathesis.toml"))
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .arg("--no-color")
        .env(
            "SCHEMATHESIS_HOOKS",
            tests_dir().join("schemathesis/hooks.py"),
        )
        .env("ASSENT_ST_CLIENT_ID", &client.client_id)
        .env("ASSENT_ST_CLIENT_SECRET", &client.client_secret)
        .env("ASSENT_ST_ADMIN_TOKEN", &admin_token)
        .env("ASSENT_ST_ACCESS_TOKEN", &access_token)
        .env("ASSENT_ST_MFA_TOKEN", &mfa_token)
        .env("ASSENT_ST_METRICS_TOKEN", METRICS_TOKEN)
        // Its reports and caches stay out of the work tree.
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), output)
        .await
        .expect("Schemathesis finished within 5 minutes")
        .expect("run Schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("Schemathesis ran for {:.1?}", started.elapsed());
    assert!(
        output.status.success(),
        "Schemathesis found something ({}):\n{stdout}\n{stderr}",
        output.status
    );

    // It tested every operation it found (none skipped unnoticed). (It
    // leaves out /openapi.json, the document it was given.)
    let selected = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Operations:"))
        .and_then(|counts| counts.trim().split_once(" selected / "))
        .map(|(selected, total)| {
            (
                selected.to_string(),
                total.trim_end_matches(" total").to_string(),
            )
        })
        .unwrap_or_else(|| panic!("no operation count in:\n{stdout}"));
    assert_eq!(selected.0, selected.1, "{stdout}");
    assert!(
        stdout.contains(&format!("Tested: {}\n", selected.0)),
        "not every one of the {} operations was tested:\n{stdout}",
        selected.0
    );
    server.terminate().await;
}

/// An access token for `/userinfo`: a request of `client` for alice,
/// approved on the device in `state` with the number-matching code.
async fn access_token(base: &str, client: &CliClient, state: &std::path::Path) -> String {
    let http = reqwest::Client::new();
    let ack: Value = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[
            ("scope", "openid profile email"),
            ("login_hint", "auth0|alice"),
            ("binding_message", "Schemathesis"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = ack["match_code"].as_str().expect("a match code");
    let (ok, _, stderr) = run_device(state, &["approve", "--next", "--code", code]).await;
    assert!(ok, "assent-device approve: {stderr}");
    let tokens: Value = client
        .poll(base, ack["auth_req_id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("tokens: {tokens}"))
        .to_string()
}

/// An `mfa_token` of alice for `/mfa/authenticators`: the `mfa_required`
/// answer to a first-factor login (the back-end OTP API, which answers its
/// code to this client) of a client whose policy requires a second factor.
/// It lives 10 minutes, longer than the run, and nothing in the run spends
/// it (that takes a TOTP code).
async fn mfa_token(database_url: &str, base: &str) -> String {
    let client = CliClient::create(
        database_url,
        "Schemathesis MFA",
        &[
            "--grant-types",
            assent_shared::oauth::PASSWORDLESS_OTP_GRANT_TYPE,
            "--otp-code-in-response",
            "true",
            "--mfa",
            "required",
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let login = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .json(&body)
            .send()
    };
    let email =
        serde_json::json!({ "identifier_type": "email", "identifier": "alice@example.com" });
    let sent: Value = login("/backend-auth/otp/send", email.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = sent["code"]
        .as_str()
        .unwrap_or_else(|| panic!("a code: {sent}"));
    let mut body = email;
    body["passcode"] = code.into();
    let refused: Value = login("/backend-auth/otp/authenticate", body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"], "mfa_required", "{refused}");
    refused["mfa_token"].as_str().unwrap().to_string()
}
