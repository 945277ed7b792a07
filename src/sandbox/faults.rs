//! Faults the sandbox injects, as its API takes them (the `faults` object of
//! `POST /api/v1/tools/conversions`) and as a partner's config sets them for all its
//! conversions. The sandbox owns this type; scenario files are translated into it by the plan,
//! over HTTP like any client.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// What a client (or a partner's config) asks for.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
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
    /// Leave this field out of the callback: a conversion field (`revenue`) or `id`/`sentAt`.
    #[serde(default)]
    pub missing_field: Option<String>,
    /// Send this amount in `trackSysConversionAmount` instead of the conversion's.
    #[serde(default)]
    pub altered_amount: Option<String>,
    /// Send the callback with the legacy PascalCase keys.
    #[serde(default)]
    pub legacy_payload: bool,
    /// `wrong`: the auth header carries a wrong secret; `missing`: no auth header.
    #[serde(default)]
    pub auth: Option<String>,
    /// Answer the conversion call this much later, e.g. `"300ms"`.
    #[serde(default)]
    pub api_latency: Option<String>,
    /// Answer the conversion call with this 5xx status and make no conversion; `429`: answer
    /// the first conversion call of the click 429 with `Retry-After: 1` (a rate-limited
    /// tenant), and take the next.
    #[serde(default)]
    pub api_error: Option<u16>,
    /// Send none of the conversion's partner postbacks.
    #[serde(default)]
    pub drop_postback: bool,
    /// Send each of the conversion's partner postbacks twice.
    #[serde(default)]
    pub duplicate_postback: bool,
    /// The tracking link redirects without the click id (`{gk_click_id}` left empty).
    #[serde(default)]
    pub redirect_without_click_id: bool,
}

/// `true`, `false`, or a delay.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DuplicateRequest {
    Now(bool),
    After(String),
}

/// How the auth header of a callback is spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFault {
    Wrong,
    Missing,
}

/// Faults as the sandbox applies them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Faults {
    pub omit_flag: bool,
    pub drop_callback: bool,
    /// Send a second copy this long after the first.
    pub duplicate_after: Option<Duration>,
    pub callback_delay: Option<Duration>,
    pub missing_field: Option<String>,
    pub altered_amount: Option<String>,
    pub legacy_payload: bool,
    pub auth: Option<AuthFault>,
    pub api_latency: Option<Duration>,
    pub api_error: Option<u16>,
    pub drop_postback: bool,
    pub duplicate_postback: bool,
    pub redirect_without_click_id: bool,
}

/// A fault the sandbox cannot inject, named by its field (`faults.auth: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultsError(pub String);

impl FaultsRequest {
    /// The faults to apply, or what is wrong with the request (named by its field).
    pub fn parse(self) -> Result<Faults, FaultsError> {
        let duration = |field: &str, text: &str| {
            crate::duration::parse_duration(text)
                .map_err(|e| FaultsError(format!("faults.{field}: {e}")))
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
            missing_field: self.missing_field,
            altered_amount: self.altered_amount,
            legacy_payload: self.legacy_payload,
            auth: match self.auth.as_deref() {
                None => None,
                Some("wrong") => Some(AuthFault::Wrong),
                Some("missing") => Some(AuthFault::Missing),
                Some(other) => {
                    return Err(FaultsError(format!(
                        "faults.auth: `{other}` is neither `wrong` nor `missing`"
                    )));
                }
            },
            api_latency: self
                .api_latency
                .map(|t| duration("api_latency", &t))
                .transpose()?,
            api_error: match self.api_error {
                Some(s) if !(500..600).contains(&s) && s != 429 => {
                    return Err(FaultsError(format!(
                        "faults.api_error: `{s}` is neither a 5xx status nor 429"
                    )));
                }
                other => other,
            },
            drop_postback: self.drop_postback,
            duplicate_postback: self.duplicate_postback,
            redirect_without_click_id: self.redirect_without_click_id,
        })
    }
}

impl Faults {
    /// These faults, with `fallback`'s where these set none (a case's over its partner's).
    pub fn or(self, fallback: &Faults) -> Faults {
        Faults {
            omit_flag: self.omit_flag || fallback.omit_flag,
            drop_callback: self.drop_callback || fallback.drop_callback,
            duplicate_after: self.duplicate_after.or(fallback.duplicate_after),
            callback_delay: self.callback_delay.or(fallback.callback_delay),
            missing_field: self
                .missing_field
                .or_else(|| fallback.missing_field.clone()),
            altered_amount: self
                .altered_amount
                .or_else(|| fallback.altered_amount.clone()),
            legacy_payload: self.legacy_payload || fallback.legacy_payload,
            auth: self.auth.or(fallback.auth),
            api_latency: self.api_latency.or(fallback.api_latency),
            api_error: self.api_error.or(fallback.api_error),
            drop_postback: self.drop_postback || fallback.drop_postback,
            duplicate_postback: self.duplicate_postback || fallback.duplicate_postback,
            redirect_without_click_id: self.redirect_without_click_id
                || fallback.redirect_without_click_id,
        }
    }

    /// The faults a status change keeps: how the payload looks, not how it was delivered.
    pub fn for_status_change(&self) -> Faults {
        Faults {
            omit_flag: self.omit_flag,
            missing_field: self.missing_field.clone(),
            altered_amount: self.altered_amount.clone(),
            legacy_payload: self.legacy_payload,
            auth: self.auth,
            // A change to Success sends the partner postbacks then.
            drop_postback: self.drop_postback,
            duplicate_postback: self.duplicate_postback,
            ..Faults::default()
        }
    }
}
