//! `weberei admin verify|grant <rolle-id>`: the admin actions that bootstrap peer verification
//! (DESIGN.md §4). The work is `api::admin`; this wires the bus and prints what happened.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use api::admin::{AdminError, AdminOutcome};
use clap::Subcommand;
use uuid::Uuid;

use crate::settings::Settings;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Verify a role by an admin action (for the first roles of an Ort; later roles are
    /// confirmed by two verified roles).
    Verify {
        /// The role's id (UUID).
        rolle: Uuid,
        /// Why, for the audit trail (no personal data).
        #[arg(long, default_value = "")]
        detail: String,
    },
    /// Grant a role admin rights.
    Grant {
        /// The role's id (UUID).
        rolle: Uuid,
        /// Why, for the audit trail (no personal data).
        #[arg(long, default_value = "")]
        detail: String,
    },
}

/// Run an admin command against NATS_URL (or the NATS that `weberei up` embeds on
/// WEBEREI_NATS_PORT). With DATABASE_URL (or the embedded PostgreSQL when NATS is embedded
/// too) chains older than JetStream's max_age are read from the archive.
pub async fn run(s: &Settings, cmd: AdminCommand) -> Result<()> {
    let nats = s
        .nats_url
        .clone()
        .unwrap_or_else(|| format!("nats://127.0.0.1:{}", s.nats_port));
    let ort = s.ort()?;
    let bus = bus::Bus::connect(&nats, s.bus_config(ort.clone()), None)
        .await
        .with_context(|| {
            format!("connecting to NATS at {nats} (is `weberei up` running, or NATS_URL set?)")
        })?;
    bus.ensure_streams().await?;
    let database = s.database_url.clone().or_else(|| {
        s.nats_url.is_none().then(|| {
            format!(
                "postgres://postgres@127.0.0.1:{}/{}",
                s.pg_port,
                crate::embedded::DATABASE
            )
        })
    });
    if let Some(url) = database {
        match crate::connect_db(&url).await {
            Ok(db) => bus.set_archive(Arc::new(workers::ArchiveReader::new(db))),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "no archive: only chains JetStream still holds are read")
            }
        }
    }
    let (what, rolle, result) = match cmd {
        AdminCommand::Verify { rolle, detail } => (
            "verify",
            rolle,
            api::admin::verify_rolle(&bus, rolle, &detail).await,
        ),
        AdminCommand::Grant { rolle, detail } => (
            "grant",
            rolle,
            api::admin::grant_admin(&bus, rolle, &detail).await,
        ),
    };
    match result {
        Ok(done) => {
            print_outcome(what, rolle, &ort.to_string(), &done);
            Ok(())
        }
        Err(AdminError::Refused(e)) => bail!("admin {what} {rolle}: {} ({e})", e.code()),
        Err(AdminError::Failed(e)) => {
            Err(e).with_context(|| format!("admin {what} {rolle} failed; running it again is safe"))
        }
    }
}

fn print_outcome(what: &str, rolle: Uuid, ort: &str, done: &AdminOutcome) {
    let seq = |s: &bus::Stored| {
        s.seq
            .map(|n| n.to_string())
            .unwrap_or_else(|| "pending (fallback)".into())
    };
    let again = if done.replayed {
        " (recorded before)"
    } else {
        ""
    };
    println!(
        "AdminActionExecuted {} {}{again}: action {what}, Rolle {rolle}, Ort {ort}, stream sequence {}",
        done.action.envelope.id,
        done.action.hash,
        seq(&done.action)
    );
    if let Some(v) = &done.verified {
        println!(
            "RolleVerifiziert {} {}: Rolle {rolle} is verified, stream sequence {}",
            v.envelope.id,
            v.hash,
            seq(v)
        );
    }
}
