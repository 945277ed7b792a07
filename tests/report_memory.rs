//! `pitcrew report merge`, `html`, `diff` and `trend` work on saved records of any size a case
//! at a time: the memory they take does not grow with the record's size. This test binary counts
//! every byte allocated (its own global allocator) while each works on a 30 MB record, through
//! the library functions the commands call. One test only: the count is the process's.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use pitcrew::report::merge::{self, Input};
use pitcrew::report::stream::RecordFile;
use pitcrew::report::trend::TrendBuilder;
use pitcrew::report::{diff, html};
use serde_json::Value;

/// The system allocator, counting the bytes held now and the most held since `reset`.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(held, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes `work` held at once beyond what was held before it.
fn peak_of(work: impl FnOnce()) -> usize {
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    work();
    PEAK.load(Ordering::Relaxed).saturating_sub(before)
}

#[test]
fn saved_reports_are_worked_on_a_case_at_a_time() {
    // A real record of one failing case, its case copied 10,000 times under other names, each
    // with a 2 KB transcript: 30 MB or so.
    let run = common::run(&["wrong-payload.yaml"], &[]);
    let mut record: Value = run.json.clone().expect("a JSON report");
    let case = record["cases"][0].clone();
    let cases: Vec<Value> = (0..10_000)
        .map(|i| {
            let mut case = case.clone();
            case["name"] = Value::String(format!("case {i}"));
            let transcript = format!("{i} {}", "x".repeat(2_000));
            case["transcript"] = Value::Array(vec![Value::String(transcript)]);
            case
        })
        .collect();
    record["cases"] = Value::Array(cases);
    let dir = common::scratch("report-memory");
    let path = dir.join("big.json");
    std::fs::write(&path, serde_json::to_string_pretty(&record).unwrap()).unwrap();
    let size = std::fs::metadata(&path).unwrap().len() as usize;
    assert!(size > 25_000_000, "{size} bytes");
    drop(record);

    let merged = peak_of(|| {
        let inputs = [Input {
            name: "big.json".into(),
            path: path.clone(),
        }];
        let merged = merge::merge(&inputs, false).expect("merges");
        let mut out = Counted(0);
        merged.write(&mut out).expect("writes");
        assert!(
            out.0 > size / 2,
            "the merged record is written: {} bytes",
            out.0
        );
    });
    let page = peak_of(|| {
        let saved = RecordFile::open(&path).expect("reads");
        let head = saved.masked_head();
        let mut out = Counted(0);
        html::write_from(&head, &saved, &mut out).expect("writes");
        assert!(out.0 > size / 2, "the page is written: {} bytes", out.0);
    });
    let diffed = peak_of(|| {
        let brief = || {
            RecordFile::open(&path)
                .and_then(|f| f.brief())
                .expect("reads")
        };
        let d = diff::diff(&brief(), &brief());
        assert!(!d.regressed());
    });
    let trended = peak_of(|| {
        let mut builder = TrendBuilder::default();
        for name in ["night-1", "night-2"] {
            let saved = RecordFile::open(&path).expect("reads");
            builder.saved_run(name.into(), &saved).expect("reads");
        }
        let t = builder.finish();
        assert_eq!(t.always_failing.len(), 10_000);
    });
    eprintln!(
        "a {} MB record: merge took {} MB at most, html {} MB, diff {} MB, trend of two {} MB",
        size / 1_000_000,
        merged / 1_000_000,
        page / 1_000_000,
        diffed / 1_000_000,
        trended / 1_000_000
    );
    assert!(
        merged < size / 8,
        "merge holds {merged} bytes for a {size}-byte record"
    );
    assert!(
        page < size / 8,
        "html holds {page} bytes for a {size}-byte record"
    );
    // A diff keeps, for both records, each case's names and why it failed (not its transcript,
    // inputs or ids), and lists every change: here all 10,000 cases are still failing, the
    // most a diff can hold (a case that passed keeps less).
    assert!(
        diffed < size * 3 / 4,
        "diff holds {diffed} bytes for a {size}-byte record"
    );
    // A trend keeps a case's names, a mark and a time per run, and its last failure's reason
    // (some 450 bytes a case here, and the second run adds next to nothing), never a record:
    // two briefs, as a diff holds, would be 40 MB.
    assert!(
        trended < size / 4,
        "trend holds {trended} bytes for two {size}-byte records"
    );
}

/// A writer that only counts what it is given.
struct Counted(usize);

impl std::io::Write for Counted {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
