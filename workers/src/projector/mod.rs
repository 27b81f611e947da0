//! Applying events to PostgreSQL: one transaction per batch holding the projection rows, the
//! archive rows and the advanced chain heads. No JetStream here, so it can be tested and used
//! for rebuilds from the archive alike.
//!
//! This module is the batch machinery (parse, check each chain link, archive, advance heads);
//! what an event does to the read model lives in one module per stream domain (`social`,
//! `governance`).
//!
//! Reads and single-row writes go through the `entity` crate (heads, archive keys, data keys,
//! the arms of `social` and `governance`). Raw SQL stays where SeaORM's builder cannot say it
//! or would make the batch path slower, and only in this module and the two domain modules:
//! here the batch statements (archive keys and archive rows, heads upserted with
//! `unnest($1::uuid[], ..)` as one multi-row statement each) and the rebuild's `TRUNCATE` and
//! server-side cursor (`DECLARE .. CURSOR`, `FETCH`); each domain module lists its own.

use std::collections::{HashMap, HashSet};

mod governance;
mod rows;
mod social;

use chrono::{DateTime, Utc};
use domain::{Envelope, hash::check_link};
use entity::{aggregate_heads, events_archive_keys};
use sea_orm::sea_query::{Expr, PgFunc, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QuerySelect, Statement, TransactionTrait,
};
use serde_json::Value;
use tracing::warn;
use uuid::Uuid;

use social::Keys;

/// One message as it came off a stream.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub stream: String,
    pub seq: u64,
    pub subject: String,
    pub payload: Vec<u8>,
    /// When JetStream stored it (for the lag metric).
    pub published: Option<DateTime<Utc>>,
}

/// Something that cannot be applied: it goes to `wg.<ort>.dlq.dead` and is acknowledged.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub incoming: Incoming,
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct BatchReport {
    pub applied: usize,
    /// Already applied before (redelivery, or a second copy of the same event).
    pub skipped: usize,
    pub dead: Vec<DeadLetter>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

#[derive(Debug, Clone)]
struct Head {
    last_hash: String,
}

/// Applies batches of events. Cheap to clone.
#[derive(Clone)]
pub struct Projector {
    db: DatabaseConnection,
}

enum Verdict {
    Apply(Box<Envelope>, Value, String),
    Skip,
    Dead(&'static str, String),
}

impl Projector {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Apply a batch in one transaction. If the transaction fails as a whole, each event is
    /// tried on its own so that one bad event dead-letters alone; a database outage is
    /// returned as an error (nothing acknowledged).
    pub async fn apply_batch(&self, batch: &[Incoming]) -> Result<BatchReport, ProjectorError> {
        match self.apply_in_one_transaction(batch).await {
            Ok(report) => Ok(report),
            Err(e) if is_outage(&e) => Err(e.into()),
            Err(e) => {
                warn!(error = %e, size = batch.len(), "batch failed; applying its events one by one");
                let mut report = BatchReport::default();
                for incoming in batch {
                    match self
                        .apply_in_one_transaction(std::slice::from_ref(incoming))
                        .await
                    {
                        Ok(r) => {
                            report.applied += r.applied;
                            report.skipped += r.skipped;
                            report.dead.extend(r.dead);
                        }
                        Err(e) if is_outage(&e) => return Err(e.into()),
                        Err(e) => report.dead.push(DeadLetter {
                            incoming: incoming.clone(),
                            reason: "projection_error",
                            detail: e.to_string(),
                        }),
                    }
                }
                Ok(report)
            }
        }
    }

    async fn apply_in_one_transaction(&self, batch: &[Incoming]) -> Result<BatchReport, DbErr> {
        let txn = self.db.begin().await?;
        let report = apply_all(&txn, batch, true).await?;
        txn.commit().await?;
        Ok(report)
    }

    /// Throw away every projection and head and apply the whole archive again, in stream
    /// order. The archive itself is not touched. Returns the number of events applied.
    pub async fn rebuild_from_archive(&self) -> Result<u64, ProjectorError> {
        let txn = self.db.begin().await?;
        txn.execute_unprepared(
            // Never rolle_keys or sessions: they are not projections, and a destroyed key must
            // stay destroyed, so a rebuild keeps a deleted person's names and texts unreadable.
            &format!("TRUNCATE knoten, faeden, rollen, nachrichten, antraege, stimmen, delegationen, zahlungen, {}, aggregate_heads", governance::TABLES),
        )
        .await?;
        let mut applied = 0u64;
        // One cursor over the archive in stream order: sorted once, read in pages (a keyset
        // query per page would sort the whole archive again for every page).
        txn.execute_unprepared(
            "DECLARE wg_rebuild NO SCROLL CURSOR FOR \
             SELECT stream, stream_seq, subject, envelope::text AS envelope FROM events_archive \
             ORDER BY stream, stream_seq",
        )
        .await?;
        loop {
            let rows = txn
                .query_all(Statement::from_string(
                    DbBackend::Postgres,
                    "FETCH 2000 FROM wg_rebuild",
                ))
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut batch = Vec::with_capacity(rows.len());
            for row in &rows {
                let stream: String = row.try_get("", "stream")?;
                let seq: i64 = row.try_get("", "stream_seq")?;
                let subject: String = row.try_get("", "subject")?;
                let envelope: String = row.try_get("", "envelope")?;
                batch.push(Incoming {
                    stream,
                    seq: seq as u64,
                    subject,
                    payload: envelope.into_bytes(),
                    published: None,
                });
            }
            let report = apply_all(&txn, &batch, false).await?;
            applied += report.applied as u64;
        }
        txn.execute_unprepared("CLOSE wg_rebuild").await?;
        governance::after_rebuild(&txn).await?;
        txn.commit().await?;
        Ok(applied)
    }
}

/// `column = ANY($1)` with the whole list as one array parameter: one prepared statement for
/// any batch size (`is_in` would bind one parameter per value).
pub(super) fn any_of(column: impl ColumnTrait, values: impl Into<sea_orm::Value>) -> SimpleExpr {
    Expr::col((column.entity_name(), column)).eq(PgFunc::any(Expr::val(values)))
}

fn is_outage(e: &DbErr) -> bool {
    matches!(e, DbErr::Conn(_) | DbErr::ConnectionAcquire(_))
}

/// Check and apply every event of the batch inside `txn`. With `archive` false (rebuild), the
/// archive is the source and is not written again.
async fn apply_all(
    txn: &DatabaseTransaction,
    batch: &[Incoming],
    archive: bool,
) -> Result<BatchReport, DbErr> {
    let mut report = BatchReport::default();
    let mut parsed = Vec::with_capacity(batch.len());
    for incoming in batch {
        parsed.push(parse(incoming));
    }
    let ids: Vec<Uuid> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().map(|(e, _, _)| e.aggregate_id))
        .collect();
    let event_ids: Vec<String> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().map(|(e, _, _)| e.id.to_string()))
        .collect();
    let mut heads = load_heads(txn, &ids).await?;
    let mut keys = Keys::prefetch(
        txn,
        parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|(e, _, _)| e)),
    )
    .await?;
    let mut seen: HashSet<String> = if archive {
        load_archived(txn, &event_ids).await?
    } else {
        HashSet::new()
    };
    let mut advanced: HashMap<Uuid, (String, String, String, i64, String, i64)> = HashMap::new();
    let mut activity = governance::Activity::default();
    // Msg ids already archived for other events (a retried command after the dedup window).
    let mut taken: HashSet<String> = if archive {
        load_taken_msg_ids(
            txn,
            &parsed
                .iter()
                .filter_map(|p| p.as_ref().ok().map(|(e, _, _)| e.meta.msg_id.clone()))
                .collect::<Vec<_>>(),
        )
        .await?
    } else {
        HashSet::new()
    };

    // First pass, in memory: each event's verdict in stream order (chain links against the
    // heads as this batch advances them, msg ids against the archive and the batch).
    let mut to_apply: Vec<(&Incoming, Box<Envelope>, String)> = Vec::with_capacity(batch.len());
    for (incoming, parsed) in batch.iter().zip(parsed) {
        let verdict = match parsed {
            Err((reason, detail)) => Verdict::Dead(reason, detail),
            Ok((env, raw, hash)) => {
                if seen.contains(&env.id.to_string()) {
                    Verdict::Skip
                } else {
                    let head = heads.get(&env.aggregate_id);
                    match check_link(head.map(|h| h.last_hash.as_str()), &raw) {
                        Ok(_) => Verdict::Apply(Box::new(env), raw, hash),
                        Err(brk) => Verdict::Dead("hash_mismatch", brk.reason),
                    }
                }
            }
        };
        match verdict {
            Verdict::Skip => report.skipped += 1,
            Verdict::Dead(reason, detail) => {
                report.dead.push(DeadLetter {
                    incoming: incoming.clone(),
                    reason,
                    detail,
                });
            }
            Verdict::Apply(env, _raw, hash) => {
                if archive && !taken.insert(env.meta.msg_id.clone()) {
                    report.dead.push(duplicate_msg_id(incoming, &env));
                    continue;
                }
                seen.insert(env.id.to_string());
                let count = advanced.get(&env.aggregate_id).map(|a| a.5).unwrap_or(0) + 1;
                heads.insert(
                    env.aggregate_id,
                    Head {
                        last_hash: hash.clone(),
                    },
                );
                advanced.insert(
                    env.aggregate_id,
                    (
                        env.aggregate_type.as_str().to_owned(),
                        hash.clone(),
                        env.id.to_string(),
                        incoming.seq as i64,
                        incoming.stream.clone(),
                        count,
                    ),
                );
                to_apply.push((incoming, env, hash));
            }
        }
    }

    // The archive in two statements for the whole batch (keys first: a msg id another
    // transaction archived meanwhile is caught before the archive rows are written).
    if archive && !to_apply.is_empty() {
        let inserted = insert_archive(txn, &to_apply).await?;
        if inserted != to_apply.len() as u64 {
            if let [(incoming, env, _)] = to_apply.as_slice() {
                report.dead.push(duplicate_msg_id(incoming, env));
                return Ok(report);
            }
            // A concurrent writer took one of the msg ids: the caller retries event by event.
            return Err(DbErr::Custom(format!(
                "{} of {} msg ids were archived concurrently",
                to_apply.len() as u64 - inserted,
                to_apply.len()
            )));
        }
    }

    // Second pass: the read model, in stream order. Rows that commute (new Knoten, spun
    // Fäden) are gathered into one multi-row statement per table, flushed before any other
    // event so that every event still sees the effects of the ones before it.
    let mut pending = social::Pending::default();
    for (_, env, _) in &to_apply {
        match env.known_type() {
            Some(t) if social::Pending::takes(t) => pending.push(txn, env, t).await?,
            _ => {
                pending.flush(txn).await?;
                project(txn, env, &mut keys).await?;
            }
        }
        activity.saw(env);
        metrics::counter!("wg_events_total", "type" => env.event_type.clone()).increment(1);
        report.applied += 1;
    }
    pending.flush(txn).await?;
    activity.flush(txn).await?;
    upsert_heads(txn, advanced).await?;
    Ok(report)
}

fn duplicate_msg_id(incoming: &Incoming, env: &Envelope) -> DeadLetter {
    DeadLetter {
        incoming: incoming.clone(),
        reason: "duplicate_msg_id",
        detail: format!(
            "msg_id {} belongs to another archived event",
            env.meta.msg_id
        ),
    }
}

/// Every head the batch advanced, in one statement.
async fn upsert_heads(
    txn: &DatabaseTransaction,
    advanced: HashMap<Uuid, (String, String, String, i64, String, i64)>,
) -> Result<(), DbErr> {
    if advanced.is_empty() {
        return Ok(());
    }
    let n = advanced.len();
    let (mut ids, mut types, mut hashes, mut events, mut seqs, mut streams, mut counts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (id, (aggregate_type, hash, event_id, seq, stream, count)) in advanced {
        ids.push(id);
        types.push(aggregate_type);
        hashes.push(hash);
        events.push(event_id);
        seqs.push(seq);
        streams.push(stream);
        counts.push(count);
    }
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO aggregate_heads (aggregate_id, aggregate_type, last_hash, last_event_id, last_seq, stream, event_count, updated_at) \
         SELECT id, t, h, e, s, st, c, now() \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::int8[]) AS x(id, t, h, e, s, st, c) \
         ON CONFLICT (aggregate_id) DO UPDATE SET last_hash = EXCLUDED.last_hash, last_event_id = EXCLUDED.last_event_id, \
         last_seq = EXCLUDED.last_seq, stream = EXCLUDED.stream, \
         event_count = aggregate_heads.event_count + EXCLUDED.event_count, updated_at = now()",
        [
            ids.into(),
            types.into(),
            hashes.into(),
            events.into(),
            seqs.into(),
            streams.into(),
            counts.into(),
        ],
    ))
    .await?;
    Ok(())
}

type Parsed = Result<(Envelope, Value, String), (&'static str, String)>;

fn parse(incoming: &Incoming) -> Parsed {
    let raw: Value =
        serde_json::from_slice(&incoming.payload).map_err(|e| ("not_json", e.to_string()))?;
    let hash = domain::hash_value(&raw);
    let env: Envelope =
        serde_json::from_value(raw.clone()).map_err(|e| ("bad_envelope", e.to_string()))?;
    if env.subject != incoming.subject {
        return Err((
            "bad_envelope",
            format!(
                "envelope subject {} was published on {}",
                env.subject, incoming.subject
            ),
        ));
    }
    Ok((env, raw, hash))
}

async fn load_heads(txn: &DatabaseTransaction, ids: &[Uuid]) -> Result<HashMap<Uuid, Head>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, String)> = aggregate_heads::Entity::find()
        .select_only()
        .columns([
            aggregate_heads::Column::AggregateId,
            aggregate_heads::Column::LastHash,
        ])
        .filter(any_of(aggregate_heads::Column::AggregateId, ids.to_vec()))
        .lock_exclusive()
        .into_tuple()
        .all(txn)
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for (id, last_hash) in rows {
        out.insert(id, Head { last_hash });
    }
    Ok(out)
}

async fn load_archived(
    txn: &DatabaseTransaction,
    ids: &[String],
) -> Result<HashSet<String>, DbErr> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<String> = events_archive_keys::Entity::find()
        .select_only()
        .column(events_archive_keys::Column::Id)
        .filter(any_of(events_archive_keys::Column::Id, ids.to_vec()))
        .into_tuple()
        .all(txn)
        .await?;
    Ok(ids.into_iter().collect())
}

/// Msg ids of `msg_ids` that the archive already holds.
async fn load_taken_msg_ids(
    txn: &DatabaseTransaction,
    msg_ids: &[String],
) -> Result<HashSet<String>, DbErr> {
    if msg_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let taken: Vec<String> = events_archive_keys::Entity::find()
        .select_only()
        .column(events_archive_keys::Column::MsgId)
        .filter(any_of(events_archive_keys::Column::MsgId, msg_ids.to_vec()))
        .into_tuple()
        .all(txn)
        .await?;
    Ok(taken.into_iter().collect())
}

/// Archive the events: their key rows in one statement, then (only if every key went in)
/// their archive rows in another. Returns how many key rows were inserted; fewer than
/// `events` means a msg id was taken meanwhile and nothing was archived.
async fn insert_archive(
    txn: &DatabaseTransaction,
    events: &[(&Incoming, Box<Envelope>, String)],
) -> Result<u64, DbErr> {
    let n = events.len();
    let ids: Vec<String> = events.iter().map(|(_, e, _)| e.id.to_string()).collect();
    let msg_ids: Vec<String> = events
        .iter()
        .map(|(_, e, _)| e.meta.msg_id.clone())
        .collect();
    let ts: Vec<DateTime<Utc>> = events.iter().map(|(_, e, _)| e.ts).collect();
    let inserted = txn
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO events_archive_keys (id, msg_id, ts) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) ON CONFLICT DO NOTHING",
            [ids.clone().into(), msg_ids.clone().into(), ts.clone().into()],
        ))
        .await?
        .rows_affected();
    if inserted != n as u64 {
        return Ok(inserted);
    }
    let mut types = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut aggregates = Vec::with_capacity(n);
    let mut aggregate_types = Vec::with_capacity(n);
    let mut prev = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut streams = Vec::with_capacity(n);
    let mut seqs = Vec::with_capacity(n);
    let mut envelopes = Vec::with_capacity(n);
    for (incoming, env, hash) in events {
        types.push(env.event_type.clone());
        versions.push(env.version as i32);
        aggregates.push(env.aggregate_id);
        aggregate_types.push(env.aggregate_type.as_str().to_owned());
        // Arrays carry no NULLs here: '' stands for "no previous event" (a hash is never empty).
        prev.push(env.prev_hash.clone().unwrap_or_default());
        hashes.push(hash.clone());
        subjects.push(incoming.subject.clone());
        streams.push(incoming.stream.clone());
        seqs.push(incoming.seq as i64);
        // The JSON as received (it parsed, so it is UTF-8).
        envelopes.push(String::from_utf8_lossy(&incoming.payload).into_owned());
    }
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO events_archive (id, msg_id, type, version, aggregate_id, aggregate_type, prev_hash, hash, ts, subject, stream, stream_seq, envelope) \
         SELECT id, m, t, v, a, at, NULLIF(p, ''), h, ts, s, st, q, e::jsonb \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::uuid[], $6::text[], $7::text[], $8::text[], \
                     $9::timestamptz[], $10::text[], $11::text[], $12::int8[], $13::text[]) \
              AS x(id, m, t, v, a, at, p, h, ts, s, st, q, e)",
        [
            ids.into(),
            msg_ids.into(),
            types.into(),
            versions.into(),
            aggregates.into(),
            aggregate_types.into(),
            prev.into(),
            hashes.into(),
            ts.into(),
            subjects.into(),
            streams.into(),
            seqs.into(),
            envelopes.into(),
        ],
    ))
    .await?;
    Ok(inserted)
}

/// Update the read model for one event. Unknown or not-yet-projected types only advance the
/// chain and the archive. A payload that does not decode fails the transaction; the batch is
/// then retried event by event and this one is dead-lettered as `projection_error`.
async fn project(txn: &DatabaseTransaction, env: &Envelope, keys: &mut Keys) -> Result<(), DbErr> {
    let Some(t) = env.known_type() else {
        return Ok(());
    };
    if social::projects(t) {
        social::project(txn, env, t, keys).await?;
    }
    if governance::projects(t) {
        governance::project(txn, env, t, keys).await?;
    }
    Ok(())
}
