//! The embedded default of `weberei up` (DESIGN.md §8): where `NATS_URL`, `DATABASE_URL` or
//! `REDIS_URL` is unset, start nats-server (JetStream), PostgreSQL (+PostGIS) and redis-server
//! from the system's binaries, with their data and logs under one data dir, and stop them cleanly.
//!
//! This module only runs servers: it never migrates, never seeds, and never touches the machine's
//! shared services (its own ports, its own data dir). Every server it starts is either stopped by
//! [`Embedded::stop`] or, after a crash, found again through its pid file / `pg_ctl status` and
//! stopped before the next start.
//!
//! Layout of the data dir:
//! `nats.conf`, `nats.pid`, `nats.log`, `nats/` (JetStream store);
//! `redis.pid`, `redis.log`, `redis/` (append-only file, holds the fallback events);
//! `pg/` (the cluster), `pg.log`, `pg-initdb.log`, `run/` (PostgreSQL's socket dir).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::process::{Child, Command};

mod child;
mod nats;
mod postgres;
mod redis;
use child::*;
use nats::*;
use postgres::*;
use redis::*;

/// Where the embedded servers keep their data and which ports they listen on (127.0.0.1 only).
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub data_dir: PathBuf,
    pub nats_port: u16,
    pub pg_port: u16,
    pub redis_port: u16,
    /// JetStream's `max_file_store`, in nats-server's size syntax (`4G`, `512MB`, ...).
    pub nats_max_file_store: String,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            nats_port: 14222,
            pg_port: 15432,
            redis_port: 16379,
            nats_max_file_store: "4G".to_owned(),
        }
    }
}

/// Which servers to start: those whose URL the user did not give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub nats: bool,
    pub postgres: bool,
    pub redis: bool,
}

/// The URLs of the servers that were started (`None` for those not wanted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbeddedUrls {
    pub nats_url: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
}

/// The running embedded servers. Call [`Embedded::stop`]; dropping it without `stop` only sends
/// the stop signals (best effort) and does not wait.
#[derive(Debug)]
pub struct Embedded {
    /// Held while the servers run (released by the kernel even on kill -9): two `weberei up` on
    /// one data dir would take each other's servers for stale ones.
    lock: Option<std::fs::File>,
    nats: Option<ChildServer>,
    redis: Option<ChildServer>,
    postgres: Option<Postgres>,
}

/// The database the embedded PostgreSQL serves to Weberei.
pub(crate) const DATABASE: &str = "weberei";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// `pg_ctl -t`, seconds: crash recovery after a kill can take a while on a slow disk.
const PG_CTL_TIMEOUT_SECS: &str = "120";

impl Embedded {
    /// Starts the wanted servers (concurrently) and waits until each answers. When one fails,
    /// the others that did start are stopped again before the error is returned.
    pub async fn start(cfg: &EmbeddedConfig, wanted: Wanted) -> Result<(Embedded, EmbeddedUrls)> {
        let data_dir = prepare_data_dir(&cfg.data_dir)?;
        let lock = lock_data_dir(&data_dir)?;
        let started = Instant::now();

        let (nats, redis, postgres) = tokio::join!(
            maybe(wanted.nats, start_nats(&data_dir, cfg)),
            maybe(wanted.redis, start_redis(&data_dir, cfg.redis_port)),
            maybe(wanted.postgres, start_postgres(&data_dir, cfg.pg_port)),
        );

        let mut errors = Vec::new();
        let nats = nats.unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let redis = redis.unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let postgres = postgres.unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let embedded = Embedded {
            lock: Some(lock),
            nats,
            redis,
            postgres,
        };

        if !errors.is_empty() {
            if let Err(e) = embedded.stop().await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "stopping the servers that did start"
                );
            }
            let all: Vec<String> = errors.iter().map(|e| format!("{e:#}")).collect();
            bail!("{}", all.join("\n"));
        }

        let urls = EmbeddedUrls {
            nats_url: embedded
                .nats
                .as_ref()
                .map(|s| format!("nats://127.0.0.1:{}", s.port)),
            database_url: embedded
                .postgres
                .as_ref()
                .map(|p| format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", p.port)),
            redis_url: embedded
                .redis
                .as_ref()
                .map(|s| format!("redis://127.0.0.1:{}", s.port)),
        };
        tracing::info!(
            data_dir = %data_dir.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedded servers are up"
        );
        Ok((embedded, urls))
    }

    /// Stops every server it started, concurrently: nats-server with SIGINT, redis-server with
    /// SIGTERM (it fsyncs its append-only file), PostgreSQL with `pg_ctl stop -m fast`; waits
    /// for each to exit (SIGKILL after 30 s).
    pub async fn stop(mut self) -> Result<()> {
        let started = Instant::now();
        let nats = self.nats.take();
        let redis = self.redis.take();
        let postgres = self.postgres.take();
        let (a, b, c) = tokio::join!(
            async {
                match nats {
                    Some(s) => s.stop().await,
                    None => Ok(()),
                }
            },
            async {
                match redis {
                    Some(s) => s.stop().await,
                    None => Ok(()),
                }
            },
            async {
                match postgres {
                    Some(p) => p.stop().await,
                    None => Ok(()),
                }
            },
        );
        // Only now may another `weberei up` take this data dir.
        drop(self.lock.take());
        let errors: Vec<String> = [a, b, c]
            .into_iter()
            .filter_map(Result::err)
            .map(|e| format!("{e:#}"))
            .collect();
        if !errors.is_empty() {
            bail!("stopping the embedded servers: {}", errors.join("; "));
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedded servers stopped"
        );
        Ok(())
    }
}

impl Drop for Embedded {
    /// Only reached without [`Embedded::stop`] (a panic, an early return): ask the servers to
    /// stop, without waiting; whatever survives is cleaned up by the next start.
    fn drop(&mut self) {
        for server in [self.nats.as_ref(), self.redis.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Some(pid) = server.child.id() {
                send_signal(pid, server.stop_signal);
            }
        }
        if let Some(pg) = &self.postgres {
            let mut cmd = pg.tools.std_command("pg_ctl");
            cmd.arg("stop")
                .arg("-D")
                .arg(&pg.pgdata)
                .args(["-m", "fast", "-W"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = cmd.status();
        }
    }
}

async fn maybe<T>(wanted: bool, fut: impl Future<Output = Result<T>>) -> Result<Option<T>> {
    if wanted {
        fut.await.map(Some)
    } else {
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers: the data dir, ports, binaries, command output and logs

fn prepare_data_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data dir {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("resolving the data dir {}", dir.display()))
}

fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File> {
    let path = data_dir.join("weberei.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another `weberei up` is running on the data dir {} (it holds {}): stop it first, \
             or set WEBEREI_DATA_DIR to another dir",
            data_dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Bind before starting, so a taken port gives a message that says what to do.
fn ensure_port_free(port: u16, server: &str, port_var: &str, url_var: &str) -> Result<()> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(e) => bail!(
            "port {port} for the embedded {server} is in use ({e}): another `weberei up` is \
             running, or another program holds it; set {port_var} to another port, or {url_var} \
             to use your own server"
        ),
    }
}

/// PATH, then the sbin dirs a normal user's PATH lacks (Debian puts nats-server in /usr/sbin).
fn find_binary(name: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/local/sbin",
                "/sbin",
                "/usr/bin",
                "/usr/local/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "{name} was not found on the PATH or in /usr/sbin: install the Debian package \
                 `{package}` (./dev.sh up does), or set its URL to use your own server"
            )
        })
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stdout.trim());
    }
    if text.is_empty() {
        text = exit_text(out.status);
    }
    text
}

fn exit_text(status: ExitStatus) -> String {
    format!("exited with {status}")
}

/// The last lines of a log, to put the cause into the error itself.
fn log_tail(log: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(log) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(8)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!("; its last lines:\n  {}", tail.join("\n  "))
    }
}

#[cfg(test)]
mod tests;
