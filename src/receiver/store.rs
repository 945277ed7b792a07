//! The receiver's durable store (`--store sqlite:PATH`): every callback and script is written
//! before it is answered, so that a restarted `pitcrew receive` loses nothing. The receiver's
//! memory is rebuilt from it at start.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::delivery::{Delivery, Script, ScriptedAnswer};

/// A SQLite file holding callbacks and scripts.
pub struct SqliteStore {
    db: Mutex<Connection>,
    path: String,
}

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the receiver's store {path}: {message}")]
pub struct StoreError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path)
    }
}

impl SqliteStore {
    /// A store error at this store.
    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        let error = |e: rusqlite::Error| StoreError {
            path: shown.clone(),
            message: e.to_string(),
        };
        let db = Connection::open(path).map_err(error)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS callbacks (
                 seq INTEGER PRIMARY KEY,
                 received_at TEXT NOT NULL,
                 delivery TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS scripts (
                 id TEXT PRIMARY KEY,
                 script TEXT NOT NULL,
                 answered INTEGER NOT NULL DEFAULT 0
             );",
        )
        .map_err(error)?;
        Ok(SqliteStore {
            db: Mutex::new(db),
            path: shown,
        })
    }

    /// Where it is, for `/api/health`.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a callback (before it is answered).
    pub fn put(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let text = serde_json::to_string(delivery).map_err(|e| self.error(e))?;
        self.db()
            .execute(
                "INSERT OR REPLACE INTO callbacks (seq, received_at, delivery) VALUES (?1, ?2, ?3)",
                params![delivery.seq as i64, delivery.at.to_rfc3339(), text],
            )
            .map(drop)
            .map_err(|e| self.error(e))
    }

    /// Every callback kept, oldest first.
    pub fn all(&self) -> Result<Vec<Delivery>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT delivery FROM callbacks ORDER BY seq")
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(|e| self.error(e))?;
        Ok(rows
            .filter_map(Result::ok)
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect())
    }

    /// Forgets callbacks received before `cutoff`; returns how many.
    pub fn forget_before(&self, cutoff: DateTime<Utc>) -> usize {
        self.db()
            .execute(
                "DELETE FROM callbacks WHERE received_at < ?1",
                params![cutoff.to_rfc3339()],
            )
            .unwrap_or(0)
    }

    /// Keeps a script for the deliveries of `id` (a click or a conversion).
    pub fn put_script(&self, id: &str, script: &Script) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT OR REPLACE INTO scripts (id, script, answered) VALUES (?1, ?2, 0)",
                params![id, script_text(script)],
            )
            .map(drop)
            .map_err(|e| self.error(e))
    }

    /// Records that one more delivery of `id` was answered by its script.
    pub fn script_answered(&self, id: &str) {
        let _ = self.db().execute(
            "UPDATE scripts SET answered = answered + 1 WHERE id = ?1",
            params![id],
        );
    }

    /// Every script kept, with how many deliveries it answered already.
    pub fn scripts(&self) -> Vec<(String, Script, u64)> {
        let db = self.db();
        let Ok(mut statement) = db.prepare("SELECT id, script, answered FROM scripts") else {
            return Vec::new();
        };
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        });
        let Ok(rows) = rows else { return Vec::new() };
        rows.filter_map(Result::ok)
            .filter_map(|(id, text, answered)| {
                Some((id, script_from_text(&text)?, answered.max(0) as u64))
            })
            .collect()
    }

    /// The highest sequence number kept.
    pub fn last_seq(&self) -> u64 {
        self.db()
            .query_row("SELECT MAX(seq) FROM callbacks", [], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .optional()
            .ok()
            .flatten()
            .flatten()
            .unwrap_or(0)
            .max(0) as u64
    }
}

/// A script as a store keeps it: `[{"status": 503, "body": "", "delay_ms": 0}, …]`.
pub(crate) fn script_text(script: &Script) -> String {
    let answers: Vec<serde_json::Value> = script
        .answers
        .iter()
        .map(|a| {
            serde_json::json!({"status": a.status, "body": a.body, "delay_ms": a.delay.as_millis() as u64})
        })
        .collect();
    serde_json::Value::Array(answers).to_string()
}

/// The script a store kept as [`script_text`] wrote it.
pub(crate) fn script_from_text(text: &str) -> Option<Script> {
    let list: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    let answers = list
        .iter()
        .map(|a| ScriptedAnswer {
            status: a["status"].as_u64().unwrap_or(200) as u16,
            body: a["body"].as_str().unwrap_or_default().to_string(),
            delay: std::time::Duration::from_millis(a["delay_ms"].as_u64().unwrap_or(0)),
        })
        .collect();
    Some(Script { answers })
}
