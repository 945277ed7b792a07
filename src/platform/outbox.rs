//! What only a sandbox can tell a run, beside the pipeline's steps: what it still has to send
//! for a case (so that the case's verdict is final once that has been sent), and that a judged
//! case's records may go. A real platform tells nothing: [`Silent`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::delivery::Key;

/// What a target still has to send for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// It cannot tell.
    Unknown,
    /// Nothing: every delivery it made for the case has been made; `made` is how many it made
    /// in all, when it says (so that a run that saw as many has nothing more to read).
    Nothing { made: Option<u64> },
    /// A delivery is due then (in the past while one is being sent).
    Due(Instant),
}

/// A future the outbox answers with (boxed, so that outboxes of every kind fit one seam).
pub type Answer<'a> = Pin<Box<dyn Future<Output = Pending> + Send + 'a>>;

/// A target's outbox, as far as it can tell.
pub trait Outbox: Send + Sync + 'static {
    /// What the target still has to send that is filed under `key` (a conversion or a click).
    fn pending<'a>(&'a self, key: &'a Key) -> Answer<'a>;

    /// A case made (or used) this click and conversion and its verdict is final: nothing of
    /// this run reads them again. A target that keeps them only for pitcrew may forget them.
    fn forget(&self, click: Option<&str>, conversion: Option<&str>) {
        let _ = (click, conversion);
    }
}

/// A target that tells nothing (a real platform).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Outbox for Silent {
    fn pending<'a>(&'a self, _key: &'a Key) -> Answer<'a> {
        Box::pin(async { Pending::Unknown })
    }
}

/// A standalone `pitcrew sandbox` (or anything speaking its API), asked over HTTP:
/// `GET /sandbox/pending?conversionId=…` (or `clickId=…`).
pub struct SandboxApi {
    client: reqwest::Client,
    /// Its API's base URL, without a trailing `/`.
    base: String,
    headers: Vec<(String, String)>,
}

/// How long the sandbox may take to say what it has pending before the run stops asking.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

impl SandboxApi {
    /// The outbox of the sandbox whose API is at `base` (e.g. `http://127.0.0.1:8080/api/v1`),
    /// asked with `headers` (its token).
    pub fn new(base: &str, headers: Vec<(String, String)>) -> SandboxApi {
        SandboxApi {
            client: reqwest::Client::builder()
                .timeout(ASK_TIMEOUT)
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_string(),
            headers,
        }
    }

    /// How long one of its platform minutes lasts (`GET /sandbox/clock`), when it says.
    pub async fn minute(&self) -> Option<Duration> {
        let mut request = self.client.get(format!("{}/sandbox/clock", self.base));
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let answer: Value = request.send().await.ok()?.json().await.ok()?;
        let text = answer.pointer("/data/minute")?.as_str()?;
        crate::duration::parse_duration(text).ok()
    }

    async fn ask(&self, key: &Key) -> Pending {
        let asked = Instant::now();
        let which = match key {
            Key::Conversion(id) => ("conversionId", id.as_str()),
            Key::Click(id) => ("clickId", id.as_str()),
            // Postbacks are filed under their conversion at the sandbox: nothing to ask here.
            Key::Postback(_) => return Pending::Nothing { made: None },
        };
        let url = format!("{}/sandbox/pending", self.base);
        let mut request = self.client.get(url).query(&[which]);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let answer = async {
            let response = request.send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            response.json::<Value>().await.ok()
        };
        // Only a 2xx answer that says when its next delivery is due is believed.
        let answer = answer.await;
        let made = answer
            .as_ref()
            .and_then(|a| a.pointer("/data/made"))
            .and_then(Value::as_u64);
        match answer
            .as_ref()
            .and_then(|a| a.pointer("/data/nextDeliveryInMs"))
        {
            Some(Value::Null) => Pending::Nothing { made },
            Some(next) => next.as_u64().map_or(Pending::Unknown, |ms| {
                Pending::Due(asked + Duration::from_millis(ms))
            }),
            None => Pending::Unknown,
        }
    }
}

impl Outbox for SandboxApi {
    fn pending<'a>(&'a self, key: &'a Key) -> Answer<'a> {
        Box::pin(self.ask(key))
    }
}
