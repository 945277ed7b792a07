//! Checks on the partner postbacks of a case's conversion (`expect.postbacks`): how many came,
//! and the query parameters each one holds.

use std::sync::Arc;

use super::Failure;
use super::matcher::{at_path, holds, show_actual_for, show_expected};
use crate::delivery::Delivery;
use crate::plan::PostbackCheck;

/// What `expected` finds wrong with the case's postbacks (in arrival order): each one refused
/// for its credentials, or that the endpoint did not accept (a platform's log shows its
/// answer), first; then the count and query of those accepted.
pub fn judged(expected: &PostbackCheck, postbacks: &[Arc<Delivery>]) -> Vec<Failure> {
    let (refused, rest): (Vec<_>, Vec<_>) =
        postbacks.iter().cloned().partition(|d| d.refused.is_some());
    let (taken, unaccepted): (Vec<_>, Vec<_>) = rest.into_iter().partition(|d| d.accepted());
    let mut failures = refusals(expected, &refused);
    failures.extend(unaccepted.iter().map(|d| {
        Failure::new("postbacks.delivery", "accepted (2xx)", d.outcome())
            .saying(format!(
                "a partner postback was not accepted: {}",
                d.outcome()
            ))
            .at(&expected.at)
    }));
    failures.extend(check(expected, &taken));
    failures
}

/// Each postback among `postbacks` that pitcrew's receiver refused for its credentials.
pub fn refusals(expected: &PostbackCheck, postbacks: &[Arc<Delivery>]) -> Vec<Failure> {
    (postbacks.iter())
        .filter_map(|d| d.refused.as_deref().map(|why| (d, why)))
        .map(|(d, why)| {
            let got = format!("{why} ({})", d.answer.status.unwrap_or(401));
            Failure::new("postbacks.refused", "the postback's credentials", &got)
                .saying(format!("a partner postback was refused: {got}"))
                .at(&expected.at)
        })
        .collect()
}

/// What `expected` finds wrong with `postbacks` taken by the receiver.
fn check(expected: &PostbackCheck, postbacks: &[Arc<Delivery>]) -> Vec<Failure> {
    let mut failures: Vec<Failure> = count(expected, postbacks.len()).into_iter().collect();
    let several = postbacks.len() > 1;
    for (i, postback) in postbacks.iter().enumerate() {
        let label = match several {
            true => format!("postbacks.query (postback {})", i + 1),
            false => "postbacks.query".to_string(),
        };
        for line in &expected.query {
            let actual = postback.json.as_ref().and_then(|q| at_path(q, &line.path));
            if !holds(&line.matcher, actual) {
                failures.push(
                    Failure::new(
                        &label,
                        show_expected(&line.matcher),
                        show_actual_for(&line.matcher, actual),
                    )
                    .path(&line.path)
                    .at(&line.at),
                );
            }
        }
    }
    failures
}

/// Exactly `expected.count` postbacks, or a failure that says which way it is off.
fn count(expected: &PostbackCheck, arrived: usize) -> Option<Failure> {
    let want = expected.count as usize;
    if arrived == want {
        return None;
    }
    let within = crate::duration::format_duration(expected.within);
    let note = match arrived {
        0 => format!("no partner postback arrived within {within}"),
        _ if want == 0 && !expected.written => {
            "a partner postback arrived that the case does not expect (`expect.postbacks` says which)"
                .to_string()
        }
        _ if want == 0 => "a partner postback arrived where none may".to_string(),
        n if n > want => "more partner postbacks arrived than expected (a duplicate or an unexpected one)".to_string(),
        _ => format!("no more arrived within {within}"),
    };
    let wanted = match want {
        0 => "none".to_string(),
        n => n.to_string(),
    };
    Some(
        Failure::new("postbacks.count", wanted, arrived.to_string())
            .note(note)
            .at(&expected.at),
    )
}

/// Postbacks of the case that arrived after its verdict (a duplicate or an unexpected one):
/// `seen` were judged then, `late` came since.
pub fn late(expected: &PostbackCheck, seen: usize, late: &[Arc<Delivery>]) -> Failure {
    let got = seen + late.len();
    let wanted = match expected.count {
        0 => "none".to_string(),
        n => n.to_string(),
    };
    let when = late
        .first()
        .map(|d| d.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    Failure::new("postbacks.count", wanted, got.to_string())
        .note(format!(
            "{} more partner postback{} arrived after the case was judged (a duplicate or an unexpected one; the first at {when})",
            late.len(),
            if late.len() == 1 { "" } else { "s" }
        ))
        .at(&expected.at)
}
