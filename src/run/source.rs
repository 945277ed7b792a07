//! Where a run sees the platform's deliveries: the one seam between the runner and the ways of
//! observing callbacks (pitcrew's receiver in this process, or the platform's callback log).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::delivery::{Delivery, Key, Script, Stray};
use crate::platform::Platform;
use crate::receiver::Receiver;

/// A test on the deliveries seen so far: has the wait ended?
pub type Done<'a> = &'a (dyn Fn(&[Arc<Delivery>]) -> bool + Sync);

/// Deliveries, as a run observes them.
pub trait CallbackSource: Send + Sync + 'static {
    /// Every delivery under `key` seen so far, oldest first.
    fn deliveries(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<Vec<Arc<Delivery>>, String>> + Send;

    /// Waits until `done` holds for the deliveries under `key`, or `deadline` passes; returns
    /// the deliveries either way.
    fn wait(
        &self,
        key: &Key,
        done: Done<'_>,
        deadline: Instant,
    ) -> impl Future<Output = Result<Vec<Arc<Delivery>>, String>> + Send;

    /// Makes the endpoint answer the deliveries filed under `key` as `script` says. Only a
    /// receiver pitcrew controls can; plans for other sources refuse `receiver:` scripts.
    fn script(
        &self,
        key: Key,
        script: Arc<Script>,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = (key, script);
        async { Err("this target's callbacks go to an endpoint pitcrew does not answer".into()) }
    }

    /// The callbacks that reached pitcrew and no case claimed (`claimed`: their sequence
    /// numbers). Sources that only read the platform's own records have none.
    fn strays(&self, claimed: &HashSet<u64>) -> Vec<Stray> {
        let _ = claimed;
        Vec::new()
    }
}

impl CallbackSource for Receiver {
    async fn deliveries(&self, key: &Key) -> Result<Vec<Arc<Delivery>>, String> {
        Ok(Receiver::deliveries(self, key))
    }

    async fn wait(
        &self,
        key: &Key,
        done: Done<'_>,
        deadline: Instant,
    ) -> Result<Vec<Arc<Delivery>>, String> {
        Ok(Receiver::wait(self, key, done, deadline).await)
    }

    async fn script(&self, key: Key, script: Arc<Script>) -> Result<(), String> {
        Receiver::script(self, key, script);
        Ok(())
    }

    fn strays(&self, claimed: &HashSet<u64>) -> Vec<Stray> {
        Receiver::strays(self, claimed)
    }
}

/// The platform's conversion-callback log, read until the deliveries show up.
pub struct CallbackLog<P> {
    platform: Arc<P>,
}

/// How often the log is read while a case waits.
const LOG_POLL: Duration = Duration::from_millis(25);

impl<P> CallbackLog<P> {
    /// Reads `platform`'s log.
    pub fn new(platform: Arc<P>) -> Self {
        CallbackLog { platform }
    }
}

impl<P: Platform> CallbackSource for CallbackLog<P> {
    async fn deliveries(&self, key: &Key) -> Result<Vec<Arc<Delivery>>, String> {
        let log = self
            .platform
            .callback_log(key)
            .await
            .map_err(|e| e.to_string())?;
        Ok(log.into_iter().map(Arc::new).collect())
    }

    async fn wait(
        &self,
        key: &Key,
        done: Done<'_>,
        deadline: Instant,
    ) -> Result<Vec<Arc<Delivery>>, String> {
        loop {
            let seen = self.deliveries(key).await?;
            let now = Instant::now();
            if done(&seen) || now >= deadline {
                return Ok(seen);
            }
            tokio::time::sleep(LOG_POLL.min(deadline - now)).await;
        }
    }
}
