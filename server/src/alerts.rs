//! Telling the operator that something needs a human: today, a user whose
//! new requests were paused (muted) after "This wasn't me" or several
//! denials in a row, which is what a push-bombing attack looks like from
//! the user's side. Every alert is a warn log line and a Prometheus counter;
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
        let Some((url, http)) = self.webhook.clone() else {
            return;
        };
        let body = json!({
            "type": "user_muted",
            "issuer": issuer.trim_end_matches('/'),
            "user": user_sub,
            "reason": reason,
            "muted_until": rfc3339(until_ms),
            "at": rfc3339(now_ms),
        });
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
