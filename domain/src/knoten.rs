//! The Knoten aggregate: a node on the map (idea, event, resource).

use chrono::{DateTime, Duration, Utc};
use h3o::Resolution;
use serde_json::Value;
use uuid::Uuid;

use crate::aggregate::{Aggregate, NewEvent};
use crate::envelope::Envelope;
use crate::error::DomainError;
use crate::events::{EventType, KnotenGeknuepft, KnotenTyp};
use crate::geo::Point;

/// Longest title, in characters.
pub const TITLE_MAX_CHARS: usize = 200;
/// Largest design-area content, as canonical JSON bytes.
pub const CONTENT_MAX_BYTES: usize = 16 * 1024;
/// What is not taken up fades after this long (DESIGN.md §4).
pub const DEFAULT_TTL_DAYS: i64 = 7;

/// What is known about one Knoten from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knoten {
    pub created: Option<Created>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub title: String,
    pub typ: KnotenTyp,
    pub msg_id: String,
    pub expires_at: DateTime<Utc>,
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

#[derive(Debug, Clone)]
pub enum KnotenCommand {
    Create(CreateKnoten),
}

impl Aggregate for Knoten {
    type Command = KnotenCommand;

    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError> {
        if event.known_type() == Some(EventType::KnotenGeknuepft) {
            let p: KnotenGeknuepft = event.decode()?;
            self.created = Some(Created {
                title: p.title,
                typ: p.typ,
                msg_id: event.meta.msg_id.clone(),
                expires_at: p.expires_at,
            });
        }
        Ok(())
    }

    fn decide(&self, cmd: &KnotenCommand) -> Result<Vec<NewEvent>, DomainError> {
        match cmd {
            KnotenCommand::Create(c) => self.create(c),
        }
    }
}

impl Knoten {
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
        if !content.is_object() {
            return Err(DomainError::validation(
                "content",
                "content must be a JSON object",
            ));
        }
        let size = crate::hash::canonical_json(&content).len();
        if size > CONTENT_MAX_BYTES {
            return Err(DomainError::validation(
                "content",
                format!("content is {size} bytes; at most {CONTENT_MAX_BYTES} are allowed"),
            ));
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    fn cmd(title: &str) -> KnotenCommand {
        KnotenCommand::Create(CreateKnoten {
            id: Uuid::nil(),
            title: title.into(),
            typ: KnotenTyp::Ideen,
            content: None,
            lat: 50.9795,
            lng: 11.3235,
            now: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            ttl: Duration::days(DEFAULT_TTL_DAYS),
            fine_res: crate::geo::FINE_RES,
        })
    }

    #[test]
    fn creating_a_knoten_ties_it_with_cell_and_expiry() {
        let events = given::<Knoten>(&[])
            .when(&cmd("  Gemeinschaftsgarten "))
            .unwrap();
        assert_eq!(events.len(), 1);
        let p: KnotenGeknuepft = serde_json::from_value(events[0].payload.clone()).unwrap();
        assert_eq!(p.title, "Gemeinschaftsgarten");
        assert_eq!(p.expires_at.timestamp(), 1_800_000_000 + 7 * 86_400);
        let cell: h3o::CellIndex = p.h3.parse().unwrap();
        assert_eq!(cell.resolution(), Resolution::Twelve);
    }

    #[test]
    fn bad_titles_are_refused_naming_the_field() {
        for bad in ["", "   ", &"x".repeat(10_000), "a\u{0}b"] {
            let err = given::<Knoten>(&[]).when(&cmd(bad)).unwrap_err();
            assert!(
                matches!(err, DomainError::Validation { ref field, .. } if field == "title"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn oversized_or_non_object_content_is_refused() {
        let KnotenCommand::Create(mut c) = cmd("t");
        c.content = Some(serde_json::json!({"text": "x".repeat(CONTENT_MAX_BYTES)}));
        let err = given::<Knoten>(&[])
            .when(&KnotenCommand::Create(c.clone()))
            .unwrap_err();
        assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "content"));
        c.content = Some(serde_json::json!([1, 2]));
        assert!(
            given::<Knoten>(&[])
                .when(&KnotenCommand::Create(c))
                .is_err()
        );
    }

    #[test]
    fn creating_twice_is_a_conflict() {
        let first = given::<Knoten>(&[]).when(&cmd("t")).unwrap();
        let err = given::<Knoten>(&first).when(&cmd("t")).unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)));
    }
}
