//! Races that the database, not a lock in one process, must settle.

use std::sync::Arc;

use assent_server::{
    client_auth::AuthMethod,
    clock::Clock,
    decision::{self, Decision, DecisionError},
    keys::TokenAlg,
};
use assent_shared::error::OAuthErrorCode;
use assent_tests::{
    client::create_user, db::SqliteWriteLock, on_both_backends, TestClient, TestServer,
};
use reqwest::StatusCode;

on_both_backends! {
    async fn fifty_simultaneous_polls_yield_exactly_one_token_response(backend: Backend) {
        let server = Arc::new(TestServer::start(backend).await);
        create_user(server.store(), "alice", None, None).await;
        let client = Arc::new(
            TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await,
        );
        for round in 0..3 {
            let ack = client.start(&server, "alice", "openid offline_access").await;
            let auth_req_id = ack["auth_req_id"].as_str().unwrap().to_string();
            let request_id = assent_tests::request_id(server.store(), &auth_req_id).await;
            decision::decide(server.store(), &server.assent().clock, &request_id, "alice", Decision::Approve).await.unwrap();

            let barrier = Arc::new(tokio::sync::Barrier::new(50));
            let polls = (0..50).map(|_| {
                let (server, client, id, barrier) =
                    (server.clone(), client.clone(), auth_req_id.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let response = client.poll(&server, &id).await;
                    let status = response.status();
                    let body: serde_json::Value = response.json().await.unwrap();
                    (status, body)
                })
            });
            let results = futures_join_all(polls).await;
            let ok: Vec<_> = results.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
            assert_eq!(ok.len(), 1, "round {round}: exactly one token response");
            assert!(ok[0].1["refresh_token"].is_string());
            for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
                assert_eq!(*status, StatusCode::BAD_REQUEST);
                assert_eq!(body["error"], OAuthErrorCode::InvalidGrant.as_str(), "{body}");
            }
        }
    }
}

on_both_backends! {
    async fn approve_and_deny_at_the_same_instant_one_wins(backend: Backend) {
        let server = Arc::new(TestServer::start_with(backend, |s| s.poll_interval = 1).await);
        create_user(server.store(), "bob", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        for _ in 0..20 {
            let ack = client.start(&server, "bob", "openid").await;
            let auth_req_id = ack["auth_req_id"].as_str().unwrap().to_string();
            let request_id = assent_tests::request_id(server.store(), &auth_req_id).await;
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let decide = |decision| {
                let (store, id, barrier) = (server.store().clone(), request_id.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    decision::decide(&store, &Clock::default(), &id, "bob", decision).await
                })
            };
            let approve = decide(Decision::Approve);
            let deny = decide(Decision::NotMe);
            let (approve, deny) = (approve.await.unwrap(), deny.await.unwrap());
            assert!(approve.is_ok() != deny.is_ok(), "exactly one decision wins");
            let loser = if approve.is_ok() { deny } else { approve };
            assert!(matches!(loser, Err(DecisionError::AlreadyDecided(_))));
            let poll = client.poll(&server, &auth_req_id).await;
            let expected = if approve_won(&server, &request_id).await { StatusCode::OK } else { StatusCode::BAD_REQUEST };
            assert_eq!(poll.status(), expected, "the token endpoint agrees with the winner");
        }
    }
}

async fn approve_won(server: &TestServer, request_id: &str) -> bool {
    let status = assent_tests::request_status(server.store(), request_id).await;
    matches!(status.as_str(), "approved" | "issued")
}

async fn futures_join_all<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

/// On SQLite the statements of a cycle run inline on the async runtime, so
/// they must never wait for a lock there: while another connection (another
/// process, the CLI) holds the write lock, they are handed to the pool,
/// whose threads wait. The runtime stays responsive, and every request is
/// stored once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cycle_statements_wait_off_the_runtime_while_another_writer_holds_the_lock() {
    let (server, client) = assent_tests::server_with_alice().await;
    let server = Arc::new(server);
    let client = Arc::new(client);
    let writer = SqliteWriteLock::acquire(&server.db.url).await;

    // More requests than runtime threads: any of them blocking a thread
    // while it waits would stall the health check below.
    let starts: Vec<_> = (0..4)
        .map(|i| {
            let (server, client) = (server.clone(), client.clone());
            tokio::spawn(async move {
                client
                    .start_login(
                        &server,
                        assent_tests::ALICE,
                        "openid",
                        &format!("Locked {i}"),
                        &[],
                    )
                    .await
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        starts.iter().all(|s| !s.is_finished()),
        "the requests wait for the lock"
    );
    let health = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        server.http.get(server.url("/healthz")).send(),
    )
    .await
    .expect("the runtime answers while the statements wait")
    .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    writer.release().await;
    for start in starts {
        let auth_req_id = start.await.unwrap();
        assent_tests::request_id(server.store(), &auth_req_id).await;
    }
}
