//! The pipeline's steps as one trait, and its HTTP implementation driven by a target profile.

mod http;
pub mod outbox;
pub mod pace;
pub mod profile;
pub mod target;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;

pub use http::HttpPlatform;
pub use outbox::{Outbox, Pending};
pub use profile::Profile;

use crate::delivery::{Delivery, Key};

/// One request and its answer, kept for the report's transcript.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    /// Request headers sent beyond the client's own (their values are shown masked).
    pub request_headers: Vec<(String, String)>,
    pub request_body: Value,
    pub status: u16,
    /// The answer's headers, names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The answer parsed as JSON, or as a JSON string when it is not JSON.
    pub body: Value,
    pub duration: Duration,
    /// The answers waited out before this one (a 429 or 503 with `Retry-After`).
    pub waits: Vec<pace::Wait>,
}

/// The platform could not be reached or answered something unreadable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {message}")]
pub struct PlatformError {
    pub step: &'static str,
    pub kind: PlatformErrorKind,
    pub message: String,
}

/// What kind of trouble a [`PlatformError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformErrorKind {
    /// pitcrew could not set up its client, or the profile lacks the step.
    Setup,
    /// The platform did not answer (refused, timed out, cut off).
    Unreachable,
    /// It answered 401 or 403: it does not take pitcrew's credentials.
    Unauthorized,
    /// It answered, but not what the profile says to read.
    Unreadable,
}

/// A click to create.
#[derive(Debug, Clone)]
pub struct NewClick<'a> {
    pub offer: &'a str,
    pub member: &'a str,
    pub partner: Option<&'a str>,
    /// The case's params (a tracking link carries the publisher's `pub_*` ones).
    pub params: Option<&'a BTreeMap<String, String>>,
    /// Through the offer's tracking link (`click: link`) rather than the tools.
    pub link: bool,
    /// Faults for a sandbox target (a tracking link's), as the sandbox API takes them.
    pub sandbox_faults: Option<&'a serde_json::Value>,
}

/// A conversion to generate.
#[derive(Debug, Clone)]
pub struct NewConversion<'a> {
    pub click: &'a str,
    pub offer: &'a str,
    pub member: &'a str,
    pub event: &'a str,
    pub params: &'a BTreeMap<String, String>,
    /// Faults for a sandbox target, in the sandbox API's words; other targets never get them.
    pub sandbox_faults: Option<&'a Value>,
    /// Through the advertiser's postback (`convert: postback`) rather than the tools.
    pub postback: bool,
}

/// A step's answer and what the platform said in it.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub exchange: Exchange,
    /// True when the answer's status is one the target counts as done.
    pub done: bool,
    /// The statuses the target counts as done, as a report shows them (`201`, `2xx`).
    pub ok: String,
    /// The id the step made (click or conversion).
    pub id: Option<String>,
    /// The conversion's state as the platform answered it, in pitcrew's words (Success,
    /// Pending, Rejected: the target's `states:` say which of the platform's words is which).
    pub state: Option<String>,
    /// Why the answer's state cannot be read: the step's `state:` finds nothing, or the
    /// platform's word stands for no state. The case is then errored, never passed.
    pub state_problem: Option<String>,
    /// Why the platform rejected the conversion.
    pub reason: Option<String>,
    /// The id of the callback record the step made the platform send, when it reports one.
    pub callback_id: Option<String>,
}

/// What the callback tool reports of the endpoint's answer.
#[derive(Debug, Clone)]
pub struct CallbackSent {
    pub exchange: Exchange,
    /// True when the tool's answer is one the target counts as done.
    pub done: bool,
    /// The statuses the target counts as done, as a report shows them.
    pub ok: String,
    /// The id of the callback record sent.
    pub callback_id: Option<String>,
    /// The endpoint's HTTP status, when it answered.
    pub endpoint_status: Option<u16>,
    pub endpoint_body: Option<String>,
    /// The endpoint's answer headers, names lowercased.
    pub endpoint_headers: Vec<(String, String)>,
    /// The transport error, when it did not.
    pub endpoint_error: Option<String>,
}

/// A conversion's new status.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    pub conversion: &'a str,
    pub click: &'a str,
    pub status: &'a str,
    pub reason: Option<&'a str>,
}

/// The steps of the click → conversion → callback pipeline.
pub trait Platform: Send + Sync + 'static {
    /// Creates a click for an offer and a publisher member.
    fn create_click(
        &self,
        click: NewClick<'_>,
    ) -> impl Future<Output = Result<StepOutcome, PlatformError>> + Send;
    /// Generates a conversion of a click; the platform then sends the callback.
    fn create_conversion(
        &self,
        conversion: NewConversion<'_>,
    ) -> impl Future<Output = Result<StepOutcome, PlatformError>> + Send;
    /// (Re)sends the callback of an existing conversion.
    fn send_callback(
        &self,
        click: &str,
        conversion: &str,
    ) -> impl Future<Output = Result<CallbackSent, PlatformError>> + Send;
    /// Changes a conversion's status; the platform then sends another callback.
    fn change_status(
        &self,
        change: StatusChange<'_>,
    ) -> impl Future<Output = Result<StepOutcome, PlatformError>> + Send;
    /// Every delivery attempt the platform logged for a conversion or a click, oldest first.
    fn callback_log(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<Vec<Delivery>, PlatformError>> + Send;
    /// True when its callback log marks partner postbacks (`steps.callback_log.postback_url`).
    fn logs_postbacks(&self) -> bool {
        false
    }

    /// The URL its callback log is read at for `key`, for transcripts (masked when shown).
    fn callback_log_url(&self, key: &Key) -> Option<String> {
        let _ = key;
        None
    }
    /// How coarse the times of the platform's log are (`Duration::ZERO`: as fine as pitcrew's
    /// own clock): `attempts[].after` is judged at that resolution.
    fn time_resolution(&self) -> Duration {
        Duration::ZERO
    }
    /// Where a callback says its conversion's state, and in which words (GoKart's by default).
    fn callback_states(&self) -> &profile::CallbackStates {
        static GOKART: std::sync::LazyLock<profile::CallbackStates> =
            std::sync::LazyLock::new(profile::CallbackStates::default);
        &GOKART
    }
}
