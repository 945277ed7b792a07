//! The project file, `pitcrew.yaml`: named targets (real tenants, other platforms), each a
//! profile of the pipeline's HTTP steps and of how its callbacks are observed (DESIGN §4).
//!
//! Found in the current directory or the nearest parent. Pure data here: turning a target into
//! a platform is `platform::profile`'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::scenario::model::Located;
use crate::scenario::{ScenarioDiagnostic, SourceFile};

/// The file's name.
pub const FILE_NAME: &str = "pitcrew.yaml";

/// `pitcrew.yaml`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "pitcrew project file")]
pub struct ProjectFile {
    /// Named targets, for `pitcrew run --target NAME`.
    #[serde(default)]
    pub targets: BTreeMap<String, Located<TargetSpec>>,
}

/// A platform as pitcrew drives it: where it lives, each step's request, and where callbacks
/// are seen.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The API's base URL, e.g. `https://api.acme.getgokart.ai/api/v1`.
    pub base_url: Located<String>,
    /// Headers sent with every call; templates read `{{env.NAME}}`, e.g.
    /// `Authorization: "ApiToken {{env.GOKART_API_TOKEN}}"` (masked in every output).
    #[serde(default)]
    pub headers: BTreeMap<String, Located<String>>,
    /// How long one platform minute lasts on this target (default `60s`; a sandbox compresses
    /// it), for `attempts` `after` checks.
    pub minute: Option<Located<String>>,
    /// The offer of cases that name none.
    pub offer: Option<Located<String>>,
    /// The most requests pitcrew sends this target, e.g. `20/s` or `600/m` (`--rate` wins); a
    /// 429 or 503 with `Retry-After` is waited out and sent again either way.
    pub rate: Option<Located<String>>,
    /// The pipeline's steps; a step left out cannot be used (scenarios needing it are refused
    /// before anything runs).
    pub steps: StepsSpec,
    /// How callbacks are observed (default: read from `steps.callback_log`).
    #[serde(default)]
    pub callbacks: CallbacksSpec,
    /// The platform's status words for each conversion state, e.g.
    /// `{ Success: [approved], Pending: [pending, hold], Rejected: [declined, fraud] }`: read in
    /// answers (a word in no list errors the case), and the first one sent by `change_status`.
    /// A state left out keeps its own name.
    pub states: Option<Located<BTreeMap<String, Vec<String>>>>,
}

/// The pipeline's steps.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepsSpec {
    /// Create a click (`click: generate`). Variables: `offer`, `member`, `partner`, `params`
    /// (a tracking link's `pub_*` parameters: `{{params}}` in its query, or `{{params.NAME}}`).
    pub click: Option<Located<StepSpec>>,
    /// Convert a click. Variables: `click`, `event`, `params` (the object, in a body value
    /// that is exactly `"{{params}}"`), `offer`, `member`.
    pub conversion: Option<Located<StepSpec>>,
    /// Resend a conversion's callback. Variables: `click`, `conversion`.
    pub resend: Option<Located<StepSpec>>,
    /// Change a conversion's status. Variables: `conversion`, `status`, `reason`.
    pub change_status: Option<Located<StepSpec>>,
    /// Read a conversion's delivery attempts. Variables: `conversion`, `click`.
    pub callback_log: Option<Located<LogStepSpec>>,
    /// The offer's tracking link, as a click (`click: link`): its answer is the redirect, not
    /// followed (`ok: [302]`, `id: { header: Location, query: gk_click_id }`). Variables:
    /// `offer`, `member`, `partner`, `params`.
    pub link: Option<Located<StepSpec>>,
    /// The advertiser's postback, as a conversion (`convert: postback`). Variables: `click`,
    /// `event`, `params`, `offer`, `member`.
    pub postback: Option<Located<StepSpec>>,
}

/// One step: its request, and where its answer keeps what a run needs (JSON Pointers).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub request: RequestSpec,
    /// The HTTP statuses that mean "done" (default: any 2xx).
    #[serde(default)]
    pub ok: Vec<u16>,
    /// What the answer's body must also match to mean "done", for a platform that answers 200
    /// to a failure, e.g. `{ matches: "^success=true" }` (a matcher, as in scenarios).
    #[schemars(with = "Option<Value>")]
    pub ok_when: Option<Located<Value>>,
    /// The id the step made: the click's or the conversion's, e.g. `/data/clickId`, or
    /// `{ header: Location, query: click_id }`, or `{ regex: "conversion_id=(\\w+)" }`.
    pub id: Option<Located<ExtractSpec>>,
    /// The conversion's status in the answer (a word `states:` maps).
    pub state: Option<Located<ExtractSpec>>,
    /// Why the conversion was rejected.
    pub reason: Option<Located<ExtractSpec>>,
    /// The id of the callback record the step made the platform send.
    pub callback_id: Option<Located<ExtractSpec>>,
    /// The endpoint's HTTP status, as the resend tool reports it.
    pub endpoint_status: Option<Located<String>>,
    /// The endpoint's answer body.
    pub endpoint_body: Option<Located<String>>,
    /// The endpoint's answer headers (an object).
    pub endpoint_headers: Option<Located<String>>,
    /// The transport error when the endpoint did not answer.
    pub endpoint_error: Option<Located<String>>,
}

/// Where an answer keeps a value: a JSON Pointer into its body (`/data/clickId`), a header
/// (`{ header: Location }`, with `query: click_id` for one parameter of the URL in it), or the
/// first capture of a regex over the body's text (`{ regex: "conversion_id=(\\w+);" }`).
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum ExtractSpec {
    Pointer(String),
    Header {
        header: String,
        #[serde(default)]
        query: Option<String>,
        #[serde(default)]
        regex: Option<String>,
    },
    Regex {
        regex: String,
    },
}

/// What an `id:`, `state:` … may be, for messages.
const EXTRACT_FORMS: &str = "a JSON Pointer (`/data/id`), `{ header: NAME }` (with `query: PARAM` for one parameter of the URL in it, or `regex:` for a capture in it), or `{ regex: \"…(capture)…\" }` over the body";

impl<'de> Deserialize<'de> for ExtractSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ExtractSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(EXTRACT_FORMS)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExtractSpec, E> {
                Ok(ExtractSpec::Pointer(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ExtractSpec, A::Error> {
                use serde::de::Error;
                let (mut header, mut query, mut regex) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "header" => &mut header,
                        "query" => &mut query,
                        "regex" => &mut regex,
                        other => {
                            return Err(A::Error::custom(format!(
                                "`{other}` is not a key here: give {EXTRACT_FORMS}"
                            )));
                        }
                    };
                    *slot = Some(map.next_value::<String>()?);
                }
                match (header, query, regex) {
                    (Some(header), query, regex) => Ok(ExtractSpec::Header {
                        header,
                        query,
                        regex,
                    }),
                    (None, None, Some(regex)) => Ok(ExtractSpec::Regex { regex }),
                    _ => Err(A::Error::custom(format!("give {EXTRACT_FORMS}"))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The callback log step: its request, and where each attempt keeps its parts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogStepSpec {
    pub request: RequestSpec,
    /// The list of delivery attempts in the answer, e.g. `/data`.
    pub items: Located<String>,
    /// Within an item: the callback body as sent, e.g. `/payload`.
    pub payload: Located<String>,
    /// Within an item: the callback's request headers as sent (an object, or a list of
    /// `{name, value}`), e.g. `/request/headers`; without it, scenarios cannot check them here.
    pub headers: Option<Located<String>>,
    /// Within an item: the endpoint's HTTP status.
    pub endpoint_status: Option<Located<String>>,
    /// Within an item: the endpoint's answer body.
    pub endpoint_body: Option<Located<String>>,
    /// Within an item: the transport error.
    pub error: Option<Located<String>>,
    /// Within an item: the attempt's number.
    pub attempt: Option<Located<String>>,
    /// Within an item: when it was sent (RFC 3339).
    pub sent_at: Option<Located<String>>,
    /// Within an item: the callback record's id (when the payload lacks it).
    pub callback_id: Option<Located<String>>,
    /// Within an item: the attempt record's own id.
    pub attempt_id: Option<Located<String>>,
    /// Within an item: how long the endpoint took, in milliseconds.
    pub duration_ms: Option<Located<String>>,
    /// Within an item: a partner postback's URL as sent. An item that has one is a postback
    /// (its query is its payload, for `expect.postbacks`), never a callback.
    pub postback_url: Option<Located<String>>,
}

/// An HTTP request, templated.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: Located<String>,
    /// Appended to `base_url`, e.g. `/tools/clicks` or `/conversions/{{conversion}}`; or a
    /// whole `http(s)://` URL, for a step on another host (a tenant's tracking host).
    pub path: Located<String>,
    /// Query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, Located<String>>,
    /// Headers of this request (besides the target's).
    #[serde(default)]
    pub headers: BTreeMap<String, Located<String>>,
    /// A JSON body; a value that is exactly `"{{params}}"` becomes the params object.
    #[schemars(with = "Option<Value>")]
    pub body: Option<Located<Value>>,
    /// A form-encoded body (`application/x-www-form-urlencoded`) instead of JSON.
    #[serde(default)]
    pub form: BTreeMap<String, Located<String>>,
}

/// How a target's callbacks are observed.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbacksSpec {
    /// `receiver` (pitcrew's own, listening for the platform), `remote` (a shared
    /// `pitcrew receive`), or `log` (the platform's callback log; the default).
    pub via: Option<Located<String>>,
    /// `via: receiver`: the address pitcrew's receiver listens on, e.g. `0.0.0.0:8787`.
    pub listen: Option<Located<String>>,
    /// `via: remote`: the `pitcrew receive` service's URL.
    pub url: Option<Located<String>>,
    /// `via: remote`: its API token (templated, e.g. `{{env.PITCREW_RECEIVER_TOKEN}}`).
    pub token: Option<Located<String>>,
    /// How a callback carries its payload: `json` (a JSON body, the default), `form` (a
    /// form-encoded body) or `query` (a GET whose query string is the payload). Pointers and
    /// payload checks read the payload as an object (a form's or query's values are text).
    pub format: Option<Located<String>>,
    /// The header and secret the platform sends with every callback (templated).
    pub auth_header: Option<AuthHeaderSpec>,
    /// A token the platform puts in every callback's query, e.g. `{ name: token, secret:
    /// "{{env.PARTNER_TOKEN}}" }` (masked in every output).
    pub auth_query: Option<AuthHeaderSpec>,
    /// `via: receiver`: the token a partner postback carries in its query
    /// (`…/postbacks/{pub_click_id}?…&token=SECRET`), checked instead of the callbacks'
    /// credentials for `/postbacks/…`: a postback URL can hold a token, not a header.
    pub postback_auth_query: Option<AuthHeaderSpec>,
    /// How the platform signs its callbacks.
    pub signature: Option<Located<SignatureSpec>>,
    /// `none`: take callbacks without credentials, said outright (pitcrew warns on every run:
    /// anyone who can reach the receiver can then post a callback that passes).
    pub auth: Option<Located<String>>,
    /// Where the conversion's state (a status word, read through `states:`) sits in a
    /// callback's payload (default `/conversion/status`); checks of it compare states.
    pub state: Option<Located<String>>,
    /// Where the conversion id sits in a callback body (default `/conversion/conversionId`).
    pub conversion_id: Option<Located<String>>,
    /// Where the click id sits (default `/conversion/clickId`).
    pub click_id: Option<Located<String>>,
    /// Where the callback record's id sits (default `/id`).
    pub callback_id: Option<Located<String>>,
}

/// A header name and its secret value.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthHeaderSpec {
    pub name: Located<String>,
    pub secret: Located<String>,
}

/// A callback signature: `scheme: standard-webhooks` (its `webhook-*` headers), or
/// `scheme: hmac-sha256` over the body or the sorted query, in a named header.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureSpec {
    /// `standard-webhooks` or `hmac-sha256`.
    pub scheme: Located<String>,
    /// The shared secret (templated, e.g. `{{env.WEBHOOK_SECRET}}`; Standard Webhooks'
    /// `whsec_…` form is read as its base64 key).
    pub secret: Located<String>,
    /// hmac-sha256: the header the signature comes in, e.g. `X-Signature`.
    pub header: Option<Located<String>>,
    /// hmac-sha256: what is signed, `body` (default) or `query` (the query's pairs as sent,
    /// sorted, joined with `&`).
    pub over: Option<Located<String>>,
    /// hmac-sha256: `hex` (default) or `base64`.
    pub encoding: Option<Located<String>>,
    /// hmac-sha256: text before the signature in its header, e.g. `sha256=`.
    pub prefix: Option<Located<String>>,
    /// hmac-sha256: the header with the Unix time of signing; then `"TIME.PAYLOAD"` is signed.
    pub timestamp_header: Option<Located<String>>,
    /// How far a signature's time may be from pitcrew's clock (default `5m`).
    pub tolerance: Option<Located<String>>,
}

/// A loaded project file and the source its positions refer to.
pub struct Project {
    pub file: ProjectFile,
    pub source: SourceFile,
}

/// `pitcrew.yaml` in `start` or its nearest parent, if any.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Reads a project file; a mistake is a located diagnostic.
pub fn load(path: &Path) -> Result<Project, Box<ScenarioDiagnostic>> {
    from_source(SourceFile::read(path)?)
}

/// [`load`] over a file already read.
pub fn from_source(source: SourceFile) -> Result<Project, Box<ScenarioDiagnostic>> {
    let file = crate::scenario::parse_as(&source)?;
    Ok(Project { file, source })
}

/// The JSON Schema (draft-07) of `pitcrew.yaml` (`pitcrew schema --project`).
pub fn json_schema() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<ProjectFile>()
}
