//! Where a run sees the platform's deliveries: the one seam between the runner and the ways of
//! observing callbacks (pitcrew's receiver in this process, or the platform's callback log).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::delivery::{Delivery, Key, Script, Stray};
use crate::platform::{Platform, PlatformError};
use crate::receiver::Receiver;

/// Why the deliveries could not be seen, or a script could not be registered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The platform's callback log could not be read.
    #[error(transparent)]
    Log(#[from] PlatformError),
    /// A shared receiver could not be reached, or answered what pitcrew cannot read.
    #[error("the receiver at {base}: {message}")]
    Receiver { base: String, message: String },
    /// A shared receiver refused pitcrew's API token.
    #[error(
        "the receiver at {base} refused pitcrew's token (HTTP {status}): set PITCREW_RECEIVER_TOKEN"
    )]
    Unauthorized { base: String, status: u16 },
    /// This target's callbacks go to an endpoint pitcrew does not answer.
    #[error("this target's callbacks go to an endpoint pitcrew does not answer")]
    NoScripts,
}

/// A test on the deliveries seen so far: has the wait ended?
pub type Done<'a> = &'a (dyn Fn(&[Arc<Delivery>]) -> bool + Sync);

/// Deliveries, as a run observes them.
pub trait CallbackSource: Send + Sync + 'static {
    /// Every delivery under `key` seen so far, oldest first.
    fn deliveries(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<Vec<Arc<Delivery>>, SourceError>> + Send;

    /// Waits until `done` holds for the deliveries under `key`, or `deadline` passes; returns
    /// the deliveries either way.
    fn wait(
        &self,
        key: &Key,
        done: Done<'_>,
        deadline: Instant,
    ) -> impl Future<Output = Result<Vec<Arc<Delivery>>, SourceError>> + Send;

    /// Makes the endpoint answer the deliveries filed under `key` as `script` says. Only a
    /// receiver pitcrew controls can; plans for other sources refuse `receiver:` scripts.
    fn script(
        &self,
        key: Key,
        script: Arc<Script>,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        let _ = (key, script);
        async { Err(SourceError::NoScripts) }
    }

    /// The deliveries `seqs` under `key` were claimed by a case whose verdict is final: a
    /// source that keeps deliveries may forget them. Sources that keep nothing between reads
    /// have nothing to do.
    fn forget(&self, key: &Key, seqs: &[u64]) {
        let _ = (key, seqs);
    }

    /// How the deliveries under `key` were read since this was last asked (the platform's log:
    /// how many reads, of what URL, and what the last found), for the case's transcript; `None`
    /// for a source that is not read.
    fn take_reads(&self, key: &Key) -> Option<String> {
        let _ = key;
        None
    }

    /// Where the partner postbacks of a case with publisher click id `pub_click` (and, when it
    /// made one, conversion `conversion`) are filed: at pitcrew's receiver, under the click id
    /// their path names (`/postbacks/{pub_click_id}…`). `None`: this source cannot see them.
    fn postback_key(&self, pub_click: &str, conversion: Option<&str>) -> Option<Key> {
        let _ = conversion;
        Some(Key::Postback(pub_click.to_string()))
    }

    /// Whether waiting here sends the platform requests again and again (reading its callback
    /// log): a waiting case then keeps its job slot, as `--jobs` bounds those requests too.
    fn waiting_sends_requests(&self) -> bool {
        false
    }

    /// The callbacks that reached pitcrew and no case claimed (`claimed`: their sequence
    /// numbers). Sources that only read the platform's own records have none.
    fn strays(&self, claimed: &HashSet<u64>) -> Vec<Stray> {
        let _ = claimed;
        Vec::new()
    }
}

impl CallbackSource for Receiver {
    async fn deliveries(&self, key: &Key) -> Result<Vec<Arc<Delivery>>, SourceError> {
        Ok(Receiver::deliveries(self, key))
    }

    async fn wait(
        &self,
        key: &Key,
        done: Done<'_>,
        deadline: Instant,
    ) -> Result<Vec<Arc<Delivery>>, SourceError> {
        Ok(Receiver::wait(self, key, done, deadline).await)
    }

    async fn script(&self, key: Key, script: Arc<Script>) -> Result<(), SourceError> {
        Receiver::script(self, key, script);
        Ok(())
    }

    fn forget(&self, key: &Key, seqs: &[u64]) {
        Receiver::forget_claimed(self, key, seqs);
    }

    fn strays(&self, claimed: &HashSet<u64>) -> Vec<Stray> {
        Receiver::strays(self, claimed)
    }
}

/// The platform's conversion-callback log, read until the deliveries show up.
pub struct CallbackLog<P> {
    platform: Arc<P>,
    /// The reads of each key not yet told to its case.
    reads: std::sync::Mutex<std::collections::HashMap<Key, Reads>>,
}

/// The reads of one key's log entries.
struct Reads {
    count: u32,
    first: Instant,
    last: Instant,
    /// What the last read found: its number of entries, or why it failed.
    found: Result<usize, String>,
}

/// How often the log is read while a case waits, at most: the first reads come sooner (from
/// [`LOG_POLL_FIRST`], doubling), as a callback usually lands within milliseconds of its
/// conversion, and a case that sleeps longer than that holds its job slot for nothing.
const LOG_POLL: Duration = Duration::from_millis(25);
const LOG_POLL_FIRST: Duration = Duration::from_millis(2);

impl<P> CallbackLog<P> {
    /// Reads `platform`'s log.
    pub fn new(platform: Arc<P>) -> Self {
        CallbackLog {
            platform,
            reads: Default::default(),
        }
    }
}

impl<P: Platform> CallbackSource for CallbackLog<P> {
    fn waiting_sends_requests(&self) -> bool {
        true
    }

    async fn deliveries(&self, key: &Key) -> Result<Vec<Arc<Delivery>>, SourceError> {
        let log = self.platform.callback_log(key).await;
        let now = Instant::now();
        let found = log.as_ref().map(Vec::len).map_err(ToString::to_string);
        {
            let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
            let r = reads.entry(key.clone()).or_insert(Reads {
                count: 0,
                first: now,
                last: now,
                found: Ok(0),
            });
            r.count += 1;
            r.last = now;
            r.found = found;
        }
        Ok(log?.into_iter().map(Arc::new).collect())
    }

    /// A platform's log keeps a conversion's postbacks among its entries.
    /// (A log that does not mark its postbacks shows none: they are not judged there.)
    fn postback_key(&self, _pub_click: &str, conversion: Option<&str>) -> Option<Key> {
        let conversion = conversion.filter(|_| self.platform.logs_postbacks())?;
        Some(Key::Conversion(conversion.to_string()))
    }

    fn take_reads(&self, key: &Key) -> Option<String> {
        let r = (self.reads.lock().unwrap_or_else(|e| e.into_inner())).remove(key)?;
        let url = self
            .platform
            .callback_log_url(key)
            .map(|u| format!(" ({u})"))
            .unwrap_or_default();
        let times = match r.count {
            1 => "once".to_string(),
            n => format!(
                "{n} times over {}",
                crate::duration::format_duration(r.last - r.first)
            ),
        };
        let found = match r.found {
            Ok(1) => "1 entry".to_string(),
            Ok(n) => format!("{n} entries"),
            Err(e) => format!("an error: {e}"),
        };
        Some(format!(
            "read the callback log for {key} {times}{url}; the last read found {found}"
        ))
    }

    fn forget(&self, key: &Key, _seqs: &[u64]) {
        (self.reads.lock().unwrap_or_else(|e| e.into_inner())).remove(key);
    }

    async fn wait(
        &self,
        key: &Key,
        done: Done<'_>,
        deadline: Instant,
    ) -> Result<Vec<Arc<Delivery>>, SourceError> {
        let mut pause = LOG_POLL_FIRST;
        loop {
            let seen = self.deliveries(key).await?;
            let now = Instant::now();
            if done(&seen) || now >= deadline {
                return Ok(seen);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(LOG_POLL);
        }
    }
}

/// A shared `pitcrew receive` service, read through its API.
pub struct RemoteReceiver {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

/// The longest one long poll of a remote receiver lasts.
const REMOTE_POLL: Duration = Duration::from_secs(20);
/// How often a request to a remote receiver that did not answer is sent again, and the first
/// pause (doubled each time: 0.1 + 0.2 + 0.4 + 0.8 s in all).
const RESENDS: usize = 4;
const RESEND_PAUSE: Duration = Duration::from_millis(100);

impl RemoteReceiver {
    /// The service at `base` (e.g. `http://hooks.internal:8787`), with its API token.
    pub fn new(base: &str, token: Option<String>) -> Result<RemoteReceiver, SourceError> {
        let base = base.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .timeout(REMOTE_POLL + Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SourceError::Receiver {
                base: base.clone(),
                message: e.to_string(),
            })?;
        Ok(RemoteReceiver {
            base,
            token,
            client,
        })
    }

    /// Where the platform posts callbacks.
    pub fn callback_url(&self) -> String {
        format!("{}/callbacks", self.base)
    }

    fn get(&self, path: &str, query: &[(&str, String)]) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .get(format!("{}/api{path}", self.base))
            .query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    fn trouble(&self, message: impl Into<String>) -> SourceError {
        SourceError::Receiver {
            base: self.base.clone(),
            message: message.into(),
        }
    }

    /// The status of an answer, as an error unless it is 2xx.
    fn check_status(&self, status: u16) -> Result<(), SourceError> {
        match status {
            200..=299 => Ok(()),
            401 | 403 => Err(SourceError::Unauthorized {
                base: self.base.clone(),
                status,
            }),
            _ => Err(self.trouble(format!("HTTP {status}"))),
        }
    }

    async fn json(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, SourceError> {
        let what = |e: reqwest::Error| self.trouble(crate::error_chain(&e));
        let response = self.send(request).await.map_err(what)?;
        self.check_status(response.status().as_u16())?;
        response.json().await.map_err(what)
    }

    /// Sends `request`, and again after a pause when the service did not answer, hung up or
    /// answered 502, 503 or 504 (a replica restarting behind a load balancer, its database
    /// back in a moment), up to [`RESENDS`] times: every request to it may be sent twice.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut pause = RESEND_PAUSE;
        for _ in 0..RESENDS {
            let Some(again) = request.try_clone() else {
                break;
            };
            let outcome = request.send().await;
            let transient = match &outcome {
                Ok(r) => matches!(r.status().as_u16(), 502..=504),
                Err(e) => e.is_connect() || e.is_request() && !e.is_timeout(),
            };
            if !transient {
                return outcome;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            request = again;
        }
        request.send().await
    }

    /// Checks that the service answers and takes the token (once: a run starts or stops on it).
    pub async fn check(&self) -> Result<(), SourceError> {
        let what = |e: reqwest::Error| self.trouble(crate::error_chain(&e));
        let response = self.get("/health", &[]).send().await.map_err(what)?;
        self.check_status(response.status().as_u16())
    }

    fn which(key: &Key) -> (&'static str, String) {
        match key {
            Key::Conversion(id) => ("conversion", id.clone()),
            Key::Click(id) => ("click", id.clone()),
            Key::Postback(id) => ("postback", id.clone()),
        }
    }

    fn parse(&self, answer: serde_json::Value) -> Result<Vec<Arc<Delivery>>, SourceError> {
        #[derive(serde::Deserialize)]
        struct Listed {
            callbacks: Vec<crate::receiver::api::ApiCallback>,
        }
        let listed: Listed = serde_json::from_value(answer)
            .map_err(|e| self.trouble(format!("its answer is not a callback list: {e}")))?;
        Ok(listed
            .callbacks
            .into_iter()
            .map(|c| Arc::new(c.into_delivery()))
            .collect())
    }
}

impl CallbackSource for RemoteReceiver {
    async fn deliveries(&self, key: &Key) -> Result<Vec<Arc<Delivery>>, SourceError> {
        let (name, id) = Self::which(key);
        self.parse(self.json(self.get("/callbacks", &[(name, id)])).await?)
    }

    async fn wait(
        &self,
        key: &Key,
        done: Done<'_>,
        deadline: Instant,
    ) -> Result<Vec<Arc<Delivery>>, SourceError> {
        let (name, id) = Self::which(key);
        loop {
            let seen = self.deliveries(key).await?;
            let now = Instant::now();
            if done(&seen) || now >= deadline {
                return Ok(seen);
            }
            let left = (deadline - now).min(REMOTE_POLL);
            let query = [
                (name, id.clone()),
                ("count", (seen.len() + 1).to_string()),
                ("timeout", format!("{}ms", left.as_millis().max(1))),
            ];
            self.json(self.get("/callbacks/wait", &query)).await?;
        }
    }

    async fn script(&self, key: Key, script: Arc<Script>) -> Result<(), SourceError> {
        let respond: Vec<serde_json::Value> = script
            .answers
            .iter()
            .map(|a| {
                serde_json::json!({
                    "status": a.status,
                    "body": a.body,
                    "delay": format!("{}ms", a.delay.as_millis()),
                })
            })
            .collect();
        let url = format!("{}/api/scripts/{}", self.base, key.id());
        let mut request = self
            .client
            .put(url)
            .json(&serde_json::json!({ "respond": respond }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = self
            .send(request)
            .await
            .map_err(|e| self.trouble(crate::error_chain(&e)))?;
        self.check_status(response.status().as_u16())
            .map_err(|e| match e {
                SourceError::Receiver { base, message } => SourceError::Receiver {
                    base,
                    message: format!("it did not take the case's script ({message})"),
                },
                other => other,
            })
    }
}
