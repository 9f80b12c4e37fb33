//! Keys and sign-in code secrets in a real Secret Service: a private D-Bus session with
//! gnome-keyring-daemon (the store of GNOME desktops), started for this test
//! with its own HOME, so nothing of the person running it is touched.
//! Its own test binary, because it points this process at that session bus.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use assent_authenticator::{
    keys::{KeyLocation, KeyStoreChoice, KeyVault, KEYRING_SERVICE, TOTP_KEYRING_SERVICE},
    pin::PinStore,
    Authenticator, Settings,
};
use assent_shared::jose::DeviceKey;
use assent_tests::desktop::SecretService;

#[test]
fn keys_live_in_the_secret_service_and_not_on_disk() {
    let service = SecretService::start();
    // SAFETY: this test binary has this one test, so no other thread reads
    // the environment while it changes.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &service.address) };

    let dir = tempfile::tempdir().unwrap();
    let vault = KeyVault::new(KeyStoreChoice::CredentialStore);
    let key = DeviceKey::generate();
    // Unused while the store takes the key: it encrypts a key that has to go to a file.
    let file_key = PinStore::new(dir.path()).set("402913").unwrap();
    std::fs::remove_file(dir.path().join("pin.json")).unwrap();
    // The daemon takes a moment to claim its bus name.
    let deadline = Instant::now() + Duration::from_secs(10);
    let location = loop {
        match vault.save(dir.path(), "account-1", &key, &file_key) {
            Ok(location) => break location,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the keyring: {e:#}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the Secret Service never took the key: {e:#}"),
        }
    };
    assert_eq!(location, KeyLocation::CredentialStore);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no key file next to the account"
    );
    // Another reader of the same store sees the same key.
    let stored = keyring::Entry::new(KEYRING_SERVICE, "account-1")
        .unwrap()
        .get_password()
        .unwrap();
    assert!(stored.contains("\"d\""), "a private JWK");
    let loaded = vault.load(dir.path(), "account-1", location, None).unwrap();
    assert_eq!(loaded.public_jwk(), key.public_jwk());

    vault.delete(dir.path(), "account-1", location).unwrap();
    assert!(matches!(
        keyring::Entry::new(KEYRING_SERVICE, "account-1")
            .unwrap()
            .get_password(),
        Err(keyring::Error::NoEntry)
    ));

    // "auto" prefers the store too.
    let auto = KeyVault::new(KeyStoreChoice::Auto);
    assert_eq!(
        auto.save(dir.path(), "account-2", &key, &file_key).unwrap(),
        KeyLocation::CredentialStore
    );
    auto.delete(dir.path(), "account-2", KeyLocation::CredentialStore)
        .unwrap();

    // A sign-in code account's secret (its otpauth:// link) goes there too,
    // under a service of its own, and into no file.
    let data = tempfile::tempdir().unwrap();
    let app = Authenticator::new(Settings {
        data_dir: data.path().to_path_buf(),
        key_store: KeyStoreChoice::CredentialStore,
        device_name: "Test".into(),
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let link = format!("otpauth://totp/ACME:alice?secret={secret}&issuer=ACME");
    let added = runtime.block_on(app.add_code(&link, "402913")).unwrap();
    assert_eq!(added.secret_location, KeyLocation::CredentialStore);
    let stored = keyring::Entry::new(TOTP_KEYRING_SERVICE, &added.id)
        .unwrap()
        .get_password()
        .unwrap();
    assert!(stored.starts_with("otpauth://totp/") && stored.contains(secret));
    let mut files = vec![data.path().to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(
                !text.contains(secret),
                "{} holds the secret",
                path.display()
            );
        }
    }
    runtime.block_on(app.remove_code(&added.id)).unwrap();
    assert!(matches!(
        keyring::Entry::new(TOTP_KEYRING_SERVICE, &added.id)
            .unwrap()
            .get_password(),
        Err(keyring::Error::NoEntry)
    ));
}
