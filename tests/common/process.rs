//! A `pitcrew` process to talk to while it runs: its output lines as they come, signals, and
//! waits that fail the test instead of hanging it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `pitcrew`.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line read so far.
    pub stdout: Vec<String>,
    stderr_path: PathBuf,
}

impl Running {
    /// Starts `pitcrew ARGS` in the repository, stdout piped, stderr to a file in `dir`.
    pub fn start(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Running {
        let stderr_path = dir.join("stderr.txt");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_pitcrew"));
        command
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start pitcrew");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            stdout: Vec::new(),
            stderr_path,
        }
    }

    /// Waits (up to `timeout`) for a stdout line that `wanted` accepts, and returns it.
    pub fn line(&mut self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no such line within {timeout:?}; stdout so far:\n{}",
                    self.stdout.join("\n")
                ),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory now, in KiB (0 when it cannot be read).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits (up to `timeout`, else fails) until the process catches signal `number` (2 for
    /// SIGINT), as Linux shows in `/proc/PID/status`.
    pub fn catching(&self, number: u32, timeout: Duration) {
        let until = Instant::now() + timeout;
        let status = format!("/proc/{}/status", self.child.id());
        loop {
            let caught = std::fs::read_to_string(&status)
                .ok()
                .and_then(|s| {
                    let mask = s.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                    u64::from_str_radix(mask.trim(), 16).ok()
                })
                .is_some_and(|mask| mask & (1 << (number - 1)) != 0);
            if caught {
                return;
            }
            assert!(
                Instant::now() < until,
                "pitcrew did not catch signal {number} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends a signal (`INT`, `TERM`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (up to `timeout`, else kills it and fails) for the exit code; collects the rest
    /// of stdout and all of stderr.
    pub fn finish(mut self, timeout: Duration) -> (i32, String, String) {
        let until = Instant::now() + timeout;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!(
                    "pitcrew did not exit within {timeout:?}:\n{}",
                    self.stdout.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.stdout.push(line);
        }
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        (code, self.stdout.join("\n"), stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
