//! Sending callbacks: one POST per attempt, retries on 500 and 503 on GoKart's schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use super::SandboxState;
use super::payload::rfc3339;
use super::store::Attempt;

/// One callback to deliver: the same body (and `id`) on every attempt.
#[derive(Debug, Clone)]
pub struct Job {
    pub callback_id: String,
    pub conversion_id: String,
    pub click_id: String,
    pub endpoint: String,
    pub header: Option<(String, String)>,
    pub payload: Value,
    pub max_attempts: u32,
}

/// What one attempt sent and got, as the callback tool reports it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub attempt: Attempt,
    pub request: Value,
    pub response: Option<Value>,
}

/// Sends attempt `number` of `job`, records it in the log and returns it.
pub async fn send_once(
    state: &SandboxState,
    job: &Job,
    number: u32,
    retries_left: bool,
) -> Exchange {
    let body = serde_json::to_vec(&job.payload).unwrap_or_default();
    let mut request = state
        .client
        .post(&job.endpoint)
        .header("content-type", "application/json")
        .header("user-agent", "pitcrew-sandbox (GoKart callback emulation)");
    let mut shown_headers = json!({"content-type": "application/json"});
    if let Some((name, secret)) = &job.header {
        request = request.header(name.as_str(), secret.as_str());
        shown_headers[name.as_str()] = json!("***");
    }
    let started = Instant::now();
    let sent_at = rfc3339(Utc::now());
    let result = request.body(body).send().await;
    let (status, response_body, response, error) = match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let headers: serde_json::Map<String, Value> = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("<binary>"))))
                .collect();
            let text = resp.text().await.unwrap_or_default();
            let duration_ms = started.elapsed().as_millis() as u64;
            let response = json!({
                "status": status,
                "headers": headers,
                "body": text,
                "durationMs": duration_ms,
            });
            (Some(status), Some(text), Some(response), None)
        }
        Err(e) => (None, None, None, Some(crate::error_chain(&e))),
    };
    let retryable = matches!(status, Some(500 | 503));
    let outcome = match status {
        Some(s) if (200..300).contains(&s) => "Delivered",
        _ if retryable && retries_left && number < job.max_attempts => "Retrying",
        _ => "Failed",
    };
    let attempt = Attempt {
        id: uuid::Uuid::new_v4().to_string(),
        callback_id: job.callback_id.clone(),
        conversion_id: job.conversion_id.clone(),
        click_id: job.click_id.clone(),
        endpoint: job.endpoint.clone(),
        attempt: number,
        status,
        response_body,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
        sent_at,
        outcome: outcome.into(),
        note: job.payload.clone(),
    };
    state.record(attempt.clone());
    Exchange {
        request: json!({
            "method": "POST",
            "url": job.endpoint,
            "headers": shown_headers,
            "body": job.payload,
        }),
        response,
        attempt,
    }
}

/// Delivers `job` with retries; the first attempt is awaited, later ones run in the background.
pub async fn deliver(state: Arc<SandboxState>, job: Job) -> Exchange {
    let first = send_once(&state, &job, 1, true).await;
    if first.attempt.outcome == "Retrying" {
        tokio::spawn(retry(state, job, 2));
    }
    first
}

async fn retry(state: Arc<SandboxState>, job: Job, mut number: u32) {
    loop {
        // 2, 4, 8… platform minutes after the previous attempt.
        let minutes = 1u32 << (number - 1).min(16);
        tokio::time::sleep(
            state
                .config
                .minute
                .saturating_mul(minutes)
                .min(Duration::from_secs(3600)),
        )
        .await;
        let exchange = send_once(&state, &job, number, true).await;
        if exchange.attempt.outcome != "Retrying" {
            return;
        }
        number += 1;
    }
}
