//! Job slots (`--jobs`): how many cases may be sending requests or checking at once. A case
//! gives its slot back while it only waits (for a callback, a postback, a `wait:` step) and
//! takes one again before its next request, so a slow platform's late callbacks do not hold
//! the run back: `--jobs` bounds the requests in flight, not the cases waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How many cases may be in flight (sending, checking or waiting) per job slot: what bounds
/// a run's memory when its cases wait long.
pub const CASES_PER_SLOT: usize = 16;

/// The run's job slots. A case already under way that wants one again goes before a case
/// that would start: its timeout runs while it waits.
pub struct Slots {
    semaphore: Arc<Semaphore>,
    /// Cases under way waiting for a slot.
    queued: AtomicUsize,
    /// Told when no case under way waits for a slot any more.
    none_queued: Notify,
}

impl Slots {
    /// `jobs` slots.
    pub fn new(jobs: usize) -> Arc<Slots> {
        Arc::new(Slots {
            semaphore: Arc::new(Semaphore::new(jobs.max(1))),
            queued: AtomicUsize::new(0),
            none_queued: Notify::new(),
        })
    }

    /// A slot for a new case, when one is free and no case under way waits for one.
    pub fn try_start(self: &Arc<Self>) -> Option<Slot> {
        if self.queued.load(Ordering::Acquire) > 0 {
            return None;
        }
        let permit = self.semaphore.clone().try_acquire_owned().ok()?;
        Some(Slot::new(self.clone(), permit))
    }

    /// Waits until a new case could start ([`Self::try_start`] would likely give a slot).
    pub async fn free_for_a_new_case(&self) {
        loop {
            let none_queued = self.none_queued.notified();
            tokio::pin!(none_queued);
            none_queued.as_mut().enable();
            if self.queued.load(Ordering::Acquire) > 0 {
                none_queued.await;
                continue;
            }
            // Given back at once: `try_start` takes it, unless a case under way came first.
            if let Ok(permit) = self.semaphore.clone().acquire_owned().await {
                drop(permit);
            }
            return;
        }
    }
}

/// A case's hold on a job slot.
pub struct Slot {
    slots: Arc<Slots>,
    held: Mutex<Option<OwnedSemaphorePermit>>,
}

/// Counts a case under way as waiting for a slot, until dropped (also when its task is
/// stopped meanwhile).
struct Queued<'a>(&'a Slots);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.0.queued.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_queued.notify_waiters();
        }
    }
}

impl Slot {
    fn new(slots: Arc<Slots>, permit: OwnedSemaphorePermit) -> Slot {
        Slot {
            slots,
            held: Mutex::new(Some(permit)),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<OwnedSemaphorePermit>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds a slot before a request, waiting for one when every slot is taken (before any
    /// case that has not started).
    pub async fn take(&self) {
        if self.held().is_some() {
            return;
        }
        self.slots.queued.fetch_add(1, Ordering::AcqRel);
        let queued = Queued(&self.slots);
        // The run never closes its semaphore; a closed one would only mean no bound.
        let permit = self.slots.semaphore.clone().acquire_owned().await.ok();
        drop(queued);
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
    async fn a_waiting_case_frees_its_slot_and_goes_before_new_cases_when_it_sends_again() {
        let slots = Slots::new(1);
        let first = slots.try_start().expect("a free slot");
        assert!(slots.try_start().is_none(), "one slot, held");
        first.give_back();
        let second = slots.try_start().expect("given back");
        // The first case waits for the second to give its slot back before it sends.
        let sending = tokio::spawn(async move {
            first.take().await;
            first
        });
        while slots.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        second.give_back();
        assert!(
            slots.try_start().is_none(),
            "a case under way waits for a slot: no new case starts"
        );
        let first = sending.await.unwrap();
        assert_eq!(slots.queued.load(Ordering::Acquire), 0);
        assert!(slots.try_start().is_none(), "held by the first");
        drop(first);
        slots.free_for_a_new_case().await;
        assert!(
            slots.try_start().is_some(),
            "a finished case's slot is free"
        );
    }
}
