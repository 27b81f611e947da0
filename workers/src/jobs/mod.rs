//! The jobs worker: the decay and yarn timers, decision deadlines and delegation expiry of
//! DESIGN.md §4.
//!
//! Every `every` (and once right at start, which catches everything that came due while no jobs
//! worker ran) it reads the projections for what looks due and runs the matching command through
//! [`Bus::execute`]. The projections only propose; the aggregates decide on their own chains:
//!
//! - Every command has a deterministic idempotency key (`verfall:<id>:<expires_at millis>`,
//!   `garn:<id>`, `entscheidung:<id>`, `ablauf:<from>:<millis>`, `verborgen:<flag>`), so two
//!   workers, or one scan racing the next, append each event once.
//! - Every timer command is a no-op (an empty decision) when it no longer applies, so a scan
//!   that reads a projection lagging behind its events does no harm.
//! - One failing item is logged and skipped; the next scan tries it again.
//!
//! Yarn is looked at before decay: a Knoten whose threads from enough distinct roles are still
//! active was twisted before it could have faded (threads can only be spun to Knoten that have
//! not faded), also when the worker was down at its expiry.
//!
//! Decisions (`entscheidung:<antrag id>`): every open Antrag past its deadline is decided with
//! the facts *at its deadline*, so a worker that was down decides the same as one that was not:
//! the active roles (verified at the deadline and not deleted before it, homed in the Antrag's
//! Weberei, with an event in the `active_days` before the deadline) and the delegations active
//! at the deadline (created before it, `valid_until` after it, not ended at or before it) of
//! delegators verified and not deleted at the deadline. A role's activity is one column (its
//! latest event), so a role whose latest event is after the deadline counts as active.
//! Delegation expiry (`ablauf:<from>:<valid_until millis>`): every delegation not ended whose
//! `valid_until` has passed gets `DelegationAbgelaufen` on its delegator's chain.
//!
//! Time comes from a [`Clock`], so tests can move it.
//!
//! This module is the runner (scan loop, config, report, running one command as the system);
//! each timer family lives in its own module: [`decay`] (decay and yarn of Knoten and Fäden),
//! [`governance`] (decision deadlines, delegation expiry), [`moderation`] (hidden content on
//! the map).

mod decay;
mod governance;
mod moderation;

use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, ExecuteError, Executed, Outcome};
use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::governance::{DEFAULT_ACTIVE_DAYS, DEFAULT_QUORUM_PERCENT};
use domain::rules::YARN_MIN_ROLES;
use domain::{Actor, DomainError, Meta};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

pub use decay::verfall_msg_id;
pub use governance::{ablauf_msg_id, entscheidung_msg_id};
pub use moderation::verborgen_msg_id;

/// Where the jobs worker gets "now" from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Scan period.
    pub every: Duration,
    /// Distinct roles with active threads that twist a Knoten into yarn.
    pub yarn_min_roles: usize,
    /// At most this many items per kind and scan; the rest follow in the next scans.
    pub batch: u64,
    /// `QUORUM_PERCENT`: share of the Weberei's active roles that must take part.
    pub quorum_percent: u32,
    /// `ACTIVE_DAYS`: a role is active if it caused an event this many days before a deadline.
    pub active_days: i64,
    /// `FF_TRANSITIVE_DELEGATION`: follow delegation chains to the first direct voter.
    pub transitive_delegation: bool,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(2),
            yarn_min_roles: YARN_MIN_ROLES,
            batch: 500,
            quorum_percent: DEFAULT_QUORUM_PERCENT,
            active_days: DEFAULT_ACTIVE_DAYS,
            transitive_delegation: false,
        }
    }
}

/// What one scan appended (events that already existed are not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsReport {
    pub knoten_decayed: usize,
    pub faeden_decayed: usize,
    pub knoten_twisted: usize,
    pub faeden_twisted: usize,
    /// Anträge decided (`QuorumErreicht` if reached, then `AntragEntschieden`).
    pub antraege_decided: usize,
    /// Delegations recorded as expired (`DelegationAbgelaufen`).
    pub delegations_expired: usize,
    /// Moderation decisions recorded on the map (`InhaltVerborgen`).
    pub hidden_on_map: usize,
    /// Items whose command failed (logged; tried again by the next scan).
    pub failed: usize,
}

impl JobsReport {
    fn appended(&self) -> usize {
        self.knoten_decayed
            + self.faeden_decayed
            + self.knoten_twisted
            + self.faeden_twisted
            + self.antraege_decided
            + self.delegations_expired
            + self.hidden_on_map
    }
}

/// A scan could not read the projections (the database is down or the schema is wrong).
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// Commands in flight at once within one scan.
const PARALLEL: usize = 16;

pub struct JobsWorker {
    bus: Bus,
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    cfg: JobsConfig,
}

/// How one timer command went.
enum Did {
    /// New events were appended.
    Appended,
    /// The same command ran before (same msg id on the chain).
    AlreadyDone,
    /// The aggregate decided there is nothing to do.
    Nothing,
    Failed,
}

impl JobsWorker {
    pub fn new(bus: Bus, db: DatabaseConnection, clock: Arc<dyn Clock>, cfg: JobsConfig) -> Self {
        Self {
            bus,
            db,
            clock,
            cfg,
        }
    }

    /// Scan at once, then every `cfg.every`, until `shutdown` turns true (or its sender is gone).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        info!(every = ?self.cfg.every, "jobs worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.scan_once().await {
                Ok(r) if r.appended() > 0 || r.failed > 0 => info!(?r, "jobs scan"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "jobs scan failed; trying again at the next tick"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.every) => {}
                changed = shutdown.changed() => if changed.is_err() { break; },
            }
        }
        info!("jobs worker stopped");
    }

    /// One pass over everything due at the clock's now: yarn first, then decay, then
    /// decisions and delegation expiry.
    #[tracing::instrument(skip_all)]
    pub async fn scan_once(&self) -> Result<JobsReport, JobsError> {
        let now = domain::envelope::truncate_millis(self.clock.now());
        let mut report = JobsReport::default();
        self.twist_knoten(now, &mut report).await?;
        self.twist_threads_of_yarn(now, &mut report).await?;
        self.decay_knoten(now, &mut report).await?;
        self.decay_faeden(now, &mut report).await?;
        self.decide_antraege(now, &mut report).await?;
        self.expire_delegations(now, &mut report).await?;
        self.hide_on_the_map(now, &mut report).await?;
        Ok(report)
    }

    fn batch(&self) -> i64 {
        i64::try_from(self.cfg.batch).unwrap_or(i64::MAX)
    }

    /// Run one timer command as the system; failures are logged here and reported as `Failed`.
    async fn execute<A: Aggregate>(
        &self,
        id: Uuid,
        cmd: &A::Command,
        msg_id: String,
        now: DateTime<Utc>,
    ) -> Did {
        let meta = Meta {
            actor: Actor::System,
            ip_hash: None,
            ua_hash: None,
            msg_id,
        };
        let msg_id = meta.msg_id.clone();
        match self
            .bus
            .execute::<A>(id, cmd, meta, now, bus::Expect::ExistingChain)
            .await
        {
            Ok(Executed {
                outcome: Outcome::AlreadyDone,
                ..
            }) => {
                debug!(%id, %msg_id, "already done");
                Did::AlreadyDone
            }
            Ok(Executed { events, .. }) if events.is_empty() => Did::Nothing,
            Ok(Executed { events, .. }) => {
                for e in &events {
                    metrics::counter!("wg_jobs_events_total", "type" => e.envelope.event_type.clone())
                        .increment(1);
                }
                debug!(%id, %msg_id, n = events.len(), "appended");
                Did::Appended
            }
            Err(ExecuteError::Refused(DomainError::NotFound(reason))) => {
                // A projection row without a chain: the stream lost it or belongs elsewhere.
                warn!(%id, %msg_id, aggregate = A::TYPE.as_str(), %reason, "timer for an aggregate without events");
                metrics::counter!("wg_jobs_failed_total").increment(1);
                Did::Failed
            }
            Err(e) => {
                error!(%id, %msg_id, aggregate = A::TYPE.as_str(), error = %e, "timer command failed");
                metrics::counter!("wg_jobs_failed_total").increment(1);
                Did::Failed
            }
        }
    }
}

fn count(did: Did, appended: &mut usize, failed: &mut usize) {
    match did {
        Did::Appended => *appended += 1,
        Did::Failed => *failed += 1,
        Did::AlreadyDone | Did::Nothing => {}
    }
}
