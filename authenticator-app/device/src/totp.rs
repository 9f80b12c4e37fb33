//! TOTP accounts (RFC 6238) as authenticator apps hold them: added from an
//! `otpauth://` link (Google's Key Uri Format, what every service's QR code
//! holds), showing the current code and how long it stays.
//!
//! The link is the whole account, secret included: it is what the stores
//! keep (a file only its owner reads for `assent-device`, the OS credential
//! store for the desktop app), never a log.

use std::time::{SystemTime, UNIX_EPOCH};

use totp_rs::{Algorithm, TOTP};

/// Shortest secret taken: 80 bits, what most services issue (16 base32
/// characters). RFC 4226 recommends 160; shorter ones are the service's
/// choice, but below 80 the code is no longer worth typing.
const MIN_SECRET_BYTES: usize = 10;
/// Longest link taken.
const MAX_URI_LEN: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    #[error("not an otpauth://totp/ link")]
    NotTotp,
    #[error("the link's {0} is not one an authenticator can use")]
    Invalid(&'static str),
    #[error("the secret is shorter than 80 bits")]
    SecretTooShort,
}

/// One TOTP account.
#[derive(Clone)]
pub struct TotpAccount {
    totp: TOTP,
}

impl std::fmt::Debug for TotpAccount {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpAccount")
            .field("issuer", &self.totp.issuer)
            .field("account", &self.totp.account_name)
            .finish_non_exhaustive()
    }
}

impl TotpAccount {
    /// Reads an `otpauth://totp/ISSUER:ACCOUNT?secret=…` link: SHA-1,
    /// SHA-256 or SHA-512, 6 to 8 digits, a period of 1 to 300 seconds
    /// (defaults: SHA-1, 6, 30).
    pub fn from_uri(uri: &str) -> Result<Self, TotpError> {
        let uri = uri.trim();
        if uri.len() > MAX_URI_LEN || !uri.to_ascii_lowercase().starts_with("otpauth://totp/") {
            return Err(TotpError::NotTotp);
        }
        let totp = TOTP::from_url_unchecked(uri).map_err(|e| {
            use totp_rs::TotpUrlError as E;
            TotpError::Invalid(match e {
                E::Secret(_) | E::SecretSize(_) => "secret",
                E::Algorithm(_) => "algorithm",
                E::Digits(_) | E::DigitsNumber(_) => "number of digits",
                E::Step(_) => "period",
                E::Issuer(_) | E::IssuerDecoding(_) | E::IssuerMistmatch(..) => "issuer",
                E::AccountName(_) | E::AccountNameDecoding(_) => "account name",
                _ => "form",
            })
        })?;
        if !(6..=8).contains(&totp.digits) {
            return Err(TotpError::Invalid("number of digits"));
        }
        if !(1..=300).contains(&totp.step) {
            return Err(TotpError::Invalid("period"));
        }
        if totp.secret.len() < MIN_SECRET_BYTES {
            return Err(TotpError::SecretTooShort);
        }
        if totp.account_name.chars().any(char::is_control)
            || totp
                .issuer
                .as_deref()
                .is_some_and(|i| i.chars().any(char::is_control))
        {
            return Err(TotpError::Invalid("account name"));
        }
        Ok(Self { totp })
    }

    /// The link again (the form the stores keep).
    pub fn to_uri(&self) -> String {
        self.totp.get_url()
    }

    pub fn issuer(&self) -> Option<&str> {
        self.totp.issuer.as_deref().filter(|i| !i.is_empty())
    }

    pub fn account_name(&self) -> &str {
        &self.totp.account_name
    }

    /// "Issuer (account)", or the account alone.
    pub fn label(&self) -> String {
        match self.issuer() {
            Some(issuer) => format!("{issuer} ({})", self.totp.account_name),
            None => self.totp.account_name.clone(),
        }
    }

    pub fn digits(&self) -> usize {
        self.totp.digits
    }

    pub fn period(&self) -> u64 {
        self.totp.step
    }

    pub fn algorithm(&self) -> &'static str {
        match self.totp.algorithm {
            Algorithm::SHA1 => "SHA1",
            Algorithm::SHA256 => "SHA256",
            Algorithm::SHA512 => "SHA512",
        }
    }

    /// The code at `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> String {
        self.totp.generate(unix_secs)
    }

    /// Seconds the code of `unix_secs` stays (1 to the period).
    pub fn seconds_left_at(&self, unix_secs: u64) -> u64 {
        self.totp.step - unix_secs % self.totp.step
    }

    /// The code now, and how many seconds it stays.
    pub fn now(&self) -> (String, u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (self.code_at(now), self.seconds_left_at(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B's SHA-1 seed, "12345678901234567890", in base32.
    const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_match_rfc_6238() {
        let account =
            TotpAccount::from_uri(&format!("otpauth://totp/ACME:alice?secret={SEED}&digits=8"))
                .unwrap();
        // Appendix B, SHA-1: T = 59 s → 94287082, T = 1111111109 → 07081804.
        assert_eq!(account.code_at(59), "94287082");
        assert_eq!(account.code_at(1_111_111_109), "07081804");
        assert_eq!(account.seconds_left_at(59), 1);
        assert_eq!(account.seconds_left_at(60), 30);
        assert_eq!(account.issuer(), Some("ACME"));
        assert_eq!(account.label(), "ACME (alice)");
    }

    #[test]
    fn links_an_app_cannot_use_are_refused() {
        for (uri, error) in [
            ("https://example.com", TotpError::NotTotp),
            (
                "otpauth://hotp/x?secret=GEZDGNBVGY3TQOJQ",
                TotpError::NotTotp,
            ),
            (
                "otpauth://totp/x?secret=GEZDGNBV",
                TotpError::SecretTooShort,
            ),
            (
                "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ&digits=12",
                TotpError::Invalid("number of digits"),
            ),
            (
                "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ&period=0",
                TotpError::Invalid("period"),
            ),
            (
                "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ&algorithm=MD5",
                TotpError::Invalid("algorithm"),
            ),
            ("otpauth://totp/x?secret=!!!", TotpError::Invalid("secret")),
        ] {
            assert_eq!(TotpAccount::from_uri(uri).unwrap_err(), error, "{uri}");
        }
    }

    #[test]
    fn the_link_round_trips_and_debug_hides_the_secret() {
        let uri = format!("otpauth://totp/ACME:alice%40example.com?secret={SEED}&issuer=ACME");
        let account = TotpAccount::from_uri(&uri).unwrap();
        let again = TotpAccount::from_uri(&account.to_uri()).unwrap();
        assert_eq!(again.code_at(59), account.code_at(59));
        assert_eq!(again.account_name(), "alice@example.com");
        assert!(!format!("{account:?}").contains(SEED));
    }
}
