//! What is worth a warning while a plan is built: nothing stops, but the author should know.

use std::time::Duration;

use serde_json::Value;
use serde_saphyr::Location;

use super::suite::SuiteBuilder;
use super::{CallbackCheck, CaseExpect};
use crate::scenario::matrix::{self, Combination};
use crate::scenario::model::{CallbackSpec, CaseSpec, Located, Matrix};

impl SuiteBuilder<'_> {
    /// A matrix key no template reads runs the same requests once per value.
    pub(super) fn unused_matrix_keys(
        &mut self,
        spec: &Matrix,
        combinations: &[Combination],
        text: &str,
        at: &Location,
    ) {
        let mut keys: Vec<&str> = Vec::new();
        for combination in combinations {
            for (k, _) in combination {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
        // A template that reads a key the matrix lacks is an error (with a "did you mean"): the
        // key it meant would be reported unused besides, which is the same mistake twice.
        let misspelt = text.match_indices("matrix.").any(|(i, _)| {
            // Inside a template (`{{ … matrix.x … }}`), not a file name (`from: matrix.csv`).
            let before = &text[..i];
            let open = before.rfind("{{");
            if open.is_none_or(|o| before.rfind("}}").is_some_and(|c| c > o)) {
                return false;
            }
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            !name.is_empty() && !keys.contains(&name.as_str())
        });
        if misspelt {
            return;
        }
        let mut columns = Vec::new();
        for key in keys {
            if !matrix::mentions(text, key) {
                let axis = spec.axes.iter().find(|(k, _)| k == key);
                if let (None, Some(from)) = (axis, &spec.from) {
                    let included = (spec.include.iter()).any(|i| i.value.contains_key(key));
                    if !included {
                        columns.push((key, from));
                        continue;
                    }
                }
                let at = axis.map_or(*at, |(_, v)| v.referenced);
                self.warn(
                    &at,
                    format!("matrix key `{key}` is not used by this case: each of its values sends the same requests"),
                    Some(format!("use `{{{{matrix.{key}}}}}` in the case (in `event:`, `params:`, …), or remove the key")),
                );
            }
        }
        // The file's unused columns, in one warning: a spreadsheet may have several.
        if let Some((_, from)) = columns.first() {
            let names: Vec<String> = columns.iter().map(|(k, _)| format!("`{k}`")).collect();
            let (what, are) = match names.len() {
                1 => ("column", "is"),
                _ => ("columns", "are"),
            };
            self.warn(
                &from.referenced,
                format!(
                    "{what} {} of `{}` {are} not used by this case: rows that differ only there send the same requests",
                    names.join(", "),
                    from.value
                ),
                Some("use `{{matrix.COLUMN}}` in the case, or leave the column out of the file".into()),
            );
        }
    }

    /// A name that changes every run breaks the dashboards that track cases by name.
    pub(super) fn unstable_name(&mut self, name: &Located<String>) {
        let text = &name.value;
        let volatile = ["uuid", "now", "random", "run.id"]
            .into_iter()
            .find(|h| text.contains(&format!("{{{{{h}")) || text.contains(&format!("{{{{ {h}")));
        if let Some(helper) = volatile {
            self.warn(
                &name.referenced,
                format!("this case name uses `{helper}`, so it changes on every run"),
                Some("dashboards track cases by name: keep names stable, and put run-specific values in `params:`".into()),
            );
        }
    }

    /// The tools overwrite `pub_sub_5` with the testing-tools flag.
    pub(super) fn pub_sub_5_overwritten(&mut self, value: &Located<Value>) {
        self.warn(
            &value.referenced,
            "`pub_sub_5` will be overwritten: the Operation Tools put the testing-tools flag in pubSub5",
            Some("use another pub_sub_N for your own value; the flag check reads pubSub5".into()),
        );
    }

    /// `within` longer than the case's timeout: the case would time out first.
    pub(super) fn within_longer_than_timeout(
        &mut self,
        c: &CaseSpec,
        expect: &CaseExpect,
        timeout: Duration,
    ) {
        if let CallbackCheck::Expect(e) = &expect.callback
            && e.within > timeout
            && let Some(CallbackSpec::Some(spec)) = c.expect.callback.as_ref().map(|s| &s.value)
            && let Some(w) = &spec.within
        {
            self.warn(
                &w.referenced,
                format!(
                    "`within: {}` is longer than the case's timeout of {}: the case will time out first",
                    w.value,
                    crate::duration::format_duration(timeout)
                ),
                Some("raise `timeout:` or shorten `within:`".into()),
            );
        }
    }
}
