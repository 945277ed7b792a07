//! Checking the deliveries a case caught: how many the endpoint accepted, which it refused,
//! what they carry, the testing-tools flag.

use std::sync::Arc;

use serde_json::Value;

use super::Failure;
use super::matcher::{at_path, holds, show_actual, show_expected};
use crate::delivery::Delivery;
use crate::plan::PayloadCheck;

/// Where the testing-tools flag sits in a schema v1 callback.
pub const FLAG_PATH: &str = "conversion.pubSub5";

/// Checks that the endpoint accepted exactly `expected` deliveries.
pub fn count(expected: u32, arrived: usize, within: &str) -> Option<Failure> {
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
    failure.message = match arrived {
        0 => format!(
            "callback.count: expected {expected}, got 0: no accepted callback arrived within {within}"
        ),
        n if n > expected as usize => {
            format!("callback.count: expected {expected}, got {n}: a duplicate callback arrived")
        }
        n => format!("callback.count: expected {expected}, got {n} within {within}"),
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
                format!("{:?}", truncate(&callback.body, 200)),
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
            let actual = at_path(body, FLAG_PATH);
            if actual.and_then(Value::as_str) != Some(flag) {
                let mut failure = Failure::new(
                    &label("flag"),
                    Some(FLAG_PATH),
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
