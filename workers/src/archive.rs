//! The older part of chains, read from `events_archive` for `bus` once JetStream's max_age has
//! dropped it (`bus::Archive`).

use bus::{Archive, BusError, Stored};
use futures::FutureExt;
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

/// Reads one aggregate's archived chain. Cheap to clone.
#[derive(Clone)]
pub struct ArchiveReader {
    db: DatabaseConnection,
}

impl ArchiveReader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn load(&self, id: Uuid) -> Result<Vec<Stored>, BusError> {
        let unavailable = |e: sea_orm::DbErr| BusError::Unavailable(format!("events archive: {e}"));
        let rows = self
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT subject, stream_seq, envelope::text AS envelope FROM events_archive \
                 WHERE aggregate_id = $1 ORDER BY stream, stream_seq",
                [id.into()],
            ))
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let subject: String = row.try_get("", "subject").map_err(unavailable)?;
            let seq: i64 = row.try_get("", "stream_seq").map_err(unavailable)?;
            let text: String = row.try_get("", "envelope").map_err(unavailable)?;
            let corrupt = |detail: String| BusError::Corrupt {
                subject: subject.clone(),
                seq: seq as u64,
                detail,
            };
            let raw: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
            let hash = domain::hash_value(&raw);
            let envelope = serde_json::from_value(raw).map_err(|e| corrupt(e.to_string()))?;
            out.push(Stored {
                seq: Some(seq as u64),
                envelope,
                hash,
                archived: true,
            });
        }
        Ok(out)
    }
}

impl Archive for ArchiveReader {
    fn chain(&self, id: Uuid) -> BoxFuture<'_, Result<Vec<Stored>, BusError>> {
        self.load(id).boxed()
    }
}
