//! The Antrag aggregate: a proposal in a Weberei, its objections, its votes and its decision
//! (DESIGN.md §4 "Governance"). The counting rules live in [`crate::governance`].
//!
//! Who may do what, and when (choices beyond DESIGN.md are marked *choice*):
//! - **File** (`Stellen`): only a verified role (else FORBIDDEN). Title 1..=200 characters
//!   after trimming, no control characters; content a JSON object of at most 16 KiB canonical
//!   JSON (as a Knoten's design area); the Weberei a hex H3 cell at `WEAVERY_RES` (the caller
//!   derives it from the filer's home with [`crate::governance::weberei_of_home`]: *choice*, a
//!   role files in its own Weberei, the domain only checks the cell). The deadline is stored to
//!   the millisecond (as every timestamp in events) and must be at least `min_deadline` after
//!   `now` (else VALIDATION on `deadline`). Filing an existing Antrag again is a CONFLICT.
//! - **Object** (`Einspruch`): *choice* only verified roles (FORBIDDEN otherwise), and *choice*
//!   one objection per role (a second one is a CONFLICT; the discussion continues elsewhere).
//!   Only while open: before the deadline and not decided (else CONFLICT). The reason
//!   (1..=2000 characters) is free text of a person, so *choice* it is sealed with the
//!   objector's data key like a room message, and shredded with it.
//! - **Vote** (`Abstimmen`): only verified roles (FORBIDDEN), only before the deadline and not
//!   decided (CONFLICT), once per role (a second vote is a CONFLICT, also with the same value).
//!   The domain does not know the voter's home: *choice* whether only roles of the Weberei may
//!   vote is the caller's to decide (it is not restricted here).
//! - **Decide** (`Entscheiden`, the jobs worker): at or after the deadline only (*choice*: an
//!   early decision is a CONFLICT, never silently nothing, because it is a caller bug). Emits
//!   `QuorumErreicht` if the quorum is reached, then `AntragEntschieden` with every counted vote
//!   and the facts used (active roles, percent, transitive, cycles), so anyone can recompute it
//!   ([`crate::governance::audit_decision`]). Deciding again yields nothing: restart-safe.
//!   `quorum_percent` above 100 is a VALIDATION error. The caller passes the delegations active
//!   at the deadline whose delegators are entitled to vote (verified); the domain counts them.
//! - Votes and objections are taken while `now < deadline`; the deadline instant itself belongs
//!   to the decision (as `rules::is_due`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::aggregate::{Aggregate, NewEvent};
use crate::envelope::{Envelope, truncate_millis};
use crate::error::DomainError;
use crate::events::{
    AntragEntschieden, AntragGestellt, AntragStatus, EinspruchEingegangen, EventType,
    QuorumErreicht, StimmeAbgegeben, Vote,
};
use crate::governance::{
    Tally, decide_status, parse_weberei, quorum_reached, tally, validate_reason,
};
use crate::privacy::{KEY_BYTES, NONCE_BYTES, seal};
use crate::rules::{is_due, validate_content};

/// Longest title, in characters.
pub const TITLE_MAX_CHARS: usize = 200;
pub use crate::rules::CONTENT_MAX_BYTES;

/// What is known about one Antrag from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Antrag {
    /// `None` until `AntragGestellt`.
    pub filed: Option<Filed>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filed {
    pub by: Uuid,
    pub title: String,
    pub content: Value,
    pub weavery_h3: String,
    pub decision_deadline: DateTime<Utc>,
    /// Roles that objected, in order.
    pub objections: Vec<Uuid>,
    /// Direct votes by role.
    pub votes: BTreeMap<Uuid, Vote>,
    pub quorum_reached: bool,
    /// `Some` once `AntragEntschieden` is recorded.
    pub decision: Option<AntragStatus>,
}

impl Filed {
    /// Whether votes and objections are taken at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.decision.is_none() && !is_due(self.decision_deadline, now)
    }

    /// The direct votes, as [`tally`] takes them.
    pub fn direct_votes(&self) -> Vec<(Uuid, Vote)> {
        self.votes.iter().map(|(&r, &v)| (r, v)).collect()
    }

    /// The tally as it would be now, with the given active delegations (for "the tally so far").
    pub fn tally_so_far(&self, delegations: &[(Uuid, Uuid)], transitive: bool) -> Tally {
        tally(&self.direct_votes(), delegations, transitive)
    }
}

/// File Antrag `id`. `now`, `min_deadline` and `by_verified` are facts from outside.
#[derive(Debug, Clone)]
pub struct Stellen {
    pub id: Uuid,
    pub title: String,
    pub content: Option<Value>,
    /// The Weberei, hex H3 cell at `WEAVERY_RES`.
    pub weavery_h3: String,
    pub deadline: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub min_deadline: Duration,
    pub by: Uuid,
    pub by_verified: bool,
}

/// Object to the Antrag. `key` is the objector's data key and `nonce` a fresh random nonce; the
/// reason is sealed with them.
#[derive(Debug, Clone)]
pub struct Einspruch {
    pub by: Uuid,
    pub reason: String,
    pub now: DateTime<Utc>,
    pub by_verified: bool,
    pub key: [u8; KEY_BYTES],
    pub nonce: [u8; NONCE_BYTES],
}

#[derive(Debug, Clone)]
pub struct Abstimmen {
    pub by: Uuid,
    pub vote: Vote,
    pub now: DateTime<Utc>,
    pub by_verified: bool,
}

/// Decide at the deadline. `active_roles` is the quorum base (verified roles homed in the
/// Weberei with any event in the last `ACTIVE_DAYS`), `quorum_percent` is `QUORUM_PERCENT`,
/// `delegations` are `(from, to)` active at the deadline, `transitive` is
/// `FF_TRANSITIVE_DELEGATION`.
#[derive(Debug, Clone)]
pub struct Entscheiden {
    pub now: DateTime<Utc>,
    pub active_roles: u64,
    pub quorum_percent: u32,
    pub delegations: Vec<(Uuid, Uuid)>,
    pub transitive: bool,
}

#[derive(Debug, Clone)]
pub enum AntragCommand {
    Stellen(Stellen),
    Einspruch(Einspruch),
    Abstimmen(Abstimmen),
    Entscheiden(Entscheiden),
}

impl Aggregate for Antrag {
    const TYPE: crate::AggregateType = crate::AggregateType::Antrag;

    type Command = AntragCommand;

    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError> {
        let Some(event_type) = event.known_type() else {
            return Ok(());
        };
        if event_type == EventType::AntragGestellt {
            let p: AntragGestellt = event.decode()?;
            self.filed = Some(Filed {
                by: p.by,
                title: p.title,
                content: p.content,
                weavery_h3: p.weavery_h3,
                decision_deadline: p.decision_deadline,
                objections: Vec::new(),
                votes: BTreeMap::new(),
                quorum_reached: false,
                decision: None,
            });
            return Ok(());
        }
        let Some(filed) = self.filed.as_mut() else {
            // Nothing but AntragGestellt can start a chain; ignore rather than guess.
            return Ok(());
        };
        match event_type {
            EventType::EinspruchEingegangen => {
                let p: EinspruchEingegangen = event.decode()?;
                if !filed.objections.contains(&p.by) {
                    filed.objections.push(p.by);
                }
            }
            EventType::StimmeAbgegeben => {
                let p: StimmeAbgegeben = event.decode()?;
                filed.votes.entry(p.by).or_insert(p.vote);
            }
            EventType::QuorumErreicht => filed.quorum_reached = true,
            EventType::AntragEntschieden => {
                let p: AntragEntschieden = event.decode()?;
                filed.decision = Some(p.status);
            }
            _ => {}
        }
        Ok(())
    }

    fn decide(&self, cmd: &AntragCommand) -> Result<Vec<NewEvent>, DomainError> {
        match cmd {
            AntragCommand::Stellen(s) => self.stellen(s),
            AntragCommand::Einspruch(e) => self.einspruch(e),
            AntragCommand::Abstimmen(a) => self.abstimmen(a),
            AntragCommand::Entscheiden(e) => self.entscheiden(e),
        }
    }
}

fn validate_title(title: &str) -> Result<&str, DomainError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(DomainError::validation(
            "title",
            "the title must not be empty",
        ));
    }
    let chars = title.chars().count();
    if chars > TITLE_MAX_CHARS {
        return Err(DomainError::validation(
            "title",
            format!("the title has {chars} characters; at most {TITLE_MAX_CHARS} are allowed"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(DomainError::validation(
            "title",
            "the title must not contain control characters",
        ));
    }
    Ok(title)
}

fn not_found() -> DomainError {
    DomainError::NotFound("there is no such Antrag".into())
}

/// Why votes and objections are no longer taken.
fn closed(filed: &Filed) -> DomainError {
    match filed.decision {
        Some(status) => DomainError::Conflict(format!(
            "the Antrag is decided ({}); it takes no more votes or objections",
            status.as_str()
        )),
        None => DomainError::Conflict(format!(
            "the decision deadline ({}) has passed; the Antrag takes no more votes or objections",
            filed.decision_deadline.to_rfc3339()
        )),
    }
}

impl Antrag {
    fn existing(&self) -> Result<&Filed, DomainError> {
        self.filed.as_ref().ok_or_else(not_found)
    }

    fn stellen(&self, s: &Stellen) -> Result<Vec<NewEvent>, DomainError> {
        if !s.by_verified {
            return Err(DomainError::Forbidden(
                "only verified roles may file an Antrag; ask two verified roles to confirm you"
                    .into(),
            ));
        }
        let title = validate_title(&s.title)?;
        let content = s
            .content
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()));
        validate_content(&content)?;
        let weberei = parse_weberei(&s.weavery_h3)?;
        let deadline = truncate_millis(s.deadline);
        let earliest = s.now + s.min_deadline;
        if deadline < earliest {
            return Err(DomainError::validation(
                "deadline",
                format!(
                    "the decision deadline must be at least {} hours from now (not before {})",
                    s.min_deadline.num_hours(),
                    earliest.to_rfc3339()
                ),
            ));
        }
        if self.filed.is_some() {
            return Err(DomainError::Conflict(format!(
                "Antrag {} already exists",
                s.id
            )));
        }
        Ok(vec![NewEvent::from_payload(&AntragGestellt {
            by: s.by,
            title: title.to_owned(),
            content,
            weavery_h3: weberei.to_string(),
            decision_deadline: deadline,
        })?])
    }

    fn einspruch(&self, e: &Einspruch) -> Result<Vec<NewEvent>, DomainError> {
        let reason = validate_reason("reason", &e.reason)?;
        let filed = self.existing()?;
        if !e.by_verified {
            return Err(DomainError::Forbidden(
                "only verified roles may object to an Antrag".into(),
            ));
        }
        if !filed.is_open(e.now) {
            return Err(closed(filed));
        }
        if filed.objections.contains(&e.by) {
            return Err(DomainError::Conflict(
                "you have already objected to this Antrag".into(),
            ));
        }
        Ok(vec![NewEvent::from_payload(&EinspruchEingegangen {
            by: e.by,
            reason: seal(&e.key, &e.nonce, e.by, reason)?,
        })?])
    }

    fn abstimmen(&self, a: &Abstimmen) -> Result<Vec<NewEvent>, DomainError> {
        let filed = self.existing()?;
        if !a.by_verified {
            return Err(DomainError::Forbidden(
                "only verified roles may vote; ask two verified roles to confirm you".into(),
            ));
        }
        if !filed.is_open(a.now) {
            return Err(closed(filed));
        }
        if let Some(earlier) = filed.votes.get(&a.by) {
            return Err(DomainError::Conflict(format!(
                "you have already voted {} on this Antrag; each role votes once",
                earlier.as_str()
            )));
        }
        Ok(vec![NewEvent::from_payload(&StimmeAbgegeben {
            by: a.by,
            vote: a.vote,
        })?])
    }

    fn entscheiden(&self, e: &Entscheiden) -> Result<Vec<NewEvent>, DomainError> {
        if e.quorum_percent > 100 {
            return Err(DomainError::validation(
                "quorum_percent",
                format!("must be between 0 and 100, got {}", e.quorum_percent),
            ));
        }
        let filed = self.existing()?;
        if filed.decision.is_some() {
            return Ok(Vec::new());
        }
        if !is_due(filed.decision_deadline, e.now) {
            return Err(DomainError::Conflict(format!(
                "the Antrag can only be decided at its deadline ({})",
                filed.decision_deadline.to_rfc3339()
            )));
        }
        let t = filed.tally_so_far(&e.delegations, e.transitive);
        let participation = t.participation();
        let quorum = quorum_reached(participation, e.active_roles, e.quorum_percent);
        let mut events = Vec::with_capacity(2);
        if quorum {
            events.push(NewEvent::from_payload(&QuorumErreicht {
                participation,
                active_roles: e.active_roles,
                quorum_percent: e.quorum_percent,
            })?);
        }
        events.push(NewEvent::from_payload(&AntragEntschieden {
            status: decide_status(&t, quorum),
            ja: t.ja,
            nein: t.nein,
            enthaltung: t.enthaltung,
            participation,
            active_roles: e.active_roles,
            quorum_percent: e.quorum_percent,
            transitive: e.transitive,
            counted: t.counted,
            cycles: t.cycles,
        })?);
        Ok(events)
    }
}

#[cfg(test)]
mod tests;
