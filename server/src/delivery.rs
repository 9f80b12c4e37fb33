//! Telling devices about requests: the Web Push outbox dispatcher and the
//! live event hub behind `GET /device/v1/events`.
//!
//! The database is the source of truth. Triggers write a push job per
//! push-enabled device and a device event in the same transaction as the
//! request change, so a crash between "request stored" and "device told"
//! loses nothing: the dispatcher delivers every job at least once (devices
//! fetch by id, so a duplicate is harmless), and a stream that reconnects
//! with `Last-Event-ID` replays what it missed. Polling the signed pending
//! list stays the guaranteed path behind both.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use assent_shared::protocol::PushSubscription;
use tokio::{
    sync::{broadcast, watch, Notify},
    task::JoinSet,
};

use crate::{
    clock::Clock,
    push::{topic_for_device, PushService, SendOutcome},
    storage::{ClaimedPushJob, DeviceEventRow, Notification, PushJobState, StorageError, Store},
};

/// Most sends in flight per process.
const MAX_IN_FLIGHT: usize = 64;
/// How long a claimed job is reserved beyond the send timeout: enough to
/// record the outcome; after a crash the job is sent again once it runs out.
const LEASE_MARGIN_MS: i64 = 5_000;
/// Events buffered per user before a slow stream is told to resync (a
/// device fetches its pending list then). Each channel allocates all of its
/// slots up front: small keeps an idle stream cheap.
const USER_CHANNEL_CAPACITY: usize = 16;
/// Per device, its open streams' ids and what ends each, oldest first.
type DeviceStreams = HashMap<String, VecDeque<(u64, Arc<Notify>)>>;

/// Open event streams one device may hold in one process.
pub const MAX_STREAMS_PER_DEVICE: usize = 4;
/// Longest wait between retries of one job.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Per-process delivery state, shared by handlers and background tasks.
pub struct Delivery {
    pub push: PushService,
    dispatcher_wake: Notify,
    hub_wake: Notify,
    /// Live device events, one channel per user with open streams: an event
    /// wakes only its user's streams, so idle streams cost nothing per event.
    channels: std::sync::Mutex<HashMap<String, broadcast::Sender<Arc<DeviceEventRow>>>>,
    /// Highest event sequence number published: where a read of the table
    /// (SQLite's tailing, PostgreSQL's catching up after a reconnect) starts.
    last_seq: AtomicI64,
    pub open_streams: AtomicI64,
    /// The open streams of each device, oldest first: a device opening more
    /// than [`MAX_STREAMS_PER_DEVICE`] ends its oldest (one left behind by a
    /// network change would otherwise hold a slot until TCP gives up).
    device_streams: std::sync::Mutex<DeviceStreams>,
    next_stream_id: std::sync::atomic::AtomicU64,
    /// Turns true when the server starts shutting down: event streams end
    /// so that graceful shutdown does not wait for them.
    stopping: watch::Sender<bool>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").finish_non_exhaustive()
    }
}

impl Delivery {
    pub fn new(push: PushService) -> Self {
        Self {
            push,
            dispatcher_wake: Notify::new(),
            hub_wake: Notify::new(),
            channels: std::sync::Mutex::new(HashMap::new()),
            last_seq: AtomicI64::new(0),
            open_streams: AtomicI64::new(0),
            device_streams: std::sync::Mutex::new(HashMap::new()),
            next_stream_id: std::sync::atomic::AtomicU64::new(0),
            stopping: watch::channel(false).0,
        }
    }

    /// Registers a new event stream of `device`; returns its id and what
    /// ends it early. Beyond [`MAX_STREAMS_PER_DEVICE`], the oldest ends.
    pub fn register_device_stream(&self, device: &str) -> (u64, Arc<Notify>) {
        let id = self.next_stream_id.fetch_add(1, Ordering::Relaxed);
        let end = Arc::new(Notify::new());
        let mut streams = self
            .device_streams
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let open = streams.entry(device.to_string()).or_default();
        open.push_back((id, end.clone()));
        while open.len() > MAX_STREAMS_PER_DEVICE {
            if let Some((_, oldest)) = open.pop_front() {
                // A stored permit: the stream ends even if it is not waiting yet.
                oldest.notify_one();
            }
        }
        (id, end)
    }

    /// Forgets stream `id` of `device` (it ended).
    pub fn release_device_stream(&self, device: &str, id: u64) {
        let mut streams = self
            .device_streams
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(open) = streams.get_mut(device) {
            open.retain(|(s, _)| *s != id);
            if open.is_empty() {
                streams.remove(device);
            }
        }
    }

    /// Ends every event stream of this process.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves when [`Self::begin_shutdown`] was called.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Called after this process stored a request: tell its devices now
    /// instead of at the next tick. The dispatcher is woken only when the
    /// request queued push jobs (otherwise its claim would find nothing).
    pub fn announce_request(&self, queued_push_jobs: bool) {
        if queued_push_jobs {
            self.dispatcher_wake.notify_one();
        }
        self.hub_wake.notify_one();
    }

    fn channels(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<DeviceEventRow>>>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live device events of `user`.
    pub fn subscribe(&self, user: &str) -> broadcast::Receiver<Arc<DeviceEventRow>> {
        self.channels()
            .entry(user.to_string())
            .or_insert_with(|| broadcast::channel(USER_CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Forgets `user`'s channel once its last stream is gone.
    pub fn release(&self, user: &str) {
        let mut channels = self.channels();
        if channels
            .get(user)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            channels.remove(user);
        }
    }

    /// Hands an event to its user's open streams, if any.
    fn publish(&self, event: DeviceEventRow) {
        let mut channels = self.channels();
        let Some(tx) = channels.get(&event.user_sub) else {
            return;
        };
        if let Err(broadcast::error::SendError(event)) = tx.send(Arc::new(event)) {
            // Every stream of this user is gone (a release that ran while the
            // last receiver was still alive left the channel behind).
            channels.remove(&event.user_sub);
        }
    }
}

/// What the background delivery tasks need: the outbox, the hub, the time.
#[derive(Clone)]
pub struct Outbox {
    pub store: Store,
    pub delivery: Arc<Delivery>,
    pub clock: Clock,
    /// How long one push send may take.
    pub push_timeout: Duration,
}

/// Starts the dispatcher and the event hub; they stop when `stop` turns true.
pub fn spawn(outbox: Outbox, stop: watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(dispatch(outbox.clone(), stop.clone())),
        tokio::spawn(event_hub(outbox, stop)),
    ]
}

async fn dispatch(outbox: Outbox, mut stop: watch::Receiver<bool>) {
    let delivery = outbox.delivery.clone();
    let lease_ms = outbox.push_timeout.as_millis() as i64 + LEASE_MARGIN_MS;
    let mut in_flight = JoinSet::new();
    loop {
        let room = MAX_IN_FLIGHT - in_flight.len();
        let mut claimed = 0;
        if room > 0 {
            let now = outbox.clock.now_ms();
            match outbox
                .store
                .claim_push_jobs(now, now + lease_ms, room as i64)
                .await
            {
                Ok(jobs) => {
                    claimed = jobs.len();
                    for job in jobs {
                        in_flight.spawn(deliver(outbox.clone(), job));
                    }
                }
                Err(err) => tracing::warn!(error = %err, "claiming push jobs failed"),
            }
        }
        if room > 0 && claimed == room {
            continue; // more may be due right now
        }
        tokio::select! {
            () = stopped(&mut stop) => break,
            () = delivery.dispatcher_wake.notified() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    // Let sends in progress finish briefly; unfinished jobs keep their lease
    // and are sent again once it runs out.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
}

/// Delivers one job and records the outcome.
async fn deliver(outbox: Outbox, job: ClaimedPushJob) {
    let store = &outbox.store;
    let clock = &outbox.clock;
    let now = clock.now_ms();
    let result = async {
        if job.expires_at <= now {
            metrics::counter!("assent_push_failed_total", "reason" => "expired").increment(1);
            return store.finish_push_job(job.id, PushJobState::Dropped, Some("request expired"), now).await;
        }
        let Some(channel) = store.push_channel(&job.device_id).await? else {
            return store.finish_push_job(job.id, PushJobState::Dropped, Some("no push channel"), now).await;
        };
        let Ok(subscription) = serde_json::from_str::<PushSubscription>(&channel) else {
            return store.finish_push_job(job.id, PushJobState::Failed, Some("unreadable subscription"), now).await;
        };
        let payload = serde_json::json!({
            "v": assent_shared::protocol::VERSION,
            "request_id": job.request_id,
            "exp": job.expires_at / 1000,
        })
        .to_string();
        let ttl = Duration::from_millis((job.expires_at - now) as u64);
        let outcome = outbox
            .delivery
            .push
            .send(&subscription, payload.as_bytes(), ttl, &topic_for_device(&job.device_id))
            .await;
        let done = clock.now_ms();
        match outcome {
            SendOutcome::Delivered => {
                metrics::counter!("assent_push_sent_total").increment(1);
                metrics::histogram!("assent_push_delivery_seconds")
                    .record((done - job.created_at).max(0) as f64 / 1000.0);
                store.finish_push_job(job.id, PushJobState::Sent, None, done).await
            }
            SendOutcome::Gone(status) => {
                metrics::counter!("assent_push_failed_total", "reason" => "gone").increment(1);
                let reason = format!("push service answered {status}: subscription gone");
                tracing::info!(device_id = %job.device_id, status, "push subscription gone: disabled");
                store.disable_push_channel(&job.device_id, &reason).await?;
                store.finish_push_job(job.id, PushJobState::Dropped, Some(&reason), done).await
            }
            SendOutcome::Retry { after, reason } => {
                let backoff = after.unwrap_or_else(|| backoff(job.attempts)).min(MAX_BACKOFF);
                let next = done + backoff.as_millis() as i64;
                if next >= job.expires_at {
                    metrics::counter!("assent_push_failed_total", "reason" => "retries_exhausted").increment(1);
                    let why = format!("gave up before expiry: {reason}");
                    store.finish_push_job(job.id, PushJobState::Failed, Some(&why), done).await
                } else {
                    metrics::counter!("assent_push_retried_total").increment(1);
                    tracing::debug!(job = job.id, %reason, backoff_ms = backoff.as_millis() as u64, "push will be retried");
                    store.retry_push_job(job.id, next, &reason).await
                }
            }
            SendOutcome::Failed { reason } => {
                metrics::counter!("assent_push_failed_total", "reason" => "refused").increment(1);
                tracing::warn!(device_id = %job.device_id, %reason, "push not delivered");
                store.finish_push_job(job.id, PushJobState::Failed, Some(&reason), done).await
            }
        }
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, job = job.id, "recording a push outcome failed; the lease will expire");
    }
}

/// Resolves once shutdown starts (the watch guard never crosses an await).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// 1 s, 2 s, 4 s, ... for attempts 1, 2, 3, ...
fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 7) as u32 - 1;
    Duration::from_secs(1u64 << exp)
}

/// Feeds the broadcast channels behind the event streams.
///
/// PostgreSQL: every process LISTENs; NOTIFY carries the event and arrives
/// at commit in commit order, whichever process made the change. SQLite (one
/// process): the table is tailed when this process announces a change, and
/// every 200 ms for changes made through the library or the CLI.
async fn event_hub(outbox: Outbox, mut stop: watch::Receiver<bool>) {
    // Where the log stands: older events are not news. Without it the hub
    // would replay the whole log to the streams, so it waits for the
    // database rather than start from zero.
    let mut retry = RETRY_MIN;
    loop {
        match outbox.store.last_device_event_seq().await {
            Ok(seq) => {
                outbox.delivery.last_seq.store(seq, Ordering::SeqCst);
                break;
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading the event log position failed; retrying")
            }
        }
        if !pause(&mut retry, &mut stop).await {
            return;
        }
    }
    if outbox.store.notifies() {
        listen_for_events(&outbox, &mut stop).await;
    } else {
        tail_events(&outbox, &mut stop).await;
    }
}

/// First and longest wait between attempts to reach the database again.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Waits `retry` (doubling it for the next time, up to [`RETRY_MAX`]);
/// `false` when the server stops first.
async fn pause(retry: &mut Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let wait = *retry;
    *retry = (*retry * 2).min(RETRY_MAX);
    tokio::select! {
        () = stopped(stop) => false,
        () = tokio::time::sleep(wait) => true,
    }
}

/// PostgreSQL: LISTEN for as long as the server runs, through database
/// restarts and dropped connections.
///
/// A NOTIFY sent while this process is not listening is lost for good. So
/// each time the connection is (re)established, with LISTEN in effect, the
/// events committed after the last one this process saw are read from the
/// table and published first; an event both read and then notified reaches
/// each stream once (streams skip what they have seen). A LISTEN that
/// fails, at start-up too, is retried: live events never stay off.
async fn listen_for_events(outbox: &Outbox, stop: &mut watch::Receiver<bool>) {
    let delivery = &outbox.delivery;
    let mut retry = RETRY_MIN;
    let mut first = true;
    loop {
        let listener = tokio::select! {
            () = stopped(stop) => return,
            listener = outbox.store.listen() => listener,
        };
        let mut listener = match listener {
            Ok(Some(listener)) => listener,
            Ok(None) => return, // not PostgreSQL
            Err(err) => {
                tracing::warn!(error = %err, "LISTEN failed; retrying");
                if !pause(&mut retry, stop).await {
                    return;
                }
                continue;
            }
        };
        if !std::mem::take(&mut first) {
            tracing::info!("listening again; reading the events missed");
        }
        let mut caught_up = catch_up(outbox).await;
        loop {
            if let Err(err) = caught_up {
                tracing::warn!(error = %err, "reading the device events missed failed; reconnecting");
                break;
            }
            // Push jobs queued while nobody listened: claim them now
            // rather than at the dispatcher's next tick.
            delivery.dispatcher_wake.notify_one();
            retry = RETRY_MIN;
            let notification = loop {
                let received = tokio::select! {
                    () = stopped(stop) => return,
                    received = listener.recv() => received,
                };
                match received {
                    Ok(Notification::PushJobsQueued) => delivery.dispatcher_wake.notify_one(),
                    Ok(Notification::DeviceEvent(event)) => {
                        delivery.last_seq.fetch_max(event.seq, Ordering::SeqCst);
                        delivery.publish(event);
                    }
                    Ok(Notification::Reconnected) => break Ok(()),
                    Err(err) => break Err(err),
                }
            };
            match notification {
                Ok(()) => {
                    tracing::info!("LISTEN connection re-established; reading the events missed");
                    caught_up = catch_up(outbox).await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection lost; reconnecting");
                    break;
                }
            }
        }
        drop(listener);
        if !pause(&mut retry, stop).await {
            return;
        }
    }
}

/// SQLite: reads the table after this process's own changes and every 200 ms.
async fn tail_events(outbox: &Outbox, stop: &mut watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = stopped(stop) => return,
            () = outbox.delivery.hub_wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if let Err(err) = catch_up(outbox).await {
            tracing::warn!(error = %err, "reading device events failed");
        }
    }
}

/// Events read from the table per statement.
const EVENTS_PER_READ: i64 = 1000;

/// Publishes the events after the last one this process saw, oldest first.
async fn catch_up(outbox: &Outbox) -> Result<(), StorageError> {
    let delivery = &outbox.delivery;
    loop {
        let after = delivery.last_seq.load(Ordering::SeqCst);
        let events = outbox
            .store
            .device_events_after(after, None, EVENTS_PER_READ)
            .await?;
        let more = events.len() as i64 == EVENTS_PER_READ;
        for event in events {
            delivery.last_seq.fetch_max(event.seq, Ordering::SeqCst);
            delivery.publish(event);
        }
        if !more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(50), Duration::from_secs(64));
    }
}
