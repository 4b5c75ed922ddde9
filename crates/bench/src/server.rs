//! Runs the real `auditlog` binary: admin commands on a data directory, and
//! `serve` on port 0 with the address read from its first line of output.

use crate::error::BenchResult;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `auditlog serve`; stopped with SIGTERM (a graceful drain) by
/// [`Server::stop`], killed if dropped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub pid: u32,
}

impl Server {
    pub fn start(bin: &Path, data_dir: &Path) -> BenchResult<Self> {
        Self::start_with(bin, data_dir, &[])
    }

    /// [`Server::start`] with more arguments of `serve`.
    pub fn start_with(bin: &Path, data_dir: &Path, args: &[&str]) -> BenchResult<Self> {
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("AUDITLOG_DATABASE_URL")
            .env("AUDITLOG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout from auditlog serve")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .ok_or("auditlog serve exited before listening")??;
            if let Some(url) = line.strip_prefix("auditlog listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so that the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let pid = child.id();
        Ok(Self {
            child: Some(child),
            base,
            pid,
        })
    }

    /// A field of /proc/<pid>/status in KiB (`VmHWM` = peak RSS, `VmRSS`).
    pub fn memory_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.pid, field)
    }

    /// SIGTERM, then waits for the drain to finish.
    pub fn stop(mut self) -> BenchResult<()> {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `auditlog --data-dir <dir> <args>` and returns its standard output.
pub fn cli(bin: &Path, data_dir: &Path, args: &[&str]) -> BenchResult<String> {
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("AUDITLOG_DATABASE_URL")
        .env("AUDITLOG_LOG", "warn")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "auditlog {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this build of the binary has a subcommand (features land over time).
pub fn has_subcommand(bin: &Path, name: &str) -> bool {
    Command::new(bin)
        .arg("--help")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} ")))
        })
        .unwrap_or(false)
}

/// Creates an account and a key with both scopes; returns the key.
pub fn account_with_key(bin: &Path, data_dir: &Path, name: &str) -> BenchResult<String> {
    cli(bin, data_dir, &["account", "create", name])?;
    let out = cli(
        bin,
        data_dir,
        &[
            "key",
            "create",
            "--account",
            name,
            "--scope",
            "ingest",
            "--scope",
            "read",
        ],
    )?;
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with("alk_"))
        .map(str::to_string)
        .ok_or_else(|| format!("no key in the output of key create: {out:?}").into())
}

/// Total size of the regular files under `dir`, except finished export
/// files (`exports/`), which are not part of the store.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() && entry.file_name() != "exports" => stack.push(entry.path()),
                Ok(m) if m.is_dir() => {}
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
