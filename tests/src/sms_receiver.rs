//! An SMS provider's JSON webhook on loopback for tests: the server under
//! test POSTs `{"to", "body", "sender_id"}` to it, as it would to a real
//! provider. Every POST is counted and recorded with its headers; it can be
//! told to answer 503 for a while, to exercise the sender's retries.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::{json, Value};

/// One message accepted.
#[derive(Debug, Clone)]
pub struct ReceivedSms {
    pub to: String,
    pub body: String,
    pub sender_id: Option<String>,
    /// The whole JSON body, for fields beyond the three above.
    pub json: Value,
    pub headers: HeaderMap,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    received: Vec<ReceivedSms>,
    /// Messages already handed out by [`SmsReceiver::next_sms`].
    taken: usize,
    /// Every POST, whatever the answer.
    attempts: usize,
    /// POSTs still to answer with 503.
    fail_next: usize,
    /// POSTs that were not a well-formed message (answered 400).
    errors: Vec<String>,
}

#[derive(Clone)]
pub struct SmsReceiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl SmsReceiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/sms", post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    /// The webhook URL, for `sms_url`.
    pub fn url(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    /// `host:port` to put in `sms_allowed_hosts`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Answers the next `n` POSTs with 503 Service Unavailable (and records
    /// nothing of them), as a provider having an outage would.
    pub fn fail_next(&self, n: usize) {
        self.inner.lock().unwrap().fail_next = n;
    }

    /// Every POST so far, whatever the answer.
    pub fn attempts(&self) -> usize {
        self.inner.lock().unwrap().attempts
    }

    /// Every message accepted so far, in order.
    pub fn received(&self) -> Vec<ReceivedSms> {
        self.inner.lock().unwrap().received.clone()
    }

    /// POSTs refused as malformed, with why.
    pub fn errors(&self) -> Vec<String> {
        self.inner.lock().unwrap().errors.clone()
    }

    /// The next message accepted and not yet returned by this method;
    /// panics unless one arrives within `timeout`.
    pub async fn next_sms(&self, timeout: Duration) -> ReceivedSms {
        let next = crate::wait::poll_until(
            timeout,
            || async {
                let mut inner = self.inner.lock().unwrap();
                let next = inner.received.get(inner.taken).cloned();
                if next.is_some() {
                    inner.taken += 1;
                }
                next
            },
            Option::is_some,
        )
        .await;
        next.unwrap_or_else(|| {
            panic!(
                "no SMS within {timeout:?} ({} attempts, errors {:?})",
                self.attempts(),
                self.errors()
            )
        })
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.attempts += 1;
    if inner.fail_next > 0 {
        inner.fail_next -= 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match parse(&headers, &body) {
        Ok(sms) => {
            inner.received.push(sms);
            let id = format!("sms-{}", inner.received.len());
            (
                StatusCode::OK,
                Json(json!({ "id": id, "status": "queued" })),
            )
                .into_response()
        }
        Err(why) => {
            inner.errors.push(why.clone());
            (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response()
        }
    }
}

fn parse(headers: &HeaderMap, body: &[u8]) -> Result<ReceivedSms, String> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!("Content-Type is {content_type:?}, not JSON"));
    }
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let text = |name: &str| json[name].as_str().map(str::to_string);
    let to = text("to").ok_or("no \"to\" string")?;
    let message = text("body").ok_or("no \"body\" string")?;
    let sender_id = match &json["sender_id"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => return Err(format!("\"sender_id\" is {other}, not a string")),
    };
    Ok(ReceivedSms {
        to,
        body: message,
        sender_id,
        json,
        headers: headers.clone(),
        at: Instant::now(),
    })
}
