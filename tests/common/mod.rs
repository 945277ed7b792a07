//! Running the real binary on fixture files and reading its reports.

#![allow(dead_code)]

pub mod junit;
pub mod postgres;
pub mod process;
pub mod widgets;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// What one `pitcrew` run left behind.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub json: Option<Value>,
    pub junit: Option<String>,
    pub junit_path: PathBuf,
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A path in the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn scratch(label: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub fn pitcrew(args: &[&str]) -> Output {
    pitcrew_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, &[])
}

/// `pitcrew ARGS` in the folder `cwd`, with extra environment.
pub fn pitcrew_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitcrew"))
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .expect("run pitcrew")
}

/// `pitcrew run FILES --junit … --json …`, reports read back.
pub fn run(files: &[&str], extra: &[&str]) -> Run {
    run_with_env(files, extra, &[])
}

/// Waits (up to 10 s, else fails) until the sandbox API at `base` (`http://…/api/v1`) has `n`
/// callbacks pending (`GET /sandbox/pending`): as many cases are under way, each waiting for
/// its (delayed) callback.
pub fn wait_for_pending(base: &str, n: u64) {
    let url = format!("{base}/sandbox/pending");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let answer: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
            if answer["data"]["deliveries"].as_u64().expect("a count") >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} callbacks never pending at {base}: {answer}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    });
}

/// The embedded sandbox's API from a run's first line (`… on sandbox (http://…/api/v1, …`).
pub fn sandbox_base(first_line: &str) -> String {
    first_line
        .split("sandbox (")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no sandbox in {first_line:?}"))
        .to_string()
}

/// A port nothing listens on (bound, then freed).
pub fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// [`run`] with extra environment variables.
pub fn run_with_env(files: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Run {
    run_in(Path::new(env!("CARGO_MANIFEST_DIR")), files, extra, env)
}

/// [`run`] in the folder `cwd` (where its pitcrew.yaml is found), with extra environment.
pub fn run_in(cwd: &Path, files: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = scratch("run");
    let junit_path = dir.join("junit.xml");
    let json_path = dir.join("report.json");
    let paths: Vec<String> = files
        .iter()
        .map(|f| fixture(f).display().to_string())
        .collect();
    let mut args: Vec<&str> = vec!["run"];
    args.extend(paths.iter().map(String::as_str));
    let (junit_arg, json_arg) = (
        junit_path.display().to_string(),
        json_path.display().to_string(),
    );
    args.extend(["--junit", &junit_arg, "--json", &json_arg]);
    args.extend(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_pitcrew"))
        .args(&args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run pitcrew");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        json: std::fs::read_to_string(&json_path)
            .ok()
            .map(|t| serde_json::from_str(&t).expect("the JSON report parses")),
        junit: std::fs::read_to_string(&junit_path).ok(),
        junit_path,
    }
}

/// Asserts `path` holds JUnit that keeps the contract (see `junit.rs`).
pub fn assert_junit_file_valid(path: &Path) {
    let xml = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if let Err(problems) = junit::check(&xml) {
        panic!(
            "{} breaks the JUnit contract:\n- {}\n{xml}",
            path.display(),
            problems.join("\n- ")
        );
    }
}

/// Serves `app` on an ephemeral loopback port, on a runtime in a thread of its own; returns
/// its address.
pub fn serve_app(app: axum::Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

impl Run {
    /// Each case's name and status, in report order.
    pub fn verdicts(&self) -> Vec<(String, String)> {
        self.json
            .as_ref()
            .unwrap_or_else(|| panic!("{}", self.explain()))["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The JSON report's entry for the case named `name`.
    pub fn case(&self, name: &str) -> &Value {
        let cases = self.json.as_ref().expect("a JSON report")["cases"]
            .as_array()
            .expect("cases");
        cases
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name:?} in {cases:#?}"))
    }

    /// Asserts the JUnit file was written and passes the shared contract checker.
    pub fn assert_junit_valid(&self) {
        assert!(
            self.junit.is_some(),
            "no JUnit file was written\n{}",
            self.stderr
        );
        assert_junit_file_valid(&self.junit_path);
    }

    pub fn explain(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A `pitcrew sandbox` process on an ephemeral port, killed on drop.
pub struct Standalone {
    child: std::process::Child,
    /// Kept open so that the sandbox's later lines have somewhere to go.
    _stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    /// e.g. `http://127.0.0.1:41234/api/v1`
    pub base: String,
}

impl Standalone {
    /// Its `host:port`, for raw connections.
    pub fn addr(&self) -> String {
        self.base
            .trim_start_matches("http://")
            .trim_end_matches("/api/v1")
            .to_string()
    }

    pub fn start() -> Standalone {
        Standalone::start_with(&[])
    }

    /// `pitcrew sandbox --listen 127.0.0.1:0 EXTRA…`.
    pub fn start_with(extra: &[&str]) -> Standalone {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_pitcrew"))
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the sandbox");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a line").expect("utf-8");
        let base = first
            .split_once("API on ")
            .map(|(_, url)| url.trim().to_string())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Standalone {
            child,
            _stdout: lines,
            base,
        }
    }
}

impl Standalone {
    /// Its process id (to stop it, as a hung target).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
