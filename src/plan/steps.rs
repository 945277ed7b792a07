//! A case's `then:` steps: each does one thing to the case's conversion (change its status,
//! resend its callback, or wait) and says what it expects.

use std::sync::Arc;

use handlebars::Context;

use super::expect::one_callback;
use super::suite::SuiteBuilder;
use super::{Action, CallbackCheck, Mode, Step, StepExpect};
use crate::scenario::model::{CallbackSpec, CaseSpec, Located, StepSpec};

impl SuiteBuilder<'_> {
    /// The case's steps; `None` when one is wrong (reported).
    pub(super) fn steps(
        &mut self,
        spec: &Located<CaseSpec>,
        mode: Option<&Mode>,
        context: &Context,
        schema: bool,
    ) -> Option<Arc<[Step]>> {
        let before = self.errors();
        let mut steps = Vec::with_capacity(spec.value.then.len());
        for step in &spec.value.then {
            if let Some(step) = self.step(step, context, schema) {
                steps.push(step);
            }
        }
        let expect = &spec.value.expect;
        let refuses = |status: Option<u16>| status.is_some_and(|s| !(200..300).contains(&s));
        let conversion = expect.conversion.as_ref().and_then(|c| c.status.as_ref());
        let click = expect.click.as_ref().and_then(|c| c.status.as_ref());
        let refused = matches!(mode, Some(Mode::Generate | Mode::Click(_)))
            && refuses(conversion.map(|s| s.value))
            || matches!(mode, Some(Mode::Generate)) && refuses(click.map(|s| s.value));
        if !steps.is_empty() && refused {
            self.error(
                &spec.value.then[0].referenced,
                "`then:` steps work on the case's conversion, but this case expects none to be made",
                Some("steps follow a conversion the platform accepts (or `click:` and `conversion:` ids)".into()),
            );
        }
        (self.errors() == before).then(|| Arc::from(steps))
    }

    fn step(&mut self, step: &Located<StepSpec>, context: &Context, schema: bool) -> Option<Step> {
        let s = &step.value;
        let actions: Vec<&str> = [
            s.change_status.as_ref().map(|_| "change_status"),
            s.resend.as_ref().map(|_| "resend"),
            s.wait.as_ref().map(|_| "wait"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if actions.len() != 1 {
            let found = match actions.as_slice() {
                [] => "none".to_string(),
                many => format!("`{}`", many.join("` and `")),
            };
            self.error(
                &step.referenced,
                format!("a step does exactly one thing; this one has {found}"),
                Some(
                    "write one of `change_status: Rejected`, `resend: true` or `wait: 2s` per step"
                        .into(),
                ),
            );
            return None;
        }
        if let Some(reason) = &s.reason
            && s.change_status.is_none()
        {
            self.error(
                &reason.referenced,
                "`reason` goes with `change_status` (the rejection reason)",
                None,
            );
            return None;
        }
        if let Some(CallbackSpec::Some(e)) = s.expect.callback.as_ref().map(|c| &c.value)
            && let Some(settle) = &e.settle
        {
            self.error(
                &settle.referenced,
                "`settle` is the whole case's: set it on the case's own `expect.callback`",
                Some("the case's verdict is final once its deliveries are quiet for `settle` after its last step".into()),
            );
            return None;
        }
        if s.expect.callback_response.is_some() && s.resend.is_none() {
            self.error(
                &step.referenced,
                "`callback_response` is the callback tool's answer: only a `resend` step has one",
                None,
            );
            return None;
        }
        let needs: &[&str] = match (&s.change_status, &s.resend) {
            (Some(_), _) => &["change_status"],
            (None, Some(_)) => &["resend"],
            _ => &[],
        };
        self.needs_steps(needs, &step.referenced);
        let action = if let Some(status) = &s.change_status {
            let rendered = self.render(status, context)?;
            let located = Located {
                value: rendered,
                referenced: status.referenced,
            };
            let status = self.conversion_state(&located)?;
            let reason = match &s.reason {
                Some(r) => Some(self.render(r, context)?),
                None => None,
            };
            Action::ChangeStatus { status, reason }
        } else if let Some(resend) = &s.resend {
            if !resend.value {
                self.error(
                    &resend.referenced,
                    "`resend: false` does nothing: remove the step, or write `resend: true`",
                    None,
                );
                return None;
            }
            Action::Resend
        } else {
            Action::Wait(self.duration_in(s.wait.as_ref()?, context)?)
        };
        let at = self.at(&step.referenced);
        let default = match action {
            // A wait expects no delivery: one that lands during it is its part's, and fails.
            Action::Wait(_) => CallbackCheck::None {
                wait: std::time::Duration::ZERO,
                at: at.clone(),
            },
            _ => one_callback(schema, &at),
        };
        let callback = self.callback(s.expect.callback.as_ref(), default, context, schema)?;
        let callback_response = match &s.expect.callback_response {
            Some(r) => Some(self.response_check(r, context, &at)?),
            None => None,
        };
        Some(Step {
            action,
            expect: StepExpect {
                callback,
                callback_response,
            },
            at: self.at(&step.referenced),
        })
    }
}
