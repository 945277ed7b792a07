//! A throwaway PostgreSQL cluster of the test's own: `initdb` in a temp dir, a free port on
//! loopback, run as the `postgres` user when the tests run as root. A test without PostgreSQL
//! on the machine skips with a printed reason, unless `PITCREW_REQUIRE_POSTGRES` is set (as
//! `.ci/run` sets it): then the skip is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; stopped and removed when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
}

/// The folder holding `initdb`, `pg_ctl` and `postgres`: `PITCREW_PG_BIN`, else Debian's
/// newest `/usr/lib/postgresql/N/bin`, else `pg_config --bindir`.
fn binaries() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("PITCREW_PG_BIN") {
        return Some(PathBuf::from(bin));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    bin.join("initdb").exists().then_some(bin)
}

/// Skips the calling test (`None`) with `why`, or fails it when PostgreSQL is required.
fn skip(why: &str) -> Option<Postgres> {
    if std::env::var_os("PITCREW_REQUIRE_POSTGRES").is_some() {
        panic!("PostgreSQL is required here (PITCREW_REQUIRE_POSTGRES) but {why}");
    }
    eprintln!("SKIPPED: {why} (set PITCREW_REQUIRE_POSTGRES=1 to make this a failure)");
    None
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    /// A new cluster, started; `None` (printed) when the machine has no PostgreSQL.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = binaries() else {
            return skip("no PostgreSQL is installed (no initdb under /usr/lib/postgresql)");
        };
        let as_postgres = is_root();
        if as_postgres
            && !Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success())
        {
            return skip("the tests run as root and there is no `postgres` user to run it as");
        }
        let dir = tempfile::Builder::new()
            .prefix("pitcrew-pg-")
            .tempdir()
            .expect("a temp dir");
        let postgres = Postgres {
            dir,
            bin,
            as_postgres,
            port: super::dead_port(),
        };
        if as_postgres {
            let chown = Command::new("chown")
                .args(["postgres:postgres", &postgres.path().display().to_string()])
                .status()
                .expect("chown");
            assert!(chown.success(), "chown the cluster's folder to postgres");
        }
        let data = postgres.data();
        postgres.must(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        postgres.restart();
        Some(postgres)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> String {
        self.path().join("data").display().to_string()
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when root).
    fn program(&self, name: &str, args: &[&str]) -> Output {
        let program = self.bin.join(name);
        let mut command = match self.as_postgres {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            }
            false => Command::new(program),
        };
        command
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
    }

    fn must(&self, name: &str, args: &[&str]) {
        let out = self.program(name, args);
        assert!(
            out.status.success(),
            "{name} {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.path().join("log")).unwrap_or_default()
        );
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts it (again, on the same port), and waits until it takes connections.
    pub fn restart(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.path().display()
        );
        let log = self.path().join("log").display().to_string();
        self.must(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops it (fast: sessions are cut), as a database that goes away.
    pub fn stop(&self) {
        self.must("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Runs SQL with `psql`, returning what it printed (unaligned, tuples only).
    pub fn sql(&self, sql: &str) -> String {
        let out = self.program(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-At",
                "-c",
                sql,
            ],
        );
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.program("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}
