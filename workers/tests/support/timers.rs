//! The world of the jobs worker's tests: a bus and a database with a projection worker
//! filling the tables the jobs worker reads, and a fake clock the test moves.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use workers::{Clock, JobsConfig, JobsReport, JobsWorker};

use super::Env;

/// A clock the test sets.
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub struct World {
    pub env: Env,
    pub clock: Arc<FakeClock>,
    /// The clock's start (now, at millisecond precision).
    pub t0: DateTime<Utc>,
    projection: (watch::Sender<bool>, tokio::task::JoinHandle<()>),
}

deref_env!(World);

/// A fresh Ort and database, a projection worker running, the clock at now.
pub async fn world() -> World {
    let env = Env::new().await;
    let projection = env.start_worker();
    let t0 = super::now();
    World {
        env,
        clock: Arc::new(FakeClock(Mutex::new(t0))),
        t0,
        projection,
    }
}

impl World {
    /// A jobs worker on the fake clock, scanning every 100 ms when run.
    pub fn jobs(&self) -> JobsWorker {
        JobsWorker::new(
            self.bus.clone(),
            self.db.conn.clone(),
            self.clock.clone(),
            JobsConfig {
                every: Duration::from_millis(100),
                ..JobsConfig::default()
            },
        )
    }

    /// Start the jobs worker at the clock's now while three more scans run at once, let the
    /// projection catch up, scan again, and stop: what a restart after downtime looks like.
    pub async fn restart_jobs(&self) -> Vec<JobsReport> {
        let (stop, rx) = watch::channel(false);
        let running = tokio::spawn(self.jobs().run(rx));
        let scans: Vec<_> = (0..3)
            .map(|_| {
                let jobs = self.jobs();
                tokio::spawn(async move { jobs.scan_once().await })
            })
            .collect();
        let mut reports = Vec::new();
        for scan in scans {
            reports.push(scan.await.unwrap().unwrap());
        }
        self.settle().await;
        reports.push(self.jobs().scan_once().await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .unwrap()
            .unwrap();
        self.settle().await;
        reports
    }

    pub async fn finish(self) {
        let (stop, task) = self.projection;
        stop.send(true).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        self.env.finish().await;
    }
}

/// The reports of several scans added up.
pub fn sum(reports: &[JobsReport]) -> JobsReport {
    let mut total = JobsReport::default();
    for r in reports {
        total.knoten_decayed += r.knoten_decayed;
        total.faeden_decayed += r.faeden_decayed;
        total.knoten_twisted += r.knoten_twisted;
        total.faeden_twisted += r.faeden_twisted;
        total.antraege_decided += r.antraege_decided;
        total.delegations_expired += r.delegations_expired;
        total.hidden_on_map += r.hidden_on_map;
        total.failed += r.failed;
    }
    total
}
