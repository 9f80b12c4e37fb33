//! Web Push delivery through the outbox, checked by a loopback push service
//! that verifies VAPID and decrypts with an independent implementation; the
//! event stream; and polling as the path that always works.

use std::time::Duration;

use assent_server::{client_auth::AuthMethod, keys::TokenAlg};
use assent_tests::{
    client::create_user,
    device::{enroll, next_event, next_event_of_any_kind},
    on_both_backends,
    push_service::{Behavior, TestPushService},
    wait::poll_until,
    TestClient, TestServer,
};

async fn server_with_push(backend: assent_tests::Backend, push: &TestPushService) -> TestServer {
    let allowed = push.host_port();
    TestServer::start_with(backend, move |s| {
        s.push_allowed_hosts = vec![allowed];
        s.push_timeout = Duration::from_secs(1);
    })
    .await
}

/// Each push job's state and last error, oldest first.
async fn job_states(server: &TestServer) -> Vec<(String, Option<String>)> {
    let rows = assent_tests::fetch_text_rows(
        server.store(),
        "SELECT state, last_error FROM push_jobs ORDER BY id",
    )
    .await;
    rows.into_iter()
        .map(|row| {
            let [state, last_error] = <[Option<String>; 2]>::try_from(row).expect("two columns");
            (state.expect("every job has a state"), last_error)
        })
        .collect()
}

/// Waits until every push job has left `pending`.
async fn settled(server: &TestServer, timeout: Duration) -> Vec<(String, Option<String>)> {
    poll_until(
        timeout,
        || job_states(server),
        |states| states.iter().all(|(state, _)| state != "pending"),
    )
    .await
}

on_both_backends! {
    async fn every_subscribed_device_gets_exactly_one_decryptable_message(backend: Backend) {
        let push = TestPushService::start().await;
        let server = server_with_push(backend, &push).await;
        create_user(server.store(), "alice", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let _phone = enroll(&server, "alice", Some(push.subscribe("phone", Behavior::Accept))).await;
        let _tablet = enroll(&server, "alice", Some(push.subscribe("tablet", Behavior::Accept))).await;
        let no_push = enroll(&server, "alice", None).await;
        assert!(no_push.account.server.starts_with("http://127.0.0.1"));
        // The enrollment notices (the tablet to the phone, the third device
        // to both) come first: this test is about the request's.
        assert_eq!(push.wait_for(3, Duration::from_secs(5)).await.len(), 3);
        push.clear_received();

        let ack = client.start(&server, "alice", "openid").await;
        let request_id = assent_tests::request_id(server.store(), ack["auth_req_id"].as_str().unwrap()).await;
        let received = push.wait_for(2, Duration::from_secs(5)).await;
        assert_eq!(push.errors(), Vec::<String>::new());
        assert_eq!(received.len(), 2);
        let mut topics = Vec::new();
        for message in &received {
            assert_eq!(message.payload["request_id"], request_id.as_str());
            assert_eq!(message.payload["v"], 1);
            assert!(message.payload["exp"].is_i64());
            assert!((290..=300).contains(&message.ttl), "TTL {} is the request's remaining lifetime", message.ttl);
            assert_eq!(message.urgency, "high");
            assert!(message.vapid_sub.starts_with("mailto:") || message.vapid_sub.starts_with("https:"));
            topics.push(message.topic.clone());
        }
        topics.sort();
        topics.dedup();
        assert_eq!(topics.len(), 2, "a Topic per device");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(push.received().len(), 2, "exactly one message per device");
        assert!(settled(&server, Duration::from_secs(2)).await.iter().all(|(s, _)| s == "sent"));

        let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("assent_push_sent_total"), "{metrics}");
        assert!(metrics.contains("assent_push_delivery_seconds_bucket"));
        assert!(metrics.contains("assent_pending_requests"));
    }
}

on_both_backends! {
    async fn push_failures_are_handled_and_the_request_still_reaches_the_device(backend: Backend) {
        let push = TestPushService::start().await;
        let server = server_with_push(backend, &push).await;
        create_user(server.store(), "bob", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let cases = [
            ("gone", Behavior::Status(410, None)),
            ("missing", Behavior::Status(404, None)),
            ("busy", Behavior::StatusThenAccept(429, Some("1"), 1)),
            ("down", Behavior::StatusThenAccept(503, None, 1)),
            ("moved", Behavior::Redirect),
            ("slow", Behavior::Hang(Duration::from_millis(2500))),
        ];
        let mut devices = Vec::new();
        for (name, _) in &cases {
            devices.push((*name, enroll(&server, "bob", Some(push.subscribe(name, Behavior::Accept))).await));
        }
        // Each enrollment notified the devices before it (5+4+3+2+1); then
        // each push service behaves as the case says.
        assert_eq!(push.wait_for(15, Duration::from_secs(10)).await.len(), 15);
        push.clear_received();
        for (name, behavior) in &cases {
            push.set_behavior(name, behavior.clone());
        }
        let (_, watcher) = &devices[0];
        let mut events = watcher.events(None).await.unwrap();

        let started = std::time::Instant::now();
        let ack = client.start(&server, "bob", "openid").await;
        let request_id = assent_tests::request_id(server.store(), ack["auth_req_id"].as_str().unwrap()).await;

        // The event stream announces it at once, whatever push does.
        let event = next_event(&mut events, Duration::from_secs(2)).await;
        assert_eq!((event.kind.as_str(), event.request_id.as_deref()), ("request", Some(request_id.as_str())));
        // Polling shows it on every device.
        for (name, device) in &devices {
            let pending = device.pending().await.unwrap();
            assert_eq!(pending.verified.len(), 1, "{name}");
            assert_eq!(pending.verified[0].claims.request_id, request_id);
        }

        tokio::time::sleep(Duration::from_millis(300)).await;
        // The slow one hangs past the 1 s timeout, is retried, then accepted.
        push.set_behavior("slow", Behavior::Accept);
        let states = settled(&server, Duration::from_secs(10)).await;
        assert!(states.iter().all(|(s, _)| s != "pending"), "{states:?}");
        assert_eq!(push.errors(), Vec::<String>::new());

        // 410 and 404: subscription disabled, no retry.
        for (name, code) in [("gone", 410), ("missing", 404)] {
            assert_eq!(push.attempts(name), 1, "{name}");
            let device = &devices.iter().find(|(n, _)| *n == name).unwrap().1;
            let row = server.store().device(&device.account.device_id).await.unwrap().unwrap();
            assert!(row.push_channel.is_none(), "{name}: subscription disabled");
            assert!(row.push_disabled_reason.unwrap().contains(&code.to_string()));
        }
        // 429 honours Retry-After (1 s) and then delivers.
        let busy = push.received_by("busy");
        assert_eq!((push.attempts("busy"), busy.len()), (2, 1));
        assert!(busy[0].at.duration_since(started) >= Duration::from_millis(900), "Retry-After honoured");
        // 503 is retried with backoff and then delivered.
        assert_eq!((push.attempts("down"), push.received_by("down").len()), (2, 1));
        // A redirect is refused, not followed, and not retried.
        assert_eq!((push.attempts("moved"), push.received_by("moved").len()), (1, 0));
        // The hang timed out and was retried.
        assert!(push.attempts("slow") >= 2);
        assert_eq!(push.received_by("slow").len(), 1);

        let mut failed: Vec<_> = states.iter().filter(|(s, _)| s != "sent").map(|(s, e)| (s.as_str(), e.clone().unwrap_or_default())).collect();
        failed.sort();
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(failed.iter().any(|(s, e)| *s == "failed" && e.contains("redirect")));
        assert_eq!(failed.iter().filter(|(s, _)| *s == "dropped").count(), 2);
    }
}

on_both_backends! {
    async fn endpoints_on_private_addresses_or_plain_http_are_refused(backend: Backend) {
        let push = TestPushService::start().await;
        // No allowed hosts: loopback and http are off limits.
        let server = TestServer::start_with(backend, |s| s.push_timeout = Duration::from_secs(1)).await;
        create_user(server.store(), "carol", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let mut https_loopback = push.subscribe("a", Behavior::Accept);
        https_loopback.endpoint = https_loopback.endpoint.replace("http://", "https://");
        enroll(&server, "carol", Some(https_loopback)).await;
        enroll(&server, "carol", Some(push.subscribe("b", Behavior::Accept))).await;
        let mut private_name = push.subscribe("c", Behavior::Accept);
        private_name.endpoint = format!("https://localhost:{}/push/c", push.addr.port());
        enroll(&server, "carol", Some(private_name)).await;
        client.start(&server, "carol", "openid").await;
        let states = settled(&server, Duration::from_secs(5)).await;
        assert_eq!(states.len(), 3);
        for (state, error) in &states {
            assert_eq!(state, "failed", "{error:?}");
        }
        assert_eq!(push.attempts("a") + push.attempts("b") + push.attempts("c"), 0, "nothing was sent");
    }
}

on_both_backends! {
    async fn the_event_stream_resumes_with_last_event_id_and_reports_resolutions(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "dave", None, None).await;
        create_user(server.store(), "erin", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let dave = enroll(&server, "dave", None).await;
        let mut stream = dave.events(None).await.unwrap();
        let first = client.start(&server, "dave", "openid").await;
        client.start(&server, "erin", "openid").await; // another user's: never shown to Dave
        let e1 = next_event(&mut stream, Duration::from_secs(2)).await;
        let first_id = assent_tests::request_id(server.store(), first["auth_req_id"].as_str().unwrap()).await;
        assert_eq!(e1.request_id.as_deref(), Some(first_id.as_str()));
        let resume_from = stream.last_event_id().unwrap().to_string();
        drop(stream);

        // While disconnected: a decision and a new request.
        let challenge = dave.pending().await.unwrap().verified.remove(0);
        dave.decide(&challenge, &assent_device::Answer::approve(first["match_code"].as_str())).await.unwrap();
        let second = client.start(&server, "dave", "openid").await;
        let second_id = assent_tests::request_id(server.store(), second["auth_req_id"].as_str().unwrap()).await;

        let mut resumed = dave.events(Some(&resume_from)).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let e = next_event(&mut resumed, Duration::from_secs(2)).await;
            seen.push((e.kind, e.request_id.unwrap()));
        }
        assert_eq!(seen, [("resolved".to_string(), first_id), ("request".to_string(), second_id)]);
    }
}

on_both_backends! {
    async fn revoking_a_device_ends_its_event_stream_at_once(backend: Backend) {
        let server = TestServer::start(backend).await;
        create_user(server.store(), "dave", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let laptop = enroll(&server, "dave", None).await;
        let phone = enroll(&server, "dave", None).await;
        let mut on_laptop = laptop.events(None).await.unwrap();
        let mut on_phone = phone.events(None).await.unwrap();

        let now = assent_server::clock::now_ms();
        assert!(server.store().revoke_device(&laptop.account.device_id, "lost", now).await.unwrap());

        // The laptop is told, and its stream ends without waiting for its hour.
        let told = next_event(&mut on_laptop, Duration::from_secs(5)).await;
        assert_eq!(told.kind, "revoked");
        assert_eq!(told.request_id.as_deref(), Some(laptop.account.device_id.as_str()));
        let after = tokio::time::timeout(Duration::from_secs(5), on_laptop.next()).await.expect("the stream ends");
        assert!(matches!(after, Ok(None)), "the stream is closed: {after:?}");
        let refused = laptop.events(None).await.err().and_then(|e| e.code());
        assert_eq!(refused, Some(assent_shared::error::DeviceErrorCode::DeviceRevoked));

        // The phone's stream stays open and is not told about the laptop:
        // the next thing it sees is the next request.
        let started = client.start(&server, "dave", "openid").await;
        let id = assent_tests::request_id(server.store(), started["auth_req_id"].as_str().unwrap()).await;
        let next = next_event(&mut on_phone, Duration::from_secs(5)).await;
        assert_eq!((next.kind.as_str(), next.request_id.as_deref()), ("request", Some(id.as_str())));
    }
}

/// One device cannot hold more than four event streams: a fifth ends the
/// oldest (a stream left behind by a network change), so a device opening
/// thousands ties up four at most.
#[tokio::test]
async fn a_device_holds_at_most_four_event_streams_and_the_oldest_make_way() {
    use assent_server::delivery::MAX_STREAMS_PER_DEVICE;
    use std::sync::atomic::Ordering;
    let server = TestServer::start(assent_tests::Backend::Sqlite).await;
    create_user(server.store(), "dave", None, None).await;
    let dave = enroll(&server, "dave", None).await;
    let mut streams = Vec::new();
    for _ in 0..MAX_STREAMS_PER_DEVICE + 2 {
        streams.push(dave.events(None).await.unwrap());
    }
    let open = || {
        server
            .assent()
            .delivery
            .open_streams
            .load(Ordering::Relaxed)
    };
    let settled = poll_until(
        Duration::from_secs(5),
        || async { open() },
        |n| *n == MAX_STREAMS_PER_DEVICE as i64,
    )
    .await;
    assert_eq!(settled, MAX_STREAMS_PER_DEVICE as i64);
    // The two oldest were ended by the server.
    for oldest in &mut streams[..2] {
        let ended = tokio::time::timeout(Duration::from_secs(5), oldest.next()).await;
        assert!(matches!(ended, Ok(Ok(None))), "the oldest stream ended");
    }
    // The newest still receive events.
    let client = TestClient::register(
        server.store(),
        AuthMethod::ClientSecretBasic,
        TokenAlg::ES256,
    )
    .await;
    client.start(&server, "dave", "openid").await;
    let newest = streams.last_mut().unwrap();
    assert_eq!(
        next_event(newest, Duration::from_secs(5)).await.kind,
        "request"
    );
}

/// With a metrics token configured, `/metrics` answers only to it.
#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let digest = assent_server::secrets::sha256_hex("m3trics-t0ken");
    let server = TestServer::start_with(assent_tests::Backend::Sqlite, move |s| {
        s.metrics_token_sha256 = Some(digest)
    })
    .await;
    let get = |token: Option<&'static str>| {
        let mut request = server.http.get(server.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for refused in [None, Some("wrong"), Some("")] {
        let response = get(refused).await.unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::UNAUTHORIZED,
            "{refused:?}"
        );
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let response = get(Some("m3trics-t0ken")).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(response.text().await.unwrap().contains("assent_"));
    // The scheme in any case, as everywhere; a refusal is never cached.
    let lower = server
        .http
        .get(server.url("/metrics"))
        .header("authorization", "bearer m3trics-t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), reqwest::StatusCode::OK);
    let refused = get(None).await.unwrap();
    assert_eq!(refused.headers()["cache-control"], "no-store");
    // A logo path that is not UTF-8 gets the JSON error, not a text one.
    let logo = server
        .http
        .get(server.url("/clients/%FF/logo"))
        .send()
        .await
        .unwrap();
    assert_eq!(logo.status(), reqwest::StatusCode::NOT_FOUND);
    let body: serde_json::Value = logo.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

/// With `metrics_listen`, `/metrics` is served on that address only: the
/// public listener answers 404 for it, and the metrics listener nothing else.
#[tokio::test]
async fn metrics_can_live_on_their_own_address() {
    let server = TestServer::start_with(assent_tests::Backend::Sqlite, |s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let metrics = server.server.metrics_addr.expect("a metrics address");
    assert_ne!(metrics, server.server.addr);
    let public = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), reqwest::StatusCode::NOT_FOUND);
    let private = server
        .http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), reqwest::StatusCode::OK);
    assert!(private.text().await.unwrap().contains("assent_"));
    let other = server
        .http
        .get(format!("http://{metrics}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), reqwest::StatusCode::NOT_FOUND);
    // The public listener still serves everything else.
    let discovery = server
        .http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), reqwest::StatusCode::OK);
}

on_both_backends! {
    /// Enrolling a device tells the user's other devices: an `enrolled`
    /// event naming it on their streams (live, and replayed after a
    /// reconnect) and a Web Push wake-up; the new device is not told of
    /// itself, and other users hear nothing.
    async fn enrolling_a_device_tells_the_users_other_devices(backend: Backend) {
        let push = TestPushService::start().await;
        let server = server_with_push(backend, &push).await;
        create_user(server.store(), "erin", None, None).await;
        create_user(server.store(), "frank", None, None).await;
        let client = TestClient::register(server.store(), AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let laptop = enroll(&server, "erin", Some(push.subscribe("laptop", Behavior::Accept))).await;
        let franks = enroll(&server, "frank", None).await;
        let mut on_laptop = laptop.events(None).await.unwrap();
        let mut on_franks = franks.events(None).await.unwrap();

        let link = assent_shared::protocol::EnrollmentUri::parse(&assent_tests::enrollment_link(&server, "erin").await).unwrap();
        let phone = assent_device::DeviceClient::enroll(&link, "Erin's phone", "android", None).await.unwrap();

        // (Erin's stand-in device, made by the harness, was enrolled too.)
        let told = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let e = next_event_of_any_kind(&mut on_laptop).await;
                if e.request_id.as_deref() == Some(phone.account.device_id.as_str()) {
                    return e;
                }
            }
        })
        .await
        .expect("the laptop is told of the phone");
        assert_eq!(told.kind, "enrolled");
        let device = told.device.expect("the new device is described");
        assert_eq!((device.name.as_str(), device.platform.as_str()), ("Erin's phone", "android"));
        let pushed = poll_until(
            Duration::from_secs(5),
            || {
                let received = push.received_by("laptop");
                async move { received.into_iter().find(|r| r.payload["event"] == "enrolled") }
            },
            Option::is_some,
        )
        .await
        .expect("a wake-up reached the laptop's push service");
        assert_eq!(pushed.payload["device_id"], phone.account.device_id.as_str());
        assert_eq!(pushed.payload["v"], 1);

        // A reconnect from before the enrollment replays it.
        let mut replayed = laptop.events(Some("0")).await.unwrap();
        let mut kinds = Vec::new();
        while let Ok(Ok(Some(e))) = tokio::time::timeout(Duration::from_millis(500), replayed.next()).await {
            kinds.push((e.kind, e.request_id));
        }
        assert!(kinds.contains(&("enrolled".into(), Some(phone.account.device_id.clone()))), "{kinds:?}");

        // The phone is not told of itself, live or replayed, and Frank of
        // nothing: the next thing each sees is the next request.
        let mut on_phone = phone.events(Some("0")).await.unwrap();
        let started = client.start(&server, "erin", "openid").await;
        let id = assent_tests::request_id(server.store(), started["auth_req_id"].as_str().unwrap()).await;
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let e = next_event_of_any_kind(&mut on_phone).await;
                assert_ne!(e.request_id.as_deref(), Some(phone.account.device_id.as_str()), "{e:?}");
                if e.kind == "request" && e.request_id.as_deref() == Some(id.as_str()) {
                    break;
                }
            }
        })
        .await
        .expect("the phone sees the request");
        client.start(&server, "frank", "openid").await;
        assert_eq!(next_event(&mut on_franks, Duration::from_secs(5)).await.kind, "request");
    }
}
