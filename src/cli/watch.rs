//! `pitcrew run --watch`: run, then run again the scenario files that change, for an author
//! at work. Each run is a `pitcrew run` of its own (a child process with the same options and
//! `--changed FILE…`), so that it is exactly what CI would run: its reports, its exit code,
//! nothing left over from the run before.
//!
//! What counts as a change: a scenario file saved (or added) under the watched paths; any
//! other file a scenario names saved (its matrix file, `from:`, wherever it is), which reruns
//! the scenario files that name it; the `--sandbox-config` file saved, which reruns
//! everything. Folders are watched, not files: an editor that saves by writing a new file and
//! renaming it over the old one is seen every time. Saves come in bursts: changes are
//! gathered for a moment before a run.
//!
//! Each run has a process group of its own, so that Ctrl-C reaches it once, from here: the
//! first Ctrl-C (or SIGTERM) lets the run in progress finish and write its reports, then stops
//! watching; a second one is handed on too, and the run stops at once (reports still written).

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
    let mut watched: BTreeSet<(PathBuf, bool)> = BTreeSet::new();
    for path in args.load.paths.iter().chain(&config) {
        let target = if path.is_dir() {
            (path.clone(), true)
        } else {
            (folder_of(path), false)
        };
        watch_folder(&mut watcher, &mut watched, target)?;
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
        // Its own process group: a Ctrl-C at the terminal reaches it only through here.
        #[cfg(unix)]
        run.process_group(0);
        let mut child = run
            .spawn()
            .map_err(|e| CliError::Infrastructure(format!("--watch: cannot run: {e}")))?;
        let interrupted = tokio::select! {
            _ = child.wait() => false,
            _ = signals.next() => true,
        };
        if interrupted {
            // The run finishes its cases and writes its reports; a second signal stops it
            // at once (it still writes them).
            hand_on(&child);
            tokio::select! {
                _ = child.wait() => {}
                _ = signals.next() => {
                    hand_on(&child);
                    let _ = child.wait().await;
                }
            }
            return Ok(exit::INTERRUPTED);
        }
        // The folders of the files the scenarios name (a matrix file elsewhere) are watched too.
        for folder in named_folders(&args.load.paths) {
            watch_folder(&mut watcher, &mut watched, (folder, false))?;
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

/// Hands an interrupt on to the run (SIGINT: the run's first finishes, its second aborts).
fn hand_on(child: &tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    }
    #[cfg(not(unix))]
    let _ = child;
}

/// The folder a file is in (`.` for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Watches a folder (`recursive` or not), once.
fn watch_folder(
    watcher: &mut notify::RecommendedWatcher,
    watched: &mut BTreeSet<(PathBuf, bool)>,
    (folder, recursive): (PathBuf, bool),
) -> Result<(), CliError> {
    let folder = std::fs::canonicalize(&folder).unwrap_or(folder);
    let covered = watched
        .iter()
        .any(|(w, r)| *w == folder || (*r && folder.starts_with(w)));
    if covered || !folder.is_dir() {
        return Ok(());
    }
    let mode = if recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    watcher
        .watch(&folder, mode)
        .map_err(|e| CliError::Usage(format!("--watch: cannot watch {}: {e}", folder.display())))?;
    watched.insert((folder, recursive));
    Ok(())
}

/// The folders of the files the scenario files under `paths` name in `from:`.
fn named_folders(paths: &[PathBuf]) -> Vec<PathBuf> {
    let Ok(found) = crate::scenario::files::discover(paths) else {
        return Vec::new();
    };
    (found.files.iter())
        .flat_map(|file| named_files(file))
        .map(|named| folder_of(&named))
        .collect()
}

/// The files a scenario file names in `from:` (its matrix files), as paths from here.
fn named_files(file: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let mut named = Vec::new();
    for (at, _) in text.match_indices("from:") {
        let name: String = text[at + 5..]
            .trim_start()
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | '}'))
            .collect();
        if !name.is_empty() {
            named.push(folder_of(file).join(name));
        }
    }
    named
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
    // A file a scenario names (its matrix file) reruns the scenarios that name it.
    found
        .files
        .into_iter()
        .filter(|file| {
            touched.contains(&real(file))
                || named_files(file).iter().any(|n| touched.contains(&real(n)))
        })
        .collect()
}
