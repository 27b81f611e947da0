//! The Delegation aggregate: the outgoing delegation of one role (DESIGN.md §4 "Governance":
//! 1:1, one active outgoing delegation per role, with `valid_until`, revocable).
//!
//! One chain per delegating role for ever: its id is [`delegation_id`] (a UUIDv5 of the role
//! id), so "one active outgoing delegation per role" is one chain, and two concurrent
//! delegations of the same role are serialised by the chain's expected sequence.
//!
//! Choices beyond DESIGN.md:
//! - A delegation is **active** from `DelegationErstellt` until `DelegationWiderrufen`,
//!   `DelegationAbgelaufen`, or `now >= valid_until` (whichever comes first): a lapsed
//!   delegation whose expiry the jobs worker has not recorded yet is no longer active.
//! - **Creating** checks: not to oneself (VALIDATION on `to`), `to` must exist (NOT_FOUND; the
//!   caller looks it up), `valid_until` after `now` (VALIDATION on `valid_until`; `valid_until ==
//!   now` would lapse at once, so it counts as past). It is stored to the millisecond. Creating
//!   does not require verification: only delegations of roles entitled to vote are passed to
//!   the decision (the caller filters), so an unverified role's delegation counts from the
//!   moment it is verified.
//! - A new delegation while one is active **replaces** it: `DelegationErstellt.replaces` is the
//!   previous delegate. The very same delegation again (same `to`, same `valid_until`) yields
//!   nothing. If the previous one lapsed without its `DelegationAbgelaufen`, that is recorded
//!   first, so every delegation on the chain has a recorded end.
//! - **Revoking** with none active is a CONFLICT (also when the active one has lapsed: its
//!   expiry is the jobs worker's to record).
//! - **Expiring** (jobs worker) is a no-op unless a delegation is active by its events and
//!   `now >= valid_until`, so the timer may fire early, late or twice.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::aggregate::{Aggregate, NewEvent};
use crate::envelope::{Envelope, truncate_millis};
use crate::error::DomainError;
use crate::events::{DelegationAbgelaufen, DelegationErstellt, DelegationWiderrufen, EventType};
use crate::rules::is_due;

/// Namespace of the Delegation ids (`ad87dcea-0148-4c26-ba55-b08a63c033c9`). Fixed for ever.
pub const DELEGATION_NAMESPACE: Uuid = Uuid::from_u128(0xad87_dcea_0148_4c26_ba55_b08a_63c0_33c9);

/// The id of the Delegation chain of role `from`:
/// `UUIDv5(DELEGATION_NAMESPACE, "<from>")`, the UUID in lowercase hyphenated form.
pub fn delegation_id(from: Uuid) -> Uuid {
    Uuid::new_v5(
        &DELEGATION_NAMESPACE,
        from.hyphenated().to_string().as_bytes(),
    )
}

/// What is known about one role's outgoing delegation from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delegation {
    /// The delegating role, once it delegated.
    pub from: Option<Uuid>,
    /// The latest delegation not revoked or recorded as expired (it may have lapsed: see
    /// [`Delegation::active_at`]).
    pub current: Option<Current>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub to: Uuid,
    pub valid_until: DateTime<Utc>,
}

impl Delegation {
    /// The delegation in force at `now`, if any.
    pub fn active_at(&self, now: DateTime<Utc>) -> Option<Current> {
        self.current.filter(|c| !is_due(c.valid_until, now))
    }
}

/// Delegate the vote of `from` to `to` until `valid_until`. `to_exists` says whether `to` is a
/// registered, not deleted role (the caller looks it up).
#[derive(Debug, Clone)]
pub struct Erstellen {
    pub from: Uuid,
    pub to: Uuid,
    pub valid_until: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub to_exists: bool,
}

#[derive(Debug, Clone)]
pub enum DelegationCommand {
    Erstellen(Erstellen),
    /// The delegator revokes its active delegation.
    Widerrufen {
        now: DateTime<Utc>,
    },
    /// The expiry timer: records the expiry if the delegation is due at `now`; else nothing.
    Ablaufen {
        now: DateTime<Utc>,
    },
}

impl Aggregate for Delegation {
    const TYPE: crate::AggregateType = crate::AggregateType::Delegation;

    type Command = DelegationCommand;

    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError> {
        match event.known_type() {
            Some(EventType::DelegationErstellt) => {
                let p: DelegationErstellt = event.decode()?;
                self.from = Some(p.from);
                self.current = Some(Current {
                    to: p.to,
                    valid_until: p.valid_until,
                });
            }
            Some(EventType::DelegationWiderrufen) | Some(EventType::DelegationAbgelaufen) => {
                self.current = None;
            }
            _ => {}
        }
        Ok(())
    }

    fn decide(&self, cmd: &DelegationCommand) -> Result<Vec<NewEvent>, DomainError> {
        match cmd {
            DelegationCommand::Erstellen(e) => self.erstellen(e),
            DelegationCommand::Widerrufen { now } => self.widerrufen(*now),
            DelegationCommand::Ablaufen { now } => self.ablaufen(*now),
        }
    }
}

impl Delegation {
    fn erstellen(&self, e: &Erstellen) -> Result<Vec<NewEvent>, DomainError> {
        if e.from == e.to {
            return Err(DomainError::validation(
                "to",
                "you cannot delegate your vote to yourself",
            ));
        }
        if !e.to_exists {
            return Err(DomainError::NotFound(format!(
                "there is no Rolle {} to delegate to",
                e.to
            )));
        }
        let valid_until = truncate_millis(e.valid_until);
        if valid_until <= e.now {
            return Err(DomainError::validation(
                "valid_until",
                format!(
                    "a delegation must be valid until a time after now ({})",
                    e.now.to_rfc3339()
                ),
            ));
        }
        if self.from.is_some_and(|from| from != e.from) {
            // The chain id is derived from the delegator: a mismatch is a caller bug.
            return Err(DomainError::Conflict(
                "this Delegation chain belongs to another role".into(),
            ));
        }
        let mut events = Vec::with_capacity(2);
        let replaces = match (self.current, self.active_at(e.now)) {
            (_, Some(active)) if active.to == e.to && active.valid_until == valid_until => {
                return Ok(Vec::new());
            }
            (_, Some(active)) => Some(active.to),
            (Some(lapsed), None) => {
                events.push(NewEvent::from_payload(&DelegationAbgelaufen {
                    from: e.from,
                    to: lapsed.to,
                    valid_until: lapsed.valid_until,
                })?);
                None
            }
            (None, None) => None,
        };
        events.push(NewEvent::from_payload(&DelegationErstellt {
            from: e.from,
            to: e.to,
            valid_until,
            replaces,
        })?);
        Ok(events)
    }

    fn widerrufen(&self, now: DateTime<Utc>) -> Result<Vec<NewEvent>, DomainError> {
        let (Some(from), Some(active)) = (self.from, self.active_at(now)) else {
            return Err(DomainError::Conflict(
                "there is no active delegation to revoke".into(),
            ));
        };
        Ok(vec![NewEvent::from_payload(&DelegationWiderrufen {
            from,
            to: active.to,
        })?])
    }

    fn ablaufen(&self, now: DateTime<Utc>) -> Result<Vec<NewEvent>, DomainError> {
        match (self.from, self.current) {
            (Some(from), Some(c)) if is_due(c.valid_until, now) => {
                Ok(vec![NewEvent::from_payload(&DelegationAbgelaufen {
                    from,
                    to: c.to,
                    valid_until: c.valid_until,
                })?])
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;
    use crate::events::Payload;
    use chrono::Duration;

    const FROM: Uuid = Uuid::from_u128(0xF);
    const TO: Uuid = Uuid::from_u128(0x7);
    const OTHER: Uuid = Uuid::from_u128(0x8);

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn create(to: Uuid, valid_until: DateTime<Utc>, now: DateTime<Utc>) -> DelegationCommand {
        DelegationCommand::Erstellen(Erstellen {
            from: FROM,
            to,
            valid_until,
            now,
            to_exists: true,
        })
    }

    fn decode<P: Payload>(e: &NewEvent) -> P {
        assert_eq!(e.event_type, P::TYPE);
        serde_json::from_value(e.payload.clone()).unwrap()
    }

    fn delegated() -> Vec<NewEvent> {
        given::<Delegation>(&[])
            .when(&create(TO, t0() + Duration::days(30), t0()))
            .unwrap()
    }

    #[test]
    fn the_chain_id_is_derived_from_the_delegator_only() {
        assert_eq!(delegation_id(FROM), delegation_id(FROM));
        assert_ne!(delegation_id(FROM), delegation_id(TO));
        assert_eq!(delegation_id(FROM).get_version_num(), 5);
    }

    #[test]
    fn a_role_delegates_to_another_until_a_time() {
        let events = delegated();
        assert_eq!(events.len(), 1);
        let p: DelegationErstellt = decode(&events[0]);
        assert_eq!(
            (p.from, p.to, p.valid_until, p.replaces),
            (FROM, TO, t0() + Duration::days(30), None)
        );
    }

    #[test]
    fn delegating_to_oneself_is_a_validation_error() {
        let err = given::<Delegation>(&[])
            .when(&create(FROM, t0() + Duration::days(1), t0()))
            .unwrap_err();
        assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "to"));
    }

    #[test]
    fn delegating_to_an_unknown_role_is_not_found() {
        let err = given::<Delegation>(&[])
            .when(&DelegationCommand::Erstellen(Erstellen {
                from: FROM,
                to: TO,
                valid_until: t0() + Duration::days(1),
                now: t0(),
                to_exists: false,
            }))
            .unwrap_err();
        assert!(matches!(err, DomainError::NotFound(_)));
    }

    #[test]
    fn a_valid_until_in_the_past_or_now_is_a_validation_error() {
        for until in [t0() - Duration::days(1), t0()] {
            let err = given::<Delegation>(&[])
                .when(&create(TO, until, t0()))
                .unwrap_err();
            assert!(
                matches!(err, DomainError::Validation { ref field, .. } if field == "valid_until")
            );
        }
    }

    #[test]
    fn a_new_delegation_replaces_the_active_one_and_records_it() {
        let events = given::<Delegation>(&delegated())
            .when(&create(
                OTHER,
                t0() + Duration::days(5),
                t0() + Duration::days(1),
            ))
            .unwrap();
        assert_eq!(events.len(), 1);
        let p: DelegationErstellt = decode(&events[0]);
        assert_eq!((p.to, p.replaces), (OTHER, Some(TO)));
    }

    #[test]
    fn the_same_delegation_again_yields_nothing() {
        let again = given::<Delegation>(&delegated())
            .when(&create(
                TO,
                t0() + Duration::days(30),
                t0() + Duration::days(1),
            ))
            .unwrap();
        assert!(again.is_empty());
    }

    #[test]
    fn a_lapsed_delegation_is_recorded_as_expired_before_a_new_one() {
        let later = t0() + Duration::days(31);
        let events = given::<Delegation>(&delegated())
            .when(&create(OTHER, later + Duration::days(1), later))
            .unwrap();
        assert_eq!(events.len(), 2);
        let gone: DelegationAbgelaufen = decode(&events[0]);
        assert_eq!((gone.to, gone.valid_until), (TO, t0() + Duration::days(30)));
        let p: DelegationErstellt = decode(&events[1]);
        assert_eq!((p.to, p.replaces), (OTHER, None));
    }

    #[test]
    fn revoking_ends_the_active_delegation_and_revoking_none_is_a_conflict() {
        let mut history = delegated();
        let revoked = given::<Delegation>(&history)
            .when(&DelegationCommand::Widerrufen { now: t0() })
            .unwrap();
        let p: DelegationWiderrufen = decode(&revoked[0]);
        assert_eq!((p.from, p.to), (FROM, TO));
        history.extend(revoked);
        for h in [&history[..], &[][..]] {
            let err = given::<Delegation>(h)
                .when(&DelegationCommand::Widerrufen { now: t0() })
                .unwrap_err();
            assert!(matches!(err, DomainError::Conflict(_)));
        }
        let lapsed = given::<Delegation>(&delegated())
            .when(&DelegationCommand::Widerrufen {
                now: t0() + Duration::days(30),
            })
            .unwrap_err();
        assert!(matches!(lapsed, DomainError::Conflict(_)));
    }

    #[test]
    fn expiry_is_recorded_once_at_valid_until_and_not_before() {
        let until = t0() + Duration::days(30);
        let early = given::<Delegation>(&delegated())
            .when(&DelegationCommand::Ablaufen {
                now: until - Duration::milliseconds(1),
            })
            .unwrap();
        assert!(early.is_empty());
        let mut history = delegated();
        let expired = given::<Delegation>(&history)
            .when(&DelegationCommand::Ablaufen { now: until })
            .unwrap();
        let p: DelegationAbgelaufen = decode(&expired[0]);
        assert_eq!((p.from, p.to, p.valid_until), (FROM, TO, until));
        history.extend(expired);
        let twice = given::<Delegation>(&history)
            .when(&DelegationCommand::Ablaufen { now: until })
            .unwrap();
        assert!(twice.is_empty());
        let never = given::<Delegation>(&[])
            .when(&DelegationCommand::Ablaufen { now: until })
            .unwrap();
        assert!(never.is_empty());
    }

    #[test]
    fn a_chain_of_another_delegator_is_a_conflict() {
        let err = given::<Delegation>(&delegated())
            .when(&DelegationCommand::Erstellen(Erstellen {
                from: OTHER,
                to: TO,
                valid_until: t0() + Duration::days(1),
                now: t0(),
                to_exists: true,
            }))
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)));
    }
}
