//! Fresh ids for records, members and templates: random (version 4) UUIDs from a fast
//! per-thread generator, seeded once per thread from the operating system.
//!
//! A run makes several ids per case (click, conversion, callback, attempt, member, answer);
//! asking the kernel for each was a system call apiece. These ids must be unique, not secret:
//! secrets (partner secrets, tokens) come from the operating system directly.

use std::cell::Cell;

use uuid::Uuid;

thread_local! {
    static STATE: Cell<[u64; 4]> = Cell::new(seed());
}

fn seed() -> [u64; 4] {
    let (a, b) = (Uuid::new_v4().as_u128(), Uuid::new_v4().as_u128());
    let state = [a as u64, (a >> 64) as u64, b as u64, (b >> 64) as u64];
    // xoshiro256** must not start from all zeros.
    if state.iter().all(|&w| w == 0) {
        [1, 2, 3, 4]
    } else {
        state
    }
}

/// The next 64 random bits (xoshiro256**).
fn next() -> u64 {
    STATE.with(|cell| {
        let mut s = cell.get();
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        cell.set(s);
        result
    })
}

/// A fresh random UUID (version 4).
pub fn new_uuid() -> Uuid {
    let bytes = random_u128().to_le_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// 128 random bits (for `{{random}}` in templates).
pub fn random_u128() -> u128 {
    (u128::from(next()) << 64) | u128::from(next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let ids: std::collections::HashSet<Uuid> = (0..100_000).map(|_| new_uuid()).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
        assert!(
            ids.iter()
                .all(|id| id.get_variant() == uuid::Variant::RFC4122)
        );
    }

    #[test]
    fn threads_draw_different_ids() {
        let a = std::thread::spawn(new_uuid).join().unwrap();
        let b = std::thread::spawn(new_uuid).join().unwrap();
        assert_ne!(a, b);
    }
}
