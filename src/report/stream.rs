//! Saved records a case at a time, so that `pitcrew report` works on records of any size in
//! the memory of their head (everything but the cases) and one case: a [`RecordFile`] reads its
//! cases from the file again each time they are gone through, and [`write_json`] writes a
//! record whose cases come one by one, exactly as [`RunRecord::write_json`] writes a whole one.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ReportError;
use super::format::{CaseRecord, FailureRecord, RunRecord, Summary, VERSION};
use super::html::Cases;
use super::record::Masking;

/// A saved JSON record: its head in memory (with no cases), its cases on disk.
pub struct RecordFile {
    /// Every field of the record but its cases (`cases` is empty).
    pub head: RunRecord,
    /// The counts of its cases, counted again from them (a record's own summary is not
    /// believed where its cases say otherwise).
    pub summary: Summary,
    path: PathBuf,
}

impl RecordFile {
    /// Reads the record at `path` once, case by case, for its head and counts.
    pub fn open(path: &Path) -> Result<RecordFile, ReportError> {
        Self::open_with(path, &mut |_| {})
    }

    /// [`open`](Self::open), showing each case to `look` as it is read.
    pub fn open_with(
        path: &Path,
        look: &mut dyn FnMut(&CaseRecord),
    ) -> Result<RecordFile, ReportError> {
        let mut summary = Summary::default();
        let head = read(path, &mut |case| {
            summary.count(&case);
            look(&case);
            Ok(())
        })?;
        summary.stray = head.stray.len();
        summary.duration_ms = head.summary.duration_ms;
        Ok(RecordFile {
            head,
            summary,
            path: path.to_path_buf(),
        })
    }

    /// Reads the cases again, in order, handing each to `each`; an error `each` returns stops
    /// the reading and is returned.
    pub fn each_case(
        &self,
        each: &mut dyn FnMut(CaseRecord) -> Result<(), String>,
    ) -> Result<(), ReportError> {
        read(&self.path, each).map(drop)
    }
}

impl RecordFile {
    /// The head as a report shows it: masked, its summary counted from its cases.
    pub fn masked_head(&self) -> RunRecord {
        let mut head = RunRecord {
            cases: Vec::new(),
            summary: self.summary,
            ..self.head.clone()
        };
        Masking::new().head(&mut head);
        head
    }

    /// The whole record with each case cut to what `report diff` reads of it (its names,
    /// place and verdict, and why it failed or was flaky), masked: a fraction of the record.
    pub fn brief(&self) -> Result<RunRecord, ReportError> {
        let mut cases = Vec::with_capacity(self.summary.total);
        self.each_brief_case(&mut |case| {
            cases.push(case);
            Ok(())
        })?;
        Ok(RunRecord {
            cases,
            ..self.masked_head()
        })
    }

    /// Reads the cases again, in order, each cut and masked as in [`brief`](Self::brief),
    /// handing each to `each` (for `report trend`, which keeps less of a case than that).
    pub fn each_brief_case(
        &self,
        each: &mut dyn FnMut(CaseRecord) -> Result<(), String>,
    ) -> Result<(), ReportError> {
        let masking = Masking::new();
        // Why it failed, as one failure whose message is what a diff says of it.
        let why = |failures: &mut Vec<FailureRecord>, error: &mut Option<String>| {
            let headline = super::junit::headline(failures, error.as_deref());
            *error = None;
            *failures = match headline.is_empty() {
                true => Vec::new(),
                false => vec![FailureRecord {
                    message: headline,
                    ..FailureRecord::default()
                }],
            };
        };
        self.each_case(&mut |mut case| {
            // Cut first: what is dropped is not worth masking.
            case.tags = Vec::new();
            case.ids = Default::default();
            case.inputs = Default::default();
            case.transcript = Vec::new();
            case.earlier_attempts.truncate(1);
            for attempt in &mut case.earlier_attempts {
                attempt.transcript = Vec::new();
            }
            masking.case(&mut case);
            why(&mut case.failures, &mut case.error);
            for attempt in &mut case.earlier_attempts {
                why(&mut attempt.failures, &mut attempt.error);
            }
            each(case)
        })
    }
}

/// A saved record's cases, masked as they are read, for a page.
impl Cases for RecordFile {
    fn each(
        &self,
        each: &mut dyn FnMut(&CaseRecord) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let masking = Masking::new();
        let mut failed = None;
        let read = self.each_case(&mut |mut case| {
            masking.case(&mut case);
            each(&case).map_err(|e| {
                let why = e.to_string();
                failed = Some(e);
                why
            })
        });
        match (failed, read) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(std::io::Error::other(e.to_string())),
            (None, Ok(())) => Ok(()),
        }
    }
}

/// Reads the record at `path`, handing its cases to `each` as they are read; returns the rest.
fn read(
    path: &Path,
    each: &mut dyn FnMut(CaseRecord) -> Result<(), String>,
) -> Result<RunRecord, ReportError> {
    let unreadable = |why: String| ReportError::Unreadable(why);
    let file =
        std::fs::File::open(path).map_err(|e| unreadable(format!("it cannot be read ({e})")))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut de = serde_json::Deserializer::from_reader(reader);
    let head = Head { each }
        .deserialize(&mut de)
        .and_then(|head| de.end().map(|()| head));
    match head {
        Ok(head) if head.version > VERSION => Err(super::format::newer(head.version)),
        Ok(head) => Ok(head),
        // A JUnit file given where a JSON record is read: say so, not where the JSON broke.
        Err(_) if starts_like_xml(path) => Err(unreadable(
            "this is XML (a JUnit report?), and this reads pitcrew's JSON run records: give the file `pitcrew run --json FILE` wrote".into(),
        )),
        // What the record says of itself (a newer version, or none) explains best.
        Err(e) => Err(std::fs::File::open(path)
            .ok()
            .map(std::io::BufReader::new)
            .and_then(RunRecord::version_problem)
            .unwrap_or_else(|| unreadable(format!("not a pitcrew JSON report: {e}")))),
    }
}

/// True when the file at `path` begins (after blanks) with `<`, as XML does.
fn starts_like_xml(path: &Path) -> bool {
    use std::io::Read;
    let mut start = [0u8; 256];
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut start));
    read.is_ok_and(|n| {
        let text = String::from_utf8_lossy(&start[..n]);
        text.trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('<')
    })
}

/// Deserializes a record's head, handing its cases to `each` instead of keeping them.
struct Head<'a> {
    each: &'a mut dyn FnMut(CaseRecord) -> Result<(), String>,
}

impl<'de> DeserializeSeed<'de> for Head<'_> {
    type Value = RunRecord;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RunRecord, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Head<'_> {
    type Value = RunRecord;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a pitcrew JSON run record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RunRecord, A::Error> {
        let mut rest = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "cases" {
                map.next_value_seed(CaseList {
                    each: &mut *self.each,
                })?;
                rest.insert(key, serde_json::Value::Array(Vec::new()));
            } else {
                rest.insert(key, map.next_value()?);
            }
        }
        serde_json::from_value(serde_json::Value::Object(rest)).map_err(serde::de::Error::custom)
    }
}

/// Deserializes a record's `cases`, a case at a time.
struct CaseList<'a> {
    each: &'a mut dyn FnMut(CaseRecord) -> Result<(), String>,
}

impl<'de> DeserializeSeed<'de> for CaseList<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CaseList<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of cases")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(case) = seq.next_element::<CaseRecord>()? {
            (self.each)(case).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

/// Writes `head` as [`RunRecord::write_json`] would with `cases` as its cases, a case at a
/// time: the head as the record's own pretty JSON, its (empty) `cases` filled in as they come.
pub fn write_json(
    head: &RunRecord,
    cases: &mut dyn Iterator<Item = Result<CaseRecord, String>>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&RunRecord {
        cases: Vec::new(),
        ..head.clone()
    })?;
    // A top-level key is indented by two spaces; a text's own quotes are escaped.
    const EMPTY: &str = "\n  \"cases\": []";
    let at = text
        .find(EMPTY)
        .ok_or_else(|| std::io::Error::other("a record without `cases`"))?;
    let (before, after) = text.as_bytes().split_at(at + EMPTY.len() - 1);
    out.write_all(before)?;
    let mut first = true;
    for case in cases {
        let case = case.map_err(std::io::Error::other)?;
        let pretty = serde_json::to_string_pretty(&case)?;
        out.write_all(if first { b"\n    " } else { b",\n    " })?;
        out.write_all(pretty.replace('\n', "\n    ").as_bytes())?;
        first = false;
    }
    if !first {
        out.write_all(b"\n  ")?;
    }
    out.write_all(after)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_written_case_by_case_is_the_record_written_whole() {
        let record = super::super::format::tests::full();
        for cases in [record.cases.clone(), Vec::new()] {
            let record = RunRecord {
                cases,
                ..record.clone()
            };
            let mut streamed = Vec::new();
            write_json(
                &record,
                &mut record.cases.clone().into_iter().map(Ok),
                &mut streamed,
            )
            .unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), record.to_json());
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("r.json");
            std::fs::write(&path, record.to_json()).unwrap();
            let file = RecordFile::open(&path).unwrap();
            assert_eq!(file.summary.total, record.cases.len());
            let mut read = Vec::new();
            file.each_case(&mut |c| {
                read.push(c);
                Ok(())
            })
            .unwrap();
            assert_eq!(read, record.cases);
            assert_eq!(
                RunRecord {
                    cases: read,
                    ..file.head
                },
                record
            );
        }
    }
}
