//! An embedded emulation of a GoKart tenant's Operation Tools, over real HTTP (axum).
//!
//! `POST /api/v1/tools/{clicks,conversions,callbacks}`, `PATCH /api/v1/conversions/{id}` and
//! `GET /api/v1/conversion-callbacks`, answered in GoKart's wrapper; callbacks are POSTed as
//! schema v1 to each partner's endpoint (by default, pitcrew's receiver).

mod api;
pub mod config;
mod delivery;
pub mod faults;
mod payload;
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;

pub use api::{OPENAPI, ROUTES};
pub use config::{DEMO_OFFER, DEMO_PARTNER, SEEDED_CLICK, SEEDED_CONVERSION, SandboxConfig};
use store::{Attempt, Store};

use tokio_util::sync::CancellationToken;

/// State shared by the sandbox's handlers.
pub struct SandboxState {
    config: SandboxConfig,
    store: Mutex<Store>,
    client: reqwest::Client,
    /// Where partners without a `callback_url` send their callbacks.
    default_callback_url: Arc<str>,
    /// The deliveries the sandbox will still make on its own, by number: when each is next
    /// due (one being sent is due already), and what it is for.
    pending: Mutex<HashMap<u64, Due>>,
    next_pending: AtomicU64,
}

/// When a pending delivery is due, and the conversion and click it is for.
#[derive(Debug, Clone, Copy)]
struct Due {
    at: tokio::time::Instant,
    conversion: store::Id,
    click: store::Id,
}

/// Which pending deliveries: all, or those filed under a conversion or a click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filed {
    Anywhere,
    Conversion(uuid::Uuid),
    Click(uuid::Uuid),
}

impl Filed {
    /// The deliveries filed under the conversion or click with this id, as text (an id that
    /// is not one of the sandbox's has nothing pending).
    pub fn under(conversion: Option<&str>, click: Option<&str>) -> Option<Filed> {
        match (conversion, click) {
            (Some(c), _) => store::parse_id(c).map(Filed::Conversion),
            (None, Some(c)) => store::parse_id(c).map(Filed::Click),
            (None, None) => Some(Filed::Anywhere),
        }
    }

    fn holds(self, due: &Due) -> bool {
        match self {
            Filed::Anywhere => true,
            Filed::Conversion(id) => due.conversion == id,
            Filed::Click(id) => due.click == id,
        }
    }
}

/// A delivery the sandbox is making or will still make (a callback being sent, a delayed
/// callback, a delayed duplicate, a retry), registered before it starts (or before its task
/// is spawned) until it is done, so that a run can tell when nothing more can arrive.
pub(crate) struct Pending {
    state: Arc<SandboxState>,
    id: u64,
}

impl Pending {
    /// Registers a delivery of `sent`'s callback due at `due`.
    fn new(state: &Arc<SandboxState>, sent: &store::Sent, due: tokio::time::Instant) -> Pending {
        let id = state.next_pending.fetch_add(1, Ordering::Relaxed);
        let due = Due {
            at: due,
            conversion: sent.conversion_id,
            click: sent.click_id,
        };
        state.pending().insert(id, due);
        Pending {
            state: state.clone(),
            id,
        }
    }

    /// Its next attempt is due at `due`.
    fn due(&self, due: tokio::time::Instant) {
        if let Some(pending) = self.state.pending().get_mut(&self.id) {
            pending.at = due;
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.state.pending().remove(&self.id);
    }
}

impl SandboxState {
    fn store(&self) -> MutexGuard<'_, Store> {
        // A handler that panicked mid-update must not take the whole sandbox down.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Due>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the next delivery filed as `filed` is due (in the past while one is being sent);
    /// `None` when the sandbox has nothing left to send there. (Every delivery a tool answer
    /// reports is made or registered before the answer is sent.)
    fn next_due(&self, filed: Filed) -> Option<tokio::time::Instant> {
        self.pending()
            .values()
            .filter(|due| filed.holds(due))
            .map(|due| due.at)
            .min()
    }

    /// How many deliveries filed as `filed` are being sent or still due.
    fn pending_count(&self, filed: Filed) -> usize {
        self.pending()
            .values()
            .filter(|due| filed.holds(due))
            .count()
    }

    /// How many delivery attempts of a conversion's callbacks the log holds (`None` for
    /// anything but one conversion: counting a click's would mean reading every conversion).
    fn made(&self, filed: Filed) -> Option<usize> {
        match filed {
            Filed::Conversion(id) => Some(self.store().log.get(&id).map_or(0, Vec::len)),
            Filed::Click(_) | Filed::Anywhere => None,
        }
    }

    fn record(&self, attempt: Attempt) {
        let mut store = self.store();
        // A forgotten conversion's late attempts (retries, delayed copies) are not logged.
        // (Only a sandbox whose callbacks pitcrew's receiver sees forgets: a run that reads
        // this log while its cases settle must never make it forget, or it would miss them.)
        if !store
            .conversions
            .contains_key(&attempt.callback.conversion_id)
        {
            return;
        }
        store
            .log
            .entry(attempt.callback.conversion_id)
            // Most callbacks are delivered at the first attempt.
            .or_insert_with(|| Vec::with_capacity(1))
            .push(attempt);
    }
}

/// A running sandbox.
#[derive(Clone)]
pub struct SandboxHandle {
    pub addr: SocketAddr,
    state: Arc<SandboxState>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SandboxHandle {
    /// Forgets a click and a conversion, and the conversion's callback log (the seeded ones
    /// stay). The embedded sandbox does this for each judged case: nothing reads its records
    /// again, so a run's memory does not grow with its cases. Members' completed offer events
    /// are kept: the once-per-member rule holds for the whole run.
    pub fn forget(&self, click: Option<&str>, conversion: Option<&str>) {
        let mut store = self.state.store();
        if let Some(id) = conversion
            .and_then(store::parse_id)
            .filter(|id| *id != config::SEEDED_CONVERSION_ID)
        {
            store.conversions.remove(&id);
            store.log.remove(&id);
        }
        if let Some(id) = click
            .and_then(store::parse_id)
            .filter(|id| *id != config::SEEDED_CLICK_ID)
        {
            store.clicks.remove(&id);
        }
    }

    /// When the sandbox next sends a delivery filed as `filed` (in the past while one is
    /// being sent); `None` when it has nothing left to send there.
    pub fn next_due(&self, filed: Filed) -> Option<tokio::time::Instant> {
        self.state.next_due(filed)
    }

    /// The API's base URL, e.g. `http://127.0.0.1:41234/api/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }
}

/// Serves the sandbox on `listener` until `shutdown` is cancelled; callbacks of partners without their own
/// URL go to `default_callback_url`.
pub fn serve(
    listener: TcpListener,
    config: SandboxConfig,
    default_callback_url: String,
    shutdown: CancellationToken,
) -> std::io::Result<SandboxHandle> {
    let addr = listener.local_addr()?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        // GoKart never follows a redirect when it delivers: a 3xx is the endpoint's answer (the
        // body never reached a handler), and it is not a 2xx.
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        // Servers drop connections idle past their header timeout: reuse only fresh ones.
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(std::io::Error::other)?;
    let state = Arc::new(SandboxState {
        store: Mutex::new(Store::seeded(&config)),
        config,
        client,
        default_callback_url: Arc::from(default_callback_url),
        pending: Mutex::new(HashMap::new()),
        next_pending: AtomicU64::new(0),
    });
    let app = api::router(state.clone());
    crate::serve::spawn(listener, app, shutdown, crate::serve::Limits::default());
    Ok(SandboxHandle { addr, state })
}
