//! The embedded nats-server (JetStream): its config file under the data dir, its start and its
//! readiness probe.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::*;

pub(super) async fn start_nats(data_dir: &Path, cfg: &EmbeddedConfig) -> Result<ChildServer> {
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

/// A nats-server config string: double-quoted, with `\` and `"` escaped.
pub(super) fn conf_string(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .ok_or_else(|| anyhow!("{} is not valid UTF-8", path.display()))?;
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// nats-server greets every client with `INFO {...}`; with JetStream on, it says so there.
pub(super) async fn nats_ready(port: u16) -> Result<()> {
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
