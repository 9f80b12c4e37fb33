//! Delivery across real server processes: a crash with jobs in the outbox,
//! and two processes sharing one PostgreSQL database.

use std::{collections::HashSet, sync::Arc, time::Duration};

use assent_device::{events::EventStream, DeviceClient};
use assent_shared::{
    jose::DeviceKey,
    protocol::{path, typ, EnrollmentUri, ProofClaims, RequestBinding, PROOF_SCHEME},
};
use assent_tests::{
    process::{run_cli, ServeProcess},
    push_service::{Behavior, TestPushService},
    Backend, TestDb,
};
use serde_json::Value;

async fn setup_client_and_user(db: &str) -> (String, String) {
    run_cli(db, &["user", "create", "--sub", "alice"]).await;
    let client: Value = serde_json::from_str(
        &run_cli(
            db,
            &[
                "client",
                "create",
                "--name",
                "Desk",
                "--id-token-signed-response-alg",
                "ES256",
                "--json",
            ],
        )
        .await,
    )
    .unwrap();
    (
        client["client_id"].as_str().unwrap().into(),
        client["client_secret"].as_str().unwrap().into(),
    )
}

async fn enroll(
    db: &str,
    issuer: &str,
    subscription: assent_shared::protocol::PushSubscription,
) -> DeviceClient {
    let ticket: Value = serde_json::from_str(
        &run_cli(
            db,
            &[
                "--issuer", issuer, "enroll", "ticket", "--user", "alice", "--json",
            ],
        )
        .await,
    )
    .unwrap();
    let link = EnrollmentUri::parse(ticket["enrollment_uri"].as_str().unwrap()).unwrap();
    DeviceClient::enroll(&link, "phone", "test", Some(subscription))
        .await
        .unwrap()
}

async fn bc_authorize(
    http: &reqwest::Client,
    base: &str,
    client: &(String, String),
    message: &str,
) -> Value {
    let response = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("binding_message", message),
        ])
        .send()
        .await
        .unwrap();
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

    let http = reqwest::Client::new();
    for i in 0..5 {
        bc_authorize(&http, &server.base_url, &client, &format!("Order {i}")).await;
    }
    // Every job was tried once and is waiting for its retry.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while push.attempts("phone") < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pending_jobs(&db.url).await > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pending_jobs(&db.url).await, 0);
    assert!(restarted.terminate().await.success());
}

/// Opens the event stream on `base` for a device whose issuer is elsewhere
/// (two processes behind one public URL).
async fn open_stream(base: &str, issuer: &str, device_id: &str, key: &DeviceKey) -> EventStream {
    let claims = ProofClaims {
        binding: RequestBinding {
            htm: "GET".into(),
            htu: format!("{issuer}{}", path::EVENTS),
            iat: assent_server::clock::now_ms() / 1000,
            jti: uuid::Uuid::new_v4().to_string(),
        },
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
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    bc_authorize(&http, &a.base_url, &client, "Across processes").await;
    let event = tokio::time::timeout(Duration::from_secs(1), stream.next())
        .await
        .expect("the event crossed processes within a second")
        .unwrap()
        .unwrap();
    assert_eq!(event.kind, "request");
    eprintln!("A -> B event latency: {:?}", started.elapsed());

    // 1,000 requests through both processes: 1,000 deliveries, none twice.
    let bases = [a.base_url.clone(), b.base_url.clone()];
    let mut tasks = tokio::task::JoinSet::new();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(16));
    for i in 0..1000 {
        let (http, base, client, permit) = (
            http.clone(),
            bases[i % 2].clone(),
            client.clone(),
            semaphore.clone().acquire_owned().await.unwrap(),
        );
        tasks.spawn(async move {
            let _permit = permit;
            bc_authorize(&http, &base, &client, &format!("Bulk {i}")).await
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
