//! A case's requests, answers and deliveries as text, for the reports of cases that did not
//! pass. Header values whose names look secret are shown as `***` here; every other secret is
//! masked when the run record is built (`mask`).

use super::case::Entry;
use crate::mask::header_value;

/// One block of lines per entry, in the order they happened.
pub fn render(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(render_entry).collect()
}

fn headers(list: &[(String, String)]) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}: {}", header_value(k, v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_entry(entry: &Entry) -> String {
    match entry {
        Entry::Step(what) => format!("== {what}"),
        Entry::Note(what) => format!("-- {what}"),
        Entry::Exchange(e) => {
            let sent = if e.request_headers.is_empty() {
                String::new()
            } else {
                format!("\n> {}", headers(&e.request_headers))
            };
            format!(
                "> {} {}{sent}\n> {}\n< HTTP {} ({} ms)\n< {}",
                e.method,
                e.url,
                e.request_body,
                e.status,
                e.duration.as_millis(),
                e.body
            )
        }
        Entry::Delivery(d) => {
            let attempt = d
                .attempt
                .map(|a| format!(" attempt {a}"))
                .unwrap_or_default();
            let query = d
                .query
                .as_ref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let kind = if d.postback { "postback" } else { "callback" };
            let mut text = format!(
                "<= {kind} #{}{attempt} {} {}{query} at {}",
                d.seq,
                d.method,
                d.path,
                d.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            if !d.headers.is_empty() {
                text.push_str(&format!("\n<= {}", headers(&d.headers)));
            }
            text.push_str(&format!("\n<= {}\n=> {}", d.body, d.outcome()));
            if let Some(body) = &d.answer.body {
                text.push_str(&format!(" {body}"));
            }
            text
        }
    }
}
