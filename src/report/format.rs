//! The JSON run record's format: the report module's own versioned serde types, which every
//! file report reads and `pitcrew report merge|diff|html|trend` read back. A runner type never
//! appears here: a change to one cannot silently change the file; each is converted once, by
//! the `From` impls at the bottom.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ReportError;

/// The record format's version; a reader refuses a newer one.
pub const VERSION: u32 = 1;

/// One run, as every report sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub version: u32,
    pub run_id: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub started_at: DateTime<Utc>,
    /// Why the run stopped before every case ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Cancelled>,
    pub summary: Summary,
    pub suites: Vec<SuiteRecord>,
    /// Every planned case, in plan order: `summary.total` is always their number.
    pub cases: Vec<CaseRecord>,
    /// Callbacks that reached pitcrew and matched no case.
    #[serde(default)]
    pub stray: Vec<StrayRecord>,
    /// The runs merged into this record (`pitcrew report merge`), by run id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

/// The counts of a run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errored: usize,
    pub skipped: usize,
    /// Passed, but only on a later attempt.
    pub flaky: usize,
    /// Callbacks that matched no case.
    #[serde(default)]
    pub stray: usize,
    /// The run's wall time.
    pub duration_ms: u64,
}

/// One scenario file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SuiteRecord {
    pub name: String,
    pub file: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One case's verdict and everything that explains it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseRecord {
    pub name: Arc<str>,
    /// Shared by the cases of a suite (as `file` is).
    pub suite: Arc<str>,
    pub file: Arc<str>,
    pub line: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    pub status: Verdict,
    /// Passed on a later attempt after failing an earlier one.
    #[serde(default)]
    pub flaky: bool,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// How many attempts ran (0: the case never started).
    pub attempts: u32,
    #[serde(default)]
    pub failures: Vec<FailureRecord>,
    /// What broke (errored), or why it did not run (skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub ids: IdsRecord,
    #[serde(default)]
    pub inputs: InputsRecord,
    /// Requests, answers and callbacks of a case that did not pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<String>,
    /// The failed attempts before the last one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_attempts: Vec<AttemptRecord>,
    /// Wake latency in microseconds: from the arrival of the callback the case waited for to
    /// the moment the case had it (from the start of its wait, when it had come already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_us: Option<u64>,
    /// In a shard's record: the case's position in the whole plan (for `report merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
}

/// An attempt that failed before the case was run again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub status: Verdict,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub failures: Vec<FailureRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<String>,
}

impl Summary {
    /// The counts of `cases`.
    pub fn of(cases: &[CaseRecord], stray: usize, duration_ms: u64) -> Summary {
        let mut s = Summary {
            stray,
            duration_ms,
            ..Summary::default()
        };
        for case in cases {
            s.count(case);
        }
        s
    }

    /// Adds the cases `other` counts (not its strays or time).
    pub fn add(&mut self, other: &Summary) {
        self.total += other.total;
        self.passed += other.passed;
        self.failed += other.failed;
        self.errored += other.errored;
        self.skipped += other.skipped;
        self.flaky += other.flaky;
    }

    /// Counts one more case.
    pub fn count(&mut self, case: &CaseRecord) {
        self.total += 1;
        match case.status {
            Verdict::Passed => self.passed += 1,
            Verdict::Failed => self.failed += 1,
            Verdict::Errored => self.errored += 1,
            Verdict::Skipped => self.skipped += 1,
        }
        self.flaky += usize::from(case.flaky);
    }

    /// True when nothing failed or errored.
    pub fn success(&self) -> bool {
        self.failed == 0 && self.errored == 0
    }

    /// `12 passed, 1 failed, 0 errored, 0 skipped (1 flaky) in 1.23s`
    pub fn line(&self) -> String {
        let mut text = format!(
            "{} passed, {} failed, {} errored, {} skipped",
            self.passed, self.failed, self.errored, self.skipped
        );
        if self.flaky > 0 {
            text.push_str(&format!(" ({} flaky)", self.flaky));
        }
        text.push_str(&format!(" in {:.2}s", self.duration_ms as f64 / 1000.0));
        text
    }
}

/// A record written by a later pitcrew, which this one cannot read.
pub(super) fn newer(version: u32) -> ReportError {
    ReportError::Unreadable(format!(
        "record version {version} is newer than this pitcrew reads ({VERSION}); upgrade pitcrew"
    ))
}

impl RunRecord {
    /// Reads a JSON record (a `--json` report), refusing versions this pitcrew cannot read.
    pub fn from_json(text: &str) -> Result<RunRecord, ReportError> {
        Self::from_reader(|| Ok(text.as_bytes()))
    }

    /// Reads the JSON record in the file at `path`, as it streams in: the file's text is never
    /// held whole beside the record it makes.
    pub fn read(path: &std::path::Path) -> Result<RunRecord, ReportError> {
        Self::from_reader(|| {
            let file = std::fs::File::open(path)
                .map_err(|e| ReportError::Unreadable(format!("it cannot be read ({e})")))?;
            Ok(std::io::BufReader::with_capacity(1 << 20, file))
        })
    }

    /// Why the record `reader` gives cannot be read, when its `version` says: it is newer
    /// than this pitcrew, or it has none (no pitcrew record at all).
    pub(super) fn version_problem(reader: impl std::io::Read) -> Option<ReportError> {
        #[derive(Deserialize)]
        struct Version {
            version: Option<u32>,
        }
        match serde_json::from_reader::<_, Version>(reader) {
            Ok(Version { version: Some(v) }) if v > VERSION => Some(newer(v)),
            Ok(Version { version: None }) => Some(ReportError::Unreadable(
                "not a pitcrew JSON report: no `version`".into(),
            )),
            _ => None,
        }
    }

    /// [`from_json`](Self::from_json) over what `open` gives (opened again only to say why a
    /// record did not read: a newer version, or no record at all).
    fn from_reader<R: std::io::Read>(
        open: impl Fn() -> Result<R, ReportError>,
    ) -> Result<RunRecord, ReportError> {
        match serde_json::from_reader::<_, RunRecord>(open()?) {
            Ok(record) if record.version > VERSION => Err(newer(record.version)),
            Ok(record) => Ok(record),
            Err(e) => Err(Self::version_problem(open()?).unwrap_or_else(|| {
                ReportError::Unreadable(format!("not a pitcrew JSON report: {e}"))
            })),
        }
    }

    /// Writes the record as pretty JSON (the `--json` report), streamed.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }

    /// The record as pretty JSON (the `--json` report), in memory.
    pub fn to_json(&self) -> String {
        let mut bytes = Vec::new();
        // Writing to memory cannot fail, nor serializing a record (text keys only).
        let _ = self.write_json(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every expectation was checked and held.
    Passed,
    /// An expectation did not hold.
    Failed,
    /// The platform or the network broke, or the case could not be judged.
    Errored,
    /// Not run.
    Skipped,
}

impl Verdict {
    /// True for a verdict that fails the run.
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Failed | Verdict::Errored)
    }
}

/// Why the run stopped before every case ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cancelled {
    /// `--fail-fast` after a failure.
    FailFast,
    /// Ctrl-C or SIGTERM: running cases finished.
    Interrupted,
    /// A second signal: running cases were stopped too.
    Aborted,
}

impl Cancelled {
    /// As the file and the reports say it: `fail-fast`, `interrupted`, `aborted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cancelled::FailFast => "fail-fast",
            Cancelled::Interrupted => "interrupted",
            Cancelled::Aborted => "aborted",
        }
    }
}

/// One expectation that did not hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailureRecord {
    /// Which check: `conversion.status`, `callback.count`, `then[1].callback.payload`, …
    pub check: String,
    /// The path inside the checked value, when there is one (`conversion.pubSub5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub expected: String,
    pub actual: String,
    /// One line saying all of the above.
    pub message: String,
    /// `file:line:col` of the expectation in the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// The ids a case made or used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsRecord {
    pub click: Option<String>,
    pub conversion: Option<String>,
}

/// What a case's templates rendered to (for its last attempt).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputsRecord {
    pub offer: Arc<str>,
    pub member: String,
    pub event: Option<Arc<str>>,
    /// Shared by the cases that hold the same ones.
    pub params: Arc<BTreeMap<String, String>>,
}

/// A callback that reached pitcrew and matched no case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrayRecord {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub ids: StrayIds,
    /// Why it matched no case.
    pub reason: String,
}

/// The ids a stray callback carried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrayIds {
    pub callback: Option<String>,
    pub conversion: Option<String>,
    pub click: Option<String>,
}

// --- from the runner's types, once ---

impl From<crate::run::Status> for Verdict {
    fn from(status: crate::run::Status) -> Verdict {
        use crate::run::Status;
        match status {
            Status::Passed => Verdict::Passed,
            Status::Failed => Verdict::Failed,
            Status::Errored => Verdict::Errored,
            Status::Skipped => Verdict::Skipped,
        }
    }
}

impl From<crate::run::CancelReason> for Cancelled {
    fn from(reason: crate::run::CancelReason) -> Cancelled {
        use crate::run::CancelReason;
        match reason {
            CancelReason::FailFast => Cancelled::FailFast,
            CancelReason::Interrupted => Cancelled::Interrupted,
            CancelReason::Aborted => Cancelled::Aborted,
        }
    }
}

impl From<&crate::check::Failure> for FailureRecord {
    fn from(f: &crate::check::Failure) -> FailureRecord {
        FailureRecord {
            check: f.check(),
            path: f.path_text().map(str::to_string),
            expected: f.expected().to_string(),
            actual: f.actual().to_string(),
            message: f.message(),
            at: f.at_text().map(str::to_string),
        }
    }
}

impl From<&crate::run::Ids> for IdsRecord {
    fn from(ids: &crate::run::Ids) -> IdsRecord {
        IdsRecord {
            click: ids.click.clone(),
            conversion: ids.conversion.clone(),
        }
    }
}

impl From<&crate::run::Inputs> for InputsRecord {
    fn from(inputs: &crate::run::Inputs) -> InputsRecord {
        InputsRecord {
            offer: inputs.offer.clone(),
            member: inputs.member.clone(),
            event: inputs.event.clone(),
            params: inputs.params.clone(),
        }
    }
}

impl From<&crate::delivery::Stray> for StrayRecord {
    fn from(s: &crate::delivery::Stray) -> StrayRecord {
        StrayRecord {
            seq: s.seq,
            at: s.at,
            method: s.method.clone(),
            path: s.path.clone(),
            ids: StrayIds {
                callback: s.ids.callback.clone(),
                conversion: s.ids.conversion.clone(),
                click: s.ids.click.clone(),
            },
            reason: s.reason.clone(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A record with every field set, as a run writes it.
    pub(in crate::report) fn full() -> RunRecord {
        let at: DateTime<Utc> = "2026-01-01T00:00:00.123Z".parse().unwrap();
        let failure = FailureRecord {
            check: "then[1].callback.count".into(),
            path: Some("conversion.pubSub1".into()),
            expected: "1".into(),
            actual: "2".into(),
            message: "then[1] callback.count: expected 1, got 2".into(),
            at: Some("t.yaml:7:9".into()),
        };
        let case = CaseRecord {
            name: "a case".into(),
            suite: "Suite".into(),
            file: "t.yaml".into(),
            line: 3,
            tags: vec!["go-live".into()],
            status: Verdict::Failed,
            flaky: false,
            duration_ms: 12,
            started_at: Some(at),
            attempts: 2,
            failures: vec![failure.clone()],
            error: Some("an error".into()),
            ids: IdsRecord {
                click: Some("k".into()),
                conversion: Some("c".into()),
            },
            inputs: InputsRecord {
                offer: "demo-offer".into(),
                member: "m".into(),
                event: Some("install".into()),
                params: Arc::new(BTreeMap::from([("cnv_amount".into(), "1.50".into())])),
            },
            transcript: vec!["> POST …".into()],
            earlier_attempts: vec![AttemptRecord {
                attempt: 1,
                status: Verdict::Errored,
                duration_ms: 3,
                started_at: Some(at),
                failures: vec![failure],
                error: Some("timed out".into()),
                transcript: vec!["< HTTP 503".into()],
            }],
            wake_us: Some(42),
            position: None,
        };
        RunRecord {
            version: VERSION,
            run_id: "r".into(),
            target: "sandbox".into(),
            shard: Some("1/2".into()),
            started_at: at,
            cancelled: Some(Cancelled::FailFast),
            summary: Summary::of(std::slice::from_ref(&case), 1, 99),
            suites: vec![SuiteRecord {
                name: "Suite".into(),
                file: "t.yaml".into(),
                tags: vec![],
            }],
            cases: vec![case],
            stray: vec![StrayRecord {
                seq: 7,
                at,
                method: "POST".into(),
                path: "/callbacks".into(),
                ids: StrayIds {
                    callback: Some("cb".into()),
                    conversion: Some("c".into()),
                    click: None,
                },
                reason: "refused (401): wrong X-Api-Token".into(),
            }],
            merged_from: vec!["r0".into()],
        }
    }

    /// What is written is read back, field for field; the words the file uses for verdicts
    /// and cancellations are its own.
    #[test]
    fn a_record_reads_back_as_written() {
        let record = full();
        let text = record.to_json();
        assert_eq!(RunRecord::from_json(&text).unwrap(), record);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["cancelled"], "fail-fast");
        assert_eq!(json["cases"][0]["status"], "failed");
        assert_eq!(json["cases"][0]["earlier_attempts"][0]["status"], "errored");
        assert_eq!(json["stray"][0]["ids"]["callback"], "cb");
    }

    #[test]
    fn a_newer_record_or_none_at_all_is_refused() {
        let mut json: serde_json::Value = serde_json::from_str(&full().to_json()).unwrap();
        json["version"] = serde_json::json!(VERSION + 1);
        let newer = RunRecord::from_json(&json.to_string()).unwrap_err();
        assert!(
            newer.to_string().contains("newer than this pitcrew reads"),
            "{newer}"
        );
        let junk = RunRecord::from_json("{\"cases\": []}").unwrap_err();
        assert!(junk.to_string().contains("no `version`"), "{junk}");
    }
}
