//! The key-encryption key: seals the private signing keys the database holds,
//! so that a copy of the database (a backup, a readable file, a replica)
//! yields no key that can sign.
//!
//! AES-256-GCM through aws-lc-rs, a random 96-bit nonce per seal, and the
//! key's identity as associated data: a sealed key copied onto another row
//! does not open. The key-encryption key itself lives outside the database,
//! in a file (generated owner-only next to a SQLite database on first start)
//! or in an environment variable, and is never logged: only its identifier,
//! a digest, is.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context};
use aws_lc_rs::{
    aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN},
    hmac,
};

use crate::secrets::{b64url, b64url_decode, random_bytes, sha256};

/// Length of a key-encryption key, in bytes.
const KEY_LEN: usize = 32;

/// Where the key-encryption key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    /// An environment variable (`ASSENT_KEY_ENCRYPTION_KEY`) holding the
    /// base64url of 32 random bytes.
    Environment(&'static str),
    /// A file holding the same text; generated on first start when absent
    /// and `generate` is set (the default location), read only otherwise.
    File { path: PathBuf, generate: bool },
}

/// A key that seals and opens private signing keys.
pub struct KeyEncryptionKey {
    id: String,
    key: RandomizedNonceKey,
    /// HMAC-SHA256 key derived from this key, for digests of low-entropy
    /// values (one-time codes, addresses) that a copy of the database alone
    /// must not be able to reverse by trying every value.
    digest_key: hmac::Key,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.len() != KEY_LEN {
            bail!(
                "a key-encryption key is {KEY_LEN} bytes (43 base64url characters); this one is {} bytes",
                bytes.len()
            );
        }
        let mut input = b"assent key-encryption key id\0".to_vec();
        input.extend_from_slice(bytes);
        let id = b64url(&sha256(&input)[..12]);
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| anyhow!("AES-256-GCM refused the key-encryption key"))?;
        let mut derive = b"assent keyed digests\0".to_vec();
        derive.extend_from_slice(bytes);
        let digest_key = hmac::Key::new(hmac::HMAC_SHA256, &sha256(&derive));
        Ok(Self {
            id,
            key,
            digest_key,
        })
    }

    /// Parses the text form (base64url, surrounding whitespace ignored).
    pub fn from_text(text: &str) -> anyhow::Result<Self> {
        let bytes = b64url_decode(text.trim())
            .ok_or_else(|| anyhow!("a key-encryption key must be base64url text"))?;
        Self::from_bytes(&bytes)
    }

    /// A new random key and its text form.
    pub fn generate() -> (Self, String) {
        let bytes = random_bytes(KEY_LEN);
        let text = b64url(&bytes);
        (
            Self::from_bytes(&bytes).expect("a fresh key has the right length"),
            text,
        )
    }

    /// A short public name for this key: stored beside every key it seals,
    /// and shown in errors, so a process given the wrong key says so.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256 of `value` under this key, bound to `context`, as hex.
    pub fn keyed_digest(&self, context: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.digest_key);
        ctx.update(context.as_bytes());
        ctx.update(b"\0");
        ctx.update(value.as_bytes());
        ctx.sign()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// base64url(nonce || ciphertext || tag), bound to `context`.
    pub fn seal(&self, plain: &[u8], context: &str) -> String {
        let mut in_out = plain.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut in_out)
            .expect("AES-GCM sealing cannot fail for small inputs");
        let mut sealed = nonce.as_ref().to_vec();
        sealed.extend_from_slice(&in_out);
        b64url(&sealed)
    }

    /// Opens what [`seal`](Self::seal) produced for the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> anyhow::Result<Vec<u8>> {
        let bytes = b64url_decode(sealed).ok_or_else(|| anyhow!("not base64url"))?;
        if bytes.len() < NONCE_LEN {
            bail!("too short to be sealed");
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| anyhow!("it does not open with key-encryption key {}", self.id))?;
        Ok(plain.to_vec())
    }

    /// Loads the key from `source`, generating the file when allowed.
    ///
    /// A missing file at the default place is generated only when
    /// `first_start` says nothing is sealed yet: with sealed keys in the
    /// database, a new key would open none of them, so the missing file is
    /// an error that says so.
    pub fn load(
        source: &KekSource,
        insecure_modes_allowed: bool,
        first_start: bool,
    ) -> anyhow::Result<Self> {
        match source {
            KekSource::Environment(variable) => {
                let text =
                    std::env::var(variable).with_context(|| format!("reading {variable}"))?;
                Self::from_text(&text).with_context(|| variable.to_string())
            }
            KekSource::File { path, generate } => {
                if !path.exists() {
                    if !(*generate && first_start) {
                        bail!(
                            "no key-encryption key at {}: the signing keys in the database are sealed \
                             with one. Restore the file from your backup, or name it with \
                             ASSENT_KEY_ENCRYPTION_KEY_FILE (or give the key in ASSENT_KEY_ENCRYPTION_KEY)",
                            path.display()
                        );
                    }
                    if let Some(key) = generate_file(path)? {
                        return Ok(key);
                    }
                }
                read_file(path, insecure_modes_allowed)
            }
        }
    }
}

/// Writes a new key to `path`, owner-only, atomically: it is written to a
/// temporary file and linked into place, so a process starting at the same
/// moment either finds no file or a complete one. `None` when another process
/// created it first (the caller reads that one).
fn generate_file(path: &Path) -> anyhow::Result<Option<KeyEncryptionKey>> {
    let (key, text) = KeyEncryptionKey::generate();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = dir.join(format!(".assent-kek-{}", b64url(&random_bytes(9))));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(format!("{text}\n").as_bytes())?;
            file.sync_all()
        })
        .with_context(|| format!("writing the key-encryption key {}", temporary.display()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::warn!(
                file = %path.display(),
                kek_id = key.id(),
                "generated the key-encryption key that seals the signing keys: back it up \
                 apart from the database (without it the keys cannot be opened)"
            );
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => {
            Err(e).with_context(|| format!("creating the key-encryption key {}", path.display()))
        }
    }
}

fn read_file(path: &Path, insecure_modes_allowed: bool) -> anyhow::Result<KeyEncryptionKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("reading the key-encryption key {}", path.display()))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            if insecure_modes_allowed {
                tracing::warn!(
                    file = %path.display(),
                    mode = format!("{mode:o}"),
                    "the key-encryption key is readable by other accounts (allowed by ASSENT_ALLOW_INSECURE_FILE_MODES)"
                );
            } else {
                bail!(
                    "refusing to use the key-encryption key {}: its mode is {mode:o}, so other accounts \
                     on this machine can read it. Make it owner-only: chmod 600 {}",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key-encryption key {}", path.display()))?;
    KeyEncryptionKey::from_text(&text)
        .with_context(|| format!("the key-encryption key {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key_and_context() {
        let (kek, text) = KeyEncryptionKey::generate();
        let sealed = kek.seal(b"private key", "signing-key token RS256 kid1");
        assert_eq!(
            kek.open(&sealed, "signing-key token RS256 kid1").unwrap(),
            b"private key"
        );
        // Another row's context, another key, a flipped bit: none opens.
        assert!(kek.open(&sealed, "signing-key token RS256 kid2").is_err());
        let (other, _) = KeyEncryptionKey::generate();
        assert!(other.open(&sealed, "signing-key token RS256 kid1").is_err());
        let mut bytes = b64url_decode(&sealed).unwrap();
        bytes[20] ^= 1;
        assert!(kek
            .open(&b64url(&bytes), "signing-key token RS256 kid1")
            .is_err());
        // Two seals of one input differ (a fresh nonce each time).
        assert_ne!(
            sealed,
            kek.seal(b"private key", "signing-key token RS256 kid1")
        );
        // The text form round-trips to the same key.
        assert_eq!(KeyEncryptionKey::from_text(&text).unwrap().id(), kek.id());
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        assert!(KeyEncryptionKey::from_text(&b64url(&[7u8; 16])).is_err());
        assert!(KeyEncryptionKey::from_text("not base64url!").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_generated_file_is_owner_only_and_a_readable_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("assent.kek");
        let source = KekSource::File {
            path: path.clone(),
            generate: true,
        };
        let first = KeyEncryptionKey::load(&source, false, true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            KeyEncryptionKey::load(&source, false, true).unwrap().id(),
            first.id()
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = KeyEncryptionKey::load(&source, false, true).unwrap_err();
        assert!(format!("{refused:#}").contains("chmod 600"), "{refused:#}");
        assert_eq!(
            KeyEncryptionKey::load(&source, true, true).unwrap().id(),
            first.id()
        );
        // Not generated where the operator named a file: a typo is an error.
        let named = KekSource::File {
            path: dir.path().join("typo.kek"),
            generate: false,
        };
        assert!(KeyEncryptionKey::load(&named, false, true).is_err());
        // Not generated where keys are sealed already: the lost file is named.
        std::fs::remove_file(&path).unwrap();
        let lost = KeyEncryptionKey::load(&source, false, false).unwrap_err();
        assert!(format!("{lost:#}").contains("Restore the file"), "{lost:#}");
        assert!(!path.exists());
    }
}
