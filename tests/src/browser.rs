//! The web authenticator in a real browser: Debian's Chromium, headless,
//! driven through playwright-core by `tests/js/web-authenticator.mjs` (one
//! JSON command per line; see that file for the commands). The browser has
//! a virtual platform authenticator with user verification, so passkeys are
//! made and used as on a phone with a fingerprint sensor.

use std::{process::Stdio, time::Duration};

use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::sdk::tests_dir;

/// Longest a command may take (the driver's own waits stop at 30 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One browser with one phone-sized page at a time.
pub struct Phone {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Phone {
    /// Starts the phone's driver (the browser starts with the first [`Phone::open`]).
    pub fn start() -> Self {
        Self::driven_by("web-authenticator.mjs")
    }

    /// A laptop's browser for the consoles (`tests/js/console.mjs`): the
    /// same commands where they overlap, plus `axe`, `cookies`, `post`.
    pub fn laptop() -> Self {
        Self::driven_by("console.mjs")
    }

    fn driven_by(script: &str) -> Self {
        let js = tests_dir().join("js");
        assert!(
            js.join("node_modules/playwright-core").exists(),
            "playwright-core is missing: run scripts/setup (npm ci in {})",
            js.display()
        );
        assert!(
            std::path::Path::new("/usr/bin/chromium").exists()
                || std::env::var_os("ASSENT_CHROMIUM").is_some(),
            "Chromium is missing: run scripts/setup (apt-get install chromium)"
        );
        let mut child = Command::new("node")
            .current_dir(&js)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("run node {script}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Runs one command; panics with the driver's error when it failed.
    pub async fn cmd(&mut self, command: Value) -> Value {
        match self.try_cmd(command.clone()).await {
            Ok(result) => result,
            Err(error) => panic!("browser command {command} failed: {error}"),
        }
    }

    /// Runs one command; the driver's error as `Err`.
    pub async fn try_cmd(&mut self, command: Value) -> Result<Value, String> {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let answer = tokio::time::timeout(COMMAND_TIMEOUT, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("browser command {command} took over {COMMAND_TIMEOUT:?}"))
            .expect("read the driver")
            .expect("the browser driver exited");
        let answer: Value = serde_json::from_str(&answer).expect("the driver answers JSON");
        if answer["ok"] == true {
            Ok(answer["result"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or_default().to_string())
        }
    }

    pub async fn open(&mut self, url: &str) {
        self.cmd(json!({"cmd": "open", "url": url})).await;
    }

    pub async fn url(&mut self) -> String {
        self.cmd(json!({"cmd": "url"}))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn click(&mut self, testid: &str) {
        self.cmd(json!({"cmd": "click", "testid": testid})).await;
    }

    pub async fn fill(&mut self, testid: &str, value: &str) {
        self.cmd(json!({"cmd": "fill", "testid": testid, "value": value}))
            .await;
    }

    pub async fn wait_visible(&mut self, selector: &str) {
        self.cmd(json!({"cmd": "wait_visible", "selector": selector}))
            .await;
    }

    /// Waits until the element's text contains `text`; gives the whole text.
    pub async fn wait_text(&mut self, selector: &str, text: &str) -> String {
        self.cmd(json!({"cmd": "wait_text", "selector": selector, "text": text}))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn text(&mut self, selector: &str) -> String {
        self.cmd(json!({"cmd": "text", "selector": selector}))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A PNG of the page into `target/screenshots/NAME`, and with
    /// `ASSENT_UPDATE_SCREENSHOTS=1` also into `docs/screenshots/NAME`.
    pub async fn screenshot(&mut self, name: &str) {
        let root = tests_dir().parent().unwrap().to_path_buf();
        let dir = root.join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        self.cmd(json!({"cmd": "screenshot", "path": path})).await;
        if std::env::var_os("ASSENT_UPDATE_SCREENSHOTS").is_some() {
            std::fs::copy(&path, root.join("docs/screenshots").join(name)).unwrap();
        }
    }

    /// Runs `script` (the body of an async function of `arg`) in the page.
    pub async fn evaluate(&mut self, script: &str, arg: Value) -> Value {
        self.cmd(json!({"cmd": "evaluate", "script": script, "arg": arg}))
            .await
    }

    pub async fn close(mut self) {
        let _ = self.try_cmd(json!({"cmd": "close"})).await;
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
