//! `assent-bench`: full-cycle load generator for Assent.
//!
//! One cycle: a call-center client calls `/bc-authorize` → the user's device
//! learns of it (event stream or Web Push on loopback) → fetches and
//! verifies the signed challenge → signs an approval → the client's token
//! poll gets the tokens. N clients and N devices (one user each) run cycles
//! back to back for the duration.
//!
//! By default the tool starts `assent-server serve` itself (a child process,
//! the binary next to this one) on a fresh SQLite file or PostgreSQL
//! database, so that the server's CPU time and peak RSS can be read from
//! /proc. `--url` with `--database-url` targets a running server instead.
//!
//!   cargo build --release -p assent-server -p assent-bench
//!   target/release/assent-bench --concurrency 32 --duration 20
//!
//! Scale runs: `--backlog 100000` first fills the server with pending
//! requests for users without devices (they stay pending), `--idle-streams
//! 1000` holds that many more event streams open, each by its own enrolled
//! device, and a long `--duration` is a soak: the server's RSS is sampled
//! every second of the measured time.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use assent_device::DeviceClient;
use assent_shared::{
    oauth::{BackchannelAuthenticationResponse, CIBA_GRANT_TYPE},
    protocol::EnrollmentUri,
};
use assent_tests::{
    push_service::{Behavior, TestPushService},
    Backend, TestDb,
};
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::Mutex,
};

#[derive(Parser)]
#[command(name = "assent-bench", about = "Full-cycle load generator for Assent")]
struct Args {
    /// Virtual clients, each with its own user and device.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// How devices learn of requests.
    #[arg(long, value_enum, default_value_t = Delivery::Events)]
    delivery: Delivery,
    /// Database of the server this tool starts.
    #[arg(long, value_enum, default_value_t = Db::Sqlite)]
    database: Db,
    /// Target a running server instead (needs --database-url for setup).
    #[arg(long, requires = "database_url")]
    url: Option<String>,
    /// Database of the running server (users, clients and tickets are created there).
    #[arg(long)]
    database_url: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Pending requests to create before the run (for users without
    /// devices, so they stay pending): the backlog the server must not slow
    /// down with.
    #[arg(long, default_value_t = 0)]
    backlog: u64,
    /// Event streams to hold open during the run besides the cycling
    /// devices', each by its own enrolled (idle) device.
    #[arg(long, default_value_t = 0)]
    idle_streams: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Delivery {
    Events,
    Push,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Db {
    Sqlite,
    Postgres,
}

const STEPS: [&str; 5] = [
    "bc_authorize",
    "device_notified",
    "fetch_challenge",
    "approve",
    "token",
];

#[derive(Default)]
struct Stats {
    steps: [Vec<u32>; 5],
    cycle: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.with_file_name(format!("assent-server{}", std::env::consts::EXE_SUFFIX))
}

/// A PostgreSQL database this tool created has its key-encryption key in a
/// file of its own (as in the tests); SQLite keeps it beside the database,
/// and a server given with `--url` uses what the environment says.
fn with_test_kek(cmd: &mut Command, database_url: &str) {
    if let Some(kek) = assent_tests::db::postgres_kek_file(database_url).filter(|k| k.exists()) {
        cmd.env("ASSENT_KEY_ENCRYPTION_KEY_FILE", kek);
    }
}

async fn cli(database_url: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = Command::new(server_binary());
    with_test_kek(&mut cmd, database_url);
    let out = cmd
        .env("ASSENT_DATABASE_URL", database_url)
        .env("ASSENT_LOG", "warn")
        .args(args)
        .output()
        .await
        .with_context(|| {
            format!(
                "running {} (build it with `cargo build --release -p assent-server`)",
                server_binary().display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "assent-server {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

struct Server {
    base_url: String,
    child: Option<Child>,
}

async fn start_server(database_url: &str, push_allowed: Option<String>) -> anyhow::Result<Server> {
    let mut cmd = Command::new(server_binary());
    with_test_kek(&mut cmd, database_url);
    cmd.arg("serve")
        .env("ASSENT_DATABASE_URL", database_url)
        .env("ASSENT_LISTEN", "127.0.0.1:0")
        .env("ASSENT_LOG_FORMAT", "json")
        .env("ASSENT_LOG", "info")
        .env("ASSENT_POLL_INTERVAL", "1")
        // One user per pair runs hundreds of cycles a minute: the flood
        // limits are raised out of the way, but still counted on every
        // request, so their cost is in the figures.
        .env("ASSENT_REQUESTS_PER_CLIENT_PER_MINUTE", "4000000000")
        .env("ASSENT_REQUESTS_PER_USER_PER_MINUTE", "4000000000")
        .env("ASSENT_MAX_PENDING_PER_USER", "4000000000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(host) = push_allowed {
        cmd.env("ASSENT_PUSH_ALLOWED_HOSTS", host);
    }
    let mut child = cmd.spawn().context("starting assent-server")?;
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next_line()
            .await?
            .context("assent-server exited during start-up")?;
        if let Ok(entry) = serde_json::from_str::<Value>(&line) {
            if entry["message"] == "listening" {
                break entry["address"].as_str().unwrap_or_default().to_string();
            }
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server {
        base_url: format!("http://{address}"),
        child: Some(child),
    })
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime of `pid` in seconds, and its peak RSS in KiB.
fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hwm = status_kib(pid, "VmHWM")?;
    Some((ticks / clock_ticks_per_second(), hwm))
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

struct Pair {
    http: reqwest::Client,
    base_url: String,
    client_id: String,
    client_secret: String,
    user: String,
    device: DeviceClient,
    push_name: String,
}

enum Notifier {
    Events(assent_device::events::EventStream),
    Push(tokio::sync::broadcast::Receiver<assent_tests::push_service::Received>),
}

impl Notifier {
    /// Waits for the next new request announced to this device; returns its id.
    async fn next_request(&mut self, push_name: &str) -> anyhow::Result<String> {
        match self {
            Notifier::Events(stream) => loop {
                let event = stream
                    .next()
                    .await
                    .map_err(|e| anyhow::anyhow!("event stream: {e}"))?
                    .context("event stream closed")?;
                if event.kind == "request" {
                    return event.request_id.context("event without request id");
                }
            },
            Notifier::Push(rx) => loop {
                let message = match rx.recv().await {
                    Ok(m) => m,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(e) => bail!("push receiver: {e}"),
                };
                if message.subscriber == push_name {
                    return message.payload["request_id"]
                        .as_str()
                        .map(str::to_string)
                        .context("push payload without request id");
                }
            },
        }
    }
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

/// One full cycle; returns the duration of each step.
async fn cycle(pair: &Pair, notifier: &mut Notifier, n: u64) -> Result<[Duration; 5], String> {
    let t0 = Instant::now();
    let response = pair
        .http
        .post(format!("{}/bc-authorize", pair.base_url))
        .basic_auth(&pair.client_id, Some(&pair.client_secret))
        .form(&[
            ("scope", "openid"),
            ("login_hint", pair.user.as_str()),
            ("binding_message", &format!("Cycle {n}")),
        ])
        .send()
        .await
        .map_err(|_| "bc_authorize: transport".to_string())?;
    if !response.status().is_success() {
        return Err(format!("bc_authorize: HTTP {}", response.status().as_u16()));
    }
    let ack: BackchannelAuthenticationResponse = response
        .json()
        .await
        .map_err(|_| "bc_authorize: body".to_string())?;
    let t1 = Instant::now();
    // This cycle's request, by its binding message. After a fault (the
    // server restarted, a connection lost) an earlier cycle's request can
    // be announced late or twice (a push sent again, an event replayed):
    // such announcements are skipped, or this cycle would approve a request
    // its client gave up on, and every later one would stay one behind.
    let binding_message = format!("Cycle {n}");
    let (challenge, t2) = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let request_id = notifier
                .next_request(&pair.push_name)
                .await
                .map_err(|e| format!("notify: {e}"))?;
            let t2 = Instant::now();
            let pending =
                pair.device.pending().await.map_err(|e| {
                    format!("fetch: {}", e.code().map_or("transport", |c| c.as_str()))
                })?;
            if !pending.rejected.is_empty() {
                return Err("fetch: challenge signature rejected".to_string());
            }
            if let Some(challenge) = pending.verified.into_iter().find(|c| {
                c.claims.request_id == request_id && c.claims.binding_message == binding_message
            }) {
                return Ok((challenge, t2));
            }
        }
    })
    .await
    .map_err(|_| "notify: timed out".to_string())??;
    let t3 = Instant::now();
    pair.device
        .decide(
            &challenge,
            &assent_device::Answer::approve(ack.match_code.as_deref()),
        )
        .await
        .map_err(|e| format!("approve: {}", e.code().map_or("transport", |c| c.as_str())))?;
    let t4 = Instant::now();
    let response = pair
        .http
        .post(format!("{}/oauth/token", pair.base_url))
        .basic_auth(&pair.client_id, Some(&pair.client_secret))
        .form(&[
            ("grant_type", CIBA_GRANT_TYPE),
            ("auth_req_id", ack.auth_req_id.as_str()),
        ])
        .send()
        .await
        .map_err(|_| "token: transport".to_string())?;
    if !response.status().is_success() {
        let body: Value = response.json().await.unwrap_or_default();
        return Err(format!(
            "token: {}",
            body["error"].as_str().unwrap_or("HTTP error")
        ));
    }
    let t5 = Instant::now();
    Ok([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4])
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn summary(values: &mut [u32]) -> Value {
    values.sort_unstable();
    json!({
        "p50_ms": percentile(values, 0.50),
        "p95_ms": percentile(values, 0.95),
        "p99_ms": percentile(values, 0.99),
        "max_ms": percentile(values, 1.0),
    })
}

/// Fills the server with `count` pending requests spread over users who
/// have no device (1,000 requests each), from 64 concurrent clients.
/// Returns how long it took.
async fn create_backlog(
    base_url: &str,
    store: &assent_server::storage::Store,
    client_id: &str,
    client_secret: &str,
    count: u64,
    run_id: &str,
) -> anyhow::Result<Duration> {
    let users = count.div_ceil(1000);
    for u in 0..users {
        assent_tests::client::create_user(store, &format!("backlog-{run_id}-{u}"), None, None)
            .await;
    }
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (next, http) = (next.clone(), reqwest::Client::new());
        let (base_url, client_id, client_secret, run_id) = (
            base_url.to_string(),
            client_id.to_string(),
            client_secret.to_string(),
            run_id.to_string(),
        );
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                let user = format!("backlog-{run_id}-{}", n / 1000);
                let response = http
                    .post(format!("{base_url}/bc-authorize"))
                    .basic_auth(&client_id, Some(&client_secret))
                    .form(&[
                        ("scope", "openid"),
                        ("login_hint", user.as_str()),
                        ("binding_message", &format!("Backlog {n}")),
                        ("requested_expiry", "300"),
                    ])
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("backlog bc-authorize: HTTP {}", response.status());
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

/// Streams held open by idle devices; `open` counts those still open.
struct IdleStreams {
    _drains: tokio::task::JoinSet<()>,
    open: Arc<std::sync::atomic::AtomicUsize>,
}

/// Enrolls `count` more devices (one user each) and opens an event stream
/// for each; the streams are drained in the background until the run ends.
async fn open_idle_streams(
    base_url: &str,
    database_url: &str,
    store: &assent_server::storage::Store,
    count: usize,
    run_id: &str,
) -> anyhow::Result<IdleStreams> {
    let admin: Value = serde_json::from_str(
        &cli(
            database_url,
            &[
                "admin",
                "token",
                "create",
                "--name",
                "assent-bench",
                "--json",
            ],
        )
        .await?,
    )?;
    let admin_token = admin["token"].as_str().context("admin token")?.to_string();
    let http = reqwest::Client::new();
    let mut streams = tokio::task::JoinSet::new();
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..count {
        let user = format!("idle-{run_id}-{i}");
        assent_tests::client::create_user(store, &user, None, None).await;
        let ticket: Value = http
            .post(format!("{base_url}/admin/v1/enrollment-tickets"))
            .bearer_auth(&admin_token)
            .json(&json!({ "user": user }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let link = EnrollmentUri::parse(
            ticket["enrollment_uri"]
                .as_str()
                .context("enrollment_uri")?,
        )?;
        let device = DeviceClient::enroll(&link, &format!("idle device {i}"), "bench", None)
            .await
            .map_err(|e| anyhow::anyhow!("enrolling an idle device: {e}"))?;
        let mut stream = device
            .events(None)
            .await
            .map_err(|e| anyhow::anyhow!("opening an idle stream: {e}"))?;
        open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let still_open = open.clone();
        streams.spawn(async move {
            while let Ok(Some(_)) = stream.next().await {}
            still_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
    Ok(IdleStreams {
        _drains: streams,
        open,
    })
}

async fn setup(
    args: &Args,
) -> anyhow::Result<(Server, String, Option<TestPushService>, Option<TestDb>)> {
    let push = match args.delivery {
        Delivery::Push => Some(TestPushService::start().await),
        Delivery::Events => None,
    };
    if let Some(url) = &args.url {
        let db = args.database_url.clone().unwrap();
        return Ok((
            Server {
                base_url: url.trim_end_matches('/').to_string(),
                child: None,
            },
            db,
            push,
            None,
        ));
    }
    let backend = match args.database {
        Db::Sqlite => Backend::Sqlite,
        Db::Postgres => Backend::Postgres,
    };
    let db = TestDb::create(backend).await;
    let url = db.url.clone();
    cli(&url, &["migrate"]).await?;
    let server = start_server(&url, push.as_ref().map(|p| p.host_port())).await?;
    Ok((server, url, push, Some(db)))
}

async fn run(args: Args) -> anyhow::Result<Value> {
    let (server, database_url, push, _db) = setup(&args).await?;
    let client: Value = serde_json::from_str(
        &cli(
            &database_url,
            &[
                "client",
                "create",
                "--name",
                "assent-bench",
                "--id-token-signed-response-alg",
                "ES256",
                "--grant-types",
                CIBA_GRANT_TYPE,
                "--json",
            ],
        )
        .await?,
    )?;
    let (client_id, client_secret) = (
        client["client_id"].as_str().unwrap().to_string(),
        client["client_secret"].as_str().unwrap().to_string(),
    );
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut pairs = Vec::new();
    for i in 0..args.concurrency {
        let user = format!("bench-{run_id}-{i}");
        cli(&database_url, &["user", "create", "--sub", &user]).await?;
        let ticket: Value = serde_json::from_str(
            &cli(
                &database_url,
                &[
                    "--issuer",
                    &server.base_url,
                    "enroll",
                    "ticket",
                    "--user",
                    &user,
                    "--json",
                ],
            )
            .await?,
        )?;
        let link = EnrollmentUri::parse(ticket["enrollment_uri"].as_str().unwrap())?;
        let push_name = format!("device-{i}");
        let subscription = push
            .as_ref()
            .map(|p| p.subscribe(&push_name, Behavior::Accept));
        let device =
            DeviceClient::enroll(&link, &format!("bench device {i}"), "bench", subscription)
                .await
                .map_err(|e| anyhow::anyhow!("enrolling: {e}"))?;
        pairs.push(Pair {
            http: reqwest::Client::new(),
            base_url: server.base_url.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            user,
            device,
            push_name,
        });
    }

    let store = assent_server::storage::Store::connect(&database_url, 2).await?;
    let backlog_seconds = if args.backlog > 0 {
        let took = create_backlog(
            &server.base_url,
            &store,
            &client_id,
            &client_secret,
            args.backlog,
            &run_id,
        )
        .await?;
        Some(took.as_secs_f64())
    } else {
        None
    };
    let idle_streams = if args.idle_streams > 0 {
        Some(
            open_idle_streams(
                &server.base_url,
                &database_url,
                &store,
                args.idle_streams,
                &run_id,
            )
            .await?,
        )
    } else {
        None
    };

    // Every device listens before the clock starts: opening 128 streams
    // takes seconds, which must not come out of the measured time.
    let mut listening = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let notifier = match &push {
            Some(p) => Notifier::Push(p.subscribe_received()),
            None => Notifier::Events(
                pair.device
                    .events(None)
                    .await
                    .map_err(|e| anyhow::anyhow!("opening event stream: {e}"))?,
            ),
        };
        listening.push((pair, notifier));
    }

    let stats = Arc::new(Mutex::new(Stats::default()));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let warmup = Duration::from_secs_f64(args.warmup);
    let end = warmup + Duration::from_secs_f64(args.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for (pair, mut notifier) in listening {
        let (stats, measuring) = (stats.clone(), measuring.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < end {
                n += 1;
                let cycle_start = Instant::now();
                let result = cycle(&pair, &mut notifier, n).await;
                if !measuring.load(std::sync::atomic::Ordering::Relaxed) {
                    continue;
                }
                let mut stats = stats.lock().await;
                match result {
                    Ok(steps) => {
                        for (i, d) in steps.iter().enumerate() {
                            stats.steps[i].push(micros(*d));
                        }
                        stats.cycle.push(micros(cycle_start.elapsed()));
                    }
                    Err(kind) => *stats.errors.entry(kind).or_default() += 1,
                }
            }
        });
    }

    tokio::time::sleep(warmup).await;
    let pid = server.child.as_ref().and_then(|c| c.id());
    let usage_before = pid.and_then(process_usage);
    measuring.store(true, std::sync::atomic::Ordering::Relaxed);
    let measured_from = Instant::now();
    // RSS every second of the measured time (a soak's stability).
    let rss_samples = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let sampler = pid.map(|pid| {
        let samples = rss_samples.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Some(kib) = status_kib(pid, "VmRSS") {
                    samples.lock().unwrap().push(kib);
                }
            }
        })
    });
    tokio::time::sleep(end.saturating_sub(started.elapsed())).await;
    measuring.store(false, std::sync::atomic::Ordering::Relaxed);
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    let idle_streams_open = idle_streams
        .as_ref()
        .map(|s| s.open.load(std::sync::atomic::Ordering::Relaxed));
    let measured = measured_from.elapsed().as_secs_f64();
    let usage_after = pid.and_then(process_usage);
    while tasks.join_next().await.is_some() {}
    // After the last cycle finished: what is left pending is the backlog.
    let pending_at_end = store
        .count_pending_requests(assent_server::clock::now_ms())
        .await
        .ok();

    let mut stats = stats.lock().await;
    let cycles = stats.cycle.len() as u64;
    let cpu = match (usage_before, usage_after) {
        (Some((a, _)), Some((b, _))) => Some(b - a),
        _ => None,
    };
    let mut steps = serde_json::Map::new();
    for (i, name) in STEPS.iter().enumerate() {
        steps.insert(name.to_string(), summary(&mut stats.steps[i]));
    }
    let errors: u64 = stats.errors.values().sum();
    let report = json!({
        "concurrency": args.concurrency,
        "delivery": match args.delivery { Delivery::Events => "events", Delivery::Push => "push" },
        "database": if args.url.is_some() { "external" } else if args.database == Db::Postgres { "postgres" } else { "sqlite" },
        "measured_seconds": measured,
        "cycles": cycles,
        "cycles_per_second": cycles as f64 / measured,
        "cycle": summary(&mut stats.cycle),
        "steps": steps,
        "errors": errors,
        "errors_by_kind": stats.errors,
        "server_cpu_seconds": cpu,
        "server_peak_rss_mib": usage_after.map(|(_, kib)| kib as f64 / 1024.0),
        "cycles_per_server_cpu_second": cpu.filter(|c| *c > 0.0).map(|c| cycles as f64 / c),
        "server_rss_mib": rss_summary(&rss_samples.lock().unwrap()),
        "backlog": args.backlog,
        "backlog_fill_seconds": backlog_seconds,
        "pending_requests_at_end": pending_at_end,
        "idle_streams": args.idle_streams,
        "idle_streams_open_at_end": idle_streams_open,
    });
    drop(idle_streams);
    if let Some(mut child) = server.child {
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
    Ok(report)
}

/// First, last, lowest and highest of the per-second RSS samples, in MiB,
/// and the samples themselves at 10-second steps.
fn rss_summary(samples: &[u64]) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    let mib = |kib: u64| (kib as f64 / 1024.0 * 10.0).round() / 10.0;
    json!({
        "first": mib(samples[0]),
        "last": mib(*samples.last().unwrap()),
        "min": mib(*samples.iter().min().unwrap()),
        "max": mib(*samples.iter().max().unwrap()),
        "every_10s": samples.iter().step_by(10).map(|k| mib(*k)).collect::<Vec<_>>(),
    })
}

fn print_table(r: &Value) {
    println!(
        "assent-bench: {} clients+devices, delivery {}, database {}",
        r["concurrency"],
        r["delivery"].as_str().unwrap_or(""),
        r["database"].as_str().unwrap_or("")
    );
    println!(
        "  cycles            {} in {:.1} s = {:.0} cycles/s",
        r["cycles"],
        r["measured_seconds"].as_f64().unwrap_or(0.0),
        r["cycles_per_second"].as_f64().unwrap_or(0.0)
    );
    if let Some(cpu) = r["server_cpu_seconds"].as_f64() {
        println!(
            "  server CPU        {cpu:.2} s  → {:.0} cycles per server CPU-second",
            r["cycles_per_server_cpu_second"].as_f64().unwrap_or(0.0)
        );
        println!(
            "  server peak RSS   {:.1} MiB",
            r["server_peak_rss_mib"].as_f64().unwrap_or(0.0)
        );
        let rss = &r["server_rss_mib"];
        if rss.is_object() {
            println!(
                "  server RSS        {} MiB at start of measuring, {} at end (min {}, max {})",
                rss["first"], rss["last"], rss["min"], rss["max"]
            );
        }
    }
    if r["backlog"].as_u64().unwrap_or(0) > 0 {
        println!(
            "  backlog           {} pending requests created in {:.1} s; {} pending at end",
            r["backlog"],
            r["backlog_fill_seconds"].as_f64().unwrap_or(0.0),
            r["pending_requests_at_end"]
        );
    }
    if r["idle_streams"].as_u64().unwrap_or(0) > 0 {
        println!(
            "  idle streams      {} opened, {} still open at end",
            r["idle_streams"], r["idle_streams_open_at_end"]
        );
    }
    println!(
        "  {:<18} {:>9} {:>9} {:>9} {:>9}",
        "step (ms)", "p50", "p95", "p99", "max"
    );
    let row = |name: &str, v: &Value| {
        println!(
            "  {:<18} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            v["p50_ms"].as_f64().unwrap_or(0.0),
            v["p95_ms"].as_f64().unwrap_or(0.0),
            v["p99_ms"].as_f64().unwrap_or(0.0),
            v["max_ms"].as_f64().unwrap_or(0.0)
        );
    };
    for name in STEPS {
        row(name, &r["steps"][name]);
    }
    row("whole cycle", &r["cycle"]);
    println!(
        "  errors            {} {}",
        r["errors"], r["errors_by_kind"]
    );
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let json_out = args.json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match runtime.block_on(run(args)) {
        Ok(report) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&report).unwrap());
            } else {
                print_table(&report);
            }
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("assent-bench: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
