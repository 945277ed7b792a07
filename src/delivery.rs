//! One delivery of a callback, as a run sees it, whatever observed it: pitcrew's receiver, a
//! remote `pitcrew receive`, or the platform's own callback log. The runner and the checks use
//! this type only; each observer builds it from what it has.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One attempt to deliver a callback, and the endpoint's answer to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Order of arrival at its observer (the receiver's sequence, or the log's order).
    pub seq: u64,
    /// When it arrived at the receiver, or when the platform sent it (callback log).
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Request headers as sent (empty when only the platform's log saw the delivery).
    pub headers: Vec<(String, String)>,
    /// The body exactly as sent.
    pub body: String,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// What the delivery says it is: the platform's callback record id and the ids it is for.
    pub ids: CallbackIds,
    /// The platform's attempt number, when it reports one.
    pub attempt: Option<u32>,
    /// What the endpoint answered.
    pub answer: EndpointAnswer,
    /// Why pitcrew's receiver refused it for its credentials (`wrong X-Api-Token`), when it
    /// did: it is never taken as the platform's delivery, but it fails the case it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// A partner postback (a GET whose query is its payload), not a conversion callback: it is
    /// judged by `expect.postbacks`, never as a callback.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub postback: bool,
}

/// The ids a callback carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackIds {
    /// The platform's id of the callback record (`id` in GoKart's schema v1): the same on every
    /// attempt of one callback, new for each resend or status change.
    pub callback: Option<String>,
    pub conversion: Option<String>,
    pub click: Option<String>,
    /// A postback's publisher click id (`{pub_click_id}`, the first segment after
    /// `/postbacks/` in its path at pitcrew's receiver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pub_click: Option<String>,
}

/// The endpoint's answer to one delivery.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EndpointAnswer {
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    pub body: Option<String>,
    /// The transport error, when it did not.
    pub error: Option<String>,
    /// How long the endpoint took to answer, when the observer knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl Delivery {
    /// True when the endpoint accepted the delivery (answered 2xx).
    pub fn accepted(&self) -> bool {
        self.answer.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The endpoint's answer in a few words: `HTTP 503`, `no answer (connection refused)`.
    pub fn outcome(&self) -> String {
        match (&self.answer.status, &self.answer.error) {
            (Some(s), _) => format!("HTTP {s}"),
            (None, Some(e)) => format!("no answer ({e})"),
            (None, None) => "no answer".into(),
        }
    }
}

/// How pitcrew's receiver answers a case's deliveries, in order; the last answer repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub answers: Vec<ScriptedAnswer>,
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedAnswer {
    pub status: u16,
    pub body: String,
    pub delay: std::time::Duration,
}

impl Script {
    /// The answer to the `n`-th delivery (from 0): the last one repeats.
    pub fn answer(&self, n: usize) -> Option<&ScriptedAnswer> {
        self.answers.get(n).or(self.answers.last())
    }
}

/// What a delivery is filed under: the conversion it is for, or its click.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Conversion(String),
    Click(String),
    /// The partner postbacks that name this publisher click id (at pitcrew's receiver).
    Postback(String),
}

impl Key {
    /// The id itself.
    pub fn id(&self) -> &str {
        match self {
            Key::Conversion(id) | Key::Click(id) | Key::Postback(id) => id,
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Conversion(id) => write!(f, "conversion {id}"),
            Key::Click(id) => write!(f, "click {id}"),
            Key::Postback(id) => write!(f, "the postbacks of pub_click_id {id}"),
        }
    }
}

/// A callback that reached pitcrew but belongs to no case: refused (no or a wrong secret),
/// unreadable, or not a delivery the platform made for any case. Never matched; counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stray {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub ids: CallbackIds,
    /// Why it matched no case.
    pub reason: String,
}

/// The most of each field of a stray that is kept: anyone may send a stray, so what one keeps
/// is bounded whatever was sent (a 1 MiB conversion id is kept as its first 256 characters).
pub const MAX_STRAY_FIELD: usize = 256;

impl Stray {
    /// `delivery` as a stray, kept for `reason`: its method, path and ids each cut to
    /// [`MAX_STRAY_FIELD`] characters (a cut one ends with `…`), so that 10,000 strays take a
    /// few MiB whatever their senders put in them.
    pub fn of(delivery: &Delivery, reason: &str) -> Stray {
        let cut = |text: &str| crate::check::callback::truncate(text, MAX_STRAY_FIELD);
        let cut_id = |id: &Option<String>| id.as_deref().map(cut);
        Stray {
            seq: delivery.seq,
            at: delivery.at,
            method: cut(&delivery.method),
            path: cut(&delivery.path),
            ids: CallbackIds {
                callback: cut_id(&delivery.ids.callback),
                conversion: cut_id(&delivery.ids.conversion),
                click: cut_id(&delivery.ids.click),
                pub_click: cut_id(&delivery.ids.pub_click),
            },
            reason: cut(reason),
        }
    }
}

/// Where the ids sit in a callback body: JSON Pointers (RFC 6901), first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    pub callback_id: Vec<String>,
    pub conversion_id: Vec<String>,
    pub click_id: Vec<String>,
}

impl Default for Correlation {
    /// GoKart's schema v1, and its legacy PascalCase variant.
    fn default() -> Self {
        let both = |camel: &str, pascal: &str| vec![camel.to_string(), pascal.to_string()];
        Correlation {
            callback_id: both("/id", "/Id"),
            conversion_id: both("/conversion/conversionId", "/Conversion/ConversionId"),
            click_id: both("/conversion/clickId", "/Conversion/ClickId"),
        }
    }
}

impl Correlation {
    /// The ids in a callback body.
    pub fn ids(&self, body: &Value) -> CallbackIds {
        let first = |pointers: &[String]| pointers.iter().find_map(|p| id_text(body.pointer(p)?));
        CallbackIds {
            callback: first(&self.callback_id),
            conversion: first(&self.conversion_id),
            click: first(&self.click_id),
            pub_click: None,
        }
    }
}

/// How a callback carries its payload (`callbacks.format`): a JSON body (GoKart's), a
/// form-encoded body, or the query string of a GET (the industry's S2S postback). Whatever the
/// format, the payload is read as one object, so pointers and payload matchers work the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Json,
    Form,
    Query,
}

impl Format {
    /// The formats by name, as `callbacks.format` and `--format` take them.
    pub const NAMES: [&'static str; 3] = ["json", "form", "query"];

    pub fn parse(name: &str) -> Option<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "form" => Some(Format::Form),
            "query" => Some(Format::Query),
            _ => None,
        }
    }

    /// The payload of a callback sent with `query` and `body`, as the object pointers read:
    /// the JSON body, or the form's or the query's pairs (each value text; a name given twice
    /// holds the list of its values). `None` when there is no such payload.
    pub fn decode(self, query: Option<&str>, body: &[u8]) -> Option<Value> {
        match self {
            Format::Json => serde_json::from_slice(body).ok().filter(shallow),
            Format::Form => std::str::from_utf8(body).ok().map(pairs_object),
            Format::Query => query.map(pairs_object),
        }
    }

    /// A payload as a platform's log keeps it: text (a JSON document, a form, or the URL or
    /// query string the callback was sent to) decoded as [`Format::decode`] does.
    pub fn decode_logged(self, text: &str) -> Option<Value> {
        match self {
            Format::Json => serde_json::from_str(text).ok().filter(shallow),
            Format::Form => Some(pairs_object(text)),
            Format::Query => Some(pairs_object(
                text.split_once('?').map_or(text, |(_, query)| query),
            )),
        }
    }
}

/// The deepest payload read as JSON: a callback nested deeper is a body that is not JSON
/// (it fails its case's payload checks). Real callbacks are a few levels deep; every listing,
/// report and store that holds a payload nests it a few levels more, and must still read back
/// under serde_json's limit of 128.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

/// Whether `value` nests at most [`MAX_PAYLOAD_DEPTH`] levels (the parser has already bounded
/// the depth, so this walk is bounded too).
fn shallow(value: &Value) -> bool {
    fn depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    depth(value) <= MAX_PAYLOAD_DEPTH
}

/// A form's or a query's `name=value` pairs as an object of text values.
pub fn pairs_object(text: &str) -> Value {
    let mut object = serde_json::Map::new();
    for (name, value) in form_urlencoded::parse(text.trim().as_bytes()) {
        let value = Value::String(value.into_owned());
        match object.get_mut(name.as_ref()) {
            None => {
                object.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    Value::Object(object)
}

/// A key in the legacy callback variant's spelling: `pubSub1` → `PubSub1`.
pub fn pascal_case(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// An id as text: a non-empty string, or a number.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_and_queries_read_as_objects() {
        let q = Format::Query.decode(Some("tx=T%201&amount=2.5&s=a&s=b"), b"");
        assert_eq!(
            q,
            Some(json!({"tx": "T 1", "amount": "2.5", "s": ["a", "b"]}))
        );
        assert_eq!(
            Format::Form.decode(None, b"a=1+2"),
            Some(json!({"a": "1 2"}))
        );
        assert_eq!(Format::Query.decode(None, b"a=1"), None);
        assert_eq!(
            Format::Query.decode_logged("https://pub.example/pb?tx=9&st=approved"),
            Some(json!({"tx": "9", "st": "approved"}))
        );
        assert_eq!(Format::Json.decode(None, b"tx=1"), None);
    }

    #[test]
    fn gokart_and_legacy_bodies_correlate() {
        let c = Correlation::default();
        let v1 = json!({"id": "cb", "conversion": {"conversionId": "cv", "clickId": "ck"}});
        let legacy = json!({"Id": "cb", "Conversion": {"ConversionId": "cv", "ClickId": 7}});
        assert_eq!(
            c.ids(&v1),
            CallbackIds {
                callback: Some("cb".into()),
                conversion: Some("cv".into()),
                click: Some("ck".into()),
                pub_click: None,
            }
        );
        assert_eq!(c.ids(&legacy).click.as_deref(), Some("7"));
        assert_eq!(
            c.ids(&json!({"conversion": {"conversionId": ""}})),
            CallbackIds::default()
        );
    }
}
