//! Checking the deliveries a case caught: how many the endpoint accepted, which it refused,
//! what they carry, the testing-tools flag.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Failure;
use super::matcher::{at_path, holds, show_actual, show_actual_for, show_expected};
use crate::delivery::Delivery;
use crate::plan::PayloadCheck;
use crate::platform::profile::CallbackStates;
use crate::scenario::matcher::Matcher;

/// Where the testing-tools flag sits in a schema v1 callback.
pub const FLAG_PATH: &str = "conversion.pubSub5";

/// Checks that the endpoint accepted exactly `expected` deliveries, after waiting `within`
/// (`None`: the wait was cut short by a delivery refused for its credentials). `at`: where
/// the expectation is written.
pub fn count(expected: u32, arrived: usize, within: Option<&str>, at: &str) -> Option<Failure> {
    if arrived == expected as usize {
        return None;
    }
    let within = match within {
        Some(within) => format!("within {within}"),
        None => "(the wait ended at a delivery refused for its credentials)".into(),
    };
    let note = match arrived {
        0 => format!("no accepted callback arrived {within}"),
        _ if expected == 0 => "the endpoint accepted what it should refuse".into(),
        n if n > expected as usize => "a duplicate callback arrived".into(),
        _ => format!("no more arrived {within}"),
    };
    let failure = Failure::new("callback.count", expected.to_string(), arrived.to_string());
    Some(failure.note(note).at(at))
}

/// Each delivery the endpoint refused (non-2xx) or that failed in transport fails the case.
pub fn refused(deliveries: &[Arc<Delivery>], at: &str) -> Vec<Failure> {
    deliveries
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.accepted())
        .map(|(i, d)| {
            let attempt = d
                .attempt
                .map(|a| format!(" (attempt {a})"))
                .unwrap_or_default();
            Failure::new("callback.delivery", "accepted (2xx)", d.outcome())
                .saying(format!(
                    "delivery {}{attempt} was not accepted: {}",
                    i + 1,
                    d.outcome()
                ))
                .at(at)
        })
        .collect()
}

/// Deliveries of the case that pitcrew's receiver refused for their credentials (a wrong or
/// missing secret): each fails the case, with what was wrong.
pub fn refused_credentials(deliveries: &[Arc<Delivery>], at: &str) -> Vec<Failure> {
    deliveries
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let why = d.refused.as_deref().unwrap_or("its credentials");
            let status = d.answer.status.unwrap_or(401);
            let got = format!("{why} ({status})");
            Failure::new("callback.refused", "the partner's credentials", &got)
                .saying(format!("delivery {} was refused: {got}", i + 1))
                .at(at)
        })
        .collect()
}

/// `callback: none` (or `count: 0`): deliveries arrived where none may.
pub fn none_expected(deliveries: &[Arc<Delivery>], at: &str) -> Failure {
    let got = deliveries.len().to_string();
    Failure::new("callback.count", "none", got)
        .note(format!(
            "the platform called back ({})",
            deliveries[0].outcome()
        ))
        .at(at)
}

/// Checks each payload and header expectation and the flag against each callback. `flag`:
/// the text to expect and where the expectation is written; `at`: where the callback
/// expectation is (a body that is not JSON fails it).
pub fn payload(
    callbacks: &[Arc<Delivery>],
    (checks, headers): (&[PayloadCheck], &[PayloadCheck]),
    flag: Option<(&str, &str)>,
    states: &CallbackStates,
    at: &str,
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
        let matched = |check: &str, line: &PayloadCheck, actual: Option<&Value>| {
            (!holds(&line.matcher, actual)).then(|| {
                Failure::new(
                    check,
                    show_expected(&line.matcher),
                    show_actual_for(&line.matcher, actual),
                )
                .path(&line.path)
                .at(&line.at)
            })
        };
        for check in headers {
            let actual = super::header(&callback.headers, &check.path);
            failures.extend(matched(&label("callback.headers"), check, actual.as_ref()));
        }
        let Some(body) = &callback.json else {
            // Masked before it is cut, so that no secret is cut where masking misses it.
            let got = format!("{:?}", truncate(&crate::mask::mask(&callback.body), 200));
            failures.push(Failure::new(&label("callback.body"), "a JSON body", got).at(at));
            continue;
        };
        let state_field = states.field(body);
        for check in checks {
            let actual = at_path(body, &check.path);
            let is_state = actual
                .zip(state_field)
                .is_some_and(|(a, s)| std::ptr::eq(a, s));
            let state = is_state
                .then(|| in_states(&check.matcher, actual, states))
                .flatten();
            match state {
                // The check names states, at the field that holds the state: states compare.
                Some(state) if !holds(&check.matcher, Some(&state)) => {
                    let state = state.as_str().unwrap_or_default();
                    let got = format!("{}, which is {state}", show_actual(actual));
                    failures.push(
                        Failure::new(
                            &label("callback.payload"),
                            show_expected(&check.matcher),
                            got,
                        )
                        .path(&check.path)
                        .at(&check.at),
                    );
                }
                Some(_) => {}
                None => failures.extend(matched(&label("callback.payload"), check, actual)),
            }
        }
        if let Some((flag, at)) = flag {
            let flag_at = flag_path(body);
            let actual = at_path(body, flag_at);
            if actual.and_then(Value::as_str) != Some(flag) {
                let wanted = crate::scenario::matcher::describe(&Value::String(flag.into()));
                failures.push(
                    Failure::new(&label("flag"), wanted, show_actual(actual))
                        .path(flag_at)
                        .hint("conversions made by the Operation Tools must carry the testing-tools flag; `flag: false` turns this check off")
                        .at(at),
                );
            }
        }
    }
    failures
}

/// Each callback that says a state other than `wanted` (the conversion's, as pitcrew knows it)
/// fails the case: a platform that answers `approved` and calls back `declined` does not pass.
/// A callback that says no state is left to the checks written on it.
pub fn states(
    callbacks: &[Arc<Delivery>],
    states: &CallbackStates,
    wanted: &[&str],
    at: &str,
) -> Vec<Failure> {
    let several = callbacks.len() > 1;
    let mut failures = Vec::new();
    for (i, callback) in callbacks.iter().enumerate() {
        let Some(payload) = &callback.json else {
            continue;
        };
        let Ok(Some(state)) = states.state_of(payload) else {
            continue;
        };
        if wanted.contains(&state) {
            continue;
        }
        let word = states.field(payload).map(|w| show_actual(Some(w)));
        let got = match word {
            Some(word) if !word.contains(state) => format!("{state} ({word})"),
            _ => state.to_string(),
        };
        let check = if several {
            format!("callback.state (callback {})", i + 1)
        } else {
            "callback.state".to_string()
        };
        failures.push(
            Failure::new(&check, wanted.join(" or "), got)
                .note("the callback says another state than the conversion's")
                .at(at),
        );
    }
    failures
}

/// The state (as a JSON string) that `actual`, a callback's state word, stands for, when
/// `matcher` compares states (`Rejected`, `one_of: [Success, Pending]`, `ne: Rejected`) rather
/// than the platform's own words; `None` when it does not, or the word stands for no state
/// (which errors the case elsewhere).
fn in_states(matcher: &Matcher, actual: Option<&Value>, states: &CallbackStates) -> Option<Value> {
    let is_state = |v: &Value| {
        v.as_str()
            .is_some_and(|s| crate::scenario::model::CONVERSION_STATES.contains(&s))
    };
    let names_states = match matcher {
        Matcher::Eq(v) | Matcher::Ne(v) => is_state(v),
        Matcher::OneOf(options) => options.iter().all(is_state),
        _ => false,
    };
    if !names_states {
        return None;
    }
    let word = match actual? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let state = states.states.state_of(&word)?;
    Some(Value::String(state.to_string()))
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
/// `resolution`: how coarse the times compared are (a log written to the second), widening
/// the window by as much on each side.
pub fn after_within(expected: Duration, actual: Duration, resolution: Duration) -> bool {
    let low = expected
        .mul_f64(0.8)
        .saturating_sub(Duration::from_millis(15) + resolution);
    let high = expected.mul_f64(1.5) + Duration::from_millis(50) + resolution;
    (low..=high).contains(&actual)
}

/// Platform minutes as a report shows them: `2m`, `3.4m`.
fn platform_minutes(real: Duration, minute: Duration) -> String {
    let minutes = real.as_secs_f64() / minute.as_secs_f64().max(1e-9);
    let text = format!("{minutes:.1}");
    format!("{}m", text.trim_end_matches(".0"))
}

/// `attempts`: every delivery of the part, in order, with the endpoint's answer and the
/// platform time since the previous one (`minute`: how long a platform minute lasts here;
/// `resolution`: how coarse the target's times are, `ZERO` for pitcrew's own clock).
pub fn attempts(
    deliveries: &[Arc<Delivery>],
    expected: &[crate::plan::AttemptCheck],
    minute: Duration,
    resolution: Duration,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut sorted: Vec<&Arc<Delivery>> = deliveries.iter().collect();
    sorted.sort_by_key(|d| (d.attempt, d.at, d.seq));
    if sorted.len() != expected.len() {
        let outcomes: Vec<String> = sorted.iter().map(|d| d.outcome()).collect();
        let got = format!("{} ({})", sorted.len(), outcomes.join(", "));
        let mut f = Failure::new(
            "callback.attempts",
            format!("{} deliveries", expected.len()),
            got,
        )
        .saying(format!(
            "expected {} deliveries, got {}{}",
            expected.len(),
            sorted.len(),
            if outcomes.is_empty() {
                String::new()
            } else {
                format!(": {}", outcomes.join(", "))
            }
        ));
        if let Some(first) = expected.first() {
            f = f.at(&first.at);
        }
        failures.push(f);
    }
    for (i, (d, want)) in sorted.iter().zip(expected).enumerate() {
        let label = format!("callback.attempts[{}]", i + 1);
        failures.extend(endpoint_answer(&label, d, &want.status, &want.body));
        if let (Some(after), Some(previous)) = (want.after, i.checked_sub(1).map(|p| sorted[p])) {
            let expected_real = minute.mul_f64(after.as_secs_f64() / 60.0);
            // The platform retries that long after the previous attempt failed: from its
            // answer (when the observer knows how long the endpoint took), not its start, so
            // that a slow endpoint does not look like a longer schedule.
            let answered = previous.answer.duration_ms.unwrap_or(0);
            let since = d.at - previous.at - chrono::Duration::milliseconds(answered as i64);
            let actual = since.to_std().unwrap_or_default();
            if !after_within(expected_real, actual, resolution) {
                let coarse = if resolution.is_zero() {
                    String::new()
                } else {
                    format!(
                        ", compared to within {} as the target's log writes its times",
                        crate::duration::format_duration(resolution)
                    )
                };
                let wanted = format!(
                    "{} ({} at this target's {} minute{coarse})",
                    platform_minutes(expected_real, minute),
                    crate::duration::format_duration(expected_real),
                    crate::duration::format_duration(minute)
                );
                let got = format!(
                    "{} ({})",
                    platform_minutes(actual, minute),
                    crate::duration::format_duration(actual)
                );
                failures.push(Failure::new(&format!("{label}.after"), wanted, got).at(&want.at));
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
            let wanted = show_expected(&status.matcher);
            let check = format!("{label}.status");
            failures.push(Failure::new(&check, wanted, d.outcome()).at(&status.at));
        }
    }
    if let Some(body) = body {
        let actual = d.answer.body.clone().map(Value::String);
        if !holds(&body.matcher, actual.as_ref()) {
            let (wanted, got) = (
                show_expected(&body.matcher),
                show_actual_for(&body.matcher, actual.as_ref()),
            );
            let check = format!("{label}.body");
            failures.push(Failure::new(&check, wanted, got).at(&body.at));
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
                took => {
                    let wanted = format!(
                        "an answer within {}",
                        crate::duration::format_duration(*within)
                    );
                    let got = took.map_or("no time recorded".into(), |t| {
                        format!("answered after {}", crate::duration::format_duration(t))
                    });
                    let check = format!("{label}.within");
                    failures.push(Failure::new(&check, wanted, got).at(at));
                }
            }
        }
    }
    failures
}

/// The schema v1 check of each accepted delivery (`at`: where the expectation is written).
pub fn schema(accepted: &[Arc<Delivery>], at: &str) -> Vec<Failure> {
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
                .map(|body| super::schema::check(body, &label, at))
        })
        .flatten()
        .collect()
}
