//! The live event stream of a device's user: who may open it, what a
//! reconnecting device is replayed, and when it must resync instead.

use std::sync::{atomic::Ordering, Arc};

use assent_shared::protocol::{path, typ, ProofClaims};
use tokio::sync::{
    broadcast::{self, error::RecvError},
    Notify,
};

use crate::{
    delivery::Delivery,
    error::DeviceError,
    keys::DeviceKeyInfo,
    state::Assent,
    storage::{DeviceEventRow, EventKind},
};

use super::messages::verify_fresh_device_message;

/// Most events replayed on reconnect; beyond that the device resyncs by polling.
const MAX_REPLAY: i64 = 1000;

/// An opened stream: the events the device missed, then live ones.
pub struct EventStream {
    pub device: Arc<DeviceKeyInfo>,
    /// Events after the device's `Last-Event-ID`, oldest first.
    pub replay: Vec<DeviceEventRow>,
    /// More events were missed than are replayed: the device must fetch its
    /// pending list (sent after the replay).
    pub resync: bool,
    pub live: LiveEvents,
}

/// What the live part of a stream yields.
#[derive(Debug)]
pub enum LiveEvent {
    Event(Arc<DeviceEventRow>),
    /// Events were dropped (the device read too slowly): fetch the pending list.
    Resync,
}

/// The user's live events after the last one replayed. Counts as an open
/// stream until dropped, and then releases the user's channel when it was
/// the last stream.
pub struct LiveEvents {
    receiver: Option<broadcast::Receiver<Arc<DeviceEventRow>>>,
    delivery: Arc<Delivery>,
    user: String,
    /// The device this stream belongs to: its revocation ends the stream.
    device_id: String,
    after: i64,
    /// This stream among the device's ([`Delivery::register_device_stream`]),
    /// and what ends it when the device opens too many.
    stream_id: u64,
    superseded: Arc<Notify>,
}

impl LiveEvents {
    /// The next event of this user newer than any seen; `None` when the
    /// server stops publishing.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        let receiver = self.receiver.as_mut()?;
        loop {
            let received = tokio::select! {
                r = receiver.recv() => r,
                () = self.superseded.notified() => {
                    // The device opened newer streams: this one ends.
                    self.receiver = None;
                    return None;
                }
            };
            match received {
                Ok(e) if e.user_sub == self.user && e.seq > self.after => {
                    self.after = e.seq;
                    if e.kind == EventKind::Enrolled && e.request_id == self.device_id {
                        // Its own enrollment is no news to a device.
                        continue;
                    }
                    if e.kind == EventKind::Revoked {
                        // Another device of the user: nothing for this one.
                        if e.request_id != self.device_id {
                            continue;
                        }
                        // This device: tell it, then end the stream.
                        self.receiver = None;
                    }
                    return Some(LiveEvent::Event(e));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => return Some(LiveEvent::Resync),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for LiveEvents {
    fn drop(&mut self) {
        // The receiver goes first, so that the release sees it gone.
        drop(self.receiver.take());
        self.delivery
            .release_device_stream(&self.device_id, self.stream_id);
        self.delivery.open_streams.fetch_sub(1, Ordering::Relaxed);
        self.delivery.release(&self.user);
    }
}

/// `GET /device/v1/events`: authenticates the device (a fresh proof), then
/// subscribes to its user's events before reading what it missed since
/// `last_event_id`, so that nothing falls between the two.
pub async fn open_event_stream(
    assent: &Assent,
    proof: &str,
    last_event_id: Option<i64>,
) -> Result<EventStream, DeviceError> {
    let (device, _): (Arc<DeviceKeyInfo>, ProofClaims) = verify_fresh_device_message(
        assent,
        proof,
        typ::PROOF,
        "GET",
        &assent.endpoints.device_url(path::EVENTS),
    )
    .await?;
    let delivery = assent.delivery.clone();
    let receiver = delivery.subscribe(&device.user_sub);
    delivery.open_streams.fetch_add(1, Ordering::Relaxed);
    let (stream_id, superseded) = delivery.register_device_stream(&device.id);
    let mut live = LiveEvents {
        receiver: Some(receiver),
        delivery,
        user: device.user_sub.clone(),
        device_id: device.id.clone(),
        after: 0,
        stream_id,
        superseded,
    };
    let mut replay = Vec::new();
    if let Some(last) = last_event_id {
        replay = assent
            .store
            .device_events_after(last, Some(&device.user_sub), MAX_REPLAY)
            .await?;
    }
    let resync = replay.len() as i64 == MAX_REPLAY;
    live.after = match (replay.last(), last_event_id) {
        (Some(last), _) => last.seq,
        (None, Some(last)) => last,
        // Only what happens from now on: an event committed before the
        // stream opened but published a little later (another process's,
        // on SQLite found by tailing) is not news to this device.
        (None, None) => assent.store.last_device_event_seq().await?,
    };
    // Revocations of the user's other devices are not this device's
    // business, nor is its own enrollment news to it.
    replay.retain(|e| {
        e.kind != EventKind::Revoked
            && !(e.kind == EventKind::Enrolled && e.request_id == device.id)
    });
    Ok(EventStream {
        device,
        replay,
        resync,
        live,
    })
}
