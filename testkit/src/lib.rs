//! Test support for the integration tests of every Weberei crate: a fresh, migrated PostgreSQL
//! database per test (zero2prod's `spawn_app()` idea) and unique Ort names so that NATS streams,
//! Redis keys and subjects of concurrent tests never collide.
//!
//! This crate is a dev-dependency only. It must never be a normal dependency of a shipped crate,
//! must never touch databases it did not create (it only drops `wg_test_*` databases it made)
//! and must never stop or reconfigure the machine's shared services.
//!
//! Usage:
//! ```ignore
//! let db = testkit::fresh_database().await;
//! // ... use db.conn / db.url ...
//! db.drop_db().await;
//! ```
//!
//! A test that panics leaves its `wg_test_*` database behind; they are cheap and can be removed
//! with `DROP DATABASE ... WITH (FORCE)`.

// Test support: a failure to set up the database is a broken test environment, and panicking
// with a clear message is the most useful thing a test helper can do about it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod up;

use migration::MigratorTrait;
use rand::Rng;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

/// Admin URL used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database created for one test. Call [`TestDb::drop_db`] at the end of the test.
pub struct TestDb {
    /// Connection URL of this database (same server and credentials as the admin URL).
    pub url: String,
    /// Database name, `wg_test_<uuid without dashes>`.
    pub name: String,
    /// An open connection (small pool) to this database.
    pub conn: DatabaseConnection,
}

/// The admin URL: `TEST_DATABASE_URL`, or [`DEFAULT_ADMIN_URL`].
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned())
}

/// A new database with every migration applied.
pub async fn fresh_database() -> TestDb {
    let db = fresh_empty_database().await;
    migration::Migrator::up(&db.conn, None)
        .await
        .unwrap_or_else(|e| panic!("migrating test database {} failed: {e}", db.name));
    db
}

/// A new, empty database (no extensions, no migrations), e.g. to test the migrations.
pub async fn fresh_empty_database() -> TestDb {
    let admin = admin_url();
    let name = format!("wg_test_{}", uuid::Uuid::new_v4().simple());
    let admin_conn = connect(&admin).await;
    // template0: a test must not inherit whatever someone installed into template1.
    admin_conn
        .execute_unprepared(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
        ))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin} failed: {e}"));
    admin_conn.close().await.expect("closing admin connection");

    let url = with_database(&admin, &name);
    let conn = connect(&url).await;
    TestDb { url, name, conn }
}

impl TestDb {
    /// Closes the connection and drops the database (`WITH (FORCE)`: also ends any connection a
    /// test left open, e.g. in a spawned server).
    pub async fn drop_db(self) {
        let TestDb { name, conn, .. } = self;
        conn.close()
            .await
            .expect("closing test database connection");
        let admin_conn = connect(&admin_url()).await;
        admin_conn
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .unwrap_or_else(|e| panic!("DROP DATABASE {name} failed: {e}"));
        admin_conn.close().await.expect("closing admin connection");
    }
}

/// A unique Ort name for one test: `t` + 10 random lowercase alphanumerics. Valid in NATS
/// stream names and subjects, Redis keys and PostgreSQL identifiers.
pub fn unique_ort() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut ort = String::with_capacity(11);
    ort.push('t');
    for _ in 0..10 {
        ort.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    ort
}

async fn connect(url: &str) -> DatabaseConnection {
    // Many tests run in parallel against one server (max_connections 100): keep pools small.
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(4)
        .min_connections(0)
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url} failed: {e}"))
}

/// `url` with its database path replaced by `db` (query string kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    }
}

/// NATS with JetStream for tests: `TEST_NATS_URL`, default `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    env_or("TEST_NATS_URL", "nats://127.0.0.1:4222")
}

/// Redis for tests: `TEST_REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    env_or("TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private nats-server with JetStream, for tests that stop and start the server. It never
/// touches the machine's shared nats-server.
pub struct OwnNats {
    pub port: u16,
    pub dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl OwnNats {
    /// Start a nats-server on a free port with its store in `dir`.
    pub fn start(dir: &std::path::Path) -> OwnNats {
        let mut nats = OwnNats {
            port: free_port(),
            dir: dir.to_owned(),
            child: None,
        };
        nats.restart();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)start on the same port and store.
    pub fn restart(&mut self) {
        let conf = self.dir.join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{}\njetstream {{ store_dir: {:?}, max_file_store: 1GB, max_memory_store: 64MB }}\n",
                self.port,
                self.dir.join("store")
            ),
        )
        .unwrap();
        let bin = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "nats-server",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server must be installed");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "own nats-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stop the server (SIGKILL: the harshest outage) and wait for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Send SIGTERM to a process (as `systemd` or `docker stop` would), through the system call:
/// a minimal Debian has no `kill(1)`.
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_path_is_replaced_and_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1/?a=b", "x"),
            "postgres://u@h:1/x?a=b"
        );
    }

    #[test]
    fn unique_ort_is_t_plus_ten_lowercase_alphanumerics() {
        let a = unique_ort();
        assert_eq!(a.len(), 11);
        assert!(a.starts_with('t'));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, unique_ort());
    }
}
