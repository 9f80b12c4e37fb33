//! Passkeys (WebAuthn) as a device's second key: the web authenticator
//! registers one at enrollment and signs every decision with it
//! (docs/protocol.md, section 5). The checks themselves are webauthn-rs's;
//! this module fixes the policy (user verification required, the issuer's
//! origin only) and binds an assertion to one canonical decision.

use assent_shared::jose::b64url;
use aws_lc_rs::digest;
use serde_json::Value;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// How long a registration may take from its options to the enrollment.
pub const REGISTRATION_TTL_MS: i64 = 5 * 60 * 1000;

/// The relying party: the issuer's host as RP ID, its origin the only one
/// allowed.
pub struct RelyingParty {
    webauthn: Webauthn,
}

/// Why a passkey was refused, in words for the device's error description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String, pub RefusalKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The assertion or registration does not check out.
    Invalid,
    /// A valid assertion whose signature counter did not move past the
    /// stored one: a replay (the same decision resent included) or a clone.
    Counter,
}

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal(why.into(), RefusalKind::Invalid)
}

/// What a checked assertion says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asserted {
    /// The counter the assertion carries (0: the authenticator keeps none).
    pub sign_count: u32,
    pub user_verified: bool,
    /// The authenticator says the key may be copied to the user's other
    /// devices (a synced passkey, flag BE): not a hardware-bound key.
    pub backup_eligible: bool,
}

/// A passkey as stored with its device.
#[derive(Debug, Clone)]
pub struct Registered {
    pub credential_id: String,
    pub credential: String,
    pub sign_count: u32,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty").finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// `None` when the issuer has no host name: WebAuthn has no relying
    /// party on an IP address.
    pub fn for_issuer(issuer: &str) -> Option<Self> {
        let origin = Url::parse(issuer.trim_end_matches('/')).ok()?;
        let host = origin.domain()?.to_string();
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .ok()?
            .rp_name("Assent")
            .build()
            .ok()?;
        Some(Self { webauthn })
    }

    /// Creation options for `user` (its `sub` and a label), and the state
    /// that checking the answer needs (JSON, kept by the caller).
    pub fn start_registration(&self, sub: &str, label: &str) -> (Value, String) {
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user_handle(sub), label, label, None)
            .expect("registration options are built from valid parts");
        let mut options = serde_json::to_value(options).expect("options serialise");
        // A discoverable credential where the authenticator can: the phone
        // then lists it under the server's name. Not checked by the server.
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "preferred".into());
            selection.insert("requireResidentKey".into(), false.into());
        }
        let state = serde_json::to_string(&state).expect("state serialises");
        (options, state)
    }

    /// Checks a registration against the state kept for it.
    pub fn finish_registration(
        &self,
        credential: &Value,
        state: &str,
    ) -> Result<Registered, Refusal> {
        let credential: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
            .map_err(|e| {
                invalid(format!(
                    "passkey is not a WebAuthn credential in JSON form: {e}"
                ))
            })?;
        let state: PasskeyRegistration =
            serde_json::from_str(state).map_err(|_| invalid("the registration is unusable"))?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| invalid(registration_refusal(e)))?;
        let sign_count = stored_counter(&passkey);
        Ok(Registered {
            credential_id: b64url(passkey.cred_id().as_ref()),
            credential: serde_json::to_string(&passkey).expect("passkey serialises"),
            sign_count,
        })
    }

    /// Checks an assertion made over `canonical_decision` with the stored
    /// passkey whose counter is `sign_count`.
    pub fn verify_assertion(
        &self,
        assertion: &Value,
        canonical_decision: &str,
        credential: &str,
        sign_count: u32,
    ) -> Result<Asserted, Refusal> {
        let assertion: PublicKeyCredential =
            serde_json::from_value(assertion.clone()).map_err(|e| {
                invalid(format!(
                    "passkey is not a WebAuthn assertion in JSON form: {e}"
                ))
            })?;
        let mut stored: Value = serde_json::from_str(credential)
            .map_err(|_| invalid("the stored passkey is unusable"))?;
        // The counter lives in its own column (one UPDATE moves it).
        if let Some(counter) = stored.pointer_mut("/cred/counter") {
            *counter = sign_count.into();
        }
        let passkey: Passkey = serde_json::from_value(stored)
            .map_err(|_| invalid("the stored passkey is unusable"))?;
        if assertion.raw_id.as_ref() != passkey.cred_id().as_ref() {
            return Err(invalid(
                "the assertion is by another passkey than the device's (rawId)",
            ));
        }
        // What webauthn-rs leaves to its caller at authentication: the
        // credential type, and an assertion made inside another site's frame.
        if assertion.type_ != "public-key" {
            return Err(invalid("the assertion's type is not public-key"));
        }
        let client_data: Value =
            serde_json::from_slice(assertion.response.client_data_json.as_ref())
                .map_err(|_| invalid("clientDataJSON is not JSON"))?;
        if client_data.get("crossOrigin").is_some_and(|c| c != false)
            || client_data.get("topOrigin").is_some()
        {
            return Err(invalid(
                "the assertion was made inside a frame of another site (crossOrigin, topOrigin)",
            ));
        }
        let (_, state) = self
            .webauthn
            .start_passkey_authentication(std::slice::from_ref(&passkey))
            .map_err(|e| invalid(format!("the stored passkey is unusable ({e})")))?;
        // The challenge is the decision itself, not a random one the server
        // handed out: the device needs no round trip, and the assertion
        // is worth nothing for any other decision.
        let mut state = serde_json::to_value(state).expect("state serialises");
        let challenge = digest::digest(&digest::SHA256, canonical_decision.as_bytes());
        *state
            .pointer_mut("/ast/challenge")
            .expect("the authentication state has a challenge") = b64url(challenge.as_ref()).into();
        let state: PasskeyAuthentication =
            serde_json::from_value(state).expect("the state deserialises as it serialised");
        let result = self
            .webauthn
            .finish_passkey_authentication(&assertion, &state)
            .map_err(assertion_refusal)?;
        Ok(Asserted {
            sign_count: result.counter(),
            user_verified: result.user_verified(),
            backup_eligible: result.backup_eligible(),
        })
    }
}

/// A stable 16-byte WebAuthn user handle for a `sub` (the first half of its
/// SHA-256): the same user gets the same handle on every device, and the
/// handle says nothing readable.
fn user_handle(sub: &str) -> Uuid {
    let digest = digest::digest(&digest::SHA256, sub.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

fn stored_counter(passkey: &Passkey) -> u32 {
    serde_json::to_value(passkey)
        .ok()
        .and_then(|v| v.pointer("/cred/counter").and_then(Value::as_u64))
        .unwrap_or(0) as u32
}

fn registration_refusal(error: WebauthnError) -> String {
    match error {
        WebauthnError::UserNotVerified => "the authenticator did not verify the user \
             (fingerprint, face or screen lock): Assent needs one that does"
            .into(),
        other => format!(
            "the passkey registration does not check out: {}",
            describe(&other)
        ),
    }
}

/// The words of a counter refusal, whoever finds it (webauthn-rs, or the
/// statement that moves the stored counter).
pub const COUNTER_REFUSAL: &str =
    "the passkey's signature counter did not increase: a replayed assertion or a cloned passkey";

fn assertion_refusal(error: WebauthnError) -> Refusal {
    match error {
        WebauthnError::MismatchedChallenge => {
            invalid("the passkey signed another decision (challenge)")
        }
        WebauthnError::UserNotVerified => {
            invalid("the passkey assertion has no user verification (flag UV)")
        }
        WebauthnError::CredentialPossibleCompromise => {
            Refusal(COUNTER_REFUSAL.into(), RefusalKind::Counter)
        }
        other => invalid(format!(
            "the passkey assertion does not check out: {}",
            describe(&other)
        )),
    }
}

/// webauthn-rs's errors in words (their Display is terse).
fn describe(error: &WebauthnError) -> String {
    match error {
        WebauthnError::InvalidRPOrigin => "wrong origin (clientDataJSON origin)".into(),
        WebauthnError::InvalidRPIDHash => "wrong relying party (RP ID hash)".into(),
        WebauthnError::InvalidClientDataType => "wrong clientDataJSON type".into(),
        WebauthnError::MismatchedChallenge => "wrong challenge".into(),
        WebauthnError::UserNotPresent => "no user presence (flag UP)".into(),
        WebauthnError::CredentialNotFound => "unknown credential".into(),
        WebauthnError::AuthenticationFailure => "bad signature".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The protocol's test vector of a passkey decision.
    fn vector() -> Value {
        let file = include_str!("../../shared/test-vectors/protocol-v1.json");
        serde_json::from_str::<Value>(file).unwrap()["decision_with_passkey"].clone()
    }

    /// The vector's passkey as webauthn-rs stores it (registered with
    /// user verification, counter 6).
    fn stored_passkey(vector: &Value) -> String {
        let jwk = &vector["passkey"]["private_jwk"];
        json!({"cred": {
            "cred_id": vector["passkey"]["credential_id"],
            "cred": {"type_": "ES256", "key": {"EC_EC2": {
                "curve": "SECP256R1", "x": jwk["x"], "y": jwk["y"]}}},
            "counter": 0,
            "transports": null,
            "user_verified": true,
            "backup_eligible": false,
            "backup_state": false,
            "registration_policy": "required",
            "extensions": {
                "cred_protect": "Ignored", "hmac_create_secret": "NotRequested",
                "appid": "NotRequested", "cred_props": "Ignored"},
            "attestation": {"data": "None", "metadata": "None"},
            "attestation_format": "none"
        }})
        .to_string()
    }

    fn relying_party() -> RelyingParty {
        RelyingParty::for_issuer("https://assent.example").unwrap()
    }

    #[test]
    fn the_test_vector_checks_out_and_binds_its_decision_and_counter() {
        let vector = vector();
        let stored = stored_passkey(&vector);
        let assertion = &vector["claims"]["passkey"];
        let canonical = vector["canonical"].as_str().unwrap();
        let asserted = relying_party()
            .verify_assertion(assertion, canonical, &stored, 6)
            .unwrap();
        assert_eq!(
            asserted,
            Asserted {
                sign_count: 7,
                user_verified: true,
                backup_eligible: false,
            }
        );
        // Another decision (the same with "deny"), the counter already at 7,
        // another relying party: each refused, by the check it names.
        let denial = canonical.replace("\napprove\n", "\ndeny\n");
        let refusal = |r: Result<Asserted, Refusal>| r.unwrap_err().0;
        assert!(
            refusal(relying_party().verify_assertion(assertion, &denial, &stored, 6))
                .contains("another decision")
        );
        assert!(
            refusal(relying_party().verify_assertion(assertion, canonical, &stored, 7))
                .contains("counter")
        );
        let elsewhere = RelyingParty::for_issuer("https://assent.example.org").unwrap();
        assert!(
            refusal(elsewhere.verify_assertion(assertion, canonical, &stored, 6))
                .contains("does not check out")
        );
    }

    #[test]
    fn creation_options_ask_for_user_verification_and_a_discoverable_key() {
        let (options, state) =
            relying_party().start_registration("auth0|alice", "alice@example.com");
        let selection = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(selection["residentKey"], "preferred");
        assert_eq!(options["publicKey"]["rp"]["id"], "assent.example");
        // The same user gets the same handle; the handle is not the sub.
        let (again, _) = relying_party().start_registration("auth0|alice", "alice@example.com");
        assert_eq!(
            options["publicKey"]["user"]["id"],
            again["publicKey"]["user"]["id"]
        );
        assert!(!state.contains("auth0|alice"));
    }

    #[test]
    fn an_issuer_without_a_host_name_has_no_relying_party() {
        assert!(RelyingParty::for_issuer("http://127.0.0.1:8080").is_none());
        assert!(RelyingParty::for_issuer("http://[::1]:8080").is_none());
        assert!(RelyingParty::for_issuer("http://localhost:8080").is_some());
    }
}
