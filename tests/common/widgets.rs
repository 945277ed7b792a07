//! "Widgets", a tracking platform with another API shape than GoKart's, served by the tests
//! so that pitcrew can only reach it through a pitcrew.yaml profile:
//! - base path `/v2`, API key header `X-Widget-Key`;
//! - `POST /v2/visits` is form-encoded (`campaign`, `user`) → `{"visit": {"ref": "V-…"}}`;
//! - `POST /v2/visits/{ref}/actions` `{"action", "extra"}` → 202
//!   `{"result": {"action_ref", "state", "why"}, "notify": {"ticket"}}`;
//! - `GET /v2/actions/{ref}/notify` resends → `{"delivery": {"ticket", "reply": {"code", "text"}}}`;
//! - `PUT /v2/actions/{ref}/state` `{"to", "note"}` → `{"notify": {"ticket"}}`;
//! - `GET /v2/notifications?action=` → `{"entries": [{"id", "ticket", "try", "code", "at", "sent"}]}`.
//!
//! Notifications are POSTed as `{"ticket", "event": {"action", "visit", "state", "extra"}}` with
//! `X-Widget-Sig`, retried once after 100 ms on a 503; `extra.dup = "1"` sends each twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

pub const API_KEY: &str = "widget-api-key-7c1";
pub const SIG: &str = "widget-sig-secret-9d4";
/// The token of `Auth::QueryToken`, in the `wtoken` query parameter.
pub const TOKEN: &str = "widget-query-token-3e8";
/// The Standard Webhooks secret: `whsec_` and the base64 of the key `widget-webhook-key-51`.
pub const WHSEC: &str = "whsec_d2lkZ2V0LXdlYmhvb2sta2V5LTUx";
/// The HMAC key of `Auth::HmacQuery` and `Auth::HmacBody`.
pub const HMAC_KEY: &str = "widget-hmac-key-8a2";

/// How Widgets sends a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// POST `{"ticket", "event": {…}}`.
    Json,
    /// POST a form: `ticket`, `action`, `visit`, `state`.
    Form,
    /// GET with `ticket`, `action`, `visit`, `state` in the query.
    Query,
}

/// How Widgets proves a notification is its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `X-Widget-Sig: SIG`.
    Header,
    /// `wtoken=TOKEN` in the query.
    QueryToken,
    /// The Standard Webhooks headers, with `WHSEC`.
    StandardWebhooks,
    /// `X-Widget-Hmac`: hex HMAC-SHA256 of the sorted query, with `HMAC_KEY`.
    HmacQuery,
    /// `X-Widget-Hmac: sha256=<base64 HMAC-SHA256 of "TIME.BODY">`, `X-Widget-Time: TIME`.
    HmacBody,
}

/// How a Widgets platform notifies; `forged`: with the wrong secret (as a forger would).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub shape: Shape,
    pub auth: Auth,
    pub forged: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shape: Shape::Json,
            auth: Auth::Header,
            forged: false,
        }
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[derive(Default)]
struct Data {
    visits: HashMap<String, String>,
    actions: HashMap<String, (String, Value, String)>,
    log: Vec<Value>,
    next: u64,
    /// Reads of the notification log asking for an action that exists.
    action_log_reads: usize,
    /// Visits to the advertiser's landing page (where `/v2/go` redirects).
    landings: usize,
}

#[derive(Clone)]
struct Widgets {
    data: Arc<Mutex<Data>>,
    notify_to: String,
    options: Options,
    client: reqwest::Client,
}

/// A running Widgets platform.
pub struct Platform {
    /// e.g. `http://127.0.0.1:41234/v2`
    pub base: String,
    data: Arc<Mutex<Data>>,
}

impl Platform {
    /// How many times the advertiser's landing page was fetched.
    pub fn landings(&self) -> usize {
        self.data.lock().unwrap().landings
    }

    /// How many times the notification log was read for an action it made.
    pub fn action_log_reads(&self) -> usize {
        self.data.lock().unwrap().action_log_reads
    }
}

/// Where the ids sit in a Widgets notification, as `pitcrew receive` takes them.
pub const RECEIVE_IDS: [&str; 6] = [
    "--conversion-id",
    "/event/action",
    "--click-id",
    "/event/visit",
    "--callback-id",
    "/ticket",
];

/// Serves Widgets on an ephemeral port, posting its notifications to `notify_to`.
pub fn start(notify_to: &str) -> Platform {
    start_with(notify_to, Options::default())
}

/// Serves Widgets notifying `notify_to` as `options` say.
pub fn start_with(notify_to: &str, options: Options) -> Platform {
    let data: Arc<Mutex<Data>> = Arc::default();
    let state = Widgets {
        data: data.clone(),
        notify_to: notify_to.to_string(),
        options,
        client: reqwest::Client::new(),
    };
    let app = Router::new()
        .route("/v2/visits", post(visit))
        .route("/v2/go/{campaign}", get(go))
        .route("/v2/text/actions", post(text_action))
        .route("/v2/landing", get(landing))
        .route("/v2/visits/{visit}/actions", post(action))
        .route("/v2/actions/{action}/notify", get(resend))
        .route("/v2/actions/{action}/state", put(change))
        .route("/v2/notifications", get(notifications))
        .with_state(state);
    Platform {
        base: format!("http://{}/v2", super::serve_app(app)),
        data,
    }
}

/// A server that answers every request 200 `OK`: where Widgets notifies in the log case.
pub fn sink() -> String {
    let app = Router::new().fallback(|| async { "OK" });
    format!("http://{}/hook", super::serve_app(app))
}

#[allow(clippy::result_large_err)]
fn authorized(headers: &HeaderMap) -> Result<(), Response> {
    match headers.get("x-widget-key").and_then(|v| v.to_str().ok()) {
        Some(API_KEY) => Ok(()),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "bad key"})),
        )
            .into_response()),
    }
}

impl Widgets {
    fn next(&self, prefix: &str) -> String {
        let mut d = self.data.lock().unwrap();
        d.next += 1;
        format!("{prefix}-{}-{}", d.next, uuid::Uuid::new_v4().simple())
    }

    /// The request of one notification, as `options` shape and sign it, and what the log
    /// keeps of it as sent (the JSON body, the form, or the URL).
    fn request(&self, ticket: &str, body: &Value) -> (reqwest::RequestBuilder, Value, Value) {
        let o = self.options;
        let event = &body["event"];
        let mut pairs: Vec<(String, String)> = ["action", "visit", "state"]
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    event[*k].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        pairs.insert(0, ("ticket".into(), ticket.to_string()));
        let encode = |pairs: &[(String, String)]| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let wrong = |secret: &str| {
            if o.forged {
                format!("forged-{secret}")
            } else {
                secret.to_string()
            }
        };
        let mut query_pairs = Vec::new();
        if o.shape == Shape::Query {
            query_pairs.extend(pairs.iter().cloned());
        }
        if o.auth == Auth::QueryToken {
            query_pairs.push(("wtoken".into(), wrong(TOKEN)));
        }
        let query = encode(&query_pairs);
        let url = if query.is_empty() {
            self.notify_to.clone()
        } else {
            format!("{}?{query}", self.notify_to)
        };
        let (mut request, bytes, sent) = match o.shape {
            Shape::Json => {
                let bytes = serde_json::to_vec(body).unwrap();
                let r = self
                    .client
                    .post(&url)
                    .header("content-type", "application/json");
                (r, bytes, body.clone())
            }
            Shape::Form => {
                let form = encode(&pairs);
                let r = self
                    .client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded");
                (r, form.clone().into_bytes(), Value::String(form))
            }
            Shape::Query => (
                self.client.get(&url),
                Vec::new(),
                Value::String(url.clone()),
            ),
        };
        let now = chrono::Utc::now().timestamp();
        request = match o.auth {
            Auth::Header => request.header("X-Widget-Sig", wrong(SIG)),
            Auth::QueryToken => request,
            Auth::StandardWebhooks => {
                use base64::Engine;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(WHSEC.trim_start_matches("whsec_"))
                    .unwrap();
                let key = if o.forged {
                    b"forged-key".to_vec()
                } else {
                    key
                };
                let mut signed = format!("{ticket}.{now}.").into_bytes();
                signed.extend_from_slice(&bytes);
                request
                    .header("webhook-id", ticket)
                    .header("webhook-timestamp", now.to_string())
                    .header(
                        "webhook-signature",
                        format!("v1,{}", b64(&hmac(&key, &signed))),
                    )
            }
            Auth::HmacQuery => {
                let mut sorted: Vec<&str> = query.split('&').collect();
                sorted.sort_unstable();
                let mac = hmac(wrong(HMAC_KEY).as_bytes(), sorted.join("&").as_bytes());
                let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
                request.header("X-Widget-Hmac", hex)
            }
            Auth::HmacBody => {
                let mut signed = format!("{now}.").into_bytes();
                signed.extend_from_slice(&bytes);
                let mac = hmac(wrong(HMAC_KEY).as_bytes(), &signed);
                request
                    .header("X-Widget-Time", now.to_string())
                    .header("X-Widget-Hmac", format!("sha256={}", b64(&mac)))
            }
        };
        // What the log keeps of the request's headers (reqwest adds only its own after this).
        let headers: serde_json::Map<String, Value> = request
            .try_clone()
            .and_then(|r| r.build().ok())
            .map(|r| {
                r.headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
                    .collect()
            })
            .unwrap_or_default();
        (request.body(bytes), sent, Value::Object(headers))
    }

    /// Sends a notification (retried once on 503); returns the first try's answer.
    async fn notify(&self, ticket: String, action: String) -> (Option<u16>, String) {
        let (visit, extra, state) = self.data.lock().unwrap().actions[&action].clone();
        let body = json!({"ticket": ticket, "event": {"action": action, "visit": visit, "state": state, "extra": extra}});
        let copies = if extra["dup"] == "1" { 2 } else { 1 };
        let mut first = None;
        for _ in 0..copies {
            for attempt in 1..=2 {
                let (request, sent, headers) = self.request(&ticket, &body);
                let answer = request.send().await;
                let (code, text) = match answer {
                    Ok(r) => (
                        Some(r.status().as_u16()),
                        r.text().await.unwrap_or_default(),
                    ),
                    Err(e) => (None, e.to_string()),
                };
                let id = self.next("N");
                self.data.lock().unwrap().log.push(json!({
                    "id": id, "ticket": ticket, "action": action, "visit": visit, "try": attempt,
                    "code": code, "reply": text, "at": chrono::Utc::now().to_rfc3339(), "sent": sent,
                    "headers": headers,
                }));
                first.get_or_insert((code, text));
                if code != Some(503) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        first.unwrap_or((None, String::new()))
    }
}

/// A tracking link: a visit, and a 302 to the advertiser's landing page with its ref.
async fn go(State(w): State<Widgets>, Path(campaign): Path<String>) -> Response {
    let r = w.next("V");
    w.data.lock().unwrap().visits.insert(r.clone(), campaign);
    (
        StatusCode::FOUND,
        [("location", format!("/v2/landing?ref={r}"))],
    )
        .into_response()
}

async fn landing(State(w): State<Widgets>) -> &'static str {
    w.data.lock().unwrap().landings += 1;
    "the advertiser's landing page"
}

async fn visit(
    State(w): State<Widgets>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(e) = authorized(&headers) {
        return e;
    }
    let (Some(campaign), Some(_user)) = (form.get("campaign"), form.get("user")) else {
        return (StatusCode::BAD_REQUEST, "campaign and user").into_response();
    };
    if campaign != "camp-1" {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such campaign"})),
        )
            .into_response();
    }
    let r = w.next("V");
    w.data
        .lock()
        .unwrap()
        .visits
        .insert(r.clone(), campaign.clone());
    axum::Json(json!({"visit": {"ref": r}})).into_response()
}

async fn action(
    State(w): State<Widgets>,
    headers: HeaderMap,
    Path(visit): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(e) = authorized(&headers) {
        return e;
    }
    if !w.data.lock().unwrap().visits.contains_key(&visit) {
        return (StatusCode::NOT_FOUND, "no such visit").into_response();
    }
    let mut extra = body["extra"].clone();
    // What came in the query is notified too, under `extra.query`.
    if !query.is_empty() {
        extra["query"] = json!(query);
    }
    let (action, state, why, ticket) = w
        .act(visit, body["action"].as_str().unwrap_or_default(), extra)
        .await;
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"result": {"action_ref": action, "state": state, "why": why}, "notify": {"ticket": ticket}})),
    )
        .into_response()
}

/// The same as a text platform answers it (TUNE-like): always 200, with
/// `success=true; conversion_id=…; status=…;` or `success=false; error=…;`.
async fn text_action(
    State(w): State<Widgets>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(e) = authorized(&headers) {
        return e;
    }
    let visit = form.get("visit").cloned().unwrap_or_default();
    if !w.data.lock().unwrap().visits.contains_key(&visit) {
        return "success=false; error=no such visit;".into_response();
    }
    let name = form.get("action").cloned().unwrap_or_default();
    if name == "bogus" {
        return "success=false; error=unknown action;".into_response();
    }
    let (action, state, _, _) = w.act(visit, &name, json!({})).await;
    format!("success=true; conversion_id={action}; status={state};").into_response()
}

impl Widgets {
    /// Makes action `name` of `visit` and notifies it: its ref, state, why, and ticket.
    async fn act(
        &self,
        visit: String,
        name: &str,
        extra: Value,
    ) -> (String, &'static str, Value, String) {
        let action = self.next("A");
        // Widgets' own words: an action `risky` is declined at once, for fraud; a `flip` one is
        // answered approved and notified declined (a platform at odds with itself).
        let (state, why) = match name {
            "risky" => ("declined", json!("fraud")),
            _ => ("approved", Value::Null),
        };
        let notified = if name == "flip" { "declined" } else { state };
        self.data
            .lock()
            .unwrap()
            .actions
            .insert(action.clone(), (visit, extra, notified.into()));
        let ticket = self.next("T");
        self.notify(ticket.clone(), action.clone()).await;
        (action, state, why, ticket)
    }
}

async fn resend(
    State(w): State<Widgets>,
    headers: HeaderMap,
    Path(action): Path<String>,
) -> Response {
    if let Err(e) = authorized(&headers) {
        return e;
    }
    if !w.data.lock().unwrap().actions.contains_key(&action) {
        return (StatusCode::NOT_FOUND, "no such action").into_response();
    }
    let ticket = w.next("T");
    let (code, text) = w.notify(ticket.clone(), action).await;
    axum::Json(json!({"delivery": {"ticket": ticket, "reply": {"code": code, "text": text}}}))
        .into_response()
}

async fn change(
    State(w): State<Widgets>,
    headers: HeaderMap,
    Path(action): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(e) = authorized(&headers) {
        return e;
    }
    {
        let mut d = w.data.lock().unwrap();
        let Some(a) = d.actions.get_mut(&action) else {
            return (StatusCode::NOT_FOUND, "no such action").into_response();
        };
        // Only Widgets' own words are taken.
        let to = body["to"].as_str().unwrap_or_default();
        if !["approved", "pending", "declined"].contains(&to) {
            return (StatusCode::UNPROCESSABLE_ENTITY, "unknown state").into_response();
        }
        a.2 = to.to_string();
    }
    let ticket = w.next("T");
    w.notify(ticket.clone(), action).await;
    axum::Json(json!({"notify": {"ticket": ticket}})).into_response()
}

async fn notifications(
    State(w): State<Widgets>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = authorized(&headers) {
        return e;
    }
    let mut d = w.data.lock().unwrap();
    if q.get("action").is_some_and(|a| d.actions.contains_key(a)) {
        d.action_log_reads += 1;
    }
    let entries: Vec<&Value> = d
        .log
        .iter()
        .filter(|e| {
            q.get("action").is_none_or(|a| e["action"] == a.as_str())
                && q.get("visit").is_none_or(|v| e["visit"] == v.as_str())
        })
        .collect();
    axum::Json(json!({"entries": entries})).into_response()
}

/// The pitcrew.yaml target that drives Widgets at `base`, observing callbacks as `callbacks`
/// says (a YAML mapping, indented for the target).
pub fn profile(name: &str, base: &str, callbacks: &str) -> String {
    format!(
        r#"  {name}:
    base_url: "{base}"
    headers: {{ X-Widget-Key: "{{{{env.WIDGET_KEY}}}}" }}
    offer: camp-1
    states: {{ Success: [approved], Pending: [pending], Rejected: [declined] }}
    steps:
      click:
        request:
          method: POST
          path: /visits
          form: {{ campaign: "{{{{offer}}}}", user: "{{{{member}}}}" }}
        ok: [200]
        id: /visit/ref
      conversion:
        request:
          method: POST
          path: "/visits/{{{{click}}}}/actions"
          body: {{ action: "{{{{event}}}}", extra: "{{{{params}}}}" }}
        ok: [202]
        id: /result/action_ref
        state: /result/state
        reason: /result/why
        callback_id: /notify/ticket
      resend:
        request: {{ method: GET, path: "/actions/{{{{conversion}}}}/notify" }}
        callback_id: /delivery/ticket
        endpoint_status: /delivery/reply/code
        endpoint_body: /delivery/reply/text
      change_status:
        request:
          method: PUT
          path: "/actions/{{{{conversion}}}}/state"
          body: {{ to: "{{{{status}}}}", note: "{{{{reason}}}}" }}
        callback_id: /notify/ticket
      callback_log:
        request:
          method: GET
          path: /notifications
          query: {{ action: "{{{{conversion}}}}", visit: "{{{{click}}}}" }}
        items: /entries
        payload: /sent
        endpoint_status: /code
        endpoint_body: /reply
        attempt: /try
        sent_at: /at
        callback_id: /ticket
        attempt_id: /id
    callbacks:
{callbacks}
      callback_id: /ticket
      conversion_id: /event/action
      click_id: /event/visit
      state: /event/state
"#
    )
}

/// [`profile`] for a platform notifying in `shape`: a form's or a query's pairs are flat.
pub fn profile_shaped(name: &str, base: &str, callbacks: &str, shape: Shape) -> String {
    let flat = |format: &str| {
        profile(name, base, &format!("      format: {format}\n{callbacks}"))
            .replace("conversion_id: /event/action", "conversion_id: /action")
            .replace("click_id: /event/visit", "click_id: /visit")
            .replace("state: /event/state\n", "state: /state\n")
    };
    match shape {
        Shape::Json => profile(name, base, callbacks),
        Shape::Form => flat("form"),
        Shape::Query => flat("query"),
    }
}

/// The `callbacks:` credentials (indented for a target) that check `auth`'s notifications.
pub fn credentials(auth: Auth) -> &'static str {
    match auth {
        Auth::Header => {
            "      auth_header: { name: X-Widget-Sig, secret: \"{{env.WIDGET_SIG}}\" }\n"
        }
        Auth::QueryToken => {
            "      auth_query: { name: wtoken, secret: \"{{env.WIDGET_TOKEN}}\" }\n"
        }
        Auth::StandardWebhooks => {
            "      signature: { scheme: standard-webhooks, secret: \"{{env.WIDGET_WHSEC}}\" }\n"
        }
        Auth::HmacQuery => {
            "      signature: { scheme: hmac-sha256, header: X-Widget-Hmac, over: query, secret: \"{{env.WIDGET_HMAC}}\" }\n"
        }
        Auth::HmacBody => {
            "      signature: { scheme: hmac-sha256, header: X-Widget-Hmac, encoding: base64, prefix: \"sha256=\", timestamp_header: X-Widget-Time, secret: \"{{env.WIDGET_HMAC}}\" }\n"
        }
    }
}
