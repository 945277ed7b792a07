//! What a case asks of the target beyond the pipeline: the sandbox's faults, in the sandbox
//! API's words, and the answers pitcrew's receiver gives its deliveries.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::suite::SuiteBuilder;
use super::{Script, ScriptedAnswer};
use crate::scenario::model::{CaseSpec, Defaults, Faults, Located};

impl SuiteBuilder<'_> {
    /// `sandbox.faults` (the case's, else the defaults'); `None` when wrong (reported).
    pub(super) fn sandbox(
        &mut self,
        spec: &Located<CaseSpec>,
        defaults: &Defaults,
    ) -> Option<Option<Arc<Value>>> {
        let Some(sandbox) = spec.value.sandbox.as_deref().or(defaults.sandbox.as_ref()) else {
            return Some(None);
        };
        if !self.options.sandbox_faults {
            self.target_error(
                &spec.referenced,
                "`sandbox:` faults only apply to the sandbox target",
                Some("run with `--target sandbox` (the default), or remove `sandbox:`".into()),
            );
        }
        self.faults(&sandbox.faults)
    }

    /// Faults as the sandbox API takes them (`None` when one is wrong, reported).
    fn faults(&mut self, faults: &Faults) -> Option<Option<Arc<Value>>> {
        let mut wire = Map::new();
        let before = self.errors();
        let mut flag = |key: &str, on: bool| {
            if on {
                wire.insert(key.into(), Value::Bool(true));
            }
        };
        flag("omit_flag", faults.omit_flag);
        flag("drop_callback", faults.drop_callback);
        flag("drop_postback", faults.drop_postback);
        flag("duplicate_postback", faults.duplicate_postback);
        flag(
            "redirect_without_click_id",
            faults.redirect_without_click_id,
        );
        flag("legacy_payload", faults.legacy_payload);
        for (key, delay) in [
            ("callback_delay", &faults.callback_delay),
            ("api_latency", &faults.api_latency),
        ] {
            if let Some(delay) = delay
                && self.duration(delay).is_some()
            {
                wire.insert(key.into(), Value::String(delay.value.clone()));
            }
        }
        for (key, text) in [
            ("missing_field", &faults.missing_field),
            ("altered_amount", &faults.altered_amount),
        ] {
            if let Some(text) = text {
                wire.insert(key.into(), Value::String(text.value.clone()));
            }
        }
        if let Some(status) = &faults.api_error {
            if (500..600).contains(&status.value) || status.value == 429 {
                wire.insert("api_error".into(), Value::from(status.value));
            } else {
                self.error(
                    &status.referenced,
                    format!("`api_error: {}` is neither a 5xx status nor 429", status.value),
                    Some("the platform's API fails with a 5xx, e.g. `503`, or rate-limits with `429`".into()),
                );
            }
        }
        if let Some(auth) = &faults.auth {
            if matches!(auth.value.as_str(), "wrong" | "missing") {
                wire.insert("auth".into(), Value::String(auth.value.clone()));
            } else {
                self.error(
                    &auth.referenced,
                    format!("`auth: {}` is neither `wrong` nor `missing`", auth.value),
                    Some(
                        "`wrong`: a wrong secret in the auth header; `missing`: no auth header"
                            .into(),
                    ),
                );
            }
        }
        match faults.duplicate_callback.as_ref().map(|d| (&d.value, d)) {
            None | Some((Value::Bool(false), _)) => {}
            Some((Value::Bool(true), _)) => {
                wire.insert("duplicate_callback".into(), Value::Bool(true));
            }
            Some((Value::String(text), at)) => {
                let located = Located {
                    value: text.clone(),
                    referenced: at.referenced,
                };
                if self.duration(&located).is_some() {
                    wire.insert("duplicate_callback".into(), Value::String(text.clone()));
                }
            }
            Some((other, at)) => self.error(
                &at.referenced,
                format!(
                    "`duplicate_callback`: expected true, false or a delay such as `2s`, found {}",
                    crate::scenario::matcher::describe(other)
                ),
                None,
            ),
        }
        if self.errors() > before {
            return None;
        }
        Some((!wire.is_empty()).then(|| Arc::new(Value::Object(wire))))
    }

    /// `receiver.respond` (the case's, else the defaults'): the receiver's answers in order.
    pub(super) fn script(
        &mut self,
        spec: &Located<CaseSpec>,
        defaults: &Defaults,
    ) -> Option<Option<Arc<Script>>> {
        let Some(receiver) = spec.value.receiver.as_ref().or(defaults.receiver.as_ref()) else {
            return Some(None);
        };
        if let Some(why) = &self.options.no_scripts {
            self.target_error(
                &receiver.respond.referenced,
                format!("`receiver:` scripts pitcrew's own receiver, but {why}"),
                Some(
                    "run on the embedded sandbox (the default target), or remove `receiver:`"
                        .into(),
                ),
            );
        }
        let before = self.errors();
        let mut answers = Vec::with_capacity(receiver.respond.value.len());
        for entry in &receiver.respond.value {
            let r = &entry.value;
            if !(100..600).contains(&r.status.value) {
                self.error(
                    &r.status.referenced,
                    format!("`{}` is not an HTTP status", r.status.value),
                    Some("an HTTP status code, e.g. `200` or `503`".into()),
                );
            }
            let delay = match &r.delay {
                Some(d) => self.duration(d).unwrap_or(Duration::ZERO),
                None => Duration::ZERO,
            };
            let ok = (200..300).contains(&r.status.value);
            answers.push(ScriptedAnswer {
                status: r.status.value,
                body: r
                    .body
                    .as_ref()
                    .map(|b| b.value.clone())
                    .unwrap_or_else(|| if ok { "OK".into() } else { String::new() }),
                delay,
            });
        }
        if answers.is_empty() {
            self.error(
                &receiver.respond.referenced,
                "`respond` lists no answer",
                Some("e.g. `respond: [{ status: 503 }, { status: 200 }]`".into()),
            );
        }
        (self.errors() == before).then(|| Some(Arc::new(Script { answers })))
    }
}
