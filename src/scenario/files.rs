//! Finding and reading scenario files: regular files only, each once, never unbounded.
//!
//! Folders are walked with the `ignore` crate: hidden entries (`.github/`, `.git/`) and
//! `node_modules/` are skipped, symlinks are followed with loop detection, and every file is
//! loaded once however many paths lead to it. A FIFO, a device or a file over
//! [`MAX_FILE_BYTES`] is never read: named on the command line it is an error, met in a walk it
//! is skipped with a note.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest scenario file pitcrew reads (a 100,000-case file is about 17 MB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Folders never searched for scenarios.
const SKIPPED_DIRS: &[&str] = &["node_modules"];

/// Why a file or folder cannot be read as scenarios.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: not a regular file (a FIFO, socket or device is never read as a scenario)")]
    NotAFile { path: String },
}

/// What a search found: the files, in order, and notes on what it passed over.
#[derive(Debug, Default)]
pub struct Found {
    pub files: Vec<PathBuf>,
    /// One line per entry passed over (a symlink loop, a FIFO, an unreadable folder).
    pub notes: Vec<String>,
}

/// Every `.yaml`/`.yml` regular file under `paths` (a file named on the command line is taken
/// whatever its extension), sorted by name within each folder, each file once.
pub fn discover(paths: &[PathBuf]) -> Result<Found, FilesError> {
    let mut found = Found::default();
    let mut seen = HashSet::new();
    let mut keep = |path: PathBuf, found: &mut Found| {
        let identity = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.insert(identity) {
            found.files.push(path);
        }
    };
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| FilesError::Unreadable {
            path: path.display().to_string(),
            reason: describe_io(&e),
        })?;
        if meta.is_dir() {
            walk(path, &mut found, &mut keep);
        } else if meta.is_file() {
            keep(path.clone(), &mut found);
        } else {
            return Err(FilesError::NotAFile {
                path: path.display().to_string(),
            });
        }
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Found, keep: &mut impl FnMut(PathBuf, &mut Found)) {
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(true)
        .follow_links(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && SKIPPED_DIRS.iter().any(|s| e.file_name() == *s))
        })
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                found
                    .notes
                    .push(format!("skipped: {}", one_line(&e.to_string())));
                continue;
            }
        };
        let path = entry.path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            continue;
        }
        // Followed through symlinks: a link to a FIFO or /dev/zero is not a regular file.
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => keep(path.to_path_buf(), found),
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => found
                .notes
                .push(format!("skipped {}: not a regular file", path.display())),
            Err(e) => found
                .notes
                .push(format!("skipped {}: {}", path.display(), describe_io(&e))),
        }
    }
}

/// Reads a scenario file as UTF-8, refusing more than [`MAX_FILE_BYTES`].
pub fn read_limited(path: &Path) -> Result<String, super::ScenarioError> {
    let meta = std::fs::metadata(path).map_err(|e| super::ScenarioError::File(describe_io(&e)))?;
    if !meta.is_file() {
        return Err(super::ScenarioError::File("not a regular file".into()));
    }
    let file =
        std::fs::File::open(path).map_err(|e| super::ScenarioError::File(describe_io(&e)))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| super::ScenarioError::File(describe_io(&e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(super::ScenarioError::File(format!(
            "the file is larger than {} MiB, the most a scenario file may hold; split it",
            MAX_FILE_BYTES / (1024 * 1024)
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        super::ScenarioError::File(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pitcrew-files-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn hidden_folders_and_node_modules_are_skipped_and_files_sorted() {
        let d = dir();
        for f in [
            "b.yaml",
            "a.yml",
            ".github/ci.yaml",
            "node_modules/x/y.yaml",
            "sub/c.yaml",
            "n.txt",
        ] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "cases: []").unwrap();
        }
        let found = discover(std::slice::from_ref(&d)).unwrap();
        let names: Vec<String> = found
            .files
            .iter()
            .map(|p| p.strip_prefix(&d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.yml", "b.yaml", "sub/c.yaml"]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_end_and_each_file_loads_once() {
        let d = dir();
        std::fs::write(d.join("s.yaml"), "cases: []").unwrap();
        std::os::unix::fs::symlink(".", d.join("loop1")).unwrap();
        std::os::unix::fs::symlink(".", d.join("loop2")).unwrap();
        std::os::unix::fs::symlink("s.yaml", d.join("t.yaml")).unwrap();
        let found = discover(&[d.clone(), d.join("s.yaml")]).unwrap();
        assert_eq!(found.files.len(), 1, "{found:?}");
        assert!(!found.notes.is_empty(), "the loops are noted: {found:?}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_fifos_are_never_read() {
        let d = dir();
        std::os::unix::fs::symlink("/dev/zero", d.join("zero.yaml")).unwrap();
        let fifo = d.join("x.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        let found = discover(std::slice::from_ref(&d)).unwrap();
        assert!(found.files.is_empty(), "{found:?}");
        let e = discover(&[d.join("zero.yaml")]).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        if made.is_ok_and(|s| s.success()) {
            let e = discover(&[fifo]).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
        assert!(read_limited(&d.join("zero.yaml")).is_err());
        std::fs::remove_dir_all(d).unwrap();
    }
}
