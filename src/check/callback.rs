//! Checking the deliveries a case caught: how many the endpoint accepted, which it refused,
//! what they carry, the testing-tools flag.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Failure;
use super::matcher::{at_path, holds, show_actual, show_expected};
use crate::delivery::Delivery;
use crate::plan::PayloadCheck;

/// Where the testing-tools flag sits in a schema v1 callback.
pub const FLAG_PATH: &str = "conversion.pubSub5";

/// Checks that the endpoint accepted exactly `expected` deliveries, after waiting `within`
/// (`None`: the wait was cut short by a delivery refused for its credentials).
pub fn count(expected: u32, arrived: usize, within: Option<&str>) -> Option<Failure> {
    if arrived == expected as usize {
        return None;
    }
    let mut failure = Failure::new(
        "callback.count",
        None,
        expected.to_string(),
        arrived.to_string(),
        None,
    );
    let within = match within {
        Some(within) => format!("within {within}"),
        None => "(the wait ended at a delivery refused for its credentials)".into(),
    };
    failure.message = match arrived {
        0 => format!(
            "callback.count: expected {expected}, got 0: no accepted callback arrived {within}"
        ),
        n if expected == 0 => format!(
            "callback.count: expected no accepted delivery, got {n}: the endpoint accepted what it should refuse"
        ),
        n if n > expected as usize => {
            format!("callback.count: expected {expected}, got {n}: a duplicate callback arrived")
        }
        n => format!("callback.count: expected {expected}, got {n} {within}"),
    };
    Some(failure)
}

/// Each delivery the endpoint refused (non-2xx) or that failed in transport fails the case.
pub fn refused(deliveries: &[Arc<Delivery>]) -> Vec<Failure> {
    deliveries
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.accepted())
        .map(|(i, d)| {
            let attempt = d
                .attempt
                .map(|a| format!(" (attempt {a})"))
                .unwrap_or_default();
            let mut failure = Failure::new(
                "callback.delivery",
                None,
                "accepted (2xx)".into(),
                d.outcome(),
                None,
            );
            failure.message = format!(
                "callback.delivery: delivery {}{attempt} was not accepted: {}",
                i + 1,
                d.outcome()
            );
            failure
        })
        .collect()
}

/// Deliveries of the case that pitcrew's receiver refused for their credentials (a wrong or
/// missing secret): each fails the case, with what was wrong.
pub fn refused_credentials(deliveries: &[Arc<Delivery>]) -> Vec<Failure> {
    deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let why = d.refused.as_deref().unwrap_or("its credentials");
            let status = d.answer.status.unwrap_or(401);
            let mut failure = Failure::new(
                "callback.refused",
                None,
                "the partner's credentials".into(),
                format!("{why} ({status})"),
                None,
            );
            failure.message = format!(
                "callback.refused: delivery {} was refused: {why} ({status})",
                i + 1
            );
            failure
        })
        .collect()
}

/// `callback: none` (or `count: 0`): deliveries arrived where none may.
pub fn none_expected(deliveries: &[Arc<Delivery>]) -> Failure {
    let mut failure = Failure::new(
        "callback.count",
        None,
        "0 (callback: none)".into(),
        deliveries.len().to_string(),
        None,
    );
    failure.message = format!(
        "callback.count: expected none, got {}: the platform called back ({})",
        deliveries.len(),
        deliveries[0].outcome()
    );
    failure
}

/// Checks each payload and header expectation and the flag against each callback.
pub fn payload(
    callbacks: &[Arc<Delivery>],
    checks: &[PayloadCheck],
    headers: &[PayloadCheck],
    flag: Option<&str>,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let several = callbacks.len() > 1;
    for (i, callback) in callbacks.iter().enumerate() {
        let label = |check: &str| {
            if several {
                format!("{check} (callback {})", i + 1)
            } else {
                check.to_string()
            }
        };
        for check in headers {
            let actual = super::header(&callback.headers, &check.path);
            if !holds(&check.matcher, actual.as_ref()) {
                failures.push(Failure::new(
                    &label("callback.headers"),
                    Some(&check.path),
                    show_expected(&check.matcher),
                    show_actual(actual.as_ref()),
                    Some(check.at.clone()),
                ));
            }
        }
        let Some(body) = &callback.json else {
            failures.push(Failure::new(
                &label("callback.body"),
                None,
                "a JSON body".into(),
                // Masked before it is cut, so that no secret is cut where masking misses it.
                format!("{:?}", truncate(&crate::mask::mask(&callback.body), 200)),
                None,
            ));
            continue;
        };
        for check in checks {
            let actual = at_path(body, &check.path);
            if !holds(&check.matcher, actual) {
                failures.push(Failure::new(
                    &label("callback.payload"),
                    Some(&check.path),
                    show_expected(&check.matcher),
                    show_actual(actual),
                    Some(check.at.clone()),
                ));
            }
        }
        if let Some(flag) = flag {
            let flag_at = flag_path(body);
            let actual = at_path(body, flag_at);
            if actual.and_then(Value::as_str) != Some(flag) {
                let mut failure = Failure::new(
                    &label("flag"),
                    Some(flag_at),
                    crate::scenario::matcher::describe(&Value::String(flag.into())),
                    show_actual(actual),
                    None,
                );
                failure.message.push_str(
                    " (conversions made by the Operation Tools must carry the testing-tools flag; `flag: false` turns this check off)",
                );
                failures.push(failure);
            }
        }
    }
    failures
}

/// The first `max` characters of `text`.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Where the flag sits in a body: `conversion.pubSub5`, or `Conversion.PubSub5` in the legacy
/// variant.
pub fn flag_path(body: &Value) -> &'static str {
    if super::schema::is_legacy(body) {
        "Conversion.PubSub5"
    } else {
        FLAG_PATH
    }
}

/// How far real time may stray from the platform time an `after` asks for: timers, HTTP and a
/// loaded CI machine add a little; a schedule step (2 → 4 → 8 minutes) is never mistaken.
fn after_holds(expected: Duration, actual: Duration) -> bool {
    let low = expected
        .mul_f64(0.8)
        .saturating_sub(Duration::from_millis(15));
    let high = expected.mul_f64(1.5) + Duration::from_millis(50);
    (low..=high).contains(&actual)
}

/// Platform minutes as a report shows them: `2m`, `3.4m`.
fn platform_minutes(real: Duration, minute: Duration) -> String {
    let minutes = real.as_secs_f64() / minute.as_secs_f64().max(1e-9);
    let text = format!("{minutes:.1}");
    format!("{}m", text.trim_end_matches(".0"))
}

/// `attempts`: every delivery of the part, in order, with the endpoint's answer and the
/// platform time since the previous one (`minute`: how long a platform minute lasts here).
pub fn attempts(
    deliveries: &[Arc<Delivery>],
    expected: &[crate::plan::AttemptCheck],
    minute: Duration,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut sorted: Vec<&Arc<Delivery>> = deliveries.iter().collect();
    sorted.sort_by_key(|d| (d.attempt, d.at, d.seq));
    if sorted.len() != expected.len() {
        let outcomes: Vec<String> = sorted.iter().map(|d| d.outcome()).collect();
        let mut f = Failure::new(
            "callback.attempts",
            None,
            format!("{} deliveries", expected.len()),
            format!("{} ({})", sorted.len(), outcomes.join(", ")),
            expected.first().map(|a| a.at.clone()),
        );
        f.message = format!(
            "callback.attempts: expected {} deliveries, got {}{}",
            expected.len(),
            sorted.len(),
            if outcomes.is_empty() {
                String::new()
            } else {
                format!(": {}", outcomes.join(", "))
            }
        );
        failures.push(f);
    }
    for (i, (d, want)) in sorted.iter().zip(expected).enumerate() {
        let label = format!("callback.attempts[{}]", i + 1);
        failures.extend(endpoint_answer(&label, d, &want.status, &want.body));
        if let (Some(after), Some(previous)) = (want.after, i.checked_sub(1).map(|p| sorted[p])) {
            let expected_real = minute.mul_f64(after.as_secs_f64() / 60.0);
            let actual = (d.at - previous.at).to_std().unwrap_or_default();
            if !after_holds(expected_real, actual) {
                failures.push(Failure::new(
                    &format!("{label}.after"),
                    None,
                    format!(
                        "{} ({} at this target's {} minute)",
                        platform_minutes(expected_real, minute),
                        crate::duration::format_duration(expected_real),
                        crate::duration::format_duration(minute)
                    ),
                    format!(
                        "{} ({})",
                        platform_minutes(actual, minute),
                        crate::duration::format_duration(actual)
                    ),
                    Some(want.at.clone()),
                ));
            }
        }
    }
    failures
}

/// The endpoint's answer to delivery `d` against expected `status` and `body`, as `label`.
fn endpoint_answer(
    label: &str,
    d: &Delivery,
    status: &Option<crate::plan::PayloadCheck>,
    body: &Option<crate::plan::PayloadCheck>,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    if let Some(status) = status {
        let actual = d.answer.status.map(Value::from);
        if !holds(&status.matcher, actual.as_ref()) {
            failures.push(Failure::new(
                &format!("{label}.status"),
                None,
                show_expected(&status.matcher),
                d.outcome(),
                Some(status.at.clone()),
            ));
        }
    }
    if let Some(body) = body {
        let actual = d.answer.body.clone().map(Value::String);
        if !holds(&body.matcher, actual.as_ref()) {
            failures.push(Failure::new(
                &format!("{label}.body"),
                None,
                show_expected(&body.matcher),
                show_actual(actual.as_ref()),
                Some(body.at.clone()),
            ));
        }
    }
    failures
}

/// `response`: the endpoint's answer to each accepted delivery.
pub fn responses(
    accepted: &[Arc<Delivery>],
    check: &crate::plan::DeliveryAnswerCheck,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let several = accepted.len() > 1;
    for (i, d) in accepted.iter().enumerate() {
        let label = if several {
            format!("callback.response (delivery {})", i + 1)
        } else {
            "callback.response".to_string()
        };
        failures.extend(endpoint_answer(&label, d, &check.status, &check.body));
        if let Some((within, at)) = &check.within {
            match d.answer.duration_ms.map(Duration::from_millis) {
                Some(took) if took <= *within => {}
                took => failures.push(Failure::new(
                    &format!("{label}.within"),
                    None,
                    format!(
                        "an answer within {}",
                        crate::duration::format_duration(*within)
                    ),
                    took.map_or("no time recorded".into(), |t| {
                        format!("answered after {}", crate::duration::format_duration(t))
                    }),
                    Some(at.clone()),
                )),
            }
        }
    }
    failures
}

/// The schema v1 check of each accepted delivery.
pub fn schema(accepted: &[Arc<Delivery>]) -> Vec<Failure> {
    let several = accepted.len() > 1;
    accepted
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let label = if several {
                format!("schema (callback {})", i + 1)
            } else {
                "schema".to_string()
            };
            d.json
                .as_ref()
                .map(|body| super::schema::check(body, &label))
        })
        .flatten()
        .collect()
}
