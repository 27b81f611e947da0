//! Threads and room messages outside GraphQL: spinning a thread to a Knoten and writing a
//! message sealed with its author's data key. The `spinFaden` and `writeNachricht` mutations
//! and the demo town both go through here; the mutations add the idempotency key, the caller
//! and the payload around it.

use std::collections::HashMap;

use bus::{Bus, Executed, Stored};
use chrono::Utc;
use domain::aggregate::Aggregate as _;
use domain::events::{FadenTyp, NachrichtGeschrieben};
use domain::faden::{Faden, FadenCommand, Spinnen, faden_id};
use domain::knoten::{Knoten, KnotenCommand, Schreiben};
use domain::{AggregateType, DomainError, Meta};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use crate::accounts::{ID_NAMESPACE, data_key, execute_on, nonce};
use crate::error::ApiError;

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
    let stored = done
        .events
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("no event"))?;
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
    let mut by_token = HashMap::new();
    for r in rows {
        by_token.insert(
            r.try_get::<String>("", "token")?,
            r.try_get::<Uuid>("", "id")?,
        );
    }
    Ok(tokens
        .iter()
        .filter_map(|t| by_token.get(t).copied())
        .collect())
}
