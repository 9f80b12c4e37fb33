//! Web Push (RFC 8030) with `aes128gcm` payloads (RFC 8291) and VAPID
//! (RFC 8292), through the `web-push` crate, sent with our own HTTP client so
//! that every send is bounded in time, never follows a redirect, reads at
//! most a few KiB of answer, and only reaches endpoints the policy allows.
//!
//! A push is only a wake-up call: the payload names a request id and its
//! expiry, nothing a device would act on without fetching the signed
//! challenge.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::anyhow;
use assent_shared::{jose::sha256_b64url, protocol::PushSubscription};
use reqwest::Url;
use web_push::{
    request_builder::build_request, ContentEncoding, PartialVapidSignatureBuilder,
    SubscriptionInfo, Urgency, VapidSignature, VapidSignatureBuilder, WebPushMessageBuilder,
};

/// A VAPID JWT is valid 12 hours; one is reused per push service for this
/// long, saving an ECDSA signature per message.
const VAPID_REUSE: Duration = Duration::from_secs(3600);
/// Bound on the cache (one entry per push service origin).
const VAPID_CACHE_MAX: usize = 1024;

use crate::{
    cache::BoundedCache,
    config::Settings,
    keys::KeySet,
    outbound::{guarded_client, EndpointPolicy, GuardedClient, OutboundError},
    secrets::b64url,
};

/// Longest answer body read from a push service.
const MAX_RESPONSE_BYTES: usize = 4096;

/// What a push service answered, classified for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Delivered,
    /// 404/410: the subscription is gone; stop using it.
    Gone(u16),
    /// 429, 5xx, timeouts, connection errors: try again later.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Anything else (400, 413, 401/403, redirects, refused endpoints): give up.
    Failed {
        reason: String,
    },
}

/// Sends Web Push messages.
pub struct PushService {
    http: GuardedClient,
    vapid: PartialVapidSignatureBuilder,
    vapid_subject: String,
    vapid_public_key: String,
    policy: Arc<EndpointPolicy>,
    vapid_cache: BoundedCache<(VapidSignature, Instant)>,
}

impl PushService {
    pub fn new(keys: &KeySet, settings: &Settings, issuer: &str) -> anyhow::Result<Self> {
        let vapid_key = keys.vapid_key();
        let scalar = vapid_key
            .ec_private_scalar()
            .ok_or_else(|| anyhow!("the VAPID key must be ES256"))?;
        let vapid = VapidSignatureBuilder::from_base64_no_sub(&b64url(&scalar))
            .map_err(|e| anyhow!("loading the VAPID key: {e}"))?;
        let policy = Arc::new(EndpointPolicy::new(&settings.push_allowed_hosts));
        let http = guarded_client(
            policy.clone(),
            settings.push_timeout,
            settings.outbound_proxy.as_ref(),
        )?;
        let vapid_subject = settings.push_vapid_subject.clone().unwrap_or_else(|| {
            if issuer.starts_with("https://") {
                issuer.to_string()
            } else {
                "mailto:operator@assent.invalid".into()
            }
        });
        Ok(Self {
            http,
            vapid,
            vapid_subject,
            vapid_public_key: vapid_key.ec_public_point_b64().expect("ES256"),
            policy,
            vapid_cache: BoundedCache::new(VAPID_CACHE_MAX),
        })
    }

    /// The VAPID public key devices subscribe with (`applicationServerKey`).
    pub fn vapid_public_key(&self) -> &str {
        &self.vapid_public_key
    }

    /// Sends one encrypted message. `topic` lets a newer message replace an
    /// older undelivered one; `ttl` is how long the push service may keep it.
    pub async fn send(
        &self,
        subscription: &PushSubscription,
        payload: &[u8],
        ttl: Duration,
        topic: &str,
    ) -> SendOutcome {
        let url = match Url::parse(&subscription.endpoint) {
            Ok(url) => url,
            Err(_) => return failed("the endpoint is not a URL"),
        };
        if let Err(reason) = self.policy.check(&url) {
            return SendOutcome::Failed { reason };
        }
        let request = match self.build(subscription, &url, payload, ttl, topic) {
            Ok(request) => request,
            Err(e) => return failed(&format!("building the message: {e}")),
        };
        let mut builder = self.http.post(url.clone());
        for (name, value) in request.headers() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let response = match self.http.send(builder.body(request.into_body())).await {
            Ok(response) => response,
            Err(OutboundError::TimedOut) => {
                return SendOutcome::Retry {
                    after: None,
                    reason: "timed out".into(),
                }
            }
            Err(OutboundError::Refused(why)) => return failed(&format!("endpoint refused: {why}")),
            Err(OutboundError::Failed(why)) => {
                return SendOutcome::Retry {
                    after: None,
                    reason: format!("connection failed: {why}"),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        drain_capped(response).await;
        classify(status, retry_after, url.host_str().unwrap_or("?"))
    }

    fn build(
        &self,
        subscription: &PushSubscription,
        url: &Url,
        payload: &[u8],
        ttl: Duration,
        topic: &str,
    ) -> Result<http02::Request<Vec<u8>>, web_push::WebPushError> {
        let info = SubscriptionInfo::new(
            subscription.endpoint.as_str(),
            subscription.keys.p256dh.as_str(),
            subscription.keys.auth.as_str(),
        );
        let signature = self.vapid_signature(&info, url)?;
        let mut message = WebPushMessageBuilder::new(&info);
        message.set_payload(ContentEncoding::Aes128Gcm, payload);
        // Never the crate's 28-day default: a wake-up for an expired request is noise.
        message.set_ttl(ttl.as_secs().clamp(1, u64::from(u32::MAX)) as u32);
        message.set_urgency(Urgency::High);
        message.set_topic(topic.to_string());
        message.set_vapid_signature(signature);
        Ok(build_request::<Vec<u8>>(message.build()?))
    }
}

impl PushService {
    /// The VAPID signature for the push service at `url`'s origin, reused
    /// for [`VAPID_REUSE`].
    fn vapid_signature(
        &self,
        info: &SubscriptionInfo,
        url: &Url,
    ) -> Result<VapidSignature, web_push::WebPushError> {
        let origin = url.origin().ascii_serialization();
        if let Some(cached) = self.vapid_cache.get(&origin) {
            let (signature, made) = &*cached;
            if made.elapsed() < VAPID_REUSE {
                return Ok(signature.clone());
            }
        }
        let mut builder = self.vapid.clone().add_sub_info(info);
        builder.add_claim("sub", self.vapid_subject.as_str());
        // The crate drops non-default ports from `aud`; receivers compare the origin.
        builder.add_claim("aud", origin.as_str());
        let signature = builder.build()?;
        self.vapid_cache
            .put(origin, Arc::new((signature.clone(), Instant::now())));
        Ok(signature)
    }
}

/// The `Topic` of a device's messages: at most 32 base64url characters.
pub fn topic_for_device(device_id: &str) -> String {
    sha256_b64url(device_id.as_bytes())[..32].to_string()
}

fn failed(reason: &str) -> SendOutcome {
    SendOutcome::Failed {
        reason: reason.to_string(),
    }
}

/// Reads (and discards) at most [`MAX_RESPONSE_BYTES`] of the answer.
async fn drain_capped(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read >= MAX_RESPONSE_BYTES {
            break;
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn classify(status: u16, retry_after: Option<Duration>, host: &str) -> SendOutcome {
    match status {
        200..=299 => SendOutcome::Delivered,
        404 | 410 => SendOutcome::Gone(status),
        429 | 500..=599 => SendOutcome::Retry {
            after: retry_after,
            reason: format!("HTTP {status}"),
        },
        300..=399 => SendOutcome::Failed {
            reason: format!("HTTP {status} redirect refused"),
        },
        _ => {
            tracing::error!(
                status,
                endpoint_host = host,
                "push service refused the message"
            );
            SendOutcome::Failed {
                reason: format!("HTTP {status}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_policy_requires_https_and_public_addresses_unless_allowed() {
        let policy = EndpointPolicy::new(&["127.0.0.1:9000".into(), "push.lan".into()]);
        let check = |u: &str| policy.check(&Url::parse(u).unwrap());
        assert!(check("https://fcm.googleapis.com/fcm/send/x").is_ok());
        assert!(check("http://fcm.googleapis.com/x").is_err());
        assert!(check("https://127.0.0.1/x").is_err());
        assert!(check("https://10.0.0.5/x").is_err());
        assert!(check("http://127.0.0.1:9000/x").is_ok());
        assert!(check("http://127.0.0.1:9001/x").is_err());
        assert!(check("http://push.lan:8080/x").is_ok());
        assert!(check("ftp://push.example/x").is_err());
    }

    #[test]
    fn answers_are_classified_as_the_outbox_needs() {
        assert_eq!(classify(201, None, "h"), SendOutcome::Delivered);
        assert_eq!(classify(410, None, "h"), SendOutcome::Gone(410));
        assert!(
            matches!(classify(429, Some(Duration::from_secs(3)), "h"), SendOutcome::Retry { after: Some(d), .. } if d.as_secs() == 3)
        );
        assert!(matches!(
            classify(503, None, "h"),
            SendOutcome::Retry { .. }
        ));
        assert!(matches!(
            classify(307, None, "h"),
            SendOutcome::Failed { .. }
        ));
        assert!(matches!(
            classify(413, None, "h"),
            SendOutcome::Failed { .. }
        ));
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(topic_for_device("device").len(), 32);
    }
}
