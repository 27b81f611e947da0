//! The pure rules of the Webrat's decisions (DESIGN.md §4 "Governance"): resolving delegations
//! into counted voices, the quorum, the status of a decision, and the audit that recomputes a
//! recorded decision. The `Antrag` aggregate uses them at the deadline; the API uses them for
//! "the tally so far" and the audit query.
//!
//! Choices beyond DESIGN.md:
//! - **Who a counted vote belongs to.** [`CountedVote::rolle`] is the role whose *direct* vote
//!   is used; `delegated_from` is the delegator whose voice it is. So the voice of an entry is
//!   `delegated_from.unwrap_or(rolle)` ([`CountedVote::voice`]); every voice appears at most once.
//!   `counted` is sorted by voice, so the same facts always give the same list.
//! - **A direct vote always wins**: a role that voted is counted with its own vote even if it
//!   delegated.
//! - **One hop** (`transitive == false`): a delegator who did not vote is counted only if its
//!   delegate voted directly. A delegate who did not vote passes nothing on, and no chain is
//!   followed, so no cycle can arise and `cycles` is empty.
//! - **Chains** (`transitive == true`): follow the delegations to the first direct voter. A
//!   chain that ends at a role without vote and without delegation counts nothing. A chain that
//!   runs into a loop of non-voters counts nothing for everyone on it and leading into it; the
//!   loop is reported once in `cycles` (rotated to start with its smallest id, sorted). A loop
//!   that passes through a direct voter is not a cycle: the chain stops at the voter. Every role
//!   is resolved once (memoised), so the work is linear in the number of delegations.
//! - **Input contract**: one direct vote per role and one delegation per delegator (the `Antrag`
//!   and `Delegation` aggregates guarantee both). Should the input still repeat a role, its
//!   first entry counts and later ones are ignored. A self-delegation (`from == to`) is ignored
//!   (the `Delegation` aggregate refuses it anyway). Which delegations are passed is the
//!   caller's business: those active at the deadline, of roles entitled to vote on the Antrag.
//! - **Quorum**: `participation * 100 >= percent * active_roles` in exact integer arithmetic
//!   (no rounding: 10 % of 25 roles needs 3 voices, since 2.5 is not enough). With no active
//!   roles the quorum is never reached: a Weberei nobody is active in decides nothing.
//!   `participation` may exceed `active_roles` (a voter need not be active in the Weberei by the
//!   projection's definition); that is counted as it is.
//! - **Status**: angenommen if the quorum is reached and ja > nein; abgelehnt if it is reached
//!   and not (a tie is rejected); quorum_verfehlt otherwise. Enthaltung counts for the quorum
//!   only.

use std::collections::{BTreeMap, BTreeSet};

use h3o::CellIndex;
use uuid::Uuid;

use crate::error::DomainError;
use crate::events::{AntragEntschieden, AntragStatus, CountedVote, Vote};
use crate::geo::WEAVERY_RES;

/// Default share of active roles that must take part (`QUORUM_PERCENT`).
pub const DEFAULT_QUORUM_PERCENT: u32 = 10;
/// A role is active if it caused any event within this many days (`ACTIVE_DAYS`).
pub const DEFAULT_ACTIVE_DAYS: i64 = 30;

/// The counted voices of an Antrag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Every counted voice, sorted by [`CountedVote::voice`].
    pub counted: Vec<CountedVote>,
    pub ja: u64,
    pub nein: u64,
    pub enthaltung: u64,
    /// Delegation loops among non-voters (only with `transitive`).
    pub cycles: Vec<Vec<Uuid>>,
}

impl Tally {
    /// Direct and delegated votes counted, enthaltung included.
    pub fn participation(&self) -> u64 {
        self.counted.len() as u64
    }
}

/// Where following a role's delegations ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    /// At this direct voter.
    Voter(Uuid),
    /// Nowhere: a role without vote and delegation, or a cycle.
    Nothing,
}

/// Count the direct votes and the delegated voices (see the module docs for every rule).
pub fn tally(
    direct_votes: &[(Uuid, Vote)],
    delegations: &[(Uuid, Uuid)],
    transitive: bool,
) -> Tally {
    let mut direct: BTreeMap<Uuid, Vote> = BTreeMap::new();
    for &(rolle, vote) in direct_votes {
        direct.entry(rolle).or_insert(vote);
    }
    let mut delegate_of: BTreeMap<Uuid, Uuid> = BTreeMap::new();
    for &(from, to) in delegations {
        if from != to {
            delegate_of.entry(from).or_insert(to);
        }
    }

    let mut counted: Vec<CountedVote> = direct
        .iter()
        .map(|(&rolle, &vote)| CountedVote {
            rolle,
            vote,
            delegated_from: None,
        })
        .collect();
    let mut cycles: Vec<Vec<Uuid>> = Vec::new();
    let mut memo: BTreeMap<Uuid, Resolved> = BTreeMap::new();

    for (&from, &to) in &delegate_of {
        if direct.contains_key(&from) {
            continue;
        }
        let resolved = if transitive {
            resolve_chain(from, &direct, &delegate_of, &mut memo, &mut cycles)
        } else if direct.contains_key(&to) {
            Resolved::Voter(to)
        } else {
            Resolved::Nothing
        };
        if let Resolved::Voter(voter) = resolved
            && let Some(&vote) = direct.get(&voter)
        {
            counted.push(CountedVote {
                rolle: voter,
                vote,
                delegated_from: Some(from),
            });
        }
    }

    counted.sort_by_key(CountedVote::voice);
    cycles.sort();
    let count = |v: Vote| counted.iter().filter(|c| c.vote == v).count() as u64;
    Tally {
        ja: count(Vote::Ja),
        nein: count(Vote::Nein),
        enthaltung: count(Vote::Enthaltung),
        counted,
        cycles,
    }
}

/// Follow the chain from `start` (a delegator who did not vote) to the first direct voter.
/// Every role on the walk gets its result memoised, so each role is walked once overall.
fn resolve_chain(
    start: Uuid,
    direct: &BTreeMap<Uuid, Vote>,
    delegate_of: &BTreeMap<Uuid, Uuid>,
    memo: &mut BTreeMap<Uuid, Resolved>,
    cycles: &mut Vec<Vec<Uuid>>,
) -> Resolved {
    let mut path: Vec<Uuid> = Vec::new();
    let mut on_path: BTreeSet<Uuid> = BTreeSet::new();
    let mut cur = start;
    let result = loop {
        if direct.contains_key(&cur) {
            break Resolved::Voter(cur);
        }
        if let Some(&known) = memo.get(&cur) {
            break known;
        }
        if !on_path.insert(cur) {
            // `cur` is on this walk already: the loop is the path from its first visit on.
            let first = path.iter().position(|&r| r == cur).unwrap_or(0);
            cycles.push(canonical_cycle(&path[first..]));
            break Resolved::Nothing;
        }
        path.push(cur);
        match delegate_of.get(&cur) {
            Some(&next) => cur = next,
            None => break Resolved::Nothing,
        }
    };
    for r in path {
        memo.insert(r, result);
    }
    result
}

/// A loop rotated to start with its smallest member, so each loop has one spelling.
fn canonical_cycle(cycle: &[Uuid]) -> Vec<Uuid> {
    let start = cycle
        .iter()
        .enumerate()
        .min_by_key(|&(_, r)| *r)
        .map_or(0, |(i, _)| i);
    cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .copied()
        .collect()
}

/// Whether `participation` voices reach `percent` % of `active_roles` (exact integer math;
/// never with no active roles).
pub fn quorum_reached(participation: u64, active_roles: u64, percent: u32) -> bool {
    active_roles > 0
        && u128::from(participation) * 100 >= u128::from(percent) * u128::from(active_roles)
}

/// The status of a decision from its tally and whether the quorum was reached.
pub fn decide_status(tally: &Tally, quorum: bool) -> AntragStatus {
    status_of(tally.ja, tally.nein, quorum)
}

fn status_of(ja: u64, nein: u64, quorum: bool) -> AntragStatus {
    match (quorum, ja > nein) {
        (false, _) => AntragStatus::QuorumVerfehlt,
        (true, true) => AntragStatus::Angenommen,
        (true, false) => AntragStatus::Abgelehnt,
    }
}

/// Recompute a recorded decision from its own `counted` list: every voice once, the counts,
/// the participation and the status must agree. `Err` says what does not.
pub fn audit_decision(d: &AntragEntschieden) -> Result<(), String> {
    let mut voices = BTreeSet::new();
    for c in &d.counted {
        if !voices.insert(c.voice()) {
            return Err(format!("the voice of {} is counted twice", c.voice()));
        }
        if c.delegated_from == Some(c.rolle) {
            return Err(format!("{} is delegated from itself", c.rolle));
        }
    }
    let count = |v: Vote| d.counted.iter().filter(|c| c.vote == v).count() as u64;
    let (ja, nein, enthaltung) = (count(Vote::Ja), count(Vote::Nein), count(Vote::Enthaltung));
    if (ja, nein, enthaltung) != (d.ja, d.nein, d.enthaltung) {
        return Err(format!(
            "counted votes give ja {ja}, nein {nein}, enthaltung {enthaltung}; recorded are {}, {}, {}",
            d.ja, d.nein, d.enthaltung
        ));
    }
    let participation = d.counted.len() as u64;
    if participation != d.participation {
        return Err(format!(
            "{participation} votes are counted; the recorded participation is {}",
            d.participation
        ));
    }
    let status = status_of(
        ja,
        nein,
        quorum_reached(participation, d.active_roles, d.quorum_percent),
    );
    if status != d.status {
        return Err(format!(
            "the counted votes give {}; recorded is {}",
            status.as_str(),
            d.status.as_str()
        ));
    }
    Ok(())
}

/// Parse a Weberei cell (hex, at [`WEAVERY_RES`]).
pub fn parse_weberei(hex: &str) -> Result<CellIndex, DomainError> {
    let cell: CellIndex = hex
        .parse()
        .map_err(|_| DomainError::validation("weavery_h3", format!("{hex:?} is not an H3 cell")))?;
    if cell.resolution() != WEAVERY_RES {
        return Err(DomainError::validation(
            "weavery_h3",
            format!(
                "a Weberei is an H3 cell at resolution {}, got resolution {}",
                u8::from(WEAVERY_RES),
                u8::from(cell.resolution())
            ),
        ));
    }
    Ok(cell)
}

/// The Weberei of a role: the cell at [`WEAVERY_RES`] containing its home cell (hex, at
/// [`crate::geo::HOME_RES`] or any finer resolution).
pub fn weberei_of_home(home_h3: &str) -> Result<CellIndex, DomainError> {
    let home: CellIndex = home_h3.parse().map_err(|_| {
        DomainError::validation("home_h3", format!("{home_h3:?} is not an H3 cell"))
    })?;
    home.parent(WEAVERY_RES).ok_or_else(|| {
        DomainError::validation("home_h3", "the home cell is coarser than a Weberei")
    })
}

/// Longest reason of an objection or a flag, in characters (after trimming).
pub const REASON_MAX_CHARS: usize = 2000;

/// A free-text reason: 1..=[`REASON_MAX_CHARS`] characters after trimming; line breaks and tabs
/// are fine, other control characters are not. Returns the trimmed text.
pub fn validate_reason<'a>(field: &str, reason: &'a str) -> Result<&'a str, DomainError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DomainError::validation(field, "a reason is required"));
    }
    let chars = reason.chars().count();
    if chars > REASON_MAX_CHARS {
        return Err(DomainError::validation(
            field,
            format!("the reason has {chars} characters; at most {REASON_MAX_CHARS} are allowed"),
        ));
    }
    if reason
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(DomainError::validation(
            field,
            "the reason must not contain control characters",
        ));
    }
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn quorum_at_exactly_ten_percent_is_reached_and_one_voice_below_is_not() {
        assert!(quorum_reached(10, 100, 10));
        assert!(!quorum_reached(9, 100, 10));
        // 2.5 voices are needed of 25: 2 are not enough, 3 are.
        assert!(!quorum_reached(2, 25, 10));
        assert!(quorum_reached(3, 25, 10));
    }

    #[test]
    fn no_active_roles_never_reach_the_quorum() {
        assert!(!quorum_reached(5, 0, 10));
        assert!(!quorum_reached(0, 0, 0));
        assert!(quorum_reached(0, 1, 0));
    }

    #[test]
    fn quorum_arithmetic_does_not_overflow() {
        assert!(quorum_reached(u64::MAX, u64::MAX, 100));
        assert!(!quorum_reached(u64::MAX - 1, u64::MAX, 100));
    }

    #[test]
    fn enthaltung_counts_for_the_quorum_only() {
        let t = tally(
            &[
                (r(1), Vote::Enthaltung),
                (r(2), Vote::Enthaltung),
                (r(3), Vote::Ja),
            ],
            &[],
            false,
        );
        assert_eq!(
            (t.ja, t.nein, t.enthaltung, t.participation()),
            (1, 0, 2, 3)
        );
        assert!(quorum_reached(t.participation(), 30, 10));
        assert!(!quorum_reached(t.participation() - 2, 30, 10));
        assert_eq!(decide_status(&t, true), AntragStatus::Angenommen);
    }

    #[test]
    fn a_tie_is_rejected_and_a_missed_quorum_wins_over_everything() {
        let t = tally(&[(r(1), Vote::Ja), (r(2), Vote::Nein)], &[], false);
        assert_eq!(decide_status(&t, true), AntragStatus::Abgelehnt);
        assert_eq!(decide_status(&t, false), AntragStatus::QuorumVerfehlt);
        assert_eq!(
            decide_status(&Tally::default(), true),
            AntragStatus::Abgelehnt
        );
    }

    #[test]
    fn a_delegator_who_did_not_vote_counts_with_the_delegates_vote() {
        let t = tally(&[(r(2), Vote::Nein)], &[(r(1), r(2))], false);
        assert_eq!(
            t.counted,
            vec![
                CountedVote {
                    rolle: r(2),
                    vote: Vote::Nein,
                    delegated_from: Some(r(1))
                },
                CountedVote {
                    rolle: r(2),
                    vote: Vote::Nein,
                    delegated_from: None
                },
            ]
        );
        assert_eq!(t.nein, 2);
    }

    #[test]
    fn a_delegated_quorum_is_reached_with_the_delegated_voice() {
        let t = tally(&[(r(2), Vote::Ja)], &[(r(1), r(2))], false);
        assert!(quorum_reached(t.participation(), 20, 10));
        assert!(!quorum_reached(1, 20, 10));
    }

    #[test]
    fn a_direct_vote_always_wins_over_the_delegation() {
        let t = tally(
            &[(r(1), Vote::Ja), (r(2), Vote::Nein)],
            &[(r(1), r(2))],
            true,
        );
        assert_eq!((t.ja, t.nein), (1, 1));
        assert!(t.counted.iter().all(|c| c.delegated_from.is_none()));
    }

    #[test]
    fn without_transitive_only_one_hop_counts() {
        let chain = [(r(1), r(2)), (r(2), r(3))];
        let votes = [(r(3), Vote::Ja)];
        let one_hop = tally(&votes, &chain, false);
        assert_eq!(
            one_hop.participation(),
            2,
            "r2 via r3; r1's delegate r2 did not vote"
        );
        let chained = tally(&votes, &chain, true);
        assert_eq!(chained.participation(), 3);
        assert!(chained.counted.contains(&CountedVote {
            rolle: r(3),
            vote: Vote::Ja,
            delegated_from: Some(r(1))
        }));
    }

    #[test]
    fn a_cycle_counts_nothing_and_is_reported_once() {
        // 5 -> 3 -> 4 -> 5 is a loop of non-voters; 1 and 2 lead into it; 6 -> 7 voted.
        let delegations = [
            (r(1), r(3)),
            (r(2), r(1)),
            (r(3), r(4)),
            (r(4), r(5)),
            (r(5), r(3)),
            (r(6), r(7)),
        ];
        let t = tally(&[(r(7), Vote::Ja)], &delegations, true);
        assert_eq!(t.cycles, vec![vec![r(3), r(4), r(5)]]);
        assert_eq!(t.participation(), 2);
        assert!(
            tally(&[(r(7), Vote::Ja)], &delegations, false)
                .cycles
                .is_empty()
        );
    }

    #[test]
    fn a_loop_through_a_voter_is_no_cycle() {
        let t = tally(&[(r(2), Vote::Ja)], &[(r(1), r(2)), (r(2), r(1))], true);
        assert!(t.cycles.is_empty());
        assert_eq!(t.participation(), 2);
    }

    #[test]
    fn self_delegations_and_repeated_entries_are_ignored() {
        let t = tally(
            &[(r(1), Vote::Ja), (r(1), Vote::Nein)],
            &[(r(2), r(2)), (r(3), r(1)), (r(3), r(2))],
            true,
        );
        assert_eq!((t.ja, t.nein, t.participation()), (2, 0, 2));
        assert!(t.cycles.is_empty());
    }

    #[test]
    fn a_recorded_decision_is_audited_and_a_tampered_one_is_not() {
        let t = tally(
            &[(r(1), Vote::Ja), (r(2), Vote::Nein)],
            &[(r(3), r(1))],
            false,
        );
        let mut d = AntragEntschieden {
            status: decide_status(&t, quorum_reached(t.participation(), 30, 10)),
            ja: t.ja,
            nein: t.nein,
            enthaltung: t.enthaltung,
            participation: t.participation(),
            active_roles: 30,
            quorum_percent: 10,
            transitive: false,
            counted: t.counted.clone(),
            cycles: t.cycles.clone(),
        };
        assert_eq!(d.status, AntragStatus::Angenommen);
        assert_eq!(audit_decision(&d), Ok(()));
        d.status = AntragStatus::Abgelehnt;
        assert!(audit_decision(&d).is_err());
        d.status = AntragStatus::Angenommen;
        d.counted.push(d.counted[0].clone());
        assert!(audit_decision(&d).is_err());
    }

    #[test]
    fn a_role_homes_in_the_weberei_around_its_home_cell() {
        let p = crate::geo::Point::new(50.9795, 11.3235).unwrap();
        let home = p.cell(crate::geo::HOME_RES).to_string();
        assert_eq!(weberei_of_home(&home).unwrap(), p.cell(WEAVERY_RES));
        assert!(parse_weberei(&p.cell(WEAVERY_RES).to_string()).is_ok());
        let err = parse_weberei(&home).unwrap_err();
        assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "weavery_h3"));
        assert!(parse_weberei("nope").is_err());
        let coarse = p.cell(h3o::Resolution::Five).to_string();
        assert!(weberei_of_home(&coarse).is_err());
    }
}
