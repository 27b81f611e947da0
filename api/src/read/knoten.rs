//! Knoten: the map's nodes as projected (`knoten`). The point is a PostGIS geography that the
//! entity maps as a `String` sqlx cannot decode, so what reads it (`ST_X`/`ST_Y`, the box test
//! with `ST_MakeEnvelope`) stays SQL here; the rest is SeaORM (never loading `knoten` whole).

use chrono::{DateTime, Utc};
use domain::events::KnotenTyp;
use domain::geo::Bbox;
use entity::{faeden, knoten};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryResult, QuerySelect, Statement,
};
use uuid::Uuid;

use super::Keyset;

/// A Knoten as the map shows it.
#[derive(Debug, Clone)]
pub(crate) struct KnotenRow {
    pub id: Uuid,
    pub typ: KnotenTyp,
    pub title: String,
    pub content: serde_json::Value,
    pub lat: f64,
    pub lng: f64,
    pub h3: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub is_yarn: bool,
    pub decayed_at: Option<DateTime<Utc>>,
    pub design_version: i32,
    pub created_by: Option<Uuid>,
}

const KNOTEN_COLUMNS: &str = "id, typ::text AS typ, title, content, ST_Y(point::geometry) AS lat, \
    ST_X(point::geometry) AS lng, h3, created_at, expires_at, is_yarn, decayed_at, design_version, created_by";

fn row_to_knoten(row: &QueryResult) -> Result<KnotenRow, DbErr> {
    let typ: String = row.try_get("", "typ")?;
    Ok(KnotenRow {
        id: row.try_get("", "id")?,
        typ: match typ.as_str() {
            "event" => KnotenTyp::Event,
            "ressource" => KnotenTyp::Ressource,
            _ => KnotenTyp::Ideen,
        },
        title: row.try_get("", "title")?,
        content: row.try_get("", "content")?,
        lat: row.try_get("", "lat")?,
        lng: row.try_get("", "lng")?,
        h3: row.try_get("", "h3")?,
        created_at: row.try_get("", "created_at")?,
        expires_at: row.try_get("", "expires_at")?,
        is_yarn: row.try_get("", "is_yarn")?,
        decayed_at: row.try_get("", "decayed_at")?,
        design_version: row.try_get("", "design_version")?,
        created_by: row.try_get("", "created_by")?,
    })
}

/// Knoten in the box that have not faded nor been hidden, after `after` in `(created_at, id)`
/// order, at most `limit`.
pub(crate) async fn in_box(
    db: &DatabaseConnection,
    bbox: &Bbox,
    after: Keyset,
    limit: u64,
) -> Result<Vec<KnotenRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT {KNOTEN_COLUMNS} FROM knoten \
                 WHERE decayed_at IS NULL AND hidden_at IS NULL AND point && ST_MakeEnvelope($1, $2, $3, $4, 4326)::geography \
                 AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT $7"
            ),
            [
                bbox.west.into(),
                bbox.south.into(),
                bbox.east.into(),
                bbox.north.into(),
                after.0.into(),
                after.1.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.iter().map(row_to_knoten).collect()
}

/// One Knoten by id (also a faded one, never a hidden one).
pub(crate) async fn by_id(db: &DatabaseConnection, id: Uuid) -> Result<Option<KnotenRow>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {KNOTEN_COLUMNS} FROM knoten WHERE id = $1 AND hidden_at IS NULL"),
            [id.into()],
        ))
        .await?;
    row.as_ref().map(row_to_knoten).transpose()
}

/// Where a Knoten is, as `(lat, lng)`.
pub(crate) async fn point(db: &DatabaseConnection, id: Uuid) -> Result<Option<(f64, f64)>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT ST_Y(point::geometry) AS lat, ST_X(point::geometry) AS lng FROM knoten WHERE id = $1",
            [id.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let lat: Option<f64> = row.try_get("", "lat")?;
    let lng: Option<f64> = row.try_get("", "lng")?;
    Ok(lat.zip(lng))
}

/// Who tied a Knoten: `None` if there is no such Knoten, `Some(None)` for a system Knoten.
pub(crate) async fn creator(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<Option<Uuid>>, DbErr> {
    knoten::Entity::find_by_id(id)
        .select_only()
        .column(knoten::Column::CreatedBy)
        .into_tuple()
        .one(db)
        .await
}

/// Whether `rolle` tied the Knoten or has a live thread to it (who may edit its design area).
pub(crate) async fn is_creator_or_participant(
    db: &DatabaseConnection,
    knoten_id: Uuid,
    rolle: Uuid,
) -> Result<bool, DbErr> {
    let tied = knoten::Entity::find_by_id(knoten_id)
        .filter(knoten::Column::CreatedBy.eq(rolle))
        .select_only()
        .column(knoten::Column::Id)
        .count(db)
        .await?;
    if tied > 0 {
        return Ok(true);
    }
    let live_threads = faeden::Entity::find()
        .filter(faeden::Column::ToKnoten.eq(knoten_id))
        .filter(faeden::Column::FromRolle.eq(rolle))
        .filter(faeden::Column::DecayedAt.is_null())
        .filter(
            Condition::any()
                .add(faeden::Column::IsYarn.eq(true))
                .add(Expr::col(faeden::Column::ExpiresAt).gt(Expr::current_timestamp())),
        )
        .count(db)
        .await?;
    Ok(live_threads > 0)
}
