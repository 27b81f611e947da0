//! The Webrat's read model (DESIGN.md §4 "Governance", "Peer verification", "Moderation"):
//! `antraege` with their decision, `einsprueche`, `stimmen` (direct votes), the audit
//! `antrag_counted_votes`, `delegationen` with their end, the verification, admin, activity and
//! hidden columns of `rollen`, and `flags` with the `hidden_at` of the content they hid. One arm
//! per event type, each idempotent.
//!
//! Choices:
//! - Row ids that are not aggregate ids are UUIDv5 in [`ROW_NAMESPACE`]: an objection is
//!   `einspruch:<event ulid>`, a delegation `delegation:<event ulid>` (one row per
//!   `DelegationErstellt`, so a replaced or renewed delegation keeps its history), a direct vote
//!   `UUIDv5(antrag_id, "<rolle>")` (one per role and Antrag, as the UNIQUE index).
//! - A delegation's `ended_at` is the event's time for `revoked` and `replaced`, and its
//!   `valid_until` for `expired` (that is when it stopped counting, whenever the timer recorded
//!   it). `revoked_at` is also set for revocations.
//! - While open, `antraege.ja/nein/enthaltung` count the projected direct votes; the decision
//!   overwrites them with the decided tally (direct and delegated voices).
//! - `rollen.last_active_at` is the time of the latest event whose `meta.actor` is the role, on
//!   any stream. The streams are projected independently, so a role's vote may be applied
//!   before its registration created its row: the time is kept in `rolle_activity` first and
//!   mirrored into `rollen` (once per batch, [`Activity`]), so live and rebuilt agree.
//! - Sealed reasons are opened with the writing role's key like room messages; what cannot be
//!   opened is NULL, and `UserDeleted` NULLs the reasons that role wrote.
//! - `FlagResolved { hidden }` sets `hidden_at` on the target row (knoten, nachrichten,
//!   antraege, rollen). Live, a flag is resolved long after its target was projected (raising it
//!   needs the target's author from the projection). A rebuild replays the streams one after the
//!   other (governance before social), so [`after_rebuild`] applies the hides to rows that did
//!   not exist yet when their flags were replayed.
//! - `is_admin` is set on an existing row: grant only roles already in `rollen` (the admin
//!   CLI's check); a rebuild replays the system stream after the social one.
//!
//! Raw SQL kept here (everything else goes through the `entity` crate): the vote recount
//! (`UPDATE .. FROM` an aggregate with `FILTER`), the audit rows and the batch's activity
//! (`jsonb_to_recordset`, `greatest`), `array_append` of confirmations, `UserDeleted`'s
//! blanking of reasons in one statement, and [`after_rebuild`]'s `UPDATE .. FROM` a grouped
//! subquery.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use domain::events::{
    AdminActionExecuted, AntragEntschieden, AntragGestellt, DelegationAbgelaufen,
    DelegationErstellt, DelegationWiderrufen, EinspruchEingegangen, EventType, FlagOutcome,
    FlagRaised, FlagResolved, FlagTargetKind, QuorumErreicht, RolleVerifiziert, StimmeAbgegeben,
    VerifizierungBestaetigt,
};
use domain::verification::ACTION_GRANT_ADMIN;
use domain::{Actor, Envelope};
use entity::sea_orm_active_enums::AntragStatus as DbAntragStatus;
use entity::{antraege, delegationen, einsprueche, flags, knoten, nachrichten, rollen, stimmen};
use sea_orm::prelude::DateTimeWithTimeZone;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveEnum, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, QueryFilter, QuerySelect, Statement, UpdateMany,
};
use uuid::Uuid;

use super::rows::{db_enum, insert_new};
use super::social::{Keys, cell, decode, exec, open};

/// Namespace of the projection's own row ids (`fa94691e-bd6e-4f9f-a6c7-0c005c2021d3`). Fixed
/// for ever: a rebuild must produce the same ids.
pub(crate) const ROW_NAMESPACE: Uuid = Uuid::from_u128(0xfa94_691e_bd6e_4f9f_a6c7_0c00_5c20_21d3);

/// The derived tables of this module that a rebuild truncates (besides the older ones).
pub(super) const TABLES: &str = "einsprueche, antrag_counted_votes, flags, rolle_activity";

/// The id of the `einsprueche` row of an `EinspruchEingegangen` event.
pub(crate) fn einspruch_id(event: &Envelope) -> Uuid {
    Uuid::new_v5(&ROW_NAMESPACE, format!("einspruch:{}", event.id).as_bytes())
}

/// The id of the `delegationen` row of a `DelegationErstellt` event.
pub(crate) fn delegation_row_id(event: &Envelope) -> Uuid {
    Uuid::new_v5(
        &ROW_NAMESPACE,
        format!("delegation:{}", event.id).as_bytes(),
    )
}

/// The id of the `stimmen` row of `rolle`'s direct vote on `antrag`.
pub(crate) fn stimme_id(antrag: Uuid, rolle: Uuid) -> Uuid {
    Uuid::new_v5(&antrag, rolle.hyphenated().to_string().as_bytes())
}

/// Whether this module projects events of type `t`. `UserDeleted` is projected by `social`
/// too; here it only blanks the reasons the role wrote.
pub(super) fn projects(t: EventType) -> bool {
    use EventType::*;
    matches!(
        t,
        AntragGestellt
            | EinspruchEingegangen
            | StimmeAbgegeben
            | QuorumErreicht
            | AntragEntschieden
            | DelegationErstellt
            | DelegationWiderrufen
            | DelegationAbgelaufen
            | VerifizierungBestaetigt
            | RolleVerifiziert
            | FlagRaised
            | FlagResolved
            | AdminActionExecuted
            | UserDeleted
    )
}

/// Whose key opening this event's sealed reason needs, if any.
pub(super) fn key_owner(env: &Envelope) -> Option<Uuid> {
    match env.known_type()? {
        EventType::EinspruchEingegangen | EventType::FlagRaised | EventType::FlagResolved => {
            env.payload.get("by")?.as_str()?.parse().ok()
        }
        _ => None,
    }
}

fn int(value: u64, what: &str) -> Result<i32, DbErr> {
    i32::try_from(value).map_err(|_| DbErr::Custom(format!("{what} {value} out of range")))
}

/// The table holding the content a flag target names (never user input).
fn target_table(kind: &str) -> Option<&'static str> {
    match kind {
        k if k == FlagTargetKind::Knoten.as_str() => Some("knoten"),
        k if k == FlagTargetKind::Nachricht.as_str() => Some("nachrichten"),
        k if k == FlagTargetKind::Antrag.as_str() => Some("antraege"),
        k if k == FlagTargetKind::Rolle.as_str() => Some("rollen"),
        _ => None,
    }
}

/// Apply one event of a type for which [`projects`] is true.
pub(super) async fn project(
    txn: &DatabaseTransaction,
    env: &Envelope,
    event_type: EventType,
    keys: &mut Keys,
) -> Result<(), DbErr> {
    let id = env.aggregate_id;
    let ts = env.ts;
    match event_type {
        EventType::AntragGestellt => {
            let p: AntragGestellt = decode(env)?;
            let weberei = cell(&p.weavery_h3, "AntragGestellt")?;
            insert_new(
                txn,
                antraege::Entity::insert(antraege::ActiveModel {
                    id: Set(id),
                    weavery_h3: Set(domain::geo::cell_to_i64(weberei)),
                    title: Set(p.title),
                    content: Set(p.content),
                    status: Set(DbAntragStatus::Offen),
                    created_by: Set(Some(p.by)),
                    created_at: Set(ts.into()),
                    decision_deadline: Set(p.decision_deadline.into()),
                    ..Default::default()
                }),
                Some(antraege::Column::Id),
            )
            .await
        }
        EventType::EinspruchEingegangen => {
            let p: EinspruchEingegangen = decode(env)?;
            let key = keys.get(txn, p.by).await?;
            let reason = open(key, &p.reason, env);
            insert_new(
                txn,
                einsprueche::Entity::insert(einsprueche::ActiveModel {
                    id: Set(einspruch_id(env)),
                    antrag_id: Set(id),
                    by: Set(p.by),
                    reason: Set(reason),
                    created_at: Set(ts.into()),
                }),
                Some(einsprueche::Column::Id),
            )
            .await
        }
        EventType::StimmeAbgegeben => {
            let p: StimmeAbgegeben = decode(env)?;
            // No conflict target: the UNIQUE (antrag_id, rolle_id) keeps the first vote too.
            insert_new(
                txn,
                stimmen::Entity::insert(stimmen::ActiveModel {
                    id: Set(stimme_id(id, p.by)),
                    antrag_id: Set(id),
                    rolle_id: Set(p.by),
                    vote: Set(db_enum(p.vote.as_str())?),
                    delegated_from: Set(None),
                    created_at: Set(ts.into()),
                }),
                None::<stimmen::Column>,
            )
            .await?;
            // Recounted rather than incremented, so applying a vote twice cannot count it twice.
            exec(
                txn,
                "UPDATE antraege a SET ja = c.ja, nein = c.nein, enthaltung = c.enthaltung \
                 FROM (SELECT count(*) FILTER (WHERE vote = 'ja') AS ja, \
                              count(*) FILTER (WHERE vote = 'nein') AS nein, \
                              count(*) FILTER (WHERE vote = 'enthaltung') AS enthaltung \
                       FROM stimmen WHERE antrag_id = $1) c \
                 WHERE a.id = $1 AND a.status = 'offen'",
                [id.into()],
            )
            .await
        }
        EventType::QuorumErreicht => {
            let p: QuorumErreicht = decode(env)?;
            let update = antraege::Entity::update_many()
                .col_expr(antraege::Column::QuorumReached, Expr::value(true));
            with_participation(update, p.participation, p.active_roles, p.quorum_percent)?
                .filter(antraege::Column::Id.eq(id))
                .exec(txn)
                .await
                .map(drop)
        }
        EventType::AntragEntschieden => {
            let p: AntragEntschieden = decode(env)?;
            let counted = serde_json::to_value(&p.counted)
                .map_err(|e| DbErr::Custom(format!("AntragEntschieden counted: {e}")))?;
            let status: DbAntragStatus = db_enum(p.status.as_str())?;
            let update = antraege::Entity::update_many()
                .col_expr(antraege::Column::Status, status.as_enum())
                .col_expr(
                    antraege::Column::DecidedAt,
                    Expr::col(antraege::Column::DecidedAt).if_null(ts),
                )
                .col_expr(
                    antraege::Column::QuorumReached,
                    Expr::value(p.status != domain::events::AntragStatus::QuorumVerfehlt),
                )
                .col_expr(antraege::Column::Ja, Expr::value(int(p.ja, "ja")?))
                .col_expr(antraege::Column::Nein, Expr::value(int(p.nein, "nein")?))
                .col_expr(
                    antraege::Column::Enthaltung,
                    Expr::value(int(p.enthaltung, "enthaltung")?),
                );
            with_participation(update, p.participation, p.active_roles, p.quorum_percent)?
                .filter(antraege::Column::Id.eq(id))
                .exec(txn)
                .await?;
            exec(
                txn,
                "INSERT INTO antrag_counted_votes (antrag_id, voice, rolle, vote, delegated_from) \
                 SELECT $1, coalesce(c.delegated_from, c.rolle), c.rolle, c.vote, c.delegated_from \
                 FROM jsonb_to_recordset($2::jsonb) AS c(rolle uuid, vote vote, delegated_from uuid) \
                 ON CONFLICT (antrag_id, voice) DO NOTHING",
                [id.into(), counted.into()],
            )
            .await
        }
        EventType::DelegationErstellt => {
            let p: DelegationErstellt = decode(env)?;
            let row = delegation_row_id(env);
            // Whatever is still active for this delegator ends here (the domain records a
            // lapsed one as expired first, so this is the replaced one). Only the first time
            // this event is applied.
            let this_row_exists = Query::select()
                .expr(Expr::val(1))
                .from(delegationen::Entity)
                .and_where(Expr::col(delegationen::Column::Id).eq(row))
                .to_owned();
            delegationen::Entity::update_many()
                .col_expr(delegationen::Column::EndedAt, Expr::value(ts))
                .col_expr(delegationen::Column::EndedReason, Expr::value("replaced"))
                .filter(delegationen::Column::FromRolle.eq(p.from))
                .filter(delegationen::Column::EndedAt.is_null())
                .filter(delegationen::Column::Id.ne(row))
                .filter(Expr::exists(this_row_exists).not())
                .exec(txn)
                .await?;
            insert_new(
                txn,
                delegationen::Entity::insert(delegationen::ActiveModel {
                    id: Set(row),
                    from_rolle: Set(p.from),
                    to_rolle: Set(p.to),
                    valid_until: Set(p.valid_until.into()),
                    created_at: Set(ts.into()),
                    ..Default::default()
                }),
                Some(delegationen::Column::Id),
            )
            .await
        }
        EventType::DelegationWiderrufen => {
            let p: DelegationWiderrufen = decode(env)?;
            end_delegation(txn, p.from, p.to, ts, "revoked", Some(ts)).await
        }
        EventType::DelegationAbgelaufen => {
            let p: DelegationAbgelaufen = decode(env)?;
            end_delegation(txn, p.from, p.to, p.valid_until, "expired", None).await
        }
        EventType::VerifizierungBestaetigt => {
            let p: VerifizierungBestaetigt = decode(env)?;
            exec(
                txn,
                "UPDATE rollen SET verification_confirmations = array_append(verification_confirmations, $2) \
                 WHERE id = $1 AND NOT ($2 = ANY (verification_confirmations))",
                [id.into(), p.by.into()],
            )
            .await
        }
        EventType::RolleVerifiziert => {
            let p: RolleVerifiziert = decode(env)?;
            rollen::Entity::update_many()
                .col_expr(rollen::Column::VerifiedBy, Expr::value(p.verified_by))
                .col_expr(
                    rollen::Column::VerifiedAt,
                    Expr::col(rollen::Column::VerifiedAt).if_null(ts),
                )
                .filter(rollen::Column::Id.eq(id))
                .exec(txn)
                .await
                .map(drop)
        }
        EventType::AdminActionExecuted => {
            let p: AdminActionExecuted = decode(env)?;
            match p.target {
                Some(target) if p.action == ACTION_GRANT_ADMIN => rollen::Entity::update_many()
                    .col_expr(rollen::Column::IsAdmin, Expr::value(true))
                    .filter(rollen::Column::Id.eq(target))
                    .exec(txn)
                    .await
                    .map(drop),
                // `verify_rolle` takes effect through `RolleVerifiziert` on the role's chain;
                // other actions are audit only.
                _ => Ok(()),
            }
        }
        EventType::FlagRaised => {
            let p: FlagRaised = decode(env)?;
            let key = keys.get(txn, p.by).await?;
            let reason = open(key, &p.reason, env);
            insert_new(
                txn,
                flags::Entity::insert(flags::ActiveModel {
                    id: Set(id),
                    target_kind: Set(p.target.kind.as_str().to_owned()),
                    target_id: Set(p.target.id),
                    reason: Set(reason),
                    raised_by: Set(p.by),
                    author_of_target: Set(p.author_of_target),
                    created_at: Set(ts.into()),
                    ..Default::default()
                }),
                Some(flags::Column::Id),
            )
            .await
        }
        EventType::FlagResolved => {
            let p: FlagResolved = decode(env)?;
            let key = keys.get(txn, p.by).await?;
            let reason = open(key, &p.reason, env);
            flags::Entity::update_many()
                .col_expr(flags::Column::Outcome, Expr::value(p.outcome.as_str()))
                .col_expr(flags::Column::ResolutionReason, Expr::value(reason))
                .col_expr(flags::Column::ResolvedBy, Expr::value(p.by))
                .col_expr(flags::Column::ResolvedAt, Expr::value(ts))
                .filter(flags::Column::Id.eq(id))
                .filter(flags::Column::Outcome.is_null())
                .exec(txn)
                .await?;
            if p.outcome == FlagOutcome::Hidden {
                hide_target(txn, id).await?;
            }
            Ok(())
        }
        EventType::UserDeleted => {
            // The social arm destroyed the key and the name; the reasons this role wrote go too.
            exec(
                txn,
                "WITH objections AS (UPDATE einsprueche SET reason = NULL WHERE by = $1 RETURNING 1), \
                      raised AS (UPDATE flags SET reason = NULL WHERE raised_by = $1 RETURNING 1), \
                      resolved AS (UPDATE flags SET resolution_reason = NULL WHERE resolved_by = $1 RETURNING 1) \
                 SELECT 1",
                [id.into()],
            )
            .await
        }
        _ => Ok(()),
    }
}

/// Hide the content flag `flag` is about, from the time it was resolved.
async fn hide_target(txn: &DatabaseTransaction, flag: Uuid) -> Result<(), DbErr> {
    let Some((kind, target, at)) = flags::Entity::find_by_id(flag)
        .select_only()
        .columns([
            flags::Column::TargetKind,
            flags::Column::TargetId,
            flags::Column::ResolvedAt,
        ])
        .filter(flags::Column::Outcome.eq(FlagOutcome::Hidden.as_str()))
        .into_tuple::<(String, Uuid, DateTimeWithTimeZone)>()
        .one(txn)
        .await?
    else {
        return Ok(());
    };
    let Some(kind) = FlagTargetKind::parse(&kind) else {
        return Err(DbErr::Custom(format!(
            "flag {flag}: unknown target kind {kind}"
        )));
    };
    match kind {
        FlagTargetKind::Knoten => hide::<knoten::Entity>(txn, target, at).await,
        FlagTargetKind::Nachricht => hide::<nachrichten::Entity>(txn, target, at).await,
        FlagTargetKind::Antrag => hide::<antraege::Entity>(txn, target, at).await,
        FlagTargetKind::Rolle => hide::<rollen::Entity>(txn, target, at).await,
    }
}

/// `hidden_at = at` on the row `id` of `E` (a table with `id` and `hidden_at`) unless it is
/// hidden already.
async fn hide<E: EntityTrait>(
    txn: &DatabaseTransaction,
    id: Uuid,
    at: DateTimeWithTimeZone,
) -> Result<(), DbErr> {
    let column = |name: &str| {
        E::Column::from_str(name).map_err(|_| {
            DbErr::Custom(format!(
                "{} has no column {name}",
                E::default().table_name()
            ))
        })
    };
    let hidden_at = column("hidden_at")?;
    E::update_many()
        .col_expr(hidden_at, Expr::value(at))
        .filter(column("id")?.eq(id))
        .filter(hidden_at.is_null())
        .exec(txn)
        .await
        .map(drop)
}

/// A delegation of `from` to `to` that has not ended ends at `at` for `reason`.
async fn end_delegation(
    txn: &DatabaseTransaction,
    from: Uuid,
    to: Uuid,
    at: DateTime<Utc>,
    reason: &str,
    revoked_at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    let mut update = delegationen::Entity::update_many()
        .col_expr(delegationen::Column::EndedAt, Expr::value(at))
        .col_expr(delegationen::Column::EndedReason, Expr::value(reason));
    if let Some(revoked_at) = revoked_at {
        update = update.col_expr(delegationen::Column::RevokedAt, Expr::value(revoked_at));
    }
    update
        .filter(delegationen::Column::FromRolle.eq(from))
        .filter(delegationen::Column::ToRolle.eq(to))
        .filter(delegationen::Column::EndedAt.is_null())
        .exec(txn)
        .await
        .map(drop)
}

/// An Antrag's participation, quorum base and quorum percent (as the decision records them).
fn with_participation(
    update: UpdateMany<antraege::Entity>,
    participation: u64,
    active_roles: u64,
    quorum_percent: u32,
) -> Result<UpdateMany<antraege::Entity>, DbErr> {
    Ok(update
        .col_expr(
            antraege::Column::Participation,
            Expr::value(int(participation, "participation")?),
        )
        .col_expr(
            antraege::Column::ActiveRoles,
            Expr::value(int(active_roles, "active_roles")?),
        )
        .col_expr(
            antraege::Column::QuorumPercent,
            Expr::value(int(u64::from(quorum_percent), "quorum_percent")?),
        ))
}

/// The latest event time of every role that caused an event in one batch, written once per
/// batch: upserted into `rolle_activity` (which needs no `rollen` row, so the order in which
/// the streams are projected does not matter), then mirrored into `rollen.last_active_at` for
/// the roles of the batch, including roles whose row this batch created.
#[derive(Default)]
pub(super) struct Activity {
    latest: HashMap<Uuid, DateTime<Utc>>,
    registered: Vec<Uuid>,
}

impl Activity {
    pub(super) fn saw(&mut self, env: &Envelope) {
        if let Actor::Rolle(rolle) = env.meta.actor {
            let at = self.latest.entry(rolle).or_insert(env.ts);
            if *at < env.ts {
                *at = env.ts;
            }
        }
        if env.known_type() == Some(EventType::RolleRegistriert) {
            self.registered.push(env.aggregate_id);
        }
    }

    /// At most two statements for the whole batch; `last_active_at` only moves forward.
    pub(super) async fn flush(&self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        if !self.latest.is_empty() {
            let rows: Vec<serde_json::Value> = self
                .latest
                .iter()
                .map(|(id, ts)| serde_json::json!({ "id": id, "ts": ts }))
                .collect();
            exec(
                txn,
                "INSERT INTO rolle_activity (rolle_id, last_active_at) \
                 SELECT v.id, v.ts FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, ts timestamptz) \
                 ON CONFLICT (rolle_id) DO UPDATE \
                     SET last_active_at = greatest(rolle_activity.last_active_at, EXCLUDED.last_active_at)",
                [serde_json::Value::Array(rows).into()],
            )
            .await?;
        }
        let mut ids: Vec<Uuid> = self
            .latest
            .keys()
            .chain(&self.registered)
            .copied()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        exec(
            txn,
            "UPDATE rollen r SET last_active_at = a.last_active_at FROM rolle_activity a \
             WHERE a.rolle_id = r.id AND r.id = ANY($1) \
               AND r.last_active_at IS DISTINCT FROM a.last_active_at",
            [ids.into()],
        )
        .await
    }
}

/// After a rebuild replayed the archive stream by stream: the hides of rows that were
/// inserted after the flags that hid them (see the module docs).
pub(super) async fn after_rebuild(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    for kind in [
        FlagTargetKind::Knoten,
        FlagTargetKind::Nachricht,
        FlagTargetKind::Antrag,
        FlagTargetKind::Rolle,
    ] {
        let Some(table) = target_table(kind.as_str()) else {
            continue;
        };
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "UPDATE {table} t SET hidden_at = f.resolved_at \
                 FROM (SELECT target_id, min(resolved_at) AS resolved_at FROM flags \
                       WHERE target_kind = $1 AND outcome = 'hidden' GROUP BY target_id) f \
                 WHERE t.id = f.target_id AND t.hidden_at IS NULL"
            ),
            [kind.as_str().into()],
        ))
        .await?;
    }
    Ok(())
}
