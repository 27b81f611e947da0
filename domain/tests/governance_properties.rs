#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Properties of the Webrat's counting rules (DESIGN.md §4 "Governance", `domain::governance`):
//! for random votes and random delegation graphs (self-loops, long chains, cycles) the tally
//! equals a brute-force reference, counts every voice at most once, never counts a cycle, never
//! loops, does not depend on input order, and one hop never counts more than chains. The
//! `Antrag` aggregate decides the same whatever order its votes arrived in.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use domain::antrag::{Antrag, AntragCommand, Entscheiden};
use domain::events::{
    AntragEntschieden, AntragGestellt, CountedVote, EventType, StimmeAbgegeben, Vote,
};
use domain::governance::{audit_decision, decide_status, quorum_reached, tally};
use domain::{Actor, Aggregate, Envelope, EventContext, Meta, Ort};
use proptest::prelude::*;
use ulid::Ulid;
use uuid::Uuid;

fn r(n: u16) -> Uuid {
    Uuid::from_u128(u128::from(n))
}

fn vote_strategy() -> impl Strategy<Value = Vote> {
    prop_oneof![Just(Vote::Ja), Just(Vote::Nein), Just(Vote::Enthaltung)]
}

/// Up to `n` roles; each may vote and may delegate (to anyone, itself included).
/// Direct votes and delegations `(from, to)`.
type Graph = (Vec<(Uuid, Vote)>, Vec<(Uuid, Uuid)>);

fn graph(n: u16) -> impl Strategy<Value = Graph> {
    (1..=n).prop_flat_map(|roles| {
        let votes = prop::collection::btree_map(0..roles, vote_strategy(), 0..=roles as usize);
        let delegs = prop::collection::btree_map(0..roles, 0..roles, 0..=roles as usize);
        (votes, delegs).prop_map(|(votes, delegs)| {
            (
                votes.into_iter().map(|(k, v)| (r(k), v)).collect(),
                delegs.into_iter().map(|(f, t)| (r(f), r(t))).collect(),
            )
        })
    })
}

/// The obvious, slow reading of the rules: for every role, walk at most `n` steps.
fn reference(
    votes: &[(Uuid, Vote)],
    delegations: &[(Uuid, Uuid)],
    transitive: bool,
) -> BTreeSet<CountedVote> {
    let direct: BTreeMap<Uuid, Vote> = votes.iter().copied().collect();
    let next: BTreeMap<Uuid, Uuid> = delegations
        .iter()
        .copied()
        .filter(|(f, t)| f != t)
        .collect();
    let mut out = BTreeSet::new();
    for (&rolle, &vote) in &direct {
        out.insert(CountedVote {
            rolle,
            vote,
            delegated_from: None,
        });
    }
    let steps = if transitive { next.len() + 1 } else { 1 };
    for &from in next.keys() {
        if direct.contains_key(&from) {
            continue;
        }
        let mut cur = from;
        for _ in 0..steps {
            let Some(&to) = next.get(&cur) else { break };
            if let Some(&vote) = direct.get(&to) {
                out.insert(CountedVote {
                    rolle: to,
                    vote,
                    delegated_from: Some(from),
                });
                break;
            }
            cur = to;
        }
    }
    out
}

/// Roles on a loop of non-voters: following the delegations from them returns to them.
fn reference_cycle_members(votes: &[(Uuid, Vote)], delegations: &[(Uuid, Uuid)]) -> BTreeSet<Uuid> {
    let direct: BTreeSet<Uuid> = votes.iter().map(|v| v.0).collect();
    let next: BTreeMap<Uuid, Uuid> = delegations
        .iter()
        .copied()
        .filter(|(f, t)| f != t)
        .collect();
    next.keys()
        .copied()
        .filter(|&start| {
            let mut cur = start;
            for _ in 0..=next.len() {
                if direct.contains(&cur) {
                    return false;
                }
                match next.get(&cur) {
                    Some(&to) if to == start => return true,
                    Some(&to) => cur = to,
                    None => return false,
                }
            }
            false
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_tally_equals_the_brute_force_reference(
        (votes, delegations) in graph(14),
        transitive in any::<bool>(),
    ) {
        let t = tally(&votes, &delegations, transitive);
        let got: BTreeSet<CountedVote> = t.counted.iter().cloned().collect();
        prop_assert_eq!(got.len(), t.counted.len(), "no entry twice");
        prop_assert_eq!(got, reference(&votes, &delegations, transitive));
    }

    #[test]
    fn every_voice_counts_at_most_once_and_the_counts_add_up(
        (votes, delegations) in graph(14),
        transitive in any::<bool>(),
    ) {
        let t = tally(&votes, &delegations, transitive);
        let voices: BTreeSet<Uuid> = t.counted.iter().map(CountedVote::voice).collect();
        prop_assert_eq!(voices.len(), t.counted.len());
        prop_assert_eq!(t.ja + t.nein + t.enthaltung, t.counted.len() as u64);
        prop_assert_eq!(t.participation(), t.counted.len() as u64);
        let sorted: Vec<Uuid> = t.counted.iter().map(CountedVote::voice).collect();
        prop_assert!(sorted.windows(2).all(|w| w[0] < w[1]), "sorted by voice");
    }

    #[test]
    fn direct_votes_always_count_as_themselves(
        (votes, delegations) in graph(14),
        transitive in any::<bool>(),
    ) {
        let t = tally(&votes, &delegations, transitive);
        for &(rolle, vote) in &votes {
            let own = CountedVote { rolle, vote, delegated_from: None };
            prop_assert!(t.counted.contains(&own), "direct vote of {} missing", rolle);
            prop_assert!(!t.counted.iter().any(|c| c.delegated_from == Some(rolle)));
        }
        let direct: BTreeMap<Uuid, Vote> = votes.iter().copied().collect();
        for c in &t.counted {
            // Every counted vote is some direct voter's own vote.
            prop_assert_eq!(direct.get(&c.rolle), Some(&c.vote));
        }
    }

    #[test]
    fn cycles_are_real_loops_of_non_voters_and_never_count(
        (votes, delegations) in graph(14),
        transitive in any::<bool>(),
    ) {
        let t = tally(&votes, &delegations, transitive);
        let next: BTreeMap<Uuid, Uuid> = delegations.iter().copied().collect();
        let voices: BTreeSet<Uuid> = t.counted.iter().map(CountedVote::voice).collect();
        let mut members = BTreeSet::new();
        for cycle in &t.cycles {
            prop_assert!(!cycle.is_empty());
            prop_assert_eq!(cycle.iter().min(), cycle.first(), "starts with its smallest id");
            for (i, &m) in cycle.iter().enumerate() {
                prop_assert_eq!(next.get(&m), Some(&cycle[(i + 1) % cycle.len()]));
                prop_assert!(!voices.contains(&m), "a cycle member counted");
                prop_assert!(members.insert(m), "reported once");
            }
        }
        let expected = if transitive {
            reference_cycle_members(&votes, &delegations)
        } else {
            BTreeSet::new()
        };
        prop_assert_eq!(members, expected);
    }

    #[test]
    fn one_hop_never_counts_more_than_chains(
        (votes, delegations) in graph(14),
    ) {
        let one = tally(&votes, &delegations, false);
        let chains = tally(&votes, &delegations, true);
        prop_assert!(one.participation() <= chains.participation());
        for c in &one.counted {
            prop_assert!(chains.counted.contains(c), "{:?} lost with chains", c);
        }
    }

    #[test]
    fn the_tally_does_not_depend_on_input_order(
        (votes, delegations) in graph(14),
        transitive in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut v2 = votes.clone();
        let mut d2 = delegations.clone();
        shuffle(&mut v2, seed);
        shuffle(&mut d2, seed.rotate_left(17));
        prop_assert_eq!(
            tally(&votes, &delegations, transitive),
            tally(&v2, &d2, transitive)
        );
    }

    #[test]
    fn self_loops_change_nothing(
        (votes, delegations) in graph(14),
        loops in prop::collection::vec(0u16..14, 0..6),
        transitive in any::<bool>(),
    ) {
        let mut with_loops: Vec<(Uuid, Uuid)> = loops.iter().map(|&n| (r(n), r(n))).collect();
        with_loops.extend(delegations.iter().copied().filter(|(f, t)| f != t));
        let without: Vec<(Uuid, Uuid)> = delegations.iter().copied().filter(|(f, t)| f != t).collect();
        prop_assert_eq!(
            tally(&votes, &with_loops, transitive),
            tally(&votes, &without, transitive)
        );
    }

    #[test]
    fn long_chains_end_at_the_voter_or_in_one_reported_cycle(
        len in 1u16..3000,
        close_at in prop::option::of(0u16..3000),
        vote in vote_strategy(),
    ) {
        // r0 -> r1 -> ... -> r(len); either r(len) voted, or it delegates back to r(close_at).
        let mut delegations: Vec<(Uuid, Uuid)> = (0..len).map(|i| (r(i), r(i + 1))).collect();
        let votes = match close_at {
            Some(at) => {
                delegations.push((r(len), r(at % len)));
                vec![]
            }
            None => vec![(r(len), vote)],
        };
        let t = tally(&votes, &delegations, true);
        match close_at {
            Some(at) => {
                prop_assert_eq!(t.participation(), 0);
                prop_assert_eq!(t.cycles.len(), 1);
                prop_assert_eq!(t.cycles[0].len(), usize::from(len - at % len + 1));
            }
            None => {
                prop_assert_eq!(t.participation(), u64::from(len) + 1);
                prop_assert!(t.cycles.is_empty());
                let one = tally(&votes, &delegations, false);
                prop_assert_eq!(one.participation(), 2);
            }
        }
    }

    #[test]
    fn a_decision_built_from_a_tally_passes_the_audit(
        (votes, delegations) in graph(14),
        transitive in any::<bool>(),
        active_roles in 0u64..40,
        percent in 0u32..=100,
    ) {
        let t = tally(&votes, &delegations, transitive);
        let quorum = quorum_reached(t.participation(), active_roles, percent);
        let d = AntragEntschieden {
            status: decide_status(&t, quorum),
            ja: t.ja,
            nein: t.nein,
            enthaltung: t.enthaltung,
            participation: t.participation(),
            active_roles,
            quorum_percent: percent,
            transitive,
            counted: t.counted,
            cycles: t.cycles,
        };
        prop_assert_eq!(audit_decision(&d), Ok(()));
    }

    #[test]
    fn quorum_is_exactly_the_rational_share(
        participation in 0u64..10_000,
        active_roles in 0u64..10_000,
        percent in 0u32..=100,
    ) {
        let exact = active_roles > 0
            && (participation as f64) / (active_roles as f64) * 100.0 >= f64::from(percent) - 1e-9;
        prop_assert_eq!(quorum_reached(participation, active_roles, percent), exact);
    }

    #[test]
    fn an_antrag_decides_the_same_whatever_order_its_votes_arrived_in(
        (votes, delegations) in graph(10),
        seed in any::<u64>(),
        transitive in any::<bool>(),
    ) {
        let mut shuffled = votes.clone();
        shuffle(&mut shuffled, seed);
        let decide = |votes: &[(Uuid, Vote)]| {
            let antrag = Antrag::fold(&chain(votes)).unwrap();
            antrag
                .decide(&AntragCommand::Entscheiden(Entscheiden {
                    now: deadline(),
                    active_roles: 10,
                    quorum_percent: 10,
                    delegations: delegations.clone(),
                    transitive,
                }))
                .unwrap()
        };
        let a = decide(&votes);
        prop_assert_eq!(&a, &decide(&shuffled));
        prop_assert_eq!(a.last().unwrap().event_type, EventType::AntragEntschieden);
    }
}

/// Fisher–Yates with a small deterministic generator (the domain has no randomness).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn deadline() -> DateTime<Utc> {
    t0() + Duration::days(7)
}

/// An Antrag chain: filed, then the votes in the given order, all at the same instant.
fn chain(votes: &[(Uuid, Vote)]) -> Vec<Envelope> {
    let ort = Ort::new("test").unwrap();
    let id = Uuid::from_u128(0xA17A);
    let ctx = |n: usize| EventContext {
        id: Ulid::from_parts(1_800_000_000_000, n as u128),
        ts: t0(),
        meta: Meta {
            actor: Actor::System,
            ip_hash: None,
            ua_hash: None,
            msg_id: format!("m{n}"),
        },
    };
    let filed = AntragGestellt {
        by: r(999),
        title: "Bank am Teich".into(),
        content: serde_json::json!({}),
        weavery_h3: "871f1d489ffffff".into(),
        decision_deadline: deadline(),
    };
    let mut out = vec![Envelope::seal(&ort, id, None, &filed, ctx(0)).unwrap()];
    for (n, &(by, vote)) in votes.iter().enumerate() {
        let prev = domain::hash_envelope(out.last().unwrap()).ok();
        out.push(
            Envelope::seal(&ort, id, prev, &StimmeAbgegeben { by, vote }, ctx(n + 1)).unwrap(),
        );
    }
    out
}
