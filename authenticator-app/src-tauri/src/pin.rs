//! The app PIN: the user's own verification before an approval leaves this
//! device, and, where a key has to live in a file, the secret that key is
//! encrypted under.
//!
//! A PIN is human-chosen and short, so it is stretched with argon2id (the
//! OWASP parameters: 19 MiB, two passes, one lane) and guesses are throttled:
//! after five wrong PINs each further one pauses the app for longer (30 s,
//! doubling, at most an hour). The count lives in the PIN file and goes up
//! *before* a guess is checked, so killing the app in the middle of a check
//! does not buy a free try, and restarting does not reset the pause.
//!
//! Everything here blocks (argon2 takes tens of milliseconds by design, and
//! files are synced): call it from a blocking thread.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use assent_device::state::{create_private_dir, write_private};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const PIN_FILE: &str = "pin.json";
pub const MIN_DIGITS: usize = 6;
pub const MAX_DIGITS: usize = 12;
/// Wrong PINs allowed before the first pause.
pub const FREE_ATTEMPTS: u32 = 5;
const FIRST_PAUSE_SECS: i64 = 30;
const LONGEST_PAUSE_SECS: i64 = 3600;

/// argon2id with OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, Some(32)).expect("constant argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("No app PIN is set yet.")]
    NotSet,
    #[error("An app PIN is set already.")]
    AlreadySet,
    /// A new PIN that does not meet the rules, in words.
    #[error("{0}")]
    Unacceptable(String),
    #[error("Wrong PIN.")]
    Wrong {
        /// Wrong PINs left before the app pauses (0: the next one pauses).
        attempts_before_pause: u32,
        /// Set when this wrong PIN started a pause (Unix seconds).
        paused_until: Option<i64>,
    },
    /// Too many wrong PINs: no PIN is checked before `until` (Unix seconds).
    #[error("Too many wrong PINs.")]
    Paused { until: i64 },
    #[error("The PIN file could not be used: {0}")]
    Storage(String),
}

impl From<anyhow::Error> for PinError {
    fn from(e: anyhow::Error) -> Self {
        PinError::Storage(format!("{e:#}"))
    }
}

/// The key that encrypts device keys kept in files, derived from the PIN.
pub struct FileKey(Zeroizing<[u8; 32]>);

impl FileKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PinFile {
    v: u32,
    /// PHC string of argon2id(PIN): checks a PIN.
    verifier: String,
    /// Salt (PHC base64) of the second, independent argon2id(PIN) that
    /// gives the [`FileKey`]; the verifier alone never yields that key.
    file_key_salt: String,
    /// Wrong PINs since the last right one.
    failures: u32,
    /// No PIN is checked before this (Unix seconds).
    paused_until: i64,
}

/// The PIN of one app installation, in `<data_dir>/pin.json` (owner-only).
#[derive(Debug, Clone)]
pub struct PinStore {
    path: PathBuf,
}

impl PinStore {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(PIN_FILE),
        }
    }

    pub fn is_set(&self) -> bool {
        self.path.exists()
    }

    /// Sets the first PIN and returns the file key it gives.
    pub fn set(&self, pin: &str) -> Result<FileKey, PinError> {
        if self.is_set() {
            return Err(PinError::AlreadySet);
        }
        check_new_pin(pin)?;
        let salt = SaltString::generate(&mut OsRng);
        let verifier = argon2()
            .hash_password(pin.as_bytes(), &salt)
            .map_err(|e| PinError::Storage(e.to_string()))?
            .to_string();
        let file_key_salt = SaltString::generate(&mut OsRng);
        let key = derive_file_key(pin, file_key_salt.as_str())?;
        self.write(&PinFile {
            v: 1,
            verifier,
            file_key_salt: file_key_salt.as_str().to_string(),
            failures: 0,
            paused_until: 0,
        })?;
        Ok(key)
    }

    /// Checks `pin` (throttled). `now` is Unix seconds.
    pub fn verify(&self, pin: &str, now: i64) -> Result<(), PinError> {
        self.check(pin, now).map(|_| ())
    }

    /// Checks `pin` (throttled) and returns the file key it gives.
    pub fn unlock(&self, pin: &str, now: i64) -> Result<FileKey, PinError> {
        let file = self.check(pin, now)?;
        derive_file_key(pin, &file.file_key_salt)
    }

    /// Seconds of pause left, if a pause is on.
    pub fn paused_until(&self, now: i64) -> Option<i64> {
        self.read()
            .ok()
            .map(|f| f.paused_until)
            .filter(|&until| until > now)
    }

    fn check(&self, pin: &str, now: i64) -> Result<PinFile, PinError> {
        let mut file = self.read()?;
        if file.paused_until > now {
            return Err(PinError::Paused {
                until: file.paused_until,
            });
        }
        // Count the guess before checking it (see the module comment).
        file.failures = file.failures.saturating_add(1);
        file.paused_until = pause_after(file.failures).map_or(0, |secs| now + secs);
        self.write(&file)?;

        let verifier = PasswordHash::new(&file.verifier)
            .map_err(|e| PinError::Storage(format!("the PIN file is damaged: {e}")))?;
        if argon2().verify_password(pin.as_bytes(), &verifier).is_err() {
            return Err(PinError::Wrong {
                attempts_before_pause: FREE_ATTEMPTS.saturating_sub(file.failures),
                paused_until: (file.paused_until > now).then_some(file.paused_until),
            });
        }
        file.failures = 0;
        file.paused_until = 0;
        self.write(&file)?;
        Ok(file)
    }

    fn read(&self) -> Result<PinFile, PinError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| PinError::Storage(format!("the PIN file is damaged: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PinError::NotSet),
            Err(e) => Err(PinError::Storage(e.to_string())),
        }
    }

    fn write(&self, file: &PinFile) -> Result<(), PinError> {
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir).context("creating the app's data folder")?;
        }
        write_private(
            &self.path,
            &serde_json::to_vec_pretty(file).map_err(anyhow::Error::from)?,
        )?;
        Ok(())
    }
}

/// The pause after the `failures`-th wrong PIN in a row, if any.
fn pause_after(failures: u32) -> Option<i64> {
    let over = failures.checked_sub(FREE_ATTEMPTS)?;
    let doubling = 2i64.saturating_pow(over.min(32));
    Some(
        FIRST_PAUSE_SECS
            .saturating_mul(doubling)
            .min(LONGEST_PAUSE_SECS),
    )
}

fn derive_file_key(pin: &str, salt_b64: &str) -> Result<FileKey, PinError> {
    let salt = SaltString::from_b64(salt_b64)
        .map_err(|e| PinError::Storage(format!("the PIN file is damaged: {e}")))?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| PinError::Storage(format!("the PIN file is damaged: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    argon2()
        .hash_password_into(pin.as_bytes(), salt_bytes, key.as_mut())
        .map_err(|e| PinError::Storage(e.to_string()))?;
    Ok(FileKey(key))
}

/// The rules for a new PIN, told in words when one is broken.
pub fn check_new_pin(pin: &str) -> Result<(), PinError> {
    let unacceptable = |why: &str| Err(PinError::Unacceptable(why.to_string()));
    if !pin.chars().all(|c| c.is_ascii_digit()) {
        return unacceptable("Use digits only for the PIN.");
    }
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&pin.len()) {
        return Err(PinError::Unacceptable(format!(
            "Choose a PIN of {MIN_DIGITS} to {MAX_DIGITS} digits."
        )));
    }
    let digits: Vec<i32> = pin.bytes().map(|b| i32::from(b - b'0')).collect();
    let steps: Vec<i32> = digits.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.iter().all(|&s| s == 0) {
        return unacceptable("A PIN of one repeated digit is too easy to guess.");
    }
    if steps.iter().all(|&s| s == 1) || steps.iter().all(|&s| s == -1) {
        return unacceptable("A PIN of consecutive digits is too easy to guess.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_pin_verifies_and_gives_the_same_file_key_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::new(dir.path());
        assert!(!store.is_set());
        assert_eq!(store.verify("402913", 0), Err(PinError::NotSet));
        let key = store.set("402913").unwrap();
        assert!(store.is_set());
        assert_eq!(store.set("402913").err(), Some(PinError::AlreadySet));
        store.verify("402913", 0).unwrap();
        assert_eq!(store.unlock("402913", 0).unwrap().bytes(), key.bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(PIN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let stored = fs::read_to_string(dir.path().join(PIN_FILE)).unwrap();
        assert!(!stored.contains("402913"), "the PIN itself is never stored");
        assert!(
            stored.contains("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
    }

    #[test]
    fn wrong_pins_pause_the_app_for_longer_each_time_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        PinStore::new(dir.path()).set("402913").unwrap();
        let now = 1_000_000;
        for left in (0..FREE_ATTEMPTS).rev() {
            // A new store each time: nothing is kept in memory.
            let wrong = PinStore::new(dir.path()).verify("999999", now);
            let paused_until = (left == 0).then_some(now + 30);
            assert_eq!(
                wrong,
                Err(PinError::Wrong {
                    attempts_before_pause: left,
                    paused_until
                })
            );
        }
        let store = PinStore::new(dir.path());
        // During the pause even the right PIN is not checked.
        assert_eq!(
            store.verify("402913", now + 29),
            Err(PinError::Paused { until: now + 30 })
        );
        assert_eq!(store.paused_until(now + 29), Some(now + 30));
        // The next wrong one doubles the pause.
        assert!(matches!(
            store.verify("999999", now + 30),
            Err(PinError::Wrong { paused_until: Some(t), .. }) if t == now + 90
        ));
        store.verify("402913", now + 90).unwrap();
        // The right PIN resets the count.
        assert_eq!(
            store.verify("999999", now + 91),
            Err(PinError::Wrong {
                attempts_before_pause: FREE_ATTEMPTS - 1,
                paused_until: None
            })
        );
    }

    #[test]
    fn pauses_grow_to_an_hour_and_no_further() {
        assert_eq!(pause_after(FREE_ATTEMPTS - 1), None);
        assert_eq!(pause_after(FREE_ATTEMPTS), Some(30));
        assert_eq!(pause_after(FREE_ATTEMPTS + 1), Some(60));
        assert_eq!(pause_after(FREE_ATTEMPTS + 7), Some(3600));
        assert_eq!(pause_after(u32::MAX), Some(3600));
    }

    #[test]
    fn weak_or_malformed_pins_are_refused_in_words() {
        for (pin, words) in [
            ("12345", "6 to 12 digits"),
            ("1234567890123", "6 to 12 digits"),
            ("12a456", "digits only"),
            ("777777", "repeated digit"),
            ("345678", "consecutive"),
            ("987654", "consecutive"),
        ] {
            match check_new_pin(pin) {
                Err(PinError::Unacceptable(why)) => assert!(why.contains(words), "{pin}: {why}"),
                other => panic!("{pin}: {other:?}"),
            }
        }
        check_new_pin("402913").unwrap();
    }
}
