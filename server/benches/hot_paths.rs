//! Micro-benchmarks of one CIBA cycle's hot paths, without HTTP.
//!
//! `cargo bench -p assent-server --bench hot_paths`
//!
//! The crypto floor of a cycle is the sum of the unavoidable signatures,
//! verifications and (with push) encryption: see docs/benchmarks.md.

use std::time::Duration;

use assent_server::{
    ciba,
    config::Settings,
    endpoints::Endpoints,
    keys::TokenAlg,
    params::Params,
    secrets::{new_secret, secret_matches_digest, sha256_hex},
    state::Assent,
    storage::{ChallengeDecision, ClientRow, DeviceRow, Store, UserLookup, UserRow},
    tokens::{self, Grant, Lifetimes},
};
use assent_shared::{
    jose::{DeviceKey, UnverifiedJws},
    protocol::PushSubscription,
};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

fn crypto(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let assent = rt.block_on(async {
        let store = Store::connect(&url, 4).await.unwrap();
        Assent::open(store, Settings::default(), "https://assent.example")
            .await
            .unwrap()
    });
    let endpoints = Endpoints::new("https://assent.example");
    let mut group = c.benchmark_group("cycle");

    // Client authentication: one SHA-256 and a constant-time comparison.
    let secret = new_secret();
    let digest = sha256_hex(&secret);
    group.bench_function("client_secret_check", |b| {
        b.iter(|| secret_matches_digest(&secret, &digest))
    });

    // bc-authorize parameter validation (no I/O).
    let params = Params::from_pairs([
        ("scope", "openid profile"),
        (
            "login_hint",
            r#"{"format":"iss_sub","iss":"https://assent.example/","sub":"auth0|alice"}"#,
        ),
        ("binding_message", "Transfer 250 EUR #4711"),
        (
            "authorization_details",
            r#"[{"type":"payment_initiation","amount":"250.00"}]"#,
        ),
    ]);
    group.bench_function("bc_authorize_validation", |b| {
        b.iter(|| ciba::parse_backchannel_request(&params, |iss| endpoints.is_issuer(iss)).unwrap())
    });

    // The challenge signature made once per request.
    let challenge = json!({"v": 1, "iss": "https://assent.example", "request_id": "5d0c8f9e-6b1a-4f37-9a53-0c7b8d2e4f61",
        "nonce": "n-9Qe2XKc0wz3VYpQm5f4A", "client_id": "c", "client_name": "Bank", "binding_message": "Transfer 250 EUR #4711",
        "scope": ["openid"], "requester": {"ip": "203.0.113.7"}, "iat": 1, "exp": 2});
    group.bench_function("challenge_sign_es256", |b| {
        b.iter(|| {
            assent
                .keys
                .get()
                .device_key()
                .sign_jwt("assent-challenge+jwt", &challenge)
        })
    });

    // Verifying a device-signed decision (the GET proof costs the same).
    let device = DeviceKey::generate();
    let point = device.public_jwk().to_sec1().unwrap();
    let decision = device.sign("assent-decision+jwt", Some("dev"), false, &json!({
        "htm": "POST", "htu": "https://assent.example/device/v1/requests/x/decision", "iat": 1, "jti": "j",
        "exp": 2, "request_id": "x", "nonce": "n", "decision": "approve", "challenge_hash": "h"}));
    group.bench_function("device_signature_verify", |b| {
        b.iter(|| {
            UnverifiedJws::parse(&decision)
                .unwrap()
                .verify_sec1::<serde_json::Value>(&point)
                .unwrap()
        })
    });

    // Access + ID token minting.
    let grant = Grant {
        user_sub: "auth0|alice",
        client_id: "client",
        scope: "openid profile",
        audience: Some("https://api.example"),
        authorization_details: None,
        acr: Some("urn:assent:acr:push:match"),
        amr: Some(r#"["swk"]"#),
        auth_time: 1_767_225_600,
        auth_req_id: Some("id"),
        nonce: None,
        id_token_claims: None,
    };
    let lifetimes = Lifetimes {
        access_token: 3600,
        id_token: 3600,
    };
    for alg in [TokenAlg::ES256, TokenAlg::RS256] {
        group.bench_function(format!("mint_access_and_id_token_{alg}"), |b| {
            b.iter(|| {
                tokens::mint(
                    &assent.keys.get(),
                    &endpoints,
                    alg,
                    lifetimes,
                    &grant,
                    1_767_225_600,
                )
            })
        });
    }

    // Web Push: aes128gcm encryption plus a VAPID JWT (first message to a service).
    let ua = DeviceKey::generate();
    let p256dh = assent_shared::jose::b64url(&ua.public_jwk().to_sec1().unwrap());
    let subscription = PushSubscription {
        endpoint: "https://push.example/send/abc".into(),
        keys: assent_shared::protocol::PushSubscriptionKeys {
            p256dh,
            auth: "tBHItJI5svbpez7KI4CCXg".into(),
        },
    };
    let scalar = assent.keys.get().vapid_key().ec_private_scalar().unwrap();
    let vapid =
        web_push::VapidSignatureBuilder::from_base64_no_sub(&assent_shared::jose::b64url(&scalar))
            .unwrap();
    let payload =
        br#"{"v":1,"request_id":"5d0c8f9e-6b1a-4f37-9a53-0c7b8d2e4f61","exp":1767225950}"#;
    let info = web_push::SubscriptionInfo::new(
        subscription.endpoint.as_str(),
        subscription.keys.p256dh.as_str(),
        subscription.keys.auth.as_str(),
    );
    group.bench_function("web_push_encrypt", |b| {
        b.iter(|| {
            let mut message = web_push::WebPushMessageBuilder::new(&info);
            message.set_payload(web_push::ContentEncoding::Aes128Gcm, payload);
            message.build().unwrap()
        })
    });
    group.bench_function("web_push_vapid_jwt", |b| {
        b.iter(|| {
            let mut sig = vapid.clone().add_sub_info(&info);
            sig.add_claim("sub", "mailto:ops@example.com");
            sig.build().unwrap()
        })
    });
    group.finish();

    // The storage operations of one cycle on SQLite (WAL, synchronous=NORMAL).
    let mut group = c.benchmark_group("storage_sqlite");
    group.measurement_time(Duration::from_secs(5));
    let store = assent.store.clone();
    rt.block_on(async {
        store
            .insert_user(&UserRow {
                sub: "alice".into(),
                email: None,
                email_verified: false,
                phone_number: None,
                phone_verified: false,
                name: None,
                blocked: false,
                created_at: 0,
                updated_at: 0,
            })
            .await
            .unwrap();
        store
            .insert_client(&ClientRow {
                client_id: "client".into(),
                name: "Bench".into(),
                token_endpoint_auth_method: "client_secret_basic".into(),
                secret_sha256: Some(digest.clone()),
                jwks: None,
                id_token_signed_response_alg: "ES256".into(),
                grant_types: "urn:openid:params:grant-type:ciba".into(),
                created_at: 0,
                number_matching: assent_server::storage::NumberMatching::Required,
                user_verification: assent_server::storage::UserVerificationPolicy::Optional,
                client_uri: None,
                logo_sha256: None,
                redirect_uris: String::new(),
                otp_code_in_response: false,
                mfa_policy: assent_server::storage::MfaPolicy::Off,
            })
            .await
            .unwrap();
        store
            .insert_enrollment_ticket("ticket", "alice", 0, i64::MAX)
            .await
            .unwrap();
        store
            .enroll_device(
                "ticket",
                &DeviceRow {
                    id: "device".into(),
                    user_sub: String::new(),
                    name: "Bench device".into(),
                    platform: "linux".into(),
                    public_jwk: "{}".into(),
                    key_thumbprint: "thumbprint".into(),
                    push_channel: None,
                    created_at: 0,
                    revoked_at: None,
                    revoke_reason: None,
                    push_disabled_reason: None,
                    passkey_credential_id: None,
                },
                None,
                0,
            )
            .await
            .unwrap();
    });
    group.bench_function("client_lookup", |b| {
        b.to_async(&rt)
            .iter(|| async { store.client("client").await.unwrap() })
    });
    // The five statements of a cycle: store the request (confirming the
    // cached client, counting the flood limits), list pending challenges
    // (spending the proof's jti), read the code's digest, the decision, the
    // token poll (confirming the client again).
    // The server checkpoints the write-ahead log every 100 ms (~130 cycles
    // at full load); so does this loop, and its cost is part of the figure.
    let cycles = std::sync::atomic::AtomicU32::new(0);
    group.bench_function("cycle_statements", |b| {
        b.to_async(&rt).iter(|| async {
            if cycles.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 128 == 127 {
                store.checkpoint().await.unwrap();
            }
            let now = assent_server::clock::now_ms();
            let id = uuid::Uuid::new_v4().to_string();
            let auth_req = new_secret();
            let row = assent_server::storage::NewAuthRequest {
                id: id.clone(),
                auth_req_id_sha256: sha256_hex(&auth_req),
                client_id: "client".into(),
                scope: "openid".into(),
                binding_message: "Bench".into(),
                audience: None,
                authorization_details: None,
                requester_ip: None,
                requester_user_agent: None,
                created_at: now,
                expires_at: now + 300_000,
                poll_interval: 5,
                nonce: "n".into(),
                challenge_jws: "c".into(),
                challenge_sha256: "h".into(),
                match_code_sha256: Some(assent_server::secrets::match_code_sha256(&id, "47")),
                user_verification_required: false,
                mfa_token_sha256: None,
            };
            store
                .insert_auth_request(
                    &row,
                    &UserLookup {
                        sub: "alice".into(),
                        email: None,
                    },
                    Some(&digest),
                    // The limits are counted as in the server; high enough
                    // that the loop is never refused.
                    assent_server::storage::FloodLimits {
                        per_client_per_minute: u32::MAX,
                        per_user_per_minute: u32::MAX,
                        pending: u32::MAX,
                    },
                )
                .await
                .unwrap();
            let pending = store
                .spend_proof_for_pending(
                    "device",
                    "thumbprint",
                    &id,
                    now + 120_000,
                    "alice",
                    now,
                    100,
                )
                .await
                .unwrap()
                .unwrap();
            assert!(!pending.requests.is_empty());
            // An approval of a request with number matching reads the code's
            // digest first.
            let target = store.decision_target(&id).await.unwrap().unwrap();
            let code = assent_server::secrets::match_code_sha256(&id, "47");
            assert!(assent_server::secrets::constant_time_eq(
                target.match_code_sha256.as_deref().unwrap(),
                &code
            ));
            let decided = store
                .decide_on_challenge(
                    &ChallengeDecision {
                        request_id: &id,
                        user_sub: "alice",
                        decision: assent_shared::protocol::Decision::Approve,
                        device_id: "device",
                        key_thumbprint: "thumbprint",
                        nonce: "n",
                        challenge_sha256: "h",
                        match_code_sha256: Some(&code),
                        acr: Some("urn:assent:acr:push:match"),
                        amr: Some(r#"["swk"]"#),
                    },
                    now,
                )
                .await
                .unwrap();
            assert!(decided);
            store
                .poll_auth_request(&sha256_hex(&auth_req), "client", now, Some(&digest), None)
                .await
                .unwrap()
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, crypto);
criterion_main!(benches);
