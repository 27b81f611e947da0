//! Knoten: the contract type, the bbox query and `createKnoten`. The social side of a Knoten
//! (its threads, participants and creator) is resolved in `social/`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::events::KnotenGeknuepft;
use uuid::Uuid;

use super::Deps;
use super::primitives::{
    BboxInput, EventReceipt, decode_keyset, encode_keyset, id, mutation, page_size,
};
use crate::error::ApiError;
use crate::live::KnotenCreated;
use crate::read;
use crate::read::knoten::KnotenRow;
use crate::services::knoten::{self as service, NewKnoten};

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

impl KnotenNode {
    /// The Knoten as its `KnotenGeknuepft` event describes it.
    pub(crate) fn tied(
        id: Uuid,
        p: KnotenGeknuepft,
        at: DateTime<Utc>,
        creator: Option<Uuid>,
    ) -> Self {
        Self {
            id: ID(id.to_string()),
            typ: p.typ.into(),
            title: p.title,
            content: Json(p.content),
            lat: p.lat,
            lng: p.lng,
            h3: p.h3,
            created_at: at,
            expires_at: p.expires_at,
            is_yarn: false,
            decayed_at: None,
            design_version: 0,
            creator_id: creator.map(|c| ID(c.to_string())),
        }
    }
}

impl From<&KnotenCreated> for KnotenNode {
    fn from(k: &KnotenCreated) -> Self {
        Self::tied(k.id, k.knoten.clone(), k.at, k.creator)
    }
}

impl From<KnotenRow> for KnotenNode {
    fn from(r: KnotenRow) -> Self {
        Self {
            id: id(r.id),
            typ: r.typ.into(),
            title: r.title,
            content: Json(r.content),
            lat: r.lat,
            lng: r.lng,
            h3: read::h3_hex(r.h3),
            created_at: r.created_at,
            expires_at: r.expires_at,
            is_yarn: r.is_yarn,
            decayed_at: r.decayed_at,
            design_version: r.design_version,
            creator_id: r.created_by.map(id),
        }
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
        let first = page_size(first, 100, deps.config.max_page_size)?;
        let after = after
            .as_deref()
            .map(|c| decode_keyset(c, "after", "query"))
            .transpose()?;
        let start = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
        let rows = read::knoten::in_box(&deps.db, &bbox, start, first as u64 + 1)
            .await
            .map_err(ApiError::from)?;
        let has_next = rows.len() > first as usize;
        let mut conn = Connection::new(after.is_some(), has_next);
        for row in rows.into_iter().take(first as usize) {
            let node = KnotenNode::from(row);
            let cursor = encode_keyset(node.created_at, &node.id);
            conn.edges.push(Edge::new(cursor, node));
        }
        Ok(conn)
    }
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
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let knoten = NewKnoten {
            title: input.title,
            typ: input.typ.into(),
            content: input.content.map(|c| c.0),
            lat: input.lat,
            lng: input.lng,
        };
        let tied = service::create_knoten(&deps.bus, &deps.config, origin, knoten).await?;
        let env = &tied.stored.envelope;
        let creator = match env.meta.actor {
            domain::Actor::Rolle(id) => Some(id),
            domain::Actor::System => None,
        };
        Ok(CreateKnotenPayload {
            knoten: KnotenNode::tied(env.aggregate_id, tied.payload.clone(), env.ts, creator),
            event: (&tied.stored).into(),
            replayed: tied.replayed,
        })
    }
}

/// One Knoten by id (also a faded one, never a hidden one), from the projection.
pub(crate) async fn load_knoten(ctx: &Context<'_>, id: Uuid) -> Result<Option<KnotenNode>> {
    let deps = ctx.data::<Deps>()?;
    Ok(read::knoten::by_id(&deps.db, id)
        .await
        .map_err(ApiError::from)?
        .map(Into::into))
}
