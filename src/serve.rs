//! Serving an axum app the way every pitcrew server must (the sandbox, the receiver, `pitcrew
//! receive`): a client that does not send its request head in time (a stalled or slowloris
//! client, or an idle connection) is dropped; connections are capped, so a flood cannot take
//! every file descriptor; shutdown is one cancellation token, and the server waits for the
//! requests in flight.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How much a server lets its clients take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request head must arrive within this long (from connecting, or from the previous
    /// answer on a kept-alive connection).
    pub header_timeout: Duration,
    /// Connections open at once; more are closed as they come.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// How every pitcrew server speaks HTTP/1 on one connection: `limits.header_timeout` for each
/// request head.
pub fn http1(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
}

/// Serves `app` on `listener` until `shutdown`, in a task of its own.
pub fn spawn(listener: TcpListener, app: Router, shutdown: CancellationToken, limits: Limits) {
    tokio::spawn(serve(listener, app, shutdown, limits));
}

/// Serves `app` on `listener` until `shutdown`, then waits for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    limits: Limits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors, or a connection reset before it was accepted: the
            // listener is fine; try again shortly rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let connection = http1(&limits).serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    connections.close();
    connections.wait().await;
}
