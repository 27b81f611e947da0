//! System test of `weberei up` as a user starts it, with nothing configured: the binary starts
//! its own nats-server, PostgreSQL and redis-server under a data dir, serves `/health/ready`,
//! stops everything on SIGTERM, and starts again on the same data.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const URL_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A port nobody listens on right now (bound to :0, then released).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[derive(Debug, Clone, Copy)]
struct Ports {
    nats: u16,
    pg: u16,
    redis: u16,
    http: u16,
}

impl Ports {
    fn pick() -> Result<Self> {
        Ok(Self {
            nats: free_port()?,
            pg: free_port()?,
            redis: free_port()?,
            http: free_port()?,
        })
    }

    fn all(&self) -> [u16; 4] {
        [self.nats, self.pg, self.redis, self.http]
    }
}

/// A running `weberei up`. Dropped without [`Up::stop`] (a failed assertion), it still sends
/// SIGTERM and waits, so no server outlives the test and its temporary data dir.
struct Up {
    child: Option<Child>,
    url: String,
}

impl Up {
    async fn start(data_dir: &Path, ports: Ports) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weberei"))
            .arg("up")
            .env_remove("NATS_URL")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env("WEBEREI_DATA_DIR", data_dir)
            .env("WEBEREI_NATS_PORT", ports.nats.to_string())
            .env("WEBEREI_PG_PORT", ports.pg.to_string())
            .env("WEBEREI_REDIS_PORT", ports.redis.to_string())
            .env("WEBEREI_HTTP_ADDR", format!("127.0.0.1:{}", ports.http))
            .env("WEBEREI_ORT", "testort")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning weberei up")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut up = Up {
            child: Some(child),
            url: String::new(),
        };

        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + URL_TIMEOUT;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match tokio::time::timeout(left, lines.next_line()).await {
                Ok(line) => line?,
                Err(_) => bail!("weberei up printed no http:// URL within {URL_TIMEOUT:?}"),
            };
            let Some(line) = line else {
                let status = match up.child.as_mut() {
                    Some(child) => child.wait().await?.to_string(),
                    None => "gone".to_owned(),
                };
                bail!("weberei up closed stdout ({status}) before printing its URL");
            };
            println!("weberei up: {line}");
            if let Some(at) = line.find("http://") {
                let url = line[at..].split_whitespace().next().unwrap_or_default();
                break url.trim_end_matches('/').to_owned();
            }
        };
        // Keep draining stdout, so that the server never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                println!("weberei up: {line}");
            }
        });
        ensure!(
            url.contains(&format!("127.0.0.1:{}", ports.http)),
            "printed URL {url} is not on WEBEREI_HTTP_ADDR"
        );
        up.url = url;
        Ok(up)
    }

    async fn wait_ready(&self) -> Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let url = format!("{}/health/ready", self.url);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let last = match client.get(&url).send().await {
                Ok(resp) if resp.status() == reqwest::StatusCode::OK => return Ok(()),
                Ok(resp) => format!(
                    "{}: {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                ),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!("{url} was not 200 within {READY_TIMEOUT:?}; last answer: {last}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How many Knoten the demo town shows around Weimar (projected asynchronously).
    async fn demo_knoten(&self) -> Result<usize> {
        let client = reqwest::Client::new();
        let query = r#"{ knoten(bbox: {west: 11.2, south: 50.9, east: 11.4, north: 51.0}) { edges { node { id } } } }"#;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body: serde_json::Value = client
                .post(format!("{}/graphql", self.url))
                .json(&serde_json::json!({ "query": query }))
                .send()
                .await?
                .json()
                .await?;
            let n = body["data"]["knoten"]["edges"]
                .as_array()
                .map_or(0, Vec::len);
            if n >= 8 || Instant::now() > deadline {
                return Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, as systemd or `docker stop` sends it; Ctrl-C takes the same path.
    async fn stop(mut self) -> Result<()> {
        let mut child = self.child.take().context("already stopped")?;
        let pid = child.id().context("weberei up already exited")?;
        testkit::terminate(pid).with_context(|| format!("SIGTERM to {pid}"))?;
        let status = tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .with_context(|| format!("weberei up did not exit within {STOP_TIMEOUT:?}"))??;
        ensure!(
            status.success(),
            "weberei up exited with {status} after SIGTERM"
        );
        Ok(())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = testkit::terminate(pid);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.start_kill();
    }
}

fn assert_ports_free(ports: Ports) -> Result<()> {
    for port in ports.all() {
        std::net::TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("port {port} is still in use after weberei up stopped"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn weberei_up_runs_its_own_servers_stops_them_on_sigterm_and_starts_again() -> Result<()> {
    let data = tempfile::tempdir()?;
    let ports = Ports::pick()?;

    let started = Instant::now();
    let up = Up::start(data.path(), ports).await?;
    up.wait_ready().await?;
    println!(
        "first start (initdb, migrations) ready after {:?}",
        started.elapsed()
    );
    assert_eq!(up.demo_knoten().await?, 8, "the demo town is on the map");
    let stopping = Instant::now();
    up.stop().await?;
    println!("stopped after {:?}", stopping.elapsed());
    assert_ports_free(ports)?;

    // The same data dir again: the initialized cluster and streams are reused.
    let started = Instant::now();
    let up = Up::start(data.path(), ports).await?;
    up.wait_ready().await?;
    println!("second start ready after {:?}", started.elapsed());
    up.stop().await?;
    assert_ports_free(ports)?;
    Ok(())
}
