//! Outbound requests and proxies: the server never uses a proxy from the
//! environment (`HTTPS_PROXY` would resolve names past the address check),
//! uses the one the operator configures, and checks a target's addresses
//! before that proxy is asked to connect. Through the operator CLI's logo
//! fetch, which goes through the same guard as Web Push and the webhook.

use std::sync::{Arc, Mutex};

use assent_tests::{process::server_command, Backend, TestClient, TestServer};
use axum::Router;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// An HTTP proxy that records the request line of everything it is asked
/// and answers every request itself (`201` with an empty body); `CONNECT`
/// gets `502`.
async fn recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let answer: &[u8] = if line.starts_with("CONNECT") {
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                record.lock().unwrap().push(line);
                let _ = socket.write_all(answer).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_are_used_only_when_configured_and_after_the_address_check() {
    // A real logo on loopback, allowed by the operator.
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n-a-logo".to_vec();
    let logo_hits = Arc::new(Mutex::new(0usize));
    let hits = logo_hits.clone();
    let app = Router::new().route(
        "/logo.png",
        axum::routing::get(move || {
            *hits.lock().unwrap() += 1;
            let png = png.clone();
            async move { ([("content-type", "image/png")], png) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (proxy, seen) = recording_proxy().await;

    let server = TestServer::start(Backend::Sqlite).await;
    let client = TestClient::register(
        server.store(),
        assent_server::client_auth::AuthMethod::ClientSecretBasic,
        assent_server::keys::TokenAlg::ES256,
    )
    .await;
    let update = |logo: String, env: Vec<(&'static str, String)>| {
        let mut cmd = server_command(&server.db.url);
        cmd.args(["client", "update", &client.client_id, "--logo-url", &logo])
            .env("ASSENT_PUSH_ALLOWED_HOSTS", origin.to_string());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output()
    };

    // Proxies from the environment are ignored: the logo comes straight
    // from its server, and the proxy is asked nothing.
    let environment = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|k| (k, proxy.clone()))
    .collect::<Vec<_>>();
    let out = update(format!("http://{origin}/logo.png"), environment)
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(*logo_hits.lock().unwrap(), 1);
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );

    // A configured proxy is used (it answers an empty body itself here, so
    // the logo is refused as not an image, which shows who answered).
    let configured = vec![("ASSENT_OUTBOUND_PROXY", proxy.clone())];
    let out = update(format!("http://{origin}/logo.png"), configured.clone())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a PNG"), "{stderr}");
    assert_eq!(*logo_hits.lock().unwrap(), 1, "not fetched directly");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [format!("GET http://{origin}/logo.png HTTP/1.1")]
    );

    // Through the proxy, a name whose addresses are not public is refused
    // here, before the proxy is asked to connect.
    let out = update("https://localhost:9/logo.png".into(), configured.clone())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("localhost has no public address"),
        "{stderr}"
    );
    // A literal private address never gets that far either.
    let out = update("https://10.1.2.3/logo.png".into(), configured)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not public"));
    assert_eq!(seen.lock().unwrap().len(), 1, "{:?}", seen.lock().unwrap());
}
