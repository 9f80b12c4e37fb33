//! The device side of the tests: enrolled devices, signed-request bindings
//! and the event stream.

use std::time::Duration;

use assent_device::{
    events::{DeviceEvent, EventStream},
    DeviceClient,
};
use assent_server::clock::now_ms;
use assent_shared::protocol::{EnrollmentUri, PushSubscription, RequestBinding};

use crate::TestServer;

/// Enrolls a new device for `user` through a fresh ticket, with an optional
/// Web Push subscription.
pub async fn enroll(
    server: &TestServer,
    user: &str,
    push: Option<PushSubscription>,
) -> DeviceClient {
    let link = crate::enrollment_link(server, user).await;
    let link = EnrollmentUri::parse(&link).unwrap();
    DeviceClient::enroll(&link, "test device", "test", push)
        .await
        .unwrap()
}

/// A binding of a device message to `method` and `url`, issued now with a
/// fresh `jti`.
pub fn request_binding(method: &str, url: &str) -> RequestBinding {
    RequestBinding {
        htm: method.into(),
        htu: url.into(),
        iat: now_ms() / 1000,
        jti: uuid::Uuid::new_v4().to_string(),
    }
}

/// The next event on `stream` about requests or this device, passing over
/// notices of the user's other devices being enrolled (every test user's
/// stand-in device makes one); panics unless one arrives `within`.
pub async fn next_event(stream: &mut EventStream, within: Duration) -> DeviceEvent {
    tokio::time::timeout(within, async {
        loop {
            let event = next_event_of_any_kind(stream).await;
            if event.kind != assent_shared::protocol::event::ENROLLED {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event within {within:?}"))
}

/// The next event on `stream`, whatever it is.
pub async fn next_event_of_any_kind(stream: &mut EventStream) -> DeviceEvent {
    stream
        .next()
        .await
        .expect("the event stream reads")
        .expect("the event stream stays open")
}
