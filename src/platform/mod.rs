//! The pipeline's steps as one trait, and its HTTP implementation driven by a target profile.

mod http;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;

pub use http::{HttpPlatform, Profile};

use crate::scenario::model::Faults;

/// One request and its answer, kept for the report's transcript.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub request_body: Value,
    pub status: u16,
    /// The answer's headers, names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The answer parsed as JSON, or as a JSON string when it is not JSON.
    pub body: Value,
    pub duration: Duration,
}

/// The platform could not be reached or answered something unreadable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {message}")]
pub struct PlatformError {
    pub step: &'static str,
    pub message: String,
}

/// A click to create.
#[derive(Debug, Clone)]
pub struct NewClick<'a> {
    pub offer: &'a str,
    pub member: &'a str,
    pub partner: Option<&'a str>,
}

/// A conversion to generate.
#[derive(Debug, Clone)]
pub struct NewConversion<'a> {
    pub click: &'a str,
    pub event: &'a str,
    pub params: &'a BTreeMap<String, String>,
    /// Sandbox targets only.
    pub faults: Option<&'a Faults>,
}

/// A step's answer and the id it produced, if any.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub exchange: Exchange,
    pub id: Option<String>,
}

/// What the callback tool reports of the endpoint's answer.
#[derive(Debug, Clone)]
pub struct CallbackSent {
    pub exchange: Exchange,
    /// The endpoint's HTTP status, when it answered.
    pub endpoint_status: Option<u16>,
    pub endpoint_body: Option<String>,
    /// The endpoint's answer headers, names lowercased.
    pub endpoint_headers: Vec<(String, String)>,
    /// The transport error, when it did not.
    pub endpoint_error: Option<String>,
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
    /// Reads every attempt the platform logged for a conversion.
    fn callback_log(
        &self,
        conversion: &str,
    ) -> impl Future<Output = Result<Vec<Value>, PlatformError>> + Send;
}
