//! Executing a command against one aggregate: load its chain, fold, decide, seal the new
//! events onto the chain, publish with the expected subject sequence, and on a stale head load
//! again and decide again. A command whose msg id is already on the chain is not applied twice.

use chrono::{DateTime, Utc};
use domain::aggregate::{Aggregate, NewEvent};
use domain::{AggregateType, DomainError, Envelope, Meta};
use tracing::debug;
use ulid::Ulid;
use uuid::Uuid;

use crate::error::BusError;
use crate::streams::{AppendError, Appended, Bus, Stored};

/// What executing a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// New events were appended.
    Appended,
    /// The same msg id was already on the chain: the earlier result is returned.
    AlreadyDone,
}

/// What the caller knows about the aggregate's chain before a command is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A creation command: the chain is expected to be empty, so it is not loaded on the first
    /// try (which also lets creation go through the fallback while JetStream is down). A chain
    /// that exists after all is found by the expected-sequence check and loaded then.
    NewChain,
    /// The chain exists (or may): load it before deciding.
    ExistingChain,
}

#[derive(Debug, Clone)]
pub struct Executed {
    pub outcome: Outcome,
    /// The events of this command (new, or the earlier ones for `AlreadyDone`).
    pub events: Vec<Stored>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The domain refused the command.
    #[error(transparent)]
    Refused(#[from] DomainError),
    /// The backbone failed; the command may be retried with the same idempotency key.
    #[error(transparent)]
    Failed(#[from] BusError),
}

impl Bus {
    /// Execute `cmd` against aggregate `id`. `meta.msg_id` is the command's idempotency key:
    /// the n-th event of the decision gets `<msg_id>` (n = 0) or `<msg_id>#<n>`.
    /// The chain is the one of `A::TYPE` with this id; see [`Expect`] for `expect`.
    pub async fn execute<A: Aggregate>(
        &self,
        id: Uuid,
        cmd: &A::Command,
        meta: Meta,
        now: DateTime<Utc>,
        expect: Expect,
    ) -> Result<Executed, ExecuteError> {
        let aggregate_type = A::TYPE;
        let retries = self.config().max_conflict_retries;
        for attempt in 0..=retries {
            // The head this process last wrote: no reload unless someone else wrote since (then
            // the expected-sequence check fails and we reload). A cached head whose chain
            // might already hold this msg id falls through to the full load.
            let cached = if attempt == 0 {
                self.cached_head::<A>(id, &meta.msg_id)
            } else {
                None
            };
            let (state, head) = match cached {
                Some(c) => c,
                None => {
                    let history = if expect == Expect::NewChain && attempt == 0 {
                        Vec::new()
                    } else {
                        self.history(aggregate_type, id).await?
                    };
                    let earlier: Vec<Stored> = history
                        .iter()
                        .filter(|s| is_same_command(&s.envelope.meta.msg_id, &meta.msg_id))
                        .cloned()
                        .collect();
                    if !earlier.is_empty() {
                        return Ok(Executed {
                            outcome: Outcome::AlreadyDone,
                            events: earlier,
                        });
                    }
                    let state = A::fold(history.iter().map(|s| &s.envelope)).map_err(|e| {
                        BusError::Corrupt {
                            subject: self.config().ort.aggregate_subject(aggregate_type, id),
                            seq: history.last().and_then(|s| s.seq).unwrap_or(0),
                            detail: e.to_string(),
                        }
                    })?;
                    // Archived links are off the stream: JetStream expects sequence 0 there.
                    let head = history.last().map(|s| {
                        (
                            if s.archived { 0 } else { s.seq.unwrap_or(0) },
                            s.hash.clone(),
                        )
                    });
                    if let Some((seq, hash)) = &head
                        && history.iter().all(|s| s.seq.is_some())
                    {
                        let msg_ids = history
                            .iter()
                            .map(|s| s.envelope.meta.msg_id.clone())
                            .collect();
                        self.remember::<A>(id, *seq, hash.clone(), state.clone(), msg_ids);
                    }
                    (state, head)
                }
            };
            let decided = state.decide(cmd)?;
            match self
                .append_decided(aggregate_type, id, head, decided, &meta, now)
                .await?
            {
                Some(executed) => {
                    self.advance::<A>(id, state, &executed);
                    return Ok(executed);
                }
                None => {
                    self.forget(id);
                    debug!(%id, attempt, "stale head; deciding again");
                    // Jittered backoff so that two writers do not keep colliding in lockstep.
                    let max_ms = 2u64.saturating_pow(attempt.min(6)).max(2);
                    let wait = rand::random_range(0..max_ms);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
            }
        }
        Err(ExecuteError::Refused(DomainError::Conflict(format!(
            "{} {id} is being changed by many others right now; try again",
            aggregate_type.as_str()
        ))))
    }

    /// Seal and publish; `Ok(None)` means the head was stale and the caller should decide again.
    async fn append_decided(
        &self,
        aggregate_type: AggregateType,
        id: Uuid,
        head: Option<(u64, String)>,
        decided: Vec<NewEvent>,
        meta: &Meta,
        now: DateTime<Utc>,
    ) -> Result<Option<Executed>, ExecuteError> {
        let ort = &self.config().ort;
        let (mut expected, mut prev_hash) = match head {
            Some((seq, hash)) => (Some(seq), Some(hash)),
            None => (Some(0), None),
        };
        let mut out = Vec::with_capacity(decided.len());
        for (n, event) in decided.into_iter().enumerate() {
            let msg_id = if n == 0 {
                meta.msg_id.clone()
            } else {
                format!("{}#{n}", meta.msg_id)
            };
            let env = Envelope {
                id: Ulid::new(),
                event_type: event.event_type.as_str().to_owned(),
                version: event.version,
                aggregate_id: id,
                aggregate_type,
                prev_hash: prev_hash.clone(),
                ts: domain::envelope::truncate_millis(now),
                subject: ort.aggregate_subject(aggregate_type, id),
                payload: event.payload,
                meta: Meta {
                    msg_id,
                    ..meta.clone()
                },
            };
            let hash = domain::hash_envelope(&env).map_err(BusError::from)?;
            match self.append(&env, expected).await {
                Ok(Appended::JetStream {
                    seq,
                    duplicate: false,
                    ..
                }) => {
                    expected = Some(seq);
                    out.push(Stored {
                        seq: Some(seq),
                        envelope: env,
                        hash: hash.clone(),
                        archived: false,
                    });
                }
                Ok(Appended::JetStream {
                    seq,
                    duplicate: true,
                    ..
                }) => {
                    // Published before (a retry within the dedup window): return what is stored.
                    let stored = self.get(aggregate_type.domain(), seq).await?;
                    return Ok(Some(Executed {
                        outcome: Outcome::AlreadyDone,
                        events: vec![stored],
                    }));
                }
                Ok(Appended::Fallback { .. }) => {
                    expected = None;
                    out.push(Stored {
                        seq: None,
                        envelope: env,
                        hash: hash.clone(),
                        archived: false,
                    });
                }
                Err(AppendError::WrongSequence) if n == 0 => return Ok(None),
                Err(AppendError::WrongSequence) => {
                    return Err(ExecuteError::Failed(BusError::Unavailable(format!(
                        "{} {id}: only {n} of the decided events were appended before a concurrent change",
                        aggregate_type.as_str()
                    ))));
                }
                Err(AppendError::Failed(e)) => return Err(e.into()),
            }
            prev_hash = Some(hash);
        }
        Ok(Some(Executed {
            outcome: Outcome::Appended,
            events: out,
        }))
    }
}

fn is_same_command(stored: &str, msg_id: &str) -> bool {
    stored == msg_id
        || stored
            .strip_prefix(msg_id)
            .is_some_and(|rest| rest.starts_with('#'))
}

/// What this process knows about an aggregate's head: enough to decide and publish without
/// reading the chain again. Kept per process, bounded; a stale entry costs one retry.
pub(crate) struct CachedHead<A> {
    seq: u64,
    hash: String,
    state: A,
    msg_ids: std::collections::HashSet<String>,
}

/// Most aggregates whose heads are remembered; beyond that the cache starts over.
const HEAD_CACHE_LIMIT: usize = 50_000;

impl Bus {
    fn cached_head<A: Aggregate>(
        &self,
        id: Uuid,
        msg_id: &str,
    ) -> Option<(A, Option<(u64, String)>)> {
        let cache = self.heads().lock().ok()?;
        let c = cache.get(&id)?.downcast_ref::<CachedHead<A>>()?;
        let maybe_done = c.msg_ids.iter().any(|m| is_same_command(m, msg_id));
        (!maybe_done).then(|| (c.state.clone(), Some((c.seq, c.hash.clone()))))
    }

    fn remember<A: Aggregate>(
        &self,
        id: Uuid,
        seq: u64,
        hash: String,
        state: A,
        msg_ids: std::collections::HashSet<String>,
    ) {
        if let Ok(mut cache) = self.heads().lock() {
            if cache.len() >= HEAD_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(
                id,
                Box::new(CachedHead {
                    seq,
                    hash,
                    state,
                    msg_ids,
                }),
            );
        }
    }

    /// After a successful append: fold the new events into the cached state.
    fn advance<A: Aggregate>(&self, id: Uuid, mut state: A, executed: &Executed) {
        let Some(last) = executed.events.last() else {
            return;
        };
        let (Some(seq), Outcome::Appended) = (last.seq, &executed.outcome) else {
            // In the fallback (no sequence yet) or replayed: read the chain next time.
            self.forget(id);
            return;
        };
        for e in &executed.events {
            if state.apply(&e.envelope).is_err() {
                self.forget(id);
                return;
            }
        }
        let Ok(mut cache) = self.heads().lock() else {
            return;
        };
        let mut msg_ids = cache
            .remove(&id)
            .and_then(|b| b.downcast::<CachedHead<A>>().ok())
            .map(|c| c.msg_ids)
            .unwrap_or_default();
        msg_ids.extend(
            executed
                .events
                .iter()
                .map(|e| e.envelope.meta.msg_id.clone()),
        );
        if cache.len() >= HEAD_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(
            id,
            Box::new(CachedHead {
                seq,
                hash: last.hash.clone(),
                state,
                msg_ids,
            }),
        );
    }

    pub(crate) fn forget(&self, id: Uuid) {
        if let Ok(mut cache) = self.heads().lock() {
            cache.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_same_command;

    #[test]
    fn follow_up_events_belong_to_their_command() {
        assert!(is_same_command("k1", "k1"));
        assert!(is_same_command("k1#1", "k1"));
        assert!(!is_same_command("k10", "k1"));
    }
}
