//! The operator CLI as a process: pipes that close early, per-subcommand
//! help, aligned tables and where options may go.

use std::process::Stdio;

use assent_tests::{
    process::{run_cli, run_cli_json, server_command},
    Backend, TestDb,
};
use serde_json::Value;

/// Runs `assent-server ARGS` with stdout already closed by its reader.
async fn run_into_closed_pipe(url: &str, args: &[&str]) -> std::process::Output {
    let mut child = server_command(url)
        .args(args)
        .env("ASSENT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn assent-server");
    drop(child.stdout.take());
    child
        .wait_with_output()
        .await
        .expect("wait for assent-server")
}

#[tokio::test]
async fn a_reader_that_closes_the_pipe_ends_the_cli_quietly() {
    let db = TestDb::create(Backend::Sqlite).await;
    let url = db.url.as_str();
    run_cli(url, &["user", "create", "--sub", "auth0|alice"]).await;
    for args in [
        &["user", "list"][..],
        &["user", "list", "--json"],
        &["client", "create", "--name", "Piped"],
        &["migrate"],
    ] {
        let out = run_into_closed_pipe(url, args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?} said: {stderr}");
    }
}

#[tokio::test]
async fn each_subcommand_help_lists_the_options_it_reads() {
    let help = |args: &'static [&'static str]| async move {
        let out = server_command("").args(args).output().await.unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let user_create = help(&["user", "create", "--help"]).await;
    assert!(user_create.contains("--sub") && user_create.contains("--database-url"));
    for serve_only in ["--listen", "--issuer", "--poll-interval", "--push-timeout"] {
        assert!(
            !user_create.contains(serve_only),
            "{serve_only}:\n{user_create}"
        );
    }
    let ticket = help(&["enroll", "ticket", "--help"]).await;
    assert!(ticket.contains("--issuer") && !ticket.contains("--listen"));
    let serve = help(&["serve", "--help"]).await;
    for option in ["--listen", "--issuer", "--poll-interval", "--database-url"] {
        assert!(serve.contains(option), "{option}:\n{serve}");
    }
}

#[tokio::test]
async fn tables_are_as_wide_as_their_content_and_plain_in_a_pipe() {
    let db = TestDb::create(Backend::Sqlite).await;
    let url = db.url.as_str();
    let long_sub = "auth0|a-subject-far-longer-than-thirty-two-characters";
    run_cli(url, &["user", "create", "--sub", long_sub, "--name", "Ann"]).await;
    run_cli(
        url,
        &[
            "user",
            "create",
            "--sub",
            "bob",
            "--email",
            "bob@example.com",
        ],
    )
    .await;
    let table = run_cli(url, &["user", "list"]).await;
    assert!(
        !table.contains('\u{1b}'),
        "no escape codes in a pipe: {table:?}"
    );
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let email_column = lines[0].find("EMAIL").unwrap();
    assert!(email_column > long_sub.len(), "{table}");
    assert_eq!(
        lines[2].find("bob@example.com"),
        Some(email_column),
        "{table}"
    );
    let name_column = lines[0].find("NAME").unwrap();
    assert_eq!(lines[1].find("Ann"), Some(name_column), "{table}");
}

#[tokio::test]
async fn options_go_before_or_after_the_subcommand_and_flags_beat_the_environment() {
    let db = TestDb::create(Backend::Sqlite).await;
    let url = db.url.as_str();
    run_cli(url, &["user", "create", "--sub", "auth0|alice"]).await;
    let ticket = |args: Vec<&'static str>| async move {
        let out = server_command(url)
            .args(&args)
            .env("ASSENT_ISSUER", "http://from-env.test")
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out: Value = serde_json::from_slice(&out.stdout).unwrap();
        out["enrollment_uri"].as_str().unwrap().to_string()
    };
    let issue = ["enroll", "ticket", "--user", "auth0|alice", "--json"];
    let from_env = ticket(issue.to_vec()).await;
    assert!(from_env.contains("from-env.test"), "{from_env}");
    let before = ticket([&["--issuer", "http://before.test"][..], &issue].concat()).await;
    assert!(before.contains("before.test"), "{before}");
    let after = ticket([&issue[..], &["--issuer", "http://after.test"]].concat()).await;
    assert!(after.contains("after.test"), "{after}");

    // The database option works on either side of the subcommand.
    let listed = server_command("")
        .args(["user", "list", "--json", "--database-url", url])
        .output()
        .await
        .unwrap();
    let users: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(users[0]["sub"], "auth0|alice");
}

/// A poll interval the server would refuse is no concern of `user list`.
#[tokio::test]
async fn operator_commands_do_not_validate_server_settings() {
    let db = TestDb::create(Backend::Sqlite).await;
    let out = server_command(&db.url)
        .args(["user", "list", "--json"])
        .env("ASSENT_POLL_INTERVAL", "0")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `assent-server ARGS` against `url`; returns (success, stdout, stderr)
/// and how long it took.
async fn run_timed(url: &str, args: &[&str]) -> (bool, String, String, std::time::Duration) {
    let started = std::time::Instant::now();
    let output = server_command(url)
        .args(args)
        .output()
        .await
        .expect("run assent-server");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn database_errors_name_what_to_fix() {
    // A SQLite file in a directory that does not exist: the directory is
    // made, owner-only. Where a file stands in the way, the path is named.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("assent.db");
    let url = format!("sqlite://{}", missing.display());
    let (ok, _, stderr, _) = run_timed(&url, &["user", "list"]).await;
    assert!(ok, "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("no-such-dir"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    std::fs::write(dir.path().join("a-file"), b"").unwrap();
    let blocked = dir.path().join("a-file").join("assent.db");
    let (ok, _, stderr, _) = run_timed(
        &format!("sqlite://{}", blocked.display()),
        &["user", "list"],
    )
    .await;
    assert!(!ok);
    assert!(
        stderr.contains(&blocked.display().to_string()) && stderr.contains("a-file"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Nothing listens on port 1: refused at once, with the address.
    let (ok, _, stderr, took) =
        run_timed("postgres://postgres@127.0.0.1:1/assent", &["user", "list"]).await;
    assert!(!ok);
    assert!(
        stderr.contains("connection refused at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn postgres_commands_print_no_migration_notices() {
    let db = TestDb::create(Backend::Postgres).await;
    for _ in 0..2 {
        let (ok, _, stderr, _) = run_timed(&db.url, &["user", "list"]).await;
        assert!(ok, "{stderr}");
        assert!(
            !stderr.contains("NOTICE") && !stderr.contains("already exists"),
            "{stderr}"
        );
    }
}

/// The SQLite database holds every private key: Assent creates it (and
/// SQLite its -wal and -shm) owner-only, and refuses one others can read.
#[cfg(unix)]
#[tokio::test]
async fn the_database_is_created_owner_only_and_a_readable_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = assent_tests::db::private_tempdir();
    let file = dir.path().join("assent.db");
    let url = format!("sqlite://{}", file.display());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    run_cli(&url, &["user", "create", "--sub", "auth0|alice"]).await;
    assert_eq!(mode(&file), 0o600);
    for companion in ["assent.db-wal", "assent.db-shm"] {
        let path = dir.path().join(companion);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{companion}");
        }
    }

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = server_command(&url)
        .args(["user", "list"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("chmod 600") && stderr.contains("644"),
        "{stderr}"
    );

    let allowed = server_command(&url)
        .args(["user", "list"])
        .env("ASSENT_ALLOW_INSECURE_FILE_MODES", "true")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&allowed.stderr);
    assert!(allowed.status.success(), "{stderr}");
    assert!(
        stderr.contains("readable by other accounts"),
        "the operator is warned: {stderr}"
    );
    assert!(String::from_utf8_lossy(&allowed.stdout).contains("auth0|alice"));

    // A directory other accounts can enter or write in is refused too (one
    // that can write there could replace the files).
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    for companion in ["assent.db-wal", "assent.db-shm"] {
        let _ = std::fs::set_permissions(
            dir.path().join(companion),
            std::fs::Permissions::from_mode(0o600),
        );
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = server_command(&url)
        .args(["user", "list"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("chmod 700") && stderr.contains("755"),
        "{stderr}"
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
    run_cli(&url, &["user", "list"]).await;
}

/// Phone numbers and passwordless client settings through the CLI: numbers
/// are stored as E.164 (and refused when no country's plan has them),
/// unique, and a changed address loses its verified mark.
#[tokio::test]
async fn users_get_phone_numbers_and_clients_passwordless_settings() {
    let db = TestDb::create(Backend::Sqlite).await;
    let url = db.url.as_str();
    let alice = run_cli_json(
        url,
        &[
            "user",
            "create",
            "--sub",
            "auth0|alice",
            "--email",
            "alice@example.com",
            "--email-verified",
            "--phone",
            "+49 151 1234 5678",
            "--phone-verified",
            "--json",
        ],
    )
    .await;
    assert_eq!(alice["phone_number"], "+4915112345678");
    assert_eq!(alice["phone_verified"], true);

    let refused = server_command(url)
        .args([
            "user",
            "create",
            "--sub",
            "bob",
            "--phone",
            "0151 1234 5678",
        ])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("country code"));
    let taken = server_command(url)
        .args([
            "user",
            "create",
            "--sub",
            "bob",
            "--phone",
            "+4915112345678",
        ])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already exists"));

    let updated = run_cli_json(
        url,
        &[
            "user",
            "update",
            "auth0|alice",
            "--email",
            "alice@new.example",
            "--phone",
            "+1 415 555 2671",
            "--json",
        ],
    )
    .await;
    assert_eq!(updated["email"], "alice@new.example");
    assert_eq!(
        updated["email_verified"], false,
        "a new address is unverified"
    );
    assert_eq!(updated["phone_number"], "+14155552671");
    assert_eq!(updated["phone_verified"], false);
    let updated = run_cli_json(
        url,
        &[
            "user",
            "update",
            "auth0|alice",
            "--no-phone",
            "--email-verified",
            "true",
            "--json",
        ],
    )
    .await;
    assert_eq!(updated["phone_number"], Value::Null);
    assert_eq!(updated["email_verified"], true);

    let client = run_cli_json(
        url,
        &[
            "client",
            "create",
            "--name",
            "Shop",
            "--json",
            "--grant-types",
            "http://auth0.com/oauth/grant-type/passwordless/otp,authorization_code",
            "--redirect-uri",
            "https://shop.example.com/cb",
            "--redirect-uri",
            "http://localhost:3000/cb",
        ],
    )
    .await;
    assert_eq!(client["redirect_uris"].as_array().unwrap().len(), 2);
    assert_eq!(client["otp_code_in_response"], false);
    let id = client["client_id"].as_str().unwrap();
    let updated = run_cli_json(
        url,
        &[
            "client",
            "update",
            id,
            "--otp-code-in-response",
            "true",
            "--no-redirect-uris",
            "--grant-types",
            "urn:openid:params:grant-type:ciba",
            "--json",
        ],
    )
    .await;
    assert_eq!(updated["otp_code_in_response"], true);
    assert_eq!(updated["redirect_uris"], serde_json::json!([]));
    assert_eq!(
        updated["grant_types"],
        serde_json::json!(["urn:openid:params:grant-type:ciba"])
    );
    for bad in [
        "http://shop.example.com/cb",
        "https://shop.example.com/cb#x",
        "/cb",
    ] {
        let refused = server_command(url)
            .args(["client", "update", id, "--redirect-uri", bad])
            .output()
            .await
            .unwrap();
        assert!(!refused.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("redirect URI"),
            "{bad}"
        );
    }
}

assent_tests::on_both_backends! {
    /// Every operator change is in the audit log, newest first, with who
    /// (the OS user, or the admin token), from where, what and to what; a
    /// new client's secret and a new admin token never are.
    async fn operator_changes_are_written_to_the_audit_log(backend: Backend) {
        let server = assent_tests::TestServer::start(backend).await;
        let url = &server.db.url;
        let cli = |args: &'static [&'static str]| {
            let url = url.clone();
            async move {
                server_command(&url)
                    .args(args)
                    .env("USER", "olga")
                    .output()
                    .await
                    .unwrap()
            }
        };
        let client = cli(&["client", "create", "--name", "Desk", "--json"]).await;
        let client: Value = serde_json::from_slice(&client.stdout).unwrap();
        let client_id = client["client_id"].as_str().unwrap().to_string();
        let secret = client["client_secret"].as_str().unwrap().to_string();
        cli(&["user", "create", "--sub", "hugo", "--email", "hugo@example.com"]).await;
        cli(&["user", "update", "hugo", "--name", "Hugo"]).await;
        cli(&["user", "block", "hugo"]).await;
        cli(&["user", "unblock", "hugo"]).await;
        // Console roles: one of three, shown by user list.
        let refused = cli(&["user", "role", "set", "hugo", "boss"]).await;
        assert!(!refused.status.success());
        let set = cli(&["user", "role", "set", "hugo", "operator"]).await;
        assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
        let listed = run_cli_json(url, &["user", "list", "--json"]).await;
        assert_eq!(listed[0]["role"], "operator");
        let token = cli(&["admin", "token", "create", "--name", "helpdesk", "--json"]).await;
        let token: Value = serde_json::from_slice(&token.stdout).unwrap();
        let token_secret = token["token"].as_str().unwrap().to_string();
        let r = server
            .http
            .post(server.url("/admin/v1/enrollment-tickets"))
            .bearer_auth(&token_secret)
            .json(&serde_json::json!({"user": "hugo"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        let ticket: Value = r.json().await.unwrap();

        let log = run_cli_json(url, &["audit", "list", "--json"]).await;
        let entries = log.as_array().unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(
            actions,
            [
                "enrollment_ticket.create",
                "admin_token.create",
                "user.role",
                "user.unblock",
                "user.block",
                "user.update",
                "user.create",
                "client.create",
            ],
            "newest first"
        );
        let by_api = &entries[0];
        assert_eq!(by_api["target"], "hugo");
        assert_eq!(
            by_api["actor"],
            format!("admin-token:helpdesk ({})", token["id"].as_str().unwrap())
        );
        assert_eq!(by_api["source"], "127.0.0.1");
        for entry in &entries[1..] {
            assert_eq!(entry["actor"], "cli:olga", "{entry}");
            assert_eq!(entry["source"], "cli", "{entry}");
        }
        assert_eq!(entries[2]["details"], serde_json::json!({"role": "operator"}));
        assert_eq!(entries[5]["details"], serde_json::json!({"changed": ["name"]}));
        assert_eq!(entries[7]["target"], client_id.as_str());
        assert_eq!(entries[7]["details"]["name"], "Desk");
        // No secret, ticket or personal value in the log.
        let text = log.to_string();
        for secret in [
            secret.as_str(),
            token_secret.as_str(),
            ticket["enrollment_uri"].as_str().unwrap().split("ticket=").nth(1).unwrap().split('&').next().unwrap(),
            "hugo@example.com",
        ] {
            assert!(!text.contains(secret), "{secret} is in the audit log");
        }
        // Filtered by action.
        let users = run_cli_json(url, &["audit", "list", "--action", "user.", "--json"]).await;
        assert_eq!(users.as_array().unwrap().len(), 5);
        let table = run_cli(url, &["audit", "list"]).await;
        assert!(table.contains("cli:olga") && table.contains("client.create"), "{table}");
    }
}
