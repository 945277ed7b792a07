//! Which case may start next: cases that share a resource (a known click, a conversion, a
//! member) never overlap in time, and go in plan order; all others start as soon as a slot is
//! free.
//!
//! Each shared resource keeps a queue of the cases that use it, in plan order; a case is ready
//! when it heads every one of its queues. The lowest pending case always heads all of its
//! queues, so the schedule never deadlocks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// The start order of a run's cases (by plan position).
#[derive(Debug, Default)]
pub struct Schedule {
    /// One queue per resource that two or more cases use.
    queues: Vec<VecDeque<usize>>,
    /// For each case, the queues it is in.
    memberships: Vec<Vec<usize>>,
    ready: BinaryHeap<Reverse<usize>>,
    /// Cases not handed out yet.
    waiting: usize,
    handed_out: Vec<bool>,
    /// In `ready` already.
    queued: Vec<bool>,
}

impl Schedule {
    /// A schedule for cases that use the given resources (any strings; equal means shared).
    pub fn new<I, R>(resources: I) -> Schedule
    where
        I: IntoIterator<Item = R>,
        R: IntoIterator<Item = String>,
    {
        let mut users: HashMap<String, Vec<usize>> = HashMap::new();
        let mut count = 0;
        for (case, used) in resources.into_iter().enumerate() {
            count = case + 1;
            for resource in used {
                let cases = users.entry(resource).or_default();
                // A case naming one resource twice uses it once.
                if cases.last() != Some(&case) {
                    cases.push(case);
                }
            }
        }
        let mut schedule = Schedule {
            memberships: vec![Vec::new(); count],
            waiting: count,
            handed_out: vec![false; count],
            queued: vec![false; count],
            ..Schedule::default()
        };
        let mut shared: Vec<Vec<usize>> = users.into_values().filter(|c| c.len() > 1).collect();
        // Deterministic queue numbering, whatever the map's order.
        shared.sort_unstable();
        for cases in shared {
            let queue = schedule.queues.len();
            for &case in &cases {
                schedule.memberships[case].push(queue);
            }
            schedule.queues.push(cases.into());
        }
        for case in 0..count {
            schedule.make_ready_if_heading(case);
        }
        schedule
    }

    fn make_ready_if_heading(&mut self, case: usize) {
        if !self.handed_out[case] && !self.queued[case] && self.heads_all(case) {
            self.queued[case] = true;
            self.ready.push(Reverse(case));
        }
    }

    fn heads_all(&self, case: usize) -> bool {
        self.memberships[case]
            .iter()
            .all(|&q| self.queues[q].front() == Some(&case))
    }

    /// The lowest ready case, handed out (it must be [`finish`](Self::finish)ed later).
    pub fn next_ready(&mut self) -> Option<usize> {
        let Reverse(case) = self.ready.pop()?;
        self.handed_out[case] = true;
        self.waiting -= 1;
        Some(case)
    }

    /// Whether a case is ready to be handed out.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// `case` is done: the cases waiting behind it may become ready.
    pub fn finish(&mut self, case: usize) {
        let queues = std::mem::take(&mut self.memberships[case]);
        for &q in &queues {
            if self.queues[q].front() == Some(&case) {
                self.queues[q].pop_front();
            }
        }
        for &q in &queues {
            if let Some(&next) = self.queues[q].front() {
                self.make_ready_if_heading(next);
            }
        }
    }

    /// How many cases were not handed out yet.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Every case not handed out, in plan order; the schedule is empty afterwards.
    pub fn drain(&mut self) -> Vec<usize> {
        let left: Vec<usize> = (0..self.handed_out.len())
            .filter(|&c| !self.handed_out[c])
            .collect();
        for &c in &left {
            self.handed_out[c] = true;
        }
        self.ready.clear();
        self.waiting = 0;
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schedule(resources: &[&[&str]]) -> Schedule {
        Schedule::new(
            resources
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        )
    }

    #[test]
    fn cases_sharing_nothing_are_all_ready_in_order() {
        let mut s = schedule(&[&["a"], &["b"], &[]]);
        assert_eq!(
            (
                s.next_ready(),
                s.next_ready(),
                s.next_ready(),
                s.next_ready()
            ),
            (Some(0), Some(1), Some(2), None)
        );
    }

    #[test]
    fn a_shared_resource_serializes_its_cases_and_lets_others_pass() {
        let mut s = schedule(&[&["m"], &["x"], &["m"], &["m", "c"]]);
        assert_eq!(s.next_ready(), Some(0));
        assert_eq!(s.next_ready(), Some(1));
        assert_eq!(s.next_ready(), None, "case 2 waits for case 0");
        s.finish(1);
        assert_eq!(s.next_ready(), None);
        s.finish(0);
        assert_eq!(s.next_ready(), Some(2));
        assert_eq!(s.next_ready(), None, "case 3 waits for case 2");
        s.finish(2);
        assert_eq!(s.next_ready(), Some(3));
        assert_eq!(s.waiting(), 0);
    }

    proptest! {
        /// However cases share resources and however they finish, every case is handed out
        /// exactly once, never while a case sharing a resource with it runs, and cases that
        /// share a resource start in plan order.
        #[test]
        fn never_overlaps_never_loses_never_deadlocks(
            uses in prop::collection::vec(prop::collection::vec(0u8..6, 0..3), 0..40),
            finish_order in prop::collection::vec(any::<prop::sample::Index>(), 0..200),
        ) {
            let resources: Vec<Vec<String>> = uses
                .iter()
                .map(|r| r.iter().map(|n| format!("r{n}")).collect())
                .collect();
            let mut s = Schedule::new(resources.clone());
            let mut running: Vec<usize> = Vec::new();
            let mut started = Vec::new();
            let mut picks = finish_order.into_iter();
            loop {
                while let Some(case) = s.next_ready() {
                    for &other in &running {
                        let shared = resources[case].iter().any(|r| resources[other].contains(r));
                        prop_assert!(!shared, "case {case} overlaps case {other}");
                    }
                    running.push(case);
                    started.push(case);
                }
                if running.is_empty() {
                    break;
                }
                let i = picks.next().map_or(0, |p| p.index(running.len()));
                s.finish(running.swap_remove(i));
            }
            let mut all = started.clone();
            all.sort_unstable();
            prop_assert_eq!(all, (0..resources.len()).collect::<Vec<_>>());
            for (i, a) in started.iter().enumerate() {
                for b in &started[i + 1..] {
                    if resources[*a].iter().any(|r| resources[*b].contains(r)) {
                        prop_assert!(a < b, "{a} and {b} share a resource but started out of order");
                    }
                }
            }
        }
    }
}
