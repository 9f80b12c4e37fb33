//! SMS through an HTTP provider on loopback (allowed by `sms_allowed_hosts`)
//! that answers as each test scripts it, and the outbox's leases.

mod support;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use assent_server::{
    config::{Secret, SmsProvider},
    messaging::{self, templates::code_sms, OutgoingMessage},
    storage::MessageState,
};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use support::{Backend, TestAssent};

/// A request the provider got, and what it answered.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
    status: u16,
}

/// Answers to come, in order (status, `Retry-After`, body); then 200.
#[derive(Default)]
struct Script {
    answers: VecDeque<(u16, Option<&'static str>, &'static str)>,
    requests: Vec<Recorded>,
}

/// An SMS provider on 127.0.0.1.
#[derive(Clone, Default)]
struct Provider {
    port: u16,
    script: Arc<Mutex<Script>>,
}

impl Provider {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let provider = Provider {
            port: listener.local_addr().unwrap().port(),
            script: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        provider
    }

    fn answer_next(&self, status: u16, retry_after: Option<&'static str>, body: &'static str) {
        self.script
            .lock()
            .unwrap()
            .answers
            .push_back((status, retry_after, body));
    }

    fn requests(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().requests.clone()
    }

    fn clear(&self) {
        self.script.lock().unwrap().requests.clear();
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn answer(
    State(provider): State<Provider>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut script = provider.script.lock().unwrap();
    let (status, retry_after, text) = script.answers.pop_front().unwrap_or((200, None, "{}"));
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    script.requests.push(Recorded {
        path: uri.path().to_string(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: body.to_vec(),
        status,
    });
    let mut response = (StatusCode::from_u16(status).unwrap(), text).into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.parse().unwrap());
    }
    response
}

async fn webhook(backend: Backend, provider: &Provider) -> Option<TestAssent> {
    let host = provider.host();
    TestAssent::open(backend, move |s| {
        s.sms_provider = Some(SmsProvider::Webhook);
        s.sms_url = Some(format!("http://{host}/sms/send"));
        s.sms_allowed_hosts = vec![host];
        s.sms_token = Some(Secret::new("hook-token"));
        s.sms_from = Some("ACME".into());
        s.sms_timeout = Duration::from_secs(5);
    })
    .await
}

fn sms(code: &str) -> OutgoingMessage {
    OutgoingMessage::Sms(code_sms(
        "+4915112345678",
        "Acme",
        code,
        300,
        None,
        None,
        None,
    ))
}

async fn webhook_retries_gives_up_and_drops(backend: Backend) {
    let provider = Provider::start().await;
    let Some(mut t) = webhook(backend, &provider).await else {
        return;
    };
    t.start_dispatcher();
    let clock = t.assent.clock.clone();
    let now = move || clock.now_ms();

    // 503 twice (the first asking for a second's pause), then 200: sent
    // once, after three attempts.
    provider.answer_next(503, Some("1"), "busy");
    provider.answer_next(503, None, "busy");
    messaging::queue(&t.assent, &sms("493817"), now() + 300_000)
        .await
        .unwrap();
    let id = t.last_message_id().await;
    let status = t.finished(id, Duration::from_secs(15)).await;
    assert_eq!(status.state, MessageState::Sent, "{status:?}");
    assert_eq!(status.attempts, 3);
    assert!(!status.has_payload);
    let requests = provider.requests();
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 503, 200]
    );
    for request in &requests {
        assert_eq!(request.path, "/sms/send");
        assert_eq!(request.authorization.as_deref(), Some("Bearer hook-token"));
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(json["to"], "+4915112345678");
        assert_eq!(json["sender_id"], "ACME");
        assert!(json["body"]
            .as_str()
            .unwrap()
            .starts_with("493817 is your sign-in code for Acme."));
    }
    // Nothing more is sent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(provider.requests().len(), 3);

    // 400: given up at once.
    provider.clear();
    provider.answer_next(400, None, "bad number");
    messaging::queue(&t.assent, &sms("111111"), now() + 300_000)
        .await
        .unwrap();
    let id = t.last_message_id().await;
    let status = t.finished(id, Duration::from_secs(10)).await;
    assert_eq!(status.state, MessageState::Failed);
    assert_eq!(status.attempts, 1);
    assert_eq!(status.last_error.as_deref(), Some("HTTP 400"));
    assert_eq!(provider.requests().len(), 1);

    // Expired before it was sent: dropped, never sent.
    provider.clear();
    messaging::queue(&t.assent, &sms("222222"), now() - 1)
        .await
        .unwrap();
    let id = t.last_message_id().await;
    let status = t.finished(id, Duration::from_secs(10)).await;
    assert_eq!(status.state, MessageState::Dropped);
    assert!(!status.has_payload);
    assert!(provider.requests().is_empty());

    // A message claimed by a process that was killed before it recorded
    // anything: due again once the lease runs out, then sent.
    t.stop_dispatcher().await;
    messaging::queue(&t.assent, &sms("333333"), now() + 300_000)
        .await
        .unwrap();
    let id = t.last_message_id().await;
    let claimed = t
        .store()
        .claim_messages(now(), now() + 60_000, 10, true, true)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    t.start_dispatcher();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(provider.requests().is_empty(), "sent while leased");
    t.assent.clock.advance(Duration::from_secs(61));
    let status = t.finished(id, Duration::from_secs(10)).await;
    assert_eq!(status.state, MessageState::Sent);
    assert_eq!(status.attempts, 2);
    assert_eq!(provider.requests().len(), 1);
    t.stop_dispatcher().await;
}

async fn twilio_gets_a_form_with_basic_auth(backend: Backend) {
    let provider = Provider::start().await;
    let host = provider.host();
    let Some(mut t) = TestAssent::open(backend, move |s| {
        s.sms_provider = Some(SmsProvider::Twilio);
        s.sms_url = Some(format!("http://{host}"));
        s.sms_allowed_hosts = vec![host];
        s.sms_account_sid = Some("AC0123abc".into());
        s.sms_token = Some(Secret::new("twilio-token"));
        s.sms_from = Some("+15005550006".into());
    })
    .await
    else {
        return;
    };
    t.start_dispatcher();
    let now = t.assent.clock.now_ms();
    provider.answer_next(201, None, r#"{"sid": "SM123", "status": "queued"}"#);
    let message = code_sms(
        "+4915112345678",
        "Acme Bank",
        "734512",
        300,
        None,
        None,
        Some(("TX-981", "EUR 149.99")),
    );
    messaging::queue(&t.assent, &OutgoingMessage::Sms(message), now + 300_000)
        .await
        .unwrap();
    let id = t.last_message_id().await;
    let status = t.finished(id, Duration::from_secs(10)).await;
    assert_eq!(status.state, MessageState::Sent);
    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/2010-04-01/Accounts/AC0123abc/Messages.json");
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Basic {}", STANDARD.encode("AC0123abc:twilio-token")).as_str())
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("To"), Some("+4915112345678"));
    assert_eq!(field("From"), Some("+15005550006"));
    assert_eq!(field("MessagingServiceSid"), None);
    let body = field("Body").unwrap();
    assert!(
        body.contains("734512") && body.contains("EUR 149.99") && body.contains("TX-981"),
        "{body}"
    );

    // A refusal keeps Twilio's error code, not its message (which quotes
    // the number).
    provider.answer_next(
        400,
        None,
        r#"{"code": 21211, "message": "The 'To' number +4915112345678 is not a valid phone number.", "status": 400}"#,
    );
    messaging::queue(&t.assent, &sms("555555"), now + 300_000)
        .await
        .unwrap();
    let id = t.last_message_id().await;
    let status = t.finished(id, Duration::from_secs(10)).await;
    assert_eq!(status.state, MessageState::Failed);
    assert_eq!(
        status.last_error.as_deref(),
        Some("HTTP 400 (Twilio error 21211)")
    );
    t.stop_dispatcher().await;
}

/// Two processes' dispatchers on one database: each message is sent once,
/// whichever process queued it and whichever claims it.
async fn a_fleet_sends_each_message_once(backend: Backend) {
    let provider = Provider::start().await;
    let Some(mut t) = webhook(backend, &provider).await else {
        return;
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (other, other_task) = t.another_process(stop_rx).await;
    t.start_dispatcher();
    let count = 40;
    let expires = t.assent.clock.now_ms() + 300_000;
    for i in 0..count {
        // Half queued by each process.
        let assent = if i % 2 == 0 { &t.assent } else { &other };
        messaging::queue(assent, &sms(&format!("{:06}", 100_000 + i)), expires)
            .await
            .unwrap();
    }
    let sent = support::eventually(Duration::from_secs(30), || async {
        let pending = t.store().count_pending_messages().await.unwrap();
        (pending == 0).then_some(())
    })
    .await;
    assert!(sent.is_some(), "messages still pending");
    let mut codes: Vec<String> = provider
        .requests()
        .iter()
        .map(|r| {
            let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            json["body"].as_str().unwrap()[..6].to_string()
        })
        .collect();
    codes.sort();
    let expected: Vec<String> = (0..count).map(|i| format!("{:06}", 100_000 + i)).collect();
    assert_eq!(codes, expected, "each message exactly once");
    assert_eq!(
        t.store()
            .raw_i64("SELECT COUNT(*) FROM message_outbox WHERE state = 'sent' AND attempts = 1")
            .await
            .unwrap(),
        i64::from(count)
    );
    stop.send_replace(true);
    other_task.await.unwrap();
    t.stop_dispatcher().await;
}

/// The lease, on storage alone: a claimed message is not claimed again
/// until its lease runs out, only the lease holder records an outcome, the
/// outcome wipes the payload, and housekeeping deletes the row a day later.
async fn leases_and_housekeeping(backend: Backend) {
    let Some(t) = TestAssent::open(backend, |_| {}).await else {
        return;
    };
    let store = t.store();
    let now = 1_900_000_000_000_i64;
    let sealed = t.assent.keys.seal_message(b"{\"secret\": 1}");
    let id = store
        .insert_message("sms", &sealed, now, now + 600_000)
        .await
        .unwrap();
    let email = store
        .insert_message("email", &sealed, now, now + 600_000)
        .await
        .unwrap();

    // Only the channels asked for.
    let first = store
        .claim_messages(now, now + 1_000, 10, false, true)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].id, first[0].attempts), (id, 1));
    assert_eq!(first[0].locked_until, now + 1_000);
    assert_eq!(
        t.assent.keys.open_message(&first[0].payload).unwrap(),
        b"{\"secret\": 1}"
    );
    // Leased: not claimed again, whoever asks.
    assert!(store
        .claim_messages(now + 999, now + 2_000, 10, false, true)
        .await
        .unwrap()
        .is_empty());
    // The lease runs out: due again, with a new lease.
    let second = store
        .claim_messages(now + 1_000, now + 3_000, 10, false, true)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].id, second[0].attempts), (id, 2));
    // The first holder's outcome is not recorded any more; the second's is.
    assert!(!store
        .finish_message(id, now + 1_000, MessageState::Sent, None, now + 1_500)
        .await
        .unwrap());
    assert!(!store
        .retry_message(id, now + 1_000, now + 5_000, "HTTP 503")
        .await
        .unwrap());
    assert!(store
        .retry_message(id, now + 3_000, now + 5_000, "HTTP 503")
        .await
        .unwrap());
    let third = store
        .claim_messages(now + 5_000, now + 6_000, 10, false, true)
        .await
        .unwrap();
    assert_eq!(third[0].attempts, 3);
    assert!(store
        .finish_message(id, now + 6_000, MessageState::Sent, None, now + 5_500)
        .await
        .unwrap());
    let status = t.status(id).await;
    assert_eq!(status.state, MessageState::Sent);
    assert_eq!(status.finished_at, Some(now + 5_500));
    assert_eq!(status.locked_until, None);
    assert!(!status.has_payload);
    // A finished message is never claimed again.
    assert!(store
        .claim_messages(now + 700_000, now + 701_000, 10, true, true)
        .await
        .unwrap()
        .iter()
        .all(|m| m.id == email));
    assert_eq!(store.count_pending_messages().await.unwrap(), 1);

    // Housekeeping: finished rows a day later, and rows left pending a
    // day past their expiry.
    let day = assent_server::storage::MESSAGE_RETENTION_MS;
    store.purge_expired(now + day, 1).await.unwrap();
    assert!(store.message_status(id).await.unwrap().is_some());
    store.purge_expired(now + 5_501 + day, 1).await.unwrap();
    assert!(store.message_status(id).await.unwrap().is_none());
    assert!(store.message_status(email).await.unwrap().is_some());
    store.purge_expired(now + 600_001 + day, 1).await.unwrap();
    assert!(store.message_status(email).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_gives_up_and_drops_sqlite() {
    webhook_retries_gives_up_and_drops(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_gives_up_and_drops_postgres() {
    webhook_retries_gives_up_and_drops(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_gets_a_form_with_basic_auth_sqlite() {
    twilio_gets_a_form_with_basic_auth(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_gets_a_form_with_basic_auth_postgres() {
    twilio_gets_a_form_with_basic_auth(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_sends_each_message_once_sqlite() {
    a_fleet_sends_each_message_once(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_sends_each_message_once_postgres() {
    a_fleet_sends_each_message_once(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_housekeeping_sqlite() {
    leases_and_housekeeping(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_housekeeping_postgres() {
    leases_and_housekeeping(Backend::Postgres).await
}
