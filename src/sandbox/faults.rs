//! Faults the sandbox injects into a conversion's callbacks, as its API takes them (the
//! `faults` object of `POST /api/v1/tools/conversions`). The sandbox owns this type; scenario
//! files are translated into it by the plan, over HTTP like any client.

use std::time::Duration;

use serde::Deserialize;

/// What a client asks for, as JSON.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsRequest {
    /// Leave `pubSub5` (the testing-tools flag) out of the callback.
    #[serde(default)]
    pub omit_flag: bool,
    /// Never send the callback.
    #[serde(default)]
    pub drop_callback: bool,
    /// Send the callback twice: `true` right after the first, or a delay such as `"2s"`.
    #[serde(default)]
    pub duplicate_callback: Option<DuplicateRequest>,
    /// Send the callback this long after the conversion, e.g. `"2s"`.
    #[serde(default)]
    pub callback_delay: Option<String>,
}

/// `true`, `false`, or a delay.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DuplicateRequest {
    Now(bool),
    After(String),
}

/// Faults as the sandbox applies them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Faults {
    pub omit_flag: bool,
    pub drop_callback: bool,
    /// Send a second copy this long after the first.
    pub duplicate_after: Option<Duration>,
    pub callback_delay: Option<Duration>,
}

impl FaultsRequest {
    /// The faults to apply, or what is wrong with the request (named by its field).
    pub fn parse(self) -> Result<Faults, String> {
        let duration = |field: &str, text: &str| {
            crate::duration::parse_duration(text).map_err(|e| format!("faults.{field}: {e}"))
        };
        Ok(Faults {
            omit_flag: self.omit_flag,
            drop_callback: self.drop_callback,
            duplicate_after: match self.duplicate_callback {
                None | Some(DuplicateRequest::Now(false)) => None,
                Some(DuplicateRequest::Now(true)) => Some(Duration::ZERO),
                Some(DuplicateRequest::After(text)) => Some(duration("duplicate_callback", &text)?),
            },
            callback_delay: self
                .callback_delay
                .map(|t| duration("callback_delay", &t))
                .transpose()?,
        })
    }
}
