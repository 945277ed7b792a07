//! Serving an axum app the way every pitcrew server must (the sandbox, the receiver, `pitcrew
//! receive`), so that clients that stall cannot take it:
//! - a request head must arrive within `header_timeout`;
//! - a request body must arrive whole within `body_timeout` of its head, and, after its first
//!   [`BODY_GRACE`], at [`MIN_BODY_RATE`] on average: a body that falls behind is cut off (the
//!   app sees a body error, answers 400, and the connection closes);
//! - connections are capped at `max_connections`, so a flood cannot take every file descriptor;
//!   when every slot is taken, a new connection takes the slot of the one that has waited
//!   longest on its client (for a head or a body, or idle between requests) if that has been
//!   more than [`STALLED_AFTER`]: slots held by stalled clients go to those that send;
//! - shutdown is one cancellation token, and the server waits for the requests in flight.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// How long a body may take before the minimum rate applies to it.
pub const BODY_GRACE: Duration = Duration::from_secs(1);

/// The slowest a body may come, on average, after [`BODY_GRACE`], in bytes a second.
pub const MIN_BODY_RATE: u64 = 1024;

/// How long a connection must have waited on its client before a new one may take its slot
/// when every slot is taken.
pub const STALLED_AFTER: Duration = Duration::from_secs(1);

/// How long a new connection waits for a slot when every slot is taken.
pub const QUEUE_PATIENCE: Duration = Duration::from_secs(2);

/// How much a server lets its clients take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request head must arrive within this long (from connecting, or from the previous
    /// answer on a kept-alive connection).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this long of its head.
    pub body_timeout: Duration,
    /// Connections open at once; when all are taken, a stalled one gives its slot to a new one,
    /// else the new one is closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
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
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // As many connections again may wait a moment for a slot; more are closed as they come.
    let queue = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = Arc::new(Connections::default());
    let tasks = TaskTracker::new();
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
        let Ok(queued) = queue.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, shutdown, slots, open) =
            (app.clone(), shutdown.clone(), slots.clone(), open.clone());
        tasks.spawn(async move {
            let Some(slot) = slot(&slots, &open).await else {
                return;
            };
            drop(queued);
            connection(stream, app, shutdown, limits, (open, slot)).await;
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// A slot for a new connection: a free one, or that of the connection that has waited longest
/// on its client, once one has stalled; none if no slot comes within [`QUEUE_PATIENCE`] (every
/// connection is being served).
async fn slot(slots: &Arc<Semaphore>, open: &Connections) -> Option<OwnedSemaphorePermit> {
    let until = Instant::now() + QUEUE_PATIENCE;
    loop {
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return Some(slot);
        }
        // The evicted connection's task gives its slot back as soon as it runs.
        open.evict_stalled();
        let now = Instant::now();
        if now >= until {
            return None;
        }
        let wait = (until - now).min(Duration::from_millis(100));
        if let Ok(Ok(slot)) = tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
            return Some(slot);
        }
    }
}

/// Serves one connection until it ends, is evicted, or the server shuts down.
async fn connection(
    stream: TcpStream,
    app: Router,
    shutdown: CancellationToken,
    limits: Limits,
    (open, slot): (Arc<Connections>, OwnedSemaphorePermit),
) {
    let (id, this) = open.add();
    let watched = this.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut app = app.clone();
        let this = watched.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = if body.is_end_stream() {
                this.served();
                Body::new(body)
            } else {
                this.waiting();
                Body::new(Paced::new(body, limits.body_timeout, this.clone()))
            };
            let answer = app.call(hyper::Request::from_parts(parts, body)).await;
            // Idle until the next request head.
            this.waiting();
            answer
        }
    });
    let served = http1(&limits).serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        _ = this.evicted.cancelled() => {}
        _ = shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
    open.remove(id);
    drop(slot);
}

/// The connections a server has open, and since when each has waited on its client.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    epoch: std::sync::OnceLock<Instant>,
}

impl Connections {
    fn now(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        // Never `SERVED`, even after 584 million years.
        (epoch.elapsed().as_millis() as u64).min(SERVED - 1)
    }

    fn add(self: &Arc<Self>) -> (u64, Arc<Connection>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            waiting_since: AtomicU64::new(self.now()),
            evicted: CancellationToken::new(),
            open: self.clone(),
        });
        lock(&self.open).insert(id, connection.clone());
        (id, connection)
    }

    fn remove(&self, id: u64) {
        lock(&self.open).remove(&id);
    }

    /// Evicts the connection that has waited longest on its client, if that has been more
    /// than [`STALLED_AFTER`].
    fn evict_stalled(&self) {
        let stalled_before = self.now().saturating_sub(STALLED_AFTER.as_millis() as u64);
        let open = lock(&self.open);
        let longest = open
            .values()
            .filter(|c| !c.evicted.is_cancelled())
            .map(|c| (c.waiting_since.load(Ordering::Relaxed), c))
            .filter(|(since, _)| *since != SERVED && *since < stalled_before)
            .min_by_key(|(since, _)| *since);
        if let Some((_, connection)) = longest {
            connection.evicted.cancel();
        }
    }
}

/// `waiting_since` of a connection whose request the server is working on.
const SERVED: u64 = u64::MAX;

/// One open connection.
struct Connection {
    /// Since when (ms from the epoch of `open`) it has waited on its client, or `SERVED`.
    waiting_since: AtomicU64,
    /// Cancelled to close it and free its slot.
    evicted: CancellationToken,
    open: Arc<Connections>,
}

impl Connection {
    /// It waits on its client from now: for a request head or body.
    fn waiting(&self) {
        self.waiting_since.store(self.open.now(), Ordering::Relaxed);
    }

    /// The server is working on its request.
    fn served(&self) {
        self.waiting_since.store(SERVED, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A request body that must come whole within its deadline and, after [`BODY_GRACE`], at
/// [`MIN_BODY_RATE`] at least; one that does not ends in an error.
struct Paced {
    body: Incoming,
    started: Instant,
    /// The latest the body may end.
    deadline: Instant,
    /// When it next falls behind: reset as bytes come.
    behind: Pin<Box<Sleep>>,
    received: u64,
    connection: Arc<Connection>,
    done: bool,
}

impl Paced {
    fn new(body: Incoming, timeout: Duration, connection: Arc<Connection>) -> Paced {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut paced = Paced {
            body,
            started,
            deadline,
            behind: Box::pin(tokio::time::sleep_until(deadline)),
            received: 0,
            connection,
            done: false,
        };
        let next = paced.falls_behind_at();
        paced.behind.as_mut().reset(next);
        paced
    }

    /// When the body falls behind, with what has come so far: at the deadline, or sooner
    /// when the rate would drop below the minimum.
    fn falls_behind_at(&self) -> Instant {
        let paid_for = Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE as f64);
        (self.started + BODY_GRACE + paid_for).min(self.deadline)
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.connection.served();
        }
    }
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
#[error(
    "the body came too slowly ({received} bytes in {elapsed_ms} ms; a body must come within \
     the server's body timeout, at {MIN_BODY_RATE} bytes a second or faster after its first second)"
)]
pub struct TooSlow {
    received: u64,
    elapsed_ms: u128,
}

impl HttpBody for Paced {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let next = this.falls_behind_at();
                    this.behind.as_mut().reset(next);
                }
                if this.body.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => match this.behind.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.finish();
                    Poll::Ready(Some(Err(Box::new(TooSlow {
                        received: this.received,
                        elapsed_ms: this.started.elapsed().as_millis(),
                    }))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Paced {
    /// A body the app leaves unread is no longer waited for.
    fn drop(&mut self) {
        self.finish();
    }
}
