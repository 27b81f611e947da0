//! Unit tests of the Knoten aggregate: creation, design area, decay, yarn and room messages.

use super::*;
use crate::aggregate::testing::{given, seal_all};
use crate::privacy::open;
use serde_json::json;

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
    let KnotenCommand::Create(mut c) = cmd("t") else {
        unreachable!()
    };
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

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

const CREATOR: Uuid = Uuid::from_u128(0xC0);
const OTHER: Uuid = Uuid::from_u128(0x07);

/// A Knoten tied by `CREATOR` at `t0`, then `more` events (as the system).
fn knoten_with(more: &[NewEvent]) -> Knoten {
    let mut events = given::<Knoten>(&[]).when(&cmd("Werkstatt")).unwrap();
    events.extend_from_slice(more);
    let mut history = seal_all(None, &events);
    history[0].meta.actor = Actor::Rolle(CREATOR);
    Knoten::fold(&history).unwrap()
}

fn event<P: crate::events::Payload>(p: P) -> NewEvent {
    NewEvent::from_payload(&p).unwrap()
}

fn decayed() -> NewEvent {
    event(KnotenVerfallen {
        expired_at: t0() + Duration::days(7),
    })
}

fn twisted() -> NewEvent {
    event(KnotenVerzwirnt {
        roles: vec![Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)],
    })
}

fn edit(expected_version: u32, editor: Uuid, editor_may_edit: bool) -> KnotenCommand {
    KnotenCommand::Gestalten(Gestalten {
        expected_version,
        content: json!({"plan": "Beete"}),
        editor,
        editor_may_edit,
    })
}

fn write(text: &str) -> KnotenCommand {
    KnotenCommand::Schreiben(Schreiben {
        nachricht_id: Uuid::from_u128(0x4E),
        author: OTHER,
        text: text.into(),
        mentions: vec![CREATOR, Uuid::from_u128(9), CREATOR],
        key: [5; 32],
        nonce: [6; 24],
    })
}

fn only<P: crate::events::Payload>(events: Vec<NewEvent>) -> P {
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, P::TYPE);
    serde_json::from_value(events[0].payload.clone()).unwrap()
}

#[test]
fn the_creator_comes_from_the_creating_events_actor() {
    let k = knoten_with(&[]);
    let c = k.created.unwrap();
    assert_eq!(c.creator, Some(CREATOR));
    assert_eq!(c.design_version, 0);
    assert!(!c.decayed && !c.yarn);
}

#[test]
fn a_knoten_decays_at_exactly_seven_days_and_not_a_millisecond_before() {
    let k = knoten_with(&[]);
    let expires = t0() + Duration::days(7);
    let early = k
        .decide(&KnotenCommand::Verfallen {
            now: expires - Duration::milliseconds(1),
        })
        .unwrap();
    assert!(early.is_empty());
    let p: KnotenVerfallen = only(
        k.decide(&KnotenCommand::Verfallen { now: expires })
            .unwrap(),
    );
    assert_eq!(p.expired_at, expires);
}

#[test]
fn moderation_hides_a_knoten_or_a_message_once_per_flag_even_when_faded() {
    let flag = Uuid::from_u128(0xF1);
    let message = FlagTarget {
        kind: FlagTargetKind::Nachricht,
        id: Uuid::from_u128(0x4E),
    };
    let hide = KnotenCommand::Verbergen {
        flag_id: flag,
        target: message,
    };
    // A faded Knoten's room is still readable, so its content can still be hidden.
    let k = knoten_with(&[decayed()]);
    let p: InhaltVerborgen = only(k.decide(&hide).unwrap());
    assert_eq!((p.flag_id, p.target), (flag, message));
    let again = knoten_with(&[decayed(), event(p)]);
    assert!(again.decide(&hide).unwrap().is_empty(), "once per flag");
    // Another flag on the same chain is its own fact.
    let other = KnotenCommand::Verbergen {
        flag_id: Uuid::from_u128(0xF2),
        target: message,
    };
    assert_eq!(again.decide(&other).unwrap().len(), 1);
}

#[test]
fn only_map_content_is_hidden_on_a_knoten_chain_and_only_on_an_existing_one() {
    let antrag = KnotenCommand::Verbergen {
        flag_id: Uuid::from_u128(0xF1),
        target: FlagTarget {
            kind: FlagTargetKind::Antrag,
            id: Uuid::from_u128(7),
        },
    };
    let err = knoten_with(&[]).decide(&antrag).unwrap_err();
    assert!(matches!(err, DomainError::Validation { .. }), "{err:?}");
    let knoten = KnotenCommand::Verbergen {
        flag_id: Uuid::from_u128(0xF1),
        target: FlagTarget {
            kind: FlagTargetKind::Knoten,
            id: Uuid::from_u128(7),
        },
    };
    let err = Knoten::default().decide(&knoten).unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
}

#[test]
fn a_faded_knoten_does_not_decay_twice() {
    let k = knoten_with(&[decayed()]);
    assert!(k.created.as_ref().unwrap().decayed);
    let again = k
        .decide(&KnotenCommand::Verfallen {
            now: t0() + Duration::days(30),
        })
        .unwrap();
    assert!(again.is_empty());
}

#[test]
fn a_yarn_knoten_never_decays() {
    let k = knoten_with(&[twisted()]);
    let later = k
        .decide(&KnotenCommand::Verfallen {
            now: t0() + Duration::days(365),
        })
        .unwrap();
    assert!(later.is_empty());
}

#[test]
fn timers_on_a_missing_knoten_are_not_found() {
    let err = given::<Knoten>(&[])
        .when(&KnotenCommand::Verfallen { now: t0() })
        .unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)));
}

#[test]
fn the_third_distinct_role_twists_the_knoten() {
    let k = knoten_with(&[]);
    let (a, b, c) = (Uuid::from_u128(3), Uuid::from_u128(1), Uuid::from_u128(2));
    let two = k
        .decide(&KnotenCommand::Verzwirnen {
            roles: vec![a, b, a],
            min_roles: 3,
        })
        .unwrap();
    assert!(two.is_empty());
    let p: KnotenVerzwirnt = only(
        k.decide(&KnotenCommand::Verzwirnen {
            roles: vec![a, b, c, a],
            min_roles: 3,
        })
        .unwrap(),
    );
    assert_eq!(p.roles, vec![b, c, a]);
}

#[test]
fn three_threads_of_one_role_do_not_twist_the_knoten() {
    let a = Uuid::from_u128(1);
    let none = knoten_with(&[])
        .decide(&KnotenCommand::Verzwirnen {
            roles: vec![a, a, a],
            min_roles: 3,
        })
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn yarn_is_twisted_once_and_a_faded_knoten_is_never_twisted() {
    let roles: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
    for k in [knoten_with(&[twisted()]), knoten_with(&[decayed()])] {
        let none = k
            .decide(&KnotenCommand::Verzwirnen {
                roles: roles.clone(),
                min_roles: 3,
            })
            .unwrap();
        assert!(none.is_empty());
    }
}

#[test]
fn the_creator_edits_the_design_area_version_by_version() {
    let k = knoten_with(&[]);
    let first: KnotenGestaltet = only(k.decide(&edit(0, CREATOR, false)).unwrap());
    assert_eq!(first.version, 1);
    assert_eq!(first.content, json!({"plan": "Beete"}));
    let k = knoten_with(&[event(first)]);
    assert_eq!(k.created.as_ref().unwrap().design_version, 1);
    let second: KnotenGestaltet = only(k.decide(&edit(1, CREATOR, false)).unwrap());
    assert_eq!(second.version, 2);
}

#[test]
fn a_participant_may_edit_and_anyone_else_is_forbidden() {
    let k = knoten_with(&[]);
    let p: KnotenGestaltet = only(k.decide(&edit(0, OTHER, true)).unwrap());
    assert_eq!(p.version, 1);
    let err = k.decide(&edit(0, OTHER, false)).unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)), "{err}");
}

#[test]
fn an_edit_based_on_a_stale_version_is_a_conflict() {
    let v = |n: u32| {
        event(KnotenGestaltet {
            version: n,
            content: json!({"n": n}),
        })
    };
    let k = knoten_with(&[v(1), v(2), v(3), v(4)]);
    let err = k.decide(&edit(3, CREATOR, false)).unwrap_err();
    assert_eq!(
        err,
        DomainError::Conflict(
            "the design area is at version 4, your edit was based on version 3: reload and apply your change again".into()
        )
    );
    // Also from the future: never a silent overwrite.
    assert!(matches!(
        k.decide(&edit(5, CREATOR, false)).unwrap_err(),
        DomainError::Conflict(_)
    ));
}

#[test]
fn a_faded_design_area_cannot_be_edited_and_bad_content_is_refused() {
    let err = knoten_with(&[decayed()])
        .decide(&edit(0, CREATOR, true))
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
    let k = knoten_with(&[]);
    for content in [json!("text"), json!({"t": "x".repeat(CONTENT_MAX_BYTES)})] {
        let err = k
            .decide(&KnotenCommand::Gestalten(Gestalten {
                expected_version: 0,
                content,
                editor: CREATOR,
                editor_may_edit: true,
            }))
            .unwrap_err();
        assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "content"));
    }
    let err = given::<Knoten>(&[])
        .when(&edit(0, CREATOR, true))
        .unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)));
}

#[test]
fn a_message_is_sealed_with_the_authors_key_and_opens_with_it() {
    let p: NachrichtGeschrieben = only(
        knoten_with(&[])
            .decide(&write("  Wer bringt Saatgut mit?  "))
            .unwrap(),
    );
    assert_eq!(p.author, OTHER);
    assert_eq!(p.text.kid, OTHER);
    assert!(!p.text.ct.contains("Saatgut"));
    assert_eq!(open(&[5; 32], &p.text).unwrap(), "Wer bringt Saatgut mit?");
    assert!(open(&[4; 32], &p.text).is_err());
    assert_eq!(p.mentions, vec![CREATOR, Uuid::from_u128(9)]);
}

#[test]
fn a_yarn_room_stays_open() {
    let events = knoten_with(&[twisted()]).decide(&write("weiter")).unwrap();
    assert_eq!(events.len(), 1);
}

#[test]
fn writing_in_a_faded_room_is_a_conflict() {
    let err = knoten_with(&[decayed()])
        .decide(&write("hallo"))
        .unwrap_err();
    assert_eq!(
        err,
        DomainError::Conflict("the Knoten has faded; its room is closed".into())
    );
    let err = given::<Knoten>(&[]).when(&write("hallo")).unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)));
}

#[test]
fn empty_or_overlong_messages_are_refused_naming_the_limit() {
    let k = knoten_with(&[]);
    let err = k.decide(&write(" \n ")).unwrap_err();
    assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "text"));
    assert!(k.decide(&write(&"ä".repeat(MESSAGE_MAX_CHARS))).is_ok());
    let err = k
        .decide(&write(&"ä".repeat(MESSAGE_MAX_CHARS + 1)))
        .unwrap_err();
    assert!(
        matches!(err, DomainError::Validation { ref field, ref message } if field == "text" && message.contains("4000")),
        "{err}"
    );
}
