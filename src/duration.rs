//! Human durations as scenario files write them: `500ms`, `5s`, `2m`, `1h`, `1.5s`.

use std::time::Duration;

/// The longest duration pitcrew accepts anywhere: a case, a wait or a delay past a day is a
/// typo, and bounding it keeps every deadline computable.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// What a duration is, for the messages that say one is not.
const HINT: &str = "a duration is a number and a unit, e.g. `500ms`, `5s`, `2m` or `1h`";

/// A text that is not a duration pitcrew takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration: {HINT}")]
    NotANumber(String),
    #[error("`{0}` has no unit: {HINT}")]
    NoUnit(String),
    #[error("`{unit}` in `{text}` is not a unit: {HINT}")]
    UnknownUnit { unit: String, text: String },
    #[error("`{0}` is longer than the limit of 24h")]
    TooLong(String),
}

/// Parses `<number><unit>` with unit one of `ms`, `s`, `m`, `h`, at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| DurationError::NotANumber(text.into()))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "" => return Err(DurationError::NoUnit(text.into())),
        other => {
            return Err(DurationError::UnknownUnit {
                unit: other.into(),
                text: text.into(),
            });
        }
    };
    let too_long = || DurationError::TooLong(text.into());
    let duration = Duration::try_from_secs_f64(seconds).map_err(|_| too_long())?;
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert!(
            parse_duration("5 sec")
                .unwrap_err()
                .to_string()
                .contains("not a unit")
        );
        assert!(
            parse_duration("5")
                .unwrap_err()
                .to_string()
                .contains("no unit")
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn rejects_what_no_clock_can_wait_for() {
        for text in [
            "5000000000000000h",
            "25h",
            "99999999999999999999999999999999999999999999s",
            "86400001ms",
        ] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.to_string().contains("limit of 24h"), "{text}: {e}");
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }
}
