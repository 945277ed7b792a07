//! The tenant's records: clicks, conversions and the callback log, in memory.
//!
//! Kept compact, because a nightly run makes 100,000 of each: ids are UUIDs (16 bytes, not
//! text), texts many records share (offers, events, statuses, parameter sets, faults) are held
//! once, and the log keeps what each callback said (its status and faults at the time), not
//! its body: the body is built again when the log is read, exactly as it was sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::config::{
    DEMO_OFFER, SEEDED_CLICK_ID, SEEDED_CONVERSION_ID, SEEDED_MEMBER, SandboxConfig,
};
use super::faults::Faults;
use crate::intern::Interner;

/// A record's id: the sandbox makes UUIDs, and an id that is not one names no record.
pub type Id = Uuid;

/// `text` as an id, if it is one.
pub fn parse_id(text: &str) -> Option<Id> {
    Uuid::try_parse(text).ok()
}

/// A conversion's parameters, sorted by name; shared by the conversions that have the same.
pub type Params = Arc<[(Box<str>, Box<str>)]>;

/// A click made by the tools (or seeded).
#[derive(Debug, Clone)]
pub struct Click {
    pub id: Id,
    pub offer_id: Arc<str>,
    /// Shared with the completed (member, offer, event) it makes.
    pub member_id: Arc<str>,
    pub partner_id: Arc<str>,
    pub created_at: DateTime<Utc>,
    /// The publisher's parameters of a tracking-link click (`pub_click_id`, `pub_sub_1`..): every
    /// conversion of the click carries them. Empty for a click the tools made.
    pub link: Params,
}

/// A conversion of a click.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub id: Id,
    pub click_id: Id,
    pub event_id: Arc<str>,
    pub params: Params,
    pub status: Arc<str>,
    pub rejection_reason: Option<Box<str>>,
    pub created_at: DateTime<Utc>,
    pub faults: Arc<Faults>,
    /// Made by the advertiser's postback, not the tools: its callback has no testing-tools flag.
    pub public: bool,
}

impl Conversion {
    /// The parameter `name`, if the conversion has it.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &*self.params[i].1)
    }
}

/// What one callback said: the same on every attempt of it.
#[derive(Debug)]
pub struct Sent {
    /// The callback record's id (`id` in the body).
    pub id: Id,
    pub conversion_id: Id,
    pub click_id: Id,
    /// The conversion's status and reason when the callback was made.
    pub status: Arc<str>,
    pub rejection_reason: Option<Box<str>>,
    /// The faults it was made with.
    pub faults: Arc<Faults>,
    /// `sentAt` in the body.
    pub sent_at: DateTime<Utc>,
}

/// One delivery attempt of a callback, as the conversion-callback log keeps it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: Id,
    pub callback: Arc<Sent>,
    pub endpoint: Arc<str>,
    pub attempt: u32,
    pub status: Option<u16>,
    pub response_body: Option<Box<str>>,
    pub error: Option<Box<str>>,
    pub duration_ms: u64,
    pub sent_at: DateTime<Utc>,
    pub outcome: Outcome,
    /// For a partner postback (not a callback): the URL as sent.
    pub postback: Option<Arc<str>>,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retrying,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "Delivered",
            Outcome::Retrying => "Retrying",
            Outcome::Failed => "Failed",
        }
    }
}

/// Everything the sandbox remembers.
#[derive(Debug, Default)]
pub struct Store {
    pub clicks: HashMap<Id, Click>,
    pub conversions: HashMap<Id, Conversion>,
    /// `(member, offer, event)` already completed: a second one is Rejected.
    pub completed: HashSet<(Arc<str>, Arc<str>, Arc<str>)>,
    /// Clicks whose conversion call was answered 429 once (`api_error: 429`).
    pub rate_limited: HashSet<Uuid>,
    /// Every attempt, by conversion.
    pub log: HashMap<Id, Vec<Attempt>>,
    texts: Interner<str>,
    params: Interner<[(Box<str>, Box<str>)]>,
    faults: Vec<Arc<Faults>>,
}

impl Store {
    /// A store holding the seeded click and conversion.
    pub fn seeded(config: &SandboxConfig) -> Store {
        let mut store = Store::default();
        // On the built-in `demo-offer` (or one the config gives that id): none without it.
        let Some(offer) = config.offers.iter().find(|o| o.id == DEMO_OFFER) else {
            return store;
        };
        let (click_id, conversion_id) = (SEEDED_CLICK_ID, SEEDED_CONVERSION_ID);
        let now = Utc::now();
        let click = Click {
            id: click_id,
            offer_id: store.text(&offer.id),
            member_id: SEEDED_MEMBER.into(),
            partner_id: store.text(&offer.partner),
            created_at: now,
            link: store.params(Vec::new()),
        };
        store.clicks.insert(click_id, click);
        if let Some(event) = offer.events.first() {
            let conversion = Conversion {
                id: conversion_id,
                click_id,
                event_id: store.text(&event.id),
                params: store.params(Vec::new()),
                status: store.text("Success"),
                rejection_reason: None,
                created_at: now,
                faults: store.faults(Faults::default()),
                public: false,
            };
            store.conversions.insert(conversion_id, conversion);
        }
        store
    }

    /// `text`, shared with every record that has it.
    pub fn text(&mut self, text: &str) -> Arc<str> {
        self.texts.text(text)
    }

    /// `params`, sorted and shared with every conversion that has the same.
    pub fn params(&mut self, mut params: Vec<(Box<str>, Box<str>)>) -> Params {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        params.dedup_by(|a, b| a.0 == b.0);
        self.params.share(params)
    }

    /// `faults`, shared with every conversion that has the same.
    pub fn faults(&mut self, faults: Faults) -> Arc<Faults> {
        if let Some(known) = self.faults.iter().find(|f| ***f == faults) {
            return known.clone();
        }
        let shared = Arc::new(faults);
        if self.faults.len() < 64 {
            self.faults.push(shared.clone());
        }
        shared
    }

    /// The click `id` names.
    pub fn click(&self, id: &str) -> Option<&Click> {
        self.clicks.get(&parse_id(id)?)
    }
}
