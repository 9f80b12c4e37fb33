//! The message dispatcher: claims due messages from the outbox, sends them
//! (at most [`MAX_IN_FLIGHT`] at once, each its own task, so a slow SMTP
//! server never holds up the others or the runtime), and records what came
//! of each.
//!
//! It is woken by [`super::queue`] in this process and otherwise reads the
//! table every [`CHECK_INTERVAL`]: a message queued by another process, due
//! for a retry, or left leased by a process that was killed is found there.
//! Transient failures (SMTP 4xx, timeouts, connection trouble; HTTP 408,
//! 429, 5xx) are retried after 1 s, 2 s, 4 s ... at most [`MAX_BACKOFF`]
//! (or the provider's `Retry-After`), at most [`MAX_ATTEMPTS`] times and
//! never past the message's expiry; permanent ones (SMTP 5xx, other HTTP
//! 4xx) end it at once. A message that expired before it was sent is
//! dropped.

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinSet};

use super::{email::SmtpSender, mask_recipient, sms::SmsSender, Channel, OutgoingMessage};
use crate::{
    state::Assent,
    storage::{ClaimedMessage, MessageState, StorageError},
};

/// Most sends in flight per process.
pub const MAX_IN_FLIGHT: usize = 16;
/// Attempts before a message that keeps failing for a passing reason is
/// given up.
pub const MAX_ATTEMPTS: i64 = 10;
/// Longest wait between two attempts (unless the provider asks for more).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest `Retry-After` honoured; a message that would wait longer than
/// its expiry fails anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How often the table is read when nothing woke the dispatcher.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a claimed message is reserved beyond the longest send: enough to
/// record the outcome. After a crash the message is due again once it runs
/// out.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// What one send came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted by the SMTP server or the SMS provider.
    Sent,
    /// A passing failure: try again, after `after` when the provider said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Refused for good.
    Failed { reason: String },
}

impl SendOutcome {
    /// Appends `detail` to the reason of a failure.
    pub(crate) fn add_detail(&mut self, detail: &str) {
        if let SendOutcome::Retry { reason, .. } | SendOutcome::Failed { reason } = self {
            reason.push_str(&format!(" ({detail})"));
        }
    }
}

/// How long to wait before attempt `attempts + 1`: the provider's
/// `Retry-After` when it gave one, else 1 s, 2 s, 4 s ... capped at
/// [`MAX_BACKOFF`].
pub fn retry_delay(attempts: i64, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(after) => after.clamp(Duration::from_secs(1), MAX_RETRY_AFTER),
        None => {
            let exp = attempts.clamp(1, 7) as u32 - 1;
            Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
        }
    }
}

/// What the dispatcher's tasks share.
struct Dispatcher {
    assent: Assent,
    email: Option<SmtpSender>,
    sms: Option<SmsSender>,
    lease: Duration,
}

/// Builds the senders of the configured channels and starts the dispatcher,
/// which stops when `stop` turns true. `None` when no channel is configured
/// (nothing this process could send). Fails when a channel's settings do
/// not make a sender: call it at start-up.
pub fn spawn(
    assent: Assent,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let email = SmtpSender::new(&assent.settings)?;
    let sms = SmsSender::new(&assent.settings)?;
    if email.is_none() && sms.is_none() {
        return Ok(None);
    }
    let longest = [
        email.as_ref().map(SmtpSender::deadline),
        sms.as_ref().map(SmsSender::deadline),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or_default();
    tracing::info!(
        email = email.is_some(),
        sms = sms.is_some(),
        "message dispatcher started"
    );
    let dispatcher = Arc::new(Dispatcher {
        assent,
        email,
        sms,
        lease: longest + LEASE_MARGIN,
    });
    Ok(Some(tokio::spawn(async move {
        run(dispatcher, &mut stop).await;
    })))
}

async fn run(dispatcher: Arc<Dispatcher>, stop: &mut watch::Receiver<bool>) {
    let assent = &dispatcher.assent;
    let lease_ms = dispatcher.lease.as_millis() as i64;
    let (email, sms) = (dispatcher.email.is_some(), dispatcher.sms.is_some());
    let mut in_flight = JoinSet::new();
    loop {
        let room = MAX_IN_FLIGHT - in_flight.len();
        let mut claimed = 0;
        if room > 0 {
            let now = assent.clock.now_ms();
            match assent
                .store
                .claim_messages(now, now + lease_ms, room as i64, email, sms)
                .await
            {
                Ok(messages) => {
                    claimed = messages.len();
                    for message in messages {
                        in_flight.spawn(deliver(dispatcher.clone(), message));
                    }
                }
                Err(err) => tracing::warn!(error = %err, "claiming outbox messages failed"),
            }
        }
        if room > 0 && claimed == room {
            continue; // more may be due right now
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            () = assent.message_dispatch.notified() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
    }
    // Sends in progress get a moment to finish; unfinished messages keep
    // their lease and are sent again once it runs out.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
}

/// Sends one claimed message and records the outcome.
async fn deliver(dispatcher: Arc<Dispatcher>, message: ClaimedMessage) {
    if let Err(err) = attempt(&dispatcher, &message).await {
        tracing::warn!(
            error = %err,
            outbox_id = message.id,
            "recording a message's outcome failed; it is due again when its lease runs out"
        );
    }
}

async fn attempt(dispatcher: &Dispatcher, claimed: &ClaimedMessage) -> Result<(), StorageError> {
    let assent = &dispatcher.assent;
    let store = &assent.store;
    let id = claimed.id;
    let lease = claimed.locked_until;
    let now = assent.clock.now_ms();
    let channel_label = claimed.channel.clone();
    let finish = |state: MessageState, error: Option<String>, at: i64| async move {
        if !store
            .finish_message(id, lease, state, error.as_deref(), at)
            .await?
        {
            tracing::info!(
                outbox_id = id,
                "a message's lease ran out before its outcome was recorded"
            );
        }
        Ok::<(), StorageError>(())
    };

    if claimed.expires_at <= now {
        metrics::counter!("assent_messages_dropped_total", "channel" => channel_label).increment(1);
        tracing::info!(outbox_id = id, channel = %claimed.channel, "message expired before it was sent: dropped");
        return finish(
            MessageState::Dropped,
            Some("expired before it was sent".into()),
            now,
        )
        .await;
    }
    let message = match open(assent, claimed) {
        Ok(message) => message,
        Err(reason) => {
            metrics::counter!("assent_messages_failed_total", "channel" => channel_label, "reason" => "unreadable")
                .increment(1);
            tracing::error!(outbox_id = id, %reason, "an outbox message cannot be read: given up");
            return finish(MessageState::Failed, Some(reason), now).await;
        }
    };
    let channel = message.channel();
    let to = mask_recipient(message.recipient());
    let outcome = match (&message, &dispatcher.email, &dispatcher.sms) {
        (OutgoingMessage::Email(email), Some(sender), _) => sender.send(email).await,
        (OutgoingMessage::Sms(sms), _, Some(sender)) => sender.send(sms).await,
        // Claimed only for the channels this process sends.
        _ => SendOutcome::Retry {
            after: None,
            reason: format!("no {channel} provider in this process"),
        },
    };
    let done = assent.clock.now_ms();
    let label = channel.as_str();
    match outcome {
        SendOutcome::Sent => {
            metrics::counter!("assent_messages_sent_total", "channel" => label).increment(1);
            tracing::info!(outbox_id = id, %channel, %to, attempts = claimed.attempts, "message sent");
            finish(MessageState::Sent, None, done).await
        }
        SendOutcome::Failed { reason } => {
            metrics::counter!("assent_messages_failed_total", "channel" => label, "reason" => "refused")
                .increment(1);
            tracing::warn!(outbox_id = id, %channel, %to, %reason, "message refused: given up");
            finish(MessageState::Failed, Some(reason), done).await
        }
        SendOutcome::Retry { after, reason } => {
            let next = done + retry_delay(claimed.attempts, after).as_millis() as i64;
            if claimed.attempts >= MAX_ATTEMPTS || next >= claimed.expires_at {
                metrics::counter!("assent_messages_failed_total", "channel" => label, "reason" => "retries_exhausted")
                    .increment(1);
                let why = if claimed.attempts >= MAX_ATTEMPTS {
                    format!("gave up after {} attempts: {reason}", claimed.attempts)
                } else {
                    format!("gave up before expiry: {reason}")
                };
                tracing::warn!(outbox_id = id, %channel, %to, reason = %why, "message not delivered");
                return finish(MessageState::Failed, Some(why), done).await;
            }
            metrics::counter!("assent_messages_retried_total", "channel" => label).increment(1);
            tracing::info!(
                outbox_id = id,
                %channel,
                %to,
                %reason,
                attempts = claimed.attempts,
                retry_in_ms = next - done,
                "message will be retried"
            );
            if !store.retry_message(id, lease, next, &reason).await? {
                tracing::info!(
                    outbox_id = id,
                    "a message's lease ran out before its outcome was recorded"
                );
            }
            Ok(())
        }
    }
}

/// The message a claimed row carries, or why it cannot be read (never what
/// it says).
fn open(assent: &Assent, claimed: &ClaimedMessage) -> Result<OutgoingMessage, String> {
    let channel: Channel = claimed
        .channel
        .parse()
        .map_err(|e: String| format!("stored with {e}"))?;
    let plain = assent.keys.open_message(&claimed.payload).map_err(|_| {
        "the payload does not open with this process's key-encryption key".to_string()
    })?;
    let message: OutgoingMessage = serde_json::from_slice(&plain)
        .map_err(|_| "the payload is not a message this server reads".to_string())?;
    if message.channel() != channel {
        return Err(format!(
            "stored as {channel} but holds a {} message",
            message.channel()
        ));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute_and_honours_retry_after() {
        let delays: Vec<u64> = (1..=9).map(|a| retry_delay(a, None).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(0, None), Duration::from_secs(1));
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(retry_delay(1, Some(Duration::ZERO)), Duration::from_secs(1));
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn details_are_added_to_failures_only() {
        let mut failed = SendOutcome::Failed {
            reason: "HTTP 400".into(),
        };
        failed.add_detail("Twilio error 21211");
        assert_eq!(
            failed,
            SendOutcome::Failed {
                reason: "HTTP 400 (Twilio error 21211)".into()
            }
        );
        let mut sent = SendOutcome::Sent;
        sent.add_detail("x");
        assert_eq!(sent, SendOutcome::Sent);
    }
}
