//! The Rolle aggregate: a person's role. Its name is sealed with the role's data key from the
//! first event on; its home is a coarse H3 cell. Deleting the role (`UserDeleted`) is the signal
//! to destroy the key (crypto-shredding): the events stay and still verify, the name becomes
//! unreadable and an alias stays for the audit trail.
//!
//! Peer verification (`VerifizierungBestaetigt`, `RolleVerifiziert`) lives on this chain too;
//! its rules and choices are documented in [`crate::verification`].

use uuid::Uuid;

use crate::aggregate::{Aggregate, NewEvent};
use crate::envelope::Envelope;
use crate::error::DomainError;
use crate::events::{
    EventType, RolleRegistriert, RolleVerifiziert, UserDeleted, VerifizierungBestaetigt,
};
use crate::geo::{HOME_RES, Point};
use crate::privacy::{KEY_BYTES, NONCE_BYTES, seal};

/// Longest role name, in characters (after trimming).
pub const NAME_MAX_CHARS: usize = 60;

/// What is known about one Rolle from its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rolle {
    /// Home cell at [`HOME_RES`] (hex), once registered.
    pub home_h3: Option<String>,
    pub deleted: bool,
    /// The pseudonym shown after deletion.
    pub alias: Option<String>,
    /// Distinct roles that confirmed this one, in order (`VerifizierungBestaetigt`).
    pub confirmed_by: Vec<Uuid>,
    /// Since `RolleVerifiziert`.
    pub verified: bool,
}

/// Register role `id`. `key` is its new data key and `nonce` a fresh random nonce (the caller
/// generates and stores the key; it never goes into an event).
#[derive(Debug, Clone)]
pub struct Registrieren {
    pub id: Uuid,
    pub name: String,
    pub lat: f64,
    pub lng: f64,
    pub key: [u8; KEY_BYTES],
    pub nonce: [u8; NONCE_BYTES],
}

#[derive(Debug, Clone)]
pub enum RolleCommand {
    Registrieren(Registrieren),
    /// Delete role `id`; the caller destroys its data key once `UserDeleted` is stored.
    Loeschen {
        id: Uuid,
    },
    /// A verified role confirms this one (see [`crate::verification`]).
    Bestaetigen(crate::verification::Bestaetigen),
    /// An admin action verifies this role (the first roles of an Ort). `admin_action_id` is the
    /// envelope id of the `AdminActionExecuted` event that ordered it.
    AdminVerifizieren {
        admin_action_id: ulid::Ulid,
    },
}

impl Aggregate for Rolle {
    const TYPE: crate::AggregateType = crate::AggregateType::Rolle;

    type Command = RolleCommand;

    fn apply(&mut self, event: &Envelope) -> Result<(), DomainError> {
        match event.known_type() {
            Some(EventType::RolleRegistriert) => {
                let p: RolleRegistriert = event.decode()?;
                self.home_h3 = Some(p.home_h3);
            }
            Some(EventType::UserDeleted) => {
                let p: UserDeleted = event.decode()?;
                self.deleted = true;
                self.alias = Some(p.alias);
            }
            Some(EventType::VerifizierungBestaetigt) => {
                let p: VerifizierungBestaetigt = event.decode()?;
                if !self.confirmed_by.contains(&p.by) {
                    self.confirmed_by.push(p.by);
                }
            }
            Some(EventType::RolleVerifiziert) => {
                let _: RolleVerifiziert = event.decode()?;
                self.verified = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn decide(&self, cmd: &RolleCommand) -> Result<Vec<NewEvent>, DomainError> {
        match cmd {
            RolleCommand::Registrieren(r) => self.registrieren(r),
            RolleCommand::Loeschen { id } => self.loeschen(*id),
            RolleCommand::Bestaetigen(b) => crate::verification::bestaetigen(self, b),
            RolleCommand::AdminVerifizieren { admin_action_id } => {
                crate::verification::admin_verifizieren(self, *admin_action_id)
            }
        }
    }
}

/// The pseudonym of a deleted role: `Gelöschte Rolle ` + the first 8 hex digits of its id.
pub fn deleted_alias(id: Uuid) -> String {
    let hex = id.simple().to_string();
    format!("Gelöschte Rolle {}", &hex[..8])
}

impl Rolle {
    pub fn is_registered(&self) -> bool {
        self.home_h3.is_some()
    }

    fn registrieren(&self, r: &Registrieren) -> Result<Vec<NewEvent>, DomainError> {
        let name = r.name.trim();
        if name.is_empty() {
            return Err(DomainError::validation(
                "name",
                "the name must not be empty",
            ));
        }
        let chars = name.chars().count();
        if chars > NAME_MAX_CHARS {
            return Err(DomainError::validation(
                "name",
                format!("the name has {chars} characters; at most {NAME_MAX_CHARS} are allowed"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(DomainError::validation(
                "name",
                "the name must not contain control characters",
            ));
        }
        let point = Point::new(r.lat, r.lng)?;
        if self.is_registered() {
            return Err(DomainError::Conflict(format!(
                "Rolle {} is already registered",
                r.id
            )));
        }
        let sealed = seal(&r.key, &r.nonce, r.id, name)
            .map_err(|_| DomainError::validation("name", "the name could not be sealed"))?;
        Ok(vec![NewEvent::from_payload(&RolleRegistriert {
            name: sealed,
            home_h3: point.cell(HOME_RES).to_string(),
        })?])
    }

    fn loeschen(&self, id: Uuid) -> Result<Vec<NewEvent>, DomainError> {
        if !self.is_registered() {
            return Err(DomainError::NotFound("there is no such Rolle".into()));
        }
        if self.deleted {
            return Ok(Vec::new());
        }
        Ok(vec![NewEvent::from_payload(&UserDeleted {
            alias: deleted_alias(id),
        })?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;
    use crate::privacy::open;

    const ID: Uuid = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);

    fn register(name: &str) -> RolleCommand {
        RolleCommand::Registrieren(Registrieren {
            id: ID,
            name: name.into(),
            lat: 50.9795,
            lng: 11.3235,
            key: [1; 32],
            nonce: [2; 24],
        })
    }

    #[test]
    fn registering_seals_the_name_and_homes_the_role_in_a_coarse_cell() {
        let events = given::<Rolle>(&[])
            .when(&register("  Anna Weber "))
            .unwrap();
        assert_eq!(events.len(), 1);
        let p: RolleRegistriert = serde_json::from_value(events[0].payload.clone()).unwrap();
        assert_eq!(p.name.kid, ID);
        assert!(!p.name.ct.contains("Anna"));
        assert_eq!(open(&[1; 32], &p.name).unwrap(), "Anna Weber");
        let cell: h3o::CellIndex = p.home_h3.parse().unwrap();
        assert_eq!(cell.resolution(), HOME_RES);
    }

    #[test]
    fn bad_names_are_refused_naming_the_field() {
        for bad in ["", "  ", &"x".repeat(NAME_MAX_CHARS + 1), "a\nb"] {
            let err = given::<Rolle>(&[]).when(&register(bad)).unwrap_err();
            assert!(
                matches!(err, DomainError::Validation { ref field, .. } if field == "name"),
                "{bad:?}: {err}"
            );
        }
        assert!(
            given::<Rolle>(&[])
                .when(&register(&"ü".repeat(NAME_MAX_CHARS)))
                .is_ok()
        );
    }

    #[test]
    fn a_home_outside_the_globe_is_refused() {
        let RolleCommand::Registrieren(mut r) = register("Anna") else {
            unreachable!()
        };
        r.lat = 123.0;
        let err = given::<Rolle>(&[])
            .when(&RolleCommand::Registrieren(r))
            .unwrap_err();
        assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "lat"));
    }

    #[test]
    fn registering_twice_is_a_conflict() {
        let first = given::<Rolle>(&[]).when(&register("Anna")).unwrap();
        let err = given::<Rolle>(&first).when(&register("Anna")).unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)));
    }

    #[test]
    fn a_deleted_role_gets_user_deleted_once_with_its_alias() {
        let mut history = given::<Rolle>(&[]).when(&register("Anna")).unwrap();
        let deleted = given::<Rolle>(&history)
            .when(&RolleCommand::Loeschen { id: ID })
            .unwrap();
        assert_eq!(deleted.len(), 1);
        let p: UserDeleted = serde_json::from_value(deleted[0].payload.clone()).unwrap();
        assert_eq!(p.alias, "Gelöschte Rolle 12345678");
        history.extend(deleted);
        let again = given::<Rolle>(&history)
            .when(&RolleCommand::Loeschen { id: ID })
            .unwrap();
        assert!(again.is_empty());
        let err = given::<Rolle>(&history)
            .when(&register("Anna"))
            .unwrap_err();
        assert!(
            matches!(err, DomainError::Conflict(_)),
            "no re-registration on a deleted chain"
        );
    }

    #[test]
    fn deleting_an_unknown_role_is_not_found() {
        let err = given::<Rolle>(&[])
            .when(&RolleCommand::Loeschen { id: ID })
            .unwrap_err();
        assert!(matches!(err, DomainError::NotFound(_)));
    }
}
