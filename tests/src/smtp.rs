//! A real SMTP server for tests: aiosmtpd (pinned in
//! tests/sdk/requirements.txt, in tests/.venv) with the handler in
//! tests/support/smtp_sink.py, which writes every message it accepts into a
//! private directory. The server under test speaks real SMTP to it; tests
//! read what arrived, parsed as MIME by `mail-parser`.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use base64::Engine;
use mail_parser::{MessageParser, PartType};
use tokio::{io::AsyncReadExt, net::TcpStream, process::Child};

/// How long aiosmtpd may take to start answering (Python starts in well
/// under a second; a loaded machine may need more).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// `MAIL FROM` (empty for a null sender).
    pub envelope_from: String,
    /// Every `RCPT TO`.
    pub envelope_to: Vec<String>,
    /// The `From:` header as written (unfolded, undecoded).
    pub from_header: Option<String>,
    pub subject: Option<String>,
    /// The first text/plain body part, decoded.
    pub text_body: Option<String>,
    /// The first text/html body part, decoded.
    pub html_body: Option<String>,
    /// The message exactly as it came over the wire (RFC 5322).
    pub raw: Vec<u8>,
}

pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// Messages already handed out by [`SmtpSink::next_message`].
    taken: AtomicUsize,
}

impl SmtpSink {
    /// Starts aiosmtpd on 127.0.0.1 and waits for its greeting.
    pub async fn start() -> Self {
        let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup (it installs aiosmtpd from tests/sdk/requirements.txt)",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mail")).unwrap();
        // aiosmtpd binds the port itself: a free one is picked here and may
        // be taken by someone else before it binds. Then it exits, and
        // another port is tried.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = File::create(dir.path().join("aiosmtpd.log")).unwrap();
            let mut child = tokio::process::Command::new(&python)
                .args(["-m", "aiosmtpd", "-n", "-u", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "smtp_sink.Sink"])
                .arg(dir.path().join("mail"))
                .env(
                    "PYTHONPATH",
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("support"),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("start aiosmtpd");
            if greets(&mut child, port).await {
                return Self {
                    child,
                    port,
                    dir,
                    taken: AtomicUsize::new(0),
                };
            }
            let _ = child.kill().await;
        }
        panic!(
            "aiosmtpd did not start; its log:\n{}",
            std::fs::read_to_string(dir.path().join("aiosmtpd.log")).unwrap_or_default()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// How many messages have arrived so far.
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.mail_dir())
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".json")
            })
            .count()
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        (1..=self.count())
            .map(|n| read_message(&self.message_path(n)))
            .collect()
    }

    fn message_path(&self, number: usize) -> PathBuf {
        self.mail_dir().join(format!("{number:06}.json"))
    }

    /// The next message not yet returned by this method, in the order
    /// received; panics unless it arrives within `timeout`.
    pub async fn next_message(&self, timeout: Duration) -> ReceivedMail {
        let number = self.taken.load(Ordering::SeqCst) + 1;
        let path = self.message_path(number);
        let arrived =
            crate::wait::poll_until(timeout, || async { path.exists() }, |exists| *exists).await;
        assert!(
            arrived,
            "no message number {number} within {timeout:?}; aiosmtpd's log:\n{}",
            std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
        );
        self.taken.store(number, Ordering::SeqCst);
        read_message(&path)
    }
}

/// Whether the server at `port` sends its SMTP greeting (220) before
/// `START_TIMEOUT`, while `child` runs.
async fn greets(child: &mut Child, port: u16) -> bool {
    #[derive(PartialEq)]
    enum Seen {
        Nothing,
        Greeting,
        Exited,
    }
    let child = std::sync::Mutex::new(child);
    let seen = crate::wait::poll_until(
        START_TIMEOUT,
        || async {
            if child.lock().unwrap().try_wait().unwrap().is_some() {
                return Seen::Exited;
            }
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
                return Seen::Nothing;
            };
            let mut greeting = [0u8; 3];
            let read =
                tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut greeting));
            match read.await {
                Ok(Ok(_)) if &greeting == b"220" => Seen::Greeting,
                _ => Seen::Nothing,
            }
        },
        |seen| *seen != Seen::Nothing,
    )
    .await;
    seen == Seen::Greeting
}

fn read_message(path: &Path) -> ReceivedMail {
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(record["data_b64"].as_str().unwrap())
        .unwrap();
    let message = MessageParser::default()
        .parse(&raw)
        .unwrap_or_else(|| panic!("not a message: {}", String::from_utf8_lossy(&raw)));
    let text_body = message.text_part(0).and_then(|part| match &part.body {
        PartType::Text(text) => Some(text.to_string()),
        _ => None,
    });
    let html_body = message.html_part(0).and_then(|part| match &part.body {
        PartType::Html(html) => Some(html.to_string()),
        _ => None,
    });
    ReceivedMail {
        envelope_from: record["mail_from"].as_str().unwrap_or_default().into(),
        envelope_to: record["rcpt_tos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|to| to.as_str().unwrap().to_string())
            .collect(),
        from_header: message
            .header_raw("From")
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")),
        subject: message.subject().map(str::to_string),
        text_body,
        html_body,
        raw: raw.clone(),
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
