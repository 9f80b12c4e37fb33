//! The accept loop: axum's `serve` has no limits, so a client that opens
//! sockets and sends nothing would hold them (and, at the process's file
//! limit, stop every other connection). Here:
//!
//! - at most `max_connections` connections are open; beyond that the loop
//!   stops accepting (they wait in the kernel's backlog) until one closes;
//! - a connection must send a request's headers within
//!   `header_read_timeout`; hyper's timer runs whenever a connection waits
//!   for a request head, so it also bounds how long an idle keep-alive
//!   connection is kept (a streaming answer, such as the event stream, is not
//!   waiting for a head and is not cut);
//! - shutdown stops accepting and lets open connections finish.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for the
/// open connections to finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_bytes = limits.header_read_timeout;
        tokio::spawn(async move {
            // Until its first bytes arrive, a connection is in the protocol
            // detection (HTTP/1.1 or HTTP/2), where hyper's header timer does
            // not run yet: a silent client is dropped here instead.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(first_bytes, stream.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                drop(slot);
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            // Errors here are the client's: a reset, a timeout, bad bytes.
            let _ = watcher.watch(connection).await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Raises the soft limit on open files to the hard one (as nginx's
/// `worker_rlimit_nofile` does) and returns how many connections fit under
/// it, keeping room for the database, logs and outbound requests.
pub fn connection_capacity(wanted: usize) -> usize {
    const RESERVED: u64 = 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let fits = limit.saturating_sub(RESERVED).max(16);
            wanted.min(usize::try_from(fits).unwrap_or(usize::MAX))
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the open-file limit");
            wanted
        }
    }
}
