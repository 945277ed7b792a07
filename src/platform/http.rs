//! The pipeline over HTTP, as a profile describes it: the same code drives the sandbox (the
//! built-in profile), a URL target and any `pitcrew.yaml` target.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;

use super::profile::{
    Body, Extract, LogStep, Profile, Request, Step, Vars, fill_json, fill_pairs, fill_path,
};
use super::{
    CallbackSent, Exchange, NewClick, NewConversion, Platform, PlatformError, PlatformErrorKind,
    StatusChange, StepOutcome,
};
use crate::delivery::{CallbackIds, Delivery, EndpointAnswer, Key, id_text};

/// A platform reached over HTTP.
pub struct HttpPlatform {
    client: reqwest::Client,
    profile: Profile,
    /// The target's rate, when it has one: every request takes the next free slot.
    pace: Option<super::pace::Pace>,
    /// The coarsest resolution of the log's times seen so far, in milliseconds.
    resolution_ms: std::sync::atomic::AtomicU64,
}

/// How fine an RFC 3339 time is written: `…:05Z` to the second (1000 ms), `…:05.1Z` 100 ms,
/// `…:05.123Z` and finer 1 ms.
fn written_resolution_ms(text: &str) -> u64 {
    let Some(dot) = text.find('.') else {
        return 1000;
    };
    let digits = text[dot + 1..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    match digits {
        0 => 1000,
        1 => 100,
        2 => 10,
        _ => 1,
    }
}

/// Where a value sits in an answer, as text (`None` when absent or null).
fn text_at(value: &Value, pointer: Option<&String>) -> Option<String> {
    match value.pointer(pointer?)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Headers as a log keeps them: an object of names and values, or a list of `{name, value}`
/// (or `[name, value]`); names lowercased, as pitcrew's receiver keeps them.
fn logged_headers(value: &Value) -> Vec<(String, String)> {
    let pair = |name: &Value, value: &Value| {
        Some((name.as_str()?.to_ascii_lowercase(), value_text(value)))
    };
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), value_text(v)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::Array(two) if two.len() == 2 => pair(&two[0], &two[1]),
                Value::Object(o) => pair(o.get("name")?, o.get("value")?),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `scheme://host[:port]` of a URL, lowercased.
fn origin(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after + i);
    url[..end].to_ascii_lowercase()
}

/// A value as text: a string as it is, anything else as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// FNV-1a: a hash that is the same in every process (unlike std's, which is seeded).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The numbers the entries of one read of a callback log are known by. An entry is known by
/// its attempt id; without one, by what cannot change about it (its payload, attempt number,
/// time and record id: not an outcome or a status the platform may update in place) and,
/// among entries alike, by its place: the same in every read of the log, whether it is read
/// by conversion or by click, and never the same for two entries (nor for entries of two
/// conversions, as their positions alone would be).
fn entry_seqs(log: &LogStep, items: &[Value]) -> Vec<u64> {
    let mut alike: HashMap<u64, u64> = HashMap::new();
    items
        .iter()
        .map(|item| {
            let id = log.attempt_id.as_ref().and_then(|p| item.pointer(p));
            if let Some(id) = id.and_then(id_text) {
                return stable_hash(&id);
            }
            let lasting = [
                Some(&log.payload),
                log.attempt.as_ref(),
                log.sent_at.as_ref(),
                log.callback_id.as_ref(),
            ];
            let content = lasting
                .into_iter()
                .flatten()
                .map(|p| item.pointer(p).map(Value::to_string).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\u{1f}");
            let content = stable_hash(&content);
            let nth = alike.entry(content).or_default();
            *nth += 1;
            stable_hash(&format!("{content:x}#{nth}"))
        })
        .collect()
}

/// An answer's status, and its headers with their names lowercased, in the order received.
fn head(response: &reqwest::Response) -> (u16, Vec<(String, String)>) {
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), value)
        })
        .collect();
    (response.status().as_u16(), headers)
}

fn describe_transport_error(url: &str, e: &reqwest::Error) -> String {
    // The URL once, not again inside reqwest's own words.
    let mut text = crate::error_chain(e);
    if let Some(sent) = e.url() {
        text = text.replace(&format!(" for url ({sent})"), "");
    }
    format!("{url}: {text}")
}

/// `text` made safe to put in a URL's path.
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

impl HttpPlatform {
    /// A client for `profile`.
    pub fn new(profile: Profile) -> Result<HttpPlatform, PlatformError> {
        let client = reqwest::Client::builder()
            // A 3xx is the step's answer: following one could visit an advertiser's site with
            // a live click id.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(512)
            // Servers drop connections idle past their header timeout: reuse only fresh ones.
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| PlatformError {
                step: "setup",
                kind: PlatformErrorKind::Setup,
                message: e.to_string(),
            })?;
        Ok(HttpPlatform {
            client,
            pace: profile.rate.map(super::pace::Pace::new),
            profile,
            resolution_ms: Default::default(),
        })
    }

    /// The profile it was made with.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Whether the platform answers and takes pitcrew's credentials, through the profile: its
    /// callback log read for an id that cannot exist, else its base URL. What it answered, or
    /// why it is not reachable (or not authorized).
    pub async fn reach(&self) -> Result<String, PlatformError> {
        if self.profile.callback_log.is_some() {
            let probe = Key::Conversion(uuid::Uuid::nil().to_string());
            return match self.callback_log(&probe).await {
                Ok(_) => Ok("reachable and authorized (callback log read)".into()),
                // An answer without the list (a 404 for an unknown id) still proves the way in.
                Err(e) if e.kind == PlatformErrorKind::Unreadable => {
                    Ok(format!("reachable and authorized ({})", e.message))
                }
                Err(e) => Err(e),
            };
        }
        let step = "reach base_url";
        let url = &self.profile.base_url;
        let mut request = self.client.get(url);
        for (name, value) in &self.profile.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.map_err(|e| PlatformError {
            step,
            kind: PlatformErrorKind::Unreachable,
            message: describe_transport_error(url, &e),
        })?;
        match response.status().as_u16() {
            status @ (401 | 403) => Err(PlatformError {
                step,
                kind: PlatformErrorKind::Unauthorized,
                message: format!(
                    "{url}: HTTP {status}: unauthorized (check the target's token or auth headers)"
                ),
            }),
            status => Ok(format!("reachable (HTTP {status} at base_url)")),
        }
    }

    /// Whether the platform's base URL takes pitcrew's credentials (the target's headers): asked
    /// with them and without. `Ok((true, …))` when it refuses a request without them and takes
    /// one with them; `Ok((false, …))` when that cannot be told (it answers both alike, or the
    /// target sends no headers).
    pub async fn credentials_probe(&self) -> Result<(bool, String), PlatformError> {
        let step = "reach base_url";
        let url = &self.profile.base_url;
        let status = |with: bool| {
            let mut request = self.client.get(url);
            if with {
                for (name, value) in &self.profile.headers {
                    request = request.header(name.as_str(), value.as_str());
                }
            }
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| PlatformError {
                        step,
                        kind: PlatformErrorKind::Unreachable,
                        message: describe_transport_error(url, &e),
                    })
            }
        };
        let with = status(true).await?;
        if matches!(with, 401 | 403) {
            return Err(PlatformError {
                step,
                kind: PlatformErrorKind::Unauthorized,
                message: format!(
                    "{url}: HTTP {with}: unauthorized (check the target's token or auth headers)"
                ),
            });
        }
        if self.profile.headers.is_empty() {
            return Ok((
                false,
                format!("base_url answers HTTP {with}; the target sends no credentials of its own"),
            ));
        }
        let without = status(false).await?;
        Ok(if matches!(without, 401 | 403) {
            (
                true,
                format!(
                    "credentials taken (base_url answers HTTP {with} with them, {without} without)"
                ),
            )
        } else {
            (
                false,
                format!(
                    "base_url answers HTTP {with} with credentials and {without} without: it does not tell whether they are right (a step's first call will)"
                ),
            )
        })
    }

    fn step<'a>(
        &self,
        step: &'static str,
        found: Option<&'a Step>,
    ) -> Result<&'a Step, PlatformError> {
        found.ok_or_else(|| PlatformError {
            step,
            kind: PlatformErrorKind::Setup,
            message: format!("the target's profile has no `{step}` step"),
        })
    }

    /// The whole URL of `request` with `vars`: the base URL, the path filled, the query.
    fn url(
        &self,
        step: &'static str,
        request: &Request,
        vars: &Vars<'_>,
    ) -> Result<String, PlatformError> {
        // Path variables are ids: encoded so that one cannot change the path; one the call does
        // not have never leaves an empty segment in it.
        let path = fill_path(&request.path, vars, encode).map_err(|name| PlatformError {
            step,
            kind: PlatformErrorKind::Setup,
            message: format!(
                "the step's path `{}` needs `{{{{{name}}}}}`, which this call does not have{}",
                request.path,
                match name.as_str() {
                    "conversion" => " (the case has no conversion: it was refused, or not made)",
                    _ => "",
                }
            ),
        })?;
        let base = self.profile.base_url.trim_end_matches('/');
        // A whole URL as the path: a step on another host (a tenant's tracking host). The
        // placeholders in it are encoded, so none can make one.
        let whole = request.path.starts_with("http://") || request.path.starts_with("https://");
        let base = if whole {
            ""
        } else if request.from_root {
            // `scheme://host[:port]` of the base URL.
            let host_at = base.find("://").map_or(0, |i| i + 3);
            base[host_at..]
                .find('/')
                .map_or(base, |slash| &base[..host_at + slash])
        } else {
            base
        };
        let mut url = format!("{base}{path}");
        let query = fill_pairs(&request.query, vars);
        if !query.is_empty() {
            let mut pairs = form_urlencoded::Serializer::new(String::new());
            pairs.extend_pairs(&query);
            let joint = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{joint}{}", pairs.finish());
        }
        Ok(url)
    }

    /// The variables of a callback log read for `key`.
    fn log_vars(key: &Key) -> Vars<'_> {
        match key {
            Key::Conversion(id) => Vars::default().with("conversion", Some(id)),
            Key::Click(id) => Vars::default().with("click", Some(id)),
            // The log is read by conversion; postbacks are among its entries.
            Key::Postback(_) => Vars::default(),
        }
    }

    /// Sends one step's request with `vars`; a 401 or 403 is an error that says so.
    async fn call(
        &self,
        step: &'static str,
        request: &Request,
        vars: &Vars<'_>,
    ) -> Result<Exchange, PlatformError> {
        let url = self.url(step, request, vars)?;
        let mut builder = self.client.request(request.method.clone(), &url);
        // The target's headers (its credentials) go to its own host only: a step on another
        // host (a whole URL as its path) is sent without them.
        let whole = request.path.starts_with("http://") || request.path.starts_with("https://");
        let mut sent_headers = if !whole || origin(&url) == origin(&self.profile.base_url) {
            self.profile.headers.clone()
        } else {
            Vec::new()
        };
        sent_headers.extend(fill_pairs(&request.headers, vars));
        for (name, value) in &sent_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request_body = match &request.body {
            Body::None => Value::Null,
            Body::Json(template) => {
                let body = fill_json(template, vars).unwrap_or(Value::Null);
                builder = builder.json(&body);
                body
            }
            Body::Form(pairs) => {
                let form = fill_pairs(pairs, vars);
                builder = builder.form(&form);
                Value::Object(
                    form.into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
            }
        };
        let error = |e: reqwest::Error| PlatformError {
            step,
            kind: PlatformErrorKind::Unreachable,
            message: describe_transport_error(&url, &e),
        };
        let prepared = builder.build().map_err(error)?;
        let mut waits = Vec::new();
        let (started, response, status, headers) = loop {
            if let Some(pace) = &self.pace {
                pace.wait().await;
            }
            let started = Instant::now();
            // A JSON or form body is bytes, and is sent again as it is.
            let again = prepared.try_clone();
            let Some(request) = again else {
                let response = self.client.execute(prepared).await.map_err(error)?;
                let (status, headers) = head(&response);
                break (started, response, status, headers);
            };
            let response = self.client.execute(request).await.map_err(error)?;
            let (status, headers) = head(&response);
            match super::pace::wait_for(status, &headers, &waits) {
                // Told to come back later: nothing was done, so the request is sent again.
                Some(after) => {
                    drop(response);
                    waits.push(super::pace::Wait { status, after });
                    tokio::time::sleep(after).await;
                }
                None => break (started, response, status, headers),
            }
        };
        let bytes = response.bytes().await.map_err(error)?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if status == 401 || status == 403 {
            return Err(PlatformError {
                step,
                kind: PlatformErrorKind::Unauthorized,
                message: format!(
                    "{url}: HTTP {status}: unauthorized (check the target's token or auth headers){}",
                    crate::check::answer_reason(&body)
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            });
        }
        Ok(Exchange {
            method: request.method.to_string(),
            url,
            request_headers: sent_headers,
            request_body,
            status,
            headers,
            body,
            duration: started.elapsed(),
            waits,
        })
    }

    fn outcome(&self, step: &Step, exchange: Exchange) -> StepOutcome {
        let read = |e: &Option<Extract>| {
            e.as_ref()
                .and_then(|e| e.read(&exchange.headers, &exchange.body))
        };
        let text = |e: &Option<Extract>| read(e).map(|v| value_text(&v));
        let word = text(&step.state);
        let states = &self.profile.states;
        let state = word.as_deref().and_then(|w| states.state_of(w));
        let state_problem = match (&step.state, &word, state) {
            (Some(at), None, _) => Some(format!(
                "the answer holds no conversion state at {} (the step's `state:`)",
                at.describe()
            )),
            (_, Some(word), None) => Some(format!(
                "the platform answered the conversion state `{word}`, which no state stands for \
                 (the target's words: {}); add it to the target's `states:`",
                states.described()
            )),
            _ => None,
        };
        StepOutcome {
            done: step.done(exchange.status, &exchange.body),
            ok: step.ok_text(),
            id: read(&step.id).as_ref().and_then(id_text),
            state: state.map(str::to_string),
            state_problem,
            reason: text(&step.reason),
            callback_id: read(&step.callback_id).as_ref().and_then(id_text),
            exchange,
        }
    }

    /// One logged attempt as a delivery, known by `seq` (see [`Platform::callback_log`]: the
    /// same in every read of the log).
    fn delivery(&self, log: &LogStep, seq: u64, mut item: Value) -> Delivery {
        let postback_url = (log.postback_url.as_ref())
            .and_then(|p| item.pointer(p))
            .and_then(Value::as_str)
            .map(str::to_string);
        // The payload is moved out of its entry, unless it is the whole entry.
        let payload = if let Some(url) = &postback_url {
            // A postback's payload is its URL's query.
            Some(Value::String(url.clone()))
        } else if log.payload.is_empty() {
            Some(item.clone())
        } else {
            item.pointer_mut(&log.payload).map(Value::take)
        };
        let item = &item;
        let p = |pointer: &Option<String>| pointer.as_ref().and_then(|p| item.pointer(p));
        let format = match postback_url {
            Some(_) => crate::delivery::Format::Query,
            None => self.profile.callback_format,
        };
        let (body, json) = match payload {
            Some(Value::String(text)) => {
                let json = format.decode_logged(&text);
                (text, json)
            }
            Some(Value::Null) | None => (String::new(), None),
            // (serde_json writes to a buffer faster than through `Display`.)
            Some(v) => (serde_json::to_string(&v).unwrap_or_default(), Some(v)),
        };
        let ids = json
            .as_ref()
            .filter(|_| postback_url.is_none())
            .map(|j| self.profile.correlation.ids(j))
            .unwrap_or_default();
        let sent_at = text_at(item, log.sent_at.as_ref());
        if let Some(text) = &sent_at {
            (self.resolution_ms).fetch_max(
                written_resolution_ms(text),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let at = sent_at
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        Delivery {
            seq,
            at,
            method: if postback_url.is_some() {
                "GET"
            } else {
                "POST"
            }
            .into(),
            path: "(callback log)".into(),
            query: None,
            headers: p(&log.headers).map(logged_headers).unwrap_or_default(),
            body,
            json,
            ids: CallbackIds {
                callback: ids
                    .callback
                    .or_else(|| p(&log.callback_id).and_then(id_text)),
                ..ids
            },
            postback: postback_url.is_some(),
            attempt: p(&log.attempt)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
            answer: EndpointAnswer {
                status: p(&log.endpoint_status)
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok()),
                body: text_at(item, log.endpoint_body.as_ref()),
                error: text_at(item, log.error.as_ref()),
                duration_ms: p(&log.duration_ms).and_then(Value::as_u64),
            },
            refused: None,
        }
    }
}

impl Platform for HttpPlatform {
    fn logs_postbacks(&self) -> bool {
        (self.profile.callback_log.as_ref()).is_some_and(|l| l.postback_url.is_some())
    }

    fn callback_log_url(&self, key: &Key) -> Option<String> {
        let log = self.profile.callback_log.as_ref()?;
        let url = self.url("read callback log", &log.request, &Self::log_vars(key));
        Some(format!("{} {}", log.request.method, url.ok()?))
    }

    fn time_resolution(&self) -> std::time::Duration {
        let ms = self
            .resolution_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        // A millisecond is as fine as pitcrew's own clock needs.
        std::time::Duration::from_millis(if ms > 1 { ms } else { 0 })
    }

    fn callback_states(&self) -> &crate::platform::profile::CallbackStates {
        &self.profile.callback_states
    }

    async fn create_click(&self, click: NewClick<'_>) -> Result<StepOutcome, PlatformError> {
        let step = match click.link {
            true => self.step("link", self.profile.link.as_ref())?,
            false => self.step("click", self.profile.click.as_ref())?,
        };
        let vars = Vars {
            params: click.params,
            faults: click.sandbox_faults.filter(|_| self.profile.sandbox),
            ..Vars::default()
        }
        .with("offer", Some(click.offer))
        .with("member", Some(click.member))
        .with("partner", click.partner);
        let exchange = self.call("create click", &step.request, &vars).await?;
        Ok(self.outcome(step, exchange))
    }

    async fn create_conversion(
        &self,
        conversion: NewConversion<'_>,
    ) -> Result<StepOutcome, PlatformError> {
        let step = match conversion.postback {
            true => self.step("postback", self.profile.postback.as_ref())?,
            false => self.step("conversion", self.profile.conversion.as_ref())?,
        };
        let vars = Vars {
            params: Some(conversion.params),
            faults: conversion.sandbox_faults.filter(|_| self.profile.sandbox),
            ..Vars::default()
        }
        .with("click", Some(conversion.click))
        .with("event", Some(conversion.event))
        .with("offer", Some(conversion.offer))
        .with("member", Some(conversion.member));
        let exchange = self.call("create conversion", &step.request, &vars).await?;
        Ok(self.outcome(step, exchange))
    }

    async fn send_callback(
        &self,
        click: &str,
        conversion: &str,
    ) -> Result<CallbackSent, PlatformError> {
        let step = self.step("resend", self.profile.resend.as_ref())?;
        let vars = Vars::default()
            .with("click", Some(click))
            .with("conversion", Some(conversion));
        let exchange = self.call("send callback", &step.request, &vars).await?;
        let at = |p: &Option<String>| {
            p.as_ref()
                .and_then(|p| exchange.body.pointer(p))
                .filter(|v| !v.is_null())
        };
        let callback_id = (step.callback_id.as_ref())
            .and_then(|e| e.read(&exchange.headers, &exchange.body))
            .as_ref()
            .and_then(id_text);
        Ok(CallbackSent {
            done: step.done(exchange.status, &exchange.body),
            ok: step.ok_text(),
            callback_id,
            endpoint_status: at(&step.endpoint_status)
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            endpoint_body: text_at(&exchange.body, step.endpoint_body.as_ref()),
            endpoint_headers: match at(&step.endpoint_headers) {
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        (k.to_ascii_lowercase(), v)
                    })
                    .collect(),
                _ => Vec::new(),
            },
            endpoint_error: text_at(&exchange.body, step.endpoint_error.as_ref()),
            exchange,
        })
    }

    async fn change_status(&self, change: StatusChange<'_>) -> Result<StepOutcome, PlatformError> {
        let step = self.step("change_status", self.profile.change_status.as_ref())?;
        let word = self.profile.states.word_for(change.status);
        let vars = Vars::default()
            .with("conversion", Some(change.conversion))
            .with("click", Some(change.click))
            .with("status", Some(&word))
            .with("reason", change.reason);
        let exchange = self.call("change status", &step.request, &vars).await?;
        Ok(self.outcome(step, exchange))
    }

    async fn callback_log(&self, key: &Key) -> Result<Vec<Delivery>, PlatformError> {
        let log = self
            .profile
            .callback_log
            .as_ref()
            .ok_or_else(|| PlatformError {
                step: "read callback log",
                kind: PlatformErrorKind::Setup,
                message: "the target's profile has no `callback_log` step".into(),
            })?;
        let vars = Self::log_vars(key);
        let mut exchange = self.call("read callback log", &log.request, &vars).await?;
        let items = match exchange.body.pointer_mut(&log.items) {
            Some(Value::Array(items)) if (200..300).contains(&exchange.status) => {
                Some(std::mem::take(items))
            }
            _ => None,
        };
        match items {
            Some(items) => {
                let seqs = entry_seqs(log, &items);
                Ok(items
                    .into_iter()
                    .zip(seqs)
                    .map(|(item, seq)| self.delivery(log, seq, item))
                    .collect())
            }
            _ => Err(PlatformError {
                step: "read callback log",
                kind: PlatformErrorKind::Unreadable,
                message: format!(
                    "HTTP {}: no list at `{}` in the answer{}",
                    exchange.status,
                    log.items,
                    crate::check::answer_reason(&exchange.body)
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A step on another host than the base URL's is sent without the target's credentials.
    #[test]
    fn origins_tell_hosts_apart() {
        assert_eq!(
            origin("https://API.acme.example/api/v1"),
            "https://api.acme.example"
        );
        assert_eq!(
            origin("https://api.acme.example?x=1"),
            "https://api.acme.example"
        );
        assert_ne!(
            origin("https://track.acme.example/postback"),
            origin("https://api.acme.example/api/v1")
        );
        assert_ne!(
            origin("http://127.0.0.1:8080/x"),
            origin("http://127.0.0.1:8081/x")
        );
    }

    /// A log written to the second is judged at that resolution, and says so.
    #[test]
    fn a_logs_time_resolution_is_read_from_how_it_writes_times() {
        assert_eq!(written_resolution_ms("2026-12-03T07:00:05Z"), 1000);
        assert_eq!(written_resolution_ms("2026-12-03T07:00:05.1+00:00"), 100);
        assert_eq!(written_resolution_ms("2026-12-03T07:00:05.123456Z"), 1);
        let within = crate::check::callback::after_within;
        let two_minutes = std::time::Duration::from_secs(2);
        let coarse = std::time::Duration::from_secs(1);
        // 2 platform minutes of 1 s each, logged as 1 s apart: only a coarse clock takes it.
        assert!(!within(
            two_minutes,
            std::time::Duration::from_millis(1000),
            std::time::Duration::ZERO
        ));
        assert!(within(
            two_minutes,
            std::time::Duration::from_millis(1000),
            coarse
        ));
        assert!(!within(
            two_minutes,
            std::time::Duration::from_secs(5),
            coarse
        ));
    }

    fn log() -> LogStep {
        LogStep {
            payload: "/note".into(),
            attempt: Some("/attempt".into()),
            sent_at: Some("/sentAt".into()),
            ..LogStep::default()
        }
    }

    /// Without attempt ids, an entry keeps its number when the platform updates its outcome
    /// in place (else a settling case would call it a late delivery), and two entries alike get
    /// two numbers.
    #[test]
    fn log_entries_keep_their_number_across_reads() {
        let entry = |outcome: &str, attempt: u32| json!({"note": {"id": "cb-1"}, "attempt": attempt, "sentAt": "t", "outcome": outcome});
        let first = entry_seqs(&log(), &[entry("Retrying", 1)]);
        let second = entry_seqs(&log(), &[entry("Failed", 1), entry("Delivered", 2)]);
        assert_eq!(first[0], second[0], "the same entry, updated");
        assert_ne!(second[0], second[1], "another attempt");
        let twins = entry_seqs(&log(), &[entry("Delivered", 1), entry("Delivered", 1)]);
        assert_ne!(twins[0], twins[1], "two entries alike");
        let with_id = LogStep {
            attempt_id: Some("/id".into()),
            ..log()
        };
        let a = entry_seqs(&with_id, &[json!({"id": "a-1", "note": 1})]);
        let b = entry_seqs(&with_id, &[json!({"id": "a-1", "note": 2})]);
        assert_eq!(a, b, "an attempt id is all it takes");
    }
}
