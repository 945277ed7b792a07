//! The callback endpoint: records every callback, files it under its conversion and wakes the
//! case waiting for it at once (a notification, not a poll).

mod capture;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::shutdown::Shutdown;

/// One callback as it reached the receiver.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Captured {
    /// Arrival order over the receiver's life, from 1.
    pub seq: u64,
    #[serde(skip)]
    pub received_at: SystemTime,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The body exactly as sent.
    pub body: String,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// What it was filed under: `conversion.conversionId`, else `clickId`.
    pub key: Option<String>,
}

#[derive(Default)]
struct Slot {
    callbacks: Vec<Arc<Captured>>,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    slots: Mutex<HashMap<String, Slot>>,
    unkeyed: Mutex<Vec<Arc<Captured>>>,
    seq: std::sync::atomic::AtomicU64,
}

/// The in-process handle: record callbacks, wait for them.
#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<Inner>,
}

impl Receiver {
    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.inner.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files a callback and wakes whoever waits for its key.
    pub fn record(&self, mut captured: Captured) -> Arc<Captured> {
        captured.seq = self
            .inner
            .seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let captured = Arc::new(captured);
        match captured.key.clone() {
            Some(key) => {
                let mut slots = self.slots();
                let slot = slots.entry(key).or_default();
                slot.callbacks.push(captured.clone());
                slot.notify.notify_waiters();
            }
            None => self
                .inner
                .unkeyed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(captured.clone()),
        }
        captured
    }

    /// Every callback filed under `key` so far.
    pub fn callbacks(&self, key: &str) -> Vec<Arc<Captured>> {
        self.slots()
            .get(key)
            .map(|s| s.callbacks.clone())
            .unwrap_or_default()
    }

    /// How many callbacks arrived in all, keyed or not.
    pub fn total(&self) -> u64 {
        self.inner.seq.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Callbacks that carried no conversion or click id.
    pub fn unkeyed(&self) -> Vec<Arc<Captured>> {
        self.inner
            .unkeyed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until at least `count` callbacks are filed under `key`, or `deadline` passes;
    /// returns what arrived either way.
    pub async fn wait_for(&self, key: &str, count: usize, deadline: Instant) -> Vec<Arc<Captured>> {
        loop {
            let notify = {
                let mut slots = self.slots();
                let slot = slots.entry(key.to_string()).or_default();
                if slot.callbacks.len() >= count {
                    return slot.callbacks.clone();
                }
                slot.notify.clone()
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // A callback may have landed between the check and `enable`.
            if self
                .slots()
                .get(key)
                .is_some_and(|s| s.callbacks.len() >= count)
            {
                continue;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.callbacks(key);
            }
        }
    }
}

/// A receiver listening on HTTP.
#[derive(Clone)]
pub struct ReceiverHandle {
    pub addr: SocketAddr,
    pub receiver: Receiver,
}

impl ReceiverHandle {
    /// The URL partners should post callbacks to.
    pub fn callback_url(&self) -> String {
        format!("http://{}/callbacks", self.addr)
    }
}

/// Serves `receiver` on `listener` until `shutdown`.
pub fn serve(
    listener: TcpListener,
    receiver: Receiver,
    shutdown: Shutdown,
) -> std::io::Result<ReceiverHandle> {
    let addr = listener.local_addr()?;
    let app = capture::router(receiver.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.wait())
            .await;
    });
    Ok(ReceiverHandle { addr, receiver })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn callback(conversion: &str) -> Captured {
        Captured {
            seq: 0,
            received_at: SystemTime::now(),
            method: "POST".into(),
            path: "/callbacks".into(),
            query: None,
            headers: vec![],
            body: String::new(),
            json: None,
            key: Some(conversion.into()),
        }
    }

    #[tokio::test]
    async fn a_waiting_case_wakes_when_its_callback_lands() {
        let receiver = Receiver::default();
        let waiter = {
            let receiver = receiver.clone();
            tokio::spawn(async move {
                receiver
                    .wait_for("c1", 1, Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        tokio::task::yield_now().await;
        receiver.record(callback("other"));
        receiver.record(callback("c1"));
        let got = waiter.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].seq, 2);
    }

    #[tokio::test]
    async fn waiting_gives_up_at_the_deadline_with_what_came() {
        let receiver = Receiver::default();
        receiver.record(callback("c1"));
        let got = receiver
            .wait_for("c1", 2, Instant::now() + Duration::from_millis(20))
            .await;
        assert_eq!(got.len(), 1);
    }
}
