//! Telling the operator that something needs a human: a user whose new
//! requests were paused (muted) after "This wasn't me" or several denials
//! in a row, which is what a push-bombing attack looks like from the
//! user's side; and a user whose second factor was locked after repeated
//! wrong codes, which is what guessing at it looks like. Every alert is a warn log line and a Prometheus counter;
//! with `alert_webhook_url` set, it is also POSTed as JSON, through the same
//! SSRF guard as Web Push (public `https` only, unless the host is listed in
//! `push_allowed_hosts`).

use std::{sync::Arc, time::Duration};

use reqwest::Url;
use serde_json::json;

use crate::{
    clock::rfc3339,
    config::Settings,
    outbound::{guarded_client, EndpointPolicy, GuardedClient},
};

/// Where alerts are posted, if anywhere.
#[derive(Debug)]
pub struct AlertSink {
    webhook: Option<(Url, GuardedClient)>,
}

impl AlertSink {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let webhook = match &settings.alert_webhook_url {
            None => None,
            Some(url) => {
                let url = Url::parse(url)
                    .map_err(|e| anyhow::anyhow!("alert_webhook_url {url:?}: {e}"))?;
                let policy = Arc::new(EndpointPolicy::new(&settings.push_allowed_hosts));
                policy.check(&url).map_err(|e| {
                    anyhow::anyhow!(
                        "alert_webhook_url: {e} (list the host in push_allowed_hosts to allow it)"
                    )
                })?;
                Some((
                    url,
                    guarded_client(policy, WEBHOOK_TIMEOUT, settings.outbound_proxy.as_ref())?,
                ))
            }
        };
        Ok(Self { webhook })
    }
}

const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

impl AlertSink {
    /// A user's new requests are refused until `until_ms` (`reason`: `not_me`
    /// or `repeated_denials`). Returns at once; the webhook is posted in the
    /// background and a failure is logged, never retried into a storm.
    pub fn user_muted(
        &self,
        issuer: &str,
        user_sub: &str,
        reason: &'static str,
        until_ms: i64,
        now_ms: i64,
    ) {
        tracing::warn!(
            user = user_sub,
            reason,
            until = %rfc3339(until_ms),
            "new requests for the user are paused: possible push bombing"
        );
        metrics::counter!("assent_users_muted_total", "reason" => reason).increment(1);
        self.post(json!({
            "type": "user_muted",
            "issuer": issuer.trim_end_matches('/'),
            "user": user_sub,
            "reason": reason,
            "muted_until": rfc3339(until_ms),
            "at": rfc3339(now_ms),
        }));
    }

    /// A user's MFA grants are refused until `until_ms` after repeated
    /// wrong codes (logins in flight included).
    pub fn mfa_locked_out(&self, issuer: &str, user_sub: &str, until_ms: i64, now_ms: i64) {
        tracing::warn!(
            user = user_sub,
            until = %rfc3339(until_ms),
            "the user's second factor is locked after repeated wrong codes: possible guessing"
        );
        metrics::counter!("assent_mfa_lockouts_total").increment(1);
        self.post(json!({
            "type": "mfa_locked_out",
            "issuer": issuer.trim_end_matches('/'),
            "user": user_sub,
            "locked_until": rfc3339(until_ms),
            "at": rfc3339(now_ms),
        }));
    }

    /// Posts `body` to the webhook, if there is one, in the background; a
    /// failure is logged, never retried into a storm.
    fn post(&self, body: serde_json::Value) {
        let Some((url, http)) = self.webhook.clone() else {
            return;
        };
        tokio::spawn(async move {
            match http.send(http.post(url).json(&body)).await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(status = %response.status(), "the alert webhook refused an alert")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the alert webhook is unreachable")
                }
            }
        });
    }
}
