//! What the receiver does through its store when the callback endpoint and the API serve:
//! the same in memory and on SQLite as before, and, on PostgreSQL, shared with every replica
//! of the same database (`postgres.rs`): a callback any replica took is filed here too, scripts
//! answer wherever the delivery lands, and a database that is gone is a 503, never a 200.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Receiver, Refusal, Store, StoreError, lock, refused_record};
use crate::delivery::{CallbackIds, Delivery, Script, ScriptedAnswer};

/// The most refused callbacks one replica writes to a shared database each second (the rest
/// are kept in its memory only): a flood of forgeries cannot fill the database.
const SHARED_REFUSALS_PER_SECOND: u32 = 100;
/// How long a replica waits before it listens again after losing the database.
const RELISTEN: Duration = Duration::from_secs(1);

impl Receiver {
    fn postgres(&self) -> Option<&Arc<super::PgStore>> {
        match &self.inner.config.store {
            Some(Store::Postgres(store)) => Some(store),
            _ => None,
        }
    }

    /// Takes an authorized callback: [`Receiver::record`], or on PostgreSQL, written to the
    /// database first and filed once it is there. An error means it was not kept (answer 503).
    pub async fn take(&self, delivery: Delivery) -> Result<u64, StoreError> {
        let Some(store) = self.postgres() else {
            return self.record(delivery);
        };
        let ids = &delivery.ids;
        if ids.conversion.is_none() && ids.click.is_none() && ids.pub_click.is_none() {
            return self.record(delivery);
        }
        let started = std::time::Instant::now();
        let kept = self.without_secrets(&delivery);
        match store.put(kept, |d| self.file_stored(d)).await {
            Ok(seq) => {
                let metrics = &self.inner.metrics;
                metrics.stored(started.elapsed());
                metrics.taken.fetch_add(1, Ordering::Relaxed);
                Ok(seq)
            }
            Err(e) => Err(self.not_kept(&delivery, e)),
        }
    }

    /// Refuses a callback for its credentials ([`Receiver::refuse`]); on PostgreSQL every
    /// replica sees the refusal too (up to [`SHARED_REFUSALS_PER_SECOND`]).
    pub async fn turn_away(&self, delivery: Delivery, why: &Refusal) {
        let Some(store) = self.postgres() else {
            self.refuse(delivery, why);
            return;
        };
        let shared = {
            let mut budget = lock(&self.inner.shared_refusals);
            let second = chrono::Utc::now().timestamp();
            if budget.0 != second {
                *budget = (second, 0);
            }
            budget.1 += 1;
            budget.1 <= SHARED_REFUSALS_PER_SECOND
        };
        let record = shared.then(|| refused_record(&delivery, why)).flatten();
        let Some(record) = record else {
            self.refuse(delivery, why);
            return;
        };
        match store.put(record, |d| self.file_stored(d)).await {
            Ok(_) => {
                self.inner.metrics.refused.fetch_add(1, Ordering::Relaxed);
                self.stray(&delivery, &format!("refused (401): {why}"));
            }
            // Not in the database: this replica still shows it.
            Err(_) => {
                self.refuse(delivery, why);
            }
        }
    }

    /// A callback read from the shared store, filed as this replica files its own.
    fn file_stored(&self, delivery: Delivery) {
        self.inner.seq.fetch_max(delivery.seq, Ordering::Relaxed);
        match delivery.refused {
            Some(_) => self.keep_refused(Arc::new(delivery)),
            None => self.file(Arc::new(delivery)),
        }
    }

    /// The scripted answer to a delivery with these ids ([`Receiver::scripted_answer`]; on
    /// PostgreSQL, the script's next answer whichever replica it was registered on).
    pub async fn answer(&self, ids: &CallbackIds) -> Result<Option<ScriptedAnswer>, StoreError> {
        match self.postgres() {
            Some(store) => store.answer(ids).await,
            None => Ok(self.scripted_answer(ids)),
        }
    }

    /// Registers `script` for the deliveries of `id` (a click or a conversion), kept in the
    /// store when there is one.
    pub async fn register(&self, id: &str, script: Script) -> Result<(), StoreError> {
        match self.postgres() {
            Some(store) => store.put_script(id, &script).await,
            None => {
                self.script_id(id, Arc::new(script), 0, true);
                Ok(())
            }
        }
    }

    /// Files what other replicas took since this one last looked (PostgreSQL; else nothing
    /// to do): a listing after it holds every callback any replica answered before it.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        match self.postgres() {
            Some(store) => store.catch_up(|d| self.file_stored(d)).await.map(drop),
            None => Ok(()),
        }
    }

    /// Forgets callbacks received before `cutoff`, in memory and in the store (retention).
    pub async fn retain(&self, cutoff: chrono::DateTime<chrono::Utc>) {
        self.forget_before(cutoff);
        if let Some(store) = self.postgres() {
            // A database that is gone now is cleaned at the next turn.
            let _ = store.forget_before(cutoff).await;
        }
    }

    /// Whether the store answers (`/api/health`).
    pub async fn store_ok(&self) -> Result<(), StoreError> {
        match self.postgres() {
            Some(store) => store.ping().await,
            None => Ok(()),
        }
    }

    /// On PostgreSQL, until `shutdown`: listens for callbacks any replica takes and files
    /// them at once, waking the long polls waiting for them; after losing the database,
    /// listens again and reads what it missed.
    pub async fn follow(self, shutdown: CancellationToken) {
        let Some(store) = self.postgres().cloned() else {
            return;
        };
        loop {
            let listening = tokio::select! {
                _ = shutdown.cancelled() => return,
                listening = store.listen() => listening,
            };
            if let Ok(mut listening) = listening {
                // What was taken while no one listened; a failure here waits for the next.
                let mut caught_up = self.refresh().await.is_ok();
                loop {
                    let heard = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        heard = listening.next() => heard,
                        // Only after a failed catch-up: try again rather than wait for news.
                        _ = tokio::time::sleep(RELISTEN), if !caught_up => Some(()),
                    };
                    if heard.is_none() {
                        break;
                    }
                    caught_up = self.refresh().await.is_ok();
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RELISTEN) => {}
            }
        }
    }
}
