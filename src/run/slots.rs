//! Job slots (`--jobs`): how many cases may be sending requests or checking at once. A case
//! gives its slot back while it only waits (for a callback, a postback, a `wait:` step) and
//! takes one again before its next request, so a slow platform's late callbacks do not hold
//! the run back: `--jobs` bounds the requests in flight, not the cases waiting.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many cases may be in flight (sending, checking or waiting) per job slot: what bounds
/// a run's memory when its cases wait long.
pub const CASES_PER_SLOT: usize = 16;

/// A case's hold on a job slot.
pub struct Slot {
    slots: Arc<Semaphore>,
    held: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Slot {
    /// A hold on `permit`, one of `slots`.
    pub fn new(slots: Arc<Semaphore>, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            slots,
            held: Mutex::new(Some(permit)),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<OwnedSemaphorePermit>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds a slot before a request, waiting for one when every slot is taken.
    pub async fn take(&self) {
        if self.held().is_some() {
            return;
        }
        // The run never closes its semaphore; a closed one would only mean no bound.
        let permit = self.slots.clone().acquire_owned().await.ok();
        *self.held() = permit;
    }

    /// Gives the slot back: the case only waits now.
    pub fn give_back(&self) {
        self.held().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_case_frees_its_slot_and_takes_one_again_to_send() {
        let slots = Arc::new(Semaphore::new(1));
        let first = Slot::new(slots.clone(), slots.clone().try_acquire_owned().unwrap());
        assert!(slots.clone().try_acquire_owned().is_err(), "one slot, held");
        first.give_back();
        let second = Slot::new(slots.clone(), slots.clone().try_acquire_owned().unwrap());
        // The first case must wait for the second to give its slot back before it sends.
        let sending = tokio::spawn(async move {
            first.take().await;
            first
        });
        tokio::task::yield_now().await;
        assert!(!sending.is_finished());
        second.give_back();
        let first = sending.await.unwrap();
        assert!(
            slots.clone().try_acquire_owned().is_err(),
            "held by the first"
        );
        drop(first);
        assert!(
            slots.try_acquire_owned().is_ok(),
            "a finished case's slot is free"
        );
    }
}
