//! The embedded servers that stay our own children (nats-server, redis-server): spawning one
//! with its log, waiting until it answers, stopping it, and finding one left running by a crash
//! through its pid file.

use super::*;

#[derive(Debug)]
pub(super) struct ChildServer {
    pub(super) name: &'static str,
    /// nats-server shuts down the same on INT and TERM but exits 1 on TERM; redis-server
    /// fsyncs its append-only file on TERM.
    pub(super) stop_signal: &'static str,
    pub(super) child: Child,
    pub(super) port: u16,
    pub(super) pid_file: PathBuf,
}

impl ChildServer {
    pub(super) async fn stop(mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            tracing::warn!(server = self.name, %status, "had already exited");
            let _ = std::fs::remove_file(&self.pid_file);
            return Ok(());
        }
        if let Some(pid) = self.child.id() {
            send_signal(pid, self.stop_signal);
        }
        let status = match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                tracing::warn!(server = self.name, "did not stop within 30 s; killing it");
                self.child.kill().await?;
                self.child.wait().await?
            }
        };
        let _ = std::fs::remove_file(&self.pid_file);
        tracing::info!(server = self.name, port = self.port, %status, "stopped");
        Ok(())
    }
}

pub(super) fn spawn_logged(mut cmd: Command, log: &Path, name: &str) -> Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Own process group: a Ctrl-C in the terminal reaches only weberei, which then stops
        // the servers after the API and workers are done with them.
        .process_group(0)
        .kill_on_drop(false);
    cmd.spawn().with_context(|| format!("starting {name}"))
}

/// Polls `probe` until it answers, the child exits, or [`READY_TIMEOUT`] passes.
pub(super) async fn wait_ready<F, Fut>(server: &mut ChildServer, log: &Path, probe: F) -> Result<()>
where
    F: Fn(u16) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "{} exited ({status}) before it was ready; see {}{}",
                server.name,
                log.display(),
                log_tail(log)
            );
        }
        let last = match tokio::time::timeout(Duration::from_secs(2), probe(server.port)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => anyhow!("no answer within 2 s"),
        };
        if Instant::now() > deadline {
            bail!(
                "{} on port {} was not ready within {} s ({last:#}); see {}{}",
                server.name,
                server.port,
                READY_TIMEOUT.as_secs(),
                log.display(),
                log_tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After a crash (kill -9 of weberei) our child servers keep running as orphans, holding their
/// ports and data. Their pid file finds them; the process name guards against a reused pid.
pub(super) async fn stop_stale(pid_file: &Path, comm: &str) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        let _ = std::fs::remove_file(pid_file);
        return Ok(());
    };
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if process_alive(pid) && name.trim() == comm {
        tracing::warn!(
            pid,
            pid_file = %pid_file.display(),
            "stopping a {comm} left running by an earlier `weberei up`"
        );
        send_signal(pid, "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while process_alive(pid) {
            if Instant::now() > deadline {
                send_signal(pid, "KILL");
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}

/// Alive = exists and is not a zombie (a zombie holds no port and no file).
pub(super) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// `kill -<signal> <pid>`: the workspace forbids `unsafe`, and this is rare enough.
pub(super) fn send_signal(pid: u32, signal: &str) {
    // A system call, not `kill(1)`: a minimal Debian has no procps.
    let Ok(sig) = format!("SIG{signal}").parse::<nix::sys::signal::Signal>() else {
        tracing::error!(signal, "not a signal name");
        return;
    };
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
        tracing::debug!(pid, signal, error = %e, "signal not delivered");
    }
}
