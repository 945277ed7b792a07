//! The sandbox's HTTP API: request parsing, GoKart's answer wrapper, the tools' rules.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::SEEDED_CLICK_ID;
use super::delivery::{self, Job};
use super::faults::{AuthFault, FaultsRequest};
use super::payload;
use super::store::{Attempt, Click, Conversion, Sent, parse_id};
use super::{Pending, SandboxState};

type Shared = Arc<SandboxState>;

/// Every route the API serves, under `/api/v1`, as (method, path) the way OpenAPI writes
/// them: `openapi.json` documents exactly these (a test keeps the two together).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/tools/clicks"),
    ("post", "/tools/conversions"),
    ("post", "/tools/callbacks"),
    ("patch", "/conversions/{id}"),
    ("get", "/conversion-callbacks"),
    ("get", "/sandbox/clock"),
    ("get", "/sandbox/pending"),
    ("get", "/openapi.json"),
    ("get", "/offer-link/redirect/{offerId}"),
    // At the host's root (the document says so with its own `servers`).
    ("get", "/postback"),
];

/// The API's OpenAPI 3 document, kept in the repository beside this file.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/v1/tools/clicks", post(create_click))
        .route("/api/v1/tools/conversions", post(create_conversion))
        .route("/api/v1/tools/callbacks", post(send_callback))
        .route("/api/v1/conversions/{id}", patch(change_status))
        .route("/api/v1/conversion-callbacks", get(callback_log))
        .route("/api/v1/sandbox/clock", get(clock))
        .route("/api/v1/sandbox/pending", get(pending))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/offer-link/redirect/{offer}", get(offer_link))
        .route("/postback", get(postback))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

/// GoKart's answer wrapper.
fn answer<T: serde::Serialize>(
    status: StatusCode,
    title: &str,
    messages: Vec<String>,
    data: T,
) -> Response {
    /// The wrapper, its keys in the order a JSON object of them is written.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Wrapper<'a, T> {
        data: T,
        is_successful: bool,
        messages: Vec<String>,
        response_id: String,
        response_title: &'a str,
        response_type: &'static str,
    }
    let ok = status.is_success();
    let body = Wrapper {
        data,
        is_successful: ok,
        messages,
        response_id: crate::ids::new_uuid().to_string(),
        response_title: title,
        response_type: if ok { "Success" } else { "Error" },
    };
    (status, axum::Json(body)).into_response()
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    answer(status, title, vec![message.into()], Value::Null)
}

async fn require_token(State(state): State<Shared>, request: Request, next: Next) -> Response {
    // The tracking link and the advertiser's postback are public, as a tenant's are.
    let path = request.uri().path();
    let public = path == "/postback" || path.starts_with("/api/v1/offer-link/");
    if let (Some(token), false) = (&state.config.token, public) {
        let expected = format!("ApiToken {token}");
        let given = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "missing or wrong `Authorization: ApiToken <token>` header",
            );
        }
    }
    next.run(request).await
}

/// How long a platform minute lasts here: clients scale the retry schedule by it.
async fn clock(State(state): State<Shared>) -> Response {
    let minute = crate::duration::format_duration(state.config.minute);
    answer(
        StatusCode::OK,
        "Sandbox clock",
        vec![],
        json!({ "minute": minute }),
    )
}

/// `GET /sandbox/pending`: which deliveries (all, or those of one conversion or click).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PendingQuery {
    conversion_id: Option<String>,
    click_id: Option<String>,
}

/// When the sandbox next sends a callback (of the conversion or click asked about, else any):
/// `nextDeliveryInMs` is 0 while one is being sent, the time until the next one is due, or
/// null when none is (a case's verdict can be final); `deliveries`: how many are being sent or
/// still due; `made`: for one conversion, how many attempts its log holds.
async fn pending(State(state): State<Shared>, Query(query): Query<PendingQuery>) -> Response {
    let filed = super::Filed::under(query.conversion_id.as_deref(), query.click_id.as_deref());
    let next = filed.and_then(|f| state.next_due(f)).map(|due| {
        due.saturating_duration_since(tokio::time::Instant::now())
            .as_millis() as u64
    });
    let count = filed.map_or(0, |f| state.pending_count(f));
    let made = filed.and_then(|f| state.made(f));
    answer(
        StatusCode::OK,
        "Sandbox pending deliveries",
        vec![],
        json!({ "nextDeliveryInMs": next, "deliveries": count, "made": made }),
    )
}

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

async fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "no such endpoint in the sandbox API")
}

// A `Response` is what every handler returns; boxing it would only add noise.
#[allow(clippy::result_large_err)]
fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("invalid request body: {e}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClickRequest {
    offer_id: String,
    publisher_member_id: String,
    #[serde(default)]
    partner_id: Option<String>,
}

async fn create_click(State(state): State<Shared>, body: Bytes) -> Response {
    let request: ClickRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(offer) = state.config.offer(&request.offer_id) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("offer `{}` not found", request.offer_id),
        );
    };
    let partner_id = request.partner_id.unwrap_or_else(|| offer.partner.clone());
    if state.config.partner(&partner_id).is_none() {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("partner `{partner_id}` not found"),
        );
    }
    if request.publisher_member_id.trim().is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "publisherMemberId must not be empty",
        );
    }
    let id = crate::ids::new_uuid();
    let created_at = Utc::now();
    let data = json!({
        "clickId": id.to_string(),
        "offerId": offer.id,
        "publisherMemberId": request.publisher_member_id,
        "partnerId": partner_id,
        "createdAt": payload::rfc3339(created_at),
    });
    {
        let mut store = state.store();
        let click = Click {
            id,
            offer_id: store.text(&offer.id),
            member_id: Arc::from(request.publisher_member_id),
            partner_id: store.text(&partner_id),
            created_at,
            link: store.params(Vec::new()),
        };
        store.clicks.insert(id, click);
    }
    answer(StatusCode::CREATED, "Click created", vec![], data)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConversionRequest {
    click_id: String,
    event_id: String,
    #[serde(default)]
    params: HashMap<String, Value>,
    /// Sandbox only: faults to inject into this conversion's callbacks.
    #[serde(default)]
    faults: FaultsRequest,
}

/// The answer an `api_error` fault gives a conversion call for `click`, when it gives one: its
/// 5xx every time; `429` once for the click, with `Retry-After: 1` (a tenant's rate limit lets
/// the retry through).
fn api_error(
    state: &Shared,
    click: &super::store::Click,
    fault: Option<u16>,
    what: &str,
) -> Option<Response> {
    match fault? {
        429 if state.store().rate_limited.insert(click.id) => {
            let mut answer = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests (an injected `api_error: 429` fault): retry after 1 s",
            );
            answer.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            Some(answer)
        }
        429 => None,
        status => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(refuse(
                status,
                format!("{what} (an injected `api_error` fault)"),
            ))
        }
    }
}

async fn create_conversion(State(state): State<Shared>, body: Bytes) -> Response {
    let request: ConversionRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let faults = match request.faults.parse() {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(click) = state.store().click(&request.click_id).cloned() else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("click `{}` not found", request.click_id),
        );
    };
    let faults = faults.or(&state.config.partner_faults(&click.partner_id));
    if let Some(latency) = faults.api_latency {
        tokio::time::sleep(latency).await;
    }
    if let Some(failed) = api_error(&state, &click, faults.api_error, "the API failed") {
        return failed;
    }
    let params: Vec<(Box<str>, Box<str>)> = request
        .params
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.into_boxed_str(), text.into_boxed_str())
        })
        .collect();
    let made = convert(&state, &click, &request.event_id, params, faults, false).await;
    match made {
        Ok(data) => answer(StatusCode::CREATED, "Conversion created", vec![], data),
        Err(refused) => refused,
    }
}

/// Converts `click` for `event_id` with `params` (the click's link parameters under them):
/// the conversion's status (Success, Pending, or Rejected for a member's second completion),
/// its automatic callback's first outcome, and what the answer says of it; or the answer that
/// refuses it (422 for an event the offer does not have). `public`: made by the advertiser's
/// postback, not the tools.
async fn convert(
    state: &Shared,
    click: &Click,
    event_id: &str,
    params: Vec<(Box<str>, Box<str>)>,
    faults: super::faults::Faults,
    public: bool,
) -> Result<Value, Response> {
    let offer = state.config.offer(&click.offer_id);
    let Some(offer) = offer.filter(|o| o.events.iter().any(|e| e.id == event_id)) else {
        let events: Vec<&str> = offer
            .map(|o| o.events.iter().map(|e| e.id.as_str()).collect())
            .unwrap_or_default();
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "event `{}` is not an event of offer `{}` (its events: {})",
                event_id,
                click.offer_id,
                events.join(", ")
            ),
        ));
    };
    // The link's parameters first; the conversion's own win.
    let mut all: Vec<(Box<str>, Box<str>)> = params;
    for (k, v) in click.link.iter() {
        if !all.iter().any(|(name, _)| name == k) {
            all.push((k.clone(), v.clone()));
        }
    }
    // The event's initial status: Success, or Pending until a status change.
    let initial_status = offer
        .events
        .iter()
        .find(|e| e.id == event_id)
        .map_or("Success", |e| e.status.as_str());
    let conversion = {
        let mut store = state.store();
        let event_id = store.text(event_id);
        let mut conversion = Conversion {
            id: crate::ids::new_uuid(),
            click_id: click.id,
            params: store.params(all),
            status: store.text(initial_status),
            rejection_reason: None,
            created_at: Utc::now(),
            faults: store.faults(faults),
            event_id: event_id.clone(),
            public,
        };
        // A member completes an offer event once; the seeded click may convert again and again.
        let key = (click.member_id.clone(), click.offer_id.clone(), event_id);
        // (The advertiser's postback holds every click to the rule, the seeded one too.)
        if (click.id != SEEDED_CLICK_ID || public) && !store.completed.insert(key) {
            conversion.status = store.text("Rejected");
            conversion.rejection_reason =
                Some("The member has already completed this offer event".into());
        }
        store.conversions.insert(conversion.id, conversion.clone());
        conversion
    };
    let callback = automatic_callback(state, &conversion, click).await;
    send_postbacks(state, &conversion, click).await;
    Ok(json!({
        "conversionId": conversion.id.to_string(),
        "clickId": conversion.click_id.to_string(),
        "eventId": &*conversion.event_id,
        "status": &*conversion.status,
        "rejectionReason": conversion.rejection_reason.as_deref(),
        "callback": callback,
    }))
}

/// The offer's tracking link: a click for the publisher's member (with its `pub_*` parameters),
/// and a 302 to the advertiser's landing page with the click id where its URL says
/// `{gk_click_id}`. 404 for an unknown offer, 400 without `pub_member_id`.
async fn offer_link(
    State(state): State<Shared>,
    Path(offer_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some(offer) = state.config.offer(&offer_id) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("offer `{offer_id}` not found"),
        );
    };
    let member = query
        .iter()
        .find(|(k, _)| k == "pub_member_id")
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty());
    let Some(member) = member else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the tracking link needs `pub_member_id`, the publisher's member",
        );
    };
    let Some(landing) = &offer.advertiser_url else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("offer `{offer_id}` has no `advertiser_url` to send the user to"),
        );
    };
    let faults = match query_faults(&query) {
        Ok(f) => f.or(&state.config.partner_faults(&offer.partner)),
        Err(refused) => return refused,
    };
    let link: Vec<(Box<str>, Box<str>)> = query
        .iter()
        .filter(|(k, _)| k.starts_with("pub_") && k != "pub_member_id")
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    let id = crate::ids::new_uuid();
    {
        let mut store = state.store();
        let click = Click {
            id,
            offer_id: store.text(&offer.id),
            member_id: Arc::from(member),
            partner_id: store.text(&offer.partner),
            created_at: Utc::now(),
            link: store.params(link),
        };
        store.clicks.insert(id, click);
    }
    let click_id = match faults.redirect_without_click_id {
        true => String::new(),
        false => id.to_string(),
    };
    let location = landing.replace("{gk_click_id}", &click_id);
    (
        StatusCode::FOUND,
        [(axum::http::header::LOCATION, location)],
    )
        .into_response()
}

/// The faults a public call asks for in its `faults` parameter (JSON, as the conversion tool
/// takes them): the sandbox's own, which no tenant has; pitcrew sends it to a sandbox only.
// A `Response` is what every handler returns; boxing it would only add noise.
#[allow(clippy::result_large_err)]
fn query_faults(query: &[(String, String)]) -> Result<super::faults::Faults, Response> {
    let Some((_, text)) = query.iter().find(|(k, _)| k == "faults") else {
        return Ok(Default::default());
    };
    let request: FaultsRequest = serde_json::from_str(text)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("faults: {e}")))?;
    request
        .parse()
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, e.to_string()))
}

/// The advertiser's postback: `gk_click_id` and `event_id` (matched exactly), with `cnv_*`
/// parameters; converts the click as the tools would, without the testing-tools flag. 200
/// with the conversion's id and status; 404 for an unknown click, 422 for an event the offer
/// does not have, 400 without the ids.
async fn postback(
    State(state): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    // Taken as sent: an event id matches exactly (` SignUp` is not `SignUp`).
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    };
    let (Some(click_id), Some(event_id)) = (get("gk_click_id"), get("event_id")) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "a postback needs `gk_click_id` and `event_id`",
        );
    };
    let Some(click) = state.store().click(click_id).cloned() else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("click `{click_id}` not found"),
        );
    };
    let params: Vec<(Box<str>, Box<str>)> = query
        .iter()
        .filter(|(k, _)| k.starts_with("cnv_"))
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    let faults = match query_faults(&query) {
        Ok(f) => f.or(&state.config.partner_faults(&click.partner_id)),
        Err(refused) => return refused,
    };
    if let Some(latency) = faults.api_latency {
        tokio::time::sleep(latency).await;
    }
    if let Some(failed) = api_error(&state, &click, faults.api_error, "the postback failed") {
        return failed;
    }
    match convert(&state, &click, event_id, params, faults, true).await {
        Ok(data) => answer(StatusCode::OK, "Postback received", vec![], data),
        Err(refused) => refused,
    }
}

/// One attempt as the log shows it (its keys in the order a JSON object of them is written).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LogEntry<'a> {
    attempt: u32,
    callback_id: String,
    click_id: String,
    conversion_id: String,
    duration_ms: u64,
    endpoint: &'a str,
    error: Option<&'a str>,
    id: String,
    /// `callback`, or `postback` for a partner postback.
    kind: &'static str,
    /// The body as sent, built again from what the callback said (none for a postback).
    note: Option<Box<serde_json::value::RawValue>>,
    outcome: &'static str,
    response_body: Option<&'a str>,
    sent_at: String,
    status: Option<u16>,
    /// A postback's URL as sent (its macros filled).
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

/// One attempt of the log, with the conversion and click its body is built from (`None` once
/// the sandbox forgot them).
type Logged = (Attempt, Option<(Conversion, Click)>);

fn log_entry<'a>(state: &SandboxState, (a, made): &'a Logged) -> LogEntry<'a> {
    let sent = &a.callback;
    let note = made.as_ref().filter(|_| a.postback.is_none());
    let note = note.and_then(|(conversion, click)| {
        let offer = state.config.offer(&click.offer_id);
        let partner = state.config.partner(&click.partner_id);
        let body = payload::body(sent, conversion, click, offer, partner);
        String::from_utf8(body)
            .ok()
            .and_then(|text| serde_json::value::RawValue::from_string(text).ok())
    });
    LogEntry {
        attempt: a.attempt,
        callback_id: sent.id.to_string(),
        click_id: sent.click_id.to_string(),
        conversion_id: sent.conversion_id.to_string(),
        duration_ms: a.duration_ms,
        endpoint: &a.endpoint,
        error: a.error.as_deref(),
        id: a.id.to_string(),
        kind: if a.postback.is_some() {
            "postback"
        } else {
            "callback"
        },
        note,
        outcome: a.outcome.as_str(),
        response_body: a.response_body.as_deref(),
        sent_at: payload::rfc3339(a.sent_at),
        status: a.status,
        url: a.postback.as_deref(),
    }
}

/// Builds the callback job for `conversion`, or `None` when its partner skips that status.
fn job_for(state: &SandboxState, conversion: &Conversion, click: &Click) -> Option<Job> {
    let partner = state.config.partner(&click.partner_id);
    if let Some(p) = partner
        && !p
            .statuses
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&conversion.status))
    {
        return None;
    }
    callback_job(state, conversion, click)
}

/// The callback job for `conversion`, with its partner's credentials.
fn callback_job(state: &SandboxState, conversion: &Conversion, click: &Click) -> Option<Job> {
    let partner = state.config.partner(&click.partner_id);
    let offer = state.config.offer(&click.offer_id);
    let sent = Arc::new(Sent {
        id: crate::ids::new_uuid(),
        conversion_id: conversion.id,
        click_id: click.id,
        status: conversion.status.clone(),
        rejection_reason: conversion.rejection_reason.clone(),
        faults: conversion.faults.clone(),
        sent_at: Utc::now(),
    });
    Some(Job {
        body: Bytes::from(payload::body(&sent, conversion, click, offer, partner)),
        sent,
        endpoint: match partner.and_then(|p| p.callback_url.as_deref()) {
            Some(url) => Arc::from(url),
            None => state.default_callback_url.clone(),
        },
        header: partner
            .and_then(|p| p.auth_header.as_ref())
            .and_then(|h| faulty((h.name.clone(), h.secret.clone()), conversion.faults.auth)),
        query: partner
            .and_then(|p| p.auth_query.as_ref())
            .and_then(|q| faulty((q.name.clone(), q.secret.clone()), conversion.faults.auth)),
        signature: partner.and_then(|p| p.signature.as_ref()).and_then(|s| {
            let mut s = s.clone();
            match conversion.faults.auth {
                None => {}
                Some(AuthFault::Wrong) => s.secret = format!("wrong-{}", s.secret),
                Some(AuthFault::Missing) => return None,
            }
            s.signature().ok()
        }),
        max_attempts: partner.map(|p| p.max_attempts.max(1)).unwrap_or(5),
        postback: false,
    })
}

/// The partner postbacks of a conversion that became `Success`: the partner's global
/// `postback_url` and its event's, each with its macros filled, proven with the partner's
/// credentials as its callbacks are.
fn postback_jobs(state: &SandboxState, conversion: &Conversion, click: &Click) -> Vec<Job> {
    let offer = state.config.offer(&click.offer_id);
    let event = offer.and_then(|o| o.events.iter().find(|e| e.id == *conversion.event_id));
    let partner = state.config.partner(&click.partner_id);
    let urls = [
        partner.and_then(|p| p.postback_url.as_deref()),
        event.and_then(|e| e.postback_url.as_deref()),
    ];
    if urls.iter().all(Option::is_none) {
        return Vec::new();
    }
    // The partner's credentials, as its callback carries them.
    let Some(callback) = callback_job(state, conversion, click) else {
        return Vec::new();
    };
    urls.into_iter()
        .flatten()
        .map(|template| {
            let filled = fill_macros(template, conversion, click, offer);
            let url = match filled.starts_with('/') {
                // A path goes to the host of the partner's callbacks.
                true => match reqwest::Url::parse(&callback.endpoint) {
                    Ok(base) => format!("{}{filled}", base.origin().ascii_serialization()),
                    Err(_) => filled,
                },
                false => filled,
            };
            Job {
                endpoint: Arc::from(url),
                body: Bytes::new(),
                max_attempts: 1,
                postback: true,
                ..callback.clone()
            }
        })
        .collect()
}

/// A postback URL with each `{macro}` replaced by its URL-encoded value (empty when the
/// conversion has none; `{cnv_event_id}` is empty on a single-event offer).
fn fill_macros(
    template: &str,
    conversion: &Conversion,
    click: &Click,
    offer: Option<&super::config::OfferConfig>,
) -> String {
    let value = |name: &str| -> Option<String> {
        match name {
            "pub_member_id" => Some(click.member_id.to_string()),
            "gk_offer_id" => Some(click.offer_id.to_string()),
            "gk_offer_name" => offer.and_then(|o| o.name.clone()),
            "cnv_event_id" => offer
                .filter(|o| o.events.len() > 1)
                .map(|_| conversion.event_id.to_string()),
            other => conversion.param(other).map(str::to_string),
        }
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + 1..start + len];
        if super::config::is_postback_macro(name) {
            let text = value(name).unwrap_or_default();
            // Percent-encoded for a path as for a query: a space is `%20`, never `+`.
            for piece in form_urlencoded::byte_serialize(text.as_bytes()) {
                out.push_str(&piece.replace('+', "%20"));
            }
        } else {
            out.push_str(&rest[start..=start + len]);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Sends the partner postbacks of a conversion that became `Success` (none with the
/// `drop_postback` fault, each twice with `duplicate_postback`), before the tool answers.
async fn send_postbacks(state: &Shared, conversion: &Conversion, click: &Click) {
    if conversion.faults.drop_postback || &*conversion.status != "Success" {
        return;
    }
    let copies = if conversion.faults.duplicate_postback {
        2
    } else {
        1
    };
    for job in postback_jobs(state, conversion, click) {
        for _ in 0..copies {
            delivery::send_postback(state, &job).await;
        }
    }
}

/// A credential (name, secret) as the `auth` fault leaves it: wrong, missing, or as it is.
fn faulty(credential: (String, String), fault: Option<AuthFault>) -> Option<(String, String)> {
    match fault {
        None => Some(credential),
        Some(AuthFault::Wrong) => Some((credential.0, format!("wrong-{}", credential.1))),
        Some(AuthFault::Missing) => None,
    }
}

/// Sends the automatic callback of a new or changed conversion; returns its first outcome.
/// Without a delay the first attempt is made before the tool answers, as GoKart's tools do.
async fn automatic_callback(state: &Shared, conversion: &Conversion, click: &Click) -> Value {
    let Some(job) = job_for(state, conversion, click) else {
        return json!({"outcome": "NotSent", "reason": format!("the partner does not call back {} conversions", conversion.status)});
    };
    let faults = &conversion.faults;
    if faults.drop_callback {
        return json!({"callbackId": job.sent.id.to_string(), "outcome": "Scheduled"});
    }
    let duplicate = faults.duplicate_after;
    if let Some(delay) = faults.callback_delay {
        let (state, id) = (state.clone(), job.sent.id.to_string());
        let pending = Pending::new(&state, &job.sent, tokio::time::Instant::now() + delay);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            delivery::deliver(state.clone(), job.clone()).await;
            if let Some(after) = duplicate {
                pending.due(tokio::time::Instant::now() + after);
                tokio::time::sleep(after).await;
                delivery::deliver(state, job).await;
            }
            drop(pending);
        });
        return json!({"callbackId": id, "outcome": "Scheduled"});
    }
    let first = delivery::deliver(state.clone(), job.clone()).await;
    match duplicate {
        Some(after) if after.is_zero() => {
            delivery::deliver(state.clone(), job).await;
        }
        Some(after) => {
            let state = state.clone();
            let pending = Pending::new(&state, &job.sent, tokio::time::Instant::now() + after);
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                delivery::deliver(state, job).await;
                drop(pending);
            });
        }
        None => {}
    }
    attempt_summary(&first.attempt)
}

fn attempt_summary(a: &super::store::Attempt) -> Value {
    json!({
        "callbackId": a.callback.id.to_string(),
        "attempt": a.attempt,
        "status": a.status,
        "outcome": a.outcome.as_str(),
        "error": a.error,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallbackRequest {
    click_id: String,
    conversion_id: String,
}

async fn send_callback(State(state): State<Shared>, body: Bytes) -> Response {
    let request: CallbackRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let found = {
        let store = state.store();
        let conversion = parse_id(&request.conversion_id)
            .and_then(|id| store.conversions.get(&id))
            .cloned();
        let click = store.click(&request.click_id).cloned();
        (conversion, click)
    };
    let (conversion, click) = match found {
        (None, _) => {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("conversion `{}` not found", request.conversion_id),
            );
        }
        (Some(_), None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("click `{}` not found", request.click_id),
            );
        }
        (Some(conversion), Some(click)) if conversion.click_id != click.id => {
            return refuse(
                StatusCode::NOT_FOUND,
                format!(
                    "conversion `{}` does not belong to click `{}`",
                    conversion.id, click.id
                ),
            );
        }
        (Some(conversion), Some(click)) => (conversion, click),
    };
    let Some(job) = job_for(&state, &conversion, &click) else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the partner does not call back {} conversions",
                conversion.status
            ),
        );
    };
    // Resending by hand is one attempt, whatever its outcome.
    let exchange = delivery::send_alone(&state, &job).await;
    let data = json!({
        "callbackId": job.sent.id.to_string(),
        "request": exchange.request_json(&job),
        "response": exchange.response_json(),
        "error": exchange.attempt.error,
        "outcome": exchange.attempt.outcome.as_str(),
    });
    answer(StatusCode::OK, "Callback sent", vec![], data)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusChange {
    status: String,
    #[serde(default)]
    rejection_reason: Option<String>,
}

async fn change_status(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request: StatusChange = match parse_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let status = match request.status.to_ascii_lowercase().as_str() {
        "success" => "Success",
        "pending" => "Pending",
        "rejected" => "Rejected",
        _ => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "status `{}` is not one of Success, Pending, Rejected",
                    request.status
                ),
            );
        }
    };
    let updated = {
        let mut store = state.store();
        let Some(found) = parse_id(&id).filter(|id| store.conversions.contains_key(id)) else {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("conversion `{id}` not found"),
            );
        };
        let status = store.text(status);
        let was_success = &*store.conversions[&found].status == "Success";
        // A status change is an ordinary callback: earlier delivery faults do not carry over.
        let faults = store.conversions[&found].faults.for_status_change();
        let faults = store.faults(faults);
        let Some(conversion) = store.conversions.get_mut(&found) else {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("conversion `{id}` not found"),
            );
        };
        conversion.rejection_reason = request
            .rejection_reason
            .filter(|_| &*status == "Rejected")
            .map(String::into_boxed_str);
        conversion.status = status;
        conversion.faults = faults;
        let conversion = conversion.clone();
        let click = store.clicks.get(&conversion.click_id).cloned();
        (conversion, click, was_success)
    };
    let (conversion, Some(click), was_success) = updated else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("the click of conversion `{id}` is gone"),
        );
    };
    let callback = automatic_callback(&state, &conversion, &click).await;
    if !was_success {
        send_postbacks(&state, &conversion, &click).await;
    }
    let data = json!({
        "conversionId": conversion.id.to_string(),
        "status": &*conversion.status,
        "rejectionReason": conversion.rejection_reason.as_deref(),
        "callback": callback,
    });
    answer(StatusCode::OK, "Conversion updated", vec![], data)
}

async fn callback_log(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    _headers: HeaderMap,
) -> Response {
    let conversion = query.get("conversionId").filter(|s| !s.is_empty());
    let click = query.get("clickId").filter(|s| !s.is_empty());
    if conversion.is_none() && click.is_none() {
        return refuse(StatusCode::BAD_REQUEST, "give `conversionId` or `clickId`");
    }
    // An id that is no id matches nothing.
    let click = click.map(|c| parse_id(c));
    let mut logged: Vec<Logged> = {
        // What the bodies are built from is taken under the lock; they are built after it.
        let store = state.store();
        let attempts: Vec<&Attempt> = match conversion {
            Some(id) => parse_id(id)
                .and_then(|id| store.log.get(&id))
                .map(|v| v.iter().collect())
                .unwrap_or_default(),
            None => store.log.values().flatten().collect(),
        };
        attempts
            .into_iter()
            .filter(|a| click.is_none_or(|c| c == Some(a.callback.click_id)))
            .map(|a| {
                let made = store
                    .conversions
                    .get(&a.callback.conversion_id)
                    .zip(store.clicks.get(&a.callback.click_id))
                    .map(|(conversion, click)| (conversion.clone(), click.clone()));
                (a.clone(), made)
            })
            .collect()
    };
    logged.sort_by_key(|(a, _)| a.sent_at);
    let data: Vec<LogEntry> = logged.iter().map(|l| log_entry(&state, l)).collect();
    answer(StatusCode::OK, "Conversion callbacks", vec![], data)
}
