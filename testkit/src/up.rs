//! A running `weberei` binary for system tests: `weberei up` (API + projection + jobs
//! workers) with a fresh database and a unique Ort against the machine's shared NATS,
//! PostgreSQL and Redis, or a second process (`weberei api`) beside it.
//!
//! testkit cannot know where cargo put the binary: the test passes it in.
//!
//! ```ignore
//! let up = testkit::up::Up::start(env!("CARGO_BIN_EXE_weberei"), Options::default()).await;
//! let client = weberei_client::Client::new(up.url())?;
//! // ...
//! drop(up); // SIGTERM, wait, delete the Ort's streams, drop the database
//! ```
//!
//! Defaults: `WEBEREI_DEMO=false`, `WEBEREI_WS_TICK_MS=200`. The binary's stdout and stderr
//! are printed with a tag (the test harness shows them when a test fails). `Up::start`
//! returns once the binary printed its URL and `GET /health/ready` answered 200.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How to start the binary.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subcommand: `up` (default) or `api`.
    pub subcommand: String,
    /// `WEBEREI_WS_TICK_MS`; `None` leaves it unset (the binary's default, 1.5 s).
    pub ws_tick_ms: Option<u64>,
    /// `WEBEREI_WS_QUEUE`; `None` leaves it unset.
    pub ws_queue: Option<usize>,
    /// `WEBEREI_DEMO` (default false: an empty town).
    pub demo: bool,
    /// Further environment variables (set after the ones above, so they win).
    pub env: Vec<(String, String)>,
    /// How long to wait for the URL line and readiness.
    pub ready_timeout: Duration,
    /// How long SIGTERM may take before the process is killed.
    pub stop_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            subcommand: "up".to_owned(),
            ws_tick_ms: Some(200),
            ws_queue: None,
            demo: false,
            env: Vec::new(),
            ready_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(30),
        }
    }
}

impl Options {
    /// Set `WEBEREI_WS_TICK_MS` (`None`: the binary's default).
    pub fn ws_tick_ms(mut self, ms: Option<u64>) -> Self {
        self.ws_tick_ms = ms;
        self
    }

    /// Set `WEBEREI_WS_QUEUE`.
    pub fn ws_queue(mut self, n: usize) -> Self {
        self.ws_queue = Some(n);
        self
    }

    /// Set any other environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Run another subcommand (e.g. `api`).
    pub fn subcommand(mut self, subcommand: impl Into<String>) -> Self {
        self.subcommand = subcommand.into();
        self
    }
}

/// A running `weberei` process. Dropping it sends SIGTERM and waits (killing it after
/// `stop_timeout`); the one that created the Ort also deletes the Ort's NATS streams and
/// drops the database.
pub struct Up {
    child: Option<Child>,
    bin: String,
    addr: String,
    url: String,
    url_line: String,
    ort: String,
    db_url: String,
    db: Option<crate::TestDb>,
    owns_ort: bool,
    stop_timeout: Duration,
    tag: String,
}

impl Up {
    /// `bin <subcommand>` with a fresh database and a unique Ort.
    pub async fn start(bin: &str, options: Options) -> Up {
        let db = crate::fresh_database().await;
        let ort = crate::unique_ort();
        let db_url = db.url.clone();
        let mut up = Up::spawn(bin, &ort, &db_url, &options).await;
        up.db = Some(db);
        up.owns_ort = true;
        up
    }

    /// Another process of the same binary on this one's Ort, database and servers
    /// (typically `Options::default().subcommand("api")`). It leaves the Ort alone when
    /// dropped.
    pub async fn beside(&self, options: Options) -> Up {
        Up::spawn(&self.bin, &self.ort, &self.db_url, &options).await
    }

    async fn spawn(bin: &str, ort: &str, db_url: &str, options: &Options) -> Up {
        let addr = format!("127.0.0.1:{}", crate::free_port());
        let mut cmd = Command::new(bin);
        cmd.arg(&options.subcommand)
            .env("NATS_URL", crate::nats_url())
            .env("DATABASE_URL", db_url)
            .env("REDIS_URL", crate::redis_url())
            .env("WEBEREI_ORT", ort)
            .env("WEBEREI_DEMO", options.demo.to_string())
            .env("WEBEREI_HTTP_ADDR", &addr)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match options.ws_tick_ms {
            Some(ms) => cmd.env("WEBEREI_WS_TICK_MS", ms.to_string()),
            None => cmd.env_remove("WEBEREI_WS_TICK_MS"),
        };
        match options.ws_queue {
            Some(n) => cmd.env("WEBEREI_WS_QUEUE", n.to_string()),
            None => cmd.env_remove("WEBEREI_WS_QUEUE"),
        };
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {bin} {}: {e}", options.subcommand));
        let tag = format!("{ort} {} {addr}", options.subcommand);

        // stderr: printed as it comes.
        let stderr = child.stderr.take().expect("piped stderr");
        {
            let tag = tag.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    println!("[{tag} stderr] {line}");
                }
            });
        }
        // stdout: printed as it comes; the URL line is handed over. Reading on to the end
        // keeps the binary from blocking on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let wanted = format!("Weberei is running at http://{addr}/");
        let (url_tx, url_rx) = tokio::sync::oneshot::channel::<String>();
        {
            let tag = tag.clone();
            std::thread::spawn(move || {
                let mut url_tx = Some(url_tx);
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    println!("[{tag} stdout] {line}");
                    if line.starts_with(&wanted)
                        && let Some(tx) = url_tx.take()
                    {
                        let _ = tx.send(line);
                    }
                }
            });
        }

        let mut up = Up {
            child: Some(child),
            bin: bin.to_owned(),
            url: format!("http://{addr}"),
            addr,
            url_line: String::new(),
            ort: ort.to_owned(),
            db_url: db_url.to_owned(),
            db: None,
            owns_ort: false,
            stop_timeout: options.stop_timeout,
            tag,
        };
        let started = Instant::now();
        match tokio::time::timeout(options.ready_timeout, url_rx).await {
            Ok(Ok(line)) => up.url_line = line,
            Ok(Err(_)) => {
                let status = up.child.as_mut().and_then(|c| c.wait().ok());
                panic!(
                    "{} closed stdout ({status:?}) before printing its URL",
                    up.tag
                );
            }
            Err(_) => panic!(
                "{} printed no URL within {:?}",
                up.tag, options.ready_timeout
            ),
        }
        let left = options.ready_timeout.saturating_sub(started.elapsed());
        up.wait_ready(left).await;
        println!("{} ready after {:?}", up.tag, started.elapsed());
        up
    }

    /// Poll `GET /health/ready` until it answers 200.
    async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match http_status(&self.addr, "/health/ready").await {
                Some(200) => return,
                status => {
                    assert!(
                        Instant::now() < deadline,
                        "{}: /health/ready answered {status:?} until the timeout",
                        self.tag
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `ws://127.0.0.1:<port>/graphql/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// The line the binary printed when it was ready (`Weberei is running at ...`).
    pub fn url_line(&self) -> &str {
        &self.url_line
    }

    /// The Ort (also in stream names `wg_<ort>_*`).
    pub fn ort(&self) -> &str {
        &self.ort
    }

    /// The database URL.
    pub fn db_url(&self) -> &str {
        &self.db_url
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Run the same binary once more with another subcommand and this Ort's environment
    /// (e.g. `["admin", "verify", id]`); returns its output.
    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(&self.bin)
            .args(args)
            .env("NATS_URL", crate::nats_url())
            .env("DATABASE_URL", &self.db_url)
            .env("REDIS_URL", crate::redis_url())
            .env("WEBEREI_ORT", &self.ort)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", self.bin))
    }

    /// SIGTERM, and wait for the process to exit (killing it after the stop timeout).
    /// Returns its exit status; `None` if it had to be killed or was already stopped.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = crate::terminate(child.id());
        let deadline = Instant::now() + self.stop_timeout;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => {
                    println!("{} exited: {status}", self.tag);
                    return Some(status);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break,
            }
        }
        println!(
            "{} did not exit within {:?} after SIGTERM; killing it",
            self.tag, self.stop_timeout
        );
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.stop();
        if !self.owns_ort {
            return;
        }
        // Async cleanup on a thread of its own: this may run inside the test's runtime.
        let ort = self.ort.clone();
        let db = self.db.take();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async move {
                delete_streams(&ort).await;
                if let Some(db) = db {
                    db.drop_db().await;
                }
            });
        });
        if cleanup.join().is_err() {
            println!("cleanup of Ort {} failed", self.ort);
        }
    }
}

/// Delete the NATS streams of `ort` (`wg_<ort>_{social,governance,finance,dlq,system}`).
pub async fn delete_streams(ort: &str) {
    match async_nats::connect(crate::nats_url()).await {
        Ok(client) => {
            let js = async_nats::jetstream::new(client);
            for domain in ["social", "governance", "finance", "dlq", "system"] {
                let _ = js.delete_stream(format!("wg_{ort}_{domain}")).await;
            }
        }
        Err(e) => println!("cleanup: connecting to NATS failed: {e}"),
    }
}

/// The status code of `GET path` on `addr` (plain HTTP/1.1), or `None` when there is no
/// answer.
async fn http_status(addr: &str, path: &str) -> Option<u16> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
}
