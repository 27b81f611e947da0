//! What a scenario needs from the machine: the shared services (the same environment variables
//! as the tests: `TEST_NATS_URL`, `TEST_DATABASE_URL`, `TEST_REDIS_URL`, defaults on localhost),
//! a fresh database and Ort per scenario, a `weberei up` child process, and /proc readings.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bus::{Bus, BusConfig};
use domain::Ort;
use migration::MigratorTrait;
use rand::Rng;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

pub fn nats_url() -> String {
    env_or("TEST_NATS_URL", "nats://127.0.0.1:4222")
}

pub fn redis_url() -> String {
    env_or("TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

pub fn admin_url() -> String {
    env_or(
        "TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

/// An Ort of its own (`bn` + 9 characters). Not named like the tests' Orte on purpose:
/// `testkit-cleanup` (run by `./dev.sh test`, maybe in parallel) would delete a running
/// benchmark's streams. Every scenario deletes its streams when it ends.
pub fn unique_ort() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut ort = String::from("bn");
    for _ in 0..9 {
        ort.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    ort
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A migrated database of its own (`wg_bench_<uuid>`; not `wg_test_`, which `testkit-cleanup`
/// drops). `drop_db` at the end.
pub struct BenchDb {
    pub url: String,
    name: String,
    pub conn: DatabaseConnection,
}

impl BenchDb {
    pub async fn create(pool: u32) -> Result<Self> {
        let admin = admin_url();
        let name = format!("wg_bench_{}", uuid::Uuid::new_v4().simple());
        let admin_conn = Database::connect(&admin)
            .await
            .with_context(|| format!("connecting to {admin}"))?;
        admin_conn
            .execute_unprepared(&format!(
                "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
            ))
            .await?;
        admin_conn.close().await?;
        let url = with_database(&admin, &name);
        let conn = connect(&url, pool).await?;
        migration::Migrator::up(&conn, None)
            .await
            .with_context(|| format!("migrating {name}"))?;
        Ok(Self { url, name, conn })
    }

    pub async fn drop_db(self) -> Result<()> {
        self.conn.close().await?;
        let admin_conn = Database::connect(&admin_url()).await?;
        admin_conn
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await?;
        admin_conn.close().await?;
        Ok(())
    }
}

pub async fn connect(url: &str, pool: u32) -> Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(pool)
        .min_connections(0)
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .with_context(|| format!("connecting to {url}"))
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[start..].find('/') {
        Some(slash) => &base[..start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    }
}

/// A bus on a fresh Ort with its streams created. `delete_streams` at the end.
pub async fn bus(ort: &str, max_bytes: i64) -> Result<Bus> {
    let ort = Ort::new(ort)?;
    let bus = Bus::connect(&nats_url(), BusConfig::new(ort, max_bytes), None).await?;
    bus.ensure_streams().await?;
    Ok(bus)
}

// ---------------------------------------------------------------------------------------------
// /proc

/// Resident set size of a process in kB.
pub fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// CPU time (user + system) a process used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields after the closing parenthesis.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("odd /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the state field.
    let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    Ok((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux this runs on; `getconf CLK_TCK` would say the same.
    100.0
}

/// Busy and total jiffies of the whole machine (first line of /proc/stat).
pub fn machine_jiffies() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or_default();
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

/// CPU use between two readings: (this process in cores, whole machine busy in %).
pub struct CpuMeter {
    pid: u32,
    start: Instant,
    proc_start: f64,
    machine_start: (u64, u64),
}

impl CpuMeter {
    pub fn start(pid: u32) -> Result<Self> {
        Ok(Self {
            pid,
            start: Instant::now(),
            proc_start: cpu_seconds(pid)?,
            machine_start: machine_jiffies()?,
        })
    }

    pub fn read(&self) -> Result<(f64, f64)> {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let cores = (cpu_seconds(self.pid)? - self.proc_start) / wall;
        let (busy, total) = machine_jiffies()?;
        let machine = (busy - self.machine_start.0) as f64
            / (total - self.machine_start.1).max(1) as f64
            * 100.0;
        Ok((cores, machine))
    }
}

pub fn machine_info() -> serde_json::Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    serde_json::json!({ "nproc": cores, "mem_gib": mem_kb as f64 / 1024.0 / 1024.0, "cpu": cpu })
}

// ---------------------------------------------------------------------------------------------
// `weberei up` as a child process

/// A `weberei up` on the shared services with its own Ort and database. Stopped with SIGTERM
/// by `stop` (or killed on drop).
pub struct Weberei {
    child: Child,
    pub addr: String,
}

/// The `weberei` binary next to this one; built first when run through cargo (a no-op when it
/// is up to date), in the same profile as this binary.
pub fn weberei_binary() -> Result<std::path::PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow!("{} has no directory", me.display()))?;
    let bin = dir.join("weberei");
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--quiet", "--bin", "weberei"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let status = cmd.status().context("cargo build --bin weberei")?;
        if !status.success() {
            bail!("cargo build --bin weberei failed");
        }
    }
    if !bin.exists() {
        bail!(
            "{} is missing: build it (cargo build --release --bin weberei) or run the bench through cargo",
            bin.display()
        );
    }
    Ok(bin)
}

impl Weberei {
    pub async fn up(ort: &str, db_url: &str, tick_ms: u64) -> Result<Self> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut child = Command::new(weberei_binary()?)
            .arg("up")
            .env("NATS_URL", nats_url())
            .env("DATABASE_URL", db_url)
            .env("REDIS_URL", redis_url())
            .env("WEBEREI_ORT", ort)
            .env("WEBEREI_DEMO", "false")
            .env("WEBEREI_HTTP_ADDR", &addr)
            .env("WEBEREI_WS_TICK_MS", tick_ms.to_string())
            .env("WEBEREI_STREAM_MAX_BYTES", (256 * 1024 * 1024).to_string())
            .env(
                "RUST_LOG",
                std::env::var("BENCH_WEBEREI_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawning weberei up")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout of weberei"))?;
        let mut lines = BufReader::new(stdout).lines();
        let wanted = format!("Weberei is running at http://{addr}/");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = tokio::time::timeout(left, lines.next_line())
                .await
                .map_err(|_| anyhow!("weberei up printed no URL within 90 s"))??;
            match line {
                Some(l) if l.starts_with(&wanted) => break,
                Some(_) => {}
                None => bail!("weberei up exited before printing its URL"),
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, addr })
    }

    pub fn pid(&self) -> Result<u32> {
        self.child
            .id()
            .ok_or_else(|| anyhow!("weberei has already exited"))
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// SIGTERM, then wait (kill after 20 s).
    pub async fn stop(mut self) -> Result<()> {
        // A system call, not kill(1): a minimal Debian has no procps.
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            self.child.start_kill()?;
        }
        Ok(())
    }
}
