//! Benchmark: time from sending `POST /bc-authorize` to the Web Push message
//! arriving, decrypted, at a push service on loopback. Not a test: it prints
//! figures for docs/benchmarks.md.
//!
//!   cargo run --release -p assent-tests --example push_latency -- [requests] [concurrency] [sqlite|postgres]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use assent_server::{client_auth::AuthMethod, keys::TokenAlg};
use assent_tests::{
    client::create_user,
    device::enroll,
    push_service::{Behavior, TestPushService},
    Backend, TestClient, TestServer,
};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let requests: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let backend = match args.get(3).map(String::as_str) {
        Some("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let push = TestPushService::start().await;
    let allowed = push.host_port();
    let server = Arc::new(
        TestServer::start_with(backend, move |s| s.push_allowed_hosts = vec![allowed]).await,
    );
    create_user(server.store(), "alice", None, None).await;
    let client = Arc::new(
        TestClient::register(
            server.store(),
            AuthMethod::ClientSecretBasic,
            TokenAlg::ES256,
        )
        .await,
    );
    enroll(
        &server,
        "alice",
        Some(push.subscribe("phone", Behavior::Accept)),
    )
    .await;

    // Warm-up.
    for _ in 0..50 {
        client.start(&server, "alice", "openid").await;
    }
    push.wait_for(50, Duration::from_secs(10)).await;

    let started_at = Arc::new(tokio::sync::Mutex::new(std::collections::HashMap::new()));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let wall = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..requests {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let (server, client, started_at) = (server.clone(), client.clone(), started_at.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            let ack = client.start(&server, "alice", "openid").await;
            let id = assent_tests::request_id(server.store(), ack["auth_req_id"].as_str().unwrap())
                .await;
            started_at.lock().await.insert(id, sent);
        });
    }
    while tasks.join_next().await.is_some() {}
    let received = push.wait_for(50 + requests, Duration::from_secs(60)).await;
    let elapsed = wall.elapsed();
    let started_at = started_at.lock().await;
    let mut latencies: Vec<Duration> = received
        .iter()
        .filter_map(|r| {
            let id = r.payload["request_id"].as_str()?;
            started_at.get(id).map(|sent| r.at.duration_since(*sent))
        })
        .collect();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "backend={backend} requests={} concurrency={concurrency} delivered={} wall={:.2}s rate={:.0}/s",
        requests,
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "bc-authorize -> push received: p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.90).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    assert!(push.errors().is_empty(), "{:?}", push.errors());
}
