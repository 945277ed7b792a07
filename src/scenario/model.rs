//! The scenario file as written: serde types that mirror the YAML, with source positions.
//!
//! Polymorphic fields (`flag`, matchers, `params` values) stay `serde_json::Value` here and are
//! interpreted when the plan is built, so that their errors can point at the exact node.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// A YAML value with where it was written.
pub type Located<T> = Spanned<T>;

/// One scenario file: a JUnit test suite.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The suite name; the file's stem when absent.
    pub name: Option<Located<String>>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub defaults: Option<Defaults>,
    #[serde(default)]
    pub vars: BTreeMap<String, Located<Value>>,
    /// File-wide testing-tools flag setting (`false` or the expected text).
    pub flag: Option<Located<Value>>,
    pub cases: Vec<Located<CaseSpec>>,
}

/// Keys merged into every case of the file; a case's own value wins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub offer: Option<Located<String>>,
    pub member: Option<Located<String>>,
    pub partner: Option<Located<String>>,
    pub click: Option<Located<String>>,
    pub event: Option<Located<String>>,
    #[serde(default)]
    pub params: BTreeMap<String, Located<Value>>,
    pub flag: Option<Located<Value>>,
    pub timeout: Option<Located<String>>,
    pub sandbox: Option<SandboxSpec>,
}

/// One case as written (before templating).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub name: Located<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub offer: Option<Located<String>>,
    pub member: Option<Located<String>>,
    pub partner: Option<Located<String>>,
    /// `generate`, or an existing click id.
    pub click: Option<Located<String>>,
    /// An existing conversion id: only (re)send its callback.
    pub conversion: Option<Located<String>>,
    pub event: Option<Located<String>>,
    #[serde(default)]
    pub params: BTreeMap<String, Located<Value>>,
    /// `false` turns the testing-tools flag check off; a string sets the expected text.
    pub flag: Option<Located<Value>>,
    pub timeout: Option<Located<String>>,
    pub sandbox: Option<SandboxSpec>,
    #[serde(default)]
    pub expect: Expect,
}

/// Sandbox-only settings of a case.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    #[serde(default)]
    pub faults: Faults,
}

/// Faults the sandbox injects into this case's pipeline.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Leave `pubSub5` (the testing-tools flag) out of the callback.
    #[serde(default)]
    pub omit_flag: bool,
    /// Never send the callback.
    #[serde(default)]
    pub drop_callback: bool,
    /// Send the callback twice.
    #[serde(default)]
    pub duplicate_callback: bool,
    /// Send the callback this long after the conversion (e.g. `2s`).
    #[serde(default)]
    pub callback_delay: Option<String>,
}

/// What a case expects back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub click: Option<StatusExpect>,
    pub conversion: Option<StatusExpect>,
    pub callback: Option<Located<CallbackSpec>>,
    pub callback_response: Option<CallbackResponseExpect>,
}

/// An expected HTTP status of a tool call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusExpect {
    pub status: Located<u16>,
}

/// `callback: none`, or what the callbacks must look like.
#[derive(Debug)]
pub enum CallbackSpec {
    None,
    Some(CallbackExpect),
}

/// Expectations on the callbacks the receiver catches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackExpect {
    pub within: Option<Located<String>>,
    pub count: Option<Located<u32>>,
    #[serde(default)]
    pub payload: BTreeMap<String, Located<Value>>,
}

/// Expectations on the endpoint's answer as the callback tool reports it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackResponseExpect {
    pub status: Option<Located<u16>>,
    pub body: Option<Located<Value>>,
}

impl<'de> Deserialize<'de> for CallbackSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = CallbackSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`none` or a mapping with `within`, `count`, `payload`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<CallbackSpec, E> {
                match text {
                    "none" => Ok(CallbackSpec::None),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CallbackSpec, A::Error> {
                CallbackExpect::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(CallbackSpec::Some)
            }
        }
        deserializer.deserialize_any(SpecVisitor)
    }
}
