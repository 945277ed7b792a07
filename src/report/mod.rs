//! Reports: consumers of the runner's events. The console prints as verdicts come; the run
//! record is built from the same events and is the only input of the file reports (JUnit,
//! JSON, HTML), which are written atomically, and of `pitcrew report merge|diff|html|trend`.
//! A new format is a function of the record: no runner code changes.

pub mod console;
pub mod diff;
pub mod format;
pub mod html;
pub mod junit;
pub mod merge;
pub mod record;
pub mod stream;
pub mod style;
pub mod trend;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use format::{RunRecord, Summary, Verdict};
pub use record::RecordBuilder;

use crate::run::Event;

/// Something that follows a run as it happens, from the runner's events.
pub trait Reporter {
    fn on_event(&mut self, event: &Event);
    /// No more events are waiting: write out what is buffered.
    fn flush(&mut self) {}
}

impl Reporter for console::Console {
    fn on_event(&mut self, event: &Event) {
        console::Console::on_event(self, event);
    }

    fn flush(&mut self) {
        console::Console::flush(self);
    }
}

impl Reporter for RecordBuilder {
    fn on_event(&mut self, event: &Event) {
        RecordBuilder::on_event(self, event);
    }
}

/// The one point where the runner's events fan out to every reporter, in order.
pub async fn fan_out(
    mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    reporters: &mut [&mut (dyn Reporter + Send)],
) {
    while let Some(event) = events.recv().await {
        for reporter in reporters.iter_mut() {
            reporter.on_event(&event);
        }
        // Whatever else is waiting, then one flush: a line each as cases finish, but one
        // write for many when they finish faster than the console writes.
        while let Ok(event) = events.try_recv() {
            for reporter in reporters.iter_mut() {
                reporter.on_event(&event);
            }
        }
        for reporter in reporters.iter_mut() {
            reporter.flush();
        }
    }
}

/// Writes what `write` writes to `path`, buffered and atomically (a temporary file beside it,
/// then a rename).
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = parent(path);
    let mut builder = tempfile::Builder::new();
    // Readable like any file the user writes (the umask applies), not 0600: reports are
    // artifacts for others to read.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let file = builder.tempfile_in(dir)?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    write(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Why a report could not be read, merged or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A saved report is not one this pitcrew reads.
    #[error("{0}")]
    Unreadable(String),
    /// Reports that do not go together (other formats, a shard twice or missing).
    #[error("{0}")]
    Mismatch(String),
    /// A report cannot be written where it is asked for.
    #[error("{0}")]
    Unwritable(String),
}

/// Checks, before anything runs, that a report can be written at `path`: its folder exists and
/// takes a new file, and the path is not a folder.
pub fn check_writable(path: &Path) -> Result<(), ReportError> {
    let unwritable = |why: String| Err(ReportError::Unwritable(why));
    if path.is_dir() {
        return unwritable(format!("{} is a folder, not a file", path.display()));
    }
    let dir = parent(path);
    if !dir.is_dir() {
        return unwritable(format!(
            "{}: the folder {} does not exist",
            path.display(),
            dir.display()
        ));
    }
    match tempfile::NamedTempFile::new_in(dir) {
        Ok(_) => Ok(()),
        Err(e) => unwritable(format!(
            "{}: cannot write in {}: {e}",
            path.display(),
            dir.display()
        )),
    }
}

/// `-` as a report path: standard output.
pub const STDOUT: &str = "-";

/// The file reports asked for on the command line.
#[derive(Debug, Default, Clone)]
pub struct FileReports {
    pub junit: Option<PathBuf>,
    /// `-` writes it to stdout.
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

/// One report format: its name for messages and how it writes the record, streamed.
struct Format {
    name: &'static str,
    write: fn(&RunRecord, &mut dyn Write) -> std::io::Result<()>,
}

const JUNIT: Format = Format {
    name: "JUnit",
    write: |r, out| junit::write(r, out),
};
const JSON: Format = Format {
    name: "JSON",
    write: |r, out| r.write_json(out),
};
const HTML: Format = Format {
    name: "HTML",
    write: |r, out| html::write(r, out),
};

impl FileReports {
    fn each(&self) -> impl Iterator<Item = (&PathBuf, &'static Format)> {
        let formats: [(&Option<PathBuf>, &'static Format); 3] = [
            (&self.junit, &JUNIT),
            (&self.json, &JSON),
            (&self.html, &HTML),
        ];
        formats
            .into_iter()
            .filter_map(|(path, format)| path.as_ref().map(|p| (p, format)))
    }

    /// True when a report goes to stdout (the console then writes to stderr).
    pub fn uses_stdout(&self) -> bool {
        self.each().any(|(p, _)| p.as_os_str() == STDOUT)
    }

    /// Checks every report path before the run; the errors, one per unwritable report.
    pub fn check(&self) -> Vec<ReportError> {
        let mut errors: Vec<ReportError> = self
            .each()
            .filter(|(p, _)| p.as_os_str() != STDOUT)
            .filter_map(|(p, _)| check_writable(p).err())
            .collect();
        if self.each().filter(|(p, _)| p.as_os_str() == STDOUT).count() > 1 {
            let why = "only one report can be written to stdout (`-`)";
            errors.push(ReportError::Unwritable(why.into()));
        }
        // Two reports to one file: the second would silently replace the first.
        let files: Vec<(PathBuf, &Format)> = self
            .each()
            .filter(|(p, _)| p.as_os_str() != STDOUT)
            .map(|(p, f)| (std::path::absolute(p).unwrap_or_else(|_| p.clone()), f))
            .collect();
        for (i, (path, format)) in files.iter().enumerate() {
            if let Some((_, first)) = files[..i].iter().find(|(p, _)| p == path) {
                errors.push(ReportError::Unwritable(format!(
                    "the {} and {} reports are both to be written to {}: give each its own file",
                    first.name,
                    format.name,
                    path.display()
                )));
            }
        }
        errors
    }

    /// Writes each requested report; one that fails does not stop the others. Returns the
    /// errors, each naming its file.
    pub fn write(&self, record: &RunRecord) -> Vec<ReportError> {
        let mut errors = Vec::new();
        for (path, format) in self.each() {
            if let Err(e) = write_report_with(path, |out| (format.write)(record, out)) {
                errors.push(ReportError::Unwritable(format!(
                    "cannot write the {} report {}: {e}",
                    format.name,
                    path.display()
                )));
            }
        }
        errors
    }
}

/// Writes what `write` writes to `path` atomically, or to stdout for `-`.
pub fn write_report_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if path.as_os_str() == STDOUT {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        write(&mut out)?;
        return out.flush();
    }
    write_atomically_with(path, write)
}
