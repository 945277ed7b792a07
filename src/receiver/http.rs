//! The receiver over HTTP: any method, any path. A callback without the partner's secret is
//! refused with 401 and kept as a stray; an authorized one is recorded and answered 200 `OK`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::Value;

use super::Receiver;
use crate::delivery::{Delivery, EndpointAnswer};

pub fn router(receiver: Receiver) -> Router {
    Router::new().fallback(capture).with_state(receiver)
}

/// The answer pitcrew's receiver gives an accepted callback.
const ACCEPTED: (StatusCode, &str) = (StatusCode::OK, "OK");

async fn capture(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let authorized = receiver.authorized(&headers);
    let mut delivery = Delivery {
        seq: 0,
        at: chrono::Utc::now(),
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        ids: receiver.ids(json.as_ref()),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        json,
        attempt: None,
        answer: EndpointAnswer::default(),
    };
    if !authorized {
        let names: Vec<&str> = receiver
            .config()
            .auth
            .iter()
            .flatten()
            .map(|a| a.name.as_str())
            .collect();
        let reason = match names.as_slice() {
            [] => "refused (401): no partner sends its callbacks to this receiver".to_string(),
            names => format!(
                "refused (401): no {} header with the partner's secret",
                names.join(" or ")
            ),
        };
        receiver.stray(&delivery, &reason);
        return (
            StatusCode::UNAUTHORIZED,
            format!("unauthorized: {reason}\n"),
        )
            .into_response();
    }
    let (status, body) = match receiver.scripted_answer(&delivery.ids) {
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
    receiver.record(delivery);
    (status, body).into_response()
}
