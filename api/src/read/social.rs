//! Threads and rooms: `faeden`, `nachrichten`, @mention look-up, and the fuzzy search over
//! Knoten, Anträge and roles.
//!
//! SeaORM throughout, except the search (pg_trgm `similarity`/`word_similarity` and PostGIS
//! points) and the mention look-up (`DISTINCT ON` a normalised name, participants first), which
//! stay SQL.

use chrono::{DateTime, Utc};
use domain::events::FadenTyp;
use entity::sea_orm_active_enums as db_enums;
use entity::{faeden, nachrichten};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{Keyset, utc};

/// A thread as projected.
#[derive(Debug, Clone)]
pub(crate) struct FadenRow {
    pub id: Uuid,
    pub typ: FadenTyp,
    pub from_rolle: Uuid,
    pub to_knoten: Uuid,
    pub created_at: DateTime<Utc>,
    pub renewed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub is_yarn: bool,
}

impl From<faeden::Model> for FadenRow {
    fn from(m: faeden::Model) -> Self {
        Self {
            id: m.id,
            typ: match m.typ {
                db_enums::FadenTyp::Interesse => FadenTyp::Interesse,
                db_enums::FadenTyp::Beitrag => FadenTyp::Beitrag,
                db_enums::FadenTyp::Mitarbeit => FadenTyp::Mitarbeit,
            },
            from_rolle: m.from_rolle,
            to_knoten: m.to_knoten,
            created_at: utc(m.created_at),
            renewed_at: m.renewed_at.map(utc),
            expires_at: utc(m.expires_at),
            is_yarn: m.is_yarn,
        }
    }
}

/// Live (not faded) threads to these Knoten, oldest first.
pub(crate) async fn live_faeden(
    db: &DatabaseConnection,
    knoten: &[Uuid],
) -> Result<Vec<FadenRow>, DbErr> {
    let rows = faeden::Entity::find()
        .filter(faeden::Column::ToKnoten.is_in(knoten.iter().copied()))
        .filter(faeden::Column::DecayedAt.is_null())
        .order_by_asc(faeden::Column::CreatedAt)
        .order_by_asc(faeden::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The Knoten a thread points to.
pub(crate) async fn faden_knoten(
    db: &DatabaseConnection,
    faden: Uuid,
) -> Result<Option<Uuid>, DbErr> {
    faeden::Entity::find_by_id(faden)
        .select_only()
        .column(faeden::Column::ToKnoten)
        .into_tuple()
        .one(db)
        .await
}

/// A room message as projected.
#[derive(Debug, Clone)]
pub(crate) struct NachrichtRow {
    pub id: Uuid,
    pub knoten_id: Uuid,
    pub author: Uuid,
    pub text: Option<String>,
    pub mentions: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<nachrichten::Model> for NachrichtRow {
    fn from(m: nachrichten::Model) -> Self {
        Self {
            id: m.id,
            knoten_id: m.knoten_id,
            author: m.author,
            text: m.text,
            mentions: m.mentions,
            created_at: utc(m.created_at),
        }
    }
}

/// One message by id (`None` when it was hidden by moderation).
pub(crate) async fn nachricht(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<NachrichtRow>, DbErr> {
    Ok(nachrichten::Entity::find_by_id(id)
        .filter(nachrichten::Column::HiddenAt.is_null())
        .one(db)
        .await?
        .map(Into::into))
}

/// Visible messages of a room strictly between `after` and `before` in `(created_at, id)`
/// order: the first `limit` of them, or with `backwards` the last `limit` (newest first).
pub(crate) async fn thread(
    db: &DatabaseConnection,
    knoten: Uuid,
    after: Keyset,
    before: Keyset,
    backwards: bool,
    limit: u64,
) -> Result<Vec<NachrichtRow>, DbErr> {
    use nachrichten::Column as C;
    let after_cond = Condition::any().add(C::CreatedAt.gt(after.0)).add(
        Condition::all()
            .add(C::CreatedAt.eq(after.0))
            .add(C::Id.gt(after.1)),
    );
    let before_cond = Condition::any().add(C::CreatedAt.lt(before.0)).add(
        Condition::all()
            .add(C::CreatedAt.eq(before.0))
            .add(C::Id.lt(before.1)),
    );
    let order = if backwards {
        sea_orm::Order::Desc
    } else {
        sea_orm::Order::Asc
    };
    let rows = nachrichten::Entity::find()
        .filter(C::KnotenId.eq(knoten))
        .filter(C::HiddenAt.is_null())
        .filter(after_cond)
        .filter(before_cond)
        .order_by(C::CreatedAt, order.clone())
        .order_by(C::Id, order)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// `@name` tokens (names without spaces, lower case) -> `(token, role)`: among roles with that
/// name, one with a live thread to `knoten` first, then the oldest.
pub(crate) async fn mentioned_roles(
    db: &DatabaseConnection,
    knoten: Uuid,
    tokens: &[String],
) -> Result<Vec<(String, Uuid)>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT DISTINCT ON (lower(replace(r.name, ' ', ''))) r.id, lower(replace(r.name, ' ', '')) AS token \
             FROM rollen r LEFT JOIN faeden f ON f.from_rolle = r.id AND f.to_knoten = $1 AND f.decayed_at IS NULL \
             WHERE r.deleted_at IS NULL AND lower(replace(r.name, ' ', '')) = ANY($2) \
             ORDER BY lower(replace(r.name, ' ', '')), (f.id IS NULL), r.created_at",
            [knoten.into(), tokens.to_vec().into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "token")?, r.try_get("", "id")?)))
        .collect()
}

/// What a search hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HitKind {
    Knoten,
    Antrag,
    Rolle,
}

/// A search hit: a point (Knoten, role) or an H3 cell (an Antrag's Weberei) to fly to.
#[derive(Debug, Clone)]
pub(crate) struct SearchRow {
    pub kind: HitKind,
    pub id: Uuid,
    pub title: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub h3: Option<i64>,
    pub score: f32,
}

/// Fuzzy search (pg_trgm) over visible Knoten titles, Antrag titles and role names, best first.
pub(crate) async fn search(
    db: &DatabaseConnection,
    text: &str,
    first: i32,
) -> Result<Vec<SearchRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT kind, id, title, lat, lng, h3, score FROM ( \
               SELECT 'KNOTEN' AS kind, id, title, ST_Y(point::geometry) AS lat, ST_X(point::geometry) AS lng, NULL::bigint AS h3, \
                      greatest(similarity(title, $1), word_similarity($1, title)) AS score \
                 FROM knoten WHERE decayed_at IS NULL AND hidden_at IS NULL AND (title % $1 OR $1 <% title) \
               UNION ALL \
               SELECT 'ANTRAG', id, title, NULL, NULL, weavery_h3, greatest(similarity(title, $1), word_similarity($1, title)) \
                 FROM antraege WHERE hidden_at IS NULL AND (title % $1 OR $1 <% title) \
               UNION ALL \
               SELECT 'ROLLE', id, name, ST_Y(point::geometry), ST_X(point::geometry), NULL, \
                      greatest(similarity(name, $1), word_similarity($1, name)) \
                 FROM rollen WHERE deleted_at IS NULL AND hidden_at IS NULL AND (name % $1 OR $1 <% name) \
             ) hits ORDER BY score DESC, title LIMIT $2",
            [text.into(), i64::from(first).into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("", "kind")?;
            Ok(SearchRow {
                kind: match kind.as_str() {
                    "ANTRAG" => HitKind::Antrag,
                    "ROLLE" => HitKind::Rolle,
                    _ => HitKind::Knoten,
                },
                id: row.try_get("", "id")?,
                title: row.try_get("", "title")?,
                lat: row.try_get("", "lat")?,
                lng: row.try_get("", "lng")?,
                h3: row.try_get("", "h3")?,
                score: row.try_get("", "score")?,
            })
        })
        .collect()
}

/// Who wrote a message: `None` if there is no such message.
pub(crate) async fn nachricht_author(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<Uuid>, DbErr> {
    nachrichten::Entity::find_by_id(id)
        .select_only()
        .column(nachrichten::Column::Author)
        .into_tuple()
        .one(db)
        .await
}
