//! `pitcrew run --watch`: run, then run again the scenario files that change, for an author
//! at work. Each run is a `pitcrew run` of its own (a child process with the same options and
//! `--changed FILE…`), so that it is exactly what CI would run: its reports, its exit code,
//! nothing left over from the run before.
//!
//! What counts as a change: a scenario file saved (or added) under the watched paths; a
//! matrix file (`.csv`, `.tsv`, `.jsonl`, `.ndjson`) saved, which reruns the scenario files
//! that name it; the `--sandbox-config` file saved, which reruns everything. Editors save in
//! bursts (a temporary file, a rename): changes are gathered for a moment before a run.
//! Ctrl-C (or SIGTERM) stops watching, after a run in progress has written its reports.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::Watcher;

use super::run::RunArgs;
use super::signals::Signals;
use super::{CliError, Outcome, exit};

/// How long changes are gathered after the first, before a run.
const GATHER: Duration = Duration::from_millis(300);

/// Extensions of the files a matrix reads its rows from.
const DATA: [&str; 4] = ["csv", "tsv", "jsonl", "ndjson"];

/// `pitcrew run --watch`.
pub fn watch(args: RunArgs) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Infrastructure(format!("cannot start the async runtime: {e}")))?;
    let signals = Signals::catch(&runtime);
    runtime.block_on(watch_loop(args, signals))
}

/// The command line of each run: this one without `--watch`.
fn child_args() -> Vec<std::ffi::OsString> {
    std::env::args_os()
        .skip(1)
        .filter(|a| a != "--watch")
        .collect()
}

async fn watch_loop(args: RunArgs, mut signals: Signals) -> Outcome {
    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| CliError::Infrastructure(format!("--watch: cannot watch files: {e}")))?;
    let config = args.target.sandbox_config.clone();
    for path in args.load.paths.iter().chain(&config) {
        let recursive = if path.is_dir() {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        watcher.watch(path, recursive).map_err(|e| {
            CliError::Usage(format!("--watch: cannot watch {}: {e}", path.display()))
        })?;
    }
    let terminal = std::io::stdout().is_terminal();
    let base = child_args();
    let mut changed: Vec<PathBuf> = Vec::new();
    loop {
        let mut run = tokio::process::Command::new(
            std::env::current_exe()
                .map_err(|e| CliError::Infrastructure(format!("--watch: {e}")))?,
        );
        run.args(&base);
        for file in &changed {
            run.arg("--changed").arg(file);
        }
        let mut child = run
            .spawn()
            .map_err(|e| CliError::Infrastructure(format!("--watch: cannot run: {e}")))?;
        tokio::select! {
            _ = child.wait() => {}
            _ = signals.next() => {
                // Ctrl-C reached the run too (one process group): it finishes and writes its
                // reports. A SIGTERM for this process alone ends the run.
                let ended = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
                if ended.is_err() {
                    let _ = child.start_kill();
                }
                return Ok(exit::INTERRUPTED);
            }
        }
        println!(
            "\npitcrew: watching {} for changes (Ctrl-C to stop)",
            shown(&args.load.paths)
        );
        changed = tokio::select! {
            files = next_change(&mut changes, &args.load.paths, config.as_deref()) => files,
            _ = signals.next() => return Ok(exit::INTERRUPTED),
        };
        if terminal {
            // A fresh screen for each run: the last run's verdicts are what the author reads.
            print!("\x1b[2J\x1b[3J\x1b[H");
        }
        let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
        println!(
            "pitcrew: {} changed at {}; running {} again",
            names.join(", "),
            chrono::Local::now().format("%H:%M:%S"),
            if names.len() == 1 { "it" } else { "them" }
        );
    }
}

fn shown(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// The scenario files to run again after the next change: waits for one that matters, then
/// gathers the burst it is part of.
async fn next_change(
    changes: &mut tokio::sync::mpsc::UnboundedReceiver<PathBuf>,
    paths: &[PathBuf],
    config: Option<&Path>,
) -> Vec<PathBuf> {
    loop {
        let Some(first) = changes.recv().await else {
            return std::future::pending().await;
        };
        let mut touched = BTreeSet::from([first]);
        let until = tokio::time::Instant::now() + GATHER;
        while let Ok(Some(path)) = tokio::time::timeout_at(until, changes.recv()).await {
            touched.insert(path);
        }
        let files = to_run(&touched, paths, config);
        if !files.is_empty() {
            return files;
        }
    }
}

/// The scenario files under `paths` that the `touched` files call for running again.
fn to_run(touched: &BTreeSet<PathBuf>, paths: &[PathBuf], config: Option<&Path>) -> Vec<PathBuf> {
    let Ok(found) = crate::scenario::files::discover(paths) else {
        return Vec::new();
    };
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let touched: BTreeSet<PathBuf> = touched.iter().map(|p| real(p)).collect();
    if config.is_some_and(|c| touched.contains(&real(c))) {
        return found.files;
    }
    let data: Vec<String> = (touched.iter())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| DATA.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
        })
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    found
        .files
        .into_iter()
        .filter(|file| {
            touched.contains(&real(file))
                || (!data.is_empty()
                    && std::fs::read_to_string(file)
                        .is_ok_and(|text| data.iter().any(|d| text.contains(d.as_str()))))
        })
        .collect()
}
