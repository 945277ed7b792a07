//! A matrix's rows read from a file (`matrix: { from: payouts.csv }`): advertisers send payout
//! tables as spreadsheets, and a QA engineer exports one to CSV rather than copy it into lists.
//!
//! - CSV: the header row names the keys, each further row is one combination. The delimiter is
//!   a comma, or a semicolon or a tab when the header holds no comma (spreadsheets in many
//!   locales export with semicolons); `.tsv` files are tab-separated. A UTF-8 byte order mark
//!   (Excel's) is skipped, blank lines are skipped, cells are trimmed, and every value is text,
//!   as a template renders it anyway.
//! - JSON lines (`.jsonl`, `.ndjson`): one object per line, each with the first line's keys.
//!
//! Bounded: only regular files, at most [`MAX_BYTES`], and no more rows than the run may still
//! plan. Every problem names the file, and the line (and column) or the column name.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::matrix::Combination;

/// The largest matrix file read (100,000 rows of a dozen columns fit several times over).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The most columns a matrix file may have (a payout table has a handful).
pub const MAX_COLUMNS: usize = 256;
/// The most cells a matrix file may hold in all: each is a key and a value in memory.
pub const MAX_CELLS: usize = 2_000_000;

/// A matrix file's keys and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The keys, in the order of the header (CSV), or sorted (JSON lines).
    pub columns: Vec<String>,
    /// One combination per row, its keys in `columns` order.
    pub rows: Vec<Combination>,
}

/// Why a matrix file cannot be used; `message` names the file (as `shown`) and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    pub message: String,
    pub help: Option<String>,
}

fn problem(message: String, help: Option<&str>) -> TableError {
    TableError {
        message,
        help: help.map(str::to_string),
    }
}

/// Reads the table at `path` (named `shown` in messages); more than `max_rows` rows is an
/// error.
pub fn read(path: &Path, shown: &str, max_rows: usize) -> Result<Table, TableError> {
    let looked = match path.display().to_string() {
        full if full != shown => format!(" (at {full})"),
        _ => String::new(),
    };
    let cannot = |why: String| {
        problem(
            format!("cannot read the matrix file `{shown}`{looked}: {why}"),
            Some("`from:` is a path relative to the scenario file, e.g. `from: payouts.csv`"),
        )
    };
    // Looked at before it is opened: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path).map_err(|e| cannot(e.to_string()))?;
    if !meta.is_file() {
        return Err(cannot("it is not a regular file".into()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| cannot(e.to_string()))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(cannot(format!(
            "it is larger than {} MiB",
            MAX_BYTES / 1024 / 1024
        )));
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let table = match extension.as_str() {
        "jsonl" | "ndjson" => json_lines(text, shown, max_rows)?,
        "tsv" => csv(text, b'\t', shown, max_rows)?,
        _ => csv(text, delimiter(text), shown, max_rows)?,
    };
    if table.rows.is_empty() {
        return Err(problem(
            format!("the matrix file `{shown}` has no rows: the case would never run"),
            Some("add a row under the header, or remove the case"),
        ));
    }
    Ok(table)
}

/// A comma, unless the header holds none and a semicolon or a tab.
fn delimiter(text: &[u8]) -> u8 {
    let header = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let has = |c: u8| header.contains(&c);
    match (has(b','), has(b';'), has(b'\t')) {
        (false, true, _) => b';',
        (false, false, true) => b'\t',
        _ => b',',
    }
}

fn csv(text: &[u8], delimiter: u8, shown: &str, max_rows: usize) -> Result<Table, TableError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(::csv::Trim::All)
        .from_reader(text);
    let at = |e: &::csv::Error| {
        let line = e
            .position()
            .map(|p| format!(":{}", p.line()))
            .unwrap_or_default();
        let why = match e.kind() {
            ::csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("this row has {len} of the header's {expected_len} cells"),
            ::csv::ErrorKind::Utf8 { err, .. } => format!(
                "cell {} is not UTF-8 text (save the file as \"CSV UTF-8\")",
                err.field() + 1
            ),
            _ => e.to_string(),
        };
        problem(format!("matrix file `{shown}{line}`: {why}"), None)
    };
    let header = reader.headers().map_err(|e| at(&e))?.clone();
    let columns: Vec<String> = header.iter().map(str::to_string).collect();
    check_columns(&columns, shown)?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| at(&e))?;
        if rows.len() == max_rows.min(MAX_CELLS / columns.len().max(1)) {
            return Err(too_many(shown, rows.len()));
        }
        rows.push(
            columns
                .iter()
                .zip(record.iter())
                .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
                .collect(),
        );
    }
    Ok(Table { columns, rows })
}

fn json_lines(text: &[u8], shown: &str, max_rows: usize) -> Result<Table, TableError> {
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let number = n + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let object: serde_json::Map<String, Value> =
            serde_json::from_slice(line).map_err(|e| {
                problem(
                    format!(
                        "matrix file `{shown}:{number}:{}`: {e}",
                        e.column().max(1)
                    ),
                    Some("each line holds one JSON object, e.g. `{\"event\": \"install\", \"payout\": \"2.50\"}`"),
                )
            })?;
        let keys: Vec<String> = object.keys().cloned().collect();
        match &columns {
            None => {
                check_columns(&keys, shown)?;
                columns = Some(keys);
            }
            Some(first) if *first != keys => {
                return Err(problem(
                    format!(
                        "matrix file `{shown}:{number}`: this line's keys ({}) are not the first line's ({})",
                        keys.join(", "),
                        first.join(", ")
                    ),
                    Some("give every line the same keys (`null` for none)"),
                ));
            }
            Some(_) => {}
        }
        let width = columns.as_ref().map_or(1, Vec::len).max(1);
        if rows.len() == max_rows.min(MAX_CELLS / width) {
            return Err(too_many(shown, rows.len()));
        }
        rows.push(object.into_iter().collect());
    }
    Ok(Table {
        columns: columns.unwrap_or_default(),
        rows,
    })
}

/// Every column has a name, and no two the same; not too many.
fn check_columns(columns: &[String], shown: &str) -> Result<(), TableError> {
    if columns.len() > MAX_COLUMNS {
        return Err(problem(
            format!(
                "matrix file `{shown}:1`: {} columns, more than the {MAX_COLUMNS} a matrix file may have",
                columns.len()
            ),
            Some("keep the columns the case reads"),
        ));
    }
    for (i, name) in columns.iter().enumerate() {
        if name.is_empty() {
            return Err(problem(
                format!("matrix file `{shown}:1`: column {} has no name", i + 1),
                Some("the first row names the keys templates read as `{{matrix.NAME}}`"),
            ));
        }
        if columns[..i].contains(name) {
            return Err(problem(
                format!("matrix file `{shown}:1`: column `{name}` is named twice"),
                Some("give each column its own name"),
            ));
        }
    }
    Ok(())
}

fn too_many(shown: &str, max_rows: usize) -> TableError {
    problem(
        format!(
            "the matrix file `{shown}` has more than {max_rows} rows, more than the run may plan"
        ),
        Some("split the file, or raise the limit with `--max-cases N`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pitcrew-table-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn values(table: &Table) -> Vec<Vec<String>> {
        (table.rows.iter())
            .map(|r| {
                r.iter()
                    .map(|(_, v)| super::super::matrix::show(v))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn spreadsheets_as_they_are_exported() {
        // Excel's "CSV UTF-8": a byte order mark, CRLF, quoted cells, padding.
        let excel = write(
            "payouts.csv",
            b"\xEF\xBB\xBFevent , payout\r\ninstall,\"1,50\"\r\n\r\n signup , 2.00 \r\n",
        );
        let table = read(&excel, "payouts.csv", 10).unwrap();
        assert_eq!(table.columns, ["event", "payout"]);
        assert_eq!(values(&table), [["install", "1,50"], ["signup", "2.00"]]);
        // A semicolon export (a decimal comma's locale) and a TSV.
        let semi = write("p.csv", b"event;payout\ninstall;1,50\n");
        assert_eq!(
            values(&read(&semi, "p.csv", 10).unwrap()),
            [["install", "1,50"]]
        );
        let tsv = write("p.tsv", b"event\tpayout\ninstall\t1.50\n");
        assert_eq!(
            values(&read(&tsv, "p.tsv", 10).unwrap()),
            [["install", "1.50"]]
        );
        let lines = write(
            "p.jsonl",
            b"{\"event\": \"install\", \"payout\": 1.5}\n\n{\"event\": \"signup\", \"payout\": 2}\n",
        );
        let table = read(&lines, "p.jsonl", 10).unwrap();
        assert_eq!(table.columns, ["event", "payout"]);
        assert_eq!(values(&table), [["install", "1.5"], ["signup", "2"]]);
    }

    #[test]
    fn mistakes_name_the_file_and_the_line() {
        let message = |name: &str, bytes: &[u8]| {
            let path = write(name, bytes);
            read(&path, name, 2).unwrap_err().message
        };
        assert_eq!(
            message("a.csv", b"event,payout\ninstall,1\nsignup\n"),
            "matrix file `a.csv:3`: this row has 1 of the header's 2 cells"
        );
        assert_eq!(
            message("b.csv", b"event,\ninstall,1\n"),
            "matrix file `b.csv:1`: column 2 has no name"
        );
        assert_eq!(
            message("c.csv", b"event,event\ninstall,1\n"),
            "matrix file `c.csv:1`: column `event` is named twice"
        );
        assert!(message("d.csv", b"event\n").contains("has no rows"));
        assert!(message("e.csv", b"n\n1\n2\n3\n").contains("more than 2 rows"));
        let wide = format!(
            "{}\n",
            vec!["c"; 300]
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c}{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(message("w.csv", wide.as_bytes()).contains("300 columns, more than the 256"));
        assert!(
            message("f.csv", b"event,payout\ninstall,\xE9\n")
                .contains("f.csv:2`: cell 2 is not UTF-8"),
            "{}",
            message("f.csv", b"event,payout\ninstall,\xE9\n")
        );
        assert!(
            message("g.jsonl", b"{\"a\": 1}\n{\"a\": 1\n").starts_with("matrix file `g.jsonl:2:"),
            "{}",
            message("g.jsonl", b"{\"a\": 1}\n{\"a\": 1\n")
        );
        assert!(
            message("h.jsonl", b"{\"a\": 1}\n{\"b\": 1}\n")
                .contains("h.jsonl:2`: this line's keys (b)")
        );
        let missing = std::env::temp_dir().join("pitcrew-no-such-table.csv");
        let e = read(&missing, "no.csv", 2).unwrap_err();
        assert!(
            e.message
                .starts_with("cannot read the matrix file `no.csv`"),
            "{e:?}"
        );
        let dir = std::env::temp_dir();
        assert!(
            read(&dir, "tmp", 2)
                .unwrap_err()
                .message
                .contains("not a regular file")
        );
    }
}
