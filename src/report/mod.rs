//! Reports: consumers of the runner's events. The console prints as results come; the files
//! (JUnit, JSON) are written from the collected results, atomically.

pub mod console;
pub mod json;
pub mod junit;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::plan::Plan;
use crate::run::{CaseResult, Event, RunStats};

/// Every result of a run, by plan index, as the file reports need them.
#[derive(Debug, Default)]
pub struct Collected {
    pub run_id: String,
    pub target: String,
    pub started: Option<chrono::DateTime<chrono::Utc>>,
    pub results: Vec<Option<Arc<CaseResult>>>,
    pub stats: RunStats,
}

impl Collected {
    /// Takes in one event.
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                total,
                target,
            } => {
                self.run_id = run_id.clone();
                self.target = target.clone();
                self.started = Some(chrono::Utc::now());
                self.results = vec![None; *total];
            }
            Event::CaseFinished(result) => {
                if let Some(slot) = self.results.get_mut(result.index) {
                    *slot = Some(result.clone());
                }
            }
            Event::RunFinished { stats } => self.stats = *stats,
        }
    }

    /// The result of the case at `index`, if it ran.
    pub fn result(&self, index: usize) -> Option<&CaseResult> {
        self.results.get(index).and_then(|r| r.as_deref())
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// The file reports asked for on the command line.
#[derive(Debug, Default, Clone)]
pub struct FileReports {
    pub junit: Option<std::path::PathBuf>,
    pub json: Option<std::path::PathBuf>,
}

impl FileReports {
    /// Writes each requested report; an error names the file.
    pub fn write(&self, plan: &Plan, collected: &Collected) -> Result<(), String> {
        if let Some(path) = &self.junit {
            let xml =
                junit::render(plan, collected).map_err(|e| format!("cannot render JUnit: {e}"))?;
            write_atomically(path, xml.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        if let Some(path) = &self.json {
            let text = json::render(plan, collected);
            write_atomically(path, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}
