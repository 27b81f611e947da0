//! Fäden, rooms (thread, participants, design area), search and the public config; the
//! mutations that change them are in `social/mutations.rs`.

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Object, Result, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::DomainError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use super::Deps;
use super::knoten::{KnotenNode, load_knoten};
use super::rolle::{RolleNode, load_rolle, parse_id};
use crate::error::ApiError;

/// What a thread says about its role's relation to the Knoten.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "FadenTyp")]
pub enum FadenTypGql {
    /// Interested.
    Interesse,
    /// Contributes something.
    Beitrag,
    /// Works on it.
    Mitarbeit,
}

impl From<FadenTypGql> for domain::events::FadenTyp {
    fn from(t: FadenTypGql) -> Self {
        match t {
            FadenTypGql::Interesse => Self::Interesse,
            FadenTypGql::Beitrag => Self::Beitrag,
            FadenTypGql::Mitarbeit => Self::Mitarbeit,
        }
    }
}

fn faden_typ(s: &str) -> FadenTypGql {
    match s {
        "beitrag" => FadenTypGql::Beitrag,
        "mitarbeit" => FadenTypGql::Mitarbeit,
        _ => FadenTypGql::Interesse,
    }
}

/// A thread from a role (its home) to a Knoten. It fades 7 days after it was spun (or last
/// renewed) unless it became yarn.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Faden", complex)]
pub struct FadenNode {
    /// Stable id: the same role, Knoten and typ always give the same Faden.
    pub id: ID,
    /// What the thread says about its role's relation to the Knoten; a role can have one
    /// thread of each typ to the same Knoten.
    pub typ: FadenTypGql,
    /// Id of the role the thread starts from.
    pub from_rolle_id: ID,
    /// Id of the Knoten it points to.
    pub to_knoten_id: ID,
    /// When it was first spun.
    pub created_at: DateTime<Utc>,
    /// When it was last renewed (spun again), if ever.
    pub renewed_at: Option<DateTime<Utc>>,
    /// When it fades unless it becomes yarn; clients draw its opacity from this.
    pub expires_at: DateTime<Utc>,
    /// Twisted into yarn: never fades.
    pub is_yarn: bool,
}

#[ComplexObject]
impl FadenNode {
    /// The role the thread starts from (its home cell is the line's start).
    #[graphql(name = "fromRolle")]
    async fn origin_rolle(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.from_rolle_id, "fromRolleId")?).await
    }
}

const FADEN_COLUMNS: &str =
    "id, typ::text AS typ, from_rolle, to_knoten, created_at, renewed_at, expires_at, is_yarn";

fn row_to_faden(row: &sea_orm::QueryResult) -> Result<FadenNode, sea_orm::DbErr> {
    let id: Uuid = row.try_get("", "id")?;
    let from: Uuid = row.try_get("", "from_rolle")?;
    let to: Uuid = row.try_get("", "to_knoten")?;
    let typ: String = row.try_get("", "typ")?;
    Ok(FadenNode {
        id: ID(id.to_string()),
        typ: faden_typ(&typ),
        from_rolle_id: ID(from.to_string()),
        to_knoten_id: ID(to.to_string()),
        created_at: row.try_get("", "created_at")?,
        renewed_at: row.try_get("", "renewed_at")?,
        expires_at: row.try_get("", "expires_at")?,
        is_yarn: row.try_get("", "is_yarn")?,
    })
}

/// Live (not faded) threads per Knoten, batched.
pub struct FaedenByKnoten(pub DatabaseConnection);

impl Loader<Uuid> for FaedenByKnoten {
    type Value = Vec<FadenNode>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<FadenNode>>, Self::Error> {
        let rows = self
            .0
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT {FADEN_COLUMNS} FROM faeden WHERE to_knoten = ANY($1) AND decayed_at IS NULL ORDER BY created_at, id"
                ),
                [keys.to_vec().into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let mut out: HashMap<Uuid, Vec<FadenNode>> = HashMap::new();
        for row in &rows {
            let f = row_to_faden(row).map_err(ApiError::from)?;
            let to = Uuid::parse_str(&f.to_knoten_id).unwrap_or_default();
            out.entry(to).or_default().push(f);
        }
        Ok(out)
    }
}

pub(crate) async fn live_faeden(ctx: &Context<'_>, knoten: Uuid) -> Result<Vec<FadenNode>> {
    Ok(ctx
        .data::<DataLoader<FaedenByKnoten>>()?
        .load_one(knoten)
        .await?
        .unwrap_or_default())
}

/// Distinct roles with a live thread to the Knoten: its room's participants.
pub(crate) async fn participants(ctx: &Context<'_>, knoten: Uuid) -> Result<Vec<RolleNode>> {
    let mut ids: Vec<Uuid> = live_faeden(ctx, knoten)
        .await?
        .iter()
        .filter_map(|f| Uuid::parse_str(&f.from_rolle_id).ok())
        .collect();
    ids.sort();
    ids.dedup();
    let loaded = ctx
        .data::<DataLoader<super::rolle::RolleLoader>>()?
        .load_many(ids.iter().copied())
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| loaded.get(id).cloned())
        .collect())
}

/// A message in a room.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Nachricht", complex)]
pub struct NachrichtNode {
    /// Stable id (UUID).
    pub id: ID,
    /// Id of the Knoten whose room it was written in.
    pub knoten_id: ID,
    /// Id of the role that wrote it.
    pub author_id: ID,
    /// The text; null once its author deleted their role.
    pub text: Option<String>,
    /// Ids of the roles mentioned with @name.
    pub mention_ids: Vec<ID>,
    /// When it was written (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl NachrichtNode {
    /// The role that wrote it (a deleted role shows under its alias).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<RolleNode>> {
        load_rolle(ctx, parse_id(&self.author_id, "authorId")?).await
    }

    /// The roles mentioned with @name, in the order of `mentionIds`.
    async fn mentions(&self, ctx: &Context<'_>) -> Result<Vec<RolleNode>> {
        let ids: Vec<Uuid> = self
            .mention_ids
            .iter()
            .filter_map(|i| Uuid::parse_str(i).ok())
            .collect();
        let loaded = ctx
            .data::<DataLoader<super::rolle::RolleLoader>>()?
            .load_many(ids.iter().copied())
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| loaded.get(id).cloned())
            .collect())
    }
}

fn row_to_nachricht(row: &sea_orm::QueryResult) -> Result<NachrichtNode, sea_orm::DbErr> {
    let id: Uuid = row.try_get("", "id")?;
    let knoten: Uuid = row.try_get("", "knoten_id")?;
    let author: Uuid = row.try_get("", "author")?;
    let mentions: Vec<Uuid> = row.try_get("", "mentions")?;
    Ok(NachrichtNode {
        id: ID(id.to_string()),
        knoten_id: ID(knoten.to_string()),
        author_id: ID(author.to_string()),
        text: row.try_get("", "text")?,
        mention_ids: mentions.into_iter().map(|m| ID(m.to_string())).collect(),
        created_at: row.try_get("", "created_at")?,
    })
}

/// One room message by id (null when it was hidden by moderation).
pub(crate) async fn load_nachricht(ctx: &Context<'_>, id: Uuid) -> Result<Option<NachrichtNode>> {
    let deps = ctx.data::<Deps>()?;
    let row = deps
        .db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, knoten_id, author, text, mentions, created_at FROM nachrichten \
             WHERE id = $1 AND hidden_at IS NULL",
            [id.into()],
        ))
        .await
        .map_err(ApiError::from)?;
    Ok(row
        .as_ref()
        .map(row_to_nachricht)
        .transpose()
        .map_err(ApiError::from)?)
}

/// The design area of a Knoten: shared content with a version for conflict detection.
#[derive(SimpleObject, Clone, Debug)]
pub struct Design {
    /// Send this as `expectedVersion` when you edit.
    pub version: i32,
    /// The content as last saved (a JSON object, at most 16 KiB).
    pub content: Json<serde_json::Value>,
}

/// The room of a Knoten: its thread, participants and design area.
pub struct Room {
    knoten: KnotenNode,
    id: Uuid,
}

/// A page of a room's messages (`Room.thread`), oldest first.
pub(crate) type NachrichtConnection = Connection<String, NachrichtNode, EmptyFields, EmptyFields>;

/// The room of a Knoten: its thread of messages, participants and design area.
#[Object]
impl Room {
    /// The Knoten this room belongs to.
    async fn knoten(&self) -> &KnotenNode {
        &self.knoten
    }

    /// Messages, oldest first (the newest is last; messages hidden by moderation are left out). Page backwards from the end with `last`
    /// and `before`, forwards with `first` and `after` (at most 200 per page).
    async fn thread(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Page forwards: the oldest messages (after `after`), 1 to 200. Not together with `last` (VALIDATION)."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only messages after this cursor (paging forwards: the last edge of the previous page)."
        )]
        after: Option<String>,
        #[graphql(
            desc = "Page backwards: the newest messages (before `before`), 1 to 200. Without `first` and `last`: the newest 50."
        )]
        last: Option<i32>,
        #[graphql(
            desc = "Only messages before this cursor (paging backwards: the first edge of the previous page)."
        )]
        before: Option<String>,
    ) -> Result<NachrichtConnection> {
        let deps = ctx.data::<Deps>()?;
        let (limit, backwards) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(ApiError::from(DomainError::validation(
                    "first",
                    "give either first or last",
                ))
                .into());
            }
            (Some(n), None) => (n, false),
            (None, Some(n)) => (n, true),
            (None, None) => (50, true),
        };
        if !(1..=200).contains(&limit) {
            return Err(ApiError::from(DomainError::validation(
                if backwards { "last" } else { "first" },
                "must be between 1 and 200",
            ))
            .into());
        }
        let after = after
            .as_deref()
            .map(|c| decode_cursor(c, "after"))
            .transpose()?;
        let before = before
            .as_deref()
            .map(|c| decode_cursor(c, "before"))
            .transpose()?;
        let lo = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
        let hi = before.unwrap_or((far_future(), Uuid::max()));
        let order = if backwards { "DESC" } else { "ASC" };
        let rows = deps
            .db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT id, knoten_id, author, text, mentions, created_at FROM nachrichten \
                     WHERE knoten_id = $1 AND hidden_at IS NULL AND (created_at, id) > ($2, $3) AND (created_at, id) < ($4, $5) \
                     ORDER BY created_at {order}, id {order} LIMIT $6"
                ),
                [self.id.into(), lo.0.into(), lo.1.into(), hi.0.into(), hi.1.into(), i64::from(limit + 1).into()],
            ))
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() > limit as usize;
        let mut nodes: Vec<NachrichtNode> = rows
            .iter()
            .take(limit as usize)
            .map(row_to_nachricht)
            .collect::<Result<_, _>>()
            .map_err(ApiError::from)?;
        if backwards {
            nodes.reverse();
        }
        let (has_prev, has_next) = if backwards {
            (more, before.is_some())
        } else {
            (after.is_some(), more)
        };
        let mut conn = Connection::new(has_prev, has_next);
        for n in nodes {
            let cursor = encode_cursor(n.created_at, &n.id);
            conn.edges.push(Edge::new(cursor, n));
        }
        Ok(conn)
    }

    /// Roles with a live thread to this Knoten.
    async fn participants(&self, ctx: &Context<'_>) -> Result<Vec<RolleNode>> {
        participants(ctx, self.id).await
    }

    /// The shared design area.
    async fn design(&self) -> Design {
        Design {
            version: self.knoten.design_version,
            content: self.knoten.content.clone(),
        }
    }
}

fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(32_503_680_000, 0).unwrap_or_default()
}

fn encode_cursor(ts: DateTime<Utc>, id: &ID) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", ts.timestamp_micros(), id.as_str()))
}

fn decode_cursor(cursor: &str, field: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || {
        ApiError::from(DomainError::validation(
            field,
            "not a cursor returned by this connection",
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (ts, id) = raw.split_once('|').ok_or_else(bad)?;
    let ts = DateTime::from_timestamp_micros(ts.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((ts, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// What a search hit is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SearchKind {
    /// A Knoten that has not faded (matched by its title).
    Knoten,
    /// An Antrag (matched by its title).
    Antrag,
    /// A role that has not been deleted (matched by its name).
    Rolle,
}

/// A search hit with a place to fly to.
#[derive(SimpleObject, Clone, Debug)]
pub struct SearchHit {
    /// What the hit is: it says what `id` is the id of.
    pub kind: SearchKind,
    /// Id of the Knoten, Antrag or role.
    pub id: ID,
    /// The Knoten or Antrag title, or the role's name.
    pub title: String,
    /// Where to fly to (a role: its home cell's centre; an Antrag: its Weberei's centre).
    pub lat: f64,
    /// Longitude of the place to fly to, in degrees.
    pub lng: f64,
    /// Trigram similarity, 0 to 1 (higher is closer).
    pub score: f64,
}

/// Feature flags (DESIGN.md §9), read from the server's environment.
#[derive(SimpleObject, Clone, Debug)]
pub struct Flags {
    /// FF_SEARCH: the `search` query answers (otherwise FEATURE_DISABLED).
    pub search: bool,
    /// FF_TOUR: clients show the five-step introduction tour.
    pub tour: bool,
    /// FF_TIMELINE_DELTA: the timeline replays a day as a delta stream.
    pub timeline_delta: bool,
    /// FF_PUSH: web push notifications can be opted into.
    pub push: bool,
    /// FF_TRANSITIVE_DELEGATION: delegation chains are followed to the first voter.
    pub transitive_delegation: bool,
    /// FF_STRIPE: card donations through Stripe (SEPA transfer is always on).
    pub stripe: bool,
}

/// What a client needs to know about this server.
#[derive(SimpleObject, Clone, Debug)]
pub struct Config {
    /// Which optional features are switched on on this server.
    pub flags: Flags,
    /// How often viewport diffs arrive, in milliseconds.
    pub ws_tick_ms: i32,
    /// Largest viewport box in square degrees.
    pub max_bbox_area_deg2: f64,
    /// The Ort (town) this server serves.
    pub ort: String,
    /// A MapLibre style URL for the base map tiles, or null: use the offline default style
    /// (background and Weberei outlines only).
    pub map_style_url: Option<String>,
    /// H3 resolution of a Weberei cell (default 7): clients draw Weberei outlines with it.
    pub weavery_resolution: i32,
    /// Seconds a Knoten or Faden lives unless it is twisted into yarn (7 days by default):
    /// clients fade threads over this span.
    pub decay_seconds: i32,
}

#[derive(Default)]
pub struct SocialQuery;

#[Object]
impl SocialQuery {
    /// The room of a Knoten (also of a faded one: its history stays readable; null for a
    /// Knoten hidden by moderation).
    async fn room(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Id of the Knoten.")] knoten_id: ID,
    ) -> Result<Option<Room>> {
        let id = parse_id(&knoten_id, "knotenId")?;
        Ok(load_knoten(ctx, id)
            .await?
            .map(|knoten| Room { knoten, id }))
    }

    /// Fuzzy search over Knoten titles, Antrag titles and role names (misspellings welcome).
    /// FEATURE_DISABLED when FF_SEARCH is off.
    async fn search(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "2 to 100 characters.")] text: String,
        #[graphql(desc = "1 to 50 (default 10).")] first: Option<i32>,
    ) -> Result<Vec<SearchHit>> {
        let deps = ctx.data::<Deps>()?;
        if !deps.config.flags.search {
            return Err(ApiError::FeatureDisabled(
                "search is switched off on this server (FF_SEARCH)".into(),
            )
            .into());
        }
        let text = text.trim();
        let chars = text.chars().count();
        if !(2..=100).contains(&chars) {
            return Err(ApiError::from(DomainError::validation(
                "text",
                "must be 2 to 100 characters",
            ))
            .into());
        }
        let first = first.unwrap_or(10);
        if !(1..=50).contains(&first) {
            return Err(ApiError::from(DomainError::validation(
                "first",
                "must be between 1 and 50",
            ))
            .into());
        }
        Ok(search(&deps.db, text, first).await?)
    }

    /// Public configuration: feature flags and limits.
    async fn config(&self, ctx: &Context<'_>) -> Result<Config> {
        let deps = ctx.data::<Deps>()?;
        let f = &deps.config.flags;
        Ok(Config {
            flags: Flags {
                search: f.search,
                tour: f.tour,
                timeline_delta: f.timeline_delta,
                push: f.push,
                transitive_delegation: f.transitive_delegation,
                stripe: f.stripe,
            },
            ws_tick_ms: deps.config.ws_tick.as_millis().min(i32::MAX as u128) as i32,
            max_bbox_area_deg2: deps.config.max_bbox_area_deg2,
            ort: deps.bus.config().ort.to_string(),
            map_style_url: deps.config.map_style_url.clone(),
            weavery_resolution: i32::from(u8::from(domain::geo::WEAVERY_RES)),
            decay_seconds: deps
                .config
                .knoten_ttl
                .num_seconds()
                .clamp(0, i64::from(i32::MAX)) as i32,
        })
    }
}

async fn search(
    db: &DatabaseConnection,
    text: &str,
    first: i32,
) -> Result<Vec<SearchHit>, ApiError> {
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
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get("", "kind")?;
        let id: Uuid = row.try_get("", "id")?;
        let (mut lat, mut lng): (Option<f64>, Option<f64>) =
            (row.try_get("", "lat")?, row.try_get("", "lng")?);
        if let Some(h3) = row.try_get::<Option<i64>>("", "h3")?
            && let Ok(cell) = h3o::CellIndex::try_from(h3 as u64)
        {
            let c = h3o::LatLng::from(cell);
            (lat, lng) = (Some(c.lat()), Some(c.lng()));
        }
        out.push(SearchHit {
            kind: match kind.as_str() {
                "ANTRAG" => SearchKind::Antrag,
                "ROLLE" => SearchKind::Rolle,
                _ => SearchKind::Knoten,
            },
            id: ID(id.to_string()),
            title: row.try_get("", "title")?,
            lat: lat.unwrap_or_default(),
            lng: lng.unwrap_or_default(),
            score: f64::from(row.try_get::<f32>("", "score")?),
        });
    }
    Ok(out)
}

mod mutations;

pub use mutations::SocialMutation;
