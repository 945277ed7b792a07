//! The receiver's API under `/api`, behind `Authorization: Bearer TOKEN` (DESIGN §6): runs
//! list and long-poll the callbacks of their own conversions and clicks, and register scripted
//! answers. Many runs share one receiver: each reads only the ids it asks for.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Receiver;
use crate::delivery::{CallbackIds, Delivery, EndpointAnswer, Key, Script, ScriptedAnswer};

/// The longest a long poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// One callback as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiCallback {
    pub seq: u64,
    pub received_at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: Option<String>,
    /// Request headers as `[name, value]` pairs; secret-looking values are `***`.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub json: Option<Value>,
    /// What it is filed under: its conversion id, else its click id.
    pub key: Option<String>,
    #[serde(default)]
    pub ids: CallbackIds,
    /// What the receiver answered.
    #[serde(default)]
    pub answer: EndpointAnswer,
    /// Why the receiver refused it for its credentials, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl ApiCallback {
    fn of(d: &Delivery) -> ApiCallback {
        ApiCallback {
            seq: d.seq,
            received_at: d.at,
            method: d.method.clone(),
            path: d.path.clone(),
            query: d.query.clone(),
            headers: d
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), crate::mask::header_value(k, v)))
                .collect(),
            body: d.body.clone(),
            json: d.json.clone(),
            key: (d.ids.conversion.clone())
                .or_else(|| d.ids.click.clone())
                .or_else(|| d.ids.pub_click.clone()),
            ids: d.ids.clone(),
            answer: d.answer.clone(),
            refused: d.refused.clone(),
        }
    }

    /// The delivery it shows.
    pub fn into_delivery(self) -> Delivery {
        Delivery {
            seq: self.seq,
            at: self.received_at,
            method: self.method,
            path: self.path,
            query: self.query,
            headers: self.headers,
            body: self.body,
            json: self.json,
            postback: self.ids.pub_click.is_some(),
            ids: self.ids,
            attempt: None,
            answer: self.answer,
            refused: self.refused,
        }
    }
}

/// `GET /api/callbacks` and `/api/callbacks/wait`: which callbacks.
#[derive(Debug, Deserialize)]
struct Which {
    conversion: Option<String>,
    click: Option<String>,
    /// The partner postbacks naming this publisher click id.
    postback: Option<String>,
    /// Only those after this sequence number.
    since: Option<u64>,
    /// `wait`: how many (in all, after `since`) to wait for.
    count: Option<usize>,
    /// `wait`: how long at most, e.g. `10s` (at most 60s).
    timeout: Option<String>,
}

impl Which {
    // A `Response` is what every handler returns; boxing it would only add noise.
    #[allow(clippy::result_large_err)]
    fn key(&self) -> Result<Key, Response> {
        match (&self.conversion, &self.click, &self.postback) {
            (Some(c), _, _) if !c.is_empty() => Ok(Key::Conversion(c.clone())),
            (_, Some(c), _) if !c.is_empty() => Ok(Key::Click(c.clone())),
            (_, _, Some(p)) if !p.is_empty() => Ok(Key::Postback(p.clone())),
            _ => Err(problem(
                StatusCode::BAD_REQUEST,
                "give `conversion=ID`, `click=ID` or `postback=PUB_CLICK_ID`",
            )),
        }
    }
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub fn router(receiver: Receiver) -> Router<Receiver> {
    Router::new()
        .route("/callbacks", get(list))
        .route("/callbacks/wait", get(wait))
        .route("/scripts/{id}", put(script))
        .route("/health", get(health))
        .layer(middleware::from_fn_with_state(receiver, bearer))
}

/// `GET /metrics`, behind the API's token: Prometheus' text format.
pub fn metrics(receiver: Receiver) -> Router<Receiver> {
    Router::new()
        .route("/metrics", get(render_metrics))
        .layer(middleware::from_fn_with_state(receiver, bearer))
}

async fn render_metrics(State(receiver): State<Receiver>) -> Response {
    let text = receiver.metrics().render(receiver.stray_count());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn bearer(State(receiver): State<Receiver>, request: Request, next: Next) -> Response {
    let expected = receiver
        .config()
        .api_token
        .as_ref()
        .map(|t| format!("Bearer {t}"));
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    match (expected, given) {
        (Some(e), Some(g)) if super::constant_time_eq(&e, g) => next.run(request).await,
        _ => problem(
            StatusCode::UNAUTHORIZED,
            "missing or wrong `Authorization: Bearer <token>`",
        ),
    }
}

fn listed(deliveries: &[Arc<Delivery>], since: Option<u64>) -> Value {
    let callbacks: Vec<ApiCallback> = deliveries
        .iter()
        .filter(|d| since.is_none_or(|s| d.seq > s))
        .map(|d| ApiCallback::of(d))
        .collect();
    json!({ "callbacks": callbacks })
}

async fn list(State(receiver): State<Receiver>, Query(which): Query<Which>) -> Response {
    let key = match which.key() {
        Ok(k) => k,
        Err(e) => return e,
    };
    if let Err(e) = receiver.refresh().await {
        return store_lost(&e);
    }
    Json(listed(&receiver.deliveries(&key), which.since)).into_response()
}

/// The answer when the shared store cannot be read: a listing without it could miss a
/// callback another replica answered.
fn store_lost(e: &super::StoreError) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("the receiver cannot read its store ({e}); try again"),
    )
}

async fn wait(State(receiver): State<Receiver>, Query(which): Query<Which>) -> Response {
    let key = match which.key() {
        Ok(k) => k,
        Err(e) => return e,
    };
    let timeout = match which
        .timeout
        .as_deref()
        .map(crate::duration::parse_duration)
    {
        None => Duration::from_secs(10),
        Some(Ok(t)) => t.min(MAX_WAIT),
        Some(Err(e)) => return problem(StatusCode::BAD_REQUEST, &format!("timeout: {e}")),
    };
    let count = which.count.unwrap_or(1);
    let since = which.since;
    let enough = |ds: &[Arc<Delivery>]| {
        ds.iter()
            .filter(|d| since.is_none_or(|s| d.seq > s))
            .count()
            >= count
    };
    let deadline = tokio::time::Instant::now() + timeout;
    if let Err(e) = receiver.refresh().await {
        return store_lost(&e);
    }
    let waiting = super::metrics::Waiting::new(receiver.metrics());
    let got = receiver.wait(&key, &enough, deadline).await;
    drop(waiting);
    Json(listed(&got, since)).into_response()
}

/// `PUT /api/scripts/{id}`: `{respond: [{status, body, delay}]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptRequest {
    respond: Vec<AnswerRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerRequest {
    status: u16,
    #[serde(default)]
    body: Option<String>,
    /// e.g. `2s`.
    #[serde(default)]
    delay: Option<String>,
}

async fn script(
    State(receiver): State<Receiver>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let request: ScriptRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid script: {e}")),
    };
    let mut answers = Vec::with_capacity(request.respond.len());
    for a in request.respond {
        if !(100..600).contains(&a.status) {
            return problem(StatusCode::BAD_REQUEST, "a status is 100 to 599");
        }
        let delay = match a.delay.as_deref().map(crate::duration::parse_duration) {
            None => Duration::ZERO,
            Some(Ok(d)) => d.min(MAX_WAIT),
            Some(Err(e)) => return problem(StatusCode::BAD_REQUEST, &format!("delay: {e}")),
        };
        let ok = (200..300).contains(&a.status);
        answers.push(ScriptedAnswer {
            status: a.status,
            body: a
                .body
                .unwrap_or_else(|| if ok { "OK".into() } else { String::new() }),
            delay,
        });
    }
    if answers.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "`respond` lists no answer");
    }
    match receiver.register(&id, Script { answers }).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the receiver could not keep the script ({e}); try again"),
        ),
    }
}

async fn health(State(receiver): State<Receiver>) -> Response {
    let store = receiver
        .config()
        .store
        .as_ref()
        .map_or("memory".to_string(), |s| s.name());
    let (status, error) = match receiver.store_ok().await {
        Ok(()) => (StatusCode::OK, None),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Some(e.to_string())),
    };
    let mut health = json!({
        "ok": error.is_none(),
        "store": store,
        "received": receiver.total(),
        "kept": receiver.kept(),
        "strays": receiver.stray_count(),
    });
    if let Some(error) = error {
        health["error"] = json!(error);
    }
    (status, Json(health)).into_response()
}
