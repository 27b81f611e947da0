//! Threads and rooms: `faeden`, `nachrichten`, @mention look-up, and the fuzzy search over
//! Knoten, Anträge and roles (pg_trgm `similarity`/`word_similarity` and PostGIS: SQL here).

use chrono::{DateTime, Utc};
use domain::events::FadenTyp;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement};
use uuid::Uuid;

use super::Keyset;

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

fn row_to_faden(row: &QueryResult) -> Result<FadenRow, DbErr> {
    let typ: String = row.try_get("", "typ")?;
    Ok(FadenRow {
        id: row.try_get("", "id")?,
        typ: match typ.as_str() {
            "beitrag" => FadenTyp::Beitrag,
            "mitarbeit" => FadenTyp::Mitarbeit,
            _ => FadenTyp::Interesse,
        },
        from_rolle: row.try_get("", "from_rolle")?,
        to_knoten: row.try_get("", "to_knoten")?,
        created_at: row.try_get("", "created_at")?,
        renewed_at: row.try_get("", "renewed_at")?,
        expires_at: row.try_get("", "expires_at")?,
        is_yarn: row.try_get("", "is_yarn")?,
    })
}

/// Live (not faded) threads to these Knoten, oldest first.
pub(crate) async fn live_faeden(
    db: &DatabaseConnection,
    knoten: &[Uuid],
) -> Result<Vec<FadenRow>, DbErr> {
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, typ::text AS typ, from_rolle, to_knoten, created_at, renewed_at, expires_at, is_yarn \
             FROM faeden WHERE to_knoten = ANY($1) AND decayed_at IS NULL ORDER BY created_at, id",
            [knoten.to_vec().into()],
        ))
        .await?;
    rows.iter().map(row_to_faden).collect()
}

/// The Knoten a thread points to.
pub(crate) async fn faden_knoten(
    db: &DatabaseConnection,
    faden: Uuid,
) -> Result<Option<Uuid>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT to_knoten FROM faeden WHERE id = $1",
            [faden.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "to_knoten")).transpose()
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

fn row_to_nachricht(row: &QueryResult) -> Result<NachrichtRow, DbErr> {
    Ok(NachrichtRow {
        id: row.try_get("", "id")?,
        knoten_id: row.try_get("", "knoten_id")?,
        author: row.try_get("", "author")?,
        text: row.try_get("", "text")?,
        mentions: row.try_get("", "mentions")?,
        created_at: row.try_get("", "created_at")?,
    })
}

/// One message by id (`None` when it was hidden by moderation).
pub(crate) async fn nachricht(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<NachrichtRow>, DbErr> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, knoten_id, author, text, mentions, created_at FROM nachrichten \
             WHERE id = $1 AND hidden_at IS NULL",
            [id.into()],
        ))
        .await?;
    row.as_ref().map(row_to_nachricht).transpose()
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
    let order = if backwards { "DESC" } else { "ASC" };
    let rows = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT id, knoten_id, author, text, mentions, created_at FROM nachrichten \
                 WHERE knoten_id = $1 AND hidden_at IS NULL AND (created_at, id) > ($2, $3) AND (created_at, id) < ($4, $5) \
                 ORDER BY created_at {order}, id {order} LIMIT $6"
            ),
            [
                knoten.into(),
                after.0.into(),
                after.1.into(),
                before.0.into(),
                before.1.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.iter().map(row_to_nachricht).collect()
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
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT author FROM nachrichten WHERE id = $1",
            [id.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "author")).transpose()
}
