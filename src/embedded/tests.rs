//! Tests of the embedded servers: start, stop and start again on the same data, recovery after a
//! crash, and a taken port named in the error.

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
