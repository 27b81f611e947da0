//! The social mutations: design area, threads, room messages.

use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::Utc;
use domain::DomainError;
use domain::knoten::{Gestalten, Knoten, KnotenCommand};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use super::super::common::{execute, meta_for, require_caller, validate_idempotency_key};
use super::super::knoten::EventReceipt;
use super::super::rolle::parse_id;
use super::super::{ClientInfo, Deps};
use super::{Design, FadenNode, FadenTypGql, NachrichtNode};
use crate::error::ApiError;

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
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let client = ctx.data_opt::<ClientInfo>();
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let id = parse_id(&input.knoten_id, "knotenId")?;
        if input.expected_version < 0 {
            return Err(ApiError::Domain(DomainError::validation(
                "expectedVersion",
                "must not be negative",
            ))
            .into());
        }
        let may_edit = is_creator_or_participant(&deps.db, id, caller.rolle_id).await?;
        let cmd = KnotenCommand::Gestalten(Gestalten {
            expected_version: input.expected_version as u32,
            content: input.content.0.clone(),
            editor: caller.rolle_id,
            editor_may_edit: may_edit,
        });
        let meta = meta_for(&caller, client, "updateKnotenDesign", key);
        let done = execute::<Knoten>(deps, id, &cmd, meta, bus::Expect::ExistingChain).await?;
        let stored = done
            .events
            .first()
            .ok_or_else(|| ApiError::unavailable("no event"))?;
        let p: domain::events::KnotenGestaltet = stored.envelope.decode()?;
        Ok(UpdateKnotenDesignPayload {
            design: Design {
                version: p.version as i32,
                content: Json(p.content),
            },
            event: stored.into(),
            replayed: done.outcome == bus::Outcome::AlreadyDone,
        })
    }

    /// Spin a thread from the caller to a Knoten, or renew it (same role, Knoten and typ).
    async fn spin_faden(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Knoten and the typ of the thread.")] input: SpinFadenInput,
    ) -> Result<SpinFadenPayload> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let client = ctx.data_opt::<ClientInfo>();
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let knoten = parse_id(&input.knoten_id, "knotenId")?;
        let typ: domain::events::FadenTyp = input.typ.into();
        let meta = meta_for(&caller, client, "spinFaden", key);
        let now = Utc::now();
        let crate::rooms::Spun {
            id,
            history_before,
            done,
        } = crate::rooms::spin_faden(
            &deps.bus,
            caller.rolle_id,
            knoten,
            typ,
            deps.config.knoten_ttl,
            meta,
        )
        .await?;
        let renewed = history_before
            .iter()
            .any(|s| s.envelope.event_type == "FadenGesponnen")
            && done.outcome == bus::Outcome::Appended
            && !done.events.is_empty();
        let mut faden = FadenNode {
            id: ID(id.to_string()),
            typ: input.typ,
            from_rolle_id: ID(caller.rolle_id.to_string()),
            to_knoten_id: ID(knoten.to_string()),
            created_at: history_before.first().map(|s| s.envelope.ts).unwrap_or(now),
            renewed_at: None,
            expires_at: now,
            is_yarn: false,
        };
        let all: Vec<&domain::Envelope> = history_before
            .iter()
            .map(|s| &s.envelope)
            .chain(done.events.iter().map(|s| &s.envelope))
            .collect();
        for e in &all {
            match e.event_type.as_str() {
                "FadenGesponnen" => {
                    if let Ok(p) = e.decode::<domain::events::FadenGesponnen>() {
                        if e.ts > faden.created_at {
                            faden.renewed_at = Some(e.ts);
                        }
                        faden.expires_at = p.expires_at;
                    }
                }
                "FadenVerzwirnt" => faden.is_yarn = true,
                _ => {}
            }
        }
        if let Some(first) = all.first() {
            faden.created_at = first.ts;
        }
        Ok(SpinFadenPayload {
            faden,
            event: done.events.last().map(Into::into),
            renewed,
            replayed: done.outcome == bus::Outcome::AlreadyDone,
        })
    }

    /// Write a message in a Knoten's room.
    async fn write_nachricht(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Knoten and the text.")] input: WriteNachrichtInput,
    ) -> Result<WriteNachrichtPayload> {
        let caller = require_caller(ctx)?;
        let deps = ctx.data::<Deps>()?;
        let client = ctx.data_opt::<ClientInfo>();
        let key = validate_idempotency_key(&input.idempotency_key)?;
        let knoten = parse_id(&input.knoten_id, "knotenId")?;
        let meta = meta_for(&caller, client, "writeNachricht", key);
        let written = crate::rooms::write_nachricht(
            &deps.db,
            &deps.bus,
            caller.rolle_id,
            knoten,
            &input.text,
            meta,
        )
        .await?;
        let p = written.payload;
        let stored = &written.stored;
        Ok(WriteNachrichtPayload {
            nachricht: NachrichtNode {
                id: ID(p.nachricht_id.to_string()),
                knoten_id: ID(knoten.to_string()),
                author_id: ID(caller.rolle_id.to_string()),
                text: written.text,
                mention_ids: p.mentions.iter().map(|m| ID(m.to_string())).collect(),
                created_at: stored.envelope.ts,
            },
            event: stored.into(),
            replayed: written.replayed,
        })
    }
}

async fn is_creator_or_participant(
    db: &DatabaseConnection,
    knoten: Uuid,
    rolle: Uuid,
) -> Result<bool, ApiError> {
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT 1 FROM knoten WHERE id = $1 AND created_by = $2) \
                 OR EXISTS (SELECT 1 FROM faeden WHERE to_knoten = $1 AND from_rolle = $2 AND decayed_at IS NULL \
                            AND (is_yarn OR expires_at > now())) AS ok",
            [knoten.into(), rolle.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => r.try_get("", "ok")?,
        None => false,
    })
}
