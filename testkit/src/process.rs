//! The process handling every peer shares: spawn with a parent-death signal
//! and output captured to a file, wait until ready with a deadline, stop and
//! reap on drop.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Builds `setsid -- setpriv --pdeathsig KILL <setpriv_args> -- <program>`.
///
/// `setsid` makes the peer lead its own session so that [`PeerProcess`] can
/// find and kill everything it left behind; `setpriv --pdeathsig KILL` makes
/// the kernel kill it when the thread that spawned it exits. Extra
/// `setpriv_args` (e.g. `--reuid=nobody`) share the one `setpriv`: a second,
/// nested `setpriv` that changes credentials would clear the death signal.
pub(crate) fn guarded_command(setpriv_args: &[&str], program: &Path) -> Command {
    let mut cmd = Command::new("setsid");
    cmd.args(["--", "setpriv", "--pdeathsig", "KILL"])
        .args(setpriv_args)
        .arg("--")
        .arg(program);
    cmd
}

/// A running peer. Dropping it stops the peer and everything it started.
pub(crate) struct PeerProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
    stop_signal: &'static str,
    grace: Duration,
    stopped: bool,
}

impl PeerProcess {
    /// Spawns `cmd` (built by [`guarded_command`] or an equivalent that
    /// starts with `setsid`) with stdin closed and stdout+stderr appended to
    /// `log`. On stop the peer first gets `stop_signal`, then `grace` to exit,
    /// then SIGKILL.
    pub(crate) fn spawn(
        name: &'static str,
        mut cmd: Command,
        log: PathBuf,
        stop_signal: &'static str,
        grace: Duration,
    ) -> PeerProcess {
        let out = File::create(&log)
            .unwrap_or_else(|e| panic!("{name}: cannot create log {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log file handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot spawn {cmd:?}: {e}"));
        PeerProcess {
            name,
            child,
            log,
            stop_signal,
            grace,
            stopped: false,
        }
    }

    /// Process id of the peer (it is also its session id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the peer wrote to stdout and stderr so far.
    pub(crate) fn logs(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Polls `ready` every 50 ms until it returns true; panics with the
    /// peer's output when the peer exits first or `timeout` passes.
    pub(crate) async fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl AsyncFnMut() -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready().await {
                return;
            }
            if !is_running(self.pid()) {
                // Stop before reporting: reaps the peer and kills what it left.
                let status = self
                    .stop()
                    .map_or("unknown status".to_owned(), |s| s.to_string());
                panic!(
                    "{} exited ({status}) before it was ready; its output:\n{}",
                    self.name,
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} was not ready within {timeout:?}; its output:\n{}",
                    self.name,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the peer: `stop_signal`, up to `grace` to exit, then SIGKILL to
    /// whatever is left of its process tree and session; reaps it. Idempotent
    /// and never panics (it runs in `Drop`, also while a test unwinds).
    pub(crate) fn stop(&mut self) -> Option<ExitStatus> {
        if !self.stopped {
            self.stopped = true;
            let pid = self.child.id();
            if is_running(pid) {
                kill(self.stop_signal, &[pid]);
                let deadline = Instant::now() + self.grace;
                while is_running(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            // The peer is not reaped yet, so its pid (= session id) cannot
            // have been reused: everything found here belongs to it.
            kill("KILL", &leftovers(pid));
        }
        self.child.wait().ok()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kill -s SIGNAL pids...`, errors ignored (processes may be gone already).
fn kill(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-s")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `(pid, state, ppid, session)` of every process, from `/proc/*/stat`.
fn processes() -> Vec<(u32, char, u32, u32)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        stat(pid).map(|(state, ppid, sid)| (pid, state, ppid, sid))
    })
    .collect()
}

/// `(state, ppid, session)` from `/proc/<pid>/stat`; the command name in
/// parentheses may contain spaces, so parse after the last `)`.
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = text.get(text.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let _pgrp = fields.next()?;
    let sid = fields.next()?.parse().ok()?;
    Some((state, ppid, sid))
}

/// True while `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    matches!(stat(pid), Some((state, _, _)) if state != 'Z' && state != 'X')
}

/// Live processes of `pid`'s session or process tree (PostgreSQL children
/// start their own sessions; RIE's orphans keep its session), `pid` included.
fn leftovers(pid: u32) -> Vec<u32> {
    let all = processes();
    let mut found = vec![pid];
    let mut i = 0;
    while let Some(&parent) = found.get(i) {
        let children: Vec<u32> = all.iter().filter(|p| p.2 == parent).map(|p| p.0).collect();
        found.extend(children);
        i += 1;
    }
    let session: Vec<u32> = all.iter().filter(|p| p.3 == pid).map(|p| p.0).collect();
    found.extend(session);
    found.sort_unstable();
    found.dedup();
    found.retain(|&p| is_running(p));
    found
}
