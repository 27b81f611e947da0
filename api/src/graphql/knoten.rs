//! Knoten: the contract types, the bbox query and `createKnoten`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bus::{Outcome, Stored};
use chrono::{DateTime, Utc};
use domain::events::KnotenGeknuepft;
use domain::geo::Bbox;
use domain::knoten::{CreateKnoten, Knoten, KnotenCommand};
use domain::{Actor, DomainError, Envelope};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use super::common::{ID_NAMESPACE, execute, meta_for, require_caller, validate_idempotency_key};
use super::{ClientInfo, Deps, U64};
use crate::error::ApiError;

/// What kind of node a Knoten is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "KnotenTyp")]
pub enum KnotenTypGql {
    /// An idea someone wants to see happen.
    Ideen,
    /// Something that happens at a time and place.
    Event,
    /// Something that can be shared or used.
    Ressource,
}

impl From<domain::events::KnotenTyp> for KnotenTypGql {
    fn from(t: domain::events::KnotenTyp) -> Self {
        use domain::events::KnotenTyp as T;
        match t {
            T::Ideen => Self::Ideen,
            T::Event => Self::Event,
            T::Ressource => Self::Ressource,
        }
    }
}

impl From<KnotenTypGql> for domain::events::KnotenTyp {
    fn from(t: KnotenTypGql) -> Self {
        match t {
            KnotenTypGql::Ideen => Self::Ideen,
            KnotenTypGql::Event => Self::Event,
            KnotenTypGql::Ressource => Self::Ressource,
        }
    }
}

/// A node on the map: an idea, an event or a resource. It fades 7 days after it was tied
/// unless the community takes it up (then it becomes yarn and stays).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Knoten", complex)]
pub struct KnotenNode {
    /// Stable id (UUID).
    pub id: ID,
    /// What kind of node this is.
    pub typ: KnotenTypGql,
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Structured content of the design area (a JSON object, at most 16 KiB).
    pub content: Json<serde_json::Value>,
    /// Latitude in degrees (WGS84).
    pub lat: f64,
    /// Longitude in degrees (WGS84).
    pub lng: f64,
    /// H3 cell of the point at the fine resolution (12), in H3's hex notation.
    pub h3: String,
    /// When the Knoten was tied (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// When it fades unless it has become yarn (RFC 3339, UTC).
    pub expires_at: DateTime<Utc>,
    /// Twisted into yarn by the community: it never fades.
    pub is_yarn: bool,
    /// When it faded (it is then off the live map; its room stays readable).
    pub decayed_at: Option<DateTime<Utc>>,
    /// Version of the design area (0 until the first edit).
    pub design_version: i32,
    /// Id of the role that tied it (null for the demo town and system Knoten).
    pub creator_id: Option<ID>,
}

#[async_graphql::ComplexObject]
impl KnotenNode {
    /// Live threads to this Knoten (batched across Knoten).
    async fn faeden(&self, ctx: &Context<'_>) -> Result<Vec<super::social::FadenNode>> {
        super::social::live_faeden(ctx, super::rolle::parse_id(&self.id, "id")?).await
    }

    /// Roles with a live thread to it: the participants of its room.
    async fn participants(&self, ctx: &Context<'_>) -> Result<Vec<super::rolle::RolleNode>> {
        super::social::participants(ctx, super::rolle::parse_id(&self.id, "id")?).await
    }

    /// The role that tied it.
    async fn creator(&self, ctx: &Context<'_>) -> Result<Option<super::rolle::RolleNode>> {
        match &self.creator_id {
            Some(id) => {
                super::rolle::load_rolle(ctx, super::rolle::parse_id(id, "creatorId")?).await
            }
            None => Ok(None),
        }
    }
}

impl KnotenNode {
    /// The Knoten as a `KnotenGeknuepft` event describes it.
    pub fn from_event(env: &Envelope) -> Result<Self, DomainError> {
        let p: KnotenGeknuepft = env.decode()?;
        Ok(Self {
            id: ID(env.aggregate_id.to_string()),
            typ: p.typ.into(),
            title: p.title,
            content: Json(p.content),
            lat: p.lat,
            lng: p.lng,
            h3: p.h3,
            created_at: env.ts,
            expires_at: p.expires_at,
            is_yarn: false,
            decayed_at: None,
            design_version: 0,
            creator_id: match env.meta.actor {
                Actor::Rolle(id) => Some(ID(id.to_string())),
                Actor::System => None,
            },
        })
    }
}

/// The event a mutation produced: where it sits in the log.
#[derive(SimpleObject, Clone, Debug)]
pub struct EventReceipt {
    /// Event id (ULID).
    pub id: String,
    /// Event type, e.g. `KnotenGeknuepft`.
    #[graphql(name = "type")]
    pub event_type: String,
    /// SHA-256 (hex) of the RFC 8785 canonical JSON of the event: the link the next event of
    /// this aggregate will carry as `prev_hash`.
    pub hash: String,
    /// Hash of the previous event of the same aggregate; null for the first.
    pub prev_hash: Option<String>,
    /// JetStream stream sequence. Null while the event waits in the fallback because
    /// JetStream was unavailable; it is published there later, in order.
    pub stream_sequence: Option<U64>,
}

impl From<&Stored> for EventReceipt {
    fn from(s: &Stored) -> Self {
        Self {
            id: s.envelope.id.to_string(),
            event_type: s.envelope.event_type.clone(),
            hash: s.hash.clone(),
            prev_hash: s.envelope.prev_hash.clone(),
            stream_sequence: s.seq.map(U64),
        }
    }
}

/// A bounding box in degrees (WGS84). West must not be east of east (no antimeridian
/// crossing); the area is limited by the server (VALIDATION when too large).
#[derive(InputObject, Clone, Copy, Debug)]
pub struct BboxInput {
    /// Western edge, longitude in [-180, 180].
    pub west: f64,
    /// Southern edge, latitude in [-90, 90].
    pub south: f64,
    /// Eastern edge, longitude in [-180, 180].
    pub east: f64,
    /// Northern edge, latitude in [-90, 90].
    pub north: f64,
}

impl BboxInput {
    pub fn validate(self, max_area: f64) -> Result<Bbox, ApiError> {
        Ok(Bbox::new(
            self.west, self.south, self.east, self.north, max_area,
        )?)
    }
}

/// Tie a new Knoten.
#[derive(InputObject, Clone, Debug)]
pub struct CreateKnotenInput {
    /// Client-chosen key (1-128 visible ASCII characters) that makes this mutation safe to
    /// retry: the same key always yields the same Knoten and never a second event.
    pub idempotency_key: String,
    /// Title, 1 to 200 characters after trimming.
    pub title: String,
    /// What kind of node.
    pub typ: KnotenTypGql,
    /// Optional design-area content (a JSON object, at most 16 KiB).
    pub content: Option<Json<serde_json::Value>>,
    /// Latitude in degrees, -90 to 90.
    pub lat: f64,
    /// Longitude in degrees, -180 to 180.
    pub lng: f64,
}

/// The result of `createKnoten`.
#[derive(SimpleObject, Clone, Debug)]
pub struct CreateKnotenPayload {
    /// The Knoten as tied.
    pub knoten: KnotenNode,
    /// The `KnotenGeknuepft` event.
    pub event: EventReceipt,
    /// True when this idempotency key had already been used: nothing new happened and the
    /// original result is returned.
    pub replayed: bool,
}

/// A page of Knoten from the `knoten` query, oldest first.
pub(crate) type KnotenConnection = Connection<String, KnotenNode, EmptyFields, EmptyFields>;

#[derive(Default)]
pub struct KnotenQuery;

#[Object]
impl KnotenQuery {
    /// Knoten whose point lies in the box and that have not faded (nor been hidden by
    /// moderation), oldest first.
    async fn knoten(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The box to look in, in degrees; its area (width times height) must not exceed `Config.maxBboxAreaDeg2` square degrees (VALIDATION)."
        )]
        bbox: BboxInput,
        #[graphql(desc = "Page size, 1 to 500 (default 100).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge of the previous page.")] after: Option<String>,
    ) -> Result<KnotenConnection> {
        let deps = ctx.data::<Deps>()?;
        let bbox = bbox.validate(deps.config.max_bbox_area_deg2)?;
        let max = deps.config.max_page_size as i32;
        let first = first.unwrap_or(100);
        if !(1..=max).contains(&first) {
            return Err(ApiError::from(DomainError::validation(
                "first",
                format!("must be between 1 and {max}"),
            ))
            .into());
        }
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let (after_ts, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
        let rows = deps
            .db
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
                    after_ts.into(),
                    after_id.into(),
                    i64::from(first + 1).into(),
                ],
            ))
            .await
            .map_err(ApiError::from)?;
        let has_next = rows.len() > first as usize;
        let mut conn = Connection::new(after.is_some(), has_next);
        for row in rows.iter().take(first as usize) {
            let node = row_to_knoten(row).map_err(ApiError::from)?;
            let cursor = encode_cursor(node.created_at, &node.id);
            conn.edges.push(Edge::new(cursor, node));
        }
        Ok(conn)
    }
}

const KNOTEN_COLUMNS: &str = "id, typ::text AS typ, title, content, ST_Y(point::geometry) AS lat, \
    ST_X(point::geometry) AS lng, h3, created_at, expires_at, is_yarn, decayed_at, design_version, created_by";

fn row_to_knoten(row: &sea_orm::QueryResult) -> Result<KnotenNode, sea_orm::DbErr> {
    let typ: String = row.try_get("", "typ")?;
    let typ = match typ.as_str() {
        "event" => KnotenTypGql::Event,
        "ressource" => KnotenTypGql::Ressource,
        _ => KnotenTypGql::Ideen,
    };
    let h3: i64 = row.try_get("", "h3")?;
    let id: Uuid = row.try_get("", "id")?;
    Ok(KnotenNode {
        id: ID(id.to_string()),
        typ,
        title: row.try_get("", "title")?,
        content: Json(row.try_get("", "content")?),
        lat: row.try_get("", "lat")?,
        lng: row.try_get("", "lng")?,
        h3: h3o::CellIndex::try_from(h3 as u64)
            .map(|c| c.to_string())
            .unwrap_or_default(),
        created_at: row.try_get("", "created_at")?,
        expires_at: row.try_get("", "expires_at")?,
        is_yarn: row.try_get("", "is_yarn")?,
        decayed_at: row.try_get("", "decayed_at")?,
        design_version: row.try_get("", "design_version")?,
        creator_id: row
            .try_get::<Option<Uuid>>("", "created_by")?
            .map(|c| ID(c.to_string())),
    })
}

fn encode_cursor(ts: DateTime<Utc>, id: &ID) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", ts.timestamp_micros(), id.as_str()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || {
        ApiError::from(DomainError::validation(
            "after",
            "not a cursor returned by this query",
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (ts, id) = raw.split_once('|').ok_or_else(bad)?;
    let ts = DateTime::from_timestamp_micros(ts.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((ts, Uuid::parse_str(id).map_err(|_| bad())?))
}

#[derive(Default)]
pub struct KnotenMutation;

#[Object]
impl KnotenMutation {
    /// Tie a new Knoten at a point. Retrying with the same idempotency key returns the same
    /// Knoten (`replayed: true`) and never creates a second one.
    async fn create_knoten(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new Knoten and the idempotency key of this call.")]
        input: CreateKnotenInput,
    ) -> Result<CreateKnotenPayload> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let client = ctx.data_opt::<ClientInfo>();
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let id = Uuid::new_v5(
            &ID_NAMESPACE,
            format!("knoten:{}:{key}", caller.rolle_id).as_bytes(),
        );
        let cmd = KnotenCommand::Create(CreateKnoten {
            id,
            title: input.title.clone(),
            typ: input.typ.into(),
            content: input.content.as_ref().map(|c| c.0.clone()),
            lat: input.lat,
            lng: input.lng,
            now: Utc::now(),
            ttl: deps.config.knoten_ttl,
            fine_res: deps.config.fine_res,
        });
        let meta = meta_for(&caller, client, "createKnoten", key);
        let done = execute::<Knoten>(deps, id, &cmd, meta, bus::Expect::NewChain).await?;
        let stored = done
            .events
            .first()
            .ok_or_else(|| ApiError::unavailable("createKnoten produced no event"))?;
        Ok(CreateKnotenPayload {
            knoten: KnotenNode::from_event(&stored.envelope).map_err(ApiError::from)?,
            event: stored.into(),
            replayed: done.outcome == Outcome::AlreadyDone,
        })
    }
}

/// One Knoten by id (also a faded one, never a hidden one), from the projection.
pub(crate) async fn load_knoten(ctx: &Context<'_>, id: Uuid) -> Result<Option<KnotenNode>> {
    let deps = ctx.data::<Deps>()?;
    let row = deps
        .db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {KNOTEN_COLUMNS} FROM knoten WHERE id = $1 AND hidden_at IS NULL"),
            [id.into()],
        ))
        .await
        .map_err(ApiError::from)?;
    Ok(row
        .as_ref()
        .map(row_to_knoten)
        .transpose()
        .map_err(ApiError::from)?)
}
