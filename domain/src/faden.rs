//! The Faden aggregate: a thread from a role to a Knoten (interesse, beitrag, mitarbeit).
//!
//! One (role, Knoten, typ) triple is one Faden with one chain for ever: its id is a UUIDv5 of
//! the triple ([`faden_id`]). Spinning it again renews it, also after it decayed (it revives on
//! the same chain). A Faden twisted into yarn never decays and has nothing to renew.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::aggregate::{Aggregate, NewEvent};
use crate::envelope::{Envelope, truncate_millis};
use crate::error::DomainError;
use crate::events::{EventType, FadenGesponnen, FadenTyp, FadenVerfallen, FadenVerzwirnt};
use crate::rules::is_due;

/// Namespace of the Faden ids (`23b9b76d-e3c1-4271-8331-9fbcd8760e05`). Fixed for ever:
/// changing it would split every existing thread from its renewals.
pub const FADEN_NAMESPACE: Uuid = Uuid::from_u128(0x23b9_b76d_e3c1_4271_8331_9fbc_d876_0e05);

/// The id of the thread from `rolle` to `knoten` of kind `typ`:
/// `UUIDv5(FADEN_NAMESPACE, "<rolle>:<knoten>:<typ>")` with both UUIDs in lowercase hyphenated
/// form and `typ` as in the events (`interesse`, `beitrag`, `mitarbeit`).
pub fn faden_id(rolle: Uuid, knoten: Uuid, typ: FadenTyp) -> Uuid {
    let name = format!(
        "{}:{}:{}",
        rolle.hyphenated(),
        knoten.hyphenated(),
        typ.as_str()
    );
    Uuid::new_v5(&FADEN_NAMESPACE, name.as_bytes())
}

/// What is known about one Faden from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faden {
    /// `None` until the first `FadenGesponnen`.
    pub spun: Option<Spun>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spun {
    pub from_rolle: Uuid,
    pub to_knoten: Uuid,
    pub typ: FadenTyp,
    /// Expiry of the latest spin.
    pub expires_at: DateTime<Utc>,
    /// Decayed since the latest spin (a new spin revives it).
    pub decayed: bool,
    pub yarn: bool,
}

/// Spin (or renew) the thread `faden_id(rolle, knoten, typ)`. `now` and `ttl` are facts from
/// outside; `knoten_alive` says whether the Knoten exists and has not faded (the caller looks it
/// up: not decayed, and yarn or not yet expired).
#[derive(Debug, Clone)]
pub struct Spinnen {
    pub rolle: Uuid,
    pub knoten: Uuid,
    pub typ: FadenTyp,
    pub now: DateTime<Utc>,
    pub ttl: Duration,
    pub knoten_alive: bool,
}

#[derive(Debug, Clone)]
pub enum FadenCommand {
    Spinnen(Spinnen),
    /// The decay timer: decays the Faden if it is due at `now`; otherwise nothing.
    Verfallen {
        now: DateTime<Utc>,
    },
    /// The yarn timer: twist this thread into the yarn of `knoten`.
    Verzwirnen {
        knoten: Uuid,
    },
}

impl Aggregate for Faden {
    const TYPE: crate::AggregateType = crate::AggregateType::Faden;

    type Command = FadenCommand;

    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError> {
        match event.known_type() {
            Some(EventType::FadenGesponnen) => {
                let p: FadenGesponnen = event.decode()?;
                let yarn = self.spun.as_ref().is_some_and(|s| s.yarn);
                self.spun = Some(Spun {
                    from_rolle: p.from_rolle,
                    to_knoten: p.to_knoten,
                    typ: p.typ,
                    expires_at: p.expires_at,
                    decayed: false,
                    yarn,
                });
            }
            Some(EventType::FadenVerfallen) => {
                if let Some(s) = self.spun.as_mut() {
                    s.decayed = true;
                }
            }
            Some(EventType::FadenVerzwirnt) => {
                if let Some(s) = self.spun.as_mut() {
                    s.yarn = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn decide(&self, cmd: &FadenCommand) -> Result<Vec<NewEvent>, DomainError> {
        match cmd {
            FadenCommand::Spinnen(s) => self.spinnen(s),
            FadenCommand::Verfallen { now } => self.verfallen(*now),
            FadenCommand::Verzwirnen { knoten } => self.verzwirnen(*knoten),
        }
    }
}

fn not_found() -> DomainError {
    DomainError::NotFound("there is no such Faden".into())
}

impl Faden {
    fn spinnen(&self, s: &Spinnen) -> Result<Vec<NewEvent>, DomainError> {
        if !s.knoten_alive {
            return Err(DomainError::Conflict(
                "threads can only be spun to Knoten that have not faded".into(),
            ));
        }
        if let Some(spun) = &self.spun {
            if (spun.from_rolle, spun.to_knoten, spun.typ) != (s.rolle, s.knoten, s.typ) {
                // The id is derived from the triple: a mismatch is a caller bug, not a renewal.
                return Err(DomainError::Conflict(
                    "this Faden belongs to another role, Knoten or kind".into(),
                ));
            }
            if spun.yarn {
                // Yarn never decays: there is nothing to renew.
                return Ok(Vec::new());
            }
        }
        if s.ttl <= Duration::zero() {
            return Err(DomainError::validation(
                "ttl",
                "a thread must live for some time",
            ));
        }
        Ok(vec![NewEvent::from_payload(&FadenGesponnen {
            from_rolle: s.rolle,
            to_knoten: s.knoten,
            typ: s.typ,
            expires_at: truncate_millis(s.now + s.ttl),
        })?])
    }

    fn verfallen(&self, now: DateTime<Utc>) -> Result<Vec<NewEvent>, DomainError> {
        let s = self.spun.as_ref().ok_or_else(not_found)?;
        if s.yarn || s.decayed || !is_due(s.expires_at, now) {
            return Ok(Vec::new());
        }
        Ok(vec![NewEvent::from_payload(&FadenVerfallen {
            expired_at: s.expires_at,
        })?])
    }

    fn verzwirnen(&self, knoten: Uuid) -> Result<Vec<NewEvent>, DomainError> {
        let s = self.spun.as_ref().ok_or_else(not_found)?;
        if s.to_knoten != knoten {
            return Err(DomainError::Conflict(
                "a thread can only be twisted into the yarn of its own Knoten".into(),
            ));
        }
        if s.yarn || s.decayed {
            return Ok(Vec::new());
        }
        Ok(vec![NewEvent::from_payload(&FadenVerzwirnt { knoten })?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    const ROLLE: Uuid = Uuid::from_u128(0xA);
    const KNOTEN: Uuid = Uuid::from_u128(0xB);

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn spin_at(now: DateTime<Utc>) -> FadenCommand {
        FadenCommand::Spinnen(Spinnen {
            rolle: ROLLE,
            knoten: KNOTEN,
            typ: FadenTyp::Mitarbeit,
            now,
            ttl: Duration::days(7),
            knoten_alive: true,
        })
    }

    fn decided(history: &[NewEvent], cmd: &FadenCommand) -> Vec<NewEvent> {
        let mut all = history.to_vec();
        all.extend(given::<Faden>(history).when(cmd).unwrap());
        all
    }

    fn state(history: &[NewEvent]) -> Spun {
        let envs = crate::aggregate::testing::seal_all(None, history);
        Faden::fold(&envs).unwrap().spun.unwrap()
    }

    #[test]
    fn the_faden_id_is_stable_and_depends_on_the_whole_triple() {
        let id = faden_id(ROLLE, KNOTEN, FadenTyp::Interesse);
        // A test vector: this value must never change (see FADEN_NAMESPACE).
        assert_eq!(
            id,
            Uuid::new_v5(
                &FADEN_NAMESPACE,
                b"00000000-0000-0000-0000-00000000000a:00000000-0000-0000-0000-00000000000b:interesse"
            )
        );
        assert_eq!(id.get_version_num(), 5);
        assert_ne!(id, faden_id(ROLLE, KNOTEN, FadenTyp::Beitrag));
        assert_ne!(id, faden_id(KNOTEN, ROLLE, FadenTyp::Interesse));
    }

    #[test]
    fn spinning_sets_expiry_seven_days_ahead() {
        let events = given::<Faden>(&[]).when(&spin_at(t0())).unwrap();
        assert_eq!(events.len(), 1);
        let p: FadenGesponnen = serde_json::from_value(events[0].payload.clone()).unwrap();
        assert_eq!(p.expires_at, t0() + Duration::days(7));
        assert_eq!((p.from_rolle, p.to_knoten), (ROLLE, KNOTEN));
    }

    #[test]
    fn a_faden_decays_at_exactly_seven_days_and_not_a_millisecond_before() {
        let spun = decided(&[], &spin_at(t0()));
        let expires = t0() + Duration::days(7);
        let early = given::<Faden>(&spun)
            .when(&FadenCommand::Verfallen {
                now: expires - Duration::milliseconds(1),
            })
            .unwrap();
        assert!(early.is_empty());
        let due = given::<Faden>(&spun)
            .when(&FadenCommand::Verfallen { now: expires })
            .unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].event_type, EventType::FadenVerfallen);
        let p: FadenVerfallen = serde_json::from_value(due[0].payload.clone()).unwrap();
        assert_eq!(p.expired_at, expires);
    }

    #[test]
    fn renewal_moves_the_expiry() {
        let spun = decided(&[], &spin_at(t0()));
        let renewed = decided(&spun, &spin_at(t0() + Duration::days(5)));
        let s = state(&renewed);
        assert_eq!(s.expires_at, t0() + Duration::days(12));
        let at_old_expiry = given::<Faden>(&renewed)
            .when(&FadenCommand::Verfallen {
                now: t0() + Duration::days(7),
            })
            .unwrap();
        assert!(at_old_expiry.is_empty(), "the renewed thread is not due");
    }

    #[test]
    fn spinning_a_decayed_faden_again_revives_it_on_the_same_chain() {
        let spun = decided(&[], &spin_at(t0()));
        let faded = decided(
            &spun,
            &FadenCommand::Verfallen {
                now: t0() + Duration::days(8),
            },
        );
        assert!(state(&faded).decayed);
        let again = given::<Faden>(&faded)
            .when(&FadenCommand::Verfallen {
                now: t0() + Duration::days(9),
            })
            .unwrap();
        assert!(again.is_empty(), "a decayed thread decays once");
        let revived = decided(&faded, &spin_at(t0() + Duration::days(10)));
        let s = state(&revived);
        assert!(!s.decayed);
        assert_eq!(s.expires_at, t0() + Duration::days(17));
        let due = given::<Faden>(&revived)
            .when(&FadenCommand::Verfallen {
                now: t0() + Duration::days(17),
            })
            .unwrap();
        assert_eq!(due.len(), 1, "the revived thread decays again when due");
    }

    #[test]
    fn a_yarn_faden_never_decays_and_has_nothing_to_renew() {
        let spun = decided(&[], &spin_at(t0()));
        let yarn = decided(&spun, &FadenCommand::Verzwirnen { knoten: KNOTEN });
        assert_eq!(yarn.len(), 2);
        assert!(state(&yarn).yarn);
        let later = given::<Faden>(&yarn)
            .when(&FadenCommand::Verfallen {
                now: t0() + Duration::days(365),
            })
            .unwrap();
        assert!(later.is_empty());
        let renew = given::<Faden>(&yarn)
            .when(&spin_at(t0() + Duration::days(3)))
            .unwrap();
        assert!(renew.is_empty());
        let twice = given::<Faden>(&yarn)
            .when(&FadenCommand::Verzwirnen { knoten: KNOTEN })
            .unwrap();
        assert!(twice.is_empty());
    }

    #[test]
    fn a_decayed_faden_is_not_twisted() {
        let spun = decided(&[], &spin_at(t0()));
        let faded = decided(
            &spun,
            &FadenCommand::Verfallen {
                now: t0() + Duration::days(7),
            },
        );
        let none = given::<Faden>(&faded)
            .when(&FadenCommand::Verzwirnen { knoten: KNOTEN })
            .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn spinning_to_a_faded_knoten_is_a_conflict() {
        let FadenCommand::Spinnen(mut s) = spin_at(t0()) else {
            unreachable!()
        };
        s.knoten_alive = false;
        let err = given::<Faden>(&[])
            .when(&FadenCommand::Spinnen(s))
            .unwrap_err();
        assert_eq!(
            err,
            DomainError::Conflict("threads can only be spun to Knoten that have not faded".into())
        );
    }

    #[test]
    fn timers_on_a_missing_faden_are_not_found() {
        for cmd in [
            FadenCommand::Verfallen { now: t0() },
            FadenCommand::Verzwirnen { knoten: KNOTEN },
        ] {
            let err = given::<Faden>(&[]).when(&cmd).unwrap_err();
            assert!(matches!(err, DomainError::NotFound(_)));
        }
    }
}
