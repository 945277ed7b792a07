//! A case's requests, answers and deliveries as text, for the reports of cases that did not
//! pass. Header values whose names look secret are shown as `***` here; every other secret is
//! masked when the run record is built (`mask`).

use super::case::Entry;
use crate::mask::header_value;

/// One block of lines per entry, in the order they happened. Deliveries are numbered within
/// the case (`callback #1`, `postback #1`), not by the run's or the log's sequence.
pub fn render(entries: &[Entry]) -> Vec<String> {
    let mut counted = Counted::default();
    entries
        .iter()
        .map(|e| render_entry(e, &mut counted))
        .collect()
}

/// How many callbacks and postbacks a transcript has shown so far.
#[derive(Default)]
struct Counted {
    callbacks: u32,
    postbacks: u32,
}

fn headers(list: &[(String, String)]) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}: {}", header_value(k, v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_entry(entry: &Entry, counted: &mut Counted) -> String {
    match entry {
        Entry::Step(what) => format!("== {what}"),
        Entry::Note(what) => format!("-- {what}"),
        Entry::Exchange(e) => {
            let sent = if e.request_headers.is_empty() {
                String::new()
            } else {
                format!("\n> {}", headers(&e.request_headers))
            };
            let waited: String = crate::platform::pace::describe(&e.waits)
                .into_iter()
                .map(|line| format!("\n{line}"))
                .collect();
            format!(
                "> {} {}{sent}\n> {}{waited}\n< HTTP {} ({} ms)\n< {}",
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
            let (kind, n) = match d.postback {
                true => ("postback", &mut counted.postbacks),
                false => ("callback", &mut counted.callbacks),
            };
            *n += 1;
            let mut text = format!(
                "<= {kind} #{n}{attempt} {} {}{query} at {}",
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
