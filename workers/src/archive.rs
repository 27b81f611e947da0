//! The older part of chains, read from `events_archive` for `bus` once JetStream's max_age has
//! dropped it (`bus::Archive`).
//!
//! The envelope is read as the `jsonb` value the projector stored from the JSON as received;
//! its hash is over the RFC 8785 canonical form, which does not depend on how it is read.

use bus::{Archive, BusError, Stored};
use entity::events_archive;
use futures::FutureExt;
use futures::future::BoxFuture;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
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
        let rows: Vec<(String, i64, serde_json::Value)> = events_archive::Entity::find()
            .select_only()
            .columns([
                events_archive::Column::Subject,
                events_archive::Column::StreamSeq,
                events_archive::Column::Envelope,
            ])
            .filter(events_archive::Column::AggregateId.eq(id))
            .order_by_asc(events_archive::Column::Stream)
            .order_by_asc(events_archive::Column::StreamSeq)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for (subject, seq, raw) in rows {
            let corrupt = |detail: String| BusError::Corrupt {
                subject: subject.clone(),
                seq: seq as u64,
                detail,
            };
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
