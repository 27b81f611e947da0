//! Threads, rooms and design areas: spinning a thread to a Knoten, writing a message sealed
//! with its author's data key, and saving a Knoten's design area. The `spinFaden`,
//! `writeNachricht` and `updateKnotenDesign` mutations and the demo town go through here; the
//! mutations add the idempotency key, the caller and the payload around it.

use std::collections::HashMap;

use bus::{Bus, Executed, Stored};
use chrono::Utc;
use domain::aggregate::Aggregate as _;
use domain::events::{FadenTyp, NachrichtGeschrieben};
use domain::faden::{Faden, FadenCommand, Spinnen, faden_id};
use domain::knoten::{Gestalten, Knoten, KnotenCommand, Schreiben};
use domain::{AggregateType, DomainError, Meta};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::accounts::{ID_NAMESPACE, data_key, execute_on, nonce};
use super::first_event;
use crate::error::ApiError;
use crate::read;

/// What spinning a thread did.
#[derive(Debug, Clone)]
pub struct Spun {
    /// The thread's id ([`faden_id`] of role, Knoten and typ).
    pub id: Uuid,
    /// The thread's chain before this command (empty for a new thread).
    pub history_before: Vec<Stored>,
    /// The command's result (`AlreadyDone` when the msg id had been used on this thread).
    pub done: Executed,
}

/// A thread as its chain says after spinning: when it was first spun, last renewed, when it
/// fades, whether it is yarn, and whether this command renewed it.
#[derive(Debug, Clone, Copy)]
pub struct SpunState {
    pub created_at: chrono::DateTime<Utc>,
    pub renewed_at: Option<chrono::DateTime<Utc>>,
    pub expires_at: chrono::DateTime<Utc>,
    pub is_yarn: bool,
    pub renewed: bool,
}

impl Spun {
    /// The thread's state from its chain before and the events of this command (`now` stands
    /// in for times the chain does not hold).
    pub fn state(&self, now: chrono::DateTime<Utc>) -> SpunState {
        let renewed = self
            .history_before
            .iter()
            .any(|s| s.envelope.event_type == "FadenGesponnen")
            && self.done.outcome == bus::Outcome::Appended
            && !self.done.events.is_empty();
        let mut state = SpunState {
            created_at: self
                .history_before
                .first()
                .map(|s| s.envelope.ts)
                .unwrap_or(now),
            renewed_at: None,
            expires_at: now,
            is_yarn: false,
            renewed,
        };
        let all: Vec<&domain::Envelope> = self
            .history_before
            .iter()
            .map(|s| &s.envelope)
            .chain(self.done.events.iter().map(|s| &s.envelope))
            .collect();
        for e in &all {
            match e.event_type.as_str() {
                "FadenGesponnen" => {
                    if let Ok(p) = e.decode::<domain::events::FadenGesponnen>() {
                        if e.ts > state.created_at {
                            state.renewed_at = Some(e.ts);
                        }
                        state.expires_at = p.expires_at;
                    }
                }
                "FadenVerzwirnt" => state.is_yarn = true,
                _ => {}
            }
        }
        if let Some(first) = all.first() {
            state.created_at = first.ts;
        }
        state
    }
}

/// Spin the thread from `rolle` to `knoten` of kind `typ`, or renew it; it fades `ttl` after
/// now unless it becomes yarn. NOT_FOUND for an unknown Knoten, CONFLICT for a faded one.
pub async fn spin_faden(
    bus: &Bus,
    rolle: Uuid,
    knoten: Uuid,
    typ: FadenTyp,
    ttl: chrono::Duration,
    meta: Meta,
) -> Result<Spun, ApiError> {
    let Some(alive) = knoten_alive(bus, knoten).await? else {
        return Err(DomainError::NotFound(format!("there is no Knoten {knoten}")).into());
    };
    let id = faden_id(rolle, knoten, typ);
    let cmd = FadenCommand::Spinnen(Spinnen {
        rolle,
        knoten,
        typ,
        now: Utc::now(),
        ttl,
        knoten_alive: alive,
    });
    let history_before = bus.history(AggregateType::Faden, id).await?;
    let done = execute_on::<Faden>(bus, id, &cmd, meta, bus::Expect::ExistingChain).await?;
    Ok(Spun {
        id,
        history_before,
        done,
    })
}

/// Some(true) if the Knoten exists and is alive (not faded, not past its expiry unless yarn),
/// Some(false) if not, None if there is no such Knoten. Read from its own chain, not the
/// projection, so a thread can be spun right after the Knoten was tied.
async fn knoten_alive(bus: &Bus, id: Uuid) -> Result<Option<bool>, ApiError> {
    let chain = bus.history(AggregateType::Knoten, id).await?;
    let state = Knoten::fold(chain.iter().map(|s| &s.envelope))?;
    Ok(state
        .created
        .map(|c| !c.decayed && (c.yarn || c.expires_at > Utc::now())))
}

/// What writing a message did.
#[derive(Debug, Clone)]
pub struct Written {
    /// The `NachrichtGeschrieben` event (the earlier one when the msg id had been used).
    pub stored: Stored,
    /// Its payload.
    pub payload: NachrichtGeschrieben,
    /// The text, opened with the author's key.
    pub text: Option<String>,
    /// True when the msg id had been used before: nothing new was written.
    pub replayed: bool,
}

/// Write `text` by `author` in the room of `knoten`, sealed with the author's data key. The
/// message id is derived from `meta.msg_id`, so the same msg id always yields the same message.
/// `@name` mentions are resolved among the room's participants first, then all roles.
/// UNAUTHENTICATED when the author's role was deleted.
pub async fn write_nachricht(
    db: &DatabaseConnection,
    bus: &Bus,
    author: Uuid,
    knoten: Uuid,
    text: &str,
    meta: Meta,
) -> Result<Written, ApiError> {
    let Some(data_key) = data_key(db, author).await? else {
        return Err(ApiError::Unauthenticated("this role was deleted".into()));
    };
    let mentions = resolve_mentions(db, knoten, &domain::rules::mention_tokens(text)).await?;
    let nachricht_id = Uuid::new_v5(
        &ID_NAMESPACE,
        format!("nachricht:{}", meta.msg_id).as_bytes(),
    );
    let cmd = KnotenCommand::Schreiben(Schreiben {
        nachricht_id,
        author,
        text: text.to_owned(),
        mentions,
        key: data_key,
        nonce: nonce(),
    });
    let done = execute_on::<Knoten>(bus, knoten, &cmd, meta, bus::Expect::ExistingChain).await?;
    let replayed = done.outcome == bus::Outcome::AlreadyDone;
    let stored = first_event(&done.events)?.clone();
    let payload: NachrichtGeschrieben = stored.envelope.decode()?;
    let text = domain::privacy::open(&data_key, &payload.text).ok();
    Ok(Written {
        stored,
        payload,
        text,
        replayed,
    })
}

/// `@name` tokens → role ids: participants of the room first, then any role with that name.
async fn resolve_mentions(
    db: &DatabaseConnection,
    knoten: Uuid,
    tokens: &[String],
) -> Result<Vec<Uuid>, ApiError> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let by_token: HashMap<String, Uuid> = read::social::mentioned_roles(db, knoten, tokens)
        .await?
        .into_iter()
        .collect();
    Ok(tokens
        .iter()
        .filter_map(|t| by_token.get(t).copied())
        .collect())
}

/// What saving a design area did.
#[derive(Debug, Clone)]
pub(crate) struct Designed {
    pub stored: Stored,
    pub payload: domain::events::KnotenGestaltet,
    pub replayed: bool,
}

/// Save the design area of `knoten` as `editor`, based on `expected_version`: only its creator
/// and roles with a live thread to it may (FORBIDDEN), a stale version is a CONFLICT.
pub(crate) async fn update_design(
    db: &DatabaseConnection,
    bus: &Bus,
    editor: Uuid,
    knoten: Uuid,
    expected_version: i32,
    content: serde_json::Value,
    meta: Meta,
) -> Result<Designed, ApiError> {
    if expected_version < 0 {
        return Err(ApiError::Domain(DomainError::validation(
            "expectedVersion",
            "must not be negative",
        )));
    }
    let may_edit = read::knoten::is_creator_or_participant(db, knoten, editor).await?;
    let cmd = KnotenCommand::Gestalten(Gestalten {
        expected_version: expected_version as u32,
        content,
        editor,
        editor_may_edit: may_edit,
    });
    let done = execute_on::<Knoten>(bus, knoten, &cmd, meta, bus::Expect::ExistingChain).await?;
    let replayed = done.outcome == bus::Outcome::AlreadyDone;
    let stored = first_event(&done.events)?.clone();
    let payload = stored.envelope.decode()?;
    Ok(Designed {
        stored,
        payload,
        replayed,
    })
}
