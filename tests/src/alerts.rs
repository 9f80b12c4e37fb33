//! A loopback receiver for the operator's alert webhook
//! (`alert_webhook_url`): what the server posts, in order.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, http::StatusCode, routing::post, Json, Router};
use serde_json::Value;

/// A loopback receiver for the operator's alert webhook.
pub async fn webhook_receiver() -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/alerts",
            post(
                |State(seen): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>| async move {
                    seen.lock().unwrap().push(body);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, received)
}

/// The first alert received; panics unless one arrives within 5 s.
pub async fn first_alert(received: &Mutex<Vec<Value>>) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while received.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    received
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("the webhook got the alert")
}
