//! The callback endpoint: takes only callbacks that carry the partner's secret, files each
//! under its conversion and its click, and wakes the case waiting for it at once (a
//! notification, not a poll). Everything else that reaches it is kept as a stray, so that every
//! callback is accounted for. The receiver matches nothing to a case: which case a delivery
//! is, the run's ledger decides (`run/ledger.rs`).

pub mod api;
pub mod credentials;
pub mod http;
pub mod metrics;
pub mod postgres;
mod replica;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::delivery::{
    CallbackIds, Correlation, Delivery, Format, Key, Script, ScriptedAnswer, Stray,
};
pub use postgres::PgStore;
pub use store::{SqliteStore, StoreError};

/// Where a receiver keeps callbacks and scripts beyond its memory.
#[derive(Debug, Clone)]
pub enum Store {
    /// One file: a restarted `pitcrew receive` loses nothing.
    Sqlite(Arc<SqliteStore>),
    /// One database several replicas share.
    Postgres(Arc<PgStore>),
}

impl Store {
    /// How `/api/health` names it.
    pub fn name(&self) -> String {
        match self {
            Store::Sqlite(s) => format!("sqlite:{}", s.path()),
            Store::Postgres(p) => p.name().to_string(),
        }
    }
}

/// The most refused or unreadable callbacks kept (the count goes on; the oldest are dropped).
const MAX_STRAYS: usize = 10_000;
/// The most callbacks refused for their credentials kept by the ids they name, for the cases
/// those ids are (the oldest are dropped). Kept without body or headers.
const MAX_REFUSED: usize = 1_000;
/// The longest id a refused callback may name to be kept by it (real ids are far shorter).
pub(crate) const MAX_REFUSED_ID: usize = 256;
/// Where the numbers of what one replica of a shared store keeps alone start (2^52: still an
/// exact number in a browser's JSON).
const LOCAL_SEQS: u64 = 1 << 52;
/// The largest callback body taken; a larger one is answered 413.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

pub use credentials::{Credential, Refusal};

/// A header a callback must carry, with its secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub name: String,
    pub secret: String,
}

impl From<AuthHeader> for Credential {
    fn from(h: AuthHeader) -> Credential {
        Credential::Header {
            name: h.name,
            secret: h.secret,
        }
    }
}

/// What the receiver accepts and how it reads callbacks.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// A callback must hold one of these credentials (an empty list takes none); `None` takes
    /// any callback, and then a forged one cannot be told from the platform's.
    pub auth: Option<Vec<Credential>>,
    /// What a partner postback (`/postbacks/…`) must hold instead of `auth`, when set: a
    /// tenant's postback URL can carry a token in its query, not its callbacks' header.
    pub postback_auth: Option<Vec<Credential>>,
    /// Where the ids sit in a callback's payload.
    pub correlation: Correlation,
    /// How a callback carries its payload: a JSON body, a form, or the query.
    pub format: Format,
    /// The `/api` token (`pitcrew receive`); without one there is no API.
    pub api_token: Option<String>,
    /// Where callbacks and scripts are kept across restarts (and shared by replicas).
    pub store: Option<Store>,
    /// The largest callback body taken.
    pub body_limit: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            auth: None,
            postback_auth: None,
            correlation: Correlation::default(),
            format: Format::default(),
            api_token: None,
            store: None,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

#[derive(Default)]
struct Slot {
    deliveries: Vec<Arc<Delivery>>,
    notify: Arc<Notify>,
}

/// A case's script and how far its deliveries have got through it.
struct Scripted {
    script: Arc<Script>,
    answered: AtomicU64,
    /// The click or conversion it was registered for (the store's key).
    id: String,
}

#[derive(Default)]
struct Inner {
    config: ReceiverConfig,
    seq: AtomicU64,
    /// On a shared store, the numbers of what this replica keeps alone (from `LOCAL_SEQS`).
    local_seq: AtomicU64,
    slots: Mutex<HashMap<Key, Slot>>,
    /// Callbacks refused or unreadable: strays from the start (the latest `MAX_STRAYS`).
    strays: Mutex<std::collections::VecDeque<Stray>>,
    /// How many strays there were in all.
    stray_count: AtomicU64,
    /// What `/metrics` counts.
    metrics: metrics::Metrics,
    /// Scripted answers, by the click or conversion whose deliveries they answer.
    scripts: Mutex<HashMap<Key, Arc<Scripted>>>,
    /// Callbacks refused for their credentials, by the ids they name.
    refused: Mutex<Refused>,
    /// Refusals written to a shared store this second: (the second, how many).
    shared_refusals: Mutex<(i64, u32)>,
}

/// Callbacks refused for their credentials, kept by the conversion and click they name so
/// that the case they name sees them (the latest [`MAX_REFUSED`]).
#[derive(Default)]
struct Refused {
    order: std::collections::VecDeque<Arc<Delivery>>,
    by_key: HashMap<Key, Vec<Arc<Delivery>>>,
}

impl Refused {
    fn keep(&mut self, delivery: Arc<Delivery>) {
        // Kept once: a replica's own refusal may come back in a catch-up.
        let listed = keys(&delivery).next().and_then(|k| self.by_key.get(&k));
        if listed.is_some_and(|list| list.iter().any(|d| d.seq == delivery.seq)) {
            return;
        }
        if self.order.len() >= MAX_REFUSED
            && let Some(old) = self.order.pop_front()
        {
            for key in keys(&old) {
                if let Some(list) = self.by_key.get_mut(&key) {
                    list.retain(|d| d.seq != old.seq);
                    if list.is_empty() {
                        self.by_key.remove(&key);
                    }
                }
            }
        }
        for key in keys(&delivery) {
            self.by_key.entry(key).or_default().push(delivery.clone());
        }
        self.order.push_back(delivery);
    }
}

/// The keys a delivery is filed under: its conversion and its click.
fn keys(delivery: &Delivery) -> impl Iterator<Item = Key> + use<> {
    [
        delivery.ids.conversion.clone().map(Key::Conversion),
        delivery.ids.click.clone().map(Key::Click),
        delivery.ids.pub_click.clone().map(Key::Postback),
    ]
    .into_iter()
    .flatten()
}

/// The in-process handle: record callbacks, wait for them, account for them.
#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<Inner>,
}

/// A lock that a panicking holder left behind is still usable: the data is append-only.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Receiver {
    /// A receiver with this configuration (and, with a store, what the store kept).
    pub fn new(config: ReceiverConfig) -> Receiver {
        let store = config.store.clone();
        let receiver = Receiver {
            inner: Arc::new(Inner {
                config,
                ..Inner::default()
            }),
        };
        if let Some(Store::Sqlite(store)) = store {
            receiver.restore(&store);
        }
        receiver
    }

    /// Rebuilds memory from the store: callbacks with their sequence numbers, and scripts.
    fn restore(&self, store: &SqliteStore) {
        let mut last = store.last_seq();
        for delivery in store.all().unwrap_or_default() {
            last = last.max(delivery.seq);
            self.file(Arc::new(delivery));
        }
        self.inner.seq.store(last, Ordering::Relaxed);
        for (id, script, answered) in store.scripts() {
            self.script_id(&id, Arc::new(script), answered, false);
        }
    }

    /// How many callbacks were strays in all.
    /// What `/metrics` counts.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    pub fn stray_count(&self) -> u64 {
        self.inner.stray_count.load(Ordering::Relaxed)
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &ReceiverConfig {
        &self.inner.config
    }

    fn next_seq(&self) -> u64 {
        // On a shared store the database numbers callbacks: what only this replica keeps (a
        // stray, a refusal it could not share) is numbered apart, where no callback's number
        // can ever be.
        if let Some(Store::Postgres(_)) = &self.inner.config.store {
            return LOCAL_SEQS + self.inner.local_seq.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether a callback presenting this holds one of the configured credentials (or the
    /// receiver is open); if not, why it is refused.
    pub fn credentials(
        &self,
        presented: &credentials::Presented,
        postback: bool,
    ) -> Result<(), Refusal> {
        let config = &self.inner.config;
        let auth = match (postback, &config.postback_auth) {
            (true, Some(auth)) => Some(auth),
            _ => config.auth.as_ref(),
        };
        match auth {
            None => Ok(()),
            Some(auth) => credentials::check(auth, presented),
        }
    }

    /// Files an authorized delivery under its conversion and its click (kept in the store
    /// first, when there is one), and wakes whoever waits for either; a delivery with neither
    /// id is a stray. Returns its sequence number, or why it could not be kept.
    pub fn record(&self, mut delivery: Delivery) -> Result<u64, StoreError> {
        delivery.seq = self.next_seq();
        let seq = delivery.seq;
        let ids = &delivery.ids;
        if ids.conversion.is_none() && ids.click.is_none() && ids.pub_click.is_none() {
            let reason = match delivery.postback {
                true => "a postback whose path names no pub_click_id (/postbacks/{pub_click_id}…)",
                false => "it carries no conversion or click id",
            };
            self.stray(&delivery, reason);
            return Ok(seq);
        }
        let started = std::time::Instant::now();
        if let Some(Store::Sqlite(store)) = &self.inner.config.store
            && let Err(e) = store.put(&self.without_secrets(&delivery))
        {
            return Err(self.not_kept(&delivery, e));
        }
        self.file(Arc::new(delivery));
        let metrics = &self.inner.metrics;
        metrics.stored(started.elapsed());
        metrics.taken.fetch_add(1, Ordering::Relaxed);
        Ok(seq)
    }

    /// Accounts for a callback the store could not keep (it is answered 503) as a stray, and
    /// returns why.
    fn not_kept(&self, delivery: &Delivery, e: StoreError) -> StoreError {
        self.stray(
            delivery,
            &format!("refused (503): the store could not keep it ({e})"),
        );
        e
    }

    /// `delivery` as it may be written to disk: the partner's secret header, and any header
    /// whose name or value looks secret, shown as reports show them.
    fn without_secrets(&self, delivery: &Delivery) -> Delivery {
        let mut kept = delivery.clone();
        let auth: Vec<&str> = self
            .inner
            .config
            .auth
            .iter()
            .flatten()
            .flat_map(Credential::leaves)
            .filter_map(|a| match a {
                Credential::Header { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        for (name, value) in &mut kept.headers {
            *value = if auth.iter().any(|a| name.eq_ignore_ascii_case(a)) {
                "***".into()
            } else {
                crate::mask::header_value(name, value)
            };
        }
        kept
    }

    /// The names of the query parameters that carry a token (`auth_query`).
    fn token_parameters(&self) -> Vec<&str> {
        let config = &self.inner.config;
        (config.auth.iter().flatten())
            .chain(config.postback_auth.iter().flatten())
            .flat_map(Credential::leaves)
            .filter_map(|a| match a {
                Credential::Query { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Shows the token of every token parameter (`auth_query`) as `***` in `delivery`'s query
    /// and decoded payload, before it is kept anywhere: no listing, store or report holds it.
    pub fn hide_tokens(&self, delivery: &mut Delivery) {
        let tokens = self.token_parameters();
        if tokens.is_empty() {
            return;
        }
        delivery.query = delivery
            .query
            .as_deref()
            .map(|q| self.query_without_tokens(q));
        if (self.inner.config.format == Format::Query || delivery.postback)
            && let Some(serde_json::Value::Object(payload)) = &mut delivery.json
        {
            for token in &tokens {
                if let Some(value) = payload.get_mut(*token) {
                    *value = serde_json::Value::String("***".into());
                }
            }
        }
    }

    /// `query` with the value of every token parameter (`auth_query`) shown as `***`.
    pub fn query_without_tokens(&self, query: &str) -> String {
        let tokens = self.token_parameters();
        if tokens.is_empty() {
            return query.to_string();
        }
        query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if tokens.iter().any(|t| decoded(k) == *t) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn file(&self, delivery: Arc<Delivery>) {
        let mut slots = lock(&self.inner.slots);
        for key in keys(&delivery) {
            let slot = slots.entry(key).or_default();
            // In arrival order: a replica learns of another's callbacks after its own now and
            // then (the end, but for that).
            let at = slot.deliveries.partition_point(|d| d.seq < delivery.seq);
            // Filed once: a replica's own callback may come back in a catch-up.
            if slot
                .deliveries
                .get(at)
                .is_some_and(|d| d.seq == delivery.seq)
            {
                continue;
            }
            slot.deliveries.insert(at, delivery.clone());
            slot.notify.notify_waiters();
        }
    }

    /// Keeps a callback refused for its credentials (`why`: what was wrong with them): a stray,
    /// and, by the conversion and click it names, a delivery the case they are sees (and is
    /// woken by) but never takes. Returns its sequence number.
    pub fn refuse(&self, mut delivery: Delivery, why: &Refusal) -> u64 {
        delivery.seq = self.next_seq();
        let seq = delivery.seq;
        self.inner.metrics.refused.fetch_add(1, Ordering::Relaxed);
        self.stray(&delivery, &format!("refused (401): {why}"));
        if let Some(kept) = refused_record(&delivery, why) {
            self.keep_refused(Arc::new(kept));
        }
        seq
    }

    /// Keeps a refused callback by the ids it names, and wakes whoever waits for them.
    fn keep_refused(&self, delivery: Arc<Delivery>) {
        lock(&self.inner.refused).keep(delivery.clone());
        let slots = lock(&self.inner.slots);
        for key in keys(&delivery) {
            if let Some(slot) = slots.get(&key) {
                slot.notify.notify_waiters();
            }
        }
    }

    /// The deliveries under `key` as the slot holds them, with the refused ones of `key` in
    /// order of arrival (the slots' lock held by the caller).
    fn view(&self, slot: Option<&Slot>, key: &Key) -> Vec<Arc<Delivery>> {
        self.looking_at(slot, key, <[Arc<Delivery>]>::to_vec)
    }

    /// What `look` makes of the deliveries under `key` (as [`Self::view`] lists them), without
    /// copying them when none was refused (the common case, and what a waiting case looks at).
    fn looking_at<R>(
        &self,
        slot: Option<&Slot>,
        key: &Key,
        look: impl FnOnce(&[Arc<Delivery>]) -> R,
    ) -> R {
        let kept = slot.map_or(&[][..], |s| &s.deliveries[..]);
        let refused = lock(&self.inner.refused);
        match refused.by_key.get(key) {
            None => look(kept),
            Some(refused) => {
                let mut all: Vec<Arc<Delivery>> = kept.iter().chain(refused).cloned().collect();
                all.sort_by_key(|d| d.seq);
                look(&all)
            }
        }
    }

    /// Forgets every callback received before `cutoff` (retention); returns how many.
    pub fn forget_before(&self, cutoff: chrono::DateTime<chrono::Utc>) -> usize {
        let mut forgotten = HashSet::new();
        let mut slots = lock(&self.inner.slots);
        slots.retain(|_, slot| {
            slot.deliveries.retain(|d| {
                let old = d.at < cutoff;
                if old {
                    forgotten.insert(d.seq);
                }
                !old
            });
            !slot.deliveries.is_empty() || Arc::strong_count(&slot.notify) > 1
        });
        drop(slots);
        if let Some(Store::Sqlite(store)) = &self.inner.config.store {
            store.forget_before(cutoff);
        }
        forgotten.len()
    }

    /// How many callbacks are kept now.
    pub fn kept(&self) -> usize {
        let mut seqs = HashSet::new();
        for slot in lock(&self.inner.slots).values() {
            seqs.extend(slot.deliveries.iter().map(|d| d.seq));
        }
        seqs.len()
    }

    /// Answers the deliveries filed under `key` with `script`, in order (the last repeats).
    pub fn script(&self, key: Key, script: Arc<Script>) {
        let scripted = Arc::new(Scripted {
            script,
            answered: AtomicU64::new(0),
            id: key.id().to_string(),
        });
        lock(&self.inner.scripts).insert(key, scripted);
    }

    /// Answers the deliveries of `id` (a click or a conversion) with `script`; kept in the
    /// store when `persist`.
    pub fn script_id(&self, id: &str, script: Arc<Script>, answered: u64, persist: bool) {
        if persist && let Some(Store::Sqlite(store)) = &self.inner.config.store {
            let _ = store.put_script(id, &script);
        }
        let scripted = Arc::new(Scripted {
            script,
            answered: AtomicU64::new(answered),
            id: id.to_string(),
        });
        let mut scripts = lock(&self.inner.scripts);
        scripts.insert(Key::Click(id.to_string()), scripted.clone());
        scripts.insert(Key::Conversion(id.to_string()), scripted);
    }

    /// The scripted answer to a delivery with these ids (by its click, else its conversion),
    /// if a case scripted one; each call answers the next delivery.
    pub fn scripted_answer(&self, ids: &CallbackIds) -> Option<ScriptedAnswer> {
        let scripts = lock(&self.inner.scripts);
        let keys = [
            ids.click.clone().map(Key::Click),
            ids.conversion.clone().map(Key::Conversion),
        ];
        let scripted = keys
            .into_iter()
            .flatten()
            .find_map(|k| scripts.get(&k).cloned())?;
        drop(scripts);
        let n = scripted.answered.fetch_add(1, Ordering::Relaxed) as usize;
        if let Some(Store::Sqlite(store)) = &self.inner.config.store {
            store.script_answered(&scripted.id);
        }
        scripted.script.answer(n).cloned()
    }

    /// Keeps a callback that will never be matched, with the reason.
    pub fn stray(&self, delivery: &Delivery, reason: &str) {
        let seq = if delivery.seq == 0 {
            self.next_seq()
        } else {
            delivery.seq
        };
        self.inner.stray_count.fetch_add(1, Ordering::Relaxed);
        let mut strays = lock(&self.inner.strays);
        if strays.len() >= MAX_STRAYS {
            strays.pop_front();
        }
        strays.push_back(Stray {
            seq,
            ..Stray::of(delivery, reason)
        });
    }

    /// Forgets the deliveries `seqs` filed under `key`, those a case claimed and whose verdict
    /// is final, under both of the keys each is filed under: nothing reads them again, so
    /// keeping them would only make memory grow with a run's cases. A slot left empty with no
    /// one waiting on it goes too.
    pub fn forget_claimed(&self, key: &Key, seqs: &[u64]) {
        let mut slots = lock(&self.inner.slots);
        let mut keys = vec![key.clone()];
        if let Some(slot) = slots.get(key) {
            keys.extend(
                slot.deliveries
                    .iter()
                    .filter(|d| seqs.contains(&d.seq))
                    .filter_map(|d| match key {
                        Key::Conversion(_) => d.ids.click.clone().map(Key::Click),
                        Key::Click(_) => d.ids.conversion.clone().map(Key::Conversion),
                        Key::Postback(_) => None,
                    }),
            );
        }
        for k in keys {
            if let Some(slot) = slots.get_mut(&k) {
                slot.deliveries.retain(|d| !seqs.contains(&d.seq));
                // Also the slot a case waited on in vain (`callback: none`).
                if slot.deliveries.is_empty() && Arc::strong_count(&slot.notify) == 1 {
                    slots.remove(&k);
                }
            }
        }
    }

    /// Every delivery filed under `key` so far, in arrival order.
    pub fn deliveries(&self, key: &Key) -> Vec<Arc<Delivery>> {
        let slots = lock(&self.inner.slots);
        self.view(slots.get(key), key)
    }

    /// How many callbacks reached the receiver in all.
    pub fn total(&self) -> u64 {
        self.inner.seq.load(Ordering::Relaxed)
    }

    /// Waits until `done` holds for the deliveries filed under `key`, or `deadline` passes;
    /// returns what arrived either way.
    pub async fn wait(
        &self,
        key: &Key,
        done: &(dyn Fn(&[Arc<Delivery>]) -> bool + Sync),
        deadline: Instant,
    ) -> Vec<Arc<Delivery>> {
        loop {
            let notified = {
                let mut slots = lock(&self.inner.slots);
                let slot = slots.entry(key.clone()).or_default();
                if self.looking_at(Some(slot), key, done) {
                    return self.view(Some(slot), key);
                }
                // Registered while the lock is held: a delivery filed after it wakes us.
                let notify = slot.notify.clone();
                let mut notified = Box::pin(notify.notified_owned());
                notified.as_mut().enable();
                notified
            };
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.deliveries(key);
            }
        }
    }

    /// Every callback that no case claimed (`claimed` holds the claimed sequence numbers):
    /// refused, unreadable, or filed under ids no case's delivery had.
    pub fn strays(&self, claimed: &HashSet<u64>) -> Vec<Stray> {
        let mut strays: Vec<Stray> = lock(&self.inner.strays).iter().cloned().collect();
        let mut seen = HashSet::new();
        for slot in lock(&self.inner.slots).values() {
            for d in &slot.deliveries {
                if !claimed.contains(&d.seq) && seen.insert(d.seq) {
                    strays.push(Stray::of(d, "no case expected a delivery with these ids"));
                }
            }
        }
        strays.sort_by_key(|s| s.seq);
        strays
    }

    /// The ids of a callback body, as this receiver reads them.
    pub fn ids(&self, json: Option<&serde_json::Value>) -> CallbackIds {
        json.map(|j| self.inner.config.correlation.ids(j))
            .unwrap_or_default()
    }
}

/// What is kept of a callback refused for its credentials, by the ids it names: what a case
/// needs to name the refusal, not the body or headers a flood could fill (`None` when it names
/// no id, or one too long to be real).
fn refused_record(delivery: &Delivery, why: &Refusal) -> Option<Delivery> {
    let sane = |id: &Option<String>| id.as_ref().is_none_or(|i| i.len() <= MAX_REFUSED_ID);
    let ids = &delivery.ids;
    if ids.conversion.is_none() && ids.click.is_none() && ids.pub_click.is_none()
        || !sane(&ids.conversion)
        || !sane(&ids.click)
        || !sane(&ids.callback)
        || !sane(&ids.pub_click)
    {
        return None;
    }
    let cut = |text: &str| crate::check::callback::truncate(text, MAX_REFUSED_ID);
    Some(Delivery {
        seq: delivery.seq,
        at: delivery.at,
        method: cut(&delivery.method),
        path: cut(&delivery.path),
        query: delivery.query.as_deref().map(cut),
        headers: Vec::new(),
        body: String::new(),
        json: None,
        ids: delivery.ids.clone(),
        postback: delivery.postback,
        attempt: delivery.attempt,
        answer: delivery.answer.clone(),
        refused: Some(why.to_string()),
    })
}

/// Compares secrets without stopping at the first differing byte.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    credentials::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// A query parameter's name, percent-decoded.
fn decoded(name: &str) -> String {
    form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
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

/// Serves `receiver` on `listener` until `shutdown` is cancelled.
pub fn serve(
    listener: TcpListener,
    receiver: Receiver,
    shutdown: CancellationToken,
) -> std::io::Result<ReceiverHandle> {
    serve_with(
        listener,
        receiver,
        shutdown,
        crate::serve::Limits::default(),
    )
}

/// [`serve`] with these limits on clients.
pub fn serve_with(
    listener: TcpListener,
    receiver: Receiver,
    shutdown: CancellationToken,
    limits: crate::serve::Limits,
) -> std::io::Result<ReceiverHandle> {
    let addr = listener.local_addr()?;
    let app = http::router(receiver.clone());
    crate::serve::spawn(listener, app, shutdown, limits);
    Ok(ReceiverHandle { addr, receiver })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{EndpointAnswer, MAX_STRAY_FIELD};
    use std::time::Duration;

    fn delivery(conversion: &str, click: &str) -> Delivery {
        Delivery {
            seq: 0,
            at: chrono::Utc::now(),
            method: "POST".into(),
            path: "/callbacks".into(),
            query: None,
            headers: vec![],
            body: String::new(),
            json: None,
            ids: CallbackIds {
                callback: Some(format!("cb-{conversion}")),
                conversion: Some(conversion.into()),
                click: Some(click.into()),
                pub_click: None,
            },
            postback: false,
            attempt: None,
            answer: EndpointAnswer {
                status: Some(200),
                ..EndpointAnswer::default()
            },
            refused: None,
        }
    }

    fn any(d: &[Arc<Delivery>]) -> bool {
        !d.is_empty()
    }

    /// With the clock paused, a broken wake-up would let the runtime jump to the deadline:
    /// the waiter must return with no virtual time passed.
    #[tokio::test(start_paused = true)]
    async fn a_waiting_case_wakes_when_its_callback_lands_not_at_its_deadline() {
        let receiver = Receiver::default();
        let started = Instant::now();
        let waiter = {
            let receiver = receiver.clone();
            tokio::spawn(async move {
                let key = Key::Conversion("c1".into());
                let got = receiver
                    .wait(&key, &any, Instant::now() + Duration::from_secs(3600))
                    .await;
                (got, Instant::now())
            })
        };
        // Let the waiter register before anything is recorded.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        receiver.record(delivery("other", "k0")).unwrap();
        receiver.record(delivery("c1", "k1")).unwrap();
        let (got, woke) = waiter.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].seq, 2);
        assert_eq!(
            woke - started,
            Duration::ZERO,
            "woken by the delivery, not the clock"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_gives_up_at_the_deadline_with_what_came() {
        let receiver = Receiver::default();
        receiver.record(delivery("c1", "k1")).unwrap();
        let started = Instant::now();
        let got = receiver
            .wait(
                &Key::Conversion("c1".into()),
                &|d| d.len() >= 2,
                Instant::now() + Duration::from_millis(20),
            )
            .await;
        assert_eq!(got.len(), 1);
        assert_eq!(Instant::now() - started, Duration::from_millis(20));
    }

    #[test]
    fn deliveries_are_found_by_conversion_and_by_click() {
        let receiver = Receiver::default();
        receiver.record(delivery("c1", "k1")).unwrap();
        receiver.record(delivery("c2", "k1")).unwrap();
        assert_eq!(receiver.deliveries(&Key::Conversion("c1".into())).len(), 1);
        assert_eq!(receiver.deliveries(&Key::Click("k1".into())).len(), 2);
    }

    #[test]
    fn every_callback_is_claimed_or_a_stray() {
        let receiver = Receiver::default();
        let a = receiver.record(delivery("c1", "k1")).unwrap();
        receiver.record(delivery("c2", "k2")).unwrap();
        let mut unkeyed = delivery("x", "y");
        unkeyed.ids = CallbackIds::default();
        receiver.record(unkeyed).unwrap();
        let strays = receiver.strays(&HashSet::from([a]));
        let reasons: Vec<(u64, &str)> = strays.iter().map(|s| (s.seq, s.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (2, "no case expected a delivery with these ids"),
                (3, "it carries no conversion or click id")
            ]
        );
        assert_eq!(receiver.total(), 3);
    }

    #[test]
    fn a_stray_keeps_a_bounded_prefix_of_whatever_its_sender_put_in_it() {
        let receiver = Receiver::default();
        let huge = "x".repeat(100_000);
        let mut refused = delivery(&huge, "k1");
        refused.path = format!("/callbacks/{huge}");
        receiver.refuse(refused, &Refusal::WrongSecret("X-Api-Token".into()));
        let strays = receiver.strays(&HashSet::new());
        let [stray] = strays.as_slice() else {
            panic!("one stray: {strays:?}")
        };
        let conversion = stray.ids.conversion.as_deref().unwrap();
        assert_eq!(conversion.chars().count(), MAX_STRAY_FIELD + 1);
        assert!(conversion.ends_with("x…"), "{conversion}");
        assert!(stray.path.starts_with("/callbacks/x") && stray.path.len() < 300);
        assert_eq!(stray.ids.click.as_deref(), Some("k1"));
        assert_eq!(stray.reason, "refused (401): wrong X-Api-Token");
    }

    #[test]
    fn scripted_answers_go_in_order_and_the_last_repeats() {
        let receiver = Receiver::default();
        let answer = |status: u16| ScriptedAnswer {
            status,
            body: String::new(),
            delay: Duration::ZERO,
        };
        receiver.script(
            Key::Click("k1".into()),
            Arc::new(Script {
                answers: vec![answer(503), answer(200)],
            }),
        );
        let ids = delivery("c1", "k1").ids;
        let statuses: Vec<u16> = (0..4)
            .filter_map(|_| receiver.scripted_answer(&ids).map(|a| a.status))
            .collect();
        assert_eq!(statuses, [503, 200, 200, 200]);
        assert!(
            receiver
                .scripted_answer(&delivery("c2", "k2").ids)
                .is_none()
        );
    }

    #[test]
    fn only_the_configured_secret_is_authorized_and_query_tokens_are_not_kept() {
        let receiver = Receiver::new(ReceiverConfig {
            auth: Some(vec![
                AuthHeader {
                    name: "X-Api-Token".into(),
                    secret: "s3cret-value".into(),
                }
                .into(),
                Credential::Query {
                    name: "api key".into(),
                    secret: "q-token-77".into(),
                },
            ]),
            ..ReceiverConfig::default()
        });
        let authorized = |r: &Receiver, headers: &[(String, String)], query: Option<&str>| {
            r.credentials(
                &credentials::Presented {
                    headers,
                    query,
                    body: Some(b""),
                    now: 0,
                },
                false,
            )
            .is_ok()
        };
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert!(authorized(
            &receiver,
            &h("x-api-token", "s3cret-value"),
            None
        ));
        assert!(!authorized(
            &receiver,
            &h("x-api-token", "s3cret-valuE"),
            None
        ));
        assert!(!authorized(&receiver, &h("x-other", "s3cret-value"), None));
        assert!(authorized(&receiver, &[], Some("api+key=q-token-77")));
        assert!(!authorized(&receiver, &[], None));
        assert!(
            authorized(&Receiver::default(), &[], None),
            "an open receiver"
        );
        let closed = Receiver::new(ReceiverConfig {
            auth: Some(Vec::new()),
            ..ReceiverConfig::default()
        });
        assert!(
            !authorized(&closed, &h("x-api-token", ""), None),
            "no partner posts here: nothing is taken"
        );
        assert_eq!(
            receiver.query_without_tokens("tx=1&api%20key=q-token-77&b"),
            "tx=1&api%20key=***&b"
        );
    }
}
