//! Two devices of one user answer the same request at the same instant, one
//! approving and one denying: exactly one wins every time, and the token
//! endpoint agrees with the winner.

use std::sync::Arc;

use assent_server::{client_auth::AuthMethod, keys::TokenAlg};
use assent_shared::error::DeviceErrorCode;
use assent_tests::{client::create_user, device::enroll, on_both_backends, TestClient, TestServer};
use reqwest::StatusCode;

on_both_backends! {
    async fn approve_and_deny_from_two_devices_one_wins_every_round(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "alice", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let phone = Arc::new(enroll(&server, "alice", None).await);
        let laptop = Arc::new(enroll(&server, "alice", None).await);
        let (mut approvals, mut denials) = (0, 0);
        for round in 0..100 {
            let ack = client.start(&server, "alice", "openid").await;
            let auth_req_id = ack["auth_req_id"].as_str().unwrap().to_string();
            let code = ack["match_code"].as_str().map(str::to_string);
            let on_phone = phone.pending().await.unwrap().verified.remove(0);
            let on_laptop = laptop.pending().await.unwrap().verified.remove(0);
            assert_eq!(on_phone.jws, on_laptop.jws, "both devices are shown the same signed challenge");

            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let approve = {
                let (phone, barrier) = (phone.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    phone.decide(&on_phone, &assent_device::Answer::approve(code.as_deref())).await
                })
            };
            let deny = {
                let (laptop, barrier) = (laptop.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    laptop.decide(&on_laptop, &assent_device::Answer::deny(None)).await
                })
            };
            let (approve, deny) = (approve.await.unwrap(), deny.await.unwrap());
            assert!(approve.is_ok() != deny.is_ok(), "round {round}: exactly one decision wins");
            let loser = if approve.is_ok() { &deny } else { &approve };
            assert_eq!(loser.as_ref().unwrap_err().code(), Some(DeviceErrorCode::RequestNotPending), "round {round}");

            let poll = client.poll(&server, &auth_req_id).await.status();
            if approve.is_ok() {
                approvals += 1;
                assert_eq!(poll, StatusCode::OK, "round {round}: tokens after the approval won");
            } else {
                denials += 1;
                assert_eq!(poll, StatusCode::BAD_REQUEST, "round {round}: refused after the denial won");
            }
        }
        assert_eq!(approvals + denials, 100);
        eprintln!("{backend}: approvals won {approvals} rounds, denials {denials}");
    }
}
