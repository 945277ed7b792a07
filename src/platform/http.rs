//! The pipeline over HTTP, as a target profile describes it (the built-in one: the sandbox API).

use std::time::Instant;

use serde_json::{Value, json};

use super::{
    CallbackSent, Exchange, NewClick, NewConversion, Platform, PlatformError, StatusChange,
    StepOutcome,
};
use crate::delivery::{CallbackIds, Correlation, Delivery, EndpointAnswer, Key, id_text};

/// Where a platform lives and where its answers keep what a run needs.
#[derive(Debug, Clone)]
pub struct Profile {
    /// e.g. `http://127.0.0.1:41234/api/v1`
    pub base_url: String,
    /// Headers sent with every call, e.g. `Authorization: ApiToken …`.
    pub headers: Vec<(String, String)>,
    /// Whether the target understands the sandbox's `faults`.
    pub sandbox: bool,
    pub clicks_path: String,
    pub conversions_path: String,
    pub callbacks_path: String,
    /// `{id}` is the conversion id.
    pub status_path: String,
    pub callback_log_path: String,
    /// JSON Pointers into the answers.
    pub click_id_at: String,
    pub conversion_id_at: String,
    pub conversion_state_at: String,
    pub conversion_reason_at: String,
    /// The callback record id in the conversion's and the status change's answers.
    pub conversion_callback_id_at: String,
    /// The callback record id in the resend's answer.
    pub resend_callback_id_at: String,
    pub endpoint_status_at: String,
    pub endpoint_body_at: String,
    pub endpoint_headers_at: String,
    pub endpoint_error_at: String,
    /// The callback log: its items, and within each item the delivery's parts.
    pub log_items_at: String,
    pub log_payload_at: String,
    pub log_callback_id_at: String,
    /// The attempt record's own id: what tells one logged delivery from another.
    pub log_attempt_id_at: String,
    pub log_attempt_at: String,
    pub log_sent_at: String,
    pub log_status_at: String,
    pub log_body_at: String,
    pub log_error_at: String,
    pub log_endpoint_at: String,
    pub log_duration_at: String,
    /// Where the ids sit in a callback body.
    pub correlation: Correlation,
}

impl Profile {
    /// The sandbox API of DESIGN §5 at `base_url`.
    pub fn sandbox(base_url: String) -> Profile {
        Profile {
            base_url,
            headers: Vec::new(),
            sandbox: true,
            clicks_path: "/tools/clicks".into(),
            conversions_path: "/tools/conversions".into(),
            callbacks_path: "/tools/callbacks".into(),
            status_path: "/conversions/{id}".into(),
            callback_log_path: "/conversion-callbacks".into(),
            click_id_at: "/data/clickId".into(),
            conversion_id_at: "/data/conversionId".into(),
            conversion_state_at: "/data/status".into(),
            conversion_reason_at: "/data/rejectionReason".into(),
            conversion_callback_id_at: "/data/callback/callbackId".into(),
            resend_callback_id_at: "/data/callbackId".into(),
            endpoint_status_at: "/data/response/status".into(),
            endpoint_body_at: "/data/response/body".into(),
            endpoint_headers_at: "/data/response/headers".into(),
            endpoint_error_at: "/data/error".into(),
            log_items_at: "/data".into(),
            log_payload_at: "/note".into(),
            log_callback_id_at: "/callbackId".into(),
            log_attempt_id_at: "/id".into(),
            log_attempt_at: "/attempt".into(),
            log_sent_at: "/sentAt".into(),
            log_status_at: "/status".into(),
            log_body_at: "/responseBody".into(),
            log_error_at: "/error".into(),
            log_endpoint_at: "/endpoint".into(),
            log_duration_at: "/durationMs".into(),
            correlation: Correlation::default(),
        }
    }
}

/// A platform reached over HTTP.
pub struct HttpPlatform {
    client: reqwest::Client,
    profile: Profile,
}

impl HttpPlatform {
    /// A client for `profile`.
    pub fn new(profile: Profile) -> Result<HttpPlatform, PlatformError> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| PlatformError {
                step: "setup",
                message: e.to_string(),
            })?;
        Ok(HttpPlatform { client, profile })
    }

    /// The profile it was made with.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    async fn call(
        &self,
        step: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Exchange, PlatformError> {
        let url = format!("{}{}", self.profile.base_url.trim_end_matches('/'), path);
        let mut request = self.client.request(method.clone(), &url);
        for (name, value) in &self.profile.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let started = Instant::now();
        let error = |e: reqwest::Error| PlatformError {
            step,
            message: describe_transport_error(&url, &e),
        };
        let response = request.send().await.map_err(error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect();
        let text = response.text().await.map_err(error)?;
        let body_value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status == 401 || status == 403 {
            return Err(PlatformError {
                step,
                message: format!(
                    "{url}: HTTP {status}: unauthorized (check the target's token or auth headers){}",
                    crate::check::answer_reason(&body_value)
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            });
        }
        Ok(Exchange {
            method: method.to_string(),
            url,
            request_headers: self.profile.headers.clone(),
            request_body: body.unwrap_or(Value::Null),
            status,
            headers,
            body: body_value,
            duration: started.elapsed(),
        })
    }

    fn text_at(value: &Value, pointer: &str) -> Option<String> {
        match value.pointer(pointer)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    fn outcome(&self, exchange: Exchange, id_at: &str) -> StepOutcome {
        let p = &self.profile;
        StepOutcome {
            id: exchange.body.pointer(id_at).and_then(id_text),
            state: Self::text_at(&exchange.body, &p.conversion_state_at),
            reason: Self::text_at(&exchange.body, &p.conversion_reason_at),
            callback_id: exchange
                .body
                .pointer(&p.conversion_callback_id_at)
                .and_then(id_text),
            exchange,
        }
    }

    /// One logged attempt as a delivery. Its sequence number comes from the attempt record's
    /// id, so that the same delivery has the same number in every read of the log (a log's
    /// order may change between reads); without an id, its position is all there is.
    fn delivery(&self, position: u64, item: &Value) -> Delivery {
        let p = &self.profile;
        let seq = item
            .pointer(&p.log_attempt_id_at)
            .and_then(id_text)
            .map_or(position, |id| stable_hash(&id));
        let payload = item.pointer(&p.log_payload_at).cloned();
        let (body, json) = match payload {
            Some(Value::String(text)) => (text.clone(), serde_json::from_str(&text).ok()),
            Some(Value::Null) | None => (String::new(), None),
            Some(v) => (v.to_string(), Some(v)),
        };
        let ids = json
            .as_ref()
            .map(|j| p.correlation.ids(j))
            .unwrap_or_default();
        let callback = item.pointer(&p.log_callback_id_at).and_then(id_text);
        let at = Self::text_at(item, &p.log_sent_at)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        Delivery {
            seq,
            at,
            method: "POST".into(),
            path: Self::text_at(item, &p.log_endpoint_at)
                .unwrap_or_else(|| "(callback log)".into()),
            query: None,
            headers: Vec::new(),
            body,
            json,
            ids: CallbackIds {
                callback: ids.callback.or(callback),
                ..ids
            },
            attempt: item
                .pointer(&p.log_attempt_at)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
            answer: EndpointAnswer {
                status: item
                    .pointer(&p.log_status_at)
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok()),
                body: Self::text_at(item, &p.log_body_at),
                error: Self::text_at(item, &p.log_error_at),
                duration_ms: item.pointer(&p.log_duration_at).and_then(Value::as_u64),
            },
        }
    }
}

/// FNV-1a: a hash that is the same in every process (unlike std's, which is seeded).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn describe_transport_error(url: &str, e: &reqwest::Error) -> String {
    format!("{url}: {}", crate::error_chain(e))
}

/// `text` made safe to put in a URL's path or query.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Platform for HttpPlatform {
    async fn create_click(&self, click: NewClick<'_>) -> Result<StepOutcome, PlatformError> {
        let mut body = json!({"offerId": click.offer, "publisherMemberId": click.member});
        if let Some(partner) = click.partner {
            body["partnerId"] = json!(partner);
        }
        let exchange = self
            .call(
                "create click",
                reqwest::Method::POST,
                &self.profile.clicks_path,
                Some(body),
            )
            .await?;
        Ok(self.outcome(exchange, &self.profile.click_id_at))
    }

    async fn create_conversion(
        &self,
        conversion: NewConversion<'_>,
    ) -> Result<StepOutcome, PlatformError> {
        let mut body = json!({
            "clickId": conversion.click,
            "eventId": conversion.event,
            "params": conversion.params,
        });
        if self.profile.sandbox
            && let Some(faults) = conversion.sandbox_faults
        {
            body["faults"] = faults.clone();
        }
        let exchange = self
            .call(
                "create conversion",
                reqwest::Method::POST,
                &self.profile.conversions_path,
                Some(body),
            )
            .await?;
        Ok(self.outcome(exchange, &self.profile.conversion_id_at))
    }

    async fn send_callback(
        &self,
        click: &str,
        conversion: &str,
    ) -> Result<CallbackSent, PlatformError> {
        let body = json!({"clickId": click, "conversionId": conversion});
        let exchange = self
            .call(
                "send callback",
                reqwest::Method::POST,
                &self.profile.callbacks_path,
                Some(body),
            )
            .await?;
        let p = &self.profile;
        let at = |ptr: &str| exchange.body.pointer(ptr).filter(|v| !v.is_null());
        Ok(CallbackSent {
            callback_id: at(&p.resend_callback_id_at).and_then(id_text),
            endpoint_status: at(&p.endpoint_status_at)
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            endpoint_body: Self::text_at(&exchange.body, &p.endpoint_body_at),
            endpoint_headers: match at(&p.endpoint_headers_at) {
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        (k.to_ascii_lowercase(), v)
                    })
                    .collect(),
                _ => Vec::new(),
            },
            endpoint_error: Self::text_at(&exchange.body, &p.endpoint_error_at),
            exchange,
        })
    }

    async fn change_status(&self, change: StatusChange<'_>) -> Result<StepOutcome, PlatformError> {
        let path = self
            .profile
            .status_path
            .replace("{id}", &encode(change.conversion));
        let body = json!({"status": change.status, "rejectionReason": change.reason});
        let exchange = self
            .call("change status", reqwest::Method::PATCH, &path, Some(body))
            .await?;
        Ok(self.outcome(exchange, &self.profile.conversion_id_at))
    }

    async fn callback_log(&self, key: &Key) -> Result<Vec<Delivery>, PlatformError> {
        let query = match key {
            Key::Conversion(id) => format!("conversionId={}", encode(id)),
            Key::Click(id) => format!("clickId={}", encode(id)),
        };
        let path = format!("{}?{query}", self.profile.callback_log_path);
        let exchange = self
            .call("read callback log", reqwest::Method::GET, &path, None)
            .await?;
        match exchange.body.pointer(&self.profile.log_items_at) {
            Some(Value::Array(items)) if (200..300).contains(&exchange.status) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, item)| self.delivery(i as u64 + 1, item))
                .collect()),
            _ => Err(PlatformError {
                step: "read callback log",
                message: format!(
                    "HTTP {}: no list at `{}` in the answer{}",
                    exchange.status,
                    self.profile.log_items_at,
                    crate::check::answer_reason(&exchange.body)
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            }),
        }
    }
}
