//! Delivery across real server processes: a crash with jobs in the outbox,
//! and two processes sharing one PostgreSQL database.

use std::{collections::HashSet, sync::Arc, time::Duration};

use assent_device::{events::EventStream, DeviceClient};
use assent_shared::{
    jose::DeviceKey,
    protocol::{path, typ, EnrollmentUri, ProofClaims, PushSubscription, PROOF_SCHEME},
};
use assent_tests::{
    device::{next_event, request_binding},
    process::{cli_enrollment_link, run_cli, CliClient, ServeProcess},
    push_service::{Behavior, TestPushService},
    wait::poll_until,
    Backend, TestDb,
};
use serde_json::Value;

async fn setup_client_and_user(db: &str) -> CliClient {
    run_cli(db, &["user", "create", "--sub", "alice"]).await;
    CliClient::create(db, "Desk", &["--id-token-signed-response-alg", "ES256"]).await
}

async fn enroll(db: &str, issuer: &str, subscription: PushSubscription) -> DeviceClient {
    let link = cli_enrollment_link(db, issuer, "alice").await;
    let link = EnrollmentUri::parse(&link).unwrap();
    DeviceClient::enroll(&link, "phone", "test", Some(subscription))
        .await
        .unwrap()
}

/// Starts a request for Alice through the process at `base`.
async fn bc_authorize(base: &str, client: &CliClient, message: &str) -> Value {
    let response = client.bc_authorize(base, "alice", message).await;
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    response.json().await.unwrap()
}

async fn pending_jobs(db: &str) -> i64 {
    let store = assent_server::storage::Store::connect(db, 1).await.unwrap();
    let n = assent_tests::count(
        &store,
        "SELECT COUNT(*) FROM push_jobs WHERE state = 'pending'",
    )
    .await;
    store.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_left_in_the_outbox_by_a_killed_server_are_delivered_after_restart() {
    let push = TestPushService::start().await;
    let db = TestDb::create(Backend::Sqlite).await;
    let client = setup_client_and_user(&db.url).await;
    let env = [
        ("ASSENT_PUSH_ALLOWED_HOSTS", push.host_port()),
        ("ASSENT_PUSH_TIMEOUT", "1".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = ServeProcess::start(&db.url, &env).await;
    enroll(
        &db.url,
        &server.base_url,
        push.subscribe("phone", Behavior::Status(503, Some("2"))),
    )
    .await;

    for i in 0..5 {
        bc_authorize(&server.base_url, &client, &format!("Order {i}")).await;
    }
    // Every job was tried once and is waiting for its retry.
    poll_until(
        Duration::from_secs(5),
        || async { push.attempts("phone") },
        |attempts| *attempts >= 5,
    )
    .await;
    let mut server = server;
    server.child.start_kill().unwrap(); // SIGKILL: no shutdown, no cleanup
    server.child.wait().await.unwrap();
    assert_eq!(push.received().len(), 0);
    assert_eq!(
        pending_jobs(&db.url).await,
        5,
        "the undelivered jobs survived the crash"
    );

    push.set_behavior("phone", Behavior::Accept);
    let restarted = ServeProcess::start(&db.url, &env).await;
    let received = push.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(push.errors(), Vec::<String>::new());
    let ids: HashSet<String> = received
        .iter()
        .map(|r| r.payload["request_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.len(),
        5,
        "all five requests were delivered after the restart"
    );
    // The receiver has the fifth message a moment before the server records
    // the job as sent.
    let pending = poll_until(
        Duration::from_secs(5),
        || pending_jobs(&db.url),
        |pending| *pending == 0,
    )
    .await;
    assert_eq!(pending, 0);
    assert!(restarted.terminate().await.success());
}

/// Opens the event stream on `base` for a device whose issuer is elsewhere
/// (two processes behind one public URL).
async fn open_stream(base: &str, issuer: &str, device_id: &str, key: &DeviceKey) -> EventStream {
    let claims = ProofClaims {
        binding: request_binding("GET", &format!("{issuer}{}", path::EVENTS)),
    };
    let proof = key.sign(typ::PROOF, Some(device_id), false, &claims);
    let response = reqwest::Client::new()
        .get(format!("{base}{}", path::EVENTS))
        .header("authorization", format!("{PROOF_SCHEME} {proof}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    EventStream::new(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_postgres_share_events_and_deliver_each_job_once() {
    let push = TestPushService::start().await;
    let db = TestDb::create(Backend::Postgres).await;
    let client = Arc::new(setup_client_and_user(&db.url).await);
    let allowed = push.host_port();
    let a = ServeProcess::start(&db.url, &[("ASSENT_PUSH_ALLOWED_HOSTS", &allowed)]).await;
    let issuer = a.base_url.clone();
    let b = ServeProcess::start(
        &db.url,
        &[
            ("ASSENT_PUSH_ALLOWED_HOSTS", &allowed),
            ("ASSENT_ISSUER", &issuer),
        ],
    )
    .await;
    let device = enroll(&db.url, &issuer, push.subscribe("phone", Behavior::Accept)).await;

    // A device streaming from B sees a request created through A.
    let mut stream = open_stream(
        &b.base_url,
        &issuer,
        &device.account.device_id,
        device.key(),
    )
    .await;
    let started = std::time::Instant::now();
    bc_authorize(&a.base_url, &client, "Across processes").await;
    // The event crosses processes within a second.
    let event = next_event(&mut stream, Duration::from_secs(1)).await;
    assert_eq!(event.kind, "request");
    eprintln!("A -> B event latency: {:?}", started.elapsed());

    // 1,000 requests through both processes: 1,000 deliveries, none twice.
    let bases = [a.base_url.clone(), b.base_url.clone()];
    let mut tasks = tokio::task::JoinSet::new();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(16));
    for i in 0..1000 {
        let (base, client, permit) = (
            bases[i % 2].clone(),
            client.clone(),
            semaphore.clone().acquire_owned().await.unwrap(),
        );
        tasks.spawn(async move {
            let _permit = permit;
            bc_authorize(&base, &client, &format!("Bulk {i}")).await
        });
    }
    while tasks.join_next().await.is_some() {}
    let received = push.wait_for(1001, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received_after = push.received();
    assert_eq!(push.errors(), Vec::<String>::new());
    assert_eq!(received.len(), 1001);
    assert_eq!(received_after.len(), 1001, "no job was sent twice");
    let ids: HashSet<String> = received_after
        .iter()
        .map(|r| r.payload["request_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1001);
    assert_eq!(pending_jobs(&db.url).await, 0);
    assert!(a.terminate().await.success());
    assert!(b.terminate().await.success());
}
