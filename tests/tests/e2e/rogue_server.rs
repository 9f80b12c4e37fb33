//! A server that answers without end: the device library stops reading at
//! its caps (an answer, an event) instead of buffering what it is sent.

use assent_device::{
    client::MAX_RESPONSE_BYTES, events::MAX_EVENT_BYTES, Account, DeviceClient, DeviceClientError,
};
use assent_shared::{jose::DeviceKey, protocol::Policy};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// The most a rogue answer sends before giving up (far beyond every cap).
const ROGUE_LIMIT: usize = 256 * 1024 * 1024;

/// Answers every connection with `200`, `content_type` and a chunked body
/// of `filler` bytes that never ends (until the client hangs up).
async fn endless_server(content_type: &'static str, filler: u8) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![filler; 64 * 1024];
                let mut sent = 0;
                while sent < ROGUE_LIMIT {
                    let framed =
                        [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                    if socket.write_all(&framed).await.is_err() {
                        return; // the device hung up: what this test wants
                    }
                    sent += chunk.len();
                }
            });
        }
    });
    url
}

fn device_of(server: &str) -> DeviceClient {
    let account = Account {
        server: server.to_string(),
        device_id: "d1".into(),
        user: "alice".into(),
        label: "alice".into(),
        server_key: DeviceKey::generate().public_jwk(),
        previous_server_key: None,
        policy: Policy {
            protocol_version: 1,
            max_clock_skew_secs: 60,
            max_decision_lifetime_secs: 60,
            poll_interval_secs: 30,
        },
        device_name: "laptop".into(),
        enrolled_at: "2026-12-06T00:00:00Z".into(),
    };
    DeviceClient::new(account, DeviceKey::generate())
}

#[tokio::test]
async fn an_endless_pending_list_is_cut_at_the_answer_cap() {
    let server = endless_server("application/json", b' ').await;
    let err = device_of(&server).pending().await.unwrap_err();
    match err {
        DeviceClientError::Protocol(why) => {
            assert!(
                why.contains(&format!("larger than {MAX_RESPONSE_BYTES} bytes")),
                "{why}"
            )
        }
        other => panic!("expected a refusal of the answer, got {other:?}"),
    }
}

#[tokio::test]
async fn an_event_that_never_ends_is_cut_at_the_event_cap() {
    let server = endless_server("text/event-stream", b'a').await;
    let mut stream = device_of(&server).events(None).await.unwrap();
    let err = stream.next().await.unwrap_err();
    match err {
        DeviceClientError::Protocol(why) => {
            assert!(
                why.contains(&format!("larger than {MAX_EVENT_BYTES} bytes")),
                "{why}"
            )
        }
        other => panic!("expected a refusal of the event, got {other:?}"),
    }
}
