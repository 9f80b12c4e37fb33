//! `assent-server` as a child process, the way operators run it.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The `assent-server` binary next to this test executable
/// (`target/debug/deps/TEST` → `target/debug/assent-server`).
pub fn server_binary() -> PathBuf {
    sibling_binary("assent-server")
}

/// Binary `name` (of the package of that name) in the target directory this
/// test executable was built into. Cargo builds only the tested package's
/// own binaries for its tests, so these must be built first (as
/// `./scripts/test` does).
fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p {name}`",
        bin.display()
    );
    bin
}

/// An `assent-server` command with a clean environment for configuration
/// (an empty `database_url` leaves the database to other configuration).
pub fn server_command(database_url: &str) -> Command {
    let mut cmd = Command::new(server_binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("ASSENT_") {
            cmd.env_remove(key);
        }
    }
    if !database_url.is_empty() {
        cmd.env("ASSENT_DATABASE_URL", database_url);
    }
    if let Some(kek) = crate::db::postgres_kek_file(database_url).filter(|k| k.exists()) {
        cmd.env("ASSENT_KEY_ENCRYPTION_KEY_FILE", kek);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// Runs an operator subcommand to completion and returns its stdout.
pub async fn run_cli(database_url: &str, args: &[&str]) -> String {
    let output = server_command(database_url)
        .args(args)
        .output()
        .await
        .expect("run assent-server");
    assert!(
        output.status.success(),
        "assent-server {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs an operator subcommand that prints JSON (`--json` among `args`) and
/// parses its output.
pub async fn run_cli_json(database_url: &str, args: &[&str]) -> serde_json::Value {
    let stdout = run_cli(database_url, args).await;
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("assent-server {args:?} printed no JSON ({e}): {stdout}"))
}

/// An `assent://enroll` link for `user` from `assent-server enroll ticket`,
/// naming `issuer` as the server to enroll with.
pub async fn cli_enrollment_link(database_url: &str, issuer: &str, user: &str) -> String {
    let ticket = run_cli_json(
        database_url,
        &[
            "--issuer", issuer, "enroll", "ticket", "--user", user, "--json",
        ],
    )
    .await;
    assert!(ticket["expires_at"].is_string(), "{ticket}");
    ticket["enrollment_uri"].as_str().unwrap().to_string()
}

/// A `client_secret_basic` client created with `assent-server client
/// create`, speaking to `serve` processes by their base URL.
pub struct CliClient {
    pub client_id: String,
    pub client_secret: String,
    http: reqwest::Client,
}

impl CliClient {
    /// Creates the client named `name`; `extra_args` go to `client create`.
    pub async fn create(database_url: &str, name: &str, extra_args: &[&str]) -> Self {
        let mut args = vec!["client", "create", "--name", name, "--json"];
        args.extend_from_slice(extra_args);
        let created = run_cli_json(database_url, &args).await;
        Self {
            client_id: created["client_id"].as_str().unwrap().to_string(),
            client_secret: created["client_secret"].as_str().unwrap().to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// `POST /bc-authorize` on `base_url` for scope `openid`.
    pub async fn bc_authorize(
        &self,
        base_url: &str,
        login_hint: &str,
        binding_message: &str,
    ) -> reqwest::Response {
        self.http
            .post(format!("{base_url}/bc-authorize"))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("scope", "openid"),
                ("login_hint", login_hint),
                ("binding_message", binding_message),
            ])
            .send()
            .await
            .unwrap()
    }

    /// The CIBA token poll for `auth_req_id` on `base_url`.
    pub async fn poll(&self, base_url: &str, auth_req_id: &str) -> reqwest::Response {
        self.http
            .post(format!("{base_url}/oauth/token"))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("grant_type", assent_shared::oauth::CIBA_GRANT_TYPE),
                ("auth_req_id", auth_req_id),
            ])
            .send()
            .await
            .unwrap()
    }
}

/// Sends SIGTERM to process `pid`, the way service managers stop the server.
/// Whether it stopped cleanly is for the caller to see in its exit status.
pub fn send_sigterm(pid: u32) {
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
}

/// A `serve` child process and the address it bound.
pub struct ServeProcess {
    pub child: Child,
    pub base_url: String,
}

impl ServeProcess {
    /// Starts `assent-server serve` on an ephemeral port and waits for its
    /// "listening" log line.
    pub async fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = server_command(database_url);
        cmd.arg("serve")
            .env("ASSENT_LISTEN", "127.0.0.1:0")
            .env("ASSENT_LOG_FORMAT", "json")
            // As in TestServer: the flood limits and the mute after
            // repeated denials out of the way of tests not about them.
            .env("ASSENT_REQUESTS_PER_CLIENT_PER_MINUTE", "10000")
            .env("ASSENT_REQUESTS_PER_USER_PER_MINUTE", "10000")
            .env("ASSENT_MAX_PENDING_PER_USER", "10000")
            .env("ASSENT_MUTE_AFTER_DENIALS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn assent-server serve");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .expect("server did not report listening in time")
                .expect("read server log")
                .expect("server exited before listening");
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if entry["message"] == "listening" {
                break entry["address"].as_str().unwrap().to_string();
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            base_url: format!("http://{address}"),
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            send_sigterm(pid);
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("server did not stop after SIGTERM")
            .expect("wait for server")
    }
}

/// The `assent-device` binary next to this test executable.
pub fn device_binary() -> PathBuf {
    sibling_binary("assent-device")
}

/// Runs `assent-device --state DIR --json ARGS`; returns success, parsed
/// stdout (or `null`) and stderr.
pub async fn run_device(
    state: &std::path::Path,
    args: &[&str],
) -> (bool, serde_json::Value, String) {
    run_device_with_env(state, args, &[]).await
}

/// [`run_device`] with `env` set for the device (e.g. `ASSENT_CA_FILE`).
pub async fn run_device_with_env(
    state: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::path::Path)],
) -> (bool, serde_json::Value, String) {
    let output = Command::new(device_binary())
        .arg("--state")
        .arg(state)
        .arg("--json")
        .args(args)
        .env_remove("ASSENT_DEVICE_STATE")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .await
        .expect("run assent-device");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        output.status.success(),
        value,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The load generator (`assent-bench`, package `bench/`) next to this test executable.
pub fn bench_binary() -> PathBuf {
    sibling_binary("assent-bench")
}

/// The desktop app's binary (`assent-authenticator`) next to this test executable.
pub fn authenticator_binary() -> PathBuf {
    sibling_binary("assent-authenticator")
}
