//! The HTML report: one self-contained page (inline style and script, no external asset, works
//! offline as a CI artifact), rendered from the run record. The summary first, then what
//! failed with expected vs actual and `file:line`, the flaky cases with their earlier
//! attempts, and every case by suite, each foldable to its inputs, ids and exchanges.
//!
//! The record is masked already; every text is HTML-escaped here.

use std::fmt::Write;

use super::format::FailureRecord;
use super::format::Verdict;
use super::format::{AttemptRecord, CaseRecord, RunRecord};

/// Writes the page for `record` to `out`, a case at a time.
pub fn write(record: &RunRecord, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    write_from(record, &record.cases, out)
}

/// The cases a page is written from, gone through once for each part of the page: a record's
/// own, or those of a saved record, read from its file again each time.
pub trait Cases {
    /// Hands each case to `each`, in order; the first error stops and is returned.
    fn each(&self, each: &mut dyn FnMut(&CaseRecord) -> std::io::Result<()>)
    -> std::io::Result<()>;
}

impl Cases for Vec<CaseRecord> {
    fn each(
        &self,
        each: &mut dyn FnMut(&CaseRecord) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.iter().try_for_each(each)
    }
}

/// Writes the page for `head` (a record whose `summary` counts `cases`, its own `cases` left
/// aside) to `out`, a case at a time: what the page holds of the cases is never in memory at
/// once.
pub fn write_from(
    head: &RunRecord,
    cases: &dyn Cases,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut page = Page(String::with_capacity(64 * 1024), out);
    page.head(head);
    page.summary(head);
    page.failures(head, cases)?;
    page.flaky(head, cases)?;
    page.cases(head, cases)?;
    page.stray(head);
    page.0.push_str("</main>\n<script>\n");
    page.0.push_str(SCRIPT);
    page.0.push_str("</script>\n</body>\n</html>\n");
    page.flush()
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn status_word(case: &CaseRecord) -> &'static str {
    match case.status {
        Verdict::Passed if case.flaky => "flaky",
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
        Verdict::Errored => "errored",
        Verdict::Skipped => "skipped",
    }
}

fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}

/// Cases of one suite in a row, as the page groups them.
struct Group {
    suite: std::sync::Arc<str>,
    file: std::sync::Arc<str>,
    cases: usize,
    bad: usize,
}

impl Group {
    fn add(&mut self, case: &CaseRecord) {
        self.cases += 1;
        self.bad += usize::from(case.status.is_failure());
    }
}

/// The page as it is written: a buffer, handed to the writer a case at a time.
struct Page<'a>(String, &'a mut dyn std::io::Write);

impl Page<'_> {
    /// Hands the buffer to the writer.
    fn flush(&mut self) -> std::io::Result<()> {
        self.1.write_all(self.0.as_bytes())?;
        self.0.clear();
        Ok(())
    }

    fn head(&mut self, record: &RunRecord) {
        let s = &record.summary;
        let verdict = if s.success() {
            format!("{} passed", s.passed)
        } else {
            format!("{} failed, {} errored", s.failed, s.errored)
        };
        let verdict = match record.merged_from.len() {
            n if n > 1 => format!("{verdict} · {n} reports merged"),
            _ => verdict,
        };
        let _ = write!(
            self.0,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>pitcrew: {} · {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
            esc(&verdict),
            esc(&record.target)
        );
    }

    fn summary(&mut self, record: &RunRecord) {
        let s = &record.summary;
        let overall = if s.success() { "passed" } else { "failed" };
        let _ = write!(
            self.0,
            "<header class=\"{overall}\">\n<h1>pitcrew run on {}</h1>\n<p class=\"meta\">run <code>{}</code> · started {} · {}",
            esc(&record.target),
            esc(&record.run_id),
            esc(&record
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            seconds(s.duration_ms)
        );
        if let Some(shard) = &record.shard {
            let _ = write!(self.0, " · shard {}", esc(shard));
        }
        if record.merged_from.len() > 1 {
            let _ = write!(
                self.0,
                " · merged from {} reports (runs {})",
                record.merged_from.len(),
                esc(&record.merged_from.join(", "))
            );
        }
        self.0.push_str("</p>\n<p class=\"counts\">");
        let counts = [
            ("total", s.total),
            ("passed", s.passed),
            ("failed", s.failed),
            ("errored", s.errored),
            ("skipped", s.skipped),
            ("flaky", s.flaky),
            ("stray", s.stray),
        ];
        for (name, n) in counts {
            let quiet = if n == 0 && name != "total" && name != "passed" {
                " zero"
            } else {
                ""
            };
            let _ = write!(
                self.0,
                "<span class=\"badge {name}{quiet}\"><b>{n}</b> {name}</span>"
            );
        }
        self.0.push_str("</p>\n</header>\n<main>\n");
        if let Some(why) = &record.cancelled {
            let _ = writeln!(
                self.0,
                "<p class=\"notice\">The run stopped early ({}): the cases it did not start are skipped.</p>",
                esc(why.as_str())
            );
        }
    }

    /// What failed. Cases whose first failure reads alike are one kind: up to [`KINDS`]
    /// kinds, each is one foldable line (`×25 callback.payload …`) holding its cases; more
    /// kinds (or none alike), each case is a line with its first failure. Folded when more
    /// than [`OPEN_FAILURES`] cases failed.
    fn failures(&mut self, record: &RunRecord, cases: &dyn Cases) -> std::io::Result<()> {
        let failing = record.summary.failed + record.summary.errored;
        if failing == 0 {
            return Ok(());
        }
        let mut kinds: Vec<(String, usize)> = Vec::new();
        let mut by_text: std::collections::HashMap<String, usize> = Default::default();
        cases.each(&mut |case| {
            if case.status.is_failure() {
                let text = super::junit::headline(&case.failures, case.error.as_deref());
                match by_text.get(&text) {
                    Some(&i) => kinds[i].1 += 1,
                    None => {
                        by_text.insert(text.clone(), kinds.len());
                        kinds.push((text, 1));
                    }
                }
            }
            Ok(())
        })?;
        let _ = writeln!(
            self.0,
            "<section id=\"failures\">\n<h2>What failed ({failing})</h2>"
        );
        let open = failing <= OPEN_FAILURES;
        if kinds.len() < failing && kinds.len() <= KINDS {
            let _ = writeln!(
                self.0,
                "<p class=\"meta\">{} kind(s) of failure: open one for its cases.</p>",
                kinds.len()
            );
            // A pass over the cases for each kind: a saved report is read again, never held.
            for (i, (text, n)) in kinds.iter().enumerate() {
                let _ = writeln!(
                    self.0,
                    "<details class=\"kind\"{}>\n<summary><b class=\"bad\">×{n}</b> {}</summary>",
                    if open { " open" } else { "" },
                    esc(text)
                );
                cases.each(&mut |case| {
                    let text = case
                        .status
                        .is_failure()
                        .then(|| super::junit::headline(&case.failures, case.error.as_deref()));
                    if text.and_then(|t| by_text.get(&t).copied()) == Some(i) {
                        self.case(case, *n == 1, true);
                        if self.0.len() > 32 * 1024 {
                            self.flush()?;
                        }
                    }
                    Ok(())
                })?;
                self.0.push_str("</details>\n");
            }
        } else {
            cases.each(&mut |case| {
                if case.status.is_failure() {
                    let text = super::junit::headline(&case.failures, case.error.as_deref());
                    self.case_of_kind(case, open, true, Some(&text));
                    if self.0.len() > 32 * 1024 {
                        self.flush()?;
                    }
                }
                Ok(())
            })?;
        }
        self.0.push_str("</section>\n");
        self.flush()
    }

    fn flaky(&mut self, record: &RunRecord, cases: &dyn Cases) -> std::io::Result<()> {
        let flaky = record.summary.flaky;
        if flaky == 0 {
            return Ok(());
        }
        let _ = writeln!(
            self.0,
            "<section id=\"flaky\">\n<h2>Flaky: passed on a later attempt ({flaky})</h2>"
        );
        cases.each(&mut |case| {
            if case.flaky {
                self.case(case, false, true);
                if self.0.len() > 32 * 1024 {
                    self.flush()?;
                }
            }
            Ok(())
        })?;
        self.0.push_str("</section>\n");
        Ok(())
    }

    fn cases(&mut self, record: &RunRecord, cases: &dyn Cases) -> std::io::Result<()> {
        let _ = write!(
            self.0,
            "<section id=\"cases\">\n<h2>Every case ({})</h2>\n<p class=\"filter\">\
             <input id=\"q\" type=\"search\" placeholder=\"Filter: name, tag, file or failure\" aria-label=\"Filter cases by name, tag, file or failure\">",
            record.summary.total
        );
        for status in ["passed", "flaky", "failed", "errored", "skipped"] {
            let _ = write!(
                self.0,
                " <label><input type=\"checkbox\" name=\"st\" value=\"{status}\" checked> {status}</label>"
            );
        }
        self.0.push_str("</p>\n");
        // Cases of one suite in a row are one group, headed by its counts: counted first.
        let mut groups: Vec<Group> = Vec::new();
        cases.each(&mut |case| {
            match groups.last_mut() {
                Some(g) if g.suite == case.suite && g.file == case.file => g.add(case),
                _ => {
                    let mut group = Group {
                        suite: case.suite.clone(),
                        file: case.file.clone(),
                        cases: 0,
                        bad: 0,
                    };
                    group.add(case);
                    groups.push(group);
                }
            }
            Ok(())
        })?;
        // A few cases read at a glance; thousands are folded by suite (the filter opens them).
        let unfold = if record.summary.total <= OPEN_SUITES_UP_TO {
            " open"
        } else {
            ""
        };
        let mut groups = groups.into_iter();
        let mut left = 0;
        cases.each(&mut |case| {
            if left == 0
                && let Some(group) = groups.next()
            {
                let _ = writeln!(
                    self.0,
                    "<details class=\"suite\"{unfold}>\n<summary><b>{}</b> <span class=\"where\">{}</span> <span class=\"tally\">{} case(s){}</span></summary>",
                    esc(&group.suite),
                    esc(&group.file),
                    group.cases,
                    if group.bad > 0 {
                        format!(", <span class=\"bad\">{} not passed</span>", group.bad)
                    } else {
                        String::new()
                    }
                );
                left = group.cases;
            }
            self.case(case, false, false);
            if left > 0 {
                left -= 1;
                if left == 0 {
                    self.0.push_str("</details>\n");
                }
            }
            if self.0.len() > 32 * 1024 {
                self.flush()?;
            }
            Ok(())
        })?;
        self.0.push_str("</section>\n");
        Ok(())
    }

    /// One case, folded to its summary line unless `open`; named with its suite when
    /// `with_suite` (outside its suite's group).
    fn case(&mut self, case: &CaseRecord, open: bool, with_suite: bool) {
        self.case_of_kind(case, open, with_suite, None);
    }

    /// [`Page::case`], with its first failure (`first`) shown under its summary line while it
    /// is folded.
    fn case_of_kind(
        &mut self,
        case: &CaseRecord,
        open: bool,
        with_suite: bool,
        first: Option<&str>,
    ) {
        let word = status_word(case);
        let name = if with_suite {
            format!("{} › {}", case.suite, case.name)
        } else {
            case.name.to_string()
        };
        // What the filter matches: the names, the file, the tags and what failed.
        let mut text = format!(
            "{} {} {} {}",
            case.suite,
            case.name,
            case.file,
            case.tags.join(" ")
        );
        for f in &case.failures {
            text.push(' ');
            text.push_str(&f.message);
        }
        if let Some(e) = &case.error {
            text.push(' ');
            text.push_str(e);
        }
        let first = first
            .map(|first| format!("<span class=\"first\">✗ {}</span>", esc(first)))
            .unwrap_or_default();
        let _ = write!(
            self.0,
            "<details class=\"case {word}\" data-status=\"{word}\" data-name=\"{}\"{}>\n<summary><span class=\"st {word}\">{word}</span> <span class=\"name\">{}</span> <span class=\"where\">{}:{}</span> <span class=\"time\">{}</span>{first}</summary>\n<div class=\"body\">\n",
            esc(&text.to_lowercase()),
            if open { " open" } else { "" },
            esc(&name),
            esc(&case.file),
            case.line,
            seconds(case.duration_ms)
        );
        if let Some(e) = &case.error {
            let _ = writeln!(self.0, "<p class=\"error\">{}</p>", esc(e));
        }
        self.failure_list(&case.failures);
        self.facts(case);
        self.transcript(&case.transcript, "Requests, answers and callbacks");
        for attempt in &case.earlier_attempts {
            self.attempt(attempt);
        }
        self.0.push_str("</div>\n</details>\n");
    }

    fn failure_list(&mut self, failures: &[FailureRecord]) {
        for f in failures {
            let _ = write!(
                self.0,
                "<div class=\"failure\"><p class=\"message\">✗ {}</p>\n<dl><dt>expected</dt><dd><code>{}</code></dd><dt>actual</dt><dd><code>{}</code></dd>",
                esc(&f.message),
                esc(&f.expected),
                esc(&f.actual)
            );
            if let Some(at) = &f.at {
                let _ = write!(
                    self.0,
                    "<dt>written at</dt><dd><code>{}</code></dd>",
                    esc(at)
                );
            }
            self.0.push_str("</dl></div>\n");
        }
    }

    fn facts(&mut self, case: &CaseRecord) {
        let mut facts: Vec<(&str, String)> = Vec::new();
        if let Some(at) = case.started_at {
            facts.push((
                "started",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ));
        }
        facts.push(("attempts", case.attempts.to_string()));
        if !case.tags.is_empty() {
            facts.push(("tags", case.tags.join(", ")));
        }
        if let Some(click) = &case.ids.click {
            facts.push(("click", click.clone()));
        }
        if let Some(conversion) = &case.ids.conversion {
            facts.push(("conversion", conversion.clone()));
        }
        let inputs = &case.inputs;
        if !inputs.offer.is_empty() {
            facts.push(("offer", inputs.offer.to_string()));
        }
        if !inputs.member.is_empty() {
            facts.push(("member", inputs.member.clone()));
        }
        if let Some(event) = &inputs.event {
            facts.push(("event", event.to_string()));
        }
        for (k, v) in inputs.params.iter() {
            facts.push(("param", format!("{k} = {v}")));
        }
        self.0.push_str("<dl class=\"facts\">");
        for (name, value) in facts {
            let _ = write!(
                self.0,
                "<dt>{name}</dt><dd><code>{}</code></dd>",
                esc(&value)
            );
        }
        self.0.push_str("</dl>\n");
    }

    fn transcript(&mut self, transcript: &[String], title: &str) {
        if transcript.is_empty() {
            return;
        }
        let _ = write!(
            self.0,
            "<details class=\"exchanges\"><summary>{title} ({})</summary>",
            transcript.len()
        );
        for entry in transcript {
            let _ = write!(self.0, "<pre>{}</pre>", esc(&readable(entry)));
        }
        self.0.push_str("</details>\n");
    }

    fn attempt(&mut self, attempt: &AttemptRecord) {
        let word = match attempt.status {
            Verdict::Errored => "errored",
            _ => "failed",
        };
        let _ = writeln!(
            self.0,
            "<details class=\"attempt\"><summary>attempt {} <span class=\"st {word}\">{word}</span> <span class=\"time\">{}</span></summary>",
            attempt.attempt,
            seconds(attempt.duration_ms)
        );
        if let Some(e) = &attempt.error {
            let _ = writeln!(self.0, "<p class=\"error\">{}</p>", esc(e));
        }
        self.failure_list(&attempt.failures);
        self.transcript(&attempt.transcript, "Its requests, answers and callbacks");
        self.0.push_str("</details>\n");
    }

    fn stray(&mut self, record: &RunRecord) {
        if record.stray.is_empty() {
            return;
        }
        let _ = writeln!(
            self.0,
            "<section id=\"stray\">\n<h2>Stray callbacks ({}): reached pitcrew, matched no case</h2>\n<table><thead><tr><th>at</th><th>request</th><th>conversion</th><th>why</th></tr></thead><tbody>",
            record.stray.len()
        );
        for stray in &record.stray {
            let _ = writeln!(
                self.0,
                "<tr><td>{}</td><td><code>{} {}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&stray
                    .at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                esc(&stray.method),
                esc(&stray.path),
                esc(stray.ids.conversion.as_deref().unwrap_or("–")),
                esc(&stray.reason)
            );
        }
        self.0.push_str("</tbody></table>\n</section>\n");
    }
}

/// Up to this many kinds of failure, each is a foldable line holding its cases.
const KINDS: usize = 20;
/// Up to this many failing cases are shown unfolded; more are folded to a line each.
const OPEN_FAILURES: usize = 10;
/// Up to this many cases in all, every suite of "Every case" is shown unfolded.
const OPEN_SUITES_UP_TO: usize = 200;

/// A transcript entry with its JSON bodies indented: each line `PREFIX JSON` (`> {…}`,
/// `<= {…}`, `=> HTTP 200 {…}`) longer than a glance whose JSON is an object or an array is
/// shown over lines. The text is re-indented as it is, never parsed and written again: keys
/// keep their order, a repeated key stays repeated, `10.50` stays `10.50`, and an escape
/// stays escaped (what was masked stays masked).
fn readable(entry: &str) -> String {
    let mut out = String::with_capacity(entry.len() * 2);
    for line in entry.lines() {
        let start = line.find(['{', '[']);
        let json = start.filter(|&at| {
            line.len() > 80 && serde_json::from_str::<serde::de::IgnoredAny>(&line[at..]).is_ok()
        });
        match json {
            Some(at) => {
                out.push_str(&line[..at]);
                indent(&line[at..], &mut out);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// Re-indents valid JSON `text` into `out`, two spaces a level, keeping every token as it is.
fn indent(text: &str, out: &mut String) {
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', depth * 2));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                // An empty one stays `{}` / `[]`.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    newline(out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
}

const STYLE: &str = r#":root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --err: #8250df; --warn: #9a6700; --mute: #6e7781; --line: #d0d7de; --soft: #f6f8fa; }
@media (prefers-color-scheme: dark) { :root { --ok: #3fb950; --bad: #f85149; --err: #a371f7; --warn: #d29922; --mute: #8b949e; --line: #30363d; --soft: #161b22; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { padding: 1.2rem 2rem; border-bottom: 4px solid var(--ok); background: var(--soft); }
header.failed { border-bottom-color: var(--bad); }
h1 { margin: 0 0 .3rem; font-size: 1.4rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .6rem; }
main { padding: 0 2rem 2rem; max-width: 80rem; }
code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { white-space: pre-wrap; word-break: break-all; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .6rem; margin: .4rem 0; }
.meta, .where, .time, .tally { color: var(--mute); }
.time { float: right; }
.counts { margin: .6rem 0 0; display: flex; flex-wrap: wrap; gap: .4rem; }
.badge { border: 1px solid var(--line); border-radius: 999px; padding: .1rem .7rem; }
.badge.passed b { color: var(--ok); } .badge.failed b, .bad { color: var(--bad); } .badge.errored b { color: var(--err); } .badge.flaky b, .badge.stray b { color: var(--warn); }
.badge.zero { opacity: .55; }
.notice { border-left: 4px solid var(--warn); padding: .4rem .8rem; background: var(--soft); }
details.case { border: 1px solid var(--line); border-left-width: 4px; border-radius: 6px; margin: .35rem 0; }
details.case.passed { border-left-color: var(--ok); } details.case.failed { border-left-color: var(--bad); }
details.case.errored { border-left-color: var(--err); } details.case.flaky { border-left-color: var(--warn); } details.case.skipped { border-left-color: var(--mute); }
details > summary { cursor: pointer; padding: .35rem .6rem; }
details.suite { margin: .6rem 0; } details.suite > summary { padding-left: 0; }
.body { padding: 0 .8rem .6rem; }
.st { display: inline-block; min-width: 4.2rem; font-size: .8rem; font-weight: 600; text-transform: uppercase; }
.st.passed { color: var(--ok); } .st.failed { color: var(--bad); } .st.errored { color: var(--err); } .st.flaky { color: var(--warn); } .st.skipped { color: var(--mute); }
.failure { border-left: 3px solid var(--bad); padding: .1rem .8rem; margin: .5rem 0; }
.message, .error { font-weight: 600; margin: .3rem 0; } .error { color: var(--err); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .3rem 0; }
dt { color: var(--mute); } dd { margin: 0; overflow-wrap: anywhere; }
.attempt, .exchanges { margin: .4rem 0; } .attempt { border-left: 3px solid var(--warn); padding-left: .5rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; border-bottom: 1px solid var(--line); padding: .3rem .5rem; vertical-align: top; }
.filter { display: flex; flex-wrap: wrap; gap: .8rem; align-items: center; }
.first { display: block; margin: .15rem 0 0 4.6rem; color: var(--bad); font-size: .9rem; overflow-wrap: anywhere; }
details[open] > summary .first { display: none; }
details.kind { border: 1px solid var(--line); border-left: 4px solid var(--bad); border-radius: 6px; margin: .35rem 0; }
details.kind > .case { margin: .35rem .6rem; }
.filter input[type=search] { padding: .3rem .5rem; min-width: 18rem; border: 1px solid var(--line); border-radius: 6px; background: transparent; color: inherit; }
"#;

const SCRIPT: &str = r##"(function () {
  "use strict";
  var query = document.getElementById("q");
  if (!query) { return; }
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name=st]"));
  var suites = Array.prototype.slice.call(document.querySelectorAll("#cases details.suite"));
  function apply() {
    var text = query.value.trim().toLowerCase();
    var shown = {};
    boxes.forEach(function (b) { shown[b.value] = b.checked; });
    suites.forEach(function (suite) {
      var any = false;
      suite.querySelectorAll("details.case").forEach(function (c) {
        var ok = shown[c.dataset.status] && (text === "" || c.dataset.name.indexOf(text) >= 0);
        c.hidden = !ok;
        any = any || ok;
      });
      suite.hidden = !any;
      // A search opens the suites it finds cases in.
      if (text !== "" && any) { suite.open = true; }
    });
  }
  query.addEventListener("input", apply);
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  // A link can carry a filter: report.html#q=purchase
  var hash = window.location.hash;
  if (hash.indexOf("#q=") === 0) {
    query.value = decodeURIComponent(hash.slice(3));
    apply();
  }
})();
"##;

#[cfg(test)]
mod tests {
    use super::esc;

    /// Bodies are indented as they are: key order, repeated keys, number spelling and
    /// escapes are kept.
    #[test]
    fn transcripts_are_indented_not_rewritten() {
        let line = r#"<= {"z":1,"a":{"amount":10.50,"amount":"x\"y\u00e9","e":[],"o":{}},"big":123456789012345678901234567890}"#;
        let shown = super::readable(&format!("> POST /x\n{line}\nplain"));
        assert_eq!(
            shown,
            "> POST /x\n<= {\n  \"z\": 1,\n  \"a\": {\n    \"amount\": 10.50,\n    \"amount\": \"x\\\"y\\u00e9\",\n    \"e\": [],\n    \"o\": {}\n  },\n  \"big\": 123456789012345678901234567890\n}\nplain"
        );
        // Not JSON, or short: as it is.
        assert_eq!(super::readable("=> HTTP 500 {oops"), "=> HTTP 500 {oops");
    }

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(
            esc(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
