//! The schema v1 check: a GoKart callback carries `id`, `sentAt` and every conversion field,
//! `null` when empty (reference/gokart.md). Its legacy variant spells every key in PascalCase.

use std::borrow::Cow;

use serde_json::Value;

use super::Failure;

/// Every field of `conversion` in schema v1, in the reference's order.
pub const CONVERSION_FIELDS: &[&str] = &[
    "status",
    "rejectionReason",
    "userCompletedAt",
    "isRewardSent",
    "viewId",
    "clickId",
    "conversionId",
    "offerId",
    "offerName",
    "offerAdvertiserId",
    "offerAdvertiserName",
    "offerEventId",
    "offerCategoryId",
    "offerCategoryName",
    "offerCountryId",
    "offerCountryCode2",
    "offerCountryCode3",
    "eventId",
    "eventName",
    "rewardPoints",
    "revenue",
    "pubMemberId",
    "pubClickId",
    "pubSessionId",
    "pubGender",
    "pubAge",
    "pubGeoCountry",
    "pubGeoState",
    "pubPostalCode",
    "pubSub1",
    "pubSub2",
    "pubSub3",
    "pubSub4",
    "pubSub5",
    "pubSub6",
    "pubSub7",
    "pubSub8",
    "pubSub9",
    "pubSub10",
    "pubSub11",
    "pubSub12",
    "pubSub13",
    "pubSub14",
    "pubSub15",
    "pubDevice",
    "trackSysEventId",
    "trackSysConversionId",
    "trackSysConversionAmount",
    "trackSysConversionIpAddress",
    "trackSysConversionEmail",
    "trackSysConversionUserId",
    "trackSysConversionSub1",
    "trackSysConversionSub2",
    "trackSysConversionSub3",
    "trackSysConversionSub4",
    "trackSysConversionSub5",
    "sequenceNumber",
    "partnerId",
    "partnerName",
    "createdAt",
    "clickTime",
];

/// The top-level fields besides `conversion`.
pub const TOP_FIELDS: &[&str] = &["id", "sentAt"];

pub use crate::delivery::pascal_case as pascal;

/// True when a body uses the legacy PascalCase keys.
pub fn is_legacy(body: &Value) -> bool {
    body.get("Conversion").is_some() && body.get("conversion").is_none()
}

/// The failures of one callback body: each missing field named (at most five, then a count);
/// `at` is where the expectation is written.
pub fn check(body: &Value, label: &str, at: &str) -> Vec<Failure> {
    let legacy = is_legacy(body);
    // Every callback is checked: a field's name is only spelt out when it is needed.
    let key = |k: &'static str| -> Cow<'static, str> {
        if legacy {
            Cow::Owned(pascal(k))
        } else {
            Cow::Borrowed(k)
        }
    };
    let mut missing: Vec<String> = TOP_FIELDS
        .iter()
        .map(|f| key(f))
        .filter(|f| body.get(f.as_ref()).is_none())
        .map(Cow::into_owned)
        .collect();
    let conversion_key = key("conversion");
    match body.get(conversion_key.as_ref()) {
        Some(Value::Object(conversion)) => missing.extend(
            CONVERSION_FIELDS
                .iter()
                .map(|f| key(f))
                .filter(|f| !conversion.contains_key(f.as_ref()))
                .map(|f| format!("{conversion_key}.{f}")),
        ),
        _ => missing.push(conversion_key.into_owned()),
    }
    let shown = missing.len().min(5);
    let mut failures: Vec<Failure> = missing[..shown]
        .iter()
        .map(|field| {
            Failure::new(label, "present (null when empty)", "missing (no such field)")
                .path(field)
                .saying("missing: a schema v1 callback carries every field, null when empty (`schema: false` turns this check off)")
                .at(at)
        })
        .collect();
    if missing.len() > shown {
        let more = missing.len() - shown;
        failures.push(
            Failure::new(
                label,
                "every schema v1 field",
                format!("{more} more missing"),
            )
            .saying(format!("{more} more fields are missing"))
            .at(at),
        );
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn full(legacy: bool) -> Value {
        let k = |s: &str| if legacy { pascal(s) } else { s.to_string() };
        let conversion: Map<String, Value> = CONVERSION_FIELDS
            .iter()
            .map(|f| (k(f), Value::Null))
            .collect();
        let mut body = Map::new();
        body.insert(k("id"), json!("cb"));
        body.insert(k("sentAt"), json!("t"));
        body.insert(k("conversion"), Value::Object(conversion));
        Value::Object(body)
    }

    #[test]
    fn a_complete_callback_passes_in_either_spelling() {
        assert!(check(&full(false), "schema", "t.yaml:3:5").is_empty());
        assert!(check(&full(true), "schema", "t.yaml:3:5").is_empty());
    }

    #[test]
    fn each_missing_field_is_named() {
        let mut body = full(false);
        body["conversion"]
            .as_object_mut()
            .unwrap()
            .remove("revenue");
        body.as_object_mut().unwrap().remove("sentAt");
        let failures = check(&body, "schema", "t.yaml:3:5");
        let paths: Vec<&str> = failures.iter().filter_map(|f| f.path_text()).collect();
        assert!(failures.iter().all(|f| f.at_text() == Some("t.yaml:3:5")));
        assert_eq!(paths, ["sentAt", "conversion.revenue"]);
        let many = check(&json!({"id": "x"}), "schema", "t.yaml:3:5");
        assert_eq!(many.len(), 2, "sentAt and conversion: {many:#?}");
    }
}
