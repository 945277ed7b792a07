//! GoKart's callback body, schema v1: every field present, `null` when empty.

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::config::{OfferConfig, PartnerConfig};
use super::store::{Click, Conversion, Sent};
use crate::TESTING_TOOLS_FLAG;

/// Builds the body of callback `sent` of a conversion: the same every time it is built.
pub fn build(
    sent: &Sent,
    conversion: &Conversion,
    click: &Click,
    offer: Option<&OfferConfig>,
    partner: Option<&PartnerConfig>,
) -> Value {
    let event = offer.and_then(|o| o.events.iter().find(|e| *e.id == *conversion.event_id));
    let faults = &sent.faults;
    let param = |key: &str| -> Value {
        conversion
            .param(key)
            .filter(|v| !v.is_empty())
            .map(|v| Value::String(v.to_string()))
            .unwrap_or(Value::Null)
    };
    let mut c = Map::new();
    let mut put = |key: &str, value: Value| {
        c.insert(key.to_string(), value);
    };
    let text = |s: Option<&String>| s.map(|s| Value::String(s.clone())).unwrap_or(Value::Null);
    put("status", json!(&*sent.status));
    put(
        "rejectionReason",
        sent.rejection_reason
            .as_deref()
            .map_or(Value::Null, |r| json!(r)),
    );
    put("userCompletedAt", json!(rfc3339(conversion.created_at)));
    put("isRewardSent", json!(&*sent.status == "Success"));
    put("viewId", Value::Null);
    put("clickId", json!(click.id.to_string()));
    put("conversionId", json!(conversion.id.to_string()));
    put("offerId", json!(&*click.offer_id));
    put("offerName", text(offer.and_then(|o| o.name.as_ref())));
    put(
        "offerAdvertiserId",
        text(offer.and_then(|o| o.advertiser_id.as_ref())),
    );
    put(
        "offerAdvertiserName",
        text(offer.and_then(|o| o.advertiser_name.as_ref())),
    );
    put("offerEventId", json!(&*conversion.event_id));
    put("offerCategoryId", Value::Null);
    put("offerCategoryName", Value::Null);
    put("offerCountryId", Value::Null);
    put(
        "offerCountryCode2",
        text(offer.and_then(|o| o.country_code.as_ref())),
    );
    put("offerCountryCode3", Value::Null);
    put("eventId", json!(&*conversion.event_id));
    put("eventName", text(event.and_then(|e| e.name.as_ref())));
    put(
        "rewardPoints",
        event
            .and_then(|e| e.reward_points)
            .map(|p| json!(p))
            .unwrap_or(Value::Null),
    );
    put(
        "revenue",
        event
            .and_then(|e| e.revenue)
            .map(|r| json!(r))
            .unwrap_or(Value::Null),
    );
    put("pubMemberId", json!(&*click.member_id));
    put("pubClickId", param("pub_click_id"));
    put("pubSessionId", param("pub_session_id"));
    put("pubGender", param("pub_gender"));
    put("pubAge", param("pub_age"));
    put("pubGeoCountry", param("pub_geo_country"));
    put("pubGeoState", param("pub_geo_state"));
    put("pubPostalCode", param("pub_postal_code"));
    for i in 1..=15 {
        put(&format!("pubSub{i}"), param(&format!("pub_sub_{i}")));
    }
    put("pubDevice", param("pub_device"));
    put("trackSysEventId", param("cnv_event_id"));
    put("trackSysConversionId", param("cnv_conversion_id"));
    put("trackSysConversionAmount", param("cnv_amount"));
    put(
        "trackSysConversionIpAddress",
        param("cnv_conversion_ip_address"),
    );
    put("trackSysConversionEmail", param("cnv_email"));
    put("trackSysConversionUserId", param("cnv_user_id"));
    for i in 1..=5 {
        put(
            &format!("trackSysConversionSub{i}"),
            param(&format!("cnv_sub_{i}")),
        );
    }
    put("sequenceNumber", Value::Null);
    put("partnerId", json!(&*click.partner_id));
    put("partnerName", text(partner.and_then(|p| p.name.as_ref())));
    put("createdAt", json!(rfc3339(conversion.created_at)));
    put("clickTime", json!(rfc3339(click.created_at)));
    // The tools flag every conversion they make; a fault can leave it out.
    let flag = if faults.omit_flag {
        Value::Null
    } else {
        json!(TESTING_TOOLS_FLAG)
    };
    put("pubSub5", flag);
    if let Some(amount) = &faults.altered_amount {
        put("trackSysConversionAmount", json!(amount));
    }
    let mut body = Map::new();
    body.insert("id".into(), json!(sent.id.to_string()));
    body.insert("sentAt".into(), json!(rfc3339(sent.sent_at)));
    body.insert("conversion".into(), Value::Object(c));
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
