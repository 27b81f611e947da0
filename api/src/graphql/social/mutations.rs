//! The social mutations: design area, threads, room messages.

use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::Utc;

use super::types::{Design, FadenNode, FadenTypGql, NachrichtNode};
use crate::graphql::primitives::{EventReceipt, id, mutation, parse_id};
use crate::services::rooms;

/// Edit the design area of a Knoten.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateKnotenDesignInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The Knoten whose design area to save (it must not have faded: CONFLICT otherwise).
    pub knoten_id: ID,
    /// The version your edit is based on (`Design.version`); if someone saved in between, the
    /// edit is refused with CONFLICT instead of overwriting theirs.
    pub expected_version: i32,
    /// The whole new content (a JSON object, at most 16 KiB).
    pub content: Json<serde_json::Value>,
}

/// The result of `updateKnotenDesign`.
#[derive(SimpleObject, Clone, Debug)]
pub struct UpdateKnotenDesignPayload {
    /// The design area as saved, with its new version.
    pub design: Design,
    /// The `KnotenGestaltet` event.
    pub event: EventReceipt,
    /// True when this key had been used before: the original result, nothing new.
    pub replayed: bool,
}

/// Spin a thread from yourself to a Knoten (or renew it).
#[derive(InputObject, Clone, Debug)]
pub struct SpinFadenInput {
    /// Client-chosen key (1-128 visible ASCII characters) making the mutation safe to retry.
    pub idempotency_key: String,
    /// The Knoten to spin the thread to: NOT_FOUND if there is none, CONFLICT if it has faded.
    pub knoten_id: ID,
    /// What the thread says about your relation to the Knoten.
    pub typ: FadenTypGql,
}

/// The result of `spinFaden`.
#[derive(SimpleObject, Clone, Debug)]
pub struct SpinFadenPayload {
    /// The thread as it is now.
    pub faden: FadenNode,
    /// The `FadenGesponnen` event; null when nothing had to change (the thread is yarn).
    pub event: Option<EventReceipt>,
    /// True when an existing thread was renewed (its expiry moved).
    pub renewed: bool,
    /// True when this key had been used before: nothing new happened.
    pub replayed: bool,
}

/// Write a message in a Knoten's room.
#[derive(InputObject, Clone, Debug)]
pub struct WriteNachrichtInput {
    /// Client-chosen key (1-128 visible ASCII characters): the same key always yields the same
    /// message and never a second one.
    pub idempotency_key: String,
    /// The Knoten whose room to write in (it must not have faded: CONFLICT otherwise).
    pub knoten_id: ID,
    /// 1 to 4000 characters. `@name` mentions a role: the name without spaces, any case
    /// (resolved among the room's participants first, then all roles).
    pub text: String,
}

/// The result of `writeNachricht`.
#[derive(SimpleObject, Clone, Debug)]
pub struct WriteNachrichtPayload {
    /// The message as written.
    pub nachricht: NachrichtNode,
    /// The `NachrichtGeschrieben` event.
    pub event: EventReceipt,
    /// True when this key had been used before: the original result, nothing new.
    pub replayed: bool,
}

#[derive(Default)]
pub struct SocialMutation;

#[Object]
impl SocialMutation {
    /// Save the design area of a Knoten (creator and participants only).
    async fn update_knoten_design(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Knoten, the version the edit is based on and the new content.")]
        input: UpdateKnotenDesignInput,
    ) -> Result<UpdateKnotenDesignPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let knoten = parse_id(&input.knoten_id, "knotenId")?;
        let meta = origin.meta("updateKnotenDesign");
        let done = rooms::update_design(
            &deps.db,
            &deps.bus,
            origin.caller.rolle_id,
            knoten,
            input.expected_version,
            input.content.0,
            meta,
        )
        .await?;
        Ok(UpdateKnotenDesignPayload {
            design: Design {
                version: done.payload.version as i32,
                content: Json(done.payload.content),
            },
            event: (&done.stored).into(),
            replayed: done.replayed,
        })
    }

    /// Spin a thread from the caller to a Knoten, or renew it (same role, Knoten and typ).
    async fn spin_faden(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Knoten and the typ of the thread.")] input: SpinFadenInput,
    ) -> Result<SpinFadenPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let knoten = parse_id(&input.knoten_id, "knotenId")?;
        let typ: domain::events::FadenTyp = input.typ.into();
        let meta = origin.meta("spinFaden");
        let now = Utc::now();
        let rolle = origin.caller.rolle_id;
        let spun =
            rooms::spin_faden(&deps.bus, rolle, knoten, typ, deps.config.knoten_ttl, meta).await?;
        let state = spun.state(now);
        Ok(SpinFadenPayload {
            faden: FadenNode {
                id: id(spun.id),
                typ: input.typ,
                from_rolle_id: id(rolle),
                to_knoten_id: id(knoten),
                created_at: state.created_at,
                renewed_at: state.renewed_at,
                expires_at: state.expires_at,
                is_yarn: state.is_yarn,
            },
            event: spun.done.events.last().map(Into::into),
            renewed: state.renewed,
            replayed: spun.done.outcome == bus::Outcome::AlreadyDone,
        })
    }

    /// Write a message in a Knoten's room.
    async fn write_nachricht(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Knoten and the text.")] input: WriteNachrichtInput,
    ) -> Result<WriteNachrichtPayload> {
        let (deps, origin) = mutation(ctx, &input.idempotency_key)?;
        let knoten = parse_id(&input.knoten_id, "knotenId")?;
        let meta = origin.meta("writeNachricht");
        let author = origin.caller.rolle_id;
        let written =
            rooms::write_nachricht(&deps.db, &deps.bus, author, knoten, &input.text, meta).await?;
        let p = written.payload;
        let stored = &written.stored;
        Ok(WriteNachrichtPayload {
            nachricht: NachrichtNode {
                id: id(p.nachricht_id),
                knoten_id: id(knoten),
                author_id: id(author),
                text: written.text,
                mention_ids: p.mentions.iter().copied().map(id).collect(),
                created_at: stored.envelope.ts,
            },
            event: stored.into(),
            replayed: written.replayed,
        })
    }
}
