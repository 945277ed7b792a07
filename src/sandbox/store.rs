//! The tenant's records: clicks, conversions and the callback log, in memory.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::config::{SEEDED_CLICK, SEEDED_CONVERSION, SEEDED_MEMBER, SandboxConfig};
use super::faults::Faults;

/// A click made by the tools (or seeded).
#[derive(Debug, Clone)]
pub struct Click {
    pub id: String,
    pub offer_id: String,
    pub member_id: String,
    pub partner_id: String,
    pub created_at: DateTime<Utc>,
}

/// A conversion of a click.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub id: String,
    pub click_id: String,
    pub event_id: String,
    pub params: HashMap<String, String>,
    pub status: String,
    pub rejection_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub faults: Faults,
}

/// One delivery attempt of a callback, as the conversion-callback log keeps it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub id: String,
    pub callback_id: String,
    pub conversion_id: String,
    pub click_id: String,
    pub endpoint: String,
    pub attempt: u32,
    pub status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub sent_at: String,
    /// `Delivered`, `Retrying` or `Failed`.
    pub outcome: String,
    /// The payload sent (GoKart shows it under "Note").
    pub note: Value,
}

/// Everything the sandbox remembers.
#[derive(Debug, Default)]
pub struct Store {
    pub clicks: HashMap<String, Click>,
    pub conversions: HashMap<String, Conversion>,
    /// `(member, offer, event)` already completed: a second one is Rejected.
    pub completed: HashSet<(String, String, String)>,
    pub log: HashMap<String, Vec<Attempt>>,
}

impl Store {
    /// A store holding the seeded click and conversion.
    pub fn seeded(config: &SandboxConfig) -> Store {
        let mut store = Store::default();
        let Some(offer) = config.offers.first() else {
            return store;
        };
        let now = Utc::now();
        store.clicks.insert(
            SEEDED_CLICK.into(),
            Click {
                id: SEEDED_CLICK.into(),
                offer_id: offer.id.clone(),
                member_id: SEEDED_MEMBER.into(),
                partner_id: offer.partner.clone(),
                created_at: now,
            },
        );
        if let Some(event) = offer.events.first() {
            store.conversions.insert(
                SEEDED_CONVERSION.into(),
                Conversion {
                    id: SEEDED_CONVERSION.into(),
                    click_id: SEEDED_CLICK.into(),
                    event_id: event.id.clone(),
                    params: HashMap::new(),
                    status: "Success".into(),
                    rejection_reason: None,
                    created_at: now,
                    faults: Faults::default(),
                },
            );
        }
        store
    }
}
