//! The pipeline over HTTP, as a target profile describes it (the built-in one: the sandbox API).

use std::time::Instant;

use serde_json::{Value, json};

use super::{
    CallbackSent, Exchange, NewClick, NewConversion, Platform, PlatformError, StepOutcome,
};

/// Where a platform lives and where its answers keep the ids.
#[derive(Debug, Clone)]
pub struct Profile {
    /// e.g. `http://127.0.0.1:41234/api/v1`
    pub base_url: String,
    /// An auth header name and value, e.g. `Authorization: ApiToken …`.
    pub auth: Option<(String, String)>,
    /// Whether the target understands the sandbox's `faults`.
    pub sandbox: bool,
    pub clicks_path: String,
    pub conversions_path: String,
    pub callbacks_path: String,
    pub callback_log_path: String,
    /// JSON pointers into the answers.
    pub click_id_at: String,
    pub conversion_id_at: String,
    pub endpoint_status_at: String,
    pub endpoint_body_at: String,
    pub endpoint_headers_at: String,
    pub endpoint_error_at: String,
}

impl Profile {
    /// The sandbox API of DESIGN §5 at `base_url`.
    pub fn sandbox(base_url: String) -> Profile {
        Profile {
            base_url,
            auth: None,
            sandbox: true,
            clicks_path: "/tools/clicks".into(),
            conversions_path: "/tools/conversions".into(),
            callbacks_path: "/tools/callbacks".into(),
            callback_log_path: "/conversion-callbacks".into(),
            click_id_at: "/data/clickId".into(),
            conversion_id_at: "/data/conversionId".into(),
            endpoint_status_at: "/data/response/status".into(),
            endpoint_body_at: "/data/response/body".into(),
            endpoint_headers_at: "/data/response/headers".into(),
            endpoint_error_at: "/data/error".into(),
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

    async fn call(
        &self,
        step: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Exchange, PlatformError> {
        let url = format!("{}{}", self.profile.base_url.trim_end_matches('/'), path);
        let mut request = self.client.request(method.clone(), &url);
        if let Some((name, value)) = &self.profile.auth {
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
        Ok(Exchange {
            method: method.to_string(),
            url,
            request_body: body.unwrap_or(Value::Null),
            status,
            headers,
            body: body_value,
            duration: started.elapsed(),
        })
    }

    fn id_at(exchange: &Exchange, pointer: &str) -> Option<String> {
        match exchange.body.pointer(pointer)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

fn describe_transport_error(url: &str, e: &reqwest::Error) -> String {
    format!("{url}: {}", crate::error_chain(e))
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
        let id = Self::id_at(&exchange, &self.profile.click_id_at);
        Ok(StepOutcome { exchange, id })
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
            && let Some(faults) = conversion.faults
            && *faults != Default::default()
        {
            body["faults"] = json!(faults);
        }
        let exchange = self
            .call(
                "create conversion",
                reqwest::Method::POST,
                &self.profile.conversions_path,
                Some(body),
            )
            .await?;
        let id = Self::id_at(&exchange, &self.profile.conversion_id_at);
        Ok(StepOutcome { exchange, id })
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
        let at = |p: &str| exchange.body.pointer(p).filter(|v| !v.is_null());
        Ok(CallbackSent {
            endpoint_status: at(&self.profile.endpoint_status_at)
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            endpoint_body: at(&self.profile.endpoint_body_at).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            endpoint_headers: match at(&self.profile.endpoint_headers_at) {
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        (k.to_ascii_lowercase(), v)
                    })
                    .collect(),
                _ => Vec::new(),
            },
            endpoint_error: at(&self.profile.endpoint_error_at).map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            }),
            exchange,
        })
    }

    async fn callback_log(&self, conversion: &str) -> Result<Vec<Value>, PlatformError> {
        let path = format!(
            "{}?conversionId={conversion}",
            self.profile.callback_log_path
        );
        let exchange = self
            .call("read callback log", reqwest::Method::GET, &path, None)
            .await?;
        match exchange.body.pointer("/data") {
            Some(Value::Array(items)) => Ok(items.clone()),
            _ => Err(PlatformError {
                step: "read callback log",
                message: format!("HTTP {}: no `data` list in the answer", exchange.status),
            }),
        }
    }
}
