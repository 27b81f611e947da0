//! The Flag aggregate: a moderation thread about one piece of content (DESIGN.md §4
//! "Moderation"). `FlagRaised` opens it in the Webrat; `FlagResolved` closes it as kept or
//! hidden, with a reason. No scores.
//!
//! Choices beyond DESIGN.md:
//! - **One chain per flag**, its id chosen by the caller (a fresh UUID per report): several
//!   roles may flag the same content, and the projection groups flags by `target` into one
//!   thread. Raising a flag on an existing chain is a CONFLICT.
//! - **Raising** needs no verification (any role may report content); the reason (1..=2000
//!   characters) is sealed with the reporter's data key, as it is free text of a person and
//!   often about one. The caller looks up `author_of_target` (for a Rolle: the role itself;
//!   `None` for content the system made) and the target's existence; the domain records it.
//! - **Resolving** needs a verified role (FORBIDDEN) that is neither the content's author nor
//!   the role that raised the flag (FORBIDDEN both: nobody decides on their own content, and
//!   nobody hides content alone by flagging and resolving it). A flag is resolved once (a
//!   second resolution is a CONFLICT); a new report opens a new flag. The reason is sealed with
//!   the resolving role's key.

use uuid::Uuid;

use crate::aggregate::{Aggregate, NewEvent};
use crate::envelope::Envelope;
use crate::error::DomainError;
use crate::events::{EventType, FlagOutcome, FlagRaised, FlagResolved, FlagTarget};
use crate::governance::validate_reason;
use crate::privacy::{KEY_BYTES, NONCE_BYTES, seal};

/// What is known about one flag from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flag {
    /// `None` until `FlagRaised`.
    pub raised: Option<Raised>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub by: Uuid,
    pub target: FlagTarget,
    pub author_of_target: Option<Uuid>,
    /// `Some` once `FlagResolved`.
    pub resolved: Option<Resolved>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub by: Uuid,
    pub outcome: FlagOutcome,
}

/// Role `by` flags `target`. `key` is the reporter's data key and `nonce` a fresh random nonce.
#[derive(Debug, Clone)]
pub struct Melden {
    pub target: FlagTarget,
    pub reason: String,
    pub by: Uuid,
    pub author_of_target: Option<Uuid>,
    pub key: [u8; KEY_BYTES],
    pub nonce: [u8; NONCE_BYTES],
}

/// Role `by` resolves the flag. `by_verified` is a fact from outside; `key` and `nonce` seal
/// the reason with the resolving role's data key.
#[derive(Debug, Clone)]
pub struct Aufloesen {
    pub outcome: FlagOutcome,
    pub reason: String,
    pub by: Uuid,
    pub by_verified: bool,
    pub key: [u8; KEY_BYTES],
    pub nonce: [u8; NONCE_BYTES],
}

#[derive(Debug, Clone)]
pub enum FlagCommand {
    Melden(Melden),
    Aufloesen(Aufloesen),
}

impl Aggregate for Flag {
    const TYPE: crate::AggregateType = crate::AggregateType::Flag;

    type Command = FlagCommand;

    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError> {
        match event.known_type() {
            Some(EventType::FlagRaised) => {
                let p: FlagRaised = event.decode()?;
                self.raised = Some(Raised {
                    by: p.by,
                    target: p.target,
                    author_of_target: p.author_of_target,
                    resolved: None,
                });
            }
            Some(EventType::FlagResolved) => {
                let p: FlagResolved = event.decode()?;
                if let Some(r) = self.raised.as_mut() {
                    r.resolved = Some(Resolved {
                        by: p.by,
                        outcome: p.outcome,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn decide(&self, cmd: &FlagCommand) -> Result<Vec<NewEvent>, DomainError> {
        match cmd {
            FlagCommand::Melden(m) => self.melden(m),
            FlagCommand::Aufloesen(a) => self.aufloesen(a),
        }
    }
}

impl Flag {
    fn melden(&self, m: &Melden) -> Result<Vec<NewEvent>, DomainError> {
        let reason = validate_reason("reason", &m.reason)?;
        if self.raised.is_some() {
            return Err(DomainError::Conflict("this flag was already raised".into()));
        }
        Ok(vec![NewEvent::from_payload(&FlagRaised {
            by: m.by,
            target: m.target,
            reason: seal(&m.key, &m.nonce, m.by, reason)?,
            author_of_target: m.author_of_target,
        })?])
    }

    fn aufloesen(&self, a: &Aufloesen) -> Result<Vec<NewEvent>, DomainError> {
        let reason = validate_reason("reason", &a.reason)?;
        let raised = self
            .raised
            .as_ref()
            .ok_or_else(|| DomainError::NotFound("there is no such flag".into()))?;
        if raised.author_of_target == Some(a.by) {
            return Err(DomainError::Forbidden(
                "you cannot resolve a flag on your own content; another verified role decides"
                    .into(),
            ));
        }
        if raised.by == a.by {
            return Err(DomainError::Forbidden(
                "you cannot resolve your own flag; another verified role decides".into(),
            ));
        }
        if !a.by_verified {
            return Err(DomainError::Forbidden(
                "only verified roles may resolve flags".into(),
            ));
        }
        if let Some(done) = raised.resolved {
            return Err(DomainError::Conflict(format!(
                "the flag is already resolved ({})",
                done.outcome.as_str()
            )));
        }
        Ok(vec![NewEvent::from_payload(&FlagResolved {
            by: a.by,
            outcome: a.outcome,
            reason: seal(&a.key, &a.nonce, a.by, reason)?,
        })?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;
    use crate::events::{FlagTargetKind, Payload};
    use crate::privacy::open;

    const REPORTER: Uuid = Uuid::from_u128(0x1);
    const AUTHOR: Uuid = Uuid::from_u128(0x2);
    const MODERATOR: Uuid = Uuid::from_u128(0x3);

    fn target() -> FlagTarget {
        FlagTarget {
            kind: FlagTargetKind::Nachricht,
            id: Uuid::from_u128(0x99),
        }
    }

    fn melden(reason: &str) -> FlagCommand {
        FlagCommand::Melden(Melden {
            target: target(),
            reason: reason.into(),
            by: REPORTER,
            author_of_target: Some(AUTHOR),
            key: [1; 32],
            nonce: [2; 24],
        })
    }

    fn raised() -> Vec<NewEvent> {
        given::<Flag>(&[]).when(&melden("beleidigend")).unwrap()
    }

    fn resolve(by: Uuid, by_verified: bool) -> FlagCommand {
        FlagCommand::Aufloesen(Aufloesen {
            outcome: FlagOutcome::Hidden,
            reason: "verstößt gegen die Regeln".into(),
            by,
            by_verified,
            key: [3; 32],
            nonce: [4; 24],
        })
    }

    fn decode<P: Payload>(e: &NewEvent) -> P {
        assert_eq!(e.event_type, P::TYPE);
        serde_json::from_value(e.payload.clone()).unwrap()
    }

    #[test]
    fn a_flag_opens_a_thread_with_a_sealed_reason() {
        let events = raised();
        let p: FlagRaised = decode(&events[0]);
        assert_eq!(
            (p.by, p.target, p.author_of_target),
            (REPORTER, target(), Some(AUTHOR))
        );
        assert_eq!(p.reason.kid, REPORTER);
        assert_eq!(open(&[1; 32], &p.reason).unwrap(), "beleidigend");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["target"]["kind"], "nachricht");
    }

    #[test]
    fn a_flag_needs_a_reason_and_is_raised_once() {
        let err = given::<Flag>(&[]).when(&melden("  ")).unwrap_err();
        assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "reason"));
        let err = given::<Flag>(&raised())
            .when(&melden("nochmal"))
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)));
    }

    #[test]
    fn a_verified_third_role_resolves_the_flag() {
        let events = given::<Flag>(&raised())
            .when(&resolve(MODERATOR, true))
            .unwrap();
        let p: FlagResolved = decode(&events[0]);
        assert_eq!((p.by, p.outcome), (MODERATOR, FlagOutcome::Hidden));
        assert_eq!(
            open(&[3; 32], &p.reason).unwrap(),
            "verstößt gegen die Regeln"
        );
        assert_eq!(serde_json::to_value(&p).unwrap()["outcome"], "hidden");
    }

    #[test]
    fn resolving_a_flag_on_ones_own_content_is_forbidden() {
        let err = given::<Flag>(&raised())
            .when(&resolve(AUTHOR, true))
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden(_)), "{err}");
    }

    #[test]
    fn resolving_ones_own_flag_is_forbidden() {
        let err = given::<Flag>(&raised())
            .when(&resolve(REPORTER, true))
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden(_)), "{err}");
    }

    #[test]
    fn an_unverified_role_may_not_resolve() {
        let err = given::<Flag>(&raised())
            .when(&resolve(MODERATOR, false))
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden(_)));
    }

    #[test]
    fn a_flag_is_resolved_once() {
        let mut history = raised();
        history.extend(
            given::<Flag>(&raised())
                .when(&resolve(MODERATOR, true))
                .unwrap(),
        );
        let err = given::<Flag>(&history)
            .when(&resolve(Uuid::from_u128(0x4), true))
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)));
    }

    #[test]
    fn resolving_an_unknown_flag_is_not_found() {
        let err = given::<Flag>(&[])
            .when(&resolve(MODERATOR, true))
            .unwrap_err();
        assert!(matches!(err, DomainError::NotFound(_)));
    }

    #[test]
    fn content_the_system_made_can_be_resolved_by_any_verified_third_role() {
        let mut m = match melden("spam") {
            FlagCommand::Melden(m) => m,
            FlagCommand::Aufloesen(_) => unreachable!(),
        };
        m.author_of_target = None;
        let history = given::<Flag>(&[]).when(&FlagCommand::Melden(m)).unwrap();
        assert!(given::<Flag>(&history).when(&resolve(AUTHOR, true)).is_ok());
    }
}
