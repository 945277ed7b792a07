use super::*;
use crate::report::format::{AttemptRecord, FailureRecord};
use proptest::prelude::*;

/// A case in one run, from its mark (`.`, `~`, `F`, `E`, `s`), taking `ms`.
fn case_record(name: &str, mark: char, ms: u64) -> CaseRecord {
    let mut case = crate::report::format::tests::full().cases.remove(0);
    let (status, flaky) = match mark {
        '.' => (Verdict::Passed, false),
        '~' => (Verdict::Passed, true),
        'F' => (Verdict::Failed, false),
        'E' => (Verdict::Errored, false),
        's' => (Verdict::Skipped, false),
        other => panic!("no mark {other}"),
    };
    let failure = |message: &str| FailureRecord {
        message: message.into(),
        ..FailureRecord::default()
    };
    case.name = name.into();
    case.suite = "S".into();
    case.status = status;
    case.flaky = flaky;
    case.duration_ms = ms;
    case.error = (status == Verdict::Errored).then(|| format!("{name} broke"));
    case.failures = match status {
        Verdict::Failed => vec![failure(&format!("{name} failed"))],
        _ => Vec::new(),
    };
    case.earlier_attempts = match flaky {
        true => vec![AttemptRecord {
            attempt: 1,
            status: Verdict::Failed,
            duration_ms: 1,
            started_at: None,
            failures: vec![failure("first try")],
            error: None,
            transcript: Vec::new(),
        }],
        false => Vec::new(),
    };
    case
}

/// Runs from rows of marks, one row per case as the report shows them (`..~F-`), each case
/// taking `ms(case, run)`; run `r` starts on day `r + 1`.
fn runs_with(rows: &[(&str, &str)], ms: impl Fn(usize, usize) -> u64) -> Vec<RunRecord> {
    let n = rows.iter().map(|(_, marks)| marks.len()).max().unwrap_or(0);
    (0..n)
        .map(|r| {
            let cases: Vec<CaseRecord> = rows
                .iter()
                .enumerate()
                .filter_map(|(c, (name, marks))| {
                    let mark = marks.chars().nth(r).unwrap_or('-');
                    (mark != '-').then(|| case_record(name, mark, ms(c, r)))
                })
                .collect();
            let mut record = crate::report::format::tests::full();
            record.started_at = format!("2026-01-{:02}T03:00:00Z", r + 1).parse().unwrap();
            record.summary = Summary::of(&cases, 0, 1000);
            record.cases = cases;
            record
        })
        .collect()
}

fn trend_of(runs: &[RunRecord]) -> Trend {
    let names: Vec<String> = (1..=runs.len())
        .map(|r| format!("night-{r}.json"))
        .collect();
    let named: Vec<(&str, &RunRecord)> = names.iter().map(String::as_str).zip(runs).collect();
    trend(&named)
}

fn names(t: &Trend, indices: impl IntoIterator<Item = usize>) -> Vec<&str> {
    indices.into_iter().map(|i| &*t.cases[i].name).collect()
}

#[test]
fn cases_fall_into_sections_by_how_often_they_were_unstable_and_when() {
    let t = trend_of(&runs_with(
        &[
            ("steady", "...."),
            ("breaks", "..FF"),
            ("fixed", "FF.."),
            ("turns flaky", ".~~~"),
            ("broken", "FEFF"),
            ("new", "--.F"),
            ("gone", "..--"),
            ("skipped", "s.sF"),
        ],
        |_, _| 10,
    ));
    assert_eq!(t.cases.len(), 8);
    assert_eq!(
        names(&t, t.flakier.iter().map(|f| f.case)),
        ["breaks", "skipped", "turns flaky"],
        "0 of 2 → 2 of 2 and 0 of 1 → 1 of 1 rose most; `new` has no earlier runs"
    );
    assert_eq!(
        (t.flakier[2].before, t.flakier[2].after),
        (
            Rate {
                unstable: 1,
                ran: 2
            },
            Rate {
                unstable: 2,
                ran: 2
            }
        )
    );
    assert_eq!(names(&t, t.always_failing.clone()), ["broken"]);
    assert_eq!(
        names(&t, t.flaky.clone()),
        ["turns flaky", "breaks", "fixed", "skipped", "new"],
        "highest rate first, then the most unstable runs, then the order first seen; a skipped run is not counted: `skipped` is 1 of 2"
    );
    assert!(t.slower.is_empty());
    let case = |name: &str| t.cases.iter().find(|c| &*c.name == name).unwrap();
    assert_eq!(case("new").marks(), "--.F");
    assert!(case("new").is_new() && !case("new").is_gone());
    assert!(case("gone").is_gone() && !case("gone").is_new());
    assert_eq!(
        case("turns flaky").why,
        Some((3, "attempt 1 failed: first try".into()))
    );
    assert_eq!(case("broken").why, Some((3, "broken failed".into())));
    assert_eq!(case("broken").count(Outcome::Errored), 1);
}

#[test]
fn slower_is_a_later_median_at_least_half_again_and_100_ms_longer() {
    // Each case's times in its four runs.
    let times: [(&str, [u64; 4]); 5] = [
        ("much slower", [100, 120, 400, 500]),
        ("just slower", [200, 200, 300, 300]),
        ("short and noisy", [10, 10, 30, 30]),
        ("long, a little slower", [1000, 1000, 1400, 1400]),
        ("faster", [500, 500, 100, 100]),
    ];
    let rows: Vec<(&str, &str)> = times.iter().map(|(n, _)| (*n, "....")).collect();
    let t = trend_of(&runs_with(&rows, |c, r| times[c].1[r]));
    assert_eq!(
        t.slower,
        [
            Slower {
                case: 0,
                before_ms: 110,
                after_ms: 450
            },
            Slower {
                case: 1,
                before_ms: 200,
                after_ms: 300
            }
        ],
        "worst first"
    );
}

#[test]
fn only_passing_runs_are_timed_and_the_middle_of_an_odd_number_is_left_out() {
    // A failure's time (a timeout) is not a slowdown; nor is one slow run in the middle.
    let t = trend_of(&runs_with(
        &[("times out", "..FF"), ("slow once", ".....")],
        |c, r| match (c, r) {
            (0, 2..) => 30_000,
            (1, 2) => 30_000,
            _ => 100,
        },
    ));
    assert!(t.slower.is_empty(), "{:?}", t.slower);
    assert_eq!(halves(5), (0..2, 3..5));
    assert_eq!(halves(2), (0..1, 1..2));
    assert_eq!(t.cases[1].median_ms(0..5), Some(100));
    assert_eq!(t.cases[0].median_ms(0..4), Some(100));
    assert_eq!(t.cases[0].median_ms(2..4), None);
    let two = trend_of(&runs_with(&[("even", "....")], |_, r| [100, 301, 0, 0][r]));
    assert_eq!(
        two.cases[0].median_ms(0..2),
        Some(200),
        "the middle two's midpoint"
    );
}

#[test]
fn the_text_says_the_runs_pass_rates_and_each_section() {
    let t = trend_of(&runs_with(
        &[
            ("breaks", "..FF"),
            ("broken", "FFFF"),
            ("new one", "--.."),
            ("ok", "...."),
        ],
        |c, r| if c == 3 && r >= 2 { 900 } else { 100 },
    ));
    let text = text(&t);
    let expected = "\
4 runs, 4 cases: 1 slower, 1 flakier, 1 always failing, 1 flaky
from night-1.json (2026-01-01 03:00) to night-4.json (2026-01-04 03:00 UTC); cases 1 new
pass rate by run: 67% 67% 50% 50%
marks, oldest run first: . passed  ~ flaky (passed on a retry)  F failed  E errored  s skipped  - not in that run

Got slower (1):
  ....  S › ok: 100 ms → 900 ms (×9.0)  at t.yaml:3

Got flakier (1):
  ..FF  S › breaks: unstable in 0 of 2 earlier runs, 2 of 2 later  at t.yaml:3

Always failing (1):
  FFFF  S › broken: failing in 4 of 4 runs  at t.yaml:3
      broken failed

Flaky (1):
  ..FF  S › breaks: unstable in 2 of 4 runs (50%: 0 flaky, 2 failed, 0 errored)  at t.yaml:3
      run 4: breaks failed

New (1):
  --..  S › new one: first in run 3  at t.yaml:3
";
    assert_eq!(text, expected);
    let md = markdown(&t);
    assert!(
        md.starts_with("### ⚠️ pitcrew trend: 4 runs, 4 cases: 1 slower, 1 flakier, 1 always failing, 1 flaky\n\nRuns from `night-1.json` (2026-01-01 03:00) to `night-4.json` (2026-01-04 03:00 UTC); cases 1 new.\n\nPass rate by run, oldest first: 67% · 67% · 50% · 50%\n"),
        "{md}"
    );
    assert!(
        md.contains("| case | runs | before | after | change | where |\n|---|---|---:|---:|---:|---|\n| S › ok | `....` | 100 ms | 900 ms | ×9.0 | `t.yaml:3` |\n"),
        "{md}"
    );
    assert!(
        md.contains("| S › broken | `FFFF` | 4 of 4 | `t.yaml:3` | broken failed |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| S › breaks | `..FF` | 2 of 4 (50%) | 0 | 2 | 0 | `t.yaml:3` | run 4: breaks failed |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| S › new one | `--..` | run 3 | `t.yaml:3` |"),
        "{md}"
    );
}

#[test]
fn nothing_to_say_is_said_briefly() {
    let t = trend_of(&runs_with(&[("ok", "..."), ("also", "...")], |_, _| 5));
    assert_eq!(
        text(&t),
        "3 runs, 2 cases: nothing slower, flakier or failing\n\
         from night-1.json (2026-01-01 03:00) to night-3.json (2026-01-03 03:00 UTC)\n\
         pass rate by run: 100% 100% 100%\n"
    );
    assert!(markdown(&t).starts_with("### ✅ pitcrew trend: 3 runs, 2 cases: nothing"));
    assert!(!markdown(&t).contains("####"));
}

#[test]
fn a_pass_rate_is_100_percent_only_when_all_passed_and_0_only_when_none() {
    assert_eq!(render::share(999, 1000), "99%");
    assert_eq!(render::share(1, 1000), "1%");
    assert_eq!(render::share(0, 1000), "0%");
    assert_eq!(render::share(2, 3), "67%");
    assert_eq!(render::share(5, 5), "100%");
    assert_eq!(render::share(0, 0), "–");
}

#[test]
fn each_section_shows_twenty_cases_and_counts_the_rest() {
    let rows: Vec<(String, &str)> = (0..25).map(|i| (format!("case {i:02}"), ".F")).collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(n, m)| (n.as_str(), *m)).collect();
    let t = trend_of(&runs_with(&rows, |_, _| 5));
    assert_eq!((t.flakier.len(), t.flaky.len()), (25, 25));
    let text = text(&t);
    assert_eq!(text.matches("S › case ").count(), 2 * SHOWN);
    assert_eq!(text.matches("  … and 5 more\n").count(), 2, "{text}");
    assert!(text.contains("S › case 19") && !text.contains("S › case 20"));
    let md = markdown(&t);
    assert_eq!(md.matches("| S › case ").count(), 2 * SHOWN);
    assert_eq!(md.matches("\n… and 5 more.\n").count(), 2, "{md}");
}

#[test]
fn names_are_escaped_in_markdown_cells() {
    let mut runs = runs_with(&[("a | b `c` *d*", ".F")], |_, _| 5);
    for run in &mut runs {
        run.cases[0].suite = "S|uite".into();
        run.cases[0].file = "dir/we`ird|.yaml".into();
    }
    let md = markdown(&trend_of(&runs));
    assert!(
        md.contains("| S\\|uite › a \\| b 'c' \\*d\\* | `.F` |"),
        "{md}"
    );
    assert!(md.contains("`dir/we'ird\\|.yaml:3`"), "{md}");
}

#[test]
fn runs_given_out_of_the_order_they_started_are_noted_not_reordered() {
    let mut runs = runs_with(&[("breaks", ".F")], |_, _| 5);
    runs.reverse();
    let t = trend_of(&runs);
    assert_eq!(t.cases[0].marks(), "F.", "compared as given");
    assert!(t.flakier.is_empty());
    let note = "run 2 (night-2.json) started before run 1 (night-1.json); runs are compared in the order given, oldest first";
    assert!(
        text(&t).contains(&format!("\nnote: {note}\n")),
        "{}",
        text(&t)
    );
    assert!(markdown(&t).contains("> **Note:** run 2 (`night-2.json`) started before"));
}

/// A case's mark in a run: absent, passed, flaky, failed, errored or skipped.
fn mark() -> impl Strategy<Value = char> {
    prop::sample::select(vec!['-', '.', '~', 'F', 'E', 's'])
}

proptest! {
    /// Whatever the runs hold: every case once, in as many runs as given; rates within
    /// [0, 1]; a case that was ever unstable is either always failing or flaky, never both;
    /// and every row of a section holds what its section says.
    #[test]
    fn every_case_once_and_each_section_true_to_its_rule(
        rows in prop::collection::vec(prop::collection::vec(mark(), 2..7), 1..12),
        times in prop::collection::vec(0u64..2000, 84),
    ) {
        let n = rows.iter().map(Vec::len).max().unwrap();
        let marks: Vec<String> = rows
            .iter()
            .map(|r| r.iter().chain(std::iter::repeat(&'-')).take(n).collect())
            .collect();
        let names: Vec<String> = (0..rows.len()).map(|i| format!("c{i}")).collect();
        let table: Vec<(&str, &str)> =
            names.iter().map(String::as_str).zip(marks.iter().map(String::as_str)).collect();
        let runs = runs_with(&table, |c, r| times[(c * 7 + r) % times.len()]);
        let t = trend_of(&runs);
        let present: Vec<&String> = names.iter().zip(&marks).filter(|(_, m)| m.chars().any(|c| c != '-')).map(|(n, _)| n).collect();
        let mut seen: Vec<&str> = t.cases.iter().map(|c| &*c.name).collect();
        seen.sort_unstable();
        let mut want: Vec<&str> = present.iter().map(|n| n.as_str()).collect();
        want.sort_unstable();
        prop_assert_eq!(seen, want, "every case that ran anywhere, once");
        let (early, late) = halves(n);
        for (i, case) in t.cases.iter().enumerate() {
            prop_assert_eq!(case.outcomes.len(), n);
            for range in [0..n, early.clone(), late.clone()] {
                let rate = case.rate(range);
                prop_assert!((0.0..=1.0).contains(&rate.value()) && rate.unstable <= rate.ran);
            }
            let unstable = case.outcomes.iter().any(|o| o.unstable());
            let failing = t.always_failing.contains(&i);
            let flaky = t.flaky.contains(&i);
            prop_assert!(!(failing && flaky));
            prop_assert_eq!(unstable, failing || flaky);
            prop_assert_eq!(failing, case.outcomes.iter().any(|o| o.ran()) && case.outcomes.iter().filter(|o| o.ran()).all(|o| o.failing()));
        }
        for f in &t.flakier {
            prop_assert!(f.after.value() > f.before.value() && f.before.ran > 0);
            prop_assert_eq!(f.before, t.cases[f.case].rate(early.clone()));
        }
        for s in &t.slower {
            prop_assert!(s.after_ms >= s.before_ms + SLOWER_BY_MS);
            prop_assert!(s.after_ms as f64 >= s.before_ms as f64 * SLOWER_RATIO);
        }
        for pair in t.slower.windows(2) {
            prop_assert!(pair[0].ratio() >= pair[1].ratio());
        }
        // The runs' counts are their cases'.
        for (r, run) in t.runs.iter().enumerate() {
            let passed = t.cases.iter().filter(|c| matches!(c.outcomes[r], Outcome::Passed | Outcome::Flaky)).count();
            prop_assert_eq!(run.summary.passed, passed);
        }
        let text = text(&t);
        let head = format!("{n} runs, ");
        prop_assert!(text.starts_with(&head));
    }
}
