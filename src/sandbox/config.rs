//! The sandbox's tenant: offers, partners (publisher accounts), token and time scale.
//!
//! Read from `--sandbox-config FILE` (YAML) or the built-in defaults that the examples use.

use std::time::Duration;

use serde::Deserialize;

/// The built-in offer.
pub const DEMO_OFFER: &str = "demo-offer";
/// The built-in partner, whose callbacks go to pitcrew's receiver.
pub const DEMO_PARTNER: &str = "demo-publisher";
/// The seeded click of `demo-offer`, member `demo-member`.
pub const SEEDED_CLICK: &str = "00000000-0000-4000-8000-000000000001";
/// The seeded conversion (event `install`) of the seeded click.
pub const SEEDED_CONVERSION: &str = "00000000-0000-4000-8000-000000000002";
/// The member of the seeded click.
pub const SEEDED_MEMBER: &str = "demo-member";

/// A sandbox tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// When set, every API call needs `Authorization: ApiToken <token>`.
    #[serde(default)]
    pub token: Option<String>,
    /// How long one platform minute lasts here (the retry schedule is 2, 4, 8… minutes).
    #[serde(default = "default_minute", with = "duration_text")]
    pub minute: Duration,
    #[serde(default = "default_offers")]
    pub offers: Vec<OfferConfig>,
    #[serde(default = "default_partners")]
    pub partners: Vec<PartnerConfig>,
}

/// An offer and the events a conversion may name.
#[derive(Debug, Clone, Deserialize)]
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
    pub events: Vec<EventConfig>,
}

/// One event of an offer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub reward_points: Option<f64>,
    #[serde(default)]
    pub revenue: Option<f64>,
}

/// A publisher account: where its callbacks go and how.
#[derive(Debug, Clone, Deserialize)]
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
    /// Which conversion statuses are called back (Success is always among them on GoKart).
    #[serde(default = "default_statuses")]
    pub statuses: Vec<String>,
    /// Attempts in all, the first included, for 500 and 503 answers.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

/// A header name and its secret value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthHeader {
    pub name: String,
    pub secret: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            token: None,
            minute: default_minute(),
            offers: default_offers(),
            partners: default_partners(),
        }
    }
}

impl SandboxConfig {
    /// The headers (name and secret) of the partners whose callbacks go to pitcrew's receiver:
    /// the receiver takes a callback only when it carries one of them.
    pub fn receiver_auth(&self) -> Vec<crate::receiver::AuthHeader> {
        self.partners
            .iter()
            .filter(|p| p.callback_url.is_none())
            .filter_map(|p| p.auth_header.as_ref())
            .map(|h| crate::receiver::AuthHeader {
                name: h.name.clone(),
                secret: h.secret.clone(),
            })
            .collect()
    }

    /// Every secret of the tenant (its API token, the partners' header secrets), to mask.
    pub fn secrets(&self) -> Vec<String> {
        let partners = self
            .partners
            .iter()
            .filter_map(|p| p.auth_header.as_ref().map(|h| h.secret.clone()));
        self.token.clone().into_iter().chain(partners).collect()
    }

    /// Partners that call back pitcrew's receiver always send a secret header, so that the
    /// receiver can tell their callbacks from forged ones: one without gets a fresh
    /// `X-Api-Token`.
    fn secure_receiver_partners(&mut self) {
        for partner in &mut self.partners {
            if partner.callback_url.is_none() && partner.auth_header.is_none() {
                partner.auth_header = Some(AuthHeader {
                    name: "X-Api-Token".into(),
                    secret: fresh_secret(),
                });
            }
        }
    }

    /// Reads a YAML config file; errors name the file, line and column.
    pub fn from_file(path: &std::path::Path) -> Result<SandboxConfig, String> {
        let text = crate::scenario::files::read_limited(path)
            .map_err(|e| format!("cannot read sandbox config {}: {e}", path.display()))?;
        let mut config: SandboxConfig =
            serde_saphyr::from_str_with_options(&text, crate::scenario::yaml_options()).map_err(
                |e| {
                    let options =
                        serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
                    let at = e
                        .location()
                        .map(|l| format!(":{}:{}", l.line(), l.column()))
                        .unwrap_or_default();
                    let message = e.render_with_options(options);
                    let message = message
                        .split(" at line ")
                        .next()
                        .unwrap_or(&message)
                        .to_string();
                    format!("{}{at}: {message}", path.display())
                },
            )?;
        config.secure_receiver_partners();
        Ok(config)
    }
}

/// A secret no other process can guess: the built-in partner's, fresh for every sandbox.
pub fn fresh_secret() -> String {
    format!("pc-{}", uuid::Uuid::new_v4().simple())
}

fn default_minute() -> Duration {
    Duration::from_millis(10)
}

fn default_partner_id() -> String {
    DEMO_PARTNER.into()
}

fn default_statuses() -> Vec<String> {
    vec!["Success".into(), "Pending".into(), "Rejected".into()]
}

fn default_max_attempts() -> u32 {
    5
}

fn default_offers() -> Vec<OfferConfig> {
    let event = |id: &str, name: &str, points: f64, revenue: f64| EventConfig {
        id: id.into(),
        name: Some(name.into()),
        reward_points: Some(points),
        revenue: Some(revenue),
    };
    vec![OfferConfig {
        id: DEMO_OFFER.into(),
        name: Some("Demo Offer".into()),
        partner: DEMO_PARTNER.into(),
        advertiser_id: Some("demo-advertiser".into()),
        advertiser_name: Some("Demo Advertiser".into()),
        country_code: Some("US".into()),
        events: vec![
            event("install", "Install", 100.0, 0.5),
            event("signup", "Sign up", 250.0, 1.25),
            event("purchase", "Purchase", 1000.0, 5.0),
        ],
    }]
}

fn default_partners() -> Vec<PartnerConfig> {
    vec![PartnerConfig {
        id: DEMO_PARTNER.into(),
        name: Some("Demo Publisher".into()),
        callback_url: None,
        auth_header: Some(AuthHeader {
            name: "X-Api-Token".into(),
            secret: fresh_secret(),
        }),
        statuses: default_statuses(),
        max_attempts: default_max_attempts(),
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
