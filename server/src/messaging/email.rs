//! E-mail through the operator's SMTP server, with `lettre` (rustls on
//! aws-lc-rs, the webpki roots).
//!
//! The SMTP server is the operator's own choice (`smtp_host`), so it is not
//! put through the outbound guard that URLs from clients and devices go
//! through, nor through `outbound_proxy` (an HTTP proxy).
//!
//! An SMTP answer's text often quotes the recipient ("550 <a@example.com>:
//! mailbox unavailable"): only its code is kept as the reason.

use std::time::Duration;

use anyhow::Context;
use lettre::{
    message::{
        header::{ContentType, Header, HeaderName, HeaderValue},
        Attachment, Mailbox, MultiPart, SinglePart,
    },
    transport::smtp::{authentication::Credentials, AsyncSmtpTransport},
    Address, AsyncTransport, Message, Tokio1Executor,
};

use super::{dispatch::SendOutcome, EmailMessage};
use crate::{
    config::{Settings, SmtpTls},
    outbound::root_cause,
};

/// Sends e-mails through the configured SMTP server, one connection each.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// How long one whole send may take: `smtp_timeout` bounds each step.
    deadline: Duration,
}

impl SmtpSender {
    /// The sender of `settings`, or `None` when e-mail is not configured.
    pub fn new(settings: &Settings) -> anyhow::Result<Option<Self>> {
        let Some(host) = settings.smtp_host.as_deref() else {
            return Ok(None);
        };
        let from: Mailbox = settings
            .smtp_from
            .as_deref()
            .context("smtp_from is required with smtp_host")?
            .parse()
            .context("smtp_from must be a mailbox like \"Assent <no-reply@example.com>\"")?;
        let builder = match settings.smtp_tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .with_context(|| format!("smtp_host {host:?}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .with_context(|| format!("smtp_host {host:?}"))?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        let mut builder = builder
            .port(settings.smtp_port)
            .timeout(Some(settings.smtp_timeout));
        if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(Some(Self {
            transport: builder.build(),
            from,
            deadline: settings.smtp_timeout * 3,
        }))
    }

    /// The longest one send may take.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Sends `message` and says what came of it.
    pub async fn send(&self, message: &EmailMessage) -> SendOutcome {
        let mime = match self.build(message) {
            Ok(mime) => mime,
            Err(reason) => return SendOutcome::Failed { reason },
        };
        match tokio::time::timeout(self.deadline, self.transport.send(mime)).await {
            Err(_) => SendOutcome::Retry {
                after: None,
                reason: "SMTP timed out".into(),
            },
            Ok(Ok(_)) => SendOutcome::Sent,
            Ok(Err(err)) => outcome(failure_of(&err)),
        }
    }

    /// The MIME message: `multipart/alternative` of the plain text and the
    /// HTML, the HTML with its inline images in a `multipart/related`. The
    /// branding's sender name replaces `smtp_from`'s display name, never
    /// its address.
    pub fn build(&self, message: &EmailMessage) -> Result<Message, String> {
        let to: Address = message
            .to
            .parse()
            .map_err(|_| "the recipient is not an e-mail address".to_string())?;
        let from = match &message.sender_name {
            Some(name) => Mailbox::new(Some(name.clone()), self.from.email.clone()),
            None => self.from.clone(),
        };
        let html = SinglePart::html(message.html.clone());
        let alternative =
            MultiPart::alternative().singlepart(SinglePart::plain(message.text.clone()));
        let body = if message.inline_images.is_empty() {
            alternative.singlepart(html)
        } else {
            let mut related = MultiPart::related().singlepart(html);
            for image in &message.inline_images {
                let content_type = ContentType::parse(&image.content_type)
                    .map_err(|_| "an inline image's content type is not a MIME type".to_string())?;
                related = related.singlepart(
                    Attachment::new_inline(image.content_id.clone())
                        .body(image.bytes.clone(), content_type),
                );
            }
            alternative.multipart(related)
        };
        Message::builder()
            .from(from)
            .to(Mailbox::new(None, to))
            .subject(message.subject.clone())
            .message_id(None)
            .header(AutoSubmitted)
            .multipart(body)
            .map_err(|e| format!("building the e-mail: {e}"))
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation notice or
/// other automatic reply is sent back to the (unattended) sender.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// What went wrong with an SMTP send, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SmtpFailure {
    /// The server answered with an error code: 4xx transient, 5xx permanent.
    Reply {
        code: u16,
        transient: bool,
    },
    Timeout,
    /// Our side refused (a message lettre cannot send).
    Client,
    /// Connecting, TLS, an unreadable answer: the network's or the server's
    /// passing trouble as often as not.
    Connection(String),
}

fn failure_of(err: &lettre::transport::smtp::Error) -> SmtpFailure {
    if let Some(code) = err.status() {
        let code = code.to_string().parse().unwrap_or(0);
        SmtpFailure::Reply {
            code,
            transient: err.is_transient(),
        }
    } else if err.is_timeout() {
        SmtpFailure::Timeout
    } else if err.is_client() {
        SmtpFailure::Client
    } else if err.is_response() {
        // The unreadable answer itself may quote the recipient: not kept.
        SmtpFailure::Connection("an answer that is not SMTP".into())
    } else {
        SmtpFailure::Connection(root_cause(err))
    }
}

/// Transient failures (4xx, timeouts, connection trouble) are retried;
/// 5xx answers and client errors are final.
pub(crate) fn outcome(failure: SmtpFailure) -> SendOutcome {
    match failure {
        SmtpFailure::Reply {
            code,
            transient: true,
        } => SendOutcome::Retry {
            after: None,
            reason: format!("SMTP {code}"),
        },
        SmtpFailure::Reply {
            code,
            transient: false,
        } => SendOutcome::Failed {
            reason: format!("SMTP {code}"),
        },
        SmtpFailure::Timeout => SendOutcome::Retry {
            after: None,
            reason: "SMTP timed out".into(),
        },
        SmtpFailure::Client => SendOutcome::Failed {
            reason: "SMTP client error: the message could not be sent as built".into(),
        },
        SmtpFailure::Connection(why) => SendOutcome::Retry {
            after: None,
            reason: format!("SMTP connection failed: {why}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn settings() -> Settings {
        Settings {
            smtp_host: Some("127.0.0.1".into()),
            smtp_port: 2525,
            smtp_tls: SmtpTls::None,
            smtp_from: Some("Assent <no-reply@example.com>".into()),
            ..Settings::default()
        }
    }

    #[test]
    fn smtp_answers_are_classified_for_retrying() {
        assert!(matches!(
            outcome(SmtpFailure::Reply { code: 451, transient: true }),
            SendOutcome::Retry { reason, .. } if reason == "SMTP 451"
        ));
        assert!(matches!(
            outcome(SmtpFailure::Reply { code: 550, transient: false }),
            SendOutcome::Failed { reason } if reason == "SMTP 550"
        ));
        assert!(matches!(
            outcome(SmtpFailure::Timeout),
            SendOutcome::Retry { .. }
        ));
        assert!(matches!(
            outcome(SmtpFailure::Connection("Connection refused".into())),
            SendOutcome::Retry { .. }
        ));
        assert!(matches!(
            outcome(SmtpFailure::Client),
            SendOutcome::Failed { .. }
        ));
    }

    #[test]
    fn the_sender_name_replaces_only_the_display_name() {
        let sender = SmtpSender::new(&settings()).unwrap().unwrap();
        let mut message = EmailMessage {
            to: "alice@example.com".into(),
            subject: "Your code".into(),
            html: "<p>123456</p>".into(),
            text: "123456".into(),
            sender_name: Some("Acme, \"Login\"".into()),
            inline_images: vec![],
        };
        let mime = String::from_utf8(sender.build(&message).unwrap().formatted()).unwrap();
        // The name, quotes and all, as one encoded word; the address as it was.
        let name = base64::engine::general_purpose::STANDARD.encode("Acme, \"Login\"");
        assert!(
            mime.contains(&format!("From: =?utf-8?b?{name}?= <no-reply@example.com>")),
            "{mime}"
        );
        assert!(mime.contains("multipart/alternative"));
        assert!(mime.contains("Auto-Submitted: auto-generated"), "{mime}");
        assert!(!mime.contains("multipart/related"));
        message.sender_name = None;
        let mime = String::from_utf8(sender.build(&message).unwrap().formatted()).unwrap();
        assert!(
            mime.contains("From: Assent <no-reply@example.com>"),
            "{mime}"
        );
        message.to = "not an address".into();
        assert!(sender.build(&message).is_err());
    }
}
