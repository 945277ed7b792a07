//! The HTTP side of the receiver: any method, any path under `/`, answered `200 OK`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::Value;

use super::{Captured, Receiver};

pub fn router(receiver: Receiver) -> Router {
    Router::new().fallback(capture).with_state(receiver)
}

async fn capture(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    receiver.record(Captured {
        seq: 0,
        received_at: std::time::SystemTime::now(),
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        key: json.as_ref().and_then(correlation_key),
        json,
    });
    (StatusCode::OK, "OK")
}

/// `conversion.conversionId`, falling back to `conversion.clickId` (and the same at the top).
pub fn correlation_key(body: &Value) -> Option<String> {
    let id = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let conversion = body.get("conversion").unwrap_or(&Value::Null);
    id(conversion, "conversionId")
        .or_else(|| id(body, "conversionId"))
        .or_else(|| id(conversion, "clickId"))
        .or_else(|| id(body, "clickId"))
}
