//! The embedded redis-server: its start (append-only file, since it holds the fallback events)
//! and its readiness probe.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

pub(super) async fn start_redis(data_dir: &Path, port: u16) -> Result<ChildServer> {
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

/// `PING` → `+PONG`; while loading its append-only file Redis answers `-LOADING`.
pub(super) async fn redis_ready(port: u16) -> Result<()> {
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
