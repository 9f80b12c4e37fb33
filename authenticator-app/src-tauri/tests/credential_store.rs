//! Keys in a real Secret Service: a private D-Bus session with
//! gnome-keyring-daemon (the store of GNOME desktops), started for this test
//! with its own HOME, so nothing of the person running it is touched.
//! Its own test binary, because it points this process at that session bus.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use assent_authenticator::{
    keys::{KeyLocation, KeyStoreChoice, KeyVault, KEYRING_SERVICE},
    pin::PinStore,
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
}
