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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

mod postgres;
use postgres::*;

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
// nats-server and redis-server: our own children

#[derive(Debug)]
struct ChildServer {
    name: &'static str,
    /// nats-server shuts down the same on INT and TERM but exits 1 on TERM; redis-server
    /// fsyncs its append-only file on TERM.
    stop_signal: &'static str,
    child: Child,
    port: u16,
    pid_file: PathBuf,
}

impl ChildServer {
    async fn stop(mut self) -> Result<()> {
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

async fn start_nats(data_dir: &Path, cfg: &EmbeddedConfig) -> Result<ChildServer> {
    let bin = find_binary("nats-server", "nats-server")?;
    let max_file_store = &cfg.nats_max_file_store;
    if max_file_store.is_empty() || !max_file_store.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("nats max_file_store {max_file_store:?} is not a size like 4G or 512MB");
    }
    let pid_file = data_dir.join("nats.pid");
    let log = data_dir.join("nats.log");
    let store = data_dir.join("nats");
    std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
    stop_stale(&pid_file, "nats-server").await?;
    ensure_port_free(
        cfg.nats_port,
        "nats-server",
        "WEBEREI_NATS_PORT",
        "NATS_URL",
    )?;

    let conf = data_dir.join("nats.conf");
    let text = format!(
        "# written by `weberei up` on every start; edits are overwritten\n\
         listen: \"127.0.0.1:{port}\"\n\
         pid_file: {pid}\n\
         jetstream {{\n  store_dir: {store}\n  max_file_store: {max_file_store}\n  max_memory_store: 256MB\n}}\n",
        port = cfg.nats_port,
        pid = conf_string(&pid_file)?,
        store = conf_string(&store)?,
    );
    std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;

    let mut cmd = Command::new(&bin);
    cmd.arg("-c").arg(&conf);
    let child = spawn_logged(cmd, &log, "nats-server")?;
    let mut server = ChildServer {
        name: "nats-server",
        stop_signal: "INT",
        child,
        port: cfg.nats_port,
        pid_file,
    };
    let started = Instant::now();
    if let Err(e) = wait_ready(&mut server, &log, nats_ready).await {
        let _ = server.stop().await;
        return Err(e);
    }
    tracing::info!(
        port = cfg.nats_port,
        log = %log.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "nats-server (JetStream) is up"
    );
    Ok(server)
}

async fn start_redis(data_dir: &Path, port: u16) -> Result<ChildServer> {
    let bin = find_binary("redis-server", "redis-server")?;
    let pid_file = data_dir.join("redis.pid");
    let log = data_dir.join("redis.log");
    let dir = data_dir.join("redis");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    stop_stale(&pid_file, "redis-server").await?;
    ensure_port_free(port, "redis-server", "WEBEREI_REDIS_PORT", "REDIS_URL")?;

    let mut cmd = Command::new(&bin);
    cmd.arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .arg("--pidfile")
        .arg(&pid_file)
        // Redis holds the fallback events while NATS is down: they must survive a restart.
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ]);
    let child = spawn_logged(cmd, &log, "redis-server")?;
    let mut server = ChildServer {
        name: "redis-server",
        stop_signal: "TERM",
        child,
        port,
        pid_file,
    };
    let started = Instant::now();
    if let Err(e) = wait_ready(&mut server, &log, redis_ready).await {
        let _ = server.stop().await;
        return Err(e);
    }
    tracing::info!(
        port,
        log = %log.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "redis-server is up"
    );
    Ok(server)
}

/// A nats-server config string: double-quoted, with `\` and `"` escaped.
fn conf_string(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .ok_or_else(|| anyhow!("{} is not valid UTF-8", path.display()))?;
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

fn spawn_logged(mut cmd: Command, log: &Path, name: &str) -> Result<Child> {
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
async fn wait_ready<F, Fut>(server: &mut ChildServer, log: &Path, probe: F) -> Result<()>
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

/// nats-server greets every client with `INFO {...}`; with JetStream on, it says so there.
async fn nats_ready(port: u16) -> Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut buf = vec![0u8; 8192];
    let n = stream.read(&mut buf).await?;
    let greeting = String::from_utf8_lossy(&buf[..n]);
    if !greeting.starts_with("INFO ") {
        bail!("unexpected greeting {greeting:?}");
    }
    if !greeting.contains("\"jetstream\":true") {
        bail!("JetStream is not enabled yet");
    }
    Ok(())
}

/// `PING` → `+PONG`; while loading its append-only file Redis answers `-LOADING`.
async fn redis_ready(port: u16) -> Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).await?;
    let answer = String::from_utf8_lossy(&buf[..n]);
    if !answer.starts_with("+PONG") {
        bail!("answered {:?}", answer.trim_end());
    }
    Ok(())
}

/// After a crash (kill -9 of weberei) our child servers keep running as orphans, holding their
/// ports and data. Their pid file finds them; the process name guards against a reused pid.
async fn stop_stale(pid_file: &Path, comm: &str) -> Result<()> {
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
fn process_alive(pid: u32) -> bool {
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
fn send_signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a cluster under <data>/pg, run by pg_ctl (the postmaster detaches from us)

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

fn effective_uid() -> Result<u32> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| anyhow!("no effective uid in /proc/self/status"))
}

fn system_user(name: &str) -> Option<SystemUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        Some(SystemUser {
            name: name.to_owned(),
            uid: fields.next()?.parse().ok()?,
            gid: fields.next()?.parse().ok()?,
        })
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
mod tests {
    use super::*;

    fn free_port() -> Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    }

    fn test_config(dir: &Path) -> Result<EmbeddedConfig> {
        Ok(EmbeddedConfig {
            data_dir: dir.to_path_buf(),
            nats_port: free_port()?,
            pg_port: free_port()?,
            redis_port: free_port()?,
            nats_max_file_store: "256MB".to_owned(),
        })
    }

    const ALL: Wanted = Wanted {
        nats: true,
        postgres: true,
        redis: true,
    };

    async fn assert_all_answer(cfg: &EmbeddedConfig, urls: &EmbeddedUrls) -> Result<()> {
        nats_ready(cfg.nats_port).await?;
        redis_ready(cfg.redis_port).await?;
        let tools = find_pg_tools(&cfg.data_dir.join("pg"))?;
        let out = tools
            .psql(cfg.pg_port, DATABASE, "SELECT current_database()")
            .output()
            .await?;
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), DATABASE);
        assert_eq!(
            urls.database_url.as_deref(),
            Some(format!("postgres://postgres@127.0.0.1:{}/weberei", cfg.pg_port).as_str())
        );
        Ok(())
    }

    fn assert_ports_free(cfg: &EmbeddedConfig) {
        for port in [cfg.nats_port, cfg.pg_port, cfg.redis_port] {
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} still in use"
            );
        }
    }

    #[tokio::test]
    async fn servers_start_stop_and_start_again_on_the_same_data() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let cfg = test_config(dir.path())?;

        let t = Instant::now();
        let (embedded, urls) = Embedded::start(&cfg, ALL).await?;
        eprintln!("first start (with initdb): {:?}", t.elapsed());
        assert_all_answer(&cfg, &urls).await?;
        let t = Instant::now();
        embedded.stop().await?;
        eprintln!("stop: {:?}", t.elapsed());
        assert_ports_free(&cfg);

        let t = Instant::now();
        let (embedded, urls) = Embedded::start(&cfg, ALL).await?;
        eprintln!("second start: {:?}", t.elapsed());
        assert_all_answer(&cfg, &urls).await?;
        embedded.stop().await?;
        assert_ports_free(&cfg);
        Ok(())
    }

    #[tokio::test]
    async fn servers_left_by_a_crash_are_stopped_before_the_next_start() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let cfg = test_config(dir.path())?;
        let (mut embedded, _) = Embedded::start(&cfg, ALL).await?;
        // What a kill -9 of weberei leaves behind: every server still running, nobody to stop
        // it, and the data dir's lock released by the kernel.
        drop(embedded.lock.take());
        std::mem::forget(embedded);

        let restarted = async {
            let (embedded, urls) = Embedded::start(&cfg, ALL).await?;
            assert_all_answer(&cfg, &urls).await?;
            embedded.stop().await
        }
        .await;
        if restarted.is_err() {
            // Don't leave the "crashed" servers running past the test's temporary dir.
            stop_stale(&dir.path().join("nats.pid"), "nats-server").await?;
            stop_stale(&dir.path().join("redis.pid"), "redis-server").await?;
            let tools = find_pg_tools(&dir.path().join("pg"))?;
            let mut pg_ctl = tools.command("pg_ctl");
            pg_ctl.arg("stop").arg("-D").arg(dir.path().join("pg"));
            let _ = pg_ctl.args(["-m", "immediate"]).output().await;
        }
        restarted?;
        assert_ports_free(&cfg);
        Ok(())
    }

    #[tokio::test]
    async fn a_port_in_use_is_named_in_the_error() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut cfg = test_config(dir.path())?;
        cfg.redis_port = taken.local_addr()?.port();

        let Err(e) = Embedded::start(&cfg, ALL).await else {
            bail!("start succeeded on a taken port");
        };
        let text = format!("{e:#}");
        assert!(
            text.contains(&format!("port {} ", cfg.redis_port)),
            "{text}"
        );
        assert!(text.contains("WEBEREI_REDIS_PORT"), "{text}");
        // What did start was stopped again.
        assert_ports_free(&EmbeddedConfig {
            redis_port: free_port()?,
            ..cfg
        });
        Ok(())
    }
}
