//! What the desktop app's tests run it in: a private X display (Xvfb), a
//! private D-Bus session with a Secret Service (gnome-keyring), and a
//! WebDriver server (`tauri-driver` in front of WebKitWebDriver); plus the
//! few WebDriver steps the tests repeat. Everything gets its own HOME, so a
//! test never touches the desktop, keyring or files of whoever runs it.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use serde_json::json;

use crate::process::authenticator_binary;

pub const WAIT: Duration = Duration::from_secs(20);

/// Panics with the install hint when `tool` is not on PATH.
pub fn need(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: ./scripts/test installs what the desktop tests need \
         (xvfb, webkit2gtk-driver, dbus, gnome-keyring, tauri-driver)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A killed-and-reaped child on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child started as the leader of its own process group; on drop the whole
/// group goes (tauri-driver, WebKitWebDriver and the app it started).
struct GroupGuard(Child);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = self.0.wait();
    }
}

/// An X server on a display of its own.
pub struct Xvfb {
    _server: Guard,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Self {
        need("Xvfb");
        // Tests of one binary run in parallel: each takes the next free display.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = 200 + (std::process::id() % 500) * 8;
        loop {
            let n = base + NEXT.fetch_add(1, Ordering::SeqCst);
            if Path::new(&format!("/tmp/.X{n}-lock")).exists()
                || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            {
                continue;
            }
            let server = Command::new("Xvfb")
                .args([
                    &format!(":{n}"),
                    "-screen",
                    "0",
                    "1280x900x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start Xvfb");
            let server = Guard(server);
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            wait_until("Xvfb", || socket.exists());
            return Self {
                _server: server,
                display: format!(":{n}"),
            };
        }
    }
}

/// A D-Bus session bus with gnome-keyring's Secret Service, unlocked.
pub struct SecretService {
    _keyring: Guard,
    _bus: Guard,
    /// `DBUS_SESSION_BUS_ADDRESS` of the session.
    pub address: String,
    _home: tempfile::TempDir,
}

impl SecretService {
    pub fn start() -> Self {
        need("dbus-daemon");
        need("gnome-keyring-daemon");
        let home = tempfile::tempdir().unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let bus = Guard(bus);
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon");
        // The login keyring's password on stdin: the keyring is created and
        // unlocked with it (an empty one creates no keyring at all).
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(b"assent-test")
            .unwrap();
        let keyring = Guard(keyring);
        let login = home.path().join("data/keyrings/login.keyring");
        wait_until("gnome-keyring-daemon", || login.exists());
        Self {
            _keyring: keyring,
            _bus: bus,
            address,
            _home: home,
        }
    }
}

/// `tauri-driver` (WebDriver for Tauri apps) on a private display, with a
/// private HOME; without `session`, no session bus at all.
pub struct Desktop {
    // Dropped in this order: the driver (and the app under it), then X.
    driver: std::sync::Mutex<GroupGuard>,
    port: std::sync::atomic::AtomicU16,
    pub xvfb: Xvfb,
    pub home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Desktop {
    pub fn start(session: Option<&SecretService>, extra_env: &[(&str, &str)]) -> Self {
        for tool in ["tauri-driver", "WebKitWebDriver"] {
            need(tool);
        }
        let xvfb = Xvfb::start();
        let home = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("DISPLAY".into(), xvfb.display.clone()),
            ("HOME".into(), home.path().display().to_string()),
            (
                "XDG_DATA_HOME".into(),
                home.path().join("data").display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                home.path().join("config").display().to_string(),
            ),
            ("XDG_RUNTIME_DIR".into(), home.path().display().to_string()),
            ("ASSENT_AUTHENTICATOR_EXIT_ON_CLOSE".into(), "1".into()),
            // No accessibility bus: GTK would start one that outlives the test.
            ("NO_AT_BRIDGE".into(), "1".into()),
        ];
        // Without a session, "disabled:" stops GLib from autolaunching a bus
        // (which would outlive the test too).
        let bus = session.map_or("disabled:".to_string(), |s| s.address.clone());
        env.push(("DBUS_SESSION_BUS_ADDRESS".into(), bus));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let (driver, port) = spawn_driver(&env);
        Self {
            driver: std::sync::Mutex::new(driver),
            port: port.into(),
            xvfb,
            home,
            env,
        }
    }

    /// Starts the app under WebDriver. An app that dies while starting
    /// leaves WebKitWebDriver waiting for it for ever (seen once in CI: the
    /// app's single-instance check failed on the session bus): after
    /// [`LAUNCH_WAIT`] the driver is started anew and the app once more.
    pub async fn launch_app(&self) -> Client {
        for attempt in 1..=2 {
            match tokio::time::timeout(LAUNCH_WAIT, self.connect()).await {
                Ok(client) => return client,
                Err(_) if attempt == 1 => {
                    eprintln!(
                        "the app did not come up under WebDriver within {LAUNCH_WAIT:?}: \
                         restarting tauri-driver"
                    );
                    let (driver, port) = spawn_driver(&self.env);
                    *self.driver.lock().unwrap() = driver;
                    self.port.store(port, std::sync::atomic::Ordering::SeqCst);
                }
                Err(_) => panic!("the app did not come up under WebDriver, twice"),
            }
        }
        unreachable!("the second attempt returns or panics")
    }

    async fn connect(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert(
            "tauri:options".into(),
            json!({ "application": authenticator_binary() }),
        );
        // WebDriver talks plain HTTP on loopback; rustls needs a provider chosen all the same.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&format!(
                "http://127.0.0.1:{}",
                self.port.load(std::sync::atomic::Ordering::SeqCst)
            ))
            .await
            .expect("a WebDriver session with the app")
    }

    /// Runs the app binary again, as a desktop does when a link is opened,
    /// in the same session as the app under WebDriver.
    pub async fn open_with_app(&self, argument: &str) -> std::process::ExitStatus {
        let mut command = tokio::process::Command::new(authenticator_binary());
        command
            .arg(argument)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        tokio::time::timeout(WAIT, command.status())
            .await
            .expect("the second instance hands the link over and exits")
            .expect("run the app")
    }

    /// The app's data folder (`$XDG_DATA_HOME/<identifier>`).
    pub fn app_data(&self) -> PathBuf {
        self.home.path().join("data/dev.assent.authenticator")
    }
}

/// Starts `tauri-driver` with the desktop's environment on fresh ports.
fn spawn_driver(env: &[(String, String)]) -> (GroupGuard, u16) {
    let port = free_port();
    let native_port = free_port();
    let driver = Command::new("tauri-driver")
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native_port.to_string(),
        ])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("ASSENT_AUTHENTICATOR_DATA_DIR")
        .env_remove("ASSENT_AUTHENTICATOR_KEY_STORE")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("start tauri-driver");
    let driver = GroupGuard(driver);
    wait_until("tauri-driver", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (driver, port)
}

/// How long the app may take to come up under WebDriver.
const LAUNCH_WAIT: Duration = Duration::from_secs(60);

// ---- WebDriver steps ------------------------------------------------------

pub async fn find(c: &Client, selector: &str) -> Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
}

/// Waits until `selector` is present and displayed.
pub async fn visible(c: &Client, selector: &str) -> Element {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(element) = c.find(Locator::Css(selector)).await {
            if element.is_displayed().await.unwrap_or(false) {
                return element;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{selector} never became visible"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `selector` is displayed and its text contains `contains`.
pub async fn wait_text(c: &Client, selector: &str, contains: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(element) = c.find(Locator::Css(selector)).await {
            last = element.text().await.unwrap_or_default();
            if last.contains(contains) && element.is_displayed().await.unwrap_or(false) {
                return last;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{selector} never said {contains:?} (last: {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn click(c: &Client, selector: &str) {
    visible(c, selector)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

/// Saves a screenshot to `target/screenshots/NAME`, and to
/// `docs/screenshots/NAME` when `ASSENT_UPDATE_SCREENSHOTS` is set.
pub async fn screenshot(c: &Client, name: &str) {
    // What the last steps changed is painted first (two frames).
    c.execute_async(
        "const done = arguments[arguments.length - 1]; \
         requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
        vec![],
    )
    .await
    .expect("two frames");
    let png = c.screenshot().await.expect("screenshot");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = root.join("target/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(name), &png).unwrap();
    if std::env::var_os("ASSENT_UPDATE_SCREENSHOTS").is_some() {
        let docs = root.join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), &png).unwrap();
    }
}
