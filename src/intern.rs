//! Values many records hold alike (an offer id, an event, a parameter set), each held once
//! however many records use it: a 100,000-case run renders the same few dozen texts.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// How many distinct values an [`Interner`] keeps at most (beyond, each record holds its own:
/// unbounded sharing would hold every distinct value of a run).
const LIMIT: usize = 10_000;

/// The texts longer than this are not kept: ids and bodies are seldom shared.
pub const SHORT_TEXT: usize = 256;

/// A set of shared values.
#[derive(Debug)]
pub struct Interner<T: ?Sized> {
    held: HashSet<Arc<T>>,
}

impl<T: ?Sized> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            held: HashSet::new(),
        }
    }
}

impl<T: ?Sized + Hash + Eq> Interner<T> {
    /// `value`, shared with every record that holds one equal to it.
    pub fn share<V: Borrow<T> + Into<Arc<T>>>(&mut self, value: V) -> Arc<T> {
        if let Some(known) = self.held.get(value.borrow()) {
            return known.clone();
        }
        let shared = value.into();
        if self.held.len() < LIMIT {
            self.held.insert(shared.clone());
        }
        shared
    }
}

impl Interner<str> {
    /// `text`, shared when it is short (see [`SHORT_TEXT`]).
    pub fn text<V: Borrow<str> + Into<Arc<str>>>(&mut self, text: V) -> Arc<str> {
        if text.borrow().len() > SHORT_TEXT {
            return text.into();
        }
        self.share(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_are_held_once_and_long_texts_not_at_all() {
        let mut texts: Interner<str> = Interner::default();
        let (a, b) = (texts.text("install"), texts.text(String::from("install")));
        assert!(Arc::ptr_eq(&a, &b));
        let long = "x".repeat(SHORT_TEXT + 1);
        assert!(!Arc::ptr_eq(
            &texts.text(long.as_str()),
            &texts.text(long.as_str())
        ));
        let mut sets: Interner<[u8]> = Interner::default();
        assert!(Arc::ptr_eq(
            &sets.share(vec![1, 2]),
            &sets.share(vec![1, 2])
        ));
        for i in 0..LIMIT + 10 {
            texts.text(i.to_string());
        }
        assert_eq!(texts.held.len(), LIMIT, "bounded");
    }
}
