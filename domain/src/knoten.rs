//! The Knoten aggregate: a node on the map (idea, event, resource) with its room (messages and
//! the versioned design area), its decay and its yarn.
//!
//! Who may do what (decided here, DESIGN.md §4):
//! - edit the design area: the creator, or a participant (a role with an active Faden to it);
//!   never after the Knoten has faded; always against the current version (a stale version is a
//!   conflict, never a silent overwrite). A yarn Knoten stays editable.
//! - write in the room: any role, as long as the Knoten has not faded.
//! - decay and yarn: the jobs worker; both are no-ops when they do not apply, so a timer may
//!   fire twice or late without harm.

use chrono::{DateTime, Duration, Utc};
use h3o::Resolution;
use serde_json::Value;
use uuid::Uuid;

use crate::aggregate::{Aggregate, NewEvent};
use crate::envelope::{Actor, Envelope};
use crate::error::DomainError;
use crate::events::{
    EventType, FlagTarget, FlagTargetKind, InhaltVerborgen, KnotenGeknuepft, KnotenGestaltet,
    KnotenTyp, KnotenVerfallen, KnotenVerzwirnt, NachrichtGeschrieben,
};
use crate::geo::Point;
use crate::privacy::{KEY_BYTES, NONCE_BYTES, seal};
use crate::rules::{is_due, validate_content, yarn_roles};

/// Longest title, in characters.
pub const TITLE_MAX_CHARS: usize = 200;
pub use crate::rules::CONTENT_MAX_BYTES;
/// What is not taken up fades after this long (DESIGN.md §4).
pub const DEFAULT_TTL_DAYS: i64 = 7;

/// Longest message in a room, in characters (after trimming).
pub const MESSAGE_MAX_CHARS: usize = 4000;

/// What is known about one Knoten from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knoten {
    /// `None` until `KnotenGeknuepft`.
    pub created: Option<Created>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub title: String,
    pub typ: KnotenTyp,
    pub msg_id: String,
    pub expires_at: DateTime<Utc>,
    /// The role that tied it (`meta.actor` of `KnotenGeknuepft`); `None` if the system did.
    pub creator: Option<Uuid>,
    /// Version of the design area: 0 after creation, +1 per `KnotenGestaltet`.
    pub design_version: u32,
    /// The design area as of `design_version`.
    pub content: Value,
    pub decayed: bool,
    pub yarn: bool,
    /// Flags whose `InhaltVerborgen` is on this chain (the Knoten or one of its messages).
    pub hidden_by: Vec<Uuid>,
}

/// Tie a new Knoten. `now`, `ttl` and `fine_res` are facts from outside.
#[derive(Debug, Clone)]
pub struct CreateKnoten {
    pub id: Uuid,
    pub title: String,
    pub typ: KnotenTyp,
    pub content: Option<Value>,
    pub lat: f64,
    pub lng: f64,
    pub now: DateTime<Utc>,
    pub ttl: Duration,
    pub fine_res: Resolution,
}

/// Replace the design area. `expected_version` is the version the editor's change was based
/// on. `editor_may_edit` is true if the editor is a participant (a role with an active Faden to
/// this Knoten), which only the caller can look up; the creator may always edit.
#[derive(Debug, Clone)]
pub struct Gestalten {
    pub expected_version: u32,
    pub content: Value,
    pub editor: Uuid,
    pub editor_may_edit: bool,
}

/// Write a message in the Knoten's room. `key` is the author's data key and `nonce` a fresh
/// random nonce; the text is sealed with them and never stored in the clear. `mentions` are the
/// roles the caller resolved from the text's @tokens.
#[derive(Debug, Clone)]
pub struct Schreiben {
    pub nachricht_id: Uuid,
    pub author: Uuid,
    pub text: String,
    pub mentions: Vec<Uuid>,
    pub key: [u8; KEY_BYTES],
    pub nonce: [u8; NONCE_BYTES],
}

#[derive(Debug, Clone)]
pub enum KnotenCommand {
    Create(CreateKnoten),
    Gestalten(Gestalten),
    /// The decay timer: decays the Knoten if it is due at `now`; otherwise nothing.
    Verfallen {
        now: DateTime<Utc>,
    },
    /// The yarn timer: `roles` are the `from_rolle` of the Knoten's active threads.
    Verzwirnen {
        roles: Vec<Uuid>,
        min_roles: usize,
    },
    Schreiben(Schreiben),
    /// Record that moderation hid this Knoten or one of its messages (flag resolved `hidden`).
    /// Once per flag: a repeat yields nothing.
    Verbergen {
        flag_id: Uuid,
        target: FlagTarget,
    },
}

impl Aggregate for Knoten {
    const TYPE: crate::AggregateType = crate::AggregateType::Knoten;

    type Command = KnotenCommand;

    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError> {
        let Some(event_type) = event.known_type() else {
            return Ok(());
        };
        if event_type == EventType::KnotenGeknuepft {
            let p: KnotenGeknuepft = event.decode()?;
            self.created = Some(Created {
                title: p.title,
                typ: p.typ,
                msg_id: event.meta.msg_id.clone(),
                expires_at: p.expires_at,
                creator: match event.meta.actor {
                    Actor::Rolle(id) => Some(id),
                    Actor::System => None,
                },
                design_version: 0,
                content: p.content,
                decayed: false,
                yarn: false,
                hidden_by: Vec::new(),
            });
            return Ok(());
        }
        let Some(created) = self.created.as_mut() else {
            // Nothing but KnotenGeknuepft can start a chain; ignore rather than guess.
            return Ok(());
        };
        match event_type {
            EventType::KnotenGestaltet => {
                let p: KnotenGestaltet = event.decode()?;
                created.design_version = p.version;
                created.content = p.content;
            }
            EventType::KnotenVerfallen => created.decayed = true,
            EventType::KnotenVerzwirnt => created.yarn = true,
            EventType::InhaltVerborgen => {
                let p: InhaltVerborgen = event.decode()?;
                created.hidden_by.push(p.flag_id);
            }
            _ => {}
        }
        Ok(())
    }

    fn decide(&self, cmd: &KnotenCommand) -> Result<Vec<NewEvent>, DomainError> {
        match cmd {
            KnotenCommand::Create(c) => self.create(c),
            KnotenCommand::Gestalten(g) => self.gestalten(g),
            KnotenCommand::Verfallen { now } => self.verfallen(*now),
            KnotenCommand::Verzwirnen { roles, min_roles } => self.verzwirnen(roles, *min_roles),
            KnotenCommand::Schreiben(s) => self.schreiben(s),
            KnotenCommand::Verbergen { flag_id, target } => self.verbergen(*flag_id, *target),
        }
    }
}

fn not_found() -> DomainError {
    DomainError::NotFound("there is no such Knoten".into())
}

impl Knoten {
    fn existing(&self) -> Result<&Created, DomainError> {
        self.created.as_ref().ok_or_else(not_found)
    }

    fn create(&self, c: &CreateKnoten) -> Result<Vec<NewEvent>, DomainError> {
        let title = c.title.trim();
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
        let content = c
            .content
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()));
        validate_content(&content)?;
        let point = Point::new(c.lat, c.lng)?;
        if self.created.is_some() {
            return Err(DomainError::Conflict(format!(
                "Knoten {} already exists",
                c.id
            )));
        }
        let payload = KnotenGeknuepft {
            title: title.to_owned(),
            typ: c.typ,
            content,
            lat: point.lat(),
            lng: point.lng(),
            h3: point.cell(c.fine_res).to_string(),
            expires_at: crate::envelope::truncate_millis(c.now + c.ttl),
        };
        Ok(vec![NewEvent::from_payload(&payload)?])
    }

    fn gestalten(&self, g: &Gestalten) -> Result<Vec<NewEvent>, DomainError> {
        let k = self.existing()?;
        if k.decayed {
            return Err(DomainError::Conflict(
                "the Knoten has faded; its design area can no longer be edited".into(),
            ));
        }
        if k.creator != Some(g.editor) && !g.editor_may_edit {
            return Err(DomainError::Forbidden(
                "only the creator of the Knoten and roles with a thread to it may edit its design area; spin a thread first".into(),
            ));
        }
        validate_content(&g.content)?;
        if g.expected_version != k.design_version {
            return Err(DomainError::Conflict(format!(
                "the design area is at version {}, your edit was based on version {}: reload and apply your change again",
                k.design_version, g.expected_version
            )));
        }
        let version = k.design_version.checked_add(1).ok_or_else(|| {
            DomainError::Conflict("the design area cannot take more versions".into())
        })?;
        Ok(vec![NewEvent::from_payload(&KnotenGestaltet {
            version,
            content: g.content.clone(),
        })?])
    }

    fn verfallen(&self, now: DateTime<Utc>) -> Result<Vec<NewEvent>, DomainError> {
        let k = self.existing()?;
        if k.yarn || k.decayed || !is_due(k.expires_at, now) {
            return Ok(Vec::new());
        }
        Ok(vec![NewEvent::from_payload(&KnotenVerfallen {
            expired_at: k.expires_at,
        })?])
    }

    fn verzwirnen(&self, roles: &[Uuid], min_roles: usize) -> Result<Vec<NewEvent>, DomainError> {
        let k = self.existing()?;
        if k.yarn || k.decayed {
            return Ok(Vec::new());
        }
        match yarn_roles(roles.iter().copied(), min_roles) {
            Some(roles) => Ok(vec![NewEvent::from_payload(&KnotenVerzwirnt { roles })?]),
            None => Ok(Vec::new()),
        }
    }

    fn verbergen(&self, flag_id: Uuid, target: FlagTarget) -> Result<Vec<NewEvent>, DomainError> {
        let k = self.existing()?;
        if !matches!(
            target.kind,
            FlagTargetKind::Knoten | FlagTargetKind::Nachricht
        ) {
            return Err(DomainError::validation(
                "target",
                "only a Knoten or a message in its room is hidden on a Knoten's chain",
            ));
        }
        if k.hidden_by.contains(&flag_id) {
            return Ok(Vec::new());
        }
        Ok(vec![NewEvent::from_payload(&InhaltVerborgen {
            flag_id,
            target,
        })?])
    }

    fn schreiben(&self, s: &Schreiben) -> Result<Vec<NewEvent>, DomainError> {
        let text = s.text.trim();
        if text.is_empty() {
            return Err(DomainError::validation(
                "text",
                "the message must not be empty",
            ));
        }
        let chars = text.chars().count();
        if chars > MESSAGE_MAX_CHARS {
            return Err(DomainError::validation(
                "text",
                format!(
                    "the message has {chars} characters; at most {MESSAGE_MAX_CHARS} are allowed"
                ),
            ));
        }
        let k = self.existing()?;
        if k.decayed {
            return Err(DomainError::Conflict(
                "the Knoten has faded; its room is closed".into(),
            ));
        }
        let mut mentions: Vec<Uuid> = Vec::with_capacity(s.mentions.len());
        for m in &s.mentions {
            if !mentions.contains(m) {
                mentions.push(*m);
            }
        }
        let sealed = seal(&s.key, &s.nonce, s.author, text)?;
        Ok(vec![NewEvent::from_payload(&NachrichtGeschrieben {
            nachricht_id: s.nachricht_id,
            author: s.author,
            text: sealed,
            mentions,
        })?])
    }
}

#[cfg(test)]
mod tests;
