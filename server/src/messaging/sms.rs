//! SMS through an HTTP provider: a webhook of the operator's (a JSON POST
//! that their own gateway turns into a text message) or Twilio's Messages
//! API.
//!
//! Every request goes through the outbound guard ([`crate::outbound`]):
//! `https` on public addresses unless the host is listed in
//! `sms_allowed_hosts`, no redirects, `sms_timeout` for the whole exchange,
//! `outbound_proxy` when set. At most [`MAX_RESPONSE_BYTES`] of an answer
//! are read; from Twilio's only its numeric error code is kept (its
//! message quotes the phone number).

use std::{sync::Arc, time::Duration};

use anyhow::{anyhow, Context};
use reqwest::Url;
use serde_json::json;

use super::{dispatch::SendOutcome, SmsMessage};
use crate::{
    config::{Secret, Settings, SmsProvider},
    outbound::{guarded_client, EndpointPolicy, GuardedClient, OutboundError},
    push::parse_retry_after,
};

/// Longest answer body read from an SMS provider.
const MAX_RESPONSE_BYTES: usize = 4096;

/// Sends SMS through the configured provider.
pub struct SmsSender {
    provider: SmsProvider,
    /// Where each message is POSTed.
    url: Url,
    http: GuardedClient,
    token: Option<Secret>,
    account_sid: Option<String>,
    from: Option<String>,
    timeout: Duration,
}

impl SmsSender {
    /// The sender of `settings`, or `None` when SMS is not configured.
    /// Fails (at start-up) when the provider's URL is one the outbound
    /// guard refuses.
    pub fn new(settings: &Settings) -> anyhow::Result<Option<Self>> {
        let Some(provider) = settings.sms_provider else {
            return Ok(None);
        };
        let base = settings
            .sms_endpoint()
            .context("sms_url is required with sms_provider = webhook")?;
        let url = match provider {
            SmsProvider::Webhook => base.to_string(),
            SmsProvider::Twilio => {
                let sid = settings
                    .sms_account_sid
                    .as_deref()
                    .context("sms_account_sid is required with sms_provider = twilio")?;
                format!(
                    "{}/2010-04-01/Accounts/{sid}/Messages.json",
                    base.trim_end_matches('/')
                )
            }
        };
        let url = Url::parse(&url).map_err(|e| anyhow!("sms_url {base:?}: {e}"))?;
        let policy = Arc::new(EndpointPolicy::new(&settings.sms_allowed_hosts));
        policy.check(&url).map_err(|e| {
            anyhow!("sms_url: {e} (list the host in sms_allowed_hosts to allow it)")
        })?;
        let http = guarded_client(
            policy,
            settings.sms_timeout,
            settings.outbound_proxy.as_ref(),
        )?;
        Ok(Some(Self {
            provider,
            url,
            http,
            token: settings.sms_token.clone(),
            account_sid: settings.sms_account_sid.clone(),
            from: settings.sms_from.clone(),
            timeout: settings.sms_timeout,
        }))
    }

    /// The longest one send may take.
    pub fn deadline(&self) -> Duration {
        self.timeout
    }

    /// Sends `message` and says what came of it.
    pub async fn send(&self, message: &SmsMessage) -> SendOutcome {
        let sender = message.sender_id.as_deref().or(self.from.as_deref());
        let request = match self.provider {
            SmsProvider::Webhook => {
                let request = self.http.post(self.url.clone()).json(&json!({
                    "to": message.to,
                    "body": message.body,
                    "sender_id": sender,
                }));
                match &self.token {
                    Some(token) => request.bearer_auth(token.expose()),
                    None => request,
                }
            }
            SmsProvider::Twilio => {
                let mut form = vec![("To", message.to.as_str()), ("Body", message.body.as_str())];
                let service = self.from.as_deref().filter(|f| f.starts_with("MG"));
                if let Some(service) = service {
                    form.push(("MessagingServiceSid", service));
                }
                match (message.sender_id.as_deref(), service) {
                    // A sender id of the message's own: it names the sender,
                    // through the messaging service when there is one.
                    (Some(sender_id), _) => form.push(("From", sender_id)),
                    (None, Some(_)) => {}
                    (None, None) => form.extend(sender.map(|from| ("From", from))),
                }
                self.http
                    .post(self.url.clone())
                    .basic_auth(
                        self.account_sid.as_deref().unwrap_or_default(),
                        self.token.as_ref().map(Secret::expose),
                    )
                    .form(&form)
            }
        };
        let response = match self.http.send(request).await {
            Ok(response) => response,
            Err(OutboundError::TimedOut) => {
                return SendOutcome::Retry {
                    after: None,
                    reason: "timed out".into(),
                }
            }
            Err(OutboundError::Refused(why)) => {
                return SendOutcome::Failed {
                    reason: format!("endpoint refused: {why}"),
                }
            }
            Err(OutboundError::Failed(why)) => {
                return SendOutcome::Retry {
                    after: None,
                    reason: format!("connection failed: {why}"),
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_capped(response).await;
        let mut outcome = classify(status, retry_after);
        if self.provider == SmsProvider::Twilio {
            if let Some(code) = twilio_error_code(&body) {
                outcome.add_detail(&format!("Twilio error {code}"));
            }
        }
        outcome
    }
}

/// At most [`MAX_RESPONSE_BYTES`] of the answer's body.
async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    body
}

/// Twilio's numeric error code (`{"code": 21211, "message": ...}`): the
/// message itself quotes the phone number, the code does not.
fn twilio_error_code(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("code")?
        .as_u64()
}

/// 2xx sent; 408, 429 and 5xx retried (after `Retry-After` when given);
/// redirects and other 4xx are final.
pub(crate) fn classify(status: u16, retry_after: Option<Duration>) -> SendOutcome {
    match status {
        200..=299 => SendOutcome::Sent,
        408 | 429 | 500..=599 => SendOutcome::Retry {
            after: retry_after,
            reason: format!("HTTP {status}"),
        },
        300..=399 => SendOutcome::Failed {
            reason: format!("HTTP {status}: redirect refused"),
        },
        _ => SendOutcome::Failed {
            reason: format!("HTTP {status}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_answers_are_classified_for_retrying() {
        assert_eq!(classify(201, None), SendOutcome::Sent);
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(status, None), SendOutcome::Retry { .. }),
                "{status}"
            );
        }
        assert!(matches!(
            classify(429, Some(Duration::from_secs(7))),
            SendOutcome::Retry { after: Some(d), .. } if d.as_secs() == 7
        ));
        for status in [301, 400, 401, 403, 404, 413, 422] {
            assert!(
                matches!(classify(status, None), SendOutcome::Failed { .. }),
                "{status}"
            );
        }
        assert_eq!(
            twilio_error_code(
                br#"{"code": 21211, "message": "The 'To' number +15005550001 is not valid."}"#
            ),
            Some(21211)
        );
        assert_eq!(twilio_error_code(b"<html>"), None);
    }

    #[test]
    fn a_provider_url_the_guard_refuses_stops_the_start() {
        let settings = Settings {
            sms_provider: Some(SmsProvider::Webhook),
            sms_url: Some("http://127.0.0.1:9/sms".into()),
            ..Settings::default()
        };
        let refused = SmsSender::new(&settings).err().unwrap().to_string();
        assert!(refused.contains("sms_allowed_hosts"), "{refused}");
        let allowed = Settings {
            sms_allowed_hosts: vec!["127.0.0.1:9".into()],
            ..settings
        };
        assert!(SmsSender::new(&allowed).unwrap().is_some());
        let twilio = Settings {
            sms_provider: Some(SmsProvider::Twilio),
            sms_url: None,
            sms_account_sid: Some("AC123".into()),
            ..Settings::default()
        };
        let sender = SmsSender::new(&twilio).unwrap().unwrap();
        assert_eq!(
            sender.url.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
    }
}
