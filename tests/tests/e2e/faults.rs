//! Faults the server survives (docs/operations.md, "Failures the server
//! survives"), under load from `assent-bench` and from clients that keep a
//! ledger of every answer they got:
//!
//! - `kill -9` of the server and a restart on the same database, on both
//!   databases: no acknowledged request is lost, none is answered with
//!   tokens twice, every push job and device event left behind is
//!   delivered after the restart;
//! - PostgreSQL stopped hard and started again while the server runs (on a
//!   PostgreSQL of the test's own): `/readyz` says not ready while it is
//!   down and ready after, without a restart of the server; the load goes
//!   on; the server's `LISTEN` connection comes back and the device events
//!   committed while it was away still reach the streams.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use assent_device::{events::EventStream, DeviceClient};
use assent_server::{
    clock::{now_ms, Clock},
    decision::{self, Decision, DecisionError},
    secrets::sha256_hex,
    storage::{RequestStatus, Store},
};
use assent_shared::{
    oauth::{BackchannelAuthenticationResponse, TokenResponse, CIBA_GRANT_TYPE},
    protocol::{EnrollmentUri, PushSubscription},
};
use assent_tests::{
    device::next_event,
    private_pg::{unused_port, PrivatePostgres},
    process::{bench_binary, cli_enrollment_link, run_cli, CliClient, ServeProcess},
    push_service::{Behavior, TestPushService},
    wait::poll_until,
    TestDb,
};
use reqwest::StatusCode;
use serde_json::Value;

/// Clients keeping a ledger, beside the load generator's.
const WORKERS: usize = 2;

/// What the ledger clients were told about one request.
struct Tracked {
    auth_req_id: String,
    /// Token responses received for it.
    tokens: usize,
    /// A token poll got no answer (connection lost, server error): the
    /// request may have been exchanged all the same, its tokens unseen.
    answer_lost: bool,
}

/// Every request the ledger clients were acknowledged, and what else they
/// saw that they should not have.
#[derive(Default)]
struct Ledger {
    requests: Mutex<Vec<Tracked>>,
    /// The refresh token of every token response, to tell none came twice.
    refresh_tokens: Mutex<Vec<String>>,
    unexpected: Mutex<Vec<String>>,
}

impl Ledger {
    fn acknowledged(&self, auth_req_id: String) -> usize {
        let mut requests = self.requests.lock().unwrap();
        requests.push(Tracked {
            auth_req_id,
            tokens: 0,
            answer_lost: false,
        });
        requests.len() - 1
    }

    fn record(&self, index: usize, answer: PollAnswer) {
        match answer {
            PollAnswer::Tokens(tokens) => {
                self.requests.lock().unwrap()[index].tokens += 1;
                match tokens.refresh_token {
                    Some(t) => self.refresh_tokens.lock().unwrap().push(t),
                    None => self.unexpected("a token response without refresh token".into()),
                }
            }
            PollAnswer::Lost => self.requests.lock().unwrap()[index].answer_lost = true,
            PollAnswer::Refused(status, body) => {
                let id = self.requests.lock().unwrap()[index].auth_req_id.clone();
                self.unexpected(format!("poll of {id}: {status} {body}"))
            }
        }
    }

    fn unexpected(&self, what: String) {
        self.unexpected.lock().unwrap().push(what);
    }

    fn token_responses(&self) -> usize {
        self.requests.lock().unwrap().iter().map(|t| t.tokens).sum()
    }
}

enum PollAnswer {
    Tokens(TokenResponse),
    /// No answer, or a server error: the outcome is unknown.
    Lost,
    /// An answer other than tokens.
    Refused(StatusCode, String),
}

fn http_client() -> reqwest::Client {
    // Bounded: during a database outage a request waits for the pool.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// `/bc-authorize` for `user` with a refresh token asked for; the
/// `auth_req_id` when acknowledged.
async fn bc_authorize(
    http: &reqwest::Client,
    base: &str,
    client: &CliClient,
    user: &str,
    binding_message: &str,
) -> Option<String> {
    let response = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[
            ("scope", "openid offline_access"),
            ("login_hint", user),
            ("binding_message", binding_message),
        ])
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let ack: BackchannelAuthenticationResponse = response.json().await.ok()?;
    Some(ack.auth_req_id)
}

async fn poll(
    http: &reqwest::Client,
    base: &str,
    client: &CliClient,
    auth_req_id: &str,
) -> PollAnswer {
    let sent = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[
            ("grant_type", CIBA_GRANT_TYPE),
            ("auth_req_id", auth_req_id),
        ])
        .send()
        .await;
    let Ok(response) = sent else {
        return PollAnswer::Lost;
    };
    let status = response.status();
    let Ok(body) = response.text().await else {
        return PollAnswer::Lost;
    };
    if status.is_server_error() {
        return PollAnswer::Lost;
    }
    if status == StatusCode::OK {
        if let Ok(tokens) = serde_json::from_str(&body) {
            return PollAnswer::Tokens(tokens);
        }
    }
    PollAnswer::Refused(status, body)
}

/// Pacing for retries while the server or the database is away.
async fn pause() {
    tokio::time::sleep(Duration::from_millis(25)).await;
}

/// Approves the request as `user`, the way a device's decision ends,
/// through the database; retries while the database is away. `false` if
/// the request is unknown (lost) or `stop` came first.
async fn approve(store: &Store, auth_req_id: &str, user: &str, stop: &AtomicBool) -> bool {
    while !stop.load(Ordering::Relaxed) {
        let id = match decision::request_id_for_auth_req_id(store, auth_req_id).await {
            Ok(Some(id)) => id,
            Ok(None) => return false,
            Err(_) => {
                pause().await;
                continue;
            }
        };
        match decision::decide(store, &Clock::default(), &id, user, Decision::Approve).await {
            // An approval whose answer was lost, retried.
            Ok(()) | Err(DecisionError::AlreadyDecided(RequestStatus::Approved)) => return true,
            Err(DecisionError::Storage(_)) => pause().await,
            Err(other) => panic!("approving {id}: {other}"),
        }
    }
    false
}

/// A ledger client: starts a request, approves it, collects its tokens with
/// one poll; again and again until `stop`.
async fn worker(
    base: String,
    database_url: String,
    client: Arc<CliClient>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    number: usize,
) {
    let http = http_client();
    let store = Store::connect(&database_url, 2).await.unwrap();
    let mut cycle = 0;
    while !stop.load(Ordering::Relaxed) {
        cycle += 1;
        let message = format!("Worker {number} {cycle}");
        let Some(auth_req_id) = bc_authorize(&http, &base, &client, "alice", &message).await else {
            pause().await;
            continue;
        };
        let index = ledger.acknowledged(auth_req_id.clone());
        if !approve(&store, &auth_req_id, "alice", &stop).await {
            continue; // the final check finds it pending (or lost)
        }
        let answer = poll(&http, &base, &client, &auth_req_id).await;
        ledger.record(index, answer);
    }
    store.close().await;
}

fn start_workers(
    base: &str,
    database_url: &str,
    client: &Arc<CliClient>,
    ledger: &Arc<Ledger>,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinSet<()> {
    let mut workers = tokio::task::JoinSet::new();
    for number in 0..WORKERS {
        workers.spawn(worker(
            base.to_string(),
            database_url.to_string(),
            client.clone(),
            ledger.clone(),
            stop.clone(),
            number,
        ));
    }
    workers
}

/// After the fault: every acknowledged request is in the database, and
/// yields its tokens exactly once. Requests left pending or approved are
/// approved and collected now; a request already exchanged whose answer the
/// client never saw is accepted only for a poll that was cut off by the
/// fault, at most `max_lost_answers` of them. Returns how many requests
/// were checked.
async fn check_ledger(
    ledger: &Ledger,
    base: &str,
    client: &CliClient,
    store: &Store,
    max_lost_answers: usize,
) -> usize {
    let http = http_client();
    let never = AtomicBool::new(false);
    assert_eq!(
        *ledger.unexpected.lock().unwrap(),
        Vec::<String>::new(),
        "answers the ledger clients should not have had"
    );
    let under_load = ledger.token_responses();
    let requests = std::mem::take(&mut *ledger.requests.lock().unwrap());
    let mut lost_answers = Vec::new();
    let mut collected_now = 0;
    for tracked in &requests {
        let id = &tracked.auth_req_id;
        let stored = store
            .auth_request_by_auth_req_id(&sha256_hex(id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged request {id} was lost"));
        assert!(tracked.tokens <= 1, "{id}: tokens issued twice");
        match (tracked.tokens, stored.status) {
            (1, RequestStatus::Issued) => {}
            (0, RequestStatus::Issued) => {
                assert!(
                    tracked.answer_lost,
                    "{id} was exchanged, but not by any poll of its client"
                );
                lost_answers.push(id.clone());
            }
            (0, RequestStatus::Pending | RequestStatus::Approved) => {
                if stored.status == RequestStatus::Pending {
                    assert!(approve(store, id, &stored.user_sub, &never).await);
                }
                match poll(&http, base, client, id).await {
                    PollAnswer::Tokens(tokens) => {
                        let refresh = tokens.refresh_token.expect("a refresh token");
                        ledger.refresh_tokens.lock().unwrap().push(refresh);
                        collected_now += 1;
                    }
                    PollAnswer::Lost => panic!("{id}: the poll after the fault got no answer"),
                    PollAnswer::Refused(status, body) => {
                        panic!("{id} ({}) yields no tokens: {status} {body}", stored.status)
                    }
                }
            }
            (tokens, status) => panic!("{id}: {tokens} token responses, stored as {status}"),
        }
        // The second collection is refused, whoever made the first.
        match poll(&http, base, client, id).await {
            PollAnswer::Refused(StatusCode::BAD_REQUEST, body) => {
                let body: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["error"], "invalid_grant", "{id}: {body}");
            }
            PollAnswer::Tokens(_) => panic!("{id}: tokens issued twice"),
            PollAnswer::Lost => panic!("{id}: the replayed poll got no answer"),
            PollAnswer::Refused(status, body) => panic!("{id}: replay answered {status} {body}"),
        }
    }
    assert!(
        lost_answers.len() <= max_lost_answers,
        "more exchanged requests without an answer than polls the fault cut off: {lost_answers:?}"
    );
    // Every token response carried a refresh token of its own, and each is
    // stored once; a poll cut off may have stored one nobody saw.
    let refresh_tokens = ledger.refresh_tokens.lock().unwrap().clone();
    let distinct: HashSet<&String> = refresh_tokens.iter().collect();
    assert_eq!(
        distinct.len(),
        refresh_tokens.len(),
        "a refresh token came twice"
    );
    let stored = store
        .raw_i64(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE client_id = '{}'",
            client.client_id
        ))
        .await
        .unwrap() as usize;
    assert!(
        stored >= refresh_tokens.len() && stored <= refresh_tokens.len() + lost_answers.len(),
        "{stored} refresh tokens stored for {} token responses and {} lost answers",
        refresh_tokens.len(),
        lost_answers.len()
    );
    eprintln!(
        "ledger: {} requests, {} collected under load, {collected_now} collected after, {} answers lost to the fault",
        requests.len(),
        under_load,
        lost_answers.len()
    );
    requests.len()
}

/// `assent-bench` against the running server at `base`, cycling until
/// killed (dropped).
struct Bench {
    child: Mutex<tokio::process::Child>,
    stderr: Arc<Mutex<String>>,
}

impl Bench {
    fn start(base: &str, database_url: &str, delivery: &str) -> Self {
        let mut child = tokio::process::Command::new(bench_binary())
            .args(["--url", base, "--database-url", database_url])
            .args(["--delivery", delivery, "--concurrency", "4"])
            .args(["--duration", "600", "--warmup", "0", "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start assent-bench");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stderr.take().unwrap(),
        ));
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        Self {
            child: Mutex::new(child),
            stderr,
        }
    }

    /// Its cycles that ended with tokens, of requests made after `since_ms`.
    async fn completed_since(&self, store: &Store, since_ms: i64) -> i64 {
        let exited = self.child.lock().unwrap().try_wait();
        if let Ok(Some(status)) = exited {
            panic!(
                "assent-bench exited ({status}): {}",
                self.stderr.lock().unwrap()
            );
        }
        let sql = format!(
            "SELECT COUNT(*) FROM auth_requests r JOIN clients c ON c.client_id = r.client_id \
             WHERE c.name = 'assent-bench' AND r.status = 'issued' AND r.created_at > {since_ms}"
        );
        // The database may be restarting: no answer counts as none yet.
        store.raw_i64(&sql).await.unwrap_or(0)
    }

    async fn stop(self) {
        let mut child = self.child.into_inner().unwrap();
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}

/// Waits until the bench completed `n` cycles of requests made after
/// `since_ms`, and the ledger `m` more token responses than `ledger_before`.
async fn wait_for_load(
    bench: &Bench,
    store: &Store,
    ledger: &Ledger,
    since_ms: i64,
    ledger_before: usize,
    what: &str,
) {
    let (bench_done, ledger_done) = poll_until(
        Duration::from_secs(40),
        || async {
            (
                bench.completed_since(store, since_ms).await,
                ledger.token_responses() - ledger_before,
            )
        },
        |(b, l)| *b >= 10 && *l >= 10,
    )
    .await;
    assert!(
        bench_done >= 10 && ledger_done >= 10,
        "{what}: {bench_done} bench cycles and {ledger_done} ledger cycles completed; bench: {}",
        bench.stderr.lock().unwrap()
    );
}

async fn enroll(
    database_url: &str,
    issuer: &str,
    user: &str,
    push: Option<PushSubscription>,
) -> DeviceClient {
    let link = cli_enrollment_link(database_url, issuer, user).await;
    let link = EnrollmentUri::parse(&link).unwrap();
    DeviceClient::enroll(&link, &format!("{user}'s phone"), "test", push)
        .await
        .unwrap()
}

/// `count` requests for the watcher, made as soon as the server takes them.
async fn watcher_requests(
    http: &reqwest::Client,
    base: &str,
    client: &CliClient,
    count: usize,
    ledger: &Ledger,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let message = format!("Watch {i}");
        let auth_req_id = poll_until(
            Duration::from_secs(30),
            || bc_authorize(http, base, client, "watcher", &message),
            Option::is_some,
        )
        .await
        .expect("the server takes requests for the watcher");
        ledger.acknowledged(auth_req_id.clone());
        ids.push(auth_req_id);
    }
    ids
}

/// The request ids (as devices see them) of `auth_req_ids`.
async fn request_ids(store: &Store, auth_req_ids: &[String]) -> HashSet<String> {
    let mut ids = HashSet::new();
    for auth_req_id in auth_req_ids {
        ids.insert(assent_tests::request_id(store, auth_req_id).await);
    }
    ids
}

/// Reads events of `kind` from `stream` until every one of `ids` came.
async fn expect_events(stream: &mut EventStream, kind: &str, ids: &HashSet<String>) {
    let mut seen = HashSet::new();
    while !ids.is_subset(&seen) {
        let event = next_event(stream, Duration::from_secs(15)).await;
        assert_ne!(event.kind, "resync", "the stream fell behind");
        if event.kind == kind {
            if kind == "resolved" {
                assert_eq!(event.outcome.as_deref(), Some("approved"), "{event:?}");
            }
            seen.insert(event.request_id.unwrap());
        }
    }
}

assent_tests::on_both_backends! {
    /// `kill -9` in the middle of load: requests being made, approved and
    /// collected, a push hanging at the push service, the watcher's
    /// device streaming. The server comes back on the same database and
    /// address, and loses and repeats nothing.
    async fn kill_9_under_load_then_restart_loses_nothing(backend: Backend) {
        let started = Instant::now();
        let push = TestPushService::start().await;
        let db = TestDb::create(backend).await;
        for user in ["alice", "watcher"] {
            run_cli(&db.url, &["user", "create", "--sub", user]).await;
        }
        let client = Arc::new(CliClient::create(&db.url, "Faults", &[]).await);
        // The same address after the restart: the devices and the bench know it.
        let listen = format!("127.0.0.1:{}", unused_port());
        let env = [
            ("ASSENT_LISTEN", listen.as_str()),
            // The bench's push service is on 127.0.0.1 too, on a port of its own.
            ("ASSENT_PUSH_ALLOWED_HOSTS", "127.0.0.1"),
            // A lease of 1 + 5 s on a push in flight.
            ("ASSENT_PUSH_TIMEOUT", "1"),
        ];
        let server = ServeProcess::start(&db.url, &env).await;
        let base = server.base_url.clone();
        enroll(&db.url, &base, "alice", Some(push.subscribe("alice", Behavior::Accept))).await;
        let watcher = enroll(&db.url, &base, "watcher", None).await;
        let mut stream = watcher.events(None).await.unwrap();

        let store = Store::connect(&db.url, 2).await.unwrap();
        let ledger = Arc::new(Ledger::default());
        let stop = Arc::new(AtomicBool::new(false));
        let bench = Bench::start(&base, &db.url, "push");
        let mut workers = start_workers(&base, &db.url, &client, &ledger, &stop);
        wait_for_load(&bench, &store, &ledger, 0, 0, "before the kill").await;

        // The watcher's device has seen its three requests.
        let http = http_client();
        let watched = watcher_requests(&http, &base, &client, 3, &ledger).await;
        let watched_ids = request_ids(&store, &watched).await;
        expect_events(&mut stream, "request", &watched_ids).await;
        let last_event_id = stream.last_event_id().map(str::to_string);

        // Alice's push service stops answering: a push is in flight (leased)
        // when the server dies.
        let attempts = push.attempts("alice");
        push.set_behavior("alice", Behavior::Hang(Duration::from_secs(300)));
        let now = poll_until(
            Duration::from_secs(10),
            || async { push.attempts("alice") },
            |n| *n > attempts,
        )
        .await;
        assert!(now > attempts, "a push to alice is in flight");
        let mut server = server;
        server.child.start_kill().unwrap(); // SIGKILL: no shutdown, no cleanup
        server.child.wait().await.unwrap();
        eprintln!("killed after {:?} of load", started.elapsed());

        // While it is down the outbox holds alice's undelivered pushes, and
        // the watcher approves its requests elsewhere (events of the gap).
        let left = store
            .raw_i64(
                "SELECT COUNT(*) FROM push_jobs j JOIN devices d ON d.id = j.device_id \
                 WHERE d.user_sub = 'alice' AND j.state = 'pending'",
            )
            .await
            .unwrap();
        assert!(left >= 1, "a push job was left in the outbox");
        for auth_req_id in &watched {
            assert!(approve(&store, auth_req_id, "watcher", &AtomicBool::new(false)).await);
        }
        push.set_behavior("alice", Behavior::Accept);

        let server = ServeProcess::start(&db.url, &env).await;
        let restarted_ms = now_ms();
        assert_eq!(server.base_url, base);
        // The device reconnects where it left off and is told of the decisions.
        let mut stream = watcher.events(last_event_id.as_deref()).await.unwrap();
        expect_events(&mut stream, "resolved", &watched_ids).await;

        // The load goes on: the bench's cycles (push delivery) and the ledger's.
        let ledger_before = ledger.token_responses();
        wait_for_load(&bench, &store, &ledger, restarted_ms, ledger_before, "after the restart").await;
        stop.store(true, Ordering::Relaxed);
        while workers.join_next().await.is_some() {}
        bench.stop().await;

        // Every push job of alice's, left behind or new, went out: those
        // leased by the dead process once their lease ran out.
        let pending = poll_until(
            Duration::from_secs(20),
            || async {
                store
                    .raw_i64(
                        "SELECT COUNT(*) FROM push_jobs j JOIN devices d ON d.id = j.device_id \
                         WHERE d.user_sub = 'alice' AND j.state <> 'sent'",
                    )
                    .await
                    .unwrap()
            },
            |n| *n == 0,
        )
        .await;
        assert_eq!(pending, 0, "alice's push jobs not sent");
        assert_eq!(push.errors(), Vec::<String>::new());
        let pushed: HashSet<String> = push
            .received_by("alice")
            .iter()
            .map(|r| r.payload["request_id"].as_str().unwrap().to_string())
            .collect();
        let alice_requests: Vec<String> = ledger
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.auth_req_id.clone())
            .filter(|id| !watched.contains(id))
            .collect();
        let alice_ids = request_ids(&store, &alice_requests).await;
        let missing: Vec<&String> = alice_ids.difference(&pushed).collect();
        assert!(missing.is_empty(), "never pushed: {missing:?}");

        // Each poll in flight when the process died may have been exchanged
        // with its answer lost; nothing else.
        let checked = check_ledger(&ledger, &base, &client, &store, WORKERS).await;
        assert!(checked >= 20);
        store.close().await;
        assert!(server.terminate().await.success());
        eprintln!("{backend}: kill -9 test took {:?}", started.elapsed());
    }
}

/// PostgreSQL stopped hard under load (`pg_ctl stop -m immediate`) and
/// started again; the server is not restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_is_survived() {
    let started = Instant::now();
    let pg = PrivatePostgres::start().await;
    let db = TestDb::create_postgres_on(&pg.admin_url()).await;
    for user in ["alice", "watcher"] {
        run_cli(&db.url, &["user", "create", "--sub", user]).await;
    }
    assent_tests::client::stand_in_device_at(&db.url, "alice").await;
    let client = Arc::new(CliClient::create(&db.url, "Faults", &[]).await);
    let server = ServeProcess::start(&db.url, &[]).await;
    let base = server.base_url.clone();
    let watcher = enroll(&db.url, &base, "watcher", None).await;
    // Open through the outage; nothing happens on it until after.
    let mut stream = watcher.events(None).await.unwrap();

    let store = Store::connect(&db.url, 2).await.unwrap();
    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Event-stream delivery: the bench's devices depend on the server's
    // LISTEN connection coming back.
    let bench = Bench::start(&base, &db.url, "events");
    let mut workers = start_workers(&base, &db.url, &client, &ledger, &stop);
    wait_for_load(&bench, &store, &ledger, 0, 0, "before the outage").await;

    let http = http_client();
    let probe = |path: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let asked = Instant::now();
            let status = http
                .get(format!("{base}{path}"))
                .send()
                .await
                .map(|r| r.status())
                .ok();
            (status, asked.elapsed())
        }
    };
    pg.stop_immediately().await;
    let outage = Instant::now();
    eprintln!("PostgreSQL stopped after {:?}", started.elapsed());

    // Alive, not ready: every readiness check answers 503 promptly for as
    // long as the database is away.
    let (health, took) = probe("/healthz").await;
    assert_eq!(
        health,
        Some(StatusCode::OK),
        "/healthz while the database is down"
    );
    assert!(took < Duration::from_secs(2), "/healthz took {took:?}");
    let (first, _) = poll_until(
        Duration::from_secs(15),
        || probe("/readyz"),
        |(status, _)| *status == Some(StatusCode::SERVICE_UNAVAILABLE),
    )
    .await;
    assert_eq!(
        first,
        Some(StatusCode::SERVICE_UNAVAILABLE),
        "/readyz never said not ready"
    );
    let not_ready_after = outage.elapsed();
    for _ in 0..3 {
        let (status, took) = probe("/readyz").await;
        assert_eq!(
            status,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "/readyz with the database down"
        );
        assert!(
            took < Duration::from_secs(3),
            "/readyz took {took:?} to answer"
        );
    }
    eprintln!("/readyz said not ready {not_ready_after:?} into the outage");

    pg.restart().await;
    let restarted_ms = now_ms();
    eprintln!("PostgreSQL back after an outage of {:?}", outage.elapsed());
    // Requests for the watcher at once, while the server's LISTEN
    // connection may still be away: their events must reach its stream.
    let watched = watcher_requests(&http, &base, &client, 3, &ledger).await;
    let (ready, _) = poll_until(
        Duration::from_secs(20),
        || probe("/readyz"),
        |(status, _)| *status == Some(StatusCode::OK),
    )
    .await;
    assert_eq!(
        ready,
        Some(StatusCode::OK),
        "/readyz ready again without a restart"
    );
    let fresh = Store::connect(&db.url, 2).await.unwrap();
    let watched_ids = request_ids(&fresh, &watched).await;
    expect_events(&mut stream, "request", &watched_ids).await;

    // The LISTEN connection alone is dropped, the database staying up: the
    // driver reconnects at once, and what was notified meanwhile is read
    // from the table all the same.
    let terminated = fresh
        .raw_i64(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await
        .unwrap();
    assert_eq!(terminated, 1, "the server's one LISTEN connection");
    let watched_again = watcher_requests(&http, &base, &client, 2, &ledger).await;
    expect_events(
        &mut stream,
        "request",
        &request_ids(&fresh, &watched_again).await,
    )
    .await;

    // The load goes on, the bench's devices told through the event streams.
    let ledger_before = ledger.token_responses();
    wait_for_load(
        &bench,
        &fresh,
        &ledger,
        restarted_ms,
        ledger_before,
        "after the outage",
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    while workers.join_next().await.is_some() {}
    bench.stop().await;

    // A poll in flight when the database went away may have been exchanged
    // with its answer lost; nothing else.
    let checked = check_ledger(&ledger, &base, &client, &fresh, WORKERS).await;
    assert!(checked >= 20);
    fresh.close().await;
    store.close().await;
    assert!(server.terminate().await.success());
    eprintln!("postgres restart test took {:?}", started.elapsed());
    drop(db);
    drop(pg);
}
