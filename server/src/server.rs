//! Running the HTTP server: bind, serve, housekeep, shut down gracefully.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    config::Settings,
    delivery::{self, Outbox},
    http, messaging,
    state::Assent,
    storage::Store,
};

/// A server running in this process (used by `serve` and by tests).
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub assent: Assent,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("server task panicked")?
    }
}

/// Binds `settings.listen` (port 0 picks a free port), opens the database,
/// loads keys, and serves until [`RunningServer::shutdown`].
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match settings.metrics_listen {
        Some(metrics) => Some(
            TcpListener::bind(metrics)
                .await
                .with_context(|| format!("binding metrics_listen {metrics}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let store = Store::connect_with_file_modes(
        &settings.database_url,
        settings.database_max_connections,
        settings.file_modes(),
    )
    .await?;
    let grace = settings.shutdown_grace;
    let limits = http::serve::ConnectionLimits {
        max_connections: http::serve::connection_capacity(settings.max_connections),
        header_read_timeout: settings.header_read_timeout,
    };
    let assent = Assent::open(store, settings, &issuer).await?;
    // As the signing keys were: what the previous key-encryption key
    // sealed moves to the current one.
    crate::mfa::reseal_totp_secrets(&assent).await?;
    let (shutdown, mut shutdown_rx) = watch::channel(false);
    // First of the tasks: a channel whose settings make no sender (an
    // SMS provider URL the outbound guard refuses) stops the start here.
    let message_dispatcher = messaging::dispatch::spawn(assent.clone(), shutdown.subscribe())?;

    crate::metrics::install();
    let app = http::router(assent.clone());
    let housekeeping = tokio::spawn(housekeep(assent.clone(), shutdown.subscribe()));
    let checkpoints = tokio::spawn(checkpoint(assent.store.clone(), shutdown.subscribe()));
    let key_refresh = tokio::spawn(refresh_keys(assent.clone(), shutdown.subscribe()));
    let delivery_tasks = delivery::spawn(
        Outbox {
            store: assent.store.clone(),
            delivery: assent.delivery.clone(),
            clock: assent.clock.clone(),
            push_timeout: assent.settings.push_timeout,
        },
        shutdown.subscribe(),
    );
    let metrics_task = metrics_listener.map(|listener| {
        let app = http::metrics_router(assent.clone());
        let mut stop = shutdown.subscribe();
        tokio::spawn(http::serve::serve(listener, app, limits, async move {
            let _ = stop.wait_for(|s| *s).await;
        }))
    });
    let store = assent.store.clone();
    let assent_for_shutdown = assent.clone();
    let task = tokio::spawn(async move {
        let mut stop = shutdown_rx.clone();
        let delivery = assent_for_shutdown.delivery.clone();
        let serve = http::serve::serve(listener, app, limits, async move {
            let _ = stop.wait_for(|s| *s).await;
            delivery.begin_shutdown();
        });
        // In-flight requests get `grace` to finish once shutdown starts.
        let deadline = async move {
            let _ = shutdown_rx.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            () = serve => Ok(()),
            () = deadline => {
                tracing::warn!("shutdown grace period over: dropping remaining connections");
                Ok(())
            }
        };
        housekeeping.abort();
        checkpoints.abort();
        key_refresh.abort();
        if let Some(task) = metrics_task {
            task.abort();
        }
        for task in delivery_tasks.into_iter().chain(message_dispatcher) {
            let _ = task.await;
        }
        store.close().await;
        result
    });
    tracing::info!(address = %addr, issuer = %issuer, database = %assent.store.backend(), "listening");
    if let Some(metrics) = metrics_addr {
        tracing::info!(address = %metrics, "serving /metrics on its own address only");
    }
    Ok(RunningServer {
        addr,
        metrics_addr,
        assent,
        shutdown,
        task,
    })
}

/// Serves until `stop` resolves (SIGINT/SIGTERM for the binary).
pub async fn run_until(settings: Settings, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let server = start(settings).await?;
    stop.await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed here, when it
/// is called, not when the future is first polled: [`run_until`] polls it
/// only once the server is up, and a SIGTERM in between (a supervisor
/// stopping a server it has just seen answer) would otherwise kill the
/// process outright instead of shutting it down.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let recv = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = recv(terminate) => {},
                () = recv(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How often SQLite's write-ahead log is copied into the database file and
/// rewound. At full load this keeps the log to about 10 MiB.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// Checkpoints SQLite's write-ahead log off the request path (the hot-path
/// connection never does; see `storage::inline`).
async fn checkpoint(store: Store, mut stop: watch::Receiver<bool>) {
    if !store.needs_checkpoints() {
        return;
    }
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        if let Err(err) = store.checkpoint().await {
            tracing::warn!(error = %err, "WAL checkpoint failed");
        }
    }
}

/// Keeps the keys current: rebuilds them the moment a rotated key starts
/// signing or a superseded one leaves the JWKS, and picks up keys another
/// process added (`keys rotate`) within `key_reload_interval`.
async fn refresh_keys(assent: Assent, mut stop: watch::Receiver<bool>) {
    let interval = assent.settings.key_reload_interval;
    loop {
        let until_change = assent.keys.next_change_ms().map(|at| {
            Duration::from_millis(at.saturating_sub(assent.clock.now_ms()).max(0) as u64)
        });
        let wait = until_change.map_or(interval, |d| d.min(interval));
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
        if let Err(err) = assent.keys.refresh(&assent.store, &assent.clock).await {
            tracing::warn!(
                error = format!("{err:#}"),
                "reloading the signing keys failed"
            );
        }
    }
}

/// Deletes expired single-use records and old requests once a minute.
/// Every process does it; the deletes are idempotent.
async fn housekeep(assent: Assent, mut stop: watch::Receiver<bool>) {
    let retention_ms = assent.settings.request_retention as i64 * 1000;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        let now = assent.clock.now_ms();
        match assent.store.purge_expired(now, retention_ms).await {
            Ok(c) if c.auth_requests + c.refresh_tokens + c.jtis > 0 => tracing::debug!(
                auth_requests = c.auth_requests,
                refresh_tokens = c.refresh_tokens,
                jtis = c.jtis,
                "purged expired records"
            ),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "housekeeping failed"),
        }
    }
}
