//! The embedded PostgreSQL of `weberei up`: finding the binaries, initdb and pg_ctl (as the
//! `postgres` system user when run as root), PostGIS check, and the `weberei` database. The
//! cluster lives under `<data>/pg` and is run by pg_ctl (the postmaster detaches from us).

use sha2::Digest;

use super::*;

#[derive(Debug)]
pub(super) struct Postgres {
    pub(super) tools: PgTools,
    pub(super) pgdata: PathBuf,
    pub(super) port: u16,
}

impl Postgres {
    pub(super) async fn stop(self) -> Result<()> {
        let out = self
            .tools
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS])
            .output()
            .await
            .context("running pg_ctl stop")?;
        if !out.status.success() {
            bail!("pg_ctl stop failed: {}", output_text(&out));
        }
        tracing::info!(server = "postgres", port = self.port, "stopped");
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub(super) struct PgTools {
    pub(super) bindir: PathBuf,
    pub(super) major: String,
    /// Set when we run as root: initdb and pg_ctl refuse root, so they run as this user.
    pub(super) run_as: Option<SystemUser>,
}

#[derive(Debug, Clone)]
pub(super) struct SystemUser {
    pub(super) name: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

impl PgTools {
    pub(super) fn command(&self, tool: &str) -> Command {
        Command::from(self.std_command(tool))
    }

    pub(super) fn std_command(&self, tool: &str) -> std::process::Command {
        let bin = self.bindir.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = std::process::Command::new("runuser");
                c.arg("-u").arg(&user.name).arg("--").arg(bin);
                c
            }
            None => std::process::Command::new(bin),
        };
        // The postgres user may not be able to enter our working directory.
        cmd.current_dir("/").stdin(Stdio::null());
        cmd
    }

    /// psql is a client: it runs as whoever we are.
    pub(super) fn psql(&self, port: u16, database: &str, sql: &str) -> Command {
        let local = self.bindir.join("psql");
        let mut cmd = Command::new(if local.exists() {
            local
        } else {
            PathBuf::from("psql")
        });
        cmd.args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", database])
            .arg("-p")
            .arg(port.to_string())
            .arg("-c")
            .arg(sql)
            .env("PGCONNECT_TIMEOUT", "5")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS")
            .stdin(Stdio::null());
        cmd
    }

    pub(super) fn chown(&self, path: &Path) -> Result<()> {
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .with_context(|| format!("chown {} {}", user.name, path.display()))?;
        }
        Ok(())
    }
}

pub(super) async fn start_postgres(data_dir: &Path, port: u16) -> Result<Postgres> {
    let home = cluster_home(data_dir)?;
    let pgdata = home.join("pg");
    let log = home.join("pg.log");
    let tools = find_pg_tools(&pgdata)?;
    check_postgis(&tools)?;

    let initialized = pgdata.join("PG_VERSION").exists();
    if initialized {
        // After a crash the postmaster (detached by pg_ctl) is still running on this data dir,
        // maybe on another port: stop it, then start as configured now.
        let status = tools
            .command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&pgdata)
            .output()
            .await
            .context("running pg_ctl status")?;
        if status.status.success() {
            tracing::warn!(
                pgdata = %pgdata.display(),
                "stopping a PostgreSQL left running by an earlier `weberei up`"
            );
            let out = tools
                .command("pg_ctl")
                .arg("stop")
                .arg("-D")
                .arg(&pgdata)
                .args(["-m", "fast", "-w", "-t", PG_CTL_TIMEOUT_SECS])
                .output()
                .await?;
            if !out.status.success() {
                bail!(
                    "a PostgreSQL from an earlier run still uses {} and did not stop: {}",
                    pgdata.display(),
                    output_text(&out)
                );
            }
        }
    }
    ensure_port_free(port, "PostgreSQL", "WEBEREI_PG_PORT", "DATABASE_URL")?;

    if let Some(user) = &tools.run_as {
        check_reachable(&home, user)?;
    }
    create_private_dir(&pgdata, &tools)?;
    // The server's unix socket must fit in sun_path (108 bytes); we only use TCP, so a long
    // data dir path just moves the socket to the temp dir.
    let run = home.join("run");
    let socket_dir = if run.as_os_str().len() + "/.s.PGSQL.65535.lock".len() < 100 {
        create_private_dir(&run, &tools)?;
        run
    } else {
        std::env::temp_dir()
    };
    if !log.exists() {
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    }
    tools.chown(&log)?;

    if !initialized {
        let started = Instant::now();
        initdb(&tools, &pgdata, &home).await?;
        tracing::info!(
            pgdata = %pgdata.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "PostgreSQL cluster initialized"
        );
    }

    let started = Instant::now();
    let socket = socket_dir
        .to_str()
        .filter(|s| !s.contains('\''))
        .ok_or_else(|| anyhow!("{} cannot be a socket dir", socket_dir.display()))?;
    let out = tools
        .command("pg_ctl")
        .arg("start")
        .arg("-D")
        .arg(&pgdata)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "-o"])
        // pg_ctl hands -o to a shell, hence the quotes.
        .arg(format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k '{socket}'"
        ))
        .output()
        .await
        .context("running pg_ctl start")?;
    let pg = Postgres {
        tools,
        pgdata,
        port,
    };
    if !out.status.success() {
        bail!(
            "PostgreSQL did not start on port {port}: {}; see {}{}",
            output_text(&out),
            log.display(),
            log_tail(&log)
        );
    }
    if let Err(e) = create_database(&pg.tools, port, &log).await {
        let _ = pg.stop().await;
        return Err(e);
    }
    tracing::info!(
        port,
        log = %log.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "PostgreSQL (PostGIS) is up"
    );
    Ok(pg)
}

pub(super) async fn initdb(tools: &PgTools, pgdata: &Path, data_dir: &Path) -> Result<()> {
    let log = data_dir.join("pg-initdb.log");
    let run = |locale: &'static str| {
        tools
            .command("initdb")
            .arg("-D")
            .arg(pgdata)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", locale])
            .output()
    };
    let mut out = run("--locale=C.UTF-8").await.context("running initdb")?;
    if !out.status.success() {
        // Without the C.UTF-8 locale initdb cleans up after itself; the C locale always exists.
        tracing::warn!("initdb with C.UTF-8 failed; retrying with --no-locale");
        let first = output_text(&out);
        out = run("--no-locale").await.context("running initdb")?;
        if !out.status.success() {
            let _ = std::fs::write(&log, format!("{first}\n{}", output_text(&out)));
        }
    }
    let _ = std::fs::write(&log, output_text(&out));
    if !out.status.success() {
        bail!(
            "initdb failed for {}: see {}{}",
            pgdata.display(),
            log.display(),
            log_tail(&log)
        );
    }
    Ok(())
}

/// `pg_ctl -w` waited for the postmaster; psql proves it accepts our TCP connections.
pub(super) async fn create_database(tools: &PgTools, port: u16, log: &Path) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let exists = loop {
        let out = tools
            .psql(
                port,
                "postgres",
                &format!("SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"),
            )
            .output()
            .await
            .context("running psql")?;
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).trim() == "1";
        }
        if Instant::now() > deadline {
            bail!(
                "PostgreSQL on port {port} does not accept connections: {}; see {}{}",
                output_text(&out),
                log.display(),
                log_tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if !exists {
        let out = tools
            .psql(port, "postgres", &format!("CREATE DATABASE {DATABASE}"))
            .output()
            .await
            .context("running psql")?;
        if !out.status.success() {
            bail!("CREATE DATABASE {DATABASE} failed: {}", output_text(&out));
        }
        tracing::info!(database = DATABASE, "database created");
    }
    Ok(())
}

/// Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin, off the PATH. A cluster
/// that already exists is served by its own major version.
pub(super) fn find_pg_tools(pgdata: &Path) -> Result<PgTools> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let existing = std::fs::read_to_string(pgdata.join("PG_VERSION"))
        .ok()
        .map(|v| v.trim().to_owned());

    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(major) = &existing {
        candidates.push(PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")));
    }
    if let Some(dir) = pg_config("--bindir") {
        candidates.push(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    candidates.extend(versions.into_iter().rev().map(|(_, dir)| dir));
    if let Ok(initdb) = find_binary("initdb", "postgresql")
        && let Some(dir) = initdb.parent()
    {
        candidates.push(dir.to_path_buf());
    }

    let bindir = candidates
        .into_iter()
        .find(|dir| has_tools(dir))
        .ok_or_else(|| {
            anyhow!(
                "PostgreSQL's server programs (initdb, pg_ctl) were not found in \
                 /usr/lib/postgresql/*/bin or on the PATH: install the Debian packages \
                 `postgresql` and `postgresql-<version>-postgis-3` (./dev.sh up does), \
                 or set DATABASE_URL to use your own server"
            )
        })?;
    let bindir = bindir.canonicalize().unwrap_or(bindir);
    let major = pg_major(&bindir)?;
    if let Some(existing) = existing
        && existing != major
    {
        bail!(
            "{} holds a PostgreSQL {existing} cluster but only PostgreSQL {major} was found: \
             install postgresql-{existing}, or move that directory away to start afresh",
            pgdata.display()
        );
    }
    let run_as = if effective_uid()? == 0 {
        Some(system_user("postgres").ok_or_else(|| {
            anyhow!(
                "running as root, PostgreSQL must run as the `postgres` system user, which does \
                 not exist: install the Debian package `postgresql`, or run as a normal user"
            )
        })?)
    } else {
        None
    };
    Ok(PgTools {
        bindir,
        major,
        run_as,
    })
}

/// "pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" → "15".
pub(super) fn pg_major(bindir: &Path) -> Result<String> {
    let out = std::process::Command::new(bindir.join("pg_ctl"))
        .arg("--version")
        .output()
        .with_context(|| format!("running {}/pg_ctl --version", bindir.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| {
            let major = w.split('.').next()?;
            (!major.is_empty() && major.chars().all(|c| c.is_ascii_digit()))
                .then(|| major.to_owned())
        })
        .ok_or_else(|| anyhow!("cannot read the PostgreSQL version from {text:?}"))
}

pub(super) fn check_postgis(tools: &PgTools) -> Result<()> {
    let mut sharedirs = vec![PathBuf::from(format!(
        "/usr/share/postgresql/{}",
        tools.major
    ))];
    if let Some(dir) = pg_config("--sharedir") {
        sharedirs.push(PathBuf::from(dir));
    }
    // A source install keeps share/ next to bin/.
    if let Some(prefix) = tools.bindir.parent() {
        sharedirs.push(prefix.join("share"));
        sharedirs.push(prefix.join("share/postgresql"));
    }
    if sharedirs
        .iter()
        .any(|dir| dir.join("extension/postgis.control").is_file())
    {
        return Ok(());
    }
    bail!(
        "PostGIS is not installed for PostgreSQL {major} (no extension/postgis.control in {dirs}): \
         install the Debian package `postgresql-{major}-postgis-3` (./dev.sh up does), \
         or set DATABASE_URL to a server with PostGIS",
        major = tools.major,
        dirs = sharedirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub(super) fn pg_config(flag: &str) -> Option<String> {
    let out = std::process::Command::new("pg_config")
        .arg(flag)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// PGDATA and the socket dir: owned by the server's user, mode 0700 (PostgreSQL insists).
pub(super) fn create_private_dir(dir: &Path, tools: &PgTools) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    tools.chown(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 700 {}", dir.display()))
}

/// Where clusters go whose data dir the cluster's user cannot reach (see [`cluster_home`]).
const FALLBACK_CLUSTER_ROOT: &str = "/var/lib/weberei";

/// The directory that holds the cluster (`pg/`, `pg.log`, `pg-initdb.log`, `run/`): the data
/// dir, unless we run as root and the `postgres` user cannot get through one of its parents —
/// a checkout in `/root`, as on a fresh machine — then `/var/lib/weberei/pg-<hash of the data
/// dir>`, the same one for the same data dir on every start. `<data dir>/pg.location` names it.
fn cluster_home(data_dir: &Path) -> Result<PathBuf> {
    if effective_uid()? != 0 {
        return Ok(data_dir.to_owned());
    }
    let Some(user) = system_user("postgres") else {
        // find_pg_tools says what is missing.
        return Ok(data_dir.to_owned());
    };
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let Some(blocked) = blocked_parent(data_dir, &user)? else {
        return Ok(data_dir.to_owned());
    };
    let canonical = data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let home = Path::new(FALLBACK_CLUSTER_ROOT).join(format!("pg-{}", &hex::encode(digest)[..16]));
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let location = data_dir.join("pg.location");
    std::fs::write(
        &location,
        format!(
            "{}\n(the `{}` user cannot enter {}, so PostgreSQL's cluster of this data dir is there)\n",
            home.display(),
            user.name,
            blocked.display()
        ),
    )
    .with_context(|| format!("writing {}", location.display()))?;
    tracing::info!(
        cluster = %home.display(),
        blocked = %blocked.display(),
        "the postgres user cannot enter the data dir's parent: PostgreSQL's cluster lives in {}",
        home.display()
    );
    Ok(home)
}

/// The first parent of `dir` that `user` cannot pass through, if any.
fn blocked_parent(dir: &Path, user: &SystemUser) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    for parent in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(parent)?;
        let reachable = meta.mode() & 0o001 != 0
            || (meta.uid() == user.uid && meta.mode() & 0o100 != 0)
            || (meta.gid() == user.gid && meta.mode() & 0o010 != 0);
        if !reachable {
            return Ok(Some(parent.to_owned()));
        }
    }
    Ok(None)
}

/// As root, the cluster's home is ours but the cluster's user must get through every parent.
pub(super) fn check_reachable(data_dir: &Path, user: &SystemUser) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(data_dir)?;
    if meta.mode() & 0o001 == 0 {
        let mode = (meta.mode() & 0o7777) | 0o011;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod o+x {}", data_dir.display()))?;
    }
    if let Some(dir) = blocked_parent(data_dir, user)? {
        bail!(
            "PostgreSQL runs as the `{}` user, which cannot enter {}: `chmod o+x {}`, or \
             choose a data dir elsewhere (WEBEREI_DATA_DIR)",
            user.name,
            dir.display(),
            dir.display()
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_parent_the_cluster_user_cannot_pass_is_found() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let closed = tmp.path().join("home");
        let data = closed.join("checkout").join("data");
        std::fs::create_dir_all(&data)?;
        for dir in [
            tmp.path(),
            closed.join("checkout").as_path(),
            data.as_path(),
        ] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
        // A user who owns nothing here: only the "other" bits count for it.
        let stranger = SystemUser {
            name: "stranger".to_owned(),
            uid: 4_242_424,
            gid: 4_242_424,
        };
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700))?;
        assert_eq!(blocked_parent(&data, &stranger)?, Some(closed.clone()));
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711))?;
        assert_eq!(blocked_parent(&data, &stranger)?, None);
        Ok(())
    }
}
