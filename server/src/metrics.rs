//! Prometheus metrics (`GET /metrics`), recorded with the `metrics` crate.

use std::sync::{atomic::Ordering, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::Assent;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls are no-ops).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("assent_push_delivery_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ],
            )
            .expect("valid buckets")
            .install_recorder()
            .expect("a metrics recorder");
        metrics::describe_counter!(
            "assent_push_sent_total",
            "Web Push messages accepted by push services"
        );
        metrics::describe_counter!(
            "assent_push_failed_total",
            "Web Push messages not delivered, by reason"
        );
        metrics::describe_counter!(
            "assent_push_retried_total",
            "Web Push sends scheduled for another attempt"
        );
        metrics::describe_histogram!(
            "assent_push_delivery_seconds",
            metrics::Unit::Seconds,
            "Time from the back-channel request to the push service's acceptance"
        );
        metrics::describe_counter!(
            "assent_messages_sent_total",
            "E-mails and SMS with codes or sign-in links accepted by the SMTP server or SMS provider, by channel"
        );
        metrics::describe_counter!(
            "assent_messages_failed_total",
            "E-mails and SMS given up, by channel and reason (refused, retries_exhausted, unreadable)"
        );
        metrics::describe_counter!(
            "assent_messages_retried_total",
            "E-mail and SMS sends scheduled for another attempt, by channel"
        );
        metrics::describe_counter!(
            "assent_messages_dropped_total",
            "E-mails and SMS that expired before they were sent, by channel"
        );
        metrics::describe_gauge!(
            "assent_messages_pending",
            "E-mails and SMS waiting in the outbox, all processes together"
        );
        metrics::describe_counter!(
            "assent_requests_refused_total",
            "Back-channel requests refused by a flood limit or a mute, by reason"
        );
        metrics::describe_counter!(
            "assent_users_muted_total",
            "Users whose new requests were paused, by reason (not_me, repeated_denials)"
        );
        metrics::describe_counter!(
            "assent_match_code_failures_total",
            "Approvals refused for a wrong number-matching code"
        );
        metrics::describe_gauge!(
            "assent_pending_requests",
            "Pending, unexpired back-channel requests"
        );
        metrics::describe_gauge!(
            "assent_event_streams_open",
            "Device event streams open in this process"
        );
        handle
    })
}

/// The metrics in Prometheus text format, with the gauges read now.
pub async fn render(assent: &Assent) -> String {
    let handle = install();
    if let Ok(pending) = assent
        .store
        .count_pending_requests(assent.clock.now_ms())
        .await
    {
        metrics::gauge!("assent_pending_requests").set(pending as f64);
    }
    if let Ok(pending) = assent.store.count_pending_messages().await {
        metrics::gauge!("assent_messages_pending").set(pending as f64);
    }
    metrics::gauge!("assent_event_streams_open")
        .set(assent.delivery.open_streams.load(Ordering::Relaxed) as f64);
    handle.render()
}
