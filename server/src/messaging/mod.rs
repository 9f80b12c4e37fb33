//! Delivering one-time codes and sign-in links for passwordless login: by
//! e-mail through an SMTP server ([`email`]) and by SMS through an HTTP
//! provider ([`sms`]), behind a durable outbox.
//!
//! [`queue`] writes the message to the database (the `message_outbox`
//! table, its payload sealed with the key-encryption key) and wakes this
//! process's [`dispatch`]er, which sends it, retries what failed for a
//! passing reason, and gives up on what was refused. The database is the
//! source of truth: a message queued by another process, or left leased by
//! a process that was killed, is found by the dispatcher's periodic check.
//! [`templates`] renders the e-mails (HTML and plain text, with the
//! client's branding) and the SMS.
//!
//! What a message says is never logged, and nor is its recipient in full:
//! logs name the outbox id, the channel and a masked recipient
//! ([`mask_recipient`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{config::Settings, state::Assent, storage::StorageError};

pub mod dispatch;
pub mod email;
pub mod sms;
pub mod templates;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Sms];

    /// The stored and logged name: `email` or `sms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel {s:?}"))
    }
}

/// An e-mail: one recipient, a subject, HTML and plain-text bodies.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    /// The recipient's address (`user@example.com`, no display name).
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Replaces the display name of `smtp_from` (never its address).
    pub sender_name: Option<String>,
    /// inline images referenced as cid: in html
    pub inline_images: Vec<InlineImage>,
}

/// An image sent inside the e-mail (`multipart/related`), shown by the HTML
/// body as `<img src="cid:CONTENT_ID">`: no remote URL for a mail client to
/// fetch (and to tell the sender when it was read), no `data:` URI (which
/// many clients refuse).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineImage {
    pub content_id: String,
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub content_type: String,
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

/// A text message.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessage {
    /// E.164: `+` and 8 to 15 digits.
    pub to: String,
    pub body: String,
    /// Replaces `sms_from` as the sender (an alphanumeric sender id or a number).
    pub sender_id: Option<String>,
}

/// A message for [`queue`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutgoingMessage {
    Email(EmailMessage),
    Sms(SmsMessage),
}

impl OutgoingMessage {
    pub fn channel(&self) -> Channel {
        match self {
            OutgoingMessage::Email(_) => Channel::Email,
            OutgoingMessage::Sms(_) => Channel::Sms,
        }
    }

    /// The recipient: an e-mail address or a phone number (never log it
    /// whole: see [`mask_recipient`]).
    pub fn recipient(&self) -> &str {
        match self {
            OutgoingMessage::Email(m) => &m.to,
            OutgoingMessage::Sms(m) => &m.to,
        }
    }

    /// What no provider would accept, found before the message is queued.
    fn check(&self) -> Result<(), String> {
        match self {
            OutgoingMessage::Email(m) => {
                m.to.parse::<lettre::Address>()
                    .map_err(|_| "the recipient is not an e-mail address".to_string())?;
                if m.subject.trim().is_empty() || m.subject.chars().any(char::is_control) {
                    return Err("the subject must be one line of text".into());
                }
                if m.sender_name
                    .as_deref()
                    .is_some_and(|n| n.chars().any(char::is_control))
                {
                    return Err("the sender name must be one line of text".into());
                }
                for image in &m.inline_images {
                    let id_ok = !image.content_id.is_empty()
                        && image.content_id.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@')
                        });
                    if !id_ok {
                        return Err(
                            "an inline image's content id must be letters, digits and .-_@".into(),
                        );
                    }
                    image
                        .content_type
                        .parse::<lettre::message::header::ContentType>()
                        .map_err(|_| {
                            "an inline image's content type is not a MIME type".to_string()
                        })?;
                }
                Ok(())
            }
            OutgoingMessage::Sms(m) => {
                if !is_e164(&m.to) {
                    return Err(
                        "the recipient is not an E.164 phone number (+ and 8-15 digits)".into(),
                    );
                }
                if m.body.trim().is_empty() || m.body.chars().count() > MAX_SMS_CHARS {
                    return Err(format!("an SMS body is 1 to {MAX_SMS_CHARS} characters"));
                }
                if m.sender_id.as_deref().is_some_and(|s| {
                    s.is_empty() || s.len() > 64 || s.chars().any(char::is_control)
                }) {
                    return Err("the SMS sender id must be one short line".into());
                }
                Ok(())
            }
        }
    }
}

/// Longest SMS body accepted: ten concatenated segments, what providers
/// take at most (Twilio: 1,600 characters).
pub const MAX_SMS_CHARS: usize = 1600;

/// Why a message was not queued.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// No provider is configured for this channel (`smtp_host`, `sms_provider`).
    #[error("no {0} provider is configured")]
    NotConfigured(Channel),
    /// The message could never be sent as it is (a malformed address, a
    /// multi-line subject): the caller's mistake, refused before anything
    /// was written.
    #[error("the message cannot be sent: {0}")]
    InvalidMessage(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Whether `channel` has a provider in `settings`.
pub fn channel_configured(settings: &Settings, channel: Channel) -> bool {
    match channel {
        Channel::Email => settings.smtp_host.is_some() && settings.smtp_from.is_some(),
        Channel::Sms => settings.sms_provider.is_some() && settings.sms_endpoint().is_some(),
    }
}

/// Queues the message in the database outbox (payload sealed, see below) and wakes this process's dispatcher.
/// `expires_at_ms`: after this the message is not worth sending (the code in it has expired): dropped instead.
/// Returns Err(MessagingError::NotConfigured(Channel)) when that channel has no provider configured (checked before writing).
///
/// The payload is the whole message, recipient included, serialized and
/// sealed with the key-encryption key ([`crate::keys::Keys::seal_message`]).
/// Once queued, the message is sent at least once by some process (at most
/// once in the common case: a sender killed after the provider accepted the
/// message but before it recorded so sends it again when its lease runs out).
pub async fn queue(
    assent: &Assent,
    message: &OutgoingMessage,
    expires_at_ms: i64,
) -> Result<(), MessagingError> {
    let channel = message.channel();
    if !channel_configured(&assent.settings, channel) {
        return Err(MessagingError::NotConfigured(channel));
    }
    message.check().map_err(MessagingError::InvalidMessage)?;
    let plain = serde_json::to_vec(message).expect("a message serializes");
    let sealed = assent.keys.seal_message(&plain);
    let now = assent.clock.now_ms();
    let id = assent
        .store
        .insert_message(channel.as_str(), &sealed, now, expires_at_ms)
        .await?;
    tracing::info!(
        outbox_id = id,
        %channel,
        to = %mask_recipient(message.recipient()),
        "message queued"
    );
    assent.message_dispatch.notify_one();
    Ok(())
}

/// How a message that cannot be queued is answered to the client.
pub fn into_oauth_error(e: MessagingError) -> crate::error::OAuthError {
    use crate::error::OAuthError;
    match e {
        MessagingError::NotConfigured(channel) => OAuthError::invalid_request(format!(
            "this server is not configured to send {channel} messages"
        )),
        MessagingError::InvalidMessage(why) => {
            OAuthError::invalid_request(format!("the message cannot be sent: {why}"))
        }
        MessagingError::Storage(e) => e.into(),
    }
}

/// A recipient as logs show it: `a***@example.com`, `+4915…89`.
pub fn mask_recipient(recipient: &str) -> String {
    if let Some((local, domain)) = recipient.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = recipient.chars().collect();
    if chars.len() < 9 {
        return "…".into();
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}…{tail}")
}

/// Whether `address` is one the mail sender can address (the test
/// [`queue`] applies), so that callers can refuse it before anything else.
pub fn is_email_address(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}

/// `+` and 8 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// Never a body, a code or a full recipient.
impl fmt::Debug for EmailMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailMessage")
            .field("to", &mask_recipient(&self.to))
            .field("inline_images", &self.inline_images.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsMessage")
            .field("to", &mask_recipient(&self.to))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for InlineImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineImage")
            .field("content_id", &self.content_id)
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutgoingMessage::Email(m) => m.fmt(f),
            OutgoingMessage::Sms(m) => m.fmt(f),
        }
    }
}

/// Image bytes as base64 in the serialized payload (a JSON array of numbers
/// would be four times larger).
mod base64_bytes {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_masked_in_logs() {
        assert_eq!(mask_recipient("alice@example.com"), "a***@example.com");
        assert_eq!(mask_recipient("+4915112345689"), "+4915…89");
        assert_eq!(mask_recipient("+12345"), "…");
        assert!(!mask_recipient("+4915112345689").contains("1123456"));
    }

    #[test]
    fn e164_numbers_are_recognised() {
        assert!(is_e164("+4915112345678"));
        assert!(is_e164("+14155550100"));
        assert!(!is_e164("004915112345678"));
        assert!(!is_e164("+49 151 1234"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1234567"));
    }

    #[test]
    fn messages_no_provider_would_take_are_refused_before_queueing() {
        let email = |to: &str, subject: &str| {
            OutgoingMessage::Email(EmailMessage {
                to: to.into(),
                subject: subject.into(),
                html: "<p>x</p>".into(),
                text: "x".into(),
                sender_name: None,
                inline_images: vec![],
            })
        };
        assert!(email("a@example.com", "Your code").check().is_ok());
        assert!(email("not an address", "Your code").check().is_err());
        assert!(email("a@example.com", "Your\r\nBcc: x@evil.example")
            .check()
            .is_err());
        let sms = |to: &str, body: &str| {
            OutgoingMessage::Sms(SmsMessage {
                to: to.into(),
                body: body.into(),
                sender_id: None,
            })
        };
        assert!(sms("+4915112345678", "123456 is your code").check().is_ok());
        assert!(sms("015112345678", "123456").check().is_err());
        assert!(sms("+4915112345678", &"x".repeat(MAX_SMS_CHARS + 1))
            .check()
            .is_err());
    }

    #[test]
    fn the_payload_round_trips_with_images_as_base64() {
        let message = OutgoingMessage::Email(EmailMessage {
            to: "a@example.com".into(),
            subject: "s".into(),
            html: "h".into(),
            text: "t".into(),
            sender_name: Some("Acme".into()),
            inline_images: vec![InlineImage {
                content_id: "logo".into(),
                content_type: "image/png".into(),
                bytes: vec![0x89, b'P', b'N', b'G'],
            }],
        });
        let json = serde_json::to_string(&message).unwrap();
        assert!(json.contains("\"iVBORw==\""), "{json}");
        assert_eq!(
            serde_json::from_str::<OutgoingMessage>(&json).unwrap(),
            message
        );
        // Debug shows no body and no full address.
        let debug = format!("{message:?}");
        assert!(!debug.contains("a@example.com") && debug.contains("a***@example.com"));
    }
}
