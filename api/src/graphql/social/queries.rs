//! The social queries: a Knoten's room (thread, participants, design area), search, and the
//! server's public configuration.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::DomainError;
use uuid::Uuid;

use super::types::{Design, NachrichtNode, participants};
use crate::error::ApiError;
use crate::graphql::Deps;
use crate::graphql::knoten::{KnotenNode, load_knoten};
use crate::graphql::primitives::{decode_keyset, encode_keyset, far_future, id, parse_id};
use crate::graphql::rolle::RolleNode;
use crate::read;
use crate::read::social::HitKind;

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
            .map(|c| decode_keyset(c, "after", "connection"))
            .transpose()?;
        let before = before
            .as_deref()
            .map(|c| decode_keyset(c, "before", "connection"))
            .transpose()?;
        let lo = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
        let hi = before.unwrap_or((far_future(), Uuid::max()));
        let rows = read::social::thread(&deps.db, self.id, lo, hi, backwards, limit as u64 + 1)
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() > limit as usize;
        let mut nodes: Vec<NachrichtNode> = rows
            .into_iter()
            .take(limit as usize)
            .map(Into::into)
            .collect();
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
            let cursor = encode_keyset(n.created_at, &n.id);
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
        let rows = read::social::search(&deps.db, text, first)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(search_hit).collect())
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

fn search_hit(r: read::social::SearchRow) -> SearchHit {
    let (mut lat, mut lng) = (r.lat, r.lng);
    if let Some(h3) = r.h3
        && let Ok(cell) = h3o::CellIndex::try_from(h3 as u64)
    {
        let c = h3o::LatLng::from(cell);
        (lat, lng) = (Some(c.lat()), Some(c.lng()));
    }
    SearchHit {
        kind: match r.kind {
            HitKind::Knoten => SearchKind::Knoten,
            HitKind::Antrag => SearchKind::Antrag,
            HitKind::Rolle => SearchKind::Rolle,
        },
        id: id(r.id),
        title: r.title,
        lat: lat.unwrap_or_default(),
        lng: lng.unwrap_or_default(),
        score: f64::from(r.score),
    }
}
