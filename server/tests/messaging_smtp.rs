//! E-mail through a real SMTP server: Python's aiosmtpd on loopback, with a
//! handler (`support/smtp_sink.py`) that writes each message it accepts,
//! and what Python's own MIME parser reads in it, to a directory.
//!
//! aiosmtpd comes from the tests' virtualenv, `tests/.venv` (installed by
//! `scripts/setup`), or from the Python named by `ASSENT_TEST_AIOSMTPD`.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use assent_server::{
    clock::now_ms,
    config::SmtpTls,
    messaging::{
        self,
        templates::{code_email, link_email, EmailBranding, RequestContext},
        Channel, MessagingError, OutgoingMessage, SmsMessage,
    },
    storage::MessageState,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use support::{eventually, free_port, Backend, TestAssent};

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89,
];

/// The Python with aiosmtpd: `ASSENT_TEST_AIOSMTPD`, else `tests/.venv/bin/python`.
fn python_with_aiosmtpd() -> PathBuf {
    let python = std::env::var_os("ASSENT_TEST_AIOSMTPD")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/.venv/bin/python"));
    let has_it = std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_it,
        "the SMTP tests need Python's aiosmtpd, and {} has none: run scripts/setup (which installs it \
         into tests/.venv), or `{}/pip install aiosmtpd==1.4.6`, or point ASSENT_TEST_AIOSMTPD at a \
         python that has it",
        python.display(),
        python.parent().unwrap_or(Path::new(".")).display(),
    );
    python
}

/// aiosmtpd on 127.0.0.1, writing what it accepts to a directory; killed
/// when dropped.
struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpSink {
    async fn start() -> Self {
        let python = python_with_aiosmtpd();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
        let child = tokio::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "smtp_sink.Sink"])
            .arg(dir.path())
            .env("PYTHONPATH", support)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start aiosmtpd");
        let listening = eventually(Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        assert!(
            listening.is_some(),
            "aiosmtpd did not listen on port {port}"
        );
        Self {
            port,
            dir,
            _child: child,
        }
    }

    /// The messages accepted so far, as Python's parser read them.
    fn received(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
            .collect()
    }

    /// Waits until `count` messages were accepted.
    async fn wait_for(&self, count: usize) -> Vec<serde_json::Value> {
        eventually(Duration::from_secs(20), || async {
            let received = self.received();
            (received.len() >= count).then_some(received)
        })
        .await
        .unwrap_or_else(|| panic!("the SMTP server did not get {count} message(s)"))
    }
}

async fn open(backend: Backend, sink: &SmtpSink) -> Option<TestAssent> {
    let port = sink.port;
    TestAssent::open(backend, move |s| {
        s.smtp_host = Some("127.0.0.1".into());
        s.smtp_port = port;
        s.smtp_tls = SmtpTls::None;
        s.smtp_from = Some("Assent <no-reply@example.com>".into());
        s.smtp_timeout = Duration::from_secs(5);
    })
    .await
}

fn parts_of<'a>(mail: &'a serde_json::Value, content_type: &str) -> Vec<&'a serde_json::Value> {
    mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["content_type"] == content_type)
        .collect()
}

async fn branded_code_email_arrives(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(mut t) = open(backend, &sink).await else {
        return;
    };
    let branding = EmailBranding {
        primary_color: Some("#0A7D3E".into()),
        base64logo: Some(STANDARD.encode(PNG)),
        sender_name: Some("Acme Login".into()),
        footer_text: Some("Acme Inc., 1 Example Road".into()),
        ..EmailBranding::default()
    };
    branding.validate().unwrap();
    let context = RequestContext {
        ip_address: Some("203.0.113.9".into()),
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
        ),
    };
    let mail = code_email(
        "alice@example.com",
        &branding,
        "Acme",
        "493817",
        600,
        &context,
    );
    messaging::queue(&t.assent, &OutgoingMessage::Email(mail), now_ms() + 600_000)
        .await
        .unwrap();
    let id = t.last_message_id().await;

    // Stored sealed: neither the code nor the recipient is readable.
    let payload = t
        .store()
        .raw_text(&format!(
            "SELECT payload FROM message_outbox WHERE id = {id}"
        ))
        .await
        .unwrap();
    assert!(!payload.is_empty());
    for secret in ["493817", "alice", "example.com", "Acme"] {
        assert!(!payload.contains(secret), "the payload shows {secret}");
    }

    t.start_dispatcher();
    let received = sink.wait_for(1).await;
    let got = &received[0];
    assert_eq!(got["rcpt_tos"], serde_json::json!(["alice@example.com"]));
    assert_eq!(got["from_display_name"], "Acme Login");
    assert_eq!(got["from_address"], "no-reply@example.com");
    assert_eq!(got["mail_from"], "no-reply@example.com");
    assert_eq!(got["subject"], "Your sign-in code for Acme");
    assert!(got["message_id"].as_str().is_some_and(|m| m.contains('@')));
    assert!(got["date"].is_string());

    // multipart/alternative: the text, and the HTML with its logo.
    assert_eq!(got["parts"][0]["content_type"], "multipart/alternative");
    let text = parts_of(got, "text/plain");
    assert_eq!(text.len(), 1);
    let text = text[0]["text"].as_str().unwrap();
    assert!(text.contains("493817") && text.contains("Acme Inc., 1 Example Road"));
    assert!(text.contains("Requested from 203.0.113.9 (Firefox on Linux)."));
    assert_eq!(parts_of(got, "multipart/related").len(), 1);
    let html = parts_of(got, "text/html");
    assert_eq!(html.len(), 1);
    let html = html[0]["text"].as_str().unwrap();
    assert!(html.contains("493817") && html.contains("#0A7D3E"));
    assert!(html.contains("src=\"cid:logo\""));
    let logo = parts_of(got, "image/png");
    assert_eq!(logo.len(), 1, "{got}");
    assert_eq!(logo[0]["content_id"], "<logo>");
    assert_eq!(logo[0]["disposition"], "inline");
    assert_eq!(
        STANDARD
            .decode(logo[0]["base64"].as_str().unwrap())
            .unwrap(),
        PNG
    );

    // Sent once, and the payload is gone.
    let status = t.finished(id, Duration::from_secs(10)).await;
    assert_eq!(status.state, MessageState::Sent);
    assert_eq!(status.attempts, 1);
    assert!(!status.has_payload);
    assert!(status.finished_at.is_some());
    assert_eq!(status.last_error, None);

    // A link e-mail without branding: the defaults, no inline part.
    let link = link_email(
        "bob@example.com",
        &EmailBranding::default(),
        "Acme",
        "https://login.example/passwordless/verify?ticket=abc&state=1",
        900,
        &RequestContext::default(),
    );
    messaging::queue(&t.assent, &OutgoingMessage::Email(link), now_ms() + 900_000)
        .await
        .unwrap();
    let received = sink.wait_for(2).await;
    let got = &received[1];
    assert_eq!(got["from"], "Assent <no-reply@example.com>");
    assert_eq!(got["subject"], "Sign in to Acme");
    assert!(parts_of(got, "multipart/related").is_empty());
    assert!(parts_of(got, "text/plain")[0]["text"]
        .as_str()
        .unwrap()
        .contains("https://login.example/passwordless/verify?ticket=abc&state=1"));
    t.stop_dispatcher().await;
}

async fn refusals_and_passing_failures(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(mut t) = open(backend, &sink).await else {
        return;
    };
    // No SMS provider here: refused before anything is written.
    let sms = OutgoingMessage::Sms(SmsMessage {
        to: "+4915112345678".into(),
        body: "123456".into(),
        sender_id: None,
    });
    assert!(matches!(
        messaging::queue(&t.assent, &sms, now_ms() + 60_000).await,
        Err(MessagingError::NotConfigured(Channel::Sms))
    ));
    let bad = code_email(
        "not an address",
        &EmailBranding::default(),
        "Acme",
        "1",
        60,
        &RequestContext::default(),
    );
    assert!(matches!(
        messaging::queue(&t.assent, &OutgoingMessage::Email(bad), now_ms() + 60_000).await,
        Err(MessagingError::InvalidMessage(_))
    ));
    assert_eq!(
        t.store()
            .raw_i64("SELECT COUNT(*) FROM message_outbox")
            .await
            .unwrap(),
        0
    );

    t.start_dispatcher();
    // 550: given up at once.
    let rejected = code_email(
        "reject@example.com",
        &EmailBranding::default(),
        "Acme",
        "111111",
        600,
        &RequestContext::default(),
    );
    messaging::queue(
        &t.assent,
        &OutgoingMessage::Email(rejected),
        now_ms() + 600_000,
    )
    .await
    .unwrap();
    let id = t.last_message_id().await;
    let status = t.finished(id, Duration::from_secs(10)).await;
    assert_eq!(status.state, MessageState::Failed);
    assert_eq!(status.attempts, 1);
    assert_eq!(status.last_error.as_deref(), Some("SMTP 550"));
    assert!(!status.has_payload);

    // 451: retried (after 1 s, 2 s, ...), then given up when the next
    // attempt would come after the code's expiry.
    let deferred = code_email(
        "tempfail@example.com",
        &EmailBranding::default(),
        "Acme",
        "222222",
        3,
        &RequestContext::default(),
    );
    messaging::queue(
        &t.assent,
        &OutgoingMessage::Email(deferred),
        now_ms() + 3_500,
    )
    .await
    .unwrap();
    let id = t.last_message_id().await;
    let status = t.finished(id, Duration::from_secs(10)).await;
    assert_eq!(status.state, MessageState::Failed, "{status:?}");
    assert!(status.attempts >= 2, "{status:?}");
    let error = status.last_error.unwrap();
    assert!(
        error.contains("SMTP 451") && error.contains("before expiry"),
        "{error}"
    );
    assert!(sink.received().is_empty());
    t.stop_dispatcher().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branded_code_email_arrives_sqlite() {
    branded_code_email_arrives(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branded_code_email_arrives_postgres() {
    branded_code_email_arrives(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_passing_failures_sqlite() {
    refusals_and_passing_failures(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_passing_failures_postgres() {
    refusals_and_passing_failures(Backend::Postgres).await
}
