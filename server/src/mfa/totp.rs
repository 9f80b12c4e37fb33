//! TOTP (RFC 6238) as every authenticator app understands it: SHA-1, six
//! digits, 30-second steps, a 160-bit secret, and the Key Uri Format's
//! `otpauth://` link that apps scan.

use totp_rs::{Algorithm, TOTP};

use crate::{secrets::constant_time_eq, storage::UserRow};

pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
/// Secret length: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// What a TOTP secret is sealed to: its own authenticator, so a sealed
/// value copied to another row does not open there.
pub fn seal_context(authenticator_id: &str) -> String {
    format!("assent mfa totp secret {authenticator_id}")
}

/// The time step of `now_secs`.
pub fn step_of(now_secs: i64) -> i64 {
    now_secs / STEP_SECS as i64
}

/// The step (now, or one either side for clock drift) whose code `otp` is.
pub fn matching_step(secret: &[u8], otp: &str, now_step: i64) -> Option<i64> {
    let totp = TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECS,
        secret.to_vec(),
        None,
        String::new(),
    )
    .ok()?;
    [now_step - 1, now_step, now_step + 1]
        .into_iter()
        .find(|step| *step >= 0 && constant_time_eq(&totp.generate(*step as u64 * STEP_SECS), otp))
}

/// The `otpauth://` URI authenticator apps scan (Key Uri Format): labelled
/// with the issuer's host and the user's address or id.
pub fn otpauth_uri(issuer: &str, client_name: &str, user: &UserRow, secret: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // Unreserved characters stay as they are (RFC 3986 2.3), as apps show them.
    const PART: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_')
        .remove(b'~');
    let host = reqwest::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| client_name.to_string());
    let account = user.email.clone().unwrap_or_else(|| user.sub.clone());
    let host_part = utf8_percent_encode(&host, PART);
    format!(
        "otpauth://totp/{host_part}:{}?secret={secret}&issuer={host_part}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        utf8_percent_encode(&account, PART),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otpauth_uris_name_the_issuer_host_and_the_user() {
        let user = UserRow {
            sub: "auth0|bob".into(),
            email: Some("bob+mfa@example.com".into()),
            email_verified: true,
            phone_number: None,
            phone_verified: false,
            name: None,
            blocked: false,
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(
            otpauth_uri("https://login.example.com/", "Shop", &user, "ABC"),
            "otpauth://totp/login.example.com:bob%2Bmfa%40example.com?secret=ABC\
             &issuer=login.example.com&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn totp_matches_rfc_6238_and_allows_one_step_of_drift() {
        // RFC 6238 Appendix B, SHA-1 seed, T = 59 s: 94287082 (8 digits);
        // its last six digits are the 6-digit code.
        let secret = b"12345678901234567890";
        let step = step_of(59);
        assert_eq!(matching_step(secret, "287082", step), Some(step));
        assert_eq!(matching_step(secret, "287082", step + 1), Some(step));
        assert_eq!(matching_step(secret, "287082", step + 2), None);
        assert_eq!(matching_step(secret, "000000", step), None);
    }
}
