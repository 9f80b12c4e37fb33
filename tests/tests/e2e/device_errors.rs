//! Every refusal of the device protocol, with its exact error, and proof that
//! the request (or the device table) did not change.

use std::time::Duration;

use assent_device::{verify_challenge, ChallengeRejected, DeviceClient, VerifiedChallenge};
use assent_server::{clock::now_ms, device, secrets::sha256_hex};
use assent_shared::{
    error::DeviceErrorCode,
    jose::{b64url, sha256_b64url, DeviceKey},
    protocol::{
        path, typ, DecisionClaims, EnrollmentClaims, EnrollmentUri, ProofClaims, Verdict,
        JOSE_CONTENT_TYPE, PROOF_SCHEME,
    },
};
use assent_tests::{
    client::create_user_without_device,
    device::{enroll, request_binding},
    on_both_backends, request_status, TestClient, TestServer,
};
use reqwest::StatusCode;
use serde_json::Value;

fn decision(
    server: &TestServer,
    challenge: &VerifiedChallenge,
    verdict: Verdict,
) -> DecisionClaims {
    let url = server.url(&path::decision(&challenge.claims.request_id));
    let binding = request_binding("POST", &url);
    DecisionClaims {
        passkey: None,
        exp: binding.iat + 30,
        binding,
        request_id: challenge.claims.request_id.clone(),
        nonce: challenge.claims.nonce.clone(),
        decision: verdict,
        deny_reason: None,
        challenge_hash: challenge.hash(),
        match_code: None,
        user_verification: Vec::new(),
    }
}

fn sign(key: &DeviceKey, kid: &str, claims: &DecisionClaims) -> String {
    key.sign(typ::DECISION, Some(kid), false, claims)
}

async fn post_decision(server: &TestServer, request_id: &str, body: String) -> (StatusCode, Value) {
    let r = server
        .http
        .post(server.url(&path::decision(request_id)))
        .header("content-type", JOSE_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

fn assert_error(got: (StatusCode, Value), status: StatusCode, code: DeviceErrorCode) {
    assert_eq!(
        (got.0, got.1["error"].as_str()),
        (status, Some(code.as_str())),
        "{}",
        got.1
    );
}

async fn device_count(server: &TestServer) -> usize {
    server.store().devices(None).await.unwrap().len()
}

on_both_backends! {
    async fn decisions_are_refused_without_changing_the_request(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user_without_device(server.store(), "alice", None, None).await;
        create_user_without_device(server.store(), "bob", None, None).await;
        let client = TestClient::register(server.store(), assent_server::client_auth::AuthMethod::ClientSecretBasic, assent_server::keys::TokenAlg::ES256).await;
        let alice = enroll(&server, "alice", None).await;
        let bob = enroll(&server, "bob", None).await;
        let ack = client.start(&server, "alice", "openid").await;
        let code = ack["match_code"].as_str().unwrap().to_string();
        let challenge = alice.pending().await.unwrap().verified.remove(0);
        let id = challenge.claims.request_id.clone();
        let alice_id = alice.account.device_id.clone();

        // Malformed and unsigned.
        assert_error(post_decision(&server, &id, "not-a-jws".into()).await, StatusCode::BAD_REQUEST, DeviceErrorCode::InvalidRequest);
        let signed = sign(alice.key(), &alice_id, &decision(&server, &challenge, Verdict::Approve));
        let unsigned = format!("{}.", &signed[..signed.rfind('.').unwrap()]);
        assert_error(post_decision(&server, &id, unsigned).await, StatusCode::UNAUTHORIZED, DeviceErrorCode::InvalidProof);
        // alg none.
        let payload = signed.split('.').nth(1).unwrap();
        let none = format!("{}.{payload}.", b64url(format!(r#"{{"alg":"none","typ":"{}","kid":"{alice_id}"}}"#, typ::DECISION).as_bytes()));
        assert_error(post_decision(&server, &id, none).await, StatusCode::UNAUTHORIZED, DeviceErrorCode::InvalidProof);
        // A key that is not enrolled, claiming to be Alice's device; an unknown device.
        let stranger = DeviceKey::generate();
        assert_error(post_decision(&server, &id, sign(&stranger, &alice_id, &decision(&server, &challenge, Verdict::Approve))).await, StatusCode::UNAUTHORIZED, DeviceErrorCode::InvalidProof);
        assert_error(post_decision(&server, &id, sign(&stranger, "no-such-device", &decision(&server, &challenge, Verdict::Approve))).await, StatusCode::UNAUTHORIZED, DeviceErrorCode::UnknownDevice);
        // Bob's device on Alice's request.
        assert_error(post_decision(&server, &id, sign(bob.key(), &bob.account.device_id, &decision(&server, &challenge, Verdict::Approve))).await, StatusCode::FORBIDDEN, DeviceErrorCode::WrongUser);
        // Stale iat.
        let mut stale = decision(&server, &challenge, Verdict::Approve);
        stale.binding.iat -= 120;
        stale.exp = stale.binding.iat + 30;
        assert_error(post_decision(&server, &id, sign(alice.key(), &alice_id, &stale)).await, StatusCode::UNAUTHORIZED, DeviceErrorCode::InvalidProof);
        // Signed for another URL.
        let mut elsewhere = decision(&server, &challenge, Verdict::Approve);
        elsewhere.binding.htu = server.url("/device/v1/requests/other/decision");
        assert_error(post_decision(&server, &id, sign(alice.key(), &alice_id, &elsewhere)).await, StatusCode::UNAUTHORIZED, DeviceErrorCode::InvalidProof);
        // Decisions may live at most 60 s.
        let mut long = decision(&server, &challenge, Verdict::Approve);
        long.exp = long.binding.iat + 600;
        assert_error(post_decision(&server, &id, sign(alice.key(), &alice_id, &long)).await, StatusCode::UNAUTHORIZED, DeviceErrorCode::InvalidProof);
        // The hash of a challenge with another binding message; another nonce.
        // A challenge like the real one but with another binding message
        // (what a device fooled by a tampered display would have hashed).
        let mut other_message = challenge.claims.clone();
        other_message.binding_message = "Transfer 9999 EUR".into();
        let other_challenge = DeviceKey::generate().sign(typ::CHALLENGE, None, false, &other_message);
        let mut wrong_hash = decision(&server, &challenge, Verdict::Approve);
        wrong_hash.challenge_hash = sha256_b64url(other_challenge.as_bytes());
        assert_error(post_decision(&server, &id, sign(alice.key(), &alice_id, &wrong_hash)).await, StatusCode::BAD_REQUEST, DeviceErrorCode::ChallengeMismatch);
        let mut wrong_nonce = decision(&server, &challenge, Verdict::Approve);
        wrong_nonce.nonce = "guess".into();
        assert_error(post_decision(&server, &id, sign(alice.key(), &alice_id, &wrong_nonce)).await, StatusCode::BAD_REQUEST, DeviceErrorCode::ChallengeMismatch);
        assert_eq!(request_status(server.store(), &id).await, "pending", "no refusal changed the request");

        // Replayed jti: a GET proof used twice.
        let url = server.url(path::REQUESTS);
        let proof = alice.key().sign(typ::PROOF, Some(&alice_id), false, &ProofClaims { binding: request_binding("GET", &url) });
        let get = |proof: String| server.http.get(&url).header("authorization", format!("{PROOF_SCHEME} {proof}")).send();
        assert_eq!(get(proof.clone()).await.unwrap().status(), StatusCode::OK);
        let replay = get(proof).await.unwrap();
        assert_error((replay.status(), replay.json().await.unwrap()), StatusCode::UNAUTHORIZED, DeviceErrorCode::ReplayedProof);

        // Without the code the client showed, or with a wrong one, an
        // approval is refused (the first wrong code is counted, no more).
        assert_error(post_decision(&server, &id, sign(alice.key(), &alice_id, &decision(&server, &challenge, Verdict::Approve))).await, StatusCode::BAD_REQUEST, DeviceErrorCode::MatchCodeRequired);
        let mut wrong_code = decision(&server, &challenge, Verdict::Approve);
        wrong_code.match_code = Some(if code == "00" { "01" } else { "00" }.into());
        assert_error(post_decision(&server, &id, sign(alice.key(), &alice_id, &wrong_code)).await, StatusCode::BAD_REQUEST, DeviceErrorCode::WrongMatchCode);

        // The real decision passes; a second one conflicts.
        let mut right = decision(&server, &challenge, Verdict::Approve);
        right.match_code = Some(code);
        let approve = sign(alice.key(), &alice_id, &right);
        let (status, body) = post_decision(&server, &id, approve.clone()).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("approved")));
        assert_error(post_decision(&server, &id, approve).await, StatusCode::CONFLICT, DeviceErrorCode::RequestNotPending);
        let deny = sign(alice.key(), &alice_id, &decision(&server, &challenge, Verdict::Deny));
        assert_error(post_decision(&server, &id, deny).await, StatusCode::CONFLICT, DeviceErrorCode::RequestNotPending);
        assert_eq!(request_status(server.store(), &id).await, "approved", "the first decision stands");
    }
}

on_both_backends! {
    async fn late_and_revoked_decisions_are_refused(backend: Backend) {
        let server = TestServer::start_with(backend, |s| s.poll_interval = 1).await;
        create_user_without_device(server.store(), "carol", None, None).await;
        let client = TestClient::register(server.store(), assent_server::client_auth::AuthMethod::ClientSecretBasic, assent_server::keys::TokenAlg::ES256).await;
        let carol = enroll(&server, "carol", None).await;

        // Decision after the request expired.
        client.bc_authorize(&server, &[("scope", "openid"), ("login_hint", "carol"), ("binding_message", "Short"), ("requested_expiry", "1")]).await;
        let challenge = carol.pending().await.unwrap().verified.remove(0);
        server.advance_clock(Duration::from_millis(1100));
        let err = carol.decide(&challenge, &assent_device::Answer::approve(None)).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::RequestExpired));
        assert_eq!(request_status(server.store(), &challenge.claims.request_id).await, "pending");

        // Decision after the token was issued.
        let ack = client.start(&server, "carol", "openid").await;
        let challenge = carol.pending().await.unwrap().verified.remove(0);
        carol.decide(&challenge, &assent_device::Answer::approve(ack["match_code"].as_str())).await.unwrap();
        assert_eq!(client.poll(&server, ack["auth_req_id"].as_str().unwrap()).await.status(), StatusCode::OK);
        let err = carol.decide(&challenge, &assent_device::Answer::deny(None)).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::RequestNotPending));
        assert_eq!(request_status(server.store(), &challenge.claims.request_id).await, "issued");

        // A revoked device can do nothing.
        client.start(&server, "carol", "openid").await;
        let challenge = carol.pending().await.unwrap().verified.remove(0);
        assert!(server.store().revoke_device(&carol.account.device_id, "test", now_ms()).await.unwrap());
        let err = carol.decide(&challenge, &assent_device::Answer::approve(None)).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::DeviceRevoked));
        assert_eq!(carol.pending().await.unwrap_err().code(), Some(DeviceErrorCode::DeviceRevoked));
        assert_eq!(carol.set_push_channel(None).await.unwrap_err().code(), Some(DeviceErrorCode::DeviceRevoked));
        assert_eq!(request_status(server.store(), &challenge.claims.request_id).await, "pending");
    }
}

on_both_backends! {
    async fn enrollment_is_refused_for_bad_tickets_and_keys(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user_without_device(server.store(), "dave", None, None).await;
        let ticket = device::create_enrollment_ticket(server.assent(), "dave", 600).await.unwrap();
        let link = EnrollmentUri::parse(&ticket.enrollment_uri).unwrap();

        // The embedded key is not the one that signed.
        let (signer, other) = (DeviceKey::generate(), DeviceKey::generate());
        let url = server.url(path::ENROLL);
        let claims = EnrollmentClaims {
            passkey: None,
            binding: request_binding("POST", &url),
            ticket: link.ticket.clone(),
            pin: link.pin.clone(),
            name: "x".into(),
            platform: "x".into(),
            push: None,
        };
        let good = signer.sign(typ::ENROLL, None, true, &claims);
        let parts: Vec<&str> = good.split('.').collect();
        let header = format!(r#"{{"alg":"ES256","typ":"{}","jwk":{}}}"#, typ::ENROLL, serde_json::to_string(&other.public_jwk()).unwrap());
        let mismatched = format!("{}.{}.{}", b64url(header.as_bytes()), parts[1], parts[2]);
        let post = |body: String| server.http.post(&url).header("content-type", JOSE_CONTENT_TYPE).body(body).send();
        let r = post(mismatched).await.unwrap();
        assert_error((r.status(), r.json().await.unwrap()), StatusCode::UNAUTHORIZED, DeviceErrorCode::InvalidProof);
        assert_eq!(device_count(&server).await, 0);

        // A link whose pin is not this server's key.
        let mut wrong_pin = link.clone();
        wrong_pin.pin = DeviceKey::generate().public_jwk().thumbprint();
        let err = DeviceClient::enroll(&wrong_pin, "x", "x", None).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::PinMismatch));

        // A name or platform with an invisible, direction-changing character.
        for (name, platform) in [("Laptop\u{202E}gnp.exe", "linux"), ("Laptop", "li\u{200B}nux")] {
            let err = DeviceClient::enroll(&link, name, platform, None).await.unwrap_err();
            assert_eq!(err.code(), Some(DeviceErrorCode::InvalidRequest), "{name:?} {platform:?}");
            assert!(err.to_string().contains("invisible or control character"), "{err}");
        }
        assert_eq!(device_count(&server).await, 0);

        // Unknown ticket.
        let mut unknown = link.clone();
        unknown.ticket = "not-a-ticket".into();
        assert_eq!(DeviceClient::enroll(&unknown, "x", "x", None).await.unwrap_err().code(), Some(DeviceErrorCode::InvalidTicket));
        assert_eq!(device_count(&server).await, 0, "no refusal stored a device");

        // The ticket works once.
        DeviceClient::enroll(&link, "first", "x", None).await.unwrap();
        let err = DeviceClient::enroll(&link, "second", "x", None).await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::TicketUsed));
        assert_eq!(device_count(&server).await, 1);

        // An expired ticket.
        let expired = "expired-ticket-value";
        server.store().insert_enrollment_ticket(&sha256_hex(expired), "dave", now_ms() - 700_000, now_ms() - 100_000).await.unwrap();
        let mut old = link.clone();
        old.ticket = expired.into();
        assert_eq!(DeviceClient::enroll(&old, "x", "x", None).await.unwrap_err().code(), Some(DeviceErrorCode::TicketExpired));
        assert_eq!(device_count(&server).await, 1);
    }
}

on_both_backends! {
    async fn devices_refuse_challenges_not_signed_by_the_pinned_key(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user_without_device(server.store(), "erin", None, None).await;
        let client = TestClient::register(server.store(), assent_server::client_auth::AuthMethod::ClientSecretBasic, assent_server::keys::TokenAlg::ES256).await;
        let erin = enroll(&server, "erin", None).await;
        client.start(&server, "erin", "openid").await;
        let challenge = erin.pending().await.unwrap().verified.remove(0);
        let account = &erin.account;

        // Binding message changed in transit: the signature no longer holds.
        let mut parts: Vec<String> = challenge.jws.split('.').map(str::to_string).collect();
        let mut claims: Value = serde_json::from_slice(&assent_shared::jose::b64url_decode(&parts[1]).unwrap()).unwrap();
        claims["binding_message"] = "Pay 9999 EUR".into();
        parts[1] = b64url(claims.to_string().as_bytes());
        let tampered = parts.join(".");
        assert_eq!(verify_challenge(&tampered, &account.server_key, &account.server, 0).unwrap_err(), ChallengeRejected::BadSignature);
        // Signed by another key (an impostor server).
        let impostor = DeviceKey::generate();
        let forged = impostor.sign(typ::CHALLENGE, Some(&account.server_key.thumbprint()), false, &challenge.claims);
        assert_eq!(verify_challenge(&forged, &account.server_key, &account.server, 0).unwrap_err(), ChallengeRejected::BadSignature);
        let forged = impostor.sign(typ::CHALLENGE, Some(&impostor.public_jwk().thumbprint()), false, &challenge.claims);
        assert_eq!(verify_challenge(&forged, &account.server_key, &account.server, 0).unwrap_err(), ChallengeRejected::WrongKey);
        // Unsigned.
        let unsigned = format!("{}.{}.", parts[0], parts[1]);
        assert!(verify_challenge(&unsigned, &account.server_key, &account.server, 0).is_err());
        // The genuine one verifies.
        assert!(verify_challenge(&challenge.jws, &account.server_key, &account.server, 0).is_ok());
    }
}

on_both_backends! {
    async fn a_key_replaced_by_another_process_is_refused_at_once(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user_without_device(server.store(), "frank", None, None).await;
        let frank = enroll(&server, "frank", None).await;
        frank.pending().await.unwrap(); // the server now holds Frank's key in its cache
        // Another process rotates the key (straight in the database).
        let new_key = DeviceKey::generate();
        let rotated = server
            .store()
            .rotate_device_key(
                &frank.account.device_id,
                &frank.key().public_jwk().thumbprint(),
                &serde_json::to_string(&new_key.public_jwk()).unwrap(),
                &new_key.public_jwk().thumbprint(),
            )
            .await
            .unwrap();
        assert_eq!(rotated, Some(true));
        // The old key still verifies against the cached copy, but the statement
        // that spends the jti sees the change.
        let err = frank.pending().await.unwrap_err();
        assert_eq!(err.code(), Some(DeviceErrorCode::InvalidProof), "{err}");
    }
}
