//! Reports: consumers of the runner's events. The console prints as verdicts come; the run
//! record is built from the same events and is the only input of the file reports (JUnit,
//! JSON), which are written atomically.

pub mod console;
pub mod junit;
pub mod record;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use record::{RecordBuilder, RunRecord, Summary};

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so that a reader
/// never sees half a report.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent(path);
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Checks, before anything runs, that a report can be written at `path`: its folder exists and
/// takes a new file, and the path is not a folder.
pub fn check_writable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{} is a folder, not a file", path.display()));
    }
    let dir = parent(path);
    if !dir.is_dir() {
        return Err(format!(
            "{}: the folder {} does not exist",
            path.display(),
            dir.display()
        ));
    }
    tempfile::NamedTempFile::new_in(dir)
        .map(drop)
        .map_err(|e| format!("{}: cannot write in {}: {e}", path.display(), dir.display()))
}

/// The file reports asked for on the command line.
#[derive(Debug, Default, Clone)]
pub struct FileReports {
    pub junit: Option<PathBuf>,
    pub json: Option<PathBuf>,
}

impl FileReports {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.junit.iter().chain(self.json.iter())
    }

    /// Checks every report path before the run; the errors, one per unwritable report.
    pub fn check(&self) -> Vec<String> {
        self.paths()
            .filter_map(|p| check_writable(p).err())
            .collect()
    }

    /// Writes each requested report; one that fails does not stop the others. Returns the
    /// errors, each naming its file.
    pub fn write(&self, record: &RunRecord) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(path) = &self.junit {
            let written = junit::render(record)
                .map_err(|e| format!("cannot render JUnit: {e}"))
                .and_then(|xml| write_atomically(path, xml.as_bytes()).map_err(|e| e.to_string()));
            if let Err(e) = written {
                errors.push(format!(
                    "cannot write the JUnit report {}: {e}",
                    path.display()
                ));
            }
        }
        if let Some(path) = &self.json
            && let Err(e) = write_atomically(path, record.to_json().as_bytes())
        {
            errors.push(format!(
                "cannot write the JSON report {}: {e}",
                path.display()
            ));
        }
        errors
    }
}
