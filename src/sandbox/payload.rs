//! GoKart's callback body, schema v1: every field present, `null` when empty.
//!
//! One list of the conversion's fields feeds both forms of the body: the bytes sent (written
//! straight to JSON, since a run sends one per case) and the JSON value (for the callback log,
//! and for the faults that reshape the body: a missing field, the legacy PascalCase keys).

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use super::config::{OfferConfig, PartnerConfig};
use super::store::{Click, Conversion, Sent};
use crate::TESTING_TOOLS_FLAG;

/// One field's value.
enum Field<'a> {
    Null,
    Text(&'a str),
    Owned(String),
    Bool(bool),
    Number(serde_json::Number),
}

impl Serialize for Field<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Null => s.serialize_none(),
            Field::Text(t) => s.serialize_str(t),
            Field::Owned(t) => s.serialize_str(t),
            Field::Bool(b) => s.serialize_bool(*b),
            Field::Number(n) => n.serialize(s),
        }
    }
}

impl Field<'_> {
    fn to_value(&self) -> Value {
        match self {
            Field::Null => Value::Null,
            Field::Text(t) => Value::String(t.to_string()),
            Field::Owned(t) => Value::String(t.clone()),
            Field::Bool(b) => Value::Bool(*b),
            Field::Number(n) => Value::Number(n.clone()),
        }
    }
}

const PUB_SUBS: [(&str, &str); 15] = [
    ("pubSub1", "pub_sub_1"),
    ("pubSub2", "pub_sub_2"),
    ("pubSub3", "pub_sub_3"),
    ("pubSub4", "pub_sub_4"),
    ("pubSub5", "pub_sub_5"),
    ("pubSub6", "pub_sub_6"),
    ("pubSub7", "pub_sub_7"),
    ("pubSub8", "pub_sub_8"),
    ("pubSub9", "pub_sub_9"),
    ("pubSub10", "pub_sub_10"),
    ("pubSub11", "pub_sub_11"),
    ("pubSub12", "pub_sub_12"),
    ("pubSub13", "pub_sub_13"),
    ("pubSub14", "pub_sub_14"),
    ("pubSub15", "pub_sub_15"),
];

const CONVERSION_SUBS: [(&str, &str); 5] = [
    ("trackSysConversionSub1", "cnv_sub_1"),
    ("trackSysConversionSub2", "cnv_sub_2"),
    ("trackSysConversionSub3", "cnv_sub_3"),
    ("trackSysConversionSub4", "cnv_sub_4"),
    ("trackSysConversionSub5", "cnv_sub_5"),
];

/// What a callback says of its conversion: every field of schema v1, sorted by name (as a
/// JSON object's keys are), the sandbox's faults applied except those that reshape the body.
fn conversion_fields<'a>(
    sent: &'a Sent,
    conversion: &'a Conversion,
    click: &'a Click,
    offer: Option<&'a OfferConfig>,
    partner: Option<&'a PartnerConfig>,
) -> Vec<(&'static str, Field<'a>)> {
    let event = offer.and_then(|o| o.events.iter().find(|e| *e.id == *conversion.event_id));
    let param = |key: &str| match conversion.param(key) {
        Some(v) if !v.is_empty() => Field::Text(v),
        _ => Field::Null,
    };
    let text = |s: Option<&'a String>| s.map_or(Field::Null, |s| Field::Text(s));
    let number = |n: Option<f64>| {
        n.and_then(serde_json::Number::from_f64)
            .map_or(Field::Null, Field::Number)
    };
    let faults = &sent.faults;
    let mut f: Vec<(&'static str, Field<'a>)> = Vec::with_capacity(64);
    f.push(("status", Field::Text(&sent.status)));
    f.push((
        "rejectionReason",
        sent.rejection_reason
            .as_deref()
            .map_or(Field::Null, Field::Text),
    ));
    let created_at = rfc3339(conversion.created_at);
    f.push(("userCompletedAt", Field::Owned(created_at.clone())));
    f.push(("isRewardSent", Field::Bool(&*sent.status == "Success")));
    f.push(("viewId", Field::Null));
    f.push(("clickId", Field::Owned(click.id.to_string())));
    f.push(("conversionId", Field::Owned(conversion.id.to_string())));
    f.push(("offerId", Field::Text(&click.offer_id)));
    f.push(("offerName", text(offer.and_then(|o| o.name.as_ref()))));
    f.push((
        "offerAdvertiserId",
        text(offer.and_then(|o| o.advertiser_id.as_ref())),
    ));
    f.push((
        "offerAdvertiserName",
        text(offer.and_then(|o| o.advertiser_name.as_ref())),
    ));
    f.push(("offerEventId", Field::Text(&conversion.event_id)));
    f.push(("offerCategoryId", Field::Null));
    f.push(("offerCategoryName", Field::Null));
    f.push(("offerCountryId", Field::Null));
    f.push((
        "offerCountryCode2",
        text(offer.and_then(|o| o.country_code.as_ref())),
    ));
    f.push(("offerCountryCode3", Field::Null));
    f.push(("eventId", Field::Text(&conversion.event_id)));
    f.push(("eventName", text(event.and_then(|e| e.name.as_ref()))));
    f.push(("rewardPoints", number(event.and_then(|e| e.reward_points))));
    f.push(("revenue", number(event.and_then(|e| e.revenue))));
    f.push(("pubMemberId", Field::Text(&click.member_id)));
    f.push(("pubClickId", param("pub_click_id")));
    f.push(("pubSessionId", param("pub_session_id")));
    f.push(("pubGender", param("pub_gender")));
    f.push(("pubAge", param("pub_age")));
    f.push(("pubGeoCountry", param("pub_geo_country")));
    f.push(("pubGeoState", param("pub_geo_state")));
    f.push(("pubPostalCode", param("pub_postal_code")));
    for (key, name) in PUB_SUBS {
        // The tools flag every conversion they make (a fault can leave it out); one the
        // advertiser's postback made is the publisher's own.
        let value = match key {
            "pubSub5" if conversion.public => param(name),
            "pubSub5" if faults.omit_flag => Field::Null,
            "pubSub5" => Field::Text(TESTING_TOOLS_FLAG),
            _ => param(name),
        };
        f.push((key, value));
    }
    f.push(("pubDevice", param("pub_device")));
    f.push(("trackSysEventId", param("cnv_event_id")));
    f.push(("trackSysConversionId", param("cnv_conversion_id")));
    f.push((
        "trackSysConversionAmount",
        match &faults.altered_amount {
            Some(amount) => Field::Text(amount),
            None => param("cnv_amount"),
        },
    ));
    f.push((
        "trackSysConversionIpAddress",
        param("cnv_conversion_ip_address"),
    ));
    f.push(("trackSysConversionEmail", param("cnv_email")));
    f.push(("trackSysConversionUserId", param("cnv_user_id")));
    for (key, name) in CONVERSION_SUBS {
        f.push((key, param(name)));
    }
    f.push(("sequenceNumber", Field::Null));
    f.push(("partnerId", Field::Text(&click.partner_id)));
    f.push(("partnerName", text(partner.and_then(|p| p.name.as_ref()))));
    f.push(("createdAt", Field::Owned(created_at)));
    f.push(("clickTime", Field::Owned(rfc3339(click.created_at))));
    f.sort_unstable_by_key(|(key, _)| *key);
    f
}

/// The body of callback `sent` of a conversion, as the bytes sent: the same every time.
pub fn body(
    sent: &Sent,
    conversion: &Conversion,
    click: &Click,
    offer: Option<&OfferConfig>,
    partner: Option<&PartnerConfig>,
) -> Vec<u8> {
    let faults = &sent.faults;
    if faults.missing_field.is_some() || faults.legacy_payload {
        let value = build(sent, conversion, click, offer, partner);
        return serde_json::to_vec(&value).unwrap_or_default();
    }
    struct Fields<'a>(&'a [(&'static str, Field<'a>)]);
    impl Serialize for Fields<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (key, value) in self.0 {
                map.serialize_entry(key, value)?;
            }
            map.end()
        }
    }
    struct Body<'a> {
        conversion: Fields<'a>,
        id: String,
        sent_at: String,
    }
    impl Serialize for Body<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(3))?;
            map.serialize_entry("conversion", &self.conversion)?;
            map.serialize_entry("id", &self.id)?;
            map.serialize_entry("sentAt", &self.sent_at)?;
            map.end()
        }
    }
    let fields = conversion_fields(sent, conversion, click, offer, partner);
    let body = Body {
        conversion: Fields(&fields),
        id: sent.id.to_string(),
        sent_at: rfc3339(sent.sent_at),
    };
    let mut out = Vec::with_capacity(1536);
    match serde_json::to_writer(&mut out, &body) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// The body of callback `sent` of a conversion, as a JSON value: the same every time.
pub fn build(
    sent: &Sent,
    conversion: &Conversion,
    click: &Click,
    offer: Option<&OfferConfig>,
    partner: Option<&PartnerConfig>,
) -> Value {
    let c: Map<String, Value> = conversion_fields(sent, conversion, click, offer, partner)
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_value()))
        .collect();
    let mut body = Map::new();
    body.insert("id".into(), Value::String(sent.id.to_string()));
    body.insert("sentAt".into(), Value::String(rfc3339(sent.sent_at)));
    body.insert("conversion".into(), Value::Object(c));
    let faults = &sent.faults;
    if let Some(field) = &faults.missing_field {
        let removed = body.remove(field.as_str());
        if removed.is_none()
            && let Some(Value::Object(c)) = body.get_mut("conversion")
        {
            c.remove(field.as_str());
        }
    }
    if faults.legacy_payload {
        return legacy(Value::Object(body));
    }
    Value::Object(body)
}

/// The older variant of the body: every key in PascalCase (`Conversion.ConversionId`).
fn legacy(body: Value) -> Value {
    match body {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (crate::delivery::pascal_case(&k), legacy(v)))
                .collect(),
        ),
        other => other,
    }
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(time: chrono::DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sandbox::SandboxConfig;
    use crate::sandbox::faults::Faults;
    use crate::sandbox::store::Store;

    /// The bytes sent and the value the log shows are the same body, for bodies with and
    /// without optional fields, parameters that need escaping, and each fault that changes
    /// a value.
    #[test]
    fn the_body_sent_is_the_body_the_log_shows() {
        let config = SandboxConfig::default();
        let mut store = Store::seeded(&config);
        let offer = &config.offers[0];
        let partner = config.partners.first();
        let click = Click {
            id: crate::ids::new_uuid(),
            offer_id: store.text(&offer.id),
            member_id: Arc::from("m-\"quoted\"\n"),
            partner_id: store.text(&offer.partner),
            created_at: Utc::now(),
            link: store.params(Vec::new()),
        };
        let params = store.params(vec![
            ("cnv_amount".into(), "1.50".into()),
            ("pub_sub_1".into(), "ünï <code> & \\ \"".into()),
            ("pub_sub_5".into(), "overwritten".into()),
            ("cnv_sub_3".into(), String::new().into()),
        ]);
        for (event, faults) in [
            (0, Faults::default()),
            (
                1,
                Faults {
                    omit_flag: true,
                    ..Faults::default()
                },
            ),
            (
                2,
                Faults {
                    altered_amount: Some("9.99".into()),
                    ..Faults::default()
                },
            ),
        ] {
            let event = &offer.events[event % offer.events.len()];
            let conversion = Conversion {
                id: crate::ids::new_uuid(),
                click_id: click.id,
                event_id: store.text(&event.id),
                params: params.clone(),
                status: store.text("Success"),
                rejection_reason: None,
                created_at: Utc::now(),
                faults: Arc::new(faults.clone()),
                public: false,
            };
            let sent = Sent {
                id: crate::ids::new_uuid(),
                conversion_id: conversion.id,
                click_id: click.id,
                status: store.text("Rejected"),
                rejection_reason: Some("chargeback".into()),
                faults: Arc::new(faults),
                sent_at: Utc::now(),
            };
            let bytes = body(&sent, &conversion, &click, Some(offer), partner);
            let sent_value: Value = serde_json::from_slice(&bytes).unwrap();
            let value = build(&sent, &conversion, &click, Some(offer), partner);
            assert_eq!(sent_value, value);
            assert_eq!(
                bytes,
                serde_json::to_vec(&value).unwrap(),
                "the same bytes too"
            );
        }
    }
}
