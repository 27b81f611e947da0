//! Unit tests of the Antrag aggregate: filing, objections, votes and the decision.

use super::*;
use crate::aggregate::testing::given;
use crate::events::Payload;
use crate::geo::{Point, WEAVERY_RES};
use crate::governance::audit_decision;
use crate::privacy::open;
use serde_json::json;

const FILER: Uuid = Uuid::from_u128(0xF1);
const A: Uuid = Uuid::from_u128(0xA);
const B: Uuid = Uuid::from_u128(0xB);
const C: Uuid = Uuid::from_u128(0xC);

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn deadline() -> DateTime<Utc> {
    t0() + Duration::days(7)
}

fn weberei() -> String {
    Point::new(50.9795, 11.3235)
        .unwrap()
        .cell(WEAVERY_RES)
        .to_string()
}

fn stellen() -> Stellen {
    Stellen {
        id: Uuid::from_u128(0xA17A),
        title: "  Bank am Teich  ".into(),
        content: Some(json!({"text": "Eine Bank für alle"})),
        weavery_h3: weberei(),
        deadline: deadline(),
        now: t0(),
        min_deadline: Duration::days(3),
        by: FILER,
        by_verified: true,
    }
}

fn filed() -> Vec<NewEvent> {
    given::<Antrag>(&[])
        .when(&AntragCommand::Stellen(stellen()))
        .unwrap()
}

fn with(more: &[NewEvent]) -> Vec<NewEvent> {
    let mut events = filed();
    events.extend_from_slice(more);
    events
}

fn vote(by: Uuid, vote: Vote) -> AntragCommand {
    AntragCommand::Abstimmen(Abstimmen {
        by,
        vote,
        now: t0() + Duration::days(1),
        by_verified: true,
    })
}

fn voted(by: Uuid, vote: Vote) -> NewEvent {
    NewEvent::from_payload(&StimmeAbgegeben { by, vote }).unwrap()
}

fn object(by: Uuid, now: DateTime<Utc>) -> AntragCommand {
    AntragCommand::Einspruch(Einspruch {
        by,
        reason: " Zu teuer \n für den Haushalt ".into(),
        now,
        by_verified: true,
        key: [3; 32],
        nonce: [4; 24],
    })
}

fn decide_at(
    now: DateTime<Utc>,
    active_roles: u64,
    delegations: Vec<(Uuid, Uuid)>,
) -> AntragCommand {
    AntragCommand::Entscheiden(Entscheiden {
        now,
        active_roles,
        quorum_percent: 10,
        delegations,
        transitive: false,
    })
}

fn only<P: Payload>(events: &[NewEvent]) -> P {
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, P::TYPE);
    serde_json::from_value(events[0].payload.clone()).unwrap()
}

fn decided(events: &[NewEvent]) -> AntragEntschieden {
    let last = events.last().unwrap();
    assert_eq!(last.event_type, EventType::AntragEntschieden);
    serde_json::from_value(last.payload.clone()).unwrap()
}

#[test]
fn a_verified_role_files_an_antrag_in_its_weberei() {
    let p: AntragGestellt = only(&filed());
    assert_eq!(p.title, "Bank am Teich");
    assert_eq!(p.by, FILER);
    assert_eq!(p.weavery_h3, weberei());
    assert_eq!(p.decision_deadline, deadline());
}

#[test]
fn an_unverified_role_may_not_file() {
    let mut s = stellen();
    s.by_verified = false;
    let err = given::<Antrag>(&[])
        .when(&AntragCommand::Stellen(s))
        .unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)), "{err}");
}

#[test]
fn a_deadline_before_the_minimum_is_refused_and_exactly_the_minimum_is_fine() {
    let mut s = stellen();
    s.deadline = t0() + Duration::days(3) - Duration::milliseconds(1);
    let err = given::<Antrag>(&[])
        .when(&AntragCommand::Stellen(s.clone()))
        .unwrap_err();
    assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "deadline"));
    s.deadline = t0() + Duration::days(3);
    assert!(
        given::<Antrag>(&[])
            .when(&AntragCommand::Stellen(s))
            .is_ok()
    );
}

#[test]
fn bad_titles_content_and_cells_are_refused_naming_the_field() {
    type Change = fn(&mut Stellen);
    let cases: [(&str, Change); 7] = [
        ("title", |s: &mut Stellen| s.title = "  ".into()),
        ("title", |s: &mut Stellen| {
            s.title = "x".repeat(TITLE_MAX_CHARS + 1)
        }),
        ("title", |s: &mut Stellen| s.title = "a\u{7}b".into()),
        ("content", |s: &mut Stellen| s.content = Some(json!([1]))),
        ("content", |s: &mut Stellen| {
            s.content = Some(json!({"t": "x".repeat(CONTENT_MAX_BYTES)}))
        }),
        ("weavery_h3", |s: &mut Stellen| s.weavery_h3 = "zz".into()),
        ("weavery_h3", |s: &mut Stellen| {
            s.weavery_h3 = Point::new(50.9795, 11.3235)
                .unwrap()
                .cell(crate::geo::HOME_RES)
                .to_string()
        }),
    ];
    for (want, change) in cases {
        let mut s = stellen();
        change(&mut s);
        let err = given::<Antrag>(&[])
            .when(&AntragCommand::Stellen(s))
            .unwrap_err();
        assert!(
            matches!(err, DomainError::Validation { ref field, .. } if field == want),
            "{want}: {err}"
        );
    }
}

#[test]
fn filing_twice_is_a_conflict() {
    let err = given::<Antrag>(&filed())
        .when(&AntragCommand::Stellen(stellen()))
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
}

#[test]
fn a_verified_role_votes_once() {
    let events = given::<Antrag>(&filed()).when(&vote(A, Vote::Ja)).unwrap();
    let p: StimmeAbgegeben = only(&events);
    assert_eq!((p.by, p.vote), (A, Vote::Ja));
}

#[test]
fn second_vote_is_rejected_as_conflict() {
    let history = with(&[voted(A, Vote::Ja)]);
    for again in [Vote::Ja, Vote::Nein] {
        let err = given::<Antrag>(&history).when(&vote(A, again)).unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)), "{err}");
    }
    assert!(given::<Antrag>(&history).when(&vote(B, Vote::Nein)).is_ok());
}

#[test]
fn an_unverified_role_may_not_vote() {
    let err = given::<Antrag>(&filed())
        .when(&AntragCommand::Abstimmen(Abstimmen {
            by: A,
            vote: Vote::Ja,
            now: t0(),
            by_verified: false,
        }))
        .unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)));
}

#[test]
fn voting_at_or_after_the_deadline_is_a_conflict() {
    for now in [deadline(), deadline() + Duration::days(1)] {
        let err = given::<Antrag>(&filed())
            .when(&AntragCommand::Abstimmen(Abstimmen {
                by: A,
                vote: Vote::Ja,
                now,
                by_verified: true,
            }))
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)), "{err}");
    }
    let just_before = AntragCommand::Abstimmen(Abstimmen {
        by: A,
        vote: Vote::Ja,
        now: deadline() - Duration::milliseconds(1),
        by_verified: true,
    });
    assert!(given::<Antrag>(&filed()).when(&just_before).is_ok());
}

#[test]
fn voting_on_an_unknown_antrag_is_not_found() {
    let err = given::<Antrag>(&[]).when(&vote(A, Vote::Ja)).unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)));
}

#[test]
fn an_objection_is_recorded_with_a_sealed_reason() {
    let events = given::<Antrag>(&filed()).when(&object(A, t0())).unwrap();
    let p: EinspruchEingegangen = only(&events);
    assert_eq!(p.by, A);
    assert_eq!(p.reason.kid, A);
    assert!(!p.reason.ct.contains("teuer"));
    assert_eq!(
        open(&[3; 32], &p.reason).unwrap(),
        "Zu teuer \n für den Haushalt"
    );
}

#[test]
fn objections_need_a_reason_a_verified_role_and_come_once() {
    let mut e = Einspruch {
        by: A,
        reason: " ".into(),
        now: t0(),
        by_verified: true,
        key: [3; 32],
        nonce: [4; 24],
    };
    let err = given::<Antrag>(&filed())
        .when(&AntragCommand::Einspruch(e.clone()))
        .unwrap_err();
    assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "reason"));
    e.reason = "x".repeat(crate::governance::REASON_MAX_CHARS + 1);
    assert!(
        given::<Antrag>(&filed())
            .when(&AntragCommand::Einspruch(e.clone()))
            .is_err()
    );
    e.reason = "nein".into();
    e.by_verified = false;
    let err = given::<Antrag>(&filed())
        .when(&AntragCommand::Einspruch(e))
        .unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)));
    let history = with(&given::<Antrag>(&filed()).when(&object(A, t0())).unwrap());
    let err = given::<Antrag>(&history)
        .when(&object(A, t0()))
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
    assert!(given::<Antrag>(&history).when(&object(B, t0())).is_ok());
}

#[test]
fn objections_to_a_decided_or_closed_antrag_are_a_conflict() {
    let err = given::<Antrag>(&filed())
        .when(&object(A, deadline()))
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
    let decision = given::<Antrag>(&filed())
        .when(&decide_at(deadline(), 10, vec![]))
        .unwrap();
    let err = given::<Antrag>(&with(&decision))
        .when(&object(A, t0()))
        .unwrap_err();
    assert!(
        matches!(err, DomainError::Conflict(ref m) if m.contains("decided")),
        "{err}"
    );
}

#[test]
fn deciding_before_the_deadline_is_a_conflict() {
    let err = given::<Antrag>(&filed())
        .when(&decide_at(
            deadline() - Duration::milliseconds(1),
            10,
            vec![],
        ))
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
}

#[test]
fn a_decision_with_quorum_records_quorum_then_the_audit_trail() {
    let history = with(&[voted(A, Vote::Ja), voted(B, Vote::Nein), voted(C, Vote::Ja)]);
    let events = given::<Antrag>(&history)
        .when(&decide_at(deadline(), 30, vec![(FILER, A)]))
        .unwrap();
    assert_eq!(events.len(), 2);
    let q: QuorumErreicht = serde_json::from_value(events[0].payload.clone()).unwrap();
    assert_eq!(
        (q.participation, q.active_roles, q.quorum_percent),
        (4, 30, 10)
    );
    let d = decided(&events);
    assert_eq!(d.status, AntragStatus::Angenommen);
    assert_eq!((d.ja, d.nein, d.enthaltung), (3, 1, 0));
    assert!(d.counted.contains(&crate::events::CountedVote {
        rolle: A,
        vote: Vote::Ja,
        delegated_from: Some(FILER)
    }));
    assert_eq!(audit_decision(&d), Ok(()));
}

#[test]
fn quorum_one_voice_below_ten_percent_is_missed_and_exactly_ten_is_reached() {
    let history = with(&[voted(A, Vote::Ja), voted(B, Vote::Enthaltung)]);
    let missed = given::<Antrag>(&history)
        .when(&decide_at(deadline(), 21, vec![]))
        .unwrap();
    assert_eq!(missed.len(), 1, "no QuorumErreicht");
    assert_eq!(decided(&missed).status, AntragStatus::QuorumVerfehlt);
    let reached = given::<Antrag>(&history)
        .when(&decide_at(deadline(), 20, vec![]))
        .unwrap();
    assert_eq!(reached[0].event_type, EventType::QuorumErreicht);
    assert_eq!(decided(&reached).status, AntragStatus::Angenommen);
}

#[test]
fn a_tie_with_quorum_is_rejected() {
    let history = with(&[voted(A, Vote::Ja), voted(B, Vote::Nein)]);
    let events = given::<Antrag>(&history)
        .when(&decide_at(deadline(), 2, vec![]))
        .unwrap();
    assert_eq!(decided(&events).status, AntragStatus::Abgelehnt);
}

#[test]
fn deciding_again_yields_nothing() {
    let decision = given::<Antrag>(&filed())
        .when(&decide_at(deadline(), 0, vec![]))
        .unwrap();
    assert_eq!(decided(&decision).status, AntragStatus::QuorumVerfehlt);
    let again = given::<Antrag>(&with(&decision))
        .when(&decide_at(deadline() + Duration::days(1), 0, vec![]))
        .unwrap();
    assert!(again.is_empty());
}

#[test]
fn transitive_decisions_follow_chains_and_report_cycles() {
    let history = with(&[voted(C, Vote::Nein)]);
    let cmd = AntragCommand::Entscheiden(Entscheiden {
        now: deadline(),
        active_roles: 10,
        quorum_percent: 10,
        delegations: vec![
            (A, B),
            (B, C),
            (FILER, Uuid::from_u128(1)),
            (Uuid::from_u128(1), FILER),
        ],
        transitive: true,
    });
    let d = decided(&given::<Antrag>(&history).when(&cmd).unwrap());
    assert_eq!((d.nein, d.participation), (3, 3));
    assert_eq!(d.cycles, vec![vec![Uuid::from_u128(1), FILER]]);
    assert!(d.transitive);
    assert_eq!(audit_decision(&d), Ok(()));
}

#[test]
fn a_quorum_percent_above_100_is_refused() {
    let err = given::<Antrag>(&filed())
        .when(&AntragCommand::Entscheiden(Entscheiden {
            now: deadline(),
            active_roles: 1,
            quorum_percent: 101,
            delegations: vec![],
            transitive: false,
        }))
        .unwrap_err();
    assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "quorum_percent"));
}

#[test]
fn deciding_an_unknown_antrag_is_not_found() {
    let err = given::<Antrag>(&[])
        .when(&decide_at(deadline(), 1, vec![]))
        .unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)));
}
