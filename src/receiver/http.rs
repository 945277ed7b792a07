//! The receiver over HTTP. Callbacks come to any path outside `/api`: one without the partner's
//! secret is refused with 401, one over the body limit with 413, one whose body never arrived
//! whole (the sender hung up) with 400, and all of them are kept as strays;
//! an authorized one is kept (in the store first, when there is one) and answered as its case
//! scripted (after the scripted delay), else 200 `OK`. With an API token, `/api` serves the
//! callbacks to runs (`api.rs`).

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;

use super::Receiver;
use super::credentials::Presented;
use crate::delivery::{Delivery, EndpointAnswer};

pub fn router(receiver: Receiver) -> Router {
    let mut router = Router::new();
    if receiver.config().api_token.is_some() {
        router = router
            .nest("/api", super::api::router(receiver.clone()))
            .merge(super::api::metrics(receiver.clone()));
    }
    router
        .fallback(capture)
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

/// The answer pitcrew's receiver gives an accepted callback.
const ACCEPTED: (StatusCode, &str) = (StatusCode::OK, "OK");

async fn capture(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = receiver.config().body_limit;
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    // A partner postback: `/postbacks/{pub_click_id}…`, its query the payload.
    let postback = uri.path().starts_with("/postbacks/") || uri.path() == "/postbacks";
    let mut delivery = Delivery {
        seq: 0,
        at: chrono::Utc::now(),
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        ids: Default::default(),
        headers,
        body: String::new(),
        json: None,
        attempt: None,
        answer: EndpointAnswer::default(),
        refused: None,
        postback,
    };
    // A refused callback's body is read as any other's (up to the limit, for a moment): the
    // ids in it name the case it fails. What is kept of it is bounded (`Receiver::refuse`).
    let presented = |body| Presented {
        headers: &delivery.headers,
        query: delivery.query.as_deref(),
        body,
        now: delivery.at.timestamp(),
    };
    let bytes = match read(body, limit).await {
        Ok(read) => read,
        Err(unread) => {
            let refusal = receiver.credentials(&presented(None), postback).err();
            return unread_answer(&receiver, &delivery, refusal, unread);
        }
    };
    let refusal = receiver
        .credentials(&presented(Some(&bytes)), postback)
        .err();
    let format = match postback {
        true => crate::delivery::Format::Query,
        false => receiver.config().format,
    };
    let json: Option<Value> = format.decode(delivery.query.as_deref(), &bytes);
    delivery.ids = match postback {
        true => crate::delivery::CallbackIds {
            pub_click: postback_click(uri.path()),
            ..Default::default()
        },
        false => receiver.ids(json.as_ref()),
    };
    delivery.body = String::from_utf8_lossy(&bytes).into_owned();
    delivery.json = json;
    receiver.hide_tokens(&mut delivery);
    if let Some(why) = refusal {
        delivery.answer = EndpointAnswer {
            status: Some(StatusCode::UNAUTHORIZED.as_u16()),
            body: None,
            error: None,
            duration_ms: None,
        };
        receiver.turn_away(delivery, &why).await;
        return (
            StatusCode::UNAUTHORIZED,
            format!("unauthorized: refused (401): {why}\n"),
        )
            .into_response();
    }
    let scripted = match receiver.answer(&delivery.ids).await {
        Ok(scripted) => scripted,
        Err(e) => {
            let reason = format!("refused (503): the store could not give its script ({e})");
            receiver.stray(&delivery, &reason);
            return unavailable(&e);
        }
    };
    let (status, body) = match scripted {
        Some(scripted) => {
            if !scripted.delay.is_zero() {
                tokio::time::sleep(scripted.delay).await;
            }
            let status = StatusCode::from_u16(scripted.status).unwrap_or(StatusCode::OK);
            (status, scripted.body)
        }
        None => (ACCEPTED.0, ACCEPTED.1.to_string()),
    };
    delivery.answer = EndpointAnswer {
        status: Some(status.as_u16()),
        body: Some(body.clone()),
        error: None,
        duration_ms: Some((chrono::Utc::now() - delivery.at).num_milliseconds().max(0) as u64),
    };
    if let Err(e) = receiver.take(delivery).await {
        return unavailable(&e);
    }
    (status, body).into_response()
}

/// The answer to a callback the store could not keep: the platform must try again rather
/// than believe it delivered.
fn unavailable(e: &super::StoreError) -> Response {
    let message = format!("the receiver could not keep this callback ({e}); try again\n");
    (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
}

/// The publisher click id a postback's path names: its first segment after `/postbacks/`,
/// decoded (`None` when empty or too long to be one).
fn postback_click(path: &str) -> Option<String> {
    let segment = path.strip_prefix("/postbacks/")?.split('/').next()?;
    let id = percent_encoding_decode(segment);
    (!id.trim().is_empty() && id.len() <= super::MAX_REFUSED_ID).then_some(id)
}

/// `text` with its `%XX` escapes decoded, as a path segment is written (a `+` is itself).
fn percent_encoding_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let (h, l) = (hex(h).unwrap_or(0), hex(l).unwrap_or(0));
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer to a callback whose body could not be read (`refusal`: what its credentials
/// lacked, those a body is not needed for), kept as a stray: 401 when a credential that needs
/// no body was wrong or missing, else 413 or 400 for the body.
fn unread_answer(
    receiver: &Receiver,
    delivery: &Delivery,
    refusal: Option<super::Refusal>,
    unread: Unread,
) -> Response {
    let refusal = refusal.filter(|r| *r != super::Refusal::Unverifiable);
    let (status, reason) = match (&refusal, unread) {
        (Some(why), _) => (StatusCode::UNAUTHORIZED, format!("refused (401): {why}")),
        (None, Unread::TooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "refused (413): the body is over {} KiB, the most this receiver takes",
                receiver.config().body_limit / 1024
            ),
        ),
        // Most often the sender hung up halfway through the body, or sent it too slowly (see
        // `serve`).
        (None, Unread::Broken(e)) => (
            StatusCode::BAD_REQUEST,
            format!("unreadable (400): the body did not arrive whole ({e})"),
        ),
    };
    receiver.stray(delivery, &reason);
    let reason = match status {
        StatusCode::UNAUTHORIZED => format!("unauthorized: {reason}"),
        _ => reason,
    };
    (status, format!("{reason}\n")).into_response()
}

/// Why a body could not be read.
enum Unread {
    /// It is over the receiver's limit.
    TooLarge,
    /// It did not arrive whole: the sender hung up, or sent it too slowly.
    Broken(String),
}

/// Reads `body` to its end, refusing it past `limit` bytes.
async fn read(mut body: Body, limit: usize) -> Result<Vec<u8>, Unread> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Unread::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if bytes.len() + data.len() > limit {
            return Err(Unread::TooLarge);
        }
        bytes.extend_from_slice(&data);
    }
    Ok(bytes)
}
