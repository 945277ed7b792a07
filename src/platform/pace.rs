//! Polite requests to a real tenant: `rate: N/s` (or `--rate`) bounds how many requests pitcrew
//! makes to a target, and a 429 or 503 that says when to come back (`Retry-After`) is waited
//! out and sent again, within a budget, before it counts as the step's answer.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// At most this many waits for one request.
pub const MAX_WAITS: usize = 5;
/// At most this long waited for one request in all; a `Retry-After` past it is not waited.
pub const WAIT_BUDGET: Duration = Duration::from_secs(120);

/// `N/s` or `N/m`: requests per second or per minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// The time between two requests.
    pub interval: Duration,
    /// As written, for messages.
    per: (f64, char),
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(text: &str) -> Result<Rate, String> {
        let invalid = || {
            format!(
                "`{text}` is not a rate: write requests per second or minute, e.g. `20/s` or `600/m`"
            )
        };
        let (n, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
        let n: f64 = n.trim().parse().map_err(|_| invalid())?;
        let seconds = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            _ => return Err(invalid()),
        };
        // From one request an hour to a million a second.
        let interval = seconds / n;
        if !(n.is_finite() && n <= 1_000_000.0 && interval > 0.0 && interval <= 3600.0) {
            return Err(format!(
                "`{text}`: the rate must be at least one request an hour and at most 1000000/s"
            ));
        }
        Ok(Rate {
            interval: Duration::from_secs_f64(interval),
            per: (n, if seconds == 1.0 { 's' } else { 'm' }),
        })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}/{}", self.per.0, self.per.1)
    }
}

/// The requests to one target, spaced by its rate: each takes the next free slot.
#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pace {
    pub fn new(rate: Rate) -> Pace {
        Pace {
            interval: rate.interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + self.interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// One answer waited out before the request was sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub status: u16,
    pub after: Duration,
}

/// How long to wait before sending a request again that was answered `status` with `headers`
/// (names lowercased), having waited `waited` already: `None` when the answer stands (not a 429
/// or 503, no `Retry-After`, or past the budget).
pub fn wait_for(status: u16, headers: &[(String, String)], waited: &[Wait]) -> Option<Duration> {
    if !matches!(status, 429 | 503) || waited.len() >= MAX_WAITS {
        return None;
    }
    let after = headers
        .iter()
        .find(|(name, _)| name == "retry-after")
        .and_then(|(_, value)| retry_after(value))?;
    // Each wait is within the budget, so their sum cannot overflow; a huge `Retry-After` can.
    let spent: Duration = waited.iter().map(|w| w.after).sum();
    let total = spent.checked_add(after)?;
    (total <= WAIT_BUDGET).then_some(after)
}

/// A `Retry-After` value: seconds, or an HTTP date (the time until then, none when it is past).
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(left.to_std().unwrap_or(Duration::ZERO))
}

/// What a request's waits read as in its transcript.
pub fn describe(waits: &[Wait]) -> Vec<String> {
    waits
        .iter()
        .map(|w| {
            format!(
                "< HTTP {} with Retry-After: waited {} and sent it again",
                w.status,
                crate::duration::format_duration(w.after)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_refuse_nonsense() {
        assert_eq!(
            "20/s".parse::<Rate>().unwrap().interval,
            Duration::from_millis(50)
        );
        assert_eq!(
            "600/m".parse::<Rate>().unwrap().interval,
            Duration::from_millis(100)
        );
        assert_eq!(
            "0.5/s".parse::<Rate>().unwrap().interval,
            Duration::from_secs(2)
        );
        for bad in [
            "20",
            "0/s",
            "-1/s",
            "x/s",
            "20/h",
            "inf/s",
            "NaN/s",
            "1e-300/s",
            "2000000/s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    /// A 429 or 503 with Retry-After is waited out, five times at most and two minutes in all;
    /// any other answer, or one without Retry-After, stands.
    #[test]
    fn what_is_waited_out() {
        let h = |v: &str| vec![("retry-after".to_string(), v.to_string())];
        assert_eq!(wait_for(429, &h("2"), &[]), Some(Duration::from_secs(2)));
        assert_eq!(wait_for(503, &h("1"), &[]), Some(Duration::from_secs(1)));
        assert_eq!(wait_for(500, &h("1"), &[]), None);
        assert_eq!(wait_for(429, &[], &[]), None);
        assert_eq!(wait_for(429, &h("soon"), &[]), None);
        assert_eq!(wait_for(429, &h("121"), &[]), None, "past the budget");
        assert_eq!(
            wait_for(429, &h("18446744073709551615"), &[]),
            None,
            "no overflow"
        );
        let waited = vec![
            Wait {
                status: 429,
                after: Duration::from_secs(100),
            };
            1
        ];
        assert_eq!(
            wait_for(429, &h("21"), &waited),
            None,
            "the budget is for all"
        );
        assert_eq!(
            wait_for(429, &h("20"), &waited),
            Some(Duration::from_secs(20))
        );
        let five = vec![
            Wait {
                status: 429,
                after: Duration::ZERO,
            };
            MAX_WAITS
        ];
        assert_eq!(wait_for(429, &h("0"), &five), None);
        let date = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let left = wait_for(429, &h(&date), &[]).unwrap();
        assert!(
            left <= Duration::from_secs(30) && left >= Duration::from_secs(28),
            "{left:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_take_the_next_free_slot() {
        let pace = Pace::new("10/s".parse().unwrap());
        let start = Instant::now();
        for _ in 0..21 {
            pace.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
