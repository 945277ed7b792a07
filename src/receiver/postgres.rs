//! The receiver's shared store (`--store postgres://…`): several `pitcrew receive` replicas
//! behind a load balancer keep their callbacks and scripts in one PostgreSQL database.
//!
//! - A callback is written before it is answered, so a replica killed mid-flood loses nothing
//!   it answered 2xx, and a database that is gone makes it answer 503 (the platform retries).
//! - Each replica follows what the others take: an insert notifies every replica listening
//!   (LISTEN/NOTIFY, no polling loop), which reads the new rows and files them in its own
//!   memory, waking the long polls waiting for them. A listing first reads what is new, so a
//!   callback answered 2xx by any replica is in the next listing of every replica.
//! - Scripts live only in the database: whichever replica a delivery reaches answers it with
//!   the script's next answer, counted across replicas in one statement.
//! - The schema is `migrations/postgres/*.sql`, applied in order by the first replica that
//!   starts and recorded in `pitcrew_migrations`.
//!
//! Sequence numbers are the database's, so every replica lists a callback under the same one.
//! Inserts commit out of order now and then (seq 7 after seq 8): a follower remembers the
//! numbers it skipped for a minute and reads them again ([`Follow`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::StoreError;
use super::store::{script_from_text, script_text};
use crate::delivery::{CallbackIds, Delivery, Script, ScriptedAnswer};

/// A connection to the database, as tokio-postgres drives it.
type Connection =
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>;

/// The schema's migrations, in order: (version, what it adds, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "callbacks and scripts",
    include_str!("../../migrations/postgres/0001_callbacks_and_scripts.sql"),
)];

/// Connections a replica keeps for its statements (besides the one that listens).
const CONNECTIONS: usize = 4;
/// The longest a statement may take; then the callback is answered 503.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows read at once when catching up, at most, and their bytes, at most (a page holds one
/// row at least).
const BATCH: i64 = 10_000;
const BATCH_BYTES: i64 = 16 * 1024 * 1024;
/// How far below the highest number a catch-up reads it remembers the numbers it did not see
/// (the inserts still committing then): far more than replicas insert at once.
const GAP_WINDOW: u64 = 10_000;
/// How long a skipped sequence number is read again (a commit still on its way, or an insert
/// rolled back): far longer than [`STATEMENT_TIMEOUT`].
const GAP_LIFETIME: Duration = Duration::from_secs(60);
/// How far below the first row it reads a replica that just started remembers the numbers
/// it did not see.
const START_WINDOW: u64 = 1_000;
/// The most skipped sequence numbers remembered.
const MAX_GAPS: usize = 10_000;
/// The channel an insert notifies.
const CHANNEL: &str = "pitcrew_callbacks";
/// The advisory lock replicas take to migrate one at a time.
const MIGRATION_LOCK: i64 = 0x0070_6974_6372_6577; // "pitcrew"

/// One PostgreSQL database shared by every replica.
pub struct PgStore {
    config: Config,
    /// The URL without its password, for messages.
    shown: String,
    pool: Vec<tokio::sync::Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
    follow: Mutex<Follow>,
    /// Held by the catch-up under way.
    catching_up: tokio::sync::Mutex<()>,
    /// Whether the last statement reached the database (to say once when it goes and returns).
    up: AtomicBool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.shown)
    }
}

/// Which sequence numbers this replica has filed: every one up to `watermark` except the
/// `gaps`, and the `own` ones above it (inserted here, filed before a catch-up saw them).
#[derive(Default)]
struct Follow {
    watermark: u64,
    gaps: BTreeMap<u64, Instant>,
    own: BTreeSet<u64>,
}

impl Follow {
    /// Marks `seq` filed; whether it was not yet (and so is to be filed now).
    fn mark(&mut self, seq: u64) -> bool {
        if seq <= self.watermark {
            self.gaps.remove(&seq).is_some()
        } else {
            self.own.insert(seq)
        }
    }

    /// After a catch-up whose rows above the watermark went from `first` to `top`: the numbers
    /// below `top` it did not see (within [`GAP_WINDOW`] of it, and above `first` on the
    /// first catch-up) are gaps, read again until [`GAP_LIFETIME`] passes.
    fn advance(&mut self, (first, top): (u64, u64), now: Instant) {
        if top > self.watermark {
            // Numbers far below `top` were deleted (retention) or rolled back long ago, and so
            // were most below the first a replica that just started reads (those just below
            // it may still be committing).
            let start = match self.watermark {
                0 => first.saturating_sub(START_WINDOW).max(1),
                watermark => watermark + 1,
            };
            let mut seq = start.max(top.saturating_sub(GAP_WINDOW));
            while seq < top && self.gaps.len() < MAX_GAPS {
                if !self.own.contains(&seq) {
                    self.gaps.insert(seq, now);
                }
                seq += 1;
            }
            self.watermark = top;
            self.own.retain(|s| *s > top);
        }
        self.gaps
            .retain(|_, at| now.duration_since(*at) < GAP_LIFETIME);
    }
}

fn lock(mutex: &Mutex<Follow>) -> MutexGuard<'_, Follow> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a listening replica hears: `Some` when a callback was taken (by any replica), `None`
/// once the connection is gone.
pub struct Listening {
    heard: mpsc::Receiver<()>,
    _client: Client,
}

impl Listening {
    pub async fn next(&mut self) -> Option<()> {
        self.heard.recv().await
    }
}

impl PgStore {
    /// Connects to the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| StoreError {
            path: "--store postgres://…".into(),
            message: format!(
                "{e} (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?options])"
            ),
        })?;
        if let Ok(password) = std::str::from_utf8(config.get_password().unwrap_or_default()) {
            crate::mask::register(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A database gone without a word (a failover behind an address) is noticed in about
        // 25 s, by the connection that only listens too.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        let store = PgStore {
            shown: shown(&config),
            config,
            pool: (0..CONNECTIONS)
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
            follow: Mutex::new(Follow::default()),
            catching_up: tokio::sync::Mutex::new(()),
            up: AtomicBool::new(true),
        };
        if store.config.get_ssl_mode() == SslMode::Require {
            return Err(store.error(
                "sslmode=require: this pitcrew speaks to PostgreSQL without TLS; reach it on a \
                 private network or through a local TLS proxy, with sslmode=disable or prefer",
            ));
        }
        store.migrate().await?;
        Ok(store)
    }

    /// The database, as messages and `/api/health` name it (no password).
    pub fn name(&self) -> &str {
        &self.shown
    }

    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.shown.clone(),
            message: e.to_string(),
        }
    }

    fn db_error(&self, e: &tokio_postgres::Error) -> StoreError {
        self.error(crate::error_chain(e))
    }

    /// A new connection, within [`CONNECT_TIMEOUT`]; the caller drives it.
    async fn open_connection(&self) -> Result<(Client, Connection), StoreError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(NoTls))
            .await
            .map_err(|_| self.error("no answer to a connection within 5s"))?
            .map_err(|e| self.db_error(&e))
    }

    /// A new connection for statements, driven in a task of its own.
    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.open_connection().await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "SET statement_timeout = {}",
                STATEMENT_TIMEOUT.as_millis()
            ))
            .await
            .map_err(|e| self.db_error(&e))?;
        Ok(client)
    }

    /// A connection of the pool (opened again when it was lost), and its slot.
    async fn client(&self) -> Result<(usize, Arc<Client>), StoreError> {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        let mut slot = self.pool[at].lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok((at, client.clone()));
        }
        *slot = None;
        let client = Arc::new(self.connect().await?);
        *slot = Some(client.clone());
        Ok((at, client))
    }

    /// Runs `statement` on a connection of the pool, within [`STATEMENT_TIMEOUT`]. A
    /// connection that failed or did not answer is dropped (a half-open one after a failover
    /// would fail every statement sent on it).
    async fn run<T, F>(&self, statement: impl FnOnce(Arc<Client>) -> F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let outcome = async {
            let (at, client) = self.client().await?;
            let answered = tokio::time::timeout(
                STATEMENT_TIMEOUT + Duration::from_secs(1),
                statement(client),
            )
            .await;
            let outcome = match answered {
                Err(_) => Err(self.error("the database did not answer within 10s")),
                Ok(Err(e)) if e.as_db_error().is_none() => Err(self.db_error(&e)),
                Ok(Err(e)) => return Err(self.db_error(&e)),
                Ok(Ok(value)) => return Ok(value),
            };
            *self.pool[at].lock().await = None;
            outcome
        }
        .await;
        self.went(outcome.as_ref().err());
        outcome
    }

    /// Says once when the database stops answering, and once when it is back.
    fn went(&self, error: Option<&StoreError>) {
        match error {
            Some(e) if self.up.swap(false, Ordering::Relaxed) => eprintln!(
                "{}",
                crate::mask::mask(&format!(
                    "pitcrew receive: {e}; callbacks are answered 503 until it is back"
                ))
            ),
            None if !self.up.swap(true, Ordering::Relaxed) => {
                eprintln!("pitcrew receive: the store {} is back", self.shown)
            }
            _ => {}
        }
    }

    /// Applies the migrations the database lacks, one replica at a time.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.connect().await?;
        let e = |e: tokio_postgres::Error| self.db_error(&e);
        let tx = client.transaction().await.map_err(e)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(e)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS pitcrew_migrations (
                 version INTEGER PRIMARY KEY,
                 name TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(e)?;
        let at: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM pitcrew_migrations",
                &[],
            )
            .await
            .map_err(e)?
            .get(0);
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if at > known {
            return Err(self.error(format!(
                "its schema is at migration {at}, and this pitcrew knows migrations up to \
                 {known}: a newer pitcrew migrated it; run that version (or newer) on every replica"
            )));
        }
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > at) {
            tx.batch_execute(sql).await.map_err(|err| {
                self.error(format!(
                    "migration {version} ({name}) failed: {}",
                    crate::error_chain(&err)
                ))
            })?;
            tx.execute(
                "INSERT INTO pitcrew_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(e)?;
        }
        tx.commit().await.map_err(e)
    }

    /// Keeps `delivery` (before it is answered); once the database has it, `file` files it in
    /// this replica's memory under its sequence number (filing is idempotent: a catch-up may
    /// have filed it already).
    pub async fn put(
        &self,
        mut delivery: Delivery,
        file: impl FnOnce(Delivery),
    ) -> Result<u64, StoreError> {
        let payload = delivery.json.take();
        let text = serde_json::to_string(&delivery).map_err(|e| self.error(e))?;
        let payload_text = payload.as_ref().map(Value::to_string);
        delivery.json = payload;
        let at: DateTime<Utc> = delivery.at;
        let seq: i64 = self
            .run(|c| async move {
                let row = c
                    .query_one(
                        "INSERT INTO pitcrew_callbacks (received_at, delivery, payload) \
                         VALUES ($1, $2, $3) RETURNING seq",
                        &[&at, &text, &payload_text],
                    )
                    .await?;
                Ok(row.get(0))
            })
            .await?;
        let seq = seq.max(0) as u64;
        delivery.seq = seq;
        let mut follow = lock(&self.follow);
        follow.mark(seq);
        file(delivery);
        Ok(seq)
    }

    /// Reads the callbacks this replica has not filed yet (taken by any replica) and files
    /// each with `file`; returns how many. One catch-up at a time: those waiting for it find
    /// little left to read.
    pub async fn catch_up(&self, file: impl Fn(Delivery)) -> Result<usize, StoreError> {
        let _one = self.catching_up.lock().await;
        let mut filed = 0;
        loop {
            let (after, gaps): (i64, Vec<i64>) = {
                let follow = lock(&self.follow);
                let gaps = follow.gaps.keys().map(|s| *s as i64).collect();
                (follow.watermark as i64, gaps)
            };
            let rows = self
                .run(|c| async move {
                    c.query(
                        "SELECT seq, delivery, payload, total FROM ( \
                             SELECT seq, delivery, payload, size, count(*) OVER () AS total, \
                                 sum(size) OVER (ORDER BY seq) AS running \
                             FROM (SELECT seq, delivery, payload, \
                                     length(delivery) + coalesce(length(payload), 0) AS size \
                                 FROM pitcrew_callbacks WHERE seq > $1 OR seq = ANY($2) \
                                 ORDER BY seq LIMIT $3) limited) page \
                         WHERE running - size < $4 ORDER BY seq",
                        &[&after, &gaps, &BATCH, &BATCH_BYTES],
                    )
                    .await
                })
                .await?;
            let read: Vec<(u64, Option<Delivery>)> = rows
                .iter()
                .map(|row| {
                    let seq = row.get::<_, i64>(0).max(0) as u64;
                    (seq, self.delivery(seq, row.get(1), row.get(2)))
                })
                .collect();
            let mut follow = lock(&self.follow);
            let (mut first, mut top) = (u64::MAX, 0);
            for (seq, delivery) in read {
                top = top.max(seq);
                if seq > follow.watermark {
                    first = first.min(seq);
                }
                if !follow.mark(seq) {
                    continue;
                }
                if let Some(delivery) = delivery {
                    file(delivery);
                    filed += 1;
                }
            }
            follow.advance((first, top), Instant::now());
            // The last page: every row there was, and fewer than a page's rows.
            let total = rows.first().map_or(0, |r| r.get::<_, i64>(3));
            if total < BATCH && rows.len() as i64 == total {
                return Ok(filed);
            }
        }
    }

    /// The delivery a row holds (`None`, said on stderr, when pitcrew did not write it).
    fn delivery(&self, seq: u64, text: &str, payload: Option<&str>) -> Option<Delivery> {
        let read = serde_json::from_str::<Delivery>(text).and_then(|mut delivery| {
            delivery.json = payload.map(serde_json::from_str).transpose()?;
            delivery.seq = seq;
            Ok(delivery)
        });
        match read {
            Ok(delivery) => Some(delivery),
            Err(e) => {
                eprintln!(
                    "pitcrew receive: row {seq} of pitcrew_callbacks in {} is not a callback pitcrew wrote ({e}); left out",
                    self.shown
                );
                None
            }
        }
    }

    /// Listens for callbacks taken by any replica.
    pub async fn listen(&self) -> Result<Listening, StoreError> {
        let outcome = self.listening().await;
        self.went(outcome.as_ref().err());
        outcome
    }

    async fn listening(&self) -> Result<Listening, StoreError> {
        let (client, mut connection) = self.open_connection().await?;
        let (tell, heard) = mpsc::channel(1);
        tokio::spawn(async move {
            while let Some(Ok(message)) =
                std::future::poll_fn(|cx| connection.poll_message(cx)).await
            {
                if let AsyncMessage::Notification(_) = message {
                    // One wake-up pending is enough: the catch-up reads everything new.
                    let _ = tell.try_send(());
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| self.db_error(&e))?;
        Ok(Listening {
            heard,
            _client: client,
        })
    }

    /// Keeps `script` for the deliveries of `id` (a click or a conversion), from its first
    /// answer again.
    pub async fn put_script(&self, id: &str, script: &Script) -> Result<(), StoreError> {
        let (id, text) = (id.to_string(), script_text(script));
        self.run(|c| async move {
            c.execute(
                "INSERT INTO pitcrew_scripts (id, script, answered, registered_at) \
                 VALUES ($1, $2, 0, now()) ON CONFLICT (id) DO UPDATE \
                 SET script = EXCLUDED.script, answered = 0, registered_at = now()",
                &[&id, &text],
            )
            .await
        })
        .await
        .map(drop)
    }

    /// The scripted answer to a delivery with these ids (by its click, else its conversion),
    /// if a case scripted one: each call, on any replica, answers the next delivery.
    pub async fn answer(&self, ids: &CallbackIds) -> Result<Option<ScriptedAnswer>, StoreError> {
        let wanted: Vec<String> = [&ids.click, &ids.conversion]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        let row = self
            .run(|c| async move {
                c.query_opt(
                    "WITH hit AS (SELECT id FROM pitcrew_scripts WHERE id = ANY($1) \
                         ORDER BY array_position($1, id) LIMIT 1 FOR UPDATE) \
                     UPDATE pitcrew_scripts s SET answered = s.answered + 1 FROM hit \
                     WHERE s.id = hit.id RETURNING s.script, s.answered - 1",
                    &[&wanted],
                )
                .await
            })
            .await?;
        Ok(row.and_then(|row| {
            let script = script_from_text(row.get(0))?;
            let n = row.get::<_, i64>(1).max(0) as usize;
            script.answer(n).cloned()
        }))
    }

    /// Forgets the callbacks received, and the scripts registered, before `cutoff`.
    pub async fn forget_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.run(|c| async move {
            let callbacks = c
                .execute(
                    "DELETE FROM pitcrew_callbacks WHERE received_at < $1",
                    &[&cutoff],
                )
                .await?;
            c.execute(
                "DELETE FROM pitcrew_scripts WHERE registered_at < $1",
                &[&cutoff],
            )
            .await?;
            Ok(callbacks)
        })
        .await
    }

    /// Whether the database answers (`/api/health`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| async move { c.batch_execute("SELECT 1").await })
            .await
    }
}

/// `postgres://USER@HOST:PORT/DATABASE`, without the password.
fn shown(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts commit out of order: a number skipped by one catch-up is filed when a later
    /// one reads it, once, and one inserted here is never filed twice.
    #[test]
    fn every_number_is_filed_once_whatever_order_commits_come_in() {
        let now = Instant::now();
        let mut follow = Follow::default();
        // A catch-up sees 1, 2 and 4 (3 not committed yet).
        for seq in [1, 2, 4] {
            assert!(follow.mark(seq));
        }
        follow.advance((1, 4), now);
        assert_eq!(follow.gaps.keys().copied().collect::<Vec<_>>(), [3]);
        // This replica's own insert 5 is filed before any catch-up reads it.
        assert!(follow.mark(5));
        // 3 commits; the next catch-up reads 3 (a gap) and 5 (filed already).
        assert!(follow.mark(3));
        assert!(!follow.mark(5));
        follow.advance((3, 5), now);
        assert!(follow.gaps.is_empty() && follow.own.is_empty());
        // Nothing below the watermark is filed again.
        assert!((1..=5).all(|seq| !follow.mark(seq)));
        // A gap never filled is forgotten after a minute.
        assert!(follow.mark(7));
        follow.advance((7, 7), now);
        assert_eq!(follow.gaps.len(), 1);
        follow.advance((7, 7), now + GAP_LIFETIME);
        assert!(follow.gaps.is_empty());
    }

    #[test]
    fn a_huge_jump_in_numbers_remembers_a_bounded_number_of_gaps() {
        let mut follow = Follow::default();
        assert!(follow.mark(10));
        follow.advance((10, 10), Instant::now());
        assert!(follow.mark(u64::MAX / 2));
        follow.advance((u64::MAX / 2, u64::MAX / 2), Instant::now());
        assert_eq!(follow.gaps.len(), MAX_GAPS);
    }

    /// Retention deleted numbers 1 to 20,000: a replica that starts then remembers as gaps
    /// only the few just below the first row it reads (all would fill its gaps for a minute).
    #[test]
    fn a_replica_that_starts_late_remembers_few_gaps_below_the_first_row() {
        let mut follow = Follow::default();
        for seq in [20_001, 20_002, 20_004] {
            assert!(follow.mark(seq));
        }
        follow.advance((20_001, 20_004), Instant::now());
        // Those just below the first may still be committing.
        assert_eq!(follow.gaps.len(), START_WINDOW as usize + 1);
        assert!(follow.gaps.contains_key(&20_003) && follow.gaps.contains_key(&19_001));
        assert!(!follow.gaps.contains_key(&19_000));
    }

    #[test]
    fn the_database_is_named_without_its_password() {
        let config: Config = "postgres://qa:hunter2-secret@db.internal:6432/pitcrew"
            .parse()
            .unwrap();
        assert_eq!(shown(&config), "postgres://qa@db.internal:6432/pitcrew");
    }
}
