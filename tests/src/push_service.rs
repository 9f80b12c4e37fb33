//! A Web Push service on loopback for tests. It owns each subscription's
//! keys, checks every message the way a real push service and user agent
//! would (VAPID JWT, `TTL`, `Urgency`, `Topic`), and decrypts the payload
//! with `web-push-native`, an implementation independent of the sender's.
//! Per-subscription behaviours exercise the sender's failure handling.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use assent_shared::{
    jose::{b64url, b64url_decode, UnverifiedJws},
    protocol::{PushSubscription, PushSubscriptionKeys},
};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::Value;

/// How the service answers one subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// 201 Created.
    Accept,
    /// This status (with `Retry-After` when given), every time.
    Status(u16, Option<&'static str>),
    /// This status for the first `n` messages, then accept.
    StatusThenAccept(u16, Option<&'static str>, usize),
    /// 307 to another URL.
    Redirect,
    /// Sleep this long, then accept (a hang past the sender's timeout).
    Hang(Duration),
}

/// One message accepted and decrypted.
#[derive(Debug, Clone)]
pub struct Received {
    pub subscriber: String,
    pub payload: Value,
    pub ttl: u64,
    pub urgency: String,
    pub topic: String,
    pub vapid_sub: String,
    pub at: Instant,
}

struct Subscriber {
    secret: p256::SecretKey,
    auth: [u8; 16],
    behavior: Behavior,
    attempts: usize,
}

struct Inner {
    subscribers: HashMap<String, Subscriber>,
    received: Vec<Received>,
    /// Messages that arrived but did not pass the checks.
    errors: Vec<String>,
    /// Announces each accepted message (for load generators).
    announce: tokio::sync::broadcast::Sender<Received>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            subscribers: HashMap::new(),
            received: Vec::new(),
            errors: Vec::new(),
            announce: tokio::sync::broadcast::channel(65_536).0,
        }
    }
}

#[derive(Clone)]
pub struct TestPushService {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl TestPushService {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/push/{name}", post(receive))
            .with_state((inner.clone(), addr));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    /// `host:port` to put in `push_allowed_hosts`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Creates a subscription (as a browser or distributor would) answered with `behavior`.
    pub fn subscribe(&self, name: &str, behavior: Behavior) -> PushSubscription {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let mut auth = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut auth);
        let p256dh = b64url(secret.public_key().to_encoded_point(false).as_bytes());
        self.inner.lock().unwrap().subscribers.insert(
            name.to_string(),
            Subscriber {
                secret,
                auth,
                behavior,
                attempts: 0,
            },
        );
        PushSubscription {
            endpoint: format!("http://{}/push/{name}", self.addr),
            keys: PushSubscriptionKeys {
                p256dh,
                auth: b64url(&auth),
            },
        }
    }

    /// Every accepted message as it arrives.
    pub fn subscribe_received(&self) -> tokio::sync::broadcast::Receiver<Received> {
        self.inner.lock().unwrap().announce.subscribe()
    }

    /// Forgets the messages received and the attempts counted so far (long
    /// runs, or what came before the part a test is about).
    pub fn clear_received(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.received.clear();
        for subscriber in inner.subscribers.values_mut() {
            subscriber.attempts = 0;
        }
    }

    pub fn set_behavior(&self, name: &str, behavior: Behavior) {
        self.inner
            .lock()
            .unwrap()
            .subscribers
            .get_mut(name)
            .unwrap()
            .behavior = behavior;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn received_by(&self, name: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.subscriber == name)
            .collect()
    }

    /// Every message that arrived for `name`, whatever the answer.
    pub fn attempts(&self, name: &str) -> usize {
        self.inner.lock().unwrap().subscribers[name].attempts
    }

    pub fn errors(&self) -> Vec<String> {
        self.inner.lock().unwrap().errors.clone()
    }

    /// Waits until at least `n` messages were accepted, or `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        crate::wait::poll_until(
            timeout,
            || async { self.received() },
            |received| received.len() >= n,
        )
        .await
    }
}

type ServiceState = (Arc<Mutex<Inner>>, SocketAddr);

async fn receive(
    State((inner, addr)): State<ServiceState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (behavior, attempt) = {
        let mut inner = inner.lock().unwrap();
        let Some(sub) = inner.subscribers.get_mut(&name) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        sub.attempts += 1;
        (sub.behavior.clone(), sub.attempts)
    };
    match behavior {
        Behavior::Status(code, retry_after) => return status(code, retry_after),
        Behavior::StatusThenAccept(code, retry_after, n) if attempt <= n => {
            return status(code, retry_after)
        }
        Behavior::Redirect => {
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", format!("http://{addr}/push/elsewhere"))],
            )
                .into_response()
        }
        Behavior::Hang(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    match check_and_decrypt(&inner, &name, &headers, &body, addr) {
        Ok(received) => {
            let mut inner = inner.lock().unwrap();
            let _ = inner.announce.send(received.clone());
            inner.received.push(received);
            (
                StatusCode::CREATED,
                [("location", format!("http://{addr}/messages/{attempt}"))],
            )
                .into_response()
        }
        Err(why) => {
            inner.lock().unwrap().errors.push(format!("{name}: {why}"));
            StatusCode::BAD_REQUEST.into_response()
        }
    }
}

fn status(code: u16, retry_after: Option<&'static str>) -> Response {
    let mut response = StatusCode::from_u16(code).unwrap().into_response();
    if let Some(v) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", v.parse().unwrap());
    }
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("missing {name}"))
}

fn check_and_decrypt(
    inner: &Mutex<Inner>,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    addr: SocketAddr,
) -> Result<Received, String> {
    let ttl: u64 = header(headers, "ttl")?
        .parse()
        .map_err(|_| "TTL is not a number")?;
    let urgency = header(headers, "urgency")?.to_string();
    let topic = header(headers, "topic")?.to_string();
    if topic.len() > 32
        || !topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("Topic {topic:?} is not <= 32 base64url characters"));
    }
    if header(headers, "content-encoding")? != "aes128gcm" {
        return Err("Content-Encoding is not aes128gcm".into());
    }
    // RFC 8292: Authorization: vapid t=<JWT>, k=<public key>
    let auth = header(headers, "authorization")?;
    let rest = auth
        .strip_prefix("vapid ")
        .ok_or("Authorization is not vapid")?;
    let mut jwt = None;
    let mut key = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => jwt = Some(v.to_string()),
            Some(("k", v)) => key = Some(v.to_string()),
            _ => {}
        }
    }
    let (jwt, key) = (jwt.ok_or("no t=")?, key.ok_or("no k=")?);
    let point = b64url_decode(&key).ok_or("k is not base64url")?;
    let claims: Value = UnverifiedJws::parse(&jwt)
        .map_err(|e| format!("VAPID JWT: {e}"))?
        .verify_sec1(&point)
        .map_err(|e| format!("VAPID JWT signature: {e}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = claims["exp"].as_i64().ok_or("VAPID exp missing")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("VAPID exp {exp} outside (now, now + 24 h]"));
    }
    let expected_aud = format!("http://{addr}");
    if claims["aud"] != expected_aud.as_str() {
        return Err(format!("VAPID aud {} is not {expected_aud}", claims["aud"]));
    }
    let vapid_sub = claims["sub"]
        .as_str()
        .ok_or("VAPID sub missing")?
        .to_string();

    let (secret, auth_secret) = {
        let inner = inner.lock().unwrap();
        let sub = &inner.subscribers[name];
        (sub.secret.clone(), sub.auth)
    };
    let plaintext = web_push_native::decrypt(
        body.to_vec(),
        &secret,
        web_push_native::Auth::from_slice(&auth_secret),
    )
    .map_err(|e| format!("decryption failed: {e}"))?;
    let payload: Value = serde_json::from_slice(&plaintext).map_err(|_| "payload is not JSON")?;
    Ok(Received {
        subscriber: name.to_string(),
        payload,
        ttl,
        urgency,
        topic,
        vapid_sub,
        at: Instant::now(),
    })
}
