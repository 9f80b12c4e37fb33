//! One task per account keeps its part of the inbox current: fetch, then
//! follow the account's event stream; while the stream is down, fetch on
//! every reconnection attempt (polling with backoff, up to the server's
//! polling cadence).

use std::time::Duration;

use assent_shared::protocol::event;

use super::{accounts::Connection, lock, Authenticator};
use crate::error::{AppError, ErrorKind};

/// Longest wait between reconnection attempts (and so between polls) while
/// an account's event stream is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Authenticator {
    /// Starts (or restarts) the account's watcher.
    pub(super) fn watch(&self, account_id: &str) {
        let this = self.clone();
        let id = account_id.to_string();
        let handle = tauri::async_runtime::spawn(async move { this.follow(&id).await });
        if let Some(old) = lock(&self.0.watchers).insert(account_id.to_string(), handle) {
            old.abort();
        }
    }

    pub(super) fn unwatch(&self, account_id: &str) {
        if let Some(handle) = lock(&self.0.watchers).remove(account_id) {
            handle.abort();
        }
    }

    pub(super) fn unwatch_all(&self) {
        for (_, handle) in lock(&self.0.watchers).drain() {
            handle.abort();
        }
    }

    async fn follow(&self, account_id: &str) {
        let mut backoff = Duration::from_secs(1);
        let mut last_event_id: Option<String> = None;
        loop {
            let Some((client, _)) = self.client(account_id) else {
                return;
            };
            let max_backoff = MAX_BACKOFF.min(Duration::from_secs(
                client.account.policy.poll_interval_secs.max(1),
            ));
            match client.events(last_event_id.as_deref()).await {
                Ok(mut stream) => {
                    self.set_connection(account_id, Connection::Live);
                    backoff = Duration::from_secs(1);
                    // Fetch once the stream is open, so a request made while
                    // it was connecting is not missed.
                    let _ = self.refresh(account_id).await;
                    loop {
                        match stream.next().await {
                            Ok(Some(received)) if received.kind == event::RESOLVED => {
                                if let Some(request_id) = received.request_id {
                                    self.resolved_elsewhere(
                                        (account_id.to_string(), request_id),
                                        received.outcome,
                                    );
                                }
                            }
                            Ok(Some(received)) if received.kind == event::REVOKED => {
                                self.device_revoked(account_id);
                                return;
                            }
                            Ok(Some(received)) if received.kind == event::ENROLLED => {
                                if let (Some(device_id), Some(device)) =
                                    (received.request_id, received.device)
                                {
                                    self.device_enrolled(account_id, device_id, device).await;
                                }
                            }
                            Ok(Some(_)) => {
                                let _ = self.refresh(account_id).await;
                            }
                            Ok(None) | Err(_) => break,
                        }
                        if let Some(id) = stream.last_event_id() {
                            last_event_id = Some(id.to_string());
                        }
                    }
                    self.set_connection(account_id, Connection::Offline);
                }
                Err(e) => {
                    let e = AppError::from_device(e, &client.account.server);
                    self.set_problem(account_id, Some(&e));
                    if e.kind == ErrorKind::Revoked {
                        self.set_connection(account_id, Connection::Revoked);
                        return;
                    }
                    self.set_connection(account_id, Connection::Offline);
                    // Polling while the stream is down.
                    let _ = self.refresh(account_id).await;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max_backoff);
        }
    }
}
