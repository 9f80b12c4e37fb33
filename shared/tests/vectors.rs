//! Protocol test vectors: fixed keys, messages and signatures in
//! `test-vectors/protocol-v1.json`, checked here so that the encoding never
//! drifts and another implementation can be verified against the file.
//!
//! Device signatures are deterministic (RFC 6979), so re-signing a vector's
//! claims with its key must reproduce the JWS byte for byte. To rewrite the
//! file after an intended protocol change: `ASSENT_WRITE_VECTORS=1 cargo test -p assent-shared --test vectors`.

use assent_shared::{
    jose::{b64url, sha256, sha256_b64url, DeviceKey, EcPrivateJwk, EcPublicJwk, UnverifiedJws},
    protocol::{
        path, typ, ChallengeClaims, DecisionClaims, DenyReason, EnrollmentClaims, EnrollmentUri,
        ProofClaims, RequestBinding, Requester, UnmuteClaims, UserVerification, Verdict, VERSION,
    },
};
use serde_json::{json, Value};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/test-vectors/protocol-v1.json");
const SERVER: &str = "https://assent.example";
const DEVICE_ID: &str = "0b5cf5a4-2a0e-4c8e-9d0c-7f1e3f6f9d21";

/// A P-256 key whose scalar is the SHA-256 of `label`.
fn fixed_key(label: &str) -> DeviceKey {
    let d = sha256(label.as_bytes());
    let signing = p256::ecdsa::SigningKey::from_slice(&d).expect("a valid P-256 scalar");
    let jwk = EcPrivateJwk {
        public: EcPublicJwk::from_verifying_key(signing.verifying_key()),
        d: b64url(&d),
    };
    DeviceKey::from_private_jwk(&jwk).expect("consistent key")
}

fn binding(method: &str, path: &str, iat: i64, jti: &str) -> RequestBinding {
    RequestBinding {
        htm: method.into(),
        htu: format!("{SERVER}{path}"),
        iat,
        jti: jti.into(),
    }
}

/// Builds every vector from the fixed keys and claims.
fn build() -> Value {
    let device = fixed_key("assent protocol v1 test vector: device key");
    let server = fixed_key("assent protocol v1 test vector: server challenge key");
    let server_pin = server.public_jwk().thumbprint();

    let link = EnrollmentUri {
        version: VERSION,
        server: SERVER.into(),
        ticket: "q9Xo2gk4q3mJ3yKkQ0sHc7fX1w0bqf8tH2bqgQ2rV1E".into(),
        pin: server_pin.clone(),
        account: Some("alice@example.com".into()),
    };
    let enrollment = EnrollmentClaims {
        passkey: None,
        binding: binding("POST", path::ENROLL, 1_767_225_600, "enroll-1"),
        ticket: link.ticket.clone(),
        pin: link.pin.clone(),
        name: "Alice's phone".into(),
        platform: "android".into(),
        push: None,
    };
    let proof = ProofClaims {
        binding: binding("GET", path::REQUESTS, 1_767_225_660, "proof-1"),
    };
    let challenge = ChallengeClaims {
        v: VERSION,
        iss: SERVER.into(),
        request_id: "5d0c8f9e-6b1a-4f37-9a53-0c7b8d2e4f61".into(),
        nonce: "n-9Qe2XKc0wz3VYpQm5f4A".into(),
        client_id: "cc-desk".into(),
        client_name: "Bank call center".into(),
        binding_message: "Transfer 250 EUR #4711".into(),
        scope: vec!["openid".into(), "payments".into()],
        audience: Some("https://api.bank.example".into()),
        authorization_details: Some(
            json!([{"type": "payment_initiation", "amount": "250.00", "currency": "EUR"}]),
        ),
        requester: Requester {
            ip: Some("203.0.113.7".into()),
            user_agent: Some("CallCenter/5.1".into()),
        },
        iat: 1_767_225_650,
        exp: 1_767_225_950,
        match_code_digits: Some(2),
        user_verification_required: false,
        client_uri: Some("https://bank.example".into()),
        logo_uri: Some(format!("{SERVER}/clients/cc-desk/logo?v=3f2a9c4b1d0e8f7a")),
        // Not written: the vectors stay those of protocol version 1.
        purpose: assent_shared::protocol::RequestPurpose::Backchannel,
    };
    let challenge_jws = server.sign(typ::CHALLENGE, Some(&server_pin), false, &challenge);
    let challenge_hash = sha256_b64url(challenge_jws.as_bytes());
    let decision_path = path::decision(&challenge.request_id);
    let approve = DecisionClaims {
        passkey: None,
        binding: binding("POST", &decision_path, 1_767_225_670, "decision-1"),
        exp: 1_767_225_700,
        request_id: challenge.request_id.clone(),
        nonce: challenge.nonce.clone(),
        decision: Verdict::Approve,
        deny_reason: None,
        challenge_hash: challenge_hash.clone(),
        match_code: Some("47".into()),
        user_verification: vec![UserVerification::Pin],
    };
    let deny = DecisionClaims {
        passkey: None,
        binding: binding("POST", &decision_path, 1_767_225_671, "decision-2"),
        decision: Verdict::Deny,
        deny_reason: Some(DenyReason::NotMe),
        match_code: None,
        user_verification: Vec::new(),
        ..approve.clone()
    };
    // A decision of a device enrolled with a passkey (docs/protocol.md,
    // section 5): the passkey's assertion over the canonical decision, made
    // as an authenticator makes it (RP ID hash, flags UP and UV, counter;
    // ECDSA over authenticatorData || SHA-256(clientDataJSON), DER), inside
    // the decision the device key signs.
    let passkey_d = sha256(b"assent protocol v1 test vector: passkey");
    let passkey_key = p256::ecdsa::SigningKey::from_slice(&passkey_d).unwrap();
    let credential_id = b64url(&sha256(b"assent protocol v1 test vector: credential id")[..16]);
    let mut by_passkey = DecisionClaims {
        binding: binding("POST", &decision_path, 1_767_225_672, "decision-3"),
        user_verification: Vec::new(),
        ..approve.clone()
    };
    let canonical = by_passkey.canonical();
    let mut authenticator_data = sha256(b"assent.example").to_vec();
    authenticator_data.push(0x05);
    authenticator_data.extend_from_slice(&7u32.to_be_bytes());
    let client_data_json = format!(
        r#"{{"type":"webauthn.get","challenge":"{}","origin":"{SERVER}","crossOrigin":false}}"#,
        sha256_b64url(canonical.as_bytes())
    );
    let signed = [
        authenticator_data.as_slice(),
        &sha256(client_data_json.as_bytes()),
    ]
    .concat();
    let signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&passkey_key, &signed);
    by_passkey.passkey = Some(json!({
        "id": credential_id,
        "rawId": credential_id,
        "type": "public-key",
        "response": {
            "authenticatorData": b64url(&authenticator_data),
            "clientDataJSON": b64url(client_data_json.as_bytes()),
            "signature": b64url(signature.to_der().as_bytes()),
            "userHandle": null,
        },
    }));
    let unmute = UnmuteClaims {
        binding: binding("POST", path::UNMUTE, 1_767_225_700, "unmute-1"),
    };
    json!({
        "description": "Assent device protocol v1 test vectors (docs/protocol.md). Keys are P-256; signatures are ES256 with RFC 6979 deterministic nonces, so signing the payload with the key reproduces `jws` exactly. `claims` shows each payload with sorted members; verify over the exact `jws` bytes, and compare claims as JSON values.",
        "server": SERVER,
        "device_id": DEVICE_ID,
        "keys": {
            "device": device.to_private_jwk(),
            "device_thumbprint": device.public_jwk().thumbprint(),
            "server_challenge": server.to_private_jwk(),
            "server_challenge_thumbprint": server_pin,
        },
        "enrollment_uri": { "fields": {"v": 1, "server": link.server, "ticket": link.ticket, "pin": link.pin, "account": link.account}, "uri": link.to_uri() },
        "enrollment": { "claims": enrollment, "jws": device.sign(typ::ENROLL, None, true, &enrollment) },
        "proof": { "claims": proof, "jws": device.sign(typ::PROOF, Some(DEVICE_ID), false, &proof) },
        "challenge": { "claims": challenge, "jws": challenge_jws, "sha256": challenge_hash },
        "decision_approve": { "claims": approve, "jws": device.sign(typ::DECISION, Some(DEVICE_ID), false, &approve) },
        "decision_deny_not_me": { "claims": deny, "jws": device.sign(typ::DECISION, Some(DEVICE_ID), false, &deny) },
        "decision_with_passkey": {
            "passkey": {
                "private_jwk": EcPrivateJwk {
                    public: EcPublicJwk::from_verifying_key(passkey_key.verifying_key()),
                    d: b64url(&passkey_d),
                },
                "credential_id": credential_id,
                "rp_id": "assent.example",
                "stored_sign_count": 6,
            },
            "canonical": canonical,
            "webauthn_challenge": sha256_b64url(canonical.as_bytes()),
            "authenticator_data": b64url(&authenticator_data),
            "client_data_json": client_data_json,
            "claims": by_passkey,
            "jws": device.sign(typ::DECISION, Some(DEVICE_ID), false, &by_passkey),
        },
        "unmute": { "claims": unmute, "jws": device.sign(typ::UNMUTE, Some(DEVICE_ID), false, &unmute) },
    })
}

#[test]
fn protocol_v1_vectors_hold() {
    let built = build();
    if std::env::var_os("ASSENT_WRITE_VECTORS").is_some() {
        std::fs::write(FILE, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
    }
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(FILE).expect("vector file")).unwrap();
    assert_eq!(
        file, built,
        "the protocol encoding changed: update docs/protocol.md and regenerate the vectors"
    );

    // Independently of how they were built: each JWS verifies with the
    // published public key and carries exactly the listed claims.
    let device: EcPrivateJwk = serde_json::from_value(file["keys"]["device"].clone()).unwrap();
    let server: EcPrivateJwk =
        serde_json::from_value(file["keys"]["server_challenge"].clone()).unwrap();
    assert_eq!(
        device.public.thumbprint(),
        file["keys"]["device_thumbprint"]
    );
    assert_eq!(
        server.public.thumbprint(),
        file["keys"]["server_challenge_thumbprint"]
    );
    for (name, key, expected_typ) in [
        ("enrollment", &device.public, typ::ENROLL),
        ("proof", &device.public, typ::PROOF),
        ("challenge", &server.public, typ::CHALLENGE),
        ("decision_approve", &device.public, typ::DECISION),
        ("decision_deny_not_me", &device.public, typ::DECISION),
        ("decision_with_passkey", &device.public, typ::DECISION),
        ("unmute", &device.public, typ::UNMUTE),
    ] {
        let jws = file[name]["jws"].as_str().unwrap();
        let parsed = UnverifiedJws::parse(jws).unwrap();
        assert_eq!(parsed.header.typ, expected_typ);
        let claims: Value = parsed.verify(key).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(claims, file[name]["claims"], "{name}");
    }
    let challenge_jws = file["challenge"]["jws"].as_str().unwrap();
    assert_eq!(
        sha256_b64url(challenge_jws.as_bytes()),
        file["challenge"]["sha256"]
    );
    assert_eq!(
        file["decision_approve"]["claims"]["challenge_hash"],
        file["challenge"]["sha256"]
    );
    // The passkey's assertion, checked from the file alone: the canonical
    // decision of the claims, its SHA-256 as the challenge in
    // clientDataJSON, the signature with the passkey's public key.
    let vector = &file["decision_with_passkey"];
    let claims: DecisionClaims = serde_json::from_value(vector["claims"].clone()).unwrap();
    assert_eq!(claims.canonical(), vector["canonical"]);
    assert_eq!(
        claims.canonical(),
        [
            "assent-decision-v1",
            "5d0c8f9e-6b1a-4f37-9a53-0c7b8d2e4f61",
            "approve",
            "",
            "mHchQz0Z76wy0kPxc2mtgUQTzyoE0zPIdutfMZywhNc",
            "n-9Qe2XKc0wz3VYpQm5f4A",
            "47"
        ]
        .join("\n")
    );
    let assertion = &vector["claims"]["passkey"]["response"];
    let client_data: Value = serde_json::from_slice(
        &assent_shared::jose::b64url_decode(assertion["clientDataJSON"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(client_data["challenge"], vector["webauthn_challenge"]);
    assert_eq!(
        vector["webauthn_challenge"],
        sha256_b64url(claims.canonical().as_bytes())
    );
    let authenticator_data =
        assent_shared::jose::b64url_decode(assertion["authenticatorData"].as_str().unwrap())
            .unwrap();
    assert_eq!(authenticator_data[..32], sha256(b"assent.example"));
    assert_eq!(
        authenticator_data[32] & 0x05,
        0x05,
        "user present and verified"
    );
    let passkey: EcPrivateJwk =
        serde_json::from_value(vector["passkey"]["private_jwk"].clone()).unwrap();
    let verifying =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&passkey.public.to_sec1().unwrap()).unwrap();
    let signature = p256::ecdsa::Signature::from_der(
        &assent_shared::jose::b64url_decode(assertion["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let client_data_json =
        assent_shared::jose::b64url_decode(assertion["clientDataJSON"].as_str().unwrap()).unwrap();
    let signed = [authenticator_data.as_slice(), &sha256(&client_data_json)].concat();
    p256::ecdsa::signature::Verifier::verify(&verifying, &signed, &signature)
        .expect("the passkey signed authenticatorData || SHA-256(clientDataJSON)");

    let link = EnrollmentUri::parse(file["enrollment_uri"]["uri"].as_str().unwrap()).unwrap();
    assert_eq!(link.pin, file["keys"]["server_challenge_thumbprint"]);
}
