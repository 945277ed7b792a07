//! What a callback must carry to be taken, and the check of it: a header with a secret, a token
//! in the query, or a signature (Standard Webhooks, or an HMAC-SHA256 over the body or the
//! sorted query). A receiver takes a callback when any one of its credentials holds.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a signed callback's timestamp may be from the receiver's clock, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// One way a callback proves it comes from the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A header with the partner's secret (`X-Api-Token: …`).
    Header { name: String, secret: String },
    /// A query parameter with a token (`?token=…`).
    Query { name: String, secret: String },
    /// A signature of the callback made with a shared secret.
    Signature(Signature),
    /// Every one of these (a platform that sends a token and signs).
    All(Vec<Credential>),
}

/// A signature scheme and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// The Standard Webhooks headers: `webhook-id`, `webhook-timestamp`, and `webhook-signature:
    /// v1,<base64 HMAC-SHA256 of "id.timestamp.body">`; the secret is `whsec_<base64 key>` (or
    /// the key's text itself).
    StandardWebhooks { secret: String, tolerance: Duration },
    /// An HMAC-SHA256 with `secret` over the body or the sorted query, in header `header`
    /// (hex or base64, after an optional `prefix` such as `sha256=`); with `timestamp`, the
    /// header holding the Unix time the callback was signed at, signed as `"timestamp.payload"`.
    Hmac {
        secret: String,
        header: String,
        over: Signed,
        encoding: Encoding,
        prefix: String,
        timestamp: Option<String>,
        tolerance: Duration,
    },
}

/// What an HMAC signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// The body, byte for byte.
    Body,
    /// The query's `name=value` pairs as sent (still percent-encoded), sorted by name then
    /// value and joined with `&`.
    SortedQuery,
}

/// How a signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// A signature as a configuration names it (`signature:` in a target or a sandbox partner),
/// before it is checked.
#[derive(Debug, Default)]
pub struct SignatureParts<'a> {
    /// `standard-webhooks` or `hmac-sha256`.
    pub scheme: &'a str,
    pub secret: String,
    /// hmac-sha256: the header it comes in.
    pub header: Option<&'a str>,
    /// hmac-sha256: `body` (default) or `query`.
    pub over: Option<&'a str>,
    /// hmac-sha256: `hex` (default) or `base64`.
    pub encoding: Option<&'a str>,
    /// hmac-sha256: text before the signature, e.g. `sha256=`.
    pub prefix: Option<&'a str>,
    /// hmac-sha256: the header with the Unix time it was signed at.
    pub timestamp_header: Option<&'a str>,
    pub tolerance: Option<Duration>,
}

/// A mistake in a signature's configuration: the field, what is wrong, and what would do.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureMistake {
    pub field: &'static str,
    pub message: String,
    pub help: String,
}

impl Signature {
    /// The signature `parts` describe, or the first mistake in them.
    pub fn from_parts(parts: SignatureParts) -> Result<Signature, SignatureMistake> {
        let mistake = |field, message: String, help: &str| SignatureMistake {
            field,
            message,
            help: help.to_string(),
        };
        let tolerance = parts.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        match parts.scheme.trim().to_ascii_lowercase().as_str() {
            "standard-webhooks" => {
                let hmac_only = [
                    ("header", parts.header.is_some()),
                    ("over", parts.over.is_some()),
                    ("encoding", parts.encoding.is_some()),
                    ("prefix", parts.prefix.is_some()),
                    ("timestamp_header", parts.timestamp_header.is_some()),
                ];
                if let Some((field, _)) = hmac_only.iter().find(|(_, given)| *given) {
                    return Err(mistake(
                        field,
                        format!(
                            "`{field}` is for `scheme: hmac-sha256`; Standard Webhooks fixes its headers"
                        ),
                        "remove it, or use `scheme: hmac-sha256`",
                    ));
                }
                if let Some(b64) = parts.secret.strip_prefix("whsec_")
                    && BASE64_ANY_PADDING.decode(b64.trim()).is_err()
                {
                    return Err(mistake(
                        "secret",
                        "a `whsec_` secret is `whsec_` and the base64 of the key, and this one's rest is not base64".into(),
                        "copy the secret as the platform shows it",
                    ));
                }
                Ok(Signature::StandardWebhooks {
                    secret: parts.secret,
                    tolerance,
                })
            }
            "hmac-sha256" => {
                if parts.timestamp_header.is_some_and(|t| t.trim().is_empty()) {
                    return Err(mistake(
                        "timestamp_header",
                        "`timestamp_header` is empty".into(),
                        "the header with the Unix time of signing, e.g. `X-Signature-Timestamp`, or leave it out",
                    ));
                }
                let Some(header) = parts.header.filter(|h| !h.trim().is_empty()) else {
                    return Err(mistake(
                        "header",
                        "`scheme: hmac-sha256` needs `header:`, the header the signature comes in"
                            .into(),
                        "e.g. `header: X-Signature`",
                    ));
                };
                let over = one_of(
                    ("over", parts.over),
                    &[("body", Signed::Body), ("query", Signed::SortedQuery)],
                    "what a signature covers",
                    "`body` (the body, byte for byte) or `query` (the sorted query)",
                )?;
                let encoding = one_of(
                    ("encoding", parts.encoding),
                    &[("hex", Encoding::Hex), ("base64", Encoding::Base64)],
                    "a signature's encoding",
                    "`hex` or `base64`",
                )?;
                Ok(Signature::Hmac {
                    secret: parts.secret,
                    header: header.trim().to_string(),
                    over,
                    encoding,
                    prefix: parts.prefix.unwrap_or_default().to_string(),
                    timestamp: parts.timestamp_header.map(|t| t.trim().to_string()),
                    tolerance,
                })
            }
            other => Err(mistake(
                "scheme",
                format!("`scheme: {other}` is not a signature scheme pitcrew checks"),
                "`standard-webhooks` or `hmac-sha256`",
            )),
        }
    }
}

/// The choice `given` names (case and spaces aside; the first when none is given), or the
/// mistake of naming another (`what` it is not, and `help`).
fn one_of<T: Copy>(
    (field, given): (&'static str, Option<&str>),
    choices: &[(&str, T)],
    what: &str,
    help: &str,
) -> Result<T, SignatureMistake> {
    let Some(given) = given else {
        return Ok(choices[0].1);
    };
    let name = given.trim().to_ascii_lowercase();
    match choices.iter().find(|(n, _)| *n == name) {
        Some((_, choice)) => Ok(*choice),
        None => Err(SignatureMistake {
            field,
            message: format!("`{field}: {given}` is not {what}"),
            help: help.to_string(),
        }),
    }
}

impl Signature {
    /// Whether it covers the payload of a callback sent in `format` (a GET's query, a POST's
    /// body); if not, why: a signature over what does not carry the payload lets anyone who saw
    /// one signed callback send another payload under it.
    pub fn covers(&self, format: crate::delivery::Format) -> Result<(), String> {
        use crate::delivery::Format;
        let over = match self {
            Signature::StandardWebhooks { .. } => Signed::Body,
            Signature::Hmac { over, .. } => *over,
        };
        match (format, over) {
            (Format::Query, Signed::Body) => Err(
                "the callbacks carry their payload in the query (`format: query`), and this signature covers the body: the payload would go unsigned; sign the query (`scheme: hmac-sha256`, `over: query`)".into(),
            ),
            (Format::Json | Format::Form, Signed::SortedQuery) => Err(
                "the callbacks carry their payload in the body, and this signature covers the query: the payload would go unsigned; sign the body (`over: body`)".into(),
            ),
            _ => Ok(()),
        }
    }
}

impl Credential {
    /// The secret it holds, to mask (the first, for [`Credential::All`]).
    pub fn secret(&self) -> &str {
        match self {
            Credential::Header { secret, .. } | Credential::Query { secret, .. } => secret,
            Credential::Signature(Signature::StandardWebhooks { secret, .. })
            | Credential::Signature(Signature::Hmac { secret, .. }) => secret,
            Credential::All(all) => all.first().map_or("", Credential::secret),
        }
    }

    /// The credentials it is made of: itself, or each of [`Credential::All`]'s.
    pub fn leaves(&self) -> Vec<&Credential> {
        match self {
            Credential::All(all) => all.iter().flat_map(Credential::leaves).collect(),
            one => vec![one],
        }
    }

    /// Every secret it holds, to mask.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Credential::All(all) => all.iter().flat_map(Credential::secrets).collect(),
            one => vec![one.secret()],
        }
    }

    /// `credentials` as one: itself when there is one, else all of them.
    pub fn all(mut credentials: Vec<Credential>) -> Option<Credential> {
        match credentials.len() {
            0 => None,
            1 => credentials.pop(),
            _ => Some(Credential::All(credentials)),
        }
    }

    /// A few words for messages: `header X-Api-Token`, `query parameter token`,
    /// `standard-webhooks signature`.
    pub fn describe(&self) -> String {
        match self {
            Credential::Header { name, .. } => format!("header {name}"),
            Credential::Query { name, .. } => format!("query parameter {name}"),
            Credential::Signature(Signature::StandardWebhooks { .. }) => {
                "standard-webhooks signature".into()
            }
            Credential::Signature(Signature::Hmac { header, .. }) => {
                format!("hmac-sha256 signature in {header}")
            }
            Credential::All(all) => all
                .iter()
                .map(Credential::describe)
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }
}

/// What a callback presents: its headers, its query string as sent, and its body when it was
/// read (`None`: it could not be, and a signature cannot be checked).
pub struct Presented<'a> {
    pub headers: &'a [(String, String)],
    pub query: Option<&'a str>,
    pub body: Option<&'a [u8]>,
    /// The receiver's clock, in Unix seconds.
    pub now: i64,
}

impl Presented<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query's pairs, decoded.
    fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        form_urlencoded::parse(self.query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
    }
}

/// Why a callback's credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It carried none of the headers a partner's secret comes in.
    #[error("no {} header", .0.join(" or "))]
    NoHeader(Vec<String>),
    /// It carried the header with another value.
    #[error("wrong {0}")]
    WrongSecret(String),
    /// It carried no `name` query parameter.
    #[error("no `{0}` query parameter")]
    NoQuery(String),
    /// It carried the query parameter with another value.
    #[error("wrong `{0}` query parameter")]
    WrongQuery(String),
    /// Its signature is missing, malformed, stale or does not match.
    #[error("{0}")]
    Signature(String),
    /// Its body could not be read, so its signature could not be checked (the receiver refuses
    /// it for its body).
    #[error("its body could not be read, so its signature could not be checked")]
    Unverifiable,
    /// It carried none of several kinds of credential (each named).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    NoneOf(Vec<Refusal>),
    /// No partner posts to this receiver: nothing is taken.
    #[error("no partner sends its callbacks to this receiver")]
    NoPartner,
}

impl Refusal {
    /// A refusal for something present but wrong, rather than missing: the one worth naming
    /// when several credentials were tried.
    fn is_wrong(&self) -> bool {
        match self {
            Refusal::WrongSecret(_) | Refusal::WrongQuery(_) => true,
            Refusal::Signature(why) => !why.starts_with("no "),
            _ => false,
        }
    }
}

/// Whether `presented` holds one of `credentials`; if none, why the callback is refused (a
/// credential present but wrong is named before one missing). A signature cannot be checked
/// without the body: when the body could not be read (`body: None`) and nothing else let it in,
/// a signature that might have is [`Refusal::Unverifiable`] (refused for its body, not its
/// credentials).
pub fn check(credentials: &[Credential], presented: &Presented) -> Result<(), Refusal> {
    if credentials.is_empty() {
        return Err(Refusal::NoPartner);
    }
    let mut refusals = Vec::new();
    let mut unverifiable = false;
    for credential in credentials {
        match holds(credential, presented) {
            Some(Ok(())) => return Ok(()),
            Some(Err(refusal)) => refusals.push(refusal),
            None => unverifiable = true,
        }
    }
    if unverifiable {
        return Err(Refusal::Unverifiable);
    }
    if let Some(wrong) = refusals.iter().find(|r| r.is_wrong()) {
        return Err(wrong.clone());
    }
    let headers: Vec<String> = refusals
        .iter()
        .filter_map(|r| match r {
            Refusal::NoHeader(names) => Some(names.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    if headers.len() == refusals.len() {
        return Err(Refusal::NoHeader(headers));
    }
    if refusals.len() == 1 {
        return Err(refusals.swap_remove(0));
    }
    Err(Refusal::NoneOf(refusals))
}

/// Whether one of the values `sent` under a credential's name is `secret`; if none is,
/// whether any was sent (`Err(true)`: sent, but wrong).
fn one_is(sent: impl Iterator<Item = String>, secret: &str) -> Result<(), bool> {
    let mut any = false;
    for value in sent {
        if constant_time_eq(value.as_bytes(), secret.as_bytes()) {
            return Ok(());
        }
        any = true;
    }
    Err(any)
}

/// Whether one credential holds; `None` when it cannot be told (a signature without the body).
fn holds(credential: &Credential, p: &Presented) -> Option<Result<(), Refusal>> {
    Some(match credential {
        Credential::Header { name, secret } => {
            let sent = (p.headers.iter()).filter(|(n, _)| n.eq_ignore_ascii_case(name));
            one_is(sent.map(|(_, v)| v.clone()), secret).map_err(|wrong| match wrong {
                true => Refusal::WrongSecret(name.clone()),
                false => Refusal::NoHeader(vec![name.clone()]),
            })
        }
        Credential::Query { name, secret } => {
            let sent = p.query_pairs().filter(|(n, _)| n == name);
            one_is(sent.map(|(_, v)| v), secret).map_err(|wrong| match wrong {
                true => Refusal::WrongQuery(name.clone()),
                false => Refusal::NoQuery(name.clone()),
            })
        }
        Credential::Signature(signature) => {
            let body = p.body?;
            signature.verify(p, body).map_err(Refusal::Signature)
        }
        // Every one must hold: the first that does not says why.
        Credential::All(all) => {
            let mut unverifiable = false;
            for one in all {
                match holds(one, p) {
                    Some(Ok(())) => {}
                    Some(Err(refusal)) => return Some(Err(refusal)),
                    None => unverifiable = true,
                }
            }
            if unverifiable {
                return None;
            }
            Ok(())
        }
    })
}

impl Signature {
    /// The signature text (no prefix) of a callback with `body` and `query` signed at
    /// `timestamp` (its header's text, when the scheme uses one) with message `id` (Standard
    /// Webhooks).
    fn expected(&self, id: &str, timestamp: Option<&str>, query: &str, body: &[u8]) -> String {
        let mut signed = Vec::with_capacity(body.len() + 64);
        let mut part = |bytes: &[u8]| {
            signed.extend_from_slice(bytes);
            signed.push(b'.');
        };
        match self {
            Signature::StandardWebhooks { secret, .. } => {
                part(id.as_bytes());
                part(timestamp.unwrap_or_default().as_bytes());
                signed.extend_from_slice(body);
                BASE64.encode(hmac_sha256(&standard_webhooks_key(secret), &signed))
            }
            Signature::Hmac {
                secret,
                over,
                encoding,
                ..
            } => {
                if let Some(ts) = timestamp {
                    part(ts.trim().as_bytes());
                }
                match over {
                    Signed::Body => signed.extend_from_slice(body),
                    Signed::SortedQuery => signed.extend_from_slice(sorted_query(query).as_bytes()),
                }
                let mac = hmac_sha256(secret.as_bytes(), &signed);
                match encoding {
                    Encoding::Hex => hex(&mac),
                    Encoding::Base64 => BASE64.encode(mac),
                }
            }
        }
    }

    fn verify(&self, p: &Presented, body: &[u8]) -> Result<(), String> {
        let query = p.query.unwrap_or_default();
        match self {
            Signature::StandardWebhooks { tolerance, .. } => {
                let need = |name: &str| {
                    p.header(name)
                        .ok_or_else(|| format!("no {name} header (standard-webhooks signature)"))
                };
                let id = need("webhook-id")?;
                let timestamp = need("webhook-timestamp")?;
                let signatures = need("webhook-signature")?;
                fresh(timestamp, "webhook-timestamp", p.now, *tolerance)?;
                let expected = self.expected(id, Some(timestamp), query, body);
                let matches = signatures
                    .split_whitespace()
                    .filter_map(|s| s.strip_prefix("v1,"))
                    .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()));
                if matches {
                    Ok(())
                } else {
                    Err("bad webhook-signature: no v1 signature matches the secret".into())
                }
            }
            Signature::Hmac {
                header,
                encoding,
                prefix,
                timestamp,
                tolerance,
                ..
            } => {
                let given = p
                    .header(header)
                    .ok_or_else(|| format!("no {header} header (hmac-sha256 signature)"))?;
                let given = given.trim();
                let given = given.strip_prefix(prefix.as_str()).unwrap_or(given);
                let ts = match timestamp {
                    Some(name) => {
                        let ts = p.header(name).ok_or_else(|| {
                            format!("no {name} header (the signature's timestamp)")
                        })?;
                        fresh(ts, name, p.now, *tolerance)?;
                        Some(ts)
                    }
                    None => None,
                };
                let expected = self.expected("", ts, query, body);
                let given = match encoding {
                    Encoding::Hex => given.to_ascii_lowercase(),
                    Encoding::Base64 => given.to_string(),
                };
                if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                    Ok(())
                } else {
                    Err(format!(
                        "bad {header}: the hmac-sha256 signature does not match the secret"
                    ))
                }
            }
        }
    }
}

/// Base64 with or without its padding, as Standard Webhooks secrets are written both ways.
const BASE64_ANY_PADDING: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// A Standard Webhooks secret's key: the bytes of `whsec_<base64>`, else the text itself
/// ([`Signature::from_parts`] refuses a `whsec_` secret that is not base64).
fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| BASE64_ANY_PADDING.decode(b64.trim()).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// Checks that Unix time `text` (header `name`) is within `tolerance` of `now`.
fn fresh(text: &str, name: &str, now: i64, tolerance: Duration) -> Result<(), String> {
    let ts: i64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{name} `{}` is not a Unix time", truncate(text)))?;
    let off = now.abs_diff(ts);
    if off > tolerance.as_secs() {
        return Err(format!(
            "{name} is {off} s from the receiver's clock, over the {} s tolerance (a replay, or a clock off)",
            tolerance.as_secs()
        ));
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    crate::check::callback::truncate(text, 40)
}

/// A query's pairs as sent, sorted by name then value and joined with `&`.
pub fn sorted_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// HMAC-SHA256 of `message` with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // An HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a platform sends to sign a callback this way (for the sandbox and tests): the headers
/// to add, for `body` and `query` sent at Unix time `now` with callback id `id`.
pub fn sign(
    signature: &Signature,
    id: &str,
    now: i64,
    query: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let now_text = now.to_string();
    match signature {
        Signature::StandardWebhooks { .. } => {
            let expected = signature.expected(id, Some(&now_text), query, body);
            vec![
                ("webhook-id".into(), id.to_string()),
                ("webhook-timestamp".into(), now_text),
                ("webhook-signature".into(), format!("v1,{expected}")),
            ]
        }
        Signature::Hmac {
            header,
            prefix,
            timestamp,
            ..
        } => {
            let ts = timestamp.as_ref().map(|_| now_text.as_str());
            let expected = signature.expected(id, ts, query, body);
            let mut headers: Vec<(String, String)> = (timestamp.iter())
                .map(|name| (name.clone(), now_text.clone()))
                .collect();
            headers.push((header.clone(), format!("{prefix}{expected}")));
            headers
        }
    }
}

/// Compares secrets without stopping at the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presented<'a>(
        headers: &'a [(String, String)],
        query: Option<&'a str>,
        body: &'a [u8],
        now: i64,
    ) -> Presented<'a> {
        Presented {
            headers,
            query,
            body: Some(body),
            now,
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The example of the Standard Webhooks specification (its secret, id, timestamp, body and
    /// signature), checked as published.
    #[test]
    fn the_standard_webhooks_example_verifies_and_a_changed_byte_does_not() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let headers = h(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]);
        let sw = Credential::Signature(Signature::StandardWebhooks {
            secret: secret.into(),
            tolerance: DEFAULT_TOLERANCE,
        });
        let at = |body: &[u8], now| {
            check(
                std::slice::from_ref(&sw),
                &presented(&headers, None, body, now),
            )
        };
        assert_eq!(at(body, 1614265330), Ok(()));
        assert!(matches!(
            at(br#"{"test": 2432232315}"#, 1614265330),
            Err(Refusal::Signature(_))
        ));
        let stale = at(body, 1614265330 + 301).unwrap_err().to_string();
        assert!(stale.contains("tolerance"), "{stale}");
        // What `sign` makes is what `check` takes.
        let made = sign(
            &Signature::StandardWebhooks {
                secret: secret.into(),
                tolerance: DEFAULT_TOLERANCE,
            },
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            "",
            body,
        );
        assert_eq!(made, headers);
    }

    /// An HMAC over the sorted query (hex) and over the body (base64, with a prefix and a
    /// timestamp): what `sign` makes holds, a wrong key or a changed parameter does not.
    #[test]
    fn hmac_signatures_over_the_query_and_the_body_hold_only_for_the_secret() {
        let over_query = Signature::Hmac {
            secret: "query-key-123".into(),
            header: "X-Sig".into(),
            over: Signed::SortedQuery,
            encoding: Encoding::Hex,
            prefix: String::new(),
            timestamp: None,
            tolerance: DEFAULT_TOLERANCE,
        };
        let query = "user=u%201&amount=2.5&tx=T-1";
        let headers = sign(&over_query, "", 0, query, b"");
        assert_eq!(sorted_query(query), "amount=2.5&tx=T-1&user=u%201");
        let creds = [Credential::Signature(over_query.clone())];
        assert_eq!(
            check(&creds, &presented(&headers, Some(query), b"", 0)),
            Ok(())
        );
        let changed = "user=u%201&amount=9.5&tx=T-1";
        assert!(check(&creds, &presented(&headers, Some(changed), b"", 0)).is_err());
        let Signature::Hmac {
            header,
            over,
            encoding,
            prefix,
            timestamp,
            tolerance,
            ..
        } = over_query
        else {
            unreachable!()
        };
        let another = Signature::Hmac {
            secret: "another-key".into(),
            header,
            over,
            encoding,
            prefix,
            timestamp,
            tolerance,
        };
        let other = sign(&another, "", 0, query, b"");
        assert!(check(&creds, &presented(&other, Some(query), b"", 0)).is_err());

        let over_body = Signature::Hmac {
            secret: "body-key-456".into(),
            header: "X-Hub-Signature-256".into(),
            over: Signed::Body,
            encoding: Encoding::Base64,
            prefix: "sha256=".into(),
            timestamp: Some("X-Timestamp".into()),
            tolerance: Duration::from_secs(60),
        };
        let headers = sign(&over_body, "", 1_000_000, "", b"{\"a\":1}");
        let creds = [Credential::Signature(over_body)];
        assert_eq!(
            check(&creds, &presented(&headers, None, b"{\"a\":1}", 1_000_030)),
            Ok(())
        );
        assert!(check(&creds, &presented(&headers, None, b"{\"a\":2}", 1_000_030)).is_err());
        let late = check(&creds, &presented(&headers, None, b"{\"a\":1}", 1_000_061));
        assert!(late.unwrap_err().to_string().contains("tolerance"));
        let unstamped: Vec<_> = headers
            .iter()
            .filter(|(name, _)| name != "X-Timestamp")
            .cloned()
            .collect();
        assert_eq!(
            check(
                &creds,
                &presented(&unstamped, None, b"{\"a\":1}", 1_000_000)
            ),
            Err(Refusal::Signature(
                "no X-Timestamp header (the signature's timestamp)".into()
            ))
        );
    }

    /// Headers and query tokens: the right value holds, a wrong one is named before a missing
    /// one, and no credential at all takes nothing.
    #[test]
    fn secrets_in_a_header_or_the_query() {
        let creds = [
            Credential::Header {
                name: "X-Api-Token".into(),
                secret: "s3cret-value".into(),
            },
            Credential::Query {
                name: "token".into(),
                secret: "q-token-77".into(),
            },
        ];
        let none = h(&[]);
        let at =
            |headers: &[(String, String)], query| check(&creds, &presented(headers, query, b"", 0));
        assert_eq!(at(&h(&[("x-api-token", "s3cret-value")]), None), Ok(()));
        assert_eq!(at(&none, Some("a=1&token=q-token-77")), Ok(()));
        assert_eq!(
            at(&none, Some("token=q-token-78")),
            Err(Refusal::WrongQuery("token".into()))
        );
        assert_eq!(
            at(&h(&[("X-Api-Token", "s3cret-valuE")]), None),
            Err(Refusal::WrongSecret("X-Api-Token".into()))
        );
        let neither = at(&none, None).unwrap_err().to_string();
        assert_eq!(neither, "no X-Api-Token header, no `token` query parameter");
        // A platform that sends both proves itself with both: one alone is refused.
        let both = [Credential::all(creds.to_vec()).unwrap()];
        let with_both = check(
            &both,
            &presented(
                &h(&[("X-Api-Token", "s3cret-value")]),
                Some("token=q-token-77"),
                b"",
                0,
            ),
        );
        assert_eq!(with_both, Ok(()));
        let header_only = check(
            &both,
            &presented(&h(&[("X-Api-Token", "s3cret-value")]), None, b"", 0),
        );
        assert_eq!(header_only, Err(Refusal::NoQuery("token".into())));
        assert_eq!(
            check(&[], &presented(&none, None, b"", 0)),
            Err(Refusal::NoPartner)
        );
    }
}
