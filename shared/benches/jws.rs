//! ES256 on the protocol's hot paths: which backend verifies device
//! signatures faster (the server uses the winner), and what signing costs.
//!
//! `cargo bench -p assent-shared --bench jws`

use assent_shared::jose::{DeviceKey, UnverifiedJws};
use criterion::{criterion_group, criterion_main, Criterion};
use p256::ecdsa::{signature::Verifier, Signature, VerifyingKey};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let key = DeviceKey::generate();
    let claims = json!({
        "htm": "POST", "htu": "https://assent.example/device/v1/requests/5d0c8f9e/decision",
        "iat": 1_767_225_670, "jti": "decision-1", "exp": 1_767_225_700,
        "request_id": "5d0c8f9e-6b1a-4f37-9a53-0c7b8d2e4f61", "nonce": "n-9Qe2XKc0wz3VYpQm5f4A",
        "decision": "approve", "challenge_hash": "kX9yq4fJm3Yb8m2V0r6b1F9s3lW7cQp1Zt0dUaH5nE4"
    });
    let jws = key.sign("assent-decision+jwt", Some("device"), false, &claims);
    let jwk = key.public_jwk();
    let point = jwk.to_sec1().unwrap();
    let (signing_input, signature) = jws.rsplit_once('.').unwrap();
    let signature =
        Signature::from_slice(&assent_shared::jose::b64url_decode(signature).unwrap()).unwrap();
    let verifying = VerifyingKey::from_sec1_bytes(&point).unwrap();

    let mut group = c.benchmark_group("es256");
    group.bench_function(
        "verify_aws_lc_rs (server path: parse + verify + decode)",
        |b| {
            b.iter(|| {
                let parsed = UnverifiedJws::parse(&jws).unwrap();
                parsed.verify_sec1::<serde_json::Value>(&point).unwrap()
            })
        },
    );
    group.bench_function("verify_aws_lc_rs (signature only)", |b| {
        b.iter(|| {
            aws_lc_rs::signature::UnparsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                &point,
            )
            .verify(signing_input.as_bytes(), &signature.to_bytes())
            .unwrap()
        })
    });
    group.bench_function("verify_p256 (signature only)", |b| {
        b.iter(|| {
            verifying
                .verify(signing_input.as_bytes(), &signature)
                .unwrap()
        })
    });
    group.bench_function("sign_p256 (device, deterministic)", |b| {
        b.iter(|| key.sign("assent-decision+jwt", Some("device"), false, &claims))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
