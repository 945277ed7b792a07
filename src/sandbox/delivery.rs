//! Sending callbacks: one POST per attempt, retries on 500 and 503 on GoKart's schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use axum::body::Bytes;

use super::store::{Attempt, Outcome, Sent};
use super::{Pending, SandboxState};

/// One callback to deliver: the same body (and `id`) on every attempt.
#[derive(Debug, Clone)]
pub struct Job {
    /// What the callback says; kept in the log with each attempt.
    pub sent: Arc<Sent>,
    pub endpoint: Arc<str>,
    pub header: Option<(String, String)>,
    /// A query parameter with a token, added to the endpoint's URL.
    pub query: Option<(String, String)>,
    /// How each attempt is signed.
    pub signature: Option<crate::receiver::credentials::Signature>,
    /// The body of every attempt.
    pub body: Bytes,
    pub max_attempts: u32,
    /// A partner postback: a GET of `endpoint` (macros filled), no body, never retried.
    pub postback: bool,
}

/// What one attempt sent and got, as the callback tool reports it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub attempt: Attempt,
    /// The endpoint's answer, when it answered.
    pub answer: Option<Answer>,
}

/// An endpoint's answer to one attempt.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub duration_ms: u64,
}

impl Exchange {
    /// The request as the callback tool shows it (the secret masked).
    pub fn request_json(&self, job: &Job) -> Value {
        let mut headers = json!({"content-type": "application/json"});
        if let Some((name, _)) = &job.header {
            headers[name.as_str()] = json!("***");
        }
        let body: Value = serde_json::from_slice(&job.body).unwrap_or(Value::Null);
        let token = job
            .query
            .as_ref()
            .map(|(name, _)| (name.clone(), "***".to_string()));
        json!({
            "method": "POST",
            "url": url_with(&job.endpoint, token.as_ref()),
            "headers": headers,
            "body": body,
        })
    }

    /// The endpoint's answer as the callback tool shows it.
    pub fn response_json(&self) -> Option<Value> {
        self.answer.as_ref().map(|a| {
            let headers: serde_json::Map<String, Value> = a
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({
                "status": a.status,
                "headers": headers,
                "body": a.body,
                "durationMs": a.duration_ms,
            })
        })
    }
}

/// `endpoint` with `pair` added to its query.
fn url_with(endpoint: &str, pair: Option<&(String, String)>) -> String {
    match pair {
        None => endpoint.to_string(),
        Some((name, value)) => {
            let pair: String = form_urlencoded::Serializer::new(String::new())
                .append_pair(name, value)
                .finish();
            let joint = if endpoint.contains('?') { '&' } else { '?' };
            format!("{endpoint}{joint}{pair}")
        }
    }
}

/// Sends attempt `number` of `job`, records it in the log and returns it. The caller keeps
/// a [`Pending`] registered while it sends.
async fn send_once(state: &SandboxState, job: &Job, number: u32, retries_left: bool) -> Exchange {
    let url = url_with(&job.endpoint, job.query.as_ref());
    let mut request = match job.postback {
        true => state.client.get(&url),
        false => state
            .client
            .post(&url)
            .header("content-type", "application/json"),
    }
    .header("user-agent", "pitcrew-sandbox (GoKart callback emulation)");
    if let Some((name, secret)) = &job.header {
        request = request.header(name.as_str(), secret.as_str());
    }
    if let Some(signature) = &job.signature {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        // The same message id on every attempt, as Standard Webhooks asks (an idempotency key).
        let id = job.sent.id.to_string();
        let now = Utc::now().timestamp();
        for (name, value) in
            crate::receiver::credentials::sign(signature, &id, now, query, &job.body)
        {
            request = request.header(name, value);
        }
    }
    let started = Instant::now();
    let sent_at = Utc::now();
    let result = request.body(job.body.clone()).send().await;
    let (answer, error) = match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
                .collect();
            match read_answer(resp).await {
                Ok(body) => {
                    let duration_ms = started.elapsed().as_millis() as u64;
                    let answer = Answer {
                        status,
                        headers,
                        body,
                        duration_ms,
                    };
                    (Some(answer), None)
                }
                // An answer that never arrived whole is no answer: the callback was not taken.
                Err(e) => (
                    None,
                    Some(format!(
                        "HTTP {status}, but the answer's body was cut off: {}",
                        crate::error_chain(&e.without_url())
                    )),
                ),
            }
        }
        // Without the URL: its query may hold the partner's token.
        Err(e) => (
            None,
            Some(format!(
                "{}: {}",
                job.endpoint,
                crate::error_chain(&e.without_url())
            )),
        ),
    };
    let status = answer.as_ref().map(|a| a.status);
    let retryable = matches!(status, Some(500 | 503));
    let outcome = match status {
        Some(s) if (200..300).contains(&s) => Outcome::Delivered,
        _ if retryable && retries_left && number < job.max_attempts => Outcome::Retrying,
        _ => Outcome::Failed,
    };
    let attempt = Attempt {
        id: crate::ids::new_uuid(),
        callback: job.sent.clone(),
        endpoint: job.endpoint.clone(),
        attempt: number,
        status,
        response_body: answer.as_ref().map(|a| a.body.as_str().into()),
        error: error.map(String::into_boxed_str),
        duration_ms: started.elapsed().as_millis() as u64,
        sent_at,
        outcome,
        postback: job.postback.then(|| job.endpoint.clone()),
    };
    state.record(attempt.clone());
    Exchange { attempt, answer }
}

/// The most of an endpoint's answer that is kept (the rest is read, to know it arrived whole,
/// and dropped): an endpoint that answers megabytes cannot fill the sandbox's memory.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An endpoint's answer body: all of it, or its first [`MAX_ANSWER_BYTES`] and a note of how
/// much more there was; an error when it was cut off.
async fn read_answer(mut resp: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut kept: Vec<u8> = Vec::new();
    let mut dropped = 0usize;
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_ANSWER_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        dropped += chunk.len().saturating_sub(room);
    }
    let mut body = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        body.push_str(&format!("… ({dropped} more bytes not kept)"));
    }
    Ok(body)
}

/// Delivers `job` with retries; the first attempt is awaited, later ones run in the background.
/// The delivery is pending from its first attempt to its last (the retries take it over).
pub async fn deliver(state: Arc<SandboxState>, job: Job) -> Exchange {
    let pending = Pending::new(&state, &job.sent, tokio::time::Instant::now());
    let first = send_once(&state, &job, 1, true).await;
    if first.attempt.outcome == Outcome::Retrying {
        tokio::spawn(retry(state, job, 2, pending));
    }
    first
}

/// Sends a partner postback once (postbacks are not retried), pending while it is made.
pub async fn send_postback(state: &Arc<SandboxState>, job: &Job) -> Exchange {
    let _pending = Pending::new(state, &job.sent, tokio::time::Instant::now());
    send_once(state, job, 1, false).await
}

/// One attempt of `job`, whatever its outcome (a resend by hand), pending while it is made.
pub async fn send_alone(state: &Arc<SandboxState>, job: &Job) -> Exchange {
    let _pending = Pending::new(state, &job.sent, tokio::time::Instant::now());
    send_once(state, job, 1, false).await
}

/// How long before attempt `number`: 2, 4, 8… platform minutes after the previous one.
fn backoff(state: &SandboxState, number: u32) -> Duration {
    let minutes = 1u32 << (number - 1).min(16);
    state
        .config
        .minute
        .saturating_mul(minutes)
        .min(Duration::from_secs(3600))
}

async fn retry(state: Arc<SandboxState>, job: Job, mut number: u32, pending: Pending) {
    loop {
        let wait = backoff(&state, number);
        pending.due(tokio::time::Instant::now() + wait);
        tokio::time::sleep(wait).await;
        let exchange = send_once(&state, &job, number, true).await;
        if exchange.attempt.outcome != Outcome::Retrying {
            return;
        }
        number += 1;
    }
}
