//! Peer verification of roles and the admin actions that bootstrap it (DESIGN.md §4 "Peer
//! verification"). The events live on the verified role's own chain (the `Rolle` aggregate:
//! `RolleCommand::Bestaetigen` and `RolleCommand::AdminVerifizieren` decide with the functions
//! here), so two confirmations racing on two API instances are serialised by that chain.
//!
//! Choices beyond DESIGN.md:
//! - **Confirming** needs a registered, not deleted target (NOT_FOUND / CONFLICT), a confirmer
//!   other than the target (*self-confirmation is FORBIDDEN*: the input is well-formed, the
//!   caller just may not do it), an already-verified confirmer (FORBIDDEN), a target not yet
//!   verified (CONFLICT: no further confirmations are collected, there are no scores), and a
//!   confirmer who has not confirmed this role before (CONFLICT).
//! - The **second distinct confirmer** yields `VerifizierungBestaetigt` and, in the same
//!   decision, `RolleVerifiziert { verified_by: [first, second] }` in the order they confirmed.
//! - **Admin verification** (`weberei admin verify <rolle>`, for the first roles of an Ort): the
//!   caller first records `AdminActionExecuted { action: "verify_rolle", target: rolle }` (see
//!   [`admin_action`]) and then decides `AdminVerifizieren` with that event's id; the result is
//!   `RolleVerifiziert { verified_by: [], by_admin_action: Some(id) }`. A role that is already
//!   verified is a CONFLICT (decide before recording the admin action, so nothing is half done).
//! - **Admin rights** (`weberei admin grant <rolle>`) are nothing but
//!   `AdminActionExecuted { action: "grant_admin", target: rolle }`; a projection derives who is
//!   an admin from those events.

use ulid::Ulid;
use uuid::Uuid;

use crate::aggregate::NewEvent;
use crate::error::DomainError;
use crate::events::{AdminActionExecuted, RolleVerifiziert, VerifizierungBestaetigt};
use crate::rolle::Rolle;

/// How many distinct verified roles must confirm a role.
pub const CONFIRMERS_NEEDED: usize = 2;

/// `AdminActionExecuted.action` of `weberei admin verify <rolle>`.
pub const ACTION_VERIFY_ROLLE: &str = "verify_rolle";
/// `AdminActionExecuted.action` of `weberei admin grant <rolle>`.
pub const ACTION_GRANT_ADMIN: &str = "grant_admin";

/// Longest admin action name and detail.
pub const ACTION_MAX_CHARS: usize = 64;
pub const DETAIL_MAX_CHARS: usize = 2000;

/// Role `by` confirms that role `target` (the chain's role) is a real person of the Ort.
/// `by_verified` is a fact from outside.
#[derive(Debug, Clone)]
pub struct Bestaetigen {
    pub target: Uuid,
    pub by: Uuid,
    pub by_verified: bool,
}

fn usable(rolle: &Rolle) -> Result<(), DomainError> {
    if !rolle.is_registered() {
        return Err(DomainError::NotFound("there is no such Rolle".into()));
    }
    if rolle.deleted {
        return Err(DomainError::Conflict(
            "the Rolle was deleted and cannot be verified".into(),
        ));
    }
    if rolle.verified {
        return Err(DomainError::Conflict(
            "the Rolle is already verified".into(),
        ));
    }
    Ok(())
}

pub(crate) fn bestaetigen(rolle: &Rolle, b: &Bestaetigen) -> Result<Vec<NewEvent>, DomainError> {
    if !rolle.is_registered() {
        return Err(DomainError::NotFound("there is no such Rolle".into()));
    }
    if b.by == b.target {
        return Err(DomainError::Forbidden(
            "you cannot confirm yourself; ask two verified roles".into(),
        ));
    }
    if !b.by_verified {
        return Err(DomainError::Forbidden(
            "only verified roles may confirm others".into(),
        ));
    }
    usable(rolle)?;
    if rolle.confirmed_by.contains(&b.by) {
        return Err(DomainError::Conflict(
            "you have already confirmed this Rolle".into(),
        ));
    }
    let mut events = vec![NewEvent::from_payload(&VerifizierungBestaetigt {
        by: b.by,
    })?];
    let mut confirmers = rolle.confirmed_by.clone();
    confirmers.push(b.by);
    if confirmers.len() >= CONFIRMERS_NEEDED {
        events.push(NewEvent::from_payload(&RolleVerifiziert {
            verified_by: confirmers,
            by_admin_action: None,
        })?);
    }
    Ok(events)
}

pub(crate) fn admin_verifizieren(
    rolle: &Rolle,
    admin_action_id: Ulid,
) -> Result<Vec<NewEvent>, DomainError> {
    usable(rolle)?;
    Ok(vec![NewEvent::from_payload(&RolleVerifiziert {
        verified_by: Vec::new(),
        by_admin_action: Some(admin_action_id),
    })?])
}

/// An `AdminActionExecuted` event (system stream). `action` is a snake_case name of 1..=64
/// ASCII characters (`verify_rolle`, `grant_admin`, ...); `detail` at most 2000 characters,
/// no personal data.
pub fn admin_action(
    action: &str,
    target: Option<Uuid>,
    detail: &str,
) -> Result<NewEvent, DomainError> {
    let well_formed = !action.is_empty()
        && action.len() <= ACTION_MAX_CHARS
        && action.starts_with(|c: char| c.is_ascii_lowercase())
        && action
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err(DomainError::validation(
            "action",
            format!(
                "{action:?} is not an action name (a-z, 0-9 and _, at most {ACTION_MAX_CHARS})"
            ),
        ));
    }
    let detail = detail.trim();
    let chars = detail.chars().count();
    if chars > DETAIL_MAX_CHARS {
        return Err(DomainError::validation(
            "detail",
            format!("the detail has {chars} characters; at most {DETAIL_MAX_CHARS} are allowed"),
        ));
    }
    NewEvent::from_payload(&AdminActionExecuted {
        action: action.to_owned(),
        target,
        detail: detail.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregate;
    use crate::aggregate::testing::given;
    use crate::events::{EventType, Payload};
    use crate::rolle::{Registrieren, RolleCommand};

    const TARGET: Uuid = Uuid::from_u128(0x7A);
    const A: Uuid = Uuid::from_u128(0xA);
    const B: Uuid = Uuid::from_u128(0xB);

    fn registered() -> Vec<NewEvent> {
        given::<Rolle>(&[])
            .when(&RolleCommand::Registrieren(Registrieren {
                id: TARGET,
                name: "Anna".into(),
                lat: 50.9795,
                lng: 11.3235,
                key: [1; 32],
                nonce: [2; 24],
            }))
            .unwrap()
    }

    fn confirm(by: Uuid, by_verified: bool) -> RolleCommand {
        RolleCommand::Bestaetigen(Bestaetigen {
            target: TARGET,
            by,
            by_verified,
        })
    }

    fn then(history: &[NewEvent], cmd: &RolleCommand) -> Vec<NewEvent> {
        let mut all = history.to_vec();
        all.extend(given::<Rolle>(history).when(cmd).unwrap());
        all
    }

    fn decode<P: Payload>(e: &NewEvent) -> P {
        assert_eq!(e.event_type, P::TYPE);
        serde_json::from_value(e.payload.clone()).unwrap()
    }

    #[test]
    fn the_second_distinct_confirmer_verifies_the_role() {
        let once = given::<Rolle>(&registered())
            .when(&confirm(A, true))
            .unwrap();
        assert_eq!(once.len(), 1);
        assert_eq!(decode::<VerifizierungBestaetigt>(&once[0]).by, A);
        let history = then(&registered(), &confirm(A, true));
        let twice = given::<Rolle>(&history).when(&confirm(B, true)).unwrap();
        assert_eq!(twice.len(), 2);
        let v: RolleVerifiziert = decode(&twice[1]);
        assert_eq!(v.verified_by, vec![A, B]);
        assert_eq!(v.by_admin_action, None);
        let state = Rolle::fold(&crate::aggregate::testing::seal_all(
            None,
            &then(&history, &confirm(B, true)),
        ))
        .unwrap();
        assert!(state.verified);
    }

    #[test]
    fn confirming_oneself_is_forbidden() {
        let err = given::<Rolle>(&registered())
            .when(&confirm(TARGET, true))
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden(_)), "{err}");
    }

    #[test]
    fn an_unverified_confirmer_is_forbidden() {
        let err = given::<Rolle>(&registered())
            .when(&confirm(A, false))
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden(_)));
    }

    #[test]
    fn confirming_twice_is_a_conflict() {
        let history = then(&registered(), &confirm(A, true));
        let err = given::<Rolle>(&history)
            .when(&confirm(A, true))
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)), "{err}");
    }

    #[test]
    fn a_verified_role_takes_no_more_confirmations() {
        let history = then(&then(&registered(), &confirm(A, true)), &confirm(B, true));
        let err = given::<Rolle>(&history)
            .when(&confirm(Uuid::from_u128(0xC), true))
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)));
    }

    #[test]
    fn confirming_an_unknown_or_deleted_role_is_refused() {
        let err = given::<Rolle>(&[]).when(&confirm(A, true)).unwrap_err();
        assert!(matches!(err, DomainError::NotFound(_)));
        let deleted = then(&registered(), &RolleCommand::Loeschen { id: TARGET });
        let err = given::<Rolle>(&deleted)
            .when(&confirm(A, true))
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)));
    }

    #[test]
    fn an_admin_action_verifies_the_first_roles() {
        let id = Ulid::from_parts(1_800_000_000_000, 7);
        let cmd = RolleCommand::AdminVerifizieren {
            admin_action_id: id,
        };
        let events = given::<Rolle>(&registered()).when(&cmd).unwrap();
        let v: RolleVerifiziert = decode(&events[0]);
        assert!(v.verified_by.is_empty());
        assert_eq!(v.by_admin_action, Some(id));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["by_admin_action"], id.to_string());
        let err = given::<Rolle>(&then(&registered(), &cmd))
            .when(&cmd)
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)));
        let err = given::<Rolle>(&[]).when(&cmd).unwrap_err();
        assert!(matches!(err, DomainError::NotFound(_)));
    }

    #[test]
    fn admin_actions_have_a_name_and_a_bounded_detail() {
        let e = admin_action(ACTION_VERIFY_ROLLE, Some(TARGET), " erste Rolle ").unwrap();
        assert_eq!(e.event_type, EventType::AdminActionExecuted);
        let p: AdminActionExecuted = decode(&e);
        assert_eq!(
            (p.action.as_str(), p.target, p.detail.as_str()),
            ("verify_rolle", Some(TARGET), "erste Rolle")
        );
        for bad in ["", "Verify", "verify rolle", "1x", &"x".repeat(65)] {
            let err = admin_action(bad, None, "").unwrap_err();
            assert!(
                matches!(err, DomainError::Validation { ref field, .. } if field == "action"),
                "{bad:?}"
            );
        }
        let err = admin_action(ACTION_GRANT_ADMIN, None, &"x".repeat(2001)).unwrap_err();
        assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "detail"));
    }
}
