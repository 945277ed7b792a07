//! The scenario file as written: serde types that mirror the YAML, with source positions.
//!
//! Polymorphic fields (`flag`, matchers, `params` values, matrix values) stay
//! `serde_json::Value` here and are interpreted when the plan is built, so that their errors
//! can point at the exact node. The same types generate the JSON Schema editors use
//! (`pitcrew schema`); their doc comments are the descriptions editors show.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_saphyr::{Location, Spanned};

/// A YAML value with where it was written.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    /// Where the value starts in the file.
    pub referenced: Location,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        Ok(Located {
            value: spanned.value,
            referenced: spanned.referenced,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// One scenario file: a JUnit test suite.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "pitcrew scenario file")]
pub struct ScenarioFile {
    /// The suite name (the JUnit testsuite); the file's stem when absent.
    pub name: Option<Located<String>>,
    /// Tags of every case in the file, for `--tag`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Keys merged into every case of the file; a case's own value wins.
    #[serde(default)]
    pub defaults: Option<Defaults>,
    /// Template variables, read as `{{vars.NAME}}`; `--var NAME=VALUE` overrides them.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Value>")]
    pub vars: BTreeMap<String, Located<Value>>,
    /// File-wide testing-tools flag check: `false` turns it off, a string sets the expected
    /// `pubSub5` text.
    #[schemars(with = "Option<FlagSchema>")]
    pub flag: Option<Located<Value>>,
    /// File-wide schema v1 check of every callback: `false` turns it off, for platforms that
    /// send something else.
    pub schema: Option<Located<bool>>,
    /// The test cases, in the order they are reported.
    pub cases: Vec<Located<CaseSpec>>,
}

/// Keys merged into every case of the file; a case's own value wins.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// The offer id (sandbox: `demo-offer` when no case names one).
    pub offer: Option<Located<String>>,
    /// The publisher member id (the end user); a fresh one per case when absent.
    pub member: Option<Located<String>>,
    /// The partner (publisher account) id.
    pub partner: Option<Located<String>>,
    /// `generate` (through the tools), `link` (through the offer's tracking link: the public
    /// path), or an existing click id.
    pub click: Option<Located<String>>,
    /// How the click is converted: `tools` (the default) or `postback` (the advertiser's
    /// postback: the public path, `event` and `params` its query).
    pub convert: Option<Located<String>>,
    /// The offer's event id (install, signup, purchase…).
    pub event: Option<Located<String>>,
    /// Conversion parameters: `pub_sub_1`..`pub_sub_15`, `cnv_amount`, other `cnv_*`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ParamSchema>")]
    pub params: BTreeMap<String, Located<Value>>,
    /// `false` turns the testing-tools flag check off; a string sets the expected text.
    #[schemars(with = "Option<FlagSchema>")]
    pub flag: Option<Located<Value>>,
    /// `false` turns the schema v1 check of every callback off.
    pub schema: Option<Located<bool>>,
    /// The whole case's time limit, e.g. `30s`.
    #[schemars(with = "Option<DurationSchema>")]
    pub timeout: Option<Located<String>>,
    /// Sandbox-only settings (faults); an error on other targets.
    pub sandbox: Option<SandboxSpec>,
    /// How pitcrew's receiver answers each case's deliveries.
    pub receiver: Option<ReceiverSpec>,
}

/// One case as written (before templating and matrix expansion).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// The JUnit testcase name; unique in the file after matrix expansion.
    pub name: Located<String>,
    /// Tags of this case, for `--tag`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Run this case once per combination of the lists (`{{matrix.KEY}}` in templates).
    pub matrix: Option<Located<Matrix>>,
    /// The offer id (sandbox: `demo-offer` when absent).
    pub offer: Option<Located<String>>,
    /// The publisher member id (the end user); a fresh one per case when absent.
    pub member: Option<Located<String>>,
    /// The partner (publisher account) id.
    pub partner: Option<Located<String>>,
    /// `generate` (through the tools), `link` (through the offer's tracking link: the public
    /// path), or an existing click id.
    pub click: Option<Located<String>>,
    /// An existing conversion id (with `click: <id>`): only (re)send its callback.
    pub conversion: Option<Located<String>>,
    /// How the click is converted: `tools` (the default) or `postback` (the advertiser's
    /// postback: the public path, `event` and `params` its query).
    pub convert: Option<Located<String>>,
    /// The offer's event id (install, signup, purchase…).
    pub event: Option<Located<String>>,
    /// Conversion parameters: `pub_sub_1`..`pub_sub_15`, `cnv_amount`, other `cnv_*`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ParamSchema>")]
    pub params: BTreeMap<String, Located<Value>>,
    /// `false` turns the testing-tools flag check off; a string sets the expected text.
    #[schemars(with = "Option<FlagSchema>")]
    pub flag: Option<Located<Value>>,
    /// `false` turns the schema v1 check of every callback off.
    pub schema: Option<Located<bool>>,
    /// The whole case's time limit, e.g. `30s`.
    #[schemars(with = "Option<DurationSchema>")]
    pub timeout: Option<Located<String>>,
    /// Sandbox-only settings (faults); an error on other targets.
    pub sandbox: Option<Box<SandboxSpec>>,
    /// How pitcrew's receiver answers this case's deliveries (default: 200 `OK`).
    pub receiver: Option<ReceiverSpec>,
    /// What must come back; by default a 201 for each call and exactly one callback.
    #[serde(default)]
    pub expect: Box<Expect>,
    /// Follow-up steps on the case's conversion, run in order once `expect` holds.
    #[serde(default)]
    pub then: Vec<Located<StepSpec>>,
}

/// How pitcrew's receiver answers a case's deliveries.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverSpec {
    /// The answers to the case's deliveries, in order; the last one repeats.
    pub respond: Located<Vec<Located<RespondSpec>>>,
}

/// One scripted answer of the receiver.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondSpec {
    /// The HTTP status to answer, e.g. `503`.
    pub status: Located<u16>,
    /// The body to answer (default: `OK` for a 2xx, empty otherwise).
    pub body: Option<Located<String>>,
    /// How long to wait before answering, e.g. `2s`.
    #[schemars(with = "Option<DurationSchema>")]
    pub delay: Option<Located<String>>,
}

/// One follow-up step: exactly one of `change_status`, `resend` or `wait`, and what it expects.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Change the conversion's status (`Success`, `Pending` or `Rejected`): the platform sends
    /// another callback with the same conversionId.
    #[schemars(with = "Option<StateSchema>")]
    pub change_status: Option<Located<String>>,
    /// With `change_status: Rejected`: the rejection reason.
    pub reason: Option<Located<String>>,
    /// `true`: resend the conversion's callback with the callback tool.
    pub resend: Option<Located<bool>>,
    /// Wait this long, e.g. `3s` (deliveries during the wait may be expected).
    #[schemars(with = "Option<DurationSchema>")]
    pub wait: Option<Located<String>>,
    /// What the step expects; its `callback` counts only deliveries after the step began.
    #[serde(default)]
    pub expect: StepExpect,
}

/// What a follow-up step expects.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    /// `none`, or the callbacks the step makes the platform send (default for `change_status`
    /// and `resend`: exactly one, checked like any callback).
    #[schemars(with = "Option<CallbackSpec>")]
    pub callback: Option<Located<CallbackSpec>>,
    /// The endpoint's answer as the callback tool reports it (`resend` steps).
    pub callback_response: Option<ResponseExpect>,
}

/// A case's matrix: lists to combine, plus GitHub-style `include:` and `exclude:`.
#[derive(Debug, Default, Clone)]
pub struct Matrix {
    /// The lists, in the order written.
    pub axes: Vec<(String, Located<Vec<Value>>)>,
    /// Extra combinations, or extra keys added to the combinations they match.
    pub include: Vec<Located<BTreeMap<String, Value>>>,
    /// Partial combinations to remove.
    pub exclude: Vec<Located<BTreeMap<String, Value>>>,
    /// A CSV or JSON-lines file of rows, each a combination (relative to the scenario file).
    pub from: Option<Located<String>>,
}

/// Sandbox-only settings of a case.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// Faults the sandbox injects into this case's pipeline.
    #[serde(default)]
    pub faults: Faults,
}

/// Faults the sandbox injects into this case's pipeline.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Leave `pubSub5` (the testing-tools flag) out of the callback.
    #[serde(default)]
    pub omit_flag: bool,
    /// Never send the callback.
    #[serde(default)]
    pub drop_callback: bool,
    /// Send none of the partner postbacks.
    #[serde(default)]
    pub drop_postback: bool,
    /// Send each partner postback twice.
    #[serde(default)]
    pub duplicate_postback: bool,
    /// The tracking link (`click: link`) redirects without the click id.
    #[serde(default)]
    pub redirect_without_click_id: bool,
    /// Send the callback twice: `true` right after the first, or after a delay (e.g. `2s`).
    #[schemars(with = "Option<DuplicateSchema>")]
    pub duplicate_callback: Option<Located<Value>>,
    /// Send the callback this long after the conversion (e.g. `2s`).
    #[schemars(with = "Option<DurationSchema>")]
    pub callback_delay: Option<Located<String>>,
    /// Leave this field out of the callback, e.g. `revenue` (a conversion field) or `sentAt`.
    pub missing_field: Option<Located<String>>,
    /// Send this amount in `trackSysConversionAmount` instead of the conversion's.
    pub altered_amount: Option<Located<String>>,
    /// Send the callback with the legacy PascalCase keys (`Conversion.ConversionId`).
    #[serde(default)]
    pub legacy_payload: bool,
    /// Send the callback with a `wrong` secret, or with its auth header `missing`.
    #[schemars(with = "Option<AuthFaultSchema>")]
    pub auth: Option<Located<String>>,
    /// Answer the conversion call this much later, e.g. `300ms`.
    #[schemars(with = "Option<DurationSchema>")]
    pub api_latency: Option<Located<String>>,
    /// Answer the conversion call with this 5xx status and make no conversion, e.g. `503`.
    pub api_error: Option<Located<u16>>,
}

/// What a case expects back.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The click tool's answer (default: status 201).
    pub click: Option<ResponseExpect>,
    /// The conversion tool's answer (default: status 201, and a state other than Rejected).
    pub conversion: Option<ConversionExpect>,
    /// `none`, or the callbacks the receiver must catch (default: exactly one, within 10s).
    #[schemars(with = "Option<CallbackSpec>")]
    pub callback: Option<Located<CallbackSpec>>,
    /// The endpoint's answer as the callback tool reports it (callback-only mode).
    pub callback_response: Option<ResponseExpect>,
    /// The callback tool's own answer (callback-only mode; default: one the target counts as
    /// done). A status it refuses with (e.g. `404` for an unknown conversion) expects the
    /// refusal: then no callback may follow.
    pub resend: Option<ResponseExpect>,
    /// `none`, or the partner postbacks the conversion fires (GET URLs, their query the
    /// payload). Judged for a case with a publisher click id (`click: link`, or
    /// `params.pub_click_id`); unwritten, none may arrive.
    #[schemars(with = "Option<PostbacksSpec>")]
    pub postbacks: Option<Located<PostbacksSpec>>,
}

/// `postbacks: none`, or what the partner postbacks must look like.
#[derive(Debug)]
pub enum PostbacksSpec {
    None,
    Some(Box<PostbacksExpect>),
}

/// Expectations on the partner postbacks of a case's conversion.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostbacksExpect {
    /// Exactly how many postbacks (default 1): a missing one, a duplicate or an unexpected
    /// one fails the case.
    pub count: Option<Located<u32>>,
    /// Query parameter names and their matchers, held by every postback (e.g.
    /// `amount: "250.00"`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, MatcherSchema>")]
    pub query: BTreeMap<String, Located<Value>>,
    /// How long to wait for them, e.g. `5s` (default 10s).
    #[schemars(with = "Option<DurationSchema>")]
    pub within: Option<Located<String>>,
}

impl<'de> Deserialize<'de> for PostbacksSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = PostbacksSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`none` or a mapping with `count`, `query`, `within`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<PostbacksSpec, E> {
                match text {
                    "none" => Ok(PostbacksSpec::None),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PostbacksSpec, A::Error> {
                PostbacksExpect::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|e| PostbacksSpec::Some(Box::new(e)))
            }
        }
        deserializer.deserialize_any(SpecVisitor)
    }
}

impl JsonSchema for PostbacksSpec {
    fn schema_name() -> Cow<'static, str> {
        "PostbacksSpec".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let expect = generator.subschema_for::<PostbacksExpect>();
        json_schema!({
            "description": "`none` (no partner postback may arrive), or what the postbacks must look like",
            "anyOf": [{ "const": "none" }, expect]
        })
    }
}

/// Expectations on an HTTP answer: its status, body, JSON fields and headers.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseExpect {
    /// The expected HTTP status code.
    pub status: Option<Located<u16>>,
    /// A matcher on the whole body, as text (e.g. `{ contains: "OK" }`).
    #[schemars(with = "Option<MatcherSchema>")]
    pub body: Option<Located<Value>>,
    /// Dot paths into the JSON body and their matchers (e.g. `data.clickId: { exists: true }`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, MatcherSchema>")]
    pub json: BTreeMap<String, Located<Value>>,
    /// Header names (any case) and their matchers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, MatcherSchema>")]
    pub headers: BTreeMap<String, Located<Value>>,
    /// `click` with `click: link` only: a matcher on the tracking link's redirect (its
    /// `Location`), e.g. `{ starts_with: "https://advertiser.example/" }`.
    #[schemars(with = "Option<MatcherSchema>")]
    pub redirect: Option<Located<Value>>,
}

/// Expectations on the conversion tool's answer: as for any answer, plus the conversion's
/// state.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionExpect {
    /// The expected HTTP status code.
    pub status: Option<Located<u16>>,
    /// The conversion's status as the platform answered it: `Success`, `Pending` or
    /// `Rejected`. Unless it is `Rejected` here, a rejected conversion fails the case.
    #[schemars(with = "Option<StateSchema>")]
    pub state: Option<Located<String>>,
    /// A matcher on the whole body, as text (e.g. `{ contains: "OK" }`).
    #[schemars(with = "Option<MatcherSchema>")]
    pub body: Option<Located<Value>>,
    /// Dot paths into the JSON body and their matchers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, MatcherSchema>")]
    pub json: BTreeMap<String, Located<Value>>,
    /// Header names (any case) and their matchers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, MatcherSchema>")]
    pub headers: BTreeMap<String, Located<Value>>,
}

/// `callback: none`, or what the callbacks must look like.
#[derive(Debug)]
pub enum CallbackSpec {
    None,
    Some(Box<CallbackExpect>),
}

/// Expectations on the callbacks the receiver catches.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackExpect {
    /// How long to wait for the callbacks, e.g. `5s` (default 10s).
    #[schemars(with = "Option<DurationSchema>")]
    pub within: Option<Located<String>>,
    /// Exactly how many callbacks (default 1): a duplicate fails the case.
    pub count: Option<Located<u32>>,
    /// Dot paths into the callback JSON and their matchers (e.g. `conversion.pubSub1`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, MatcherSchema>")]
    pub payload: BTreeMap<String, Located<Value>>,
    /// Callback request header names (any case) and their matchers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, MatcherSchema>")]
    pub headers: BTreeMap<String, Located<Value>>,
    /// Every delivery in order, accepted or not, with the endpoint's answer and the platform
    /// time since the previous attempt (`after`).
    pub attempts: Option<Located<Vec<Located<AttemptSpec>>>>,
    /// The endpoint's answer to each accepted delivery.
    pub response: Option<DeliveryResponseSpec>,
    /// Check every callback against GoKart's schema v1 (default `true`; `schema:` on the case
    /// or file sets it for all).
    pub schema: Option<Located<bool>>,
    /// How long the case's deliveries must be quiet after its verdict before it is final,
    /// e.g. `5s` (default: `--settle`; unset, 1s on a target that cannot tell what it still
    /// has to send, none on a sandbox). Only on the case's own `expect.callback`, not a step's.
    #[schemars(with = "Option<DurationSchema>")]
    pub settle: Option<Located<String>>,
}

/// One delivery attempt as `attempts` lists it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptSpec {
    /// The endpoint's HTTP status (a number, or a matcher such as `{ one_of: [401, 403] }`).
    #[schemars(with = "Option<MatcherSchema>")]
    pub status: Option<Located<Value>>,
    /// A matcher on the endpoint's answer body.
    #[schemars(with = "Option<MatcherSchema>")]
    pub body: Option<Located<Value>>,
    /// Platform time since the previous attempt was answered, e.g. `2m` (the target's time
    /// scale applies).
    #[schemars(with = "Option<DurationSchema>")]
    pub after: Option<Located<String>>,
}

/// The endpoint's answer to each accepted delivery.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryResponseSpec {
    /// The HTTP status (a number, or a matcher such as `{ gte: 200, lt: 300 }`).
    #[schemars(with = "Option<MatcherSchema>")]
    pub status: Option<Located<Value>>,
    /// A matcher on the answer body.
    #[schemars(with = "Option<MatcherSchema>")]
    pub body: Option<Located<Value>>,
    /// The endpoint must answer within this long, e.g. `5s`.
    #[schemars(with = "Option<DurationSchema>")]
    pub within: Option<Located<String>>,
}

impl<'de> Deserialize<'de> for CallbackSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = CallbackSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`none` or a mapping with `within`, `count`, `payload`, `headers`, `attempts`, `response`, `schema`, `settle`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<CallbackSpec, E> {
                match text {
                    "none" => Ok(CallbackSpec::None),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CallbackSpec, A::Error> {
                CallbackExpect::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|e| CallbackSpec::Some(Box::new(e)))
            }
        }
        deserializer.deserialize_any(SpecVisitor)
    }
}

impl JsonSchema for CallbackSpec {
    fn schema_name() -> Cow<'static, str> {
        "CallbackSpec".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let expect = generator.subschema_for::<CallbackExpect>();
        json_schema!({
            "description": "`none` (no callback may arrive), or what the callbacks must look like",
            "anyOf": [{ "const": "none" }, expect]
        })
    }
}

impl<'de> Deserialize<'de> for Matrix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MatrixVisitor;
        impl<'de> Visitor<'de> for MatrixVisitor {
            type Value = Matrix;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a mapping of keys to lists of values, e.g. `{ event: [install, signup] }`",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matrix, A::Error> {
                let mut matrix = Matrix::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "include" => matrix.include = map.next_value()?,
                        "exclude" => matrix.exclude = map.next_value()?,
                        "from" => matrix.from = Some(map.next_value()?),
                        _ => {
                            let values: Located<Vec<Value>> = map.next_value()?;
                            matrix.axes.push((key, values));
                        }
                    }
                }
                Ok(matrix)
            }
        }
        deserializer.deserialize_map(MatrixVisitor)
    }
}

impl JsonSchema for Matrix {
    fn schema_name() -> Cow<'static, str> {
        "Matrix".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Run the case once per combination of these lists; templates read `{{matrix.KEY}}`. `from:` reads rows from a CSV or JSON-lines file, each a combination (combined with the lists). `include:` adds combinations (or keys to the combinations it matches), `exclude:` removes them.",
            "type": "object",
            "properties": {
                "from": {
                    "description": "A CSV file (header row = keys; `;` or tab when the header has no comma) or JSON lines (`.jsonl`), relative to the scenario file: each row is a combination",
                    "type": "string",
                    "minLength": 1
                },
                "include": {
                    "description": "Extra combinations, or keys to add to the combinations they match",
                    "type": "array",
                    "items": { "type": "object" }
                },
                "exclude": {
                    "description": "Partial combinations to remove",
                    "type": "array",
                    "items": { "type": "object" }
                }
            },
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": { "type": ["string", "number", "boolean", "null", "object"] }
            }
        })
    }
}

/// Schema of a matcher: a scalar (equality) or a mapping of matcher names.
pub struct MatcherSchema;

impl JsonSchema for MatcherSchema {
    fn schema_name() -> Cow<'static, str> {
        "Matcher".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let me = generator.subschema_for::<MatcherSchema>();
        let number = json_schema!({ "type": ["number", "string"] });
        json_schema!({
            "description": "A scalar (equality: a string matches a string exactly, a number numerically, null matches null), or a mapping of matchers that must all hold",
            "anyOf": [
                { "type": ["string", "number", "boolean", "null"] },
                {
                    "type": "object",
                    "additionalProperties": false,
                    "minProperties": 1,
                    "properties": {
                        "eq": { "description": "equal to this value" },
                        "ne": { "description": "not equal to this value" },
                        "matches": { "description": "a regular expression the text matches", "type": "string" },
                        "contains": { "description": "a substring of the text, or an item of the array" },
                        "starts_with": { "description": "a prefix of the text", "type": "string" },
                        "one_of": { "description": "equal to one of these values", "type": "array" },
                        "exists": { "description": "present (true) or absent (false)", "type": "boolean" },
                        "gt": number.clone(),
                        "gte": number.clone(),
                        "lt": number.clone(),
                        "lte": number,
                        "len": me.clone(),
                        "type": { "enum": crate::scenario::matcher::TYPE_NAMES },
                        "not": me
                    }
                }
            ]
        })
    }
}

/// Schema of the testing-tools flag setting.
pub struct FlagSchema;

impl JsonSchema for FlagSchema {
    fn schema_name() -> Cow<'static, str> {
        "Flag".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`false` turns the testing-tools flag check off, `true` checks the standard text, a string sets the expected pubSub5 text",
            "type": ["boolean", "string"]
        })
    }
}

/// Schema of a conversion parameter value.
pub struct ParamSchema;

impl JsonSchema for ParamSchema {
    fn schema_name() -> Cow<'static, str> {
        "Param".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A parameter value (sent as text); null removes a default",
            "type": ["string", "number", "boolean", "null"]
        })
    }
}

/// Schema of a conversion state.
pub struct StateSchema;

impl JsonSchema for StateSchema {
    fn schema_name() -> Cow<'static, str> {
        "ConversionState".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A conversion's status: Success, Pending or Rejected",
            "enum": crate::scenario::model::CONVERSION_STATES
        })
    }
}

/// The statuses a conversion can have.
pub const CONVERSION_STATES: &[&str] = &["Success", "Pending", "Rejected"];

/// Schema of the `auth` fault.
pub struct AuthFaultSchema;

impl JsonSchema for AuthFaultSchema {
    fn schema_name() -> Cow<'static, str> {
        "AuthFault".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`wrong`: the auth header carries a wrong secret; `missing`: no auth header",
            "enum": ["wrong", "missing"]
        })
    }
}

/// Schema of `duplicate_callback`: a boolean or a delay.
pub struct DuplicateSchema;

impl JsonSchema for DuplicateSchema {
    fn schema_name() -> Cow<'static, str> {
        "Duplicate".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let duration = generator.subschema_for::<DurationSchema>();
        json_schema!({
            "description": "`true`: a second copy right after the first; a duration: a second copy that long after",
            "anyOf": [{ "type": "boolean" }, duration]
        })
    }
}

/// Schema of a duration.
pub struct DurationSchema;

impl JsonSchema for DurationSchema {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number and a unit: `500ms`, `5s`, `2m`, `1h`; or a template that renders to one, e.g. `\"{{vars.window}}\"`",
            "type": "string",
            "pattern": "^\\s*([0-9]+(\\.[0-9]+)?(ms|s|m|h)|.*\\{\\{.*\\}\\}.*)\\s*$"
        })
    }
}

/// The JSON Schema (draft-07) of scenario files, for editors (`pitcrew schema`).
pub fn json_schema() -> Schema {
    schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<ScenarioFile>()
}
