//! The JOSE parser (`UnverifiedJws::parse`) and what the server and the
//! device library do right after it: the header checks, `verify` with a
//! key, the claims of each message type, the enrollment key in the `jwk`
//! header, the device's challenge check and its key-endorsement chain.
//!
//! Input: the text of a compact JWS, as it arrives in a request body or an
//! `Authorization: AssentProof` header. Seeds: the protocol test vectors.
//!
//! Random bytes never carry a valid signature, so every input is checked
//! twice: as received, and with its header and payload signed again by the
//! test-vector keys, which reaches what follows a good signature.
#![no_main]

use std::{fmt::Debug, sync::LazyLock};

use assent_device::challenge::{follow_endorsements, verify_challenge};
use assent_server::device::proof_from_header;
use assent_shared::{
    jose::{b64url, b64url_decode, EcPublicJwk, JoseError, JwsHeader, UnverifiedJws},
    protocol::{
        typ, ChallengeClaims, DecisionClaims, EnrollmentClaims, NewKeyClaims, ProofClaims,
        PushChannelClaims, RotateKeyClaims, ServerKeyClaims, UnenrollClaims, UnmuteClaims,
    },
};
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::{signature::Signer, signature::Verifier, Signature, SigningKey, VerifyingKey};
use serde::de::{DeserializeOwned, IgnoredAny};

struct Key {
    signing: SigningKey,
    jwk: EcPublicJwk,
    point: Vec<u8>,
    thumbprint: String,
}

struct Fixture {
    device: Key,
    server: Key,
    /// The server's base URL, as the device pinned it.
    server_url: String,
    /// Between the test-vector challenge's `iat` and `exp`.
    now: i64,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../shared/test-vectors/protocol-v1.json"))
            .expect("test vectors are JSON");
    let key = |name: &str| {
        let d = b64url_decode(vectors["keys"][name]["d"].as_str().unwrap()).unwrap();
        let signing = SigningKey::from_slice(&d).unwrap();
        let jwk = EcPublicJwk::from_verifying_key(signing.verifying_key());
        assert_eq!(jwk.x, vectors["keys"][name]["x"].as_str().unwrap());
        Key {
            point: jwk.to_sec1().unwrap(),
            thumbprint: jwk.thumbprint(),
            signing,
            jwk,
        }
    };
    Fixture {
        device: key("device"),
        server: key("server_challenge"),
        server_url: vectors["server"].as_str().unwrap().to_string(),
        now: vectors["challenge"]["claims"]["iat"].as_i64().unwrap() + 1,
    }
});

fuzz_target!(|data: &[u8]| {
    // The server reads bodies and headers as UTF-8 text before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fixture = &*FIXTURE;
    check_as_received(fixture, text);
    let mut parts = text.splitn(3, '.');
    if let (Some(header), Some(payload)) = (parts.next(), parts.next()) {
        for (key, other) in [
            (&fixture.device, &fixture.server),
            (&fixture.server, &fixture.device),
        ] {
            check_signed(fixture, key, other, header, payload);
        }
    }
});

/// The JWS exactly as received: parsed, its header checked as the server
/// does, verified against both test keys and against its own `jwk`.
fn check_as_received(fixture: &Fixture, text: &str) {
    // `Authorization: AssentProof <jws>` hands the parser the trimmed rest.
    match proof_from_header(Some(&format!("AssentProof {text}"))) {
        Ok(jws) => assert_eq!(jws, text.trim()),
        Err(_) => assert!(text.trim().is_empty()),
    }

    let segments: Vec<&str> = text.split('.').collect();
    let parsed = match UnverifiedJws::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            if segments.len() != 3 {
                assert_eq!(e, JoseError::Malformed);
            }
            if let JoseError::UnsupportedCritical(shown) = &e {
                assert!(shown.chars().count() <= 100, "crit is shown cut short");
            }
            return;
        }
    };

    // Parsed means: three segments, the first and last canonical base64url
    // (re-encoding what they decode to gives the same text, so one JWS has
    // one spelling: its hash and its jti mean one thing), a 64-byte
    // signature, an ES256 header without `crit`.
    assert_eq!(segments.len(), 3);
    let header_bytes = b64url_decode(segments[0]).expect("the header segment decodes");
    let signature = b64url_decode(segments[2]).expect("the signature segment decodes");
    assert_eq!(signature.len(), 64);
    assert_eq!(
        format!(
            "{}.{}.{}",
            b64url(&header_bytes),
            segments[1],
            b64url(&signature)
        ),
        text,
        "re-serialised segments equal the input segments"
    );
    let header: JwsHeader = serde_json::from_slice(&header_bytes).expect("the header is JSON");
    assert_eq!(header, parsed.header);
    assert_eq!(parsed.header.alg, "ES256");
    assert!(parsed.header.crit.is_none());
    // The header survives a serialisation round trip (the device re-signs
    // headers it built itself).
    let again: JwsHeader = serde_json::from_slice(&serde_json::to_vec(&header).unwrap()).unwrap();
    assert_eq!(again, header);

    let signing_input = format!("{}.{}", segments[0], segments[1]);
    for key in [&fixture.device, &fixture.server] {
        let ok = check_claims_for_typ(&parsed, &key.point, segments[1]);
        // aws-lc-rs (what `verify` uses) and the pure-Rust p256 crate agree.
        let p256_ok = Signature::from_slice(&signature).is_ok_and(|sig| {
            VerifyingKey::from_sec1_bytes(&key.point)
                .unwrap()
                .verify(signing_input.as_bytes(), &sig)
                .is_ok()
        });
        assert_eq!(ok, p256_ok, "aws-lc-rs and p256 disagree on a signature");
    }

    // Enrollment and key rotation: the new key travels in the header.
    if let Some(jwk) = &parsed.header.jwk {
        if let Some(point) = check_jwk(jwk) {
            check_claims_for_typ(&parsed, &point, segments[1]);
        }
    }

    // What the device does with a challenge or an endorsement it fetched.
    for key in [&fixture.device, &fixture.server] {
        if let Ok(challenge) = verify_challenge(text, &key.jwk, &fixture.server_url, fixture.now) {
            assert_eq!(challenge.jws, text);
            assert_eq!(parsed.header.typ, typ::CHALLENGE);
            assert_eq!(parsed.header.kid.as_deref(), Some(key.thumbprint.as_str()));
            assert_eq!(challenge.claims.iss, fixture.server_url);
            assert!(challenge.claims.exp > fixture.now);
        }
        for next in follow_endorsements(&key.jwk, &[text.to_string()]) {
            assert_eq!(parsed.header.typ, typ::SERVER_KEY);
            assert_ne!(next, key.jwk);
        }
    }
}

/// The same header and payload, signed by `key`: the signature verifies
/// under `key` whatever the claims type and never under `other`, a changed
/// byte breaks it, and the claims are exactly the payload's.
fn check_signed(fixture: &Fixture, key: &Key, other: &Key, header: &str, payload: &str) {
    let signing_input = format!("{header}.{payload}");
    let signature: Signature = key.signing.sign(signing_input.as_bytes());
    let jws = format!("{signing_input}.{}", b64url(&signature.to_bytes()));
    let parsed = match UnverifiedJws::parse(&jws) {
        Ok(parsed) => parsed,
        Err(e) => {
            // With a well-formed signature, only the header can be wrong.
            assert!(
                matches!(
                    e,
                    JoseError::Malformed
                        | JoseError::InvalidJson { part: "header", .. }
                        | JoseError::UnsupportedCritical(_)
                        | JoseError::UnsupportedAlgorithm
                ),
                "{e:?}"
            );
            return;
        }
    };
    assert!(check_claims_for_typ(&parsed, &key.point, payload));
    assert_eq!(
        parsed.verify_sec1::<IgnoredAny>(&other.point).unwrap_err(),
        JoseError::BadSignature
    );
    assert_eq!(
        parsed.verify::<IgnoredAny>(&other.jwk).unwrap_err(),
        JoseError::BadSignature
    );

    // One character of the header changed, or one appended to the payload.
    let at = signing_input.len() % header.len().max(1);
    if header.is_char_boundary(at) && at < header.len() {
        let replaced = if header[at..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        let mut tampered = jws.clone();
        tampered.replace_range(
            at..at + header[at..].chars().next().unwrap().len_utf8(),
            replaced,
        );
        if let Ok(t) = UnverifiedJws::parse(&tampered) {
            assert_eq!(
                t.verify_sec1::<IgnoredAny>(&key.point).unwrap_err(),
                JoseError::BadSignature
            );
        }
    }
    let tampered = format!("{signing_input}A.{}", b64url(&signature.to_bytes()));
    let t = UnverifiedJws::parse(&tampered).expect("the payload is not parsed before verify");
    assert_eq!(
        t.verify_sec1::<IgnoredAny>(&key.point).unwrap_err(),
        JoseError::BadSignature
    );

    // The device: a challenge is accepted exactly when it is of the right
    // type, names the pinned key, names this server and has not expired.
    let claims = b64url_decode(payload)
        .and_then(|bytes| serde_json::from_slice::<ChallengeClaims>(&bytes).ok());
    let expected = claims.filter(|c| {
        parsed.header.typ == typ::CHALLENGE
            && parsed.header.kid.as_deref() == Some(key.thumbprint.as_str())
            && c.iss == fixture.server_url.trim_end_matches('/')
            && c.exp > fixture.now
    });
    match verify_challenge(&jws, &key.jwk, &fixture.server_url, fixture.now) {
        Ok(challenge) => {
            assert_eq!(challenge.jws, jws);
            assert_eq!(Some(challenge.claims), expected);
        }
        Err(_) => assert_eq!(expected, None),
    }
    assert!(verify_challenge(&jws, &other.jwk, &fixture.server_url, fixture.now).is_err());

    // An endorsement signed by the pinned key leads to the key it names.
    let endorsed = b64url_decode(payload)
        .and_then(|bytes| serde_json::from_slice::<ServerKeyClaims>(&bytes).ok())
        .map(|c| c.key)
        .filter(|k| {
            parsed.header.typ == typ::SERVER_KEY
                && parsed.header.kid.as_deref() == Some(key.thumbprint.as_str())
                && *k != key.jwk
        });
    assert_eq!(
        follow_endorsements(&key.jwk, std::slice::from_ref(&jws)),
        endorsed.into_iter().collect::<Vec<_>>()
    );
}

/// Verifies `parsed` under `point` as the claims type its `typ` names (what
/// the route that expects that type would do); whether the signature held.
fn check_claims_for_typ(parsed: &UnverifiedJws, point: &[u8], payload: &str) -> bool {
    match parsed.header.typ.as_str() {
        typ::ENROLL => check_claims::<EnrollmentClaims>(parsed, point, payload),
        typ::PROOF => check_claims::<ProofClaims>(parsed, point, payload),
        typ::CHALLENGE => check_claims::<ChallengeClaims>(parsed, point, payload),
        typ::DECISION => check_claims::<DecisionClaims>(parsed, point, payload),
        typ::PUSH_CHANNEL => check_claims::<PushChannelClaims>(parsed, point, payload),
        typ::ROTATE_KEY => check_claims::<RotateKeyClaims>(parsed, point, payload),
        typ::NEW_KEY => check_claims::<NewKeyClaims>(parsed, point, payload),
        typ::UNENROLL => check_claims::<UnenrollClaims>(parsed, point, payload),
        typ::UNMUTE => check_claims::<UnmuteClaims>(parsed, point, payload),
        typ::SERVER_KEY => check_claims::<ServerKeyClaims>(parsed, point, payload),
        _ => check_claims::<serde_json::Value>(parsed, point, payload),
    }
}

/// `verify_sec1::<T>` either refuses the signature, or returns exactly
/// what the payload segment decodes to as `T` (its errors saying which).
fn check_claims<T: DeserializeOwned + PartialEq + Debug>(
    parsed: &UnverifiedJws,
    point: &[u8],
    payload: &str,
) -> bool {
    let got = parsed.verify_sec1::<T>(point);
    if got.as_ref().err() == Some(&JoseError::BadSignature) {
        return false;
    }
    match b64url_decode(payload) {
        None => assert_eq!(got.unwrap_err(), JoseError::Malformed),
        Some(bytes) => match serde_json::from_slice::<T>(&bytes) {
            Ok(want) => assert_eq!(got.unwrap(), want),
            Err(_) => assert!(
                matches!(
                    got,
                    Err(JoseError::InvalidJson {
                        part: "payload",
                        ..
                    })
                ),
                "{got:?}"
            ),
        },
    }
    true
}

/// A header `jwk`: usable as a key only if it is a P-256 point, and then
/// it round-trips (JWK -> SEC1 point -> JWK) and has a 43-character
/// thumbprint.
fn check_jwk(jwk: &EcPublicJwk) -> Option<Vec<u8>> {
    let point = jwk.to_sec1().ok()?;
    assert_eq!(point.len(), 65);
    assert_eq!(point[0], 4);
    let key = VerifyingKey::from_sec1_bytes(&point).expect("to_sec1 checked the point");
    assert_eq!(&EcPublicJwk::from_verifying_key(&key), jwk);
    assert_eq!(jwk.thumbprint().len(), 43);
    Some(point)
}
