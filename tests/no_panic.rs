//! Robustness: no scenario file, however broken, makes loading, expansion or templating panic.
//!
//! A small deterministic mutation fuzzer (no extra dependency): every shipped scenario, fixture
//! and bad file is the seed of mutated variants (cut bytes, YAML and template tokens spliced
//! in, lines duplicated or swapped), each loaded and planned as `pitcrew validate` would.
//! `PITCREW_FUZZ_ITERATIONS` raises the default count, `PITCREW_FUZZ_SEED` varies it; a panic leaves its input in the target
//! tmp folder, named in the failure.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use pitcrew::plan::{PlanOptions, build_sources};
use pitcrew::scenario::SourceFile;
use pitcrew::scenario::template::Templates;

/// xorshift64*: deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TOKENS: &[&str] = &[
    "{{",
    "}}",
    ":",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "\n",
    "  ",
    "\t",
    ",",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "<<: *a\n",
    "~",
    "null",
    "-1",
    "1e999",
    "99999999999999999999",
    "é",
    "%",
    "\\",
    "|\n  ",
    ">-\n",
    "---\n",
    "...\n",
    "matrix: { a: [1, 2], include: [{}], exclude: [{ a: 1 }] }",
    "matrix: { a: [] }",
    "matrix: {}",
    "matrix: [1]",
    "{{matrix.a}}",
    "{{#each matrix}}{{@key}}{{/each}}",
    "{{now \"%Q%\"}}",
    "{{now 5}}",
    "{{random 5 1}}",
    "{{random}}",
    "{{random -9223372036854775808 9223372036854775807}}",
    "{{default}}",
    "{{default env.X}}",
    "{{uuid 1 2}}",
    "{{#if x}}",
    "{{/if}}",
    "{{> p}}",
    "{{lookup vars \"a\"}}",
    "{{{vars}}}",
    "{{vars}}",
    "{{case}}",
    "{{run.id.x}}",
    "expect: { callback: none }",
    "expect: { callback: { count: 0 } }",
    "callback_response: { body: { len: { gt: 1 } } }",
    "payload: { a: { not: { not: {} } } }",
    "json: { '': 1 }",
    "headers: { '': { matches: '(' } }",
    "timeout: 0s",
    "within: 1e9h",
    "callback_delay: 99999999999h",
    "click: generate",
    "conversion: x",
    "flag: {}",
];

fn seeds() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in [
        "scenarios",
        "tests/fixtures",
        "tests/bad",
        "examples/failing",
        "src/cli/init",
    ] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            seeds.push((path, text));
        }
    }
    assert!(seeds.len() > 20, "{} seeds", seeds.len());
    seeds
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(4) {
            0 => {
                let end = (at + 1 + rng.below(12)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            1 | 2 => {
                let token = rng.pick(TOKENS).as_bytes().to_vec();
                bytes.splice(at..at, token);
            }
            _ => {
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                if rng.below(2) == 0 {
                    lines.swap(i, j);
                } else {
                    let copy = lines[i].clone();
                    lines.insert(j, copy);
                }
                bytes = lines.join(&b'\n');
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn iterations(default: usize) -> usize {
    std::env::var("PITCREW_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// `PITCREW_FUZZ_SEED` varies the inputs (the default keeps CI reproducible).
fn seed(default: u64) -> u64 {
    std::env::var("PITCREW_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n != 0)
        .unwrap_or(default)
}

fn keep(label: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("panic-{label}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn no_mutated_scenario_makes_loading_panic() {
    let seeds = seeds();
    let options = PlanOptions {
        max_cases: 2_000,
        default_offer: Some("demo-offer".into()),
        sandbox_faults: true,
        ..PlanOptions::default()
    };
    let mut rng = Rng(seed(0x9e37_79b9_7f4a_7c15));
    let (mut valid, mut invalid) = (0, 0);
    for i in 0..iterations(3_000) {
        let (path, seed) = &seeds[i % seeds.len()];
        let text = mutate(&mut rng, seed);
        let source = SourceFile::new(path.clone(), text.as_str());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            build_sources(std::slice::from_ref(&source), &options)
        }));
        match outcome {
            Ok(Ok(_)) => valid += 1,
            Ok(Err(problems)) => {
                assert!(!problems.is_empty(), "an invalid file gave no diagnostic");
                invalid += 1;
            }
            Err(_) => panic!(
                "loading panicked; the input is in {}",
                keep(&i.to_string(), &text).display()
            ),
        }
    }
    // The fuzzer must reach both sides, or it tests nothing.
    assert!(
        valid > 50 && invalid > 50,
        "valid {valid}, invalid {invalid}"
    );
}

#[test]
fn no_template_makes_rendering_panic() {
    let templates = Templates::new();
    let context = handlebars::Context::from(serde_json::json!({
        "vars": {"a": "1", "n": 5, "list": [1, 2]},
        "matrix": {"a": 1},
        "env": {"X": "x"},
        "case": {"name": "c", "index": 0},
        "run": {"id": "r"},
    }));
    let mut rng = Rng(seed(0x1234_5678_9abc_def1));
    let mut rendered = 0;
    for i in 0..iterations(3_000) {
        let mut text = String::new();
        for _ in 0..1 + rng.below(6) {
            text.push_str(rng.pick(TOKENS));
            if rng.below(3) == 0 {
                text.push_str(
                    rng.pick(&["vars.a", "vars.n", " ", "\"x\"", "1", "matrix.a", "env.X"]),
                );
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| templates.render(&text, &context)));
        match outcome {
            Ok(Ok(_)) => rendered += 1,
            Ok(Err(message)) => {
                assert!(!message.to_string().is_empty(), "{text:?}: an empty error")
            }
            Err(_) => panic!(
                "rendering panicked; the template is in {}",
                keep(&format!("template-{i}"), &text).display()
            ),
        }
    }
    assert!(rendered > 100, "only {rendered} templates rendered");
}

/// Every input of the committed fuzz corpora (`fuzz/corpus/`, grown by cargo-fuzz) still goes
/// through its target without a panic: the long fuzz runs' findings, kept as regressions.
#[test]
fn the_fuzz_corpora_replay_without_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    type Target<'a> = &'a dyn Fn(&[u8]);
    let targets: [(&str, Target); 5] = [
        ("scenario", &pitcrew::fuzzing::scenario),
        ("template", &pitcrew::fuzzing::template),
        ("sandbox_config", &pitcrew::fuzzing::sandbox_config),
        ("project", &pitcrew::fuzzing::project),
        ("receiver_http", &|data| {
            pitcrew::fuzzing::receiver_http(&runtime, data)
        }),
    ];
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, target) in targets {
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(corpora.join(name))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
            .map(|entry| entry.unwrap().path())
            .collect();
        inputs.sort();
        assert!(inputs.len() >= 3, "fuzz/corpus/{name} holds too few inputs");
        for input in &inputs {
            let data = std::fs::read(input).unwrap();
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                panic!("fuzz target {name} panicked on {}", input.display());
            }
        }
    }
}
