//! The sandbox's tenant: offers, partners (publisher accounts), token and time scale.
//!
//! Read from `--sandbox-config FILE` (YAML; documented in docs/sandbox.md, with its JSON
//! Schema from `pitcrew schema --sandbox-config`) or the built-in defaults the examples use.
//! Mistakes are reported like a scenario's: file, line, column, snippet and a "did you mean".

use std::collections::HashSet;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::faults::{Faults, FaultsRequest};
use crate::receiver::credentials::{Credential, Signature, SignatureParts};
use crate::scenario::{ScenarioDiagnostic, SourceFile};

/// The event-level postback of the built-in `trading-app`'s events.
pub const BUILT_IN_POSTBACK: &str = "/postbacks/{pub_click_id}?event={cnv_event_id}&amount={cnv_amount}&offer={gk_offer_id}&member={pub_member_id}&sub1={pub_sub_1}";

/// The built-in offer.
pub const DEMO_OFFER: &str = "demo-offer";
/// The built-in partner, whose callbacks go to pitcrew's receiver.
pub const DEMO_PARTNER: &str = "demo-publisher";
/// The seeded click of `demo-offer`, member `demo-member`.
pub const SEEDED_CLICK: &str = "00000000-0000-4000-8000-000000000001";
/// The seeded conversion (event `install`) of the seeded click.
pub const SEEDED_CONVERSION: &str = "00000000-0000-4000-8000-000000000002";
/// [`SEEDED_CLICK`] as the id the store knows it by.
pub const SEEDED_CLICK_ID: uuid::Uuid =
    uuid::Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);
/// [`SEEDED_CONVERSION`] as the id the store knows it by.
pub const SEEDED_CONVERSION_ID: uuid::Uuid =
    uuid::Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0002);
/// The member of the seeded click.
pub const SEEDED_MEMBER: &str = "demo-member";
/// The statuses a conversion can have.
pub const STATUSES: &[&str] = &["Success", "Pending", "Rejected"];

/// A sandbox tenant: what `--sandbox-config` describes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "pitcrew sandbox config")]
pub struct SandboxConfig {
    /// When set, every API call needs `Authorization: ApiToken <token>`.
    #[serde(default)]
    pub token: Option<String>,
    /// How long one platform minute lasts here, e.g. `50ms` (the retry schedule is 2, 4, 8…
    /// minutes; default 50ms, so that a retried callback takes a fraction of a second).
    #[serde(
        default = "default_minute",
        deserialize_with = "duration_text::deserialize"
    )]
    #[schemars(with = "String", extend("default" = "50ms", "pattern" = "^\\s*[0-9]+(\\.[0-9]+)?(ms|s|m|h)\\s*$"))]
    pub minute: Duration,
    /// Keep the built-in tenant beside these offers and partners (default true): `demo-offer`
    /// and `trading-app`, partner `demo-publisher`, and the seeded click and conversion, so
    /// that the shipped scenarios and examples still run. An offer or partner given here with
    /// a built-in id replaces the built-in one. `false`: only what this file gives.
    #[serde(default = "default_builtin")]
    pub builtin: bool,
    /// The offers, added to the built-in ones (see `builtin`).
    #[serde(default)]
    pub offers: Vec<OfferConfig>,
    /// The partners (publisher accounts), added to the built-in `demo-publisher` (calling back
    /// pitcrew's receiver with a fresh secret; see `builtin`).
    #[serde(default)]
    pub partners: Vec<PartnerConfig>,
}

/// An offer and the events a conversion may name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The partner whose members' conversions this offer calls back.
    #[serde(default = "default_partner_id")]
    pub partner: String,
    #[serde(default)]
    pub advertiser_id: Option<String>,
    #[serde(default)]
    pub advertiser_name: Option<String>,
    #[serde(default)]
    pub country_code: Option<String>,
    /// The advertiser's landing page, where the offer's tracking link sends the user, with
    /// `{gk_click_id}` where the click id goes, e.g.
    /// `https://advertiser.example/landing?gk_click_id={gk_click_id}`.
    #[serde(default)]
    pub advertiser_url: Option<String>,
    /// The events a conversion of this offer may name.
    pub events: Vec<EventConfig>,
}

/// One event of an offer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub reward_points: Option<f64>,
    #[serde(default)]
    pub revenue: Option<f64>,
    /// The status a new conversion of this event gets: `Success` (default) or `Pending`
    /// (approved or rejected later with a status change).
    #[serde(default = "default_status")]
    pub status: String,
    /// The event-level partner postback: a GET sent when a conversion of this event is
    /// `Success`, beside the partner's global `postback_url` (both fire when both are set). The
    /// same macros; a path (`/postbacks/{pub_click_id}?…`) goes to the host of the partner's
    /// callbacks.
    #[serde(default)]
    pub postback_url: Option<String>,
}

/// A publisher account: where its callbacks go and how.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Where callbacks are POSTed; absent means pitcrew's own receiver.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// The header sent with every callback, e.g. `{name: X-Api-Token, secret: s3cret}`.
    #[serde(default)]
    pub auth_header: Option<AuthHeader>,
    /// A token put in the query of every callback, e.g. `{name: token, secret: s3cret-tok}`.
    #[serde(default)]
    pub auth_query: Option<AuthHeader>,
    /// How every callback is signed, with the keys of a target's `signature:`, e.g.
    /// `{scheme: standard-webhooks, secret: whsec_…}` or `{scheme: hmac-sha256, header:
    /// X-Signature, secret: …}`.
    #[serde(default)]
    pub signature: Option<SignatureConfig>,
    /// Which conversion statuses are called back (default: all three).
    #[serde(default = "default_statuses")]
    pub statuses: Vec<String>,
    /// Attempts in all, the first included, for 500 and 503 answers; then the callback is
    /// marked Failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Send this partner's callbacks with the legacy PascalCase keys.
    #[serde(default)]
    pub legacy_payload: bool,
    /// Faults for every conversion of this partner's clicks (a case's own faults win).
    #[serde(default)]
    pub faults: FaultsRequest,
    /// The partner's global postback: a GET sent when one of its conversions is `Success`,
    /// with the macros `{pub_click_id}`, `{pub_member_id}`, `{gk_offer_id}`, `{gk_offer_name}`,
    /// `{cnv_event_id}` (empty on a single-event offer), `{cnv_amount}` and
    /// `{pub_sub_1}`..`{pub_sub_15}` filled (URL-encoded). A path
    /// (`/postbacks/{pub_click_id}?…`) goes to the host of the partner's callbacks.
    #[serde(default)]
    pub postback_url: Option<String>,
}

/// A header name and its secret value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthHeader {
    pub name: String,
    pub secret: String,
}

/// A callback signature, as a target's `signature:` describes one.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureConfig {
    /// `standard-webhooks` or `hmac-sha256`.
    pub scheme: String,
    pub secret: String,
    /// hmac-sha256: the header the signature goes in.
    #[serde(default)]
    pub header: Option<String>,
    /// hmac-sha256: `body` (default) or `query`.
    #[serde(default)]
    pub over: Option<String>,
    /// hmac-sha256: `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// hmac-sha256: text before the signature, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// hmac-sha256: a header with the Unix time of signing (then `"TIME.PAYLOAD"` is signed).
    #[serde(default)]
    pub timestamp_header: Option<String>,
}

impl SignatureConfig {
    /// The signature it describes, or what is wrong with it.
    pub fn signature(&self) -> Result<Signature, String> {
        Signature::from_parts(SignatureParts {
            scheme: &self.scheme,
            secret: self.secret.clone(),
            header: self.header.as_deref(),
            over: self.over.as_deref(),
            encoding: self.encoding.as_deref(),
            prefix: self.prefix.as_deref(),
            timestamp_header: self.timestamp_header.as_deref(),
            tolerance: None,
        })
        .map_err(|m| format!("signature.{}: {} ({})", m.field, m.message, m.help))
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            token: None,
            minute: default_minute(),
            builtin: true,
            offers: default_offers(),
            partners: default_partners(),
        }
    }
}

impl SandboxConfig {
    /// The headers (name and secret) of the partners whose callbacks go to pitcrew's receiver:
    /// the receiver takes a callback only when it carries one of them.
    pub fn receiver_auth(&self) -> Vec<Credential> {
        let mut all = Vec::new();
        for p in self.partners.iter().filter(|p| p.callback_url.is_none()) {
            // A partner proves itself with every credential it sends; any partner may post.
            let mut partner = Vec::new();
            let credentials = &mut partner;
            if let Some(h) = &p.auth_header {
                credentials.push(Credential::Header {
                    name: h.name.clone(),
                    secret: h.secret.clone(),
                });
            }
            if let Some(q) = &p.auth_query {
                credentials.push(Credential::Query {
                    name: q.name.clone(),
                    secret: q.secret.clone(),
                });
            }
            if let Some(Ok(signature)) = p.signature.as_ref().map(SignatureConfig::signature) {
                credentials.push(Credential::Signature(signature));
            }
            all.extend(Credential::all(partner));
        }
        all
    }

    /// Every secret of the tenant (its API token, the partners' header secrets), to mask.
    pub fn secrets(&self) -> Vec<String> {
        let partners = self.partners.iter().flat_map(|p| {
            let header = p.auth_header.as_ref().map(|h| h.secret.clone());
            let query = p.auth_query.as_ref().map(|q| q.secret.clone());
            let signature = p.signature.as_ref().map(|s| s.secret.clone());
            header.into_iter().chain(query).chain(signature)
        });
        self.token.clone().into_iter().chain(partners).collect()
    }

    /// Sends the callbacks that would go to pitcrew's receiver to a publisher's endpoint
    /// instead, with the publisher's header (or none).
    pub fn call_back(&mut self, url: &str, header: Option<(String, String)>) {
        for partner in self
            .partners
            .iter_mut()
            .filter(|p| p.callback_url.is_none())
        {
            partner.callback_url = Some(url.to_string());
            partner.auth_header = header
                .clone()
                .map(|(name, secret)| AuthHeader { name, secret });
        }
    }

    /// The built-in offers and partners, before the file's, unless the file gives one with the
    /// same id or says `builtin: false`.
    fn add_builtin(&mut self) {
        if !self.builtin {
            return;
        }
        fn before<T>(own: &mut Vec<T>, builtin: Vec<T>, id: impl Fn(&T) -> &str) {
            let kept: Vec<T> = (builtin.into_iter())
                .filter(|b| !own.iter().any(|o| id(o) == id(b)))
                .collect();
            own.splice(0..0, kept);
        }
        before(&mut self.offers, default_offers(), |o| &o.id);
        before(&mut self.partners, default_partners(), |p| &p.id);
    }

    /// Partners that call back pitcrew's receiver always send a secret header, so that the
    /// receiver can tell their callbacks from forged ones: one without gets a fresh
    /// `X-Api-Token`.
    fn secure_receiver_partners(&mut self) {
        for partner in &mut self.partners {
            if partner.callback_url.is_none()
                && partner.auth_header.is_none()
                && partner.auth_query.is_none()
                && partner.signature.is_none()
            {
                partner.auth_header = Some(AuthHeader {
                    name: "X-Api-Token".into(),
                    secret: fresh_secret(),
                });
            }
        }
    }

    /// Reads a YAML config file; a mistake is a diagnostic with file, line, column and hint.
    pub fn from_file(path: &std::path::Path) -> Result<SandboxConfig, Box<ScenarioDiagnostic>> {
        Self::from_source(&SourceFile::read(path)?)
    }

    /// [`from_file`](Self::from_file) over a file already read.
    pub fn from_source(source: &SourceFile) -> Result<SandboxConfig, Box<ScenarioDiagnostic>> {
        let mut config: SandboxConfig = crate::scenario::parse_as(source)?;
        config.add_builtin();
        config
            .check()
            .map_err(|e| Box::new(source.diagnostic(None, e, None)))?;
        config.secure_receiver_partners();
        Ok(config)
    }

    /// What serde cannot see: references between offers and partners, statuses, faults, and
    /// secrets too short to mask.
    fn check(&self) -> Result<(), String> {
        if let Some(why) = self.token.as_deref().and_then(crate::mask::too_short) {
            return Err(format!("`token`: {why}"));
        }
        for partner in &self.partners {
            if let Some(why) =
                (partner.auth_header.as_ref()).and_then(|h| crate::mask::too_short(&h.secret))
            {
                return Err(format!(
                    "partner `{}`: `auth_header.secret`: {why}",
                    partner.id
                ));
            }
            let names = [
                ("auth_header", &partner.auth_header),
                ("auth_query", &partner.auth_query),
            ];
            if let Some((field, _)) = names
                .iter()
                .find(|(_, h)| h.as_ref().is_some_and(|h| h.name.trim().is_empty()))
            {
                return Err(format!("partner `{}`: `{field}.name` is empty", partner.id));
            }
            if let Some(why) =
                (partner.auth_query.as_ref()).and_then(|q| crate::mask::too_short(&q.secret))
            {
                return Err(format!(
                    "partner `{}`: `auth_query.secret`: {why}",
                    partner.id
                ));
            }
            if let Some(signature) = &partner.signature {
                if let Some(why) = crate::mask::too_short(&signature.secret) {
                    return Err(format!(
                        "partner `{}`: `signature.secret`: {why}",
                        partner.id
                    ));
                }
                let checked = signature.signature().and_then(|s| {
                    // The sandbox's callbacks are JSON bodies: the signature must cover them.
                    s.covers(crate::delivery::Format::Json)
                        .map_err(|why| format!("signature.over: {why}"))
                });
                if let Err(why) = checked {
                    return Err(format!("partner `{}`: {why}", partner.id));
                }
            }
        }
        let partners: HashSet<&str> = self.partners.iter().map(|p| p.id.as_str()).collect();
        for offer in &self.offers {
            if !partners.contains(offer.partner.as_str()) {
                return Err(format!(
                    "offer `{}` names partner `{}`, which is not among the partners ({})",
                    offer.id,
                    offer.partner,
                    partners.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
            if offer.events.is_empty() {
                return Err(format!("offer `{}` has no events", offer.id));
            }
            if let Some(url) = &offer.advertiser_url
                && (!(url.starts_with("http://") || url.starts_with("https://"))
                    || !url.contains("{gk_click_id}"))
            {
                return Err(format!(
                    "offer `{}`: `advertiser_url` must be an http(s) URL with `{{gk_click_id}}` where the click id goes, e.g. `https://advertiser.example/landing?gk_click_id={{gk_click_id}}`",
                    offer.id
                ));
            }
            for event in &offer.events {
                if let Some(url) = &event.postback_url {
                    postback_url(url).map_err(|why| {
                        format!(
                            "event `{}` of offer `{}`: `postback_url`: {why}",
                            event.id, offer.id
                        )
                    })?;
                }
                if !matches!(event.status.as_str(), "Success" | "Pending") {
                    return Err(format!(
                        "event `{}` of offer `{}`: `status: {}` is not Success or Pending",
                        event.id, offer.id, event.status
                    ));
                }
            }
        }
        for partner in &self.partners {
            if let Some(bad) = partner
                .statuses
                .iter()
                .find(|s| !STATUSES.contains(&s.as_str()))
            {
                return Err(format!(
                    "partner `{}`: `{bad}` is not a status ({})",
                    partner.id,
                    STATUSES.join(", ")
                ));
            }
            if let Some(url) = &partner.postback_url {
                postback_url(url)
                    .map_err(|why| format!("partner `{}`: `postback_url`: {why}", partner.id))?;
            }
            if partner.max_attempts == 0 {
                return Err(format!(
                    "partner `{}`: max_attempts is at least 1",
                    partner.id
                ));
            }
            partner
                .faults
                .clone()
                .parse()
                .map_err(|e| format!("partner `{}`: {e}", partner.id))?;
        }
        Ok(())
    }

    /// The offer `id` names.
    pub fn offer(&self, id: &str) -> Option<&OfferConfig> {
        self.offers.iter().find(|o| o.id == id)
    }

    /// The partner `id` names.
    pub fn partner(&self, id: &str) -> Option<&PartnerConfig> {
        self.partners.iter().find(|p| p.id == id)
    }

    /// A partner's faults, as the sandbox applies them.
    pub fn partner_faults(&self, partner: &str) -> Faults {
        self.partner(partner)
            .map(|p| {
                let mut faults = p.faults.clone().parse().unwrap_or_default();
                faults.legacy_payload |= p.legacy_payload;
                faults
            })
            .unwrap_or_default()
    }
}

/// The macros a partner postback URL may hold.
pub const POSTBACK_MACROS: &[&str] = &[
    "pub_click_id",
    "pub_member_id",
    "gk_offer_id",
    "gk_offer_name",
    "cnv_event_id",
    "cnv_amount",
];

/// Whether `name` is a postback macro: one of [`POSTBACK_MACROS`] or `pub_sub_1`..`pub_sub_15`.
pub fn is_postback_macro(name: &str) -> bool {
    POSTBACK_MACROS.contains(&name)
        || name
            .strip_prefix("pub_sub_")
            .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=15).contains(&n))
}

/// Checks a postback URL: an http(s) URL or a path, whose `{…}` are all macros.
fn postback_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with('/')) {
        return Err(format!(
            "`{url}` is neither an http(s) URL nor a path starting with `/`"
        ));
    }
    let mut rest = url;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("`{url}` opens a `{{` it never closes"));
        };
        let name = &rest[start + 1..start + len];
        if !is_postback_macro(name) {
            return Err(format!(
                "`{{{name}}}` is not a macro (macros: {}, pub_sub_1..pub_sub_15)",
                POSTBACK_MACROS
                    .iter()
                    .map(|m| format!("{{{m}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

/// The JSON Schema (draft-07) of sandbox config files (`pitcrew schema --sandbox-config`).
pub fn json_schema() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<SandboxConfig>()
}

/// A secret no other process can guess: the built-in partner's, fresh for every sandbox.
pub fn fresh_secret() -> String {
    format!("pc-{}", uuid::Uuid::new_v4().simple())
}

fn default_builtin() -> bool {
    true
}

fn default_minute() -> Duration {
    Duration::from_millis(50)
}

fn default_partner_id() -> String {
    DEMO_PARTNER.into()
}

fn default_status() -> String {
    "Success".into()
}

fn default_statuses() -> Vec<String> {
    STATUSES.iter().map(|s| s.to_string()).collect()
}

fn default_max_attempts() -> u32 {
    5
}

fn default_offers() -> Vec<OfferConfig> {
    let event = |id: &str, name: &str, points: f64, revenue: f64, status: &str| EventConfig {
        id: id.into(),
        name: Some(name.into()),
        reward_points: Some(points),
        revenue: Some(revenue),
        status: status.into(),
        postback_url: None,
    };
    // The trading app's events notify the publisher with a postback each, to the host of its
    // callbacks (pitcrew's receiver, on the embedded sandbox).
    let with_postback = |mut e: EventConfig| {
        e.postback_url = Some(BUILT_IN_POSTBACK.into());
        e
    };
    vec![
        OfferConfig {
            id: DEMO_OFFER.into(),
            name: Some("Demo Offer".into()),
            partner: DEMO_PARTNER.into(),
            advertiser_id: Some("demo-advertiser".into()),
            advertiser_name: Some("Demo Advertiser".into()),
            country_code: Some("US".into()),
            // Never fetched: pitcrew reads the redirect, it does not follow it.
            advertiser_url: Some(
                "https://advertiser.example/landing?gk_click_id={gk_click_id}".into(),
            ),
            events: vec![
                event("install", "Install", 100.0, 0.5, "Success"),
                event("signup", "Sign up", 250.0, 1.25, "Success"),
                event("purchase", "Purchase", 1000.0, 5.0, "Success"),
                event("deposit", "First deposit", 2000.0, 20.0, "Pending"),
            ],
        },
        // A multi-event offer as advertisers configure them: event ids in their own spelling,
        // matched exactly (`SignUp` is not `signup`).
        OfferConfig {
            id: "trading-app".into(),
            name: Some("Trading App".into()),
            partner: DEMO_PARTNER.into(),
            advertiser_id: Some("demo-broker".into()),
            advertiser_name: Some("Demo Broker".into()),
            country_code: Some("GB".into()),
            advertiser_url: Some("https://broker.example/open-account?ref={gk_click_id}".into()),
            events: vec![
                with_postback(event("SignUp", "Sign up", 100.0, 2.0, "Success")),
                with_postback(event("FirstTrade", "First trade", 1500.0, 40.0, "Success")),
            ],
        },
    ]
}

fn default_partners() -> Vec<PartnerConfig> {
    vec![PartnerConfig {
        id: DEMO_PARTNER.into(),
        name: Some("Demo Publisher".into()),
        callback_url: None,
        auth_query: None,
        signature: None,
        auth_header: Some(AuthHeader {
            name: "X-Api-Token".into(),
            secret: fresh_secret(),
        }),
        statuses: default_statuses(),
        max_attempts: default_max_attempts(),
        legacy_payload: false,
        faults: FaultsRequest::default(),
        postback_url: None,
    }]
}

mod duration_text {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::duration::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
